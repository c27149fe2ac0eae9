package testkit

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// The client_proxy double behaves as Jitsi's mod_client_proxy: it learns
// the focus's session from presence (through the roster subscription the
// installers create), forwards IQ requests with the sender in the resource,
// returns the answer to the sender, forgets the session when the focus goes
// offline, and proxies nothing but IQs.
func TestClientProxyDouble(t *testing.T) {
	p := StartProsody(t, WithClientProxyRoster())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cp, err := StartClientProxy(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()

	got := make(chan *Elem, 4)
	focus := dialT(t, p, DialConfig{Domain: AuthDomain, User: FocusUser, Password: FocusPassword, Resource: "focus", Handler: func(st *Elem) {
		if st.Local == "iq" && st.Attr("type") == "set" {
			got <- st
		}
	}})
	user := dialT(t, p, DialConfig{})

	// No session yet: the proxy answers for the absent focus.
	ask := func() (*Elem, error) {
		return user.SendIQ(ctx, NewElem("", "iq", "type", "set", "to", ComponentDomain).Add(NewElem("http://jitsi.org/protocol/focus", "conference", "room", "r@"+MUCDomain)))
	}
	var se *StanzaError
	if _, err := ask(); !errors.As(err, &se) || se.Condition != "service-unavailable" {
		t.Fatalf("request with the focus offline: %v, want service-unavailable", err)
	}

	if err := focus.Send(NewElem("", "presence")); err != nil {
		t.Fatal(err)
	}
	if err := cp.WaitSessions(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if s := cp.Sessions(); s[0] != "focus" {
		t.Fatalf("sessions %v, want [focus]", s)
	}
	answered := make(chan error, 1)
	go func() {
		r, err := ask()
		if err == nil && r.Attr("from") != ComponentDomain {
			err = errors.New("the answer came from " + r.Attr("from"))
		}
		answered <- err
	}()
	var req *Elem
	select {
	case req = <-got:
	case <-ctx.Done():
		t.Fatal("the focus got no proxied request")
	}
	if req.Attr("from") != ComponentDomain+"/"+user.JID() || req.Attr("to") != FocusUser+"@"+AuthDomain+"/focus" {
		t.Errorf("proxied request from=%q to=%q, want from %s/%s", req.Attr("from"), req.Attr("to"), ComponentDomain, user.JID())
	}
	if err := focus.Send(NewElem("", "iq", "type", "result", "id", req.Attr("id"), "to", req.Attr("from"))); err != nil {
		t.Fatal(err)
	}
	if err := <-answered; err != nil {
		t.Fatalf("the user's answer: %v", err)
	}

	// A request from the focus through the proxy, and messages, are refused.
	if _, err := focus.SendIQ(ctx, NewElem("", "iq", "type", "get", "to", ComponentDomain+"/"+user.JID()).Add(NewElem("urn:xmpp:ping", "ping"))); !errors.As(err, &se) || se.Condition != "feature-not-implemented" {
		t.Errorf("a get from the focus through the proxy: %v, want feature-not-implemented", err)
	}
	msgErr := make(chan *Elem, 1)
	user.Handle(func(st *Elem) {
		if st.Local == "message" && st.Attr("type") == "error" {
			msgErr <- st
		}
	})
	if err := user.Send(NewElem("", "message", "to", ComponentDomain, "id", "m1").Add(NewElem("", "body").SetText("hi"))); err != nil {
		t.Fatal(err)
	}
	select {
	case st := <-msgErr:
		if c := StanzaErrorOf(st); c.Condition != "feature-not-implemented" {
			t.Errorf("message through the proxy: %v", c)
		}
	case <-ctx.Done():
		t.Error("a message to the proxy was not refused")
	}

	// The focus goes offline: the proxy forgets its session.
	if err := focus.Send(NewElem("", "presence", "type", "unavailable")); err != nil {
		t.Fatal(err)
	}
	if err := cp.WaitSessions(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := ask(); !errors.As(err, &se) || se.Condition != "service-unavailable" {
		t.Errorf("request after the focus left: %v, want service-unavailable", err)
	}
	if f := cp.Forwarded(); len(f) != 2 {
		t.Errorf("forwarded %d stanzas, want the request and its answer", len(f))
	}
}

// The token double logs in on the main domain only with a valid token, as
// Jitsi's token authentication does; guests log in on the guest host.
func TestTokenAuthDouble(t *testing.T) {
	p := StartProsody(t, WithTokenAuth())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	claims := func(exp time.Duration) map[string]any {
		return map[string]any{"aud": "jitsi", "room": "*", "exp": time.Now().Add(exp).Unix()}
	}
	for name, token := range map[string]string{
		"no token":         "",
		"wrong secret":     SignToken("not-the-secret", claims(time.Hour)),
		"expired":          SignToken(TokenSecret, claims(-time.Hour)),
		"wrong issuer":     SignToken(TokenSecret, map[string]any{"iss": "someone-else", "exp": time.Now().Add(time.Hour).Unix()}),
		"not a token":      "password",
		"tampered payload": SignToken(TokenSecret, claims(time.Hour)) + "x",
	} {
		c, err := Dial(ctx, DialConfig{Addr: p.C2SAddr(), Domain: Domain, User: "alice", Password: token})
		if err == nil {
			c.Close()
			t.Errorf("%s: logged in on %s", name, Domain)
		}
	}
	c, err := Dial(ctx, DialConfig{Addr: p.C2SAddr(), Domain: Domain, User: "alice", Password: SignToken(TokenSecret, claims(time.Hour))})
	if err != nil {
		t.Fatalf("a valid token: %v", err)
	}
	defer c.Close()
	if !strings.HasPrefix(c.JID(), "alice@"+Domain+"/") {
		t.Errorf("logged in as %s", c.JID())
	}
	g, err := Dial(ctx, DialConfig{Addr: p.C2SAddr(), Domain: GuestDomain})
	if err != nil {
		t.Fatalf("a guest: %v", err)
	}
	g.Close()
	if _, err := Dial(ctx, DialConfig{Addr: p.C2SAddr(), Domain: Domain}); err == nil {
		t.Error("an anonymous login on the token domain succeeded")
	}
}
