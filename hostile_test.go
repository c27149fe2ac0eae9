package main

// Hostile input: what one participant or one bridge sends must never end
// other people's meetings. Each test is an attack that used to work; it
// asserts on the wire that the attacker gets an error (or its input is cut
// down), the focus keeps its XMPP stream and the other conferences go on.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/stream"

	"minifocus/testkit"
)

// focusDisconnects is how often the focus has lost its XMPP stream.
func (s *stack) focusDisconnects() int64 {
	_, d := s.focus.XMPP.Stats()
	return d
}

// pair brings two participants into room and waits until each knows the other.
func (s *stack) pair(room string, mod ...func(*testkit.ParticipantConfig)) (*testkit.Participant, *testkit.Participant) {
	s.t.Helper()
	a, b := s.join(room, mod...), s.join(room, mod...)
	s.wait("both sessions in "+room, func() bool { return knowsExactly(a, b) && knowsExactly(b, a) })
	return a, b
}

// otherConferenceGoesOn: a newcomer to room gets everyone's sources and
// everyone gets its.
func (s *stack) otherConferenceGoesOn(room string, ps ...*testkit.Participant) {
	s.t.Helper()
	n := s.join(room)
	s.wait("a newcomer to "+room+" meets the others", func() bool {
		if !knowsExactly(n, ps...) {
			return false
		}
		for _, p := range ps {
			if !slices.Contains(owners(p), n.Nick()) {
				return false
			}
		}
		return true
	})
}

func countElems(e *testkit.Elem, local string) int {
	if e == nil {
		return 0
	}
	n := 0
	if e.Local == local {
		n++
	}
	for _, k := range e.Kids {
		n += countElems(k, local)
	}
	return n
}

// Attack 1: a source-add whose names and msids are full of '>' (one byte
// in, four out as &gt;). Forwarded as it was, the focus's source-add to the
// others and its Colibri2 request went over Prosody's 256 KiB limit and
// Prosody closed the focus's stream, ending every conference.
func TestHostileSourceAddCannotDisconnectFocus(t *testing.T) {
	s := startStack(t, 1)
	victim, attacker := s.pair("victims@conference.meet.test")
	b1, b2 := s.pair("bystanders@conference.meet.test")
	before := s.focusDisconnects()
	victimKnew := len(victim.RemoteSources()[attacker.Nick()])

	var src strings.Builder
	gt := strings.Repeat(">", 6000)
	for i := range 16 { // with the 3 it has, under the 20-source limit
		fmt.Fprintf(&src, `<source xmlns="%s" ssrc="%d" name="%s"><parameter xmlns="%s" name="msid" value="m%d %s"/></source>`,
			nsSSMA, 900000+i, gt, nsRTP, i, gt)
	}
	raw := fmt.Sprintf(`<iq xmlns="jabber:client" type="set" id="attack1" to="%s/focus"><jingle xmlns="%s" action="source-add" sid="%s">`+
		`<content name="video"><description xmlns="%s" media="video">%s</description></content></jingle></iq>`,
		attacker.Room(), nsJingle, attacker.SID(), nsRTP, src.String())
	t.Logf("attack source-add: %d bytes, each '>' becomes 4 bytes when echoed", len(raw))
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	resp, err := attacker.Client().SendRawIQ(ctx, "attack1", raw)
	var se *testkit.StanzaError
	if !errors.As(err, &se) || se.Condition != "bad-request" || !strings.Contains(se.Text, "too long") {
		t.Fatalf("the attacker got %v, %v; want bad-request about a too long name", resp, err)
	}

	// The victim is told the attacker's next honest change, and nothing of
	// the refused one (the focus handles a sender's IQs in order).
	if err := attacker.AddScreenshare(ctx); err != nil {
		t.Fatal(err)
	}
	s.wait("the victim sees the attacker's screen share", func() bool {
		return len(victim.RemoteSources()[attacker.Nick()]) > victimKnew
	})
	if got := s.focusDisconnects(); got != before {
		t.Fatalf("the focus lost its XMPP stream %d time(s)", got-before)
	}
	s.otherConferenceGoesOn("bystanders@conference.meet.test", b1, b2)
	s.otherConferenceGoesOn("victims@conference.meet.test", victim, attacker)
	if got := s.focusDisconnects(); got != before {
		t.Fatalf("the focus lost its XMPP stream %d time(s)", got-before)
	}
}

