package main

// Unit tests of the conference's decisions, without Prosody: a Focus whose
// XMPP link is a fake that records every stanza and answers IQs through a
// per-test function, real bridge selection over the Bridges test harness, and
// a conference whose events the test goroutine handles itself (it is the
// conference goroutine here). The real-Prosody tests (conference_test.go)
// cover the wire.

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	unitRoom     = "unit@conference.meet.test"
	unitFocusJID = "focus@auth.meet.test/focus"
)

// fakeLink is an xmppLink that records what is sent and answers IQs at
// once, when they are sent (so the order of answers is the order of
// requests).
type fakeLink struct {
	mu   sync.Mutex
	sent []*Element
	// answerMu serialises the answers, so per-test answer functions need
	// no locking of their own.
	answerMu sync.Mutex
	answer   func(iq *Element) (*Element, error) // nil: an empty result
}

func (l *fakeLink) record(el *Element) {
	l.mu.Lock()
	l.sent = append(l.sent, el.Copy())
	l.mu.Unlock()
}

func (l *fakeLink) Send(el *Element) error { l.record(el); return nil }

func (l *fakeLink) ask(iq *Element) (*Element, error) {
	if iq.Attr("id") == "" {
		iq.Set("id", randomID())
	}
	l.record(iq)
	l.answerMu.Lock()
	defer l.answerMu.Unlock()
	if l.answer == nil {
		return resultTo(iq), nil
	}
	return l.answer(iq)
}

func (l *fakeLink) SendIQ(_ context.Context, iq *Element) (*Element, error) { return l.ask(iq) }

func (l *fakeLink) StartIQ(iq *Element) func(context.Context) (*Element, error) {
	resp, err := l.ask(iq)
	return func(context.Context) (*Element, error) { return resp, err }
}

func (l *fakeLink) JID() string              { return unitFocusJID }
func (l *fakeLink) Connected() (bool, error) { return true, nil }
func (l *fakeLink) capsVer() string          { return "unit-test-ver" }

// take returns what was sent since the last take.
func (l *fakeLink) take() []*Element {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.sent
	l.sent = nil
	return out
}

func resultTo(iq *Element) *Element {
	return NewElement(nsClient, "iq", "type", "result", "from", iq.Attr("to"), "to", unitFocusJID, "id", iq.Attr("id"))
}

// errorTo is an error answer as XMPPClient returns it: the stanza and its
// *StanzaError.
func errorTo(iq *Element, cond string) (*Element, error) {
	resp := NewElement(nsClient, "iq", "type", "error", "from", iq.Attr("to"), "id", iq.Attr("id")).
		Add(Errorf(cond, "unit test says no").Element())
	return resp, ParseStanzaError(resp)
}

// colibriModify is the conference-modify of a Colibri2 IQ, or nil.
func colibriModify(el *Element) *Element {
	if el.Local != "iq" {
		return nil
	}
	return el.Child(nsColibri2, "conference-modify")
}

// allocating lists the endpoints a Colibri2 IQ creates.
func allocating(el *Element) []string {
	var out []string
	for _, ep := range colibriModify(el).All(nsColibri2, "endpoint") {
		if ep.Attr("create") == "true" {
			out = append(out, ep.Attr("id"))
		}
	}
	return out
}

// bridgeAnswer answers a Colibri2 request as a bridge does: a transport
// (with an SCTP port) for every endpoint it creates, and one for every relay
// it opens (its ufrag names the answering bridge).
func bridgeAnswer(iq *Element) (*Element, error) {
	cm := NewElement(nsColibri2, "conference-modified")
	for _, r := range colibriModify(iq).All(nsColibri2, "relay") {
		if r.Attr("create") != "true" {
			continue
		}
		tr := NewElement(nsICEUDP, "transport", "ufrag", "relay-uf-"+nickOf(iq.Attr("to")), "pwd", "relay-pwd-0123456789abcdef").Add(
			NewElement(nsDTLS, "fingerprint", "hash", "sha-256", "setup", "actpass").SetText("AA:BB:CC:DD"))
		cm.Add(NewElement(nsColibri2, "relay", "id", r.Attr("id")).Add(NewElement(nsColibri2, "transport").Add(tr)))
	}
	for _, id := range allocating(iq) {
		tr := NewElement(nsICEUDP, "transport", "ufrag", "uf-"+id, "pwd", "pwd-of-"+id+"-0123456789").Add(
			NewElement(nsICEUDP, "candidate", "component", "1", "foundation", "1", "generation", "0", "id", "c1",
				"network", "0", "port", "10000", "priority", "2130706431", "protocol", "udp", "type", "host", "ip", "10.0.0.5"),
			NewElement(nsDTLS, "fingerprint", "hash", "sha-256", "setup", "actpass").SetText("2E:CC:85:23"),
		)
		cm.Add(NewElement(nsColibri2, "endpoint", "id", id).Add(
			NewElement(nsColibri2, "transport").Add(tr, NewElement(nsColibri2, "sctp", "port", "5000"))))
	}
	return resultTo(iq).Add(cm), nil
}

