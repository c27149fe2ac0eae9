package main

import (
	"strings"
	"testing"
	"time"
)

// ICE-failure detection: a bridge with enough endpoints whose clients
// restart more than threshold × endpoints times within the interval reads
// as overloaded (and says why) until the timeout; fewer restarts, too few
// endpoints, or the feature off change nothing.
func TestBridgeICEFailureDetection(t *testing.T) {
	cfg := testBridgesConfig()
	cfg.ICEFailure = ICEFailureConfig{Enabled: true, Interval: dur(time.Minute), MinEndpoints: 30, Threshold: 0.1, Timeout: dur(10 * time.Minute)}
	h := newBridgeHarness(t, cfg)
	var ice, offICE iceFailures
	h.addBridge(t, "a", "participants", "40")
	h.addBridge(t, "b", "participants", "40", "stress_level", "0.3")
	h.addBridge(t, "small", "participants", "5", "stress_level", "0.5")
	pick := func() string {
		t.Helper()
		c, err := h.b.Select(SelectRequest{Conference: "r@conference.meet.test"})
		if err != nil {
			t.Fatal(err)
		}
		return nickOf(c.JID)
	}
	if got := pick(); got != "a" {
		t.Fatalf("before any restart the least loaded is %s, want a", got)
	}
	for range 4 { // 4 ≤ 0.1 × 40: not yet
		ice.restartRequested(h.b, brewJID("a"))
	}
	if in := h.info(t, "a"); !in.HeldOverloadedUntil.IsZero() {
		t.Fatalf("4 restarts on 40 endpoints marked it: %+v", in)
	}
	h.clock.Advance(2 * time.Minute) // those fall out of the window
	for range 4 {
		ice.restartRequested(h.b, brewJID("a"))
	}
	if in := h.info(t, "a"); !in.HeldOverloadedUntil.IsZero() {
		t.Fatal("restarts outside the window were counted")
	}
	ice.restartRequested(h.b, brewJID("a")) // the fifth within a minute: 5 > 4
	in := h.info(t, "a")
	if in.HeldOverloadedUntil.IsZero() || !strings.Contains(in.WhyNot, "failing ICE") || in.CorrectedStress < cfg.StressThreshold {
		t.Fatalf("after 5 restarts: %+v", in)
	}
	h.clock.Advance(21 * time.Second) // past the ramp-up of the earlier picks
	if got := pick(); got != "b" {
		t.Errorf("with a failing ICE the pick is %s, want b", got)
	}
	for range 20 { // too few endpoints to judge
		ice.restartRequested(h.b, brewJID("small"))
	}
	if in := h.info(t, "small"); !in.HeldOverloadedUntil.IsZero() {
		t.Error("a bridge under min-endpoints was judged")
	}
	h.clock.Advance(10 * time.Minute)
	if in := h.info(t, "a"); !in.HeldOverloadedUntil.IsZero() || in.WhyNot != "eligible" {
		t.Errorf("after the timeout: %+v", in)
	}
	off := newBridgeHarness(t, testBridgesConfig())
	off.addBridge(t, "a", "participants", "40")
	for range 40 {
		offICE.restartRequested(off.b, brewJID("a"))
	}
	if in := off.info(t, "a"); !in.HeldOverloadedUntil.IsZero() {
		t.Error("detection ran while disabled")
	}
}
