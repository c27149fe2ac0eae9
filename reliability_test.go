package main

// Fault tests: bridges that die, fail, time out or drain; XMPP blips and
// Prosody restarts; SIGTERM with live conferences. Each asserts what the
// participants and bridges received and that nothing is left allocated.

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"minifocus/testkit"
)

// bridgeOf is the bridge nick a participant's current session is on, from
// the focus's own debug state.
func (s *stack) bridgeOf(p *testkit.Participant) string {
	ctx, cancel := context.WithTimeout(s.ctx, 2*time.Second)
	defer cancel()
	for _, c := range s.focus.Focus.Snapshots(ctx) {
		for _, ps := range c.Participants {
			if ps.Endpoint == p.Nick() {
				return nickOf(ps.Bridge)
			}
		}
	}
	return ""
}

func (s *stack) bridgeByNick(nick string) *testkit.FakeBridge {
	for _, b := range s.bridges {
		if strings.HasSuffix(b.JID(), "/"+nick) {
			return b
		}
	}
	s.t.Fatalf("no bridge %q", nick)
	return nil
}

func endpointsOn(b *testkit.FakeBridge) int {
	n := 0
	for _, c := range b.Conferences() {
		n += len(c.Endpoints)
	}
	return n
}

// waitBridgeSeen waits until the focus's view of bridge nick satisfies cond:
// a stat changed on a fake bridge reaches the focus with its next presence,
// after an interval that a loaded machine stretches.
func (s *stack) waitBridgeSeen(nick, what string, cond func(BridgeInfo) bool) {
	s.t.Helper()
	s.wait("the focus sees "+nick+" "+what, func() bool {
		for _, b := range s.focus.Bridges.Snapshot() {
			if b.Nick == nick {
				return cond(b)
			}
		}
		return false
	})
}

// stressJVB2 makes jvb2 the more loaded bridge, so that new conferences go
// to jvb1, and waits until the focus knows.
func (s *stack) stressJVB2() {
	s.t.Helper()
	s.bridges[1].SetStress(0.5)
	s.waitBridgeSeen("jvb2", "loaded", func(b BridgeInfo) bool { return b.Stress == 0.5 })
}

// A bridge that vanishes mid-conference: everyone on it is moved to the
// other bridge, with a fresh session, and sees the others again.
func TestBridgeLeavesMidConference(t *testing.T) {
	s := startStack(t, 2)
	room := "move@conference.meet.test"
	p1 := s.join(room)
	p2 := s.join(room)
	s.wait("sessions", func() bool { return p1.Accepted() && p2.Accepted() && knowsExactly(p1, p2) && knowsExactly(p2, p1) })
	from := s.bridgeOf(p1)
	if from == "" || s.bridgeOf(p2) != from {
		t.Fatalf("participants on %q and %q; want one bridge", from, s.bridgeOf(p2))
	}
	dead := s.bridgeByNick(from)
	start := time.Now()
	dead.Close()
	s.wait("both moved to the other bridge", func() bool {
		b1, b2 := s.bridgeOf(p1), s.bridgeOf(p2)
		return b1 != "" && b1 != from && b2 == b1 && p1.Accepted() && p2.Accepted() && len(p1.Offers()) == 2 && len(p2.Offers()) == 2
	})
	s.wait("sources known again", func() bool { return knowsExactly(p1, p2) && knowsExactly(p2, p1) })
	t.Logf("bridge loss to recovered sessions: %s", time.Since(start))
	for _, p := range []*testkit.Participant{p1, p2} {
		terms := p.Received("session-terminate")
		if len(terms) != 1 || !strings.Contains(terms[0].String(), "moving") {
			t.Errorf("%s: session-terminate %v, want one 'moving'", p.Nick(), terms)
		}
	}
	noViolations(t, p1, p2)
	var other *testkit.FakeBridge
	for _, b := range s.bridges {
		if b != dead {
			other = b
		}
	}
	if endpointsOn(other) != 2 {
		t.Errorf("the surviving bridge has %d endpoints, want 2", endpointsOn(other))
	}
}

