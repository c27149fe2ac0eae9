package testkit

// A simulated browser participant: it speaks to the focus the way
// lib-jitsi-meet does on the wire (conference request, MUC presence, caps and
// disco, Jingle with the focus), without any media. What "the way the client
// does" means is described in docs/prosody-and-clients.md#what-a-simulated-participant-imitates
// (taken from two recordings of a real client).

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Namespaces used by the participant. (Prefixed so as not to collide with
// the constants of the other test doubles in this package.)
const (
	pnsJingle       = "urn:xmpp:jingle:1"
	pnsJingleErrors = "urn:xmpp:jingle:errors:1"
	pnsRTP          = "urn:xmpp:jingle:apps:rtp:1"
	pnsRTCPFB       = "urn:xmpp:jingle:apps:rtp:rtcp-fb:0"
	pnsHdrExt       = "urn:xmpp:jingle:apps:rtp:rtp-hdrext:0"
	pnsSSMA         = "urn:xmpp:jingle:apps:rtp:ssma:0"
	pnsGrouping     = "urn:xmpp:jingle:apps:grouping:0"
	pnsICE          = "urn:xmpp:jingle:transports:ice-udp:1"
	pnsDTLS         = "urn:xmpp:jingle:apps:dtls:0"
	pnsSCTP         = "urn:xmpp:jingle:transports:dtls-sctp:1"
	pnsFocus        = "http://jitsi.org/protocol/focus"
	pnsJitMeet      = "http://jitsi.org/jitmeet"
	pnsMute         = "http://jitsi.org/jitmeet/" // + audio | video | desktop
	pnsMUC          = "http://jabber.org/protocol/muc"
	pnsMUCUser      = "http://jabber.org/protocol/muc#user"
	pnsCaps         = "http://jabber.org/protocol/caps"
	pnsNick         = "http://jabber.org/protocol/nick"
	pnsDiscoInfo    = "http://jabber.org/protocol/disco#info"
	pnsDiscoItems   = "http://jabber.org/protocol/disco#items"
	pnsPing         = "urn:xmpp:ping"
	pnsExtDisco     = "urn:xmpp:extdisco:2"
)

// ClientCapsNode is the XEP-0115 node lib-jitsi-meet puts in its presence.
const ClientCapsNode = "https://jitsi.org/jitsi-meet"

// clientFeatures is what the captured client (default options, Chromium)
// answers to disco#info, in the order it adds them. With no identity, the
// XEP-0115 hash of this list is "dtzK/3xhISaXUMVg59IpXxdvKyQ=", exactly the
// ver of both recordings (docs/prosody-and-clients.md#what-a-simulated-participant-imitates).
var clientFeatures = []string{
	"http://jabber.org/protocol/caps",
	"urn:xmpp:jingle:1",
	"urn:xmpp:jingle:apps:rtp:1",
	"urn:xmpp:jingle:transports:ice-udp:1",
	"urn:xmpp:jingle:apps:dtls:0",
	"urn:xmpp:jingle:transports:dtls-sctp:1",
	"urn:xmpp:jingle:apps:rtp:audio",
	"urn:xmpp:jingle:apps:rtp:video",
	"http://jitsi.org/json-encoded-sources",
	"urn:ietf:rfc:4588",
	"http://jitsi.org/remb",
	"http://jitsi.org/tcc",
	"urn:xmpp:rayo:client:1",
	"http://jitsi.org/source-name",
	"http://jitsi.org/receive-multiple-video-streams",
	"http://jitsi.org/visitors-1",
	"http://jitsi.org/start-muted-room-metadata",
}

// ClientFeatures returns (a copy of) the disco#info features of the real
// client with default options.
func ClientFeatures() []string { return slices.Clone(clientFeatures) }

// ClientCapsVer computes the XEP-0115 ver the client advertises for a feature
// list (it has no disco identity): base64(sha1(sorted features joined by
// "<", each followed by "<")).
func ClientCapsVer(features []string) string {
	f := slices.Clone(features)
	sort.Strings(f)
	var b strings.Builder
	for _, x := range f {
		b.WriteString(x)
		b.WriteByte('<')
	}
	sum := sha1.Sum([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// ParticipantConfig configures JoinConference. Zero values get defaults.
type ParticipantConfig struct {
	Addr   string // c2s address (Prosody.C2SAddr())
	Domain string // XMPP host to log in to (default "meet.test", anonymous)
	// User and Password log in with an account instead of anonymously
	// (an authenticated user of a secure-domain deployment).
	User, Password string
	Room           string // room JID (default "room1@conference.meet.test")
	FocusJID       string // where the conference IQ goes (default "focus@auth.meet.test/focus")

	// RequestRoom, when set, is the room named in the conference request
	// instead of Room (another spelling of the room Prosody folds to Room).
	RequestRoom string

	// Nick is the MUC nickname, i.e. the endpoint id. Default: 8 random
	// lower-case hex digits, which is what the captured lib-jitsi-meet used
	// (both recordings show a hex nick unrelated to the JID's localpart).
	Nick        string
	DisplayName string // <nick xmlns=…/nick> text (default: Nick)
	StatsID     string // <stats-id> (default "Participant-xxxx")
	Region      string // <jitsi_participant_region> when set
	MachineUID  string // conference IQ machine-uid (default: 32 random hex digits)
	// SessionID is an authentication session the focus gave this user
	// earlier (session-id / sessionId in the request), as the client keeps
	// it between requests; empty sends none.
	SessionID string
	// Properties are extra conference-request properties (e.g.
	// "startAudioMuted": "1"), sent after rtcstatsEnabled and visitors-version.
	Properties map[string]string

	// Features answered to disco#info and hashed into the caps ver; nil means
	// ClientFeatures().
	Features []string
	// CapsVer, when set, is advertised instead of the hash of Features (a
	// client lying about its capabilities).
	CapsVer string
	// Sources are the local sources put in session-accept. nil means one
	// audio source and one camera video source with an RTX (FID) partner;
	// an empty non-nil slice means none (receive only). Empty Name/MSID/
	// VideoType fields are filled in like the client does.
	Sources    []Source
	AudioMuted bool // initial mute state published in SourceInfo
	VideoMuted bool

	// Trickle puts a host candidate into the session-accept and sends one
	// trickled transport-info after it. The real client does neither on a
	// bridge session (it sends candidates only peer-to-peer; checked with
	// lib-jitsi-meet in Chromium), so the default is off.
	Trickle bool

	// ManualAccept turns off the automatic session-accept (default: accept
	// every usable offer from the focus at once); call Accept instead.
	ManualAccept bool
	// DiscoDelay holds back the answer to disco#info queries (a client busy
	// elsewhere, a slow link), so that another participant's discovery can
	// finish first.
	DiscoDelay time.Duration
	// AckMute answers the focus's mute IQs with a result. The real client
	// does not answer them at all (its handler consumes the IQ and sends
	// nothing), so the default is not to.
	AckMute bool
	// RetryNotReady retries the conference request with the client's back-off
	// (1 s, 2 s, 4 s … up to 120 s) while the focus answers ready≠"true", as
	// the client does forever; without it JoinConference fails at once.
	RetryNotReady bool

	// UseHTTP sends the conference request as POST <UseHTTP>/conference-request/v1
	// (a URL that already contains "/conference-request/" is used as is)
	// instead of the IQ; the join presence then carries <billingid>.
	UseHTTP string

	// Logf, if set, receives every stanza in and out (e.g. t.Logf).
	Logf func(format string, args ...any)
}

// Source is one local media source (an SSRC, plus its RTX partner for video).
type Source struct {
	Media     string // "audio" or "video"
	SSRC      uint32
	RTX       uint32 // FID partner of a video source (0: none)
	Name      string // e.g. "1a2b3c4d-v0"
	MSID      string // "<stream id> <track id>"
	VideoType string // video only: "camera" or "desktop"
}

// RemoteSource is a source the focus signalled to this participant.
type RemoteSource struct {
	SID       string // Jingle session it arrived in
	Owner     string // endpoint id (MUC nick), "jvb" for the bridge's own sources
	Media     string
	SSRC      uint32
	Name      string
	MSID      string
	VideoType string
}

// Occupant is another occupant of the room as seen in its last presence.
type Occupant struct {
	Nick, RealJID, Role, Affiliation string
	Presence                         *Elem
}

// EventKind says what an Event records.
type EventKind string

// Event kinds.
const (
	EventJoined        EventKind = "joined"         // own presence (status 110) received
	EventJoinError     EventKind = "join-error"     // the MUC refused the join presence
	EventLeft          EventKind = "left"           // own unavailable presence received
	EventOccupant      EventKind = "occupant"       // presence of an occupant other than the focus
	EventOccupantLeft  EventKind = "occupant-left"  // an occupant other than the focus left
	EventFocusPresence EventKind = "focus-presence" // presence of the recognised focus
	EventFocusLeft     EventKind = "focus-left"     // the focus left (the client fails with focusLeft)
	EventJingle        EventKind = "jingle"         // a Jingle IQ arrived (Action, SID, Owners)
	EventRejected      EventKind = "session-rejected"
	EventOfferFailed   EventKind = "offer-failed" // the browser could not apply the offer; no accept
	EventAcceptSent    EventKind = "session-accept-sent"
	EventAcceptResult  EventKind = "session-accept-result" // Reason = error condition, "" on success
	EventMute          EventKind = "mute"                  // a mute IQ arrived (Reason "ignored" if not from the focus)
	EventViolation     EventKind = "violation"             // Reason = the message
	EventDisco         EventKind = "disco-info"            // a disco#info query was answered
)

// Event is one thing the participant saw or did, in order.
type Event struct {
	Kind   EventKind
	Action string   // Jingle action (EventJingle, EventRejected)
	From   string   // sender of the stanza
	SID    string   // Jingle sid
	Owners []string // owners of the sources carried by a Jingle IQ
	Reason string
	Stanza *Elem // the stanza (do not modify)
	Time   time.Time
}

// ConferenceError is a conference request that did not end in ready="true".
type ConferenceError struct {
	Room       string
	Condition  string // XMPP error condition, e.g. "not-authorized"
	Text       string // error text, or the HTTP body
	HTTPStatus int    // HTTP mode, non-2xx status
	NotReady   bool   // answered with ready other than "true"
	VNode      string // answered with a visitor-node redirect
	Response   *Elem  // the IQ answer (XMPP mode)
	Err        error  // underlying error (a *StanzaError for IQ errors)
}

func (e *ConferenceError) Error() string {
	var what string
	switch {
	case e.NotReady:
		what = "focus is not ready"
	case e.VNode != "":
		what = "redirected to visitor node " + e.VNode
	case e.HTTPStatus != 0:
		what = fmt.Sprintf("HTTP %d: %s", e.HTTPStatus, strings.TrimSpace(e.Text))
	case e.Condition != "":
		what = e.Condition
		if e.Text != "" {
			what += ": " + e.Text
		}
	case e.Err != nil:
		what = e.Err.Error()
	default:
		what = "failed"
	}
	return fmt.Sprintf("testkit: conference request for %s: %s", e.Room, what)
}

func (e *ConferenceError) Unwrap() error { return e.Err }

// Participant is a simulated lib-jitsi-meet participant. All methods are
// safe for concurrent use.
type Participant struct {
	cfg         ParticipantConfig
	c           *Client
	nick        string
	room        string
	occupantJID string
	features    []string
	capsVer     string
	machineUID  string
	statsID     string
	displayName string

	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once

	inMu   sync.Mutex
	inQ    []*Elem
	inWake chan struct{}

	mu           sync.Mutex
	closed       bool
	changed      chan struct{}
	confResp     *Elem
	focusBare    []string
	focusMUC     string
	focusPres    *Elem
	occupants    map[string]Occupant
	joined, left bool
	joinErr      error
	role, aff    string
	sessions     map[string]*pSession
	current      string
	offers       []*Elem
	received     map[string][]*Elem
	sent         map[string][]*Elem
	violations   []string
	events       []Event
	local        []Source
	published    bool            // SourceInfo lists the local sources (after the first accept)
	muted        map[string]bool // by source name
	mutedByFocus map[string]bool // "audio", "video", "desktop"
	mutes        []*Elem
	waiters      map[string]chan *Elem
}

type pSession struct {
	sid, peer     string
	offer         *Elem
	bridgeSession string
	remote        []RemoteSource
	acceptSent    bool
	accepted      bool
	// Our ICE/DTLS credentials for this session (set at creation, immutable).
	ufrag, pwd, fingerprint string
}

// JoinConference logs in anonymously, sends the conference request, waits for
// ready="true" and only then joins the room, returning once its own presence
// (status 110) arrives. A MUC refusal with not-allowed (room creation
// restricted) is retried up to 3 times after 1–2.5 s, conference request
// included, as the client does. Errors from the request are *ConferenceError;
// a refused join wraps the presence's *StanzaError.
func JoinConference(ctx context.Context, cfg ParticipantConfig) (*Participant, error) {
	if cfg.Addr == "" {
		return nil, errors.New("testkit: ParticipantConfig needs Addr")
	}
	if cfg.Domain == "" {
		cfg.Domain = Domain
	}
	if cfg.Room == "" {
		cfg.Room = "room1@" + MUCDomain
	}
	if cfg.FocusJID == "" {
		cfg.FocusJID = FocusUser + "@" + AuthDomain + "/focus"
	}
	p := &Participant{
		cfg:          cfg,
		room:         strings.ToLower(cfg.Room),
		inWake:       make(chan struct{}, 1),
		changed:      make(chan struct{}),
		occupants:    map[string]Occupant{},
		sessions:     map[string]*pSession{},
		received:     map[string][]*Elem{},
		sent:         map[string][]*Elem{},
		muted:        map[string]bool{},
		mutedByFocus: map[string]bool{},
		waiters:      map[string]chan *Elem{},
	}
	p.features = cfg.Features
	if p.features == nil {
		p.features = ClientFeatures()
	}
	p.capsVer = ClientCapsVer(p.features)
	if cfg.CapsVer != "" {
		p.capsVer = cfg.CapsVer
	}
	p.nick = cfg.Nick
	if p.nick == "" {
		p.nick = ptHex(4)
	}
	p.occupantJID = p.room + "/" + p.nick
	p.machineUID = cfg.MachineUID
	if p.machineUID == "" {
		p.machineUID = ptHex(16)
	}
	p.statsID = cfg.StatsID
	if p.statsID == "" {
		p.statsID = "Participant-" + ptHex(2)
	}
	p.displayName = cfg.DisplayName
	if p.displayName == "" {
		p.displayName = p.nick
	}
	p.local = p.defaultSources(cfg.Sources)
	for _, s := range p.local {
		p.muted[s.Name] = s.Media == "audio" && cfg.AudioMuted || s.Media == "video" && cfg.VideoMuted
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())

	c, err := Dial(ctx, DialConfig{Addr: cfg.Addr, Domain: cfg.Domain, User: cfg.User, Password: cfg.Password, Handler: p.enqueue})
	if err != nil {
		p.cancel()
		return nil, err
	}
	p.c = c
	p.wg.Add(1)
	go p.worker()

	if err := p.join(ctx); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

func (p *Participant) defaultSources(given []Source) []Source {
	if given == nil {
		given = []Source{{Media: "audio"}, {Media: "video", RTX: ptSSRC()}}
	}
	out := make([]Source, 0, len(given))
	counts := map[string]int{}
	for _, s := range given {
		out = append(out, p.fillSource(s, counts[s.Media]))
		counts[s.Media]++
	}
	return out
}

// fillSource completes a source the way the client names things: name
// "<nick>-a<i>"/"<nick>-v<i>", msid "<nick>-<media>-<i>-1 <uuid>-1".
func (p *Participant) fillSource(s Source, idx int) Source {
	if s.SSRC == 0 {
		s.SSRC = ptSSRC()
	}
	if s.Name == "" {
		s.Name = fmt.Sprintf("%s-%s%d", p.nick, s.Media[:1], idx)
	}
	if s.MSID == "" {
		s.MSID = fmt.Sprintf("%s-%s-%d-1 %s-1", p.nick, s.Media, idx, ptUUID())
	}
	if s.Media == "video" && s.VideoType == "" {
		s.VideoType = "camera"
	}
	return s
}

func (p *Participant) join(ctx context.Context) error {
	// What the client asks the server right after login (answers ignored).
	p.send(NewElem("", "iq", "type", "get", "to", p.cfg.Domain, "id", randomID()).Add(NewElem(pnsExtDisco, "services")))
	p.send(NewElem("", "iq", "type", "get", "to", p.cfg.Domain, "id", randomID()).Add(NewElem(pnsDiscoInfo, "query")))

	for attempt := 0; ; attempt++ {
		focusJID, err := p.conferenceRequest(ctx)
		if err != nil {
			return err
		}
		p.mu.Lock()
		if focusJID != "" && !slices.Contains(p.focusBare, focusJID) {
			p.focusBare = append(p.focusBare, focusJID)
		}
		p.joinErr = nil
		p.mu.Unlock()

		p.send(p.presence(true))
		err = p.WaitFor(ctx, func() bool {
			p.mu.Lock()
			defer p.mu.Unlock()
			return p.joined || p.joinErr != nil
		})
		if err != nil {
			return fmt.Errorf("testkit: waiting for own presence in %s: %w", p.room, err)
		}
		p.mu.Lock()
		joinErr := p.joinErr
		p.mu.Unlock()
		if joinErr == nil {
			break
		}
		var se *StanzaError
		if errors.As(joinErr, &se) && se.Condition == "not-allowed" && attempt < 3 {
			jitter := time.Second + time.Duration(ptUint32()%1500)*time.Millisecond
			select {
			case <-time.After(jitter):
				continue
			case <-ctx.Done():
				return fmt.Errorf("testkit: joining %s: %w (last refusal: %v)", p.room, ctx.Err(), joinErr)
			}
		}
		return fmt.Errorf("testkit: joining %s as %s: %w", p.room, p.nick, joinErr)
	}
	// The client asks the room for its disco#info once joined.
	p.send(NewElem("", "iq", "type", "get", "to", p.room, "id", randomID()).Add(NewElem(pnsDiscoInfo, "query")))
	return nil
}

// conferenceRequest asks the focus for the conference and returns the
// focusjid of the answer.
func (p *Participant) conferenceRequest(ctx context.Context) (string, error) {
	backoff := time.Second
	for {
		var focusJID string
		var err error
		if p.cfg.UseHTTP != "" {
			focusJID, err = p.conferenceRequestHTTP(ctx)
		} else {
			focusJID, err = p.conferenceRequestIQ(ctx)
		}
		var ce *ConferenceError
		if err == nil || !p.cfg.RetryNotReady || !errors.As(err, &ce) || !ce.NotReady {
			return focusJID, err
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return "", err
		}
		backoff = min(2*backoff, 120*time.Second)
	}
}

func (p *Participant) conferenceRequestIQ(ctx context.Context) (string, error) {
	conf := NewElem(pnsFocus, "conference", "machine-uid", p.machineUID, "room", p.requestRoom())
	if p.cfg.SessionID != "" {
		conf.Set("session-id", p.cfg.SessionID)
	}
	conf.Add(
		NewElem("", "property", "name", "rtcstatsEnabled", "value", "false"),
		NewElem("", "property", "name", "visitors-version", "value", "1"))
	for _, k := range ptSortedKeys(p.cfg.Properties) {
		conf.Add(NewElem("", "property", "name", k, "value", p.cfg.Properties[k]))
	}
	iq := NewElem("", "iq", "to", p.cfg.FocusJID, "type", "set").Add(conf)
	p.logOut(iq)
	resp, err := p.c.SendIQ(ctx, iq) // no timeout of its own, as the client
	if resp != nil {
		p.logIn(resp)
	}
	ce := &ConferenceError{Room: p.room, Response: resp, Err: err}
	if err != nil {
		var se *StanzaError
		if errors.As(err, &se) {
			ce.Condition, ce.Text = se.Condition, se.Text
		}
		return "", ce
	}
	p.mu.Lock()
	p.confResp = resp
	p.mu.Unlock()
	c := resp.Child(pnsFocus, "conference")
	if c == nil {
		ce.Text = "answer has no <conference/>"
		return "", ce
	}
	if v := c.Attr("vnode"); v != "" {
		ce.VNode = v
		return "", ce
	}
	if c.Attr("ready") != "true" {
		ce.NotReady = true
		return "", ce
	}
	return c.Attr("focusjid"), nil
}

func (p *Participant) conferenceRequestHTTP(ctx context.Context) (string, error) {
	url := p.cfg.UseHTTP
	if !strings.Contains(url, "/conference-request/") {
		url = strings.TrimRight(url, "/") + "/conference-request/v1"
	}
	props := map[string]any{"rtcstatsEnabled": false, "visitors-version": 1}
	for k, v := range p.cfg.Properties {
		props[k] = v
	}
	fields := map[string]any{"machineUid": p.machineUID, "properties": props, "room": p.requestRoom()}
	if p.cfg.SessionID != "" {
		fields["sessionId"] = p.cfg.SessionID
	}
	body, _ := json.Marshal(fields)
	ce := &ConferenceError{Room: p.room}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		ce.Err = err
		return "", ce
	}
	req.Header.Set("Content-Type", "application/json")
	p.logf("OUT POST %s %s", url, body)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ce.Err = err
		return "", ce
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	p.logf("IN  HTTP %d %s", resp.StatusCode, b)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		ce.HTTPStatus, ce.Text = resp.StatusCode, string(b)
		return "", ce
	}
	var r struct {
		Ready    any    `json:"ready"`
		FocusJID string `json:"focusJid"`
		VNode    string `json:"vnode"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		ce.Err, ce.Text = err, string(b)
		return "", ce
	}
	if r.VNode != "" {
		ce.VNode = r.VNode
		return "", ce
	}
	if !ptTruthy(r.Ready) {
		ce.NotReady = true
		return "", ce
	}
	return r.FocusJID, nil
}

// presence builds the MUC presence: the join presence (with <x xmlns=muc/>)
// in the capture's child order, or an update, where SourceInfo comes last
// (the client re-appends it when it changes).
func (p *Participant) presence(initial bool) *Elem {
	pres := NewElem("", "presence", "to", p.occupantJID)
	if initial {
		x := NewElem(pnsMUC, "x")
		if p.cfg.UseHTTP != "" {
			x.Add(NewElem("", "billingid").SetText(p.machineUID))
		}
		pres.Add(x)
	}
	pres.Add(NewElem("", "stats-id").SetText(p.statsID))
	pres.Add(NewElem(pnsCaps, "c", "hash", "sha-1", "node", ClientCapsNode, "ver", p.capsVer))
	sourceInfo := NewElem("", "SourceInfo").SetText(p.sourceInfo())
	if initial {
		pres.Add(sourceInfo)
	}
	pres.Add(NewElem("", "jitsi_participant_codecList").SetText("av1,vp9,vp8,h264"))
	if p.cfg.Region != "" {
		pres.Add(NewElem("", "jitsi_participant_region").SetText(p.cfg.Region))
	}
	pres.Add(NewElem(pnsNick, "nick").SetText(p.displayName))
	if !initial {
		pres.Add(sourceInfo)
	}
	return pres
}

// sourceInfo is the SourceInfo JSON: {} until the sources are in a session,
// then {"<name>":{"muted":bool[,"videoType":"desktop"]},…} in source order.
func (p *Participant) sourceInfo() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.published {
		return "{}"
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, s := range p.local {
		if i > 0 {
			b.WriteByte(',')
		}
		name, _ := json.Marshal(s.Name)
		fmt.Fprintf(&b, `%s:{"muted":%t`, name, p.muted[s.Name])
		if s.VideoType == "desktop" {
			b.WriteString(`,"videoType":"desktop"`)
		}
		b.WriteByte('}')
	}
	b.WriteByte('}')
	return b.String()
}

// ---- incoming stanzas ------------------------------------------------------

// enqueue is the Client handler: it only queues, so the read loop never
// waits for the participant.
func (p *Participant) enqueue(st *Elem) {
	p.inMu.Lock()
	p.inQ = append(p.inQ, st)
	p.inMu.Unlock()
	select {
	case p.inWake <- struct{}{}:
	default:
	}
}

func (p *Participant) worker() {
	defer p.wg.Done()
	for {
		p.inMu.Lock()
		q := p.inQ
		p.inQ = nil
		p.inMu.Unlock()
		for _, st := range q {
			if p.ctx.Err() != nil {
				return
			}
			p.handle(st)
		}
		if len(q) > 0 {
			continue
		}
		select {
		case <-p.inWake:
		case <-p.ctx.Done():
			return
		case <-p.c.Done():
			p.mu.Lock()
			p.notifyLocked()
			p.mu.Unlock()
			select {
			case <-p.inWake:
			case <-p.ctx.Done():
				return
			}
		}
	}
}

func (p *Participant) handle(st *Elem) {
	p.logIn(st)
	switch st.Local {
	case "presence":
		p.onPresence(st)
	case "iq":
		p.onIQ(st)
	}
}

func (p *Participant) onPresence(st *Elem) {
	from := st.Attr("from")
	bare, nick, _ := strings.Cut(from, "/")
	if !strings.EqualFold(bare, p.room) {
		return
	}
	x := st.Child(pnsMUCUser, "x")
	item := x.Child("", "item")
	self := from == p.occupantJID || ptHasStatus(x, "110")

	p.mu.Lock()
	defer p.mu.Unlock()
	switch st.Attr("type") {
	case "error":
		if (from == p.occupantJID || from == p.room) && !p.joined {
			se := StanzaErrorOf(st)
			p.joinErr = se
			p.eventLocked(Event{Kind: EventJoinError, From: from, Reason: se.Condition, Stanza: st})
		}
		return
	case "unavailable":
		if self {
			p.joined, p.left = false, true
			p.eventLocked(Event{Kind: EventLeft, From: from, Stanza: st})
			return
		}
		delete(p.occupants, nick)
		if from == p.focusMUC {
			p.focusMUC = ""
			p.eventLocked(Event{Kind: EventFocusLeft, From: from, Stanza: st})
		} else {
			p.eventLocked(Event{Kind: EventOccupantLeft, From: from, Stanza: st})
		}
		return
	case "":
	default:
		return
	}
	if self {
		p.role, p.aff = ptAttr(item, "role"), ptAttr(item, "affiliation")
		if !p.joined {
			p.joined = true
			p.eventLocked(Event{Kind: EventJoined, From: from, Stanza: st})
		} else {
			p.notifyLocked()
		}
		return
	}
	realJID := ptAttr(item, "jid")
	if realJID == "" {
		return // the client ignores occupants whose real JID it cannot see
	}
	p.occupants[nick] = Occupant{Nick: nick, RealJID: realJID, Role: ptAttr(item, "role"), Affiliation: ptAttr(item, "affiliation"), Presence: st}
	if p.isFocusJIDLocked(realJID) {
		p.focusMUC, p.focusPres = from, st
		p.eventLocked(Event{Kind: EventFocusPresence, From: from, Stanza: st})
		return
	}
	p.eventLocked(Event{Kind: EventOccupant, From: from, Stanza: st})
}

// isFocusJIDLocked: the client takes an occupant for the focus when its real
// JID starts with "<known focus bare JID>/".
func (p *Participant) isFocusJIDLocked(realJID string) bool {
	for _, f := range p.focusBare {
		if strings.HasPrefix(realJID, f+"/") {
			return true
		}
	}
	return false
}

func (p *Participant) onIQ(iq *Elem) {
	typ := iq.Attr("type")
	if typ == "result" || typ == "error" {
		p.mu.Lock()
		ch, ok := p.waiters[iq.Attr("id")]
		delete(p.waiters, iq.Attr("id"))
		p.mu.Unlock()
		if ok {
			ch <- iq
		}
		return
	}
	if typ != "get" && typ != "set" {
		return
	}
	if j := iq.Child(pnsJingle, "jingle"); j != nil && typ == "set" {
		p.onJingle(iq, j)
		return
	}
	for _, media := range []string{"audio", "video", "desktop"} {
		if m := iq.Child(pnsMute+media, "mute"); m != nil && typ == "set" {
			p.onMute(iq, m, media)
			return
		}
	}
	if q := iq.Child(pnsDiscoInfo, "query"); q != nil && typ == "get" {
		res := NewElem(pnsDiscoInfo, "query")
		if n := q.Attr("node"); n != "" {
			res.Set("node", n)
		}
		for _, f := range p.features {
			res.Add(NewElem("", "feature", "var", f))
		}
		answer := func() {
			p.send(ptResult(iq).Add(res))
			p.event(Event{Kind: EventDisco, From: iq.Attr("from"), Reason: q.Attr("node"), Stanza: iq})
		}
		if d := p.cfg.DiscoDelay; d > 0 {
			p.spawn(func() {
				select {
				case <-time.After(d):
					answer()
				case <-p.ctx.Done():
				}
			})
			return
		}
		answer()
		return
	}
	if q := iq.Child(pnsDiscoItems, "query"); q != nil && typ == "get" {
		res := NewElem(pnsDiscoItems, "query")
		if n := q.Attr("node"); n != "" {
			res.Set("node", n)
		}
		p.send(ptResult(iq).Add(res))
		return
	}
	if iq.Child(pnsPing, "ping") != nil && typ == "get" {
		p.send(ptResult(iq))
		return
	}
	// Strophe answers IQs nobody handles with service-unavailable.
	p.send(ptError(iq, "cancel", "service-unavailable"))
}

func (p *Participant) onMute(iq, m *Elem, media string) {
	from := iq.Attr("from")
	p.mu.Lock()
	if from != p.focusMUC || p.focusMUC == "" {
		// "Ignored mute from non focus peer": no answer at all.
		p.eventLocked(Event{Kind: EventMute, From: from, Reason: "ignored", Stanza: iq})
		p.mu.Unlock()
		return
	}
	p.mutes = append(p.mutes, iq)
	changed := false
	if strings.TrimSpace(m.Text) == "true" {
		for _, s := range p.local {
			if ptSourceKind(s) == media && !p.muted[s.Name] {
				p.muted[s.Name] = true
				changed = true
			}
		}
		p.mutedByFocus[media] = true
	}
	p.eventLocked(Event{Kind: EventMute, From: from, Reason: media + "=" + strings.TrimSpace(m.Text), Stanza: iq})
	publish := changed && p.published
	p.mu.Unlock()
	if p.cfg.AckMute {
		p.send(ptResult(iq))
	}
	if publish {
		p.send(p.presence(false))
	}
}

// ptSourceKind maps a local source to the mute IQ media it belongs to.
func ptSourceKind(s Source) string {
	if s.Media == "video" && s.VideoType == "desktop" {
		return "desktop"
	}
	return s.Media
}

func (p *Participant) onJingle(iq, j *Elem) {
	from, sid, action := iq.Attr("from"), j.Attr("sid"), j.Attr("action")
	var srcs []RemoteSource
	var viol []string
	if action == "source-add" || action == "source-remove" {
		srcs, viol = ptParseSources(sid, j, from, action == "source-add")
	}
	p.mu.Lock()
	p.received[action] = append(p.received[action], iq)
	sess := p.sessions[sid]
	// Sources change before the event is logged, so a test that waits for
	// the event sees them.
	if sess != nil && from == sess.peer {
		switch action {
		case "source-add":
			for _, v := range viol {
				p.violationLocked(fmt.Sprintf("source-add sid=%s from %s: %s", sid, from, v), iq)
			}
			for _, n := range srcs {
				sess.remote = slices.DeleteFunc(sess.remote, func(o RemoteSource) bool { return o.SSRC == n.SSRC })
				sess.remote = append(sess.remote, n)
			}
		case "source-remove":
			for _, n := range srcs {
				sess.remote = slices.DeleteFunc(sess.remote, func(o RemoteSource) bool { return o.SSRC == n.SSRC })
			}
		}
	}
	p.eventLocked(Event{Kind: EventJingle, Action: action, From: from, SID: sid, Owners: ptOwners(j, from), Stanza: iq})
	p.mu.Unlock()

	// strophe.jingle.js onJingle: session checks first, then the action.
	if action != "session-initiate" {
		if sess == nil || from != sess.peer {
			p.send(ptError(iq, "cancel", "item-not-found", NewElem(pnsJingleErrors, "unknown-session")))
			return
		}
	} else if sess != nil {
		p.send(ptError(iq, "cancel", "service-unavailable"))
		return
	}

	switch action {
	case "session-initiate":
		p.onSessionInitiate(iq, j)
	case "session-accept", "content-modify", "transport-info", "transport-replace", "source-add", "source-remove":
		// Acknowledged; transport-info without ice-generation and
		// transport-replace are then ignored for the JVB session.
		p.send(ptResult(iq))
	case "session-terminate":
		p.send(ptResult(iq))
		p.endSession(sid)
	default:
		p.send(ptError(iq, "cancel", "bad-request"))
	}
}

func (p *Participant) onSessionInitiate(iq, j *Elem) {
	from, sid := iq.Attr("from"), j.Attr("sid")
	sess := &pSession{sid: sid, peer: from, offer: iq, ufrag: ptAlnum(4), pwd: ptAlnum(24), fingerprint: ptFingerprint()}
	_, res, _ := strings.Cut(from, "/")
	p.mu.Lock()
	p.offers = append(p.offers, iq)
	p.sessions[sid] = sess
	isFocus := p.focusMUC != "" && from == p.focusMUC
	p.mu.Unlock()

	// The rejection is sent synchronously from the CALL_INCOMING handler, so
	// it goes out before the ack.
	switch {
	case res != "focus":
		// Not from <room>/focus: a P2P offer, and P2P is off here.
		p.reject(iq, sess, "decline", "P2P disabled")
		p.send(ptResult(iq))
		return
	case !isFocus:
		p.reject(iq, sess, "security-error", "Only focus can start new sessions")
		p.send(ptResult(iq))
		return
	}
	p.send(ptResult(iq))

	viol, fatal := ptCheckOffer(j)
	srcs, sviol := ptParseSources(sid, j, from, true)
	viol = append(viol, sviol...)
	bs := j.Child(pnsFocus, "bridge-session")
	p.mu.Lock()
	for _, v := range viol {
		p.violationLocked(fmt.Sprintf("session-initiate sid=%s: %s", sid, v), iq)
	}
	sess.remote = srcs
	sess.bridgeSession = ptAttr(bs, "id")
	p.current = sid
	if fatal {
		p.eventLocked(Event{Kind: EventOfferFailed, From: from, SID: sid, Reason: "conference.offerAnswerFailed", Stanza: iq})
	}
	p.notifyLocked()
	p.mu.Unlock()
	if !fatal && !p.cfg.ManualAccept {
		p.accept(sess)
	}
}

// reject terminates an offer the client refuses, as JingleSessionPC.terminate
// does (no bridge-session: the session never got one).
func (p *Participant) reject(iq *Elem, sess *pSession, reason, text string) {
	j := NewElem(pnsJingle, "jingle", "action", "session-terminate", "initiator", sess.peer, "sid", sess.sid).Add(
		NewElem("", "reason").Add(NewElem("", reason), NewElem("", "text").SetText(text)))
	t := NewElem("", "iq", "to", sess.peer, "type", "set", "id", randomID()).Add(j)
	p.mu.Lock()
	delete(p.sessions, sess.sid)
	p.sent["session-terminate"] = append(p.sent["session-terminate"], ptResolved(t))
	p.eventLocked(Event{Kind: EventRejected, Action: reason, From: sess.peer, SID: sess.sid, Reason: text, Stanza: iq})
	p.mu.Unlock()
	p.send(t)
}

// endSession forgets a session and the remote sources that came with it.
func (p *Participant) endSession(sid string) {
	p.mu.Lock()
	delete(p.sessions, sid)
	if p.current == sid {
		p.current = ""
	}
	p.notifyLocked()
	p.mu.Unlock()
}

// accept sends session-accept and, right behind it, one trickled
// transport-info; the answers are awaited in the background (10 s, the
// client's IQ timeout). The returned channel gets the accept's outcome.
func (p *Participant) accept(sess *pSession) <-chan error {
	out := make(chan error, 1)
	p.mu.Lock()
	sess.acceptSent = true
	local := slices.Clone(p.local)
	p.mu.Unlock()

	acc := NewElem("", "iq", "to", sess.peer, "type", "set", "id", randomID()).Add(p.buildAccept(sess, local))
	accCh := p.expect(acc.Attr("id"))
	var ti *Elem
	var tiCh chan *Elem
	if p.cfg.Trickle {
		ti = NewElem("", "iq", "to", sess.peer, "type", "set", "id", randomID()).Add(p.buildTransportInfo(sess))
		tiCh = p.expect(ti.Attr("id"))
	}
	p.mu.Lock()
	p.sent["session-accept"] = append(p.sent["session-accept"], ptResolved(acc))
	if ti != nil {
		p.sent["transport-info"] = append(p.sent["transport-info"], ptResolved(ti))
	}
	p.eventLocked(Event{Kind: EventAcceptSent, Action: "session-accept", From: sess.peer, SID: sess.sid, Stanza: ptResolved(acc)})
	p.mu.Unlock()
	p.send(acc)
	if ti != nil {
		p.send(ti)
	}

	ok := p.spawn(func() {
		resp, err := p.await(acc.Attr("id"), accCh)
		cond := ""
		if err == nil {
			if se := StanzaErrorOf(resp); se != nil {
				err, cond = se, se.Condition
			}
		} else {
			cond = "timeout"
		}
		p.mu.Lock()
		if err == nil {
			sess.accepted = true
		} else if p.ctx.Err() == nil {
			p.violationLocked(fmt.Sprintf("session-accept sid=%s not acknowledged: %v (the client never considers the session established)", sess.sid, err), resp)
		}
		p.eventLocked(Event{Kind: EventAcceptResult, Action: "session-accept", From: sess.peer, SID: sess.sid, Reason: cond, Stanza: resp})
		publish := err == nil && !p.published
		if publish {
			p.published = true
		}
		p.mu.Unlock()
		out <- err
		if publish {
			p.send(p.presence(false))
		}
		if ti == nil {
			return
		}
		if resp, err := p.await(ti.Attr("id"), tiCh); err == nil && StanzaErrorOf(resp) != nil && p.ctx.Err() == nil {
			p.violation(fmt.Sprintf("transport-info sid=%s answered with %v", sess.sid, StanzaErrorOf(resp)), resp)
		}
	})
	if !ok {
		out <- ErrClosed
	}
	return out
}

// spawn runs f in a goroutine Close waits for, unless Close has begun.
func (p *Participant) spawn(f func()) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		f()
	}()
	return true
}

func (p *Participant) expect(id string) chan *Elem {
	ch := make(chan *Elem, 1)
	p.mu.Lock()
	p.waiters[id] = ch
	p.mu.Unlock()
	return ch
}

func (p *Participant) await(id string, ch chan *Elem) (*Elem, error) {
	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	select {
	case r := <-ch:
		return r, nil
	case <-t.C:
	case <-p.ctx.Done():
	}
	p.mu.Lock()
	delete(p.waiters, id)
	p.mu.Unlock()
	if p.ctx.Err() != nil {
		return nil, ErrClosed
	}
	return nil, errors.New("no answer within 10 s")
}

// buildAccept answers the offer the way the client's SDP.toJingle renders a
// browser answer: a BUNDLE group over audio, video and data; per offered
// content the payload types and header extensions of the offer that the
// browser supports (with the offer's ids), the local sources with
// name/videoType/msid and FID groups, rtcp-mux; a transport with our own
// ufrag/pwd and fingerprint (setup="active"), one host candidate in the
// first content.
func (p *Participant) buildAccept(sess *pSession, local []Source) *Elem {
	j := NewElem(pnsJingle, "jingle", "action", "session-accept", "initiator", sess.peer, "responder", p.c.JID(), "sid", sess.sid)
	group := NewElem(pnsGrouping, "group", "semantics", "BUNDLE")
	for _, n := range []string{"audio", "video", "data"} {
		group.Add(NewElem("", "content", "name", n))
	}
	j.Add(group)
	first := p.cfg.Trickle // only a trickling client puts a candidate in the accept
	for _, oc := range sess.offer.Child(pnsJingle, "jingle").All(pnsJingle, "content") {
		if oc.Attr("senders") == "rejected" {
			continue
		}
		desc := oc.Child(pnsRTP, "description")
		var c *Elem
		switch {
		case ptIsData(oc):
			c = NewElem("", "content", "creator", "responder", "name", "data")
			c.Add(p.localTransport(sess, true, first))
		case desc != nil && (desc.Attr("media") == "audio" || desc.Attr("media") == "video"):
			media := desc.Attr("media")
			var mine []Source
			for _, s := range local {
				if s.Media == media {
					mine = append(mine, s)
				}
			}
			senders := "both"
			if len(mine) == 0 {
				senders = "responder" // a=recvonly, as SDP.toJingle maps it
			}
			c = NewElem("", "content", "creator", "responder", "name", media, "senders", senders)
			c.Add(ptAnswerDescription(desc, media, mine))
			c.Add(p.localTransport(sess, false, first))
		default:
			continue
		}
		j.Add(c)
		first = false
	}
	return j
}

func (p *Participant) localTransport(sess *pSession, data, withCandidate bool) *Elem {
	t := NewElem(pnsICE, "transport")
	if data {
		t.Add(NewElem(pnsSCTP, "sctpmap", "number", "5000", "protocol", "webrtc-datachannel", "streams", "0"))
	}
	t.Add(NewElem(pnsDTLS, "fingerprint", "hash", "sha-256", "setup", "active").SetText(sess.fingerprint))
	t.Set("pwd", sess.pwd).Set("ufrag", sess.ufrag)
	if withCandidate {
		t.Add(NewElem("", "candidate", "component", "1", "foundation", strconv.FormatUint(uint64(ptUint32()), 10),
			"generation", "0", "id", ptAlnum(10), "ip", "127.0.0.1", "network", "1",
			"port", strconv.Itoa(30000+int(ptUint32()%30000)), "priority", "2122260223", "protocol", "udp", "type", "host"))
	}
	return t
}

// buildTransportInfo is the trickled candidate (shaped like the capture's:
// candidates, then the fingerprint with required="true").
func (p *Participant) buildTransportInfo(sess *pSession) *Elem {
	name := "audio"
	if oc := sess.offer.Child(pnsJingle, "jingle").Child(pnsJingle, "content"); oc != nil && !ptIsData(oc) {
		if d := oc.Child(pnsRTP, "description"); d != nil && d.Attr("media") != "" {
			name = d.Attr("media")
		}
	}
	t := NewElem(pnsICE, "transport", "pwd", sess.pwd, "ufrag", sess.ufrag).Add(
		NewElem("", "candidate", "component", "1", "foundation", strconv.FormatUint(uint64(ptUint32()), 10),
			"generation", "0", "id", ptAlnum(10), "ip", "127.0.0.1", "network", "1", "port", "9",
			"priority", "1518280447", "protocol", "tcp", "tcptype", "active", "type", "host"),
		NewElem(pnsDTLS, "fingerprint", "hash", "sha-256", "required", "true").SetText(sess.fingerprint))
	return NewElem(pnsJingle, "jingle", "action", "transport-info", "initiator", sess.peer, "sid", sess.sid).Add(
		NewElem("", "content", "creator", "responder", "name", name).Add(t))
}

// Codecs and header extensions Chrome would keep from an offer.
var (
	ptAudioCodecs = map[string]bool{"opus/48000": true, "red/48000": true, "g722/8000": true, "pcmu/8000": true,
		"pcma/8000": true, "cn/8000": true, "telephone-event/48000": true, "telephone-event/8000": true}
	ptVideoCodecs = map[string]bool{"av1/90000": true, "vp9/90000": true, "vp8/90000": true, "h264/90000": true}
	ptHdrExts     = map[string]bool{
		"urn:ietf:params:rtp-hdrext:ssrc-audio-level":                                             true,
		"http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time":                              true,
		"http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01":               true,
		"urn:ietf:params:rtp-hdrext:sdes:mid":                                                     true,
		"urn:ietf:params:rtp-hdrext:toffset":                                                      true,
		"urn:3gpp:video-orientation":                                                              true,
		"http://www.webrtc.org/experiments/rtp-hdrext/playout-delay":                              true,
		"http://www.webrtc.org/experiments/rtp-hdrext/video-content-type":                         true,
		"http://www.webrtc.org/experiments/rtp-hdrext/video-timing":                               true,
		"http://www.webrtc.org/experiments/rtp-hdrext/color-space":                                true,
		"urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id":                                           true,
		"urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id":                                  true,
		"https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension": true,
		"http://www.webrtc.org/experiments/rtp-hdrext/video-layers-allocation00":                  true,
		"http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time":                           true,
	}
	ptRTCPFB = map[string]bool{"goog-remb": true, "transport-cc": true, "ccm": true, "nack": true}
)

func ptAnswerDescription(offer *Elem, media string, mine []Source) *Elem {
	d := NewElem(pnsRTP, "description", "media", media)
	known := ptAudioCodecs
	if media == "video" {
		known = ptVideoCodecs
	}
	kept := map[string]bool{}
	for _, pt := range offer.All(pnsRTP, "payload-type") {
		if known[strings.ToLower(pt.Attr("name"))+"/"+pt.Attr("clockrate")] {
			kept[pt.Attr("id")] = true
		}
	}
	for _, pt := range offer.All(pnsRTP, "payload-type") {
		keep := kept[pt.Attr("id")]
		if media == "video" && strings.EqualFold(pt.Attr("name"), "rtx") && pt.Attr("clockrate") == "90000" {
			for _, par := range pt.All("", "parameter") {
				if par.Attr("name") == "apt" && kept[par.Attr("value")] {
					keep = true
				}
			}
		}
		if !keep {
			continue
		}
		ch := pt.Attr("channels")
		if ch == "" {
			ch = "1"
		}
		a := NewElem("", "payload-type", "channels", ch, "clockrate", pt.Attr("clockrate"), "id", pt.Attr("id"), "name", pt.Attr("name"))
		for _, par := range pt.All("", "parameter") {
			a.Add(NewElem("", "parameter", "name", par.Attr("name"), "value", par.Attr("value")))
		}
		for _, fb := range pt.All(pnsRTCPFB, "rtcp-fb") {
			if ptRTCPFB[fb.Attr("type")] {
				e := NewElem(pnsRTCPFB, "rtcp-fb", "type", fb.Attr("type"))
				if st := fb.Attr("subtype"); st != "" {
					e.Set("subtype", st)
				}
				a.Add(e)
			}
		}
		d.Add(a)
	}
	for _, s := range mine {
		d.Add(ptSourceElem(s, s.SSRC))
		if s.RTX != 0 {
			d.Add(ptSourceElem(s, s.RTX))
		}
	}
	for _, s := range mine {
		if s.RTX != 0 {
			d.Add(ptFIDGroup(s))
		}
	}
	d.Add(NewElem("", "rtcp-mux"))
	for _, h := range offer.All(pnsHdrExt, "rtp-hdrext") {
		if ptHdrExts[h.Attr("uri")] {
			d.Add(NewElem(pnsHdrExt, "rtp-hdrext", "id", h.Attr("id"), "uri", h.Attr("uri")))
		}
	}
	if offer.Child("", "extmap-allow-mixed") != nil {
		d.Add(NewElem(pnsHdrExt, "extmap-allow-mixed"))
	}
	return d
}

func ptSourceElem(s Source, ssrc uint32) *Elem {
	e := NewElem(pnsSSMA, "source", "name", s.Name, "ssrc", strconv.FormatUint(uint64(ssrc), 10))
	if s.Media == "video" && s.VideoType != "" {
		e.Set("videoType", s.VideoType)
	}
	if s.MSID != "" {
		e.Add(NewElem("", "parameter", "name", "msid", "value", s.MSID))
	}
	return e
}

func ptFIDGroup(s Source) *Elem {
	return NewElem(pnsSSMA, "ssrc-group", "semantics", "FID").Add(
		NewElem("", "source", "ssrc", strconv.FormatUint(uint64(s.SSRC), 10)),
		NewElem("", "source", "ssrc", strconv.FormatUint(uint64(s.RTX), 10)))
}

// sourcesJingle builds a client source-add/source-remove (SDPDiffer.toJingle:
// <content name=media><description media=…> with sources and groups).
func (p *Participant) sourcesJingle(action, peer, sid string, srcs []Source) *Elem {
	j := NewElem(pnsJingle, "jingle", "action", action, "initiator", peer, "sid", sid)
	for _, media := range []string{"audio", "video"} {
		var mine []Source
		for _, s := range srcs {
			if s.Media == media {
				mine = append(mine, s)
			}
		}
		if len(mine) == 0 {
			continue
		}
		d := NewElem(pnsRTP, "description", "media", media)
		for _, s := range mine {
			d.Add(ptSourceElem(s, s.SSRC))
			if s.RTX != 0 {
				d.Add(ptSourceElem(s, s.RTX))
			}
		}
		for _, s := range mine {
			if s.RTX != 0 {
				d.Add(ptFIDGroup(s))
			}
		}
		j.Add(NewElem("", "content", "name", media).Add(d))
	}
	return j
}

// ---- offer checks ------------------------------------------------------------

func ptIsData(c *Elem) bool {
	if c.Attr("name") == "data" {
		return true
	}
	if d := c.Child(pnsRTP, "description"); d != nil && d.Attr("media") == "application" {
		return true
	}
	return c.Child(pnsICE, "transport").Child(pnsSCTP, "sctpmap") != nil
}

// ptCheckOffer lists what in an offer would hurt the browser; fatal means
// Chrome's setRemoteDescription would fail (conference.offerAnswerFailed).
func ptCheckOffer(j *Elem) (viol []string, fatal bool) {
	bad := func(isFatal bool, format string, args ...any) {
		viol = append(viol, fmt.Sprintf(format, args...))
		fatal = fatal || isFatal
	}
	contents := j.All(pnsJingle, "content")
	if len(contents) == 0 {
		bad(true, "no contents")
		return viol, fatal
	}
	var names []string
	candidates := 0
	for _, c := range contents {
		name := c.Attr("name")
		if c.Attr("senders") == "rejected" {
			continue
		}
		names = append(names, name)
		tr := c.Child(pnsICE, "transport")
		if tr == nil {
			bad(true, "content %q has no ICE-UDP transport", name)
			continue
		}
		if tr.Attr("ufrag") == "" || tr.Attr("pwd") == "" {
			bad(true, "content %q: transport without ICE ufrag/pwd", name)
		}
		fp := tr.Child(pnsDTLS, "fingerprint")
		switch {
		case fp == nil || strings.TrimSpace(fp.Text) == "":
			bad(true, "content %q: no DTLS fingerprint (Chrome refuses the offer: conference.offerAnswerFailed)", name)
		case fp.Attr("hash") == "":
			bad(true, "content %q: DTLS fingerprint without hash", name)
		}
		for _, cand := range tr.All(pnsICE, "candidate") {
			candidates++
			for _, a := range []string{"component", "foundation", "ip", "port", "priority", "protocol", "type"} {
				if cand.Attr(a) == "" {
					bad(true, "content %q: ICE candidate without %s: %s", name, a, cand)
					break
				}
			}
		}
		if ptIsData(c) {
			if tr.Child(pnsSCTP, "sctpmap") == nil {
				bad(false, "content %q: data content without <sctpmap>", name)
			}
			continue
		}
		desc := c.Child(pnsRTP, "description")
		if desc == nil {
			bad(true, "content %q has no RTP description", name)
			continue
		}
		if len(desc.All(pnsRTP, "payload-type")) == 0 {
			bad(true, "content %q: no payload types", name)
		}
		if desc.Child("", "rtcp-mux") == nil {
			bad(true, "content %q: no <rtcp-mux/> (Chrome requires RTCP mux)", name)
		}
	}
	if candidates == 0 {
		bad(false, "no ICE candidates (the client ignores transport-info on the JVB session, so ICE cannot connect)")
	}
	var bundle *Elem
	for _, g := range j.All(pnsGrouping, "group") {
		if g.Attr("semantics") == "BUNDLE" {
			bundle = g
		}
	}
	if bundle == nil {
		bad(false, "no BUNDLE group")
	} else {
		var in []string
		for _, c := range bundle.All("", "content") {
			in = append(in, c.Attr("name"))
		}
		for _, n := range names {
			if !slices.Contains(in, n) {
				bad(false, "content %q is not in the BUNDLE group %v", n, in)
			}
		}
	}
	if ptAttr(j.Child(pnsFocus, "bridge-session"), "id") == "" {
		bad(false, "no <bridge-session id=…/> (the client cannot ask for a restart)")
	}
	return viol, fatal
}

// ptParseSources reads the sources of a Jingle element, XML and JSON forms,
// as the client does; with checks it also reports sources the browser could
// not turn into tracks (no msid, no owner) and malformed ones.
func ptParseSources(sid string, j *Elem, from string, checks bool) (out []RemoteSource, viol []string) {
	_, fromRes, _ := strings.Cut(from, "/")
	for _, c := range j.All(pnsJingle, "content") {
		for _, d := range c.All(pnsRTP, "description") {
			media := d.Attr("media")
			if media == "" {
				media = c.Attr("name")
			}
			for _, s := range d.All(pnsSSMA, "source") {
				ssrc, err := ptParseSSRC(s.Attr("ssrc"))
				if err != nil {
					if checks {
						viol = append(viol, fmt.Sprintf("invalid source ssrc %q ignored", s.Attr("ssrc")))
					}
					continue
				}
				rs := RemoteSource{SID: sid, Media: media, SSRC: ssrc, Name: s.Attr("name"), VideoType: s.Attr("videoType")}
				for _, par := range s.All("", "parameter") {
					if par.Attr("name") == "msid" {
						rs.MSID = par.Attr("value")
					}
				}
				rs.Owner = ptEndpointID(ptAttr(s.Child(pnsJitMeet, "ssrc-info"), "owner"))
				if rs.Owner == "" && checks {
					viol = append(viol, fmt.Sprintf("%s source ssrc=%d has no owner (<ssrc-info owner>): no track is created", media, ssrc))
					rs.Owner = fromRes // what the client then assumes
				}
				if rs.MSID == "" && checks {
					viol = append(viol, fmt.Sprintf("%s source ssrc=%d (owner %q) has no msid: no track is created", media, ssrc, rs.Owner))
				}
				out = append(out, rs)
			}
		}
	}
	for _, jm := range j.All(pnsJitMeet, "json-message") {
		var msg struct {
			Sources map[string][]json.RawMessage `json:"sources"`
		}
		if err := json.Unmarshal([]byte(jm.Text), &msg); err != nil {
			if checks {
				viol = append(viol, fmt.Sprintf("json-message is not valid JSON (%v): ignored", err))
			}
			continue
		}
		owners := ptSortedKeys(msg.Sources)
		for _, owner := range owners {
			arrays := msg.Sources[owner]
			for _, part := range []struct {
				idx   int
				media string
			}{{0, "video"}, {2, "audio"}} {
				idx, media := part.idx, part.media
				if len(arrays) <= idx {
					continue
				}
				var srcs []struct {
					S json.RawMessage `json:"s"`
					N string          `json:"n"`
					M string          `json:"m"`
					V any             `json:"v"`
				}
				if err := json.Unmarshal(arrays[idx], &srcs); err != nil {
					if checks {
						viol = append(viol, fmt.Sprintf("json-message %s sources of %q malformed: %v", media, owner, err))
					}
					continue
				}
				for _, s := range srcs {
					ssrc, err := ptParseSSRC(strings.Trim(string(s.S), `"`))
					if err != nil {
						if checks {
							viol = append(viol, fmt.Sprintf("json-message: invalid ssrc %s of %q ignored", s.S, owner))
						}
						continue
					}
					rs := RemoteSource{SID: sid, Owner: ptEndpointID(owner), Media: media, SSRC: ssrc, Name: s.N, MSID: s.M}
					if media == "video" {
						rs.VideoType = "camera"
						if ptTruthy(s.V) {
							rs.VideoType = "desktop"
						}
					}
					if rs.MSID == "" && checks {
						viol = append(viol, fmt.Sprintf("%s source ssrc=%d (owner %q) has no msid: no track is created", media, ssrc, rs.Owner))
					}
					out = append(out, rs)
				}
			}
		}
	}
	return out, viol
}

// ptOwners lists the owners of the sources a Jingle element carries.
func ptOwners(j *Elem, from string) []string {
	srcs, _ := ptParseSources("", j, from, false)
	var owners []string
	for _, s := range srcs {
		if s.Owner != "" && !slices.Contains(owners, s.Owner) {
			owners = append(owners, s.Owner)
		}
	}
	return owners
}

// ---- public API ----------------------------------------------------------------

// Accept sends session-accept (and a transport-info) for the current offer
// when ManualAccept is set (or to accept an offer the browser would have
// refused), and waits for the focus's answer to the accept.
func (p *Participant) Accept(ctx context.Context) error {
	p.mu.Lock()
	sess := p.sessions[p.current]
	p.mu.Unlock()
	if sess == nil {
		return errors.New("testkit: no offer to accept")
	}
	select {
	case err := <-p.accept(sess):
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// AddScreenshare starts a desktop share: source-add of a video source with
// its RTX partner, videoType="desktop" and its own msid, then (once the focus
// answers result) a SourceInfo presence update. On an error answer the source
// is dropped again, as the client does.
func (p *Participant) AddScreenshare(ctx context.Context) error {
	p.mu.Lock()
	sess := p.sessions[p.current]
	if sess == nil || !sess.acceptSent {
		p.mu.Unlock()
		return errors.New("testkit: AddScreenshare needs an accepted session")
	}
	idx := 0
	for _, s := range p.local {
		if s.Media == "video" {
			idx++
		}
	}
	s := p.fillSource(Source{Media: "video", RTX: ptSSRC(), VideoType: "desktop"}, idx)
	p.local = append(p.local, s)
	p.muted[s.Name] = false
	peer, sid := sess.peer, sess.sid
	p.mu.Unlock()

	_, err := p.sendIQ(ctx, "source-add", peer, p.sourcesJingle("source-add", peer, sid, []Source{s}))
	if err != nil {
		p.mu.Lock()
		p.local = slices.DeleteFunc(p.local, func(o Source) bool { return o.SSRC == s.SSRC })
		delete(p.muted, s.Name)
		p.mu.Unlock()
		return err
	}
	p.publishUpdate()
	return nil
}

// RemoveSources removes local sources (a given SSRC selects its whole
// source, RTX partner included) with a source-remove, then updates
// SourceInfo. It returns the focus's error answer, if any.
func (p *Participant) RemoveSources(ctx context.Context, ssrcs ...uint32) error {
	p.mu.Lock()
	sess := p.sessions[p.current]
	if sess == nil || !sess.acceptSent {
		p.mu.Unlock()
		return errors.New("testkit: RemoveSources needs an accepted session")
	}
	var gone []Source
	for _, s := range p.local {
		if slices.Contains(ssrcs, s.SSRC) || s.RTX != 0 && slices.Contains(ssrcs, s.RTX) {
			gone = append(gone, s)
		}
	}
	peer, sid := sess.peer, sess.sid
	p.mu.Unlock()
	if len(gone) == 0 {
		return fmt.Errorf("testkit: no local source has ssrc %v", ssrcs)
	}
	if _, err := p.sendIQ(ctx, "source-remove", peer, p.sourcesJingle("source-remove", peer, sid, gone)); err != nil {
		return err
	}
	p.mu.Lock()
	for _, g := range gone {
		p.local = slices.DeleteFunc(p.local, func(o Source) bool { return o.SSRC == g.SSRC })
		delete(p.muted, g.Name)
	}
	p.mu.Unlock()
	p.publishUpdate()
	return nil
}

// RequestRestart is the client's ICE-failure recovery: session-terminate
// with <reason><connectivity-error/><text>ICE FAILED</text></reason> and, if
// the offer had one, <bridge-session id=… restart="true"/>. The session and
// its remote sources are dropped at once; the focus should re-invite (which
// is accepted automatically unless ManualAccept).
func (p *Participant) RequestRestart(ctx context.Context) error {
	p.mu.Lock()
	sess := p.sessions[p.current]
	var peer, sid, bridgeSession string
	if sess != nil {
		peer, sid, bridgeSession = sess.peer, sess.sid, sess.bridgeSession
	}
	p.mu.Unlock()
	if sess == nil {
		return errors.New("testkit: RequestRestart needs a session")
	}
	j := NewElem(pnsJingle, "jingle", "action", "session-terminate", "initiator", peer, "sid", sid).Add(
		NewElem("", "reason").Add(NewElem("", "connectivity-error"), NewElem("", "text").SetText("ICE FAILED")))
	if bridgeSession != "" {
		j.Add(NewElem(pnsFocus, "bridge-session", "id", bridgeSession, "restart", "true"))
	}
	p.endSession(sid)
	_, err := p.sendIQ(ctx, "session-terminate", peer, j)
	return err
}

// SendJingle sends the focus a Jingle IQ with the given action, the current
// sid and initiator, after build (may be nil) has filled in the <jingle/>
// element, and returns the focus's answer (with a *StanzaError for an error
// answer). For hostile tests.
func (p *Participant) SendJingle(ctx context.Context, action string, build func(j *Elem)) (*Elem, error) {
	p.mu.Lock()
	to := p.focusMUC
	sid := p.current
	if s := p.sessions[sid]; s != nil {
		to = s.peer
	}
	p.mu.Unlock()
	if to == "" {
		to = p.room + "/focus"
	}
	j := NewElem(pnsJingle, "jingle", "action", action, "initiator", to, "sid", sid)
	if build != nil {
		build(j)
	}
	return p.sendIQ(ctx, action, to, j)
}

// MuteParticipant asks the focus to mute another occupant (nick), as a
// moderator's client does (media "audio", "video" or "desktop").
func (p *Participant) MuteParticipant(ctx context.Context, nick, media string) error {
	return p.sendMute(ctx, p.room+"/"+nick, media, true)
}

// SetMuted mutes or unmutes the local sources of a media ("audio", "video"
// or "desktop") and publishes SourceInfo. Unmuting after the focus muted
// that media first tells the focus (mute IQ for itself with "false"), as the
// client does, and returns the focus's error answer if any.
func (p *Participant) SetMuted(ctx context.Context, media string, muted bool) error {
	p.mu.Lock()
	tell := !muted && p.mutedByFocus[media]
	p.mu.Unlock()
	if tell {
		if err := p.sendMute(ctx, p.occupantJID, media, false); err != nil {
			return err
		}
	}
	p.mu.Lock()
	if tell {
		p.mutedByFocus[media] = false
	}
	for _, s := range p.local {
		if ptSourceKind(s) == media {
			p.muted[s.Name] = muted
		}
	}
	p.mu.Unlock()
	p.publishUpdate()
	return nil
}

func (p *Participant) sendMute(ctx context.Context, target, media string, mute bool) error {
	p.mu.Lock()
	to := p.focusMUC
	p.mu.Unlock()
	if to == "" {
		return errors.New("testkit: no focus in the room")
	}
	iq := NewElem("", "iq", "to", to, "type", "set").Add(NewElem(pnsMute+media, "mute", "jid", target).SetText(strconv.FormatBool(mute)))
	p.logOut(iq)
	resp, err := p.c.SendIQ(ctx, iq)
	if resp != nil {
		p.logIn(resp)
	}
	return err
}

func (p *Participant) publishUpdate() {
	p.mu.Lock()
	ok := p.published && p.joined
	p.mu.Unlock()
	if ok {
		p.send(p.presence(false))
	}
}

func (p *Participant) sendIQ(ctx context.Context, action, to string, j *Elem) (*Elem, error) {
	iq := NewElem("", "iq", "to", to, "type", "set", "id", randomID()).Add(j)
	p.mu.Lock()
	p.sent[action] = append(p.sent[action], ptResolved(iq))
	p.mu.Unlock()
	p.logOut(iq)
	resp, err := p.c.SendIQ(ctx, iq)
	if resp != nil {
		p.logIn(resp)
	}
	return resp, err
}

// Leave sends unavailable presence to the room, as the client's leave does
// (no session-terminate: the sessions are just closed locally).
func (p *Participant) Leave() error {
	p.mu.Lock()
	p.sessions = map[string]*pSession{}
	p.current = ""
	p.notifyLocked()
	p.mu.Unlock()
	return p.send(NewElem("", "presence", "to", p.occupantJID, "type", "unavailable"))
}

// Close ends the XMPP stream (the server then removes the occupant) and
// waits for the participant's goroutines.
func (p *Participant) Close() error {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		p.cancel()
		if p.c != nil {
			p.c.Close()
		}
		p.wg.Wait()
	})
	return nil
}

// Done is closed when the XMPP connection has ended.
func (p *Participant) Done() <-chan struct{} { return p.c.Done() }

// Client is the underlying XMPP client, for raw stanzas.
func (p *Participant) Client() *Client { return p.c }

// JID is the participant's full (anonymous) JID.
func (p *Participant) JID() string { return p.c.JID() }

// Nick is the MUC nickname, i.e. the endpoint id.
func (p *Participant) Nick() string { return p.nick }

// Room is the room's bare JID.
func (p *Participant) Room() string { return p.room }

// requestRoom is the room named in the conference request.
func (p *Participant) requestRoom() string {
	if p.cfg.RequestRoom != "" {
		return p.cfg.RequestRoom
	}
	return p.room
}

// OccupantJID is room/nick.
func (p *Participant) OccupantJID() string { return p.occupantJID }

// CapsVer is the caps ver in the presence.
func (p *Participant) CapsVer() string { return p.capsVer }

// Features are the features answered to disco#info.
func (p *Participant) Features() []string { return slices.Clone(p.features) }

// SID is the sid of the current session with the focus ("" if none).
func (p *Participant) SID() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.current
}