// defaultAnswer: bridges allocate, everybody else answers with a result.
func defaultAnswer(iq *Element) (*Element, error) {
	if cm := colibriModify(iq); cm != nil && cm.Attr("expire") != "true" {
		return bridgeAnswer(iq)
	}
	return resultTo(iq), nil
}

type confHarness struct {
	t      *testing.T
	f      *Focus
	c      *Conference
	link   *fakeLink
	bridge *bridgeHarness
	logs   *bridgeLogBuf
}

// newConfHarness builds a focus with the given bridges ("a", "b", …) and a
// conference of unitRoom that has joined and configured its room. tune, if
// set, changes the configuration first.
func newConfHarness(t *testing.T, props map[string]string, tune func(*Config), bridges ...string) *confHarness {
	t.Helper()
	cfg := DefaultConfig()
	cfg.XMPP.TrustedDomains = []string{"hidden.meet.test"}
	if tune != nil {
		tune(&cfg)
	}
	cfg.Bridges.Brewery = testBrewery
	h := &confHarness{t: t, link: &fakeLink{answer: defaultAnswer}, logs: &bridgeLogBuf{},
		bridge: newBridgeHarness(t, cfg.Bridges)}
	for _, b := range bridges {
		h.bridge.addBridge(t, b)
	}
	log := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h.f = &Focus{
		cfg: cfg, x: h.link, bx: h.link, bridges: h.bridge.b, log: log, metrics: NewMetrics(), events: &EventLog{},
		confs:   map[string]*Conference{},
		limiter: map[string]*rateWindow{},
		caps:    newCapsCache(1000),
		budgets: newBudgets(),
	}
	h.f.useFeatures(features())
	h.c = newConference(h.f, unitRoom, props)
	h.f.confs[unitRoom] = h.c
	// The room is joined and configured (onSelfPresence and roomReady,
	// which the Prosody tests cover).
	h.c.configured = true
	h.c.meetingID = "unit-meeting"
	close(h.c.joined)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("focus log:\n%s", h.logs.String())
		}
	})
	return h
}

// answer replaces the IQ answers (defaultAnswer for the rest).
func (h *confHarness) answer(fn func(iq *Element) (*Element, error)) {
	h.link.answerMu.Lock()
	h.link.answer = fn
	h.link.answerMu.Unlock()
}

// settle handles the conference's events, as its goroutine does, until no
// work is in flight and nothing is queued.
func (h *confHarness) settle() {
	h.t.Helper()
	c := h.c
	deadline := time.Now().Add(30 * time.Second) // a hang guard, not a timing assertion
	for {
		busy := c.inflight.Load() != 0 // read before the queue: finished work has queued its result
		c.mu.Lock()
		q := c.queue
		c.queue = nil
		c.mu.Unlock()
		for _, ev := range q {
			if !c.stopped {
				c.handle(ev)
			}
		}
		if !busy && len(q) == 0 {
			return
		}
		if len(q) == 0 {
			if time.Now().After(deadline) {
				h.t.Fatal("conference work still in flight after 30s")
			}
			select {
			case <-c.wake:
			case <-time.After(time.Millisecond): // work that posts nothing only lowers inflight
			}
		}
	}
}

// handle feeds one event to the conference and settles.
func (h *confHarness) handle(ev event) {
	h.t.Helper()
	if !h.c.stopped {
		h.c.handle(ev)
	}
	h.settle()
}

func (h *confHarness) occupant(nick string) string { return unitRoom + "/" + nick }

// join feeds an occupant's presence (realJID may be empty); extra children
// are added to the presence.
func (h *confHarness) join(nick, realJID string, extra ...*Element) {
	h.t.Helper()
	item := NewElement(nsMUCUser, "item", "role", "participant", "affiliation", "none")
	if realJID != "" {
		item.Set("jid", realJID)
	}
	p := NewElement(nsClient, "presence", "from", h.occupant(nick), "to", unitFocusJID).
		Add(NewElement(nsMUCUser, "x").Add(item))
	p.Add(extra...)
	h.handle(event{kind: evPresence, el: p})
}

