package main

// bridgeinfo.go: core, off the two-person path: bridge introspection (Snapshot, Info, /debug/bridges).

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"time"
)

// BridgeInfo is one bridge as /debug/bridges shows it.
type BridgeInfo struct {
	JID                 string    `json:"jid"`
	Nick                string    `json:"nick"`
	Stress              float64   `json:"stress"`
	CorrectedStress     float64   `json:"corrected_stress"`
	AvgPartStress       float64   `json:"average_participant_stress"`
	Region              string    `json:"region"`
	RelayID             string    `json:"relay_id"`
	Version             string    `json:"version"`
	Drain               bool      `json:"drain"`
	GracefulShutdown    bool      `json:"graceful_shutdown"`
	ShuttingDown        bool      `json:"shutting_down"`
	Healthy             *bool     `json:"healthy,omitempty"` // as the bridge reports it in presence
	Conferences         int       `json:"conferences"`
	Participants        int       `json:"participants"`
	Operational         bool      `json:"operational"`
	NonOpReason         string    `json:"non_operational_reason,omitempty"`
	BenchedUntil        time.Time `json:"benched_until,omitzero"`
	LastHealth          time.Time `json:"last_health,omitzero"` // last health check that passed
	LastHealthResult    string    `json:"last_health_result,omitempty"`
	HealthFailures      int       `json:"health_failures"` // consecutive
	Endpoints           int       `json:"endpoints"`       // placed by this focus (Select − NoteReleased; handed over on a restart)
	RecentEndpoints     int       `json:"recent_endpoints"`
	LastPresence        time.Time `json:"last_presence"`
	HeldOverloadedUntil time.Time `json:"held_overloaded_until,omitzero"`
	WhyNot              string    `json:"why_not"` // why a new conference would not get it now, or "eligible"
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
	// why_not uses selection's own filters, for a new conference.
	sc := b.newSelectCtx(SelectRequest{}, now)
	cands, _ := b.candidates(sc, now)
	kept, _ := preferTiers(cands)
	anyRoom := len(filterCands(kept, func(c *bridgeCand) bool { return !c.overloaded })) > 0
	cand := map[string]*bridgeCand{}
	for _, c := range cands {
		cand[c.key] = c
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
		if now.Before(br.heldUntil) {
			info.HeldOverloadedUntil = br.heldUntil
		}
		if br.healthy != nil {
			h := *br.healthy
			info.Healthy = &h
		}
		if now.Before(br.benchedUntil) {
			info.BenchedUntil = br.benchedUntil
		}
		c := cand[k]
		_, notUsable := b.ineligible(k, br, sc, now)
		switch {
		case c == nil:
			info.WhyNot = notUsable
		case c.notPreferred != "":
			info.WhyNot = c.notPreferred
		case now.Before(br.heldUntil) && anyRoom:
			info.WhyNot = fmt.Sprintf("%s until %s: reads as overloaded", br.heldWhy, br.heldUntil.UTC().Format(time.RFC3339))
		case c.overloaded && anyRoom:
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
