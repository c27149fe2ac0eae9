// features.go: the optional parts of the focus and the hooks through which
// they reach the core. Removing one = deleting its file (and its tests) and
// its line in features(). A feature keeps its own state (ConfState,
// FocusState); state it carries across a restart goes through its
// Save/Restore and SaveFocus/RestoreFocus hooks: the handover's state file
// keeps it under its Name.

package main

import (
	"encoding/json"
	"reflect"
	"slices"
	"sync"
)

// Feature is one optional part. Every hook may be nil. Hooks on a conference
// run on its goroutine (except Room's Form event, see RoomEvent) and must
// not block (they use c.async/c.send).
type Feature struct {
	Name string
	// Setup wires the feature into a new Main (NewMain calls it once the
	// core is built) by filling the core's registries: IQ routes
	// (Focus.confIQ, focusIQ), message handlers, Jitsi component types,
	// extra MUC domains, the bridge version pin (Focus.pinned); presence
	// handlers, background loops and brewery leaves (Main); private HTTP
	// routes. It enables nothing that is not configured.
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
	// Save returns the feature's state of a conference to carry across a
	// restart (nil: none); it runs on the conference goroutine as the
	// conference retires, and may stop the feature's timers.
	Save func(c *Conference) (json.RawMessage, error)
	// Restore puts saved state back into a restored conference before its
	// goroutine starts (nothing else holds the conference yet); work that
	// needs the goroutine it posts with c.postWait. An error: the
	// conference is not restored.
	Restore func(c *Conference, raw json.RawMessage) error
	// SaveFocus and RestoreFocus do the same for the feature's state on
	// the Focus (written after the conferences, restored before them).
	SaveFocus    func(f *Focus) (json.RawMessage, error)
	RestoreFocus func(f *Focus, raw json.RawMessage) error
	// LinksBridges: the feature links a conference's bridges (relays), so a
	// conference may use more than one; without one it stays on one bridge.
	LinksBridges bool
	// ConfState and FocusState make the feature's own state (a pointer to
	// a struct declared in its file) for each conference and for the
	// focus; the feature finds it again with confState / focusState.
	ConfState, FocusState func() any
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

// featureStates holds the features' own state on a Conference or on the
// Focus: one value per feature that has any, made with its owner (so it
// exists before any goroutine can reach it) and found again by its type.
type featureStates map[reflect.Type]any

func makeStates(fs []Feature, maker func(Feature) func() any) featureStates {
	s := featureStates{}
	for _, ft := range fs {
		if mk := maker(ft); mk != nil {
			v := mk()
			s[reflect.TypeOf(v)] = v
		}
	}
	return s
}

// confState is the state of type T a feature keeps on c (ConfState made it).
func confState[T any](c *Conference) *T { return stateOf[T](c.ext) }

// focusState is the state of type T a feature keeps on f (FocusState made it).
func focusState[T any](f *Focus) *T { return stateOf[T](f.ext) }

// stateOf finds the state of type *T. Owners built without their
// constructor (some tests) get a fresh zero value: the feature acts as
// unconfigured.
func stateOf[T any](s featureStates) *T {
	if v, ok := s[reflect.TypeFor[*T]()].(*T); ok {
		return v
	}
	return new(T)
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

// defaultFeatures serves a Focus built without NewFocus (tests). Computed on
// first use: the hooks refer back to core functions that call them.
var defaultFeatures struct {
	once sync.Once
	list []Feature
}

// featureList is the focus's features, in hook order.
func (f *Focus) featureList() []Feature {
	if f != nil && f.feats != nil {
		return f.feats
	}
	defaultFeatures.once.Do(func() { defaultFeatures.list = features() })
	return defaultFeatures.list
}

func (c *Conference) feats() []Feature { return c.f.featureList() }

// useFeatures gives f its features and makes their state on it.
func (f *Focus) useFeatures(fs []Feature) {
	f.feats = fs
	f.linksBridges = slices.ContainsFunc(fs, func(ft Feature) bool { return ft.LinksBridges })
	f.ext = makeStates(fs, func(ft Feature) func() any { return ft.FocusState })
}

func (c *Conference) hookPresence(props, p *Element) {
	for _, ft := range c.feats() {
		if ft.Presence != nil {
			ft.Presence(c, props, p)
		}
	}
}

func (c *Conference) hookRoom(ev RoomEvent) {
	for _, ft := range c.feats() {
		if ft.Room != nil {
			ft.Room(c, ev)
		}
	}
}

// hookModerators runs every Moderators hook; true if any took over.
func (c *Conference) hookModerators() bool {
	took := false
	for _, ft := range c.feats() {
		if ft.Moderators != nil {
			took = ft.Moderators(c) || took
		}
	}
	return took
}

func (c *Conference) hookInvite(m *Participant, in *Invitation) {
	for _, ft := range c.feats() {
		if ft.Invite != nil {
			ft.Invite(c, m, in)
		}
	}
}

func (c *Conference) hookBridge(ev SessionEvent) {
	for _, ft := range c.feats() {
		if ft.Bridge != nil {
			ft.Bridge(c, ev)
		}
	}
}

// hookUnmute asks every Unmute hook; on refusal the afters are dropped.
func (c *Conference) hookUnmute(m *Participant, space string) (bool, []func()) {
	var afters []func()
	for _, ft := range c.feats() {
		if ft.Unmute == nil {
			continue
		}
		ok, after := ft.Unmute(c, m, space)
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
	for _, ft := range c.feats() {
		if ft.Ending != nil {
			keep = ft.Ending(c, final) || keep
		}
	}
	return keep
}

func (c *Conference) hookInviteAlone() bool {
	for _, ft := range c.feats() {
		if ft.InviteAlone != nil && ft.InviteAlone(c) {
			return true
		}
	}
	return false
}

// hookRequest runs the Request hooks; the first error refuses the request.
func (f *Focus) hookRequest(room string, req ConferenceRequest, a *Admission) error {
	for _, ft := range f.featureList() {
		if ft.Request == nil {
			continue
		}
		if err := ft.Request(f, room, req, a); err != nil {
			return err
		}
	}
	return nil
}
