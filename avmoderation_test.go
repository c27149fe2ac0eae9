package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"minifocus/testkit"
)

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
	s.wait("the av_moderation component discovered", func() bool {
		a, _ := avModAddrOf(s.focus.Focus).avModAddr.Load().(string)
		return a == testkit.AVModerationDomain
	})
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

// AV moderation crosses the restart: a participant still may not unmute
// itself, the whitelisted one still may, and the moderation message that
// arrived in the gap (from the component) is applied by the next process.
func TestHandoverKeepsAVModeration(t *testing.T) {
	stateFile := filepath.Join(t.TempDir(), "state.json")
	s := startStack(t, 1, func(c *Config, _ *testkit.Prosody) {
		c.StateFile = stateFile
		c.XMPP.AVModerationComponent = "focus.meet.test"
	})
	room := "moderated-handover@conference.meet.test"
	ack := func(c *testkit.ParticipantConfig) { c.AckMute = true }
	p1, p2, p3 := s.join(room, ack), s.join(room, ack), s.join(room, ack)
	s.wait("sessions, p1 moderator", func() bool {
		return p1.Accepted() && p2.Accepted() && p3.Accepted() && p1.Affiliation() == "owner" && s.focus.XMPP.resumable()
	})
	comp := dialComponent(t, s.prosody, "focus.meet.test")
	// The two shapes Jitsi's av_moderation component sends: the switch, and
	// the whitelists in a message of their own.
	comp.send(t, "focus@auth.meet.test/focus", fmt.Sprintf(
		`{"type":"av_moderation","room":%q,"enabled":true,"mediaType":"audio","actor":%q}`, room, p1.OccupantJID()))
	comp.send(t, "focus@auth.meet.test/focus", fmt.Sprintf(
		`{"type":"av_moderation","room":%q,"whitelists":{"audio":[%q]}}`, room, p3.OccupantJID()))
	s.wait("p2 force-muted", func() bool { return len(p2.Mutes()) == 1 && forceMuteOf(s, p2.Nick())[0] })

	handOverMain(t, s.focus)
	// In the gap: video moderation turned on too.
	comp.send(t, "focus@auth.meet.test/focus", fmt.Sprintf(
		`{"type":"av_moderation","room":%q,"enabled":true,"mediaType":"video","actor":%q}`, room, p1.OccupantJID()))
	s.focus = startMain(t, s.focus.Config)
	s.wait("the gap's video moderation applied", func() bool { return len(p2.Mutes()) == 2 })
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	if err := p2.SetMuted(ctx, "audio", false); err == nil || !strings.Contains(err.Error(), "not-allowed") {
		t.Errorf("p2 unmuting itself after the restart: %v, want not-allowed", err)
	}
	if err := p3.SetMuted(ctx, "audio", false); err != nil {
		t.Errorf("whitelisted p3 unmuting itself after the restart: %v", err)
	}
	if sawFocusLeave(p2) || len(p2.Offers()) != 1 {
		t.Error("p2 noticed the restart")
	}
}
