package main

// limits.go: what one participant may make the focus do, and how often.
//
// Everything a participant can trigger that costs a bridge allocation, a
// Colibri2 request or a fan-out to the other participants is budgeted here:
// re-invites after leaving and rejoining, restart requests, in-place ICE
// restarts, transport-info and source changes. The budgets live in the focus,
// not in the Participant: a participant that leaves and rejoins (or only
// changes its presence) gets a new Participant but keeps its budget, because
// the budget is keyed by the room and the occupant's real full JID, which a
// rejoin on the same connection cannot change. Entries expire once unused
// for longer than the longest window, and their number is bounded.

import (
	"sort"
	"strings"
	"sync"
	"time"
)

// Per-participant budgets for the actions without a configuration key.
// Honest clients trickle a handful of transport-info IQs per session and
// change their sources when they start or stop sharing their screen; these
// allow bursts well above that and a sustained rate of one a second.
const (
	transportInfoBurst  = 30
	transportInfoPerSec = 1.0
	sourceChangeBurst   = 30
	sourceChangePerSec  = 1.0
)

// budgetIdle is how long an unused budget is kept: longer than the restart
// window (one minute), so waiting for it to be forgotten gains nothing.
const budgetIdle = 2 * time.Minute

// maxBudgets bounds the budgets kept; beyond it the idlest are forgotten
// first (an attacker with that many connections at once has other limits to
// meet first: conference requests, the room's member limit).
const maxBudgets = 50000

// memberBudget is one participant's allowance in one room.
type memberBudget struct {
	admitted      bool       // has been invited into this room's conference before
	restarts      rateWindow // re-invites: restart requests, ICE failures, rejoins
	iceRestarts   rateWindow // in-place ICE restarts (Jicofo keeps them apart)
	transportInfo tokenBucket
	sourceChanges tokenBucket
	used          time.Time
}

// budgets is the focus's table of member budgets, shared by the conference
// goroutines (the mutex is never held across anything but map work).
type budgets struct {
	mu     sync.Mutex
	items  map[string]*memberBudget
	swept  time.Time
	maxLen int
}

// newBudgets returns an empty set of budgets.
func newBudgets() *budgets { return &budgets{items: map[string]*memberBudget{}, maxLen: maxBudgets} }

// budgetKey names a participant across rejoins: its real full JID when the
// room shows it (the focus is owner of rooms with whois=anyone, so it does),
// else its nick.
func budgetKey(room string, m *Participant) string {
	if m.RealJID != "" {
		return room + "\x00" + strings.ToLower(m.RealJID)
	}
	return room + "\x00nick:" + m.Nick
}

// with runs fn on key's budget under the table's lock.
func (b *budgets) with(key string, now time.Time, fn func(*memberBudget)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	mb := b.items[key]
	if mb == nil {
		b.sweep(now)
		mb = &memberBudget{}
		b.items[key] = mb
	}
	mb.used = now
	fn(mb)
}

// sweep forgets idle budgets (at most every 10 s, or when the table is
// full), and the least recently used ones when it is still full.
func (b *budgets) sweep(now time.Time) {
	full := len(b.items) >= b.maxLen
	if !full && now.Sub(b.swept) < 10*time.Second {
		return
	}
	b.swept = now
	for k, mb := range b.items {
		if now.Sub(mb.used) > budgetIdle {
			delete(b.items, k)
		}
	}
	if len(b.items) < b.maxLen {
		return
	}
	// Still full: forget the least recently used eighth at once, so that
	// this sort happens once per maxLen/8 new budgets, not for each.
	keys := make([]string, 0, len(b.items))
	for k := range b.items {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return b.items[keys[i]].used.Before(b.items[keys[j]].used) })
	for _, k := range keys[:len(keys)-b.maxLen*7/8] {
		delete(b.items, k)
	}
}

func (b *budgets) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.items)
}

// tokenBucket allows bursts of up to burst events and perSec events a
// second on average.
type tokenBucket struct {
	tokens float64
	last   time.Time
}

func (t *tokenBucket) refill(now time.Time, burst int, perSec float64) {
	if t.last.IsZero() {
		t.tokens = float64(burst)
	} else if d := now.Sub(t.last).Seconds(); d > 0 {
		t.tokens += d * perSec
		if t.tokens > float64(burst) {
			t.tokens = float64(burst)
		}
	}
	t.last = now
}

