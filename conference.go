package main

// conference.go: one conference, owned by one goroutine.
//
// A conference is created by the first conference request for its room. Its
// goroutine joins the room as "focus", makes itself owner, then follows the
// room: when two members are present it invites each one (pick a bridge,
// allocate an endpoint with Colibri2, send a Jingle session-initiate), relays
// every participant's sources to the others, and cleans up on the bridge when
// people leave. All state below is touched only by that goroutine; network
// round trips run on short-lived goroutines that post their results back as
// events, so one slow bridge or client never blocks the conference.

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Mute IQ namespaces (docs/conference-features.md#mute-requests).
const (
	nsMuteAudio   = "http://jitsi.org/jitmeet/audio"
	nsMuteVideo   = "http://jitsi.org/jitmeet/video"
	nsMuteDesktop = "http://jitsi.org/jitmeet/desktop"
)

// eventQueue bounds a conference's backlog of stanzas. Presence and IQs beyond it are
// refused (IQs get resource-constraint) rather than queued without limit.
const eventQueue = 4096

// discoTimeout bounds a participant's disco#info; after it the default
// feature set is used (Jicofo's behaviour).
const discoTimeout = 5 * time.Second

type evKind int

const (
	evRequest evKind = iota // a conference request for this room arrived
	evPresence
	evIQ
	evBridge
	evStop
	evAuthenticated // a member authenticated (reason: its bare JID)
	evFunc          // run fn on the conference goroutine (results of async work)
)

type event struct {
	kind      evKind
	el        *Element
	bridge    BridgeEvent
	reason    string
	terminate bool
	fn        func()
}

type sessionState int

const (
	sessNone sessionState = iota
	sessPending
	sessActive
)

// Participant is one room member (the focus itself is not one).
type Participant struct {
	Nick, Occupant, RealJID string
	Role, Affiliation       string
	CapsKey                 string
	capsVer, capsHash       string // of CapsKey, as advertised (not yet verified)
	Features                Features
	featuresKnown           bool
	discoPending            bool
	Region, StatsID         string
	Jibri, Jigasi           bool
	joinedAt                time.Time

	invite   int // generation; bumped on every (re)invite and on leave
	inviting bool
	failed   bool // the client refused our session; not retried while it stays
	attempts int  // consecutive failed allocations
	bridge   string
	sid      string
	state    sessionState
	offer    []*Element
	signaled SourceSet // what this participant has been told
	// Its restart and other budgets are the focus's (limits.go), so that
	// leaving and rejoining does not reset them.
	iceGeneration int
	admitted      bool        // its first invite was allowed (see admit)
	admitWait     *time.Timer // a rejoin's invite waiting for the budget
	hungUp        bool        // it ended its session itself: not re-invited
	// AV moderation: what the bridge enforces, and media the participant
	// was allowed to unmute itself.
	forceMuted  [2]bool
	selfUnmuted map[string]bool
	initiated   bool    // has had a session-initiate in this conference
	startMuted  [2]bool // the start-muted thresholds' verdict at invite time
	conf        ConferenceConfig
}

func (p *Participant) moderator() bool {
	return p.Affiliation == "owner" || p.Affiliation == "admin" || p.Role == "moderator"
}

// bridgeSession is the conference's Colibri2 state on one bridge.
type bridgeSession struct {
	jid, id, region, relayID string
	createSent               bool
	linked                   bool // meshed with the conference's other bridges
	feedback                 EndpointSources
	endpoints                map[string]bool
}

// Conference is one room's state.
type Conference struct {
	f     *Focus
	room  string
	log   *slog.Logger
	props map[string]string

	mu     sync.Mutex // guards queue (the mailbox; everything else is the goroutine's)
	queue  []event
	wake   chan struct{} // signalled when queue becomes non-empty
	joined chan struct{}
	done   chan struct{}

	stopMu sync.Mutex
	reason string

	created      time.Time
	meetingID    string
	self         string // room/focus
	configured   bool
	members      map[string]*Participant
	order        []string
	sources      *ConferenceSources
	sessions     map[string]*bridgeSession
	noBridge     bool
	lastPresence string
	initialTimer *time.Timer
	singleTimer  *time.Timer
	// Source changes gathered for the signaling delay of a big conference
	// (owners whose sources changed) and the timer that sends them.
	pendingOwners map[string]bool
	sourceTimer   *time.Timer
	stopped       bool
	requests      int
	gen           int // invite generations (see bump)
	recording     *recording
	sipCalls      map[string]*recording    // Jibri SIP gateway calls by SIP address
	transcriber   string                   // bridge holding the async transcriber's <connect>, or ""
	avmod         map[string]*avModeration // by media type
	metadata      roomMetadata             // from the room_metadata component
	switching     bool                     // the member leaving now is switching rooms
	mainRoom      atomic.Value             // string: for a breakout room, its main room

	// Handover to the next process (handover.go): restored means taken over
	// from the previous one (in the room already); deadlines are when the
	// timers armed by later fire.
	restored  bool
	deadlines map[*time.Timer]time.Time
}

// newConference is called with f.mu held.
func newConference(f *Focus, room string, props map[string]string) *Conference {
	if props == nil {
		props = map[string]string{}
	}
	return &Conference{
		f:        f,
		room:     room,
		log:      f.log.With("room", room),
		props:    props,
		wake:     make(chan struct{}, 1),
		joined:   make(chan struct{}),
		done:     make(chan struct{}),
		created:  time.Now(),
		self:     room + "/" + f.cfg.XMPP.Username,
		members:  map[string]*Participant{},
		sources:  NewConferenceSources(),
		sessions: map[string]*bridgeSession{},
	}
}

// The mailbox is a slice that grows only while there is a backlog (an idle
// conference holds no buffer), woken through a one-slot channel.

// post queues a stanza event; false when the conference has ended or has
// eventQueue events waiting already (a flood is refused, not buffered).
func (c *Conference) post(ev event) bool { return c.enqueue(ev, eventQueue) }

// postWait queues an event that must not be dropped (results of work in
// flight, stop requests): their number is bounded by the work in flight.
func (c *Conference) postWait(ev event) bool { return c.enqueue(ev, 1<<30) }

func (c *Conference) enqueue(ev event, limit int) bool {
	select {
	case <-c.done:
		return false
	default:
	}
	c.mu.Lock()
	if len(c.queue) >= limit {
		c.mu.Unlock()
		c.f.log.Warn("conference event queue full; event dropped", "room", c.room, "kind", ev.kind)
		return false
	}
	c.queue = append(c.queue, ev)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return true
}

// next returns the waiting events (the goroutine handles them in order).
func (c *Conference) next() []event {
	<-c.wake
	c.mu.Lock()
	q := c.queue
	c.queue = nil
	c.mu.Unlock()
	return q
}

// later runs fn on the conference goroutine after d.
func (c *Conference) later(d time.Duration, fn func()) *time.Timer {
	t := time.AfterFunc(d, func() { c.postWait(event{kind: evFunc, fn: fn}) })
	c.noteDeadline(t, d)
	return t
}

// async runs work on its own goroutine and then apply on the conference
// goroutine (apply is dropped if the conference ended meanwhile).
func (c *Conference) async(work func() func()) {
	go func() {
		apply := work()
		if apply != nil {
			c.postWait(event{kind: evFunc, fn: apply})
		}
	}()
}

func (c *Conference) stopReason() string {
	c.stopMu.Lock()
	defer c.stopMu.Unlock()
	return c.reason
}

func (c *Conference) cfg() Config { return c.f.cfg }

func (c *Conference) send(el *Element) {
	if el.Local == "iq" && el.Attr("id") == "" {
		el.Set("id", randomID()) // builders leave the id to the sender
	}
	if err := c.f.x.Send(el); err != nil {
		c.log.Debug("send failed", "err", err)
	}
}

// run is the conference goroutine.
func (c *Conference) run() {
	defer close(c.done)
	c.f.metrics.ConferencesCreated.Inc()
	c.f.metrics.Conferences.Inc()
	defer c.f.metrics.Conferences.Dec()
	c.log.Info("conference created")
	if !c.restored {
		c.join()
		// Until the room is joined this bounds the join itself; from then on it
		// is the initial timeout proper, counted from when the focus is in the
		// room (roomReady resets it): under a burst of requests the join may
		// take a while, and clients only join after it.
		c.initialTimer = c.later(c.cfg().Conference.InitialTimeout.Duration+requestWait, func() {
			switch {
			case !isJoined(c):
				c.stop("the focus could not join the room in time", false)
			case len(c.members) == 0:
				c.stop("nobody joined within the initial timeout", false)
			}
		})
	}
	for !c.stopped {
		for _, ev := range c.next() {
			if c.stopped {
				break
			}
			c.handle(ev)
		}
	}
	if c.initialTimer != nil {
		c.initialTimer.Stop()
	}
	if c.singleTimer != nil {
		c.singleTimer.Stop()
	}
	if c.sourceTimer != nil {
		c.sourceTimer.Stop()
	}
	c.log.Info("conference ended", "reason", c.stopReason(), "lasted", time.Since(c.created).Round(time.Second))
}

func (c *Conference) handle(ev event) {
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("conference event handler panicked; event dropped", "panic", r)
		}
	}()
	switch ev.kind {
	case evRequest:
		c.requests++
		if c.initialTimer != nil && len(c.members) == 0 && isJoined(c) {
			c.initialTimer.Reset(c.cfg().Conference.InitialTimeout.Duration)
		}
	case evPresence:
		c.onPresence(ev.el)
	case evIQ:
		c.onIQ(ev.el)
	case evBridge:
		c.onBridgeEvent(ev.bridge)
	case evStop:
		c.stop(ev.reason, ev.terminate)
	case evAuthenticated:
		c.electOwner()
	case evFunc:
		ev.fn()
	}
}

