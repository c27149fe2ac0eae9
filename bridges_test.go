package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

const testBrewery = "jvbbrewery@internal.auth.meet.test"

func brewJID(nick string) string { return testBrewery + "/" + nick }

// bridgeTestClock is a settable clock.
type bridgeTestClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *bridgeTestClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *bridgeTestClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fakeBridgeXMPP records sent stanzas and answers health checks per bridge:
// "ok", "timeout" (at once), "hang" (until the context ends), or an error
// condition such as "internal-server-error".
type fakeBridgeXMPP struct {
	mu     sync.Mutex
	sent   []*Element
	iqs    []*Element
	answer map[string]string
	dflt   string
}

func (f *fakeBridgeXMPP) Send(el *Element) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, el)
	return nil
}

func (f *fakeBridgeXMPP) setAnswer(jid, a string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.answer == nil {
		f.answer = map[string]string{}
	}
	f.answer[jid] = a
}

func (f *fakeBridgeXMPP) iqCount(jid string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, iq := range f.iqs {
		if iq.Attr("to") == jid {
			n++
		}
	}
	return n
}

func (f *fakeBridgeXMPP) SendIQ(ctx context.Context, iq *Element) (*Element, error) {
	f.mu.Lock()
	f.iqs = append(f.iqs, iq)
	a, ok := f.answer[iq.Attr("to")]
	if !ok {
		a = f.dflt
	}
	f.mu.Unlock()
	switch a {
	case "", "ok":
		return NewElement(nsClient, "iq", "type", "result"), nil
	case "timeout":
		return nil, fmt.Errorf("iq to %s: %w", iq.Attr("to"), ErrIQTimeout)
	case "hang":
		<-ctx.Done()
		return nil, fmt.Errorf("iq to %s: %w", iq.Attr("to"), ctx.Err())
	case "down":
		return nil, ErrNotConnected
	default:
		resp := NewElement(nsClient, "iq", "type", "error").Add(Errorf(a, "bridge says no").Element())
		return resp, ParseStanzaError(resp)
	}
}

// bridgeLogBuf is a concurrency-safe log sink.
type bridgeLogBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *bridgeLogBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *bridgeLogBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type bridgeEventLog struct {
	mu  sync.Mutex
	evs []BridgeEvent
}

func (e *bridgeEventLog) add(ev BridgeEvent) {
	e.mu.Lock()
	e.evs = append(e.evs, ev)
	e.mu.Unlock()
}

func (e *bridgeEventLog) take() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, ev := range e.evs {
		out = append(out, ev.Kind.String()+" "+ev.JID[strings.IndexByte(ev.JID, '/')+1:])
	}
	e.evs = nil
	return out
}

type bridgeHarness struct {
	b      *Bridges
	clock  *bridgeTestClock
	x      *fakeBridgeXMPP
	events *bridgeEventLog
	logs   *bridgeLogBuf
}

func testBridgesConfig() BridgesConfig {
	c := DefaultConfig().Bridges
	c.Brewery = testBrewery
	return c
}

func newBridgeHarness(t testing.TB, cfg BridgesConfig) *bridgeHarness {
	t.Helper()
	h := &bridgeHarness{
		clock:  &bridgeTestClock{t: time.Date(2026, 8, 20, 12, 0, 0, 0, time.UTC)},
		x:      &fakeBridgeXMPP{},
		events: &bridgeEventLog{},
		logs:   &bridgeLogBuf{},
	}
	log := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h.b = NewBridges(cfg, "focus", nil, log)
	h.b.now = h.clock.Now
	h.b.iq = h.x
	h.b.out = h.x
	h.b.Subscribe(h.events.add)
	return h
}

// bridgeStatsPresence builds a brewery presence; kv are stat name/value pairs.
func bridgeStatsPresence(nick string, kv ...string) *Element {
	p := NewElement(nsClient, "presence", "from", brewJID(nick), "to", "focus@auth.meet.test/focus")
	st := NewElement(nsColibri, "stats")
	for i := 0; i+1 < len(kv); i += 2 {
		st.Add(NewElement(nsColibri, "stat", "name", kv[i], "value", kv[i+1]))
	}
	return p.Add(st)
}

// addBridge feeds a presence with sane defaults (stress 0.1, not draining,
// relay id, version 2.3), overridden by kv; a value "-" omits the stat.
func (h *bridgeHarness) addBridge(t testing.TB, nick string, kv ...string) {
	t.Helper()
	stats := map[string]string{
		"stress_level": "0.1", "drain": "false", "graceful_shutdown": "false", "shutting_down": "false",
		"relay_id": "relay-" + nick, "version": "2.3.100", "average_participant_stress": "0.01", "healthy": "true",
	}
	order := []string{"stress_level", "drain", "graceful_shutdown", "shutting_down", "relay_id", "version", "average_participant_stress", "healthy"}
	for i := 0; i+1 < len(kv); i += 2 {
		if _, ok := stats[kv[i]]; !ok {
			order = append(order, kv[i])
		}
		stats[kv[i]] = kv[i+1]
	}
	var flat []string
	for _, k := range order {
		if v := stats[k]; v != "-" {
			flat = append(flat, k, v)
		}
	}
	if !h.b.HandlePresence(bridgeStatsPresence(nick, flat...)) {
		t.Fatalf("presence from %s not consumed", nick)
	}
}

func (h *bridgeHarness) info(t testing.TB, nick string) BridgeInfo {
	t.Helper()
	in, ok := h.b.Info(brewJID(nick))
	if !ok {
		t.Fatalf("bridge %s not in the registry", nick)
	}
	return in
}

func (h *bridgeHarness) nicks() []string {
	var out []string
	for _, in := range h.b.Snapshot() {
		out = append(out, in.Nick)
	}
	return out
}

func bridgeEqualStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestBridgeDiscoveryUpdateLeave(t *testing.T) {
	h := newBridgeHarness(t, testBridgesConfig())
	b := h.b

	// Not the brewery: not consumed.
	other := NewElement(nsClient, "presence", "from", "room@conference.meet.test/alice").Add(NewElement(nsColibri, "stats"))
	if b.HandlePresence(other) {
		t.Fatal("a presence from another room was consumed")
	}
	// An occupant without stats (the bridge's join presence, or a
	// non-bridge occupant) is consumed but is no bridge.
	if !b.HandlePresence(NewElement(nsClient, "presence", "from", brewJID("jvb1")).Add(NewElement(nsMUC, "x"))) {
		t.Fatal("brewery presence not consumed")
	}
	if !b.HandlePresence(NewElement(nsClient, "presence", "from", testBrewery)) {
		t.Fatal("room presence not consumed")
	}
	if n := len(b.Snapshot()); n != 0 {
		t.Fatalf("occupants without stats became bridges: %d", n)
	}

	// Stats arrive (Java number formats, room part in another case).
	p := bridgeStatsPresence("jvb1",
		"incoming_loss", "0.0", "stress_level", "1.0E-4", "conferences", "3", "participants", "7",
		"average_participant_stress", "5.0E-3", "graceful_shutdown", "false", "shutting_down", "false",
		"current_timestamp", "2026-08-19 16:17:32.123", "relay_id", "10.0.0.5", "healthy", "true",
		"version", "2.3.123-gabcdef0", "release", "123", "region", "us-east-1")
	p.Set("from", strings.ToUpper(testBrewery)+"/jvb1")
	if !b.HandlePresence(p) {
		t.Fatal("stats presence not consumed")
	}
	if got := h.events.take(); !bridgeEqualStrings(got, []string{"added jvb1"}) {
		t.Fatalf("events = %v", got)
	}
	in := h.info(t, "jvb1")
	if in.Stress != 1e-4 || in.AvgPartStress != 0.005 || in.Region != "us-east-1" || in.RelayID != "10.0.0.5" ||
		in.Version != "2.3.123-gabcdef0-123" || in.Conferences != 3 || in.Participants != 7 ||
		in.Healthy == nil || !*in.Healthy || !in.Operational {
		t.Fatalf("parsed stats wrong: %+v", in)
	}
	// drain is true until reported.
	if !in.Drain || in.WhyNot != "eligible" {
		t.Fatalf("drain before being reported: drain=%v why_not=%q", in.Drain, in.WhyNot)
	}
	if b.OperationalCount() != 1 {
		t.Fatalf("OperationalCount = %d", b.OperationalCount())
	}

	// Update: stress changes, drain reported, graceful_shutdown set.
	b.HandlePresence(bridgeStatsPresence("jvb1", "stress_level", "0.42", "drain", "false", "graceful_shutdown", "true"))
	in = h.info(t, "jvb1")
	if in.Stress != 0.42 || in.Drain || !in.GracefulShutdown || in.Region != "us-east-1" {
		t.Fatalf("after update: %+v", in)
	}
	// Sticky: graceful_shutdown=false does not clear it; a missing drain
	// stat keeps the last value.
	b.HandlePresence(bridgeStatsPresence("jvb1", "graceful_shutdown", "false", "stress_level", "0.5"))
	in = h.info(t, "jvb1")
	if !in.GracefulShutdown || in.Drain || in.Stress != 0.5 {
		t.Fatalf("graceful_shutdown not sticky or drain lost: %+v", in)
	}
	if got := h.events.take(); len(got) != 1 || got[0] != "graceful-shutdown jvb1" {
		t.Fatalf("events %v, want one graceful-shutdown (once: it is sticky)", got)
	}

	// shutting_down: event once, sticky, never selected.
	b.HandlePresence(bridgeStatsPresence("jvb1", "shutting_down", "true"))
	b.HandlePresence(bridgeStatsPresence("jvb1", "shutting_down", "true"))
	b.HandlePresence(bridgeStatsPresence("jvb1", "shutting_down", "false"))
	if got := h.events.take(); !bridgeEqualStrings(got, []string{"shutting-down jvb1"}) {
		t.Fatalf("events = %v", got)
	}
	if in := h.info(t, "jvb1"); !in.ShuttingDown || in.WhyNot != "shutting down: never selected" {
		t.Fatalf("shutting_down not sticky: %+v", in)
	}
	if _, err := b.Select(SelectRequest{Conference: "c"}); !errors.Is(err, ErrNoBridge) {
		t.Fatalf("a shutting-down bridge was selectable: %v", err)
	}
	if b.OperationalCount() != 0 {
		t.Fatal("a shutting-down bridge counts as operational")
	}

	// A second bridge, then the first leaves.
	h.addBridge(t, "jvb2")
	b.HandlePresence(NewElement(nsClient, "presence", "from", brewJID("jvb1"), "type", "unavailable"))
	if got := h.events.take(); !bridgeEqualStrings(got, []string{"added jvb2", "removed jvb1"}) {
		t.Fatalf("events = %v", got)
	}
	if got := h.nicks(); !bridgeEqualStrings(got, []string{"jvb2"}) {
		t.Fatalf("bridges = %v", got)
	}
	// Unavailable for an occupant that never was a bridge: no event.
	b.HandlePresence(NewElement(nsClient, "presence", "from", brewJID("someone"), "type", "unavailable"))
	if got := h.events.take(); len(got) != 0 {
		t.Fatalf("events = %v", got)
	}
	// Re-joining starts from a fresh state (sticky flags reset).
	h.addBridge(t, "jvb1")
	if in := h.info(t, "jvb1"); in.ShuttingDown || in.GracefulShutdown {
		t.Fatalf("re-joined bridge kept old state: %+v", in)
	}
}

func TestBridgeJoinAndSession(t *testing.T) {
	h := newBridgeHarness(t, testBridgesConfig())
	b := h.b
	b.onSession(true)
	b.onSession(true) // a second OnSession(true) caller: no duplicate join
	if err := b.Join(); err != nil {
		t.Fatal(err)
	}
	h.x.mu.Lock()
	sent := append([]*Element(nil), h.x.sent...)
	h.x.sent = nil
	h.x.mu.Unlock()
	if len(sent) != 1 {
		t.Fatalf("sent %d stanzas, want one join presence", len(sent))
	}
	if p := sent[0]; p.Local != "presence" || p.Attr("to") != testBrewery+"/focus" || p.Child(nsMUC, "x") == nil || p.Attr("type") != "" {
		t.Fatalf("bad join presence %s", p)
	}
	// Our own presence back, with 201 (we created the room): the room is
	// configured so that bridges can join.
	self := NewElement(nsClient, "presence", "from", testBrewery+"/focus").Add(
		NewElement(nsMUCUser, "x").Add(NewElement(nsMUCUser, "status", "code", "110"), NewElement(nsMUCUser, "status", "code", "201")))
	if !b.HandlePresence(self) {
		t.Fatal("self presence not consumed")
	}
	h.x.mu.Lock()
	sent = append([]*Element(nil), h.x.sent...)
	h.x.mu.Unlock()
	if len(sent) != 1 || sent[0].Local != "iq" || sent[0].Attr("type") != "set" || sent[0].Attr("to") != testBrewery ||
		sent[0].Child(nsMUCOwner, "query").Child(nsDataForms, "x").Attr("type") != "submit" {
		t.Fatalf("no room configuration after 201: %v", sent)
	}
	if len(b.Snapshot()) != 0 {
		t.Fatal("the focus itself became a bridge")
	}

	h.addBridge(t, "jvb1")
	h.addBridge(t, "jvb2")
	h.events.take()
	b.onSession(false)
	if got := h.events.take(); !bridgeEqualStrings(got, []string{"removed jvb1", "removed jvb2"}) {
		t.Fatalf("events on session loss = %v", got)
	}
	if len(b.Snapshot()) != 0 || b.OperationalCount() != 0 {
		t.Fatal("bridges survived the session loss")
	}
	// After the next login the join is sent again, and bridges come back.
	b.onSession(true)
	h.x.mu.Lock()
	n := len(h.x.sent)
	h.x.mu.Unlock()
	if n != 2 {
		t.Fatalf("no re-join after reconnect (sent %d)", n)
	}
	h.addBridge(t, "jvb1")
	if b.OperationalCount() != 1 {
		t.Fatal("bridge not back after re-join")
	}
}

