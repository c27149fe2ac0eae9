package main

// mute.go: core, off the two-person path: remote mute requests.

import (
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
