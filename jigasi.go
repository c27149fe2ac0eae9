package main

// jigasi.go: SIP dial-out and transcription with Jigasi (docs/conference-features.md#jigasi).
//
// Jigasis wait in their brewery and publish <stats> like bridges do (whether
// they do SIP or transcription, and their load). A moderator's dial request
// (Rayo <dial/>) is forwarded to the least loaded suitable Jigasi, which
// joins the conference as a participant; its answer goes back unchanged.

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
)

const nsRayo = "urn:xmpp:rayo:1"

// transcriberTarget is the dial target that asks for a transcriber.
const transcriberTarget = "jitsi_meet_transcribe"

type jigasiInstance struct {
	jid                string
	sip, transcription bool
	gracefulShutdown   bool
	participants       int
	region             string
}

// Jigasis is the registry of the Jigasi brewery.
type Jigasis struct {
	brewery, nick string
	log           *slog.Logger
	member        *breweryMember // the focus in the brewery room (brewery.go)

	mu        sync.Mutex
	instances map[string]*jigasiInstance
}

// NewJigasis returns nil when no Jigasi brewery is configured.
func NewJigasis(brewery, nick string, x *XMPPClient, log *slog.Logger) *Jigasis {
	if brewery == "" {
		return nil
	}
	g := &Jigasis{brewery: strings.ToLower(brewery), nick: nick, log: log.With("component", "jigasi"), instances: map[string]*jigasiInstance{}}
	g.member = newBreweryMember(g.brewery, nick, "Jigasi", func() breweryConn { return x }, g.log, func(string) { g.forgetAll() })
	g.member.follow(x)
	return g
}

func (g *Jigasis) forgetAll() {
	g.mu.Lock()
	g.instances = map[string]*jigasiInstance{}
	g.mu.Unlock()
}

// Leave leaves the brewery for good (the focus is shutting down).
func (g *Jigasis) Leave() {
	if g != nil {
		g.member.Leave()
	}
}

