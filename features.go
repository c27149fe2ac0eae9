// features.go: the optional parts of the focus and the hooks through which
// they reach the core. Removing one = deleting its file(s), its line in
// features() and its state in confFeatures/focusFeatures below. Not yet
// for every feature: handover.go still reads the state of AV moderation,
// room metadata, breakout rooms, authentication, Jibri and pins directly.

package main

import "sync"

// Feature is one optional part. Every hook may be nil. Hooks on a conference
// run on its goroutine and must not block (they use c.async/c.send).
type Feature struct {
	Name string
	// Setup wires the feature into a new Main (NewMain calls it once the
	// core is built): IQ routes, presence handlers, background loops,
	// private HTTP routes, extra MUC domains. It enables nothing that is
	// not configured.
	Setup func(m *Main)
	// Request may refuse a conference request, forbid it to start a new
	// conference, and add response properties. It runs before the focus
	// takes its lock, in list order.
	Request func(f *Focus, room string, req ConferenceRequest, a *Admission) error
	// Presence adds to the focus's presence in the room (props is its
	// <conference-properties>).
	Presence func(c *Conference, props, p *Element)
	// Room sees the room being configured (ev.Form) or a member presence
	// (ev.Member, ev.Presence; ev.Leaving for type=unavailable, before the
	// core handles the departure).
	Room func(c *Conference, ev RoomEvent)
	// Moderators: every hook runs; if any returns true the core's
	// auto-owner does not run.
	Moderators func(c *Conference) bool
	// Invite adjusts an invitation: at allocation (in.Endpoint, in.Request
	// set) and at session-initiate (in.Muted set, before m.initiated is set).
	Invite func(c *Conference, m *Participant, in *Invitation)
	// Bridge sees changes of the conference's bridge sessions.
	Bridge func(c *Conference, ev SessionEvent)
	// Unmute may refuse a self-unmute; after (may be nil) runs once the
	// result has been sent.
	Unmute func(c *Conference, m *Participant, space string) (ok bool, after func())
	// InviteAlone: a lone member is invited too (min-participants is 1).
	InviteAlone func(c *Conference) bool
	// Ending: the last member left (final=false; keep=true keeps the room),
	// or the conference stops (final=true; the result is ignored).
	Ending func(c *Conference, final bool) (keep bool)
}

// features lists the optional parts, in hook order.
func features() []Feature {
	return []Feature{
		cascadeFeature(),        // cascade.go        relays between a conference's bridges
		avModerationFeature(),   // avmoderation.go   audio/video moderation (force-mute, unmute gate)
		transcriptionFeature(),  // transcription.go  room metadata: start-muted, async transcription
		breakoutsFeature(),      // breakout.go       breakout rooms (before authentication)
		iceFailureFeature(),     // icefailure.go     bridges whose clients keep restarting read as overloaded
		operatorFeature(),       // operator.go       /move-endpoints, load redistribution
		bridgePolicyFeature(),   // bridgepolicy.go   /pin (version pinning)
		authenticationFeature(), // auth.go           Prosody/JWT login: who may start, who is moderator
		jibriFeature(),          // jibri.go          recording, streaming, SIP video gateway
		jigasiFeature(),         // jigasi.go         SIP dial-out (Rayo)
	}
}

// confFeatures is the features' per-conference state, embedded in
// Conference (each type is declared in its feature's file).
type confFeatures struct {
	avModerationState
	metadataState
	breakoutState
	jibriState
}

// focusFeatures is the features' state on the Focus, embedded in Focus.
type focusFeatures struct {
	pinState
	authFocusState
	jibriPools
	jigasiPool
	avModAddrState
	metadataAddrState
	breakoutDomainState
}

// RoomEvent is what the Room hook sees. The Form event runs on the room
// configuration's worker, not on the conference goroutine: it may only
// store into atomic state.
type RoomEvent struct {
	Form     *Element     // the room configuration form's fields, or nil
	Member   *Participant // a member whose presence arrived, or nil
	Presence *Element
	Leaving  bool // the presence is type=unavailable
}

// SessionEventKind says what changed in a bridge session.
type SessionEventKind int

const (
	EndpointUp       SessionEventKind = iota // Member's endpoint is in use on Session
	EndpointUpdated                          // Nick's sources on Session changed
	EndpointGone                             // Nick left Session
	SessionGone                              // Session was removed from the conference
	RestartRequested                         // Member asked for a restart on Bridge
)

// SessionEvent is what the Bridge hook sees.
type SessionEvent struct {
	Kind    SessionEventKind
	Session *bridgeSession
	Member  *Participant
	Nick    string
	StatsID string
	Sources *Element // EndpointUpdated: the Colibri2 sources
	Bridge  string   // RestartRequested
}

