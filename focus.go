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
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"mellium.im/xmpp/jid"
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
	x       *XMPPClient
	bx      *XMPPClient // the bridges' connection: x, or the service connection
	bridges *Bridges
	log     *slog.Logger
	metrics *Metrics
	events  *EventLog

	mu      sync.Mutex
	confs   map[string]*Conference // by room bare JID, lower-case
	closing bool
	offers  sync.Map // Features → [2][]*Element{offer, colibri media} (offerFor)
	// idleSince is when the last conference ended (see releaseIfIdle).
	idleSince time.Time
	pins      map[string]Pin         // by room
	limiter   map[string]*rateWindow // conference requests per sender
	total     tokenBucket            // conference requests from everyone (burst.go)
	caps      *capsCache
	budgets   *budgets   // what each participant may still cause (limits.go)
	auth      *authority // nil when authentication is off
	jibris    *Jibris    // nil when no Jibri brewery is configured
	sipJibris *Jibris    // the SIP gateway Jibris; nil when not configured
	jigasis   *Jigasis   // nil when no Jigasi brewery is configured
	// recordings maps a recording session id to its conference, for the
	// Jibris' status reports.
	recordings   sync.Map
	avModAddr    atomic.Value // string: the av_moderation component's address
	metadataAddr atomic.Value // string: the room_metadata component's address
	// breakoutDomain is the MUC domain of breakout rooms (string).
	breakoutDomain atomic.Value
	wg             sync.WaitGroup
}

