// Command demo runs a whole Jitsi conference on loopback and tells what the
// focus does: a real Prosody, the real minifocus binary, two fake
// videobridges and a few simulated lib-jitsi-meet participants.
//
//	go run ./cmd/demo                  # runs until Ctrl-C
//	go run ./cmd/demo -exit-after 20s  # stops by itself (CI)
//	go run ./cmd/demo -v               # every minifocus log line too
//
// Lines starting with "==>" are the story; indented "minifocus |" lines come
// from minifocus (warnings and errors only, unless -v).
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"minifocus/testkit"
)

const room = "demo@" + testkit.MUCDomain

func main() {
	exitAfter := flag.Duration("exit-after", 0, "stop by itself this long after the story is told (0: wait for Ctrl-C)")
	verbose := flag.Bool("v", false, "show every minifocus log line (default: only warnings and errors)")
	flag.Parse()

	interrupted, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	d := &demo{verbose: *verbose}
	d.ctx, d.abort = context.WithCancelCause(interrupted)

	err := d.run(*exitAfter)
	d.cleanup()
	if err != nil && interrupted.Err() == nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
	say("Goodbye!")
}

// run sets the stage and tells the story. Each step does nothing once an
// earlier one has failed; run returns the first failure.
func (d *demo) run(exitAfter time.Duration) error {
	// The stage: an XMPP server, the focus, two videobridges.
	d.findRoot()
	d.startProsody()
	d.buildFocus()
	d.startFocus()
	d.startBridge("jvb1", "eu", 0.1)
	d.startBridge("jvb2", "us", 0.3)
	d.waitBridges()

	// The story.
	alice := d.join("alice")
	d.alone(alice)

	bob := d.join("bob")
	d.say("Bob joins: with two members the focus puts each on a bridge and offers each a Jingle session")
	d.sessions(alice, bob)

	seen := d.marks(alice, bob)
	carol := d.join("carol")
	d.say("Carol joins: she gets a session of her own, and the others are told about her audio and video")
	d.sessions(carol)
	d.sourceAdded(carol, "her audio and video", anySource, seen, alice, bob)

	seen = d.marks(alice, carol)
	d.screenshare(bob)
	d.sourceAdded(bob, "his desktop video", desktop, seen, alice, carol)

	seen = d.marks(alice, bob)
	d.leave(carol)
	d.sawLeave(carol, seen, alice, bob)

	carol2 := d.join("carol2")
	d.say("Carol rejoins: her client comes back as a new participant, with a new nick (carol2)")
	d.sessions(carol2)

	d.crashBridge(0)
	d.movedTo("jvb2", alice, bob, carol2)

	d.say("Status page: http://%s/  (its data as JSON: http://%s/debug)", d.httpAddr, d.httpAddr)
	d.waitForEnd(exitAfter)
	return d.err
}

// ---- the cast -------------------------------------------------------------

type demo struct {
	verbose bool
	// ctx ends on Ctrl-C/SIGTERM, or (with the reason as its cause) when
	// minifocus exits by itself.
	ctx   context.Context
	abort context.CancelCauseFunc
	err   error // the first failed step

	root     string // the minifocus module
	tmp      string // minifocus binary and config
	prosody  *testkit.Prosody
	httpAddr string
	focus    *exec.Cmd
	exited   chan struct{} // closed when minifocus has exited
	bridges  []*testkit.FakeBridge
	people   []*testkit.Participant

	logMu    sync.Mutex
	stopping bool     // minifocus is being stopped on purpose
	lastLogs []string // its recent lines, shown if it dies
}

var outMu sync.Mutex

// say prints one line of the story.
func say(format string, args ...any) {
	outMu.Lock()
	defer outMu.Unlock()
	fmt.Printf("==> "+format+"\n", args...)
}

// say tells the story as long as nothing has failed.
func (d *demo) say(format string, args ...any) {
	if d.err == nil {
		say(format, args...)
	}
}

// do runs one step unless an earlier one failed. A step that failed because
// the story was cut short reports why (minifocus died, Ctrl-C).
func (d *demo) do(step func() error) {
	if d.err != nil {
		return
	}
	if err := step(); err != nil {
		if d.ctx.Err() != nil {
			err = context.Cause(d.ctx)
		}
		d.err = err
	}
}

