package main

// focus.go: conference requests (XMPP IQ and HTTP), the registry of live
// conferences, and routing of room stanzas to the conference that owns them.
//
// The registry is the only shared state here; it is guarded by a mutex that is
// never held across a network write. Everything about one conference happens
// on that conference's goroutine (conference.go).

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// ConferenceRequest is a client's request to start or join a conference,
// from the <conference/> IQ or POST /conference-request/v1.
type ConferenceRequest struct {
	Room       string
	From       string // the real sender (after client_proxy decoding); "" over HTTP
	MachineUID string
	SessionID  string
	Properties map[string]string

	// RateKey is whom the request counts against for the per-sender limit
	// (burst.go); "" means From's bare JID.
	RateKey string
}

// ConferenceResponse is what the client needs to join.
type ConferenceResponse struct {
	Room       string
	Ready      bool
	FocusJID   string
	SessionID  string      // authentication session, when the sender authenticated
	Identity   string      // its authenticated bare JID
	Properties [][2]string // in the order Jicofo sends them
}

// requestWait bounds how long a request waits for the room to be joined;
// the client waits forever on silence, so it always gets an answer.
const requestWait = 10 * time.Second

// Focus owns the conferences.
type Focus struct {
	cfg     Config
	x       xmppLink
	bx      xmppLink // the bridges' connection: x, or the service connection
	bridges *Bridges
	feats   []Feature // the optional parts (features.go)
	// linksBridges: a feature links bridges, a conference may use several.
	linksBridges bool
	// Filled by the features' Setup, read-only once Run starts.
	confIQ      map[string]func(c *Conference, m *Participant, iq *Element) // by namespace
	focusIQ     map[string]func(iq, p *Element) *Element                    // by "local/type"
	roomDomains []func(domain string) bool                                  // MUC domains besides the conference one
	messages    []func(*Element) bool                                       // message handlers: true = taken
	components  map[string]func(addr string) bool                           // Jitsi component types: true = address taken
	pinned      func(room string) string                                    // the bridge version room is pinned to, or ""
	log         *slog.Logger
	metrics     *Metrics
	events      *EventLog

	mu      sync.Mutex
	confs   map[string]*Conference // by room bare JID, lower-case
	closing bool
	offers  sync.Map // Features → [2][]*Element{offer, colibri media} (offerFor)
	// idleSince is when the last conference ended (see releaseIfIdle).
	idleSince time.Time
	limiter   map[string]*rateWindow // conference requests per sender
	total     tokenBucket            // conference requests from everyone (burst.go)
	caps      *capsCache
	budgets   *budgets      // what each participant may still cause (limits.go)
	ext       featureStates // the features' own state (features.go)
	wg        sync.WaitGroup
}

// NewFocus returns a focus with its IQ, message and session handlers on x
// (Main routes presence to it).
func NewFocus(cfg Config, x *XMPPClient, b *Bridges, m *Metrics, events *EventLog, log *slog.Logger) *Focus {
	f := &Focus{
		cfg: cfg, x: x, bx: x, bridges: b, log: log, metrics: m, events: events,
		confs:   map[string]*Conference{},
		limiter: map[string]*rateWindow{},
		caps:    newCapsCache(1000),
		budgets: newBudgets(),
		confIQ:  map[string]func(*Conference, *Participant, *Element){},
		focusIQ: map[string]func(iq, p *Element) *Element{},
		// Configured component addresses hold from the start (Setup);
		// discovery (at each login) fills in the others.
		components: map[string]func(addr string) bool{},
	}
	f.useFeatures(features())
	x.HandleIQ(nsFocus, f.handleFocusIQ)
	x.HandleIQ(nsJingle, f.routeToConference)
	for _, ns := range []string{nsMuteAudio, nsMuteVideo, nsMuteDesktop} {
		x.HandleIQ(ns, f.routeToConference)
	}
	x.OnSession(f.onSession)
	x.HandleMessage(f.handleMessage)
	b.Subscribe(f.onBridgeEvent)
	return f
}

