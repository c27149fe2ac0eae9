package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"minifocus/testkit"

	"mellium.im/xmpp/jid"
)

// handOverMain stops rm as SIGTERM does (a handover) and waits until it
// has stopped.
func handOverMain(t *testing.T, rm *runningMain) {
	t.Helper()
	rm.RequestHandover()
	rm.stop()
}

// colibriCreates counts the conference creations and endpoint creations a
// bridge was asked for.
func colibriCreates(b *testkit.FakeBridge) (conferences, endpoints int) {
	for _, cm := range b.Requests() {
		if cm.Attr("create") == "true" {
			conferences++
		}
		for _, ep := range cm.All("", "endpoint") {
			if ep.Attr("create") == "true" {
				endpoints++
			}
		}
	}
	return
}

// stanzaLog records what a participant sends, so a test can wait until a
// stanza of the gap has gone out before the next process starts.
type stanzaLog struct{ b syncBuffer }

func (l *stanzaLog) logf(format string, args ...any) {
	fmt.Fprintf(&l.b, format+"\n", args...)
}

// sent reports whether a stanza containing all of parts went out.
func (l *stanzaLog) sent(parts ...string) bool {
	for _, line := range strings.Split(l.b.String(), "\n") {
		if !strings.Contains(line, ": OUT ") {
			continue
		}
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return true
		}
	}
	return false
}

func sawOccupantLeave(p *testkit.Participant, nick string) bool {
	return slices.ContainsFunc(p.Events(), func(e testkit.Event) bool {
		return e.Kind == testkit.EventOccupantLeft && strings.HasSuffix(e.From, "/"+nick)
	})
}

func sawFocusLeave(p *testkit.Participant) bool {
	return slices.ContainsFunc(p.Events(), func(e testkit.Event) bool { return e.Kind == testkit.EventFocusLeft })
}

// The core path: the focus restarts mid-conference (in-process, twice).
// Nobody sees it leave, no session is terminated or initiated again, the
// bridge gets no new allocation, and a join, a leave and a source-add
// during the gap are all handled by the next process.
func TestHandoverRestartMidConference(t *testing.T) {
	stateFile := filepath.Join(t.TempDir(), "state.json")
	s := startStack(t, 1, func(c *Config, _ *testkit.Prosody) { c.StateFile = stateFile })
	room := "handover@conference.meet.test"
	var log1, log4 stanzaLog
	p1 := s.join(room, func(c *testkit.ParticipantConfig) { c.Logf = log1.logf })
	p2 := s.join(room)
	p3 := s.join(room)
	s.wait("sessions", func() bool {
		return p1.Accepted() && p2.Accepted() && p3.Accepted() && knowsExactly(p1, p2, p3) && knowsExactly(p3, p1, p2)
	})
	s.wait("stream management on", func() bool { return s.focus.XMPP.resumable() })
	b := s.bridges[0]
	confsBefore, epsBefore := colibriCreates(b)
	if confsBefore != 1 || epsBefore != 3 {
		t.Fatalf("before the restart: %d conference and %d endpoint creations, want 1 and 3", confsBefore, epsBefore)
	}

	// First restart, with things happening in the gap.
	handOverMain(t, s.focus)
	if _, err := os.Stat(stateFile); err != nil {
		t.Fatalf("no state file after the handover: %v", err)
	}
	if fi, _ := os.Stat(stateFile); fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v, want 0600", fi.Mode().Perm())
	}
	ctx, cancel := context.WithTimeout(s.ctx, 20*time.Second)
	defer cancel()
	shareErr := make(chan error, 1)
	go func() { shareErr <- p1.AddScreenshare(ctx) }() // answered by the next process
	if err := p2.Leave(); err != nil {
		t.Fatal(err)
	}
	joined := make(chan *testkit.Participant, 1)
	go func() {
		// A conference request in the gap: Prosody keeps it for the next process.
		p, err := testkit.JoinConference(ctx, testkit.ParticipantConfig{Addr: s.prosody.C2SAddr(), Room: room, Logf: log4.logf})
		if err != nil {
			t.Errorf("join during the gap: %v", err)
			close(joined)
			return
		}
		t.Cleanup(func() { p.Close() })
		joined <- p
	}()
	// The gap's stanzas go to Prosody before the next process starts.
	s.wait("the gap's stanzas sent", func() bool {
		return log1.sent(`action='source-add'`) && log4.sent("<conference ") && sawOccupantLeave(p1, p2.Nick())
	})

	s.focus = startMain(t, s.focus.Config)
	if err := <-shareErr; err != nil {
		t.Fatalf("source-add during the gap: %v", err)
	}
	p4 := <-joined
	if p4 == nil {
		t.FailNow()
	}
	if _, err := os.Stat(stateFile); !os.IsNotExist(err) {
		t.Errorf("the state file is still there after the restore (err %v)", err)
	}
	if got := s.focus.XMPP.Resumes(); got != 1 {
		t.Errorf("the next process resumed %d times, want 1", got)
	}
	s.wait("p4 in the same conference and everyone told", func() bool {
		// p4 is not told about p2 (gone); the others keep what they had
		// of p2 (a client drops a leaver's sources itself) and learn p4's.
		return p4.Accepted() && knowsExactly(p4, p1, p3) &&
			slices.Contains(owners(p1), p4.Nick()) && slices.Contains(owners(p3), p4.Nick())
	})
	s.wait("p1's screenshare reached p3 and p4", func() bool {
		return len(p3.RemoteSources()[p1.Nick()]) == 5 && len(p4.RemoteSources()[p1.Nick()]) == 5
	})
	s.wait("p2's endpoint expired on the bridge", func() bool {
		_, ok := s.bridgeEndpoints()[p2.Nick()]
		return !ok && len(s.bridgeEndpoints()) == 3
	})
	if c, e := colibriCreates(b); c != 1 || e != 4 {
		t.Errorf("after the restart: %d conference and %d endpoint creations, want 1 and 4 (only p4's)", c, e)
	}
	checks := b.HealthChecks()
	s.wait("health checks continue", func() bool { return b.HealthChecks() > checks })

	// Second restart: the state of the restored process hands over too.
	handOverMain(t, s.focus)
	s.focus = startMain(t, s.focus.Config)
	s.wait("second resumption", func() bool { return s.focus.XMPP.Resumes() == 1 })
	p5 := s.join(room)
	s.wait("p5 joins after the second restart", func() bool {
		return p5.Accepted() && knowsExactly(p5, p1, p3, p4) &&
			slices.Contains(owners(p1), p5.Nick()) && slices.Contains(owners(p4), p5.Nick())
	})
	if c, e := colibriCreates(b); c != 1 || e != 5 {
		t.Errorf("after the second restart: %d conference and %d endpoint creations, want 1 and 5", c, e)
	}
	for _, p := range []*testkit.Participant{p1, p3, p4} {
		if sawFocusLeave(p) {
			t.Errorf("%s saw the focus leave", p.Nick())
		}
		if n := len(p.Received("session-terminate")); n != 0 {
			t.Errorf("%s got %d session-terminate", p.Nick(), n)
		}
		if n := len(p.Offers()); n != 1 {
			t.Errorf("%s got %d session-initiate, want 1", p.Nick(), n)
		}
	}
	if sawFocusLeave(p2) {
		t.Error("p2 saw the focus leave before leaving itself")
	}
	if strings.Contains(s.focus.logs.String(), "panic") {
		t.Error("a handler panicked")
	}
}

