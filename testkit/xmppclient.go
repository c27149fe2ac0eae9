package testkit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stream"
)

// ErrClosed is what Send, SendIQ and Err report after Close.
var ErrClosed = errors.New("testkit: xmpp client closed")

// DialConfig says where and as whom a Client logs in.
type DialConfig struct {
	Addr     string // c2s address, e.g. Prosody.C2SAddr()
	Domain   string // XMPP host: Domain for participants, AuthDomain for focus and bridges
	User     string // localpart; empty logs in with SASL ANONYMOUS
	Password string
	Resource string // resource to bind; empty lets the server pick one

	// Handler, if set, is installed before the read loop starts, so that no
	// stanza arriving right after login is missed (Handle can race with it).
	Handler func(*Elem)
	// QueueSize bounds the outgoing queue (default 256); Send blocks while it
	// is full.
	QueueSize int
}

// Client is a minimal XMPP client for test doubles: a fake videobridge, or a
// simulated browser participant. mellium.im/xmpp does the connection, SASL
// and resource binding; after that the Client runs its own loops, because
// mellium's Session.Serve holds the stream locks while a handler runs and
// answers every unanswered IQ with service-unavailable, which a test double
// must be free to not do.
//
// Incoming stanzas are parsed into Elem trees by one read goroutine;
// outgoing stanzas are serialised by the caller and written by one writer
// goroutine fed through a bounded queue, so writes never interleave.
type Client struct {
	sess *xmpp.Session
	conn net.Conn
	jid  string

	handler atomic.Pointer[func(*Elem)]

	// sendMu is held for reading while enqueueing and for writing by Close, so
	// nothing is queued behind the end-of-stream marker.
	sendMu  sync.RWMutex
	closing atomic.Bool
	out     chan []byte // nil entry = end the stream

	pendMu  sync.Mutex
	pending map[string]chan *Elem

	done       chan struct{} // read loop ended
	writerDone chan struct{}
	errMu      sync.Mutex
	err        error
	closeOnce  sync.Once
}

// Dial connects, authenticates and binds a resource. Plain TCP is used (the
// test Prosody allows it on loopback). If ctx has no deadline, 10 s applies.
func Dial(ctx context.Context, cfg DialConfig) (*Client, error) {
	if cfg.Domain == "" || cfg.Addr == "" {
		return nil, errors.New("testkit: DialConfig needs Addr and Domain")
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
	}
	server, err := jid.New("", cfg.Domain, "")
	if err != nil {
		return nil, fmt.Errorf("testkit: bad domain %q: %w", cfg.Domain, err)
	}
	origin := server
	mechs := []sasl.Mechanism{sasl.Anonymous}
	if cfg.User != "" {
		if origin, err = jid.New(cfg.User, cfg.Domain, ""); err != nil {
			return nil, fmt.Errorf("testkit: bad user %q: %w", cfg.User, err)
		}
		mechs = []sasl.Mechanism{sasl.ScramSha256, sasl.ScramSha1, sasl.Plain}
	}

	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("testkit: dialing %s: %w", cfg.Addr, err)
	}

	// Bound the negotiation with conn deadlines instead of handing ctx to
	// mellium: its context watcher can fire after negotiation when our
	// deferred cancel runs, briefly setting a past deadline on the conn that
	// the read loop would then trip over.
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stopWatch, watchDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(watchDone)
		select {
		case <-ctx.Done():
			conn.SetDeadline(time.Unix(1, 0))
		case <-stopWatch:
		}
	}()
	// The state starts as Secure: over plain TCP mellium otherwise insists on
	// STARTTLS before SASL ("features advertised out of order").
	sess, err := xmpp.NewSession(context.Background(), server, origin, conn, xmpp.Secure,
		xmpp.NewNegotiator(func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
			return xmpp.StreamConfig{
				Lang:     "en",
				Features: []xmpp.StreamFeature{xmpp.SASL("", cfg.Password, mechs...), bindResource(cfg.Resource)},
			}
		}))
	close(stopWatch)
	<-watchDone
	if err != nil {
		conn.Close()
		who := origin.String()
		if cfg.User == "" {
			who = "anonymous@" + cfg.Domain
		}
		if cond := saslCondition(err); cond != "" {
			return nil, &AuthError{JID: who, Condition: cond, Text: err.Error()}
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("testkit: logging in as %s: %w (%v)", who, ctx.Err(), err)
		}
		return nil, fmt.Errorf("testkit: logging in as %s: %w", who, err)
	}
	conn.SetDeadline(time.Time{})

	qs := cfg.QueueSize
	if qs <= 0 {
		qs = 256
	}
	c := &Client{
		sess:       sess,
		conn:       sess.Conn(),
		jid:        sess.LocalAddr().String(),
		out:        make(chan []byte, qs),
		pending:    map[string]chan *Elem{},
		done:       make(chan struct{}),
		writerDone: make(chan struct{}),
	}
	if cfg.Handler != nil {
		c.Handle(cfg.Handler)
	}
	go c.readLoop()
	go c.writeLoop()
	return c, nil
}

