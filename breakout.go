package main

// breakout.go: optional feature: breakout rooms (their MUC domain, keeping a main room while breakouts run).

import (
	"encoding/json"
	"strings"
	"sync/atomic"
)

// waitForBreakouts keeps an empty main room while breakout conferences of it
// run (checked every initial-timeout), and ends it when they are over.
func (c *Conference) waitForBreakouts() {
	if c.initialTimer != nil {
		c.initialTimer.Stop()
	}
	c.initialTimer = c.later(c.cfg().Conference.InitialTimeout.Duration, func() {
		switch {
		case len(c.members) > 0:
		case c.f.hasBreakouts(c.room):
			c.waitForBreakouts()
		default:
			c.stop("nobody came back from the breakout rooms", false)
		}
	})
}

// isBreakoutDomain: breakout rooms live on their own MUC (Jitsi's
// breakout_rooms component); their conference requests are accepted there.
func (f *Focus) isBreakoutDomain(domain string) bool {
	b, _ := breakoutDomainOf(f).breakoutDomain.Load().(string)
	return b != "" && strings.EqualFold(domain, b)
}

// hasBreakouts reports whether breakout conferences of main are running.
func (f *Focus) hasBreakouts(main string) bool {
	for _, c := range f.all() {
		if m, _ := breakoutOf(c).mainRoom.Load().(string); m == main && c != f.lookup(main) {
			select {
			case <-c.done:
			default:
				return true
			}
		}
	}
	return false
}

// isBreakoutRoom reports whether room (a bare JID) is a breakout room.
func (f *Focus) isBreakoutRoom(room string) bool {
	at := strings.LastIndexByte(room, '@')
	return at > 0 && f.isBreakoutDomain(room[at+1:])
}

// breakoutState is the breakout rooms' per-conference state.
type breakoutState struct {
	switching bool         // the member leaving now is switching rooms
	mainRoom  atomic.Value // string: for a breakout room, its main room
}

func breakoutOf(c *Conference) *breakoutState { return confState[breakoutState](c) }

func breakoutsFeature() Feature {
	return Feature{Name: "breakout-rooms", ConfState: func() any { return new(breakoutState) }, FocusState: func() any { return new(breakoutDomainState) }, Save: saveMainRoom, Restore: restoreMainRoom,
		SaveFocus: func(f *Focus) (json.RawMessage, error) { return saveDiscovered(&breakoutDomainOf(f).breakoutDomain) },
		RestoreFocus: func(f *Focus, raw json.RawMessage) error {
			return restoreDiscovered(&breakoutDomainOf(f).breakoutDomain, f.cfg.XMPP.BreakoutMUCDomain, raw)
		},
		Room: breakoutRoom, Ending: breakoutEnding,
		Setup: func(m *Main) {
			f, domain := m.Focus, m.Config.XMPP.BreakoutMUCDomain
			breakoutDomainOf(f).breakoutDomain.Store(domain)
			f.components["breakout_rooms"] = func(found string) bool { return storeIfUnset(&breakoutDomainOf(f).breakoutDomain, domain, found) }
			f.roomDomains = append(f.roomDomains, f.isBreakoutDomain)
		},
		Request: func(f *Focus, room string, req ConferenceRequest, a *Admission) error {
			a.Exempt = a.Exempt || f.isBreakoutRoom(room) // breakout rooms skip authentication
			return nil
		},
		Moderators: func(c *Conference) bool {
			return c.f.isBreakoutRoom(c.room) // Prosody's breakout module makes the moderators there
		}}
}

// breakoutRoom notes the main room of a breakout room, and whether the
// member leaving now is switching rooms (it says so in its status).
func breakoutRoom(c *Conference, ev RoomEvent) {
	if ev.Form != nil {
		if main := formValue(ev.Form, "muc#roominfo_breakout_main_room"); main != "" {
			breakoutOf(c).mainRoom.Store(roomKey(main))
		}
	}
	if ev.Leaving {
		st := ev.Presence.Child("", "status")
		breakoutOf(c).switching = st != nil && strings.TrimSpace(st.Text) == "switch_room"
	}
}

// breakoutEnding keeps an empty main room while its members are in breakout
// rooms: the conference waits for them rather than ending.
func breakoutEnding(c *Conference, final bool) bool {
	if final || !(breakoutOf(c).switching || c.f.hasBreakouts(c.room)) {
		return false
	}
	c.log.Info("the last participant switched to a breakout room; waiting for people to come back")
	c.waitForBreakouts()
	return true
}

// breakoutDomainState holds the MUC domain of breakout rooms.
type breakoutDomainState struct {
	breakoutDomain atomic.Value // string
}

func breakoutDomainOf(f *Focus) *breakoutDomainState { return focusState[breakoutDomainState](f) }

// saveMainRoom carries a breakout room's main room across a restart.
func saveMainRoom(c *Conference) (json.RawMessage, error) {
	main, _ := breakoutOf(c).mainRoom.Load().(string)
	if main == "" {
		return nil, nil
	}
	return json.Marshal(main)
}

func restoreMainRoom(c *Conference, raw json.RawMessage) error {
	var main string
	if err := json.Unmarshal(raw, &main); err != nil {
		return err
	}
	if main != "" {
		breakoutOf(c).mainRoom.Store(main)
	}
	return nil
}