// Accepted reports whether the focus answered result to the session-accept
// of the current session.
func (p *Participant) Accepted() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.sessions[p.current]
	return s != nil && s.accepted
}

// ConferenceResponse is the focus's answer to the conference IQ (nil in
// HTTP mode).
func (p *Participant) ConferenceResponse() *Elem {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.confResp
}

// RemoteSources maps owner endpoint id (the bridge's own: "jvb") to the
// SSRCs the focus signalled in the live sessions.
func (p *Participant) RemoteSources() map[string][]uint32 {
	out := map[string][]uint32{}
	for _, s := range p.RemoteSourceList() {
		if !slices.Contains(out[s.Owner], s.SSRC) {
			out[s.Owner] = append(out[s.Owner], s.SSRC)
		}
	}
	return out
}

// RemoteSourceList is every remote source of the live sessions (by sid,
// then in arrival order).
func (p *Participant) RemoteSourceList() []RemoteSource {
	p.mu.Lock()
	defer p.mu.Unlock()
	sids := ptSortedKeys(p.sessions)
	var out []RemoteSource
	for _, sid := range sids {
		out = append(out, p.sessions[sid].remote...)
	}
	return out
}

// LocalSources are the sources this participant sends.
func (p *Participant) LocalSources() []Source {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.local)
}

