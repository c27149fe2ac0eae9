package main

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"minifocus/testkit"
)

// TestBridgeIntegrationBrewery runs the registry against a real Prosody and
// fake bridges: discovery with stats, a stress change, a leave, health
// timeouts and errors, and re-discovery after the XMPP server restarts.
func TestBridgeIntegrationBrewery(t *testing.T) {
	p := testkit.StartProsody(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	logs := &bridgeLogBuf{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("focus log:\n%s", logs.String())
		}
	})

	startBridge := func(nick string, stress float64, region string) *testkit.FakeBridge {
		t.Helper()
		fb, err := testkit.StartFakeBridge(ctx, testkit.FakeBridgeConfig{
			Addr: p.C2SAddr(), Nick: nick, Stress: stress, Region: region, RelayID: "relay-" + nick,
			Version: "2.3.0-fake", PresenceInterval: 200 * time.Millisecond, ReconnectDelay: 200 * time.Millisecond,
		})
		if err != nil {
			t.Fatalf("fake bridge %s: %v", nick, err)
		}
		t.Cleanup(fb.Close)
		return fb
	}
	// One bridge is there before the focus joins, the other comes later.
	jvb1 := startBridge("jvb1", 0.1, "eu")

	cfg := DefaultConfig().Bridges
	cfg.Brewery = "jvbbrewery@" + testkit.InternalMUCDomain
	cfg.HealthInterval = Duration{300 * time.Millisecond}
	cfg.FailureBench = Duration{2 * time.Second}
	x := NewXMPPClient(XMPPOptions{Addr: p.C2SAddr(), Domain: "auth.meet.test", Username: "focus", Password: "focuspass",
		Resource: "focus", TLS: "optional", PingTarget: "meet.test", ReplyTimeout: 5 * time.Second, Logger: log})
	b := NewBridges(cfg, "focus", x, log)
	x.HandlePresence(func(e *Element) { b.HandlePresence(e) })
	x.OnSession(func(up bool) {
		if up {
			_ = b.Join() // NewBridges already joined: a no-op, shown to be harmless
		}
	})
	var evMu sync.Mutex
	var events []string
	b.Subscribe(func(ev BridgeEvent) {
		evMu.Lock()
		events = append(events, ev.Kind.String()+" "+ev.JID)
		evMu.Unlock()
	})
	hasEvent := func(s string) bool {
		evMu.Lock()
		defer evMu.Unlock()
		for _, e := range events {
			if e == s {
				return true
			}
		}
		return false
	}

	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); x.Run(ctx) }()
	go func() { defer wg.Done(); b.Run(ctx) }()
	defer wg.Wait()
	defer cancel()

	waitFor := func(what string, d time.Duration, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(d)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; bridges: %+v", what, b.Snapshot())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	info := func(fb *testkit.FakeBridge) (BridgeInfo, bool) { return b.Info(fb.JID()) }

	waitFor("jvb1 discovered", 15*time.Second, func() bool {
		in, ok := info(jvb1)
		return ok && in.Operational && !in.Drain && in.Region == "eu" && in.RelayID == "relay-jvb1" && in.Version == "2.3.0-fake"
	})
	jvb2 := startBridge("jvb2", 0.3, "us")
	waitFor("jvb2 discovered", 10*time.Second, func() bool {
		in, ok := info(jvb2)
		return ok && in.Stress == 0.3 && in.Region == "us"
	})
	if !hasEvent("added "+jvb1.JID()) || !hasEvent("added "+jvb2.JID()) {
		t.Fatalf("added events missing: %v", events)
	}
	if c, err := b.Select(SelectRequest{Conference: "r1"}); err != nil || c.JID != jvb1.JID() {
		t.Fatalf("Select = %+v, %v; want jvb1", c, err)
	}

	// Stress change.
	jvb1.SetStress(0.6)
	jvb1.PublishNow()
	waitFor("jvb1 stress 0.6", 5*time.Second, func() bool { in, _ := info(jvb1); return in.Stress == 0.6 })
	if c, err := b.Select(SelectRequest{Conference: "r2"}); err != nil || c.JID != jvb2.JID() {
		t.Fatalf("Select = %+v, %v; want jvb2", c, err)
	}

	// Health checks reach the bridges through the brewery (the fake refuses
	// anything else with forbidden, which would show as an unexpected error).
	waitFor("health checks answered", 5*time.Second, func() bool {
		in, _ := info(jvb1)
		return jvb1.HealthChecks() >= 2 && in.LastHealthResult == "ok"
	})

	// Leave.
	jvb2.Leave()
	waitFor("jvb2 removed", 5*time.Second, func() bool { _, ok := info(jvb2); return !ok })
	if !hasEvent("removed " + jvb2.JID()) {
		t.Fatalf("no removed event: %v", events)
	}
	if err := jvb2.Rejoin(); err != nil {
		t.Fatal(err)
	}
	waitFor("jvb2 back", 5*time.Second, func() bool { in, ok := info(jvb2); return ok && in.Operational })

	// Health timeout: non-operational, no failed event; recovers.
	jvb2.SetHealth(testkit.HealthSilent)
	waitFor("jvb2 timed out", 5*time.Second, func() bool { in, _ := info(jvb2); return !in.Operational })
	if in, _ := info(jvb2); !strings.Contains(in.WhyNot, "timed out") || hasEvent("failed "+jvb2.JID()) {
		t.Fatalf("after a timeout: %+v", in)
	}
	jvb2.SetHealth(testkit.HealthOK)
	waitFor("jvb2 up again", 5*time.Second, func() bool { in, _ := info(jvb2); return in.Operational })
	// The event is delivered just after the state changes.
	waitFor("the up event", 5*time.Second, func() bool { return hasEvent("up " + jvb2.JID()) })

	// Health error: benched and a failed event; back after the bench.
	jvb1.SetHealth(testkit.HealthError)
	waitFor("jvb1 failed", 5*time.Second, func() bool { return hasEvent("failed " + jvb1.JID()) })
	in, _ := info(jvb1)
	if in.Operational || in.BenchedUntil.IsZero() {
		t.Fatalf("failed bridge not benched: %+v", in)
	}
	if c, err := b.Select(SelectRequest{Conference: "r3"}); err != nil || c.JID != jvb2.JID() {
		t.Fatalf("Select = %+v, %v; want jvb2", c, err)
	}
	jvb1.SetHealth(testkit.HealthOK)
	waitFor("jvb1 back after the bench", 8*time.Second, func() bool { in, _ := info(jvb1); return in.Operational })

	// The XMPP server restarts: bridges are forgotten, then found again
	// after the focus re-joins the brewery.
	if err := p.Restart(); err != nil {
		t.Fatal(err)
	}
	waitFor("bridges rediscovered after the restart", 30*time.Second, func() bool {
		_, ok1 := info(jvb1)
		_, ok2 := info(jvb2)
		return ok1 && ok2 && b.OperationalCount() == 2 && hasEvent("removed "+jvb1.JID())
	})
}

