package testkit

// fakebridge.go: a fake Jitsi Videobridge for focus tests, faithful on the
// wire to what a real JVB does (docs/bridges.md#what-the-fake-bridge-imitates): it logs in as
// a c2s client, joins the brewery MUC, publishes <stats> presence, answers
// health checks and jabber:iq:version, and runs the Colibri2 conference
// state machine with JVB's exact error conditions, reasons and texts. It has
// no media: transports are descriptions only (ufrag/pwd, one host candidate,
// one DTLS fingerprint per bridge, a web-socket URL).
//
// Knobs change its presence stats and inject faults; introspection methods
// let tests see every Colibri2 request and the resulting state.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/big"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Namespaces the fake bridge speaks.
const (
	nsColibri2    = "jitsi:colibri2"
	nsColibri     = "http://jitsi.org/protocol/colibri"
	nsHealthCheck = "http://jitsi.org/protocol/healthcheck"
	nsMUC         = "http://jabber.org/protocol/muc"
	nsMUCUser     = "http://jabber.org/protocol/muc#user"
	nsMUCOwner    = "http://jabber.org/protocol/muc#owner"
	nsDataForm    = "jabber:x:data"
	nsICEUDP      = "urn:xmpp:jingle:transports:ice-udp:1"
	nsDTLS        = "urn:xmpp:jingle:apps:dtls:0"
	nsSSMA        = "urn:xmpp:jingle:apps:rtp:ssma:0"
	nsVersion     = "jabber:iq:version"
	nsPing        = "urn:xmpp:ping"
	nsDiscoInfo   = "http://jabber.org/protocol/disco#info"
)

// HealthMode is how the fake answers <healthcheck/> IQs.
type HealthMode string

const (
	// HealthOK answers with an empty result.
	HealthOK HealthMode = "ok"
	// HealthError answers internal-server-error with a text, as an unhealthy
	// JVB does (and publishes healthy=false).
	HealthError HealthMode = "error"
	// HealthSilent never answers (the focus times out).
	HealthSilent HealthMode = "silent"
)

// FakeBridgeConfig configures a FakeBridge. Zero values get the defaults
// noted on each field.
type FakeBridgeConfig struct {
	Addr     string // c2s address, e.g. Prosody.C2SAddr()
	Domain   string // XMPP host to log in to (default AuthDomain)
	User     string // default JVBUser
	Password string // default JVBPassword
	Resource string // resource to bind; default: the server picks one (as JVB)
	// Brewery is the bare JID of the brewery MUC (default
	// "jvbbrewery@"+InternalMUCDomain).
	Brewery string
	Nick    string // occupant nick, the bridge's identity (default "jvb1")
	Region  string // published as the region stat when set
	RelayID string // published as relay_id when set; relays are refused without it
	Stress  float64
	Version string // default "2.3.0-fake"
	// PresenceInterval is the period of the stats presence (default 5 s).
	PresenceInterval time.Duration
	IP               string // host candidate address (default 127.0.0.1)
	Port             int    // host candidate port (default 10000)
	// ServerID is the colibri-ws server id (default "default-id").
	ServerID string
	// WebSocketDomain is host[:port] of the colibri-ws URLs (default IP:443).
	WebSocketDomain string
	// NoWebSocket leaves <web-socket> out of endpoint transports.
	NoWebSocket bool
	// ReconnectDelay is the wait between reconnection attempts (default 500 ms).
	ReconnectDelay time.Duration
	// Logf, if set, receives one line per Colibri2 request and connection
	// events.
	Logf func(format string, args ...any)
}

// EndpointState is a snapshot of one endpoint on the fake bridge.
type EndpointState struct {
	ID, StatsID, MucRole string
	// Ufrag, Pwd are the bridge's ICE credentials for this endpoint (new ones
	// after an ICE restart); WSPwd is the colibri-ws password.
	Ufrag, Pwd, WSPwd string
	ICEGeneration     int
	SCTP              bool
	Capabilities      []string
	Media             []*Elem // the <media> of the last request that had any
	// Transport is the client's last ICE-UDP transport, nil before any.
	Transport *Elem
	// Sources is the last <sources> received, nil before any.
	Sources      *Elem
	ForceMute    [2]bool // audio, video
	InitialLastN int     // -1 when never set
}

// RelayState is a snapshot of one relay (Octo link) on the fake bridge.
type RelayState struct {
	ID, MeshID     string
	ICEControlling bool
	UseUniquePort  bool
	SCTPRole       string // the role the bridge answered ("" without SCTP)
	Transport      *Elem  // the remote bridge's ICE-UDP transport, nil before any
	Endpoints      []string
}

// ConferenceState is a snapshot of one conference on the fake bridge.
type ConferenceState struct {
	MeetingID, Name string
	// InternalID is the bridge-internal id used in colibri-ws URLs.
	InternalID      string
	RTCStatsEnabled bool
	Endpoints       map[string]EndpointState
	Relays          map[string]RelayState
	// FeedbackSSRCs are the SSRCs of jvb-a0 and jvb-v0.
	FeedbackSSRCs [2]uint32
}

type fbEndpoint struct {
	EndpointState
	created time.Time
}

type fbConference struct {
	meetingID, name, internalID string
	rtcstats                    bool
	created                     time.Time
	endpoints                   map[string]*fbEndpoint
	relays                      map[string]*RelayState
	ssrcA, ssrcV                uint32
}

type fbFailure struct{ condition, reason string }