// ready reports whether an event would be allowed now, without counting it.
func (t *tokenBucket) ready(now time.Time, burst int, perSec float64) bool {
	t.refill(now, burst, perSec)
	return t.tokens >= 1
}

// take counts an event if it is allowed.
func (t *tokenBucket) take(now time.Time, burst int, perSec float64) bool {
	if !t.ready(now, burst, perSec) {
		return false
	}
	t.tokens--
	return true
}

// nextAllowed is when w.allow would accept an event, at the earliest.
func (w *rateWindow) nextAllowed(now time.Time, window time.Duration, max int, minGap time.Duration) time.Time {
	at := now
	if minGap > 0 && !w.last.IsZero() && w.last.Add(minGap).After(at) {
		at = w.last.Add(minGap)
	}
	var live []time.Time
	for _, t := range w.times {
		if now.Sub(t) < window {
			live = append(live, t)
		}
	}
	if max > 0 && len(live) >= max {
		// The oldest counted events must leave the window first.
		if t := live[len(live)-max].Add(window); t.After(at) {
			at = t
		}
	}
	return at
}

// Conference side --------------------------------------------------------

func (c *Conference) budget(m *Participant, fn func(*memberBudget)) {
	c.f.budgets.with(budgetKey(c.room, m), time.Now(), fn)
}

// allowRestart counts a participant-caused re-invite (restart request, ICE
// failure) against its budget (Jicofo's restart-request rate limits).
func (c *Conference) allowRestart(m *Participant) bool {
	cc := c.cfg().Conference
	ok := false
	c.budget(m, func(b *memberBudget) {
		ok = b.restarts.allow(time.Now(), time.Minute, cc.RestartMaxPerMinute, cc.RestartMinInterval.Duration)
	})
	return ok
}

func (c *Conference) allowICERestart(m *Participant) bool {
	cc := c.cfg().Conference
	ok := false
	c.budget(m, func(b *memberBudget) {
		ok = b.iceRestarts.allow(time.Now(), time.Minute, cc.RestartMaxPerMinute, cc.RestartMinInterval.Duration)
	})
	return ok
}

// allowTransportInfo takes one from m's transport-info budget (each one
// becomes a Colibri2 request); false when it is spent.
func (c *Conference) allowTransportInfo(m *Participant) bool {
	ok := false
	c.budget(m, func(b *memberBudget) { ok = b.transportInfo.take(time.Now(), transportInfoBurst, transportInfoPerSec) })
	return ok
}

// sourceChangeReady says whether m may change its sources now; the change
// is counted (sourceChanged) only once it is accepted, so refused ones
// (over the source limit, say) cost nothing.
func (c *Conference) sourceChangeReady(m *Participant) bool {
	ok := false
	c.budget(m, func(b *memberBudget) { ok = b.sourceChanges.ready(time.Now(), sourceChangeBurst, sourceChangePerSec) })
	return ok
}

// sourceChanged counts a source change of m against its budget (each one is
// a fan-out to everyone); sourceChangeReady says whether it may make another.
func (c *Conference) sourceChanged(m *Participant) {
	c.budget(m, func(b *memberBudget) { b.sourceChanges.take(time.Now(), sourceChangeBurst, sourceChangePerSec) })
}

// admit decides whether a member's first invite may go now. A member seen
// in this room before (it left and rejoined) is re-invited within the
// restart budget; when that is spent, the invite waits (it is not dropped:
// the rejoin may be honest) and evaluate runs again when it is due.
func (c *Conference) admit(m *Participant) bool {
	if m.admitted {
		return true
	}
	if m.admitWait != nil {
		return false // already waiting
	}
	cc := c.cfg().Conference
	now := time.Now()
	ok := false
	var due time.Time
	c.budget(m, func(b *memberBudget) {
		switch {
		case !b.admitted:
			b.admitted, ok = true, true
		case b.restarts.allow(now, time.Minute, cc.RestartMaxPerMinute, cc.RestartMinInterval.Duration):
			ok = true
		default:
			due = b.restarts.nextAllowed(now, time.Minute, cc.RestartMaxPerMinute, cc.RestartMinInterval.Duration)
		}
	})
	if ok {
		m.admitted = true
		return true
	}
	c.log.Info("rejoined member re-invited later (restart budget spent)", "endpoint", m.Nick, "at", due.Format(time.RFC3339))
	nick := m.Nick
	m.admitWait = c.later(due.Sub(now)+time.Millisecond, func() {
		if cur := c.members[nick]; cur == m {
			m.admitWait = nil
			c.evaluate()
		}
	})
	return false
}