// handleFocusIQ answers the <conference/> IQ. It runs on the reader
// goroutine, so the waiting happens on a goroutine of its own.
func (f *Focus) handleFocusIQ(iq *Element) {
	p := iq.Payload()
	sender, err := requestSender(iq.Attr("from"), f.cfg.XMPP.ClientProxyDomain())
	if err != nil {
		f.log.Info("refused a focus request", "from", iq.Attr("from"), "err", err)
		f.x.Send(ErrorIQ(iq, Errorf("bad-request", "%v", err)))
		return
	}
	if h := f.focusIQ[p.Local+"/"+iq.Attr("type")]; h != nil {
		f.x.Send(h(iq, p))
		return
	}
	switch {
	case p.Local != "conference" || iq.Attr("type") != "set":
		f.x.Send(ErrorIQ(iq, Errorf("feature-not-implemented", "unsupported focus request %q", p.Local)))
		return
	}
	req := ConferenceRequest{
		Room:       p.Attr("room"),
		From:       sender,
		MachineUID: p.Attr("machine-uid"),
		SessionID:  p.Attr("session-id"),
		Properties: map[string]string{},
	}
	for _, prop := range p.All(nsFocus, "property") {
		if len(req.Properties) < 64 {
			req.Properties[prop.Attr("name")] = prop.Attr("value")
		}
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), requestWait)
		defer cancel()
		resp, err := f.Request(ctx, req)
		if err != nil {
			var se *StanzaError
			if !errors.As(err, &se) {
				se = Errorf("internal-server-error", "%v", err)
			}
			f.x.Send(ErrorIQ(iq, se))
			return
		}
		el := NewElement(nsFocus, "conference", "room", resp.Room, "ready", fmt.Sprint(resp.Ready), "focusjid", resp.FocusJID)
		el.Set("session-id", resp.SessionID).Set("identity", resp.Identity)
		for _, kv := range resp.Properties {
			el.Add(NewElement(nsFocus, "property", "name", kv[0], "value", kv[1]))
		}
		f.x.Send(ResultIQ(iq, el))
	}()
}

// Request creates or reuses the conference and waits until the focus has
// joined its room: the client joins only after ready="true", and Prosody
// refuses the join when the room does not exist yet (rooms are restricted).
func (f *Focus) Request(ctx context.Context, req ConferenceRequest) (ConferenceResponse, error) {
	f.metrics.ConferenceRequests.Inc()
	room, err := f.validateRoom(req.Room)
	if err != nil {
		f.metrics.ConferenceRequestsFailed.Inc()
		return ConferenceResponse{}, err
	}
	if busy, err := f.admitRequest(req); err != nil {
		f.metrics.ConferenceRequestsFailed.Inc()
		f.metrics.ConferenceRequestsRefused.Inc()
		f.log.Info("conference request refused: rate limit", "room", room, "from", req.From, "err", err)
		return ConferenceResponse{}, err
	} else if busy {
		return f.notReady(room, "total request rate"), nil
	}
	var a Admission
	if err := f.hookRequest(room, req, &a); err != nil {
		f.metrics.ConferenceRequestsFailed.Inc()
		return ConferenceResponse{}, err
	}
	if up, _ := f.x.Connected(); !up {
		f.metrics.ConferenceRequestsFailed.Inc()
		return ConferenceResponse{}, Errorf("service-unavailable", "the focus is not connected to the XMPP server")
	}
	f.mu.Lock()
	if f.closing {
		f.mu.Unlock()
		f.metrics.ConferenceRequestsFailed.Inc()
		return ConferenceResponse{}, Errorf("service-unavailable", "the focus is shutting down")
	}
	conf := f.confs[room]
	if conf == nil && a.NoStart != nil {
		f.mu.Unlock()
		f.metrics.ConferenceRequestsFailed.Inc()
		return ConferenceResponse{}, a.NoStart()
	}
	if conf == nil && f.cfg.Conference.MaxPendingJoins > 0 && f.startingLocked() >= f.cfg.Conference.MaxPendingJoins {
		// Starting more conferences at once would only make every one of
		// them late: "not ready" now, the client comes back.
		f.mu.Unlock()
		return f.notReady(room, "conferences being started"), nil
	}
	if conf == nil {
		f.metrics.ConferenceRequestsNew.Inc()
		f.log.Info("conference requested", "room", room, "from", req.From, "authenticated", a.Authenticated)
		conf = newConference(f, room, req.Properties)
		f.confs[room] = conf
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			conf.run()
			f.forget(conf)
		}()
	}
	f.mu.Unlock()
	conf.post(event{kind: evRequest})

	select {
	case <-conf.joined:
	case <-conf.done:
		f.metrics.ConferenceRequestsFailed.Inc()
		return ConferenceResponse{}, Errorf("internal-server-error", "conference %s could not be started: %v", room, conf.stopReason())
	case <-ctx.Done():
		f.metrics.ConferenceRequestsFailed.Inc()
		return ConferenceResponse{}, Errorf("internal-server-error", "timed out joining the conference room %s", room)
	}
	select {
	case <-conf.done: // joined, but ended since: the client would find no focus
		f.metrics.ConferenceRequestsFailed.Inc()
		return ConferenceResponse{}, Errorf("internal-server-error", "conference %s ended: %v", room, conf.stopReason())
	default:
	}
	resp := ConferenceResponse{Room: room, Ready: true, FocusJID: f.cfg.FocusJID()}
	if len(a.Properties) == 0 || a.Properties[0][0] != "authentication" {
		resp.Properties = [][2]string{{"authentication", "false"}}
	}
	resp.Properties = append(resp.Properties, a.Properties...)
	resp.Properties = append(resp.Properties, [2]string{"visitors-supported", "false"})
	for _, joined := range a.Joined {
		joined(conf, &resp)
	}
	return resp, nil
}

