package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"minifocus/testkit"
)

// recordingStatus is the focus's <jibri-recording-status/> as p sees it.
func recordingStatus(p *testkit.Participant) *testkit.Elem {
	fp := p.FocusPresence()
	if fp == nil {
		return nil
	}
	return fp.Child(nsJibri, "jibri-recording-status")
}

func jibriIQ(room string, kv ...string) *testkit.Elem {
	return testkit.NewElem("jabber:client", "iq", "type", "set", "to", room+"/focus").Add(testkit.NewElem(nsJibri, "jibri", kv...))
}

// startJibri starts a fake Jibri once the brewery room exists (only admins
// such as the focus may create rooms there; the focus joins it at login).
func startJibri(t *testing.T, s *stack, mod ...func(*testkit.FakeJibriConfig)) *testkit.FakeJibri {
	t.Helper()
	cfg := testkit.FakeJibriConfig{Addr: s.prosody.C2SAddr(), PresenceInterval: 200 * time.Millisecond}
	for _, f := range mod {
		f(&cfg)
	}
	var last error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(s.ctx, 3*time.Second)
		j, err := testkit.StartFakeJibri(ctx, cfg)
		cancel()
		if err == nil {
			t.Cleanup(j.Close)
			return j
		}
		last = err
	}
	t.Fatalf("fake Jibri: %v", last)
	return nil
}

// A moderator starts a recording: an idle Jibri is asked, reports on, the
// room sees it in the focus presence; stop reaches the Jibri and the room.
func TestJibriRecording(t *testing.T) {
	var jibri *testkit.FakeJibri
	s := startStack(t, 1, func(c *Config, p *testkit.Prosody) {
		c.Jibri.Brewery = "jibribrewery@internal.auth.meet.test"
		if err := p.Register("jibri", "auth.meet.test", "jibripass"); err != nil {
			t.Fatal(err)
		}
	})
	jibri = startJibri(t, s)
	s.wait("the Jibri known and available", func() bool { _, a := jibriPoolsOf(s.focus.Focus).jibris.Count(); return a == 1 })

	room := "rec@conference.meet.test"
	p1 := s.join(room)
	p2 := s.join(room)
	s.wait("p1 moderator", func() bool { return p1.Accepted() && p2.Accepted() && p1.Affiliation() == "owner" })
	ctx, cancel := context.WithTimeout(s.ctx, 20*time.Second)
	defer cancel()

	// Not a moderator: refused, nothing asked of the Jibri.
	if r, err := p2.Client().SendIQ(ctx, jibriIQ(room, "action", "start", "recording_mode", "file")); err == nil || !strings.Contains(r.String(), "not-allowed") {
		t.Errorf("non-moderator start: %v %v", r, err)
	}
	// Bad requests.
	if r, err := p1.Client().SendIQ(ctx, jibriIQ(room, "action", "start", "recording_mode", "stream")); err == nil || !strings.Contains(r.String(), "Stream ID is empty or undefined") {
		t.Errorf("stream without id: %v %v", r, err)
	}
	if r, err := p1.Client().SendIQ(ctx, jibriIQ(room, "action", "start", "recording_mode", "file", "streamid", "x")); err == nil || !strings.Contains(r.String(), "Stream ID is provided for a FILE recording.") {
		t.Errorf("file with stream id: %v %v", r, err)
	}
	if len(jibri.Requests()) != 0 {
		t.Fatalf("refused requests reached the Jibri: %v", jibri.Requests())
	}

	resp, err := p1.Client().SendIQ(ctx, jibriIQ(room, "action", "start", "recording_mode", "file"))
	if err != nil {
		t.Fatalf("start: %v %v", resp, err)
	}
	sid := resp.Child(nsJibri, "jibri").Attr("session_id")
	if sid == "" {
		t.Fatalf("no session_id in %s", resp)
	}
	req, err := jibri.WaitRequest(ctx, func(e *testkit.Elem) bool { return e.Child(nsJibri, "jibri").Attr("action") == "start" })
	if err != nil {
		t.Fatal(err)
	}
	if j := req.Child(nsJibri, "jibri"); j.Attr("session_id") != sid || j.Attr("room") != room || j.Attr("recording_mode") != "file" {
		t.Errorf("start request to the Jibri: %s", req)
	}
	s.wait("recording on in the focus presence", func() bool {
		st := recordingStatus(p2)
		return st != nil && st.Attr("status") == "on" && st.Attr("session_id") == sid && st.Attr("initiator") == p1.OccupantJID()
	})
	if r, err := p1.Client().SendIQ(ctx, jibriIQ(room, "action", "start", "recording_mode", "file")); err == nil || !strings.Contains(r.String(), "already enabled") {
		t.Errorf("second start: %v %v", r, err)
	}
	if _, err := p1.Client().SendIQ(ctx, jibriIQ(room, "action", "stop")); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if _, err := jibri.WaitRequest(ctx, func(e *testkit.Elem) bool { return e.Child(nsJibri, "jibri").Attr("action") == "stop" }); err != nil {
		t.Errorf("the Jibri got no stop: %v", err)
	}
	s.wait("recording off in the focus presence", func() bool {
		st := recordingStatus(p2)
		return st != nil && st.Attr("status") == "off"
	})
}

