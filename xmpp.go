package main

// xmpp.go: the focus's one client connection to Prosody.
//
// mellium.im/xmpp does the connection set-up (STARTTLS, SASL, resource
// binding) and parses JIDs. After that this file runs its own read loop over
// the session's token reader and its own single writer goroutine, because
// mellium's Session.Serve holds the stream locks while a handler runs and
// answers every IQ the handler did not answer synchronously with
// service-unavailable: a focus answers many IQs later (a conference request
// is answered only once the room is joined).
//
// Shape: Run keeps one connection alive forever (jittered exponential
// back-off, capped). Each connection has one reader goroutine (dispatching
// stanzas by type and payload namespace to handlers that must not block),
// one writer goroutine fed by a bounded queue, and one keepalive pinger.

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stream"
)

// Timeouts and sizes of the XMPP connection.
const (
	// dialTimeout bounds TCP connect plus stream negotiation.
	dialTimeout = 10 * time.Second
	// backoffBase and backoffCap: reconnect quickly after a blip, but never
	// hammer a Prosody that is restarting (jittered, so several focus-like
	// clients do not reconnect in lock step).
	backoffBase = 250 * time.Millisecond
	backoffCap  = 4 * time.Second
	// writeQueue bounds stanzas waiting for the writer; a full queue means
	// the connection is stuck, and Send fails rather than piling up memory.
	writeQueue = 4096
	// writeTimeout is how long one write may block before the connection is
	// considered dead.
	writeTimeout = 10 * time.Second
	// maxStanzaBytes bounds every stanza the focus writes, as serialised.
	// Prosody closes a client stream that sends a stanza over its
	// c2s_stanza_size_limit (256 KiB by default), and with it every
	// conference: a stanza over this bound is never written (the caller gets
	// ErrStanzaTooLarge). The margin covers a deployment that lowered the
	// limit somewhat.
	maxStanzaBytes = 200 << 10
)

// ErrNotConnected is returned by Send and SendIQ while there is no session.
var ErrNotConnected = errors.New("xmpp: not connected")

// ErrStanzaTooLarge is returned for a stanza over maxStanzaBytes; it was
// not sent.
var ErrStanzaTooLarge = errors.New("xmpp: stanza over the size limit, not sent")

// XMPPOptions configures an XMPPClient.
type XMPPOptions struct {
	Addr          string // host:port of Prosody's c2s listener
	Domain        string // login domain, e.g. auth.meet.example.com
	Username      string
	Password      string
	Resource      string
	TLS           string // required, optional, off
	TLSSkipVerify bool
	ReplyTimeout  time.Duration
	PingInterval  time.Duration
	PingTarget    string // whom keepalive pings go to (the XMPP domain)
	Trace         bool   // log every stanza in and out
	Features      []string
	Logger        *slog.Logger
}

// XMPPClient is a reconnecting XMPP client session.
type XMPPClient struct {
	opt XMPPOptions
	log *slog.Logger

	mu        sync.Mutex
	conn      *xmppConn // current connection, nil while down
	lastErr   error
	plainOnly bool // optional TLS: the server offered none last time

	iqHandlers map[string]func(*Element) // by payload namespace (get/set IQs)
	onPresence func(*Element)
	onMessage  func(*Element)
	onSession  []func(up bool)

	waitMu  sync.Mutex
	waiters map[string]*iqWaiter

	sm streamMgmt // XEP-0198 state, kept across connections for resumption

	// detach: the next stop closes the TCP connection without ending the
	// stream, so the server keeps the session for the next process
	// (handover.go). adopted: the stream management state came from the
	// previous process; its first login tells the session callbacks either
	// way (up if resumed, down then up if not).
	detach    atomic.Bool
	adopted   atomic.Bool
	onRefused func() // the adopted stream was not resumed (set before Run)
	// beforeAdopt runs before the adopted stream is resumed (set before Run).
	beforeAdopt func()

	capsOnce sync.Once
	ownCaps  string // XEP-0115 ver of discoInfo (capsVer)

	connects    atomic.Int64
	disconnects atomic.Int64
	resumes     atomic.Int64
	loggedInAt  atomic.Int64 // unix nanos of the last successful login
}

type iqWaiter struct {
	to string
	ch chan *Element
}

type xmppConn struct {
	sess      *xmpp.Session
	jid       jid.JID
	out       chan outItem
	done      chan struct{}
	closer    sync.Once
	resumed   bool // the stream resumed an earlier session (XEP-0198)
	smOffered bool // the server offers stream management
	werr      chan error

	mu     sync.Mutex // guards closed and sends into out
	closed bool

	alive keepalive // when the server was last heard from (keepalive.go)
}

// outItem is one thing to write: a stanza (counted by stream management)
// or a nonza such as <r/> or <a/>.
type outItem struct {
	b      []byte
	stanza bool
	// written, if set, is called with the time the item was handed to the
	// socket (the keepalive ping's clock starts there, not when queued).
	written func(time.Time)
}

func (c *xmppConn) close() {
	c.closer.Do(func() {
		close(c.done)
		c.sess.Conn().Close()
	})
}