// A failed health check (error) benches the bridge and moves its
// participants; the failed bridge's conference is expired.
func TestBridgeHealthErrorMovesParticipants(t *testing.T) {
	s := startStack(t, 2)
	room := "sick@conference.meet.test"
	p1 := s.join(room)
	p2 := s.join(room)
	s.wait("sessions", func() bool { return p1.Accepted() && p2.Accepted() })
	from := s.bridgeOf(p1)
	sick := s.bridgeByNick(from)
	start := time.Now()
	sick.SetHealth(testkit.HealthError)
	s.wait("moved off the failed bridge", func() bool {
		b := s.bridgeOf(p1)
		return b != "" && b != from && s.bridgeOf(p2) == b && p1.Accepted() && p2.Accepted()
	})
	t.Logf("health error to recovered sessions: %s (health interval %s)", time.Since(start), s.focus.Config.Bridges.HealthInterval.Duration)
	s.wait("nothing left on the failed bridge", func() bool { return endpointsOn(sick) == 0 })
	s.wait("sources known again", func() bool { return knowsExactly(p1, p2) && knowsExactly(p2, p1) })
	// A new participant is not put on the benched bridge.
	p3 := s.join(room)
	s.wait("p3 in", func() bool { return p3.Accepted() })
	if b := s.bridgeOf(p3); b == from {
		t.Errorf("a participant was placed on a benched bridge")
	}
}

// A bridge that stops answering its health checks takes no new
// participants, but the ones on it are left alone.
func TestBridgeHealthTimeoutStopsNewAllocations(t *testing.T) {
	s := startStack(t, 2)
	room := "quiet@conference.meet.test"
	p1 := s.join(room)
	p2 := s.join(room)
	s.wait("sessions", func() bool { return p1.Accepted() && p2.Accepted() })
	from := s.bridgeOf(p1)
	quiet := s.bridgeByNick(from)
	quiet.SetHealth(testkit.HealthSilent)
	s.wait("the bridge non-operational", func() bool {
		for _, b := range s.focus.Bridges.Snapshot() {
			if b.Nick == from {
				return !b.Operational
			}
		}
		return false
	})
	q1 := s.join("other@conference.meet.test")
	q2 := s.join("other@conference.meet.test")
	s.wait("new conference running", func() bool { return q1.Accepted() && q2.Accepted() })
	if s.bridgeOf(q1) == from {
		t.Error("a new conference went to a bridge that does not answer health checks")
	}
	if s.bridgeOf(p1) != from || len(p1.Received("session-terminate")) != 0 {
		t.Error("participants were moved off a bridge that only timed out")
	}
}

// A Colibri2 allocation that times out is retried on another bridge, and
// does not hold up other conferences.
func TestColibriTimeoutRetriesElsewhere(t *testing.T) {
	s := startStack(t, 2, func(c *Config, _ *testkit.Prosody) { c.XMPP.ReplyTimeout = dur(2 * time.Second) })
	// The conference will start on the least loaded bridge: make that jvb1
	// and make it swallow Colibri2 requests.
	slow := s.bridges[0]
	s.stressJVB2()
	slow.DropResponses(true)
	room := "slow@conference.meet.test"
	start := time.Now()
	p1 := s.join(room)
	p2 := s.join(room)
	s.wait("sessions on the other bridge", func() bool {
		return p1.Accepted() && p2.Accepted() && s.bridgeOf(p1) == "jvb2" && s.bridgeOf(p2) == "jvb2"
	})
	t.Logf("allocation timeout to sessions on another bridge: %s", time.Since(start))
	if slow.EndpointCount() > 0 {
		// The fake processes dropped requests; the focus must have expired them.
		s.wait("nothing leaked on the slow bridge", func() bool { return endpointsOn(slow) == 0 })
	}
}

