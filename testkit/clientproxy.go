package testkit

import (
	"context"
	"encoding/xml"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
)

const nsComponent = "jabber:component:accept"

// ClientProxy is a test double of Jitsi's mod_client_proxy Prosody module
// (jitsi-meet resources/prosody-plugins), the component every Jitsi install
// serves at focus.<domain> and where lib-jitsi-meet sends its conference
// request by default. Debian's Prosody does not ship it, so it runs here as
// a XEP-0114 component of the test Prosody, doing what the module does:
//
//   - It learns the focus's sessions from presence: it subscribes to the
//     target account when it starts (the installers also put the subscription
//     in the focus's roster: WithClientProxyRoster), remembers each resource
//     that sends available presence, forgets one that sends unavailable, and
//     forgets all of them on an error presence.
//   - An IQ get or set from anyone else goes to one of those sessions, chosen
//     at random, from "<proxy domain>/<the sender's full JID>"; with no
//     session it is answered service-unavailable. Results and errors sent to
//     the target through the proxy are dropped.
//   - A result or error from the target to "<proxy domain>/<JID>" goes back
//     to that JID from the proxy's domain (dropped when the JID is invalid).
//     A get or set from the target through the proxy is refused with
//     feature-not-implemented: the proxy forwards requests inward only.
//   - Only IQs are proxied: a message either way is refused with
//     feature-not-implemented, presence from others with bad-request, and a
//     non-presence stanza from the target to the proxy itself with
//     bad-request.
type ClientProxy struct {
	Domain string // the component's domain (ComponentDomain)
	Target string // the bare JID requests are forwarded to (the focus account)

	conn net.Conn
	wmu  sync.Mutex

	mu        sync.Mutex
	sessions  []string // the target's resources, in the order they came online
	forwarded []*Elem  // every stanza the proxy sent on, as sent
	changed   chan struct{}
	done      chan struct{}
}

// StartClientProxy connects the double to p as ComponentDomain, forwarding
// to the focus account. It stops when ctx ends or Close is called.
func StartClientProxy(ctx context.Context, p *Prosody) (*ClientProxy, error) {
	cp := &ClientProxy{Domain: ComponentDomain, Target: FocusUser + "@" + AuthDomain, changed: make(chan struct{}), done: make(chan struct{})}
	c, d, err := p.DialComponent(cp.Domain)
	if err != nil {
		return nil, fmt.Errorf("testkit: client proxy: %w", err)
	}
	cp.conn = c
	// As the module does when it loads: ask for the target's presence.
	cp.send(NewElem(nsComponent, "presence", "type", "subscribe", "to", cp.Target, "from", cp.Domain))
	go func() {
		select {
		case <-ctx.Done():
			c.Close()
		case <-cp.done:
		}
	}()
	go cp.readLoop(d)
	return cp, nil
}

// Close disconnects the component.
func (cp *ClientProxy) Close() { cp.conn.Close() }

// Sessions returns the target resources the proxy knows of.
func (cp *ClientProxy) Sessions() []string {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return append([]string(nil), cp.sessions...)
}

// Forwarded returns every stanza the proxy passed on (rewritten), in order.
func (cp *ClientProxy) Forwarded() []*Elem {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return append([]*Elem(nil), cp.forwarded...)
}

// WaitSessions waits until the proxy knows of n target sessions.
func (cp *ClientProxy) WaitSessions(ctx context.Context, n int) error {
	for {
		cp.mu.Lock()
		got, ch := len(cp.sessions), cp.changed
		cp.mu.Unlock()
		if got == n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("testkit: client proxy knows %d sessions of %s, want %d: %w", got, cp.Target, n, ctx.Err())
		}
	}
}

func (cp *ClientProxy) readLoop(d *xml.Decoder) {
	defer close(cp.done)
	for {
		el, err := readElem(d)
		if err != nil {
			return
		}
		cp.handle(el)
	}
}

func (cp *ClientProxy) send(el *Elem) {
	cp.wmu.Lock()
	defer cp.wmu.Unlock()
	_, _ = cp.conn.Write([]byte(el.String()))
}

