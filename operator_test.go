package main

import (
	"io"
	"minifocus/testkit"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// Operators move participants off a bridge (before maintenance) with
// Jicofo's /move-endpoints API.
func TestMoveEndpointsAPI(t *testing.T) {
	s := startStack(t, 2)
	s.stressJVB2()
	room := "maint@conference.meet.test"
	p1 := s.join(room)
	p2 := s.join(room)
	s.wait("both on jvb1", func() bool {
		return p1.Accepted() && p2.Accepted() && s.bridgeOf(p1) == "jvb1" && s.bridgeOf(p2) == "jvb1"
	})
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + s.focus.HTTP.PrivateAddr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/move-endpoints/move-endpoints"); code != 400 || !strings.Contains(body, "Missing parameter: bridge") {
		t.Errorf("no bridge: %d %s", code, body)
	}
	if code, _ := get("/move-endpoints/move-endpoints?bridge=nope"); code != 500 {
		t.Errorf("unknown bridge: %d", code)
	}
	code, body := get("/move-endpoints/move-endpoint?conference=" + room + "&endpoint=" + p1.Nick())
	if code != 200 || !strings.Contains(body, `"movedEndpoints": 1`) {
		t.Fatalf("move one: %d %s", code, body)
	}
	s.wait("p1 on jvb2 with a new session", func() bool { return s.bridgeOf(p1) == "jvb2" && p1.Accepted() && len(p1.Offers()) == 2 })
	code, body = get("/move-endpoints/move-endpoints?bridge=jvb1&numEndpoints=5")
	if code != 200 || !strings.Contains(body, `"movedEndpoints": 1`) {
		t.Fatalf("move off jvb1: %d %s", code, body)
	}
	s.wait("everyone off jvb1", func() bool {
		return s.bridgeOf(p2) == "jvb2" && p2.Accepted() && endpointsOn(s.bridgeByNick("jvb1")) == 0 && knowsExactly(p1, p2) && knowsExactly(p2, p1)
	})
}

// Load redistribution: a bridge that stays overloaded gives up `endpoints`
// participants to a bridge with room, then is left alone for the timeout.
func TestLoadRedistribution(t *testing.T) {
	s := startStack(t, 1, func(c *Config, _ *testkit.Prosody) {
		c.Bridges.LoadRedistribution = LoadRedistributionConfig{
			Enabled: true, Interval: dur(300 * time.Millisecond), Timeout: dur(time.Hour), StressThreshold: 0.9, Endpoints: 2,
		}
	})
	room := "crowded@conference.meet.test"
	p1, p2, p3 := s.join(room), s.join(room), s.join(room)
	s.wait("three on jvb1", func() bool {
		return p1.Accepted() && p2.Accepted() && p3.Accepted() &&
			s.bridgeOf(p1) == "jvb1" && s.bridgeOf(p2) == "jvb1" && s.bridgeOf(p3) == "jvb1"
	})
	spare := s.addBridge("jvb2", "")
	s.bridges[0].SetStress(0.95)
	onSpare := func() int {
		n := 0
		for _, p := range []*testkit.Participant{p1, p2, p3} {
			if p.Accepted() && s.bridgeOf(p) == "jvb2" {
				n++
			}
		}
		return n
	}
	s.wait("two moved to jvb2", func() bool { return onSpare() == 2 && len(spare.Conferences()) == 1 })
	time.Sleep(time.Second) // three more intervals: jvb1 is resting now
	if n := onSpare(); n != 2 {
		t.Errorf("%d participants on jvb2 after the timeout started, want 2", n)
	}
	noViolations(t, p1, p2, p3)
}

// A move with nowhere to go is not made: the only other bridge runs another
// version than the conference's, so the participants keep their sessions
// instead of being cut off.
func TestMoveRefusedWithoutAnotherBridge(t *testing.T) {
	s := startStack(t, 2)
	s.stressJVB2()
	room := "stuck@conference.meet.test"
	p1 := s.join(room)
	p2 := s.join(room)
	s.wait("both on jvb1", func() bool {
		return p1.Accepted() && p2.Accepted() && s.bridgeOf(p1) == "jvb1" && s.bridgeOf(p2) == "jvb1"
	})
	other := s.bridgeByNick("jvb2")
	other.SetVersion("9.9.9")
	s.wait("jvb2's new version seen", func() bool {
		in, ok := s.focus.Bridges.Info(other.JID())
		return ok && in.Version == "9.9.9"
	})
	moved, _, err := s.focus.Focus.Move(s.ctx, "", "", "jvb1", 5)
	if err != nil || moved != 0 {
		t.Errorf("move with nowhere to go: moved %d, %v", moved, err)
	}
	if len(p1.Received("session-terminate")) != 0 || len(p2.Received("session-terminate")) != 0 || len(p1.Offers()) != 1 {
		t.Error("a participant lost its session to a move that could not be made")
	}
}

func TestBridgeOverloaded(t *testing.T) {
	h := newBridgeHarness(t, testBridgesConfig())
	h.addBridge(t, "hot", "stress_level", "0.95")
	h.addBridge(t, "warm", "stress_level", "0.85")
	over, room := h.b.Overloaded(0.9)
	if len(over) != 1 || nickOf(over[0]) != "hot" || room {
		t.Errorf("hot and warm: over %v, any room %v; want [hot], false", over, room)
	}
	h.addBridge(t, "cool", "stress_level", "0.1")
	if over, room := h.b.Overloaded(0.9); len(over) != 1 || !room {
		t.Errorf("with a cool bridge: over %v, any room %v", over, room)
	}
}

// In a build without cascading an operator move takes a conference whole
// off its bridge (every participant re-invited elsewhere), never one
// participant (which would split the conference between unlinked bridges).
func TestMoveWholeConferenceWithoutCascading(t *testing.T) {
	h := newConfHarness(t, nil, nil, "a", "b")
	h.f.useFeatures(slices.DeleteFunc(features(), func(ft Feature) bool { return ft.LinksBridges }))
	h.join("A", "a@meet.test/r")
	h.join("B", "b@meet.test/r")
	h.accept("A", "")
	h.accept("B", "")
	old := h.c.members["A"].bridge
	if old == "" || h.c.members["B"].bridge != old {
		t.Fatalf("A on %q, B on %q: want one bridge", old, h.c.members["B"].bridge)
	}
	h.link.take()
	if n := h.c.moveOff("", "A", 10, "test"); n != 0 || h.c.members["A"].bridge != old {
		t.Fatalf("moving one participant: moved %d, A on %q", n, h.c.members["A"].bridge)
	}
	if n := h.c.moveOff(old, "", 1, "test"); n != 0 {
		t.Fatalf("moving 1 of 2: moved %d, want 0", n)
	}
	if n := h.c.moveOff(old, "", 10, "test"); n != 2 {
		t.Fatalf("moving the conference off %s: moved %d, want 2", old, n)
	}
	h.settle()
	sent := h.link.take()
	for _, n := range []string{"A", "B"} {
		if b := h.c.members[n].bridge; b == old || b == "" {
			t.Errorf("%s on %q after the move, want the other bridge", n, b)
		}
		if len(sentTo(sent, h.occupant(n), isAction("session-initiate"))) != 1 {
			t.Errorf("%s got no new session-initiate:%s", n, dump(sent))
		}
	}
	if _, ok := h.c.sessions[old]; ok || len(h.c.sessions) != 1 {
		t.Errorf("bridge sessions after the move: %v", h.c.sessions)
	}
}