// With no bridge at all the focus says so in its presence, and invites
// everyone when a bridge appears.
func TestNoBridgeThenBridgeAppears(t *testing.T) {
	s := startStack(t, 0)
	room := "nobridge@conference.meet.test"
	p1 := s.join(room)
	p2 := s.join(room)
	s.wait("bridgeNotAvailable in the focus presence", func() bool {
		fp := p1.FocusPresence()
		return fp != nil && fp.Child(nsFocus, "bridgeNotAvailable") != nil
	})
	s.addBridge("late", "")
	s.wait("sessions once the bridge is there", func() bool { return p1.Accepted() && p2.Accepted() && knowsExactly(p1, p2) })
	s.wait("bridgeNotAvailable removed", func() bool {
		fp := p1.FocusPresence()
		return fp != nil && fp.Child(nsFocus, "bridgeNotAvailable") == nil
	})
}

// A draining bridge gets no new conferences while another bridge exists.
func TestDrainingBridgeAvoided(t *testing.T) {
	s := startStack(t, 2)
	s.bridges[0].SetDrain(true)
	s.bridges[1].SetStress(0.7)
	s.waitBridgeSeen("jvb1", "draining", func(b BridgeInfo) bool { return b.Drain })
	s.waitBridgeSeen("jvb2", "loaded", func(b BridgeInfo) bool { return b.Stress == 0.7 })
	room := "drain@conference.meet.test"
	p1 := s.join(room)
	p2 := s.join(room)
	s.wait("sessions", func() bool { return p1.Accepted() && p2.Accepted() })
	if b := s.bridgeOf(p1); b != "jvb2" {
		t.Errorf("placed on %s, want the non-draining jvb2", b)
	}
}

// A short TCP drop is invisible to the conference: the stream is resumed,
// nobody sees the focus leave, and the conference keeps working.
func TestConferenceSurvivesXMPPBlip(t *testing.T) {
	var proxy *cutProxy
	s := startStack(t, 1, func(c *Config, p *testkit.Prosody) {
		proxy = newCutProxy(t, p.C2SAddr())
		c.XMPP.Server, c.XMPP.Port = splitAddr(proxy.addr())
	})
	room := "blip@conference.meet.test"
	p1 := s.join(room)
	p2 := s.join(room)
	s.wait("sessions", func() bool { return p1.Accepted() && p2.Accepted() && knowsExactly(p1, p2) })
	s.wait("stream management on", func() bool { return s.focus.XMPP.sm.isEnabled() })
	start := time.Now()
	proxy.block(true)
	proxy.cut()
	time.Sleep(time.Second)
	proxy.block(false)
	s.wait("stream resumed", func() bool { return s.focus.XMPP.Resumes() == 1 })
	t.Logf("TCP drop to resumed stream: %s", time.Since(start))
	// The conference goes on: a third participant gets everyone's sources.
	p3 := s.join(room)
	s.wait("p3 in the same conference", func() bool {
		return p3.Accepted() && knowsExactly(p3, p1, p2) && knowsExactly(p1, p2, p3)
	})
	for _, p := range []*testkit.Participant{p1, p2} {
		if slices.ContainsFunc(p.Events(), func(e testkit.Event) bool { return e.Kind == testkit.EventFocusLeft }) {
			t.Errorf("%s saw the focus leave during the blip", p.Nick())
		}
		if len(p.Received("session-terminate")) != 0 || len(p.Offers()) != 1 {
			t.Errorf("%s's session was restarted by the blip", p.Nick())
		}
	}
	if c, _ := s.focus.XMPP.Stats(); c != 1 {
		t.Errorf("the focus logged in %d times", c)
	}
}