// FakeBridge is a fake videobridge connected to an XMPP server. All methods
// are safe for concurrent use.
type FakeBridge struct {
	cfg FakeBridgeConfig

	// breweryMember holds the connection, the brewery membership, ctx and
	// wg, and mu, which guards the fields below too.
	breweryMember

	stress        float64
	region        string
	version       string
	drain         bool
	graceful      bool
	shuttingDown  bool
	health        HealthMode
	extraStats    map[string]string
	omitStats     map[string]bool
	colibriDelay  time.Duration
	failNext      []fbFailure
	dropResponses bool
	omitSCTP      bool
	extraCands    int
	fingerprint   string
	epTimeout     time.Duration
	confTimeout   time.Duration
	conferences   map[string]*fbConference
	requests      requestLog
	healthChecks  int
	queue         []fbQueued
	queueSignal   chan struct{}
}

type fbQueued struct {
	iq *Elem
}

// StartFakeBridge logs in, joins the brewery and publishes its first stats
// presence before returning. ctx bounds only this start-up; the bridge runs
// (and reconnects after connection loss) until Close.
func StartFakeBridge(ctx context.Context, cfg FakeBridgeConfig) (*FakeBridge, error) {
	if cfg.Addr == "" {
		return nil, errors.New("testkit: FakeBridgeConfig needs Addr")
	}
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&cfg.Domain, AuthDomain)
	def(&cfg.User, JVBUser)
	def(&cfg.Password, JVBPassword)
	def(&cfg.Brewery, "jvbbrewery@"+InternalMUCDomain)
	def(&cfg.Nick, "jvb1")
	def(&cfg.Version, "2.3.0-fake")
	def(&cfg.IP, "127.0.0.1")
	def(&cfg.ServerID, "default-id")
	def(&cfg.WebSocketDomain, cfg.IP+":443")
	if cfg.Port == 0 {
		cfg.Port = 10000
	}
	if cfg.PresenceInterval <= 0 {
		cfg.PresenceInterval = 5 * time.Second
	}
	if cfg.ReconnectDelay <= 0 {
		cfg.ReconnectDelay = 500 * time.Millisecond
	}
	b := &FakeBridge{
		cfg:         cfg,
		stress:      cfg.Stress,
		region:      cfg.Region,
		version:     cfg.Version,
		health:      HealthOK,
		extraStats:  map[string]string{},
		omitStats:   map[string]bool{},
		fingerprint: fbFingerprint(),
		conferences: map[string]*fbConference{},
		queueSignal: make(chan struct{}, 1),
	}
	b.breweryMember = breweryMember{
		addr: cfg.Addr, domain: cfg.Domain, user: cfg.User, password: cfg.Password, resource: cfg.Resource,
		brewery: cfg.Brewery, nick: cfg.Nick, queueSize: 1024,
		reconnectDelay: cfg.ReconnectDelay, presenceInterval: cfg.PresenceInterval,
		name: "fake bridge", logName: "fakebridge", log: cfg.Logf,
		// JVB joins with a bare <x/>, then sends <stats>; a room it created
		// is configured with whois=anyone.
		payload:    b.statsLocked,
		roomConfig: [][2]string{{"muc#roomconfig_whois", "anyone"}},
		handleIQ:   b.onIQ,
		onTick:     b.expireSilently,
	}
	if err := b.start(ctx); err != nil {
		return nil, err
	}
	b.wg.Add(1)
	go b.colibriWorker()
	return b, nil
}

