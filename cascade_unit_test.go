package main

import (
	"fmt"
	"strings"
	"testing"
)

// relaysIn lists the relays of a Colibri2 IQ: "create <id>" or "update <id>"
// (an update names the transport's ufrag).
func relaysIn(el *Element) []string {
	var out []string
	for _, r := range colibriModify(el).All(nsColibri2, "relay") {
		switch {
		case r.Attr("create") == "true":
			out = append(out, "create "+r.Attr("id"))
		case r.Attr("expire") == "true":
			out = append(out, "expire "+r.Attr("id"))
		default:
			uf := r.Child(nsColibri2, "transport").Child(nsICEUDP, "transport").Attr("ufrag")
			out = append(out, "update "+r.Attr("id")+" "+uf)
		}
	}
	return out
}

// U10: with region-based selection, a participant of another region gets a
// second bridge; the two bridges are then linked: each is asked to open a
// relay towards the other, and once both answered each gets the other's
// relay transport. Nothing is linked while the conference has one bridge.
func TestCascadeLinksSecondBridge(t *testing.T) {
	h := newConfHarness(t, nil, func(c *Config) { c.Bridges.Strategy = "region" })
	h.bridge.addBridge(t, "us1", "region", "us")
	h.bridge.addBridge(t, "eu1", "region", "eu")
	region := func(r string) *Element { return NewElement("", "jitsi_participant_region").SetText(r) }
	relays := func(sent []*Element, bridge string) string {
		var all []string
		for _, el := range sentTo(sent, brewJID(bridge), func(el *Element) bool { return colibriModify(el) != nil }) {
			all = append(all, relaysIn(el)...)
		}
		return strings.Join(all, "; ")
	}

	h.join("A", "a@meet.test/r", region("us"))
	h.join("B", "b@meet.test/r", region("us"))
	h.accept("A", "")
	h.accept("B", "")
	sent := h.link.take()
	if got := relays(sent, "us1"); got != "" {
		t.Fatalf("relays with one bridge: %s", got)
	}
	if h.c.members["A"].bridge != brewJID("us1") || h.c.members["B"].bridge != brewJID("us1") {
		t.Fatalf("A and B on %s and %s, want us1", h.c.members["A"].bridge, h.c.members["B"].bridge)
	}

	h.join("C", "c@meet.test/r", region("eu"))
	sent = h.link.take()
	if h.c.members["C"].bridge != brewJID("eu1") {
		t.Fatalf("C on %q, want eu1", h.c.members["C"].bridge)
	}
	// us1 was in the conference first: it initiates; each gets the other's
	// transport in a relay update.
	if got, want := relays(sent, "us1"), "create relay-eu1; update relay-eu1 relay-uf-eu1"; got != want {
		t.Errorf("us1 relays: %q, want %q:%s", got, want, dump(sent))
	}
	if got, want := relays(sent, "eu1"), "create relay-us1; update relay-us1 relay-uf-us1"; got != want {
		t.Errorf("eu1 relays: %q, want %q:%s", got, want, dump(sent))
	}
	// Each side's relay create lists the participants behind the other.
	endpointsBehind := func(bridge string) string {
		var ids []string
		for _, el := range sentTo(sent, brewJID(bridge), func(el *Element) bool { return colibriModify(el) != nil }) {
			for _, r := range colibriModify(el).All(nsColibri2, "relay") {
				if r.Attr("create") == "true" {
					for _, ep := range r.Child(nsColibri2, "endpoints").All(nsColibri2, "endpoint") {
						ids = append(ids, ep.Attr("id"))
					}
				}
			}
		}
		return strings.Join(ids, ",")
	}
	if got := endpointsBehind("us1"); got != "C" {
		t.Errorf("us1's relay towards eu1 lists %q, want C", got)
	}
	if got := endpointsBehind("eu1"); got != "A,B" {
		t.Errorf("eu1's relay towards us1 lists %q, want A,B", got)
	}
	if linked := cascadeOf(h.c).linked; !linked[h.c.sessions[brewJID("us1")]] || !linked[h.c.sessions[brewJID("eu1")]] {
		t.Error("the bridge sessions are not marked linked")
	}
}

// A relay towards a bridge with many endpoints whose sources are as big as
// allowed is announced in pieces: every relay request stays under the
// stanza limit, and every endpoint is announced once, in order.
func TestRelayEndpointsChunked(t *testing.T) {
	var eps []RelayEndpoint
	for i := 0; i < 12; i++ {
		nick := fmt.Sprintf("ep%02d", i)
		srcs := NewElement(nsColibri2, "media-sources")
		for j := 0; j < 20; j++ { // the per-endpoint source limit, each near the string bounds
			srcs.Add(NewElement(nsColibri2, "source", "name", strings.Repeat(">", maxSourceNameBytes),
				"msid", strings.Repeat("&", maxMSIDBytes), "ssrc", fmt.Sprint(i*100+j)))
		}
		eps = append(eps, RelayEndpoint{ID: nick, Create: true, Sources: NewElement(nsColibri2, "sources").Add(srcs)})
	}
	whole := len(BuildRelayCreate("r", true, nil, eps).Bytes())
	if whole <= maxStanzaBytes {
		t.Fatalf("test set-up: all endpoints in one relay take %d bytes, not over the %d limit", whole, maxStanzaBytes)
	}
	chunks := chunkRelayEndpoints(eps)
	if len(chunks) < 2 {
		t.Fatalf("%d endpoints (%d bytes) in %d piece(s)", len(eps), whole, len(chunks))
	}
	var ids []string
	for i, ch := range chunks {
		var el *Element
		if i == 0 {
			el = BuildRelayCreate("r", true, ColibriMedia(BuildOffer(DefaultConfig().Codec, Features{Audio: true, Video: true, SCTP: true, RTX: true, TCC: true})), ch)
		} else {
			el = BuildRelayUpdate("r", nil, ch)
		}
		iq := ColibriIQ("jvb@x/y", BuildConferenceModify(ColibriRequest{MeetingID: "m", Relays: []*Element{el}}))
		if n := len(iq.Bytes()); n > maxStanzaBytes {
			t.Errorf("piece %d: %d bytes, over the %d limit", i, n, maxStanzaBytes)
		}
		for _, ep := range ch {
			ids = append(ids, ep.ID)
		}
	}
	var want []string
	for _, ep := range eps {
		want = append(want, ep.ID)
	}
	if strings.Join(ids, ",") != strings.Join(want, ",") {
		t.Errorf("endpoints announced %v, want %v", ids, want)
	}
	if got := chunkRelayEndpoints(nil); len(got) != 1 || len(got[0]) != 0 {
		t.Errorf("no endpoints: %v, want one empty piece", got)
	}
}
