package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"minifocus/testkit"
)

func testFocus() *Focus {
	cfg := DefaultConfig()
	cfg.XMPP.Domain = "meet.test"
	cfg.XMPP.Password = "x"
	cfg.deriveDefaults()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	x := NewXMPPClient(XMPPOptions{Username: "focus", Domain: "auth.meet.test"})
	b := NewBridges(cfg.Bridges, "focus", x, log)
	return NewFocus(cfg, x, b, NewMetrics(), &EventLog{}, log)
}

func TestValidateRoom(t *testing.T) {
	f := testFocus()
	cases := []struct {
		room, want, errCond, errText string
	}{
		{"Room1@Conference.Meet.Test", "room1@conference.meet.test", "", ""},
		{"", "", "bad-request", "no 'room' specified"},
		{"room1", "", "bad-request", "expected room@conference.meet.test"},
		{"room1@conference.meet.test/nick", "", "bad-request", "invalid room name"},
		{"room1@muc.elsewhere.test", "", "not-allowed", "not in the conference domain conference.meet.test"},
		{"a@b@conference.meet.test", "", "bad-request", "invalid room name"},
		{"r<script>@conference.meet.test", "", "bad-request", "invalid room name"},
		{strings.Repeat("x", 300) + "@conference.meet.test", "", "bad-request", "longer than 256"},
		{"@conference.meet.test", "", "bad-request", "expected room@"},
	}
	for _, tc := range cases {
		got, err := f.validateRoom(tc.room)
		if tc.errCond == "" {
			if err != nil || got != tc.want {
				t.Errorf("validateRoom(%q) = %q, %v; want %q", tc.room, got, err, tc.want)
			}
			continue
		}
		se, ok := err.(*StanzaError)
		if !ok || se.Condition != tc.errCond || !strings.Contains(se.Text, tc.errText) {
			t.Errorf("validateRoom(%q) error = %v; want %s containing %q", tc.room, err, tc.errCond, tc.errText)
		}
		if f.lookup(tc.room) != nil {
			t.Errorf("a conference was created for %q", tc.room)
		}
	}
}

func TestRateWindow(t *testing.T) {
	var w rateWindow
	now := time.Unix(1000, 0)
	// min interval 5s, at most 5 per minute (Jicofo's restart limits)
	if !w.allow(now, time.Minute, 5, 5*time.Second) {
		t.Fatal("first request refused")
	}
	if w.allow(now.Add(4*time.Second), time.Minute, 5, 5*time.Second) {
		t.Error("accepted a request 4s after the previous one")
	}
	accepted := 1
	for i := 1; i <= 10; i++ {
		if w.allow(now.Add(time.Duration(i)*6*time.Second), time.Minute, 5, 5*time.Second) {
			accepted++
		}
	}
	if accepted != 5+1 { // 5 in the first minute, then the window slides by one
		t.Errorf("accepted %d requests in 66s, want 6", accepted)
	}
}

func TestParseConferenceRequestJSON(t *testing.T) {
	req, err := parseConferenceRequestJSON(strings.NewReader(`{"machineUid":"m1","properties":{"rtcstatsEnabled":false,"visitors-version":1,"startAudioMuted":"10"},"room":"r@conference.meet.test","sessionId":"s"}`))
	if err != nil {
		t.Fatal(err)
	}
	if req.Room != "r@conference.meet.test" || req.MachineUID != "m1" || req.SessionID != "s" {
		t.Errorf("fields: %+v", req)
	}
	want := map[string]string{"rtcstatsEnabled": "false", "visitors-version": "1", "startAudioMuted": "10"}
	for k, v := range want {
		if req.Properties[k] != v {
			t.Errorf("property %s = %q, want %q", k, req.Properties[k], v)
		}
	}
	bad := map[string]string{
		`not json`:                               "invalid JSON",
		`{"room":5}`:                             "invalid JSON",
		`{}`:                                     "no 'room' specified",
		`{"room":"r@c","properties":{"a":[1]}}`:  `property "a" must be a string, number or boolean`,
		`{"room":"r@c"} {"room":"x"}`:            "more than one value",
		`{"room":"r@c","properties":5}`:          "invalid JSON",
		`{"room":"r@c","properties":{"a":null}}`: `property "a" must be a string, number or boolean`,
	}
	for body, want := range bad {
		if _, err := parseConferenceRequestJSON(strings.NewReader(body)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", body, err, want)
		}
	}
}

func FuzzParseConferenceRequestJSON(f *testing.F) {
	f.Add(`{"machineUid":"m","properties":{"rtcstatsEnabled":false},"room":"r@conference.meet.test"}`)
	f.Add(`{"room":"x","properties":{"a":1.5e3,"b":null}}`)
	f.Fuzz(func(t *testing.T, body string) {
		req, err := parseConferenceRequestJSON(strings.NewReader(body))
		if err == nil && req.Room == "" {
			t.Fatal("accepted a request without a room")
		}
	})
}

// The real sender of a request through Jitsi's mod_client_proxy is the
// resource of the proxy's address; anything else is taken as it comes.
func TestRequestSenderClientProxy(t *testing.T) {
	cases := []struct{ from, proxy, want string }{
		{"u@meet.test/abc", "", "u@meet.test/abc"},
		{"focus.meet.test/u@guest.meet.test/abc", "", "focus.meet.test/u@guest.meet.test/abc"}, // decoding off
		{"focus.meet.test/u@guest.meet.test/abc", "focus.meet.test", "u@guest.meet.test/abc"},
		{"FOCUS.meet.test/u@guest.meet.test/abc", "focus.meet.test", "u@guest.meet.test/abc"},
		{"focus.meet.test/u@guest.meet.test/a/b", "focus.meet.test", "u@guest.meet.test/a/b"}, // a resource may hold '/'
		{"u@meet.test/abc", "focus.meet.test", "u@meet.test/abc"},
		{"x@focus.meet.test/u@guest/abc", "focus.meet.test", "x@focus.meet.test/u@guest/abc"},
	}
	for _, tc := range cases {
		if got, err := requestSender(tc.from, tc.proxy); err != nil || got != tc.want {
			t.Errorf("requestSender(%q, %q) = %q, %v; want %q", tc.from, tc.proxy, got, err, tc.want)
		}
	}
	for _, from := range []string{"focus.meet.test", "focus.meet.test/@@", "focus.meet.test/a@b@c"} {
		if got, err := requestSender(from, "focus.meet.test"); err == nil {
			t.Errorf("requestSender(%q) = %q, want an error (no sender named)", from, got)
		}
	}
}

func TestConferenceRequestRateLimitPerSender(t *testing.T) {
	f := testFocus()
	f.cfg.Conference.MaxConferenceRequests = 3
	for i := 0; i < 3; i++ {
		if !f.allowRequest("a@meet.test/x") {
			t.Fatalf("request %d refused", i+1)
		}
	}
	if f.allowRequest("a@meet.test/x") {
		t.Error("the 4th request within a minute was allowed")
	}
	if !f.allowRequest("b@meet.test/y") {
		t.Error("another sender was limited too")
	}
}

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
	if m, _ := s.focus.Focus.lookup(breakout).mainRoom.Load().(string); m != main {
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
