// Package testkit holds test doubles and tools for minifocus: a launcher for a
// real Prosody laid out like a Jitsi Meet deployment, and a small XMPP client
// for fake bridges and simulated participants. Production code never imports
// it.
package testkit

import (
	"crypto/sha1"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Prosody is one running (or stopped) Prosody process with its own base
// directory, config, data and log, listening on loopback ports of its own so
// that many can run in parallel.
type Prosody struct {
	// Domain is the anonymous host (always "meet.test"); the other hosts are
	// the package constants MUCDomain, AuthDomain, InternalMUCDomain and
	// ComponentDomain.
	Domain string
	// ComponentSecret is the XEP-0114 secret of ComponentDomain.
	ComponentSecret string
	// Dir is the base directory (config, data/, prosody.log).
	Dir string
	// ConfigPath is the generated config file inside Dir.
	ConfigPath string

	set      settings
	ownDir   bool // Dir was created by LaunchProsody and is removed by Stop
	asRoot   bool // prosody runs under setpriv as the prosody user
	uid, gid int  // the prosody user's ids when asRoot

	mu       sync.Mutex
	ports    ports
	cmd      *exec.Cmd
	exited   chan struct{} // closed when cmd has been waited for
	exitErr  error
	stopped  bool
	savedLog string // log captured by Stop before an owned Dir is removed
	removed  bool
}

// errBind marks a start that failed because a port was taken by someone else
// between picking it and Prosody binding it.
var errBind = errors.New("prosody could not bind a port")

// StartProsody starts a Prosody for a test and registers a cleanup that
// prints its log if the test failed, stops it and removes its directory.
// The test fails at once if Prosody is not installed or does not come up.
//
// With `go test -short` (`make test-short`) the test is skipped instead:
// that is a developer mode for a machine without Prosody, where only the
// unit tests run. CI (`make test`, .ci/run) never passes -short, so nothing
// is skipped there and every wire test runs.
func StartProsody(t testing.TB, opts ...Option) *Prosody {
	t.Helper()
	SkipIfShort(t)
	if _, err := exec.LookPath("prosody"); err != nil {
		t.Fatalf("testkit: prosody is not installed (apt-get install -y prosody): %v", err)
	}
	if _, err := exec.LookPath("prosodyctl"); err != nil {
		t.Fatalf("testkit: prosodyctl is not installed (apt-get install -y prosody): %v", err)
	}
	p, err := LaunchProsody("", opts...)
	if err != nil {
		t.Fatalf("testkit: starting prosody: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("prosody log (%s):\n%s", p.Dir, p.Log())
		}
		if err := p.Stop(); err != nil {
			t.Errorf("testkit: stopping prosody: %v", err)
		}
	})
	return p
}

// SkipIfShort skips a test that needs a real Prosody when it runs with
// -short. It is for tests that start Prosody without StartProsody; CI never
// passes -short, so nothing is skipped there.
func SkipIfShort(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs a real Prosody; not run with -short (make test-short)")
	}
}

// LaunchProsody configures, registers the users of and starts a Prosody in
// dir, for use outside tests (demo, benchmark). If dir is empty a fresh
// directory is created under os.TempDir() and Stop removes it; a given dir is
// created if needed and kept. It returns once c2s answers a stream header.
//
// Run as root, Prosody (and prosodyctl) run as the "prosody" user through
// setpriv, and dir is chowned to that user; otherwise they run as the
// current user.
func LaunchProsody(dir string, opts ...Option) (*Prosody, error) {
	p := &Prosody{Domain: Domain, set: defaultSettings()}
	for _, o := range opts {
		o(&p.set)
	}
	p.ComponentSecret = p.set.componentSecret

	if os.Geteuid() == 0 {
		if err := p.lookupProsodyUser(); err != nil {
			return nil, err
		}
	}
	if err := p.makeDir(dir); err != nil {
		return nil, err
	}
	fail := func(err error) (*Prosody, error) {
		if p.ownDir {
			os.RemoveAll(p.Dir)
		}
		return nil, err
	}

	// Users are registered before the first start: with internal storage
	// prosodyctl writes the account files directly, so no server is needed.
	// The ports are not known yet, but they do not matter to prosodyctl.
	if err := p.writeConfig(ports{c2s: 1, http: 1, component: 1}); err != nil {
		return fail(err)
	}
	for _, a := range p.set.users {
		if err := p.Register(a.user, a.host, a.pass); err != nil {
			return fail(err)
		}
	}
	if err := p.writeJitsiFiles(); err != nil {
		return fail(err)
	}

	var err error
	for attempt := 0; attempt < 5; attempt++ {
		var pt ports
		if pt, err = pickPorts(); err != nil {
			return fail(err)
		}
		if err = p.writeConfig(pt); err != nil {
			return fail(err)
		}
		if err = p.start(); err == nil {
			return p, nil
		}
		if !errors.Is(err, errBind) {
			break
		}
	}
	return fail(err)
}