// statsLocked builds <stats>, in JVB's emission order.
func (b *FakeBridge) statsLocked() *Elem {
	eps := 0
	for _, c := range b.conferences {
		eps += len(c.endpoints)
	}
	type kv struct{ k, v string }
	stats := []kv{
		{"endpoints", strconv.Itoa(eps)},
		{"participants", strconv.Itoa(eps)},
		{"stress_level", fbJavaDouble(b.stress)},
		{"conferences", strconv.Itoa(len(b.conferences))},
		{"average_participant_stress", "0.01"},
		{"graceful_shutdown", strconv.FormatBool(b.graceful)},
		{"shutting_down", strconv.FormatBool(b.shuttingDown)},
		{"drain", strconv.FormatBool(b.drain)},
		{"current_timestamp", time.Now().UTC().Format("2006-01-02 15:04:05.000")},
	}
	if b.cfg.RelayID != "" {
		stats = append(stats, kv{"relay_id", b.cfg.RelayID})
	}
	stats = append(stats, kv{"healthy", strconv.FormatBool(b.health != HealthError)}, kv{"version", b.version})
	if b.region != "" {
		stats = append(stats, kv{"region", b.region})
	}
	el := NewElem(nsColibri, "stats")
	seen := map[string]bool{}
	for _, s := range stats {
		seen[s.k] = true
		if v, ok := b.extraStats[s.k]; ok {
			s.v = v
		}
		if !b.omitStats[s.k] {
			el.Add(NewElem("", "stat", "name", s.k, "value", s.v))
		}
	}
	extra := make([]string, 0, len(b.extraStats))
	for k := range b.extraStats {
		if !seen[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(extra)
	for _, k := range extra {
		if !b.omitStats[k] {
			el.Add(NewElem("", "stat", "name", k, "value", b.extraStats[k]))
		}
	}
	return el
}

func fbHasStatus(p *Elem, code string) bool {
	for _, x := range p.All(nsMUCUser, "x") {
		for _, s := range x.All("", "status") {
			if s.Attr("code") == code {
				return true
			}
		}
	}
	return false
}

// fbBare strips the resource of a JID.
func fbBare(j string) string {
	if i := strings.IndexByte(j, '/'); i >= 0 {
		return j[:i]
	}
	return j
}

func (b *FakeBridge) onIQ(c *Client, iq *Elem) {
	var payload *Elem
	for _, k := range iq.Kids {
		payload = k
		break
	}
	known := payload != nil && (payload.Space == nsColibri2 && payload.Local == "conference-modify" ||
		payload.Space == nsHealthCheck && payload.Local == "healthcheck" ||
		payload.Space == nsVersion && payload.Local == "query" ||
		payload.Space == nsColibri && (payload.Local == "graceful-shutdown" || payload.Local == "force-shutdown"))
	switch {
	case payload != nil && payload.Space == nsPing && payload.Local == "ping":
		c.Send(fbResult(iq)) // Smack's PingManager, no brewery check
		return
	case payload != nil && payload.Space == nsDiscoInfo && payload.Local == "query":
		q := NewElem(nsDiscoInfo, "query")
		for _, f := range []string{nsHealthCheck, nsDTLS, nsICEUDP, nsVersion, nsDiscoInfo, nsPing} {
			q.Add(NewElem("", "feature", "var", f))
		}
		c.Send(fbResult(iq).Add(q))
		return
	case !known:
		c.Send(fbError(iq, "feature-not-implemented", "", "", ""))
		return
	case !strings.EqualFold(fbBare(iq.Attr("from")), b.cfg.Brewery):
		// jicoco MucClient: only IQs through the brewery are served.
		c.Send(fbError(iq, "forbidden", "", "", ""))
		return
	}
	switch payload.Space {
	case nsHealthCheck:
		b.mu.Lock()
		b.healthChecks++
		mode := b.health
		b.mu.Unlock()
		switch mode {
		case HealthError:
			c.Send(fbError(iq, "internal-server-error", "", "No valid IP addresses available for harvesting.", ""))
		case HealthSilent:
		default:
			c.Send(fbResult(iq))
		}
	case nsVersion:
		b.mu.Lock()
		v := b.version
		b.mu.Unlock()
		c.Send(fbResult(iq).Add(NewElem(nsVersion, "query").Add(
			NewElem("", "name").SetText("JVB"), NewElem("", "version").SetText(v), NewElem("", "os").SetText("Linux"))))
	case nsColibri:
		c.Send(fbError(iq, "service-unavailable", "", "Unsupported IQ request "+payload.Local, ""))
	case nsColibri2:
		b.requests.add(fbClone(payload))
		b.mu.Lock()
		b.queue = append(b.queue, fbQueued{iq: iq})
		b.mu.Unlock()
		select {
		case b.queueSignal <- struct{}{}:
		default:
		}
	}
}

// colibriWorker handles Colibri2 requests one at a time, in arrival order.
func (b *FakeBridge) colibriWorker() {
	defer b.wg.Done()
	for {
		b.mu.Lock()
		var q fbQueued
		have := len(b.queue) > 0
		if have {
			q = b.queue[0]
			b.queue = b.queue[1:]
		}
		delay := b.colibriDelay
		b.mu.Unlock()
		if !have {
			select {
			case <-b.ctx.Done():
				return
			case <-b.queueSignal:
			}
			continue
		}
		if delay > 0 {
			select {
			case <-b.ctx.Done():
				return
			case <-time.After(delay):
			}
		}
		resp := b.handleColibri(q.iq)
		b.mu.Lock()
		drop := b.dropResponses
		c := b.client
		b.mu.Unlock()
		b.logf("%s → %s%s", fbSummarize(q.iq), fbSummarizeResponse(resp), map[bool]string{true: " (dropped)"}[drop])
		if !drop && c != nil {
			c.Send(resp)
		}
	}
}

// handleColibri runs the conference state machine on one request and
// returns the response IQ (result or error).
func (b *FakeBridge) handleColibri(iq *Elem) *Elem {
	req := iq.Kids[0]
	b.mu.Lock()
	defer b.mu.Unlock()
	mid := req.Attr("meeting-id")
	if len(b.failNext) > 0 {
		f := b.failNext[0]
		b.failNext = b.failNext[1:]
		text, ep := "Injected failure", ""
		switch f.reason {
		case "conference_not_found":
			text = "Conference not found for ID: " + mid
		case "conference_already_exists":
			text = "Conference already exists for ID: " + mid
		case "graceful_shutdown":
			text = "In graceful shutdown"
		case "unknown_endpoint":
			ep = fbAttr(req.Child(nsColibri2, "endpoint"), "id")
			text = "Endpoint not found for ID: " + ep
		}
		return fbError(iq, f.condition, f.reason, text, ep)
	}
	if mid == "" {
		return fbError(iq, "bad-request", "", "Missing meeting-id", "")
	}

	// 1. Conference lookup or creation (Videobridge.getOrCreateConference).
	create := fbBool(req, "create")
	conf := b.conferences[mid]
	if create {
		if conf != nil {
			return fbError(iq, "conflict", "conference_already_exists", "Conference already exists for ID: "+mid, "")
		}
		if b.graceful {
			return fbError(iq, "service-unavailable", "graceful_shutdown", "In graceful shutdown", "")
		}
		if name := req.Attr("name"); fbHasAttr(req, "name") && !fbValidBareJID(name) {
			return fbError(iq, "bad-request", "", "Invalid conference name (not a JID)", "")
		}
		conf = &fbConference{
			meetingID: mid, name: req.Attr("name"), internalID: fbInternalID(),
			rtcstats: !fbHasAttr(req, "rtcstats-enabled") || fbBool(req, "rtcstats-enabled"),
			created:  time.Now(), endpoints: map[string]*fbEndpoint{}, relays: map[string]*RelayState{},
			ssrcA: fbSSRC(), ssrcV: fbSSRC(),
		}
		b.conferences[mid] = conf
	} else if conf == nil {
		return fbError(iq, "item-not-found", "conference_not_found", "Conference not found for ID: "+mid, "")
	}

	// 2. validateRequest.
	eps := req.All(nsColibri2, "endpoint")
	relays := req.All(nsColibri2, "relay")
	heavy := func(e *Elem) bool {
		return fbBool(e, "create") || e.Child(nsColibri2, "media") != nil ||
			e.Child(nsColibri2, "transport") != nil || e.Child(nsColibri2, "sources") != nil
	}
	if len(eps) > 0 && len(relays) > 0 {
		return fbError(iq, "feature-not-implemented", "feature_not_implemented", "Using both 'relay' and 'endpoint' in a request", "")
	}
	if len(eps) > 1 && slices.ContainsFunc(eps, heavy) {
		return fbError(iq, "feature-not-implemented", "feature_not_implemented",
			"Creating or updating media, sources or transport for more than one endpoint in a request.", "")
	}
	if len(relays) > 1 {
		return fbError(iq, "feature-not-implemented", "feature_not_implemented", "Updating more than one 'relay' in a request.", "")
	}
	ignoreUnknown := !slices.ContainsFunc(eps, heavy) &&
		!slices.ContainsFunc(relays, func(r *Elem) bool { return !fbBool(r, "expire") })

	// 3. Endpoints, then relays.
	resp := NewElem(nsColibri2, "conference-modified")
	for _, e := range eps {
		r, se := b.handleEndpoint(conf, e, ignoreUnknown)
		if se != nil {
			return fbErrorFrom(iq, se)
		}
		resp.Add(r)
	}
	for _, r := range relays {
		if b.cfg.RelayID == "" {
			return fbError(iq, "feature-not-implemented", "", "Octo is disabled in configuration.", "")
		}
		rr, se := b.handleRelay(conf, r, ignoreUnknown)
		if se != nil {
			return fbErrorFrom(iq, se)
		}
		resp.Add(rr)
	}

	// 4. Feedback sources on any create.
	if create || slices.ContainsFunc(eps, func(e *Elem) bool { return fbBool(e, "create") }) {
		resp.Add(NewElem(nsColibri2, "sources").Add(
			fbFeedbackSource("audio", "jvb-a0", conf.ssrcA),
			fbFeedbackSource("video", "jvb-v0", conf.ssrcV)))
	}

	// 5. Expiry: requested, or nothing left after a non-create request.
	if fbBool(req, "expire") || !create && len(conf.endpoints) == 0 && len(conf.relays) == 0 {
		delete(b.conferences, mid)
	}
	return fbResult(iq).Add(resp)
}

type fbStanzaErr struct{ condition, reason, text, endpoint string }

func (b *FakeBridge) handleEndpoint(conf *fbConference, e *Elem, ignoreUnknown bool) (*Elem, *fbStanzaErr) {
	id := e.Attr("id")
	resp := NewElem("", "endpoint", "id", id)
	if fbBool(e, "expire") {
		delete(conf.endpoints, id)
		return resp.Set("expire", "true"), nil
	}
	tr := e.Child(nsColibri2, "transport")
	ep := conf.endpoints[id]
	create := fbBool(e, "create")
	if create {
		if ep != nil {
			return nil, &fbStanzaErr{condition: "conflict", text: "Endpoint with ID " + id + " already exists"}
		}
		if tr == nil {
			return nil, &fbStanzaErr{condition: "bad-request", text: "Attempt to create endpoint " + id + " with no <transport>"}
		}
		var caps []string
		for _, c := range e.All(nsColibri2, "capability") {
			caps = append(caps, c.Attr("name"))
		}
		if !slices.Contains(caps, "source-names") {
			return nil, &fbStanzaErr{condition: "bad-request", text: "Source name support is mandatory."}
		}
		ep = &fbEndpoint{created: time.Now(), EndpointState: EndpointState{
			ID: id, StatsID: e.Attr("stats-id"), MucRole: e.Attr("muc-role"),
			Ufrag: fbRandom(14, fbLower), Pwd: fbRandom(26, fbLower), WSPwd: fbRandom(24, fbAlnum),
			Capabilities: caps, InitialLastN: -1,
		}}
		conf.endpoints[id] = ep
		// As in JVB, the endpoint exists before its SCTP is checked.
		if sctp := tr.Child(nsColibri2, "sctp"); sctp != nil {
			if role := sctp.Attr("role"); role != "" && role != "server" {
				return nil, &fbStanzaErr{condition: "feature-not-implemented", text: "Unsupported SCTP role: " + role}
			}
			if port := sctp.Attr("port"); port != "" && port != "5000" {
				return nil, &fbStanzaErr{condition: "bad-request", text: "Specific SCTP port requested, not supported."}
			}
			ep.SCTP = true
		}
	}
	if ep == nil {
		if ignoreUnknown {
			return resp, nil
		}
		return nil, &fbStanzaErr{condition: "item-not-found", reason: "unknown_endpoint",
			text: "Endpoint not found for ID: " + id, endpoint: id}
	}
	if !create && e.Attr("stats-id") != "" {
		ep.StatsID = e.Attr("stats-id")
	}
	if media := e.All(nsColibri2, "media"); len(media) > 0 {
		ep.Media = nil
		for _, m := range media {
			ep.Media = append(ep.Media, fbClone(m))
		}
	}
	if n := e.Child(nsColibri2, "initial-last-n"); n != nil {
		if v, err := strconv.Atoi(n.Attr("value")); err == nil {
			ep.InitialLastN = v
		}
	}
	if t := tr.Child(nsICEUDP, "transport"); t != nil {
		ep.Transport = fbClone(t)
	}
	if s := e.Child(nsColibri2, "sources"); s != nil {
		if ep.MucRole == "visitor" && len(s.All(nsColibri2, "media-source")) > 0 {
			return nil, &fbStanzaErr{condition: "bad-request", text: "Attempt to set sources for visitor endpoint " + id}
		}
		ep.Sources = fbClone(s)
	}
	if fm := e.Child(nsColibri2, "force-mute"); fm != nil {
		ep.ForceMute = [2]bool{fbBool(fm, "audio"), fbBool(fm, "video")}
	}
	restarted := false
	if tr != nil && fbBool(tr, "ice-restart") {
		ep.Ufrag, ep.Pwd = fbRandom(14, fbLower), fbRandom(26, fbLower)
		ep.ICEGeneration++
		restarted = true
	}
	if create || restarted {
		t := NewElem("", "transport").Add(b.describeTransport(conf, ep))
		if tr.Child(nsColibri2, "sctp") != nil && !b.omitSCTP {
			t.Add(NewElem("", "sctp", "port", "5000", "role", "server"))
		}
		resp.Add(t)
	}
	return resp, nil
}

// describeTransport renders the bridge side of an endpoint's transport.
func (b *FakeBridge) describeTransport(conf *fbConference, ep *fbEndpoint) *Elem {
	t := NewElem(nsICEUDP, "transport", "ufrag", ep.Ufrag, "pwd", ep.Pwd)
	if ep.ICEGeneration > 0 {
		t.Set("ice-generation", strconv.Itoa(ep.ICEGeneration))
	}
	b.addCandidateAndFingerprint(t)
	if !b.cfg.NoWebSocket {
		t.Add(NewElem(nsColibri, "web-socket", "url", fmt.Sprintf("wss://%s/colibri-ws/%s/%s/%s?pwd=%s",
			b.cfg.WebSocketDomain, b.cfg.ServerID, conf.internalID, ep.ID, ep.WSPwd)))
	}
	return t
}

func (b *FakeBridge) addCandidateAndFingerprint(t *Elem) {
	t.Add(NewElem("", "candidate", "component", "1", "foundation", "1", "generation", "0",
		"id", fbRandom(16, "0123456789abcdef"), "network", "0", "port", strconv.Itoa(b.cfg.Port),
		"priority", "2130706431", "protocol", "udp", "type", "host", "ip", b.cfg.IP))
	for i := 0; i < b.extraCands; i++ { // a hostile or broken bridge (SetExtraCandidates)
		t.Add(NewElem("", "candidate", "component", "1", "foundation", strconv.Itoa(i+2), "generation", "0",
			"id", fbRandom(16, "0123456789abcdef"), "network", "0", "port", strconv.Itoa(20000+i),
			"priority", "1", "protocol", "udp", "type", "host", "ip", b.cfg.IP))
	}
	t.Add(NewElem("", "rtcp-mux"))
	t.Add(NewElem(nsDTLS, "fingerprint", "hash", "sha-256", "setup", "actpass").SetText(b.fingerprint))
}

// SetExtraCandidates makes every transport the bridge describes carry n
// more host candidates after its real one (a bridge answering with a huge
// candidate list).
func (b *FakeBridge) SetExtraCandidates(n int) { b.mu.Lock(); b.extraCands = n; b.mu.Unlock() }

func (b *FakeBridge) handleRelay(conf *fbConference, r *Elem, ignoreUnknown bool) (*Elem, *fbStanzaErr) {
	id := r.Attr("id")
	resp := NewElem("", "relay", "id", id)
	if fbBool(r, "expire") {
		delete(conf.relays, id)
		return resp.Set("expire", "true"), nil
	}
	tr := r.Child(nsColibri2, "transport")
	rel := conf.relays[id]
	create := fbBool(r, "create")
	if create {
		if rel != nil {
			return nil, &fbStanzaErr{condition: "conflict", text: "Relay with ID " + id + " already exists"}
		}
		if tr == nil {
			return nil, &fbStanzaErr{condition: "bad-request", text: "Attempt to create relay " + id + " with no <transport>"}
		}
		rel = &RelayState{ID: id, MeshID: r.Attr("mesh-id"), ICEControlling: fbBool(tr, "ice-controlling"),
			UseUniquePort: fbBool(tr, "use-unique-port")}
		conf.relays[id] = rel
	}
	if rel == nil {
		if ignoreUnknown {
			return resp, nil
		}
		return nil, &fbStanzaErr{condition: "bad-request", text: "Unknown relay " + id}
	}
	sctp := tr.Child(nsColibri2, "sctp")
	if sctp != nil {
		if port := sctp.Attr("port"); port != "" && port != "5000" {
			return nil, &fbStanzaErr{condition: "bad-request", text: "Specific SCTP port requested, not supported."}
		}
		rel.SCTPRole = "client"
		if sctp.Attr("role") == "client" {
			rel.SCTPRole = "server"
		}
	}
	if t := tr.Child(nsICEUDP, "transport"); t != nil {
		rel.Transport = fbClone(t)
	}
	if create {
		t := NewElem(nsICEUDP, "transport", "ufrag", fbRandom(14, fbLower), "pwd", fbRandom(26, fbLower))
		b.addCandidateAndFingerprint(t)
		if sctp == nil && !b.cfg.NoWebSocket {
			t.Add(NewElem(nsColibri, "web-socket", "url", fmt.Sprintf("wss://%s/colibri-relay-ws/%s/%s/%s?pwd=%s",
				b.cfg.WebSocketDomain, b.cfg.ServerID, conf.internalID, id, fbRandom(24, fbAlnum))))
		}
		outer := NewElem("", "transport").Add(t)
		if sctp != nil {
			outer.Add(NewElem("", "sctp", "port", "5000", "role", rel.SCTPRole))
		}
		resp.Add(outer)
	}
	for _, e := range r.Child(nsColibri2, "endpoints").All(nsColibri2, "endpoint") {
		eid := e.Attr("id")
		has := slices.Contains(rel.Endpoints, eid)
		switch {
		case fbBool(e, "expire"):
			rel.Endpoints = slices.DeleteFunc(rel.Endpoints, func(s string) bool { return s == eid })
		case !has:
			rel.Endpoints = append(rel.Endpoints, eid)
		}
	}
	sort.Strings(rel.Endpoints)
	return resp, nil
}

func fbFeedbackSource(typ, name string, ssrc uint32) *Elem {
	return NewElem("", "media-source", "type", typ, "id", name).Add(
		NewElem(nsSSMA, "source", "ssrc", strconv.FormatUint(uint64(ssrc), 10), "name", name))
}

// expireSilently applies the silent-expiry knob (docs/colibri2.md#expiry-by-the-bridge-itself).
func (b *FakeBridge) expireSilently() {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	if b.epTimeout > 0 {
		for _, c := range b.conferences {
			for id, ep := range c.endpoints {
				if now.Sub(ep.created) >= b.epTimeout {
					delete(c.endpoints, id)
				}
			}
		}
	}
	if b.confTimeout > 0 {
		for mid, c := range b.conferences {
			if len(c.endpoints) == 0 && now.Sub(c.created) >= b.confTimeout {
				delete(b.conferences, mid)
			}
		}
	}
}

// Stanza helpers --------------------------------------------------------------

func fbResult(iq *Elem) *Elem {
	return fbReply(iq, "result")
}

// fbReply starts a reply to iq, addressed to its sender (the server when it
// has no from).
func fbReply(iq *Elem, typ string) *Elem {
	r := NewElem("", "iq", "type", typ)
	if from := iq.Attr("from"); from != "" {
		r.Set("to", from)
	}
	return r.Set("id", iq.Attr("id"))
}

// fbError builds an error reply as JVB's ErrorUtil does: condition, text and
// optional colibri2 <error reason> and <endpoint id> inside <error>.
func fbError(iq *Elem, condition, reason, text, endpoint string) *Elem {
	typ := "cancel"
	switch condition {
	case "bad-request":
		typ = "modify"
	case "forbidden", "not-authorized":
		typ = "auth"
	}
	el := NewElem("", "error", "type", typ).Add(NewElem(nsStanza, condition))
	if text != "" {
		el.Add(NewElem(nsStanza, "text", "xml:lang", "en").SetText(text))
	}
	if reason != "" {
		el.Add(NewElem(nsColibri2, "error", "reason", reason))
	}
	if endpoint != "" {
		el.Add(NewElem(nsColibri2, "endpoint", "id", endpoint))
	}
	return fbReply(iq, "error").Add(el)
}

func fbErrorFrom(iq *Elem, se *fbStanzaErr) *Elem {
	return fbError(iq, se.condition, se.reason, se.text, se.endpoint)
}

// fbAttr is Attr that accepts a nil element.
func fbAttr(e *Elem, name string) string {
	if e == nil {
		return ""
	}
	return e.Attr(name)
}

func fbHasAttr(e *Elem, name string) bool {
	for _, a := range e.Attrs {
		if a.Name.Local == name {
			return true
		}
	}
	return false
}

// fbBool reads an xs:boolean attribute.
func fbBool(e *Elem, name string) bool {
	if e == nil {
		return false
	}
	v := e.Attr(name)
	return v == "true" || v == "1"
}

// fbValidBareJID approximates JidCreate.entityBareFrom: local@domain, no
// resource, no characters a localpart may not hold.
func fbValidBareJID(s string) bool {
	local, domain, ok := strings.Cut(s, "@")
	if !ok || local == "" || domain == "" || len(local) > 1023 || len(domain) > 1023 {
		return false
	}
	if strings.ContainsAny(local, "\"&'/:<>@ \t\r\n") || strings.ContainsAny(domain, "@/ \t\r\n") {
		return false
	}
	return !strings.HasPrefix(domain, ".") && !strings.HasSuffix(domain, ".") && !strings.Contains(domain, "..")
}

func fbClone(e *Elem) *Elem {
	if e == nil {
		return nil
	}
	c := &Elem{Space: e.Space, Local: e.Local, Text: e.Text, Attrs: slices.Clone(e.Attrs)}
	for _, k := range e.Kids {
		c.Kids = append(c.Kids, fbClone(k))
	}
	return c
}

const (
	fbLower = "abcdefghijklmnopqrstuvwxyz0123456789"
	fbAlnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
)

func fbRandom(n int, alphabet string) string {
	out := make([]byte, n)
	max := big.NewInt(int64(len(alphabet)))
	for i := range out {
		k, err := rand.Int(rand.Reader, max)
		if err != nil {
			panic(err)
		}
		out[i] = alphabet[k.Int64()]
	}
	return string(out)
}

func fbSSRC() uint32 {
	for {
		var b [4]byte
		rand.Read(b[:])
		if v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]); v != 0 {
			return v
		}
	}
}

