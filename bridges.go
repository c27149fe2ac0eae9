package main

// bridges.go: the registry of videobridges found in the brewery MUC and
// bridge selection for new participants. How the registry learns about
// bridges is in bridgestats.go (brewery presence) and bridgehealth.go
// (health checks); /debug/bridges is in bridgeinfo.go.
//
// Shape: one mutex guards the registry. Presences (from the XMPP reader
// goroutine) update it in place and never wait on the network; health checks
// run from Run's ticker loop, one short-lived goroutine per due bridge, and
// no lock is held while an IQ is in flight. Events go to subscribers after
// the lock is released. A bridge is a brewery occupant whose presence
// carries colibri <stats>, named by its occupant JID (room@muc/nick); the
// rules for its state are in bridgehealth.go and docs/bridges.md.

import (
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"
)

// ErrNoBridge means no known bridge can take the participant.
var ErrNoBridge = errors.New("no usable bridge")

// BridgeEventKind says what happened to a bridge.
type BridgeEventKind int

// Bridge event kinds.
const (
	BridgeAdded            BridgeEventKind = iota + 1 // a new occupant with stats joined the brewery
	BridgeRemoved                                     // the occupant left the brewery (or the XMPP session was lost)
	BridgeFailed                                      // health check error or MarkFailed: move participants away
	BridgeShuttingDown                                // shutting_down became true: move participants away
	BridgeUp                                          // became operational again
	BridgeGracefulShutdown                            // graceful_shutdown became true: no new conferences
)

// BridgeEvent is delivered to subscribers.
type BridgeEvent struct {
	Kind   BridgeEventKind
	JID    string // the bridge's brewery occupant JID
	Reason string // human-readable cause
}

// SelectRequest asks for a bridge for one participant.
type SelectRequest struct {
	Conference string         // room JID (for logs and the reason)
	Region     string         // the participant's region, "" if unknown
	Current    map[string]int // bridge occupant JID → participants of this conference on it (counts ≤ 0 are ignored)
	Exclude    []string       // bridges not to use (for example one that just failed for this participant)
	// Version is the room's pinned bridge version ("version-release" or
	// "version"; "" for any). It decides while the conference has no live
	// bridge; after that the live bridges' version does (docs/bridges.md#versions-and-pinning).
	Version string
	// OneBridge: nothing links bridges in this build (no cascading), so a
	// conference that has a live bridge stays on it.
	OneBridge bool
}

// BridgeChoice is the answer to Select.
type BridgeChoice struct {
	JID     string
	Region  string
	RelayID string
	Version string // full version: version[-release]
	Reason  string // human-readable why
}

// bridge is the state of one brewery occupant with stats.
type bridge struct {
	jid  string // occupant JID as received
	nick string

	stress        float64
	avgPartStress float64 // 0: not reported, the config default applies
	region        string
	relayID       string
	version       string
	release       string
	drain         bool // true until reported
	graceful      bool // sticky
	shuttingDown  bool // sticky
	healthy       *bool
	conferences   int
	participants  int
	lastPresence  time.Time
	lastGarbage   time.Time // last time garbage stats were logged at warn level

	operational    bool
	nonOpReason    string
	failed         bool // health error or MarkFailed, until a health check passes
	benchedUntil   time.Time
	lastHealth     time.Time
	lastResult     string
	healthFailures int
	upReported     bool // last effective operational state told to subscribers

	nextCheck time.Time
	inFlight  bool

	recent    []time.Time // allocations within the ramp-up interval
	endpoints int

	// A feature may hold it as overloaded until then, saying why
	// (HoldOverloaded).
	heldUntil time.Time
	heldWhy   string
}

// Bridges is the bridge registry and selector.
type Bridges struct {
	cfg     BridgesConfig
	brewery string // bare room JID, lower-case
	nick    string
	log     *slog.Logger
	now     func() time.Time
	iq      bridgeIQSender
	out     bridgeStanzaSender

	mu      sync.Mutex
	bridges map[string]*bridge // by key(occupant JID)
	rrLast  string             // key of the last round-robin pick
	missing map[string]bool    // bridges known when the session was lost (reportMissing)
	member  *breweryMember     // the focus in the brewery room (brewery.go)

	subMu sync.Mutex
	subs  []func(BridgeEvent)
}

