package main

// Attacks on the per-participant budgets (limits.go): a participant that
// hangs up and keeps changing its presence, that leaves and rejoins in a
// loop, or that floods transport-info or source changes must not get more
// bridge allocations, Colibri2 requests or fan-outs than its budget.

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"minifocus/testkit"
)

// allocations counts the endpoint creations for nick the bridges received.
func (s *stack) allocations(nick string) int {
	n := 0
	for _, b := range s.bridges {
		for _, r := range b.Requests() {
			for _, ep := range r.All(nsColibri2, "endpoint") {
				if ep.Attr("id") == nick && ep.Attr("create") == "true" {
					n++
				}
			}
		}
	}
	return n
}

// colibriFor counts the Colibri2 requests naming nick's endpoint that carry
// an element <what/> (e.g. "transport", "sources").
func (s *stack) colibriFor(nick, what string) int {
	n := 0
	for _, b := range s.bridges {
		for _, r := range b.Requests() {
			for _, ep := range r.All(nsColibri2, "endpoint") {
				if ep.Attr("id") == nick && ep.Child(nsColibri2, what) != nil {
					n++
				}
			}
		}
	}
	return n
}

// barrier returns once the conference has handled everything p sent
// before (p's stanzas reach the focus in order; an IQ for an unknown
// session is answered by the conference goroutine) and the bridge has
// received every Colibri2 request the conference queued before: p's own
// source-add of a fresh SSRC is one more request to the same bridge, and
// the focus sends a bridge its requests in order.
func (s *stack) barrier(p *testkit.Participant, ssrc uint32) {
	s.t.Helper()
	s.focusBarrier(p)
	if resp, err := p.SendJingle(s.ctx, "source-add", func(j *testkit.Elem) {
		j.Add(testkit.NewElem(nsJingle, "content", "name", "audio").Add(
			testkit.NewElem(nsRTP, "description", "media", "audio").Add(
				testkit.NewElem(nsSSMA, "source", "ssrc", fmt.Sprint(ssrc), "name", fmt.Sprintf("%s-a%d", p.Nick(), ssrc)).Add(
					testkit.NewElem(nsRTP, "parameter", "name", "msid", "value", fmt.Sprintf("b%d t%d", ssrc, ssrc))))))
	}); err != nil {
		s.t.Fatalf("barrier source-add: %v %v", resp, err)
	}
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	for _, b := range s.bridges {
		if _, err := b.WaitRequest(ctx, func(r *testkit.Elem) bool { return strings.Contains(r.String(), fmt.Sprintf("ssrc='%d'", ssrc)) }); err == nil {
			return
		}
	}
	s.t.Fatalf("the barrier's source-add never reached a bridge")
}

// focusBarrier returns once the conference has handled everything p sent
// before.
func (s *stack) focusBarrier(p *testkit.Participant) {
	s.t.Helper()
	iq := testkit.NewElem("jabber:client", "iq", "type", "set", "to", p.Room()+"/focus").Add(
		testkit.NewElem(nsJingle, "jingle", "action", "source-add", "sid", "barrier"))
	if resp, err := p.Client().SendIQ(s.ctx, iq); err == nil {
		s.t.Fatalf("barrier IQ answered %v", resp)
	}
}

// bridgeSessionOf is the bridge-session id of p's latest offer.
func bridgeSessionOf(p *testkit.Participant) string {
	offers := p.Offers()
	return offers[len(offers)-1].Child("", "jingle").Child(nsFocus, "bridge-session").Attr("id")
}