// NewFocus returns a focus; Main registers its handlers on the XMPP client.
func NewFocus(cfg Config, x *XMPPClient, b *Bridges, m *Metrics, events *EventLog, log *slog.Logger) *Focus {
	f := &Focus{
		cfg: cfg, x: x, bx: x, bridges: b, log: log, metrics: m, events: events,
		confs:   map[string]*Conference{},
		limiter: map[string]*rateWindow{},
		caps:    newCapsCache(1000),
		budgets: newBudgets(),
		auth:    newAuthority(cfg.Auth),
	}
	// Configured component addresses hold from the start; discovery (at
	// each login) fills in the others.
	f.avModAddr.Store(cfg.XMPP.AVModerationComponent)
	f.metadataAddr.Store(cfg.XMPP.RoomMetadataComponent)
	f.breakoutDomain.Store(cfg.XMPP.BreakoutMUCDomain)
	x.HandleIQ(nsFocus, f.handleFocusIQ)
	x.HandleIQ(nsJingle, f.routeToConference)
	x.HandleIQ(nsJibri, f.routeJibriIQ)
	x.HandleIQ(nsRayo, f.routeToConference)
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
	switch {
	case p.Local == "login-url" && iq.Attr("type") == "get":
		f.x.Send(f.loginURL(iq, p))
		return
	case p.Local == "logout" && iq.Attr("type") == "set":
		f.x.Send(f.logout(iq, p))
		return
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

// requestSender is who really sent a focus request. Jitsi's
// mod_client_proxy component (xmpp.client-proxy) forwards a client's IQ from
// its own domain with the client's full JID as the resource, so everything
// that depends on the sender (authentication, moderator rights, the rate
// limit, logs) must use that JID, never the proxy's. The reply still goes to
// "from": the component turns it back. An IQ from the proxy domain that
// names no valid sender is an error, not the proxy speaking for itself.
func requestSender(from, clientProxy string) (string, error) {
	if clientProxy == "" {
		return from, nil
	}
	j, err := jid.Parse(from)
	if err != nil || !strings.EqualFold(j.Domainpart(), clientProxy) || j.Localpart() != "" {
		return from, nil
	}
	real, err := jid.Parse(j.Resourcepart())
	if err != nil || j.Resourcepart() == "" || real.Domainpart() == "" {
		return "", fmt.Errorf("a request through the client proxy %s that names no sender (%q)", clientProxy, j.Resourcepart())
	}
	return real.String(), nil
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
	var session *authSession
	if f.auth != nil && !f.isBreakoutRoom(room) { // breakout rooms skip authentication
		if session, err = f.auth.check(req); err != nil {
			f.metrics.ConferenceRequestsFailed.Inc()
			f.log.Info("conference request refused: authentication", "room", room, "from", req.From, "err", err)
			return ConferenceResponse{}, err
		}
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
	if conf == nil && f.auth != nil && session == nil && !f.isBreakoutRoom(room) {
		// Only authenticated users may start a conference; guests join
		// one that is already running (Jicofo's secure domain).
		f.mu.Unlock()
		f.metrics.ConferenceRequestsFailed.Inc()
		f.log.Info("conference request refused: only authenticated users start conferences", "room", room, "from", req.From)
		return ConferenceResponse{}, Errorf("not-authorized", "not authorized user domain")
	}
	if conf == nil && f.cfg.Conference.MaxPendingJoins > 0 && f.startingLocked() >= f.cfg.Conference.MaxPendingJoins {
		// Starting more conferences at once would only make every one of
		// them late: "not ready" now, the client comes back.
		f.mu.Unlock()
		return f.notReady(room, "conferences being started"), nil
	}
	if conf == nil {
		f.metrics.ConferenceRequestsNew.Inc()
		f.log.Info("conference requested", "room", room, "from", req.From, "authenticated", session != nil)
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
	if f.auth == nil {
		resp.Properties = [][2]string{{"authentication", "false"}}
	} else {
		resp.Properties = [][2]string{{"authentication", "true"}, {"externalAuth", fmt.Sprint(f.auth.jwt)}}
		if session != nil {
			resp.SessionID, resp.Identity = session.id, session.identity
			conf.post(event{kind: evAuthenticated, reason: session.identity})
		}
	}
	if f.jigasis != nil {
		resp.Properties = append(resp.Properties, [2]string{"sipGatewayEnabled", "true"})
	}
	resp.Properties = append(resp.Properties, [2]string{"visitors-supported", "false"})
	return resp, nil
}

// Pin keeps a room's new conferences on bridges of one version (Jicofo's
// /pin, docs/bridges.md#versions-and-pinning), for trying a bridge release on one meeting.
type Pin struct {
	Room    string    `json:"conferenceId"`
	Version string    `json:"jvbVersion"`
	Expires time.Time `json:"expiresAt"`
}

// maxPinDuration bounds a pin; a forgotten one must not outlive a release.
const maxPinDuration = 7 * 24 * time.Hour

// PinVersion pins room to bridge version for d (replacing an earlier pin).
// While it is in force, a conference of the room that has no bridge yet (or
// lost them all) starts on a bridge of that version; once it has bridges,
// their version rules, as for any conference.
func (f *Focus) PinVersion(room, version string, d time.Duration) error {
	room, err := f.validateRoom(room)
	if err != nil {
		return err
	}
	version = strings.TrimSpace(version)
	if version == "" || len(version) > 128 {
		return Errorf("bad-request", "jvbVersion must be a bridge version such as 2.3-61-g814bffd6")
	}
	if d <= 0 || d > maxPinDuration {
		return Errorf("bad-request", "durationMinutes must be between 1 and %d", int(maxPinDuration.Minutes()))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.pins == nil {
		f.pins = map[string]Pin{}
	}
	f.pins[room] = Pin{Room: room, Version: version, Expires: time.Now().Add(d)}
	f.log.Info("room pinned to a bridge version", "room", room, "version", version, "for", d)
	return nil
}

// Unpin removes room's pin; false when there was none.
func (f *Focus) Unpin(room string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	room = roomKey(room)
	_, ok := f.pins[room]
	delete(f.pins, room)
	return ok
}

// Pins lists the pins in force, by room.
func (f *Focus) Pins() []Pin {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []Pin{}
	now := time.Now()
	for room, p := range f.pins {
		if now.After(p.Expires) {
			delete(f.pins, room)
			continue
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Room < out[j].Room })
	return out
}

// pinnedVersion is the version room is pinned to now, or "": looked up at
// every bridge selection, so expiry and removal reach running conferences.
func (f *Focus) pinnedVersion(room string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p, ok := f.pins[room]; ok && time.Now().Before(p.Expires) {
		return p.Version
	}
	return ""
}

// offerFor is the offer for a participant with features f, and the
// Colibri2 media that mirror it: built once per feature set (the codec
// configuration is fixed) and shared. Both are read-only: builders copy
// what they change.
func (f *Focus) offerFor(feat Features) (offer, media []*Element) {
	if v, ok := f.offers.Load(feat); ok {
		o := v.([2][]*Element)
		return o[0], o[1]
	}
	offer = BuildOffer(f.cfg.Codec, feat)
	media = ColibriMedia(offer)
	f.offers.Store(feat, [2][]*Element{offer, media})
	return offer, media
}

// validateRoom checks the room JID: a bare JID in the conference MUC domain,
// of sane length and characters. It returns the canonical form: the node
// folded as Prosody folds it (nodeprep), the domain lower-cased.
func (f *Focus) validateRoom(room string) (string, error) {
	if room == "" {
		return "", Errorf("bad-request", "no 'room' specified")
	}
	if len(room) > 256 {
		return "", Errorf("bad-request", "invalid room name: longer than 256 characters")
	}
	at := strings.LastIndexByte(room, '@')
	if at <= 0 {
		return "", Errorf("bad-request", "invalid room name %q: expected room@%s", room, f.cfg.XMPP.MUCDomain)
	}
	j, err := jid.Parse(room)
	if err != nil || j.Resourcepart() != "" || strings.ContainsAny(room[:at], "@/\"&'<> \t\r\n") {
		return "", Errorf("bad-request", "invalid room name %q", room)
	}
	if !strings.EqualFold(j.Domainpart(), f.cfg.XMPP.MUCDomain) && !f.isBreakoutDomain(j.Domainpart()) {
		return "", Errorf("not-allowed", "room %q is not in the conference domain %s", room, f.cfg.XMPP.MUCDomain)
	}
	// One conference per room as Prosody names it, whatever the spelling.
	canon, err := canonicalRoom(room[:at] + "@" + j.Domainpart())
	if err != nil {
		return "", Errorf("bad-request", "invalid room name %q: %v", room, err)
	}
	return canon, nil
}

// isBreakoutDomain: breakout rooms live on their own MUC (Jitsi's
// breakout_rooms component); their conference requests are accepted there.
func (f *Focus) isBreakoutDomain(domain string) bool {
	b, _ := f.breakoutDomain.Load().(string)
	return b != "" && strings.EqualFold(domain, b)
}

// hasBreakouts reports whether breakout conferences of main are running.
func (f *Focus) hasBreakouts(main string) bool {
	for _, c := range f.all() {
		if m, _ := c.mainRoom.Load().(string); m == main && c != f.lookup(main) {
			select {
			case <-c.done:
			default:
				return true
			}
		}
	}
	return false
}

// isBreakoutRoom reports whether room (a bare JID) is a breakout room.
func (f *Focus) isBreakoutRoom(room string) bool {
	at := strings.LastIndexByte(room, '@')
	return at > 0 && f.isBreakoutDomain(room[at+1:])
}

// allowRequest is a per-sender sliding-window rate limit.
func (f *Focus) allowRequest(sender string) bool {
	limit := f.cfg.Conference.MaxConferenceRequests
	if limit <= 0 {
		return true
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	w := f.limiter[sender]
	if w == nil {
		if len(f.limiter) > 10000 { // bounded: forget idle senders
			for k, v := range f.limiter {
				if now.Sub(v.last) > time.Minute {
					delete(f.limiter, k)
				}
			}
		}
		w = &rateWindow{}
		f.limiter[sender] = w
	}
	return w.allow(now, time.Minute, limit, 0)
}

// rateWindow counts events in a sliding window, optionally with a minimum
// gap between two accepted events.
type rateWindow struct {
	times []time.Time
	last  time.Time
}

func (w *rateWindow) allow(now time.Time, window time.Duration, max int, minGap time.Duration) bool {
	kept := w.times[:0]
	for _, t := range w.times {
		if now.Sub(t) < window {
			kept = append(kept, t)
		}
	}
	w.times = kept
	if len(w.times) >= max || (minGap > 0 && !w.last.IsZero() && now.Sub(w.last) < minGap) {
		return false
	}
	w.times = append(w.times, now)
	w.last = now
	return true
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

// idleReleaseAfter is how long the focus must have had no conference before
// it gives memory back to the system.
const idleReleaseAfter = 5 * time.Second

// releaseIfIdle returns the memory the last conferences used to the
// operating system once the focus has been idle for idleReleaseAfter. Go
// would do it too, but over minutes; on a Raspberry Pi shared with Prosody
// and a bridge the memory is better back at once. It costs one collection.
func (f *Focus) releaseIfIdle() {
	f.mu.Lock()
	idle := len(f.confs) == 0 && !f.idleSince.IsZero() && time.Since(f.idleSince) >= idleReleaseAfter
	f.mu.Unlock()
	if idle {
		debug.FreeOSMemory()
	}
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

// acceptProxySubscription approves the subscription Jitsi's client_proxy
// component asks for when it loads: it learns where the focus is from the
// focus's presence. The installers put that subscription in the focus's
// roster beforehand, and Prosody then answers for the focus; without it the
// request reaches the focus, which accepts it from the configured proxy
// domain only (any other subscription request is ignored).
func (f *Focus) acceptProxySubscription(p *Element) bool {
	proxy := f.cfg.XMPP.ClientProxyDomain()
	if p.Attr("type") != "subscribe" || proxy == "" || !strings.EqualFold(bareJID(p.Attr("from")), proxy) {
		return false
	}
	f.log.Info("accepting the client proxy's presence subscription", "proxy", proxy)
	f.x.Send(NewElement(nsClient, "presence", "type", "subscribed", "to", proxy))
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
		c.post(event{kind: evBridge, bridge: ev})
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

// Snapshots returns every conference's state (for /debug and the status
// page), sorted by room.
func (f *Focus) Snapshots(ctx context.Context) []*ConferenceSnapshot {
	var out []*ConferenceSnapshot
	for _, c := range f.all() {
		if s := c.Snapshot(ctx); s != nil {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Room < out[j].Room })
	return out
}

// Authentication ------------------------------------------------------------

// authority is Jicofo's XMPP-domain (and JWT) authentication: users logged
// in on the authenticated domain (Prosody checked their password or token)
// get an authentication session; only they may start conferences and they
// are made moderators. Guests (another domain, e.g. guest.<domain>) may
// only join running conferences.
type authority struct {
	domain   string
	jwt      bool
	lifetime time.Duration

	mu       sync.Mutex
	sessions map[string]*authSession // by session id
	byUser   map[string]*authSession // by bound full JID
}

type authSession struct {
	id, machineUID, identity string
	user                     string // the full JID the session is bound to (lower-case)
	lastUsed                 time.Time
}

func newAuthority(c AuthConfig) *authority {
	if c.Type == "none" || c.Type == "" {
		return nil
	}
	a := &authority{domain: strings.ToLower(c.LoginDomain), jwt: c.Type == "jwt", lifetime: c.Lifetime.Duration, sessions: map[string]*authSession{}, byUser: map[string]*authSession{}}
	if a.jwt {
		a.lifetime = time.Minute // a token is checked again at the next login
	}
	return a
}

func sessionInvalid(text string) *StanzaError {
	se := Errorf("not-acceptable", "%s", text)
	se.App = append(se.App, NewElement(nsFocus, "session-invalid"))
	return se
}

// bareJID strips the resource and lower-cases.
func bareJID(j string) string {
	if i := strings.IndexByte(j, '/'); i >= 0 {
		j = j[:i]
	}
	return strings.ToLower(j)
}

// check returns the sender's authentication session: the one named by the
// request (which must be known and from the same machine), or a new one when
// the sender is logged in on the authenticated domain. Nil means a guest.
func (a *authority) check(req ConferenceRequest) (*authSession, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := time.Now()
	for id, s := range a.sessions {
		if now.Sub(s.lastUsed) > a.lifetime {
			delete(a.sessions, id)
			delete(a.byUser, s.user)
		}
	}
	if req.SessionID != "" {
		s := a.sessions[req.SessionID]
		switch {
		case s == nil:
			return nil, sessionInvalid("invalid session")
		case s.machineUID == "" || s.machineUID != req.MachineUID:
			return nil, sessionInvalid("machine UID mismatch or empty")
		}
		s.lastUsed = now
		a.bind(s, req.From) // e.g. a guest connection using the host's login
		return s, nil
	}
	bare := bareJID(req.From)
	at := strings.LastIndexByte(bare, '@')
	if req.From == "" || at < 0 || bare[at+1:] != a.domain {
		return nil, nil // a guest
	}
	if req.MachineUID == "" {
		return nil, Errorf("not-acceptable", "Missing mandatory attribute 'machine-uid'")
	}
	if len(a.sessions) >= 100000 {
		return nil, Errorf("resource-constraint", "too many authentication sessions")
	}
	s := &authSession{id: newUUID(), machineUID: req.MachineUID, identity: bare, lastUsed: now}
	a.sessions[s.id] = s
	a.bind(s, req.From)
	return s, nil
}

// bind ties a session to the full JID that used it last: that occupant is
// the authenticated one (Jicofo binds the session to the sender).
func (a *authority) bind(s *authSession, from string) {
	if from == "" {
		return
	}
	delete(a.byUser, s.user)
	s.user = strings.ToLower(from)
	a.byUser[s.user] = s
}

// authenticated reports whether a real JID belongs to an authenticated user.
func (a *authority) authenticated(realJID string) bool {
	if a == nil {
		return false
	}
	bare := bareJID(realJID)
	if at := strings.LastIndexByte(bare, '@'); at >= 0 && bare[at+1:] == a.domain {
		return true // logged in on the authenticated domain
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.byUser[strings.ToLower(realJID)] != nil
}

// loginURL answers <login-url/>: where the web app sends the user to log in.
func (f *Focus) loginURL(iq, p *Element) *Element {
	room, machine := p.Attr("room"), p.Attr("machine-uid")
	switch {
	case f.auth == nil:
		return ErrorIQ(iq, Errorf("feature-not-implemented", "authentication is off"))
	case room == "":
		return ErrorIQ(iq, Errorf("not-acceptable", "Missing mandatory attribute 'room'"))
	case machine == "":
		return ErrorIQ(iq, Errorf("bad-request", "Missing mandatory attribute 'machine-uid'"))
	}
	el := NewElement(nsFocus, "login-url")
	if !f.auth.jwt {
		local := room
		if at := strings.IndexByte(room, '@'); at >= 0 {
			local = room[:at]
		}
		el.Set("url", "./"+local+"?login=true")
	}
	return ResultIQ(iq, el)
}

// logout answers <logout session-id/>: the session is forgotten.
func (f *Focus) logout(iq, p *Element) *Element {
	if f.auth == nil {
		return ErrorIQ(iq, Errorf("feature-not-implemented", "authentication is off"))
	}
	f.auth.mu.Lock()
	defer f.auth.mu.Unlock()
	s := f.auth.sessions[p.Attr("session-id")]
	if s == nil {
		return ErrorIQ(iq, sessionInvalid("invalid session"))
	}
	delete(f.auth.sessions, s.id)
	delete(f.auth.byUser, s.user)
	return ResultIQ(iq, NewElement(nsFocus, "logout"))
}

// Moving endpoints (operators) ----------------------------------------------

// Move moves participants to other bridges, as Jicofo's /move-endpoints
// does: one endpoint of one conference, or up to n endpoints off a bridge
// (in one conference, or the largest conferences first). It returns how many
// participants and conferences were moved.
func (f *Focus) Move(ctx context.Context, room, endpoint, bridge string, n int) (moved, conferences int, err error) {
	return f.move(ctx, room, endpoint, bridge, n, "moved by an operator")
}

func (f *Focus) move(ctx context.Context, room, endpoint, bridge string, n int, reason string) (moved, conferences int, err error) {
	if bridge != "" {
		if bridge = f.resolveBridge(bridge); bridge == "" {
			return 0, 0, Errorf("item-not-found", "no such bridge")
		}
	}
	if f.bridges.OperationalCount() < 2 {
		return 0, 0, Errorf("service-unavailable", "there is no other bridge to move to")
	}
	var confs []*Conference
	if room != "" {
		c := f.lookup(room)
		if c == nil {
			return 0, 0, Errorf("item-not-found", "no conference %s", room)
		}
		confs = []*Conference{c}
	} else {
		confs = f.all()
	}
	type sized struct {
		c *Conference
		n int
	}
	var order []sized
	for _, c := range confs {
		if s := c.Snapshot(ctx); s != nil {
			order = append(order, sized{c, len(s.Participants)})
		}
	}
	sort.Slice(order, func(i, j int) bool { return order[i].n > order[j].n })
	for _, o := range order {
		if n-moved <= 0 {
			break
		}
		got := make(chan int, 1)
		c, left := o.c, n-moved
		if !c.post(event{kind: evFunc, fn: func() { got <- c.moveOff(bridge, endpoint, left, reason) }}) {
			continue
		}
		select {
		case k := <-got:
			if k > 0 {
				moved += k
				conferences++
			}
		case <-ctx.Done():
			return moved, conferences, ctx.Err()
		}
	}
	return moved, conferences, nil
}

// resolveBridge accepts a bridge's occupant JID or just its nick.
func (f *Focus) resolveBridge(b string) string {
	for _, bi := range f.bridges.Snapshot() {
		if strings.EqualFold(bi.JID, b) || bi.Nick == b {
			return bi.JID
		}
	}
	return ""
}

// RunLoadRedistribution moves participants off overloaded bridges (Jicofo's
// bridge.load-redistribution, docs/bridges.md#load-redistribution): every interval, unless every
// bridge is overloaded, each bridge whose corrected stress is at or above
// the redistribution threshold gives up `endpoints` participants, largest
// conferences first, and is then left alone for the timeout so that its
// stress can settle. It returns when ctx ends.
func (f *Focus) RunLoadRedistribution(ctx context.Context) {
	cfg := f.cfg.Bridges.LoadRedistribution
	if !cfg.Enabled {
		return
	}
	t := time.NewTicker(cfg.Interval.Duration)
	defer t.Stop()
	resting := map[string]time.Time{} // bridge → end of its timeout
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		over, anyRoom := f.bridges.Overloaded(cfg.StressThreshold)
		if !anyRoom {
			continue // moving people around would only make it worse
		}
		now := time.Now()
		for _, jid := range over {
			if now.Before(resting[jid]) {
				continue
			}
			mctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			moved, confs, err := f.move(mctx, "", "", jid, cfg.Endpoints, "load redistribution")
			cancel()
			resting[jid] = now.Add(cfg.Timeout.Duration)
			f.log.Info("load redistribution", "bridge", jid, "moved", moved, "conferences", confs, "err", err)
		}
		for jid, until := range resting {
			if now.After(until) {
				delete(resting, jid)
			}
		}
	}
}
