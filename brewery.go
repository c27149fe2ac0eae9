package main

// brewery.go: core, off the two-person path: the focus's membership of a brewery room, shared by
// the bridges, the Jibris and the Jigasis (join, rejoin, leave), and the bridges' missing grace.

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// breweryConn is what a brewery member sends through.
type breweryConn interface{ Send(*Element) error }

// breweryMember is the focus's membership of one brewery room, where
// services (bridges, Jibris, Jigasis) announce themselves in presence. It
// joins when the XMPP session comes up, joins again after a refused join or
// after being removed from the room, and leaves at shutdown. The registry
// that owns it reads the other occupants' presences.
type breweryMember struct {
	room, nick string             // room: bare JID, lower-case; nick: the focus's own
	what       string             // "bridge", "Jibri", … (for logs)
	conn       func() breweryConn // nil: not connected
	log        *slog.Logger
	rejoinWait time.Duration       // after a refused join or a removal
	onLost     func(reason string) // removed from the room: forget its occupants (runs outside the lock)

	mu        sync.Mutex
	sessionUp bool
	joinSent  bool
	joined    bool
	leaving   bool // Leave was called: the focus is shutting down
	gen       uint64
	timer     *time.Timer
}

// newBreweryMember returns the focus's membership of the brewery room; what
// names the services in it for the logs, onLost is told when a member leaves.
func newBreweryMember(room, nick, what string, conn func() breweryConn, log *slog.Logger, onLost func(string)) *breweryMember {
	return &breweryMember{room: strings.ToLower(strings.TrimSpace(room)), nick: nick, what: what, conn: conn,
		log: log, rejoinWait: breweryRejoinWait, onLost: onLost}
}

// Join sends the join presence, once per session.
func (m *breweryMember) Join() error {
	m.mu.Lock()
	if m.joinSent {
		m.mu.Unlock()
		return nil
	}
	m.sessionUp = true
	m.joinSent = true
	m.mu.Unlock()
	return m.sendJoin()
}

func (m *breweryMember) sendJoin() error {
	x := m.conn()
	if x == nil {
		return ErrNotConnected
	}
	if m.room == "" {
		return errors.New("no brewery configured")
	}
	p := NewElement(nsClient, "presence", "to", m.room+"/"+m.nick)
	p.Add(NewElement(nsMUC, "x"))
	m.log.Info(fmt.Sprintf("joining the %s brewery", m.what), "brewery", m.room, "nick", m.nick)
	return x.Send(p)
}

// sessionDown: the XMPP session is gone, and the membership with it.
func (m *breweryMember) sessionDown() {
	m.mu.Lock()
	m.sessionUp = false
	m.joinSent = false
	m.joined = false
	m.gen++
	if m.timer != nil {
		m.timer.Stop()
		m.timer = nil
	}
	m.mu.Unlock()
}

// follow joins after every login of x and forgets the occupants (onLost)
// whenever the session changes: the Jibri and Jigasi registries. The
// bridges follow the session themselves (missing grace).
func (m *breweryMember) follow(x *XMPPClient) {
	x.OnSession(func(up bool) {
		m.onLost("XMPP session changed")
		if !up {
			m.sessionDown()
			return
		}
		if err := m.Join(); err != nil {
			m.log.Warn(fmt.Sprintf("cannot join the %s brewery", m.what), "brewery", m.room, "err", err)
		}
	})
}

// active: the session is up or the join was sent in it.
func (m *breweryMember) active() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sessionUp || m.joinSent
}

// Leave leaves the room for good (the focus is shutting down): the
// self-presence that follows is expected, not a removal to recover from.
func (m *breweryMember) Leave() {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.leaving = true
	joined := m.joined
	m.mu.Unlock()
	if x := m.conn(); joined && x != nil {
		_ = x.Send(NewElement(nsClient, "presence", "to", m.room+"/"+m.nick, "type", "unavailable"))
	}
}