// startSplitStack runs a stack whose bridges have a Prosody of their own
// (xmpp.service), with one fake bridge there, operational.
func startSplitStack(t *testing.T, reconnect time.Duration) (*stack, *testkit.Prosody, *testkit.FakeBridge) {
	t.Helper()
	jvbProsody := testkit.StartProsody(t)
	host, port, err := net.SplitHostPort(jvbProsody.C2SAddr())
	if err != nil {
		t.Fatal(err)
	}
	portN, _ := strconv.Atoi(port)
	s := startStack(t, 0, func(c *Config, _ *testkit.Prosody) {
		c.XMPP.Service = ServiceXMPPConfig{Enabled: true, Server: host, Port: portN, AuthDomain: "auth.meet.test"}
	})
	b, err := testkit.StartFakeBridge(s.ctx, testkit.FakeBridgeConfig{Addr: jvbProsody.C2SAddr(), Nick: "jvb1", RelayID: "jvb1",
		PresenceInterval: 200 * time.Millisecond, ReconnectDelay: reconnect})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	s.wait("the bridge on the other Prosody operational", func() bool { return s.focus.Bridges.OperationalCount() == 1 })
	return s, jvbProsody, b
}

// With xmpp.service (docker's ENABLE_JVB_XMPP_SERVER) the bridges live on
// their own Prosody: the focus logs in there too, finds the bridge in that
// brewery and allocates over that connection, while the participants stay
// on the main Prosody.
func TestBridgesOnTheirOwnProsody(t *testing.T) {
	s, _, b := startSplitStack(t, 0)
	if st := s.focus.HTTP.Check(); !st.Healthy {
		t.Errorf("health with both connections up: %+v", st)
	}
	room := "split@conference.meet.test"
	p1 := s.join(room)
	p2 := s.join(room)
	s.wait("sessions over the bridge's Prosody", func() bool {
		return p1.Accepted() && p2.Accepted() && knowsExactly(p1, p2) && knowsExactly(p2, p1)
	})
	confs := b.Conferences()
	if len(confs) != 1 {
		t.Fatalf("bridge conferences: %d", len(confs))
	}
	for _, c := range confs {
		if len(c.Endpoints) != 2 {
			t.Errorf("bridge endpoints: %d, want 2", len(c.Endpoints))
		}
	}
	noViolations(t, p1, p2)
}

// The bridges' Prosody restarts and the bridge does not come back: once the
// focus is logged in there again and the bridge has had its chance to
// reappear, the conference treats it as lost (no bridge left: the room is
// told bridgeNotAvailable), instead of keeping a session on a bridge that
// no longer exists.
func TestBridgeMissingAfterServiceReconnect(t *testing.T) {
	s, jvbProsody, _ := startSplitStack(t, time.Hour) // the bridge stays away after the restart
	room := "orphan@conference.meet.test"
	p1 := s.join(room)
	p2 := s.join(room)
	s.wait("sessions", func() bool { return p1.Accepted() && p2.Accepted() })
	if err := jvbProsody.Restart(); err != nil {
		t.Fatal(err)
	}
	s.wait("the room told there is no bridge", func() bool {
		fp := p1.FocusPresence()
		return fp != nil && fp.Child(nsFocus, "bridgeNotAvailable") != nil
	})
	if len(p1.Received("session-terminate")) == 0 {
		t.Error("p1's session on the vanished bridge was not ended")
	}
}
