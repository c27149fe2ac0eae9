package main

// icefailure.go: optional feature: ICE-failure detection, bridges whose
// clients keep restarting read as overloaded.

import (
	"sync"
	"time"
)

// maxRestartsKept bounds the restart times kept per bridge.
const maxRestartsKept = 10000

// iceFailures is the feature's state on the focus: the accepted restart
// requests of each bridge's endpoints, by bridge, within the interval.
type iceFailures struct {
	mu       sync.Mutex
	restarts map[string][]time.Time
}

func iceFailuresOf(f *Focus) *iceFailures { return focusState[iceFailures](f) }

// restartRequested counts an accepted restart request (a session-terminate
// with restart, or ICE failed) of an endpoint on the bridge jid
// (docs/bridges.md#ice-failure-detection): when the bridge has at least
// min-endpoints endpoints and more than threshold × endpoints restarts
// within interval, its clients cannot reach it (a firewall, a wrong public
// address), so it is held as overloaded for timeout: new participants go
// elsewhere while any other bridge has room.
func (d *iceFailures) restartRequested(b *Bridges, jid string) {
	cfg := b.cfg.ICEFailure
	if !cfg.Enabled || jid == "" {
		return
	}
	endpoints, held, ok := b.Load(jid)
	if !ok {
		return
	}
	now, k := b.now(), bridgeKey(jid)
	cut := now.Add(-cfg.Interval.Duration)
	d.mu.Lock()
	if d.restarts == nil {
		d.restarts = map[string][]time.Time{}
	}
	rs := d.restarts[k]
	i := 0
	for i < len(rs) && !rs[i].After(cut) {
		i++
	}
	rs = append(rs[i:], now)
	if len(rs) > maxRestartsKept {
		rs = rs[len(rs)-maxRestartsKept:]
	}
	d.restarts[k] = rs
	for other, ts := range d.restarts { // bridges gone quiet (or gone) are forgotten
		if !ts[len(ts)-1].After(cut) {
			delete(d.restarts, other)
		}
	}
	n := len(rs)
	d.mu.Unlock()
	if endpoints < cfg.MinEndpoints || float64(n) <= cfg.Threshold*float64(endpoints) || held {
		return
	}
	until := now.Add(cfg.Timeout.Duration)
	b.HoldOverloaded(jid, until, "failing ICE (many clients restarting)")
	b.log.Warn("bridge is failing ICE: new participants go to other bridges", "bridge", jid,
		"restarts", n, "endpoints", endpoints, "interval", cfg.Interval.Duration, "until", until)
}

func iceFailureFeature() Feature {
	return Feature{Name: "ice-failure",
		FocusState: func() any { return new(iceFailures) },
		Bridge: func(c *Conference, ev SessionEvent) {
			if ev.Kind == RestartRequested {
				iceFailuresOf(c.f).restartRequested(c.f.bridges, ev.Bridge)
			}
		}}
}
