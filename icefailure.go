package main

// icefailure.go: optional feature: ICE-failure detection, bridges whose clients keep restarting read as overloaded.

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

func iceFailureFeature() Feature {
	return Feature{Name: "ice-failure", Bridge: func(c *Conference, ev SessionEvent) {
		if ev.Kind == RestartRequested {
			c.f.bridges.RestartRequested(ev.Bridge)
		}
	}}
}