// join sends the MUC join presence; the rest of the join happens when the
// self-presence comes back (onSelfPresence).
func (c *Conference) join() {
	p := c.focusPresence()
	p.Add(NewElement(nsMUC, "x"))
	c.send(p)
}

// focusPresence is the focus's presence in the room with its extensions
// (docs/conference-room.md#presence-the-focus-publishes).
func (c *Conference) focusPresence() *Element {
	p := NewElement(nsClient, "presence", "to", c.self)
	p.Add(NewElement(nsCaps, "c", "hash", capsHashSHA1, "node", capsNode, "ver", c.f.x.capsVer()))
	p.Add(NewElement(nsJitmeet, "versions").Add(NewElement(nsJitmeet, "component", "name", "focus").SetText("minifocus-" + version)))
	props := NewElement(nsFocus, "conference-properties")
	props.Add(NewElement(nsFocus, "property", "key", "support-terminate-restart", "value", "true"))
	props.Add(NewElement(nsFocus, "property", "key", "bridge-count", "value", strconv.Itoa(len(c.sessions))))
	if c.metadata.asyncTranscription() {
		props.Add(NewElement(nsFocus, "property", "key", "audio-recording-enabled", "value", "true"))
	}
	p.Add(props)
	if c.noBridge {
		p.Add(NewElement(nsFocus, "bridgeNotAvailable"))
	}
	p.Add(c.recordingPresence()...)
	return p
}

// publishPresence re-sends the focus presence when an extension changed.
func (c *Conference) publishPresence() {
	if !c.configured {
		return
	}
	p := c.focusPresence()
	s := p.String()
	if s == c.lastPresence {
		return
	}
	c.lastPresence = s
	c.send(p)
}

func (c *Conference) onPresence(p *Element) {
	from := p.Attr("from")
	if from == c.self || strings.EqualFold(from, c.self) {
		c.onSelfPresence(p)
		return
	}
	nick := from[strings.IndexByte(from, '/')+1:]
	if nick == "" {
		return
	}
	typ := p.Attr("type")
	if typ == "error" {
		return
	}
	m := c.members[nick]
	if typ == "unavailable" {
		if m != nil {
			// A member moving to (or from) a breakout room says so; the
			// conference waits for it rather than ending when it is empty.
			if st := p.Child("", "status"); st != nil {
				c.switching = strings.TrimSpace(st.Text) == "switch_room"
			}
			c.memberLeft(m)
			c.switching = false
		}
		return
	}
	x := p.Child(nsMUCUser, "x")
	item := x.Child(nsMUCUser, "item")
	if m == nil {
		if len(c.members) >= 5000 {
			c.log.Warn("room member limit reached; ignoring a join", "endpoint", nick)
			return
		}
		m = &Participant{Nick: nick, Occupant: from, joinedAt: time.Now(), signaled: SourceSet{}, conf: c.cfg().Conference}
		m.RealJID = item.Attr("jid")
		c.members[nick] = m
		c.order = append(c.order, nick)
		c.log.Info("member joined", "endpoint", nick, "jid", m.RealJID)
		c.f.metrics.Participants.Inc()
		c.f.events.Add(c.room, "%s joined", nick)
		if c.initialTimer != nil {
			c.initialTimer.Stop()
		}
	}
	if item != nil {
		m.Role = item.Attr("role")
		m.Affiliation = item.Attr("affiliation")
		if j := item.Attr("jid"); j != "" {
			m.RealJID = j
		}
	}
	if caps := p.Child(nsCaps, "c"); caps != nil && caps.Attr("ver") != "" {
		m.CapsKey = caps.Attr("node") + "#" + caps.Attr("ver")
		m.capsVer, m.capsHash = caps.Attr("ver"), caps.Attr("hash")
	}
	if r := p.Child("", "jitsi_participant_region"); r != nil {
		m.Region = strings.TrimSpace(r.Text)
	}
	if s := p.Child("", "stats-id"); s != nil {
		m.StatsID = strings.TrimSpace(s.Text)
	}
	if fe := p.Child("", "features"); fe != nil && c.trusted(m.RealJID) {
		for _, f := range fe.All("", "feature") {
			switch f.Attr("var") {
			case "http://jitsi.org/protocol/jibri":
				m.Jibri = true
			case "http://jitsi.org/protocol/jigasi":
				m.Jigasi = true
			}
		}
	}
	if !m.featuresKnown && !m.discoPending {
		c.discover(m)
	}
	c.electOwner()
	c.evaluate()
}

func (c *Conference) trusted(realJID string) bool {
	at := strings.IndexByte(realJID, '@')
	if at < 0 {
		return false
	}
	dom := realJID[at+1:]
	if i := strings.IndexByte(dom, '/'); i >= 0 {
		dom = dom[:i]
	}
	for _, d := range c.cfg().XMPP.TrustedDomains {
		if strings.EqualFold(d, dom) {
			return true
		}
	}
	return false
}

// onSelfPresence finishes the join: the focus must be owner; then it
// configures the room (whois=anyone, meeting id) and publishes its presence.
func (c *Conference) onSelfPresence(p *Element) {
	if p.Attr("type") == "error" {
		c.stop("cannot join the room: "+ParseStanzaError(p).Error(), false)
		return
	}
	if p.Attr("type") == "unavailable" {
		if !c.configured {
			return // the leave of an earlier conference of this room
		}
		c.stop("the focus was removed from the room", false)
		return
	}
	item := p.Child(nsMUCUser, "x").Child(nsMUCUser, "item")
	if item.Attr("affiliation") != "owner" {
		c.stop(fmt.Sprintf("owner privileges are required, got affiliation %q (make the focus an admin in Prosody)", item.Attr("affiliation")), false)
		return
	}
	if c.configured {
		return
	}
	c.configured = true // the configuration runs once
	x := c.f.x
	room := c.room
	c.async(func() func() {
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg().XMPP.ReplyTimeout.Duration)
		defer cancel()
		form, err := x.SendIQ(ctx, NewIQ("get", room, "", NewElement(nsMUCOwner, "query")))
		if err != nil {
			return func() { c.stop("cannot read the room configuration: "+err.Error(), false) }
		}
		fields := form.Child(nsMUCOwner, "query").Child(nsDataForms, "x")
		meetingID := formValue(fields, "muc#roominfo_meetingId")
		if main := formValue(fields, "muc#roominfo_breakout_main_room"); main != "" {
			c.mainRoom.Store(roomKey(main))
		}
		submit := NewElement(nsDataForms, "x", "type", "submit").Add(
			formField("FORM_TYPE", "http://jabber.org/protocol/muc#roomconfig"),
			formField("muc#roomconfig_whois", "anyone"),
		)
		if _, err := x.SendIQ(ctx, NewIQ("set", room, "", NewElement(nsMUCOwner, "query").Add(submit))); err != nil {
			return func() { c.stop("cannot configure the room: "+err.Error(), false) }
		}
		return func() { c.roomReady(meetingID) }
	})
}

func (c *Conference) roomReady(meetingID string) {
	if meetingID == "" {
		meetingID = newUUID()
	}
	c.meetingID = meetingID
	c.log = c.log.With("meeting_id", meetingID)
	c.lastPresence = ""
	c.publishPresence()
	close(c.joined)
	if c.initialTimer != nil && len(c.members) == 0 {
		c.initialTimer.Reset(c.cfg().Conference.InitialTimeout.Duration)
	}
	c.log.Info("room joined and configured")
	c.electOwner()
	c.evaluate()
}

func formValue(x *Element, v string) string {
	for _, f := range x.All(nsDataForms, "field") {
		if f.Attr("var") == v {
			if v := f.Child(nsDataForms, "value"); v != nil {
				return strings.TrimSpace(v.Text)
			}
		}
	}
	return ""
}

func formField(v, value string) *Element {
	return NewElement(nsDataForms, "field", "var", v).Add(NewElement(nsDataForms, "value").SetText(value))
}

// electOwner makes the first ordinary member owner when no member has
// moderator rights (auto-owner, docs/conference-room.md#who-becomes-moderator).
func (c *Conference) electOwner() {
	if !isJoined(c) {
		return
	}
	if c.f.auth != nil {
		// With authentication, exactly the authenticated members are
		// moderators (Jicofo's authentication role manager).
		for _, nick := range c.order {
			if m := c.members[nick]; m != nil && m.Affiliation != "owner" && !m.Jibri && !m.Jigasi && c.f.auth.authenticated(m.RealJID) {
				c.grantOwner(m)
			}
		}
		return
	}
	if !c.cfg().Conference.EnableAutoOwner || c.f.isBreakoutRoom(c.room) {
		return // Prosody's breakout module makes the moderators there
	}
	var first *Participant
	for _, nick := range c.order {
		m := c.members[nick]
		if m == nil || m.Jibri || m.Jigasi {
			continue
		}
		if m.Affiliation == "owner" {
			return
		}
		if first == nil && m.RealJID != "" && m.Role != "visitor" {
			first = m
		}
	}
	if first != nil {
		c.grantOwner(first)
	}
}