// HandlePresence consumes presence from the Jigasi brewery.
func (g *Jigasis) HandlePresence(p *Element) bool {
	if g == nil {
		return false
	}
	from, ok := g.member.HandlePresence(p)
	if from == "" {
		return ok
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if p.Attr("type") == "unavailable" {
		delete(g.instances, from)
		return true
	}
	stats := p.Child(nsColibri, "stats")
	if stats == nil {
		return true
	}
	in := g.instances[from]
	if in == nil {
		if len(g.instances) >= 1000 {
			return true
		}
		in = &jigasiInstance{jid: from}
		g.instances[from] = in
		g.log.Info("Jigasi available", "jigasi", from)
	}
	for _, st := range stats.All("", "stat") {
		v := st.Attr("value")
		switch st.Attr("name") {
		case "supports_sip":
			in.sip = v == "true"
		case "supports_transcription":
			in.transcription = v == "true"
		case "graceful_shutdown":
			in.gracefulShutdown = v == "true"
		case "participants":
			if n, err := strconv.Atoi(v); err == nil && n >= 0 {
				in.participants = n
			}
		case "region":
			in.region = v
		}
	}
	return true
}

// Select picks the least loaded Jigasi that can do the job, preferring the
// given regions (those of the conference's bridges).
func (g *Jigasis) Select(transcribe bool, regions map[string]bool, exclude map[string]bool) string {
	if g == nil {
		return ""
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	var best *jigasiInstance
	better := func(a, b *jigasiInstance) bool {
		if regions[a.region] != regions[b.region] {
			return regions[a.region]
		}
		if a.participants != b.participants {
			return a.participants < b.participants
		}
		return a.jid < b.jid
	}
	for _, in := range g.instances {
		if exclude[in.jid] || in.gracefulShutdown || (transcribe && !in.transcription) || (!transcribe && !in.sip) {
			continue
		}
		if best == nil || better(in, best) {
			best = in
		}
	}
	if best == nil {
		return ""
	}
	return best.jid
}

// onDial forwards a moderator's dial request to a Jigasi, trying up to
// three instances, and returns the Jigasi's answer to the requester.
func (c *Conference) onDial(m *Participant, iq *Element) {
	dial := iq.Payload()
	switch {
	case m == nil || !m.moderator():
		c.send(ErrorIQ(iq, Errorf("forbidden", "only moderators can dial out")))
		return
	case jigasiOf(c.f).jigasis == nil:
		c.send(ErrorIQ(iq, Errorf("service-unavailable", "no Jigasi is configured")))
		return
	}
	for _, h := range dial.All(nsRayo, "header") {
		if h.Attr("name") == "JvbRoomName" && roomKey(h.Attr("value")) != c.room {
			c.send(ErrorIQ(iq, Errorf("forbidden", "JvbRoomName does not match the room")))
			return
		}
	}
	transcribe := dial.Attr("to") == transcriberTarget
	regions := map[string]bool{}
	for _, s := range c.sessions {
		if s.region != "" {
			regions[s.region] = true
		}
	}
	c.dialVia(iq, dial, transcribe, regions, map[string]bool{}, nil)
}

func (c *Conference) dialVia(iq, dial *Element, transcribe bool, regions, tried map[string]bool, lastErr error) {
	jid := ""
	if len(tried) < 3 {
		jid = jigasiOf(c.f).jigasis.Select(transcribe, regions, tried)
	}
	if jid == "" {
		switch {
		case lastErr == nil:
			c.send(ErrorIQ(iq, Errorf("service-unavailable", "no Jigasi available")))
		case errors.Is(lastErr, ErrIQTimeout):
			c.send(ErrorIQ(iq, Errorf("remote-server-timeout", "Jigasi did not answer")))
		default:
			c.send(ErrorIQ(iq, Errorf("undefined-condition", "Jigasi failed: %v", lastErr)))
		}
		return
	}
	tried[jid] = true
	c.log.Info("dial out via Jigasi", "jigasi", jid, "to", dial.Attr("to"))
	wait := c.f.x.StartIQ(NewIQ("set", jid, "", dial.Copy()))
	c.async(func() func() {
		resp, err := wait(context.Background())
		return func() {
			if err != nil {
				c.log.Warn("Jigasi refused or failed the dial", "jigasi", jid, "err", err)
				c.dialVia(iq, dial, transcribe, regions, tried, err)
				return
			}
			var payload *Element
			if p := resp.Payload(); p != nil {
				payload = p.Copy()
			}
			c.send(ResultIQ(iq, payload))
			c.f.events.Add(c.room, "dial-out to %s via %s", dial.Attr("to"), nickOf(jid))
		}
	})
}

func jigasiFeature() Feature {
	return Feature{Name: "jigasi", FocusState: func() any { return new(jigasiPool) }, Setup: func(m *Main) {
		jigasiOf(m.Focus).jigasis = NewJigasis(m.Config.Jigasi.Brewery, m.Config.XMPP.Username, m.XMPP, m.Log)
		m.presence = append(m.presence, jigasiOf(m.Focus).jigasis.HandlePresence)
		m.leave = append(m.leave, jigasiOf(m.Focus).jigasis.Leave) // nil-safe
		m.XMPP.HandleIQ(nsRayo, m.Focus.routeToConference)
		m.Focus.confIQ[nsRayo] = (*Conference).onDial
	}, Request: func(f *Focus, room string, req ConferenceRequest, a *Admission) error {
		if jigasiOf(f).jigasis != nil {
			a.Properties = append(a.Properties, [2]string{"sipGatewayEnabled", "true"})
		}
		return nil
	}, Room: func(c *Conference, ev RoomEvent) {
		if ev.Member != nil && !ev.Leaving && c.announces(ev.Member, ev.Presence, "http://jitsi.org/protocol/jigasi") {
			ev.Member.Jigasi = true
		}
	}}
}

// jigasiPool is Jigasi's state on the Focus.
type jigasiPool struct {
	jigasis *Jigasis // nil when no Jigasi brewery is configured
}

func jigasiOf(f *Focus) *jigasiPool { return focusState[jigasiPool](f) }