// writeTestState writes a state file as a handover would.
func writeTestState(t *testing.T, path string, st *HandoverState) {
	t.Helper()
	if err := writeHandoverFile(path, st); err != nil {
		t.Fatal(err)
	}
}

func validTestState(now time.Time) *HandoverState {
	return &HandoverState{
		Version: handoverVersion, Written: now,
		Stream: streamState{ID: "abc", JID: "focus@auth.meet.test/focus", MaxSeconds: 60, In: 7, Acked: 3,
			Unacked: []string{`<presence xmlns="jabber:client"/>`}, LostAt: now},
	}
}

// The state file is read once, and only when it can be used: a missing,
// stale, corrupt or incompatible file is refused with a reason (the caller
// logs it and starts fresh), and is gone afterwards either way.
func TestHandoverFileFallbacks(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	path := filepath.Join(dir, "sub", "state.json")

	if _, err := takeHandoverFile(path, now); err != errNoStateFile {
		t.Errorf("missing file: err %v, want errNoStateFile", err)
	}

	writeTestState(t, path, validTestState(now))
	st, err := takeHandoverFile(path, now.Add(time.Second))
	if err != nil {
		t.Fatalf("valid file refused: %v", err)
	}
	if st.Stream.ID != "abc" || st.Stream.In != 7 || len(st.Stream.Unacked) != 1 {
		t.Errorf("stream state not read back: %+v", st.Stream)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Error("the file was not consumed")
	}
	if _, err := takeHandoverFile(path, now); err != errNoStateFile {
		t.Errorf("second read: err %v, want errNoStateFile (never used twice)", err)
	}

	cases := []struct {
		name  string
		write func()
		want  string
	}{
		{"stale", func() { writeTestState(t, path, validTestState(now.Add(-time.Minute))) }, "stale state file"},
		{"nearly stale", func() { writeTestState(t, path, validTestState(now.Add(-59*time.Second))) }, "stale state file"},
		{"corrupt", func() { os.WriteFile(path, []byte(`{"version":1,"stream":`), 0o600) }, "corrupt state file"},
		{"garbage", func() { os.WriteFile(path, []byte("\x00\x01binary"), 0o600) }, "corrupt state file"},
		{"no stream", func() {
			st := validTestState(now)
			st.Stream = streamState{}
			writeTestState(t, path, st)
		}, "no resumable stream"},
		{"incompatible", func() {
			st := validTestState(now)
			st.Version = handoverVersion + 1
			writeTestState(t, path, st)
		}, fmt.Sprintf("format version %d,", handoverVersion+1)},
	}
	for _, c := range cases {
		c.write()
		_, err := takeHandoverFile(path, now)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want one containing %q", c.name, err, c.want)
		}
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Errorf("%s: the refused file is still there", c.name)
		}
	}
}

// The file is private and replaced atomically: no temporary file is left.
func TestHandoverFileWrittenAtomically(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	os.WriteFile(path, []byte("old"), 0o644)
	writeTestState(t, path, validTestState(time.Now()))
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("%d files in the directory, want only the state file", len(entries))
	}
}

func TestStateFileLocation(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	if got := resolveStateFile("", env(map[string]string{"STATE_DIRECTORY": "/var/lib/minifocus:/other"})); got != "/var/lib/minifocus/state.json" {
		t.Errorf("systemd: %q", got)
	}
	if got := resolveStateFile("/srv/x.json", env(nil)); got != "/srv/x.json" {
		t.Errorf("configured: %q", got)
	}
	if got := resolveStateFile("off", env(nil)); got != "" {
		t.Errorf("off: %q", got)
	}
	if got := resolveStateFile("", env(nil)); got != "/config/minifocus-state.json" && got != "/var/lib/minifocus/state.json" {
		t.Errorf("default: %q", got)
	}
}

// A state file that cannot be used is a fresh start, logged in one line.
func TestHandoverCorruptFileFreshStart(t *testing.T) {
	stateFile := filepath.Join(t.TempDir(), "state.json")
	os.WriteFile(stateFile, []byte("{not json"), 0o600)
	s := startStack(t, 1, func(c *Config, _ *testkit.Prosody) { c.StateFile = stateFile })
	if !strings.Contains(s.focus.logs.String(), `msg="handover state file not used: fresh start"`) {
		t.Error("no log line for the refused state file")
	}
	if c, _ := s.focus.XMPP.Stats(); c != 1 || s.focus.XMPP.Resumes() != 0 {
		t.Errorf("connects %d, resumes %d: want a fresh login", c, s.focus.XMPP.Resumes())
	}
	room := "corrupt@conference.meet.test"
	p1 := s.join(room)
	p2 := s.join(room)
	s.wait("a conference works", func() bool { return p1.Accepted() && p2.Accepted() && knowsExactly(p1, p2) })
}

