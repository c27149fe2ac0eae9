package main

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"minifocus/testkit"
)

// componentConn is a XEP-0114 component connection, standing in for one of
// Jitsi's Prosody components (stock Prosody has none): av_moderation
// (avModSwitch, avModWhitelists) or room_metadata.
type componentConn struct {
	c      net.Conn
	domain string
}

func dialComponent(t *testing.T, p *testkit.Prosody, domain string) *componentConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", p.ComponentAddr(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='%s'>", domain)
	d := xml.NewDecoder(c)
	id := ""
	for id == "" {
		tok, err := d.Token()
		if err != nil {
			t.Fatal(err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "stream" {
			for _, a := range se.Attr {
				if a.Name.Local == "id" {
					id = a.Value
				}
			}
		}
	}
	sum := sha1.Sum([]byte(id + p.ComponentSecret))
	fmt.Fprintf(c, "<handshake>%s</handshake>", hex.EncodeToString(sum[:]))
	for {
		tok, err := d.Token()
		if err != nil {
			t.Fatalf("component handshake: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "handshake" {
			break
		}
	}
	_ = c.SetDeadline(time.Time{})
	return &componentConn{c: c, domain: domain}
}

func (cc *componentConn) send(t *testing.T, to, json string) {
	t.Helper()
	msg := NewElement("jabber:component:accept", "message", "from", cc.domain, "to", to).Add(NewElement(nsJitmeet, "json-message").SetText(json))
	if _, err := cc.c.Write(msg.Bytes()); err != nil {
		t.Fatal(err)
	}
}

// avModSwitch is what Jitsi's av_moderation component
// (mod_av_moderation_component) sends every occupant of the room, the focus
// among them, when a moderator turns moderation of a media type on or off:
// the room, the switch, the media type as the moderator gave it ("audio",
// "video" or, in current versions, "desktop") and the actor's occupant JID.
func avModSwitch(room string, on bool, media, actor string) string {
	return fmt.Sprintf(`{"type":"av_moderation","enabled":%v,"room":%q,"actor":%q,"mediaType":%q}`, on, room, actor, media)
}

// avModWhitelists is what the component sends the room's moderators (the
// focus is one) after moderation is switched on (current versions put the
// room's moderators on the new list) and after a moderator approves or
// rejects someone: the whole map of whitelists (occupant JIDs per media
// type, empty lists left out), with no "enabled"; current versions add the
// media type of the change (media), older ones do not (media "").
func avModWhitelists(room, media string, lists map[string][]string) string {
	m := map[string]any{"type": "av_moderation", "room": room, "whitelists": lists}
	if media != "" {
		m["mediaType"] = media
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func forceMuteOf(s *stack, nick string) [2]bool {
	return s.bridgeEndpoints()[nick].ForceMute
}

// Moderation on: everyone but the moderator who turned it on is muted, on
// the bridge too unless whitelisted; self-unmute only for the whitelisted;
// a newcomer starts muted.
func TestAVModeration(t *testing.T) {
	s := startStackWith(t, 1, []testkit.Option{testkit.WithJitsiComponents()})
	s.wait("the av_moderation component discovered", func() bool { a, _ := s.focus.Focus.avModAddr.Load().(string); return a == testkit.AVModerationDomain })
	room := "moderated@conference.meet.test"
	ack := func(c *testkit.ParticipantConfig) { c.AckMute = true }
	p1 := s.join(room, ack)
	p2 := s.join(room, ack)
	p3 := s.join(room, ack)
	s.wait("sessions, p1 moderator", func() bool {
		return p1.Accepted() && p2.Accepted() && p3.Accepted() && p1.Affiliation() == "owner"
	})
	comp := dialComponent(t, s.prosody, testkit.AVModerationDomain)
	comp.send(t, "focus@auth.meet.test/focus", avModSwitch(room, true, "audio", p1.OccupantJID()))
	comp.send(t, "focus@auth.meet.test/focus", avModWhitelists(room, "audio", map[string][]string{"audio": {p1.OccupantJID()}}))
	s.wait("p2 and p3 told to mute and force-muted on the bridge", func() bool {
		return len(p2.Mutes()) == 1 && len(p3.Mutes()) == 1 && forceMuteOf(s, p2.Nick())[0] && forceMuteOf(s, p3.Nick())[0]
	})
	if m := p2.Mutes()[0].Child(nsMuteAudio, "mute"); m == nil || m.Attr("actor") != "" {
		t.Errorf("moderation mute IQ: %s", p2.Mutes()[0])
	}
	// The moderator approves p3: the whitelists come without "enabled"
	// (and here without a media type), and p3 is released on the bridge.
	comp.send(t, "focus@auth.meet.test/focus", avModWhitelists(room, "", map[string][]string{"audio": {p1.OccupantJID(), p3.OccupantJID()}}))
	s.wait("p3 released on the bridge", func() bool { return !forceMuteOf(s, p3.Nick())[0] })
	// Video moderation on top: the moderator is still not force-muted
	// (moderators may always unmute), and camera force-mute needs screen
	// sharing moderated too.
	comp.send(t, "focus@auth.meet.test/focus", avModSwitch(room, true, "video", p1.OccupantJID()))
	s.wait("video mute IQs sent", func() bool { return len(p2.Mutes()) == 2 })
	if fm := forceMuteOf(s, p2.Nick()); !fm[0] || fm[1] {
		t.Errorf("p2 force-mute %v, want audio only (desktop is not moderated)", fm)
	}
	if len(p1.Mutes()) != 0 || forceMuteOf(s, p1.Nick())[0] || forceMuteOf(s, p3.Nick())[0] {
		t.Errorf("the actor or a whitelisted participant was force-muted: p1 %v %v, p3 %v", p1.Mutes(), forceMuteOf(s, p1.Nick()), forceMuteOf(s, p3.Nick()))
	}
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	if err := p2.SetMuted(ctx, "audio", false); err == nil || !strings.Contains(err.Error(), "not-allowed") {
		t.Errorf("p2 unmuting itself under moderation: %v, want not-allowed", err)
	}
	if err := p3.SetMuted(ctx, "audio", false); err != nil {
		t.Errorf("whitelisted p3 unmuting itself: %v", err)
	}
	// A newcomer starts muted and is force-muted from the start.
	p4 := s.join(room)
	s.wait("p4 in", func() bool { return p4.Accepted() })
	sm := p4.Offers()[0].Child("", "jingle").Child(nsStartMuted, "startmuted")
	if sm == nil || sm.Attr("audio") != "true" || !forceMuteOf(s, p4.Nick())[0] {
		t.Errorf("newcomer: startmuted %v, bridge force-mute %v", sm, forceMuteOf(s, p4.Nick()))
	}
	// A message from anyone but the component is ignored.
	if err := p2.Client().Send(testkit.NewElem("jabber:client", "message", "to", "focus@auth.meet.test/focus").Add(
		testkit.NewElem(nsJitmeet, "json-message").SetText(fmt.Sprintf(`{"type":"av_moderation","room":%q,"enabled":false,"mediaType":"audio"}`, room)))); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if err := p2.SetMuted(ctx, "audio", false); err == nil {
		t.Error("a spoofed message turned moderation off")
	}
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