func (h *confHarness) leave(nick string) {
	h.t.Helper()
	h.handle(event{kind: evPresence, el: NewElement(nsClient, "presence", "from", h.occupant(nick), "to", unitFocusJID, "type", "unavailable")})
}

// jingle feeds a Jingle IQ from nick; body is the inside of <jingle>.
func (h *confHarness) jingle(nick, action, sid, body string) {
	h.t.Helper()
	raw := fmt.Sprintf(`<iq xmlns='jabber:client' type='set' id='j-%s-%s' from='%s' to='%s'><jingle xmlns='urn:xmpp:jingle:1' action='%s' sid='%s'>%s</jingle></iq>`,
		nick, action, h.occupant(nick), unitFocusJID, action, sid, body)
	iq, err := ParseElement(raw)
	if err != nil {
		h.t.Fatalf("bad test jingle: %v", err)
	}
	h.handle(event{kind: evIQ, el: iq})
}

// audioSource is a Jingle content with one audio source.
func audioSource(ssrc uint32, name string) string {
	return fmt.Sprintf(`<content name='audio'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'>`+
		`<source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='%d' name='%s'/></description></content>`, ssrc, name)
}

// accept sends nick's session-accept for its current session.
func (h *confHarness) accept(nick, body string) {
	h.t.Helper()
	m := h.c.members[nick]
	if m == nil || m.sid == "" {
		h.t.Fatalf("%s has no session to accept", nick)
	}
	h.jingle(nick, "session-accept", m.sid, body)
}

// twoActive joins A and B and accepts both sessions (no sources), and
// forgets what was sent so far.
func (h *confHarness) twoActive() {
	h.t.Helper()
	h.join("A", "a@meet.test/r")
	h.join("B", "b@meet.test/r")
	h.accept("A", "")
	h.accept("B", "")
	for _, n := range []string{"A", "B"} {
		if m := h.c.members[n]; m.state != sessActive {
			h.t.Fatalf("%s: session state %d, want active", n, m.state)
		}
	}
	h.link.take()
}

// Filters over sent stanzas.

func jingleAction(el *Element) string {
	if el.Local != "iq" {
		return ""
	}
	return el.Child(nsJingle, "jingle").Attr("action")
}

func sentTo(els []*Element, to string, pred func(*Element) bool) []*Element {
	var out []*Element
	for _, el := range els {
		if (to == "" || el.Attr("to") == to) && pred(el) {
			out = append(out, el)
		}
	}
	return out
}

func isAction(action string) func(*Element) bool {
	return func(el *Element) bool { return jingleAction(el) == action }
}

func isAllocation(el *Element) bool { return colibriModify(el) != nil && len(allocating(el)) > 0 }

func isConferenceExpire(el *Element) bool {
	cm := colibriModify(el)
	return cm != nil && cm.Attr("expire") == "true"
}

func isErrorWith(cond string) func(*Element) bool {
	return func(el *Element) bool {
		return el.Local == "iq" && el.Attr("type") == "error" && ParseStanzaError(el).Condition == cond
	}
}

func dump(els []*Element) string {
	var b strings.Builder
	for _, el := range els {
		b.WriteString("\n  ")
		b.WriteString(truncate(el.String(), 300))
	}
	return b.String()
}

// U1: nobody is invited until min-participants (2) members are present;
// then both are, on the one bridge, and each gets a session-initiate.
func TestConfInvitesOnlyFromMinParticipants(t *testing.T) {
	h := newConfHarness(t, nil, nil, "a")
	h.join("A", "a@meet.test/r")
	sent := h.link.take()
	if got := sentTo(sent, "", func(el *Element) bool { return colibriModify(el) != nil }); len(got) != 0 {
		t.Fatalf("a lone member caused Colibri2 requests:%s", dump(got))
	}
	if got := sentTo(sent, "", isAction("session-initiate")); len(got) != 0 {
		t.Fatalf("a lone member was invited:%s", dump(got))
	}
	if m := h.c.members["A"]; m == nil || !m.featuresKnown || m.bridge != "" || m.state != sessNone {
		t.Fatalf("lone member A: %+v", m)
	}

	h.join("B", "b@meet.test/r")
	sent = h.link.take()
	allocs := sentTo(sent, brewJID("a"), isAllocation)
	var eps []string
	for _, a := range allocs {
		eps = append(eps, allocating(a)...)
	}
	if strings.Join(eps, ",") != "A,B" {
		t.Fatalf("allocated %v on bridge a, want A,B in join order:%s", eps, dump(sent))
	}
	if colibriModify(allocs[0]).Attr("create") != "true" || colibriModify(allocs[1]).Attr("create") == "true" {
		t.Errorf("only the first allocation creates the conference:%s", dump(allocs))
	}
	for _, n := range []string{"A", "B"} {
		if got := sentTo(sent, h.occupant(n), isAction("session-initiate")); len(got) != 1 {
			t.Errorf("%s got %d session-initiates, want 1:%s", n, len(got), dump(sent))
		}
		if m := h.c.members[n]; m.state != sessPending || m.bridge != brewJID("a") {
			t.Errorf("%s: state %d bridge %q", n, m.state, m.bridge)
		}
	}
	if s := h.c.sessions[brewJID("a")]; s == nil || len(s.endpoints) != 2 {
		t.Errorf("bridge session: %+v", s)
	}
}

