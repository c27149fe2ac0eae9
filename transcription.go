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
	was := c.metadata.asyncTranscription()
	old := c.metadata.Transcription
	c.metadata = m
	if was == m.asyncTranscription() {
		if c.transcriber != "" && (!bytes.Equal(old.URLParams, m.Transcription.URLParams) || !bytes.Equal(old.HTTPHeaders, m.Transcription.HTTPHeaders)) {
			// New URL parameters or headers: connect the transcriber again.
			if s := c.sessions[c.transcriber]; s != nil && s.createSent {
				c.colibriUpdate(s, ColibriRequest{MeetingID: c.meetingID, Connects: c.transcriberConnect(s, false)})
			}
			c.transcriber = ""
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
	return c.metadata.asyncTranscription() && c.cfg().Transcription.URLTemplate != ""
}

// placeTranscriber keeps the transcriber <connect> on exactly one bridge of
// the conference while it is wanted: on a bridge the conference already
// has (a new conference gets it with its first allocation, see invite),
// again elsewhere when that bridge goes away, expired when it is no longer
// wanted.
func (c *Conference) placeTranscriber() {
	want := c.wantTranscriber()
	if s := c.sessions[c.transcriber]; c.transcriber != "" && (s == nil || !want) {
		if s != nil && s.createSent {
			c.colibriUpdate(s, ColibriRequest{MeetingID: c.meetingID, Connects: c.transcriberConnect(s, false)})
		}
		c.transcriber = ""
	}
	if !want || c.transcriber != "" {
		return
	}
	for _, jid := range slices.Sorted(maps.Keys(c.sessions)) {
		if s := c.sessions[jid]; s.createSent {
			c.transcriber = jid
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
	if params := stringMap(c.metadata.Transcription.URLParams); len(params) > 0 {
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
	headers := stringMap(c.metadata.Transcription.HTTPHeaders)
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

func transcriptionFeature() Feature {
	return Feature{Name: "transcription", Save: saveMetadata, Restore: restoreMetadata,
		SaveFocus: func(f *Focus) (json.RawMessage, error) { return saveDiscovered(&f.metadataAddr) },
		RestoreFocus: func(f *Focus, raw json.RawMessage) error {
			return restoreDiscovered(&f.metadataAddr, f.cfg.XMPP.RoomMetadataComponent, raw)
		},
		Presence: metadataPresence, Invite: metadataInvite,
		Setup: func(m *Main) {
			f, addr := m.Focus, m.Config.XMPP.RoomMetadataComponent
			f.metadataAddr.Store(addr)
			f.components["room_metadata"] = func(found string) bool { return storeIfUnset(&f.metadataAddr, addr, found) }
			f.messages = append(f.messages, func(msg *Element) bool {
				if !fromComponent(msg, &f.metadataAddr) {
					return false
				}
				f.handleRoomMetadata(msg)
				return true
			})
		},
		InviteAlone: func(c *Conference) bool {
			return c.metadata.asyncTranscription() // the bridge transcribes even a lone speaker
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
	if c.metadata.asyncTranscription() {
		props.Add(NewElement(nsFocus, "property", "key", "audio-recording-enabled", "value", "true"))
	}
}

// metadataInvite puts the transcriber's <connect> on the bridge that gets
// the conference first, and applies the room's start-muted policy to joins.
func metadataInvite(c *Conference, m *Participant, in *Invitation) {
	if in.Request != nil && in.Create && c.transcriber == "" && c.wantTranscriber() {
		in.Request.Connects = c.transcriberConnect(in.Session, true)
		c.transcriber = in.Session.jid
	}
	if in.Muted != nil && !m.initiated { // the room's policy is for joining, not for moves
		in.Muted[0] = in.Muted[0] || c.metadata.StartMuted.Audio
		in.Muted[1] = in.Muted[1] || c.metadata.StartMuted.Video
	}
}

// metadataAddrState holds the room_metadata component's address.
type metadataAddrState struct {
	metadataAddr atomic.Value // string
}

// metadataSaved is a conference's room metadata carried across a restart.
type metadataSaved struct {
	Transcriber string       `json:"transcriber,omitempty"`
	Metadata    roomMetadata `json:"metadata"`
}

func saveMetadata(c *Conference) (json.RawMessage, error) {
	return json.Marshal(metadataSaved{Transcriber: c.transcriber, Metadata: c.metadata})
}

func restoreMetadata(c *Conference, raw json.RawMessage) error {
	var st metadataSaved
	if err := json.Unmarshal(raw, &st); err != nil {
		return err
	}
	c.transcriber, c.metadata = st.Transcriber, st.Metadata
	return nil
}
