package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// ownersIn lists the owners a source payload (XML or JSON) tells about.
func ownersIn(t *testing.T, payload []byte) map[string]bool {
	t.Helper()
	j, err := ParseElement(`<jingle xmlns="urn:xmpp:jingle:1">` + string(payload) + `</jingle>`)
	if err != nil {
		t.Fatal(err)
	}
	return ownersOfJingle(t, j)
}

func ownersOfJingle(t *testing.T, j *Element) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	if jm := j.Child(nsJitmeet, "json-message"); jm != nil {
		var m struct {
			Sources map[string]any `json:"sources"`
		}
		if err := json.Unmarshal([]byte(jm.Text), &m); err != nil {
			t.Fatal(err)
		}
		for o := range m.Sources {
			out[o] = true
		}
		return out
	}
	for _, c := range j.All(nsJingle, "content") {
		for _, s := range c.Child(nsRTP, "description").All(nsSSMA, "source") {
			out[s.Child(nsJitmeet, "ssrc-info").Attr("owner")] = true
		}
	}
	return out
}

// An honest conference of 500 endpoints: the newcomer's session-initiate
// stays under the limit, and the sources that did not fit follow in
// source-adds that each stay under it too; together they tell about every
// owner exactly once.
func TestSessionInitiateFor500EndpointsIsSplit(t *testing.T) {
	ice, err := ParseElement(lbICE)
	if err != nil {
		t.Fatal(err)
	}
	media, data, err := BridgeTransport(ice, 5000)
	if err != nil {
		t.Fatal(err)
	}
	cs := NewConferenceSources()
	for i := range 499 {
		id, es := lbEndpoint(i)
		if _, err := cs.TryAdd(id, es, SourceLimits{}); err != nil {
			t.Fatal(err)
		}
	}
	receiver, _ := lbEndpoint(499)
	for _, form := range []string{"xml", "json"} {
		f := lbFeatures(form)
		p := SessionInitiateParams{
			From: lbFocus, To: lbRoom + "/" + receiver, SID: lbSID, Offer: BuildOffer(DefaultConfig().Codec, f),
			MediaTransport: media, DataTransport: data, BridgeSessionID: lbSession,
			Conference: cs, Receiver: receiver, Feedback: lbFeedback(), Features: f, StripSimulcast: true,
		}
		all := RemoteSources(cs, receiver, lbFeedback(), f, true)
		p.Remote = all
		iq, told, whole := BuildFittedSessionInitiate(p)
		size := len(iq.Bytes())
		if size > initiateBytes {
			t.Fatalf("%s: session-initiate is %d bytes, over %d", form, size, initiateBytes)
		}
		seen := ownersOfJingle(t, iq.Child(nsJingle, "jingle"))
		if !seen[OwnerJVB] {
			t.Fatalf("%s: the bridge's feedback sources must be in the session-initiate", form)
		}
		_, added := DiffSourceSets(told, all)
		payloads := sourcePayloads(RenderSources(added, f, false), added, f, false)
		for i, pl := range payloads {
			st := BuildRenderedSources("source-add", lbFocus, p.To, lbSID, pl)
			if n := len(st.Bytes()); n > maxStanzaBytes || len(pl) > sourceChunkBytes {
				t.Fatalf("%s: source-add %d is %d bytes", form, i, n)
			}
			for o := range ownersIn(t, pl) {
				if seen[o] {
					t.Fatalf("%s: owner %s told twice", form, o)
				}
				seen[o] = true
			}
		}
		if len(seen) != 500 { // 499 endpoints and the bridge
			t.Fatalf("%s: told about %d owners, want 500", form, len(seen))
		}
		if form == "xml" && (whole <= initiateBytes || len(payloads) == 0) {
			t.Fatalf("xml: expected a split (whole %d bytes)", whole)
		}
		t.Logf("%s: whole session-initiate would be %d bytes; sent %d bytes with %d owners, then %d source-add(s)",
			form, whole, size, len(told), len(payloads))
	}
}