// HandlePresence takes p if it comes from the room. It handles the focus's
// own presence itself; another occupant's full JID is returned for the
// registry to read (occupant is "" when there is nothing more to do).
func (m *breweryMember) HandlePresence(p *Element) (occupant string, ok bool) {
	if p == nil || p.Local != "presence" || m.room == "" {
		return "", false
	}
	from := p.Attr("from")
	bare, nick, _ := strings.Cut(from, "/")
	if !strings.EqualFold(bare, m.room) {
		return "", false
	}
	switch nick {
	case "":
		return "", true // from the room itself: nothing for us
	case m.nick:
		m.handleSelfPresence(p, p.Attr("type"))
		return "", true
	}
	return from, true
}

// scheduleRejoinLocked re-sends the join presence after a wait, unless the
// session changed meanwhile.
func (m *breweryMember) scheduleRejoinLocked() {
	if !m.sessionUp || m.timer != nil {
		return
	}
	gen := m.gen
	m.timer = time.AfterFunc(m.rejoinWait, func() {
		m.mu.Lock()
		ok := m.sessionUp && m.gen == gen && !m.joined
		m.timer = nil
		m.mu.Unlock()
		if ok {
			if err := m.sendJoin(); err != nil {
				m.log.Warn(fmt.Sprintf("cannot re-join the %s brewery", m.what), "err", err)
			}
		}
	})
}

func (m *breweryMember) handleSelfPresence(p *Element, typ string) {
	switch typ {
	case "error":
		se := ParseStanzaError(p)
		m.log.Error(fmt.Sprintf("joining the %s brewery failed; retrying", m.what), "brewery", m.room, "err", se.Error(), "retry_in", m.rejoinWait)
		m.mu.Lock()
		m.joined = false
		m.scheduleRejoinLocked()
		m.mu.Unlock()
	case "unavailable":
		m.mu.Lock()
		m.joined = false
		if m.leaving {
			m.mu.Unlock()
			m.log.Info(fmt.Sprintf("left the %s brewery", m.what), "brewery", m.room)
			return
		}
		m.scheduleRejoinLocked()
		m.mu.Unlock()
		m.log.Warn(fmt.Sprintf("the focus left or was removed from the %s brewery; forgetting its occupants and re-joining", m.what), "brewery", m.room)
		m.onLost("the focus is no longer in the brewery")
	case "", "available":
		created := false
		for _, x := range p.All(nsMUCUser, "x") {
			for _, st := range x.All(nsMUCUser, "status") {
				if st.Attr("code") == "201" {
					created = true
				}
			}
		}
		m.mu.Lock()
		first := !m.joined
		m.joined = true
		m.mu.Unlock()
		if first {
			m.log.Info(fmt.Sprintf("joined the %s brewery", m.what), "brewery", m.room)
		}
		if x := m.conn(); created && x != nil {
			// We created the room: unlock it (instant room, whois=anyone)
			// so the services can join. Fire and forget; a failure shows
			// as services never appearing.
			form := NewElement(nsDataForms, "x", "type", "submit").Add(
				NewElement(nsDataForms, "field", "var", "FORM_TYPE").Add(NewElement(nsDataForms, "value").SetText("http://jabber.org/protocol/muc#roomconfig")),
				NewElement(nsDataForms, "field", "var", "muc#roomconfig_whois").Add(NewElement(nsDataForms, "value").SetText("anyone")),
			)
			iq := NewIQ("set", m.room, randomID(), NewElement(nsMUCOwner, "query").Add(form))
			if err := x.Send(iq); err != nil {
				m.log.Warn("cannot configure the new brewery room", "brewery", m.room, "err", err)
			}
		}
	}
}

// The bridges' brewery ----------------------------------------------------------------

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
	active := b.member.active()
	b.mu.Lock()
	var evs []BridgeEvent
	if active {
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
func (b *Bridges) Join() error { return b.member.Join() }

// Leave leaves the brewery for good (the focus is shutting down).
func (b *Bridges) Leave() { b.member.Leave() }

// sessionDown forgets every bridge (they come back with the brewery
// presences after the next join).
func (b *Bridges) sessionDown(reason string) {
	b.member.sessionDown()
	b.mu.Lock()
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

// brewerySelfLost: the focus was removed from the brewery; the member
// re-joins and the bridges come back with their presences.
func (b *Bridges) brewerySelfLost(reason string) {
	b.mu.Lock()
	evs := b.forgetAllLocked(reason)
	b.mu.Unlock()
	b.emit(evs)
}
