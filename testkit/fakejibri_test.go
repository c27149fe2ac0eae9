package testkit

import (
	"context"
	"testing"
	"time"
)

const fjBrewery = "jibribrewery@" + InternalMUCDomain

// fjJoin joins the Jibri brewery as nick and waits for the self-presence.
func fjJoin(o *fbPeer, nick string) {
	o.t.Helper()
	m := o.mark()
	if err := o.c.Send(NewElem("", "presence", "to", fjBrewery+"/"+nick).Add(NewElem(nsMUC, "x"))); err != nil {
		o.t.Fatal(err)
	}
	o.wait(m, "self-presence in the jibri brewery", func(e *Elem) bool {
		return e.Local == "presence" && e.Attr("from") == fjBrewery+"/"+nick && fbHasStatus(e, "110")
	})
}

// fjStatus returns busy and health status of a <jibri-status> presence
// ("", "" when it has none).
func fjStatus(p *Elem) (busy, health string) {
	s := p.Child(nsJibri, "jibri-status")
	if s == nil {
		return "", ""
	}
	return fbAttr(s.Child("", "busy-status"), "status"), fbAttr(s.Child(nsHealth, "health-status"), "status")
}

func fjPresence(j *FakeJibri, busy, health string) func(*Elem) bool {
	return func(e *Elem) bool {
		if e.Local != "presence" || e.Attr("from") != j.JID() || e.Attr("type") != "" {
			return false
		}
		b, h := fjStatus(e)
		return b == busy && h == health
	}
}

// fjStatusIQ matches a status IQ set from the Jibri.
func fjStatusIQ(j *FakeJibri, status, sid string) func(*Elem) bool {
	return func(e *Elem) bool {
		if e.Local != "iq" || e.Attr("type") != "set" || e.Attr("from") != j.JID() {
			return false
		}
		p := e.Child(nsJibri, "jibri")
		return p != nil && p.Attr("status") == status && p.Attr("session_id") == sid
	}
}