// With every Jibri busy the request says so; with none it says so too.
func TestJibriNoneOrBusy(t *testing.T) {
	s := startStack(t, 1, func(c *Config, p *testkit.Prosody) {
		c.Jibri.Brewery = "jibribrewery@internal.auth.meet.test"
		if err := p.Register("jibri", "auth.meet.test", "jibripass"); err != nil {
			t.Fatal(err)
		}
	})
	room := "busy@conference.meet.test"
	p1 := s.join(room)
	p2 := s.join(room)
	s.wait("moderator", func() bool { return p1.Affiliation() == "owner" && p2.Accepted() })
	ctx, cancel := context.WithTimeout(s.ctx, 20*time.Second)
	defer cancel()
	if r, err := p1.Client().SendIQ(ctx, jibriIQ(room, "action", "start", "recording_mode", "file")); err == nil || !strings.Contains(r.String(), "service-unavailable") || !strings.Contains(r.String(), "no Jibris available") {
		t.Errorf("no Jibri: %v %v", r, err)
	}
	jibri := startJibri(t, s)
	jibri.SetBusy(true)
	s.wait("the Jibri known, busy", func() bool { n, a := jibriPoolsOf(s.focus.Focus).jibris.Count(); return n == 1 && a == 0 })
	if r, err := p1.Client().SendIQ(ctx, jibriIQ(room, "action", "start", "recording_mode", "file")); err == nil || !strings.Contains(r.String(), "resource-constraint") || !strings.Contains(r.String(), "all Jibris are busy") {
		t.Errorf("busy Jibri: %v %v", r, err)
	}
}

// A Jibri that leaves while recording fails the recording (with one Jibri
// there is nobody to take over): the room is told it is off with an error.
func TestJibriLeavesWhileRecording(t *testing.T) {
	s := startStack(t, 1, func(c *Config, p *testkit.Prosody) {
		c.Jibri.Brewery = "jibribrewery@internal.auth.meet.test"
		if err := p.Register("jibri", "auth.meet.test", "jibripass"); err != nil {
			t.Fatal(err)
		}
	})
	jibri := startJibri(t, s)
	s.wait("the Jibri available", func() bool { _, a := jibriPoolsOf(s.focus.Focus).jibris.Count(); return a == 1 })
	room := "crash@conference.meet.test"
	p1 := s.join(room)
	p2 := s.join(room)
	s.wait("moderator", func() bool { return p1.Affiliation() == "owner" && p2.Accepted() })
	ctx, cancel := context.WithTimeout(s.ctx, 20*time.Second)
	defer cancel()
	if _, err := p1.Client().SendIQ(ctx, jibriIQ(room, "action", "start", "recording_mode", "file")); err != nil {
		t.Fatal(err)
	}
	s.wait("recording on", func() bool { st := recordingStatus(p2); return st != nil && st.Attr("status") == "on" })
	jibri.Leave()
	s.wait("recording off with an error", func() bool {
		st := recordingStatus(p2)
		return st != nil && st.Attr("status") == "off" && st.Attr("failure_reason") == "error"
	})
}