func (cp *ClientProxy) forward(el *Elem) {
	cp.mu.Lock()
	cp.forwarded = append(cp.forwarded, el)
	cp.mu.Unlock()
	cp.send(el)
}

// refuse answers st with an error of condition cond (type cancel).
func (cp *ClientProxy) refuse(st *Elem, cond string) {
	e := NewElem(nsComponent, st.Local, "type", "error", "from", st.Attr("to"), "to", st.Attr("from"))
	if id := st.Attr("id"); id != "" {
		e.Set("id", id)
	}
	cp.send(e.Add(NewElem("", "error", "type", "cancel").Add(NewElem(nsStanza, cond))))
}

// splitJID returns the bare part and the resource (everything after the
// first '/', which may itself contain '/').
func splitJID(j string) (bare, resource string) {
	bare, resource, _ = strings.Cut(j, "/")
	return bare, resource
}

func (cp *ClientProxy) handle(st *Elem) {
	bareFrom, fromRes := splitJID(st.Attr("from"))
	_, toRes := splitJID(st.Attr("to"))
	typ := st.Attr("type")
	if !strings.EqualFold(bareFrom, cp.Target) {
		cp.toTarget(st, typ)
		return
	}
	if toRes == "" { // from the target to the proxy itself
		if st.Local != "presence" {
			cp.refuse(st, "bad-request")
			return
		}
		cp.targetPresence(typ, fromRes)
		return
	}
	switch {
	case st.Local == "iq" && (typ == "result" || typ == "error"):
		if !validJID(toRes) {
			return // the module drops what it cannot address
		}
		out := *st
		out.Attrs = nil
		for _, a := range st.Attrs {
			if a.Name.Local != "from" && a.Name.Local != "to" {
				out.Attrs = append(out.Attrs, a)
			}
		}
		out.Set("from", cp.Domain).Set("to", toRes)
		cp.forward(&out)
	case st.Local == "iq", st.Local == "message":
		cp.refuse(st, "feature-not-implemented")
	}
}

func (cp *ClientProxy) targetPresence(typ, resource string) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	switch typ {
	case "error":
		cp.sessions = nil
	case "unavailable":
		for i, s := range cp.sessions {
			if s == resource {
				cp.sessions = append(cp.sessions[:i], cp.sessions[i+1:]...)
				break
			}
		}
	case "":
		for _, s := range cp.sessions {
			if s == resource {
				return
			}
		}
		cp.sessions = append(cp.sessions, resource)
	default:
		return // subscription handshakes and probes change nothing
	}
	close(cp.changed)
	cp.changed = make(chan struct{})
}

func (cp *ClientProxy) toTarget(st *Elem, typ string) {
	switch st.Local {
	case "presence":
		if typ != "error" {
			cp.refuse(st, "bad-request")
		}
	case "message":
		cp.refuse(st, "feature-not-implemented")
	case "iq":
		if typ != "get" && typ != "set" {
			return // results and errors to the target are not forwarded
		}
		cp.mu.Lock()
		var session string
		if n := len(cp.sessions); n > 0 {
			session = cp.sessions[rand.IntN(n)]
		}
		cp.mu.Unlock()
		if session == "" {
			cp.refuse(st, "service-unavailable")
			return
		}
		out := *st
		out.Attrs = nil
		for _, a := range st.Attrs {
			if a.Name.Local != "from" && a.Name.Local != "to" {
				out.Attrs = append(out.Attrs, a)
			}
		}
		out.Set("from", cp.Domain+"/"+st.Attr("from")).Set("to", cp.Target+"/"+session)
		cp.forward(&out)
	}
}

// validJID is a rough check that s can be an address (local@domain/res or
// domain): the module drops replies it cannot address.
func validJID(s string) bool {
	bare, _ := splitJID(s)
	if bare == "" || strings.Count(bare, "@") > 1 || strings.HasSuffix(bare, "@") || strings.HasPrefix(bare, "@") {
		return false
	}
	return !strings.ContainsAny(bare, " <>'\"&")
}
