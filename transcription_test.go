package main

import (
	"encoding/json"
	"minifocus/testkit"
	"testing"
	"time"
)

// Room metadata's startMuted applies to participants who join afterwards.
func TestRoomMetadataStartMuted(t *testing.T) {
	s := startStackWith(t, 1, []testkit.Option{testkit.WithJitsiComponents()})
	s.wait("the room_metadata component discovered", func() bool {
		a, _ := metadataAddrOf(s.focus.Focus).metadataAddr.Load().(string)
		return a == testkit.MetadataDomain
	})
	room := "meta@conference.meet.test"
	p1 := s.join(room)
	p2 := s.join(room)
	s.wait("sessions", func() bool { return p1.Accepted() && p2.Accepted() })
	comp := dialComponent(t, s.prosody, testkit.MetadataDomain)
	msg := roomMetadataMessage(room, `{"startMuted":{"video":true}}`)
	if _, err := comp.c.Write(msg.Bytes()); err != nil {
		t.Fatal(err)
	}
	s.wait("metadata applied", func() bool {
		c := s.focus.Focus.lookup(room)
		got := make(chan bool, 1)
		if c == nil || !c.post(event{kind: evFunc, fn: func() { got <- metaOf(c).metadata.StartMuted.Video }}) {
			return false
		}
		return <-got
	})
	p3 := s.join(room)
	s.wait("p3 in", func() bool { return p3.Accepted() })
	sm := p3.Offers()[0].Child("", "jingle").Child(nsStartMuted, "startmuted")
	if sm == nil || sm.Attr("video") != "true" || sm.Attr("audio") != "false" {
		t.Errorf("startmuted after metadata: %v", sm)
	}
	if old := p1.Offers()[0].Child("", "jingle").Child(nsStartMuted, "startmuted"); old != nil {
		t.Errorf("p1 started muted before any metadata: %s", old)
	}
}

// Room metadata turning async transcription on: a lone participant gets a
// session at once, the room is told audio-recording-enabled, and the
// bridge gets the transcriber <connect> (URL filled in, the room's headers
// and URL parameters); turning it off expires the connect.
func TestRoomMetadataAsyncTranscription(t *testing.T) {
	s := startStackWith(t, 1, []testkit.Option{testkit.WithJitsiComponents()}, func(c *Config, _ *testkit.Prosody) {
		c.XMPP.RoomMetadataComponent = testkit.MetadataDomain // configured, as xmpp.room-metadata-component allows
		c.Transcription.URLTemplate = "wss://transcriber.example/{{MEETING_ID}}/{{REGION}}"
	})
	room := "transcribed@conference.meet.test"
	p1 := s.join(room)
	comp := dialComponent(t, s.prosody, testkit.MetadataDomain)
	send := func(metadata string) {
		t.Helper()
		msg := roomMetadataMessage(room, metadata)
		if _, err := comp.c.Write(msg.Bytes()); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(300 * time.Millisecond)
	if p1.Accepted() {
		t.Fatal("a lone participant got a session without async transcription")
	}
	send(`{"recording":{"isTranscribingEnabled":true},"asyncTranscription":true,` +
		`"transcription":{"httpHeaders":{"Authorization":"Bearer t0k"},"urlParams":{"lang":"en"}}}`)
	s.wait("p1's session, alone", func() bool { return p1.Accepted() })
	s.wait("audio-recording-enabled in the focus presence", func() bool {
		fp := p1.FocusPresence()
		if fp == nil {
			return false
		}
		for _, pr := range fp.Child(nsFocus, "conference-properties").All(nsFocus, "property") {
			if pr.Attr("key") == "audio-recording-enabled" && pr.Attr("value") == "true" {
				return true
			}
		}
		return false
	})
	b := s.bridges[0]
	connect := func(attr string) *testkit.Elem {
		for _, r := range b.Requests() {
			if c := r.Child(nsColibri2, "connects").Child(nsColibri2, "connect"); c != nil && c.Attr(attr) == "true" {
				return c
			}
		}
		return nil
	}
	s.wait("the transcriber connect on the bridge", func() bool { return connect("create") != nil })
	c := connect("create")
	meeting := ""
	for id := range b.Conferences() {
		meeting = id
	}
	if c.Attr("type") != "transcriber" || c.Attr("protocol") != "mediajson" || c.Attr("audio") != "true" ||
		c.Attr("url") != "wss://transcriber.example/"+meeting+"/?lang=en" {
		t.Errorf("connect: %s (meeting %s)", c, meeting)
	}
	if h := c.Child(nsColibri2, "http-header"); h == nil || h.Attr("name") != "Authorization" || h.Attr("value") != "Bearer t0k" {
		t.Errorf("connect headers: %s", c)
	}
	if p := c.Child(nsColibri2, "ping"); p == nil || p.Attr("interval") != "10000" || p.Attr("timeout") != "3000" {
		t.Errorf("connect ping: %s", c)
	}
	creates := func() []*testkit.Elem {
		var out []*testkit.Elem
		for _, r := range b.Requests() {
			if c := r.Child(nsColibri2, "connects").Child(nsColibri2, "connect"); c != nil && c.Attr("create") == "true" {
				out = append(out, c)
			}
		}
		return out
	}
	// New headers: the transcriber is connected again with them.
	send(`{"recording":{"isTranscribingEnabled":true},"asyncTranscription":true,` +
		`"transcription":{"httpHeaders":{"Authorization":"Bearer n3w"},"urlParams":{"lang":"en"}}}`)
	s.wait("the transcriber reconnected with the new header", func() bool {
		cs := creates()
		return connect("expire") != nil && len(cs) == 2 && cs[1].Child(nsColibri2, "http-header").Attr("value") == "Bearer n3w"
	})
	send(`{"recording":{"isTranscribingEnabled":false}}`)
	expires := func() int {
		n := 0
		for _, r := range b.Requests() {
			if c := r.Child(nsColibri2, "connects").Child(nsColibri2, "connect"); c != nil && c.Attr("expire") == "true" {
				n++
			}
		}
		return n
	}
	s.wait("the transcriber expired", func() bool { return expires() == 2 })
	// On again while the session runs: a delta request places it again.
	send(`{"recording":{"isTranscribingEnabled":true},"asyncTranscription":true}`)
	s.wait("the transcriber placed again", func() bool { return len(creates()) == 3 })
}

// roomMetadataMessage is what the focus receives from Jitsi's room_metadata
// component (mod_room_metadata_component): a message from the component's
// address to the focus's own JID, carrying a json-message whose room
// attribute names the room and whose JSON is
// {"type":"room_metadata","metadata":{...}}, the room's whole metadata. The
// component sends it to every occupant after each change and to each one
// as it joins; to server admins (the focus) it adds the room's "moderators"
// (and, when known, "participants") lists to the metadata.
func roomMetadataMessage(room, metadata string) *Element {
	var m map[string]any
	if err := json.Unmarshal([]byte(metadata), &m); err != nil {
		panic("roomMetadataMessage: " + err.Error())
	}
	if _, ok := m["moderators"]; !ok {
		m["moderators"] = []string{}
	}
	body, _ := json.Marshal(map[string]any{"type": "room_metadata", "metadata": m})
	return NewElement("jabber:component:accept", "message", "from", testkit.MetadataDomain, "to", "focus@auth.meet.test/focus").Add(
		NewElement(nsJitmeet, "json-message", "room", room).SetText(string(body)))
}
