package main

// mute.go: core, off the two-person path: remote mute requests, and who
// starts muted (the conference request's startAudioMuted/startVideoMuted).

import (
	"strconv"
	"strings"
)

// onMute handles a mute request (docs/conference-features.md#mute-requests).
func (c *Conference) onMute(m *Participant, iq *Element) {
	p := iq.Payload()
	target := p.Attr("jid")
	val := strings.TrimSpace(p.Text)
	if target == "" || (val != "true" && val != "false") {
		c.send(ErrorIQ(iq, Errorf("bad-request", "mute needs a jid and true or false")))
		return
	}
	if m == nil {
		c.send(ErrorIQ(iq, Errorf("forbidden", "not a member of this conference")))
		return
	}
	tnick := target[strings.IndexByte(target, '/')+1:]
	t := c.members[tnick]
	if slash := strings.IndexByte(target, '/'); slash < 0 || roomKey(target[:slash]) != c.room || t == nil {
		c.send(ErrorIQ(iq, Errorf("item-not-found", "no participant %s", target)))
		return
	}
	self := t == m
	mute := val == "true"
	switch {
	case !self && !m.moderator():
		c.send(ErrorIQ(iq, Errorf("not-allowed", "only moderators can mute others")))
		return
	case !self && !mute:
		c.send(ErrorIQ(iq, Errorf("not-allowed", "unmuting someone else is not allowed")))
		return
	case t.Jibri || (t.Jigasi && !t.Features.AudioMute):
		c.send(ErrorIQ(iq, Errorf("not-allowed", "this participant cannot be muted")))
		return
	}
	var after []func()
	if self && !mute {
		ok := false
		if ok, after = c.hookUnmute(m, p.Space); !ok {
			c.send(ErrorIQ(iq, Errorf("not-allowed", "the moderator has not allowed you to unmute")))
			return
		}
	}
	c.send(ResultIQ(iq, nil))
	for _, f := range after {
		f()
	}
	if !self {
		c.log.Info("remote mute", "endpoint", t.Nick, "by", m.Nick, "media", p.Space)
		c.send(NewIQ("set", t.Occupant, randomID(), NewElement(p.Space, "mute", "actor", m.Occupant).SetText("true")))
	}
}

// startMuted applies the conference request's startAudioMuted /
// startVideoMuted thresholds (counting the invitee, docs/jingle-and-sources.md#start-muted). The
// count is the invitee's place in the room's join order: invitations wait
// for each member's disco#info, whose answers come back in any order, and
// "the first N start unmuted" must mean the first N to join.
func (c *Conference) startMuted(invitee *Participant) [2]bool {
	n := 1 // the invitee, plus the members who joined before it
	for _, nick := range c.order {
		if nick == invitee.Nick {
			break
		}
		if m := c.members[nick]; m != nil && !m.isService() {
			n++
		}
	}
	audio := threshold(c.props["startAudioMuted"], c.cfg().Conference.MaxAudioSenders)
	video := threshold(c.props["startVideoMuted"], c.cfg().Conference.MaxVideoSenders)
	return [2]bool{n > audio, n > video}
}

func threshold(prop string, max int) int {
	if v, err := strconv.Atoi(prop); err == nil && v >= 0 && v < max {
		return v
	}
	return max
}

// Mute IQ namespaces (docs/conference-features.md#mute-requests).
const (
	nsMuteAudio   = "http://jitsi.org/jitmeet/audio"
	nsMuteVideo   = "http://jitsi.org/jitmeet/video"
	nsMuteDesktop = "http://jitsi.org/jitmeet/desktop"
)