// NewBridges returns the registry. With a non-nil x it registers its own
// OnSession callback: the brewery is joined after every login and all
// bridges are forgotten when the session goes down (callers need not call
// Join themselves; doing so as well is harmless). The caller routes
// presences to HandlePresence and runs Run for the health checks.
func NewBridges(cfg BridgesConfig, focusNick string, x *XMPPClient, log *slog.Logger) *Bridges {
	if log == nil {
		log = slog.Default()
	}
	if focusNick == "" {
		focusNick = "focus"
	}
	if cfg.Strategy == "" {
		cfg.Strategy = "least-load"
	}
	if cfg.StressThreshold <= 0 {
		cfg.StressThreshold = 0.8
	}
	if cfg.MaxParticipantsPerBridge <= 0 {
		cfg.MaxParticipantsPerBridge = 80
	}
	if cfg.AverageParticipantStress <= 0 {
		cfg.AverageParticipantStress = 0.01
	}
	if cfg.HealthInterval.Duration <= 0 {
		cfg.HealthInterval = Duration{10 * time.Second}
	}
	b := &Bridges{
		cfg:     cfg,
		brewery: strings.ToLower(strings.TrimSpace(cfg.Brewery)),
		nick:    focusNick,
		log:     log.With("component", "bridges"),
		now:     time.Now,
		bridges: map[string]*bridge{},
	}
	b.member = newBreweryMember(b.brewery, b.nick, "bridge", func() breweryConn {
		if b.out == nil {
			return nil
		}
		return b.out
	}, b.log, b.brewerySelfLost)
	if x != nil {
		b.iq = x
		b.out = x
		x.OnSession(b.onSession)
	}
	return b
}

// bridgeKey normalises an occupant JID: the room part is case-insensitive,
// the nick is not.
func bridgeKey(jid string) string {
	if i := strings.IndexByte(jid, '/'); i >= 0 {
		return strings.ToLower(jid[:i]) + jid[i:]
	}
	return strings.ToLower(jid)
}

// Subscribe registers f for bridge events. f runs outside any lock on the
// goroutine that caused the event (the XMPP reader, a health check, or a
// Mark* caller) and must not block.
func (b *Bridges) Subscribe(f func(BridgeEvent)) {
	b.subMu.Lock()
	b.subs = append(b.subs, f)
	b.subMu.Unlock()
}

func (b *Bridges) emit(evs []BridgeEvent) {
	if len(evs) == 0 {
		return
	}
	b.subMu.Lock()
	subs := append(([]func(BridgeEvent))(nil), b.subs...)
	b.subMu.Unlock()
	for _, ev := range evs {
		b.log.Info("bridge event", "event", ev.Kind.String(), "bridge", ev.JID, "reason", ev.Reason)
		for _, f := range subs {
			b.callSub(f, ev)
		}
	}
}

func (b *Bridges) callSub(f func(BridgeEvent), ev BridgeEvent) {
	defer func() {
		if r := recover(); r != nil {
			b.log.Error("bridge event subscriber panicked", "event", ev.Kind.String(), "bridge", ev.JID, "panic", r)
		}
	}()
	f(ev)
}

// State and load ---------------------------------------------------------------

func (br *bridge) fullVersion() string {
	if br.release != "" {
		return br.version + "-" + br.release
	}
	return br.version
}

// isOperational: marked operational and not benched.
func (br *bridge) isOperational(now time.Time) bool {
	return br.operational && !now.Before(br.benchedUntil)
}

func (b *Bridges) avgStress(br *bridge) float64 {
	if br.avgPartStress > 0 {
		return br.avgPartStress
	}
	return b.cfg.AverageParticipantStress
}

// recentLocked prunes and counts the allocations within the ramp-up interval.
func (b *Bridges) recentLocked(br *bridge, now time.Time) int {
	cut := now.Add(-b.cfg.RampUpInterval.Duration)
	i := 0
	for i < len(br.recent) && !br.recent[i].After(cut) {
		i++
	}
	if i > 0 {
		br.recent = append(br.recent[:0], br.recent[i:]...)
	}
	return len(br.recent)
}

