package main

// avmoderation.go: audio/video moderation (docs/conference-features.md#audio-and-video-moderation).
//
// Jitsi's av_moderation Prosody component tells the focus when a moderator
// turns moderation on or off for a media type and who may unmute anyway
// (the whitelist). The focus enforces it: on the bridge (force-mute, so a
// muted participant's media is dropped even if its client misbehaves) and
// with mute IQs to the participants; self-unmutes are allowed only for
// moderators and whitelisted participants.

import (
	"encoding/json"
	"strings"
	"sync/atomic"
)

// avModeration is one media type's moderation state in a conference.
type avModeration struct {
	enabled   bool
	whitelist map[string]bool // occupant JIDs allowed to unmute
}

// avModMessage is the component's JSON (enum values are case-insensitive).
type avModMessage struct {
	Type       string              `json:"type"`
	Room       string              `json:"room"`
	Enabled    *bool               `json:"enabled"`
	MediaType  string              `json:"mediaType"`
	Actor      string              `json:"actor"`
	Whitelists map[string][]string `json:"whitelists"`
}

// handleAVModMessage takes the messages of the av_moderation component.
func (f *Focus) handleAVModMessage(msg *Element) bool {
	if !fromComponent(msg, &avModAddrOf(f).avModAddr) {
		return false
	}
	jm := msg.Child(nsJitmeet, "json-message")
	var m avModMessage
	if jm == nil || json.Unmarshal([]byte(jm.Text), &m) != nil || !strings.EqualFold(m.Type, "av_moderation") || m.Room == "" {
		f.log.Debug("ignored a malformed AV moderation message")
		return true
	}
	if c := f.lookup(m.Room); c != nil {
		c.post(event{kind: evFunc, fn: func() { c.applyAVModeration(m) }})
	}
	return true
}

// moderatedMedia is the component's media type: audio, video or desktop.
func moderatedMedia(s string) string {
	switch m := strings.ToLower(s); m {
	case "audio", "video", "desktop":
		return m
	}
	return ""
}

func (c *Conference) avMod(media string) *avModeration {
	st := avmodOf(c)
	if st.media == nil {
		st.media = map[string]*avModeration{}
	}
	a := st.media[media]
	if a == nil {
		a = &avModeration{whitelist: map[string]bool{}}
		st.media[media] = a
	}
	return a
}

// member is what AV moderation keeps of m (made on first use, dropped when
// m leaves).
func (st *avModerationState) member(m *Participant) *avModMember {
	if st.members == nil {
		st.members = map[string]*avModMember{}
	}
	am := st.members[m.Nick]
	if am == nil {
		am = &avModMember{}
		st.members[m.Nick] = am
	}
	return am
}

func (c *Conference) applyAVModeration(msg avModMessage) {
	// Jitsi's av_moderation component sends two kinds of message: a switch
	// ("enabled" with its "mediaType") to every occupant, and, to
	// moderators (the focus is one), the whole whitelist map after each
	// change, with or without a "mediaType". As Jicofo, a message with
	// "enabled" only switches; one without it only replaces the whitelists.
	if msg.Enabled == nil {
		for media, list := range msg.Whitelists {
			if m := moderatedMedia(media); m != "" {
				c.setAVWhitelist(m, list)
			}
		}
		return
	}
	media := moderatedMedia(msg.MediaType)
	if media == "" {
		return
	}
	st := c.avMod(media)
	was := st.enabled
	st.enabled = *msg.Enabled
	if was != st.enabled {
		// The component starts and ends each moderation with an empty list.
		st.whitelist = map[string]bool{}
	}
	c.log.Info("AV moderation", "media", media, "enabled", st.enabled, "actor", msg.Actor)
	if was || !st.enabled {
		// Turning it off unmutes nobody; it lifts the bridge's force-mute.
		for _, m := range c.members {
			c.enforceForceMute(m)
		}
		return
	}
	c.f.events.Add(c.room, "%s moderation on", media)
	for _, am := range avmodOf(c).members {
		delete(am.selfUnmuted, media) // everyone asks again
	}
	ns := map[string]string{"audio": nsMuteAudio, "video": nsMuteVideo, "desktop": nsMuteDesktop}[media]
	for _, m := range c.members {
		if strings.EqualFold(m.Occupant, msg.Actor) || m.isService() {
			continue
		}
		c.enforceForceMute(m)
		c.send(NewIQ("set", m.Occupant, randomID(), NewElement(ns, "mute").SetText("true")))
	}
}

