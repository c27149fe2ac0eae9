package main

// operator.go: optional feature: operator moves (/move-endpoints) and load redistribution.

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"
)

// moveOff moves up to max participants to other bridges: the one named by
// endpoint, or those on bridge (any bridge when empty). It returns how many.
func (c *Conference) moveOff(bridge, endpoint string, max int, reason string) int {
	if !c.f.linksBridges {
		return c.moveWhole(bridge, endpoint, max, reason)
	}
	moved := 0
	for _, nick := range append([]string(nil), c.order...) {
		m := c.members[nick]
		if moved >= max || m == nil || m.bridge == "" || (endpoint != "" && nick != endpoint) || (bridge != "" && !strings.EqualFold(m.bridge, bridge)) {
			continue
		}
		old := m.bridge
		// Only when another bridge can take it: a conference that cannot
		// span bridges (no relay_id, other versions, a pin) stays put
		// rather than losing its media.
		if !c.f.bridges.CanSelect(c.selectRequest(m.Region, []string{old})) {
			c.log.Info("not moving participant: no other bridge can take it", "endpoint", nick, "bridge", old, "why", reason)
			continue
		}
		if s := c.sessions[old]; s != nil {
			c.expireEndpoint(s, nick)
		}
		m.bridge = ""
		c.moveParticipant(m, []string{old}, reason)
		moved++
	}
	return moved
}

// moveWhole is moveOff in a build without cascading: a conference cannot
// span bridges, so it moves whole (off its one bridge, when every one of its
// participants may be moved) or not at all.
func (c *Conference) moveWhole(bridge, endpoint string, max int, reason string) int {
	if len(c.sessions) != 1 {
		return 0
	}
	for _, s := range c.sessions {
		n := len(s.endpoints)
		if endpoint != "" || n > max || (bridge != "" && !strings.EqualFold(s.jid, bridge)) {
			c.log.Info("not moving: without cascading a conference moves whole", "bridge", s.jid, "participants", n, "why", reason)
			return 0
		}
		c.removeSession(s, reason, removal{reinvite: true, avoid: true})
		return n
	}
	return 0
}

// Move moves participants to other bridges, as Jicofo's /move-endpoints
// does: one endpoint of one conference, or up to n endpoints off a bridge
// (in one conference, or the largest conferences first). It returns how many
// participants and conferences were moved.
func (f *Focus) Move(ctx context.Context, room, endpoint, bridge string, n int) (moved, conferences int, err error) {
	return f.move(ctx, room, endpoint, bridge, n, "moved by an operator")
}

func (f *Focus) move(ctx context.Context, room, endpoint, bridge string, n int, reason string) (moved, conferences int, err error) {
	if bridge != "" {
		if bridge = f.resolveBridge(bridge); bridge == "" {
			return 0, 0, Errorf("item-not-found", "no such bridge")
		}
	}
	if f.bridges.OperationalCount() < 2 {
		return 0, 0, Errorf("service-unavailable", "there is no other bridge to move to")
	}
	var confs []*Conference
	if room != "" {
		c := f.lookup(room)
		if c == nil {
			return 0, 0, Errorf("item-not-found", "no conference %s", room)
		}
		confs = []*Conference{c}
	} else {
		confs = f.all()
	}
	type sized struct {
		c *Conference
		n int
	}
	var order []sized
	for _, c := range confs {
		if s := c.Snapshot(ctx); s != nil {
			order = append(order, sized{c, len(s.Participants)})
		}
	}
	sort.Slice(order, func(i, j int) bool { return order[i].n > order[j].n })
	for _, o := range order {
		if n-moved <= 0 {
			break
		}
		got := make(chan int, 1)
		c, left := o.c, n-moved
		if !c.post(event{kind: evFunc, fn: func() { got <- c.moveOff(bridge, endpoint, left, reason) }}) {
			continue
		}
		select {
		case k := <-got:
			if k > 0 {
				moved += k
				conferences++
			}
		case <-ctx.Done():
			return moved, conferences, ctx.Err()
		}
	}
	return moved, conferences, nil
}

// resolveBridge accepts a bridge's occupant JID or just its nick.
func (f *Focus) resolveBridge(b string) string {
	for _, bi := range f.bridges.Snapshot() {
		if strings.EqualFold(bi.JID, b) || bi.Nick == b {
			return bi.JID
		}
	}
	return ""
}

// RunLoadRedistribution moves participants off overloaded bridges (Jicofo's
// bridge.load-redistribution, docs/bridges.md#load-redistribution): every interval, unless every
// bridge is overloaded, each bridge whose corrected stress is at or above
// the redistribution threshold gives up `endpoints` participants, largest
// conferences first, and is then left alone for the timeout so that its
// stress can settle. It returns when ctx ends.
func (f *Focus) RunLoadRedistribution(ctx context.Context) {
	cfg := f.cfg.Bridges.LoadRedistribution
	if !cfg.Enabled {
		return
	}
	t := time.NewTicker(cfg.Interval.Duration)
	defer t.Stop()
	resting := map[string]time.Time{} // bridge → end of its timeout
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		over, anyRoom := f.bridges.Overloaded(cfg.StressThreshold)
		if !anyRoom {
			continue // moving people around would only make it worse
		}
		now := time.Now()
		for _, jid := range over {
			if now.Before(resting[jid]) {
				continue
			}
			mctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			moved, confs, err := f.move(mctx, "", "", jid, cfg.Endpoints, "load redistribution")
			cancel()
			resting[jid] = now.Add(cfg.Timeout.Duration)
			f.log.Info("load redistribution", "bridge", jid, "moved", moved, "conferences", confs, "err", err)
		}
		for jid, until := range resting {
			if now.After(until) {
				delete(resting, jid)
			}
		}
	}
}

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

// moveEndpoints is Jicofo's /move-endpoints API: move one endpoint
// (conference + endpoint) or numEndpoints (default 1) off a bridge.
func (h *HTTPServer) moveEndpoints(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	room, endpoint, bridge := q.Get("conference"), q.Get("endpoint"), q.Get("bridge")
	n := 1
	if strings.HasSuffix(r.URL.Path, "/move-endpoints") {
		if bridge == "" {
			http.Error(w, "Bad request: Missing parameter: bridge", http.StatusBadRequest)
			return
		}
		if v := q.Get("numEndpoints"); v != "" {
			if _, err := fmt.Sscan(v, &n); err != nil || n < 1 || n > 10000 {
				http.Error(w, "Bad request: numEndpoints must be a positive number", http.StatusBadRequest)
				return
			}
		}
	} else if room == "" || endpoint == "" {
		http.Error(w, "Bad request: Missing parameter: conference and endpoint", http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	moved, confs, err := h.m.Focus.Move(ctx, room, endpoint, bridge, n)
	if err != nil {
		http.Error(w, "Error: "+err.Error(), http.StatusInternalServerError)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"movedEndpoints": moved, "conferences": confs})
}

func operatorFeature() Feature {
	return Feature{Name: "operator", Setup: func(m *Main) {
		m.loops = append(m.loops, m.Focus.RunLoadRedistribution)
		m.HTTP.pmux.HandleFunc("GET /move-endpoints/move-endpoint", m.HTTP.moveEndpoints)
		m.HTTP.pmux.HandleFunc("GET /move-endpoints/move-endpoints", m.HTTP.moveEndpoints)
	}}
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