// grantOwner makes m an owner of the room (a moderator), by its real JID.
func (c *Conference) grantOwner(m *Participant) {
	bare := bareJID(m.RealJID)
	m.Affiliation = "owner" // optimistic; the presence update confirms it
	c.log.Info("granting owner", "endpoint", m.Nick, "jid", bare)
	c.f.events.Add(c.room, "%s made moderator", m.Nick)
	iq := NewIQ("set", c.room, "", NewElement(nsMUCAdmin, "query").Add(NewElement(nsMUCAdmin, "item", "affiliation", "owner", "jid", bare)))
	wait := c.f.x.StartIQ(iq)
	go func() {
		if _, err := wait(context.Background()); err != nil {
			c.log.Info("granting owner failed (the member may have left)", "jid", bare, "err", err)
		}
	}()
}

func isJoined(c *Conference) bool {
	select {
	case <-c.joined:
		return true
	default:
		return false
	}
}

// discover learns a member's features: from the caps cache, else by
// disco#info to its occupant JID, else the default set.
func (c *Conference) discover(m *Participant) {
	// Only answers verified against a sha-1 ver are in the cache.
	cacheable := m.CapsKey != "" && m.capsHash == capsHashSHA1
	if cacheable {
		if feats, ok := c.f.caps.get(m.CapsKey); ok {
			m.Features = ParseFeatures(feats)
			m.featuresKnown = true
			return
		}
	}
	m.discoPending = true
	q := NewElement(nsDiscoInfo, "query")
	if m.CapsKey != "" {
		q.Set("node", m.CapsKey)
	}
	iq := NewIQ("get", m.Occupant, "", q)
	key, ver, nick, x := m.CapsKey, m.capsVer, m.Nick, c.f.x
	c.async(func() func() {
		ctx, cancel := context.WithTimeout(context.Background(), discoTimeout)
		defer cancel()
		resp, err := x.SendIQ(ctx, iq)
		var feats []string
		if err == nil {
			query := resp.Child(nsDiscoInfo, "query")
			for _, f := range query.All(nsDiscoInfo, "feature") {
				feats = append(feats, f.Attr("var"))
			}
			if cacheable && len(feats) > 0 {
				// Trusted for others only when the answer hashes to the
				// advertised ver; otherwise it is this member's alone.
				if got, verr := capsVerification(query); verr == nil && got == ver {
					c.f.caps.put(key, feats)
				} else {
					c.log.Info("caps ver does not match the disco#info answer; not cached",
						"endpoint", nick, "ver", truncate(ver, 64), "computed", got, "err", verr)
				}
			}
		}
		return func() {
			m := c.members[nick]
			if m == nil {
				return
			}
			m.discoPending = false
			m.featuresKnown = true
			if err != nil || len(feats) == 0 {
				c.log.Info("disco#info failed; using the default feature set", "endpoint", nick, "err", err)
				m.Features = DefaultFeatures()
			} else {
				m.Features = ParseFeatures(feats)
			}
			c.evaluate()
		}
	})
}

// evaluate invites whoever should be invited now: nobody until
// min-participants members are present, then everyone.
func (c *Conference) evaluate() {
	if !isJoined(c) || c.stopped {
		return
	}
	min := c.cfg().Conference.MinParticipants
	if c.metadata.asyncTranscription() {
		min = 1 // the bridge transcribes even a lone speaker
	}
	if len(c.members) < min {
		return
	}
	if c.singleTimer != nil && len(c.members) > 1 {
		c.singleTimer.Stop()
		c.singleTimer = nil
	}
	for _, nick := range c.order {
		m := c.members[nick]
		if m == nil || m.inviting || m.state != sessNone || m.failed || m.hungUp || !m.featuresKnown {
			continue
		}
		if !c.admit(m) {
			continue
		}
		c.invite(m, nil)
	}
}

// bump starts a new invite generation for m; results of earlier invites are
// then ignored. The counter is per conference, so a participant who left and
// came back under the same nick cannot match an old answer.
func (c *Conference) bump(m *Participant) int {
	c.gen++
	m.invite = c.gen
	return c.gen
}

// bridgeCounts is how many of this conference's participants each bridge has.
func (c *Conference) bridgeCounts() map[string]int {
	out := map[string]int{}
	for jid, s := range c.sessions {
		out[jid] = len(s.endpoints)
	}
	return out
}

// invite puts m on a bridge and sends it a session-initiate.
func (c *Conference) invite(m *Participant, exclude []string) {
	gen := c.bump(m)
	m.inviting = true
	offer, media := c.f.offerFor(m.features())
	choice, err := c.f.bridges.Select(SelectRequest{Conference: c.room, Region: m.Region, Current: c.bridgeCounts(), Exclude: exclude, Version: c.f.pinnedVersion(c.room)})
	if err != nil {
		m.inviting = false
		if !c.noBridge {
			c.log.Warn("no bridge available; participant waits", "endpoint", m.Nick, "err", err)
		}
		c.noBridge = true
		c.publishPresence()
		return
	}
	if c.noBridge {
		c.noBridge = false
		c.publishPresence()
	}
	s := c.sessions[choice.JID]
	if s == nil {
		s = &bridgeSession{jid: choice.JID, id: newUUID(), region: choice.Region, relayID: choice.RelayID, endpoints: map[string]bool{}}
		c.sessions[choice.JID] = s
		c.publishPresence() // bridge-count changed
	}
	create := !s.createSent
	s.createSent = true
	s.endpoints[m.Nick] = true
	// Counted now, in invite order, not when the bridge answers: answers
	// arrive in any order, the room's join order is what users see.
	m.startMuted = c.startMuted(m)
	m.bridge = s.jid
	m.offer = offer
	wantSCTP := OfferHasData(offer)
	ep := ColibriEndpoint{ID: m.Nick, StatsID: m.StatsID, Create: true, Media: media, SCTP: wantSCTP, InitialLastN: -1}
	if fm := c.forceMute(m); fm[0] || fm[1] {
		ep.ForceMute = &fm // joining a moderated conference
	}
	m.forceMuted = c.forceMute(m)
	ep.Capabilities = []string{"source-names"}
	if m.Features.SSRCRewriting {
		ep.Capabilities = append(ep.Capabilities, "ssrc-rewriting")
	}
	if cur := c.sources.Get(m.Nick); !cur.IsEmpty() {
		ep.Sources = cur.Colibri2Sources(m.Nick)
	}
	req := ColibriRequest{MeetingID: c.meetingID, Name: c.room, Create: create, RTCStatsDisabled: c.props["rtcstatsEnabled"] == "false", Endpoints: []ColibriEndpoint{ep}}
	if create && c.transcriber == "" && c.wantTranscriber() {
		req.Connects = c.transcriberConnect(s, true)
		c.transcriber = s.jid
	}
	c.log.Info("allocating endpoint", "endpoint", m.Nick, "bridge", s.jid, "why", choice.Reason, "create", create)
	c.f.events.Add(c.room, "%s: bridge %s (%s)", m.Nick, nickOf(s.jid), choice.Reason)
	start := time.Now()
	// Requests to one bridge must arrive in order (a create before the
	// requests that use it), so the IQ is queued here, on the conference
	// goroutine; only the wait for the answer happens elsewhere.
	wait := c.f.bx.StartIQ(ColibriIQ(s.jid, BuildConferenceModify(req)))
	c.async(func() func() {
		resp, err := wait(context.Background())
		c.f.metrics.ColibriRTT.Observe(time.Since(start).Seconds())
		return func() { c.allocated(m.Nick, gen, s, resp, err, wantSCTP) }
	})
}

// allocated handles the bridge's answer to an endpoint allocation.
func (c *Conference) allocated(nick string, gen int, s *bridgeSession, resp *Element, err error, wantSCTP bool) {
	m := c.members[nick]
	current := c.sessions[s.jid] == s
	if m == nil || m.invite != gen || c.stopped {
		// Left or re-invited meanwhile: whatever ended that invite already
		// released the endpoint (unless it is in use again by a new invite).
		if err == nil && current && !s.endpoints[nick] {
			c.fireAndForget(s.jid, BuildConferenceModify(ColibriRequest{MeetingID: c.meetingID,
				Endpoints: []ColibriEndpoint{{ID: nick, Expire: true, InitialLastN: -1}}}))
		}
		return
	}
	m.inviting = false
	if err != nil {
		c.f.metrics.ColibriErrors.Inc()
		c.allocationFailed(m, s, err)
		return
	}
	alloc, perr := ParseAllocation(resp, nick, wantSCTP)
	if perr != nil {
		// A response of the wrong kind means a broken bridge; a missing
		// transport or SCTP port fails only this participant (docs/colibri2.md#what-the-focus-does-on-an-error).
		c.log.Warn("bridge answered without a usable transport", "endpoint", nick, "bridge", s.jid, "err", perr)
		if errors.Is(perr, ErrColibriNotModified) {
			c.f.bridges.MarkNonOperational(s.jid, perr.Error())
		}
		c.expireEndpoint(s, nick)
		m.bridge = ""
		c.retryInvite(m, s.jid)
		return
	}
	m.attempts = 0
	if alloc.FeedbackSources != nil && s.feedback.IsEmpty() {
		if fb, err := ParseFeedbackSources(alloc.FeedbackSources); err == nil {
			s.feedback = fb
		}
	}
	c.sendSessionInitiate(m, s, alloc)
	if m.state != sessNone {
		c.relayAdded(s, m) // announced on the relays once its endpoint is in use
	}
}

