package main

import (
	"minifocus/testkit"
	"slices"
	"sort"
	"testing"
)

// A conference that outgrows one bridge cascades: the bridges are linked by
// a relay in both directions, each relay knows the endpoints behind it, and
// everyone still receives everyone's sources.
func TestConferenceCascadesAcrossBridges(t *testing.T) {
	s := startStack(t, 2, func(c *Config, _ *testkit.Prosody) { c.Bridges.MaxParticipantsPerBridge = 2 })
	room := "big@conference.meet.test"
	p1 := s.join(room)
	p2 := s.join(room)
	s.wait("first two on one bridge", func() bool { return p1.Accepted() && p2.Accepted() })
	first := s.bridgeOf(p1)
	p3 := s.join(room)
	s.wait("everyone knows everyone", func() bool {
		return p3.Accepted() && knowsExactly(p1, p2, p3) && knowsExactly(p2, p1, p3) && knowsExactly(p3, p1, p2)
	})
	second := s.bridgeOf(p3)
	if second == "" || second == first || s.bridgeOf(p2) != first {
		t.Fatalf("bridges: p1 %s p2 %s p3 %s; want p3 alone on the other bridge", first, s.bridgeOf(p2), second)
	}
	a, b := s.bridgeByNick(first), s.bridgeByNick(second)
	relayOf := func(fb *testkit.FakeBridge, id string) (testkit.RelayState, bool) {
		for _, c := range fb.Conferences() {
			if r, ok := c.Relays[id]; ok {
				return r, true
			}
		}
		return testkit.RelayState{}, false
	}
	s.wait("relays linked with each other's transport and endpoints", func() bool {
		ra, okA := relayOf(a, second)
		rb, okB := relayOf(b, first)
		if !okA || !okB || ra.Transport == nil || rb.Transport == nil {
			return false
		}
		sort.Strings(ra.Endpoints)
		sort.Strings(rb.Endpoints)
		want := nicks(p1, p2)
		sort.Strings(want)
		return slices.Equal(ra.Endpoints, []string{p3.Nick()}) && slices.Equal(rb.Endpoints, want)
	})
	ra, _ := relayOf(a, second)
	rb, _ := relayOf(b, first)
	if !ra.ICEControlling || ra.SCTPRole != "server" && ra.SCTPRole != "client" {
		t.Errorf("initiator relay: %+v", ra)
	}
	if fa, fb := ra.Transport.Child(nsDTLS, "fingerprint"), rb.Transport.Child(nsDTLS, "fingerprint"); fa.Attr("setup") != "active" || fb.Attr("setup") != "passive" {
		t.Errorf("DTLS roles: initiator got %q, other got %q; want active/passive", fa.Attr("setup"), fb.Attr("setup"))
	}
	// The lone participant on the second bridge leaves: that bridge is
	// released and the relay towards it closed.
	if err := p3.Leave(); err != nil {
		t.Fatal(err)
	}
	s.wait("second bridge released, relay closed", func() bool {
		_, still := relayOf(a, second)
		return len(b.Conferences()) == 0 && !still
	})
	noViolations(t, p1, p2, p3)
}
