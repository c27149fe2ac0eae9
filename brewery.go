package main

// brewery.go: core, off the two-person path: the focus's membership of the bridge brewery room (join, rejoin, leave, missing grace).

import (
	"errors"
	"maps"
	"slices"
	"sort"
	"time"
)

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
