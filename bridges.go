package main

// bridges.go: the registry of videobridges found in the brewery MUC, their
// health checks, and bridge selection for new participants.
//
// Shape: one mutex guards the registry. Presences (from the XMPP reader
// goroutine) update it in place and never wait on the network; health checks
// run from Run's ticker loop, one short-lived goroutine per due bridge, and
// no lock is held while an IQ is in flight. Events go to subscribers after
// the lock is released.
//
// Bridge state rules (see docs/bridges.md#bridges-in-the-brewery and the rest of docs/bridges.md):
//   - a bridge is a brewery occupant whose presence carries colibri <stats>;
//     it is identified by its occupant JID (room@muc/nick), and every IQ to it
//     goes to that JID;
//   - drain reads as true until the bridge reports it; graceful_shutdown and
//     shutting_down are sticky for as long as the occupant stays;
//   - health: a timeout (after one retry) makes the bridge non-operational
//     until it answers again; an internal-server-error/service-unavailable
//     reply (or MarkFailed/MarkNonOperational) also benches it for
//     FailureBench, and it is used again only once the bench has passed and
//     a health check has passed since the failure.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Bridge registry limits: the brewery is an internal room, but a
// misconfigured or hostile occupant must not grow memory without bound.
const (
	maxBridges        = 4096      // occupants with stats tracked at most
	maxStatString     = 256       // longest region/relay_id/version/release kept
	maxStatNumber     = 1e6       // larger stress values are garbage
	maxStatCount      = 1_000_000 // larger conference/participant counts are garbage
	maxRecentAllocs   = 100_000   // ramp-up timestamps kept per bridge
	breweryRejoinWait = 15 * time.Second
	garbageLogEvery   = 30 * time.Second
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

func (k BridgeEventKind) String() string {
	switch k {
	case BridgeAdded:
		return "added"
	case BridgeRemoved:
		return "removed"
	case BridgeFailed:
		return "failed"
	case BridgeShuttingDown:
		return "shutting-down"
	case BridgeUp:
		return "up"
	case BridgeGracefulShutdown:
		return "graceful-shutdown"
	}
	return "unknown(" + strconv.Itoa(int(k)) + ")"
}

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
}

// BridgeChoice is the answer to Select.
type BridgeChoice struct {
	JID     string
	Region  string
	RelayID string
	Version string // full version: version[-release]
	Reason  string // human-readable why
}

// BridgeInfo is one bridge as /debug/bridges shows it.
type BridgeInfo struct {
	JID              string    `json:"jid"`
	Nick             string    `json:"nick"`
	Stress           float64   `json:"stress"`
	CorrectedStress  float64   `json:"corrected_stress"`
	AvgPartStress    float64   `json:"average_participant_stress"`
	Region           string    `json:"region"`
	RelayID          string    `json:"relay_id"`
	Version          string    `json:"version"`
	Drain            bool      `json:"drain"`
	GracefulShutdown bool      `json:"graceful_shutdown"`
	ShuttingDown     bool      `json:"shutting_down"`
	Healthy          *bool     `json:"healthy,omitempty"` // as the bridge reports it in presence
	Conferences      int       `json:"conferences"`
	Participants     int       `json:"participants"`
	Operational      bool      `json:"operational"`
	NonOpReason      string    `json:"non_operational_reason,omitempty"`
	BenchedUntil     time.Time `json:"benched_until,omitzero"`
	LastHealth       time.Time `json:"last_health,omitzero"` // last health check that passed
	LastHealthResult string    `json:"last_health_result,omitempty"`
	HealthFailures   int       `json:"health_failures"` // consecutive
	Endpoints        int       `json:"endpoints"`       // placed by this focus (Select/NoteAllocated − NoteReleased)
	RecentEndpoints  int       `json:"recent_endpoints"`
	LastPresence     time.Time `json:"last_presence"`
	ICEFailingUntil  time.Time `json:"ice_failing_until,omitzero"`
	WhyNot           string    `json:"why_not"` // why a new conference would not get it now, or "eligible"
}

// Senders the registry needs; *XMPPClient implements both, tests fake them.
type bridgeIQSender interface {
	SendIQ(ctx context.Context, iq *Element) (*Element, error)
}

type bridgeStanzaSender interface {
	Send(el *Element) error
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

	// ICE-failure detection: accepted restart requests of its endpoints,
	// and until when it counts as failing ICE.
	restarts        []time.Time
	iceFailingUntil time.Time
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

	mu          sync.Mutex
	bridges     map[string]*bridge // by key(occupant JID)
	rrLast      string             // key of the last round-robin pick
	sessionUp   bool
	joinSent    bool
	joined      bool
	leaving     bool // Leave was called: the focus is shutting down
	sessionGen  uint64
	rejoinTimer *time.Timer
	missing     map[string]bool // bridges known when the session was lost (reportMissing)
	rejoinWait  time.Duration   // after a failed join or being removed from the brewery

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
		cfg:        cfg,
		brewery:    strings.ToLower(strings.TrimSpace(cfg.Brewery)),
		nick:       focusNick,
		log:        log.With("component", "bridges"),
		now:        time.Now,
		bridges:    map[string]*bridge{},
		rejoinWait: breweryRejoinWait,
	}
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

