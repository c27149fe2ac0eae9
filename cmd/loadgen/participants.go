package main

// participants.go: simulated participants and the latencies read from their
// event logs.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"minifocus/testkit"
)

const nsFocus = "http://jitsi.org/protocol/focus"

// member is one simulated participant of a scenario.
type member struct {
	room  string
	first bool // the room's first participant: its offer waits for a second one
	start time.Time

	mu    sync.Mutex
	reqAt time.Time // the conference request IQ went out (from the stanza log hook)

	p *testkit.Participant
}

// hook is the participant's stanza log: it only notes when the conference
// request is sent, without formatting anything.
func (m *member) hook(format string, args ...any) {
	if format != "participant %s: OUT %s" || len(args) != 2 {
		return
	}
	e, ok := args[1].(*testkit.Elem)
	if !ok || e.Local != "iq" || e.Child(nsFocus, "conference") == nil {
		return
	}
	now := time.Now()
	m.mu.Lock()
	m.reqAt = now
	m.mu.Unlock()
}

// requestTime is when the (last) conference request went out; the join
// start if the hook never fired (the figure then includes the login).
func (m *member) requestTime() (time.Time, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.reqAt.IsZero() {
		return m.start, false
	}
	return m.reqAt, true
}

var errTooMany = errors.New("participant limit reached (-max-participants)")

// pool creates, tracks and closes participants.
type pool struct {
	ctx         context.Context
	addr        string
	max         int
	joinTimeout time.Duration

	live      atomic.Int64
	mu        sync.Mutex
	open      map[*member]bool
	noHook    atomic.Int64 // joins whose request time fell back to the join start
	joinFails atomic.Int64
	lastErr   atomic.Value // string
}

func newPool(ctx context.Context, addr string, max int, joinTimeout time.Duration) *pool {
	return &pool{ctx: ctx, addr: addr, max: max, joinTimeout: joinTimeout, open: map[*member]bool{}}
}

// join brings one participant into room.
func (pl *pool) join(room string) (*member, error) {
	if err := pl.ctx.Err(); err != nil {
		return nil, err
	}
	if pl.live.Add(1) > int64(pl.max) {
		pl.live.Add(-1)
		return nil, errTooMany
	}
	m := &member{room: room}
	ctx, cancel := context.WithTimeout(pl.ctx, pl.joinTimeout)
	defer cancel()
	m.start = time.Now()
	p, err := testkit.JoinConference(ctx, testkit.ParticipantConfig{
		Addr:          pl.addr,
		Room:          room,
		RetryNotReady: true,
		Logf:          m.hook,
	})
	if err != nil {
		pl.live.Add(-1)
		pl.joinFails.Add(1)
		pl.lastErr.Store(err.Error())
		return nil, err
	}
	if _, ok := m.requestTime(); !ok {
		pl.noHook.Add(1)
	}
	m.p = p
	pl.mu.Lock()
	pl.open[m] = true
	pl.mu.Unlock()
	return m, nil
}

// joinMany joins one participant per entry of rooms, conc at a time, and
// returns those that joined (in no particular order).
func (pl *pool) joinMany(rooms []string, conc int) ([]*member, int) {
	if conc < 1 {
		conc = 1
	}
	var (
		mu    sync.Mutex
		out   []*member
		fails int
		wg    sync.WaitGroup
		next  atomic.Int64
	)
	for range min(conc, len(rooms)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(rooms) || pl.ctx.Err() != nil {
					return
				}
				m, err := pl.join(rooms[i])
				mu.Lock()
				if err != nil {
					fails++
				} else {
					out = append(out, m)
				}
				mu.Unlock()
				if errors.Is(err, errTooMany) {
					return
				}
			}
		}()
	}
	wg.Wait()
	return out, fails
}

// leave sends unavailable presence and closes the connection.
func (pl *pool) leave(m *member) {
	pl.mu.Lock()
	open := pl.open[m]
	delete(pl.open, m)
	pl.mu.Unlock()
	if !open {
		return
	}
	_ = m.p.Leave()
	_ = m.p.Close()
	pl.live.Add(-1)
}

func (pl *pool) leaveMany(ms []*member, conc int) {
	var wg sync.WaitGroup
	ch := make(chan *member)
	for range max(1, conc) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := range ch {
				pl.leave(m)
			}
		}()
	}
	for _, m := range ms {
		ch <- m
	}
	close(ch)
	wg.Wait()
}

// closeAll closes whatever is still open (clean-up path).
func (pl *pool) closeAll() {
	pl.mu.Lock()
	var ms []*member
	for m := range pl.open {
		ms = append(ms, m)
	}
	pl.mu.Unlock()
	pl.leaveMany(ms, 32)
}

func (pl *pool) openCount() int {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return len(pl.open)
}

