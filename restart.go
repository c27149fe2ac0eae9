package main

// restart.go: core, off the two-person path: session restarts asked by participants and the in-place ICE restart.

import (
	"context"
	"strconv"
)

// onSessionInfo handles a Jingle session-info: an in-place ICE restart, or a
// client reporting that ICE failed (which is handled as a restart request).
func (c *Conference) onSessionInfo(m *Participant, iq *Element, req JingleRequest) {
	if req.ICERestart {
		c.iceRestart(m, iq, req)
		return
	}
	c.send(ResultIQ(iq, nil))
	if req.ICEState == "failed" {
		s := c.sessions[m.bridge]
		if s != nil && req.BridgeSessionID == s.id {
			if c.allowRestart(m) {
				c.f.metrics.ICEFailed.Inc()
				c.hookBridge(SessionEvent{Kind: RestartRequested, Member: m, Bridge: m.bridge})
				c.moveParticipant(m, nil, "ICE failed")
			}
		}
	}
}

// iceRestart is the in-place ICE restart (docs/jingle-and-sources.md#ice-restart-in-place): the bridge gets
// fresh ICE credentials for the endpoint and the client gets them in a
// transport-info tagged with the ICE generation; the session stays.
func (c *Conference) iceRestart(m *Participant, iq *Element, req JingleRequest) {
	s := c.sessions[m.bridge]
	if s == nil || req.BridgeSessionID != s.id {
		c.send(ErrorIQ(iq, Errorf("item-not-found", "%s is not a currently active session", req.BridgeSessionID)))
		return
	}
	if !c.allowICERestart(m) {
		c.send(ErrorIQ(iq, Errorf("resource-constraint", "rate-limited")))
		return
	}
	c.send(ResultIQ(iq, nil))
	c.log.Info("in-place ICE restart", "endpoint", m.Nick, "bridge", s.jid)
	wait := c.f.bx.StartIQ(ColibriIQ(s.jid, BuildConferenceModify(ColibriRequest{MeetingID: c.meetingID,
		Endpoints: []ColibriEndpoint{{ID: m.Nick, StatsID: m.StatsID, ICERestart: true, InitialLastN: -1}}})))
	nick, sid := m.Nick, m.sid
	c.async(func() func() {
		resp, err := wait(context.Background())
		return func() {
			m := c.members[nick]
			if m == nil || m.sid != sid {
				return
			}
			var t *Element
			if err == nil {
				for _, ep := range resp.Child(nsColibri2, "conference-modified").All(nsColibri2, "endpoint") {
					if ep.Attr("id") == nick {
						t = ep.Child(nsColibri2, "transport").Child(nsICEUDP, "transport")
					}
				}
			}
			gen, _ := strconv.Atoi(t.Attr("ice-generation"))
			switch {
			case err != nil || t == nil:
				// The bridge cannot restart ICE in place: a new session.
				c.moveParticipant(m, nil, "in-place ICE restart not possible")
			case gen <= m.iceGeneration:
				// The bridge kept its ICE agent (or the answer is stale).
			default:
				m.iceGeneration = gen
				media, _, terr := BridgeTransport(t, 0)
				if terr != nil {
					c.moveParticipant(m, nil, "bad ICE restart answer: "+terr.Error())
					return
				}
				media.Set("ice-generation", strconv.Itoa(gen))
				j := NewElement(nsJingle, "jingle", "action", "transport-info", "initiator", c.f.x.JID(), "sid", sid).Add(
					NewElement(nsJingle, "content", "creator", "initiator", "name", "audio").Add(media))
				c.send(NewElement(nsClient, "iq", "type", "set", "to", m.Occupant).Add(j))
				c.f.metrics.JingleSent("transport-info")
			}
		}
	})
}