// Attack 2: a bridge answering Colibri2 with a thousand ICE candidates.
// Copied into the audio, video and data contents, the session-initiate went
// over Prosody's limit. The offer now keeps the first maxCandidates.
func TestHostileBridgeCandidateFlood(t *testing.T) {
	s := startStack(t, 1)
	b1, b2 := s.pair("bystanders@conference.meet.test")
	s.bridges[0].SetExtraCandidates(1000)
	before := s.focusDisconnects()
	p1, p2 := s.pair("flooded@conference.meet.test")
	for _, p := range []*testkit.Participant{p1, p2} {
		offers := p.Offers()
		last := offers[len(offers)-1]
		contents := last.Child(nsJingle, "jingle").All(nsJingle, "content")
		if len(contents) == 0 {
			t.Fatalf("%s: no contents in %s", p.Nick(), last)
		}
		for _, c := range contents {
			if n := countElems(c.Child(nsICEUDP, "transport"), "candidate"); n > maxCandidates || n == 0 {
				t.Fatalf("%s: content %s offers %d candidates (limit %d)", p.Nick(), c.Attr("name"), n, maxCandidates)
			}
		}
		t.Logf("%s: session-initiate of %d bytes", p.Nick(), len(last.String()))
	}
	if got := s.focusDisconnects(); got != before {
		t.Fatalf("the focus lost its XMPP stream %d time(s)", got-before)
	}
	s.otherConferenceGoesOn("bystanders@conference.meet.test", b1, b2)
}

// Attack 3: asking for "straße" while "strasse" runs. Prosody folds both to
// one room; the focus made a second conference whose timeout then took the
// focus out of the real room. Now every spelling is the one conference.
func TestHostileRoomSpellingJoinsTheSameConference(t *testing.T) {
	s := startStack(t, 1)
	p1 := s.join("strasse@conference.meet.test")
	p2 := s.join("strasse@conference.meet.test", func(c *testkit.ParticipantConfig) { c.RequestRoom = "Straße@conference.meet.test" })
	s.wait("both in one session", func() bool { return knowsExactly(p1, p2) && knowsExactly(p2, p1) })
	confs := s.focus.Focus.all()
	if len(confs) != 1 || confs[0].room != "strasse@conference.meet.test" {
		var rooms []string
		for _, c := range confs {
			rooms = append(rooms, c.room)
		}
		t.Fatalf("conferences %v, want only strasse@conference.meet.test", rooms)
	}
	p3 := s.join("strasse@conference.meet.test", func(c *testkit.ParticipantConfig) { c.RequestRoom = "STRASSE@conference.meet.test" })
	s.wait("a third spelling joins too", func() bool { return knowsExactly(p3, p1, p2) && knowsExactly(p1, p2, p3) })
	if n := len(s.focus.Focus.all()); n != 1 {
		t.Fatalf("%d conferences, want 1", n)
	}
}

// memberFeaturesKnown asks the conference of room whether it has its
// member's features (its disco#info answered, or taken from the cache).
func (s *stack) memberFeaturesKnown(room, nick string) bool {
	c := s.focus.Focus.lookup(room)
	if c == nil {
		return false
	}
	ch := make(chan bool, 1)
	if !c.post(event{kind: evFunc, fn: func() { m := c.members[nick]; ch <- m != nil && m.featuresKnown }}) {
		return false
	}
	select {
	case v := <-ch:
		return v
	case <-time.After(2 * time.Second):
		return false
	}
}