// lookupProsodyUser finds the uid and gid that setpriv will switch to.
func (p *Prosody) lookupProsodyUser() error {
	u, err := user.Lookup("prosody")
	if err != nil {
		return fmt.Errorf("testkit: running as root but there is no prosody user to run Prosody as: %w", err)
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		return fmt.Errorf("testkit: running as root needs setpriv (util-linux) to drop to the prosody user: %w", err)
	}
	p.uid, _ = strconv.Atoi(u.Uid)
	p.gid, _ = strconv.Atoi(u.Gid)
	p.asRoot = true
	return nil
}

// makeDir creates the base and data directories. t.TempDir() is not used
// because, under root, it is 0700 and root-owned: the prosody user could not
// enter it. The base directory is therefore made under os.TempDir() (which is
// world-traversable) and handed to the prosody user.
func (p *Prosody) makeDir(dir string) error {
	if dir == "" {
		d, err := os.MkdirTemp("", "minifocus-prosody-")
		if err != nil {
			return fmt.Errorf("testkit: %w", err)
		}
		dir, p.ownDir = d, true
	} else if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("testkit: %w", err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("testkit: %w", err)
	}
	p.Dir = abs
	p.ConfigPath = filepath.Join(abs, "prosody.cfg.lua")
	// An empty certs directory: Prosody indexes <config dir>/certs at startup
	// and logs an error if it is missing. No certificates means STARTTLS
	// (still advertised by Prosody) fails, so clients must not use it.
	data, certs := filepath.Join(abs, "data"), filepath.Join(abs, "certs")
	for _, d := range []string{abs, data, certs} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return fmt.Errorf("testkit: %w", err)
		}
		if err := os.Chmod(d, 0o750); err != nil {
			return fmt.Errorf("testkit: %w", err)
		}
		if err := p.chown(d); err != nil {
			return err
		}
	}
	return nil
}

func (p *Prosody) chown(path string) error {
	if !p.asRoot {
		return nil
	}
	if err := os.Chown(path, p.uid, p.gid); err != nil {
		return fmt.Errorf("testkit: handing %s to the prosody user: %w", path, err)
	}
	return nil
}

func (p *Prosody) writeConfig(pt ports) error {
	p.ports = pt
	cfg := renderConfig(p.Dir, pt, p.set)
	if err := os.WriteFile(p.ConfigPath, []byte(cfg), 0o640); err != nil {
		return fmt.Errorf("testkit: writing prosody config: %w", err)
	}
	return p.chown(p.ConfigPath)
}

// command builds an exec.Cmd for prosody or prosodyctl. As root it is wrapped
// in setpriv so that the process runs as the prosody user; --pdeathsig makes
// the kernel kill it if the test binary dies without cleaning up (the flag is
// set after the credential change, which would otherwise clear it).
// PROSODY_CONFIG points at our config so nothing falls back to
// /etc/prosody/prosody.cfg.lua.
func (p *Prosody) command(name string, args ...string) *exec.Cmd {
	args = append([]string{"--config", p.ConfigPath}, args...)
	var cmd *exec.Cmd
	if p.asRoot {
		cmd = exec.Command("setpriv", append([]string{
			"--reuid=prosody", "--regid=prosody", "--init-groups", "--pdeathsig=KILL", "--", name,
		}, args...)...)
	} else {
		cmd = exec.Command(name, args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	}
	cmd.Dir = p.Dir
	cmd.Env = append(os.Environ(), "PROSODY_CONFIG="+p.ConfigPath, "HOME="+filepath.Join(p.Dir, "data"))
	return cmd
}

// Register creates (or overwrites the password of) an account with
// prosodyctl. It works whether or not Prosody is running: with internal
// storage the running server reads account files on each login.
func (p *Prosody) Register(user, host, pass string) error {
	out, err := p.command("prosodyctl", "register", user, host, pass).CombinedOutput()
	if err != nil {
		return fmt.Errorf("testkit: prosodyctl register %s %s: %v\n%s", user, host, err, out)
	}
	return nil
}

// consolePath collects prosody's stdout and stderr (startup errors that happen
// before logging is configured end up there).
func (p *Prosody) consolePath() string { return filepath.Join(p.Dir, "prosody.console") }
func (p *Prosody) logPath() string     { return filepath.Join(p.Dir, "prosody.log") }

// start runs prosody in the foreground (-F: Debian's installed Prosody
// daemonizes by default, and a daemon would escape our PID tracking) and waits
// until it serves c2s.
func (p *Prosody) start() error {
	console, err := os.OpenFile(p.consolePath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("testkit: %w", err)
	}
	defer console.Close()
	// Mark where this run starts, so bind failures of an earlier run are not
	// mistaken for ours.
	logOffset := fileSize(p.logPath())

	cmd := p.command("prosody", "-F")
	cmd.Stdout, cmd.Stderr = console, console
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("testkit: starting prosody: %w", err)
	}
	exited := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.exited, p.exitErr, p.stopped = cmd, exited, nil, false
	p.mu.Unlock()
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.exitErr = err
		p.mu.Unlock()
		close(exited)
	}()

	err = p.waitReady(exited, logOffset)
	if err != nil {
		p.stopProcess()
		if errors.Is(err, errBind) {
			return err
		}
		return fmt.Errorf("%w\n--- prosody log ---\n%s", err, p.Log())
	}
	return nil
}