// The Jibri SIP gateway: a moderator's start with a sipaddress goes to a
// Jibri of the SIP brewery (with the address and display name, no recording
// mode), one call per address, each published as <jibri-sip-call-state/>;
// stop by address reaches that Jibri; without a recorder brewery a plain
// recording request is refused.
func TestJibriSIPGateway(t *testing.T) {
	s := startStack(t, 1, func(c *Config, p *testkit.Prosody) {
		c.Jibri.SIPBrewery = "jibrisipbrewery@internal.auth.meet.test"
		if err := p.Register("jibri", "auth.meet.test", "jibripass"); err != nil {
			t.Fatal(err)
		}
	})
	gw := startJibri(t, s, func(c *testkit.FakeJibriConfig) {
		c.Brewery, c.Nick = "jibrisipbrewery@internal.auth.meet.test", "sipgw1"
	})
	s.wait("the SIP Jibri available", func() bool { _, a := jibriPoolsOf(s.focus.Focus).sipJibris.Count(); return a == 1 })

	room := "sipcall@conference.meet.test"
	p1 := s.join(room)
	p2 := s.join(room)
	s.wait("p1 moderator", func() bool { return p1.Accepted() && p2.Accepted() && p1.Affiliation() == "owner" })
	ctx, cancel := context.WithTimeout(s.ctx, 20*time.Second)
	defer cancel()
	callState := func() *testkit.Elem {
		fp := p2.FocusPresence()
		if fp == nil {
			return nil
		}
		return fp.Child(nsJibriCallState, "jibri-sip-call-state")
	}
	const addr = "sip:boardroom@pbx.example.com"
	if r, err := p2.Client().SendIQ(ctx, jibriIQ(room, "action", "start", "sipaddress", addr)); err == nil || !strings.Contains(r.String(), "not-allowed") {
		t.Errorf("non-moderator start: %v %v", r, err)
	}
	if r, err := p1.Client().SendIQ(ctx, jibriIQ(room, "action", "start", "recording_mode", "file")); err == nil || !strings.Contains(r.String(), "service-unavailable") {
		t.Errorf("recording without recorder Jibris: %v %v", r, err)
	}
	resp, err := p1.Client().SendIQ(ctx, jibriIQ(room, "action", "start", "sipaddress", addr, "displayname", "Boardroom"))
	if err != nil {
		t.Fatalf("start: %v %v", resp, err)
	}
	sid := resp.Child(nsJibri, "jibri").Attr("session_id")
	req, err := gw.WaitRequest(ctx, func(e *testkit.Elem) bool { return e.Child(nsJibri, "jibri").Attr("action") == "start" })
	if err != nil {
		t.Fatal(err)
	}
	if j := req.Child(nsJibri, "jibri"); sid == "" || j.Attr("session_id") != sid || j.Attr("sipaddress") != addr ||
		j.Attr("displayname") != "Boardroom" || j.Attr("room") != room || j.Attr("recording_mode") != "" {
		t.Errorf("start request to the SIP Jibri: %s (session %q)", req, sid)
	}
	s.wait("call on in the focus presence", func() bool {
		st := callState()
		return st != nil && st.Attr("state") == "on" && st.Attr("sipaddress") == addr && st.Attr("session_id") == sid
	})
	if r, err := p1.Client().SendIQ(ctx, jibriIQ(room, "action", "start", "sipaddress", addr)); err == nil || !strings.Contains(r.String(), "already running") {
		t.Errorf("second call to the same address: %v %v", r, err)
	}
	if r, err := p1.Client().SendIQ(ctx, jibriIQ(room, "action", "stop", "sipaddress", "sip:nobody@pbx.example.com")); err == nil || !strings.Contains(r.String(), "item-not-found") {
		t.Errorf("stop of an unknown call: %v %v", r, err)
	}
	if _, err := p1.Client().SendIQ(ctx, jibriIQ(room, "action", "stop", "sipaddress", addr)); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if _, err := gw.WaitRequest(ctx, func(e *testkit.Elem) bool {
		j := e.Child(nsJibri, "jibri")
		return j.Attr("action") == "stop" && j.Attr("session_id") == sid
	}); err != nil {
		t.Errorf("the SIP Jibri got no stop: %v", err)
	}
	s.wait("call off in the focus presence", func() bool {
		st := callState()
		return st != nil && st.Attr("state") == "off" && st.Attr("sipaddress") == addr
	})
	if st := p2.FocusPresence().Child(nsJibri, "jibri-recording-status"); st != nil {
		t.Errorf("a SIP call showed up as a recording: %s", st)
	}
}

// A Jibri that never reports "on" is stopped after jibri.pending-timeout;
// with nobody to take over, the room is told the recording is off with an
// error.
func TestJibriPendingTimeout(t *testing.T) {
	s := startStack(t, 1, func(c *Config, p *testkit.Prosody) {
		c.Jibri.Brewery = "jibribrewery@internal.auth.meet.test"
		c.Jibri.PendingTimeout = dur(500 * time.Millisecond)
		if err := p.Register("jibri", "auth.meet.test", "jibripass"); err != nil {
			t.Fatal(err)
		}
	})
	jibri := startJibri(t, s, func(c *testkit.FakeJibriConfig) { c.OnDelay = time.Hour })
	s.wait("the Jibri available", func() bool { _, a := jibriPoolsOf(s.focus.Focus).jibris.Count(); return a == 1 })
	room := "stuck-recording@conference.meet.test"
	p1 := s.join(room)
	p2 := s.join(room)
	s.wait("moderator", func() bool { return p1.Affiliation() == "owner" && p2.Accepted() })
	ctx, cancel := context.WithTimeout(s.ctx, 20*time.Second)
	defer cancel()
	if _, err := p1.Client().SendIQ(ctx, jibriIQ(room, "action", "start", "recording_mode", "file")); err != nil {
		t.Fatal(err)
	}
	if _, err := jibri.WaitRequest(ctx, func(e *testkit.Elem) bool { return e.Child(nsJibri, "jibri").Attr("action") == "stop" }); err != nil {
		t.Fatalf("the pending Jibri was not stopped: %v", err)
	}
	s.wait("recording off with an error", func() bool {
		st := recordingStatus(p2)
		return st != nil && st.Attr("status") == "off" && st.Attr("failure_reason") == "error"
	})
}