// fbInternalID is a JVB-like internal conference id (Long.toHexString).
func fbInternalID() string {
	var b [8]byte
	rand.Read(b[:])
	b[0] &= 0x7f
	return strings.TrimLeft(hex.EncodeToString(b[:]), "0")
}

// fbFingerprint is a sha-256-sized fingerprint, upper-case hex with colons.
func fbFingerprint() string {
	var b [32]byte
	rand.Read(b[:])
	parts := make([]string, len(b))
	for i, x := range b {
		parts[i] = fmt.Sprintf("%02X", x)
	}
	return strings.Join(parts, ":")
}

// fbJavaDouble formats f as Java's Double.toString does: "0.0", "0.25",
// "1.0E-4", "1.5E7".
func fbJavaDouble(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	case f == 0:
		if math.Signbit(f) {
			return "-0.0"
		}
		return "0.0"
	}
	if a := math.Abs(f); a >= 1e-3 && a < 1e7 {
		s := strconv.FormatFloat(f, 'f', -1, 64)
		if !strings.Contains(s, ".") {
			s += ".0"
		}
		return s
	}
	s := strconv.FormatFloat(f, 'E', -1, 64)
	mant, exp, _ := strings.Cut(s, "E")
	if !strings.Contains(mant, ".") {
		mant += ".0"
	}
	e, _ := strconv.Atoi(exp)
	return mant + "E" + strconv.Itoa(e)
}