// Attack 4: advertising the ver of the popular client with a crafted
// disco#info answer (here: no video). The focus cached the answer under
// that ver, and every honest client of that version joining later got an
// offer without video. Now only an answer that hashes to its ver is cached.
func TestHostileCapsPoisoningIsNotCached(t *testing.T) {
	s := startStack(t, 1)
	popular := testkit.ClientCapsVer(testkit.ClientFeatures())
	noVideo := slices.DeleteFunc(testkit.ClientFeatures(), func(f string) bool { return f == featureVideo })
	attacker := s.join("poisoned@conference.meet.test", func(c *testkit.ParticipantConfig) {
		c.Features, c.CapsVer = noVideo, popular
	})
	s.wait("the focus has the attacker's answer", func() bool {
		return s.memberFeaturesKnown("poisoned@conference.meet.test", attacker.Nick())
	})
	if entries, bytes := s.focus.Focus.caps.usage(); entries != 0 {
		t.Fatalf("the lying answer was cached (%d entries, %d bytes)", entries, bytes)
	}
	honest := s.join("other@conference.meet.test")
	honest2 := s.join("other@conference.meet.test")
	s.wait("the honest clients' sessions", func() bool { return knowsExactly(honest, honest2) && knowsExactly(honest2, honest) })
	for _, p := range []*testkit.Participant{honest, honest2} {
		offers := p.Offers()
		var names []string
		for _, c := range offers[len(offers)-1].Child(nsJingle, "jingle").All(nsJingle, "content") {
			names = append(names, c.Attr("name"))
		}
		if !slices.Contains(names, "video") {
			t.Fatalf("%s was offered %v: the lying answer was used for it", p.Nick(), names)
		}
	}
	// The honest answer hashes to its ver: that one is cached.
	if feats, ok := s.focus.Focus.caps.get(testkit.ClientCapsNode + "#" + popular); !ok || !slices.Contains(feats, featureVideo) {
		t.Fatalf("the honest answer was not cached: %v %v", feats, ok)
	}
}

// Small ones: a too deeply nested IQ gets an error (it used to be dropped
// and its sender waited for ever); an unsupported Jingle action gets
// feature-not-implemented, as from Jicofo.
func TestHostileDeepStanzaAndUnknownActionAnswered(t *testing.T) {
	s := startStack(t, 1)
	p1, p2 := s.pair("small@conference.meet.test")
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	deep := strings.Repeat("<a>", 2*maxDepth) + strings.Repeat("</a>", 2*maxDepth)
	raw := fmt.Sprintf(`<iq xmlns="jabber:client" type="get" id="deep1" to="%s"><query xmlns="urn:example:deep">%s</query></iq>`,
		s.focus.XMPP.JID(), deep)
	resp, err := p1.Client().SendRawIQ(ctx, "deep1", raw)
	var se *testkit.StanzaError
	if !errors.As(err, &se) || se.Condition != "policy-violation" {
		t.Fatalf("deep IQ: got %v, %v; want a policy-violation error", resp, err)
	}

	resp, err = p1.SendJingle(ctx, "content-add", nil)
	if !errors.As(err, &se) || se.Condition != "feature-not-implemented" {
		t.Fatalf("content-add: got %v, %v; want feature-not-implemented", resp, err)
	}
	if !knowsExactly(p1, p2) || !knowsExactly(p2, p1) || s.focusDisconnects() != 0 {
		t.Fatal("the session or the stream was disturbed")
	}
}

// A stream error from Prosody is logged with its condition and text, not
// behind a decoder error.
func TestStreamErrorTextKept(t *testing.T) {
	err := readError(stream.Error{Err: "policy-violation", Text: []struct {
		Lang  string
		Value string
	}{{Value: "XML stanza is too big"}}})
	if want := "stream error from the server: policy-violation: XML stanza is too big"; err.Error() != want {
		t.Fatalf("got %q, want %q", err, want)
	}
}

