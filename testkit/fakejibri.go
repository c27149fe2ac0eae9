package testkit

// fakejibri.go: a fake Jitsi Jibri (recorder / live streamer / SIP gateway)
// for focus tests (docs/conference-features.md#jibri). It logs in as a c2s
// client, joins the Jibri brewery MUC publishing <jibri-status>, and answers
// the focus's <jibri action="start|stop"/> IQs the way Jibri does: a
// "pending" result, then a status IQ "on" sent to the requester a little
// later; on stop a result and a status IQ "off". It records nothing but
// signalling: there is no media and no browser.

import (
	"context"
	"errors"
	"slices"
	"time"
)

// Namespaces the fake Jibri speaks.
const (
	nsJibri  = "http://jitsi.org/protocol/jibri"
	nsHealth = "http://jitsi.org/protocol/health"
)

// FakeJibriConfig configures a FakeJibri. Zero values get the defaults noted
// on each field.
type FakeJibriConfig struct {
	Addr     string // c2s address, e.g. Prosody.C2SAddr()
	Domain   string // XMPP host to log in to (default AuthDomain)
	User     string // default "jibri"; the account must exist
	Password string // default "jibripass"
	Resource string // resource to bind; default: the server picks one
	// Brewery is the bare JID of the brewery MUC (default
	// "jibribrewery@"+InternalMUCDomain).
	Brewery string
	Nick    string // occupant nick (default "jibri1")
	// PresenceInterval re-sends the status presence periodically; zero
	// (default) sends it only when it changes, as Jibri does.
	PresenceInterval time.Duration
	// OnDelay is the wait between answering "pending" to a start and sending
	// the status="on" IQ (default 100 ms).
	OnDelay time.Duration
	// ReconnectDelay is the wait between reconnection attempts (default 500 ms).
	ReconnectDelay time.Duration
	// Logf, if set, receives one line per request and connection events.
	Logf func(format string, args ...any)
}

// FakeJibri is a fake Jibri connected to an XMPP server. All methods are
// safe for concurrent use.
type FakeJibri struct {
	cfg FakeJibriConfig

	// breweryMember holds the connection, the brewery membership, ctx and
	// wg, and mu, which guards the fields below too.
	breweryMember

	busy        bool // SetBusy knob
	healthy     bool
	failNext    []string
	session     string // active session id, "" when idle
	sessionFrom string // where status IQs go (the requester)
	on          bool   // status="on" sent for session
	requests    requestLog
	statusResps []*Elem
}

// StartFakeJibri logs in, joins the brewery and publishes its status before
// returning. ctx bounds only this start-up; the Jibri runs (and reconnects
// after connection loss) until Close.
func StartFakeJibri(ctx context.Context, cfg FakeJibriConfig) (*FakeJibri, error) {
	if cfg.Addr == "" {
		return nil, errors.New("testkit: FakeJibriConfig needs Addr")
	}
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&cfg.Domain, AuthDomain)
	def(&cfg.User, "jibri")
	def(&cfg.Password, "jibripass")
	def(&cfg.Brewery, "jibribrewery@"+InternalMUCDomain)
	def(&cfg.Nick, "jibri1")
	if cfg.OnDelay <= 0 {
		cfg.OnDelay = 100 * time.Millisecond
	}
	if cfg.ReconnectDelay <= 0 {
		cfg.ReconnectDelay = 500 * time.Millisecond
	}
	j := &FakeJibri{
		cfg:     cfg,
		healthy: true,
	}
	j.breweryMember = breweryMember{
		addr: cfg.Addr, domain: cfg.Domain, user: cfg.User, password: cfg.Password, resource: cfg.Resource,
		brewery: cfg.Brewery, nick: cfg.Nick,
		reconnectDelay: cfg.ReconnectDelay, presenceInterval: cfg.PresenceInterval,
		name: "fake jibri", logName: "fakejibri", log: cfg.Logf,
		// <jibri-status> goes in every presence, the join included, as
		// jicoco's MucClient adds its extensions; a room it created is
		// accepted as an instant room.
		payload:       j.statusLocked,
		payloadOnJoin: true,
		handleIQ:      j.onIQ,
	}
	if err := j.start(ctx); err != nil {
		return nil, err
	}
	return j, nil
}

// statusLocked builds <jibri-status>.
func (j *FakeJibri) statusLocked() *Elem {
	busy, health := "idle", "healthy"
	if j.busy || j.session != "" {
		busy = "busy"
	}
	if !j.healthy {
		health = "unhealthy"
	}
	return NewElem(nsJibri, "jibri-status").Add(
		NewElem("", "busy-status", "status", busy),
		NewElem(nsHealth, "health-status", "status", health),
	)
}

func (j *FakeJibri) onIQ(c *Client, iq *Elem) {
	var payload *Elem
	if len(iq.Kids) > 0 {
		payload = iq.Kids[0]
	}
	switch {
	case payload != nil && payload.Space == nsPing && payload.Local == "ping":
		c.Send(fbResult(iq))
		return
	case payload == nil || payload.Space != nsJibri || payload.Local != "jibri" || iq.Attr("type") != "set":
		c.Send(fbError(iq, "feature-not-implemented", "", "", ""))
		return
	}
	j.requests.add(fbClone(iq))
	from := iq.Attr("from")
	switch action := payload.Attr("action"); action {
	case "start":
		j.onStart(c, iq, payload, from)
	case "stop":
		j.onStop(c, iq, from)
	default:
		j.logf("jibri IQ with action %q from %s", action, from)
		c.Send(fbError(iq, "bad-request", "", "", ""))
	}
}