// NewXMPPClient returns a client; register handlers, then call Run.
func NewXMPPClient(opt XMPPOptions) *XMPPClient {
	if opt.ReplyTimeout == 0 {
		opt.ReplyTimeout = 15 * time.Second
	}
	if opt.PingInterval == 0 {
		opt.PingInterval = 10 * time.Second
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	return &XMPPClient{
		opt:        opt,
		log:        opt.Logger.With("component", "xmpp"),
		iqHandlers: map[string]func(*Element){},
		waiters:    map[string]*iqWaiter{},
	}
}

// HandleIQ routes get/set IQs whose payload has namespace ns to h. h runs on
// the reader goroutine and must not block; it answers with Send.
func (c *XMPPClient) HandleIQ(ns string, h func(*Element)) { c.iqHandlers[ns] = h }

// HandlePresence receives every presence stanza (same rules as HandleIQ).
func (c *XMPPClient) HandlePresence(h func(*Element)) { c.onPresence = h }

// HandleMessage receives every message stanza.
func (c *XMPPClient) HandleMessage(h func(*Element)) { c.onMessage = h }

// OnSession is called with true after every login and false after every loss.
func (c *XMPPClient) OnSession(f func(up bool)) { c.onSession = append(c.onSession, f) }

// JID returns the bound full JID ("" while down).
func (c *XMPPClient) JID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == nil {
		return ""
	}
	return c.conn.jid.String()
}

// Connected reports whether a session is up, and the last error otherwise.
func (c *XMPPClient) Connected() (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conn != nil, c.lastErr
}

// Run connects and stays connected until ctx ends. On return the stream has
// been closed cleanly (if it was up).
//
// With stream management (XEP-0198), a lost connection is resumed when
// possible: the session, its rooms and its pending IQs survive, and the
// OnSession callbacks do not fire. Only when the resumption fails (or is not
// possible within the server's hibernation time) do they see down, then up.
func (c *XMPPClient) Run(ctx context.Context) {
	attempt := 0
	pendingDown := false // a loss the callbacks have not been told about
	tellDown := func() {
		if !pendingDown {
			return
		}
		pendingDown = false
		c.sm.reset()
		c.failWaiters()
		for _, f := range c.onSession {
			f(false)
		}
	}
	if c.adopted.Load() && c.beforeAdopt != nil {
		c.beforeAdopt()
	}
	for ctx.Err() == nil {
		start := time.Now()
		conn, err := c.connect(ctx)
		if err != nil {
			c.mu.Lock()
			c.lastErr = err
			c.mu.Unlock()
			if pendingDown && !c.sm.canResume() {
				tellDown()
			}
			delay := backoff(attempt)
			if isAuthError(err) {
				delay = backoffCap
				c.log.Error("login refused: wrong user name or password", "user", c.opt.Username+"@"+c.opt.Domain, "err", err, "retry_in", delay)
			} else if ctx.Err() == nil {
				c.log.Warn("cannot connect to XMPP server", "addr", c.opt.Addr, "err", err, "attempt", attempt+1, "retry_in", delay)
			}
			attempt++
			select {
			case <-ctx.Done():
			case <-time.After(delay):
			}
			continue
		}
		attempt = 0
		adopted := c.adopted.Swap(false)
		if conn.resumed {
			c.resumes.Add(1)
			pendingDown = false
			c.log.Info("stream resumed", "jid", conn.jid.String(), "took", time.Since(start).Round(time.Millisecond))
		} else {
			tellDown()
			c.connects.Add(1)
			c.loggedInAt.Store(time.Now().UnixNano())
			c.log.Info("logged in", "jid", conn.jid.String(), "took", time.Since(start).Round(time.Millisecond))
		}
		if !conn.resumed && conn.smOffered {
			c.sm.offered()
		}
		// What must go first on this stream is queued before the connection
		// is published, so nothing sent by others can overtake it.
		c.mu.Lock()
		c.prime(conn)
		c.conn = conn
		c.lastErr = nil
		c.mu.Unlock()
		if adopted && !conn.resumed {
			c.adoptionRefused() // on the new stream: what ends goes out on it
		}
		if !conn.resumed || adopted {
			for _, f := range c.onSession {
				f(true)
			}
		}
		err = c.serve(ctx, conn)
		c.mu.Lock()
		c.conn = nil
		if err == nil {
			err = errors.New("connection closed")
		}
		c.lastErr = err
		c.mu.Unlock()
		c.disconnects.Add(1)
		pendingDown = true
		c.sm.lost(time.Now())
		if ctx.Err() != nil {
			if c.detach.Load() {
				return // handed over: the session lives on in the server
			}
			break
		}
		if c.sm.canResume() {
			c.log.Warn("XMPP connection lost; will try to resume the stream", "err", err)
		} else {
			c.log.Warn("XMPP connection lost", "err", err)
			tellDown()
		}
	}
	if c.detach.Load() {
		return // handed over while reconnecting: the stream may still be resumed
	}
	tellDown()
}