// AuthError is returned by Dial when the server rejects the credentials.
type AuthError struct {
	JID       string
	Condition string // SASL condition, e.g. "not-authorized"
	Text      string // the server's text, if any
}

func (e *AuthError) Error() string {
	return fmt.Sprintf("testkit: SASL login as %s failed: %s (%s)", e.JID, e.Condition, e.Text)
}

// saslCondition digs the condition out of mellium's SASL failure. Its error
// type lives in an internal package and its Error() returns only the server's
// text when there is one (Prosody always sends one), so the condition, which
// tests want to assert on, would otherwise be lost.
func saslCondition(err error) string {
	for ; err != nil; err = errors.Unwrap(err) {
		v := reflect.ValueOf(err)
		if v.Kind() != reflect.Struct || v.Type().PkgPath() != "mellium.im/xmpp/internal/saslerr" {
			continue
		}
		f := v.FieldByName("Condition")
		if !f.IsValid() || !f.CanInterface() {
			return "failure"
		}
		if s, ok := f.Interface().(fmt.Stringer); ok {
			return s.String()
		}
		return "failure"
	}
	return ""
}

// bindResource replaces mellium's BindResource, which (v0.22.0) sends an empty
// <resource/> whatever the origin JID says, so the server always picks a
// random resource; the focus must be able to bind "focus".
func bindResource(resource string) xmpp.StreamFeature {
	return xmpp.StreamFeature{
		Name:       xml.Name{Space: nsBind, Local: "bind"},
		Necessary:  xmpp.Authn,
		Prohibited: xmpp.Ready,
		Parse: func(_ context.Context, d *xml.Decoder, _ *xml.StartElement) (bool, any, error) {
			return true, nil, d.Skip()
		},
		Negotiate: func(_ context.Context, s *xmpp.Session, _ any) (xmpp.SessionState, io.ReadWriter, error) {
			id := randomID()
			req := NewElem("", "iq", "type", "set", "id", id).Add(NewElem(nsBind, "bind"))
			if resource != "" {
				req.Kids[0].Add(NewElem("", "resource").SetText(resource))
			}
			if _, err := io.WriteString(s.Conn(), req.String()); err != nil {
				return 0, nil, err
			}
			r := s.TokenReader()
			defer r.Close()
			resp, err := readElem(r)
			if err != nil {
				return 0, nil, fmt.Errorf("reading bind response: %w", err)
			}
			if resp.Local != "iq" || resp.Attr("id") != id {
				return 0, nil, fmt.Errorf("unexpected answer to bind: %s", resp)
			}
			if se := StanzaErrorOf(resp); se != nil {
				return 0, nil, fmt.Errorf("binding resource %q: %w", resource, se)
			}
			j, err := jid.Parse(resp.Child(nsBind, "bind").Child("", "jid").textOrEmpty())
			if err != nil {
				return 0, nil, fmt.Errorf("bind result: %w", err)
			}
			s.UpdateAddr(j)
			return xmpp.Ready, nil, nil
		},
	}
}

func (e *Elem) textOrEmpty() string {
	if e == nil {
		return ""
	}
	return e.Text
}

func randomID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// JID is the full JID the server bound, e.g. "focus@auth.meet.test/focus".
func (c *Client) JID() string { return c.jid }

// Handle sets the function that receives every incoming stanza except IQ
// responses awaited by SendIQ. It runs on the read goroutine: it must not
// block (hand work to another goroutine), or nothing more is read — including
// the response a blocked SendIQ is waiting for. Stanzas arriving while no
// handler is set are dropped.
func (c *Client) Handle(h func(*Elem)) {
	if h == nil {
		c.handler.Store(nil)
		return
	}
	c.handler.Store(&h)
}

// Send queues a stanza for writing. Elements with an empty namespace are
// written as jabber:client.
func (c *Client) Send(e *Elem) error { return c.enqueue([]byte(e.String())) }

// SendRaw queues bytes for writing as they are, e.g. malformed XML for
// robustness tests.
func (c *Client) SendRaw(s string) error { return c.enqueue([]byte(s)) }

func (c *Client) enqueue(b []byte) error {
	c.sendMu.RLock()
	defer c.sendMu.RUnlock()
	if c.closing.Load() {
		return ErrClosed
	}
	select {
	case <-c.done: // fail early rather than queue for a dead stream
		return c.deadErr()
	default:
	}
	select {
	case c.out <- b:
		return nil
	case <-c.writerDone:
		return c.deadErr()
	}
}

