package main

// transcription.go: optional feature: room metadata (start-muted, async transcription) and placing the transcriber.

import (
	"bytes"
	"encoding/json"
	"maps"
	neturl "net/url"
	"slices"
	"strings"
	"sync/atomic"
)

// roomMetadata is what the focus reads from the room_metadata component.
type roomMetadata struct {
	StartMuted struct {
		Audio bool `json:"audio"`
		Video bool `json:"video"`
	} `json:"startMuted"`
	Recording struct {
		IsTranscribingEnabled bool `json:"isTranscribingEnabled"`
	} `json:"recording"`
	AsyncTranscription bool `json:"asyncTranscription"`
	// Transcription's urlParams and httpHeaders are read leniently (see
	// stringMap): a shape the focus does not expect must not cost the
	// rest of the metadata.
	Transcription struct {
		URLParams   json.RawMessage `json:"urlParams"`
		HTTPHeaders json.RawMessage `json:"httpHeaders"`
	} `json:"transcription"`
}

// asyncTranscription: the bridge transcribes the conference (Jitsi's
// "async" transcription, docs/conference-features.md#transcription).
func (m roomMetadata) asyncTranscription() bool {
	return m.Recording.IsTranscribingEnabled && m.AsyncTranscription
}

// stringMap reads a JSON object of strings; anything else is empty.
func stringMap(raw json.RawMessage) map[string]string {
	var out map[string]string
	if len(raw) == 0 || json.Unmarshal(raw, &out) != nil {
		return nil
	}
	return out
}

// setMetadata applies new room metadata. Turning async transcription on
// makes the conference start sessions with one participant (there is
// something to transcribe), tells clients audio-recording-enabled, and
// places the transcriber on a bridge; turning it off removes it.
func (c *Conference) setMetadata(m roomMetadata) {
	was := metaOf(c).metadata.asyncTranscription()
	old := metaOf(c).metadata.Transcription
	metaOf(c).metadata = m
	if was == m.asyncTranscription() {
		if metaOf(c).transcriber != "" && (!bytes.Equal(old.URLParams, m.Transcription.URLParams) || !bytes.Equal(old.HTTPHeaders, m.Transcription.HTTPHeaders)) {
			// New URL parameters or headers: connect the transcriber again.
			if s := c.sessions[metaOf(c).transcriber]; s != nil && s.createSent {
				c.colibriUpdate(s, ColibriRequest{MeetingID: c.meetingID, Connects: c.transcriberConnect(s, false)})
			}
			metaOf(c).transcriber = ""
			c.placeTranscriber()
		}
		return
	}
	c.log.Info("async transcription", "on", m.asyncTranscription())
	c.publishPresence()
	c.evaluate()
	c.placeTranscriber()
}

// wantTranscriber: async transcription is on and a transcriber URL is
// configured.
func (c *Conference) wantTranscriber() bool {
	return metaOf(c).metadata.asyncTranscription() && c.cfg().Transcription.URLTemplate != ""
}

// placeTranscriber keeps the transcriber <connect> on exactly one bridge of
// the conference while it is wanted: on a bridge the conference already
// has (a new conference gets it with its first allocation, see invite),
// again elsewhere when that bridge goes away, expired when it is no longer
// wanted.
func (c *Conference) placeTranscriber() {
	want := c.wantTranscriber()
	if s := c.sessions[metaOf(c).transcriber]; metaOf(c).transcriber != "" && (s == nil || !want) {
		if s != nil && s.createSent {
			c.colibriUpdate(s, ColibriRequest{MeetingID: c.meetingID, Connects: c.transcriberConnect(s, false)})
		}
		metaOf(c).transcriber = ""
	}
	if !want || metaOf(c).transcriber != "" {
		return
	}
	for _, jid := range slices.Sorted(maps.Keys(c.sessions)) {
		if s := c.sessions[jid]; s.createSent {
			metaOf(c).transcriber = jid
			c.colibriUpdate(s, ColibriRequest{MeetingID: c.meetingID, Connects: c.transcriberConnect(s, true)})
			return
		}
	}
}

// transcriberConnect is the <connects> that creates (or expires) the
// transcriber on bridge session s: audio as "mediajson" over a WebSocket to
// the configured URL ({{MEETING_ID}} and {{REGION}} filled in, the room's
// urlParams added), with the room's HTTP headers.
func (c *Conference) transcriberConnect(s *bridgeSession, create bool) *Element {
	url := strings.NewReplacer("{{MEETING_ID}}", c.meetingID, "{{REGION}}", s.region).Replace(c.cfg().Transcription.URLTemplate)
	if params := stringMap(metaOf(c).metadata.Transcription.URLParams); len(params) > 0 {
		q := neturl.Values{}
		for k, v := range params {
			q.Set(k, v)
		}
		sep := "?"
		if strings.Contains(url, "?") {
			sep = "&"
		}
		url += sep + q.Encode()
	}
	conn := NewElement(nsColibri2, "connect", "id", "transcriber", "url", url, "protocol", "mediajson", "type", "transcriber", "audio", "true")
	if !create {
		return NewElement(nsColibri2, "connects").Add(conn.Set("expire", "true"))
	}
	conn.Set("create", "true")
	headers := stringMap(metaOf(c).metadata.Transcription.HTTPHeaders)
	for _, k := range slices.Sorted(maps.Keys(headers)) {
		conn.Add(NewElement(nsColibri2, "http-header", "name", k, "value", headers[k]))
	}
	// Jicofo's transcription.ping defaults: the bridge keeps the socket alive.
	conn.Add(NewElement(nsColibri2, "ping", "interval", "10000", "timeout", "3000"))
	return NewElement(nsColibri2, "connects").Add(conn)
}