func (j *FakeJibri) onStart(c *Client, iq, req *Elem, from string) {
	sid := req.Attr("session_id")
	j.mu.Lock()
	var reason string
	switch {
	case len(j.failNext) > 0:
		reason = j.failNext[0]
		j.failNext = j.failNext[1:]
	case j.busy || j.session != "":
		reason = "busy"
	}
	if reason != "" {
		j.mu.Unlock()
		j.logf("start %s from %s: off (%s)", sid, from, reason)
		c.Send(fbResult(iq).Add(NewElem(nsJibri, "jibri", "status", "off",
			"failure_reason", reason, "should_retry", "true")))
		return
	}
	j.session, j.sessionFrom, j.on = sid, from, false
	j.mu.Unlock()
	j.logf("start %s (mode %s, room %s) from %s: pending", sid, req.Attr("recording_mode"), req.Attr("room"), from)
	c.Send(fbResult(iq).Add(NewElem(nsJibri, "jibri", "status", "pending")))
	j.publish()
	j.wg.Add(1)
	go func() {
		defer j.wg.Done()
		select {
		case <-j.ctx.Done():
			return
		case <-time.After(j.cfg.OnDelay):
		}
		j.mu.Lock()
		if j.session != sid || j.on {
			j.mu.Unlock()
			return // stopped (or restarted) meanwhile
		}
		j.on = true
		j.mu.Unlock()
		j.sendStatus(from, "on", sid)
	}()
}

func (j *FakeJibri) onStop(c *Client, iq *Elem, from string) {
	j.mu.Lock()
	sid, to := j.session, j.sessionFrom
	j.session, j.sessionFrom, j.on = "", "", false
	j.mu.Unlock()
	j.logf("stop %s from %s", sid, from)
	c.Send(fbResult(iq).Add(NewElem(nsJibri, "jibri", "status", "off")))
	if sid == "" {
		return
	}
	j.publish()
	if to == "" {
		to = from
	}
	j.wg.Add(1)
	go func() {
		defer j.wg.Done()
		j.sendStatus(to, "off", sid)
	}()
}

// sendStatus sends a status IQ set to the focus and records its answer,
// whatever it is. It blocks until the answer (or 10 s): call it on its own
// goroutine.
func (j *FakeJibri) sendStatus(to, status, sid string) {
	j.mu.Lock()
	c := j.client
	j.mu.Unlock()
	if c == nil {
		return
	}
	iq := NewElem("", "iq", "type", "set", "to", to).Add(
		NewElem(nsJibri, "jibri", "status", status, "session_id", sid))
	ctx, cancel := context.WithTimeout(j.ctx, 10*time.Second)
	defer cancel()
	resp, err := c.SendIQ(ctx, iq)
	j.logf("status %s for %s to %s: %v", status, sid, to, err)
	if resp != nil {
		j.mu.Lock()
		j.statusResps = append(j.statusResps, resp)
		j.mu.Unlock()
	}
}

// Knobs -----------------------------------------------------------------------

// SetBusy forces busy-status="busy" (true) or lets it follow the session
// (false), publishing the change at once. A busy Jibri answers a start with
// status="off" failure_reason="busy" should_retry="true".
func (j *FakeJibri) SetBusy(v bool) {
	j.mu.Lock()
	j.busy = v
	j.mu.Unlock()
	j.publish()
}

// SetHealthy publishes health-status healthy or unhealthy at once.
func (j *FakeJibri) SetHealthy(v bool) {
	j.mu.Lock()
	j.healthy = v
	j.mu.Unlock()
	j.publish()
}

// FailNextStart makes the next start request be answered with a result
// carrying status="off" failure_reason=reason should_retry="true" instead of
// "pending" (calls queue up).
func (j *FakeJibri) FailNextStart(failureReason string) {
	j.mu.Lock()
	j.failNext = append(j.failNext, failureReason)
	j.mu.Unlock()
}

// Leave sends unavailable presence to the brewery and stops publishing; the
// connection stays up and IQs are still answered.
func (j *FakeJibri) Leave() { j.leave() }

// Rejoin joins the brewery again after Leave.
func (j *FakeJibri) Rejoin() error { return j.rejoin() }

// Close leaves, disconnects and stops every goroutine of the Jibri.
func (j *FakeJibri) Close() { j.close() }

// Introspection ---------------------------------------------------------------

// JID is the Jibri's brewery occupant JID (brewery/nick), where the focus
// sends start and stop.
func (j *FakeJibri) JID() string { return j.jid() }

// Joined reports whether the Jibri is in the brewery now.
func (j *FakeJibri) Joined() bool { j.mu.Lock(); defer j.mu.Unlock(); return j.joined && !j.left }

// Requests returns every <jibri/> IQ set received, in arrival order
// (including failed ones).
func (j *FakeJibri) Requests() []*Elem { return j.requests.all() }

// StatusResponses returns the focus's answers to the status IQs sent so far.
func (j *FakeJibri) StatusResponses() []*Elem {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.statusResps)
}

// WaitRequest returns the first <jibri/> IQ received so far or later for
// which match returns true (a nil match accepts any), or ctx's error.
func (j *FakeJibri) WaitRequest(ctx context.Context, match func(*Elem) bool) (*Elem, error) {
	return j.requests.wait(ctx, match, "a jibri request at "+j.cfg.Nick)
}

// Recording returns the active session id ("" when idle) and whether the
// status="on" IQ has been sent for it.
func (j *FakeJibri) Recording() (sessionID string, on bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.session, j.on
}
