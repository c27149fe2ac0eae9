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
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// eventQueue bounds a conference's backlog of stanzas. Presence and IQs beyond it are
// refused (IQs get resource-constraint) rather than queued without limit.
const eventQueue = 4096

type evKind int

const (
	evRequest evKind = iota // a conference request for this room arrived
	evPresence
	evIQ
	evBridge
	evStop
	evFunc // run fn on the conference goroutine (results of async work)
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

// bridgeSession is the conference's Colibri2 state on one bridge.
type bridgeSession struct {
	jid, id, region, relayID string
	createSent               bool
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

	// inflight counts async work whose result is not posted yet (unit
	// tests wait for it to reach zero).
	inflight atomic.Int32

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
	gen           int           // invite generations (see bump)
	ext           featureStates // the features' own state (features.go)

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
		ext:      makeStates(f.featureList(), func(ft Feature) func() any { return ft.ConfState }),
	}
}

// post queues a stanza event; false when the conference has ended or has
// eventQueue events waiting already (a flood is refused, not buffered).
func (c *Conference) post(ev event) bool { return c.enqueue(ev, eventQueue) }

// postWait queues an event that must not be dropped (results of work in
// flight, stop requests): their number is bounded by the work in flight.
func (c *Conference) postWait(ev event) bool { return c.enqueue(ev, 1<<30) }

// later runs fn on the conference goroutine after d.
func (c *Conference) later(d time.Duration, fn func()) *time.Timer {
	t := time.AfterFunc(d, func() { c.postWait(event{kind: evFunc, fn: fn}) })
	c.noteDeadline(t, d)
	return t
}

// async runs work on its own goroutine and then apply on the conference
// goroutine (apply is dropped if the conference ended meanwhile).
func (c *Conference) async(work func() func()) {
	c.inflight.Add(1)
	go func() {
		defer c.inflight.Add(-1) // after the result is queued
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
	p.Add(props)
	if c.noBridge {
		p.Add(NewElement(nsFocus, "bridgeNotAvailable"))
	}
	c.hookPresence(props, p)
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
			c.hookRoom(RoomEvent{Member: m, Presence: p, Leaving: true})
			c.memberLeft(m)
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
	c.hookRoom(RoomEvent{Member: m, Presence: p})
	if !m.featuresKnown && !m.discoPending {
		c.discover(m)
	}
	c.electOwner()
	c.evaluate()
}

// onSelfPresence finishes the join: the focus must be owner; then it reads
// the room configuration (the meeting id Prosody assigned, if any), sets
// whois=anyone and publishes its presence.
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
		c.hookRoom(RoomEvent{Form: fields}) // off the conference goroutine: see RoomEvent
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

// electOwner makes the first ordinary member owner when no member has
// moderator rights (auto-owner, docs/conference-room.md#who-becomes-moderator).
func (c *Conference) electOwner() {
	if !isJoined(c) {
		return
	}
	if c.hookModerators() || !c.cfg().Conference.EnableAutoOwner {
		return // a feature decides who is moderator here
	}
	var first *Participant
	for _, nick := range c.order {
		m := c.members[nick]
		if m == nil || m.isService() {
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

// evaluate invites whoever should be invited now: nobody until
// min-participants members are present, then everyone.
func (c *Conference) evaluate() {
	if !isJoined(c) || c.stopped {
		return
	}
	min := c.cfg().Conference.MinParticipants
	if c.hookInviteAlone() {
		min = 1 // a feature has work for even a lone member
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
		// Not yet: a member whose disco#info is pending (discover calls
		// evaluate again when it answers), or whose rejoin is over its
		// budget (admit arms a timer that calls evaluate when it allows).
		if m == nil || m.inviting || m.state != sessNone || m.failed || m.hungUp || !m.featuresKnown {
			continue
		}
		if !c.admit(m) {
			continue
		}
		c.invite(m, nil)
	}
}

// selectRequest is what bridge selection needs to know of this conference
// to place a participant from region, avoiding exclude.
func (c *Conference) selectRequest(region string, exclude []string) SelectRequest {
	return SelectRequest{Conference: c.room, Region: region, Current: c.bridgeCounts(), Exclude: exclude,
		Version: c.f.pinnedFor(c.room), OneBridge: !c.f.linksBridges}
}

// bridgeCounts is how many of this conference's participants each bridge has.
func (c *Conference) bridgeCounts() map[string]int {
	out := map[string]int{}
	for jid, s := range c.sessions {
		out[jid] = len(s.endpoints)
	}
	return out
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
	c.hookBridge(SessionEvent{Kind: EndpointGone, Session: s, Nick: nick})
	if len(s.endpoints) == 0 {
		c.removeSession(s, "last endpoint left", removal{})
		return
	}
	c.colibriUpdate(s, EndpointExpireRequest(c.meetingID, nick))
}

// removal says how a bridge session is removed.
type removal struct {
	reinvite    bool // invite its participants elsewhere
	unreachable bool // the bridge is gone: send it no expire
	avoid       bool // keep the bridge out of the re-invites
}

// removeSession drops the conference from a bridge (expire unless
// unreachable) and, when reinvite, invites its participants elsewhere.
func (c *Conference) removeSession(s *bridgeSession, why string, r removal) {
	if c.sessions[s.jid] != s {
		return
	}
	delete(c.sessions, s.jid)
	c.releaseAll(s)
	if s.createSent && !r.unreachable {
		c.fireAndForget(s.jid, BuildConferenceExpire(c.meetingID))
	}
	c.publishPresence()
	c.hookBridge(SessionEvent{Kind: SessionGone, Session: s})
	if !r.reinvite {
		return
	}
	c.f.metrics.BridgesRemoved.Inc()
	var exclude []string
	if r.avoid {
		exclude = []string{s.jid}
	}
	for nick := range s.endpoints {
		if m := c.members[nick]; m != nil {
			m.bridge = "" // s is gone: nothing to expire there
			c.moveParticipant(m, exclude, why)
		}
	}
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
		c.hookBridge(SessionEvent{Kind: EndpointUpdated, Session: s, Nick: m.Nick, StatsID: m.StatsID, Sources: ep.Sources})
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
				c.removeSession(s, "colibri2 update failed: "+err.Error(), removal{reinvite: true})
			}
		}
	})
}

func (c *Conference) fireAndForget(to string, payload *Element) {
	wait := c.f.bx.StartIQ(ColibriIQ(to, payload))
	go func() { _, _ = wait(context.Background()) }()
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
			// A removed bridge is unreachable; a failed or shutting-down
			// one still gets the expire, to release what it holds for us.
			c.removeSession(s, ev.Kind.String(), removal{reinvite: true, unreachable: ev.Kind == BridgeRemoved, avoid: true})
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
			c.removeSession(s, "bridge in graceful shutdown", removal{reinvite: true})
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
		if c.hookEnding(false) {
			return // a feature keeps the room
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
			iq := ColibriIQ(s.jid, BuildConferenceExpire(c.meetingID))
			_ = c.f.bx.Send(iq.Set("id", randomID()))
		}
	}
	c.sessions = map[string]*bridgeSession{}
	c.hookEnding(true)
	c.send(NewElement(nsClient, "presence", "to", c.self, "type", "unavailable"))
}