// isOwnerGrant: an IQ that changes an affiliation in the room.
func isOwnerGrant(el *Element) bool {
	return el.Local == "iq" && el.Attr("type") == "set" && el.Child(nsMUCAdmin, "query") != nil
}

// U2: the owner IQ goes to the first member with a real JID; once there is
// an owner nobody else is made one. (The Jibri test checks that a service
// is skipped.)
func TestConfAutoOwnerFirstRealMember(t *testing.T) {
	h := newConfHarness(t, nil, nil, "a")
	h.join("anon", "") // no real JID: cannot be granted
	if got := sentTo(h.link.take(), "", isOwnerGrant); len(got) != 0 {
		t.Fatalf("a member without a real JID was made owner:%s", dump(got))
	}
	h.join("A", "alice@meet.test/r1")
	grants := sentTo(h.link.take(), unitRoom, isOwnerGrant)
	if len(grants) != 1 {
		t.Fatalf("%d owner grants, want 1:%s", len(grants), dump(grants))
	}
	item := grants[0].Child(nsMUCAdmin, "query").Child(nsMUCAdmin, "item")
	if item.Attr("affiliation") != "owner" || item.Attr("jid") != "alice@meet.test" {
		t.Errorf("grant item: %s", item)
	}
	h.join("B", "bob@meet.test/r1")
	if got := sentTo(h.link.take(), "", isOwnerGrant); len(got) != 0 {
		t.Fatalf("a second owner was made:%s", dump(got))
	}
}

// U3: a bridge that refuses an allocation (bad-request: this participant
// only) is excluded from the retry, which goes to the other bridge; after
// three retries the participant is given up. In a build without cascading
// the retry may only leave that bridge when B is not on it yet: A and B
// end up on one bridge, whichever answer came first.
func TestConfAllocationErrorRetriesAnotherBridge(t *testing.T) {
	h := newConfHarness(t, nil, nil, "a", "b")
	var first string
	h.answer(func(iq *Element) (*Element, error) {
		if isAllocation(iq) && first == "" {
			first = iq.Attr("to")
			return errorTo(iq, "bad-request")
		}
		return defaultAnswer(iq)
	})
	h.join("A", "a@meet.test/r")
	h.join("B", "b@meet.test/r")
	sent := h.link.take()
	allocs := sentTo(sent, "", isAllocation)
	if first == "" || len(allocs) < 2 {
		t.Fatalf("allocations:%s", dump(sent))
	}
	// The first allocation (A's) failed: A's retry is the next one for A.
	var retry *Element
	for _, a := range allocs[1:] {
		if allocating(a)[0] == "A" {
			retry = a
			break
		}
	}
	switch {
	case retry == nil:
		t.Fatalf("A was not retried:%s", dump(allocs))
	case h.f.linksBridges && retry.Attr("to") == first:
		t.Fatalf("A was not retried on the other bridge (first %s):%s", first, dump(allocs))
	case !h.f.linksBridges && h.c.members["A"].bridge != h.c.members["B"].bridge:
		t.Fatalf("without cascading A is on %s and B on %s:%s", h.c.members["A"].bridge, h.c.members["B"].bridge, dump(allocs))
	}
	if m := h.c.members["A"]; m.bridge != retry.Attr("to") || m.state != sessPending || m.failed {
		t.Errorf("A after the retry: bridge %q state %d failed %v", m.bridge, m.state, m.failed)
	}
	if got := sentTo(sent, h.occupant("A"), isAction("session-initiate")); len(got) != 1 {
		t.Errorf("A got %d session-initiates, want 1", len(got))
	}

	// Every bridge refuses C: one try and three retries, then nothing more.
	h.answer(func(iq *Element) (*Element, error) {
		if isAllocation(iq) && allocating(iq)[0] == "C" {
			return errorTo(iq, "bad-request")
		}
		return defaultAnswer(iq)
	})
	h.join("C", "c@meet.test/r")
	sent = h.link.take()
	var tries []string
	for _, a := range sentTo(sent, "", isAllocation) {
		if allocating(a)[0] == "C" {
			tries = append(tries, nickOf(a.Attr("to")))
		}
	}
	if len(tries) != 4 {
		t.Fatalf("C: %d allocations %v, want 4 (one try, three retries)", len(tries), tries)
	}
	for i := 1; i < len(tries) && h.f.linksBridges; i++ { // (without cascading C stays with A and B)
		if tries[i] == tries[i-1] {
			t.Errorf("C retried on the bridge that just refused it: %v", tries)
		}
	}
	m := h.c.members["C"]
	if !m.failed || m.bridge != "" || m.state != sessNone {
		t.Errorf("C after four refusals: failed %v bridge %q state %d", m.failed, m.bridge, m.state)
	}
	if got := sentTo(sent, h.occupant("C"), isAction("session-initiate")); len(got) != 0 {
		t.Errorf("C was sent a session-initiate:%s", dump(got))
	}
	// A later presence does not bring a failed participant back.
	h.join("C", "c@meet.test/r")
	if got := sentTo(h.link.take(), "", isAllocation); len(got) != 0 {
		t.Errorf("a failed participant was allocated again:%s", dump(got))
	}
}

