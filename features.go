// features.go: the optional parts of the focus and the hooks through which
// they reach the core. Removing one = deleting its file(s), its line in
// features() and its state in confFeatures/focusFeatures below. State a
// feature carries across a restart goes through its Save/Restore hooks:
// the handover's state file keeps it under the feature's Name.

package main

import (
	"encoding/json"
	"fmt"
	"sync"
)

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
	state      []Feature // the features with a Save/Restore hook
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
		if f.Save != nil || f.Restore != nil || f.SaveFocus != nil || f.RestoreFocus != nil {
			h.state = append(h.state, f)
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

// saveFeatures collects the features' state of c for the state file, by
// feature name. It runs on the conference goroutine.
func (c *Conference) saveFeatures() (map[string]json.RawMessage, error) {
	var out map[string]json.RawMessage
	for _, ft := range c.hooks().state {
		if ft.Save == nil {
			continue
		}
		raw, err := ft.Save(c)
		if err != nil {
			return nil, fmt.Errorf("saving %s: %w", ft.Name, err)
		}
		if raw == nil {
			continue
		}
		if out == nil {
			out = map[string]json.RawMessage{}
		}
		out[ft.Name] = raw
	}
	return out, nil
}

// restoreFeatures hands each feature its saved state of c. State of a
// feature this build does not have is dropped.
func (c *Conference) restoreFeatures(saved map[string]json.RawMessage) error {
	for _, ft := range c.hooks().state {
		raw, ok := saved[ft.Name]
		if !ok || ft.Restore == nil {
			continue
		}
		if err := ft.Restore(c, raw); err != nil {
			return fmt.Errorf("restoring %s: %w", ft.Name, err)
		}
	}
	return nil
}

// saveFeatures collects the features' state on the Focus, by feature name;
// a feature that cannot save is left out (and said).
func (f *Focus) saveFeatures() map[string]json.RawMessage {
	var out map[string]json.RawMessage
	for _, ft := range (&Conference{f: f}).hooks().state {
		if ft.SaveFocus == nil {
			continue
		}
		raw, err := ft.SaveFocus(f)
		if err != nil {
			f.log.Warn("handover: feature state not saved", "feature", ft.Name, "err", err)
			continue
		}
		if raw == nil {
			continue
		}
		if out == nil {
			out = map[string]json.RawMessage{}
		}
		out[ft.Name] = raw
	}
	return out
}

// restoreFeatures hands each feature its saved state on the Focus; a
// feature whose state is unusable starts without it (and says so).
func (f *Focus) restoreFeatures(saved map[string]json.RawMessage) {
	for _, ft := range (&Conference{f: f}).hooks().state {
		raw, ok := saved[ft.Name]
		if !ok || ft.RestoreFocus == nil {
			continue
		}
		if err := ft.RestoreFocus(f, raw); err != nil {
			f.log.Warn("handover: feature state not restored", "feature", ft.Name, "err", err)
		}
	}
}
