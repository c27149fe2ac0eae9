package testkit

// brewery.go: what the fake bridge and the fake Jibri share, being brewery
// members. A brewery is the MUC room where Jitsi components of one kind
// (videobridges, Jibris, ...) announce themselves to the focus: each logs in
// as a c2s client, joins the room under its nick and publishes its state in
// its presence; the focus picks a component from the occupants and sends it
// IQs through the room.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// breweryMember is one occupant of a brewery: the XMPP connection, the
// joined/left state, the presence it publishes and the reconnect loop, as
// jicoco's MucClient runs them for JVB and Jibri. It is embedded in its owner
// (FakeBridge, FakeJibri), which fills in the settings and hooks and then
// calls start; the hooks supply what differs: the presence payload, the IQ
// handler and the room configuration.
type breweryMember struct {
	// Settings, fixed before start.
	addr, domain, user, password, resource string
	brewery, nick                          string // the occupant JID is brewery/nick
	queueSize                              int    // the client's outgoing queue (0: Dial's default)
	reconnectDelay                         time.Duration
	// presenceInterval re-sends the presence periodically (0: only when
	// publish asks).
	presenceInterval time.Duration
	// name starts error messages ("testkit: <name> <nick>: ..."); logName
	// starts log lines ("<logName> <nick>: ...").
	name, logName string
	log           func(format string, args ...any) // nil: no logging

	// Hooks.
	//
	// payload builds the owner's status element (<stats>, <jibri-status>)
	// sent in every presence; it is called with mu held.
	payload func() *Elem
	// payloadOnJoin puts the payload in the join presence too (MucClient
	// adds its extensions to every presence; JVB's first carries only <x/>).
	payloadOnJoin bool
	// roomConfig lists the (var, value) fields of the room configuration
	// submitted when the join created the room; with none, an empty form
	// accepts the default configuration (an instant room).
	roomConfig [][2]string
	// handleIQ answers an IQ get or set received on c. It runs on c's read
	// goroutine and must not block.
	handleIQ func(c *Client, iq *Elem)
	// onTick, if set, runs at every presence round, joined or not.
	onTick func()

	ctx    context.Context // lives until close
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine of the member and its owner

	// mu guards the fields below and, shared with the owner, the owner's
	// state (payload reads it).
	mu          sync.Mutex
	client      *Client
	joined      bool // self-presence seen on the current connection
	left        bool // leave called (no rejoin until rejoin)
	joinWait    chan *Elem
	presenceNow chan struct{}
}

// start logs in, joins the brewery and publishes the first presence, then
// runs the reconnect and presence loops until close. ctx bounds only this
// start-up.
func (m *breweryMember) start(ctx context.Context) error {
	m.ctx, m.cancel = context.WithCancel(context.Background())
	m.presenceNow = make(chan struct{}, 1)
	c, err := m.connect(ctx)
	if err != nil {
		m.cancel()
		return err
	}
	if err := m.join(ctx, c); err != nil {
		c.Close()
		m.cancel()
		return err
	}
	m.wg.Add(2)
	go m.connectionLoop(c)
	go m.presenceLoop()
	return nil
}

func (m *breweryMember) logf(format string, args ...any) {
	if m.log != nil {
		m.log(m.logName+" %s: "+format, append([]any{m.nick}, args...)...)
	}
}

// errorf makes an error starting "testkit: <name> <nick>: ".
func (m *breweryMember) errorf(format string, args ...any) error {
	return fmt.Errorf("testkit: %s %s: "+format, append([]any{m.name, m.nick}, args...)...)
}

// jid is the occupant JID, brewery/nick.
func (m *breweryMember) jid() string { return m.brewery + "/" + m.nick }

// connect dials and installs the stanza handler.
func (m *breweryMember) connect(ctx context.Context) (*Client, error) {
	var c *Client
	ready := make(chan struct{})
	h := func(st *Elem) {
		<-ready
		m.onStanza(c, st)
	}
	c, err := Dial(ctx, DialConfig{
		Addr: m.addr, Domain: m.domain, User: m.user, Password: m.password,
		Resource: m.resource, Handler: h, QueueSize: m.queueSize,
	})
	if err != nil {
		return nil, m.errorf("%w", err)
	}
	close(ready)
	m.mu.Lock()
	m.client = c
	m.joined = false
	m.mu.Unlock()
	return c, nil
}