func (f *Focus) forget(c *Conference) {
	f.mu.Lock()
	if f.confs[c.room] == c {
		delete(f.confs, c.room)
	}
	if len(f.confs) == 0 {
		f.idleSince = time.Now()
		time.AfterFunc(idleReleaseAfter, f.releaseIfIdle)
	}
	f.mu.Unlock()
}

// lookup returns the conference owning room (bare JID).
func (f *Focus) lookup(room string) *Conference {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.confs[roomKey(room)]
}

// HandlePresence routes room presence to its conference. It returns false
// for presence that is not from a conference room.
func (f *Focus) HandlePresence(p *Element) bool {
	if f.acceptProxySubscription(p) {
		return true
	}
	from := p.Attr("from")
	slash := strings.IndexByte(from, '/')
	if slash < 0 {
		return false
	}
	c := f.lookup(from[:slash])
	if c == nil {
		return false
	}
	c.post(event{kind: evPresence, el: p})
	return true
}

// routeToConference hands an IQ from a room occupant to its conference; an
// IQ from anyone else is refused without touching any conference.
func (f *Focus) routeToConference(iq *Element) {
	from := iq.Attr("from")
	slash := strings.IndexByte(from, '/')
	var c *Conference
	if slash > 0 {
		c = f.lookup(from[:slash])
	}
	if c == nil {
		p := iq.Payload()
		if p.Space == nsJingle {
			f.x.Send(ErrorIQ(iq, Errorf("item-not-found", "unknown session")))
		} else {
			f.x.Send(ErrorIQ(iq, Errorf("item-not-found", "no conference for %s", from)))
		}
		return
	}
	if !c.post(event{kind: evIQ, el: iq}) {
		f.x.Send(ErrorIQ(iq, Errorf("resource-constraint", "conference is overloaded")))
	}
}

func (f *Focus) onSession(up bool) {
	if up {
		go f.discoverComponents()
		return
	}
	// Without stream resumption the MUC state is gone: every conference
	// ends; clients re-send their conference requests and rejoin.
	for _, c := range f.all() {
		c.postWait(event{kind: evStop, reason: "XMPP connection lost"})
	}
}

func (f *Focus) onBridgeEvent(ev BridgeEvent) {
	for _, c := range f.all() {
		c.postWait(event{kind: evBridge, bridge: ev}) // never dropped: a lost bridge must be acted on
	}
}

func (f *Focus) all() []*Conference {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]*Conference, 0, len(f.confs))
	for _, c := range f.confs {
		out = append(out, c)
	}
	return out
}

// Shutdown refuses new requests and ends every conference cleanly
// (terminate sessions, expire bridge allocations, leave rooms), waiting up to
// the context deadline.
func (f *Focus) Shutdown(ctx context.Context) {
	f.mu.Lock()
	f.closing = true
	f.mu.Unlock()
	for _, c := range f.all() {
		c.postWait(event{kind: evStop, reason: "focus shutting down", terminate: true})
	}
	done := make(chan struct{})
	go func() { f.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		f.log.Warn("conferences did not all end before the shutdown deadline")
	}
}

// otherRoomDomain: a feature accepts conference requests on domain.
func (f *Focus) otherRoomDomain(domain string) bool {
	for _, ok := range f.roomDomains {
		if ok(domain) {
			return true
		}
	}
	return false
}

// pinnedFor is the bridge version room must use, or "" (any): a registry
// slot that a feature fills in its Setup (bridgepolicy.go).
func (f *Focus) pinnedFor(room string) string {
	if f.pinned == nil {
		return ""
	}
	return f.pinned(room)
}

// handleMessage offers a message to the features' handlers.
func (f *Focus) handleMessage(msg *Element) {
	for _, h := range f.messages {
		if h(msg) {
			return
		}
	}
}