func backoff(attempt int) time.Duration {
	d := backoffBase << min(attempt, 8)
	if d > backoffCap {
		d = backoffCap
	}
	// Full jitter in [d/2, d).
	j, _ := rand.Int(rand.Reader, big.NewInt(int64(d/2)+1))
	return d/2 + time.Duration(j.Int64())
}

// AuthError is a SASL failure: the server refused the credentials.
type AuthError struct {
	Condition string // e.g. not-authorized
	Text      string // the server's explanation
}

func (e *AuthError) Error() string {
	if e.Text != "" {
		return "SASL " + e.Condition + ": " + e.Text
	}
	return "SASL " + e.Condition
}

func isAuthError(err error) bool {
	var ae *AuthError
	return errors.As(err, &ae)
}

// saslFeature wraps mellium's SASL feature so that a refusal comes back as
// an *AuthError naming the condition (mellium's own error type is internal
// and its message carries only the server's text).
func saslFeature(password string) xmpp.StreamFeature {
	f := xmpp.SASL("", password, sasl.ScramSha256Plus, sasl.ScramSha256, sasl.ScramSha1Plus, sasl.ScramSha1, sasl.Plain)
	inner := f.Negotiate
	f.Negotiate = func(ctx context.Context, s *xmpp.Session, data interface{}) (xmpp.SessionState, io.ReadWriter, error) {
		mask, rw, err := inner(ctx, s, data)
		if err != nil {
			if v := reflect.ValueOf(err); v.Kind() == reflect.Struct {
				if c := v.FieldByName("Condition"); c.IsValid() {
					if st, ok := c.Interface().(fmt.Stringer); ok {
						return mask, rw, &AuthError{Condition: st.String(), Text: err.Error()}
					}
				}
			}
		}
		return mask, rw, err
	}
	return f
}

// connect dials and negotiates one session.
func (c *XMPPClient) connect(ctx context.Context) (*xmppConn, error) {
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	origin, err := jid.New(c.opt.Username, c.opt.Domain, c.opt.Resource)
	if err != nil {
		return nil, fmt.Errorf("focus JID: %w", err)
	}
	useTLS := c.opt.TLS == "required" || (c.opt.TLS == "optional" && !c.plainOnly)
	sess, err := c.negotiate(ctx, origin, useTLS)
	if err != nil && c.opt.TLS == "optional" && useTLS && !isAuthError(err) && (errors.Is(err, errNoStartTLS) || strings.Contains(err.Error(), "tls:")) {
		// The server offers no STARTTLS, or offers it without a usable
		// certificate (plain loopback deployments): with tls = "optional",
		// log in without it, and remember so the next reconnect is direct.
		c.log.Warn("STARTTLS unavailable, continuing without TLS (set xmpp.tls = \"required\" to refuse)", "err", err)
		c.plainOnly = true
		sess, err = c.negotiate(ctx, origin, false)
	}
	if err != nil {
		return nil, err
	}
	conn := &xmppConn{
		sess:    sess,
		jid:     sess.LocalAddr(),
		out:     make(chan outItem, writeQueue),
		done:    make(chan struct{}),
		resumed: c.sm.takeResumed(),
		werr:    make(chan error, 1),
	}
	_, conn.smOffered = sess.Feature(nsSM)
	go func() { conn.werr <- c.writeLoop(conn) }()
	return conn, nil
}

var errNoStartTLS = errors.New("server did not offer STARTTLS")

func (c *XMPPClient) negotiate(ctx context.Context, origin jid.JID, useTLS bool) (*xmpp.Session, error) {
	d := net.Dialer{KeepAlive: 15 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", c.opt.Addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", c.opt.Addr, err)
	}
	var state xmpp.SessionState
	var features []xmpp.StreamFeature
	if useTLS {
		features = append(features, xmpp.StartTLS(&tls.Config{
			ServerName:         origin.Domainpart(),
			InsecureSkipVerify: c.opt.TLSSkipVerify, // #nosec G402 -- operator's explicit choice for self-signed Prosody certs
			MinVersion:         tls.VersionTLS12,
		}))
	} else {
		// Without TLS the negotiator must be told the stream counts as
		// secure, or it refuses to offer SASL (see docs/prosody-and-clients.md#logging-in-without-tls).
		state = xmpp.Secure
	}
	features = append(features,
		saslFeature(c.opt.Password),
		smFeature(),
		c.bindResource(c.opt.Resource),
	)
	sess, err := xmpp.NewSession(ctx, origin.Domain(), origin, nc, state, xmpp.NewNegotiator(func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
		return xmpp.StreamConfig{Features: features}
	}))
	if err != nil {
		nc.Close()
		if useTLS && strings.Contains(err.Error(), "out of order") {
			return nil, fmt.Errorf("negotiate: %w (%v)", errNoStartTLS, err)
		}
		return nil, fmt.Errorf("negotiate session as %s: %w", origin, err)
	}
	return sess, nil
}