func (c *Conference) allocationFailed(m *Participant, s *bridgeSession, err error) {
	fail := ClassifyColibriError(err)
	c.log.Warn("endpoint allocation failed", "endpoint", m.Nick, "bridge", s.jid, "err", err)
	if fail.MarkGracefulShutdown {
		c.f.bridges.MarkGracefulShutdown(s.jid)
	}
	if fail.MarkNonOperational {
		c.f.bridges.MarkNonOperational(s.jid, err.Error())
	}
	if fail.RemoveSessionReinvite {
		// Moves everyone on s, this participant included.
		c.removeSession(s, true, "allocation failed: "+err.Error())
		return
	}
	c.dropEndpoint(s, m.Nick)
	m.bridge = ""
	if len(s.endpoints) == 0 {
		c.removeSession(s, false, "allocation failed") // the next invite creates it again
	}
	c.retryInvite(m, s.jid)
}

// retryInvite tries another bridge, a few times at most.
func (c *Conference) retryInvite(m *Participant, failedBridge string) {
	m.attempts++
	if m.attempts > 3 {
		c.log.Error("giving up inviting participant after repeated bridge failures", "endpoint", m.Nick)
		m.failed = true
		return
	}
	c.invite(m, []string{failedBridge})
}

// sendSessionInitiate offers m the bridge's transport and everyone's sources.
func (c *Conference) sendSessionInitiate(m *Participant, s *bridgeSession, alloc ColibriAllocation) {
	if _, n := sanitizeTransport(alloc.Transport); n > 0 {
		c.log.Warn("bridge transport cut down to the limits", "endpoint", m.Nick, "bridge", s.jid,
			"dropped", n, "max_candidates", maxCandidates)
	}
	media, data, err := BridgeTransport(alloc.Transport, alloc.SCTPPort)
	if err != nil {
		c.log.Warn("bridge transport unusable", "endpoint", m.Nick, "bridge", s.jid, "err", err)
		c.f.bridges.MarkNonOperational(s.jid, err.Error())
		c.expireEndpoint(s, m.Nick)
		m.bridge = ""
		c.retryInvite(m, s.jid)
		return
	}
	m.sid = newSID()
	m.state = sessPending
	m.iceGeneration = 0
	f := m.features()
	strip := c.cfg().Conference.StripSimulcast
	m.signaled = RemoteSources(c.sources, m.Nick, s.feedback, f, strip)
	muted := m.startMuted
	if !m.initiated { // the room's policy is for joining, not for moves
		muted[0] = muted[0] || c.metadata.StartMuted.Audio
		muted[1] = muted[1] || c.metadata.StartMuted.Video
	}
	m.initiated = true
	muted[0] = muted[0] || m.forceMuted[0]
	muted[1] = muted[1] || m.forceMuted[1]
	params := SessionInitiateParams{
		From:            c.f.x.JID(),
		To:              m.Occupant,
		SID:             m.sid,
		Offer:           m.offer,
		MediaTransport:  media,
		DataTransport:   data,
		StartAudioMuted: muted[0],
		StartVideoMuted: muted[1],
		BridgeSessionID: s.id,
		Region:          s.region,
		Conference:      c.sources,
		Receiver:        m.Nick,
		Feedback:        s.feedback,
		Features:        f,
		StripSimulcast:  strip,
		Remote:          m.signaled,
	}
	iq, told, whole := BuildFittedSessionInitiate(params)
	if whole > 0 {
		m.signaled = told // the rest follows as source-add once accepted
		c.log.Info("session-initiate split: remaining sources follow as source-add", "endpoint", m.Nick,
			"bytes_whole", whole, "bytes", len(iq.Bytes()), "owners_in_initiate", len(told))
	}
	m.offer = nil // rebuilt for the next invite; not kept per participant
	c.f.metrics.JingleSent("session-initiate")
	c.f.metrics.ParticipantsTotal.Inc()
	c.f.metrics.RequestToInitiate.Observe(time.Since(m.joinedAt).Seconds())
	c.f.events.Add(c.room, "%s: session-initiate on bridge %s", m.Nick, nickOf(s.jid))
	c.log.Info("session-initiate", "endpoint", m.Nick, "bridge", s.jid, "sid", m.sid)
	nick, sid, x := m.Nick, m.sid, c.f.x
	wait := x.StartIQ(iq)
	c.async(func() func() {
		_, err := wait(context.Background())
		var se *StanzaError
		if err == nil || (!errors.As(err, &se) && !errors.Is(err, ErrStanzaTooLarge)) {
			return nil // a result, or a timeout: both count as success (docs/jingle-and-sources.md#the-invite-step-by-step)
		}
		return func() {
			m := c.members[nick]
			if m == nil || m.sid != sid {
				return
			}
			c.log.Warn("participant refused the session", "endpoint", nick, "err", err)
			c.send(BuildSessionTerminate(x.JID(), m.Occupant, sid, "general-error", "jingle session failed"))
			c.endSession(m, true)
			m.failed = true
		}
	})
}

// features is what the focus uses for m: its disco features as the config
// allows them.
func (m *Participant) features() Features { return m.Features.Effective(m.conf) }

// nickOf is the resource of a JID (a bridge's brewery nick).
func nickOf(jid string) string { return jid[strings.LastIndexByte(jid, '/')+1:] }

// startMuted applies the conference request's startAudioMuted /
// startVideoMuted thresholds (counting the invitee, docs/jingle-and-sources.md#start-muted). The
// count is the invitee's place in the room's join order: invitations wait
// for each member's disco#info, whose answers come back in any order, and
// "the first N start unmuted" must mean the first N to join.
func (c *Conference) startMuted(invitee *Participant) [2]bool {
	n := 1 // the invitee, plus the members who joined before it
	for _, nick := range c.order {
		if nick == invitee.Nick {
			break
		}
		if m := c.members[nick]; m != nil && !m.Jibri && !m.Jigasi {
			n++
		}
	}
	audio := threshold(c.props["startAudioMuted"], c.cfg().Conference.MaxAudioSenders)
	video := threshold(c.props["startVideoMuted"], c.cfg().Conference.MaxVideoSenders)
	return [2]bool{n > audio, n > video}
}

func threshold(prop string, max int) int {
	if v, err := strconv.Atoi(prop); err == nil && v >= 0 && v < max {
		return v
	}
	return max
}

// onIQ handles Jingle and mute IQs from room occupants.
func (c *Conference) onIQ(iq *Element) {
	from := iq.Attr("from")
	nick := from[strings.IndexByte(from, '/')+1:]
	m := c.members[nick]
	p := iq.Payload()
	switch p.Space {
	case nsJingle:
		c.f.metrics.JingleReceived(p.Attr("action"))
		if m == nil {
			c.send(ErrorIQ(iq, Errorf("item-not-found", "unknown session")))
			return
		}
		c.onJingle(m, iq)
	case nsMuteAudio, nsMuteVideo, nsMuteDesktop:
		c.onMute(m, iq)
	case nsJibri:
		c.onJibriRequest(m, iq)
	case nsRayo:
		c.onDial(m, iq)
	default:
		c.send(ErrorIQ(iq, Errorf("feature-not-implemented", "")))
	}
}

func (c *Conference) onJingle(m *Participant, iq *Element) {
	req, err := ParseJingle(iq)
	if err != nil {
		// ParseJingle's errors are the answers Jicofo gives (an unknown
		// action is feature-not-implemented, not bad-request).
		se, ok := err.(*StanzaError)
		if !ok {
			se = Errorf("bad-request", "%v", err)
		}
		c.send(ErrorIQ(iq, se))
		return
	}
	if req.TransportDropped > 0 {
		c.log.Info("participant's transport cut down to the limits", "endpoint", m.Nick, "dropped", req.TransportDropped)
	}
	if req.SID == "" || req.SID != m.sid {
		if c.knownSID(req.SID) {
			// A session that exists, but is not this sender's.
			c.send(ErrorIQ(iq, Errorf("item-not-found", "not the owner of session %s", req.SID)))
		} else {
			c.send(ErrorIQ(iq, Errorf("bad-request", "unknown session")))
		}
		return
	}
	if m.state == sessNone {
		c.send(ErrorIQ(iq, Errorf("gone", "session ended")))
		return
	}
	switch req.Action {
	case "session-accept", "transport-accept":
		if m.state == sessActive && !c.allowTransportInfo(m) {
			// A repeated accept is one more Colibri2 request, as a
			// transport-info is, and shares its budget.
			c.send(ErrorIQ(iq, Errorf("resource-constraint", "rate-limited")))
			return
		}
		c.onAccept(m, iq, req)
	case "transport-info":
		if req.Transport == nil {
			c.send(ErrorIQ(iq, Errorf("bad-request", "missing transport")))
			return
		}
		if !c.allowTransportInfo(m) { // each one is a Colibri2 request
			c.send(ErrorIQ(iq, Errorf("resource-constraint", "rate-limited")))
			return
		}
		c.send(ResultIQ(iq, nil))
		c.updateEndpoint(m, req.Transport, false)
	case "transport-reject":
		c.send(ResultIQ(iq, nil))
	case "source-add", "addsource":
		c.onSourceAdd(m, iq, req)
	case "source-remove", "removesource":
		c.onSourceRemove(m, iq, req)
	case "session-terminate":
		c.onTerminate(m, iq, req)
	case "session-info":
		c.onSessionInfo(m, iq, req)
	default:
		c.send(ErrorIQ(iq, Errorf("feature-not-implemented", "Unsupported 'action'")))
	}
}