// A participant that ends its session itself (no restart) is not put back
// on a bridge by its presence updates: 30 hang-up/presence cycles cost one
// allocation and one session-initiate, the first.
func TestHangUpThenPresenceDoesNotReinvite(t *testing.T) {
	s := startStack(t, 1)
	room := "hangup@conference.meet.test"
	p1 := s.join(room)
	p2 := s.join(room)
	s.wait("sessions", func() bool { return p1.Accepted() && p2.Accepted() && knowsExactly(p1, p2) })
	hungUp := 0
	for i := 0; i < 30; i++ {
		if len(p2.Offers()) > hungUp {
			resp, err := p2.SendJingle(s.ctx, "session-terminate", func(j *testkit.Elem) {
				j.Add(testkit.NewElem("", "reason").Add(testkit.NewElem("", "success")))
				j.Add(testkit.NewElem(nsFocus, "bridge-session", "id", bridgeSessionOf(p2)))
			})
			if err != nil {
				t.Fatalf("hang-up %d: %v %v", i, resp, err)
			}
			hungUp = len(p2.Offers())
		}
		pres := testkit.NewElem("", "presence", "to", p2.OccupantJID()).Add(
			testkit.NewElem("", "stats-id").SetText(fmt.Sprintf("cycle-%d", i)),
			testkit.NewElem(nsCaps, "c", "hash", "sha-1", "node", testkit.ClientCapsNode, "ver", p2.CapsVer()))
		if err := p2.Client().Send(pres); err != nil {
			t.Fatal(err)
		}
		s.focusBarrier(p2)
	}
	s.barrier(p1, 700000)
	allocs, initiates := s.allocations(p2.Nick()), len(p2.Offers())
	t.Logf("30 hang-up/presence cycles: %d allocations, %d session-initiates", allocs, initiates)
	if allocs != 1 || initiates != 1 {
		t.Errorf("after hanging up: %d allocations and %d session-initiates for p2, want 1 and 1", allocs, initiates)
	}
	if _, ok := s.bridgeEndpoints()[p2.Nick()]; ok {
		t.Error("p2's endpoint is still allocated after it hung up")
	}
	if !p1.Accepted() || len(p1.Offers()) != 1 {
		t.Error("p1's session was disturbed")
	}
}

// Leaving and rejoining on the same connection does not reset the restart
// budget: 30 rejoins within a minute get one re-invite; the next ones wait
// for the minimum interval (they are not dropped: a rejoin may be honest).
func TestRejoinLoopDoesNotResetBudget(t *testing.T) {
	s := startStack(t, 1, func(c *Config, _ *testkit.Prosody) { c.Conference.RestartMinInterval = dur(time.Minute) })
	room := "rejoin@conference.meet.test"
	p1 := s.join(room)
	p2 := s.join(room)
	s.wait("sessions", func() bool { return p1.Accepted() && p2.Accepted() })
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	for i := 0; i < 30; i++ {
		mark := p1.Mark()
		if err := p2.Client().Send(testkit.NewElem("", "presence", "to", p2.OccupantJID(), "type", "unavailable")); err != nil {
			t.Fatal(err)
		}
		if _, err := p1.WaitEvent(ctx, mark, func(e testkit.Event) bool { return e.Kind == testkit.EventOccupantLeft }); err != nil {
			t.Fatalf("cycle %d: p1 did not see p2 leave: %v", i, err)
		}
		mark = p1.Mark()
		join := testkit.NewElem("", "presence", "to", p2.OccupantJID()).Add(
			testkit.NewElem("http://jabber.org/protocol/muc", "x"),
			testkit.NewElem(nsCaps, "c", "hash", "sha-1", "node", testkit.ClientCapsNode, "ver", p2.CapsVer()))
		if err := p2.Client().Send(join); err != nil {
			t.Fatal(err)
		}
		if _, err := p1.WaitEvent(ctx, mark, func(e testkit.Event) bool { return e.Kind == testkit.EventOccupant }); err != nil {
			t.Fatalf("cycle %d: p1 did not see p2 rejoin: %v", i, err)
		}
	}
	s.barrier(p1, 710000)
	allocs, initiates := s.allocations(p2.Nick()), len(p2.Offers())
	t.Logf("30 leave/rejoin cycles: %d allocations, %d session-initiates", allocs, initiates)
	// The join, and the first rejoin (its invite may be overtaken by the
	// next leave); every later rejoin waits for the minimum interval.
	if allocs != 2 || initiates > 2 {
		t.Errorf("30 rejoins: %d allocations and %d session-initiates for p2, want 2 and at most 2", allocs, initiates)
	}
	if _, ok := s.bridgeEndpoints()[p2.Nick()]; ok {
		t.Error("the last rejoin was put on the bridge at once")
	}
	if !p1.Accepted() || len(p1.Offers()) != 1 {
		t.Error("p1's session was disturbed")
	}
}