// Source strings and one endpoint's whole set are bounded where they are
// read, with an error the participant sees.
func TestSourceStringsBounded(t *testing.T) {
	j, _ := ParseElement(`<jingle xmlns="urn:xmpp:jingle:1"><content name="audio"><description xmlns="urn:xmpp:jingle:apps:rtp:1" media="audio">` +
		`<source xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" ssrc="1" name="` + strings.Repeat("&gt;", maxSourceNameBytes+1) + `"/></description></content></jingle>`)
	if _, err := ParseJingleSources(j, "a"); err == nil || !strings.Contains(err.Error(), "name too long") {
		t.Fatalf("long name: %v", err)
	}
	many := NewElement(nsRTP, "description", "media", "audio")
	for i := range maxSourcesPerRequest + 1 {
		many.Add(NewElement(nsSSMA, "source", "ssrc", fmt.Sprint(i+1)))
	}
	j = NewElement(nsJingle, "jingle").Add(NewElement(nsJingle, "content", "name", "audio").Add(many))
	if _, err := ParseJingleSources(j, "a"); err == nil || !strings.Contains(err.Error(), "Too many sources") {
		t.Fatalf("%d sources in one request: %v", maxSourcesPerRequest+1, err)
	}
	cs := NewConferenceSources()
	var es EndpointSources
	for i := range 20 {
		es.Sources = append(es.Sources, Source{SSRC: uint32(i + 1), Media: MediaVideo,
			Name: strings.Repeat("\"", maxSourceNameBytes), MSID: fmt.Sprintf("%d %s", i, strings.Repeat("\"", maxMSIDBytes-4))})
	}
	if _, err := cs.TryAdd("attacker", es, SourceLimits{}); err == nil || !strings.Contains(err.Error(), "too large") {
		t.Fatalf("huge set: %v", err)
	}
	if len(cs.Owners()) != 0 {
		t.Fatal("a refused add must change nothing")
	}
	// An honest simulcast endpoint is far from the bound.
	id, honest := lbEndpoint(1)
	if n := honest.sizeBound(id); n > maxEndpointSourceBytes/4 {
		t.Fatalf("an honest endpoint's bound is %d bytes", n)
	}
}

// A bridge answering with a huge transport: the offer keeps the first
// maxCandidates candidates and drops oversized parts.
func TestBridgeTransportBounded(t *testing.T) {
	ice, err := ParseElement(lbICE)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1500 {
		ice.Add(NewElement(nsICEUDP, "candidate", "component", "1", "foundation", "1", "generation", "0",
			"id", fmt.Sprint("c", i), "ip", "10.0.0.1", "port", fmt.Sprint(10000+i), "priority", "1", "protocol", "udp", "type", "host"))
	}
	ice.Add(NewElement(nsICEUDP, "candidate", "ip", strings.Repeat("x", 5000)))
	ice.Set("foo", strings.Repeat(">", 5000))
	media, data, err := BridgeTransport(ice, 5000)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(media.All(nsICEUDP, "candidate")); n != maxCandidates {
		t.Fatalf("%d candidates kept, want %d", n, maxCandidates)
	}
	if media.Attr("foo") != "" || media.Attr("ufrag") == "" {
		t.Fatal("oversized attribute kept or ufrag lost")
	}
	if n := len(media.String()) + len(data.String()); n > 32<<10 {
		t.Fatalf("transports take %d bytes", n)
	}
	big := NewElement(nsICEUDP, "transport", "ufrag", strings.Repeat("u", maxTransportAttrBytes+1), "pwd", "p")
	big.Add(NewElement(nsDTLS, "fingerprint", "hash", "sha-256").SetText("AB"))
	if _, _, err := BridgeTransport(big, 0); err != errNoICE {
		t.Fatalf("an oversized ufrag: %v, want errNoICE", err)
	}
}

// The writer's last line: a stanza over maxStanzaBytes is refused, never
// queued, connected or not.
func TestSendRefusesOversizedStanza(t *testing.T) {
	x := NewXMPPClient(XMPPOptions{})
	huge := NewElement(nsClient, "message", "to", "someone@meet.test").Add(
		NewElement(nsClient, "body").SetText(strings.Repeat(">", maxStanzaBytes/4+1)))
	if err := x.Send(huge); !errors.Is(err, ErrStanzaTooLarge) {
		t.Fatalf("Send: %v, want ErrStanzaTooLarge", err)
	}
	_, err := x.SendIQ(context.Background(), NewIQ("set", "someone@meet.test", "", NewElement(nsJingle, "jingle").SetText(strings.Repeat("&", maxStanzaBytes/5+1))))
	if !errors.Is(err, ErrStanzaTooLarge) {
		t.Fatalf("SendIQ: %v, want ErrStanzaTooLarge", err)
	}
	small := NewElement(nsClient, "message", "to", "someone@meet.test")
	if err := x.Send(small); errors.Is(err, ErrStanzaTooLarge) {
		t.Fatal("a small stanza refused as too large")
	}
}