// waitReady polls until c2s answers a stream header with a stream from our
// domain and the http and component ports accept connections. A port taken by
// someone else shows up as "Failed to open server port" in the log: Prosody
// keeps running without that listener, so the log is checked explicitly.
func (p *Prosody) waitReady(exited chan struct{}, logOffset int64) error {
	deadline := time.Now().Add(p.set.startTimeout)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			p.mu.Lock()
			err := p.exitErr
			p.mu.Unlock()
			return fmt.Errorf("testkit: prosody exited during startup (%v)", err)
		default:
		}
		if bindFailed(p.logPath(), logOffset) {
			return errBind
		}
		if last = probeC2S(p.C2SAddr(), Domain); last == nil {
			last = probeTCP(p.HTTPAddr(), p.ComponentAddr())
			if last == nil && !bindFailed(p.logPath(), logOffset) {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if bindFailed(p.logPath(), logOffset) {
		return errBind
	}
	return fmt.Errorf("testkit: prosody did not answer on c2s %s within %v: %v", p.C2SAddr(), p.set.startTimeout, last)
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func bindFailed(logPath string, offset int64) bool {
	b, err := os.ReadFile(logPath)
	if err != nil || int64(len(b)) <= offset {
		return false
	}
	return strings.Contains(string(b[offset:]), "Failed to open server port")
}

// probeC2S opens a client stream and reads the server's stream header.
// Connecting alone is not enough: the port is bound before Prosody enters its
// event loop, and another process might own a port we picked.
func probeC2S(addr, domain string) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	_, err = fmt.Fprintf(conn, "<?xml version='1.0'?><stream:stream to='%s' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>", domain)
	if err != nil {
		return err
	}
	d := xml.NewDecoder(conn)
	for {
		tok, err := d.Token()
		if err != nil {
			return fmt.Errorf("reading stream header: %w", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			if se.Name.Local != "stream" || se.Name.Space != nsStream {
				return fmt.Errorf("unexpected first element <%s xmlns=%q>", se.Name.Local, se.Name.Space)
			}
			for _, a := range se.Attr {
				if a.Name.Local == "from" && a.Value != domain {
					return fmt.Errorf("stream from %q, want %q", a.Value, domain)
				}
			}
			conn.Write([]byte("</stream:stream>"))
			return nil
		}
	}
}

func probeTCP(addrs ...string) error {
	for _, a := range addrs {
		c, err := net.DialTimeout("tcp", a, time.Second)
		if err != nil {
			return err
		}
		c.Close()
	}
	return nil
}

// pickPorts asks the kernel for three distinct free loopback ports by holding
// three listeners at once, then releases them for Prosody. Another process can
// grab one in between; start detects that and LaunchProsody retries.
func pickPorts() (ports, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var nums []int
	for range 3 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return ports{}, fmt.Errorf("testkit: picking a free port: %w", err)
		}
		ls = append(ls, l)
		nums = append(nums, l.Addr().(*net.TCPAddr).Port)
	}
	return ports{c2s: nums[0], http: nums[1], component: nums[2]}, nil
}