func (b *Bridges) correctedLocked(br *bridge, now time.Time) float64 {
	s := br.stress + float64(b.recentLocked(br, now))*b.avgStress(br)
	if now.Before(br.heldUntil) {
		s = max(s, b.cfg.StressThreshold) // held as overloaded
	}
	return s
}

func (b *Bridges) noteAllocLocked(br *bridge, now time.Time) {
	if b.cfg.RampUpInterval.Duration > 0 {
		if len(br.recent) >= maxRecentAllocs {
			br.recent = br.recent[1:]
		}
		br.recent = append(br.recent, now)
	}
	br.endpoints++
}

// NoteReleased tells that one of the focus's participants left jid (or its
// allocation failed); it only affects the endpoints count shown in Snapshot.
func (b *Bridges) NoteReleased(jid string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if br := b.bridges[bridgeKey(jid)]; br != nil && br.endpoints > 0 {
		br.endpoints--
	}
}

// Selection ---------------------------------------------------------------------------

type bridgeCand struct {
	br         *bridge
	key        string
	corrected  float64
	conf       int  // this conference's participants on it
	inConf     bool // the conference uses it
	overloaded bool // corrected stress ≥ threshold
	full       bool // conf ≥ MaxParticipantsPerBridge
	// notPreferred: dropped by preferTiers (draining, graceful shutdown), and why.
	notPreferred string
}

func (c *bridgeCand) good() bool { return !c.overloaded && !c.full }

// Select picks a bridge for one participant and counts the allocation for
// the ramp-up correction.
func (b *Bridges) Select(req SelectRequest) (*BridgeChoice, error) {
	now := b.now()
	b.mu.Lock()
	c, reason, err := b.selectLocked(req, now)
	var choice *BridgeChoice
	if err == nil {
		b.noteAllocLocked(c.br, now)
		choice = &BridgeChoice{
			JID: c.br.jid, Region: c.br.region, RelayID: c.br.relayID,
			Version: c.br.fullVersion(), Reason: reason,
		}
	}
	b.mu.Unlock()
	if err != nil {
		b.log.Warn("no bridge for participant", "conference", req.Conference, "region", req.Region, "strategy", b.cfg.Strategy, "reason", err.Error())
		return nil, err
	}
	b.log.Debug("bridge selected", "conference", req.Conference, "region", req.Region, "strategy", b.cfg.Strategy,
		"bridge", choice.JID, "corrected_stress", c.corrected, "reason", reason)
	return choice, nil
}

// selectCtx is what a selection knows of the conference it chooses for.
type selectCtx struct {
	req       SelectRequest
	exclude   map[string]bool
	current   map[string]int // participants per bridge key
	live      []*bridgeCand  // the conference's usable bridges, most participants first
	inLive    map[string]bool
	relayless string // a live bridge without relay_id: no second bridge can join it
	// A conference keeps to one bridge version: that of its biggest live bridge.
	wantVersion, versionFrom string
}

// newSelectCtx prepares a selection for req; SelectRequest{} is a new conference.
func (b *Bridges) newSelectCtx(req SelectRequest, now time.Time) *selectCtx {
	sc := &selectCtx{req: req, exclude: map[string]bool{}, current: map[string]int{}, inLive: map[string]bool{}}
	for _, j := range req.Exclude {
		sc.exclude[bridgeKey(j)] = true
	}
	for j, n := range req.Current {
		if n > 0 {
			sc.current[bridgeKey(j)] += n
		}
	}
	// The conference's live bridges: known, operational, not shutting down.
	for k, n := range sc.current {
		br := b.bridges[k]
		if br == nil || !br.isOperational(now) || br.shuttingDown {
			continue
		}
		sc.live = append(sc.live, &bridgeCand{br: br, key: k, conf: n, inConf: true})
	}
	sort.Slice(sc.live, func(i, j int) bool {
		if sc.live[i].conf != sc.live[j].conf {
			return sc.live[i].conf > sc.live[j].conf
		}
		return sc.live[i].key < sc.live[j].key
	})
	for _, c := range sc.live {
		sc.inLive[c.key] = true
		if c.br.relayID == "" && sc.relayless == "" {
			sc.relayless = c.br.jid
		}
	}
	if len(sc.live) > 0 {
		sc.wantVersion, sc.versionFrom = sc.live[0].br.fullVersion(), sc.live[0].br.jid
	}
	if req.OneBridge {
		// A conference that cannot span bridges does not leave its live
		// bridge one participant at a time: a retry goes back to it.
		for k := range sc.inLive {
			delete(sc.exclude, k)
		}
	}
	return sc
}