// Prosody restarted during the gap: the resumption is refused, the restored
// conferences end, and the focus is
// back as after a fresh start; clients that rejoin get a new conference.
func TestHandoverResumptionRefused(t *testing.T) {
	stateFile := filepath.Join(t.TempDir(), "state.json")
	s := startStack(t, 1, func(c *Config, _ *testkit.Prosody) { c.StateFile = stateFile })
	room := "refused@conference.meet.test"
	p1 := s.join(room)
	p2 := s.join(room)
	s.wait("sessions", func() bool { return p1.Accepted() && p2.Accepted() })
	s.wait("stream management on", func() bool { return s.focus.XMPP.resumable() })
	handOverMain(t, s.focus)
	p1.Close()
	p2.Close()
	if err := s.prosody.Restart(); err != nil {
		t.Fatal(err)
	}
	s.focus = startMain(t, s.focus.Config)
	s.wait("logged in afresh", func() bool {
		c, _ := s.focus.XMPP.Stats()
		up, _ := s.focus.XMPP.Connected()
		return up && c == 1 && s.focus.Bridges.OperationalCount() == 1
	})
	if s.focus.XMPP.Resumes() != 0 {
		t.Error("resumed a stream Prosody cannot have kept")
	}
	if !strings.Contains(s.focus.logs.String(), "handover: Prosody did not resume the previous process's stream") {
		t.Error("no log line for the refused resumption")
	}
	s.wait("the restored conference ended", func() bool { return s.focus.Focus.lookup(room) == nil })
	q1 := s.join(room)
	q2 := s.join(room)
	s.wait("a new conference", func() bool { return q1.Accepted() && q2.Accepted() && knowsExactly(q1, q2) })
}

// A conference whose saved state does not make sense is not half restored:
// the focus leaves its room (its clients start again) and the other
// conferences carry on.
func TestHandoverUnrestorableConferenceLeavesItsRoom(t *testing.T) {
	stateFile := filepath.Join(t.TempDir(), "state.json")
	s := startStack(t, 1, func(c *Config, _ *testkit.Prosody) { c.StateFile = stateFile })
	bad, good := "bad@conference.meet.test", "good@conference.meet.test"
	b1, b2 := s.join(bad), s.join(bad)
	g1, g2 := s.join(good), s.join(good)
	s.wait("sessions", func() bool { return b1.Accepted() && b2.Accepted() && g1.Accepted() && g2.Accepted() })
	s.wait("stream management on", func() bool { return s.focus.XMPP.resumable() })
	handOverMain(t, s.focus)
	st, err := takeHandoverFile(stateFile, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for i := range st.Conferences {
		if st.Conferences[i].Room == bad {
			st.Conferences[i].Members[0].Occupant = "elsewhere@conference.meet.test/x" // not of this room
		}
	}
	writeTestState(t, stateFile, st)
	s.focus = startMain(t, s.focus.Config)
	for _, p := range []*testkit.Participant{b1, b2} {
		ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
		if err := p.WaitFor(ctx, func() bool { return sawFocusLeave(p) }); err != nil {
			t.Errorf("%s did not see the focus leave the unrestorable room", p.Nick())
		}
		cancel()
	}
	if !strings.Contains(s.focus.logs.String(), `msg="handover: conference not restored; leaving its room" room=bad@conference.meet.test`) {
		t.Error("no log line for the unrestorable conference")
	}
	s.wait("its bridge conference expired", func() bool { return len(s.bridges[0].Conferences()) == 1 })
	g3 := s.join(good)
	s.wait("the good conference carries on", func() bool {
		return g3.Accepted() && knowsExactly(g3, g1, g2) && slices.Contains(owners(g1), g3.Nick())
	})
	for _, p := range []*testkit.Participant{g1, g2} {
		if sawFocusLeave(p) || len(p.Offers()) != 1 {
			t.Errorf("%s noticed the restart", p.Nick())
		}
	}
}

// startBinary runs the built minifocus with conf; its output goes to out.
func startBinary(t *testing.T, bin, conf string, out *syncBuffer) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, "-config", conf)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
	return cmd
}

func waitExit(t *testing.T, cmd *exec.Cmd, out *syncBuffer) {
	t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- cmd.Wait() }()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, out.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("did not exit within 10s\n%s", out.String())
	}
}