// transport-info and source changes are budgeted per participant: a flood
// gets its first burst through and then resource-constraint, the bridge
// sees one Colibri2 request per accepted IQ, the others one fan-out per
// accepted change.
func TestTransportInfoAndSourceFloodsLimited(t *testing.T) {
	s := startStack(t, 1)
	room := "tiflood@conference.meet.test"
	p1 := s.join(room)
	p2 := s.join(room)
	s.wait("sessions", func() bool { return p1.Accepted() && p2.Accepted() && knowsExactly(p2, p1) })

	before := s.colibriFor(p1.Nick(), "transport")
	start := time.Now()
	accepted, refused := 0, 0
	for i := 0; i < 100; i++ {
		resp, err := p1.SendJingle(s.ctx, "transport-info", func(j *testkit.Elem) {
			j.Add(testkit.NewElem(nsJingle, "content", "creator", "responder", "name", "audio").Add(
				testkit.NewElem(nsICEUDP, "transport", "ufrag", "u", "pwd", "pppppppppppppppppppppp").Add(
					testkit.NewElem(nsICEUDP, "candidate", "component", "1", "foundation", "1", "generation", "0",
						"id", fmt.Sprintf("c%d", i), "ip", "127.0.0.1", "network", "1", "port", fmt.Sprint(2000+i),
						"priority", "1", "protocol", "udp", "type", "host"))))
		})
		switch {
		case err == nil:
			accepted++
		case resp != nil && strings.Contains(resp.String(), "resource-constraint"):
			refused++
		default:
			t.Fatalf("transport-info %d: %v %v", i, resp, err)
		}
	}
	allowed := transportInfoBurst + int(time.Since(start).Seconds()*transportInfoPerSec) + 1
	s.barrier(p2, 720000)
	sent := s.colibriFor(p1.Nick(), "transport") - before
	t.Logf("100 transport-info: %d accepted, %d refused, %d Colibri2 requests", accepted, refused, sent)
	if accepted > allowed || refused == 0 {
		t.Errorf("transport-info flood: %d accepted, %d refused; at most %d may pass", accepted, refused, allowed)
	}
	if sent != accepted {
		t.Errorf("%d Colibri2 transport updates for %d accepted transport-info", sent, accepted)
	}

	mark := p2.Mark()
	start = time.Now()
	accepted, refused = 0, 0
	for i := 0; i < 100; i++ {
		action := "source-add"
		if i%2 == 1 {
			action = "source-remove"
		}
		resp, err := p1.SendJingle(s.ctx, action, func(j *testkit.Elem) {
			j.Add(testkit.NewElem(nsJingle, "content", "name", "audio").Add(
				testkit.NewElem(nsRTP, "description", "media", "audio").Add(
					testkit.NewElem(nsSSMA, "source", "ssrc", "830000", "name", p1.Nick()+"-a9").Add(
						testkit.NewElem(nsRTP, "parameter", "name", "msid", "value", "flood flood")))))
		})
		switch {
		case err == nil:
			accepted++
		case resp != nil && strings.Contains(resp.String(), "resource-constraint"):
			refused++
		case resp != nil && strings.Contains(resp.String(), "bad-request"):
			// a remove after a refused add: nothing to remove
		default:
			t.Fatalf("%s %d: %v %v", action, i, resp, err)
		}
	}
	allowed = sourceChangeBurst + int(time.Since(start).Seconds()*sourceChangePerSec) + 1
	s.barrier(p2, 720001)
	fanout := 0
	for _, e := range p2.Events()[mark:] {
		if e.Kind == testkit.EventJingle && (e.Action == "source-add" || e.Action == "source-remove") {
			for _, o := range e.Owners {
				if o == p1.Nick() {
					fanout++
				}
			}
		}
	}
	t.Logf("100 source-add/remove: %d accepted, %d refused, %d fan-outs to p2", accepted, refused, fanout)
	if accepted > allowed || refused == 0 {
		t.Errorf("source flood: %d accepted, %d refused; at most %d may pass", accepted, refused, allowed)
	}
	if fanout > accepted {
		t.Errorf("%d fan-outs to p2 for %d accepted source changes", fanout, accepted)
	}
	if !p2.Accepted() || len(p2.Offers()) != 1 {
		t.Error("p2's session was disturbed")
	}
}