// U4: with startAudioMuted=1 the first invitee starts unmuted and the
// second is told to start with audio muted.
func TestConfStartMutedThreshold(t *testing.T) {
	h := newConfHarness(t, map[string]string{"startAudioMuted": "1"}, nil, "a")
	h.join("A", "a@meet.test/r")
	h.join("B", "b@meet.test/r")
	sent := h.link.take()
	muted := func(nick string) *Element {
		inits := sentTo(sent, h.occupant(nick), isAction("session-initiate"))
		if len(inits) != 1 {
			t.Fatalf("%s got %d session-initiates:%s", nick, len(inits), dump(sent))
		}
		return inits[0].Child(nsJingle, "jingle").Child(nsStartMuted, "startmuted")
	}
	if sm := muted("A"); sm != nil && sm.Attr("audio") == "true" {
		t.Errorf("the first invitee starts audio-muted: %s", sm)
	}
	if sm := muted("B"); sm == nil || sm.Attr("audio") != "true" || sm.Attr("video") != "false" {
		t.Errorf("the second invitee's startmuted: %v, want audio true, video false", sm)
	}
}

// U5: sources from A's session-accept go to B and not back to A; a
// duplicate SSRC from B is refused with bad-request and changes nothing.
func TestConfSourceAddReachesOthersOnly(t *testing.T) {
	h := newConfHarness(t, nil, nil, "a")
	h.join("A", "a@meet.test/r")
	h.join("B", "b@meet.test/r")
	h.accept("B", "")
	h.link.take()

	const ssrc = 3735928559
	h.accept("A", audioSource(ssrc, "A-a0"))
	sent := h.link.take()
	toB := sentTo(sent, h.occupant("B"), isAction("source-add"))
	if len(toB) != 1 || !strings.Contains(toB[0].String(), fmt.Sprint(ssrc)) {
		t.Fatalf("B's source-add:%s", dump(sent))
	}
	if got := sentTo(sent, h.occupant("A"), isAction("source-add")); len(got) != 0 {
		t.Errorf("A was told its own sources:%s", dump(got))
	}
	if got := sentTo(sent, h.occupant("A"), func(el *Element) bool { return el.Attr("type") == "result" }); len(got) != 1 {
		t.Errorf("A's accept was not answered with a result:%s", dump(sent))
	}
	updates := sentTo(sent, brewJID("a"), func(el *Element) bool { return colibriModify(el) != nil })
	if len(updates) != 1 || !strings.Contains(updates[0].String(), fmt.Sprint(ssrc)) {
		t.Errorf("the bridge was not given A's sources:%s", dump(updates))
	}
	if _, ok := h.c.members["B"].signaled["A"]; !ok {
		t.Error("B's signaled view lacks A")
	}

	// A later source-add from A, too, goes to B only.
	const ssrc2 = 3735928560
	h.jingle("A", "source-add", h.c.members["A"].sid, audioSource(ssrc2, "A-a1"))
	sent = h.link.take()
	toB = sentTo(sent, h.occupant("B"), isAction("source-add"))
	if len(toB) != 1 || !strings.Contains(toB[0].String(), fmt.Sprint(ssrc2)) {
		t.Fatalf("B's second source-add:%s", dump(sent))
	}
	if got := sentTo(sent, h.occupant("A"), isAction("source-add")); len(got) != 0 {
		t.Errorf("A was told its own new source:%s", dump(got))
	}

	before := h.c.sources.Get("A")
	h.jingle("B", "source-add", h.c.members["B"].sid, audioSource(ssrc, "B-a0"))
	sent = h.link.take()
	if got := sentTo(sent, h.occupant("B"), isErrorWith("bad-request")); len(got) != 1 {
		t.Fatalf("the duplicate SSRC was not refused with bad-request:%s", dump(sent))
	}
	if len(sent) != 1 {
		t.Errorf("a refused source-add sent more than its error:%s", dump(sent))
	}
	if !h.c.sources.Get("B").IsEmpty() || !sameSources(h.c.sources.Get("A"), before) {
		t.Errorf("sources changed: A %+v, B %+v", h.c.sources.Get("A"), h.c.sources.Get("B"))
	}
}