// ---- setting the stage ----------------------------------------------------

// findRoot walks up from the working directory to the minifocus go.mod.
func (d *demo) findRoot() {
	d.do(func() error {
		dir, err := os.Getwd()
		if err != nil {
			return err
		}
		for {
			if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.HasPrefix(string(b), "module minifocus\n") {
				d.root = dir
				return nil
			}
			if filepath.Dir(dir) == dir {
				return errors.New("cannot find the minifocus go.mod above the working directory: run the demo from inside the repository")
			}
			dir = filepath.Dir(dir)
		}
	})
}

func (d *demo) startProsody() {
	d.do(func() error {
		for _, bin := range []string{"prosody", "prosodyctl"} {
			if _, err := exec.LookPath(bin); err != nil {
				return errors.New("prosody is not installed: run `make deps` or apt-get install prosody")
			}
		}
		say("Starting Prosody, the XMPP server everything talks through, in a temporary directory")
		// Ctrl-C in a terminal sends SIGINT to the whole foreground process
		// group, and Prosody would quit before the participants and the
		// focus. It inherits our group, so step into a new group for the
		// launch and back: Prosody stays in a group of its own and stops last.
		if orig := syscall.Getpgrp(); syscall.Setpgid(0, 0) == nil {
			defer syscall.Setpgid(0, orig)
		}
		p, err := testkit.LaunchProsody("")
		if err != nil {
			return fmt.Errorf("starting prosody: %w", err)
		}
		d.prosody = p
		say("Prosody is up on %s with the Jitsi layout (meet.test, conference.meet.test, auth.meet.test) in %s", p.C2SAddr(), p.Dir)
		return nil
	})
}

// buildFocus compiles the real minifocus binary from the repository root.
func (d *demo) buildFocus() {
	d.do(func() error {
		var err error
		if d.tmp, err = os.MkdirTemp("", "minifocus-demo-"); err != nil {
			return err
		}
		say("Building minifocus (go build in %s)", d.root)
		build := exec.CommandContext(d.ctx, goTool(), "build", "-o", filepath.Join(d.tmp, "minifocus"), ".")
		build.Dir = d.root
		if out, err := build.CombinedOutput(); err != nil {
			return fmt.Errorf("go build failed: %v\n%s", err, out)
		}
		return nil
	})
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(os.Getenv("GOROOT"), "bin", "go")
}

// startFocus writes a config pointing at our Prosody and starts minifocus.
func (d *demo) startFocus() {
	d.do(func() error {
		host, port, _ := net.SplitHostPort(d.prosody.C2SAddr())
		d.httpAddr = pickHTTPAddr()
		if d.httpAddr != "127.0.0.1:8888" {
			say("127.0.0.1:8888 is taken, so minifocus's HTTP goes on %s", d.httpAddr)
		}
		config := fmt.Sprintf(`# Generated by cmd/demo.
# Its SIGTERM ends the meetings: no handover to a next process.
state-file = "off"

[xmpp]
server = %q
port = %s
domain = %q
password = %q
# This Prosody has no certificate; plain XMPP is fine on loopback.
tls = "off"

[http]
listen = %q
# A demo on loopback: the status page and /debug share that listener.
private-listen = %q

[log]
level = "info"
`, host, port, testkit.Domain, testkit.FocusPassword, d.httpAddr, d.httpAddr)
		path := filepath.Join(d.tmp, "minifocus.toml")
		if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
			return err
		}

		say("Starting minifocus -config %s", path)
		cmd := exec.Command(filepath.Join(d.tmp, "minifocus"), "-config", path)
		cmd.Env = cleanEnv()
		// A process group of its own, so that Ctrl-C reaches only the demo,
		// which stops minifocus after the participants have left.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
		out, err := cmd.StdoutPipe()
		if err != nil {
			return err
		}
		cmd.Stderr = cmd.Stdout
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("starting minifocus: %w", err)
		}
		d.focus, d.exited = cmd, make(chan struct{})
		go func() {
			d.showLogs(out)
			err := cmd.Wait()
			d.logMu.Lock()
			stopping := d.stopping
			d.logMu.Unlock()
			if !stopping {
				d.abort(fmt.Errorf("minifocus exited unexpectedly (%v); its last lines:\n%s", err, d.recentLogs()))
			}
			close(d.exited)
		}()

		err = d.poll(15*time.Second, "minifocus to log in to Prosody", func() (bool, error) {
			st, err := d.debug()
			return err == nil && st.XMPP == "connected", nil
		})
		if err == nil {
			say("minifocus (pid %d) logged in to Prosody as focus@%s; its HTTP is on %s", cmd.Process.Pid, testkit.AuthDomain, d.httpAddr)
		}
		return err
	})
}