// join sends the MUC join presence, waits for the self-presence, configures
// the room if the join created it, and sends the presence (without the MUC
// <x/>).
func (m *breweryMember) join(ctx context.Context, c *Client) error {
	wait := make(chan *Elem, 1)
	p := NewElem("", "presence", "to", m.jid()).Add(NewElem(nsMUC, "x"))
	m.mu.Lock()
	m.joinWait = wait
	if m.payloadOnJoin {
		p.Add(m.payload())
	}
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		if m.joinWait == wait {
			m.joinWait = nil
		}
		m.mu.Unlock()
	}()
	if err := c.Send(p); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var self *Elem
	select {
	case self = <-wait:
	case <-c.Done():
		return m.errorf("connection lost while joining: %w", c.Err())
	case <-ctx.Done():
		return m.errorf("joining %s: %w", m.brewery, ctx.Err())
	}
	if se := StanzaErrorOf(self); se != nil {
		return m.errorf("joining %s: %w", m.brewery, se)
	}
	if fbHasStatus(self, "201") {
		iq := NewElem("", "iq", "type", "set", "to", m.brewery).Add(NewElem(nsMUCOwner, "query").Add(m.roomConfigForm()))
		if _, err := c.SendIQ(ctx, iq); err != nil {
			m.logf("configuring the brewery: %v", err)
		}
	}
	m.mu.Lock()
	m.joined = true
	m.mu.Unlock()
	m.logf("joined %s", m.jid())
	return m.sendPresence()
}

// roomConfigForm is the data form submitted to configure a room the join
// created.
func (m *breweryMember) roomConfigForm() *Elem {
	form := NewElem(nsDataForm, "x", "type", "submit")
	if len(m.roomConfig) == 0 {
		return form
	}
	field := func(name, value string) *Elem {
		return NewElem("", "field", "var", name).Add(NewElem("", "value").SetText(value))
	}
	form.Add(field("FORM_TYPE", "http://jabber.org/protocol/muc#roomconfig"))
	for _, f := range m.roomConfig {
		form.Add(field(f[0], f[1]))
	}
	return form
}

// connectionLoop waits for the connection to end and reconnects (and
// re-joins, unless leave was called) until close.
func (m *breweryMember) connectionLoop(c *Client) {
	defer m.wg.Done()
	for {
		select {
		case <-m.ctx.Done():
			c.Close()
			return
		case <-c.Done():
		}
		m.logf("connection lost: %v", c.Err())
		m.mu.Lock()
		if m.client == c {
			m.client = nil
			m.joined = false
		}
		m.mu.Unlock()
		for {
			select {
			case <-m.ctx.Done():
				return
			case <-time.After(m.reconnectDelay):
			}
			nc, err := m.connect(m.ctx)
			if err != nil {
				m.logf("reconnect: %v", err)
				continue
			}
			c = nc
			m.mu.Lock()
			left := m.left
			m.mu.Unlock()
			if !left {
				if err := m.join(m.ctx, c); err != nil {
					m.logf("re-join: %v", err)
					c.Close()
				}
			}
			break
		}
	}
}

// presenceLoop sends the presence every presenceInterval (if set) and when
// publish asks, while in the brewery.
func (m *breweryMember) presenceLoop() {
	defer m.wg.Done()
	var tick <-chan time.Time
	if m.presenceInterval > 0 {
		t := time.NewTicker(m.presenceInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-tick:
		case <-m.presenceNow:
		}
		if m.onTick != nil {
			m.onTick()
		}
		m.mu.Lock()
		send := m.joined && !m.left && m.client != nil
		m.mu.Unlock()
		if send {
			if err := m.sendPresence(); err != nil {
				m.logf("presence: %v", err)
			}
		}
	}
}