// allowRequest is a per-sender sliding-window rate limit.
func (f *Focus) allowRequest(sender string) bool {
	limit := f.cfg.Conference.MaxConferenceRequests
	if limit <= 0 {
		return true
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	w := f.limiter[sender]
	if w == nil {
		if len(f.limiter) > 10000 { // bounded: forget idle senders
			for k, v := range f.limiter {
				if now.Sub(v.last) > time.Minute {
					delete(f.limiter, k)
				}
			}
		}
		w = &rateWindow{}
		f.limiter[sender] = w
	}
	return w.allow(now, time.Minute, limit, 0)
}

// rateWindow counts events in a sliding window, optionally with a minimum
// gap between two accepted events.
type rateWindow struct {
	times []time.Time
	last  time.Time
}

func (w *rateWindow) allow(now time.Time, window time.Duration, max int, minGap time.Duration) bool {
	kept := w.times[:0]
	for _, t := range w.times {
		if now.Sub(t) < window {
			kept = append(kept, t)
		}
	}
	w.times = kept
	if len(w.times) >= max || (minGap > 0 && !w.last.IsZero() && now.Sub(w.last) < minGap) {
		return false
	}
	w.times = append(w.times, now)
	w.last = now
	return true
}

// budgetState is one member budget carried across a restart (handover.go),
// so that restarting the focus does not give every participant a fresh
// allowance.
type budgetState struct {
	Key            string      `json:"key"`
	Admitted       bool        `json:"admitted,omitempty"`
	Restarts       []time.Time `json:"restarts,omitempty"`
	RestartLast    time.Time   `json:"restart_last,omitzero"`
	ICERestarts    []time.Time `json:"ice_restarts,omitempty"`
	ICERestartLast time.Time   `json:"ice_restart_last,omitzero"`
	TITokens       float64     `json:"transport_info_tokens"`
	TILast         time.Time   `json:"transport_info_last,omitzero"`
	SCTokens       float64     `json:"source_change_tokens"`
	SCLast         time.Time   `json:"source_change_last,omitzero"`
	Used           time.Time   `json:"used"`
}

// export lists the budgets still in use (not idle for budgetIdle).
func (b *budgets) export(now time.Time) []budgetState {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]budgetState, 0, len(b.items))
	for k, mb := range b.items {
		if now.Sub(mb.used) > budgetIdle {
			continue
		}
		out = append(out, budgetState{Key: k, Admitted: mb.admitted,
			Restarts: mb.restarts.times, RestartLast: mb.restarts.last,
			ICERestarts: mb.iceRestarts.times, ICERestartLast: mb.iceRestarts.last,
			TITokens: mb.transportInfo.tokens, TILast: mb.transportInfo.last,
			SCTokens: mb.sourceChanges.tokens, SCLast: mb.sourceChanges.last, Used: mb.used})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// restore takes over the previous process's budgets (idle ones and any
// beyond the table's size are left out).
func (b *budgets) restore(list []budgetState, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range list {
		if len(b.items) >= b.maxLen || now.Sub(s.Used) > budgetIdle || len(s.Restarts) > 1000 || len(s.ICERestarts) > 1000 {
			continue
		}
		b.items[s.Key] = &memberBudget{admitted: s.Admitted,
			restarts:      rateWindow{times: s.Restarts, last: s.RestartLast},
			iceRestarts:   rateWindow{times: s.ICERestarts, last: s.ICERestartLast},
			transportInfo: tokenBucket{tokens: s.TITokens, last: s.TILast},
			sourceChanges: tokenBucket{tokens: s.SCTokens, last: s.SCLast},
			used:          s.Used}
	}
}