// fbSummarize renders a Colibri2 request in one line for logs.
func fbSummarize(iq *Elem) string {
	req := iq.Kids[0]
	var b strings.Builder
	fmt.Fprintf(&b, "colibri2 %s from=%s meeting=%s", iq.Attr("type"), iq.Attr("from"), req.Attr("meeting-id"))
	if fbBool(req, "create") {
		fmt.Fprintf(&b, " create name=%s", req.Attr("name"))
	}
	if fbBool(req, "expire") {
		b.WriteString(" expire")
	}
	for _, e := range req.All(nsColibri2, "endpoint") {
		var flags []string
		for _, a := range []string{"create", "expire"} {
			if fbBool(e, a) {
				flags = append(flags, a)
			}
		}
		if t := e.Child(nsColibri2, "transport"); t != nil {
			if t.Child(nsColibri2, "sctp") != nil {
				flags = append(flags, "sctp")
			}
			if t.Child(nsICEUDP, "transport") != nil {
				flags = append(flags, "transport")
			}
			if fbBool(t, "ice-restart") {
				flags = append(flags, "ice-restart")
			}
		}
		if s := e.Child(nsColibri2, "sources"); s != nil {
			flags = append(flags, fmt.Sprintf("sources=%d", len(s.All(nsColibri2, "media-source"))))
		}
		if fm := e.Child(nsColibri2, "force-mute"); fm != nil {
			flags = append(flags, fmt.Sprintf("force-mute=a:%v,v:%v", fbBool(fm, "audio"), fbBool(fm, "video")))
		}
		if n := e.Child(nsColibri2, "initial-last-n"); n != nil {
			flags = append(flags, "last-n="+n.Attr("value"))
		}
		fmt.Fprintf(&b, " ep=%s(%s)", e.Attr("id"), strings.Join(flags, ","))
	}
	for _, r := range req.All(nsColibri2, "relay") {
		var flags []string
		for _, a := range []string{"create", "expire"} {
			if fbBool(r, a) {
				flags = append(flags, a)
			}
		}
		if t := r.Child(nsColibri2, "transport"); t != nil && t.Child(nsICEUDP, "transport") != nil {
			flags = append(flags, "transport")
		}
		if eps := r.Child(nsColibri2, "endpoints"); eps != nil {
			flags = append(flags, fmt.Sprintf("endpoints=%d", len(eps.All(nsColibri2, "endpoint"))))
		}
		fmt.Fprintf(&b, " relay=%s(%s)", r.Attr("id"), strings.Join(flags, ","))
	}
	if req.Child(nsColibri2, "connects") != nil {
		b.WriteString(" connects")
	}
	return b.String()
}