// The real binary: SIGTERM, then a new process. The participants notice
// nothing; a join and a source-add during the gap are handled. SIGUSR1 then
// ends the meeting for good. The gap (SIGTERM to the new process serving the
// resumed stream) is printed.
func TestHandoverBinarySIGTERM(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	p := testkit.StartProsody(t)
	s := &stack{t: t, prosody: p, ctx: ctx}
	b := s.addBridge("jvb1", "")
	dir := t.TempDir()
	bin := filepath.Join(dir, "minifocus")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	host, port := splitAddr(p.C2SAddr())
	state := filepath.Join(dir, "state", "minifocus-state.json")
	conf := filepath.Join(dir, "config.toml")
	body := "state-file = \"" + state + "\"\n[xmpp]\nserver = \"" + host + "\"\nport = " + strconv.Itoa(port) +
		"\ndomain = \"meet.test\"\npassword = \"focuspass\"\nping-interval = \"1s\"\n[http]\nlisten = \"127.0.0.1:0\"\n[log]\nlevel = \"debug\"\n"
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	var out1 syncBuffer
	first := startBinary(t, bin, conf, &out1)
	waitFor(t, 10*time.Second, "first process logged in", func() bool { return strings.Contains(out1.String(), "logged in") })
	room := "binary@conference.meet.test"
	var log1, log3 stanzaLog
	p1 := s.join(room, func(c *testkit.ParticipantConfig) { c.Logf = log1.logf })
	p2 := s.join(room)
	s.wait("sessions", func() bool { return p1.Accepted() && p2.Accepted() && knowsExactly(p1, p2) && knowsExactly(p2, p1) })
	s.wait("stream management on", func() bool { return strings.Contains(out1.String(), `msg="stream management enabled"`) })

	sigterm := time.Now()
	_ = first.Process.Signal(syscall.SIGTERM)
	waitExit(t, first, &out1)
	exited := time.Since(sigterm)
	if !strings.Contains(out1.String(), `msg="handed over: state written for the next process"`) {
		t.Fatalf("no handover:\n%s", out1.String())
	}
	gctx, gcancel := context.WithTimeout(ctx, 20*time.Second)
	defer gcancel()
	shareErr := make(chan error, 1)
	go func() { shareErr <- p1.AddScreenshare(gctx) }()
	joined := make(chan *testkit.Participant, 1)
	go func() {
		p, err := testkit.JoinConference(gctx, testkit.ParticipantConfig{Addr: p.C2SAddr(), Room: room, Logf: log3.logf})
		if err != nil {
			t.Errorf("join during the gap: %v", err)
			close(joined)
			return
		}
		t.Cleanup(func() { p.Close() })
		joined <- p
	}()
	s.wait("the gap's stanzas sent", func() bool { return log1.sent(`action='source-add'`) && log3.sent("<conference ") })
	var out2 syncBuffer
	started := time.Now()
	second := startBinary(t, bin, conf, &out2)
	waitFor(t, 10*time.Second, "the next process resumed the stream", func() bool {
		return strings.Contains(out2.String(), `msg="stream resumed"`)
	})
	t.Logf("handover gap, SIGTERM to the next process serving the resumed stream: %s (SIGTERM to exit %s, start to resumed %s)",
		time.Since(sigterm), exited, time.Since(started))
	if err := <-shareErr; err != nil {
		t.Fatalf("source-add during the gap: %v", err)
	}
	p3 := <-joined
	if p3 == nil {
		t.FailNow()
	}
	s.wait("p3 joined the same conference", func() bool {
		return p3.Accepted() && knowsExactly(p3, p1, p2) && slices.Contains(owners(p1), p3.Nick()) &&
			len(p2.RemoteSources()[p1.Nick()]) == 5 && len(p3.RemoteSources()[p1.Nick()]) == 5
	})
	if c, e := colibriCreates(b); c != 1 || e != 3 {
		t.Errorf("%d conference and %d endpoint creations, want 1 and 3", c, e)
	}
	for _, p := range []*testkit.Participant{p1, p2} {
		if sawFocusLeave(p) || len(p.Received("session-terminate")) != 0 || len(p.Offers()) != 1 {
			t.Errorf("%s noticed the restart: focus left %v, terminates %d, offers %d", p.Nick(), sawFocusLeave(p),
				len(p.Received("session-terminate")), len(p.Offers()))
		}
	}

	// The stop for good: sessions terminated, the room left, no state file.
	_ = second.Process.Signal(syscall.SIGUSR1)
	waitExit(t, second, &out2)
	for _, p := range []*testkit.Participant{p1, p2, p3} {
		pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
		if err := p.WaitFor(pctx, func() bool { return len(p.Received("session-terminate")) == 1 && sawFocusLeave(p) }); err != nil {
			t.Errorf("%s: no session-terminate and focus leave after SIGUSR1", p.Nick())
		}
		pcancel()
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Errorf("state file after a stop for good (err %v)", err)
	}
}