// pickHTTPAddr prefers the documented 127.0.0.1:8888, else any free port.
func pickHTTPAddr() string {
	for _, a := range []string{"127.0.0.1:8888", "127.0.0.1:0"} {
		if l, err := net.Listen("tcp", a); err == nil {
			defer l.Close()
			return l.Addr().String()
		}
	}
	return "127.0.0.1:8888"
}

// cleanEnv drops docker-jitsi-meet variables, which would override the config.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		switch {
		case strings.HasPrefix(kv, "XMPP_"), strings.HasPrefix(kv, "JICOFO_"),
			strings.HasPrefix(kv, "JVB_"), strings.HasPrefix(kv, "MINIFOCUS_"):
		default:
			env = append(env, kv)
		}
	}
	return env
}

// showLogs prints minifocus's log lines indented: warnings, errors and
// anything that is not a log line (such as a config error), or all with -v.
func (d *demo) showLogs(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		level, text := prettyLog(sc.Text())
		line := fmt.Sprintf("    minifocus | %-5s %s", level, text)
		d.logMu.Lock()
		d.lastLogs = append(d.lastLogs, line)
		if len(d.lastLogs) > 20 {
			d.lastLogs = d.lastLogs[1:]
		}
		d.logMu.Unlock()
		if d.verbose || level != "INFO" && level != "DEBUG" {
			outMu.Lock()
			fmt.Println(line)
			outMu.Unlock()
		}
	}
}

func (d *demo) recentLogs() string {
	d.logMu.Lock()
	defer d.logMu.Unlock()
	return strings.Join(d.lastLogs, "\n")
}

// prettyLog turns slog's `time=… level=INFO msg="…" k=v` into ("INFO",
// "… k=v"). Other lines come back whole, with an empty level.
func prettyLog(line string) (level, text string) {
	var msg string
	var attrs []string
	for rest := line; rest != ""; rest = strings.TrimLeft(rest, " ") {
		key, val, ok := strings.Cut(rest, "=")
		if !ok || strings.ContainsAny(key, ` "`) {
			return "", line
		}
		raw := val
		if strings.HasPrefix(val, `"`) {
			q, err := strconv.QuotedPrefix(val)
			if err != nil {
				return "", line
			}
			raw, rest = q, val[len(q):]
			val, _ = strconv.Unquote(q)
		} else {
			val, rest, _ = strings.Cut(val, " ")
			raw = val
		}
		switch key {
		case "time":
		case "level":
			level = val
		case "msg":
			msg = val
		default:
			attrs = append(attrs, key+"="+raw)
		}
	}
	if level == "" {
		return "", line
	}
	return level, strings.TrimSpace(msg + " " + strings.Join(attrs, " "))
}

// startBridge starts one fake videobridge.
func (d *demo) startBridge(nick, region string, stress float64) {
	d.do(func() error {
		say("Starting fake videobridge %s (region %s, stress %.1f): it joins the brewery room and publishes its load", nick, region, stress)
		ctx, cancel := context.WithTimeout(d.ctx, 20*time.Second)
		defer cancel()
		b, err := testkit.StartFakeBridge(ctx, testkit.FakeBridgeConfig{
			Addr: d.prosody.C2SAddr(), Nick: nick, Region: region, Stress: stress,
			RelayID: nick, PresenceInterval: time.Second,
		})
		if err != nil {
			return fmt.Errorf("starting fake bridge %s: %w", nick, err)
		}
		d.bridges = append(d.bridges, b)
		return nil
	})
}