func (c *Conference) knownSID(sid string) bool {
	if sid == "" {
		return false
	}
	for _, m := range c.members {
		if m.sid == sid {
			return true
		}
	}
	return false
}

func (c *Conference) limits() SourceLimits {
	cc := c.cfg().Conference
	return SourceLimits{MaxSSRCs: cc.MaxSSRCsPerUser, MaxGroups: cc.MaxSSRCGroupsPerUser}
}

func (c *Conference) onAccept(m *Participant, iq *Element, req JingleRequest) {
	start := time.Now()
	defer func() { c.f.metrics.AcceptToSourceAdd.Observe(time.Since(start).Seconds()) }()
	srcs, err := ParseJingleSources(req.Jingle, m.Nick)
	if err != nil {
		c.send(ErrorIQ(iq, Errorf("bad-request", "%v", err)))
		return
	}
	if _, err := c.sources.TryAdd(m.Nick, srcs, c.limits()); err != nil {
		c.send(ErrorIQ(iq, Errorf("bad-request", "%v", err)))
		return
	}
	c.send(ResultIQ(iq, nil))
	m.state = sessActive
	c.log.Info("session established", "endpoint", m.Nick, "sources", len(c.sources.Get(m.Nick).Sources))
	c.f.events.Add(c.room, "%s: session established (%d sources)", m.Nick, len(c.sources.Get(m.Nick).Sources))
	c.updateEndpoint(m, req.Transport, true, req.InitialLastN)
	c.propagate(m.Nick, m)
}

func (c *Conference) onSourceAdd(m *Participant, iq *Element, req JingleRequest) {
	srcs, err := ParseJingleSources(req.Jingle, m.Nick)
	if err != nil {
		c.send(ErrorIQ(iq, Errorf("bad-request", "%v", err)))
		return
	}
	if len(srcs.Sources) == 0 && len(srcs.Groups) == 0 {
		c.send(ResultIQ(iq, nil))
		return
	}
	if !c.sourceChangeReady(m) { // each change is a fan-out to everyone
		c.send(ErrorIQ(iq, Errorf("resource-constraint", "rate-limited")))
		return
	}
	if _, err := c.sources.TryAdd(m.Nick, srcs, c.limits()); err != nil {
		c.send(ErrorIQ(iq, Errorf("bad-request", "%v", err)))
		return
	}
	c.sourceChanged(m)
	c.send(ResultIQ(iq, nil))
	c.updateEndpoint(m, nil, true)
	c.propagate(m.Nick, nil)
}

func (c *Conference) onSourceRemove(m *Participant, iq *Element, req JingleRequest) {
	srcs, err := ParseJingleSources(req.Jingle, m.Nick)
	if err != nil {
		c.send(ErrorIQ(iq, Errorf("bad-request", "%v", err)))
		return
	}
	if !c.sourceChangeReady(m) {
		c.send(ErrorIQ(iq, Errorf("resource-constraint", "rate-limited")))
		return
	}
	if _, err := c.sources.TryRemove(m.Nick, srcs); err != nil {
		c.send(ErrorIQ(iq, Errorf("bad-request", "%v", err)))
		return
	}
	c.sourceChanged(m)
	c.send(ResultIQ(iq, nil))
	c.updateEndpoint(m, nil, true)
	c.propagate(m.Nick, nil)
}

func (c *Conference) onTerminate(m *Participant, iq *Element, req JingleRequest) {
	s := c.sessions[m.bridge]
	if s != nil && req.BridgeSessionID != s.id {
		c.send(ErrorIQ(iq, Errorf("item-not-found", "%s is not a currently active session", req.BridgeSessionID)))
		return
	}
	if req.Restart {
		c.f.metrics.RestartRequests.Inc()
		if !c.allowRestart(m) {
			// Refused, not half done: the session goes on as it was, and
			// the client may ask again once the budget allows.
			c.log.Info("restart request refused (rate limited)", "endpoint", m.Nick)
			c.send(ErrorIQ(iq, Errorf("resource-constraint", "rate-limited")))
			return
		}
	}
	c.send(ResultIQ(iq, nil))
	c.log.Info("participant ended its session", "endpoint", m.Nick, "restart", req.Restart)
	if req.Restart {
		c.f.bridges.RestartRequested(m.bridge)
	}
	c.endSession(m, true)
	if req.Restart {
		c.invite(m, nil)
		return
	}
	// It hung up: it stays without media until it leaves (as with Jicofo);
	// presence updates must not bring it back onto a bridge.
	m.hungUp = true
}

func (c *Conference) onSessionInfo(m *Participant, iq *Element, req JingleRequest) {
	if req.ICERestart {
		c.iceRestart(m, iq, req)
		return
	}
	c.send(ResultIQ(iq, nil))
	if req.ICEState == "failed" {
		s := c.sessions[m.bridge]
		if s != nil && req.BridgeSessionID == s.id {
			if c.allowRestart(m) {
				c.f.metrics.ICEFailed.Inc()
				c.f.bridges.RestartRequested(m.bridge)
				c.moveParticipant(m, nil, "ICE failed")
			}
		}
	}
}

// iceRestart is the in-place ICE restart (docs/jingle-and-sources.md#ice-restart-in-place): the bridge gets
// fresh ICE credentials for the endpoint and the client gets them in a
// transport-info tagged with the ICE generation; the session stays.
func (c *Conference) iceRestart(m *Participant, iq *Element, req JingleRequest) {
	s := c.sessions[m.bridge]
	if s == nil || req.BridgeSessionID != s.id {
		c.send(ErrorIQ(iq, Errorf("item-not-found", "%s is not a currently active session", req.BridgeSessionID)))
		return
	}
	if !c.allowICERestart(m) {
		c.send(ErrorIQ(iq, Errorf("resource-constraint", "rate-limited")))
		return
	}
	c.send(ResultIQ(iq, nil))
	c.log.Info("in-place ICE restart", "endpoint", m.Nick, "bridge", s.jid)
	wait := c.f.bx.StartIQ(ColibriIQ(s.jid, BuildConferenceModify(ColibriRequest{MeetingID: c.meetingID,
		Endpoints: []ColibriEndpoint{{ID: m.Nick, StatsID: m.StatsID, ICERestart: true, InitialLastN: -1}}})))
	nick, sid := m.Nick, m.sid
	c.async(func() func() {
		resp, err := wait(context.Background())
		return func() {
			m := c.members[nick]
			if m == nil || m.sid != sid {
				return
			}
			var t *Element
			if err == nil {
				for _, ep := range resp.Child(nsColibri2, "conference-modified").All(nsColibri2, "endpoint") {
					if ep.Attr("id") == nick {
						t = ep.Child(nsColibri2, "transport").Child(nsICEUDP, "transport")
					}
				}
			}
			gen, _ := strconv.Atoi(t.Attr("ice-generation"))
			switch {
			case err != nil || t == nil:
				// The bridge cannot restart ICE in place: a new session.
				c.moveParticipant(m, nil, "in-place ICE restart not possible")
			case gen <= m.iceGeneration:
				// The bridge kept its ICE agent (or the answer is stale).
			default:
				m.iceGeneration = gen
				media, _, terr := BridgeTransport(t, 0)
				if terr != nil {
					c.moveParticipant(m, nil, "bad ICE restart answer: "+terr.Error())
					return
				}
				media.Set("ice-generation", strconv.Itoa(gen))
				j := NewElement(nsJingle, "jingle", "action", "transport-info", "initiator", c.f.x.JID(), "sid", sid).Add(
					NewElement(nsJingle, "content", "creator", "initiator", "name", "audio").Add(media))
				c.send(NewElement(nsClient, "iq", "type", "set", "to", m.Occupant).Add(j))
				c.f.metrics.JingleSent("transport-info")
			}
		}
	})
}

// endSession ends m's Jingle session locally: its sources leave the
// conference (source-remove to the others when announce), its endpoint is
// expired on the bridge.
func (c *Conference) endSession(m *Participant, announce bool) {
	c.bump(m) // cancels an invite in flight
	m.inviting = false
	m.state = sessNone
	m.sid = ""
	m.signaled = SourceSet{}
	if s := c.sessions[m.bridge]; s != nil {
		c.expireEndpoint(s, m.Nick)
	}
	m.bridge = ""
	if removed := c.sources.RemoveOwner(m.Nick); announce && !removed.IsEmpty() {
		c.propagate(m.Nick, nil)
	} else {
		c.forgetOwner(m.Nick)
	}
}