func TestBridgeBreweryRejoin(t *testing.T) {
	h := newBridgeHarness(t, testBridgesConfig())
	b := h.b
	b.member.rejoinWait = 10 * time.Millisecond
	sentCount := func() int {
		h.x.mu.Lock()
		defer h.x.mu.Unlock()
		return len(h.x.sent)
	}
	waitSent := func(n int) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Second)
		for sentCount() < n {
			if time.Now().After(deadline) {
				t.Fatalf("sent %d stanzas, want %d", sentCount(), n)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	b.onSession(true)
	waitSent(1)
	// The join is refused: retried after the wait.
	errp := NewElement(nsClient, "presence", "from", testBrewery+"/focus", "type", "error").Add(Errorf("conflict", "").Element())
	b.HandlePresence(errp)
	waitSent(2)
	if !strings.Contains(h.logs.String(), "joining the bridge brewery failed") {
		t.Fatal("failed join not logged")
	}
	// Joined, a bridge appears, then the focus is kicked: bridges are
	// forgotten and the focus joins again.
	b.HandlePresence(NewElement(nsClient, "presence", "from", testBrewery+"/focus").Add(
		NewElement(nsMUCUser, "x").Add(NewElement(nsMUCUser, "status", "code", "110"))))
	h.addBridge(t, "jvb1")
	h.events.take()
	b.HandlePresence(NewElement(nsClient, "presence", "from", testBrewery+"/focus", "type", "unavailable"))
	if got := h.events.take(); !bridgeEqualStrings(got, []string{"removed jvb1"}) {
		t.Fatalf("events = %v", got)
	}
	waitSent(3)
	h.x.mu.Lock()
	last := h.x.sent[len(h.x.sent)-1]
	h.x.mu.Unlock()
	if last.Local != "presence" || last.Attr("to") != testBrewery+"/focus" {
		t.Fatalf("re-join presence = %s", last)
	}
	// No re-join once the session is down.
	b.HandlePresence(errp)
	b.onSession(false)
	time.Sleep(50 * time.Millisecond)
	if n := sentCount(); n != 3 {
		t.Fatalf("re-join sent after the session went down (%d stanzas)", n)
	}
}

// bridgeSpec is one bridge in a selection table case.
type bridgeSpec struct {
	nick  string
	stats []string // overrides of addBridge's defaults
	mark  string   // "failed", "nonop", "graceful"
}

func bspec(nick, stress string, kv ...string) bridgeSpec {
	return bridgeSpec{nick: nick, stats: append([]string{"stress_level", stress}, kv...)}
}

func TestBridgeSelectRules(t *testing.T) {
	type tc struct {
		name     string
		strategy string
		local    string
		bridges  []bridgeSpec
		current  map[string]int // nick → participants of the conference
		region   string
		exclude  []string
		want     string // nick, or "" for ErrNoBridge
		reason   string // substring of the reason (or of the error)
	}
	cases := []tc{
		{name: "no bridges", want: "", reason: "no bridges in the brewery"},
		{name: "lowest stress", bridges: []bridgeSpec{bspec("a", "0.3"), bspec("b", "0.1"), bspec("c", "0.2")}, want: "b", reason: "lowest corrected stress"},
		{name: "tie goes to first JID", bridges: []bridgeSpec{bspec("b", "0.2"), bspec("a", "0.2"), bspec("c", "0.2")}, want: "a"},
		{name: "java scientific stress", bridges: []bridgeSpec{bspec("a", "1.0E-2"), bspec("b", "5.0E-3")}, want: "b"},
		{name: "draining skipped", bridges: []bridgeSpec{bspec("a", "0.1", "drain", "true"), bspec("b", "0.5")}, want: "b", reason: "1 draining skipped"},
		{name: "drain unreported counts as draining", bridges: []bridgeSpec{bspec("a", "0.1", "drain", "-"), bspec("b", "0.5")}, want: "b"},
		{name: "all draining: least loaded", bridges: []bridgeSpec{bspec("a", "0.3", "drain", "true"), bspec("b", "0.2", "drain", "true")}, want: "b", reason: "all usable bridges are draining"},
		{name: "graceful skipped", bridges: []bridgeSpec{bspec("a", "0.1", "graceful_shutdown", "true"), bspec("b", "0.5")}, want: "b", reason: "graceful shutdown skipped"},
		{name: "graceful by mark skipped", bridges: []bridgeSpec{{nick: "a", mark: "graceful"}, bspec("b", "0.5")}, want: "b"},
		{name: "only graceful: used", bridges: []bridgeSpec{bspec("a", "0.1", "graceful_shutdown", "true")}, want: "a"},
		{name: "shutting down never", bridges: []bridgeSpec{bspec("a", "0.0", "shutting_down", "true"), bspec("b", "0.95")}, want: "b"},
		{name: "only shutting down: none", bridges: []bridgeSpec{bspec("a", "0.0", "shutting_down", "true")}, want: "", reason: "1 shutting down"},
		{name: "non-operational never", bridges: []bridgeSpec{{nick: "a", mark: "nonop"}, bspec("b", "0.9")}, want: "b"},
		{name: "only non-operational: none", bridges: []bridgeSpec{{nick: "a", mark: "nonop"}}, want: "", reason: "non-operational"},
		{name: "failed (benched) never", bridges: []bridgeSpec{{nick: "a", mark: "failed"}, bspec("b", "0.9")}, want: "b"},
		{name: "excluded", bridges: []bridgeSpec{bspec("a", "0.1"), bspec("b", "0.5")}, exclude: []string{"a"}, want: "b"},
		{name: "over threshold skipped", bridges: []bridgeSpec{bspec("a", "0.85"), bspec("b", "0.9"), bspec("c", "0.79")}, want: "c"},
		{name: "all overloaded: least loaded", bridges: []bridgeSpec{bspec("a", "0.95"), bspec("b", "0.9")}, want: "b", reason: "over the stress threshold"},
		{name: "prefers conference bridge", bridges: []bridgeSpec{bspec("a", "0.1"), bspec("b", "0.5")}, current: map[string]int{"b": 3}, want: "b", reason: "already uses it"},
		{name: "conference bridge overloaded: cascade", bridges: []bridgeSpec{bspec("a", "0.3"), bspec("b", "0.85")}, current: map[string]int{"b": 3}, want: "a"},
		{name: "two conference bridges: least loaded of them", bridges: []bridgeSpec{bspec("a", "0.1"), bspec("b", "0.5"), bspec("c", "0.4")}, current: map[string]int{"b": 3, "c": 1}, want: "c"},
		{name: "candidate without relay_id not added to multi-bridge", bridges: []bridgeSpec{bspec("a", "0.85"), bspec("b", "0.1", "relay_id", "-"), bspec("c", "0.5")}, current: map[string]int{"a": 2}, want: "c"},
		{name: "no relay anywhere else: overloaded conference bridge", bridges: []bridgeSpec{bspec("a", "0.85"), bspec("b", "0.1", "relay_id", "-")}, current: map[string]int{"a": 2}, want: "a"},
		{name: "conference bridge without relay_id: stays", bridges: []bridgeSpec{bspec("a", "0.9", "relay_id", "-"), bspec("b", "0.1")}, current: map[string]int{"a": 2}, want: "a", reason: "over the stress threshold"},
		{name: "relay-less conference bridge excluded: none", bridges: []bridgeSpec{bspec("a", "0.1", "relay_id", "-"), bspec("b", "0.1")}, current: map[string]int{"a": 2}, exclude: []string{"a"}, want: "", reason: "has no relay_id"},
		{name: "dead conference bridge does not constrain", bridges: []bridgeSpec{{nick: "a", mark: "failed", stats: []string{"relay_id", "-", "version", "1.0"}}, bspec("b", "0.1")}, current: map[string]int{"a": 2}, want: "b"},
		{name: "new conference without relay_id is fine", bridges: []bridgeSpec{bspec("a", "0.1", "relay_id", "-")}, want: "a"},
		{name: "no version mixing", bridges: []bridgeSpec{bspec("a", "0.85"), bspec("b", "0.1", "version", "2.4.0"), bspec("c", "0.5")}, current: map[string]int{"a": 1}, want: "c"},
		{name: "no version mixing even when overloaded", bridges: []bridgeSpec{bspec("a", "0.85"), bspec("b", "0.1", "version", "2.4.0")}, current: map[string]int{"a": 1}, want: "a"},
		{name: "release is part of the version", bridges: []bridgeSpec{bspec("a", "0.85", "release", "1"), bspec("b", "0.1", "release", "2"), bspec("c", "0.6", "release", "1")}, current: map[string]int{"a": 1}, want: "c"},
		{name: "only other version usable: none", bridges: []bridgeSpec{bspec("a", "0.5"), bspec("b", "0.1", "version", "2.4.0")}, current: map[string]int{"a": 1}, exclude: []string{"a"}, want: "", reason: "version is not"},
		{name: "new conference: any version", bridges: []bridgeSpec{bspec("a", "0.5"), bspec("b", "0.1", "version", "2.4.0")}, want: "b"},
		{name: "max participants per bridge", bridges: []bridgeSpec{bspec("a", "0.1"), bspec("b", "0.5")}, current: map[string]int{"a": 80}, want: "b"},
		{name: "max participants beats overload", bridges: []bridgeSpec{bspec("a", "0.1"), bspec("b", "0.9")}, current: map[string]int{"a": 80}, want: "b"},
		{name: "all at max participants: least loaded", bridges: []bridgeSpec{bspec("a", "0.3"), bspec("b", "0.2")}, current: map[string]int{"a": 80, "b": 80}, want: "b", reason: "already has 80 participants"},

		{name: "region: participant region", strategy: "region", bridges: []bridgeSpec{bspec("a", "0.1", "region", "us"), bspec("b", "0.5", "region", "eu")}, region: "eu", want: "b", reason: `participant's region "eu"`},
		{name: "region: full region falls to local", strategy: "region", local: "us", bridges: []bridgeSpec{bspec("a", "0.4", "region", "us"), bspec("b", "0.85", "region", "eu"), bspec("c", "0.1", "region", "ap")}, region: "eu", want: "a", reason: `local region "us"`},
		{name: "region: no bridge in region or local: least-load", strategy: "region", local: "us", bridges: []bridgeSpec{bspec("a", "0.4", "region", "eu"), bspec("b", "0.2", "region", "ap")}, region: "sa", want: "b", reason: "fallback to least-load"},
		{name: "region: unknown participant region uses local", strategy: "region", local: "eu", bridges: []bridgeSpec{bspec("a", "0.1", "region", "us"), bspec("b", "0.5", "region", "eu")}, want: "b"},
		{name: "region: conference bridge in region preferred", strategy: "region", bridges: []bridgeSpec{bspec("a", "0.1", "region", "eu"), bspec("b", "0.5", "region", "eu")}, region: "eu", current: map[string]int{"b": 2}, want: "b", reason: "already used by the conference"},
		{name: "region: cascade to participant's region", strategy: "region", bridges: []bridgeSpec{bspec("a", "0.1", "region", "us"), bspec("b", "0.5", "region", "eu")}, region: "eu", current: map[string]int{"a": 2}, want: "b"},
		{name: "region: draining bridge in region skipped", strategy: "region", bridges: []bridgeSpec{bspec("a", "0.5", "region", "us"), bspec("b", "0.1", "region", "eu", "drain", "true")}, region: "eu", want: "a"},

		{name: "single: first pick in participant region", strategy: "single", bridges: []bridgeSpec{bspec("a", "0.1", "region", "us"), bspec("b", "0.5", "region", "eu"), bspec("c", "0.3", "region", "eu")}, region: "eu", want: "c"},
		{name: "single: first pick least loaded", strategy: "single", bridges: []bridgeSpec{bspec("a", "0.4"), bspec("b", "0.2")}, region: "eu", want: "b"},
		{name: "single: stays although overloaded", strategy: "single", bridges: []bridgeSpec{bspec("a", "0.1"), bspec("b", "0.95")}, current: map[string]int{"b": 90}, want: "b", reason: "stays on the bridge"},
		{name: "single: stays although draining", strategy: "single", bridges: []bridgeSpec{bspec("a", "0.1"), bspec("b", "0.5", "drain", "true")}, current: map[string]int{"b": 2}, want: "b"},
		{name: "single: conference bridge failed: new one", strategy: "single", bridges: []bridgeSpec{bspec("a", "0.5"), {nick: "b", mark: "failed"}}, current: map[string]int{"b": 2}, want: "a"},
		{name: "single: conference bridge shutting down: new one", strategy: "single", bridges: []bridgeSpec{bspec("a", "0.5"), bspec("b", "0.1", "shutting_down", "true")}, current: map[string]int{"b": 2}, want: "a"},

		{name: "round-robin: skips overloaded", strategy: "round-robin", bridges: []bridgeSpec{bspec("a", "0.9"), bspec("b", "0.5")}, want: "b", reason: "rotation"},
		{name: "round-robin: all overloaded", strategy: "round-robin", bridges: []bridgeSpec{bspec("a", "0.9"), bspec("b", "0.85")}, want: "b", reason: "fallback to least-load"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := testBridgesConfig()
			if c.strategy != "" {
				cfg.Strategy = c.strategy
			}
			cfg.LocalRegion = c.local
			h := newBridgeHarness(t, cfg)
			for _, s := range c.bridges {
				h.addBridge(t, s.nick, s.stats...)
				switch s.mark {
				case "failed":
					h.b.MarkFailed(brewJID(s.nick), "test")
				case "nonop":
					h.b.MarkNonOperational(brewJID(s.nick), "test")
				case "graceful":
					h.b.MarkGracefulShutdown(brewJID(s.nick))
				}
			}
			req := SelectRequest{Conference: "room@conference.meet.test", Region: c.region, Current: map[string]int{}}
			for n, k := range c.current {
				req.Current[brewJID(n)] = k
			}
			for _, n := range c.exclude {
				req.Exclude = append(req.Exclude, brewJID(n))
			}
			got, err := h.b.Select(req)
			if c.want == "" {
				if !errors.Is(err, ErrNoBridge) {
					t.Fatalf("want ErrNoBridge, got %+v, %v", got, err)
				}
				if !strings.Contains(err.Error(), c.reason) {
					t.Fatalf("error %q does not mention %q", err, c.reason)
				}
				return
			}
			if err != nil {
				t.Fatalf("Select: %v", err)
			}
			if got.JID != brewJID(c.want) {
				t.Fatalf("picked %s, want %s (reason: %s)", got.JID, c.want, got.Reason)
			}
			if c.reason != "" && !strings.Contains(got.Reason, c.reason) {
				t.Fatalf("reason %q does not mention %q", got.Reason, c.reason)
			}
			if !strings.Contains(h.logs.String(), "bridge selected") {
				t.Fatal("Select did not log its choice")
			}
		})
	}
}