// Offers are all session-initiate IQs received, rejected ones included.
func (p *Participant) Offers() []*Elem {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.offers)
}

// Received are the Jingle IQs received with that action (whole <iq/>s).
func (p *Participant) Received(action string) []*Elem {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.received[action])
}

// Sent are the Jingle IQs this participant sent with that action (as
// parsed from their serialisation, so namespaces are resolved).
func (p *Participant) Sent(action string) []*Elem {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.sent[action])
}

// Mutes are the mute IQs received from the focus.
func (p *Participant) Mutes() []*Elem {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.mutes)
}

// Muted reports the SourceInfo mute state of a local source by name.
func (p *Participant) Muted(name string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.muted[name]
}

// Role and Affiliation come from the own presence (status 110).
func (p *Participant) Role() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.role
}

// Affiliation: see Role.
func (p *Participant) Affiliation() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.aff
}

// FocusPresence is the latest presence of the recognised focus occupant
// (nil before it is seen).
func (p *Participant) FocusPresence() *Elem {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.focusPres
}

// FocusOccupant is the focus's occupant JID ("" when none is in the room).
func (p *Participant) FocusOccupant() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.focusMUC
}

// Occupants are the other occupants (focus included) by nick.
func (p *Participant) Occupants() map[string]Occupant {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]Occupant, len(p.occupants))
	for k, v := range p.occupants {
		out[k] = v
	}
	return out
}