// A recording running at the restart stays on; the moderator's stop in the
// next process reaches the same Jibri session and the room sees it off.
func TestHandoverKeepsRecording(t *testing.T) {
	stateFile := filepath.Join(t.TempDir(), "state.json")
	s := startStack(t, 1, func(c *Config, p *testkit.Prosody) {
		c.StateFile = stateFile
		c.Jibri.Brewery = "jibribrewery@internal.auth.meet.test"
		if err := p.Register("jibri", "auth.meet.test", "jibripass"); err != nil {
			t.Fatal(err)
		}
	})
	jibri := startJibri(t, s)
	s.wait("the Jibri available", func() bool { _, a := jibriPoolsOf(s.focus.Focus).jibris.Count(); return a == 1 })
	room := "recorded@conference.meet.test"
	p1, p2 := s.join(room), s.join(room)
	s.wait("moderator", func() bool { return p1.Affiliation() == "owner" && p2.Accepted() && s.focus.XMPP.resumable() })
	ctx, cancel := context.WithTimeout(s.ctx, 20*time.Second)
	defer cancel()
	resp, err := p1.Client().SendIQ(ctx, jibriIQ(room, "action", "start", "recording_mode", "file"))
	if err != nil {
		t.Fatal(err)
	}
	sid := resp.Child(nsJibri, "jibri").Attr("session_id")
	s.wait("recording on", func() bool { st := recordingStatus(p2); return st != nil && st.Attr("status") == "on" })

	handOverMain(t, s.focus)
	s.focus = startMain(t, s.focus.Config)
	s.wait("resumed", func() bool { return s.focus.XMPP.Resumes() == 1 })
	if st := recordingStatus(p2); st == nil || st.Attr("status") != "on" {
		t.Errorf("recording status after the restart: %v", st)
	}
	if _, err := p1.Client().SendIQ(ctx, jibriIQ(room, "action", "stop")); err != nil {
		t.Fatalf("stop after the restart: %v", err)
	}
	if _, err := jibri.WaitRequest(ctx, func(e *testkit.Elem) bool {
		j := e.Child(nsJibri, "jibri")
		return j.Attr("action") == "stop" && j.Attr("session_id") == sid
	}); err != nil {
		t.Errorf("the Jibri got no stop for session %s: %v", sid, err)
	}
	s.wait("recording off", func() bool { st := recordingStatus(p2); return st != nil && st.Attr("status") == "off" })
	if sawFocusLeave(p2) {
		t.Error("p2 saw the focus leave")
	}
}

// The Jibri registry uses the shared brewery member (testBreweryRegistry).
func TestBreweryMemberJibri(t *testing.T) {
	const room = "jibribrewery@internal.meet.test"
	testBreweryRegistry(t, room, func(x *XMPPClient, log *slog.Logger) breweryRegistry {
		j := NewJibris(room, "focus", x, log)
		return breweryRegistry{j.member, j.HandlePresence, j.Leave,
			NewElement(nsClient, "presence", "from", room+"/jibri1").Add(NewElement(nsJibri, "jibri-status").Add(
				NewElement(nsJibri, "busy-status", "status", "idle"), NewElement(nsHealthState, "health-status", "status", "healthy"))),
			func() bool { j.mu.Lock(); defer j.mu.Unlock(); return len(j.instances) > 0 }}
	})
}

// A Jibri (a trusted domain, the jibri feature in its presence) is never
// made owner by the auto-owner rule; the next real member is.
func TestJibriNotMadeOwner(t *testing.T) {
	h := newConfHarness(t, nil, nil, "a")
	jibriFeature := NewElement("", "features").Add(NewElement("", "feature", "var", "http://jitsi.org/protocol/jibri"))
	h.join("rec", "recorder@hidden.meet.test/x", jibriFeature)
	if got := sentTo(h.link.take(), "", isOwnerGrant); len(got) != 0 {
		t.Fatalf("a Jibri was made owner:%s", dump(got))
	}
	if !h.c.members["rec"].Jibri {
		t.Fatal("the trusted Jibri was not recognised")
	}
	h.join("A", "alice@meet.test/r1")
	if got := sentTo(h.link.take(), unitRoom, isOwnerGrant); len(got) != 1 {
		t.Fatalf("%d owner grants after a real member joined, want 1:%s", len(got), dump(got))
	}
}
