package main

import (
	"log/slog"
	"strings"
	"testing"
	"time"
)

// breweryRegistry is a Jibri or Jigasi registry as the brewery test drives it.
type breweryRegistry struct {
	member   *breweryMember
	handle   func(*Element) bool
	leave    func()
	occupant *Element    // a service that announces itself
	known    func() bool // the registry holds a service
}

// testBreweryRegistry: a registry that uses the bridges' brewery member
// joins on login, re-joins after being removed (forgetting the occupants
// seen so far), and leaves at shutdown without re-joining. No Prosody: the
// XMPP client never connects; its session callbacks are called by hand and
// the member sends to a fake. The Jibri and Jigasi tests call it.
func testBreweryRegistry(t *testing.T, room string, build func(x *XMPPClient, log *slog.Logger) breweryRegistry) {
	logs := &bridgeLogBuf{}
	x := NewXMPPClient(XMPPOptions{})
	r := build(x, slog.New(slog.NewTextHandler(logs, nil)))
	fake := &fakeBridgeXMPP{}
	r.member.conn = func() breweryConn { return fake }
	r.member.rejoinWait = time.Millisecond
	session := func(up bool) {
		for _, f := range x.onSession {
			f(up)
		}
	}
	sent := func() []*Element {
		fake.mu.Lock()
		defer fake.mu.Unlock()
		return append([]*Element(nil), fake.sent...)
	}
	waitSent := func(n int) []*Element {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for len(sent()) < n {
			if time.Now().After(deadline) {
				t.Fatalf("sent %d stanzas, want %d: %v", len(sent()), n, sent())
			}
			time.Sleep(time.Millisecond)
		}
		return sent()
	}
	isJoin := func(p *Element) bool {
		return p.Local == "presence" && p.Attr("to") == room+"/focus" && p.Attr("type") == "" && p.Child(nsMUC, "x") != nil
	}
	self := func(typ string) *Element {
		p := NewElement(nsClient, "presence", "from", room+"/focus").Add(
			NewElement(nsMUCUser, "x").Add(NewElement(nsMUCUser, "status", "code", "110")))
		if typ != "" {
			p.Set("type", typ)
		}
		return p
	}

	session(true)
	session(true) // a second login callback: no second join
	if s := sent(); len(s) != 1 || !isJoin(s[0]) {
		t.Fatalf("after login sent %v, want one join presence", s)
	}
	if !r.handle(self("")) || !r.handle(r.occupant) || !r.known() {
		t.Fatal("own presence or the service's presence not taken, or the service not registered")
	}
	// Removed from the room: the services seen are forgotten and
	// the focus joins again.
	if !r.handle(self("unavailable")) {
		t.Fatal("own unavailable presence not taken")
	}
	if r.known() {
		t.Fatal("a service survived the focus's removal from the brewery")
	}
	if s := waitSent(2); len(s) != 2 || !isJoin(s[1]) {
		t.Fatalf("after removal sent %v, want a re-join", s)
	}
	if !strings.Contains(logs.String(), "removed from the") {
		t.Fatal("removal not logged")
	}
	// A refused join is retried too.
	r.handle(NewElement(nsClient, "presence", "from", room+"/focus", "type", "error").Add(Errorf("conflict", "").Element()))
	if s := waitSent(3); len(s) != 3 || !isJoin(s[2]) {
		t.Fatalf("after a refused join sent %v, want a re-join", s)
	}
	r.handle(self(""))
	r.handle(r.occupant)
	// Shutdown: an unavailable presence, and its echo is not a removal.
	r.leave()
	s := sent()
	if len(s) != 4 || s[3].Local != "presence" || s[3].Attr("type") != "unavailable" || s[3].Attr("to") != room+"/focus" {
		t.Fatalf("after Leave sent %v, want one unavailable presence", s)
	}
	r.handle(self("unavailable"))
	r.member.mu.Lock()
	timer := r.member.timer
	r.member.mu.Unlock()
	if timer != nil {
		t.Fatal("a re-join was scheduled after Leave")
	}
	// A lost session forgets the services; the next login joins again.
	session(false)
	if r.known() {
		t.Fatal("a service survived the session loss")
	}
	session(true)
	if s := sent(); len(s) != 5 || !isJoin(s[4]) {
		t.Fatalf("after a new login sent %v, want a join", s)
	}
}
