package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"minifocus/testkit"
)

// syncBuffer is a log sink tests can read while the focus writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testConfig is a focus config for the test Prosody's layout.
func testConfig(p *testkit.Prosody) Config {
	cfg := DefaultConfig()
	host, port := splitAddr(p.C2SAddr())
	cfg.XMPP.Server = host
	cfg.XMPP.Port = port
	cfg.XMPP.Domain = "meet.test"
	cfg.XMPP.Password = "focuspass"
	cfg.XMPP.PingInterval = dur(time.Second)
	cfg.XMPP.ReplyTimeout = dur(5 * time.Second)
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.HTTP.PrivateListen = "127.0.0.1:0"
	cfg.Bridges.HealthInterval = dur(500 * time.Millisecond)
	cfg.deriveDefaults()
	return cfg
}

func splitAddr(addr string) (string, int) {
	host, p, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(p)
	return host, port
}

type runningMain struct {
	*Main
	logs   *syncBuffer
	cancel context.CancelFunc
	done   chan struct{}
}

// startMain runs a whole focus in-process until the test ends.
func startMain(t *testing.T, cfg Config) *runningMain {
	t.Helper()
	logs := &syncBuffer{}
	var w io.Writer = logs
	if testing.Verbose() {
		w = io.MultiWriter(logs, os.Stderr)
	}
	m := NewMain(cfg, NewLogger(LogConfig{Level: "debug", Format: "text"}, w))
	ctx, cancel := context.WithCancel(context.Background())
	rm := &runningMain{Main: m, logs: logs, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(rm.done)
		if err := m.Run(ctx); err != nil {
			t.Errorf("Main.Run: %v", err)
		}
	}()
	<-m.Ready()
	t.Cleanup(rm.stop)
	return rm
}

func (rm *runningMain) stop() {
	rm.cancel()
	select {
	case <-rm.done:
	case <-time.After(15 * time.Second):
		panic("minifocus did not stop within 15s")
	}
}