// Violations are the things the focus did that would break the real client.
func (p *Participant) Violations() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.violations)
}

// Events is the log of everything seen so far.
func (p *Participant) Events() []Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.events)
}

// Mark is the current length of the event log, for WaitEvent.
func (p *Participant) Mark() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.events)
}

// WaitEvent returns the first event at index ≥ since that matches.
func (p *Participant) WaitEvent(ctx context.Context, since int, match func(Event) bool) (Event, error) {
	var got Event
	err := p.WaitFor(ctx, func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		for i := max(since, 0); i < len(p.events); i++ {
			if match(p.events[i]) {
				got = p.events[i]
				return true
			}
		}
		return false
	})
	return got, err
}

// WaitJingle waits for a received Jingle IQ with that action carrying a
// source of owner ("" for any), e.g. ("session-initiate", ""), or
// ("source-add", "abcd1234"), and returns it. It looks at the whole history:
// use WaitJingleSince with a Mark to wait for a new one.
func (p *Participant) WaitJingle(ctx context.Context, action, owner string) (*Elem, error) {
	return p.WaitJingleSince(ctx, 0, action, owner)
}

// WaitJingleSince is WaitJingle over the events from index since (a Mark).
func (p *Participant) WaitJingleSince(ctx context.Context, since int, action, owner string) (*Elem, error) {
	ev, err := p.WaitEvent(ctx, since, func(e Event) bool {
		return e.Kind == EventJingle && e.Action == action && (owner == "" || slices.Contains(e.Owners, owner))
	})
	if err != nil {
		return nil, fmt.Errorf("testkit: %s waiting for %s (owner %q): %w", p.nick, action, owner, err)
	}
	return ev.Stanza, nil
}

