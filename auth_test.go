package main

import (
	"context"
	"errors"
	"minifocus/testkit"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Secure domain: only authenticated users start conferences and become
// moderators; guests join running ones; sessions are checked.
func TestAuthenticationSecureDomain(t *testing.T) {
	s := startStack(t, 1, func(c *Config, p *testkit.Prosody) {
		c.Auth = AuthConfig{Type: "xmpp", LoginDomain: "auth.meet.test", Lifetime: dur(time.Hour)}
		if err := p.Register("alice", "auth.meet.test", "alicepass"); err != nil {
			t.Fatal(err)
		}
	})
	room := "secure@conference.meet.test"
	ctx, cancel := context.WithTimeout(s.ctx, 20*time.Second)
	defer cancel()
	_, err := testkit.JoinConference(ctx, testkit.ParticipantConfig{Addr: s.prosody.C2SAddr(), Room: room})
	var ce *testkit.ConferenceError
	if !errors.As(err, &ce) || ce.Condition != "not-authorized" {
		t.Fatalf("a guest starting a conference: %v, want not-authorized", err)
	}
	if s.focus.Focus.lookup(room) != nil {
		t.Error("a guest's refused request created the conference")
	}
	alice := s.join(room, func(c *testkit.ParticipantConfig) {
		c.Domain, c.User, c.Password, c.MachineUID = "auth.meet.test", "alice", "alicepass", "alice-machine"
	})
	resp := alice.ConferenceResponse().Child(nsFocus, "conference")
	sid := resp.Attr("session-id")
	if sid == "" || resp.Attr("identity") != "alice@auth.meet.test" {
		t.Errorf("authenticated response: %s", resp)
	}
	props := map[string]string{}
	for _, p := range resp.All(nsFocus, "property") {
		props[p.Attr("name")] = p.Attr("value")
	}
	if props["authentication"] != "true" || props["externalAuth"] != "false" {
		t.Errorf("properties %v", props)
	}
	guest := s.join(room)
	s.wait("sessions, alice moderator", func() bool {
		return alice.Accepted() && guest.Accepted() && alice.Affiliation() == "owner"
	})
	time.Sleep(200 * time.Millisecond)
	if guest.Affiliation() == "owner" {
		t.Error("a guest was made moderator")
	}
	// A session id from another machine, or an unknown one, is refused.
	ask := func(session, machine string) (*testkit.Elem, error) {
		return guest.Client().SendIQ(ctx, testkit.NewElem("jabber:client", "iq", "type", "set", "to", "focus@auth.meet.test/focus").Add(
			testkit.NewElem(nsFocus, "conference", "room", room, "machine-uid", machine, "session-id", session)))
	}
	if r, err := ask(sid, "other-machine"); err == nil || !strings.Contains(r.String(), "session-invalid") || !strings.Contains(r.String(), "machine UID mismatch") {
		t.Errorf("stolen session id: %v %v", r, err)
	}
	if r, err := ask("made-up", "m"); err == nil || !strings.Contains(r.String(), "not-acceptable") {
		t.Errorf("unknown session id: %v %v", r, err)
	}
	// "I am the host": the guest connection presents the session its user
	// got by logging in elsewhere, and becomes a moderator.
	if r, err := ask(sid, "alice-machine"); err != nil || r.Child(nsFocus, "conference").Attr("identity") != "alice@auth.meet.test" {
		t.Fatalf("guest presenting a valid session: %v %v", r, err)
	}
	s.wait("the guest made moderator", func() bool { return guest.Affiliation() == "owner" })
	r, err := guest.Client().SendIQ(ctx, testkit.NewElem("jabber:client", "iq", "type", "get", "to", "focus@auth.meet.test/focus").Add(
		testkit.NewElem(nsFocus, "login-url", "room", room, "machine-uid", "m")))
	if err != nil || r.Child(nsFocus, "login-url").Attr("url") != "./secure?login=true" {
		t.Errorf("login-url: %v %v", r, err)
	}
}

// Authentication sessions cross the restart: a session id handed out by the
// previous process is still honoured (and a made-up one still refused).
func TestHandoverKeepsAuthSessions(t *testing.T) {
	stateFile := filepath.Join(t.TempDir(), "state.json")
	s := startStack(t, 1, func(c *Config, p *testkit.Prosody) {
		c.StateFile = stateFile
		c.Auth = AuthConfig{Type: "xmpp", LoginDomain: "auth.meet.test", Lifetime: dur(time.Hour)}
		if err := p.Register("alice", "auth.meet.test", "alicepass"); err != nil {
			t.Fatal(err)
		}
	})
	room := "secure-handover@conference.meet.test"
	alice := s.join(room, func(c *testkit.ParticipantConfig) {
		c.Domain, c.User, c.Password, c.MachineUID = "auth.meet.test", "alice", "alicepass", "alice-machine"
	})
	sid := alice.ConferenceResponse().Child(nsFocus, "conference").Attr("session-id")
	guest := s.join(room)
	s.wait("sessions", func() bool { return alice.Accepted() && guest.Accepted() && s.focus.XMPP.resumable() })
	handOverMain(t, s.focus)
	s.focus = startMain(t, s.focus.Config)
	s.wait("resumed", func() bool { return s.focus.XMPP.Resumes() == 1 })
	ctx, cancel := context.WithTimeout(s.ctx, 20*time.Second)
	defer cancel()
	ask := func(session string) (*testkit.Elem, error) {
		return guest.Client().SendIQ(ctx, testkit.NewElem("jabber:client", "iq", "type", "set", "to", "focus@auth.meet.test/focus").Add(
			testkit.NewElem(nsFocus, "conference", "room", room, "machine-uid", "alice-machine", "session-id", session)))
	}
	if r, err := ask(sid); err != nil || r.Child(nsFocus, "conference").Attr("identity") != "alice@auth.meet.test" {
		t.Errorf("the session of the previous process: %v %v", r, err)
	}
	if r, err := ask("made-up"); err == nil || !strings.Contains(r.String(), "session-invalid") {
		t.Errorf("a made-up session: %v %v", r, err)
	}
}