func (rm *runningMain) get(t *testing.T, path string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get("http://" + rm.HTTP.Addr() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", d, what)
}

func TestXMPPLoginAndHealth(t *testing.T) {
	p := testkit.StartProsody(t)
	start := time.Now()
	rm := startMain(t, testConfig(p))
	waitFor(t, 5*time.Second, "login", func() bool { up, _ := rm.XMPP.Connected(); return up })
	t.Logf("start to logged in: %s", time.Since(start))
	if got := rm.XMPP.JID(); got != "focus@auth.meet.test/focus" {
		t.Errorf("bound JID %q, want focus@auth.meet.test/focus", got)
	}
	code, body := rm.get(t, "/about/version")
	if code != 200 || body["name"] != "minifocus" || body["os"] != runtime.GOOS {
		t.Errorf("/about/version = %d %v", code, body)
	}
}

func TestXMPPWrongPasswordIsReportedAndRetried(t *testing.T) {
	p := testkit.StartProsody(t)
	cfg := testConfig(p)
	cfg.XMPP.Password = "wrong"
	rm := startMain(t, cfg)
	waitFor(t, 10*time.Second, "two refused logins", func() bool {
		return strings.Count(rm.logs.String(), "login refused: wrong user name or password") >= 2
	})
	if !strings.Contains(rm.logs.String(), "user=focus@auth.meet.test") {
		t.Errorf("log does not name the user:\n%s", rm.logs)
	}
	code, body := rm.get(t, "/about/health")
	if code != http.StatusServiceUnavailable || !strings.Contains(body["reasons"].([]any)[0].(string), "not-authorized") {
		t.Errorf("health = %d %v, want 503 naming not-authorized", code, body)
	}
	if strings.Contains(rm.logs.String(), "goroutine ") {
		t.Error("a stack trace was logged")
	}
}

func TestXMPPReconnectsAfterProsodyRestart(t *testing.T) {
	p := testkit.StartProsody(t)
	rm := startMain(t, testConfig(p))
	waitFor(t, 5*time.Second, "login", func() bool { up, _ := rm.XMPP.Connected(); return up })
	if err := p.Restart(); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	waitFor(t, 10*time.Second, "disconnect noticed", func() bool { _, d := rm.XMPP.Stats(); return d >= 1 })
	waitFor(t, 10*time.Second, "XMPP connected again", func() bool {
		_, body := rm.get(t, "/about/health")
		return body["xmpp"] == "connected"
	})
	t.Logf("connected again %s after Prosody was restarted", time.Since(restarted))
	if c, _ := rm.XMPP.Stats(); c < 2 {
		t.Errorf("connects = %d, want 2", c)
	}
}

// Junk from another client gets an error reply or is dropped; the session
// stays up and keeps answering.
func TestXMPPSurvivesMalformedStanzas(t *testing.T) {
	p := testkit.StartProsody(t)
	rm := startMain(t, testConfig(p))
	waitFor(t, 5*time.Second, "login", func() bool { up, _ := rm.XMPP.Connected(); return up })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl, err := testkit.Dial(ctx, testkit.DialConfig{Addr: p.C2SAddr(), Domain: "meet.test"})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	focus := "focus@auth.meet.test/focus"
	junk := []string{
		`<iq type="set" to="` + focus + `" id="j1"/>`,
		`<iq type="get" to="` + focus + `" id="j2"><nonsense xmlns="urn:example:nope"/></iq>`,
		`<iq type="set" to="` + focus + `" id="j3"><conference xmlns="http://jitsi.org/protocol/focus"/></iq>`,
		`<iq type="bogus" to="` + focus + `" id="j4"><ping xmlns="urn:xmpp:ping"/></iq>`,
		`<iq type="result" to="` + focus + `" id="not-asked"/>`,
		`<message to="` + focus + `"><body>` + strings.Repeat("x", 100000) + `</body></message>`,
		`<presence to="` + focus + `"><x xmlns="` + strings.Repeat("n", 3000) + `"/></presence>`,
		`<iq type="get" to="` + focus + `" id="j5">` + strings.Repeat("<a>", 60) + strings.Repeat("</a>", 60) + `</iq>`,
	}
	for _, j := range junk {
		if err := cl.SendRaw(j); err != nil {
			t.Fatal(err)
		}
	}
	// The focus is still there and answers a ping and disco#info.
	resp, err := cl.SendIQ(ctx, testkit.NewElem("jabber:client", "iq", "type", "get", "to", focus).Add(testkit.NewElem("urn:xmpp:ping", "ping")))
	if err != nil || resp.Attr("type") != "result" {
		t.Fatalf("ping after junk: %v %v", resp, err)
	}
	resp, err = cl.SendIQ(ctx, testkit.NewElem("jabber:client", "iq", "type", "get", "to", focus).Add(testkit.NewElem(nsDiscoInfo, "query")))
	if err != nil || !strings.Contains(resp.String(), "terminate-restart") {
		t.Fatalf("disco#info after junk: %v %v", resp, err)
	}
	if _, d := rm.XMPP.Stats(); d != 0 {
		t.Errorf("the focus lost its session %d times", d)
	}
}

// The binary itself: SIGUSR1 (the stop for good; SIGTERM hands over, see
// handover_test.go) ends the stream cleanly and exits 0.
func TestSIGUSR1LeavesCleanly(t *testing.T) {
	p := testkit.StartProsody(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "minifocus")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	host, port := splitAddr(p.C2SAddr())
	conf := filepath.Join(dir, "config.toml")
	body := "state-file = \"" + filepath.Join(dir, "state.json") + "\"\n[xmpp]\nserver = \"" + host + "\"\nport = " + strconv.Itoa(port) + "\ndomain = \"meet.test\"\npassword = \"focuspass\"\n[http]\nlisten = \"127.0.0.1:0\"\n"
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	cmd := exec.Command(bin, "-config", conf)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "login", func() bool { return strings.Contains(out.String(), "logged in") })
	start := time.Now()
	_ = cmd.Process.Signal(syscall.SIGUSR1)
	errc := make(chan error, 1)
	go func() { errc <- cmd.Wait() }()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, out.String())
		}
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("did not exit within 10s of SIGTERM\n%s", out.String())
	}
	t.Logf("exited %s after SIGUSR1", time.Since(start))
	if !strings.Contains(out.String(), "msg=stopped") {
		t.Errorf("no clean stop in the log:\n%s", out.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "state.json")); !os.IsNotExist(err) {
		t.Errorf("a stop for good left a state file (err %v)", err)
	}
}