// WaitFor waits until cond (which may call the participant's accessors)
// holds, re-checking on every change and every 20 ms.
func (p *Participant) WaitFor(ctx context.Context, cond func() bool) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if cond() {
			return nil
		}
		p.mu.Lock()
		ch := p.changed
		p.mu.Unlock()
		select {
		case <-ch:
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// ---- internals -------------------------------------------------------------------

func (p *Participant) notifyLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

func (p *Participant) eventLocked(e Event) {
	e.Time = time.Now()
	p.events = append(p.events, e)
	p.notifyLocked()
}

func (p *Participant) event(e Event) {
	p.mu.Lock()
	p.eventLocked(e)
	p.mu.Unlock()
}

func (p *Participant) violationLocked(msg string, st *Elem) {
	p.violations = append(p.violations, msg)
	p.logf("VIOLATION %s", msg)
	p.eventLocked(Event{Kind: EventViolation, Reason: msg, Stanza: st})
}

func (p *Participant) violation(msg string, st *Elem) {
	p.mu.Lock()
	p.violationLocked(msg, st)
	p.mu.Unlock()
}

func (p *Participant) send(e *Elem) error {
	p.logOut(e)
	return p.c.Send(e)
}

func (p *Participant) logf(format string, args ...any) {
	if p.cfg.Logf != nil {
		p.cfg.Logf("participant %s: "+format, append([]any{p.nick}, args...)...)
	}
}

func (p *Participant) logIn(e *Elem)  { p.logf("IN  %s", e) }
func (p *Participant) logOut(e *Elem) { p.logf("OUT %s", e) }

func ptResult(iq *Elem) *Elem {
	return NewElem("", "iq", "type", "result", "to", iq.Attr("from"), "id", iq.Attr("id"))
}

func ptError(iq *Elem, typ, cond string, extra ...*Elem) *Elem {
	e := NewElem("", "error", "type", typ).Add(NewElem(nsStanza, cond))
	e.Add(extra...)
	return NewElem("", "iq", "type", "error", "to", iq.Attr("from"), "id", iq.Attr("id")).Add(e)
}

// ptResolved re-parses a hand-built element so that every element carries its
// namespace, as received stanzas do (Child with a namespace then works).
func ptResolved(e *Elem) *Elem {
	r, err := ParseElem(e.String())
	if err != nil {
		return e
	}
	return r
}

// ptAttr is Attr that tolerates a missing element.
func ptAttr(e *Elem, name string) string {
	if e == nil {
		return ""
	}
	return e.Attr(name)
}

func ptHasStatus(x *Elem, code string) bool {
	for _, s := range x.All("", "status") {
		if s.Attr("code") == code {
			return true
		}
	}
	return false
}

// ptEndpointID takes the resource of a JID, or the value itself.
func ptEndpointID(s string) string {
	if _, res, ok := strings.Cut(s, "/"); ok && res != "" {
		return res
	}
	return s
}

func ptParseSSRC(s string) (uint32, error) {
	v, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
	if err != nil || v == 0 || v > 0xFFFFFFFF {
		return 0, fmt.Errorf("invalid ssrc %q", s)
	}
	return uint32(v), nil
}

func ptTruthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case string:
		return x != ""
	case float64:
		return x != 0
	default:
		return true
	}
}

func ptSortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func ptRandom(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func ptHex(n int) string { return fmt.Sprintf("%x", ptRandom(n)) }

func ptUint32() uint32 { return binary.BigEndian.Uint32(ptRandom(4)) }

func ptSSRC() uint32 {
	for {
		if v := ptUint32(); v != 0 {
			return v
		}
	}
}

func ptUUID() string {
	b := ptRandom(16)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func ptAlnum(n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	b := ptRandom(n)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

func ptFingerprint() string {
	b := ptRandom(32)
	parts := make([]string, len(b))
	for i, x := range b {
		parts[i] = fmt.Sprintf("%02X", x)
	}
	return strings.Join(parts, ":")
}