// Brewery membership ----------------------------------------------------------

// onSession follows the XMPP session: join after login, forget on loss.
func (b *Bridges) onSession(up bool) {
	if up {
		if err := b.Join(); err != nil {
			b.log.Warn("cannot join the bridge brewery", "brewery", b.brewery, "err", err)
		}
		// Bridges that were there before the loss show up again in the
		// brewery's presences on the re-join; those that do not are gone.
		time.AfterFunc(b.missingGrace(), b.reportMissing)
		return
	}
	b.sessionDown("XMPP session lost")
}

// missingGrace is how long after a new login a bridge known before it has
// to reappear in the brewery.
func (b *Bridges) missingGrace() time.Duration {
	return max(2*b.cfg.HealthInterval.Duration, time.Second)
}

// reportMissing tells subscribers that the bridges known before the XMPP
// session was lost did not come back. While that connection was down their
// removal meant nothing (conferences keep their sessions through a blip);
// now it does, and conferences move their participants.
func (b *Bridges) reportMissing() {
	b.mu.Lock()
	var evs []BridgeEvent
	if b.sessionUp || b.joinSent {
		for _, jid := range slices.Sorted(maps.Keys(b.missing)) {
			if b.bridges[bridgeKey(jid)] == nil {
				evs = append(evs, BridgeEvent{Kind: BridgeRemoved, JID: jid, Reason: "did not come back after the XMPP session was lost"})
			}
		}
		b.missing = nil
	}
	b.mu.Unlock()
	if len(evs) > 0 {
		b.log.Warn("bridges did not come back after the XMPP session was lost", "count", len(evs))
	}
	b.emit(evs)
}

// Join sends the brewery join presence (nick = the focus nick). It does
// nothing if the join was already sent in this session.
func (b *Bridges) Join() error {
	b.mu.Lock()
	if b.joinSent {
		b.mu.Unlock()
		return nil
	}
	b.sessionUp = true
	b.joinSent = true
	b.mu.Unlock()
	return b.sendJoin()
}

func (b *Bridges) sendJoin() error {
	if b.out == nil {
		return ErrNotConnected
	}
	if b.brewery == "" {
		return errors.New("no brewery configured (bridges.brewery)")
	}
	p := NewElement(nsClient, "presence", "to", b.brewery+"/"+b.nick)
	p.Add(NewElement(nsMUC, "x"))
	b.log.Info("joining the bridge brewery", "brewery", b.brewery, "nick", b.nick)
	return b.out.Send(p)
}

// Leave leaves the brewery for good (the focus is shutting down): the
// self-presence that follows is expected, not a kick to recover from.
func (b *Bridges) Leave() {
	b.mu.Lock()
	b.leaving = true
	joined := b.joined
	b.mu.Unlock()
	if joined && b.out != nil {
		_ = b.out.Send(NewElement(nsClient, "presence", "to", b.brewery+"/"+b.nick, "type", "unavailable"))
	}
}

// sessionDown forgets every bridge (they come back with the brewery
// presences after the next join).
func (b *Bridges) sessionDown(reason string) {
	b.mu.Lock()
	b.sessionUp = false
	b.joinSent = false
	b.joined = false
	b.sessionGen++
	if b.rejoinTimer != nil {
		b.rejoinTimer.Stop()
		b.rejoinTimer = nil
	}
	evs := b.forgetAllLocked(reason)
	if b.missing == nil {
		b.missing = map[string]bool{}
	}
	for _, ev := range evs {
		if len(b.missing) < 10000 {
			b.missing[ev.JID] = true
		}
	}
	b.mu.Unlock()
	b.emit(evs)
}

