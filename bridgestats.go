package main

// bridgestats.go: core, off the two-person path: the bridges' presence in the
// brewery room, and the <stats> in it that keep the registry up to date.

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

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

// updateBridge records what a bridge's presence <stats> say, adding the
// bridge when it is new, and reports what changed (sticky shutdown states).
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

// HandlePresence consumes presences from the brewery room and reports
// whether it did (the presence router offers every presence here first).
func (b *Bridges) HandlePresence(p *Element) bool {
	from, ok := b.member.HandlePresence(p)
	if from == "" {
		return ok
	}
	_, nick, _ := strings.Cut(from, "/")
	switch p.Attr("type") {
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