// waitBridges waits until the focus sees every bridge as usable.
func (d *demo) waitBridges() {
	d.do(func() error {
		var seen []string
		err := d.poll(15*time.Second, "minifocus to see the bridges as operational", func() (bool, error) {
			st, err := d.debug()
			if err != nil {
				return false, nil
			}
			seen = seen[:0]
			for _, b := range st.Bridges {
				if b.Operational {
					seen = append(seen, fmt.Sprintf("%s (%s, stress %.2f)", b.Nick, b.Region, b.Stress))
				}
			}
			return len(seen) == len(d.bridges), nil
		})
		if err == nil {
			say("minifocus found the bridges in the brewery room: %s", strings.Join(seen, ", "))
		}
		return err
	})
}

// ---- the story ------------------------------------------------------------

// join brings in one simulated participant; the nick is its endpoint id.
func (d *demo) join(nick string) (p *testkit.Participant) {
	d.do(func() error {
		ctx, cancel := context.WithTimeout(d.ctx, 20*time.Second)
		defer cancel()
		var err error
		p, err = testkit.JoinConference(ctx, testkit.ParticipantConfig{
			Addr: d.prosody.C2SAddr(), Room: room, Nick: nick,
			DisplayName: strings.ToUpper(nick[:1]) + nick[1:],
		})
		if err != nil {
			return fmt.Errorf("%s could not join %s: %w", nick, room, err)
		}
		d.people = append(d.people, p)
		return nil
	})
	return p
}

// alone: one member gets the room (and moderator rights) but no media
// session, as there is nobody to talk to.
func (d *demo) alone(p *testkit.Participant) {
	d.do(func() error {
		err := d.poll(10*time.Second, "the focus to see "+p.Nick(), func() (bool, error) {
			_, ok := d.participant(p.Nick())
			return ok, nil
		})
		if err != nil {
			return err
		}
		select { // give the focus a moment to (not) do anything
		case <-time.After(1500 * time.Millisecond):
		case <-d.ctx.Done():
			return d.ctx.Err()
		}
		info, _ := d.participant(p.Nick())
		moderator := ""
		if info.Moderator {
			moderator = " makes her moderator, but"
		}
		say("Alice joins %s: the focus created the room for her,%s offers no media while she is alone (session %q, %d offers)",
			room, moderator, info.Session, len(p.Offers()))
		return nil
	})
}

// sessions waits until each participant has accepted its offer and the
// focus calls the session active, then says which bridge and why.
func (d *demo) sessions(ps ...*testkit.Participant) {
	d.do(func() error {
		var nicks []string
		for _, p := range ps {
			nicks = append(nicks, p.Nick())
		}
		err := d.poll(20*time.Second, "media sessions for "+strings.Join(nicks, " and "), func() (bool, error) {
			for _, p := range ps {
				if v := p.Violations(); len(v) > 0 {
					return false, fmt.Errorf("%s got something a real client would reject: %v", p.Nick(), v)
				}
				info, ok := d.participant(p.Nick())
				if !p.Accepted() || !ok || info.Session != "active" {
					return false, nil
				}
			}
			return true, nil
		})
		if err != nil {
			return err
		}
		for _, p := range ps {
			info, _ := d.participant(p.Nick())
			say("  %s: on bridge %s (%s); session established (%d sources)",
				p.Nick(), nickOf(info.Bridge), d.bridgeReason(p.Nick()), info.Sources)
		}
		return nil
	})
}

// crashBridge makes a bridge vanish, as when its process dies: it drops out
// of the brewery room and the focus must move everyone on it.
func (d *demo) crashBridge(i int) {
	d.do(func() error {
		b := d.bridges[i]
		say("%s crashes: it vanishes from the brewery room, and the focus moves everyone on it to another bridge", nickOf(b.JID()))
		b.Close()
		return nil
	})
}

