package main

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"minifocus/testkit"
)

// fakeJigasi joins the Jigasi brewery with SIP stats and answers dial
// requests with a Rayo <ref/> (or an error when told to).
type fakeJigasi struct {
	c    *testkit.Client
	mu   sync.Mutex
	got  []*testkit.Elem
	fail bool
}

func startFakeJigasi(t *testing.T, s *stack, nick string, fail bool) *fakeJigasi {
	t.Helper()
	g := &fakeJigasi{fail: fail}
	occupant := "jigasibrewery@internal.auth.meet.test/" + nick
	// Answers to our own join presence: the self-presence, or an error while
	// the brewery does not exist yet (only the focus may create it, which it
	// does when it logs in).
	joined := make(chan string, 16)
	c, err := testkit.Dial(s.ctx, testkit.DialConfig{Addr: s.prosody.C2SAddr(), Domain: "auth.meet.test", User: "jigasi", Password: "jigasipass", Handler: func(e *testkit.Elem) {
		if e.Local == "presence" && e.Attr("from") == occupant {
			select {
			case joined <- e.Attr("type"):
			default:
			}
			return
		}
		if e.Local != "iq" || e.Attr("type") != "set" {
			return
		}
		d := e.Child("urn:xmpp:rayo:1", "dial")
		if d == nil {
			return
		}
		g.mu.Lock()
		g.got = append(g.got, e)
		g.mu.Unlock()
		resp := testkit.NewElem("jabber:client", "iq", "type", "result", "to", e.Attr("from"), "id", e.Attr("id")).Add(
			testkit.NewElem("urn:xmpp:rayo:1", "ref", "uri", "xmpp:"+nick+"@sip/call"))
		if fail {
			resp = testkit.NewElem("jabber:client", "iq", "type", "error", "to", e.Attr("from"), "id", e.Attr("id")).Add(
				testkit.NewElem("jabber:client", "error", "type", "cancel").Add(testkit.NewElem("urn:ietf:params:xml:ns:xmpp-stanzas", "internal-server-error")))
		}
		_ = g.c.Send(resp)
	}})
	if err != nil {
		t.Fatal(err)
	}
	g.c = c
	t.Cleanup(func() { c.Close() })
	stats := testkit.NewElem("http://jitsi.org/protocol/colibri", "stats").Add(
		testkit.NewElem("", "stat", "name", "supports_sip", "value", "true"),
		testkit.NewElem("", "stat", "name", "participants", "value", "0"))
	deadline := time.After(10 * time.Second)
	for {
		p := testkit.NewElem("jabber:client", "presence", "to", occupant).Add(
			testkit.NewElem("http://jabber.org/protocol/muc", "x"), stats)
		if err := c.Send(p); err != nil {
			t.Fatal(err)
		}
		select {
		case typ := <-joined:
			if typ != "error" {
				return g
			}
		case <-deadline:
			t.Fatalf("fake Jigasi %s could not join the brewery", nick)
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			t.Fatalf("fake Jigasi %s could not join the brewery", nick)
		}
	}
}

func (g *fakeJigasi) dials() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.got)
}

// A moderator's dial-out reaches a Jigasi (another one after a failure) and
// its answer comes back; others are refused.
func TestJigasiDialOut(t *testing.T) {
	s := startStack(t, 1, func(c *Config, p *testkit.Prosody) {
		c.Jigasi.Brewery = "jigasibrewery@internal.auth.meet.test"
		if err := p.Register("jigasi", "auth.meet.test", "jigasipass"); err != nil {
			t.Fatal(err)
		}
	})
	bad := startFakeJigasi(t, s, "jigasi-a", true)
	good := startFakeJigasi(t, s, "jigasi-b", false)
	room := "sip@conference.meet.test"
	p1 := s.join(room)
	p2 := s.join(room)
	s.wait("moderator", func() bool { return p1.Affiliation() == "owner" && p2.Accepted() })
	props := map[string]string{}
	for _, pr := range p1.ConferenceResponse().Child(nsFocus, "conference").All(nsFocus, "property") {
		props[pr.Attr("name")] = pr.Attr("value")
	}
	if props["sipGatewayEnabled"] != "true" {
		t.Errorf("conference response properties %v, want sipGatewayEnabled", props)
	}
	ctx, cancel := context.WithTimeout(s.ctx, 20*time.Second)
	defer cancel()
	dial := func(p *testkit.Participant, room string) (*testkit.Elem, error) {
		return p.Client().SendIQ(ctx, testkit.NewElem("jabber:client", "iq", "type", "set", "to", "sip@conference.meet.test/focus").Add(
			testkit.NewElem("urn:xmpp:rayo:1", "dial", "to", "sip:+1234@example.com", "from", "fromnumber").Add(
				testkit.NewElem("urn:xmpp:rayo:1", "header", "name", "JvbRoomName", "value", room))))
	}
	if r, err := dial(p2, room); err == nil || !strings.Contains(r.String(), "forbidden") {
		t.Errorf("non-moderator dial: %v %v", r, err)
	}
	if r, err := dial(p1, "other@conference.meet.test"); err == nil || !strings.Contains(r.String(), "forbidden") {
		t.Errorf("dial naming another room: %v %v", r, err)
	}
	s.wait("both Jigasis known", func() bool {
		return jigasiOf(s.focus.Focus).jigasis.Select(false, nil, map[string]bool{}) != "" &&
			jigasiOf(s.focus.Focus).jigasis.Select(false, nil, map[string]bool{"jigasibrewery@internal.auth.meet.test/jigasi-a": true}) != ""
	})
	r, err := dial(p1, room)
	if err != nil || r.Child("urn:xmpp:rayo:1", "ref") == nil || !strings.Contains(r.String(), "jigasi-b@sip/call") {
		t.Fatalf("dial: %v %v, want the good Jigasi's ref", r, err)
	}
	if bad.dials() != 1 || good.dials() != 1 {
		t.Errorf("dials: failing Jigasi %d, good one %d; want 1 and 1 (a retry after the failure)", bad.dials(), good.dials())
	}
}

// The Jigasi registry uses the shared brewery member (testBreweryRegistry).
func TestBreweryMemberJigasi(t *testing.T) {
	const room = "jigasibrewery@internal.meet.test"
	testBreweryRegistry(t, room, func(x *XMPPClient, log *slog.Logger) breweryRegistry {
		g := NewJigasis(room, "focus", x, log)
		return breweryRegistry{g.member, g.HandlePresence, g.Leave,
			NewElement(nsClient, "presence", "from", room+"/jigasi1").Add(NewElement(nsColibri, "stats").Add(
				NewElement(nsColibri, "stat", "name", "supports_sip", "value", "true"))),
			func() bool { g.mu.Lock(); defer g.mu.Unlock(); return len(g.instances) > 0 }}
	})
}