// forgetOwner drops owner from what everyone has been told, without sending
// anything (clients drop a departed occupant's sources themselves).
func (c *Conference) forgetOwner(owner string) {
	for _, o := range c.members {
		delete(o.signaled, owner)
	}
}

// dropEndpoint forgets one of s's endpoints (and tells the bridge registry,
// which counts the endpoints this focus has on each bridge).
func (c *Conference) dropEndpoint(s *bridgeSession, nick string) {
	if s.endpoints[nick] {
		delete(s.endpoints, nick)
		c.f.bridges.NoteReleased(s.jid)
	}
}

// releaseAll tells the bridge registry that all of s's endpoints are gone.
func (c *Conference) releaseAll(s *bridgeSession) {
	for range s.endpoints {
		c.f.bridges.NoteReleased(s.jid)
	}
}

// expireEndpoint releases one endpoint; the last one on a bridge expires the
// whole conference there (the next allocation creates it again).
func (c *Conference) expireEndpoint(s *bridgeSession, nick string) {
	c.dropEndpoint(s, nick)
	c.relayMirror(s, RelayEndpoint{ID: nick, Expire: true})
	if len(s.endpoints) == 0 {
		c.removeSession(s, false, "last endpoint left")
		return
	}
	req := ColibriRequest{MeetingID: c.meetingID, Endpoints: []ColibriEndpoint{{ID: nick, Expire: true, InitialLastN: -1}}}
	c.colibriUpdate(s, req)
}

// removeSession drops the conference from a bridge (expire) and, when
// reinvite, invites its participants elsewhere.
func (c *Conference) removeSession(s *bridgeSession, reinvite bool, why string) {
	if c.sessions[s.jid] != s {
		return
	}
	delete(c.sessions, s.jid)
	c.releaseAll(s)
	if s.createSent {
		c.fireAndForget(s.jid, BuildConferenceModify(ColibriRequest{MeetingID: c.meetingID, Expire: true}))
	}
	c.relayRemoved(s)
	c.publishPresence()
	c.placeTranscriber()
	if !reinvite {
		return
	}
	c.f.metrics.BridgesRemoved.Inc()
	for nick := range s.endpoints {
		if m := c.members[nick]; m != nil {
			m.bridge = "" // s is gone: nothing to expire there
			c.moveParticipant(m, nil, why)
		}
	}
}

// moveParticipant re-invites m on another bridge (RestartJingle: the old
// session is terminated, its sources removed from the others, then a fresh
// session-initiate follows).
func (c *Conference) moveParticipant(m *Participant, exclude []string, why string) {
	c.f.metrics.ParticipantsMoved.Inc()
	c.log.Info("moving participant", "endpoint", m.Nick, "from", m.bridge, "why", why)
	if m.sid != "" {
		c.send(BuildSessionTerminate(c.f.x.JID(), m.Occupant, m.sid, "success", "moving"))
	}
	if s := c.sessions[m.bridge]; s != nil && len(exclude) == 0 {
		c.expireEndpoint(s, m.Nick)
	}
	m.bridge = ""
	c.bump(m)
	m.inviting = false
	m.state = sessNone
	m.sid = ""
	m.signaled = SourceSet{}
	if removed := c.sources.RemoveOwner(m.Nick); !removed.IsEmpty() {
		c.propagate(m.Nick, nil)
	}
	m.attempts++ // reset by the next successful allocation
	if m.attempts > 3 {
		c.log.Error("giving up inviting participant after repeated bridge failures", "endpoint", m.Nick)
		m.failed = true
		return
	}
	c.invite(m, exclude)
}

// updateEndpoint sends the bridge m's transport and/or complete source set.
func (c *Conference) updateEndpoint(m *Participant, transport *Element, withSources bool, lastN ...int) {
	s := c.sessions[m.bridge]
	if s == nil || !s.endpoints[m.Nick] {
		return
	}
	ep := ColibriEndpoint{ID: m.Nick, StatsID: m.StatsID, Transport: transport, InitialLastN: -1}
	if len(lastN) > 0 {
		ep.InitialLastN = lastN[0] // -1 when the client sent none
	}
	if withSources {
		ep.Sources = c.sources.Get(m.Nick).Colibri2Sources(m.Nick)
		c.relayMirror(s, RelayEndpoint{ID: m.Nick, StatsID: m.StatsID, Sources: ep.Sources})
	}
	c.colibriUpdate(s, ColibriRequest{MeetingID: c.meetingID, Endpoints: []ColibriEndpoint{ep}})
}

// colibriUpdate sends a non-allocating request; errors are handled as
// docs/colibri2.md#what-the-focus-does-on-an-error says (unknown endpoint → re-invite it; else the session).
func (c *Conference) colibriUpdate(s *bridgeSession, req ColibriRequest) {
	wait := c.f.bx.StartIQ(ColibriIQ(s.jid, BuildConferenceModify(req)))
	c.async(func() func() {
		_, err := wait(context.Background())
		if err == nil || errors.Is(err, ErrIQTimeout) || errors.Is(err, ErrNotConnected) {
			return nil
		}
		return func() {
			c.f.metrics.ColibriErrors.Inc()
			fail := ClassifyColibriUpdateError(err)
			if c.sessions[s.jid] != s {
				return
			}
			c.log.Warn("colibri2 update failed", "bridge", s.jid, "err", err)
			if fail.UnknownEndpoint != "" {
				if m := c.members[fail.UnknownEndpoint]; m != nil && m.bridge == s.jid {
					c.dropEndpoint(s, m.Nick)
					c.moveParticipant(m, nil, "bridge forgot the endpoint")
				}
				return
			}
			if fail.RemoveSessionReinvite {
				c.removeSession(s, true, "colibri2 update failed: "+err.Error())
			}
		}
	})
}

// Cascading (relays) ------------------------------------------------------

// relayAdded keeps the bridges meshed when m got an endpoint on s: the first
// endpoint on a new bridge links it with every other bridge of the
// conference; later ones are announced on the existing relays.
func (c *Conference) relayAdded(s *bridgeSession, m *Participant) {
	if s.linked {
		c.relayMirror(s, RelayEndpoint{ID: m.Nick, StatsID: m.StatsID, Create: true})
		return
	}
	s.linked = true
	for _, o := range c.sessions {
		if o != s && o.linked {
			c.linkPair(o, s)
		}
	}
}

// relayEndpointsOf lists s's participants as the other side of a relay sees them.
func (c *Conference) relayEndpointsOf(s *bridgeSession) []RelayEndpoint {
	var eps []RelayEndpoint
	for _, nick := range c.order {
		if m := c.members[nick]; m != nil && s.endpoints[nick] && m.bridge == s.jid && m.state != sessNone {
			eps = append(eps, RelayEndpoint{ID: nick, StatsID: m.StatsID, Create: true, Sources: c.sources.Get(nick).Colibri2Sources(nick)})
		}
	}
	return eps
}

// linkPair opens a relay between a (in the conference first: the ICE
// controlling, SCTP client side) and b, then hands each the other's
// transport once both have answered.
func (c *Conference) linkPair(a, b *bridgeSession) {
	if a.relayID == "" || b.relayID == "" {
		c.log.Warn("cannot cascade bridges without relay ids", "a", a.jid, "b", b.jid)
		return
	}
	c.log.Info("linking bridges", "a", a.jid, "b", b.jid)
	c.f.events.Add(c.room, "cascading bridges %s and %s", nickOf(a.jid), nickOf(b.jid))
	media := ColibriMedia(BuildOffer(c.cfg().Codec, Features{Audio: true, Video: true, SCTP: true, RTX: true, TCC: true}))
	waitA := c.f.bx.StartIQ(ColibriIQ(a.jid, BuildConferenceModify(ColibriRequest{MeetingID: c.meetingID,
		Relays: []*Element{BuildRelayCreate(b.relayID, true, media, c.relayEndpointsOf(b))}})))
	waitB := c.f.bx.StartIQ(ColibriIQ(b.jid, BuildConferenceModify(ColibriRequest{MeetingID: c.meetingID,
		Relays: []*Element{BuildRelayCreate(a.relayID, false, media, c.relayEndpointsOf(a))}})))
	c.async(func() func() {
		respA, errA := waitA(context.Background())
		respB, errB := waitB(context.Background())
		return func() {
			if c.sessions[a.jid] != a || c.sessions[b.jid] != b {
				return
			}
			tA, err := ParseRelayTransport(respA, b.relayID)
			if errA != nil {
				err = errA
			}
			tB, err2 := ParseRelayTransport(respB, a.relayID)
			if errB != nil {
				err2 = errB
			}
			if err != nil || err2 != nil {
				c.log.Warn("relay between bridges failed", "a", a.jid, "b", b.jid, "err_a", err, "err_b", err2)
				return
			}
			c.colibriRelay(a, BuildRelayUpdate(b.relayID, RelayTransportFor(tB, true), nil))
			c.colibriRelay(b, BuildRelayUpdate(a.relayID, RelayTransportFor(tA, false), nil))
		}
	})
}