// setAVWhitelist replaces media's whitelist (occupant JIDs); whoever was
// taken off it must ask again, and the bridge follows.
func (c *Conference) setAVWhitelist(media string, list []string) {
	st := c.avMod(media)
	st.whitelist = map[string]bool{}
	for _, j := range list {
		st.whitelist[strings.ToLower(j)] = true
	}
	c.log.Info("AV moderation whitelist", "media", media, "whitelisted", len(st.whitelist))
	for _, m := range c.members {
		if am := avmodOf(c).members[m.Nick]; am != nil && !st.whitelist[strings.ToLower(m.Occupant)] {
			delete(am.selfUnmuted, media)
		}
		c.enforceForceMute(m)
	}
}

// forceMute is what the bridge must enforce for m: audio when audio is
// moderated, video when both camera and screen sharing are (the bridge has
// one video switch), unless m may unmute (moderator, whitelisted, or
// allowed since). Jibri and Jigasi are never force-muted.
func (c *Conference) forceMute(m *Participant) [2]bool {
	if m.isService() || m.moderator() {
		return [2]bool{}
	}
	st := avmodOf(c)
	am := st.members[m.Nick] // nil: nothing allowed yet
	held := func(media string) bool {
		a := st.media[media]
		return a != nil && a.enabled && !a.whitelist[strings.ToLower(m.Occupant)] && (am == nil || !am.selfUnmuted[media])
	}
	return [2]bool{held("audio"), held("video") && held("desktop")}
}

// enforceForceMute sends the bridge m's force-mute when it changed.
func (c *Conference) enforceForceMute(m *Participant) {
	st := avmodOf(c)
	fm, am := c.forceMute(m), st.members[m.Nick]
	if am == nil && fm == ([2]bool{}) {
		return // not held, never was: nothing to keep
	}
	if am == nil {
		am = st.member(m)
	}
	if fm == am.forceMuted {
		return
	}
	am.forceMuted = fm
	if s := c.sessions[m.bridge]; s != nil && s.endpoints[m.Nick] {
		c.colibriUpdate(s, ColibriRequest{MeetingID: c.meetingID, Endpoints: []ColibriEndpoint{{ID: m.Nick, ForceMute: &fm, InitialLastN: -1}}})
	}
}

// selfUnmuteAllowed: moderators, whitelisted participants, or moderation off.
func (c *Conference) selfUnmuteAllowed(m *Participant, ns string) bool {
	media := map[string]string{nsMuteAudio: "audio", nsMuteVideo: "video", nsMuteDesktop: "desktop"}[ns]
	a := avmodOf(c).media[media]
	return a == nil || !a.enabled || m.moderator() || a.whitelist[strings.ToLower(m.Occupant)]
}

// avModerationState is AV moderation's per-conference state.
type avModerationState struct {
	media   map[string]*avModeration // by media type
	members map[string]*avModMember  // by nick
}

// avModMember is one participant's moderation: what the bridge enforces,
// and the media it was allowed to unmute itself since moderation began.
type avModMember struct {
	forceMuted  [2]bool
	selfUnmuted map[string]bool
}

func avmodOf(c *Conference) *avModerationState { return confState[avModerationState](c) }