// U6: a failed bridge's participants are told their session moves, are
// allocated elsewhere (the failed bridge excluded) and the failed bridge is
// asked to expire the conference; a bridge that left the brewery is not.
func TestConfBridgeFailedMovesEveryoneElsewhere(t *testing.T) {
	for _, kind := range []BridgeEventKind{BridgeFailed, BridgeRemoved} {
		t.Run(kind.String(), func(t *testing.T) {
			h := newConfHarness(t, nil, nil, "a", "b")
			h.twoActive()
			old := h.c.members["A"].bridge
			if h.c.members["B"].bridge != old {
				t.Fatalf("A and B on different bridges: %s, %s", old, h.c.members["B"].bridge)
			}
			// The other bridge is busier, so only the exclusion of the lost
			// one keeps the moves off it (the registry has not heard of
			// the loss).
			other := "a"
			if nickOf(old) == "a" {
				other = "b"
			}
			h.bridge.addBridge(t, other, "stress_level", "0.5")
			h.handle(event{kind: evBridge, bridge: BridgeEvent{Kind: kind, JID: old}})
			sent := h.link.take()
			for _, n := range []string{"A", "B"} {
				terms := sentTo(sent, h.occupant(n), isAction("session-terminate"))
				if len(terms) != 1 || !strings.Contains(terms[0].String(), "moving") {
					t.Errorf("%s: session-terminate:%s", n, dump(sent))
				}
				if m := h.c.members[n]; m.bridge == old || m.bridge == "" || m.state != sessPending {
					t.Errorf("%s after the move: bridge %q state %d", n, m.bridge, m.state)
				}
				if got := sentTo(sent, h.occupant(n), isAction("session-initiate")); len(got) != 1 {
					t.Errorf("%s: %d new session-initiates", n, len(got))
				}
			}
			if got := sentTo(sent, old, isAllocation); len(got) != 0 {
				t.Errorf("allocated on the lost bridge again:%s", dump(got))
			}
			expires := sentTo(sent, old, isConferenceExpire)
			want := 1
			if kind == BridgeRemoved {
				want = 0 // it is gone: nothing to ask of it
			}
			if len(expires) != want {
				t.Errorf("%d conference expires to the lost bridge, want %d:%s", len(expires), want, dump(sent))
			}
			if h.c.sessions[old] != nil {
				t.Error("the lost bridge's session is still held")
			}
		})
	}
}