// handleRoomMetadata applies the room's metadata: startMuted makes
// participants who join from now on start muted.
func (f *Focus) handleRoomMetadata(msg *Element) {
	jm := msg.Child(nsJitmeet, "json-message")
	var m struct {
		Type     string       `json:"type"`
		Metadata roomMetadata `json:"metadata"`
	}
	if jm == nil || json.Unmarshal([]byte(jm.Text), &m) != nil || m.Type != "room_metadata" {
		f.log.Debug("ignored a malformed room metadata message")
		return
	}
	if c := f.lookup(jm.Attr("room")); c != nil {
		c.post(event{kind: evFunc, fn: func() { c.setMetadata(m.Metadata) }})
	}
}

// metadataState is the room metadata's per-conference state.
type metadataState struct {
	transcriber string       // bridge holding the async transcriber's <connect>, or ""
	metadata    roomMetadata // from the room_metadata component
}

func metaOf(c *Conference) *metadataState { return confState[metadataState](c) }

func transcriptionFeature() Feature {
	return Feature{Name: "transcription", ConfState: func() any { return new(metadataState) }, FocusState: func() any { return new(metadataAddrState) }, Save: saveMetadata, Restore: restoreMetadata,
		SaveFocus: func(f *Focus) (json.RawMessage, error) { return saveDiscovered(&metadataAddrOf(f).metadataAddr) },
		RestoreFocus: func(f *Focus, raw json.RawMessage) error {
			return restoreDiscovered(&metadataAddrOf(f).metadataAddr, f.cfg.XMPP.RoomMetadataComponent, raw)
		},
		Presence: metadataPresence, Invite: metadataInvite,
		Setup: func(m *Main) {
			f, addr := m.Focus, m.Config.XMPP.RoomMetadataComponent
			metadataAddrOf(f).metadataAddr.Store(addr)
			f.components["room_metadata"] = func(found string) bool { return storeIfUnset(&metadataAddrOf(f).metadataAddr, addr, found) }
			f.messages = append(f.messages, func(msg *Element) bool {
				if !fromComponent(msg, &metadataAddrOf(f).metadataAddr) {
					return false
				}
				f.handleRoomMetadata(msg)
				return true
			})
		},
		InviteAlone: func(c *Conference) bool {
			return metaOf(c).metadata.asyncTranscription() // the bridge transcribes even a lone speaker
		},
		Bridge: func(c *Conference, ev SessionEvent) {
			if ev.Kind == SessionGone {
				c.placeTranscriber() // it may have been on that bridge
			}
		}}
}

// metadataPresence tells the clients the bridge records audio for the
// async transcription.
func metadataPresence(c *Conference, props, p *Element) {
	if metaOf(c).metadata.asyncTranscription() {
		props.Add(NewElement(nsFocus, "property", "key", "audio-recording-enabled", "value", "true"))
	}
}

// metadataInvite puts the transcriber's <connect> on the bridge that gets
// the conference first, and applies the room's start-muted policy to joins.
func metadataInvite(c *Conference, m *Participant, in *Invitation) {
	if in.Request != nil && in.Create && metaOf(c).transcriber == "" && c.wantTranscriber() {
		in.Request.Connects = c.transcriberConnect(in.Session, true)
		metaOf(c).transcriber = in.Session.jid
	}
	if in.Muted != nil && !m.initiated { // the room's policy is for joining, not for moves
		in.Muted[0] = in.Muted[0] || metaOf(c).metadata.StartMuted.Audio
		in.Muted[1] = in.Muted[1] || metaOf(c).metadata.StartMuted.Video
	}
}

// metadataAddrState holds the room_metadata component's address.
type metadataAddrState struct {
	metadataAddr atomic.Value // string
}

func metadataAddrOf(f *Focus) *metadataAddrState { return focusState[metadataAddrState](f) }

// metadataSaved is a conference's room metadata carried across a restart.
type metadataSaved struct {
	Transcriber string       `json:"transcriber,omitempty"`
	Metadata    roomMetadata `json:"metadata"`
}

func saveMetadata(c *Conference) (json.RawMessage, error) {
	return json.Marshal(metadataSaved{Transcriber: metaOf(c).transcriber, Metadata: metaOf(c).metadata})
}

func restoreMetadata(c *Conference, raw json.RawMessage) error {
	var st metadataSaved
	if err := json.Unmarshal(raw, &st); err != nil {
		return err
	}
	metaOf(c).transcriber, metaOf(c).metadata = st.Transcriber, st.Metadata
	return nil
}