// bindResource binds exactly the configured resource. mellium's
// BindResource asks the server to pick one, but clients without Jitsi's
// client_proxy address the focus as focus@auth.<domain>/focus.
func (c *XMPPClient) bindResource(resource string) xmpp.StreamFeature {
	return xmpp.StreamFeature{
		Name:       xml.Name{Space: "urn:ietf:params:xml:ns:xmpp-bind", Local: "bind"},
		Necessary:  xmpp.Authn,
		Prohibited: xmpp.Ready,
		Parse: func(ctx context.Context, d *xml.Decoder, start *xml.StartElement) (bool, interface{}, error) {
			return true, nil, d.Skip()
		},
		Negotiate: func(ctx context.Context, s *xmpp.Session, _ interface{}) (xmpp.SessionState, io.ReadWriter, error) {
			if _, ok := s.Feature(nsSM); ok {
				if resumed, err := c.tryResume(s); err != nil || resumed {
					return xmpp.Ready, nil, err
				}
			}
			bind := NewElement("urn:ietf:params:xml:ns:xmpp-bind", "bind").
				Add(NewElement("urn:ietf:params:xml:ns:xmpp-bind", "resource").SetText(resource))
			if _, err := s.Conn().Write(NewIQ("set", "", "bind-1", bind).Bytes()); err != nil {
				return 0, nil, fmt.Errorf("bind: %w", err)
			}
			r := s.TokenReader()
			defer r.Close()
			for {
				tok, err := r.Token()
				if err != nil {
					return 0, nil, fmt.Errorf("bind: %w", err)
				}
				start, ok := tok.(xml.StartElement)
				if !ok {
					continue
				}
				resp, err := readElement(r, start)
				if err != nil {
					return 0, nil, fmt.Errorf("bind: %w", err)
				}
				if resp.Local != "iq" || resp.Attr("id") != "bind-1" {
					continue
				}
				if resp.Attr("type") != "result" {
					return 0, nil, fmt.Errorf("bind resource %q: %w", resource, ParseStanzaError(resp))
				}
				j, err := jid.Parse(resp.Child("", "bind").Child("", "jid").Text)
				if err != nil {
					return 0, nil, fmt.Errorf("bind: server sent a bad JID: %w", err)
				}
				s.UpdateAddr(j)
				return xmpp.Ready, nil, nil
			}
		},
	}
}

// serve runs one connection until it fails or ctx ends.
// prime queues what opens a stream: after a resumption the stanzas the
// server had not acknowledged and those queued while down; on a new
// session <enable/> (stream management) and the initial presence.
func (c *XMPPClient) prime(conn *xmppConn) {
	if conn.resumed {
		for _, b := range c.sm.resendQueue() {
			_ = c.enqueue(conn, outItem{b: b, stanza: true})
		}
		return
	}
	if conn.smOffered {
		_ = c.enqueue(conn, outItem{b: []byte(`<enable xmlns="` + nsSM + `" resume="true"/>`)})
	}
	// The focus is available (some Prosody modules only route to
	// available resources).
	_ = c.sendOn(conn, NewElement(nsClient, "presence"))
}

func (c *XMPPClient) serve(ctx context.Context, conn *xmppConn) error {
	werr := conn.werr
	rerr := make(chan error, 1)
	go func() { rerr <- c.readLoop(conn) }()

	ping := time.NewTicker(c.opt.PingInterval)
	defer ping.Stop()
	conn.alive.heard(time.Now())
	var err error
loop:
	for {
		select {
		case <-ctx.Done():
			if c.detach.Load() {
				conn.close() // no </stream>, no unavailable: the server hibernates the session
			} else {
				c.closeCleanly(conn)
			}
			err = ctx.Err()
			break loop
		case err = <-rerr:
			break loop
		case err = <-werr:
			break loop
		case <-ping.C:
			if perr := c.keepalive(conn, time.Now()); perr != nil {
				c.log.Warn("keepalive: the server is silent", "err", perr)
				err = perr
				break loop
			}
		}
	}
	conn.close()
	// Stanzas still queued were never written: keep them for a resumption.
	conn.mu.Lock()
	conn.closed = true
	for {
		select {
		case it := <-conn.out:
			if it.stanza {
				c.sm.queueWhileDown(it.b)
			}
			continue
		default:
		}
		break
	}
	conn.mu.Unlock()
	return err
}

// closeCleanly sends unavailable presence and the stream end, and waits a
// moment for the server to close its side.
func (c *XMPPClient) closeCleanly(conn *xmppConn) {
	defer c.sm.reset() // a closed stream is not resumed
	c.sendOn(conn, NewElement(nsClient, "presence", "type", "unavailable"))
	deadline := time.Now().Add(2 * time.Second)
	for len(conn.out) > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	_ = conn.sess.SetCloseDeadline(time.Now().Add(time.Second))
	_ = conn.sess.Close()
}

// writeBatch bounds how many bytes the writer gathers into one write.
const writeBatch = 64 << 10