// ineligible is the one test of whether the conference may use a bridge at
// all: "" when it may, else a short reason (selection counts these in its
// error) and a long one (why_not in /debug/bridges, with times).
func (b *Bridges) ineligible(k string, br *bridge, sc *selectCtx, now time.Time) (skip, whyNot string) {
	live := len(sc.live) > 0
	switch {
	case sc.exclude[k]:
		skip = "excluded"
	case br.shuttingDown:
		return "shutting down", "shutting down: never selected"
	case !br.operational && now.Before(br.benchedUntil):
		return "non-operational or benched", fmt.Sprintf("non-operational (%s); benched until %s and needs a passing health check", br.nonOpReason, br.benchedUntil.UTC().Format(time.RFC3339))
	case !br.operational:
		return "non-operational or benched", fmt.Sprintf("non-operational (%s) until a health check passes", br.nonOpReason)
	case now.Before(br.benchedUntil):
		return "non-operational or benched", fmt.Sprintf("benched after a failure until %s", br.benchedUntil.UTC().Format(time.RFC3339))
	case !live && sc.req.Version != "" && br.fullVersion() != sc.req.Version && br.version != sc.req.Version:
		skip = fmt.Sprintf("version is not %q (the room is pinned to it)", sc.req.Version)
	case live && br.fullVersion() != sc.wantVersion:
		skip = fmt.Sprintf("version is not %q like %s", sc.wantVersion, sc.versionFrom)
	case live && !sc.inLive[k] && sc.req.OneBridge:
		skip = "not linked to the conference's bridge (no cascading)"
	case live && !sc.inLive[k] && sc.relayless != "":
		skip = fmt.Sprintf("conference bridge %s has no relay_id", sc.relayless)
	case live && !sc.inLive[k] && br.relayID == "":
		skip = "no relay_id (the conference already uses another bridge)"
	}
	return skip, skip
}