// An honest conference too big for one session-initiate: nine endpoints
// with long (legal) names and msids. The newcomer's offer stays under the
// limit, the rest follows as source-add once it accepts, and it ends up
// knowing every source.
func TestBigConferenceSessionInitiateIsSplit(t *testing.T) {
	s := startStack(t, 1)
	room := "big@conference.meet.test"
	var big []*testkit.Participant
	for i := range 9 {
		big = append(big, s.join(room, func(c *testkit.ParticipantConfig) {
			c.Nick = fmt.Sprintf("big%d", i)
			c.Sources = []testkit.Source{}
			for k := range 12 {
				c.Sources = append(c.Sources, testkit.Source{Media: "video",
					Name: fmt.Sprintf("big%d-v%d-%s", i, k, strings.Repeat("&", 110)),
					MSID: fmt.Sprintf("s%d-%d-%s t", i, k, strings.Repeat("&", 240))})
			}
		}))
	}
	s.wait("the big ones know each other", func() bool {
		for i, p := range big {
			if !knowsExactly(p, slices.Delete(slices.Clone(big), i, i+1)...) {
				return false
			}
		}
		return true
	})
	newcomer := s.join(room)
	s.wait("the newcomer knows every source", func() bool {
		rs := newcomer.RemoteSources()
		for _, p := range big {
			if len(rs[p.Nick()]) != 12 {
				return false
			}
		}
		return true
	})
	offer := newcomer.Offers()[0]
	size := len(offer.String())
	if size > maxStanzaBytes {
		t.Fatalf("session-initiate of %d bytes", size)
	}
	adds := newcomer.Received("source-add")
	if len(adds) == 0 {
		t.Fatalf("expected the sources that did not fit to follow as source-add (session-initiate of %d bytes)", size)
	}
	for _, a := range adds {
		if n := len(a.String()); n > maxStanzaBytes {
			t.Fatalf("source-add of %d bytes", n)
		}
	}
	if s.focusDisconnects() != 0 {
		t.Fatal("the focus lost its XMPP stream")
	}
	t.Logf("newcomer: session-initiate %d bytes with %d owners' sources, then %d source-add(s)",
		size, len(ownersOfInitiate(offer)), len(adds))
}

func ownersOfInitiate(iq *testkit.Elem) map[string]bool {
	out := map[string]bool{}
	el, err := ParseElement(iq.String())
	if err != nil {
		return out
	}
	j := el.Child(nsJingle, "jingle")
	if jm := j.Child(nsJitmeet, "json-message"); jm != nil {
		var m struct {
			Sources map[string]any `json:"sources"`
		}
		_ = json.Unmarshal([]byte(jm.Text), &m)
		for o := range m.Sources {
			out[o] = true
		}
	}
	return out
}

// Attack 1b: two participants each put ~60 KB of '>' into the sources of
// their session-accept. Each alone stays under every limit on the way in,
// but a newcomer's session-initiate carrying both, escaped, was far over
// Prosody's limit. Now the session-accepts are refused and the newcomer
// gets its offer.
func TestHostileSessionAcceptSourcesRefused(t *testing.T) {
	s := startStack(t, 1)
	b1, b2 := s.pair("bystanders@conference.meet.test")
	room := "victims@conference.meet.test"
	gt := strings.Repeat(">", 2400)
	var attackers []*testkit.Participant
	for i := range 2 {
		attackers = append(attackers, s.join(room, func(c *testkit.ParticipantConfig) {
			c.Sources = []testkit.Source{}
			for k := range 12 {
				c.Sources = append(c.Sources, testkit.Source{Media: "video",
					Name: fmt.Sprintf("a%d-%d%s", i, k, gt), MSID: fmt.Sprintf("a%d-%d %s", i, k, gt)})
			}
		}))
	}
	s.wait("both attackers answered", func() bool {
		return len(attackers[0].Sent("session-accept")) > 0 && len(attackers[1].Sent("session-accept")) > 0
	})
	newcomer := s.join(room)
	s.wait("the newcomer's session", func() bool { return len(newcomer.Offers()) > 0 })
	for _, o := range owners(newcomer) {
		if o != "jvb" {
			t.Fatalf("the newcomer was told about %s's refused sources", o)
		}
	}
	if d := s.focusDisconnects(); d != 0 {
		t.Fatalf("the focus lost its XMPP stream %d time(s)", d)
	}
	s.otherConferenceGoesOn("bystanders@conference.meet.test", b1, b2)
}