// relayMirror tells every other linked bridge about a change to one of s's
// endpoints.
func (c *Conference) relayMirror(s *bridgeSession, ep RelayEndpoint) {
	if !s.linked || s.relayID == "" {
		return
	}
	for _, o := range c.sessions {
		if o != s && o.linked {
			c.colibriRelay(o, BuildRelayUpdate(s.relayID, nil, []RelayEndpoint{ep}))
		}
	}
}

// relayRemoved closes the relays towards a bridge the conference left.
func (c *Conference) relayRemoved(s *bridgeSession) {
	if !s.linked || s.relayID == "" {
		return
	}
	for _, o := range c.sessions {
		if o != s && o.linked {
			c.colibriRelay(o, BuildRelayExpire(s.relayID))
		}
	}
}

func (c *Conference) colibriRelay(s *bridgeSession, relay *Element) {
	c.fireAndForget(s.jid, BuildConferenceModify(ColibriRequest{MeetingID: c.meetingID, Relays: []*Element{relay}}))
}

func (c *Conference) fireAndForget(to string, payload *Element) {
	wait := c.f.bx.StartIQ(ColibriIQ(to, payload))
	go func() { _, _ = wait(context.Background()) }()
}

// propagate tells every active participant about owner's current sources
// (see signal). flush, when set, is a participant whose session just became
// active: it catches up on everything it was not told yet.
// Participants whose session is not yet accepted catch up on acceptance.
// In a conference big enough for a source-signaling delay, the others are
// told when the delay ends (flushPendingSources), all changes at once.
func (c *Conference) propagate(owner string, flush *Participant) {
	strip := c.cfg().Conference.StripSimulcast
	from := c.f.x.JID()
	if flush != nil && flush.state == sessActive {
		f := flush.features()
		var feedback EndpointSources
		if s := c.sessions[flush.bridge]; s != nil {
			feedback = s.feedback
		}
		want := RemoteSources(c.sources, flush.Nick, feedback, f, strip)
		c.sendSourceChanges(flush, from, f, strip, flush.signaled, want)
		flush.signaled = want
	}
	if d := c.cfg().Conference.SourceSignalingDelays.For(len(c.members)); d > 0 {
		if c.pendingOwners == nil {
			c.pendingOwners = map[string]bool{}
		}
		c.pendingOwners[owner] = true
		if c.sourceTimer == nil {
			c.sourceTimer = c.later(d, c.flushPendingSources)
		}
		return
	}
	c.signal([]string{owner}, flush)
}

// flushPendingSources sends what the signaling delay gathered: to each
// participant at most one source-remove and one source-add covering every
// owner whose sources changed meanwhile.
func (c *Conference) flushPendingSources() {
	c.sourceTimer = nil
	owners := slices.Sorted(maps.Keys(c.pendingOwners))
	c.pendingOwners = nil
	if len(owners) > 0 && !c.stopped {
		c.signal(owners, nil)
	}
}

// signal tells every active participant but skip about owners' current
// sources: at most one source-remove, then at most one source-add each.
// Only the owners' part of each receiver's view is compared, so a change
// costs O(receivers), not O(receivers × everyone). Receivers that see the
// change the same way (same features, told the same before) share one
// rendering of it, so a hundred receivers cost one encoding.
func (c *Conference) signal(owners []string, skip *Participant) {
	strip := c.cfg().Conference.StripSimulcast
	from := c.f.x.JID()
	cur := SourceSet{}
	for _, o := range owners {
		if es := c.sources.Get(o); !es.IsEmpty() {
			cur[o] = es
		}
	}
	var classes []*sourceView
	for _, nick := range c.order {
		r := c.members[nick]
		if r == nil || r == skip || r.state != sessActive {
			continue
		}
		f := r.features()
		if f.SSRCRewriting {
			continue
		}
		self := "" // a receiver is never told its own sources
		if slices.Contains(owners, nick) {
			if len(owners) == 1 {
				continue
			}
			self = nick
		}
		var v *sourceView
		for _, x := range classes {
			if x.matches(f, self, r.signaled, owners) {
				v = x
				break
			}
		}
		if v == nil {
			v = newSourceView(f, self, strip, cur, r.signaled, owners)
			classes = append(classes, v)
		}
		c.sendPayloads("source-remove", from, r, v.remove)
		c.sendPayloads("source-add", from, r, v.add)
		for _, o := range owners {
			if o == self {
				continue
			}
			if es, ok := v.want[o]; ok {
				r.signaled[o] = es
			} else {
				delete(r.signaled, o)
			}
		}
	}
}

// sourceView is a change of some owners' sources as one class of receivers
// sees it, rendered once.
type sourceView struct {
	f           Features
	self        string    // the owner these receivers are (left out), or ""
	old         SourceSet // what they had been told about the owners
	want        SourceSet // what they are told now (shared, read-only)
	remove, add [][]byte  // rendered payloads, one per stanza; none when there is nothing to send
}

func newSourceView(f Features, self string, strip bool, cur, signaled SourceSet, owners []string) *sourceView {
	v := &sourceView{f: f, self: self, old: SourceSet{}, want: cur.Filter(f.Audio, f.Video, strip)}
	delete(v.want, self)
	for _, o := range owners {
		if es, ok := signaled[o]; ok && o != self {
			v.old[o] = es
		}
	}
	removed, added := DiffSourceSets(v.old, v.want)
	v.remove = sourcePayloads(RenderSources(removed, f, strip), removed, f, strip)
	v.add = sourcePayloads(RenderSources(added, f, strip), added, f, strip)
	return v
}

// matches reports whether a receiver with these features, told signaled so
// far, sees the change as v does: it was told the very same values (shared
// by an earlier sourceView), not just equal ones.
func (v *sourceView) matches(f Features, self string, signaled SourceSet, owners []string) bool {
	if v.f != f || v.self != self {
		return false
	}
	for _, o := range owners {
		if o == self {
			continue
		}
		a, hadA := v.old[o]
		b, hadB := signaled[o]
		if hadA != hadB || !sameSources(a, b) {
			return false
		}
	}
	return true
}

// sendSourceChanges sends r the source-remove and source-add that take it
// from old to want.
func (c *Conference) sendSourceChanges(r *Participant, from string, f Features, strip bool, old, want SourceSet) {
	removed, added := DiffSourceSets(old, want)
	c.sendPayloads("source-remove", from, r, sourcePayloads(RenderSources(removed, f, strip), removed, f, strip))
	c.sendPayloads("source-add", from, r, sourcePayloads(RenderSources(added, f, strip), added, f, strip))
}

// sendPayloads sends r one source-add or source-remove per payload.
func (c *Conference) sendPayloads(action, from string, r *Participant, payloads [][]byte) {
	for _, p := range payloads {
		if iq := BuildRenderedSources(action, from, r.Occupant, r.sid, p); iq != nil {
			c.send(iq)
			c.f.metrics.JingleSent(action)
		}
	}
}

// onMute handles a mute request (docs/conference-features.md#mute-requests).
func (c *Conference) onMute(m *Participant, iq *Element) {
	p := iq.Payload()
	target := p.Attr("jid")
	val := strings.TrimSpace(p.Text)
	if target == "" || (val != "true" && val != "false") {
		c.send(ErrorIQ(iq, Errorf("bad-request", "mute needs a jid and true or false")))
		return
	}
	if m == nil {
		c.send(ErrorIQ(iq, Errorf("forbidden", "not a member of this conference")))
		return
	}
	tnick := target[strings.IndexByte(target, '/')+1:]
	t := c.members[tnick]
	if slash := strings.IndexByte(target, '/'); slash < 0 || roomKey(target[:slash]) != c.room || t == nil {
		c.send(ErrorIQ(iq, Errorf("item-not-found", "no participant %s", target)))
		return
	}
	self := t == m
	mute := val == "true"
	switch {
	case !self && !m.moderator():
		c.send(ErrorIQ(iq, Errorf("not-allowed", "only moderators can mute others")))
		return
	case !self && !mute:
		c.send(ErrorIQ(iq, Errorf("not-allowed", "unmuting someone else is not allowed")))
		return
	case t.Jibri || (t.Jigasi && !t.Features.AudioMute):
		c.send(ErrorIQ(iq, Errorf("not-allowed", "this participant cannot be muted")))
		return
	case self && !mute && !c.selfUnmuteAllowed(m, p.Space):
		c.send(ErrorIQ(iq, Errorf("not-allowed", "the moderator has not allowed you to unmute")))
		return
	}
	c.send(ResultIQ(iq, nil))
	if self && !mute {
		if m.selfUnmuted == nil {
			m.selfUnmuted = map[string]bool{}
		}
		m.selfUnmuted[map[string]string{nsMuteAudio: "audio", nsMuteVideo: "video", nsMuteDesktop: "desktop"}[p.Space]] = true
		c.enforceForceMute(m)
	}
	if !self {
		c.log.Info("remote mute", "endpoint", t.Nick, "by", m.Nick, "media", p.Space)
		c.send(NewIQ("set", t.Occupant, randomID(), NewElement(p.Space, "mute", "actor", m.Occupant).SetText("true")))
	}
}