// U8: the last member leaving expires the conference on the bridge, leaves
// the room and ends the conference.
func TestConfLastLeaverExpiresAndLeavesRoom(t *testing.T) {
	h := newConfHarness(t, nil, nil, "a")
	h.twoActive()
	h.leave("A")
	sent := h.link.take()
	if got := sentTo(sent, brewJID("a"), isConferenceExpire); len(got) != 0 {
		t.Fatalf("the conference was expired while B is still there:%s", dump(sent))
	}
	eps := sentTo(sent, brewJID("a"), func(el *Element) bool {
		ep := colibriModify(el).Child(nsColibri2, "endpoint")
		return ep.Attr("id") == "A" && ep.Attr("expire") == "true"
	})
	if len(eps) != 1 {
		t.Errorf("A's endpoint was not expired:%s", dump(sent))
	}
	if h.c.stopped {
		t.Fatal("the conference ended with a member left")
	}

	h.leave("B")
	sent = h.link.take()
	if got := sentTo(sent, brewJID("a"), isConferenceExpire); len(got) != 1 {
		t.Errorf("%d conference expires, want 1:%s", len(got), dump(sent))
	}
	leaves := sentTo(sent, h.c.self, func(el *Element) bool { return el.Local == "presence" && el.Attr("type") == "unavailable" })
	if len(leaves) != 1 {
		t.Errorf("the focus did not leave the room:%s", dump(sent))
	}
	if !h.c.stopped || h.c.stopReason() != "the last participant left" {
		t.Errorf("stopped %v, reason %q", h.c.stopped, h.c.stopReason())
	}
	if len(h.c.sessions) != 0 || h.f.lookup(unitRoom) != nil {
		t.Errorf("left behind: sessions %d, registered %v", len(h.c.sessions), h.f.lookup(unitRoom) != nil)
	}
}

// U9: a Jingle request naming another member's session gets
// item-not-found; an unknown session gets bad-request; neither changes the
// sender's session.
func TestConfJingleWrongSID(t *testing.T) {
	h := newConfHarness(t, nil, nil, "a")
	h.twoActive()
	transport := `<content name='audio'><transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag='u' pwd='p'/></content>`
	a := *h.c.members["A"]
	h.jingle("A", "transport-info", h.c.members["B"].sid, transport)
	sent := h.link.take()
	if len(sent) != 1 || len(sentTo(sent, h.occupant("A"), isErrorWith("item-not-found"))) != 1 {
		t.Errorf("another member's SID:%s", dump(sent))
	}
	h.jingle("A", "transport-info", "no-such-sid", transport)
	sent = h.link.take()
	if len(sent) != 1 || len(sentTo(sent, h.occupant("A"), isErrorWith("bad-request"))) != 1 {
		t.Errorf("an unknown SID:%s", dump(sent))
	}
	if m := h.c.members["A"]; m.sid != a.sid || m.state != a.state || m.bridge != a.bridge {
		t.Errorf("A's session changed: %+v", m)
	}
	// The right SID is accepted (the errors above are about the SID).
	h.jingle("A", "transport-info", a.sid, transport)
	sent = h.link.take()
	if len(sentTo(sent, h.occupant("A"), func(el *Element) bool { return el.Attr("type") == "result" })) != 1 ||
		len(sentTo(sent, brewJID("a"), func(el *Element) bool { return colibriModify(el) != nil })) != 1 {
		t.Errorf("A's own transport-info:%s", dump(sent))
	}
}