func (b *Bridges) forgetAllLocked(reason string) []BridgeEvent {
	keys := make([]string, 0, len(b.bridges))
	for k := range b.bridges {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	evs := make([]BridgeEvent, 0, len(keys))
	for _, k := range keys {
		evs = append(evs, BridgeEvent{Kind: BridgeRemoved, JID: b.bridges[k].jid, Reason: reason})
		delete(b.bridges, k)
	}
	return evs
}

// scheduleRejoinLocked re-sends the join presence after a wait, unless the
// session changed meanwhile.
func (b *Bridges) scheduleRejoinLocked() {
	if !b.sessionUp || b.rejoinTimer != nil {
		return
	}
	gen := b.sessionGen
	b.rejoinTimer = time.AfterFunc(b.rejoinWait, func() {
		b.mu.Lock()
		ok := b.sessionUp && b.sessionGen == gen && !b.joined
		b.rejoinTimer = nil
		b.mu.Unlock()
		if ok {
			if err := b.sendJoin(); err != nil {
				b.log.Warn("cannot re-join the bridge brewery", "err", err)
			}
		}
	})
}

// HandlePresence consumes presences from the brewery room and reports
// whether it did (the presence router offers every presence here first).
func (b *Bridges) HandlePresence(p *Element) bool {
	if p == nil || p.Local != "presence" {
		return false
	}
	from := p.Attr("from")
	bare, nick, _ := strings.Cut(from, "/")
	if b.brewery == "" || !strings.EqualFold(bare, b.brewery) {
		return false
	}
	if nick == "" {
		return true // from the room itself: nothing for us
	}
	typ := p.Attr("type")
	if nick == b.nick {
		b.handleSelfPresence(p, typ)
		return true
	}
	switch typ {
	case "unavailable":
		b.removeBridge(from, "left the brewery")
		return true
	case "", "available":
	default:
		return true // error, probe, subscription types: not occupant state
	}
	stats := p.Child(nsColibri, "stats")
	if stats == nil {
		return true // an occupant without stats is not (yet) a bridge
	}
	b.updateBridge(from, nick, stats)
	return true
}

func (b *Bridges) handleSelfPresence(p *Element, typ string) {
	switch typ {
	case "error":
		se := ParseStanzaError(p)
		b.log.Error("joining the bridge brewery failed; retrying", "brewery", b.brewery, "err", se.Error(), "retry_in", b.rejoinWait)
		b.mu.Lock()
		b.joined = false
		b.scheduleRejoinLocked()
		b.mu.Unlock()
	case "unavailable":
		b.mu.Lock()
		if b.leaving {
			b.joined = false
			b.mu.Unlock()
			b.log.Info("left the bridge brewery", "brewery", b.brewery)
			return
		}
		b.mu.Unlock()
		b.log.Warn("the focus left or was removed from the bridge brewery; forgetting its bridges and re-joining", "brewery", b.brewery)
		b.mu.Lock()
		b.joined = false
		evs := b.forgetAllLocked("the focus is no longer in the brewery")
		b.scheduleRejoinLocked()
		b.mu.Unlock()
		b.emit(evs)
	case "", "available":
		created := false
		for _, x := range p.All(nsMUCUser, "x") {
			for _, st := range x.All(nsMUCUser, "status") {
				if st.Attr("code") == "201" {
					created = true
				}
			}
		}
		b.mu.Lock()
		first := !b.joined
		b.joined = true
		b.mu.Unlock()
		if first {
			b.log.Info("joined the bridge brewery", "brewery", b.brewery)
		}
		if created && b.out != nil {
			// We created the room: unlock it (instant room, whois=anyone)
			// so the bridges can join. Fire and forget; a failure shows
			// as bridges never appearing, which /debug/bridges tells.
			form := NewElement(nsDataForms, "x", "type", "submit").Add(
				NewElement(nsDataForms, "field", "var", "FORM_TYPE").Add(NewElement(nsDataForms, "value").SetText("http://jabber.org/protocol/muc#roomconfig")),
				NewElement(nsDataForms, "field", "var", "muc#roomconfig_whois").Add(NewElement(nsDataForms, "value").SetText("anyone")),
			)
			iq := NewIQ("set", b.brewery, randomID(), NewElement(nsMUCOwner, "query").Add(form))
			if err := b.out.Send(iq); err != nil {
				b.log.Warn("cannot configure the new brewery room", "err", err)
			}
		}
	}
}

func (b *Bridges) removeBridge(jid, reason string) {
	k := bridgeKey(jid)
	b.mu.Lock()
	br, ok := b.bridges[k]
	if ok {
		delete(b.bridges, k)
	}
	b.mu.Unlock()
	if ok {
		b.emit([]BridgeEvent{{Kind: BridgeRemoved, JID: br.jid, Reason: reason}})
	}
}

// bridgeStats is what one <stats> element says; has* flags mark the stats
// present and valid.
type bridgeStats struct {
	stress, avgStress                      float64
	hasStress, hasAvgStress                bool
	region, relayID, version, release      string
	hasRegion, hasRelay, hasVer, hasRel    bool
	drain, graceful, shutting, healthy     bool
	hasDrain, hasGraceful, hasShut, hasHlt bool
	conferences, participants              int
	hasConfs, hasParts                     bool
}

// parseBridgeStats reads the stats the focus uses from <stats>. Values that
// do not parse or are out of range are skipped and described in problems.
func parseBridgeStats(stats *Element) (s bridgeStats, problems []string) {
	bad := func(name, value, why string) {
		if len(problems) < 8 {
			problems = append(problems, fmt.Sprintf("%s=%q: %s", truncate(name, 40), truncate(value, 40), why))
		}
	}
	for _, st := range stats.Children {
		if st.Local != "stat" {
			continue
		}
		name := st.Attr("name")
		value := st.Attr("value")
		if !st.HasAttr("value") {
			value = st.Text
		}
		value = strings.TrimSpace(value)
		switch name {
		case "stress_level":
			if v, ok := parseStatFloat(value); ok {
				s.stress, s.hasStress = v, true
			} else {
				bad(name, value, "not a number in [0, 1e6]")
			}
		case "average_participant_stress":
			if v, ok := parseStatFloat(value); ok {
				s.avgStress, s.hasAvgStress = v, true
			} else {
				bad(name, value, "not a number in [0, 1e6]")
			}
		case "region", "relay_id", "version", "release":
			if len(value) > maxStatString {
				bad(name, value, "longer than "+strconv.Itoa(maxStatString)+" bytes")
				continue
			}
			switch name {
			case "region":
				s.region, s.hasRegion = value, true
			case "relay_id":
				s.relayID, s.hasRelay = value, true
			case "version":
				s.version, s.hasVer = value, true
			case "release":
				s.release, s.hasRel = value, true
			}
		case "drain", "graceful_shutdown", "shutting_down", "healthy":
			v, ok := parseStatBool(value)
			if !ok {
				bad(name, value, "not true/false")
				continue
			}
			switch name {
			case "drain":
				s.drain, s.hasDrain = v, true
			case "graceful_shutdown":
				s.graceful, s.hasGraceful = v, true
			case "shutting_down":
				s.shutting, s.hasShut = v, true
			case "healthy":
				s.healthy, s.hasHlt = v, true
			}
		case "conferences", "participants":
			v, ok := parseStatCount(value)
			if !ok {
				bad(name, value, "not a count")
				continue
			}
			if name == "conferences" {
				s.conferences, s.hasConfs = v, true
			} else {
				s.participants, s.hasParts = v, true
			}
		}
	}
	return s, problems
}

// parseStatFloat accepts Java's Double.toString output ("0.0", "1.0E-4")
// and plain decimals; NaN, infinities, negatives and absurd values fail.
func parseStatFloat(s string) (float64, bool) {
	if s == "" || len(s) > 64 {
		return 0, false
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v < 0 || v > maxStatNumber {
		return 0, false
	}
	return v, true
}

// parseStatBool is Java's Boolean.parseBoolean made strict: anything other
// than true/false (any case) is garbage rather than false.
func parseStatBool(s string) (bool, bool) {
	switch {
	case strings.EqualFold(s, "true"):
		return true, true
	case strings.EqualFold(s, "false"):
		return false, true
	}
	return false, false
}

func parseStatCount(s string) (int, bool) {
	if s == "" || len(s) > 32 {
		return 0, false
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 || n > maxStatCount {
			return 0, false
		}
		return int(n), true
	}
	// "3.0" from a double-valued gauge.
	v, ok := parseStatFloat(s)
	if !ok || v != math.Trunc(v) || v > maxStatCount {
		return 0, false
	}
	return int(v), true
}

func (b *Bridges) updateBridge(jid, nick string, stats *Element) {
	s, problems := parseBridgeStats(stats)
	now := b.now()
	k := bridgeKey(jid)
	var evs []BridgeEvent
	b.mu.Lock()
	br, ok := b.bridges[k]
	if !ok {
		if len(b.bridges) >= maxBridges {
			b.mu.Unlock()
			b.log.Warn("too many bridges in the brewery; ignoring a new one", "bridge", jid, "limit", maxBridges)
			return
		}
		br = &bridge{
			jid: jid, nick: nick,
			drain:       true,
			operational: true,
			upReported:  true,
			nextCheck:   now.Add(b.cfg.HealthInterval.Duration),
		}
		b.bridges[k] = br
		evs = append(evs, BridgeEvent{Kind: BridgeAdded, JID: jid, Reason: "joined the brewery with stats"})
	}
	br.lastPresence = now
	if s.hasStress {
		br.stress = s.stress
	}
	if s.hasAvgStress {
		br.avgPartStress = s.avgStress
	}
	if s.hasRegion {
		br.region = s.region
	}
	if s.hasRelay {
		br.relayID = s.relayID
	}
	if s.hasVer {
		br.version = s.version
	}
	if s.hasRel {
		br.release = s.release
	}
	if s.hasDrain {
		br.drain = s.drain
	}
	if s.hasGraceful && s.graceful && !br.graceful {
		br.graceful = true
		if ok {
			evs = append(evs, BridgeEvent{Kind: BridgeGracefulShutdown, JID: jid, Reason: "bridge reports graceful_shutdown"})
		}
	}
	if s.hasShut && s.shutting && !br.shuttingDown {
		br.shuttingDown = true
		if ok {
			evs = append(evs, BridgeEvent{Kind: BridgeShuttingDown, JID: jid, Reason: "bridge reports shutting_down"})
		}
	}
	if s.hasHlt {
		h := s.healthy
		br.healthy = &h
	}
	if s.hasConfs {
		br.conferences = s.conferences
	}
	if s.hasParts {
		br.participants = s.participants
	}
	logWarn := false
	if len(problems) > 0 && now.Sub(br.lastGarbage) >= garbageLogEvery {
		br.lastGarbage = now
		logWarn = true
	}
	b.mu.Unlock()
	if len(problems) > 0 {
		if logWarn {
			b.log.Warn("ignoring garbage stats from a bridge", "bridge", jid, "problems", strings.Join(problems, "; "))
		} else {
			b.log.Debug("ignoring garbage stats from a bridge", "bridge", jid, "problems", strings.Join(problems, "; "))
		}
	}
	b.emit(evs)
}

// State and marks ---------------------------------------------------------------

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
	if now.Before(br.iceFailingUntil) {
		s = max(s, b.cfg.StressThreshold) // failing ICE reads as overloaded
	}
	return s
}

// maxRestartsKept bounds the restart times kept per bridge.
const maxRestartsKept = 10000

// RestartRequested counts an accepted restart request (a session-terminate
// with restart, or ICE failed) of an endpoint on the bridge, for ICE-failure
// detection (docs/bridges.md#ice-failure-detection): when the bridge has at least min-endpoints
// endpoints and more than threshold × endpoints restarts within interval,
// its clients cannot reach it (a firewall, a wrong public address), so it
// reads as overloaded for timeout: new participants go elsewhere while any
// other bridge has room.
func (b *Bridges) RestartRequested(jid string) {
	cfg := b.cfg.ICEFailure
	if !cfg.Enabled || jid == "" {
		return
	}
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	br := b.bridges[bridgeKey(jid)]
	if br == nil {
		return
	}
	cut := now.Add(-cfg.Interval.Duration)
	i := 0
	for i < len(br.restarts) && !br.restarts[i].After(cut) {
		i++
	}
	br.restarts = append(br.restarts[i:], now)
	if len(br.restarts) > maxRestartsKept {
		br.restarts = br.restarts[len(br.restarts)-maxRestartsKept:]
	}
	endpoints := max(br.participants, br.endpoints)
	if endpoints < cfg.MinEndpoints || float64(len(br.restarts)) <= cfg.Threshold*float64(endpoints) || now.Before(br.iceFailingUntil) {
		return
	}
	br.iceFailingUntil = now.Add(cfg.Timeout.Duration)
	b.log.Warn("bridge is failing ICE: new participants go to other bridges", "bridge", br.jid,
		"restarts", len(br.restarts), "endpoints", endpoints, "interval", cfg.Interval.Duration, "until", br.iceFailingUntil)
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

// NoteAllocated counts a participant placed on jid without Select (Select
// already counts its own choice). It feeds the ramp-up correction.
func (b *Bridges) NoteAllocated(jid string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if br := b.bridges[bridgeKey(jid)]; br != nil {
		b.noteAllocLocked(br, b.now())
	}
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

// markDownLocked takes a bridge out of service. bench: also bench it for
// FailureBench. failed: also report BridgeFailed (if it was not failed yet).
func (b *Bridges) markDownLocked(br *bridge, now time.Time, reason string, bench, failed bool) []BridgeEvent {
	br.operational = false
	br.nonOpReason = reason
	if bench && b.cfg.FailureBench.Duration > 0 {
		if until := now.Add(b.cfg.FailureBench.Duration); until.After(br.benchedUntil) {
			br.benchedUntil = until
		}
	}
	var evs []BridgeEvent
	if failed && !br.failed {
		evs = append(evs, BridgeEvent{Kind: BridgeFailed, JID: br.jid, Reason: reason})
	}
	if failed {
		br.failed = true
	}
	if !br.isOperational(now) {
		br.upReported = false
	}
	return evs
}

// upEventsLocked reports bridges that became operational again.
func (b *Bridges) upEventsLocked(now time.Time) []BridgeEvent {
	var evs []BridgeEvent
	for _, br := range b.bridges {
		op := br.isOperational(now)
		if op && !br.upReported {
			evs = append(evs, BridgeEvent{Kind: BridgeUp, JID: br.jid, Reason: "operational again"})
		}
		br.upReported = op
	}
	sort.Slice(evs, func(i, j int) bool { return evs[i].JID < evs[j].JID })
	return evs
}

// MarkFailed takes jid out of service after a failure that warrants moving
// its participants (colibri2 errors): non-operational, benched for
// FailureBench, and a BridgeFailed event.
func (b *Bridges) MarkFailed(jid, reason string) {
	b.mark(jid, reason, true, true)
}

// MarkNonOperational takes jid out of service (a colibri2 timeout or an
// unexpected error) and benches it, without an event: the caller handles
// its own participants.
func (b *Bridges) MarkNonOperational(jid, reason string) {
	b.mark(jid, reason, true, false)
}

func (b *Bridges) mark(jid, reason string, bench, failed bool) {
	now := b.now()
	b.mu.Lock()
	br := b.bridges[bridgeKey(jid)]
	var evs []BridgeEvent
	if br != nil {
		evs = b.markDownLocked(br, now, reason, bench, failed)
	}
	b.mu.Unlock()
	if br == nil {
		b.log.Debug("mark for an unknown bridge ignored", "bridge", jid, "reason", reason)
		return
	}
	b.log.Warn("bridge taken out of service", "bridge", jid, "reason", reason, "failed", failed)
	b.emit(evs)
}

// MarkGracefulShutdown records that jid refused a new conference because it
// is shutting down gracefully (sticky while it stays in the brewery).
func (b *Bridges) MarkGracefulShutdown(jid string) {
	b.mu.Lock()
	br := b.bridges[bridgeKey(jid)]
	if br != nil {
		br.graceful = true
	}
	b.mu.Unlock()
	if br != nil {
		b.log.Info("bridge is in graceful shutdown", "bridge", jid)
	}
}

// Health checks -------------------------------------------------------------------

type healthOutcome int

const (
	healthPassed healthOutcome = iota
	healthTimedOut
	healthFailed  // internal-server-error / service-unavailable
	healthOther   // another error condition: logged only
	healthSkipped // not connected or shutting down: no verdict
)

// Run runs the health checks until ctx ends; it returns once every check it
// started has finished.
func (b *Bridges) Run(ctx context.Context) {
	if !b.cfg.HealthChecks || b.iq == nil {
		<-ctx.Done()
		return
	}
	interval := b.cfg.HealthInterval.Duration
	tick := time.NewTicker(min(max(interval/10, 10*time.Millisecond), time.Second))
	var wg sync.WaitGroup
	defer func() {
		tick.Stop()
		wg.Wait()
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for _, br := range b.dueChecks(b.now()) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				b.checkBridge(ctx, br)
			}()
		}
		b.mu.Lock()
		evs := b.upEventsLocked(b.now())
		b.mu.Unlock()
		b.emit(evs)
	}
}

// dueChecks marks and returns the bridges whose check is due.
func (b *Bridges) dueChecks(now time.Time) []*bridge {
	b.mu.Lock()
	defer b.mu.Unlock()
	var due []*bridge
	for _, br := range b.bridges {
		if !br.inFlight && !now.Before(br.nextCheck) {
			br.inFlight = true
			due = append(due, br)
		}
	}
	return due
}

// checkBridge runs one health check (with its retry) and applies the result.
func (b *Bridges) checkBridge(ctx context.Context, br *bridge) {
	if b.cfg.HealthUsePresence {
		out, detail := b.presenceHealth(br)
		b.applyHealth(br, out, detail)
		return
	}
	out, detail := b.probe(ctx, br.jid)
	b.applyHealth(br, out, detail)
}

// presenceHealth judges a bridge by its presence instead of health IQs
// (Jicofo's use-presence): silent for presence-timeout → timed out; its
// own healthy=false → failed.
func (b *Bridges) presenceHealth(br *bridge) (healthOutcome, string) {
	b.mu.Lock()
	last, healthy := br.lastPresence, br.healthy
	b.mu.Unlock()
	switch {
	case b.now().Sub(last) > b.cfg.PresenceTimeout.Duration:
		return healthTimedOut, "no presence for " + b.cfg.PresenceTimeout.Duration.String()
	case healthy != nil && !*healthy:
		return healthFailed, "the bridge reports healthy=false"
	}
	return healthPassed, "ok"
}

// probe sends the health-check IQ; with no answer within one interval it
// waits half an interval and tries once more.
func (b *Bridges) probe(ctx context.Context, jid string) (healthOutcome, string) {
	interval := b.cfg.HealthInterval.Duration
	for attempt := 0; attempt < 2; attempt++ {
		if attempt > 0 {
			t := time.NewTimer(interval / 2)
			select {
			case <-ctx.Done():
				t.Stop()
				return healthSkipped, "stopped"
			case <-t.C:
			}
		}
		cctx, cancel := context.WithTimeout(ctx, interval)
		_, err := b.iq.SendIQ(cctx, NewIQ("get", jid, "", NewElement(nsHealthCheck, "healthcheck")))
		cancel()
		if err == nil {
			return healthPassed, "ok"
		}
		if ctx.Err() != nil {
			return healthSkipped, "stopped"
		}
		var se *StanzaError
		switch {
		case errors.As(err, &se):
			if se.Condition == "internal-server-error" || se.Condition == "service-unavailable" {
				return healthFailed, "health check error: " + se.Error()
			}
			return healthOther, "health check error: " + se.Error()
		case errors.Is(err, ErrNotConnected):
			return healthSkipped, "not connected"
		}
		// ErrIQTimeout, our deadline, or a stuck write queue: no answer.
		b.log.Debug("bridge health check unanswered", "bridge", jid, "attempt", attempt+1, "err", err)
	}
	return healthTimedOut, "health check timed out"
}

func (b *Bridges) applyHealth(br *bridge, out healthOutcome, detail string) {
	now := b.now()
	var evs []BridgeEvent
	b.mu.Lock()
	br.inFlight = false
	br.nextCheck = now.Add(b.cfg.HealthInterval.Duration)
	if b.bridges[bridgeKey(br.jid)] != br {
		b.mu.Unlock()
		return // left (or re-joined as a new bridge) meanwhile
	}
	switch out {
	case healthPassed:
		br.operational = true
		br.failed = false
		br.nonOpReason = ""
		br.lastHealth = now
		br.lastResult = "ok"
		br.healthFailures = 0
		evs = b.upEventsLocked(now)
	case healthTimedOut:
		br.healthFailures++
		br.lastResult = detail
		b.markDownLocked(br, now, detail, false, false)
	case healthFailed:
		br.healthFailures++
		br.lastResult = detail
		evs = b.markDownLocked(br, now, detail, true, true)
	case healthOther:
		br.lastResult = detail
	case healthSkipped:
	}
	b.mu.Unlock()
	switch out {
	case healthTimedOut, healthFailed:
		b.log.Warn("bridge health check failed", "bridge", br.jid, "result", detail)
	case healthOther:
		b.log.Info("bridge health check answered with an unexpected error; ignored", "bridge", br.jid, "result", detail)
	}
	b.emit(evs)
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
}

func (c *bridgeCand) good() bool { return !c.overloaded && !c.full }

// Select picks a bridge for one participant and counts the allocation for
// the ramp-up correction (callers do not call NoteAllocated for it).
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

// CanSelect reports whether Select would find a bridge for req, without
// counting an allocation (to check that a move has somewhere to go).
func (b *Bridges) CanSelect(req SelectRequest) bool {
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	_, _, err := b.selectLocked(req, now)
	return err == nil
}

func (b *Bridges) selectLocked(req SelectRequest, now time.Time) (*bridgeCand, string, error) {
	exclude := map[string]bool{}
	for _, j := range req.Exclude {
		exclude[bridgeKey(j)] = true
	}
	current := map[string]int{}
	for j, n := range req.Current {
		if n > 0 {
			current[bridgeKey(j)] += n
		}
	}
	// The conference's live bridges: known, operational, not shutting down.
	var live []*bridgeCand
	for k, n := range current {
		br := b.bridges[k]
		if br == nil || !br.isOperational(now) || br.shuttingDown {
			continue
		}
		live = append(live, &bridgeCand{br: br, key: k, conf: n, inConf: true})
	}
	sort.Slice(live, func(i, j int) bool {
		if live[i].conf != live[j].conf {
			return live[i].conf > live[j].conf
		}
		return live[i].key < live[j].key
	})
	inLive := map[string]bool{}
	relayless := ""
	for _, c := range live {
		inLive[c.key] = true
		if c.br.relayID == "" && relayless == "" {
			relayless = c.br.jid
		}
	}
	wantVersion, versionFrom := "", ""
	if len(live) > 0 {
		wantVersion, versionFrom = live[0].br.fullVersion(), live[0].br.jid
	}

	keys := make([]string, 0, len(b.bridges))
	for k := range b.bridges {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	skipped := map[string]int{}
	var cands []*bridgeCand
	for _, k := range keys {
		br := b.bridges[k]
		switch {
		case exclude[k]:
			skipped["excluded"]++
			continue
		case br.shuttingDown:
			skipped["shutting down"]++
			continue
		case !br.isOperational(now):
			skipped["non-operational or benched"]++
			continue
		case len(live) == 0 && req.Version != "" && br.fullVersion() != req.Version && br.version != req.Version:
			skipped[fmt.Sprintf("version is not %q (the room is pinned to it)", req.Version)]++
			continue
		case len(live) > 0 && br.fullVersion() != wantVersion:
			skipped[fmt.Sprintf("version is not %q like %s", wantVersion, versionFrom)]++
			continue
		case len(live) > 0 && !inLive[k] && relayless != "":
			skipped[fmt.Sprintf("conference bridge %s has no relay_id", relayless)]++
			continue
		case len(live) > 0 && !inLive[k] && br.relayID == "":
			skipped["no relay_id (the conference already uses another bridge)"]++
			continue
		}
		n := current[k]
		corr := b.correctedLocked(br, now)
		cands = append(cands, &bridgeCand{
			br: br, key: k, corrected: corr, conf: n, inConf: inLive[k],
			overloaded: corr >= b.cfg.StressThreshold,
			full:       n >= b.cfg.MaxParticipantsPerBridge,
		})
	}
	if len(cands) == 0 {
		why := "no bridges in the brewery"
		if len(keys) > 0 {
			why = fmt.Sprintf("none of %d bridges is usable: %s", len(keys), describeSkips(skipped))
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

	var notes []string
	if kept := filterCands(cands, func(c *bridgeCand) bool { return !c.br.drain }); len(kept) > 0 {
		if len(kept) < len(cands) {
			notes = append(notes, fmt.Sprintf("%d draining skipped", len(cands)-len(kept)))
		}
		cands = kept
	} else {
		notes = append(notes, "all usable bridges are draining")
	}
	if kept := filterCands(cands, func(c *bridgeCand) bool { return !c.br.graceful }); len(kept) > 0 {
		if len(kept) < len(cands) {
			notes = append(notes, fmt.Sprintf("%d in graceful shutdown skipped", len(cands)-len(kept)))
		}
		cands = kept
	} else {
		notes = append(notes, "all usable bridges are in graceful shutdown")
	}
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
		regions := []string{req.Region}
		if strategy == "region" || req.Region == "" {
			regions = append(regions, b.cfg.LocalRegion)
		}
		for i, r := range regions {
			if r == "" || (i > 0 && r == regions[0]) {
				continue
			}
			inRegion := filterCands(cands, func(c *bridgeCand) bool { return c.good() && c.br.region == r })
			label := "participant's region"
			if r != req.Region {
				label = "local region"
			}
			if len(inRegion) == 0 {
				// Nothing with room in the region itself: its region group
				// (bridges.region-groups), e.g. another EU region for an EU
				// participant.
				group := b.regionGroup(r)
				inRegion = filterCands(cands, func(c *bridgeCand) bool { return c.good() && slices.Contains(group, c.br.region) })
				if len(inRegion) == 0 {
					continue
				}
				label += " group of"
			}
			if conf := filterCands(inRegion, func(c *bridgeCand) bool { return c.inConf }); len(conf) > 0 {
				pick = leastLoaded(conf)
				why = fmt.Sprintf("in the %s %q, already used by the conference and not overloaded", label, r)
			} else {
				pick = leastLoaded(inRegion)
				why = fmt.Sprintf("least loaded with room in the %s %q", label, r)
			}
			break
		}
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

// regionGroup is the configured group of region r (without r), or nil.
func (b *Bridges) regionGroup(r string) []string {
	for _, g := range b.cfg.RegionGroups {
		if slices.Contains(g, r) {
			return slices.DeleteFunc(slices.Clone(g), func(x string) bool { return x == r })
		}
	}
	return nil
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

// Introspection ---------------------------------------------------------------

// Overloaded lists the operational bridges (not shutting down) whose
// corrected stress is at least threshold, and reports whether any such
// bridge is below the selection's stress threshold, i.e. has room.
func (b *Bridges) Overloaded(threshold float64) (over []string, anyRoom bool) {
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, br := range b.bridges {
		if !br.isOperational(now) || br.shuttingDown {
			continue
		}
		corr := b.correctedLocked(br, now)
		if corr >= threshold {
			over = append(over, br.jid)
		}
		if corr < b.cfg.StressThreshold {
			anyRoom = true
		}
	}
	sort.Strings(over)
	return over, anyRoom
}

// OperationalCount is the number of bridges a new conference could use now
// (operational, not benched, not shutting down).
func (b *Bridges) OperationalCount() int {
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, br := range b.bridges {
		if br.isOperational(now) && !br.shuttingDown {
			n++
		}
	}
	return n
}

// Snapshot describes every bridge, sorted by JID, with why a new
// conference would not get it now.
func (b *Bridges) Snapshot() []BridgeInfo {
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	keys := make([]string, 0, len(b.bridges))
	for k := range b.bridges {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	// What a new conference could choose from, for why_not.
	usable := func(br *bridge) bool { return br.isOperational(now) && !br.shuttingDown }
	var anyNoDrain, anyNoGraceful, anyRoom bool
	for _, k := range keys {
		if br := b.bridges[k]; usable(br) && !br.drain {
			anyNoDrain = true
		}
	}
	for _, k := range keys {
		br := b.bridges[k]
		if usable(br) && (!br.drain || !anyNoDrain) && !br.graceful {
			anyNoGraceful = true
		}
	}
	for _, k := range keys {
		br := b.bridges[k]
		if usable(br) && (!br.drain || !anyNoDrain) && (!br.graceful || !anyNoGraceful) && b.correctedLocked(br, now) < b.cfg.StressThreshold {
			anyRoom = true
		}
	}
	out := make([]BridgeInfo, 0, len(keys))
	for _, k := range keys {
		br := b.bridges[k]
		corr := b.correctedLocked(br, now)
		info := BridgeInfo{
			JID: br.jid, Nick: br.nick, Stress: br.stress, CorrectedStress: corr,
			AvgPartStress: b.avgStress(br), Region: br.region, RelayID: br.relayID,
			Version: br.fullVersion(), Drain: br.drain, GracefulShutdown: br.graceful,
			ShuttingDown: br.shuttingDown, Conferences: br.conferences, Participants: br.participants,
			Operational: br.isOperational(now), NonOpReason: br.nonOpReason,
			LastHealth: br.lastHealth, LastHealthResult: br.lastResult, HealthFailures: br.healthFailures,
			Endpoints: br.endpoints, RecentEndpoints: len(br.recent), LastPresence: br.lastPresence,
		}
		if now.Before(br.iceFailingUntil) {
			info.ICEFailingUntil = br.iceFailingUntil
		}
		if br.healthy != nil {
			h := *br.healthy
			info.Healthy = &h
		}
		if now.Before(br.benchedUntil) {
			info.BenchedUntil = br.benchedUntil
		}
		switch {
		case br.shuttingDown:
			info.WhyNot = "shutting down: never selected"
		case !br.operational && now.Before(br.benchedUntil):
			info.WhyNot = fmt.Sprintf("non-operational (%s); benched until %s and needs a passing health check", br.nonOpReason, br.benchedUntil.UTC().Format(time.RFC3339))
		case !br.operational:
			info.WhyNot = fmt.Sprintf("non-operational (%s) until a health check passes", br.nonOpReason)
		case now.Before(br.benchedUntil):
			info.WhyNot = fmt.Sprintf("benched after a failure until %s", br.benchedUntil.UTC().Format(time.RFC3339))
		case br.drain && anyNoDrain:
			info.WhyNot = "draining: non-draining bridges are preferred"
		case br.graceful && anyNoGraceful:
			info.WhyNot = "graceful shutdown: other bridges are preferred"
		case now.Before(br.iceFailingUntil) && anyRoom:
			info.WhyNot = fmt.Sprintf("failing ICE (many clients restarting) until %s: reads as overloaded", br.iceFailingUntil.UTC().Format(time.RFC3339))
		case corr >= b.cfg.StressThreshold && anyRoom:
			info.WhyNot = fmt.Sprintf("overloaded: corrected stress %.4f ≥ threshold %.2f", corr, b.cfg.StressThreshold)
		default:
			info.WhyNot = "eligible"
		}
		out = append(out, info)
	}
	return out
}

// Info returns one bridge's snapshot.
func (b *Bridges) Info(jid string) (BridgeInfo, bool) {
	k := bridgeKey(jid)
	for _, in := range b.Snapshot() {
		if bridgeKey(in.JID) == k {
			return in, true
		}
	}
	return BridgeInfo{}, false
}

// DebugHandler serves GET /debug/bridges: the Snapshot as JSON.
func (b *Bridges) DebugHandler(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, b.Snapshot())
}