func TestFakeJibri(t *testing.T) {
	p := StartProsody(t, WithUser("jibri", AuthDomain, "jibripass"))
	// The focus (an admin) creates the brewery: restrict_room_creation.
	focus := fbDialPeer(t, p, FocusUser, FocusPassword, "focus")
	fjJoin(focus, "focus")

	m := focus.mark()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	j, err := StartFakeJibri(ctx, FakeJibriConfig{Addr: p.C2SAddr(), Nick: "jibri-a", Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(j.Close)
	if j.JID() != fjBrewery+"/jibri-a" {
		t.Fatalf("JID %q", j.JID())
	}
	focus.wait(m, "idle healthy jibri-status", fjPresence(j, "idle", "healthy"))

	// A peer joining later sees the current status.
	late := fbDialPeer(t, p, FocusUser, FocusPassword, "late")
	m = late.mark()
	fjJoin(late, "late")
	late.wait(m, "jibri-status on join", fjPresence(j, "idle", "healthy"))

	start := func(sid string) *Elem {
		t.Helper()
		resp, se := focus.iq(j.JID(), "set", `<jibri xmlns="`+nsJibri+`" action="start" session_id="`+sid+
			`" recording_mode="file" room="room@`+MUCDomain+`"/>`)
		if se != nil {
			t.Fatalf("start %s: %v", sid, se)
		}
		if resp.Attr("type") != "result" || resp.Child(nsJibri, "jibri") == nil {
			t.Fatalf("start %s: %s", sid, resp)
		}
		return resp.Child(nsJibri, "jibri")
	}
	answer := func(iq *Elem) {
		t.Helper()
		if err := focus.c.Send(fbResult(iq)); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("StartStop", func(t *testing.T) {
		m := focus.mark()
		if r := start("s1"); r.Attr("status") != "pending" {
			t.Fatalf("start answer %s, want pending", r)
		}
		focus.wait(m, "busy presence", fjPresence(j, "busy", "healthy"))
		on := focus.wait(m, "status on", fjStatusIQ(j, "on", "s1"))
		answer(on)
		if sid, isOn := j.Recording(); sid != "s1" || !isOn {
			t.Errorf("Recording() = %q, %v", sid, isOn)
		}
		wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer wcancel()
		req, err := j.WaitRequest(wctx, func(e *Elem) bool { return e.Child(nsJibri, "jibri").Attr("session_id") == "s1" })
		if err != nil {
			t.Fatal(err)
		}
		if r := req.Child(nsJibri, "jibri"); r.Attr("action") != "start" || r.Attr("recording_mode") != "file" ||
			req.Attr("from") != fjBrewery+"/focus" {
			t.Errorf("recorded request %s", req)
		}

		// A second start while recording: busy.
		if r := start("s2"); r.Attr("status") != "off" || r.Attr("failure_reason") != "busy" || r.Attr("should_retry") != "true" {
			t.Errorf("start while busy: %s", r)
		}

		m = focus.mark()
		resp, se := focus.iq(j.JID(), "set", `<jibri xmlns="`+nsJibri+`" action="stop" session_id="s1"/>`)
		if se != nil || resp.Attr("type") != "result" {
			t.Fatalf("stop: %v %s", se, resp)
		}
		off := focus.wait(m, "status off", fjStatusIQ(j, "off", "s1"))
		answer(off)
		focus.wait(m, "idle presence", fjPresence(j, "idle", "healthy"))
		if sid, isOn := j.Recording(); sid != "" || isOn {
			t.Errorf("Recording() after stop = %q, %v", sid, isOn)
		}
		if n := len(j.Requests()); n != 3 {
			t.Errorf("%d requests recorded, want 3", n)
		}
		deadline := time.Now().Add(5 * time.Second)
		for len(j.StatusResponses()) < 2 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if rs := j.StatusResponses(); len(rs) != 2 || rs[0].Attr("type") != "result" {
			t.Errorf("status responses %v", rs)
		}
	})

	t.Run("FailNextStart", func(t *testing.T) {
		j.FailNextStart("error")
		r := start("s3")
		if r.Attr("status") != "off" || r.Attr("failure_reason") != "error" || r.Attr("should_retry") != "true" {
			t.Errorf("failed start: %s", r)
		}
		if sid, _ := j.Recording(); sid != "" {
			t.Errorf("session %q after a failed start", sid)
		}
		// Only the next one fails.
		m := focus.mark()
		if r := start("s4"); r.Attr("status") != "pending" {
			t.Fatalf("start after failure: %s", r)
		}
		answer(focus.wait(m, "status on", fjStatusIQ(j, "on", "s4")))
		if _, se := focus.iq(j.JID(), "set", `<jibri xmlns="`+nsJibri+`" action="stop"/>`); se != nil {
			t.Fatal(se)
		}
		answer(focus.wait(m, "status off", fjStatusIQ(j, "off", "s4")))
	})

	t.Run("Knobs", func(t *testing.T) {
		m := focus.mark()
		j.SetBusy(true)
		focus.wait(m, "busy presence", fjPresence(j, "busy", "healthy"))
		if r := start("s5"); r.Attr("status") != "off" || r.Attr("failure_reason") != "busy" {
			t.Errorf("start on a busy jibri: %s", r)
		}
		m = focus.mark()
		j.SetBusy(false)
		focus.wait(m, "idle presence", fjPresence(j, "idle", "healthy"))
		m = focus.mark()
		j.SetHealthy(false)
		focus.wait(m, "unhealthy presence", fjPresence(j, "idle", "unhealthy"))
		m = focus.mark()
		j.SetHealthy(true)
		focus.wait(m, "healthy presence", fjPresence(j, "idle", "healthy"))
	})

	t.Run("Unknown", func(t *testing.T) {
		if _, se := focus.iq(j.JID(), "set", `<jibri xmlns="`+nsJibri+`" action="pause"/>`); se == nil || se.Condition != "bad-request" {
			t.Errorf("unknown action: %v", se)
		}
	})

	t.Run("Leave", func(t *testing.T) {
		m := focus.mark()
		j.Leave()
		focus.wait(m, "unavailable presence", func(e *Elem) bool {
			return e.Local == "presence" && e.Attr("from") == j.JID() && e.Attr("type") == "unavailable"
		})
		if j.Joined() {
			t.Error("Joined after Leave")
		}
		m = focus.mark()
		if err := j.Rejoin(); err != nil {
			t.Fatal(err)
		}
		focus.wait(m, "presence after rejoin", fjPresence(j, "idle", "healthy"))
	})
}
