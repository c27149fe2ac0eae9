package main

import (
	"context"
	"minifocus/testkit"
	"testing"
	"time"
)

// Breakout rooms: the breakout MUC is found where Jitsi's breakout module
// announces it, requests for rooms there are accepted (also from guests
// when authentication is on), the focus makes nobody owner there (the
// module gives the main room's moderators their rights), and a main room
// whose members all switch to breakout rooms waits for them.
func TestBreakoutRooms(t *testing.T) {
	s := startStackWith(t, 1, []testkit.Option{testkit.WithJitsiComponents()}, func(c *Config, p *testkit.Prosody) {
		c.Conference.InitialTimeout = dur(5 * time.Second)
	})
	main := "main@conference.meet.test"
	p1 := s.join(main)
	p2 := s.join(main)
	s.wait("main conference", func() bool { return p1.Accepted() && p2.Accepted() })
	conf := s.focus.Focus.lookup(main)

	s.wait("the breakout MUC discovered", func() bool { return s.focus.Focus.isBreakoutDomain(testkit.BreakoutMUCDomain) })
	breakout := "main_1@" + testkit.BreakoutMUCDomain
	b1 := s.join(breakout)
	b2 := s.join(breakout)
	s.wait("breakout conference", func() bool { return b1.Accepted() && b2.Accepted() && knowsExactly(b1, b2) })
	if m, _ := breakoutOf(s.focus.Focus.lookup(breakout)).mainRoom.Load().(string); m != main {
		t.Errorf("the breakout conference's main room is %q, want %q (from the room configuration)", m, main)
	}
	// A breakout room without its main room cannot be created in Prosody.
	ctx, cancel := context.WithTimeout(s.ctx, 15*time.Second)
	defer cancel()
	if _, err := testkit.JoinConference(ctx, testkit.ParticipantConfig{Addr: s.prosody.C2SAddr(), Room: "nomain_1@" + testkit.BreakoutMUCDomain}); err == nil {
		t.Error("a breakout room of no main room was started")
	}
	time.Sleep(300 * time.Millisecond)
	if b1.Affiliation() == "owner" || b2.Affiliation() == "owner" {
		t.Error("the focus made someone owner of a breakout room (Prosody's breakout module does that)")
	}

	// Everyone in the main room moves to a breakout room.
	for _, p := range []*testkit.Participant{p1, p2} {
		if err := p.Client().Send(testkit.NewElem("jabber:client", "presence", "to", p.OccupantJID(), "type", "unavailable").Add(
			testkit.NewElem("jabber:client", "status").SetText("switch_room"))); err != nil {
			t.Fatal(err)
		}
	}
	// Wait until the focus has handled both departures (a fixed sleep could
	// check before that on a slow machine, and so check nothing).
	s.wait("the focus to see the main room empty", func() bool {
		if s.focus.Focus.lookup(main) != conf {
			return true // ended: reported below
		}
		ctx, cancel := context.WithTimeout(s.ctx, 2*time.Second)
		defer cancel()
		snap := conf.Snapshot(ctx)
		return snap == nil || len(snap.Participants) == 0
	})
	if s.focus.Focus.lookup(main) != conf {
		t.Fatal("the main conference ended while its members were in breakout rooms")
	}
	p3 := s.join(main)
	p4 := s.join(main)
	s.wait("back in the main conference", func() bool { return p3.Accepted() && p4.Accepted() })
	if s.focus.Focus.lookup(main) != conf {
		t.Error("a new conference was started instead of the waiting one")
	}
	// A room on another domain is still refused.
	if _, err := s.focus.Focus.validateRoom("x@elsewhere.test"); err == nil {
		t.Error("a room outside the conference and breakout domains was accepted")
	}
}