// writeLoop is the connection's only writer. Whatever is queued when it
// wakes up goes out in one write: a source-add to a hundred participants
// costs one system call, not a hundred.
func (c *XMPPClient) writeLoop(conn *xmppConn) error {
	nc := conn.sess.Conn()
	var buf []byte
	var hooks []func(time.Time)
	add := func(it outItem) {
		if it.written != nil {
			hooks = append(hooks, it.written)
		}
		buf = append(buf, it.b...)
		if it.stanza && c.sm.sent(it.b) {
			buf = append(buf, `<r xmlns="`+nsSM+`"/>`...)
		}
	}
	for {
		select {
		case <-conn.done:
			return nil
		case it := <-conn.out:
			buf = buf[:0]
			add(it)
		gather:
			for len(buf) < writeBatch {
				select {
				case it := <-conn.out:
					add(it)
				default:
					break gather
				}
			}
			_ = nc.SetWriteDeadline(time.Now().Add(writeTimeout))
			if _, err := nc.Write(buf); err != nil {
				return fmt.Errorf("write: %w", err)
			}
			for _, h := range hooks {
				h(time.Now())
			}
			hooks = hooks[:0]
			if cap(buf) > 4*writeBatch {
				buf = nil // one huge stanza should not pin its buffer
			}
		}
	}
}

func (c *XMPPClient) readLoop(conn *xmppConn) error {
	r := conn.sess.TokenReader()
	defer r.Close()
	for {
		tok, err := r.Token()
		if err != nil {
			return readError(err)
		}
		conn.alive.heard(time.Now())
		start, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		el, err := readElement(r, start)
		conn.alive.heard(time.Now())
		if errors.Is(err, errTooDeep) {
			c.sm.received() // it was a stanza all the same: acknowledge it
			c.refuseOversized(conn, start)
			continue
		}
		if err != nil {
			return readError(err)
		}
		if el.Space == "http://etherx.jabber.org/streams" && el.Local == "error" {
			return fmt.Errorf("stream error: %s", streamErrorText(el))
		}
		if el.Space == nsSM {
			c.handleSM(conn, el)
			continue
		}
		c.sm.received()
		if c.opt.Trace {
			c.log.Debug("xmpp in", "xml", el.String())
		}
		c.dispatch(conn, el)
	}
}

// readError describes why reading the stream stopped. A stream error from
// the server (mellium hands it over as the read error) is spelled out with
// its condition and text, so the log says why Prosody closed the stream.
func readError(err error) error {
	if err == io.EOF {
		return errors.New("server closed the stream")
	}
	var se stream.Error
	if errors.As(err, &se) {
		msg := se.Err
		if msg == "" {
			msg = "undefined-condition"
		}
		for _, t := range se.Text {
			if t.Value != "" {
				msg += ": " + t.Value
			}
		}
		return fmt.Errorf("stream error from the server: %s", msg)
	}
	return fmt.Errorf("read: %w", err)
}

// refuseOversized answers a stanza that was too deep or too large to read:
// a get or set IQ gets an error (its sender would otherwise wait for an
// answer that never comes); anything else is dropped, with a log line.
func (c *XMPPClient) refuseOversized(conn *xmppConn, start xml.StartElement) {
	st := fromStart(start)
	c.log.Warn("refused an oversized or too deeply nested stanza", "stanza", start.Name.Local,
		"type", st.Attr("type"), "from", st.Attr("from"), "id", st.Attr("id"))
	if start.Name.Local != "iq" || (st.Attr("type") != "get" && st.Attr("type") != "set") {
		return
	}
	_ = c.sendOn(conn, ErrorIQ(st, Errorf("policy-violation",
		"stanza nested deeper than %d or with more than %d elements", maxDepth, maxElements)))
}

func streamErrorText(el *Element) string {
	var parts []string
	for _, k := range el.Children {
		if k.Local == "text" {
			parts = append(parts, k.Text)
		} else {
			parts = append(parts, k.Local)
		}
	}
	return strings.Join(parts, ": ")
}

// dispatch routes one stanza. It recovers from a panicking handler so that
// one bad stanza can never take the session down.
func (c *XMPPClient) dispatch(conn *xmppConn, el *Element) {
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("handler panicked; stanza dropped", "panic", r, "stanza", truncate(el.String(), 500))
		}
	}()
	switch el.Local {
	case "iq":
		switch el.Attr("type") {
		case "result", "error":
			c.deliver(el)
		case "get", "set":
			c.handleIQ(conn, el)
		}
	case "presence":
		if c.onPresence != nil {
			c.onPresence(el)
		}
	case "message":
		if c.onMessage != nil {
			c.onMessage(el)
		}
	}
}

func (c *XMPPClient) handleIQ(conn *xmppConn, iq *Element) {
	p := iq.Payload()
	if p == nil {
		c.sendOn(conn, ErrorIQ(iq, Errorf("bad-request", "IQ without payload")))
		return
	}
	if h := c.iqHandlers[p.Space]; h != nil {
		h(iq)
		return
	}
	switch {
	case p.Space == nsPing && iq.Attr("type") == "get":
		c.sendOn(conn, ResultIQ(iq, nil))
	case p.Space == nsDiscoInfo && iq.Attr("type") == "get":
		c.sendOn(conn, ResultIQ(iq, c.discoInfo(p.Attr("node"))))
	default:
		c.sendOn(conn, ErrorIQ(iq, Errorf("service-unavailable", "")))
	}
}