func fbSummarizeResponse(resp *Elem) string {
	if se := StanzaErrorOf(resp); se != nil {
		s := "error " + se.Condition
		if r := resp.Child("", "error").Child(nsColibri2, "error"); r != nil {
			s += " reason=" + r.Attr("reason")
		}
		if se.Text != "" {
			s += fmt.Sprintf(" %q", se.Text)
		}
		return s
	}
	return "result"
}

// Knobs -----------------------------------------------------------------------

// SetStress sets the stress_level stat.
func (b *FakeBridge) SetStress(v float64) { b.mu.Lock(); b.stress = v; b.mu.Unlock() }

// SetRegion sets the region stat ("" leaves it out).
func (b *FakeBridge) SetRegion(r string) { b.mu.Lock(); b.region = r; b.mu.Unlock() }

// SetDrain sets the drain stat.
func (b *FakeBridge) SetDrain(v bool) { b.mu.Lock(); b.drain = v; b.mu.Unlock() }

// SetGracefulShutdown sets the graceful_shutdown stat; while true, new
// conferences are refused with service-unavailable + graceful_shutdown.
func (b *FakeBridge) SetGracefulShutdown(v bool) { b.mu.Lock(); b.graceful = v; b.mu.Unlock() }

// SetShuttingDown sets the shutting_down stat.
func (b *FakeBridge) SetShuttingDown(v bool) { b.mu.Lock(); b.shuttingDown = v; b.mu.Unlock() }