// BenchmarkHandoverGap measures the in-process handover: from the stop (as
// on SIGTERM) to the next Main serving the resumed stream, with ten
// conferences of three. It reports the gap per restart and how many of the
// ten were restored.
func BenchmarkHandoverGap(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	p := testkit.StartProsody(b)
	cfg := testConfig(p)
	cfg.StateFile = filepath.Join(b.TempDir(), "state.json")
	br, err := testkit.StartFakeBridge(ctx, testkit.FakeBridgeConfig{Addr: p.C2SAddr(), Nick: "jvb1", RelayID: "jvb1", PresenceInterval: 200 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	defer br.Close()
	type run struct {
		m      *Main
		cancel context.CancelFunc
		done   chan struct{}
	}
	start := func() *run {
		r := &run{m: NewMain(cfg, NewLogger(LogConfig{Level: "error"}, io.Discard)), done: make(chan struct{})}
		var rctx context.Context
		rctx, r.cancel = context.WithCancel(ctx)
		go func() { defer close(r.done); _ = r.m.Run(rctx) }()
		return r
	}
	until := func(what string, cond func() bool) {
		for !cond() {
			if ctx.Err() != nil {
				b.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	r := start()
	until("login and bridge", func() bool { up, _ := r.m.XMPP.Connected(); return up && r.m.Bridges.OperationalCount() == 1 })
	const conferences, size = 10, 3
	var ps []*testkit.Participant
	for c := 0; c < conferences; c++ {
		for i := 0; i < size; i++ {
			pp, err := testkit.JoinConference(ctx, testkit.ParticipantConfig{Addr: p.C2SAddr(), Room: fmt.Sprintf("bench-handover-%d@conference.meet.test", c)})
			if err != nil {
				b.Fatal(err)
			}
			defer pp.Close()
			ps = append(ps, pp)
		}
	}
	until("sessions", func() bool {
		for _, pp := range ps {
			if !pp.Accepted() {
				return false
			}
		}
		return r.m.XMPP.resumable()
	})
	restored := 0
	var total time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		r.m.RequestHandover()
		r.cancel()
		<-r.done
		r = start()
		until("resumed", func() bool { return r.m.XMPP.Resumes() == 1 })
		total += time.Since(t0)
		restored += len(r.m.Focus.all())
		until("stream management on", r.m.XMPP.resumable)
	}
	b.StopTimer()
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "gap-ms/op")
	b.ReportMetric(float64(restored)/float64(b.N), "conferences-restored/op")
	r.cancel()
	<-r.done
	for _, pp := range ps {
		if sawFocusLeave(pp) || len(pp.Offers()) != 1 {
			b.Errorf("%s noticed the restarts", pp.Nick())
		}
	}
}

// The doctor says whether a restart can hand the meetings over, and how to
// make it possible when it cannot.
func TestDoctorHandoverCheck(t *testing.T) {
	cases := []struct {
		name    string
		opts    []testkit.Option
		tag     string
		want    string
		wantFix string
	}{
		{"smacks", nil, "ok", "Prosody keeps a lost session 1m0s (XEP-0198): a restart (SIGTERM) hands the meetings over", ""},
		{"no smacks", []testkit.Option{testkit.WithoutModules("smacks")}, "warn", "Prosody does not offer stream management (XEP-0198): a restart of the focus ends every meeting", "smacks_hibernation_time = 60"},
		{"short hibernation", []testkit.Option{testkit.WithSmacksHibernation(3 * time.Second)}, "warn", "Prosody keeps a lost session only 3s", "smacks_hibernation_time = 60"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := testkit.StartProsody(t, c.opts...)
			_, out := runDoctorTest(t, prosodyTOML(p).write(t), "")
			line, fixes, ok := checkLine(out, c.tag, "handover")
			if !ok || !strings.Contains(line, c.want) {
				t.Fatalf("no %s handover line with %q:\n%s", c.tag, c.want, out)
			}
			if c.wantFix != "" && !slices.ContainsFunc(fixes, func(f string) bool { return strings.Contains(f, c.wantFix) }) {
				t.Errorf("no fix naming %q: %v", c.wantFix, fixes)
			}
		})
	}
}

// A state file that cannot be written is found out before anything is
// closed: SIGTERM then ends the meetings cleanly, as a stop for good does.
func TestHandoverImpossibleUnwritableStateFile(t *testing.T) {
	notADir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notADir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s := startStack(t, 1, func(c *Config, _ *testkit.Prosody) { c.StateFile = filepath.Join(notADir, "state.json") })
	room := "unwritable@conference.meet.test"
	p1, p2 := s.join(room), s.join(room)
	s.wait("sessions", func() bool { return p1.Accepted() && p2.Accepted() && s.focus.XMPP.resumable() })
	handOverMain(t, s.focus)
	if !strings.Contains(s.focus.logs.String(), "handover impossible: the state file cannot be written") {
		t.Error("no log line for the unwritable state file")
	}
	for _, p := range []*testkit.Participant{p1, p2} {
		pctx, pcancel := context.WithTimeout(s.ctx, 5*time.Second)
		if err := p.WaitFor(pctx, func() bool { return len(p.Received("session-terminate")) == 1 && sawFocusLeave(p) }); err != nil {
			t.Errorf("%s: the meeting did not end cleanly", p.Nick())
		}
		pcancel()
	}
}

// Without stream management in Prosody there is nothing to resume: SIGTERM
// ends the meetings cleanly, as a stop for good does, and writes no file.
func TestHandoverImpossibleWithoutSmacks(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p := testkit.StartProsody(t, testkit.WithoutModules("smacks"))
	s := &stack{t: t, prosody: p, ctx: ctx}
	cfg := testConfig(p)
	cfg.StateFile = filepath.Join(t.TempDir(), "state.json")
	s.focus = startMain(t, cfg)
	s.addBridge("jvb1", "")
	s.wait("bridge", func() bool { return s.focus.Bridges.OperationalCount() == 1 })
	room := "nosmacks@conference.meet.test"
	p1, p2 := s.join(room), s.join(room)
	s.wait("sessions", func() bool { return p1.Accepted() && p2.Accepted() })
	handOverMain(t, s.focus)
	if !strings.Contains(s.focus.logs.String(), "handover impossible: the XMPP stream is not resumable") {
		t.Error("no log line for the impossible handover")
	}
	for _, p := range []*testkit.Participant{p1, p2} {
		pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
		if err := p.WaitFor(pctx, func() bool { return len(p.Received("session-terminate")) == 1 && sawFocusLeave(p) }); err != nil {
			t.Errorf("%s: the meeting did not end cleanly", p.Nick())
		}
		pcancel()
	}
	if _, err := os.Stat(cfg.StateFile); !os.IsNotExist(err) {
		t.Errorf("state file written (err %v)", err)
	}
}

// Jingle and timer state crosses the restart: a session-initiate answered
// during the gap is accepted by the next process (its sid and pending state
// were handed over) and the sources flow; a lone participant's timeout,
// running at the handover, still ends its session afterwards.
func TestHandoverPendingSessionAndTimers(t *testing.T) {
	stateFile := filepath.Join(t.TempDir(), "state.json")
	s := startStack(t, 1, func(c *Config, _ *testkit.Prosody) { c.StateFile = stateFile })
	room := "pending@conference.meet.test"
	var log2 stanzaLog
	p1 := s.join(room)
	p2 := s.join(room, func(c *testkit.ParticipantConfig) { c.ManualAccept = true; c.Logf = log2.logf })
	s.wait("p1 in session, p2 offered", func() bool { return p1.Accepted() && len(p2.Offers()) == 1 })
	s.wait("stream management on", func() bool { return s.focus.XMPP.resumable() })
	handOverMain(t, s.focus)
	ctx, cancel := context.WithTimeout(s.ctx, 20*time.Second)
	defer cancel()
	accepted := make(chan error, 1)
	go func() { accepted <- p2.Accept(ctx) }() // answered by the next process
	s.wait("session-accept sent", func() bool { return log2.sent(`action='session-accept'`) })
	s.focus = startMain(t, s.focus.Config)
	if err := <-accepted; err != nil {
		t.Fatalf("session-accept during the gap: %v", err)
	}
	s.wait("sources exchanged", func() bool { return p2.Accepted() && knowsExactly(p1, p2) && knowsExactly(p2, p1) })

	// p2 leaves: p1 is alone and its timer runs; the restart keeps it.
	if err := p2.Leave(); err != nil {
		t.Fatal(err)
	}
	s.wait("p2 gone", func() bool {
		snap := s.focus.Focus.Snapshots(s.ctx)
		return len(snap) == 1 && len(snap[0].Participants) == 1
	})
	handOverMain(t, s.focus)
	s.focus = startMain(t, s.focus.Config)
	s.wait("p1's session terminated as expired after the restart", func() bool {
		for _, st := range p1.Received("session-terminate") {
			if strings.Contains(st.String(), "<expired") {
				return true
			}
		}
		return false
	})
	if sawFocusLeave(p1) {
		t.Error("p1 saw the focus leave")
	}
}

// With the bridges on a Prosody of their own (xmpp.service), the client
// stream is handed over and the bridges' connection logs in afresh before
// the replayed stanzas are handled: a join during the gap is allocated on
// the same bridge conference.
func TestHandoverWithServiceConnection(t *testing.T) {
	stateFile := filepath.Join(t.TempDir(), "state.json")
	jvbProsody := testkit.StartProsody(t)
	host, port := splitAddr(jvbProsody.C2SAddr())
	s := startStack(t, 0, func(c *Config, _ *testkit.Prosody) {
		c.StateFile = stateFile
		c.XMPP.Service = ServiceXMPPConfig{Enabled: true, Server: host, Port: port, AuthDomain: "auth.meet.test"}
	})
	b, err := testkit.StartFakeBridge(s.ctx, testkit.FakeBridgeConfig{Addr: jvbProsody.C2SAddr(), Nick: "jvb1", RelayID: "jvb1", PresenceInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	s.wait("bridge", func() bool { return s.focus.Bridges.OperationalCount() == 1 })
	room := "split-handover@conference.meet.test"
	p1, p2 := s.join(room), s.join(room)
	s.wait("sessions", func() bool { return p1.Accepted() && p2.Accepted() && s.focus.XMPP.resumable() })
	handOverMain(t, s.focus)
	ctx, cancel := context.WithTimeout(s.ctx, 20*time.Second)
	defer cancel()
	joined := make(chan *testkit.Participant, 1)
	var log3 stanzaLog
	go func() {
		p, err := testkit.JoinConference(ctx, testkit.ParticipantConfig{Addr: s.prosody.C2SAddr(), Room: room, Logf: log3.logf})
		if err != nil {
			t.Errorf("join during the gap: %v", err)
			close(joined)
			return
		}
		t.Cleanup(func() { p.Close() })
		joined <- p
	}()
	s.wait("conference request sent in the gap", func() bool { return log3.sent("<conference ") })
	s.focus = startMain(t, s.focus.Config)
	p3 := <-joined
	if p3 == nil {
		t.FailNow()
	}
	s.wait("p3 on the same bridge conference", func() bool {
		return p3.Accepted() && knowsExactly(p3, p1, p2) && slices.Contains(owners(p1), p3.Nick())
	})
	if c, e := colibriCreates(b); c != 1 || e != 3 {
		t.Errorf("%d conference and %d endpoint creations, want 1 and 3", c, e)
	}
	for _, p := range []*testkit.Participant{p1, p2} {
		if sawFocusLeave(p) || len(p.Offers()) != 1 {
			t.Errorf("%s noticed the restart", p.Nick())
		}
	}
}

// A conference request for a new room that arrives while the handover
// drains is not started in the stopping process (it could not finish): it is
// kept in the state file and answered by the next process.
func TestHandoverDefersNewConferences(t *testing.T) {
	stateFile := filepath.Join(t.TempDir(), "state.json")
	s := startStack(t, 1, func(c *Config, _ *testkit.Prosody) { c.StateFile = stateFile })
	old := "old@conference.meet.test"
	p1, p2 := s.join(old), s.join(old)
	s.wait("sessions", func() bool { return p1.Accepted() && p2.Accepted() && s.focus.XMPP.resumable() })
	// An IQ the bridge will not answer keeps the drain going for its second.
	b := s.bridges[0]
	b.DropResponses(true)
	wait := s.focus.XMPP.StartIQ(ColibriIQ(b.JID(), BuildConferenceModify(ColibriRequest{MeetingID: "nobody", Expire: true})))
	go func() { _, _ = wait(context.Background()) }()
	prev := s.focus
	done := make(chan struct{})
	go func() { handOverMain(t, prev); close(done) }()
	s.wait("draining", prev.ho.draining.Load)
	ctx, cancel := context.WithTimeout(s.ctx, 20*time.Second)
	defer cancel()
	fresh := "fresh@conference.meet.test"
	joined := make(chan *testkit.Participant, 2)
	for i := 0; i < 2; i++ {
		go func() {
			p, err := testkit.JoinConference(ctx, testkit.ParticipantConfig{Addr: s.prosody.C2SAddr(), Room: fresh})
			if err != nil {
				t.Errorf("join during the drain: %v", err)
				joined <- nil
				return
			}
			t.Cleanup(func() { p.Close() })
			joined <- p
		}()
	}
	<-done
	raw, err := os.ReadFile(stateFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"deferred_requests"`) || !strings.Contains(string(raw), fresh) {
		t.Errorf("the requests during the drain were not kept for the next process")
	}
	if prev.Focus.lookup(fresh) != nil {
		t.Error("the stopping process started the new conference")
	}
	b.DropResponses(false)
	s.focus = startMain(t, s.focus.Config)
	q1, q2 := <-joined, <-joined
	if q1 == nil || q2 == nil {
		t.FailNow()
	}
	s.wait("the new conference runs in the next process", func() bool {
		return q1.Accepted() && q2.Accepted() && knowsExactly(q1, q2) && knowsExactly(q2, q1)
	})
	if sawFocusLeave(p1) || len(p1.Offers()) != 1 {
		t.Error("p1 noticed the restart")
	}
}

// The stream state crosses processes exactly: the h to resume with, the
// server's last acknowledgement, and the stanzas to send again in order
// (unacknowledged ones, then those queued after the connection closed).
func TestHandoverStreamStateRoundTrip(t *testing.T) {
	old := NewXMPPClient(XMPPOptions{})
	j := "focus@auth.meet.test/focus"
	old.sm.mu.Lock()
	old.sm.enabled, old.sm.id, old.sm.max, old.sm.jid = true, "resume-id", 60*time.Second, jid.MustParse(j)
	old.sm.in, old.sm.out, old.sm.acked = 41, 12, 10
	old.sm.unacked = [][]byte{[]byte("<a1/>"), []byte("<a2/>")}
	old.sm.mu.Unlock()
	old.sm.lost(time.Now())
	if !old.sm.queueWhileDown([]byte("<g1/>")) {
		t.Fatal("not queued while down")
	}
	st, ok := old.exportStream()
	if !ok {
		t.Fatal("not exportable")
	}
	next := NewXMPPClient(XMPPOptions{})
	if err := next.adoptStream(st); err != nil {
		t.Fatal(err)
	}
	if !next.sm.canResume() || !next.adopted.Load() {
		t.Fatal("the adopted stream is not resumable")
	}
	next.sm.mu.Lock()
	in, acked, out, id, gotJID := next.sm.in, next.sm.acked, next.sm.out, next.sm.id, next.sm.jid.String()
	next.sm.mu.Unlock()
	if in != 41 || acked != 10 || out != 13 || id != "resume-id" || gotJID != j {
		t.Errorf("in %d acked %d out %d id %q jid %q", in, acked, out, id, gotJID)
	}
	// The server says it handled one more of ours: that one is not resent.
	next.sm.ack(11)
	var q []string
	for _, b := range next.sm.resendQueue() {
		q = append(q, string(b))
	}
	if want := []string{"<a2/>", "<g1/>"}; !slices.Equal(q, want) {
		t.Errorf("resent %v, want %v", q, want)
	}
}

// Odd saved states are refused or restored, never a crash; what is refused
// leaves no trace in the registry.
func TestRestoreConferenceOddStates(t *testing.T) {
	cfg := DefaultConfig()
	cfg.XMPP.Domain, cfg.XMPP.Password = "meet.test", "x"
	cfg.deriveDefaults()
	m := NewMain(cfg, NewLogger(LogConfig{Level: "error"}, io.Discard))
	room := "odd@" + cfg.XMPP.MUCDomain
	member := func(nick string) memberState {
		return memberState{Nick: nick, Occupant: room + "/" + nick, State: "active", SID: "s" + nick, Bridge: "nowhere@x/jvb"}
	}
	cases := []struct {
		name string
		cs   conferenceState
		ok   bool
	}{
		{"not a room of ours", conferenceState{Room: "x@elsewhere.test", Joined: true}, false},
		{"not joined", conferenceState{Room: room}, false},
		{"duplicate member", conferenceState{Room: room, Joined: true, Members: []memberState{member("a"), member("a")}}, false},
		{"empty nick", conferenceState{Room: room, Joined: true, Members: []memberState{member("")}}, false},
		{"clashing sources", conferenceState{Room: room, Joined: true, Members: []memberState{member("a"), member("b")},
			Sources: SourceSet{
				"a": {Sources: []Source{{SSRC: 1, Media: "audio", Owner: "a"}}},
				"b": {Sources: []Source{{SSRC: 1, Media: "audio", Owner: "b"}}},
			}}, false},
		{"bridge session missing, odd state names", conferenceState{Room: room, Joined: true,
			Members: []memberState{member("a"), {Nick: "b", Occupant: room + "/b", State: "weird", Inviting: true}}}, true},
	}
	for _, c := range cases {
		err := m.Focus.safeRestoreConference(c.cs, time.Now())
		if (err == nil) != c.ok {
			t.Errorf("%s: err %v, want ok=%v", c.name, err, c.ok)
		}
		if c.ok {
			conf := m.Focus.lookup(room)
			if conf == nil {
				t.Fatalf("%s: not registered", c.name)
			}
			snap := conf.Snapshot(context.Background())
			if snap == nil || len(snap.Participants) != 2 {
				t.Errorf("%s: snapshot %+v", c.name, snap)
			}
			conf.postWait(event{kind: evStop, reason: "test over"})
			<-conf.done
		} else if m.Focus.lookup(room) != nil {
			t.Errorf("%s: a refused conference is registered", c.name)
		}
	}
}

// A state file of another format version (a downgrade, say) is not used:
// the next process logs in afresh, which ends the hibernated session of the
// previous one (its rooms see the focus leave, so clients start again), and
// conferences work as after any fresh start.
func TestHandoverIncompatibleFileFreshStart(t *testing.T) {
	stateFile := filepath.Join(t.TempDir(), "state.json")
	s := startStack(t, 1, func(c *Config, _ *testkit.Prosody) { c.StateFile = stateFile })
	room := "downgrade@conference.meet.test"
	p1, p2 := s.join(room), s.join(room)
	s.wait("sessions", func() bool { return p1.Accepted() && p2.Accepted() && s.focus.XMPP.resumable() })
	handOverMain(t, s.focus)
	raw, err := os.ReadFile(stateFile)
	if err != nil {
		t.Fatal(err)
	}
	raw = []byte(strings.Replace(string(raw), fmt.Sprintf(`"version":%d,`, handoverVersion), `"version":99,`, 1))
	if err := os.WriteFile(stateFile, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	s.focus = startMain(t, s.focus.Config)
	s.wait("logged in afresh", func() bool { c, _ := s.focus.XMPP.Stats(); return c == 1 })
	if !strings.Contains(s.focus.logs.String(), "state file of format version 99") {
		t.Error("no log line naming the version")
	}
	s.wait("the previous session ended: p1 sees the focus leave", func() bool { return sawFocusLeave(p1) })
	p1.Close()
	p2.Close()
	q1, q2 := s.join(room), s.join(room)
	s.wait("a new conference in the room", func() bool { return q1.Accepted() && q2.Accepted() && knowsExactly(q1, q2) })
}

// Timers resume at their saved deadlines, not a full period later: with an
// hour-long single-participant timeout, a deadline saved as due now ends the
// lone participant's session at once; a source-signaling batch due now is
// flushed.
func TestRestoreConferenceTimerDeadlines(t *testing.T) {
	cfg := DefaultConfig()
	cfg.XMPP.Domain, cfg.XMPP.Password = "meet.test", "x"
	cfg.Conference.SingleParticipantTimeout = dur(time.Hour)
	cfg.deriveDefaults()
	m := NewMain(cfg, NewLogger(LogConfig{Level: "error"}, io.Discard))
	room := "timers@" + cfg.XMPP.MUCDomain
	now := time.Now()
	cs := conferenceState{Room: room, Joined: true, Configured: true,
		Members:         []memberState{{Nick: "a", Occupant: room + "/a", State: "active", SID: "sa"}},
		PendingOwners:   []string{"a"},
		SingleDeadline:  now.Add(50 * time.Millisecond),
		SourceDeadline:  now.Add(-time.Second), // overdue: fires at once
		InitialDeadline: time.Time{},
	}
	if err := m.Focus.safeRestoreConference(cs, now); err != nil {
		t.Fatal(err)
	}
	c := m.Focus.lookup(room)
	defer func() { c.postWait(event{kind: evStop, reason: "test over"}); <-c.done }()
	waitFor(t, 10*time.Second, "the lone session ended at the saved deadline", func() bool {
		s := c.Snapshot(context.Background())
		return s != nil && len(s.Participants) == 1 && s.Participants[0].SID == ""
	})
	flushed := make(chan bool, 1)
	c.postWait(event{kind: evFunc, fn: func() { flushed <- c.sourceTimer == nil && len(c.pendingOwners) == 0 }})
	if !<-flushed {
		t.Error("the overdue source-signaling batch was not flushed")
	}
}

// SIGTERM while the connection to Prosody is down (a network blip): the
// stream can still be resumed, so it is handed over all the same, and the
// next process resumes it once the network is back.
func TestHandoverDuringAnXMPPBlip(t *testing.T) {
	stateFile := filepath.Join(t.TempDir(), "state.json")
	var proxy *cutProxy
	s := startStack(t, 1, func(c *Config, p *testkit.Prosody) {
		c.StateFile = stateFile
		proxy = newCutProxy(t, p.C2SAddr())
		c.XMPP.Server, c.XMPP.Port = splitAddr(proxy.addr())
	})
	room := "blip-handover@conference.meet.test"
	p1, p2 := s.join(room), s.join(room)
	s.wait("sessions", func() bool { return p1.Accepted() && p2.Accepted() && s.focus.XMPP.resumable() })
	proxy.block(true)
	proxy.cut()
	s.wait("connection lost", func() bool { up, _ := s.focus.XMPP.Connected(); return !up })
	handOverMain(t, s.focus)
	if _, err := os.Stat(stateFile); err != nil {
		t.Fatalf("no state file after a handover during the blip: %v\n%s", err, s.focus.logs.String())
	}
	proxy.block(false)
	s.focus = startMain(t, s.focus.Config)
	s.wait("resumed", func() bool { return s.focus.XMPP.Resumes() == 1 })
	p3 := s.join(room)
	s.wait("the conference goes on", func() bool { return p3.Accepted() && knowsExactly(p3, p1, p2) })
	for _, p := range []*testkit.Participant{p1, p2} {
		if sawFocusLeave(p) || len(p.Offers()) != 1 {
			t.Errorf("%s noticed the blip and the restart", p.Nick())
		}
	}
}

// A member that ended its own session (session-terminate without restart)
// is not invited again after a restart: the mark crosses the state file, and
// the restored conference's first evaluation leaves it alone.
func TestRestoreKeepsHungUpMember(t *testing.T) {
	cfg := DefaultConfig()
	cfg.XMPP.Domain, cfg.XMPP.Password = "meet.test", "x"
	cfg.deriveDefaults()
	m := NewMain(cfg, NewLogger(LogConfig{Level: "error"}, io.Discard))
	room := "hungup@" + cfg.XMPP.MUCDomain
	cs := conferenceState{Room: room, Joined: true, Configured: true, Members: []memberState{
		{Nick: "a", Occupant: room + "/a", State: "none", FeaturesKnown: true, HungUp: true},
		{Nick: "b", Occupant: room + "/b", State: "none", FeaturesKnown: true, HungUp: true},
	}}
	raw, err := json.Marshal(cs)
	if err != nil {
		t.Fatal(err)
	}
	var back conferenceState
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	if err := m.Focus.safeRestoreConference(back, time.Now()); err != nil {
		t.Fatal(err)
	}
	c := m.Focus.lookup(room)
	defer func() { c.postWait(event{kind: evStop, reason: "test over"}); <-c.done }()
	got := make(chan string, 1)
	c.postWait(event{kind: evFunc, fn: func() {
		c.evaluate()
		var bad []string
		for _, nick := range []string{"a", "b"} {
			p := c.members[nick]
			if p == nil || !p.hungUp || p.inviting || p.state != sessNone {
				bad = append(bad, nick)
			}
		}
		got <- strings.Join(bad, ",")
	}})
	if bad := <-got; bad != "" {
		t.Errorf("hung-up members re-invited or unmarked after the restore: %s", bad)
	}
}

// What a participant may still cause is handed over too: a restart request
// within the minimum interval of the last one is refused after a restart of
// the focus as it would have been before (the new process does not start
// every participant with a fresh allowance).
func TestHandoverKeepsBudgets(t *testing.T) {
	stateFile := filepath.Join(t.TempDir(), "state.json")
	s := startStack(t, 1, func(c *Config, _ *testkit.Prosody) {
		c.StateFile = stateFile
		c.Conference.RestartMinInterval = dur(time.Minute)
	})
	room := "budget@conference.meet.test"
	p1 := s.join(room)
	p2 := s.join(room)
	s.wait("sessions", func() bool { return p1.Accepted() && p2.Accepted() && knowsExactly(p2, p1) })
	oldSID := p1.SID()
	if err := p1.RequestRestart(s.ctx); err != nil {
		t.Fatal(err)
	}
	s.wait("a new session for p1", func() bool { return p1.SID() != oldSID && p1.Accepted() })
	s.wait("stream management on", func() bool { return s.focus.XMPP.resumable() })
	handOverMain(t, s.focus)
	s.focus = startMain(t, s.focus.Config)
	s.wait("the conference restored", func() bool { return s.focus.Focus.lookup(room) != nil })
	err := p1.RequestRestart(s.ctx)
	if err == nil || !strings.Contains(err.Error(), "resource-constraint") {
		t.Errorf("a restart within the minimum interval after the handover: %v, want resource-constraint", err)
	}
}