// A Prosody restart loses every room: the focus logs in again, conferences
// end, goroutines go back to their baseline, and a new conference works.
func TestProsodyRestartWithConferences(t *testing.T) {
	s := startStack(t, 1)
	base := runtime.NumGoroutine()
	room := "restart-prosody@conference.meet.test"
	p1 := s.join(room)
	p2 := s.join(room)
	s.wait("sessions", func() bool { return p1.Accepted() && p2.Accepted() })
	p1.Close()
	p2.Close()
	if err := s.prosody.Restart(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	s.wait("focus back with its bridge", func() bool {
		up, _ := s.focus.XMPP.Connected()
		return up && s.focus.Bridges.OperationalCount() == 1
	})
	t.Logf("Prosody restart to focus ready: %s", time.Since(start))
	s.wait("old conference gone", func() bool { return s.focus.Focus.lookup(room) == nil })
	q1 := s.join(room)
	q2 := s.join(room)
	s.wait("a new conference after the restart", func() bool { return q1.Accepted() && q2.Accepted() && knowsExactly(q1, q2) })
	q1.Close()
	q2.Close()
	s.wait("conference ended", func() bool { return s.focus.Focus.lookup(room) == nil })
	s.wait("goroutines back to baseline", func() bool { return runtime.NumGoroutine() <= base+5 })
}

// SIGTERM with live conferences: sessions terminated, bridge allocations
// expired, rooms left, all within the shutdown deadline.
func TestGracefulShutdownWithConferences(t *testing.T) {
	s := startStack(t, 1)
	room := "bye@conference.meet.test"
	p1 := s.join(room)
	p2 := s.join(room)
	s.wait("sessions", func() bool { return p1.Accepted() && p2.Accepted() })
	b := s.bridges[0]
	start := time.Now()
	s.focus.stop()
	t.Logf("shutdown took %s", time.Since(start))
	if time.Since(start) > s.focus.Config.Conference.ShutdownTimeout.Duration+2*time.Second {
		t.Errorf("shutdown took longer than the deadline")
	}
	for _, p := range []*testkit.Participant{p1, p2} {
		ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
		if err := p.WaitFor(ctx, func() bool { return len(p.Received("session-terminate")) == 1 && p.FocusOccupant() == "" }); err != nil {
			t.Errorf("%s: terminate=%d focus=%q: %v", p.Nick(), len(p.Received("session-terminate")), p.FocusOccupant(), err)
		}
		cancel()
	}
	s.wait("bridge conferences expired", func() bool { return len(b.Conferences()) == 0 })
	if !slices.ContainsFunc(p1.Events(), func(e testkit.Event) bool { return e.Kind == testkit.EventFocusLeft }) {
		t.Error("the focus did not leave the room")
	}
}

// An allocation that times out removes the conference from that bridge and
// moves everyone on it — the participant whose allocation failed included.
func TestAllocationTimeoutMovesEveryoneIncludingTheNewcomer(t *testing.T) {
	s := startStack(t, 2, func(c *Config, _ *testkit.Prosody) { c.XMPP.ReplyTimeout = dur(2 * time.Second) })
	s.stressJVB2()
	room := "newcomer@conference.meet.test"
	p1 := s.join(room)
	p2 := s.join(room)
	s.wait("sessions on jvb1", func() bool { return p1.Accepted() && p2.Accepted() && s.bridgeOf(p1) == "jvb1" })
	s.bridges[0].DropResponses(true)
	p3 := s.join(room)
	s.wait("everyone on jvb2, p3 included", func() bool {
		return p3.Accepted() && s.bridgeOf(p1) == "jvb2" && s.bridgeOf(p2) == "jvb2" && s.bridgeOf(p3) == "jvb2" &&
			p1.Accepted() && p2.Accepted()
	})
	s.wait("everyone knows everyone", func() bool { return knowsExactly(p3, p1, p2) && knowsExactly(p1, p2, p3) })
}

// Stream management works again on the new session after a Prosody restart
// (no resumption possible), and the acknowledgement counts agree with the
// server's once the stream is idle.
func TestStreamManagementAfterProsodyRestart(t *testing.T) {
	s := startStack(t, 1)
	x := s.focus.XMPP
	// The server's acknowledgements agree with our count: what it has not
	// acknowledged is exactly what we keep for resending, and it is only
	// the last few stanzas (a ping is always in flight).
	idle := func() bool {
		x.sm.mu.Lock()
		defer x.sm.mu.Unlock()
		return x.sm.enabled && x.sm.id != "" && x.sm.acked > 0 &&
			int(x.sm.out-x.sm.acked) == len(x.sm.unacked) && len(x.sm.unacked) <= 3
	}
	s.wait("stream management enabled and acknowledged", idle)
	if err := s.prosody.Restart(); err != nil {
		t.Fatal(err)
	}
	s.wait("logged in again", func() bool { c, _ := x.Stats(); up, _ := x.Connected(); return c == 2 && up })
	s.wait("stream management enabled again and acknowledged", idle)
}

// A bridge in graceful shutdown takes no new conferences; its participants
// stay (the default) or move at once (move-on-graceful-shutdown).
func TestBridgeGracefulShutdown(t *testing.T) {
	for _, move := range []bool{false, true} {
		t.Run(fmt.Sprintf("move=%v", move), func(t *testing.T) {
			s := startStack(t, 2, func(c *Config, _ *testkit.Prosody) { c.Bridges.MoveOnGracefulShutdown = move })
			s.stressJVB2()
			room := "graceful@conference.meet.test"
			p1 := s.join(room)
			p2 := s.join(room)
			s.wait("on jvb1", func() bool { return p1.Accepted() && p2.Accepted() && s.bridgeOf(p1) == "jvb1" })
			s.bridges[0].SetGracefulShutdown(true)
			s.wait("the focus sees the graceful shutdown", func() bool {
				for _, b := range s.focus.Bridges.Snapshot() {
					if b.Nick == "jvb1" {
						return b.GracefulShutdown
					}
				}
				return false
			})
			q1 := s.join("other@conference.meet.test")
			q2 := s.join("other@conference.meet.test")
			s.wait("new conference", func() bool { return q1.Accepted() && q2.Accepted() })
			if s.bridgeOf(q1) != "jvb2" {
				t.Errorf("a new conference went to a bridge in graceful shutdown")
			}
			if move {
				s.wait("moved off", func() bool {
					return s.bridgeOf(p1) == "jvb2" && s.bridgeOf(p2) == "jvb2" && p1.Accepted() && p2.Accepted()
				})
			} else {
				time.Sleep(300 * time.Millisecond)
				if s.bridgeOf(p1) != "jvb1" || len(p1.Offers()) != 1 {
					t.Errorf("participants were moved off a gracefully shutting down bridge")
				}
			}
		})
	}
}

// The bridge registry's count of our endpoints follows joins and leaves
// (it is what /debug/bridges and the status page show).
func TestBridgeEndpointCountFollowsParticipants(t *testing.T) {
	s := startStack(t, 1)
	count := func() int {
		for _, b := range s.focus.Bridges.Snapshot() {
			return b.Endpoints
		}
		return -1
	}
	room := "count@conference.meet.test"
	p1 := s.join(room)
	p2 := s.join(room)
	p3 := s.join(room)
	s.wait("three endpoints", func() bool { return p1.Accepted() && p2.Accepted() && p3.Accepted() && count() == 3 })
	p3.Leave()
	s.wait("two endpoints", func() bool { return count() == 2 })
	p1.Leave()
	p2.Leave()
	s.wait("none", func() bool { return count() == 0 })
}

// With presence-based health no health IQs are sent; a bridge that reports
// healthy=false in its presence is benched and its participants moved.
func TestBridgeHealthFromPresence(t *testing.T) {
	s := startStack(t, 2, func(c *Config, _ *testkit.Prosody) { c.Bridges.HealthUsePresence = true })
	s.stressJVB2()
	room := "presencehealth@conference.meet.test"
	p1 := s.join(room)
	p2 := s.join(room)
	s.wait("on jvb1", func() bool { return p1.Accepted() && p2.Accepted() && s.bridgeOf(p1) == "jvb1" })
	s.bridges[0].SetHealth(testkit.HealthError) // published as healthy=false
	s.wait("moved to jvb2", func() bool {
		return s.bridgeOf(p1) == "jvb2" && s.bridgeOf(p2) == "jvb2" && p1.Accepted() && p2.Accepted()
	})
	for _, b := range s.bridges {
		if n := b.HealthChecks(); n != 0 {
			t.Errorf("%s got %d health IQs with presence-based health", b.JID(), n)
		}
	}
}