// SendIQ sends an IQ (setting a random id if it has none) and waits for the
// result or error with the same id. An error response is returned together
// with a *StanzaError naming the condition.
func (c *Client) SendIQ(ctx context.Context, iq *Elem) (*Elem, error) {
	id := iq.Attr("id")
	if id == "" {
		id = randomID()
		iq.Set("id", id)
	}
	ch := make(chan *Elem, 1)
	c.pendMu.Lock()
	if c.pending == nil {
		c.pendMu.Unlock()
		return nil, c.deadErr()
	}
	c.pending[id] = ch
	c.pendMu.Unlock()
	forget := func() {
		c.pendMu.Lock()
		if c.pending != nil {
			delete(c.pending, id)
		}
		c.pendMu.Unlock()
	}
	if err := c.Send(iq); err != nil {
		forget()
		return nil, err
	}
	select {
	case resp := <-ch:
		if resp == nil {
			return nil, c.deadErr()
		}
		if se := StanzaErrorOf(resp); se != nil {
			return resp, se
		}
		return resp, nil
	case <-ctx.Done():
		forget()
		return nil, fmt.Errorf("testkit: waiting for iq %s: %w", id, ctx.Err())
	}
}

// SendRawIQ writes raw (an IQ whose id attribute is id, serialised by the
// caller, e.g. with characters Send would escape) and waits for the answer
// as SendIQ does.
func (c *Client) SendRawIQ(ctx context.Context, id, raw string) (*Elem, error) {
	ch := make(chan *Elem, 1)
	c.pendMu.Lock()
	if c.pending == nil {
		c.pendMu.Unlock()
		return nil, c.deadErr()
	}
	c.pending[id] = ch
	c.pendMu.Unlock()
	defer func() {
		c.pendMu.Lock()
		if c.pending != nil {
			delete(c.pending, id)
		}
		c.pendMu.Unlock()
	}()
	if err := c.SendRaw(raw); err != nil {
		return nil, err
	}
	select {
	case resp := <-ch:
		if resp == nil {
			return nil, c.deadErr()
		}
		if se := StanzaErrorOf(resp); se != nil {
			return resp, se
		}
		return resp, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("testkit: waiting for iq %s: %w", id, ctx.Err())
	}
}

// readLoop owns the session's token reader until the stream ends.
func (c *Client) readLoop() {
	r := c.sess.TokenReader()
	defer r.Close()
	var err error
	for {
		var st *Elem
		if st, err = readElem(r); err != nil {
			break
		}
		c.dispatch(st)
	}
	c.setErr(err)
	c.conn.Close()
	c.pendMu.Lock()
	for _, ch := range c.pending {
		close(ch)
	}
	c.pending = nil
	c.pendMu.Unlock()
	close(c.done)
}

func (c *Client) dispatch(st *Elem) {
	if st.Local == "iq" {
		if t := st.Attr("type"); t == "result" || t == "error" {
			c.pendMu.Lock()
			ch, ok := c.pending[st.Attr("id")]
			if ok {
				delete(c.pending, st.Attr("id"))
			}
			c.pendMu.Unlock()
			if ok {
				ch <- st
				return
			}
		}
	}
	if h := c.handler.Load(); h != nil {
		(*h)(st)
	}
}

// writeLoop is the only writer of the connection once the session is up.
func (c *Client) writeLoop() {
	defer close(c.writerDone)
	for {
		select {
		case b := <-c.out:
			end := b == nil
			if end {
				b = []byte("</stream:stream>")
			}
			c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.conn.Write(b); err != nil {
				c.setErr(fmt.Errorf("testkit: writing: %w", err))
				c.conn.Close()
				return
			}
			if end {
				return
			}
		case <-c.done:
			return
		}
	}
}

// setErr records why the client stopped; the first reason wins, and after
// Close the reason is ErrClosed.
func (c *Client) setErr(err error) {
	c.errMu.Lock()
	defer c.errMu.Unlock()
	if c.err != nil {
		return
	}
	var se stream.Error
	switch {
	case c.closing.Load():
		c.err = ErrClosed
	case errors.Is(err, io.EOF):
		c.err = fmt.Errorf("testkit: server closed the stream: %w", io.EOF)
	case errors.As(err, &se):
		c.err = fmt.Errorf("testkit: stream error %s: %w", se.Err, err)
	default:
		c.err = fmt.Errorf("testkit: reading: %w", err)
	}
}

func (c *Client) deadErr() error {
	if err := c.Err(); err != nil {
		return err
	}
	return ErrClosed
}

// Close ends the stream (after everything already queued) and closes the
// connection once the server has closed its side, or after 2 s.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.sendMu.Lock()
		c.closing.Store(true)
		select {
		case c.out <- nil:
		case <-c.writerDone:
		}
		c.sendMu.Unlock()
		select {
		case <-c.writerDone:
		case <-time.After(2 * time.Second):
		}
		select {
		case <-c.done:
		case <-time.After(2 * time.Second):
		}
		c.conn.Close()
		<-c.done
		<-c.writerDone
	})
	return nil
}

// Done is closed when the read loop has ended (server closed the stream,
// stream error, connection lost, or Close).
func (c *Client) Done() <-chan struct{} { return c.done }

// Err is nil while the client runs; afterwards it says why it stopped:
// ErrClosed after Close, otherwise the stream error (its condition in the
// message, the mellium stream.Error wrapped) or connection error.
func (c *Client) Err() error {
	c.errMu.Lock()
	defer c.errMu.Unlock()
	return c.err
}
