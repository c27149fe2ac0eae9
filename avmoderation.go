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
	if avmodOf(c).avmod == nil {
		avmodOf(c).avmod = map[string]*avModeration{}
	}
	st := avmodOf(c).avmod[media]
	if st == nil {
		st = &avModeration{whitelist: map[string]bool{}}
		avmodOf(c).avmod[media] = st
	}
	return st
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
	for _, m := range c.members {
		delete(m.selfUnmuted, media) // everyone asks again
	}
	ns := map[string]string{"audio": nsMuteAudio, "video": nsMuteVideo, "desktop": nsMuteDesktop}[media]
	for _, m := range c.members {
		if strings.EqualFold(m.Occupant, msg.Actor) || m.Jibri || m.Jigasi {
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
		if !st.whitelist[strings.ToLower(m.Occupant)] {
			delete(m.selfUnmuted, media)
		}
		c.enforceForceMute(m)
	}
}

// forceMute is what the bridge must enforce for m: audio when audio is
// moderated, video when both camera and screen sharing are (the bridge has
// one video switch), unless m may unmute (moderator, whitelisted, or
// allowed since). Jibri and Jigasi are never force-muted.
func (c *Conference) forceMute(m *Participant) [2]bool {
	if m.Jibri || m.Jigasi || m.moderator() {
		return [2]bool{}
	}
	held := func(media string) bool {
		st := avmodOf(c).avmod[media]
		return st != nil && st.enabled && !st.whitelist[strings.ToLower(m.Occupant)] && !m.selfUnmuted[media]
	}
	return [2]bool{held("audio"), held("video") && held("desktop")}
}

// enforceForceMute sends the bridge m's force-mute when it changed.
func (c *Conference) enforceForceMute(m *Participant) {
	fm := c.forceMute(m)
	if fm == m.forceMuted {
		return
	}
	m.forceMuted = fm
	if s := c.sessions[m.bridge]; s != nil && s.endpoints[m.Nick] {
		c.colibriUpdate(s, ColibriRequest{MeetingID: c.meetingID, Endpoints: []ColibriEndpoint{{ID: m.Nick, ForceMute: &fm, InitialLastN: -1}}})
	}
}

// selfUnmuteAllowed: moderators, whitelisted participants, or moderation off.
func (c *Conference) selfUnmuteAllowed(m *Participant, ns string) bool {
	media := map[string]string{nsMuteAudio: "audio", nsMuteVideo: "video", nsMuteDesktop: "desktop"}[ns]
	st := avmodOf(c).avmod[media]
	return st == nil || !st.enabled || m.moderator() || st.whitelist[strings.ToLower(m.Occupant)]
}

// avModerationState is AV moderation's per-conference state.
type avModerationState struct {
	avmod map[string]*avModeration // by media type
}

func avmodOf(c *Conference) *avModerationState { return confState[avModerationState](c) }

func avModerationFeature() Feature {
	return Feature{Name: "av-moderation", ConfState: func() any { return new(avModerationState) }, FocusState: func() any { return new(avModAddrState) }, Save: saveAVModeration, Restore: restoreAVModeration,
		SaveFocus: func(f *Focus) (json.RawMessage, error) { return saveDiscovered(&avModAddrOf(f).avModAddr) },
		RestoreFocus: func(f *Focus, raw json.RawMessage) error {
			return restoreDiscovered(&avModAddrOf(f).avModAddr, f.cfg.XMPP.AVModerationComponent, raw)
		},
		Invite: avModInvite, Unmute: avModUnmute,
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
	if in.Endpoint != nil {
		fm := c.forceMute(m)
		if fm[0] || fm[1] {
			in.Endpoint.ForceMute = &fm // joining a moderated conference
		}
		m.forceMuted = fm
	}
	if in.Muted != nil {
		in.Muted[0] = in.Muted[0] || m.forceMuted[0]
		in.Muted[1] = in.Muted[1] || m.forceMuted[1]
	}
}

// avModUnmute refuses a self-unmute the moderator has not allowed; once
// allowed, the unmute lifts the bridge's force-mute.
func avModUnmute(c *Conference, m *Participant, space string) (bool, func()) {
	if !c.selfUnmuteAllowed(m, space) {
		return false, nil
	}
	return true, func() {
		if m.selfUnmuted == nil {
			m.selfUnmuted = map[string]bool{}
		}
		m.selfUnmuted[map[string]string{nsMuteAudio: "audio", nsMuteVideo: "video", nsMuteDesktop: "desktop"}[space]] = true
		c.enforceForceMute(m)
	}
}

// avModState is a media type's moderation carried across a restart.
type avModState struct {
	Enabled   bool            `json:"enabled"`
	Whitelist map[string]bool `json:"whitelist,omitempty"`
}

func saveAVModeration(c *Conference) (json.RawMessage, error) {
	if len(avmodOf(c).avmod) == 0 {
		return nil, nil
	}
	st := map[string]avModState{}
	for media, a := range avmodOf(c).avmod {
		st[media] = avModState{Enabled: a.enabled, Whitelist: a.whitelist}
	}
	return json.Marshal(st)
}

func restoreAVModeration(c *Conference, raw json.RawMessage) error {
	var st map[string]avModState
	if err := json.Unmarshal(raw, &st); err != nil {
		return err
	}
	if len(st) > 0 {
		avmodOf(c).avmod = map[string]*avModeration{}
		for media, a := range st {
			avmodOf(c).avmod[media] = &avModeration{enabled: a.Enabled, whitelist: a.Whitelist}
		}
	}
	return nil
}