func TestBridgeSelectChoiceFields(t *testing.T) {
	h := newBridgeHarness(t, testBridgesConfig())
	h.addBridge(t, "a", "region", "eu", "relay_id", "10.0.0.1", "version", "2.3.9", "release", "77")
	c, err := h.b.Select(SelectRequest{Conference: "c"})
	if err != nil {
		t.Fatal(err)
	}
	if c.JID != brewJID("a") || c.Region != "eu" || c.RelayID != "10.0.0.1" || c.Version != "2.3.9-77" || c.Reason == "" {
		t.Fatalf("choice = %+v", c)
	}
	// Select counted the allocation.
	if in := h.info(t, "a"); in.Endpoints != 1 || in.RecentEndpoints != 1 || math.Abs(in.CorrectedStress-0.11) > 1e-9 {
		t.Fatalf("allocation not counted: %+v", in)
	}
	h.b.NoteReleased(brewJID("a"))
	h.b.NoteReleased(brewJID("nobody"))
	if in := h.info(t, "a"); in.Endpoints != 0 || in.RecentEndpoints != 1 {
		t.Fatalf("after a release: %+v", in)
	}
	// The ramp-up correction expires.
	h.clock.Advance(21 * time.Second)
	if in := h.info(t, "a"); in.RecentEndpoints != 0 || in.CorrectedStress != 0.1 {
		t.Fatalf("ramp-up did not expire: %+v", in)
	}
}

