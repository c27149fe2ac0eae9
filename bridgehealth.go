package main

// bridgehealth.go: core, off the two-person path: bridge health checks and
// the marks that take a bridge out of service.
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
	"sort"
	"sync"
	"time"
)

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

// HoldOverloaded makes jid read as overloaded until until, for the reason
// why (a feature judged it unfit for new participants, icefailure.go).
func (b *Bridges) HoldOverloaded(jid string, until time.Time, why string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if br := b.bridges[bridgeKey(jid)]; br != nil {
		br.heldUntil, br.heldWhy = until, why
	}
}

// Load is how many endpoints jid has (as it reports them, or as this focus
// counts them, whichever is more) and whether it is held overloaded now.
func (b *Bridges) Load(jid string) (endpoints int, held, ok bool) {
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	br := b.bridges[bridgeKey(jid)]
	if br == nil {
		return 0, false, false
	}
	return max(br.participants, br.endpoints), now.Before(br.heldUntil), true
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