// Invitation is what the Invite hook may change.
type Invitation struct {
	Session  *bridgeSession
	Create   bool             // the request creates the conference on the bridge
	Endpoint *ColibriEndpoint // allocation
	Request  *ColibriRequest  // allocation
	Muted    *[2]bool         // session-initiate: audio, video
}

// Admission is what the Request hooks decide about a conference request.
type Admission struct {
	Exempt        bool                                            // no login needed here (a breakout room)
	Authenticated bool                                            // the sender has logged in
	NoStart       func() error                                    // set: the request may not start a new conference (called under the focus lock)
	Properties    [][2]string                                     // added to the response ("authentication" first, if any)
	Joined        []func(c *Conference, resp *ConferenceResponse) // after the focus is in the room
}

// hooks are the features' hooks, one slice per hook, nil funcs dropped.
type hooks struct {
	request    []func(f *Focus, room string, req ConferenceRequest, a *Admission) error
	presence   []func(c *Conference, props, p *Element)
	room       []func(c *Conference, ev RoomEvent)
	moderators []func(c *Conference) bool
	invite     []func(c *Conference, m *Participant, in *Invitation)
	bridge     []func(c *Conference, ev SessionEvent)
	unmute     []func(c *Conference, m *Participant, space string) (bool, func())
	ending     []func(c *Conference, final bool) bool
	alone      []func(c *Conference) bool
}

func compileHooks(fs []Feature) *hooks {
	h := &hooks{}
	for _, f := range fs {
		if f.Request != nil {
			h.request = append(h.request, f.Request)
		}
		if f.Presence != nil {
			h.presence = append(h.presence, f.Presence)
		}
		if f.Room != nil {
			h.room = append(h.room, f.Room)
		}
		if f.Moderators != nil {
			h.moderators = append(h.moderators, f.Moderators)
		}
		if f.Invite != nil {
			h.invite = append(h.invite, f.Invite)
		}
		if f.Bridge != nil {
			h.bridge = append(h.bridge, f.Bridge)
		}
		if f.Unmute != nil {
			h.unmute = append(h.unmute, f.Unmute)
		}
		if f.InviteAlone != nil {
			h.alone = append(h.alone, f.InviteAlone)
		}
		if f.Ending != nil {
			h.ending = append(h.ending, f.Ending)
		}
	}
	return h
}

// defaultHooks serves a Focus built without NewFocus (tests). Computed on
// first use: the hooks refer back to core functions that call them.
var defaultHooks struct {
	once sync.Once
	h    *hooks
}

func (c *Conference) hooks() *hooks {
	if c.f != nil && c.f.hooks != nil {
		return c.f.hooks
	}
	defaultHooks.once.Do(func() { defaultHooks.h = compileHooks(features()) })
	return defaultHooks.h
}

func (c *Conference) hookPresence(props, p *Element) {
	for _, h := range c.hooks().presence {
		h(c, props, p)
	}
}

func (c *Conference) hookRoom(ev RoomEvent) {
	for _, h := range c.hooks().room {
		h(c, ev)
	}
}

// hookModerators runs every Moderators hook; true if any took over.
func (c *Conference) hookModerators() bool {
	took := false
	for _, h := range c.hooks().moderators {
		took = h(c) || took
	}
	return took
}

func (c *Conference) hookInvite(m *Participant, in *Invitation) {
	for _, h := range c.hooks().invite {
		h(c, m, in)
	}
}

func (c *Conference) hookBridge(ev SessionEvent) {
	for _, h := range c.hooks().bridge {
		h(c, ev)
	}
}

// hookUnmute asks every Unmute hook; on refusal the afters are dropped.
func (c *Conference) hookUnmute(m *Participant, space string) (bool, []func()) {
	var afters []func()
	for _, h := range c.hooks().unmute {
		ok, after := h(c, m, space)
		if !ok {
			return false, nil
		}
		if after != nil {
			afters = append(afters, after)
		}
	}
	return true, afters
}

// hookEnding runs every Ending hook; keep if any wants the room kept.
func (c *Conference) hookEnding(final bool) bool {
	keep := false
	for _, h := range c.hooks().ending {
		keep = h(c, final) || keep
	}
	return keep
}

func (c *Conference) hookInviteAlone() bool {
	for _, h := range c.hooks().alone {
		if h(c) {
			return true
		}
	}
	return false
}

// hookRequest runs the Request hooks; the first error refuses the request.
func (f *Focus) hookRequest(room string, req ConferenceRequest, a *Admission) error {
	h := f.hooks
	if h == nil {
		h = (&Conference{f: f}).hooks()
	}
	for _, r := range h.request {
		if err := r(f, room, req, a); err != nil {
			return err
		}
	}
	return nil
}