func TestBridgeRoundRobinRotates(t *testing.T) {
	cfg := testBridgesConfig()
	cfg.Strategy = "round-robin"
	h := newBridgeHarness(t, cfg)
	for _, n := range []string{"c", "a", "b"} {
		h.addBridge(t, n, "stress_level", "0.1")
	}
	h.addBridge(t, "d", "stress_level", "0.95")
	var got []string
	for i := 0; i < 7; i++ {
		c, err := h.b.Select(SelectRequest{Conference: fmt.Sprintf("c%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, c.JID[len(testBrewery)+1:])
	}
	if want := []string{"a", "b", "c", "a", "b", "c", "a"}; !bridgeEqualStrings(got, want) {
		t.Fatalf("rotation = %v, want %v", got, want)
	}
}

func TestBridgeJoinStorm(t *testing.T) {
	h := newBridgeHarness(t, testBridgesConfig())
	for _, n := range []string{"jvb1", "jvb2", "jvb3", "jvb4"} {
		h.addBridge(t, n, "stress_level", "0.1", "average_participant_stress", "0.01")
	}
	count := map[string]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := h.b.Select(SelectRequest{Conference: fmt.Sprintf("room%d@conference.meet.test", i), Current: map[string]int{}})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			count[c.JID]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	for _, n := range []string{"jvb1", "jvb2", "jvb3", "jvb4"} {
		if count[brewJID(n)] != 25 {
			t.Fatalf("join storm not spread evenly: %v", count)
		}
	}
	// The stress reported by presence has not changed, but the corrected
	// stress reflects the storm.
	if in := h.info(t, "jvb1"); math.Abs(in.CorrectedStress-0.35) > 1e-9 {
		t.Fatalf("corrected stress after the storm = %v", in.CorrectedStress)
	}

	// Without the ramp-up correction the same storm lands on one bridge:
	// that is what the correction is for.
	cfg := testBridgesConfig()
	cfg.RampUpInterval = Duration{}
	h2 := newBridgeHarness(t, cfg)
	for _, n := range []string{"jvb1", "jvb2", "jvb3", "jvb4"} {
		h2.addBridge(t, n, "stress_level", "0.1")
	}
	for i := 0; i < 100; i++ {
		c, err := h2.b.Select(SelectRequest{Conference: fmt.Sprintf("room%d", i)})
		if err != nil || c.JID != brewJID("jvb1") {
			t.Fatalf("without ramp-up: %v %v", c, err)
		}
	}
}

func TestBridgeStormUnequalBridges(t *testing.T) {
	// A storm fills the idle bridge first, then spreads.
	h := newBridgeHarness(t, testBridgesConfig())
	h.addBridge(t, "busy", "stress_level", "0.3")
	h.addBridge(t, "idle", "stress_level", "0.0")
	count := map[string]int{}
	for i := 0; i < 40; i++ {
		c, err := h.b.Select(SelectRequest{Conference: fmt.Sprintf("r%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		count[c.JID]++
	}
	// idle takes the first 30 (0.0 → 0.3), then they alternate.
	if count[brewJID("idle")] != 35 || count[brewJID("busy")] != 5 {
		t.Fatalf("spread = %v", count)
	}
}

// runDue runs the due health checks synchronously.
func (h *bridgeHarness) runDue(t testing.TB) int {
	t.Helper()
	due := h.b.dueChecks(h.clock.Now())
	for _, br := range due {
		h.b.checkBridge(context.Background(), br)
	}
	h.b.mu.Lock()
	evs := h.b.upEventsLocked(h.clock.Now())
	h.b.mu.Unlock()
	h.b.emit(evs)
	return len(due)
}

func bridgeHealthConfig() BridgesConfig {
	cfg := testBridgesConfig()
	cfg.HealthInterval = Duration{20 * time.Millisecond}
	cfg.FailureBench = Duration{60 * time.Second}
	return cfg
}

func TestBridgeHealthTimeout(t *testing.T) {
	h := newBridgeHarness(t, bridgeHealthConfig())
	h.addBridge(t, "a")
	h.addBridge(t, "b", "stress_level", "0.5")
	h.events.take()
	// The first check is one interval after the bridge appeared.
	if n := h.runDue(t); n != 0 {
		t.Fatalf("%d checks before the first interval", n)
	}
	h.clock.Advance(20 * time.Millisecond)
	h.x.setAnswer(brewJID("a"), "timeout")
	if n := h.runDue(t); n != 2 {
		t.Fatalf("ran %d checks, want 2", n)
	}
	if got := h.x.iqCount(brewJID("a")); got != 2 {
		t.Fatalf("timed-out bridge got %d IQs, want 2 (one retry)", got)
	}
	iq := h.x.iqs[0]
	if iq.Local != "iq" || iq.Attr("type") != "get" || iq.Child(nsHealthCheck, "healthcheck") == nil ||
		!strings.HasPrefix(iq.Attr("to"), testBrewery+"/") {
		t.Fatalf("bad health IQ %s", iq)
	}
	in := h.info(t, "a")
	if in.Operational || in.HealthFailures != 1 || !in.BenchedUntil.IsZero() || !strings.Contains(in.WhyNot, "timed out") {
		t.Fatalf("after timeout: %+v", in)
	}
	// Timeouts move nobody: no BridgeFailed event.
	if got := h.events.take(); len(got) != 0 {
		t.Fatalf("events after a timeout = %v", got)
	}
	if c, err := h.b.Select(SelectRequest{Conference: "c"}); err != nil || c.JID != brewJID("b") {
		t.Fatalf("Select = %v %v, want b", c, err)
	}
	if h.b.OperationalCount() != 1 {
		t.Fatal("OperationalCount")
	}
	// Not due again before an interval passed since the check ended.
	if n := h.runDue(t); n != 0 {
		t.Fatalf("%d checks too early", n)
	}
	// It answers again: operational, BridgeUp.
	h.x.setAnswer(brewJID("a"), "ok")
	h.clock.Advance(20 * time.Millisecond)
	h.runDue(t)
	in = h.info(t, "a")
	if !in.Operational || in.HealthFailures != 0 || in.LastHealth.IsZero() || in.WhyNot != "eligible" {
		t.Fatalf("after recovery: %+v", in)
	}
	if got := h.events.take(); !bridgeEqualStrings(got, []string{"up a"}) {
		t.Fatalf("events = %v", got)
	}
}

func TestBridgeHealthErrorBenches(t *testing.T) {
	h := newBridgeHarness(t, bridgeHealthConfig())
	h.addBridge(t, "a")
	h.addBridge(t, "b", "stress_level", "0.5")
	h.events.take()
	h.clock.Advance(20 * time.Millisecond)
	h.x.setAnswer(brewJID("a"), "internal-server-error")
	h.runDue(t)
	if got := h.x.iqCount(brewJID("a")); got != 1 {
		t.Fatalf("error answer retried: %d IQs", got)
	}
	if got := h.events.take(); !bridgeEqualStrings(got, []string{"failed a"}) {
		t.Fatalf("events = %v", got)
	}
	in := h.info(t, "a")
	if in.Operational || in.BenchedUntil.IsZero() || !strings.Contains(in.WhyNot, "benched") {
		t.Fatalf("after error: %+v", in)
	}
	// Still failing: no second event.
	h.clock.Advance(20 * time.Millisecond)
	h.runDue(t)
	if got := h.events.take(); len(got) != 0 {
		t.Fatalf("events = %v", got)
	}
	// It answers, but the bench has not passed: still not used.
	h.x.setAnswer(brewJID("a"), "ok")
	h.clock.Advance(20 * time.Millisecond)
	h.runDue(t)
	if in := h.info(t, "a"); in.Operational || !strings.Contains(in.WhyNot, "benched") {
		t.Fatalf("benched bridge operational early: %+v", in)
	}
	if c, _ := h.b.Select(SelectRequest{Conference: "c"}); c == nil || c.JID != brewJID("b") {
		t.Fatalf("benched bridge selected: %+v", c)
	}
	// Bench over and a check passed: back, with BridgeUp.
	h.clock.Advance(60 * time.Second)
	h.runDue(t)
	if in := h.info(t, "a"); !in.Operational {
		t.Fatalf("not back after the bench: %+v", in)
	}
	if got := h.events.take(); !bridgeEqualStrings(got, []string{"up a"}) {
		t.Fatalf("events = %v", got)
	}

	// Bench over without a passing check: still down.
	h.x.setAnswer(brewJID("a"), "service-unavailable")
	h.clock.Advance(20 * time.Millisecond)
	h.runDue(t)
	h.x.setAnswer(brewJID("a"), "timeout")
	h.clock.Advance(61 * time.Second)
	h.runDue(t)
	if in := h.info(t, "a"); in.Operational {
		t.Fatalf("operational after the bench without a passing check: %+v", in)
	}
	if got := h.events.take(); !bridgeEqualStrings(got, []string{"failed a"}) {
		t.Fatalf("events = %v", got)
	}
}

func TestBridgeHealthOtherErrorsAndDisconnect(t *testing.T) {
	h := newBridgeHarness(t, bridgeHealthConfig())
	h.addBridge(t, "a")
	h.events.take()
	h.clock.Advance(20 * time.Millisecond)
	h.x.setAnswer(brewJID("a"), "item-not-found")
	h.runDue(t)
	if in := h.info(t, "a"); !in.Operational || !strings.Contains(in.LastHealthResult, "item-not-found") {
		t.Fatalf("other error changed the state: %+v", in)
	}
	h.x.setAnswer(brewJID("a"), "down")
	h.clock.Advance(20 * time.Millisecond)
	h.runDue(t)
	if in := h.info(t, "a"); !in.Operational || in.HealthFailures != 0 {
		t.Fatalf("disconnect counted as a failure: %+v", in)
	}
	if got := h.events.take(); len(got) != 0 {
		t.Fatalf("events = %v", got)
	}
	if !strings.Contains(h.logs.String(), "unexpected error") {
		t.Fatal("other error not logged")
	}
}

func TestBridgeMarks(t *testing.T) {
	h := newBridgeHarness(t, bridgeHealthConfig())
	h.addBridge(t, "a")
	h.events.take()
	h.b.MarkNonOperational(brewJID("a"), "colibri2 timeout")
	if got := h.events.take(); len(got) != 0 {
		t.Fatalf("MarkNonOperational emitted %v", got)
	}
	if in := h.info(t, "a"); in.Operational || in.BenchedUntil.IsZero() || in.NonOpReason != "colibri2 timeout" {
		t.Fatalf("after MarkNonOperational: %+v", in)
	}
	h.b.MarkFailed(brewJID("a"), "colibri2 error")
	h.b.MarkFailed(brewJID("a"), "colibri2 error again")
	if got := h.events.take(); !bridgeEqualStrings(got, []string{"failed a"}) {
		t.Fatalf("events = %v", got)
	}
	h.b.MarkFailed(brewJID("ghost"), "x") // unknown: ignored
	h.b.MarkGracefulShutdown(brewJID("a"))
	if in := h.info(t, "a"); !in.GracefulShutdown {
		t.Fatal("MarkGracefulShutdown")
	}
	// With health checks disabled a non-operational bridge stays so.
	cfg := bridgeHealthConfig()
	cfg.HealthChecks = false
	h2 := newBridgeHarness(t, cfg)
	h2.addBridge(t, "a")
	h2.b.MarkNonOperational(brewJID("a"), "t")
	h2.clock.Advance(time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h2.b.Run(ctx); close(done) }()
	time.Sleep(30 * time.Millisecond)
	cancel()
	<-done
	if h2.b.OperationalCount() != 0 || h2.x.iqCount(brewJID("a")) != 0 {
		t.Fatal("health checks ran or the bridge recovered with checks disabled")
	}
}

func TestBridgeRunLoop(t *testing.T) {
	before := runtime.NumGoroutine()
	cfg := bridgeHealthConfig()
	h := newBridgeHarness(t, cfg)
	h.b.now = time.Now // real time for the loop
	h.addBridge(t, "ok")
	h.addBridge(t, "hang")
	h.addBridge(t, "err")
	h.x.setAnswer(brewJID("hang"), "hang")
	h.x.setAnswer(brewJID("err"), "internal-server-error")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.b.Run(ctx); close(done) }()

	deadline := time.Now().Add(5 * time.Second)
	for {
		ok := h.x.iqCount(brewJID("ok")) >= 3 && h.x.iqCount(brewJID("hang")) >= 2
		in, _ := h.b.Info(brewJID("hang"))
		if ok && !in.Operational {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("health loop did not progress: ok=%d hang=%d %+v", h.x.iqCount(brewJID("ok")), h.x.iqCount(brewJID("hang")), in)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// A hanging bridge did not hold up the others, and presences are
	// handled while checks are in flight.
	h.addBridge(t, "ok", "stress_level", "0.7")
	if in := h.info(t, "ok"); !in.Operational || in.Stress != 0.7 {
		t.Fatalf("ok bridge: %+v", in)
	}
	if in := h.info(t, "err"); in.Operational {
		t.Fatalf("err bridge: %+v", in)
	}
	// Leave during checks: results for a gone bridge are dropped.
	h.b.HandlePresence(NewElement(nsClient, "presence", "from", brewJID("hang"), "type", "unavailable"))
	cancel()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	deadline = time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("goroutines leaked: %d before, %d after", before, n)
	}
}

func TestBridgeHostilePresences(t *testing.T) {
	h := newBridgeHarness(t, testBridgesConfig())
	b := h.b
	h.addBridge(t, "good", "stress_level", "0.2", "region", "eu")

	// Garbage values: ignored (old values kept), logged, no crash.
	for _, v := range []string{"NaN", "nan", "Infinity", "-Infinity", "-0.5", "1e300", "2000000", "abc", "", "0x", "1,5", strings.Repeat("9", 1000)} {
		b.HandlePresence(bridgeStatsPresence("good", "stress_level", v, "average_participant_stress", v, "conferences", v))
	}
	in := h.info(t, "good")
	if in.Stress != 0.2 || in.AvgPartStress != 0.01 || in.Conferences != 0 {
		t.Fatalf("garbage was taken: %+v", in)
	}
	if !strings.Contains(h.logs.String(), "ignoring garbage stats") {
		t.Fatal("garbage not logged")
	}
	// Booleans other than true/false are garbage, not false.
	b.HandlePresence(bridgeStatsPresence("good", "drain", "yes", "shutting_down", "1"))
	if in := h.info(t, "good"); in.Drain || in.ShuttingDown {
		t.Fatalf("bool garbage taken: %+v", in)
	}
	// Too-long strings are dropped.
	b.HandlePresence(bridgeStatsPresence("good", "region", strings.Repeat("x", 10000)))
	if in := h.info(t, "good"); in.Region != "eu" {
		t.Fatal("huge region taken")
	}

	// A stats element with 10 000 stat children (the real ones at the end),
	// other children, nested junk, stats without names.
	st := NewElement(nsColibri, "stats")
	for i := 0; i < 10000; i++ {
		st.Add(NewElement(nsColibri, "stat", "name", fmt.Sprintf("junk_%d", i), "value", strings.Repeat("z", 20)))
	}
	st.Add(NewElement(nsColibri, "stat"), NewElement(nsColibri, "other", "name", "stress_level", "value", "0.9"),
		NewElement(nsColibri, "stat", "name", "stress_level").SetText("0.33"),
		NewElement(nsColibri, "stat", "name", "drain", "value", "FALSE"))
	big := NewElement(nsClient, "presence", "from", brewJID("big")).Add(st)
	if !b.HandlePresence(big) {
		t.Fatal("not consumed")
	}
	if in := h.info(t, "big"); in.Stress != 0.33 || in.Drain {
		t.Fatalf("big stats parsed wrong: %+v", in)
	}
	// Stats in the wrong namespace: not a bridge.
	b.HandlePresence(NewElement(nsClient, "presence", "from", brewJID("fake")).Add(
		NewElement("urn:other", "stats").Add(NewElement("urn:other", "stat", "name", "stress_level", "value", "0"))))
	// A stats-less presence from a bridge keeps it (and its stats).
	b.HandlePresence(NewElement(nsClient, "presence", "from", brewJID("good")))
	// Error presence from an occupant JID, and one from a JID without a room part.
	b.HandlePresence(NewElement(nsClient, "presence", "from", brewJID("good"), "type", "error"))
	b.HandlePresence(NewElement(nsClient, "presence", "from", "/jvb"))
	b.HandlePresence(NewElement(nsClient, "presence"))
	b.HandlePresence(nil)
	if got := h.nicks(); !bridgeEqualStrings(got, []string{"big", "good"}) {
		t.Fatalf("bridges = %v", got)
	}
	// Round-trip through the real parser: a malformed document never gets
	// here (the reader drops it), a parseable odd one does.
	p, err := ParseElement(`<presence xmlns="jabber:client" from="` + brewJID("x1") + `"><stats xmlns="http://jitsi.org/protocol/colibri"><stat name="stress_level" value="1.0E-4"/><stat name="stress_level" value="0.5"/><stat name="drain" value="false"/><stat name="x"><y><z/></y></stat></stats></presence>`)
	if err != nil {
		t.Fatal(err)
	}
	b.HandlePresence(p)
	if in := h.info(t, "x1"); in.Stress != 0.5 {
		t.Fatalf("last duplicate stat should win: %+v", in)
	}

	// A flood: 10 000 updates from 50 bridges, some leaving, garbage mixed in.
	h.events.take()
	for i := 0; i < 10000; i++ {
		nick := fmt.Sprintf("flood%d", i%50)
		switch {
		case i%97 == 0:
			b.HandlePresence(NewElement(nsClient, "presence", "from", brewJID(nick), "type", "unavailable"))
		case i%13 == 0:
			b.HandlePresence(bridgeStatsPresence(nick, "stress_level", "NaN", "drain", "maybe"))
		default:
			b.HandlePresence(bridgeStatsPresence(nick, "stress_level", fmt.Sprintf("%d.0E-3", i%800), "drain", "false", "version", "2.3"))
		}
	}
	// Final state: each flood bridge's last presence decides.
	want := map[string]bool{}
	for n := 0; n < 50; n++ {
		last := -1
		for i := 0; i < 10000; i++ {
			if i%50 == n {
				last = i
			}
		}
		want[fmt.Sprintf("flood%d", n)] = last%97 != 0
	}
	got := map[string]bool{}
	for _, in := range b.Snapshot() {
		if strings.HasPrefix(in.Nick, "flood") {
			got[in.Nick] = true
			if math.IsNaN(in.Stress) || in.Stress < 0 || in.Stress > 0.8 {
				t.Fatalf("bad stress after flood: %+v", in)
			}
		}
	}
	for n, present := range want {
		if got[n] != present {
			t.Fatalf("after the flood %s present=%v, want %v", n, got[n], present)
		}
	}
	// Added/removed events pair up.
	adds, removes := 0, 0
	for _, e := range h.events.take() {
		switch {
		case strings.HasPrefix(e, "added"):
			adds++
		case strings.HasPrefix(e, "removed"):
			removes++
		}
	}
	if adds-removes != len(got) {
		t.Fatalf("events: %d added, %d removed, %d present", adds, removes, len(got))
	}
	if _, err := b.Select(SelectRequest{Conference: "c"}); err != nil {
		t.Fatal(err)
	}
}

func TestBridgeTooManyBridges(t *testing.T) {
	h := newBridgeHarness(t, testBridgesConfig())
	for i := 0; i < maxBridges+10; i++ {
		h.b.HandlePresence(bridgeStatsPresence(fmt.Sprintf("b%d", i), "stress_level", "0.1"))
	}
	if n := len(h.b.Snapshot()); n != maxBridges {
		t.Fatalf("%d bridges tracked, limit %d", n, maxBridges)
	}
}

func TestBridgeSnapshotAndDebugHandler(t *testing.T) {
	h := newBridgeHarness(t, testBridgesConfig())
	h.addBridge(t, "a", "stress_level", "0.1")
	h.addBridge(t, "b", "stress_level", "0.1", "drain", "true")
	h.addBridge(t, "c", "stress_level", "0.9")
	h.addBridge(t, "d", "stress_level", "0.1", "graceful_shutdown", "true")
	h.addBridge(t, "e", "shutting_down", "true")
	h.addBridge(t, "f")
	h.b.MarkFailed(brewJID("f"), "colibri2 error")
	want := map[string]string{
		"a": "eligible", "b": "draining", "c": "overloaded", "d": "graceful shutdown",
		"e": "shutting down", "f": "benched until",
	}
	for _, in := range h.b.Snapshot() {
		if !strings.HasPrefix(in.WhyNot, want[in.Nick]) && !strings.Contains(in.WhyNot, want[in.Nick]) {
			t.Errorf("%s: why_not = %q, want %q", in.Nick, in.WhyNot, want[in.Nick])
		}
	}
	if h.b.OperationalCount() != 4 {
		t.Fatalf("OperationalCount = %d", h.b.OperationalCount())
	}

	rec := httptest.NewRecorder()
	h.b.DebugHandler(rec, httptest.NewRequest(http.MethodGet, "/debug/bridges", nil))
	if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		t.Fatalf("status %d %s", rec.Code, rec.Header().Get("Content-Type"))
	}
	var out []map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	if len(out) != 6 {
		t.Fatalf("%d bridges in JSON", len(out))
	}
	for _, k := range []string{"jid", "nick", "stress", "corrected_stress", "region", "relay_id", "version", "drain",
		"graceful_shutdown", "shutting_down", "operational", "health_failures", "endpoints", "why_not"} {
		if _, ok := out[0][k]; !ok {
			t.Errorf("JSON lacks %q: %v", k, out[0])
		}
	}
	if _, ok := out[5]["benched_until"]; !ok {
		t.Errorf("benched bridge lacks benched_until: %v", out[5])
	}

	// Only drained and overloaded bridges: they are eligible then.
	h2 := newBridgeHarness(t, testBridgesConfig())
	h2.addBridge(t, "x", "drain", "true", "stress_level", "0.9")
	if in := h2.info(t, "x"); in.WhyNot != "eligible" {
		t.Fatalf("why_not = %q", in.WhyNot)
	}
}

func TestBridgeSubscriberPanicContained(t *testing.T) {
	h := newBridgeHarness(t, testBridgesConfig())
	h.b.Subscribe(func(BridgeEvent) { panic("boom") })
	h.addBridge(t, "a")
	if got := h.events.take(); !bridgeEqualStrings(got, []string{"added a"}) {
		t.Fatalf("events = %v", got)
	}
}

func TestBridgeParseStatFloat(t *testing.T) {
	for in, want := range map[string]float64{"0.0": 0, "1.0E-4": 1e-4, "1.5e-3": 0.0015, "0": 0, "0.8": 0.8, "1000000": 1e6, "4.9E-324": 4.9e-324} {
		if v, ok := parseStatFloat(in); !ok || v != want {
			t.Errorf("parseStatFloat(%q) = %v, %v", in, v, ok)
		}
	}
	for _, in := range []string{"NaN", "Infinity", "-1", "1000001", "1e7", "", " ", "1.0E", "true"} {
		if _, ok := parseStatFloat(in); ok {
			t.Errorf("parseStatFloat(%q) accepted", in)
		}
	}
	if n, ok := parseStatCount("3.0"); !ok || n != 3 {
		t.Errorf("parseStatCount(3.0) = %d %v", n, ok)
	}
	if _, ok := parseStatCount("3.5"); ok {
		t.Error("parseStatCount(3.5) accepted")
	}
}

func FuzzBridgeStats(f *testing.F) {
	f.Add(`<stat name="stress_level" value="1.0E-4"/><stat name="drain" value="false"/>`)
	f.Add(`<stat name="stress_level" value="NaN"/><stat name="average_participant_stress" value="-1"/>`)
	f.Add(`<stat name="shutting_down" value="true"/><stat name="graceful_shutdown" value="TRUE"/><stat name="relay_id" value="r"/>`)
	f.Add(`<stat name="conferences" value="9999999999999999999999"/><stat name="version" value="2.3"/><stat name="release" value="1"/>`)
	f.Add(`<stat name="region">eu</stat><stat/><x/>`)
	f.Fuzz(func(t *testing.T, body string) {
		p, err := ParseElement(`<presence xmlns="jabber:client" from="` + brewJID("fz") + `"><stats xmlns="http://jitsi.org/protocol/colibri">` + body + `</stats></presence>`)
		if err != nil {
			return
		}
		h := newBridgeHarness(t, testBridgesConfig())
		h.b.log = slog.New(slog.NewTextHandler(io.Discard, nil))
		h.addBridge(t, "other", "stress_level", "0.5")
		for i := 0; i < 2; i++ {
			if !h.b.HandlePresence(p) {
				t.Fatal("not consumed")
			}
		}
		for _, in := range h.b.Snapshot() {
			for _, v := range []float64{in.Stress, in.CorrectedStress, in.AvgPartStress} {
				if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 || v > 2*maxStatNumber {
					t.Fatalf("bad number in %+v", in)
				}
			}
			if len(in.Region) > maxStatString || len(in.RelayID) > maxStatString || in.Conferences < 0 || in.Participants < 0 {
				t.Fatalf("bad state %+v", in)
			}
		}
		if _, err := json.Marshal(h.b.Snapshot()); err != nil {
			t.Fatal(err)
		}
		c, err := h.b.Select(SelectRequest{Conference: "c", Current: map[string]int{brewJID("fz"): 1}})
		if err != nil && !errors.Is(err, ErrNoBridge) {
			t.Fatal(err)
		}
		if err == nil && c.JID == "" {
			t.Fatal("empty choice")
		}
	})
}