func (c *Conference) onBridgeEvent(ev BridgeEvent) {
	if up, _ := c.f.bx.Connected(); !up {
		return // the bridges' connection is gone: they are not known to be lost
	}
	switch ev.Kind {
	case BridgeRemoved, BridgeFailed, BridgeShuttingDown:
		if s := c.sessions[ev.JID]; s != nil {
			c.log.Warn("bridge lost; moving its participants", "bridge", ev.JID, "event", ev.Kind.String())
			c.f.events.Add(c.room, "bridge %s %s: moving %d participants", nickOf(ev.JID), ev.Kind, len(s.endpoints))
			delete(c.sessions, s.jid)
			c.releaseAll(s)
			c.relayRemoved(s)
			if ev.Kind != BridgeRemoved && s.createSent {
				// Still reachable: release what it holds for us.
				c.fireAndForget(s.jid, BuildConferenceModify(ColibriRequest{MeetingID: c.meetingID, Expire: true}))
			}
			c.f.metrics.BridgesRemoved.Inc()
			c.publishPresence()
			c.placeTranscriber()
			for nick := range s.endpoints {
				if m := c.members[nick]; m != nil {
					m.bridge = ""
					c.moveParticipant(m, []string{s.jid}, ev.Kind.String())
				}
			}
		}
	case BridgeAdded, BridgeUp:
		if c.noBridge {
			c.evaluate()
		}
	case BridgeGracefulShutdown:
		// Existing participants finish their meeting there unless the
		// operator wants them moved (bridges.move-on-graceful-shutdown).
		if s := c.sessions[ev.JID]; s != nil && c.cfg().Bridges.MoveOnGracefulShutdown {
			c.log.Info("bridge in graceful shutdown; moving its participants", "bridge", ev.JID)
			c.removeSession(s, true, "bridge in graceful shutdown")
		}
	}
}

// memberLeft handles an occupant leaving: no source-remove (clients infer
// it), endpoint expired, timers re-armed, conference ended when empty.
func (c *Conference) memberLeft(m *Participant) {
	c.log.Info("member left", "endpoint", m.Nick)
	c.f.metrics.Participants.Dec()
	delete(c.members, m.Nick)
	for i, n := range c.order {
		if n == m.Nick {
			c.order = append(c.order[:i], c.order[i+1:]...)
			break
		}
	}
	c.bump(m)
	if s := c.sessions[m.bridge]; s != nil {
		c.expireEndpoint(s, m.Nick)
	}
	c.sources.RemoveOwner(m.Nick)
	c.forgetOwner(m.Nick)
	c.f.events.Add(c.room, "%s left", m.Nick)
	switch len(c.members) {
	case 0:
		if c.switching || c.f.hasBreakouts(c.room) {
			c.log.Info("the last participant switched to a breakout room; waiting for people to come back")
			c.waitForBreakouts()
			return
		}
		c.stop("the last participant left", false)
		return
	case 1:
		c.armSingleTimer()
	}
	if m.moderator() {
		c.electOwner()
	}
}

// waitForBreakouts keeps an empty main room while breakout conferences of it
// run (checked every initial-timeout), and ends it when they are over.
func (c *Conference) waitForBreakouts() {
	if c.initialTimer != nil {
		c.initialTimer.Stop()
	}
	c.initialTimer = c.later(c.cfg().Conference.InitialTimeout.Duration, func() {
		switch {
		case len(c.members) > 0:
		case c.f.hasBreakouts(c.room):
			c.waitForBreakouts()
		default:
			c.stop("nobody came back from the breakout rooms", false)
		}
	})
}

// armSingleTimer ends a lone participant's media session after the
// single-participant timeout; it stays in the room and is re-invited when
// somebody joins.
func (c *Conference) armSingleTimer() {
	if c.singleTimer != nil {
		c.singleTimer.Stop()
	}
	c.singleTimer = c.later(c.cfg().Conference.SingleParticipantTimeout.Duration, func() {
		if len(c.members) != 1 {
			return
		}
		for _, m := range c.members {
			if m.sid != "" {
				c.log.Info("single participant timeout", "endpoint", m.Nick)
				c.send(BuildSessionTerminate(c.f.x.JID(), m.Occupant, m.sid, "expired", "Idle session timeout"))
			}
			c.endSession(m, false)
			m.failed = false
		}
	})
}

// stop ends the conference: sessions terminated when asked, bridge
// allocations expired, the room left.
func (c *Conference) stop(reason string, terminate bool) {
	if c.stopped {
		return
	}
	c.stopped = true
	c.f.forget(c) // new requests for the room start a new conference
	c.f.metrics.Participants.Sub(float64(len(c.members)))
	c.stopMu.Lock()
	c.reason = reason
	c.stopMu.Unlock()
	for _, m := range c.members {
		if terminate && m.sid != "" {
			c.send(BuildSessionTerminate(c.f.x.JID(), m.Occupant, m.sid, "gone", "conference ended: "+reason))
		}
	}
	for _, s := range c.sessions {
		c.releaseAll(s)
		if s.createSent {
			iq := ColibriIQ(s.jid, BuildConferenceModify(ColibriRequest{MeetingID: c.meetingID, Expire: true}))
			_ = c.f.bx.Send(iq.Set("id", randomID()))
		}
	}
	c.sessions = map[string]*bridgeSession{}
	for _, r := range c.jibriSessions() {
		if r.status != "off" {
			c.send(NewIQ("set", r.jibri, "", NewElement(nsJibri, "jibri", "action", "stop", "session_id", r.id)))
			c.recordingOff(r, "", "")
		}
	}
	c.send(NewElement(nsClient, "presence", "to", c.self, "type", "unavailable"))
}

// Snapshot is the conference's state for /debug and the status page,
// built on the conference goroutine.
type ConferenceSnapshot struct {
	Room         string                `json:"room"`
	MeetingID    string                `json:"meeting_id"`
	Created      time.Time             `json:"created"`
	Bridges      []string              `json:"bridges"`
	Participants []ParticipantSnapshot `json:"participants"`
}

// ParticipantSnapshot is one participant in a ConferenceSnapshot.
type ParticipantSnapshot struct {
	Endpoint  string `json:"endpoint"`
	JID       string `json:"jid"`
	Role      string `json:"role"`
	Moderator bool   `json:"moderator"`
	Bridge    string `json:"bridge,omitempty"`
	Session   string `json:"session"`
	SID       string `json:"sid,omitempty"`
	Sources   int    `json:"sources"`
}

// Snapshot asks the conference goroutine for its state (nil if it ended).
func (c *Conference) Snapshot(ctx context.Context) *ConferenceSnapshot {
	ch := make(chan *ConferenceSnapshot, 1)
	if !c.post(event{kind: evFunc, fn: func() { ch <- c.snapshot() }}) {
		return nil
	}
	select {
	case s := <-ch:
		return s
	case <-ctx.Done():
		return nil
	case <-c.done:
		return nil
	}
}

func (c *Conference) snapshot() *ConferenceSnapshot {
	s := &ConferenceSnapshot{Room: c.room, MeetingID: c.meetingID, Created: c.created}
	for jid := range c.sessions {
		s.Bridges = append(s.Bridges, jid)
	}
	sort.Strings(s.Bridges)
	for _, nick := range c.order {
		m := c.members[nick]
		if m == nil {
			continue
		}
		state := map[sessionState]string{sessNone: "none", sessPending: "pending", sessActive: "active"}[m.state]
		if m.inviting {
			state = "inviting"
		}
		s.Participants = append(s.Participants, ParticipantSnapshot{
			Endpoint: m.Nick, JID: m.RealJID, Role: m.Role, Moderator: m.moderator(),
			Bridge: m.bridge, Session: state, SID: m.sid, Sources: len(c.sources.Get(m.Nick).Sources),
		})
	}
	return s
}

// newSID returns a Jingle session id (64 random bits, base 32 like Jicofo).
func newSID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return strconv.FormatUint(binary.BigEndian.Uint64(b[:]), 32)
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// moveOff moves up to max participants to other bridges: the one named by
// endpoint, or those on bridge (any bridge when empty). It returns how many.
func (c *Conference) moveOff(bridge, endpoint string, max int, reason string) int {
	moved := 0
	for _, nick := range append([]string(nil), c.order...) {
		m := c.members[nick]
		if moved >= max || m == nil || m.bridge == "" || (endpoint != "" && nick != endpoint) || (bridge != "" && !strings.EqualFold(m.bridge, bridge)) {
			continue
		}
		old := m.bridge
		// Only when another bridge can take it: a conference that cannot
		// span bridges (no relay_id, other versions, a pin) stays put
		// rather than losing its media.
		if !c.f.bridges.CanSelect(SelectRequest{Conference: c.room, Current: c.bridgeCounts(), Exclude: []string{old}, Version: c.f.pinnedVersion(c.room)}) {
			c.log.Info("not moving participant: no other bridge can take it", "endpoint", nick, "bridge", old, "why", reason)
			continue
		}
		if s := c.sessions[old]; s != nil {
			c.expireEndpoint(s, nick)
		}
		m.bridge = ""
		c.moveParticipant(m, []string{old}, reason)
		moved++
	}
	return moved
}
