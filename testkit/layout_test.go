package testkit

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestLayout checks the parts of the Jitsi-like layout that minifocus relies
// on: BOSH/WebSocket over HTTP, the XEP-0114 component, and MUC room
// creation restricted to admins with real JIDs visible.
func TestLayout(t *testing.T) {
	t.Parallel()
	p := StartProsody(t)
	t.Run("http", func(t *testing.T) {
		for _, path := range []string{"/http-bind", "/xmpp-websocket"} {
			resp, err := http.Get("http://" + p.HTTPAddr() + path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			// Prosody answers a plain GET with an explanatory page (200); a
			// 404 would mean the module is not loaded on meet.test.
			if resp.StatusCode != http.StatusOK {
				t.Errorf("GET %s: %s\n%s", path, resp.Status, body)
			}
		}
	})
	t.Run("component", func(t *testing.T) {
		if err := componentHandshake(p.ComponentAddr(), ComponentDomain, p.ComponentSecret); err != nil {
			t.Fatal(err)
		}
		if err := componentHandshake(p.ComponentAddr(), ComponentDomain, "wrong"); err == nil {
			t.Fatal("component handshake with a wrong secret succeeded")
		}
	})
	t.Run("muc", func(t *testing.T) { testMUC(t, p) })
}

func componentHandshake(addr, domain, secret string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='%s'>", domain)
	d := xml.NewDecoder(c)
	var id string
	for id == "" {
		tok, err := d.Token()
		if err != nil {
			return err
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "stream" {
			for _, a := range se.Attr {
				if a.Name.Local == "id" {
					id = a.Value
				}
			}
			if id == "" {
				return errors.New("no stream id")
			}
		}
	}
	sum := sha1.Sum([]byte(id + secret))
	fmt.Fprintf(c, "<handshake>%s</handshake>", hex.EncodeToString(sum[:]))
	for {
		tok, err := d.Token()
		if err != nil {
			return err
		}
		if se, ok := tok.(xml.StartElement); ok {
			if se.Name.Local == "handshake" {
				return nil
			}
			return fmt.Errorf("handshake answered with <%s>", se.Name.Local)
		}
	}
}

func mucJoin(room, nick string) *Elem {
	return NewElem("", "presence", "to", room+"/"+nick).Add(NewElem("http://jabber.org/protocol/muc", "x"))
}

func testMUC(t *testing.T, p *Prosody) {
	const nsUser = "http://jabber.org/protocol/muc#user"
	room := "room1@" + MUCDomain

	// A participant may not create a room...
	anonIn := newInbox()
	anon := dialT(t, p, DialConfig{Handler: anonIn.handle})
	if err := anon.Send(mucJoin(room, "early")); err != nil {
		t.Fatal(err)
	}
	st := anonIn.wait(t, "the refused join", func(e *Elem) bool { return e.Local == "presence" })
	if se := StanzaErrorOf(st); se == nil || se.Condition != "not-allowed" {
		t.Fatalf("anonymous room creation: got %s, want a not-allowed error", st)
	}

	// ...the focus (an admin) may, and is told it created it (status 201).
	focusIn := newInbox()
	focus := dialT(t, p, DialConfig{Domain: AuthDomain, User: FocusUser, Password: FocusPassword, Resource: "focus"})
	// Handle is set after Dial so that the closure can use focus; it answers
	// IQ sets from the read goroutine (Send only queues, so it does not block
	// while the queue has room).
	focus.Handle(func(e *Elem) {
		focusIn.handle(e)
		if e.Local == "iq" && e.Attr("type") == "set" {
			focus.Send(NewElem("", "iq", "type", "result", "id", e.Attr("id"), "to", e.Attr("from")))
		}
	})
	if err := focus.Send(mucJoin(room, "focus")); err != nil {
		t.Fatal(err)
	}
	self := focusIn.wait(t, "focus self-presence", func(e *Elem) bool {
		return e.Local == "presence" && e.Attr("from") == room+"/focus"
	})
	codes := map[string]bool{}
	for _, s := range self.Child(nsUser, "x").All(nsUser, "status") {
		codes[s.Attr("code")] = true
	}
	if !codes["110"] || !codes["201"] {
		t.Errorf("focus self-presence lacks status 110/201: %s", self)
	}
	if aff := self.Child(nsUser, "x").Child(nsUser, "item").Attr("affiliation"); aff != "owner" {
		t.Errorf("focus affiliation %q, want owner", aff)
	}

	// Now the participant can join and sees the focus's real JID.
	if err := anon.Send(mucJoin(room, "alice")); err != nil {
		t.Fatal(err)
	}
	fp := anonIn.wait(t, "the focus's presence in the room", func(e *Elem) bool {
		return e.Local == "presence" && e.Attr("from") == room+"/focus"
	})
	if jid := fp.Child(nsUser, "x").Child(nsUser, "item").Attr("jid"); jid != focus.JID() {
		t.Errorf("real JID of focus = %q, want %q (muc_room_default_public_jids)", jid, focus.JID())
	}

	// An IQ from the participant to the focus's full JID is routed (this is
	// how clients reach the focus without client_proxy).
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := anon.SendIQ(ctx, NewElem("", "iq", "type", "set", "to", focus.JID()).Add(NewElem("http://jitsi.org/protocol/focus", "conference", "room", room))); err != nil {
		t.Fatalf("iq to the focus: %v", err)
	}
	if !strings.HasSuffix(focus.JID(), "/focus") {
		t.Errorf("focus JID %q", focus.JID())
	}
}

// TestBindFailureDetected: a port taken by someone else makes Prosody log
// "Failed to open server port" and carry on; start must notice and report
// errBind so that LaunchProsody can retry with other ports.
func TestBindFailureDetected(t *testing.T) {
	t.Parallel()
	p := StartProsody(t)
	if err := p.stopProcess(); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	pt := p.ports
	pt.http = l.Addr().(*net.TCPAddr).Port
	if err := p.writeConfig(pt); err != nil {
		t.Fatal(err)
	}
	if err := p.start(); !errors.Is(err, errBind) {
		t.Fatalf("start with a taken http port: %v, want errBind", err)
	}
}