// SetVersion sets the version stat (and the jabber:iq:version answer).
func (b *FakeBridge) SetVersion(v string) { b.mu.Lock(); b.version = v; b.mu.Unlock() }

// SetHealth sets how health-check IQs are answered; HealthError also
// publishes healthy=false.
func (b *FakeBridge) SetHealth(m HealthMode) { b.mu.Lock(); b.health = m; b.mu.Unlock() }

// SetStat overrides (or adds) a stat in the presence; OmitStat(name, true)
// leaves one out (e.g. "drain", which Jicofo then treats as draining).
func (b *FakeBridge) SetStat(name, value string) {
	b.mu.Lock()
	b.extraStats[name] = value
	b.mu.Unlock()
}

// OmitStat leaves a stat out of the presence (or puts it back).
func (b *FakeBridge) OmitStat(name string, omit bool) {
	b.mu.Lock()
	b.omitStats[name] = omit
	b.mu.Unlock()
}

// SetColibriDelay delays the handling of each Colibri2 request (requests stay
// in arrival order; health checks are not delayed).
func (b *FakeBridge) SetColibriDelay(d time.Duration) { b.mu.Lock(); b.colibriDelay = d; b.mu.Unlock() }

// FailNext makes the next Colibri2 request (one per call, queued) fail with
// that condition and, when reason is set, <error xmlns="jitsi:colibri2"
// reason=…/> (with JVB's text for known reasons; unknown_endpoint also names
// the request's first endpoint). The state is not changed.
func (b *FakeBridge) FailNext(condition, reason string) {
	b.mu.Lock()
	b.failNext = append(b.failNext, fbFailure{condition, reason})
	b.mu.Unlock()
}