// converged reports whether every member has an accepted session and knows
// the sources of every other member of its room (ms must hold every
// member of those rooms). detail describes the first laggard.
func converged(ms []*member) (lagging int, detail string) {
	byRoom := map[string][]*member{}
	for _, m := range ms {
		byRoom[m.room] = append(byRoom[m.room], m)
	}
	for _, room := range byRoom {
		if len(room) < 2 {
			continue // a lone participant gets no session
		}
		nicks := make(map[string]bool, len(room))
		for _, m := range room {
			nicks[m.p.Nick()] = true
		}
		for _, m := range room {
			if !m.p.Accepted() {
				lagging++
				if detail == "" {
					detail = fmt.Sprintf("%s in %s has no accepted session (%d offers)", m.p.Nick(), m.room, len(m.p.Offers()))
				}
				continue
			}
			// Sources of members that left may linger: the simulated
			// client keeps them (a real one drops them with the occupant).
			var missing []string
			rs := m.p.RemoteSources()
			for o := range nicks {
				if _, ok := rs[o]; !ok && o != m.p.Nick() {
					missing = append(missing, o)
				}
			}
			if len(missing) > 0 {
				lagging++
				if detail == "" {
					detail = fmt.Sprintf("%s in %s lacks the sources of %v", m.p.Nick(), m.room, missing)
				}
			}
		}
	}
	return lagging, detail
}

// waitConverged polls converged until it holds or timeout passes.
func waitConverged(ctx context.Context, ms []*member, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		lagging, detail := converged(ms)
		if lagging == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d participants without an accepted session or with wrong sources after %v (e.g. %s)", lagging, len(ms), timeout, detail)
		}
		// Checking reads every participant's view: poll big rooms less often.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(max(100*time.Millisecond, time.Duration(len(ms))*time.Millisecond)):
		}
	}
}

// markFirst flags, per room, the member whose conference request went out
// first: its session-initiate waits for the second participant.
func markFirst(ms []*member) {
	first := map[string]*member{}
	at := map[string]time.Time{}
	for _, m := range ms {
		t, _ := m.requestTime()
		if _, ok := first[m.room]; !ok || t.Before(at[m.room]) {
			first[m.room], at[m.room] = m, t
		}
	}
	for _, m := range first {
		m.first = true
	}
}

// reqToInitiate is, for each member that is not first in its room, the time
// from its conference request to the first session-initiate it received.
func reqToInitiate(ms []*member) []time.Duration {
	var out []time.Duration
	for _, m := range ms {
		if m.first {
			continue
		}
		req, _ := m.requestTime()
		for _, e := range m.p.Events() {
			if e.Kind == testkit.EventJingle && e.Action == "session-initiate" && !e.Time.Before(req) {
				out = append(out, e.Time.Sub(req))
				break
			}
		}
	}
	return out
}

// acceptToSourceAdd is, for each owner in owners and each receiver that
// learnt of the owner's sources by a source-add, the time from the owner's
// session-accept (the latest one before the source-add) to that source-add.
// Receivers that got the sources in their own session-initiate do not count.
func acceptToSourceAdd(receivers, owners []*member) []time.Duration {
	type acceptKey struct{ room, nick string }
	accepts := map[acceptKey][]time.Time{}
	for _, m := range owners {
		k := acceptKey{m.room, m.p.Nick()}
		for _, e := range m.p.Events() {
			if e.Kind == testkit.EventAcceptSent {
				accepts[k] = append(accepts[k], e.Time)
			}
		}
	}
	type seenKey struct {
		owner string
		at    int64
	}
	var out []time.Duration
	for _, r := range receivers {
		seen := map[seenKey]bool{}
		for _, e := range r.p.Events() {
			if e.Kind != testkit.EventJingle || e.Action != "source-add" {
				continue
			}
			for _, o := range e.Owners {
				ts := accepts[acceptKey{r.room, o}]
				// The last accept at or before the source-add.
				i := sort.Search(len(ts), func(i int) bool { return ts[i].After(e.Time) }) - 1
				if i < 0 {
					continue
				}
				k := seenKey{o, ts[i].UnixNano()}
				if seen[k] {
					continue
				}
				seen[k] = true
				out = append(out, e.Time.Sub(ts[i]))
			}
		}
	}
	return out
}

// violations sums what the simulated clients flagged as things a real
// client would reject.
func violations(ms []*member) (n int, sample string) {
	for _, m := range ms {
		v := m.p.Violations()
		n += len(v)
		if sample == "" && len(v) > 0 {
			sample = m.p.Nick() + ": " + v[0]
		}
	}
	return n, sample
}

// pick removes and returns a random element.
func pick(ms *[]*member, rng *rand.Rand) *member {
	i := rng.IntN(len(*ms))
	m := (*ms)[i]
	*ms = slices.Delete(*ms, i, i+1)
	return m
}