func (c *XMPPClient) discoInfo(node string) *Element {
	q := NewElement(nsDiscoInfo, "query")
	if node != "" {
		q.Set("node", node)
	}
	q.Add(NewElement(nsDiscoInfo, "identity", "category", "client", "type", "bot", "name", "minifocus"))
	for _, f := range append([]string{nsDiscoInfo, nsPing}, c.opt.Features...) {
		q.Add(NewElement(nsDiscoInfo, "feature", "var", f))
	}
	return q
}

// Send queues a stanza for the writer. It fails when there is no session or
// the queue stays full (a stuck connection) for writeTimeout.
func (c *XMPPClient) Send(el *Element) error {
	b, err := c.encode(el)
	if err != nil {
		return err
	}
	c.mu.Lock()
	conn := c.conn
	if conn == nil {
		ok := c.sm.queueWhileDown(b)
		c.mu.Unlock()
		if ok {
			return nil // sent after the stream is resumed
		}
		return ErrNotConnected
	}
	c.mu.Unlock()
	err = c.sendBytes(conn, b)
	if errors.Is(err, ErrNotConnected) && c.sm.queueWhileDown(b) {
		return nil // the connection died just now: kept for the resumption
	}
	return err
}

func (c *XMPPClient) sendOn(conn *xmppConn, el *Element) error {
	b, err := c.encode(el)
	if err != nil {
		return err
	}
	return c.sendBytes(conn, b)
}

func (c *XMPPClient) sendBytes(conn *xmppConn, b []byte) error {
	if c.opt.Trace {
		c.log.Debug("xmpp out", "xml", string(b))
	}
	return c.enqueue(conn, outItem{b: b, stanza: true})
}

// encode serialises a stanza and checks its size: everything written goes
// through here, so no stanza over maxStanzaBytes reaches Prosody.
func (c *XMPPClient) encode(el *Element) ([]byte, error) {
	b := el.Bytes()
	if len(b) <= maxStanzaBytes {
		return b, nil
	}
	c.log.Error("stanza over the size limit not sent", "stanza", el.Local, "type", el.Attr("type"),
		"to", el.Attr("to"), "bytes", len(b), "limit", maxStanzaBytes, "start", truncate(string(b[:300]), 300))
	return nil, fmt.Errorf("%w: %s to %s is %d bytes (limit %d)", ErrStanzaTooLarge, el.Local, el.Attr("to"), len(b), maxStanzaBytes)
}