// DropResponses makes the bridge process Colibri2 requests without answering
// them (the focus times out).
func (b *FakeBridge) DropResponses(v bool) { b.mu.Lock(); b.dropResponses = v; b.mu.Unlock() }

// ForgetConference silently drops a conference (the next request for it gets
// conference_not_found).
func (b *FakeBridge) ForgetConference(meetingID string) {
	b.mu.Lock()
	delete(b.conferences, meetingID)
	b.mu.Unlock()
}

// ForgetEndpoint silently drops an endpoint (the next update for it gets
// unknown_endpoint).
func (b *FakeBridge) ForgetEndpoint(meetingID, epID string) {
	b.mu.Lock()
	if c := b.conferences[meetingID]; c != nil {
		delete(c.endpoints, epID)
	}
	b.mu.Unlock()
}

// OmitSCTP leaves <sctp> out of endpoint-create answers even when asked for.
func (b *FakeBridge) OmitSCTP(v bool) { b.mu.Lock(); b.omitSCTP = v; b.mu.Unlock() }

// RotateFingerprint changes the DTLS fingerprint used for new transports (a
// JVB does that every 24 h).
func (b *FakeBridge) RotateFingerprint() { b.mu.Lock(); b.fingerprint = fbFingerprint(); b.mu.Unlock() }

// Fingerprint returns the current DTLS fingerprint.
func (b *FakeBridge) Fingerprint() string { b.mu.Lock(); defer b.mu.Unlock(); return b.fingerprint }

// SetSilentExpiry makes the bridge drop, on its own and without telling
// anyone, endpoints older than endpointAfter and empty conferences older than
// emptyConferenceAfter (JVB: 2 min and 20 s); 0 disables (the default).
// Checked on every presence tick.
func (b *FakeBridge) SetSilentExpiry(endpointAfter, emptyConferenceAfter time.Duration) {
	b.mu.Lock()
	b.epTimeout, b.confTimeout = endpointAfter, emptyConferenceAfter
	b.mu.Unlock()
}

// PublishNow sends a stats presence at once instead of at the next tick (a
// real JVB only publishes periodically).
func (b *FakeBridge) PublishNow() { b.publish() }

// Leave sends unavailable presence to the brewery and stops publishing; the
// XMPP connection stays up and Colibri2 state is kept.
func (b *FakeBridge) Leave() { b.leave() }

// Rejoin joins the brewery again after Leave and publishes stats at once.
func (b *FakeBridge) Rejoin() error { return b.rejoin() }

// Close leaves, disconnects and stops every goroutine of the bridge.
func (b *FakeBridge) Close() { b.close() }

// Introspection ---------------------------------------------------------------

// JID is the bridge's brewery occupant JID (brewery/nick), its identity for
// the focus.
func (b *FakeBridge) JID() string { return b.jid() }

// ClientJID is the full JID the current connection is bound to ("" while
// disconnected).
func (b *FakeBridge) ClientJID() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.client == nil {
		return ""
	}
	return b.client.JID()
}

// Joined reports whether the bridge is in the brewery now.
func (b *FakeBridge) Joined() bool { b.mu.Lock(); defer b.mu.Unlock(); return b.joined && !b.left }

// Requests returns every Colibri2 <conference-modify> received through the
// brewery, in arrival order (including those later failed or dropped).
func (b *FakeBridge) Requests() []*Elem { return b.requests.all() }

// WaitRequest returns the first request received so far or later for which
// match returns true (a nil match accepts any), or ctx's error.
func (b *FakeBridge) WaitRequest(ctx context.Context, match func(*Elem) bool) (*Elem, error) {
	return b.requests.wait(ctx, match, "a colibri2 request at "+b.cfg.Nick)
}

// Conferences returns a deep snapshot of the Colibri2 state, by meeting-id.
func (b *FakeBridge) Conferences() map[string]ConferenceState {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[string]ConferenceState, len(b.conferences))
	for mid, c := range b.conferences {
		cs := ConferenceState{MeetingID: mid, Name: c.name, InternalID: c.internalID, RTCStatsEnabled: c.rtcstats,
			Endpoints: map[string]EndpointState{}, Relays: map[string]RelayState{}, FeedbackSSRCs: [2]uint32{c.ssrcA, c.ssrcV}}
		for id, ep := range c.endpoints {
			s := ep.EndpointState
			s.Capabilities = slices.Clone(s.Capabilities)
			s.Media = nil
			for _, m := range ep.Media {
				s.Media = append(s.Media, fbClone(m))
			}
			s.Transport, s.Sources = fbClone(s.Transport), fbClone(s.Sources)
			cs.Endpoints[id] = s
		}
		for id, r := range c.relays {
			s := *r
			s.Transport = fbClone(r.Transport)
			s.Endpoints = slices.Clone(r.Endpoints)
			cs.Relays[id] = s
		}
		out[mid] = cs
	}
	return out
}

// EndpointCount is the number of endpoints over all conferences.
func (b *FakeBridge) EndpointCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, c := range b.conferences {
		n += len(c.endpoints)
	}
	return n
}

// HealthChecks is the number of health-check IQs received through the brewery.
func (b *FakeBridge) HealthChecks() int { b.mu.Lock(); defer b.mu.Unlock(); return b.healthChecks }
