package main

// cascade.go: optional feature: cascading, relays between a conference's bridges (and their Colibri2 builders).

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
)

// relayAdded keeps the bridges meshed when m got an endpoint on s: the first
// endpoint on a new bridge links it with every other bridge of the
// conference; later ones are announced on the existing relays.
func (c *Conference) relayAdded(s *bridgeSession, m *Participant) {
	linked := cascadeOf(c).linked
	if linked[s] {
		c.relayMirror(s, RelayEndpoint{ID: m.Nick, StatsID: m.StatsID, Create: true})
		return
	}
	linked[s] = true
	for _, o := range c.sessions {
		if o != s && linked[o] {
			c.linkPair(o, s)
		}
	}
}

// relayEndpointsOf lists s's participants as the other side of a relay sees them.
func (c *Conference) relayEndpointsOf(s *bridgeSession) []RelayEndpoint {
	var eps []RelayEndpoint
	for _, nick := range c.order {
		if m := c.members[nick]; m != nil && s.endpoints[nick] && m.bridge == s.jid && m.state != sessNone {
			eps = append(eps, RelayEndpoint{ID: nick, StatsID: m.StatsID, Create: true, Sources: c.sources.Get(nick).Colibri2Sources(nick)})
		}
	}
	return eps
}

// relayChunkBytes bounds the endpoints put in one relay request: with the
// offer's media (a few KiB) it stays well under the stanza limit.
const relayChunkBytes = 128 << 10

// chunkRelayEndpoints cuts eps into pieces of at most relayChunkBytes as
// written (one endpoint's sources are bounded far below that); it always
// returns at least one piece, possibly empty.
func chunkRelayEndpoints(eps []RelayEndpoint) [][]RelayEndpoint {
	chunks := [][]RelayEndpoint{nil}
	size := 0
	for _, ep := range eps {
		n := len(relayEndpoints([]RelayEndpoint{ep}).Bytes())
		last := len(chunks) - 1
		if size+n > relayChunkBytes && len(chunks[last]) > 0 {
			chunks = append(chunks, nil)
			last, size = last+1, 0
		}
		chunks[last] = append(chunks[last], ep)
		size += n
	}
	return chunks
}

// linkPair opens a relay between a (in the conference first: the ICE
// controlling, SCTP client side) and b, then hands each the other's
// transport once both have answered.
func (c *Conference) linkPair(a, b *bridgeSession) {
	if a.relayID == "" || b.relayID == "" {
		c.log.Warn("cannot cascade bridges without relay ids", "a", a.jid, "b", b.jid)
		return
	}
	c.log.Info("linking bridges", "a", a.jid, "b", b.jid)
	c.f.events.Add(c.room, "cascading bridges %s and %s", nickOf(a.jid), nickOf(b.jid))
	media := ColibriMedia(BuildOffer(c.cfg().Codec, Features{Audio: true, Video: true, SCTP: true, RTX: true, TCC: true}))
	// Each side learns the other's endpoints in pieces that keep every
	// request under the stanza limit: the first with the create, the rest
	// as relay updates once the relay exists.
	epsA, epsB := chunkRelayEndpoints(c.relayEndpointsOf(a)), chunkRelayEndpoints(c.relayEndpointsOf(b))
	waitA := c.f.bx.StartIQ(ColibriIQ(a.jid, BuildConferenceModify(ColibriRequest{MeetingID: c.meetingID,
		Relays: []*Element{BuildRelayCreate(b.relayID, true, media, epsB[0])}})))
	waitB := c.f.bx.StartIQ(ColibriIQ(b.jid, BuildConferenceModify(ColibriRequest{MeetingID: c.meetingID,
		Relays: []*Element{BuildRelayCreate(a.relayID, false, media, epsA[0])}})))
	c.async(func() func() {
		respA, errA := waitA(context.Background())
		respB, errB := waitB(context.Background())
		return func() {
			if c.sessions[a.jid] != a || c.sessions[b.jid] != b {
				return
			}
			tA, err := ParseRelayTransport(respA, b.relayID)
			if errA != nil {
				err = errA
			}
			tB, err2 := ParseRelayTransport(respB, a.relayID)
			if errB != nil {
				err2 = errB
			}
			if err != nil || err2 != nil {
				c.log.Warn("relay between bridges failed", "a", a.jid, "b", b.jid, "err_a", err, "err_b", err2)
				return
			}
			for _, eps := range epsB[1:] {
				c.colibriRelay(a, BuildRelayUpdate(b.relayID, nil, eps))
			}
			for _, eps := range epsA[1:] {
				c.colibriRelay(b, BuildRelayUpdate(a.relayID, nil, eps))
			}
			c.colibriRelay(a, BuildRelayUpdate(b.relayID, RelayTransportFor(tB, true), nil))
			c.colibriRelay(b, BuildRelayUpdate(a.relayID, RelayTransportFor(tA, false), nil))
		}
	})
}