func TestRateWindowNextAllowed(t *testing.T) {
	var w rateWindow
	t0 := time.Unix(1000, 0)
	if got := w.nextAllowed(t0, time.Minute, 2, 5*time.Second); !got.Equal(t0) {
		t.Errorf("empty window: %v", got)
	}
	if !w.allow(t0, time.Minute, 2, 5*time.Second) {
		t.Fatal("first event refused")
	}
	if got := w.nextAllowed(t0.Add(time.Second), time.Minute, 2, 5*time.Second); !got.Equal(t0.Add(5 * time.Second)) {
		t.Errorf("minimum gap: %v", got)
	}
	if !w.allow(t0.Add(5*time.Second), time.Minute, 2, 5*time.Second) {
		t.Fatal("second event refused")
	}
	if got := w.nextAllowed(t0.Add(20*time.Second), time.Minute, 2, 5*time.Second); !got.Equal(t0.Add(time.Minute)) {
		t.Errorf("full window: %v, want the first event's expiry", got)
	}
	var b tokenBucket
	n := 0
	for b.take(t0, 3, 1) {
		n++
	}
	if n != 3 || b.take(t0.Add(500*time.Millisecond), 3, 1) || !b.take(t0.Add(1100*time.Millisecond), 3, 1) {
		t.Errorf("token bucket: burst %d, refill wrong", n)
	}
}

func TestBudgetsBounded(t *testing.T) {
	b := newBudgets()
	b.maxLen = 100
	now := time.Unix(1000, 0)
	for i := 0; i < 1000; i++ {
		b.with(fmt.Sprintf("room\x00user%d@x/r", i), now.Add(time.Duration(i)*time.Millisecond), func(*memberBudget) {})
	}
	if n := b.len(); n > 100 {
		t.Errorf("%d budgets kept, bound 100", n)
	}
	b.with("late", now.Add(time.Hour), func(*memberBudget) {})
	if n := b.len(); n != 1 {
		t.Errorf("%d budgets after all went idle, want 1", n)
	}
}

// Budgets handed over come back as they were; idle ones are not written,
// and a table that is full takes no more.
func TestBudgetsExportRestore(t *testing.T) {
	now := time.Now()
	b := newBudgets()
	b.with("r\x00a@x/1", now, func(mb *memberBudget) {
		mb.admitted = true
		mb.restarts.allow(now, time.Minute, 5, 0)
		mb.transportInfo.take(now, 30, 1)
	})
	b.with("r\x00idle@x/1", now.Add(-3*time.Minute), func(*memberBudget) {})
	out := b.export(now)
	if len(out) != 1 || out[0].Key != "r\x00a@x/1" || !out[0].Admitted || len(out[0].Restarts) != 1 || out[0].TITokens != 29 {
		t.Fatalf("exported %+v", out)
	}
	raw, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	var back []budgetState
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	c := newBudgets()
	c.restore(back, now)
	mb := c.items["r\x00a@x/1"]
	if mb == nil || !mb.admitted || len(mb.restarts.times) != 1 || mb.transportInfo.tokens != 29 {
		t.Fatalf("restored %+v", mb)
	}
	if mb.restarts.allow(now.Add(time.Second), time.Minute, 1, 0) {
		t.Error("a restored window allowed a restart over its limit")
	}
	full := newBudgets()
	full.maxLen = 0
	full.restore(back, now)
	if len(full.items) != 0 {
		t.Errorf("a full table took %d budgets", len(full.items))
	}
}