// candidates returns the bridges the conference may use (JID order) and the
// short reasons the others were skipped for.
func (b *Bridges) candidates(sc *selectCtx, now time.Time) ([]*bridgeCand, map[string]int) {
	keys := make([]string, 0, len(b.bridges))
	for k := range b.bridges {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	skipped := map[string]int{}
	var cands []*bridgeCand
	for _, k := range keys {
		br := b.bridges[k]
		if skip, _ := b.ineligible(k, br, sc, now); skip != "" {
			skipped[skip]++
			continue
		}
		n := sc.current[k]
		corr := b.correctedLocked(br, now)
		cands = append(cands, &bridgeCand{
			br: br, key: k, corrected: corr, conf: n, inConf: sc.inLive[k],
			overloaded: corr >= b.cfg.StressThreshold,
			full:       n >= b.cfg.MaxParticipantsPerBridge,
		})
	}
	return cands, skipped
}

// preferTiers keeps the non-draining bridges, then of those the ones not in
// graceful shutdown, unless that would leave none. It marks each dropped
// candidate with why (notPreferred) and returns notes for the reason.
func preferTiers(cands []*bridgeCand) (kept []*bridgeCand, notes []string) {
	tiers := []struct {
		out     func(*bridgeCand) bool
		why     string
		skipped string
		all     string
	}{
		{func(c *bridgeCand) bool { return c.br.drain }, "draining: non-draining bridges are preferred", "%d draining skipped", "all usable bridges are draining"},
		{func(c *bridgeCand) bool { return c.br.graceful }, "graceful shutdown: other bridges are preferred", "%d in graceful shutdown skipped", "all usable bridges are in graceful shutdown"},
	}
	for _, t := range tiers {
		k := filterCands(cands, func(c *bridgeCand) bool { return !t.out(c) })
		if len(k) == 0 {
			notes = append(notes, t.all)
			continue
		}
		if len(k) < len(cands) {
			notes = append(notes, fmt.Sprintf(t.skipped, len(cands)-len(k)))
			for _, c := range cands {
				if t.out(c) {
					c.notPreferred = t.why
				}
			}
		}
		cands = k
	}
	return cands, notes
}

func (b *Bridges) selectLocked(req SelectRequest, now time.Time) (*bridgeCand, string, error) {
	sc := b.newSelectCtx(req, now)
	live := sc.live
	cands, skipped := b.candidates(sc, now)
	if len(cands) == 0 {
		why := "no bridges in the brewery"
		if len(b.bridges) > 0 {
			why = fmt.Sprintf("none of %d bridges is usable: %s", len(b.bridges), describeSkips(skipped))
		}
		return nil, "", fmt.Errorf("%w: %s", ErrNoBridge, why)
	}

	strategy := b.cfg.Strategy
	// single: a conference stays on its bridge while it is usable, whatever
	// its load or drain state.
	if strategy == "single" && len(live) > 0 {
		for _, c := range cands {
			if c.key == live[0].key {
				return c, "single: the conference stays on the bridge it started on", nil
			}
		}
	}

	cands, notes := preferTiers(cands)
	if len(skipped) > 0 {
		notes = append(notes, "not usable: "+describeSkips(skipped))
	}

	var pick *bridgeCand
	var why string
	switch strategy {
	case "round-robin":
		if good := filterCands(cands, (*bridgeCand).good); len(good) > 0 {
			pick = good[0]
			for _, c := range good {
				if c.key > b.rrLast {
					pick = c
					break
				}
			}
			why = fmt.Sprintf("next in rotation among %d bridges with room", len(good))
		}
	case "region", "single":
		pick, why = b.pickInRegion(cands, req, strategy)
	}
	if pick == nil {
		pick, why = b.leastLoadPick(cands)
		if strategy != "least-load" {
			why = "fallback to least-load: " + why
		}
	}
	if strategy == "round-robin" {
		b.rrLast = pick.key
	}
	reason := fmt.Sprintf("%s: %s (corrected stress %.4f, %d of this conference's participants on it)", strategy, why, pick.corrected, pick.conf)
	if len(notes) > 0 {
		reason += "; " + strings.Join(notes, "; ")
	}
	return pick, reason, nil
}

// leastLoadPick: a conference bridge with room, else the least loaded bridge
// with room, else (all overloaded) the least loaded one below the
// per-conference cap, else the least loaded of all.
func (b *Bridges) leastLoadPick(cands []*bridgeCand) (*bridgeCand, string) {
	good := filterCands(cands, (*bridgeCand).good)
	if conf := filterCands(good, func(c *bridgeCand) bool { return c.inConf }); len(conf) > 0 {
		return leastLoaded(conf), "the conference already uses it and it is not overloaded"
	}
	if len(good) > 0 {
		return leastLoaded(good), fmt.Sprintf("lowest corrected stress among %d bridges with room", len(good))
	}
	if notFull := filterCands(cands, func(c *bridgeCand) bool { return !c.full }); len(notFull) > 0 {
		return leastLoaded(notFull), fmt.Sprintf("every usable bridge is over the stress threshold %.2f; least loaded", b.cfg.StressThreshold)
	}
	return leastLoaded(cands), fmt.Sprintf("every usable bridge already has %d participants of this conference; least loaded", b.cfg.MaxParticipantsPerBridge)
}

func filterCands(cands []*bridgeCand, keep func(*bridgeCand) bool) []*bridgeCand {
	var out []*bridgeCand
	for _, c := range cands {
		if keep(c) {
			out = append(out, c)
		}
	}
	return out
}

// leastLoaded: lowest corrected stress; ties go to the first (JID order).
func leastLoaded(cands []*bridgeCand) *bridgeCand {
	best := cands[0]
	for _, c := range cands[1:] {
		if c.corrected < best.corrected {
			best = c
		}
	}
	return best
}

func describeSkips(m map[string]int) string {
	parts := make([]string, 0, len(m))
	for why, n := range m {
		parts = append(parts, fmt.Sprintf("%d %s", n, why))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}
