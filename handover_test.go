package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"minifocus/testkit"
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
	p1 := s.join(room)
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
		p, err := testkit.JoinConference(ctx, testkit.ParticipantConfig{Addr: s.prosody.C2SAddr(), Room: room})
		if err != nil {
			t.Errorf("join during the gap: %v", err)
			close(joined)
			return
		}
		t.Cleanup(func() { p.Close() })
		joined <- p
	}()
	time.Sleep(300 * time.Millisecond) // let the gap's stanzas reach Prosody first

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