func (c *XMPPClient) enqueue(conn *xmppConn, it outItem) error {
	deadline := time.Now().Add(writeTimeout)
	for {
		conn.mu.Lock()
		if conn.closed {
			conn.mu.Unlock()
			return ErrNotConnected
		}
		select {
		case conn.out <- it:
			conn.mu.Unlock()
			return nil
		default:
		}
		conn.mu.Unlock()
		if time.Now().After(deadline) {
			return errors.New("xmpp: write queue full")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// SendIQ sends a get/set IQ and waits for its result or error (an error
// response is returned as *StanzaError together with the stanza). The wait
// ends at ctx's deadline or the reply timeout, whichever is first; the waiter
// is always removed.
func (c *XMPPClient) SendIQ(ctx context.Context, iq *Element) (*Element, error) {
	return c.StartIQ(iq)(ctx)
}

// StartIQ queues a get/set IQ now (so IQs started one after the other
// leave in that order) and returns a function that waits for the answer, as
// SendIQ does. The wait function must be called exactly once.
func (c *XMPPClient) StartIQ(iq *Element) func(ctx context.Context) (*Element, error) {
	c.mu.Lock()
	conn := c.conn
	if conn == nil {
		defer c.mu.Unlock()
		return c.startIQWhileDown(iq)
	}
	c.mu.Unlock()
	return c.startIQOn(conn, iq)
}

// startIQWhileDown keeps an IQ for the resumption of the stream (if one is
// possible) and waits for its answer as usual. Called with c.mu held.
func (c *XMPPClient) startIQWhileDown(iq *Element) func(ctx context.Context) (*Element, error) {
	return c.startIQWith(iq, func() error {
		b, err := c.encode(iq)
		if err != nil {
			return err
		}
		if !c.sm.queueWhileDown(b) {
			return ErrNotConnected
		}
		return nil
	})
}

func (c *XMPPClient) startIQOn(conn *xmppConn, iq *Element) func(ctx context.Context) (*Element, error) {
	return c.startIQWith(iq, func() error { return c.sendOn(conn, iq) })
}

// startIQWith registers a waiter for iq's answer (giving iq an id if it has
// none), sends it with send, and returns the wait function, which always
// removes the waiter.
func (c *XMPPClient) startIQWith(iq *Element, send func() error) func(ctx context.Context) (*Element, error) {
	id := iq.Attr("id")
	if id == "" {
		id = randomID()
		iq.Set("id", id)
	}
	w := &iqWaiter{to: iq.Attr("to"), ch: make(chan *Element, 1)}
	c.waitMu.Lock()
	c.waiters[id] = w
	c.waitMu.Unlock()
	err := send()
	return func(ctx context.Context) (*Element, error) {
		defer func() {
			c.waitMu.Lock()
			delete(c.waiters, id)
			c.waitMu.Unlock()
		}()
		if err != nil {
			return nil, err
		}
		return c.awaitIQ(ctx, w)
	}
}

func (c *XMPPClient) awaitIQ(ctx context.Context, w *iqWaiter) (*Element, error) {
	t := time.NewTimer(c.opt.ReplyTimeout)
	defer t.Stop()
	select {
	case resp := <-w.ch:
		if resp == nil {
			return nil, ErrNotConnected
		}
		if resp.Attr("type") == "error" {
			return resp, ParseStanzaError(resp)
		}
		return resp, nil
	case <-t.C:
		return nil, fmt.Errorf("iq to %s: %w", w.to, ErrIQTimeout)
	case <-ctx.Done():
		return nil, fmt.Errorf("iq to %s: %w", w.to, ctx.Err())
	}
}

// ErrIQTimeout means no response came within the reply timeout.
var ErrIQTimeout = errors.New("timed out waiting for the response")

func (c *XMPPClient) deliver(resp *Element) {
	id := resp.Attr("id")
	c.waitMu.Lock()
	w := c.waiters[id]
	if w != nil && !sameSender(w.to, resp.Attr("from"), c) {
		w = nil // a response from someone we did not ask: ignore
	}
	if w != nil {
		delete(c.waiters, id)
	}
	c.waitMu.Unlock()
	if w == nil {
		return
	}
	select {
	case w.ch <- resp:
	default:
	}
}

// sameSender checks that a response comes from the entity the request went
// to (the server answers for an empty "to" or our own bare JID).
func sameSender(to, from string, c *XMPPClient) bool {
	if strings.EqualFold(to, from) || to == "" {
		return true
	}
	if from == "" {
		// The server answering on behalf of our own account or itself.
		own := c.opt.Username + "@" + c.opt.Domain
		return strings.EqualFold(to, own) || strings.EqualFold(to, c.opt.Domain)
	}
	return false
}

func (c *XMPPClient) failWaiters() {
	c.waitMu.Lock()
	defer c.waitMu.Unlock()
	for id, w := range c.waiters {
		close(w.ch)
		delete(c.waiters, id)
	}
}

// Stats used by /metrics and /debug.
func (c *XMPPClient) Stats() (connects, disconnects int64) {
	return c.connects.Load(), c.disconnects.Load()
}

// Resumes counts streams resumed with XEP-0198.
func (c *XMPPClient) Resumes() int64 { return c.resumes.Load() }

// randomID returns 16 hex characters of randomness (stanza ids, sids).
func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…(" + strconv.Itoa(len(s)) + " bytes)"
}

// Stream management (XEP-0198) --------------------------------------------

const nsSM = "urn:xmpp:sm:3"

// smMaxQueue bounds the stanzas kept for resending (unacknowledged plus
// queued while the connection is down).
const smMaxQueue = 10000

// smAckEvery is how many unacknowledged stanzas prompt an <r/> (besides the
// one sent with every keepalive ping).
const smAckEvery = 64

// streamMgmt is the XEP-0198 state: counters, the unacknowledged stanzas and
// what is needed to resume. It outlives connections.
type streamMgmt struct {
	mu        sync.Mutex
	offer     bool   // the server advertised sm:3 on the current stream
	enabled   bool   // <enabled/> received
	id        string // resumption id ("" = not resumable)
	max       time.Duration
	in        uint32    // stanzas received since enable
	out       uint32    // stanzas sent since enable (as the server counts them)
	acked     uint32    // last h the server acknowledged
	unacked   [][]byte  // stanzas sent after acked, in order
	gap       [][]byte  // stanzas queued while the connection is down
	lostAt    time.Time // when the connection was lost
	jid       jid.JID
	didResume bool
}

func (m *streamMgmt) offered() { m.mu.Lock(); m.offer = true; m.mu.Unlock() }

func (m *streamMgmt) isEnabled() bool { m.mu.Lock(); defer m.mu.Unlock(); return m.enabled }

// reset forgets everything: the next connection is a new session.
func (m *streamMgmt) reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.offer, m.enabled, m.didResume = false, false, false
	m.id, m.max, m.jid, m.lostAt = "", 0, jid.JID{}, time.Time{}
	m.in, m.out, m.acked = 0, 0, 0
	m.unacked, m.gap = nil, nil
}

func (m *streamMgmt) lost(now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lostAt = now
	m.offer = false
}

// canResume: a resumable session lost less than the server's hibernation
// time ago.
func (m *streamMgmt) canResume() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.id != "" && !m.lostAt.IsZero() && time.Since(m.lostAt) < m.max
}

func (m *streamMgmt) takeResumed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.didResume
	m.didResume = false
	return r
}

func (m *streamMgmt) received() {
	m.mu.Lock()
	if m.enabled {
		m.in++
	}
	m.mu.Unlock()
}

// sent counts a stanza written after <enable/>. It reports when to ask the
// server for an acknowledgement (every smAckEvery stanzas), so the resend
// queue stays short under load.
func (m *streamMgmt) sent(b []byte) (askAck bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.enabled && m.id == "" && !m.offer {
		return false // no stream management on this stream
	}
	m.out++
	if len(m.unacked) < smMaxQueue {
		m.unacked = append(m.unacked, b)
	}
	return m.enabled && len(m.unacked)%smAckEvery == 0
}