// relayMirror tells every other linked bridge about a change to one of s's
// endpoints.
func (c *Conference) relayMirror(s *bridgeSession, ep RelayEndpoint) {
	linked := cascadeOf(c).linked
	if !linked[s] || s.relayID == "" {
		return
	}
	for _, o := range c.sessions {
		if o != s && linked[o] {
			c.colibriRelay(o, BuildRelayUpdate(s.relayID, nil, []RelayEndpoint{ep}))
		}
	}
}

// relayRemoved closes the relays towards a bridge the conference left.
func (c *Conference) relayRemoved(s *bridgeSession) {
	linked := cascadeOf(c).linked
	if !linked[s] || s.relayID == "" {
		return
	}
	for _, o := range c.sessions {
		if o != s && linked[o] {
			c.colibriRelay(o, BuildRelayExpire(s.relayID))
		}
	}
}

func (c *Conference) colibriRelay(s *bridgeSession, relay *Element) {
	c.fireAndForget(s.jid, BuildConferenceModify(ColibriRequest{MeetingID: c.meetingID, Relays: []*Element{relay}}))
}

// RelayEndpoint is a participant behind the other end of a relay.
type RelayEndpoint struct {
	ID, StatsID string
	Sources     *Element // <sources xmlns="jitsi:colibri2">, nil for none yet
	Expire      bool
	Create      bool
}

// BuildRelayCreate is the <relay create="true"> asking a bridge to open a
// relay towards the bridge whose relay id is id. The initiator side (the
// bridge that was in the conference first) uses a unique port, controls ICE
// and is the SCTP client; the other side is the SCTP server.
func BuildRelayCreate(id string, initiator bool, media []*Element, eps []RelayEndpoint) *Element {
	r := NewElement(nsColibri2, "relay", "id", id, "mesh-id", "0", "create", "true")
	for _, m := range media {
		r.Add(m.Copy())
	}
	t := NewElement(nsColibri2, "transport")
	role := "server"
	if initiator {
		t.Set("use-unique-port", "true").Set("ice-controlling", "true")
		role = "client"
	}
	r.Add(t.Add(NewElement(nsColibri2, "sctp", "role", role)))
	return r.Add(relayEndpoints(eps))
}

// BuildRelayUpdate changes the endpoints behind a relay, or hands it the
// remote bridge's transport.
func BuildRelayUpdate(id string, transport *Element, eps []RelayEndpoint) *Element {
	r := NewElement(nsColibri2, "relay", "id", id)
	if transport != nil {
		r.Add(NewElement(nsColibri2, "transport").Add(transport))
	}
	if len(eps) > 0 {
		r.Add(relayEndpoints(eps))
	}
	return r
}

// BuildRelayExpire closes a relay.
func BuildRelayExpire(id string) *Element {
	return NewElement(nsColibri2, "relay", "id", id, "expire", "true")
}

