package main

import (
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"
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