// publish has the presence sent at once rather than at the next tick.
func (m *breweryMember) publish() {
	select {
	case m.presenceNow <- struct{}{}:
	default:
	}
}

// sendPresence sends the presence with the payload (without the MUC <x/>).
func (m *breweryMember) sendPresence() error {
	m.mu.Lock()
	c := m.client
	p := NewElem("", "presence", "to", m.jid()).Add(m.payload())
	m.mu.Unlock()
	if c == nil {
		return ErrClosed
	}
	return c.Send(p)
}

// onStanza runs on the client's read goroutine: it must not block.
func (m *breweryMember) onStanza(c *Client, st *Elem) {
	switch st.Local {
	case "presence":
		m.onPresence(c, st)
	case "iq":
		if t := st.Attr("type"); t == "get" || t == "set" {
			m.handleIQ(c, st)
		}
	}
}

func (m *breweryMember) onPresence(c *Client, st *Elem) {
	if !strings.EqualFold(st.Attr("from"), m.jid()) {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.client != c {
		return
	}
	if m.joinWait != nil && (st.Attr("type") == "error" || fbHasStatus(st, "110")) {
		select {
		case m.joinWait <- st:
		default:
		}
		return
	}
	if st.Attr("type") == "unavailable" && m.joined && !m.left {
		// Kicked, or the room was destroyed: join again, as MucClient does.
		m.joined = false
		m.logf("removed from the brewery; re-joining")
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			select {
			case <-m.ctx.Done():
				return
			case <-time.After(m.reconnectDelay):
			}
			if err := m.join(m.ctx, c); err != nil {
				m.logf("re-join: %v", err)
			}
		}()
	}
}

// leave sends unavailable presence to the brewery and stops publishing; the
// connection stays up.
func (m *breweryMember) leave() {
	m.mu.Lock()
	m.left = true
	m.joined = false
	c := m.client
	m.mu.Unlock()
	if c != nil {
		c.Send(NewElem("", "presence", "to", m.jid(), "type", "unavailable"))
	}
}

// rejoin joins the brewery again after leave.
func (m *breweryMember) rejoin() error {
	m.mu.Lock()
	m.left = false
	c, joined := m.client, m.joined
	m.mu.Unlock()
	if c == nil {
		return errors.New("testkit: " + m.name + " not connected (it re-joins when it reconnects)")
	}
	if joined {
		return nil
	}
	return m.join(m.ctx, c)
}

// close leaves, disconnects and waits for every goroutine on wg.
func (m *breweryMember) close() {
	m.mu.Lock()
	c := m.client
	m.left = true
	m.mu.Unlock()
	if c != nil {
		c.Send(NewElem("", "presence", "to", m.jid(), "type", "unavailable"))
	}
	m.cancel()
	m.wg.Wait()
	if c != nil {
		c.Close()
	}
}

// requestLog records the requests a fake received, in arrival order, and
// lets tests wait for one. The zero value is ready to use.
type requestLog struct {
	mu     sync.Mutex
	reqs   []*Elem
	signal chan struct{} // closed and replaced when a request arrives
}

func (l *requestLog) add(e *Elem) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reqs = append(l.reqs, e)
	if l.signal != nil {
		close(l.signal)
	}
	l.signal = make(chan struct{})
}

func (l *requestLog) all() []*Elem {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.reqs)
}

// wait returns the first request so far or later that match accepts (nil
// accepts any), or an error naming what was awaited when ctx ends.
func (l *requestLog) wait(ctx context.Context, match func(*Elem) bool, what string) (*Elem, error) {
	next := 0
	for {
		l.mu.Lock()
		reqs := l.reqs[next:]
		next = len(l.reqs)
		if l.signal == nil {
			l.signal = make(chan struct{})
		}
		sig := l.signal
		l.mu.Unlock()
		for _, r := range reqs {
			if match == nil || match(r) {
				return r, nil
			}
		}
		select {
		case <-sig:
		case <-ctx.Done():
			return nil, fmt.Errorf("testkit: waiting for %s: %w", what, ctx.Err())
		}
	}
}