// U7: a participant the bridge forgot is moved: its session is
// terminated ("moving"), its sources leave the conference (the others get a
// source-remove), its old endpoint is expired, and it is invited afresh,
// exactly as ending the session and inviting again would.
func TestConfMoveEqualsEndSessionThenRetry(t *testing.T) {
	h := newConfHarness(t, nil, nil, "a")
	h.join("A", "a@meet.test/r")
	h.join("B", "b@meet.test/r")
	h.accept("B", "")
	const ssrc = 3735928561
	h.accept("A", audioSource(ssrc, "A-a0"))
	h.link.take()
	oldSID := h.c.members["A"].sid

	forgot := false
	h.answer(func(iq *Element) (*Element, error) {
		cm := colibriModify(iq)
		if cm != nil && !forgot && cm.Child(nsColibri2, "endpoint").Attr("id") == "A" && !isAllocation(iq) {
			forgot = true
			se := ColibriError("item-not-found", ReasonUnknownEndpoint, "no such endpoint", "A")
			resp := NewElement(nsClient, "iq", "type", "error", "from", iq.Attr("to"), "id", iq.Attr("id")).Add(se.Element())
			return resp, ParseStanzaError(resp)
		}
		return defaultAnswer(iq)
	})
	transport := `<content name='audio'><transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag='u' pwd='p'/></content>`
	h.jingle("A", "transport-info", oldSID, transport)
	sent := h.link.take()
	if !forgot {
		t.Fatalf("the transport-info reached no bridge:%s", dump(sent))
	}
	terms := sentTo(sent, h.occupant("A"), isAction("session-terminate"))
	if len(terms) != 1 || terms[0].Child(nsJingle, "jingle").Attr("sid") != oldSID || !strings.Contains(terms[0].String(), "moving") {
		t.Errorf("A's session-terminate:%s", dump(sent))
	}
	removes := sentTo(sent, h.occupant("B"), isAction("source-remove"))
	if len(removes) != 1 || !strings.Contains(removes[0].String(), fmt.Sprint(ssrc)) {
		t.Errorf("B's source-remove of A's source:%s", dump(sent))
	}
	if !h.c.sources.Get("A").IsEmpty() {
		t.Errorf("A's sources stayed: %+v", h.c.sources.Get("A"))
	}
	if _, ok := h.c.members["B"].signaled["A"]; ok {
		t.Error("B is still recorded as told about A's sources")
	}
	expires := sentTo(sent, brewJID("a"), func(el *Element) bool {
		ep := colibriModify(el).Child(nsColibri2, "endpoint")
		return ep.Attr("id") == "A" && ep.Attr("expire") == "true"
	})
	if len(expires) != 1 {
		t.Errorf("A's old endpoint was not expired once:%s", dump(sent))
	}
	allocs := sentTo(sent, brewJID("a"), isAllocation)
	if len(allocs) != 1 || allocating(allocs[0])[0] != "A" {
		t.Fatalf("A's new allocation:%s", dump(sent))
	}
	inits := sentTo(sent, h.occupant("A"), isAction("session-initiate"))
	m := h.c.members["A"]
	if len(inits) != 1 || m.sid == oldSID || inits[0].Child(nsJingle, "jingle").Attr("sid") != m.sid {
		t.Fatalf("A's new session-initiate (old sid %s, now %s):%s", oldSID, m.sid, dump(inits))
	}
	if m.state != sessPending || m.bridge != brewJID("a") || m.attempts != 0 || m.failed || len(m.signaled) != 0 {
		t.Errorf("A after the move: state %d bridge %q attempts %d failed %v signaled %v", m.state, m.bridge, m.attempts, m.failed, m.signaled)
	}
	if s := h.c.sessions[brewJID("a")]; s == nil || !s.endpoints["A"] || !s.endpoints["B"] {
		t.Errorf("bridge session endpoints: %+v", s)
	}

	// The new session works as the first did: its sources reach B again.
	h.accept("A", audioSource(ssrc, "A-a0"))
	sent = h.link.take()
	if adds := sentTo(sent, h.occupant("B"), isAction("source-add")); len(adds) != 1 || !strings.Contains(adds[0].String(), fmt.Sprint(ssrc)) {
		t.Errorf("B's source-add after the move:%s", dump(sent))
	}
}

// U11: in a build without a feature that links bridges (cascade.go
// removed), a conference stays on the bridge it started on: a participant
// of another region joins the conference's bridge, not one of its own
// region, since nothing would carry media between the two.
func TestConfOneBridgeWithoutCascading(t *testing.T) {
	h := newConfHarness(t, nil, func(c *Config) { c.Bridges.Strategy = "region" })
	h.f.useFeatures(slices.DeleteFunc(features(), func(ft Feature) bool { return ft.LinksBridges }))
	h.bridge.addBridge(t, "us1", "region", "us")
	h.bridge.addBridge(t, "eu1", "region", "eu")
	region := func(r string) *Element { return NewElement("", "jitsi_participant_region").SetText(r) }
	h.join("A", "a@meet.test/r", region("us"))
	h.join("B", "b@meet.test/r", region("us"))
	h.join("C", "c@meet.test/r", region("eu"))
	for _, n := range []string{"A", "B", "C"} {
		if b := h.c.members[n].bridge; b != brewJID("us1") {
			t.Errorf("%s on %q, want us1 (the conference's only bridge)", n, b)
		}
	}
	if len(h.c.sessions) != 1 {
		t.Errorf("%d bridge sessions, want 1", len(h.c.sessions))
	}
	// A retry that excludes the conference's bridge (an allocation failed
	// there) goes back to it rather than splitting the conference.
	if ch, err := h.f.bridges.Select(h.c.selectRequest("eu", []string{brewJID("us1")})); err != nil || ch.JID != brewJID("us1") {
		t.Errorf("a retry excluding the conference's bridge: %+v %v, want us1", ch, err)
	}
	// Alone, C would have had its own region's bridge.
	h.f.useFeatures(features())
	if !builtWith("cascade") {
		return
	}
	h.join("D", "d@meet.test/r", region("eu"))
	if b := h.c.members["D"].bridge; b != brewJID("eu1") {
		t.Errorf("with cascading D is on %q, want eu1", b)
	}
}