// stopProcess sends SIGTERM, then SIGKILL after 3 s, and waits for the exit.
func (p *Prosody) stopProcess() error {
	p.mu.Lock()
	cmd, exited, stopped := p.cmd, p.exited, p.stopped
	p.stopped = true
	p.mu.Unlock()
	if cmd == nil || stopped {
		return nil
	}
	select {
	case <-exited:
		return nil // already gone
	default:
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("testkit: SIGTERM to prosody %d: %w", cmd.Process.Pid, err)
	}
	select {
	case <-exited:
		return nil
	case <-time.After(3 * time.Second):
	}
	if err := cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("testkit: SIGKILL to prosody %d: %w", cmd.Process.Pid, err)
	}
	select {
	case <-exited:
		return nil
	case <-time.After(5 * time.Second):
		return fmt.Errorf("testkit: prosody %d did not exit after SIGKILL", cmd.Process.Pid)
	}
}

// Stop stops Prosody (SIGTERM, SIGKILL after 3 s) and waits for it. If
// LaunchProsody created the directory, Stop keeps the log in memory for Log
// and removes the directory. Stop may be called more than once.
func (p *Prosody) Stop() error {
	err := p.stopProcess()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ownDir && !p.removed {
		p.savedLog = p.readLog()
		if rmErr := os.RemoveAll(p.Dir); rmErr != nil && err == nil {
			err = fmt.Errorf("testkit: removing %s: %w", p.Dir, rmErr)
		}
		p.removed = true
	}
	return err
}

// Restart stops Prosody and starts it again on the same ports with the same
// data (accounts survive; MUC rooms, kept in memory, do not). Clients are
// disconnected and must log in again.
func (p *Prosody) Restart() error {
	p.mu.Lock()
	removed := p.removed
	p.mu.Unlock()
	if removed {
		return errors.New("testkit: restart after Stop removed the directory")
	}
	if err := p.stopProcess(); err != nil {
		return err
	}
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if err = p.start(); !errors.Is(err, errBind) {
			return err
		}
		// Our old sockets may linger briefly; someone else may hold the port.
		time.Sleep(300 * time.Millisecond)
	}
	return fmt.Errorf("testkit: restarting prosody on the same ports: %w\n%s", err, p.Log())
}

// PID is the process id of the running Prosody (0 if never started).
func (p *Prosody) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// C2SAddr is the client-to-server address, "127.0.0.1:port".
func (p *Prosody) C2SAddr() string { return addr(p.ports.c2s) }

// HTTPAddr is the HTTP address serving BOSH (/http-bind) and WebSocket
// (/xmpp-websocket) for Domain.
func (p *Prosody) HTTPAddr() string { return addr(p.ports.http) }

// ComponentAddr is the XEP-0114 component address (for ComponentDomain).
func (p *Prosody) ComponentAddr() string { return addr(p.ports.component) }

func addr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// Log returns Prosody's log file followed by anything it printed on the
// console. After Stop removed the directory it returns the saved copy.
func (p *Prosody) Log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.removed {
		return p.savedLog
	}
	return p.readLog()
}

func (p *Prosody) readLog() string {
	var b strings.Builder
	if log, err := os.ReadFile(p.logPath()); err == nil {
		b.Write(log)
	} else {
		fmt.Fprintf(&b, "(no prosody.log: %v)\n", err)
	}
	if console, err := os.ReadFile(p.consolePath()); err == nil && len(console) > 0 {
		b.WriteString("--- prosody console output ---\n")
		b.Write(console)
	}
	return b.String()
}

// DialComponent connects to p's component port as domain and completes the
// XEP-0114 handshake with p's component secret. It returns the connection
// (with no deadline set) and the decoder of the stream the server opened.
func (p *Prosody) DialComponent(domain string) (net.Conn, *xml.Decoder, error) {
	c, err := net.DialTimeout("tcp", p.ComponentAddr(), 5*time.Second)
	if err != nil {
		return nil, nil, err
	}
	fail := func(format string, args ...any) (net.Conn, *xml.Decoder, error) {
		c.Close()
		return nil, nil, fmt.Errorf(format, args...)
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "<stream:stream xmlns='%s' xmlns:stream='%s' to='%s'>", nsComponent, nsStream, domain)
	d := xml.NewDecoder(c)
	id := ""
	for id == "" {
		tok, err := d.Token()
		if err != nil {
			return fail("component stream: %w", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "stream" {
			for _, a := range se.Attr {
				if a.Name.Local == "id" {
					id = a.Value
				}
			}
		}
	}
	sum := sha1.Sum([]byte(id + p.ComponentSecret))
	fmt.Fprintf(c, "<handshake>%s</handshake>", hex.EncodeToString(sum[:]))
	hs, err := readElem(d)
	if err != nil || hs.Local != "handshake" {
		return fail("component handshake: %v %v", hs, err)
	}
	_ = c.SetDeadline(time.Time{})
	return c, d, nil
}