// cutProxy is a TCP proxy whose connections a test can cut, to simulate a
// network blip while Prosody keeps running.
type cutProxy struct {
	ln      net.Listener
	target  string
	mu      sync.Mutex
	conns   []net.Conn
	blocked bool
}

// block makes the proxy refuse (close) new connections until unblocked.
func (p *cutProxy) block(b bool) {
	p.mu.Lock()
	p.blocked = b
	p.mu.Unlock()
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			blocked := p.blocked
			p.mu.Unlock()
			if blocked {
				c.Close()
				continue
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(s, c); s.Close() }()
			go func() { _, _ = io.Copy(c, s); c.Close() }()
		}
	}()
	t.Cleanup(func() { ln.Close(); p.cut() })
	return p
}

func (p *cutProxy) addr() string { return p.ln.Addr().String() }

// cut drops every connection at once, like a broken network path.
func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		c.Close()
	}
	p.conns = nil
}

// A short TCP drop is survived with XEP-0198 resumption: same session, the
// OnSession callbacks never see it, stanzas sent during the gap arrive.
func TestXMPPStreamResumptionAfterTCPDrop(t *testing.T) {
	p := testkit.StartProsody(t)
	proxy := newCutProxy(t, p.C2SAddr())
	cfg := testConfig(p)
	cfg.XMPP.Server, cfg.XMPP.Port = splitAddr(proxy.addr())
	rm := startMain(t, cfg)
	var downs, ups int
	var mu sync.Mutex
	rm.XMPP.OnSession(func(up bool) {
		mu.Lock()
		defer mu.Unlock()
		if up {
			ups++
		} else {
			downs++
		}
	})
	waitFor(t, 5*time.Second, "login", func() bool { up, _ := rm.XMPP.Connected(); return up })
	waitFor(t, 5*time.Second, "stream management enabled", func() bool { return rm.XMPP.sm.isEnabled() })

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var got []string
	var gotMu sync.Mutex
	cl, err := testkit.Dial(ctx, testkit.DialConfig{Addr: p.C2SAddr(), Domain: "meet.test", Handler: func(e *testkit.Elem) {
		if e.Local == "message" {
			gotMu.Lock()
			got = append(got, e.Child("", "body").Text)
			gotMu.Unlock()
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	mu.Lock()
	downs, ups = 0, 0 // count only what the drop causes
	mu.Unlock()
	start := time.Now()
	proxy.block(true)
	proxy.cut()
	// Sent while the connection is down: delivered after the resumption.
	waitFor(t, 5*time.Second, "the focus to notice the drop", func() bool { up, _ := rm.XMPP.Connected(); return !up })
	if err := rm.XMPP.Send(NewElement(nsClient, "message", "to", cl.JID()).Add(NewElement(nsClient, "body").SetText("during the gap"))); err != nil {
		t.Fatalf("send during the gap: %v", err)
	}
	time.Sleep(time.Second)
	proxy.block(false)
	waitFor(t, 10*time.Second, "resumption", func() bool { return rm.XMPP.Resumes() == 1 })
	t.Logf("resumed %s after the TCP drop", time.Since(start))
	waitFor(t, 5*time.Second, "the gap message", func() bool {
		gotMu.Lock()
		defer gotMu.Unlock()
		return len(got) == 1 && got[0] == "during the gap"
	})
	if c, _ := rm.XMPP.Stats(); c != 1 {
		t.Errorf("logged in %d times; a resumption must not log in again", c)
	}
	mu.Lock()
	defer mu.Unlock()
	if downs != 0 || ups != 0 {
		t.Errorf("OnSession saw down=%d up=%d; a resumed stream must be invisible", downs, ups)
	}
	// Still the same session: answers IQs.
	resp, err := cl.SendIQ(ctx, testkit.NewElem("jabber:client", "iq", "type", "get", "to", "focus@auth.meet.test/focus").Add(testkit.NewElem("urn:xmpp:ping", "ping")))
	if err != nil || resp.Attr("type") != "result" {
		t.Fatalf("ping after resumption: %v %v", resp, err)
	}
}