// movedTo waits until the participants have new sessions on bridge nick.
func (d *demo) movedTo(nick string, ps ...*testkit.Participant) {
	d.do(func() error {
		start := time.Now()
		err := d.poll(20*time.Second, "participants moved to "+nick, func() (bool, error) {
			for _, p := range ps {
				info, ok := d.participant(p.Nick())
				if !ok || nickOf(info.Bridge) != nick || info.Session != "active" || !p.Accepted() {
					return false, nil
				}
			}
			return true, nil
		})
		if err != nil {
			return err
		}
		for _, p := range ps {
			say("  %s: session-terminate (\"moving\"), then a new session on %s (%d offers so far)", p.Nick(), nick, len(p.Offers()))
		}
		say("  everyone was back on %s %s after the crash", nick, time.Since(start).Round(10*time.Millisecond))
		return nil
	})
}

// marks are the current positions in the participants' event logs.
func (d *demo) marks(ps ...*testkit.Participant) []int {
	var m []int
	d.do(func() error {
		for _, p := range ps {
			m = append(m, p.Mark())
		}
		return nil
	})
	return m
}

// screenshare: the client adds a desktop source with a source-add to the focus.
func (d *demo) screenshare(p *testkit.Participant) {
	d.do(func() error {
		say("Bob starts a screenshare: his client sends the focus a source-add with a desktop video source")
		if err := p.AddScreenshare(d.ctx); err != nil {
			return fmt.Errorf("%s's screenshare: %w", p.Nick(), err)
		}
		return nil
	})
}

func anySource(testkit.RemoteSource) bool { return true }
func desktop(s testkit.RemoteSource) bool { return s.VideoType == "desktop" }

// sourceAdded waits until each of others got, since its mark, a source-add
// from the focus with a source of owner that is like want.
func (d *demo) sourceAdded(owner *testkit.Participant, what string, want func(testkit.RemoteSource) bool, marks []int, others ...*testkit.Participant) {
	d.do(func() error {
		var got []string
		for i, o := range others {
			ctx, cancel := context.WithTimeout(d.ctx, 10*time.Second)
			_, err := o.WaitJingleSince(ctx, marks[i], "source-add", owner.Nick())
			if err == nil {
				// The event is logged as the IQ arrives, its sources a moment later.
				err = o.WaitFor(ctx, func() bool {
					return slices.ContainsFunc(o.RemoteSourceList(), func(s testkit.RemoteSource) bool {
						return s.Owner == owner.Nick() && want(s)
					})
				})
			}
			cancel()
			if err != nil {
				return fmt.Errorf("%s did not get %s's source-add with %s: %w", o.Nick(), owner.Nick(), what, err)
			}
			got = append(got, o.Nick())
		}
		say("  %s received a source-add from the focus with %s", strings.Join(got, " and "), what)
		return nil
	})
}

func (d *demo) leave(p *testkit.Participant) {
	d.do(func() error {
		say("Carol leaves the room")
		return p.Leave()
	})
}

// sawLeave: the others see the occupant leave the room, which is enough for
// them to drop its sources (like Jicofo, the focus sends no source-remove),
// and the focus expires its endpoint on the bridge.
func (d *demo) sawLeave(gone *testkit.Participant, marks []int, others ...*testkit.Participant) {
	d.do(func() error {
		var got []string
		for i, o := range others {
			ctx, cancel := context.WithTimeout(d.ctx, 10*time.Second)
			_, err := o.WaitEvent(ctx, marks[i], func(e testkit.Event) bool {
				return e.Kind == testkit.EventOccupantLeft && e.From == gone.OccupantJID()
			})
			cancel()
			if err != nil {
				return fmt.Errorf("%s did not see %s leave: %w", o.Nick(), gone.Nick(), err)
			}
			got = append(got, o.Nick())
		}
		err := d.poll(10*time.Second, gone.Nick()+"'s endpoint to be expired on the bridge", func() (bool, error) {
			for _, b := range d.bridges {
				for _, c := range b.Conferences() {
					if _, ok := c.Endpoints[gone.Nick()]; ok {
						return false, nil
					}
				}
			}
			return true, nil
		})
		if err != nil {
			return err
		}
		gone.Close()
		say("  %s saw her leave and drop her sources (no source-remove needed); the focus expired her endpoint on the bridge", strings.Join(got, " and "))
		return nil
	})
}

