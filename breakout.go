package main

// breakout.go: optional feature: breakout rooms (their MUC domain, keeping a main room while breakouts run).

import (
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
	b, _ := f.breakoutDomain.Load().(string)
	return b != "" && strings.EqualFold(domain, b)
}

// hasBreakouts reports whether breakout conferences of main are running.
func (f *Focus) hasBreakouts(main string) bool {
	for _, c := range f.all() {
		if m, _ := c.mainRoom.Load().(string); m == main && c != f.lookup(main) {
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

func breakoutsFeature() Feature {
	return Feature{Name: "breakout-rooms"}
}