func avModerationFeature() Feature {
	return Feature{Name: "av-moderation",
		ConfState:  func() any { return new(avModerationState) },
		FocusState: func() any { return new(avModAddrState) },
		Save:       saveAVModeration, Restore: restoreAVModeration,
		SaveFocus: func(f *Focus) (json.RawMessage, error) { return saveDiscovered(&avModAddrOf(f).avModAddr) },
		RestoreFocus: func(f *Focus, raw json.RawMessage) error {
			return restoreDiscovered(&avModAddrOf(f).avModAddr, f.cfg.XMPP.AVModerationComponent, raw)
		},
		Invite: avModInvite, Unmute: avModUnmute,
		Room: func(c *Conference, ev RoomEvent) {
			if ev.Leaving {
				delete(avmodOf(c).members, ev.Member.Nick)
			}
		},
		Setup: func(m *Main) {
			f, addr := m.Focus, m.Config.XMPP.AVModerationComponent
			avModAddrOf(f).avModAddr.Store(addr)
			f.components["av_moderation"] = func(found string) bool { return found != "" && storeIfUnset(&avModAddrOf(f).avModAddr, addr, found) }
			f.messages = append(f.messages, f.handleAVModMessage)
		}}
}

// avModAddrState holds the av_moderation component's address.
type avModAddrState struct {
	avModAddr atomic.Value // string
}

func avModAddrOf(f *Focus) *avModAddrState { return focusState[avModAddrState](f) }

// avModInvite force-mutes a participant joining a moderated conference, on
// the bridge (allocation) and in its session-initiate.
func avModInvite(c *Conference, m *Participant, in *Invitation) {
	st := avmodOf(c)
	if in.Endpoint != nil {
		fm := c.forceMute(m)
		if fm[0] || fm[1] {
			in.Endpoint.ForceMute = &fm // joining a moderated conference
		}
		if fm != ([2]bool{}) || st.members[m.Nick] != nil { // nothing kept for the unmoderated
			st.member(m).forceMuted = fm
		}
	}
	if am := st.members[m.Nick]; in.Muted != nil && am != nil {
		in.Muted[0] = in.Muted[0] || am.forceMuted[0]
		in.Muted[1] = in.Muted[1] || am.forceMuted[1]
	}
}

// avModUnmute refuses a self-unmute the moderator has not allowed; once
// allowed, the unmute lifts the bridge's force-mute.
func avModUnmute(c *Conference, m *Participant, space string) (bool, func()) {
	if !c.selfUnmuteAllowed(m, space) {
		return false, nil
	}
	return true, func() {
		am := avmodOf(c).member(m)
		if am.selfUnmuted == nil {
			am.selfUnmuted = map[string]bool{}
		}
		am.selfUnmuted[map[string]string{nsMuteAudio: "audio", nsMuteVideo: "video", nsMuteDesktop: "desktop"}[space]] = true
		c.enforceForceMute(m)
	}
}

// avModState is a media type's moderation carried across a restart.
type avModState struct {
	Enabled   bool            `json:"enabled"`
	Whitelist map[string]bool `json:"whitelist,omitempty"`
}

// avModMemberState is a participant's moderation carried across a restart.
type avModMemberState struct {
	ForceMuted  [2]bool         `json:"force_muted"`
	SelfUnmuted map[string]bool `json:"self_unmuted,omitempty"`
}

type avModSaved struct {
	Media   map[string]avModState       `json:"media"`
	Members map[string]avModMemberState `json:"members,omitempty"`
}

func saveAVModeration(c *Conference) (json.RawMessage, error) {
	st := avmodOf(c)
	if len(st.media) == 0 && len(st.members) == 0 {
		return nil, nil
	}
	out := avModSaved{Media: map[string]avModState{}, Members: map[string]avModMemberState{}}
	for media, a := range st.media {
		out.Media[media] = avModState{Enabled: a.enabled, Whitelist: a.whitelist}
	}
	for nick, am := range st.members {
		out.Members[nick] = avModMemberState{ForceMuted: am.forceMuted, SelfUnmuted: am.selfUnmuted}
	}
	return json.Marshal(out)
}

func restoreAVModeration(c *Conference, raw json.RawMessage) error {
	var saved avModSaved
	if err := json.Unmarshal(raw, &saved); err != nil {
		return err
	}
	st := avmodOf(c)
	st.media, st.members = map[string]*avModeration{}, map[string]*avModMember{}
	for media, a := range saved.Media {
		st.media[media] = &avModeration{enabled: a.Enabled, whitelist: a.Whitelist}
	}
	for nick, am := range saved.Members {
		st.members[nick] = &avModMember{forceMuted: am.ForceMuted, selfUnmuted: am.SelfUnmuted}
	}
	return nil
}