// waitForEnd keeps everything running until Ctrl-C or -exit-after.
func (d *demo) waitForEnd(exitAfter time.Duration) {
	d.do(func() error {
		var timeout <-chan time.Time
		if exitAfter > 0 {
			say("Running for %s more (-exit-after); Ctrl-C stops it earlier", exitAfter)
			timeout = time.After(exitAfter)
		} else {
			say("Press Ctrl-C to stop")
		}
		select {
		case <-d.ctx.Done():
			return d.ctx.Err()
		case <-timeout:
			return nil
		}
	})
}

// ---- reading the focus's GET /debug ---------------------------------------

type debugState struct {
	XMPP        string `json:"xmpp"`
	Conferences []struct {
		Room         string            `json:"room"`
		Participants []participantInfo `json:"participants"`
	} `json:"conferences"`
	Bridges []struct {
		Nick        string  `json:"nick"`
		Region      string  `json:"region"`
		Stress      float64 `json:"stress"`
		Operational bool    `json:"operational"`
	} `json:"bridges"`
	Events []struct {
		Room string `json:"room"`
		Text string `json:"text"`
	} `json:"events"`
}

type participantInfo struct {
	Endpoint  string `json:"endpoint"`
	Moderator bool   `json:"moderator"`
	Bridge    string `json:"bridge"`
	Session   string `json:"session"`
	Sources   int    `json:"sources"`
}

var httpClient = &http.Client{Timeout: 3 * time.Second}

func (d *demo) debug() (*debugState, error) {
	resp, err := httpClient.Get("http://" + d.httpAddr + "/debug")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /debug: %s", resp.Status)
	}
	var st debugState
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, fmt.Errorf("GET /debug: %w", err)
	}
	return &st, nil
}

// participant is what the focus says about one endpoint of the demo room.
func (d *demo) participant(nick string) (participantInfo, bool) {
	st, err := d.debug()
	if err != nil {
		return participantInfo{}, false
	}
	for _, c := range st.Conferences {
		for _, p := range c.Participants {
			if c.Room == room && p.Endpoint == nick {
				return p, true
			}
		}
	}
	return participantInfo{}, false
}

// bridgeReason finds the why of the focus's last "<nick>: bridge <b> (<why>)"
// event.
func (d *demo) bridgeReason(nick string) string {
	st, err := d.debug()
	if err != nil {
		return "reason unknown: " + err.Error()
	}
	why := "reason not in the event log"
	for _, e := range st.Events {
		rest, ok := strings.CutPrefix(e.Text, nick+": bridge ")
		if e.Room != room || !ok {
			continue
		}
		if i := strings.IndexByte(rest, '('); i >= 0 && strings.HasSuffix(rest, ")") {
			why = rest[i+1 : len(rest)-1]
		}
	}
	return why
}

func nickOf(jid string) string { return jid[strings.LastIndexByte(jid, '/')+1:] }

// ---- helpers --------------------------------------------------------------

// poll checks cond every 100 ms until it holds, fails, or time runs out.
func (d *demo) poll(limit time.Duration, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(limit)
	for {
		if ok, err := cond(); ok || err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s", limit, what)
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-d.ctx.Done():
			return d.ctx.Err()
		}
	}
}

// cleanup stops everything in the reverse order of starting: participants
// leave, minifocus gets SIGTERM, bridges close, Prosody stops.
func (d *demo) cleanup() {
	if d.prosody == nil {
		return
	}
	say("Stopping: participants leave, minifocus shuts down, bridges close, Prosody stops")
	for _, p := range d.people {
		p.Leave()
		p.Close()
	}
	if d.focus != nil {
		d.logMu.Lock()
		d.stopping = true
		d.logMu.Unlock()
		d.focus.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.exited:
		case <-time.After(15 * time.Second):
			say("minifocus did not exit within 15s of SIGTERM; killing it")
			d.focus.Process.Kill()
			<-d.exited
		}
	}
	for _, b := range d.bridges {
		b.Close()
	}
	if err := d.prosody.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "error: stopping prosody:", err)
	}
	if d.tmp != "" {
		os.RemoveAll(d.tmp)
	}
}