// ack drops what the server has acknowledged (h counts modulo 2^32).
func (m *streamMgmt) ack(h uint32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := int(h - m.acked)
	if n < 0 || n > len(m.unacked) {
		n = len(m.unacked)
	}
	// Copy what is left, so acknowledged stanzas are not kept alive by the
	// old array.
	m.unacked = append([][]byte(nil), m.unacked[n:]...)
	m.acked = h
}

// queueWhileDown keeps a stanza sent during a resumable gap.
func (m *streamMgmt) queueWhileDown(b []byte) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.id == "" || len(m.gap) >= smMaxQueue {
		return false
	}
	m.gap = append(m.gap, b)
	return true
}

// resendQueue returns, after a resumption, the unacknowledged stanzas and
// then the ones queued during the gap; they are counted again as they are
// written.
func (m *streamMgmt) resendQueue() [][]byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	q := append(m.unacked, m.gap...)
	m.unacked, m.gap = nil, nil
	m.out = m.acked
	return q
}

// smFeature makes mellium record whether the server offers sm:3; it is not
// negotiated during connection set-up (enable/resume happen after it).
func smFeature() xmpp.StreamFeature {
	return xmpp.StreamFeature{
		Name:      xml.Name{Space: nsSM, Local: "sm"},
		Necessary: xmpp.Authn,
		Parse: func(ctx context.Context, d *xml.Decoder, start *xml.StartElement) (bool, interface{}, error) {
			return false, true, d.Skip()
		},
	}
}

// tryResume asks the server to resume the previous session. It reports
// false (and no error) when a new session must be bound instead.
func (c *XMPPClient) tryResume(s *xmpp.Session) (bool, error) {
	if !c.sm.canResume() {
		c.sm.reset()
		return false, nil
	}
	c.sm.mu.Lock()
	req := NewElement(nsSM, "resume", "h", strconv.FormatUint(uint64(c.sm.in), 10), "previd", c.sm.id)
	prev := c.sm.jid
	c.sm.mu.Unlock()
	if _, err := s.Conn().Write(req.Bytes()); err != nil {
		return false, fmt.Errorf("resume: %w", err)
	}
	r := s.TokenReader()
	defer r.Close()
	for {
		tok, err := r.Token()
		if err != nil {
			return false, fmt.Errorf("resume: %w", err)
		}
		start, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		el, err := readElement(r, start)
		if err != nil {
			return false, fmt.Errorf("resume: %w", err)
		}
		switch {
		case el.Space == nsSM && el.Local == "resumed":
			h, _ := strconv.ParseUint(el.Attr("h"), 10, 32)
			c.sm.ack(uint32(h))
			c.sm.mu.Lock()
			c.sm.didResume = true
			c.sm.lostAt = time.Time{}
			c.sm.mu.Unlock()
			s.UpdateAddr(prev)
			return true, nil
		case el.Space == nsSM && el.Local == "failed":
			c.log.Info("stream resumption refused; starting a new session")
			c.sm.reset()
			c.sm.offered()
			return false, nil
		}
	}
}

// handleSM processes stream management nonzas on a live stream.
func (c *XMPPClient) handleSM(conn *xmppConn, el *Element) {
	switch el.Local {
	case "enabled":
		c.sm.mu.Lock()
		c.sm.enabled = true
		if el.Attr("resume") == "true" || el.Attr("resume") == "1" {
			c.sm.id = el.Attr("id")
			c.sm.jid = conn.jid
			c.sm.max = 60 * time.Second
			if s, err := strconv.Atoi(el.Attr("max")); err == nil && s > 0 {
				c.sm.max = time.Duration(s) * time.Second
			}
		}
		c.sm.mu.Unlock()
		c.log.Debug("stream management enabled", "resumable", el.Attr("id") != "")
	case "r":
		c.sm.mu.Lock()
		h := c.sm.in
		c.sm.mu.Unlock()
		c.enqueue(conn, outItem{b: []byte(`<a xmlns="` + nsSM + `" h="` + strconv.FormatUint(uint64(h), 10) + `"/>`)})
	case "a":
		if h, err := strconv.ParseUint(el.Attr("h"), 10, 32); err == nil {
			c.sm.ack(uint32(h))
		}
	case "failed":
		c.log.Warn("stream management failed", "stanza", el.String())
		c.sm.reset()
	}
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// newSID returns a Jingle session id (64 random bits, base 32 like Jicofo).
func newSID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return strconv.FormatUint(binary.BigEndian.Uint64(b[:]), 32)
}

// bareJID strips the resource and lower-cases.
func bareJID(j string) string {
	if i := strings.IndexByte(j, '/'); i >= 0 {
		j = j[:i]
	}
	return strings.ToLower(j)
}

// nickOf is the resource of a JID (a bridge's brewery nick).
func nickOf(jid string) string { return jid[strings.LastIndexByte(jid, '/')+1:] }
