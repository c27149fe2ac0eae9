package main

// participant.go: one participant's Jingle session (invite, allocation,
// session-initiate, its requests) and the source signalling to the others.

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"time"
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
	// (Its restart and other budgets are the focus's, limits.go, so that
	// leaving and rejoining does not reset them.)

	iceGeneration int
	admitted      bool        // its first invite was allowed (see admit)
	admitWait     *time.Timer // a rejoin's invite waiting for the budget
	hungUp        bool        // it ended its session itself: not re-invited
	initiated     bool        // has had a session-initiate in this conference
	startMuted    [2]bool     // the start-muted thresholds' verdict at invite time
	conf          ConferenceConfig
}

// isService: Jibri or Jigasi, not a person (never auto-owner, not counted
// for start-muted).
func (p *Participant) isService() bool { return p.Jibri || p.Jigasi }

func (p *Participant) moderator() bool {
	return p.Affiliation == "owner" || p.Affiliation == "admin" || p.Role == "moderator"
}

// bump starts a new invite generation for m; results of earlier invites are
// then ignored. The counter is per conference, so a participant who left and
// came back under the same nick cannot match an old answer.
func (c *Conference) bump(m *Participant) int {
	c.gen++
	m.invite = c.gen
	return c.gen
}

// invite puts m on a bridge and sends it a session-initiate.
func (c *Conference) invite(m *Participant, exclude []string) {
	gen := c.bump(m)
	m.inviting = true
	offer, media := c.f.offerFor(m.features())
	choice, err := c.f.bridges.Select(c.selectRequest(m.Region, exclude))
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
	ep.Capabilities = m.Features.colibriCapabilities()
	if cur := c.sources.Get(m.Nick); !cur.IsEmpty() {
		ep.Sources = cur.Colibri2Sources(m.Nick)
	}
	req := ColibriRequest{MeetingID: c.meetingID, Name: c.room, Create: create, RTCStatsDisabled: c.props["rtcstatsEnabled"] == "false", Endpoints: []ColibriEndpoint{ep}}
	c.hookInvite(m, &Invitation{Session: s, Create: create, Endpoint: &req.Endpoints[0], Request: &req})
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
			c.fireAndForget(s.jid, BuildEndpointExpire(c.meetingID, nick))
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
		c.hookBridge(SessionEvent{Kind: EndpointUp, Session: s, Member: m}) // its endpoint is in use
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
		c.removeSession(s, "allocation failed: "+err.Error(), removal{reinvite: true})
		return
	}
	c.dropEndpoint(s, m.Nick)
	m.bridge = ""
	if len(s.endpoints) == 0 {
		c.removeSession(s, "allocation failed", removal{}) // the next invite creates it again
	}
	c.retryInvite(m, s.jid)
}

// retryInvite tries another bridge, a few times at most.
func (c *Conference) retryInvite(m *Participant, exclude ...string) {
	m.attempts++
	if m.attempts > 3 {
		c.log.Error("giving up inviting participant after repeated bridge failures", "endpoint", m.Nick)
		m.failed = true
		return
	}
	c.invite(m, exclude)
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
	c.hookInvite(m, &Invitation{Session: s, Muted: &muted}) // before m.initiated: it tells a join from a move
	m.initiated = true
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
	default:
		if h := c.f.confIQ[p.Space]; h != nil {
			h(c, m, iq)
			return
		}
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
		c.hookBridge(SessionEvent{Kind: RestartRequested, Member: m, Bridge: m.bridge})
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

// moveParticipant re-invites m on another bridge (RestartJingle: the old
// session is terminated, its sources removed from the others, then a fresh
// session-initiate follows).
func (c *Conference) moveParticipant(m *Participant, exclude []string, why string) {
	c.f.metrics.ParticipantsMoved.Inc()
	c.log.Info("moving participant", "endpoint", m.Nick, "from", m.bridge, "why", why)
	if m.sid != "" {
		c.send(BuildSessionTerminate(c.f.x.JID(), m.Occupant, m.sid, "success", "moving"))
	}
	// Callers that pass exclude have cleared m.bridge already (that bridge
	// is gone), so endSession expires nothing there.
	c.endSession(m, true)
	c.retryInvite(m, exclude...) // attempts are reset by the next successful allocation
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
// rendering of it (a sourceView, sourcewire.go), so a hundred receivers
// cost one encoding.
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
			continue // the bridge tells it about the sources it forwards
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