func relayEndpoints(eps []RelayEndpoint) *Element {
	if len(eps) == 0 {
		return nil
	}
	el := NewElement(nsColibri2, "endpoints")
	for _, ep := range eps {
		e := NewElement(nsColibri2, "endpoint", "id", ep.ID)
		switch {
		case ep.Expire:
			e.Set("expire", "true")
		default:
			if ep.Create {
				e.Set("create", "true")
			}
			e.Set("stats-id", ep.StatsID)
			if ep.Sources != nil {
				e.Add(ep.Sources.Copy())
			}
		}
		el.Add(e)
	}
	return el
}

// ParseRelayTransport reads the bridge's ICE-UDP transport for relay id from
// a relay-create answer; the fingerprint must offer setup="actpass".
func ParseRelayTransport(resp *Element, id string) (*Element, error) {
	cm := resp
	if cm != nil && cm.Local == "iq" {
		cm = cm.Child(nsColibri2, "conference-modified")
	}
	if cm == nil || cm.Local != "conference-modified" {
		return nil, ErrColibriNotModified
	}
	for _, r := range cm.All(nsColibri2, "relay") {
		if r.Attr("id") != id {
			continue
		}
		t := r.Child(nsColibri2, "transport").Child(nsICEUDP, "transport")
		if t == nil {
			return nil, fmt.Errorf("%w: relay %q answered without a transport", ErrColibriAllocation, id)
		}
		fp := t.Child(nsDTLS, "fingerprint")
		if fp == nil || fp.Attr("setup") != "actpass" {
			return nil, fmt.Errorf("%w: relay %q transport without an actpass fingerprint", ErrColibriAllocation, id)
		}
		return t, nil
	}
	return nil, fmt.Errorf("%w: no relay %q in the answer", ErrColibriAllocation, id)
}

// RelayTransportFor prepares a bridge's relay transport for the other side:
// the DTLS role becomes the receiver's (active for the initiator, passive
// for the other) and web-socket URLs are dropped (SCTP carries the bridge
// channel between bridges).
func RelayTransportFor(t *Element, receiverIsInitiator bool) *Element {
	out := t.Copy()
	out.RemoveChildren(nsColibri, "web-socket")
	setup := "passive"
	if receiverIsInitiator {
		setup = "active"
	}
	for _, fp := range out.All(nsDTLS, "fingerprint") {
		fp.Set("setup", setup)
	}
	return out
}

func cascadeFeature() Feature {
	return Feature{Name: "cascade", Bridge: cascadeBridge, LinksBridges: true,
		ConfState: func() any { return &cascadeState{linked: map[*bridgeSession]bool{}} },
		Save:      saveCascade, Restore: restoreCascade}
}

// cascadeState is which of the conference's bridge sessions are meshed with
// the others.
type cascadeState struct {
	linked map[*bridgeSession]bool
}

func cascadeOf(c *Conference) *cascadeState { return confState[cascadeState](c) }

// saveCascade carries the meshed bridges (by JID) across a restart.
func saveCascade(c *Conference) (json.RawMessage, error) {
	var jids []string
	for s := range cascadeOf(c).linked {
		jids = append(jids, s.jid)
	}
	if len(jids) == 0 {
		return nil, nil
	}
	slices.Sort(jids)
	return json.Marshal(jids)
}

func restoreCascade(c *Conference, raw json.RawMessage) error {
	var jids []string
	if err := json.Unmarshal(raw, &jids); err != nil {
		return err
	}
	for _, j := range jids {
		if s := c.sessions[j]; s != nil {
			cascadeOf(c).linked[s] = true
		}
	}
	return nil
}

// cascadeBridge mirrors the conference's bridge-session changes on the relays.
func cascadeBridge(c *Conference, ev SessionEvent) {
	switch ev.Kind {
	case EndpointUp:
		c.relayAdded(ev.Session, ev.Member)
	case EndpointUpdated:
		c.relayMirror(ev.Session, RelayEndpoint{ID: ev.Nick, StatsID: ev.StatsID, Sources: ev.Sources})
	case EndpointGone:
		c.relayMirror(ev.Session, RelayEndpoint{ID: ev.Nick, Expire: true})
	case SessionGone:
		c.relayRemoved(ev.Session)
		delete(cascadeOf(c).linked, ev.Session)
	}
}
