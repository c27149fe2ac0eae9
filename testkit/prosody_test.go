package testkit

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

func dialT(t *testing.T, p *Prosody, cfg DialConfig) *Client {
	t.Helper()
	cfg.Addr = p.C2SAddr()
	if cfg.Domain == "" {
		cfg.Domain = p.Domain
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("dial %+v: %v", cfg, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// inbox records stanzas from a Client handler without blocking the read loop.
type inbox struct {
	mu   sync.Mutex
	got  []*Elem
	wake chan struct{}
}

func newInbox() *inbox { return &inbox{wake: make(chan struct{}, 1)} }

func (b *inbox) handle(e *Elem) {
	b.mu.Lock()
	b.got = append(b.got, e)
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// wait returns the first recorded stanza matching ok, waiting up to 5 s.
func (b *inbox) wait(t *testing.T, what string, ok func(*Elem) bool) *Elem {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		b.mu.Lock()
		for _, e := range b.got {
			if ok(e) {
				b.mu.Unlock()
				return e
			}
		}
		b.mu.Unlock()
		select {
		case <-b.wake:
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestProsodies runs two Prosodies side by side, as parallel packages do.
func TestProsodies(t *testing.T) {
	for _, name := range []string{"first", "second"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := StartProsody(t)
			t.Logf("prosody %d: c2s %s http %s component %s dir %s", p.PID(), p.C2SAddr(), p.HTTPAddr(), p.ComponentAddr(), p.Dir)
			if p.PID() == 0 {
				t.Fatal("no PID")
			}
			t.Run("focus", func(t *testing.T) { testFocusLogin(t, p) })
			t.Run("anonymous", func(t *testing.T) { testAnonymous(t, p) })
			t.Run("wrong password", func(t *testing.T) { testWrongPassword(t, p) })
			t.Run("message", func(t *testing.T) { testMessage(t, p) })
			t.Run("disco", func(t *testing.T) { testDisco(t, p) })
			t.Run("iq error", func(t *testing.T) { testIQError(t, p) })
			t.Run("malformed", func(t *testing.T) { testMalformed(t, p) })
		})
	}
}

func testFocusLogin(t *testing.T, p *Prosody) {
	c := dialT(t, p, DialConfig{Domain: AuthDomain, User: FocusUser, Password: FocusPassword, Resource: "focus"})
	if got, want := c.JID(), "focus@auth.meet.test/focus"; got != want {
		t.Errorf("JID = %q, want %q", got, want)
	}
	j := dialT(t, p, DialConfig{Domain: AuthDomain, User: JVBUser, Password: JVBPassword})
	if !strings.HasPrefix(j.JID(), "jvb@auth.meet.test/") || len(j.JID()) <= len("jvb@auth.meet.test/") {
		t.Errorf("jvb JID = %q, want a server-assigned resource", j.JID())
	}
}

func testAnonymous(t *testing.T, p *Prosody) {
	c := dialT(t, p, DialConfig{Resource: "browser"})
	local, rest, ok := strings.Cut(c.JID(), "@")
	if !ok || local == "" || rest != "meet.test/browser" {
		t.Errorf("anonymous JID = %q, want <random>@meet.test/browser", c.JID())
	}
}

func testWrongPassword(t *testing.T, p *Prosody) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, DialConfig{Addr: p.C2SAddr(), Domain: AuthDomain, User: FocusUser, Password: "wrong"})
	if err == nil {
		c.Close()
		t.Fatal("login with a wrong password succeeded")
	}
	if !strings.Contains(err.Error(), "not-authorized") {
		t.Errorf("error %q does not mention not-authorized", err)
	}
	var ae *AuthError
	if !errors.As(err, &ae) || ae.Condition != "not-authorized" {
		t.Errorf("error %#v is not an AuthError with condition not-authorized", err)
	}
}

func testMessage(t *testing.T, p *Prosody) {
	in := newInbox()
	b := dialT(t, p, DialConfig{Resource: "b", Handler: in.handle})
	a := dialT(t, p, DialConfig{Domain: AuthDomain, User: FocusUser, Password: FocusPassword, Resource: "msg"})
	body := `hello <b> & "quotes" 'too' ünïcode`
	msg := NewElem("", "message", "to", b.JID(), "type", "chat", "id", "m1").
		Add(NewElem("", "body").SetText(body)).
		Add(NewElem("urn:example:x", "payload", "k", "v&<>'\"").Add(NewElem("", "inner", "xml:lang", "de")))
	if err := a.Send(msg); err != nil {
		t.Fatal(err)
	}
	got := in.wait(t, "the message", func(e *Elem) bool { return e.Local == "message" && e.Attr("id") == "m1" })
	if got.Space != "jabber:client" {
		t.Errorf("message namespace %q", got.Space)
	}
	if got.Attr("from") != a.JID() {
		t.Errorf("from = %q, want %q", got.Attr("from"), a.JID())
	}
	if got.Child("", "body").Text != body {
		t.Errorf("body = %q, want %q", got.Child("", "body").Text, body)
	}
	pl := got.Child("urn:example:x", "payload")
	if pl == nil || pl.Attr("k") != "v&<>'\"" {
		t.Fatalf("payload lost or mangled: %s", got)
	}
	if in := pl.Child("urn:example:x", "inner"); in == nil || in.Attr("xml:lang") != "de" {
		t.Errorf("inner element lost its namespace or xml:lang: %s", got)
	}
}

func testDisco(t *testing.T, p *Prosody) {
	c := dialT(t, p, DialConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := c.SendIQ(ctx, NewElem("", "iq", "type", "get", "to", p.Domain).
		Add(NewElem("http://jabber.org/protocol/disco#info", "query")))
	if err != nil {
		t.Fatal(err)
	}
	q := resp.Child("http://jabber.org/protocol/disco#info", "query")
	if resp.Attr("type") != "result" || q == nil {
		t.Fatalf("unexpected disco response %s", resp)
	}
	var features []string
	for _, f := range q.All("", "feature") {
		features = append(features, f.Attr("var"))
	}
	if !strings.Contains(strings.Join(features, " "), "urn:xmpp:ping") {
		t.Errorf("server features %v lack urn:xmpp:ping", features)
	}

	// The MUC component answers too, and says it is a conference service.
	resp, err = c.SendIQ(ctx, NewElem("", "iq", "type", "get", "to", MUCDomain).
		Add(NewElem("http://jabber.org/protocol/disco#info", "query")))
	if err != nil {
		t.Fatal(err)
	}
	id := resp.Child("", "query").Child("", "identity")
	if id == nil || id.Attr("category") != "conference" {
		t.Errorf("MUC disco response %s has no conference identity", resp)
	}
}

func testIQError(t *testing.T, p *Prosody) {
	c := dialT(t, p, DialConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := c.SendIQ(ctx, NewElem("", "iq", "type", "get", "to", p.Domain).
		Add(NewElem("urn:example:nothing", "query")))
	var se *StanzaError
	if !errors.As(err, &se) || resp == nil {
		t.Fatalf("want a stanza error, got %v (%v)", err, resp)
	}
	if se.Condition != "service-unavailable" && se.Condition != "feature-not-implemented" {
		t.Errorf("condition %q", se.Condition)
	}
	if !strings.Contains(err.Error(), se.Condition) {
		t.Errorf("error %q does not name the condition", err)
	}
}

// testMalformed: a client sending broken XML loses its own stream; the
// receiving client gets odd but well-formed stanzas intact and keeps reading.
func testMalformed(t *testing.T, p *Prosody) {
	in := newInbox()
	recv := dialT(t, p, DialConfig{Resource: "victim", Handler: in.handle})
	evil := dialT(t, p, DialConfig{Resource: "evil"})

	odd := `<message to='` + recv.JID() + `' id='odd'><body><![CDATA[<not a tag>]]> &amp; &#x263A;</body>` +
		`<x xmlns='urn:example:deep'><a><b><c xmlns='urn:example:other' z='1'/></b></a></x>` +
		`<y xmlns:p='urn:example:prefixed'><p:z p:attr='v'>t</p:z></y></message>`
	if err := evil.SendRaw(odd); err != nil {
		t.Fatal(err)
	}
	got := in.wait(t, "the odd message", func(e *Elem) bool { return e.Attr("id") == "odd" })
	if b := got.Child("", "body").Text; b != "<not a tag> & ☺" {
		t.Errorf("body = %q", b)
	}
	if c := got.Child("urn:example:deep", "x").Child("", "a").Child("", "b").Child("urn:example:other", "c"); c == nil || c.Attr("z") != "1" {
		t.Errorf("nested namespaces lost: %s", got)
	}
	if z := got.Child("", "y").Child("urn:example:prefixed", "z"); z == nil || z.Text != "t" || z.Attr("attr") != "v" {
		t.Errorf("prefixed element lost: %s", got)
	}
	// Re-parsing our own serialisation gives the same tree.
	again, err := ParseElem(got.String())
	if err != nil || again.String() != got.String() {
		t.Errorf("round trip: %v\n%s\n%s", err, got, again)
	}

	if err := evil.SendRaw(`<message to='` + recv.JID() + `'><body>unclosed</message>`); err != nil {
		t.Fatal(err)
	}
	select {
	case <-evil.Done():
		if err := evil.Err(); err == nil || !strings.Contains(err.Error(), "not-well-formed") {
			t.Errorf("sender's stream ended with %v, want a not-well-formed stream error", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("server did not close the stream of the client that sent malformed XML")
	}

	select {
	case <-recv.Done():
		t.Fatalf("receiver stopped: %v", recv.Err())
	default:
	}
	other := dialT(t, p, DialConfig{})
	if err := other.Send(NewElem("", "message", "to", recv.JID(), "id", "after").Add(NewElem("", "body").SetText("still there?"))); err != nil {
		t.Fatal(err)
	}
	in.wait(t, "a message after the malformed one", func(e *Elem) bool { return e.Attr("id") == "after" })
}

func TestRestartKeepsPortsAndUsers(t *testing.T) {
	t.Parallel()
	p := StartProsody(t, WithUser("alice", AuthDomain, "alicepass"))
	c2s, http, comp, pid := p.C2SAddr(), p.HTTPAddr(), p.ComponentAddr(), p.PID()
	c := dialT(t, p, DialConfig{Domain: AuthDomain, User: "alice", Password: "alicepass"})

	if err := p.Restart(); err != nil {
		t.Fatal(err)
	}
	if p.C2SAddr() != c2s || p.HTTPAddr() != http || p.ComponentAddr() != comp {
		t.Errorf("ports changed: %s %s %s -> %s %s %s", c2s, http, comp, p.C2SAddr(), p.HTTPAddr(), p.ComponentAddr())
	}
	if p.PID() == pid {
		t.Errorf("PID unchanged (%d): was Prosody restarted?", pid)
	}
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Error("client connected before the restart did not notice the disconnect")
	}
	dialT(t, p, DialConfig{Domain: AuthDomain, User: "alice", Password: "alicepass"})
	dialT(t, p, DialConfig{Domain: AuthDomain, User: FocusUser, Password: FocusPassword, Resource: "focus"})
	dialT(t, p, DialConfig{})
}

func TestStopRemovesDirAndKeepsLog(t *testing.T) {
	t.Parallel()
	SkipIfShort(t)
	p, err := LaunchProsody("", WithSmacksHibernation(5*time.Second), WithoutModules("smacks", "version"), WithAdmin("boss@auth.meet.test"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(p.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"boss@auth.meet.test"`, `smacks_hibernation_time = 5`, `modules_disabled = { "s2s"; "offline"; "smacks"; "version" }`} {
		if !strings.Contains(string(cfg), want) {
			t.Errorf("config lacks %s:\n%s", want, cfg)
		}
	}
	if strings.Contains(string(cfg), `"smacks"; "version"`) && strings.Contains(string(cfg), `modules_enabled = { "roster"; "saslauth"; "tls"; "disco"; "ping"; "time"; "version"`) {
		t.Errorf("disabled modules still enabled:\n%s", cfg)
	}
	addr := p.C2SAddr()
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p.Dir); !os.IsNotExist(err) {
		t.Errorf("dir %s still there after Stop (%v)", p.Dir, err)
	}
	if !strings.Contains(p.Log(), "Prosody") {
		t.Errorf("log after Stop does not look like Prosody's:\n%s", p.Log())
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("something still listens on %s after Stop", addr)
	}
	if err := p.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}
