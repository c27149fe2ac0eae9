package main

// End-to-end conference tests: real Prosody, the fake videobridge and
// simulated lib-jitsi-meet participants, with minifocus in between. They
// assert on what went over the wire (offers, source-add/remove, Colibri2
// requests) and on the state left behind.

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"minifocus/testkit"
)

type stack struct {
	t       *testing.T
	prosody *testkit.Prosody
	focus   *runningMain
	bridges []*testkit.FakeBridge
	ctx     context.Context
}

// startStack runs Prosody, minifocus and n fake bridges, and waits until the
// focus sees every bridge as operational.
func startStack(t *testing.T, nBridges int, tweak ...func(*Config, *testkit.Prosody)) *stack {
	t.Helper()
	return startStackWith(t, nBridges, nil, tweak...)
}

// startStackWith is startStack with a Prosody started with opts (a Jitsi
// layout: testkit.WithJitsiComponents, WithSecureDomain, ...).
func startStackWith(t *testing.T, nBridges int, opts []testkit.Option, tweak ...func(*Config, *testkit.Prosody)) *stack {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	p := testkit.StartProsody(t, opts...)
	cfg := testConfig(p)
	cfg.Conference.SingleParticipantTimeout = dur(2 * time.Second)
	cfg.Conference.InitialTimeout = dur(3 * time.Second)
	for _, f := range tweak {
		f(&cfg, p)
	}
	s := &stack{t: t, prosody: p, ctx: ctx}
	s.focus = startMain(t, cfg)
	for i := 0; i < nBridges; i++ {
		s.addBridge(fmt.Sprintf("jvb%d", i+1), "")
	}
	waitFor(t, 10*time.Second, "focus logged in and bridges operational", func() bool {
		up, _ := s.focus.XMPP.Connected()
		return up && s.focus.Bridges.OperationalCount() == nBridges
	})
	return s
}

func (s *stack) addBridge(nick, region string) *testkit.FakeBridge {
	s.t.Helper()
	b, err := testkit.StartFakeBridge(s.ctx, testkit.FakeBridgeConfig{
		Addr: s.prosody.C2SAddr(), Nick: nick, Region: region, RelayID: nick,
		PresenceInterval: 200 * time.Millisecond,
	})
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { b.Close() })
	s.bridges = append(s.bridges, b)
	return b
}

// join brings in one simulated participant.
func (s *stack) join(room string, mod ...func(*testkit.ParticipantConfig)) *testkit.Participant {
	s.t.Helper()
	cfg := testkit.ParticipantConfig{Addr: s.prosody.C2SAddr(), Room: room}
	if testing.Verbose() {
		cfg.Logf = s.t.Logf
	}
	for _, f := range mod {
		f(&cfg)
	}
	ctx, cancel := context.WithTimeout(s.ctx, 20*time.Second)
	defer cancel()
	p, err := testkit.JoinConference(ctx, cfg)
	if err != nil {
		s.t.Fatalf("join %s: %v", room, err)
	}
	s.t.Cleanup(func() { p.Close() })
	return p
}

func (s *stack) wait(what string, cond func() bool) {
	s.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			s.dumpFocus()
			s.t.Fatalf("timed out after 15s waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// dumpFocus logs what the focus saw (its event log, its bridges and
// conferences), so that a wait that timed out can be understood.
func (s *stack) dumpFocus() {
	if s.focus == nil {
		return
	}
	for _, e := range s.focus.Events.Recent() {
		s.t.Logf("focus event %s %s: %s", e.Time.Format("15:04:05.000"), e.Room, e.Text)
	}
	for _, b := range s.focus.Bridges.Snapshot() {
		s.t.Logf("focus bridge %s operational=%v why_not=%q endpoints=%d", b.JID, b.Operational, b.WhyNot, b.Endpoints)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for _, c := range s.focus.Focus.Snapshots(ctx) {
		s.t.Logf("focus conference %+v", c)
	}
	up, err := s.focus.XMPP.Connected()
	s.t.Logf("focus client connection up=%v err=%v", up, err)
	if s.focus.ServiceXMPP != nil {
		up, err = s.focus.ServiceXMPP.Connected()
		s.t.Logf("focus service connection up=%v err=%v", up, err)
	}
}

// owners returns the sorted owners p knows sources of.
func owners(p *testkit.Participant) []string {
	var out []string
	for o := range p.RemoteSources() {
		out = append(out, o)
	}
	sort.Strings(out)
	return out
}

func nicks(ps ...*testkit.Participant) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Nick())
	}
	return out
}

// knowsExactly: p has been told the sources of exactly these others (plus
// the bridge's feedback sources).
func knowsExactly(p *testkit.Participant, others ...*testkit.Participant) bool {
	want := append(nicks(others...), "jvb")
	sort.Strings(want)
	return slices.Equal(owners(p), want)
}

func (s *stack) bridgeEndpoints() map[string]testkit.EndpointState {
	out := map[string]testkit.EndpointState{}
	for _, b := range s.bridges {
		for _, c := range b.Conferences() {
			for id, ep := range c.Endpoints {
				out[id] = ep
			}
		}
	}
	return out
}

func noViolations(t *testing.T, ps ...*testkit.Participant) {
	t.Helper()
	for _, p := range ps {
		if v := p.Violations(); len(v) > 0 {
			t.Errorf("%s saw things a real client would reject: %v", p.Nick(), v)
		}
	}
}

func TestConferenceThreeParticipantsEndToEnd(t *testing.T) {
	s := startStack(t, 1)
	room := "room1@conference.meet.test"
	p1 := s.join(room)
	p2 := s.join(room)
	// p3 trickles candidates after its accept, as Jigasi does (browsers
	// send none on a bridge session).
	p3 := s.join(room, func(c *testkit.ParticipantConfig) { c.Trickle = true })
	all := []*testkit.Participant{p1, p2, p3}

	s.wait("every session accepted", func() bool { return p1.Accepted() && p2.Accepted() && p3.Accepted() })
	s.wait("everyone knows everyone else's sources", func() bool {
		return knowsExactly(p1, p2, p3) && knowsExactly(p2, p1, p3) && knowsExactly(p3, p1, p2)
	})
	noViolations(t, all...)

	// The offers came from the focus occupant, with the bridge's transport.
	for _, p := range all {
		offers := p.Offers()
		if len(offers) != 1 {
			t.Fatalf("%s got %d offers, want 1", p.Nick(), len(offers))
		}
		j := offers[0].Child("", "jingle")
		if j.Attr("initiator") != "focus@auth.meet.test/focus" || offers[0].Attr("from") != room+"/focus" {
			t.Errorf("offer addressing: from=%s initiator=%s", offers[0].Attr("from"), j.Attr("initiator"))
		}
		if bs := j.Child(nsFocus, "bridge-session"); bs == nil || bs.Attr("id") == "" {
			t.Errorf("%s: offer without bridge-session", p.Nick())
		}
	}

	// The bridge received each endpoint's transport and complete sources.
	b := s.bridges[0]
	s.wait("bridge has the transports and sources", func() bool {
		eps := s.bridgeEndpoints()
		for _, p := range all {
			ep, ok := eps[p.Nick()]
			if !ok || ep.Transport == nil || ep.Sources == nil || len(ep.Sources.All("", "media-source")) < 2 {
				return false
			}
		}
		return len(eps) == 3
	})
	s.wait("p3's trickled candidate reached the bridge", func() bool {
		tr := s.bridgeEndpoints()[p3.Nick()].Transport
		return tr != nil && len(tr.All("", "candidate")) > 0
	})
	creates := 0
	for _, r := range b.Requests() {
		if r.Attr("create") == "true" {
			creates++
			if r.Attr("name") != room || r.Attr("meeting-id") == "" {
				t.Errorf("create request without name/meeting-id: %s", r)
			}
		}
	}
	if creates != 1 {
		t.Errorf("%d conference creates on the bridge, want 1", creates)
	}

	// The first participant was made moderator.
	s.wait("p1 moderator", func() bool { return p1.Affiliation() == "owner" })
	if p2.Affiliation() == "owner" || p3.Affiliation() == "owner" {
		t.Error("more than one owner granted")
	}
	// The focus publishes its properties.
	fp := p1.FocusPresence()
	props := map[string]string{}
	for _, pr := range fp.Child(nsFocus, "conference-properties").All(nsFocus, "property") {
		props[pr.Attr("key")] = pr.Attr("value")
	}
	if props["support-terminate-restart"] != "true" || props["bridge-count"] != "1" {
		t.Errorf("focus presence lacks conference-properties: %s", fp)
	}

	// A screenshare from p2 reaches the others as a desktop source.
	mark1, mark3 := p1.Mark(), p3.Mark()
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	if err := p2.AddScreenshare(ctx); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*testkit.Participant{p1, p3} {
		mark := mark1
		if p == p3 {
			mark = mark3
		}
		ev, err := p.WaitEvent(ctx, mark, func(e testkit.Event) bool {
			return e.Kind == testkit.EventJingle && e.Action == "source-add" && slices.Contains(e.Owners, p2.Nick())
		})
		if err != nil {
			t.Fatalf("%s did not get p2's screenshare: %v", p.Nick(), err)
		}
		if !strings.Contains(ev.Stanza.String(), `"v":"d"`) && !strings.Contains(ev.Stanza.String(), `videoType="desktop"`) {
			t.Errorf("screenshare not marked desktop: %s", ev.Stanza)
		}
	}
	s.wait("bridge has p2's screenshare", func() bool {
		ep := s.bridgeEndpoints()[p2.Nick()]
		return ep.Sources != nil && len(ep.Sources.All("", "media-source")) == 3
	})

	// p3 leaves: its endpoint is expired on the bridge; no source-remove
	// goes to the others (clients drop a departed occupant's sources).
	removes := len(p1.Received("source-remove"))
	if err := p3.Leave(); err != nil {
		t.Fatal(err)
	}
	s.wait("p3's endpoint expired", func() bool { _, ok := s.bridgeEndpoints()[p3.Nick()]; return !ok })
	time.Sleep(300 * time.Millisecond)
	if len(p1.Received("source-remove")) != removes {
		t.Error("a source-remove was sent for an occupant that left the room")
	}

	// The moderator leaves: moderator goes to the next participant.
	if err := p1.Leave(); err != nil {
		t.Fatal(err)
	}
	s.wait("p2 moderator after p1 left", func() bool { return p2.Affiliation() == "owner" })

	// Last one out: the bridge conference is expired, the focus leaves.
	if err := p2.Leave(); err != nil {
		t.Fatal(err)
	}
	s.wait("conference gone everywhere", func() bool {
		return len(b.Conferences()) == 0 && s.focus.Focus.lookup(room) == nil
	})
}

func TestConferenceHTTPRequestPath(t *testing.T) {
	s := startStack(t, 1)
	room := "httproom@conference.meet.test"
	url := "http://" + s.focus.HTTP.Addr()
	p1 := s.join(room, func(c *testkit.ParticipantConfig) { c.UseHTTP = url })
	p2 := s.join(room, func(c *testkit.ParticipantConfig) { c.UseHTTP = url })
	s.wait("sessions", func() bool { return p1.Accepted() && p2.Accepted() && knowsExactly(p1, p2) && knowsExactly(p2, p1) })
	noViolations(t, p1, p2)
}

// Bad sources are refused with the reason, and change nothing.
func TestConferenceInvalidSourcesRejected(t *testing.T) {
	s := startStack(t, 1)
	room := "strict@conference.meet.test"
	p1 := s.join(room)
	p2 := s.join(room)
	s.wait("sessions", func() bool { return p1.Accepted() && p2.Accepted() && knowsExactly(p1, p2) && knowsExactly(p2, p1) })
	// The bridge update with p1's sources travels on another connection than
	// the source-add to p2: wait for it too before taking the reference.
	s.wait("bridge has p1's sources", func() bool {
		ep := s.bridgeEndpoints()[p1.Nick()]
		return ep.Sources != nil && len(ep.Sources.All("", "media-source")) > 0
	})
	taken := p2.LocalSources()[0].SSRC
	cases := []struct {
		name  string
		ssrcs []uint32
		group bool
		want  string
	}{
		{"ssrc zero", []uint32{0}, false, "Invalid SSRC: 0."},
		{"someone else's ssrc", []uint32{taken}, false, fmt.Sprintf("SSRC is already used: %d.", taken)},
		{"own ssrc again", []uint32{p1.LocalSources()[0].SSRC}, false, "SSRC is already used"},
		{"fid with three", []uint32{7001, 7002, 7003}, true, "Invalid FID group"},
	}
	before := len(p2.Received("source-add"))
	bridgeBefore := s.bridgeEndpoints()[p1.Nick()].Sources.String()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := p1.SendJingle(s.ctx, "source-add", func(j *testkit.Elem) {
				desc := testkit.NewElem(nsRTP, "description", "media", "video")
				for _, ssrc := range tc.ssrcs {
					desc.Add(testkit.NewElem(nsSSMA, "source", "ssrc", fmt.Sprint(ssrc), "name", p1.Nick()+"-v9").Add(
						testkit.NewElem(nsRTP, "parameter", "name", "msid", "value", "s9 t9")))
				}
				if tc.group {
					g := testkit.NewElem(nsSSMA, "ssrc-group", "semantics", "FID")
					for _, ssrc := range tc.ssrcs {
						g.Add(testkit.NewElem(nsSSMA, "source", "ssrc", fmt.Sprint(ssrc)))
					}
					desc.Add(g)
				}
				j.Add(testkit.NewElem(nsJingle, "content", "name", "video").Add(desc))
			})
			if err == nil || resp.Attr("type") != "error" || !strings.Contains(resp.String(), "bad-request") || !strings.Contains(resp.String(), tc.want) {
				t.Fatalf("got %v %v, want bad-request %q", resp, err, tc.want)
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	if len(p2.Received("source-add")) != before {
		t.Error("a refused source reached another participant")
	}
	if got := s.bridgeEndpoints()[p1.Nick()].Sources.String(); got != bridgeBefore {
		t.Errorf("the bridge's sources changed after refused requests:\n%s\n%s", bridgeBefore, got)
	}
	// Removing someone else's source is refused too.
	resp, err := p1.SendJingle(s.ctx, "source-remove", func(j *testkit.Elem) {
		j.Add(testkit.NewElem(nsJingle, "content", "name", "video").Add(
			testkit.NewElem(nsRTP, "description", "media", "video").Add(testkit.NewElem(nsSSMA, "source", "ssrc", fmt.Sprint(taken)))))
	})
	if err == nil || !strings.Contains(resp.String(), "bad-request") {
		t.Errorf("removing another participant's source: %v %v", resp, err)
	}
	if !knowsExactly(p1, p2) || !slices.Contains(p1.RemoteSources()[p2.Nick()], taken) {
		t.Error("p2's sources were disturbed")
	}
}

// Jingle for a session that is not the sender's is refused.
func TestConferenceForeignOrUnknownSession(t *testing.T) {
	s := startStack(t, 1)
	room := "sids@conference.meet.test"
	p1 := s.join(room)
	p2 := s.join(room)
	s.wait("sessions", func() bool { return p1.Accepted() && p2.Accepted() })
	// Unknown sid.
	iq := testkit.NewElem("jabber:client", "iq", "type", "set", "to", room+"/focus").Add(
		testkit.NewElem(nsJingle, "jingle", "action", "source-add", "sid", "nope"))
	resp, err := p1.Client().SendIQ(s.ctx, iq)
	if err == nil || !strings.Contains(resp.String(), "bad-request") {
		t.Errorf("unknown sid: %v %v", resp, err)
	}
	// p2's sid, sent by p1: a terminate for someone else's session.
	iq = testkit.NewElem("jabber:client", "iq", "type", "set", "to", room+"/focus").Add(
		testkit.NewElem(nsJingle, "jingle", "action", "session-terminate", "sid", p2.SID()))
	resp, err = p1.Client().SendIQ(s.ctx, iq)
	if err == nil || !strings.Contains(resp.String(), "item-not-found") {
		t.Errorf("foreign sid: %v %v", resp, err)
	}
	time.Sleep(200 * time.Millisecond)
	if !p2.Accepted() || len(p2.Received("session-terminate")) != 0 {
		t.Error("p2's session was disturbed by p1")
	}
	// Someone outside the room cannot reach the conference.
	outsider, err := testkit.Dial(s.ctx, testkit.DialConfig{Addr: s.prosody.C2SAddr(), Domain: "meet.test"})
	if err != nil {
		t.Fatal(err)
	}
	defer outsider.Close()
	iq = testkit.NewElem("jabber:client", "iq", "type", "set", "to", "focus@auth.meet.test/focus").Add(
		testkit.NewElem(nsJingle, "jingle", "action", "session-terminate", "sid", p2.SID()))
	resp, err = outsider.SendIQ(s.ctx, iq)
	if err == nil || resp.Attr("type") != "error" {
		t.Errorf("outsider's jingle: %v %v", resp, err)
	}
	if !p2.Accepted() {
		t.Error("an outsider ended p2's session")
	}
}

// A participant that leaves before accepting leaks no bridge endpoint.
func TestConferenceLeaveBeforeAccept(t *testing.T) {
	s := startStack(t, 1)
	room := "early@conference.meet.test"
	p1 := s.join(room)
	p2 := s.join(room, func(c *testkit.ParticipantConfig) { c.ManualAccept = true })
	s.wait("p2 offered", func() bool { return len(p2.Offers()) == 1 })
	if _, ok := s.bridgeEndpoints()[p2.Nick()]; !ok {
		t.Fatal("p2 has no endpoint on the bridge")
	}
	if err := p2.Leave(); err != nil {
		t.Fatal(err)
	}
	s.wait("p2's endpoint expired", func() bool { _, ok := s.bridgeEndpoints()[p2.Nick()]; return !ok })
	if p1.Accepted() && slices.Contains(owners(p1), p2.Nick()) {
		t.Error("p1 was told about sources of a participant that never accepted")
	}
}

// Two conferences in parallel never see each other's sources.
func TestConferencesAreIsolated(t *testing.T) {
	s := startStack(t, 1)
	a1 := s.join("alpha@conference.meet.test")
	a2 := s.join("alpha@conference.meet.test")
	b1 := s.join("beta@conference.meet.test")
	b2 := s.join("beta@conference.meet.test")
	s.wait("both conferences running", func() bool {
		return knowsExactly(a1, a2) && knowsExactly(a2, a1) && knowsExactly(b1, b2) && knowsExactly(b2, b1)
	})
	time.Sleep(300 * time.Millisecond)
	for _, p := range []*testkit.Participant{a1, a2, b1, b2} {
		if len(owners(p)) != 2 {
			t.Errorf("%s knows %v", p.Nick(), owners(p))
		}
	}
	if n := len(s.bridges[0].Conferences()); n != 2 {
		t.Errorf("bridge has %d conferences, want 2", n)
	}
}

// A restart request (ICE failed) gets a fresh session; the others see the
// old sources removed and the new ones added.
func TestConferenceRestartRequest(t *testing.T) {
	// The minimum interval is long enough that the second request below is
	// within it however slow the machine is.
	s := startStack(t, 1, func(c *Config, _ *testkit.Prosody) {
		c.Conference.RestartMinInterval = dur(time.Minute)
		// One accepted restart among two endpoints is "failing ICE" here.
		c.Bridges.ICEFailure = ICEFailureConfig{Enabled: true, Interval: dur(time.Minute), MinEndpoints: 0, Threshold: 0.4, Timeout: dur(time.Minute)}
	})
	room := "restart@conference.meet.test"
	p1 := s.join(room)
	p2 := s.join(room)
	s.wait("sessions", func() bool { return p1.Accepted() && p2.Accepted() && knowsExactly(p2, p1) })
	oldSID := p1.SID()
	mark := p2.Mark()
	if err := p1.RequestRestart(s.ctx); err != nil {
		t.Fatal(err)
	}
	s.wait("a new session for p1", func() bool { return p1.SID() != oldSID && p1.Accepted() && len(p1.Offers()) == 2 })
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	if _, err := p2.WaitEvent(ctx, mark, func(e testkit.Event) bool {
		return e.Action == "source-remove" && slices.Contains(e.Owners, p1.Nick())
	}); err != nil {
		t.Errorf("p2 got no source-remove for p1: %v", err)
	}
	s.wait("p2 knows p1 again", func() bool { return knowsExactly(p2, p1) })
	// A second request right away is rate limited (minimum interval): it is
	// refused, and the session it asked to end goes on.
	mark = p2.Mark()
	allocs := s.allocations(p1.Nick())
	err := p1.RequestRestart(s.ctx)
	if err == nil || !strings.Contains(err.Error(), "resource-constraint") {
		t.Errorf("second restart within the minimum interval: %v, want resource-constraint", err)
	}
	s.barrier(p2, 740000)
	if _, ok := s.bridgeEndpoints()[p1.Nick()]; !ok || s.allocations(p1.Nick()) != allocs || len(p1.Offers()) != 2 {
		t.Errorf("the refused restart changed p1's session: endpoint kept %v, allocations %d→%d, offers %d",
			ok, allocs, s.allocations(p1.Nick()), len(p1.Offers()))
	}
	for _, e := range p2.Events()[mark:] {
		if e.Kind == testkit.EventJingle && e.Action == "source-remove" {
			t.Errorf("the refused restart removed sources: %v", e.Owners)
		}
	}
	if in, _ := s.focus.Bridges.Info(s.bridges[0].JID()); builtWith("ice-failure") && in.HeldOverloadedUntil.IsZero() {
		t.Errorf("the accepted restart did not count against the bridge: %+v", in)
	}
	noViolations(t, p1, p2)
}

// A lone participant's session ends after the single-participant timeout;
// it is invited again when someone joins.
func TestConferenceSingleParticipantTimeout(t *testing.T) {
	s := startStack(t, 1)
	room := "lonely@conference.meet.test"
	p1 := s.join(room)
	p2 := s.join(room)
	s.wait("sessions", func() bool { return p1.Accepted() && p2.Accepted() })
	if err := p2.Leave(); err != nil {
		t.Fatal(err)
	}
	s.wait("p1's session terminated as expired", func() bool {
		for _, st := range p1.Received("session-terminate") {
			if strings.Contains(st.String(), "<expired") {
				return true
			}
		}
		return false
	})
	s.wait("bridge conference expired", func() bool { return len(s.bridges[0].Conferences()) == 0 })
	p3 := s.join(room)
	s.wait("p1 re-invited with p3", func() bool { return len(p1.Offers()) == 2 && p1.Accepted() && p3.Accepted() && knowsExactly(p1, p3) })
}

// Moderators may mute others; nobody may unmute someone else; the muted
// participant gets a mute IQ naming the moderator.
func TestConferenceMute(t *testing.T) {
	s := startStack(t, 1)
	room := "mute@conference.meet.test"
	p1 := s.join(room)
	p2 := s.join(room, func(c *testkit.ParticipantConfig) { c.AckMute = true })
	s.wait("sessions and moderator", func() bool { return p1.Accepted() && p2.Accepted() && p1.Affiliation() == "owner" })
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	if err := p1.MuteParticipant(ctx, p2.Nick(), "audio"); err != nil {
		t.Fatalf("moderator mute: %v", err)
	}
	s.wait("p2 got the mute", func() bool { return len(p2.Mutes()) == 1 })
	m := p2.Mutes()[0]
	mute := m.Child("http://jitsi.org/jitmeet/audio", "mute")
	if mute == nil || mute.Text != "true" || mute.Attr("actor") != p1.OccupantJID() || m.Attr("from") != room+"/focus" {
		t.Errorf("mute IQ: %s", m)
	}
	if err := p2.MuteParticipant(ctx, p1.Nick(), "audio"); err == nil || !strings.Contains(err.Error(), "not-allowed") {
		t.Errorf("non-moderator muting the moderator: %v, want not-allowed", err)
	}
	resp, err := p1.Client().SendIQ(ctx, testkit.NewElem("jabber:client", "iq", "type", "set", "to", room+"/focus").Add(
		testkit.NewElem("http://jitsi.org/jitmeet/audio", "mute", "jid", p2.OccupantJID()).SetText("false")))
	if err == nil || !strings.Contains(resp.String(), "not-allowed") {
		t.Errorf("unmuting someone else: %v %v, want not-allowed", resp, err)
	}
	resp, err = p1.Client().SendIQ(ctx, testkit.NewElem("jabber:client", "iq", "type", "set", "to", room+"/focus").Add(
		testkit.NewElem("http://jitsi.org/jitmeet/audio", "mute", "jid", "someone@else.test/x").SetText("true")))
	if err == nil || !strings.Contains(resp.String(), "item-not-found") {
		t.Errorf("muting a JID outside the room: %v %v", resp, err)
	}
	if len(p1.Mutes()) != 0 || len(p2.Mutes()) != 1 {
		t.Errorf("refused mutes reached someone: p1 %d, p2 %d", len(p1.Mutes()), len(p2.Mutes()))
	}
}

// A flood of source-adds is answered, bounded by the per-participant limit,
// and the others only ever learn the accepted ones.
func TestConferenceSourceAddFlood(t *testing.T) {
	s := startStack(t, 1)
	room := "flood@conference.meet.test"
	p1 := s.join(room)
	p2 := s.join(room)
	s.wait("sessions", func() bool { return p1.Accepted() && p2.Accepted() && knowsExactly(p2, p1) })
	accepted, refused := 0, 0
	for i := 0; i < 60; i++ {
		ssrc := uint32(900000 + i)
		resp, err := p1.SendJingle(s.ctx, "source-add", func(j *testkit.Elem) {
			j.Add(testkit.NewElem(nsJingle, "content", "name", "audio").Add(
				testkit.NewElem(nsRTP, "description", "media", "audio").Add(
					testkit.NewElem(nsSSMA, "source", "ssrc", fmt.Sprint(ssrc), "name", fmt.Sprintf("%s-a%d", p1.Nick(), i+1)).Add(
						testkit.NewElem(nsRTP, "parameter", "name", "msid", "value", fmt.Sprintf("s%d t%d", i, i))))))
		})
		switch {
		case err == nil && resp.Attr("type") == "result":
			accepted++
		case resp != nil && strings.Contains(resp.String(), "SSRC limit (20) exceeded."):
			refused++
		default:
			t.Fatalf("unexpected answer %v %v", resp, err)
		}
	}
	own := len(p1.LocalSources()) + 1 // audio + video with its RTX partner = 3 SSRCs
	if accepted != 20-own || refused != 60-accepted {
		t.Errorf("accepted %d, refused %d; want %d accepted", accepted, refused, 20-own)
	}
	s.wait("p2 knows exactly the accepted sources", func() bool { return len(p2.RemoteSources()[p1.Nick()]) == 20 })
}

// With the region strategy each participant gets a bridge in its own region
// and the regions are cascaded.
func TestConferenceMultiRegion(t *testing.T) {
	s := startStack(t, 0, func(c *Config, _ *testkit.Prosody) { c.Bridges.Strategy = "region" })
	s.addBridge("eu1", "eu")
	s.addBridge("us1", "us")
	s.wait("bridges", func() bool { return s.focus.Bridges.OperationalCount() == 2 })
	room := "world@conference.meet.test"
	pe := s.join(room, func(c *testkit.ParticipantConfig) { c.Region = "eu" })
	pu := s.join(room, func(c *testkit.ParticipantConfig) { c.Region = "us" })
	s.wait("both in, sources exchanged", func() bool {
		return pe.Accepted() && pu.Accepted() && knowsExactly(pe, pu) && knowsExactly(pu, pe)
	})
	if s.bridgeOf(pe) != "eu1" || s.bridgeOf(pu) != "us1" {
		t.Errorf("eu participant on %s, us participant on %s", s.bridgeOf(pe), s.bridgeOf(pu))
	}
	region := func(p *testkit.Participant) string {
		return p.Offers()[0].Child("", "jingle").Child(nsFocus, "bridge-session").Attr("region")
	}
	if region(pe) != "eu" || region(pu) != "us" {
		t.Errorf("bridge-session regions %q/%q", region(pe), region(pu))
	}
	s.wait("relays both ways", func() bool {
		eu, us := s.bridgeByNick("eu1"), s.bridgeByNick("us1")
		for _, c := range eu.Conferences() {
			if _, ok := c.Relays["us1"]; !ok {
				return false
			}
		}
		for _, c := range us.Conferences() {
			if _, ok := c.Relays["eu1"]; !ok {
				return false
			}
		}
		return len(eu.Conferences()) == 1 && len(us.Conferences()) == 1
	})
}

// startAudioMuted=1 from the creating request: the second and later
// participants are told to start muted, the first is not.
func TestConferenceStartMuted(t *testing.T) {
	s := startStack(t, 1)
	room := "quietstart@conference.meet.test"
	props := func(c *testkit.ParticipantConfig) { c.Properties = map[string]string{"startAudioMuted": "1"} }
	p1 := s.join(room, props)
	p2 := s.join(room)
	p3 := s.join(room)
	s.wait("sessions", func() bool { return p1.Accepted() && p2.Accepted() && p3.Accepted() })
	startMuted := func(p *testkit.Participant) *testkit.Elem {
		return p.Offers()[0].Child("", "jingle").Child(nsStartMuted, "startmuted")
	}
	if sm := startMuted(p1); sm != nil {
		t.Errorf("first participant told to start muted: %s", sm)
	}
	for _, p := range []*testkit.Participant{p2, p3} {
		sm := startMuted(p)
		if sm == nil || sm.Attr("audio") != "true" || sm.Attr("video") != "false" {
			t.Errorf("%s: startmuted = %v, want audio=true video=false", p.Nick(), sm)
		}
	}
}

// The start-muted count follows the order people were invited in, not the
// order bridges answer: the first participant's slow bridge does not make it
// the "second" one.
func TestConferenceStartMutedFollowsInviteOrder(t *testing.T) {
	s := startStack(t, 0, func(c *Config, _ *testkit.Prosody) { c.Bridges.Strategy = "region" })
	slow := s.addBridge("eu1", "eu")
	s.addBridge("us1", "us")
	s.wait("bridges", func() bool { return s.focus.Bridges.OperationalCount() == 2 })
	slow.SetColibriDelay(700 * time.Millisecond)
	room := "slowfirst@conference.meet.test"
	p1 := s.join(room, func(c *testkit.ParticipantConfig) {
		c.Region = "eu"
		c.Properties = map[string]string{"startAudioMuted": "1"}
	})
	p2 := s.join(room, func(c *testkit.ParticipantConfig) { c.Region = "us" })
	s.wait("sessions", func() bool { return p1.Accepted() && p2.Accepted() })
	audio := func(p *testkit.Participant) string {
		sm := p.Offers()[0].Child("", "jingle").Child(nsStartMuted, "startmuted")
		if sm == nil {
			return "absent"
		}
		return sm.Attr("audio")
	}
	if audio(p1) != "absent" || audio(p2) != "true" {
		t.Errorf("startmuted audio: first (slow bridge) %s, second %s; want absent, true", audio(p1), audio(p2))
	}
}

// With a source-signaling delay for the conference's size, the sources of
// two newcomers reach the others in one source-add, not one each.
func TestConferenceSourceSignalingDelayBatches(t *testing.T) {
	s := startStack(t, 1, func(c *Config, _ *testkit.Prosody) {
		c.Conference.SourceSignalingDelays = SignalingDelays{{Size: 3, Delay: 6 * time.Second}}
	})
	room := "batched@conference.meet.test"
	p1 := s.join(room)
	p2 := s.join(room)
	s.wait("two in, unbatched", func() bool { return knowsExactly(p1, p2) && knowsExactly(p2, p1) })
	before := map[*testkit.Participant]int{p1: len(p1.Received("source-add")), p2: len(p2.Received("source-add"))}
	p3 := s.join(room)
	p4 := s.join(room)
	s.wait("everyone knows everyone", func() bool {
		return knowsExactly(p1, p2, p3, p4) && knowsExactly(p2, p1, p3, p4) && knowsExactly(p3, p1, p2, p4) && knowsExactly(p4, p1, p2, p3)
	})
	for _, p := range []*testkit.Participant{p1, p2} {
		adds := p.Received("source-add")[before[p]:]
		if len(adds) != 1 {
			t.Errorf("%s got %d source-adds for two newcomers, want 1", p.Nick(), len(adds))
			continue
		}
		if x := adds[0].String(); !strings.Contains(x, p3.Nick()) || !strings.Contains(x, p4.Nick()) {
			t.Errorf("%s: the batched source-add misses a newcomer: %s", p.Nick(), x)
		}
	}
	noViolations(t, p1, p2, p3, p4)
}

// The count also follows the join order when the first participant's
// disco#info answer is slow (invitations wait for it).
func TestConferenceStartMutedSlowDiscovery(t *testing.T) {
	s := startStack(t, 1)
	room := "slowdisco@conference.meet.test"
	p1 := s.join(room, func(c *testkit.ParticipantConfig) {
		c.Properties = map[string]string{"startAudioMuted": "1"}
		c.DiscoDelay = time.Second
	})
	p2 := s.join(room)
	p3 := s.join(room)
	s.wait("sessions", func() bool { return p1.Accepted() && p2.Accepted() && p3.Accepted() })
	for _, p := range []*testkit.Participant{p1, p2, p3} {
		sm := p.Offers()[0].Child("", "jingle").Child(nsStartMuted, "startmuted")
		first := p == p1
		if first && sm != nil || !first && (sm == nil || sm.Attr("audio") != "true") {
			t.Errorf("%s (first=%v): startmuted %v", p.Nick(), first, sm)
		}
	}
}

// An in-place ICE restart gives the client fresh bridge credentials in a
// transport-info tagged with the ICE generation; the session stays.
func TestConferenceInPlaceICERestart(t *testing.T) {
	// A minimum interval the second restart below is surely within.
	s := startStack(t, 1, func(c *Config, _ *testkit.Prosody) { c.Conference.RestartMinInterval = dur(time.Minute) })
	room := "icerestart@conference.meet.test"
	p1 := s.join(room)
	p2 := s.join(room)
	s.wait("sessions", func() bool { return p1.Accepted() && p2.Accepted() })
	offer := p1.Offers()[0].Child("", "jingle")
	bsid := offer.Child(nsFocus, "bridge-session").Attr("id")
	oldUfrag := offer.Child("", "content").Child(nsICEUDP, "transport").Attr("ufrag")
	restart := func(id string) (*testkit.Elem, error) {
		return p1.SendJingle(s.ctx, "session-info", func(j *testkit.Elem) {
			j.Add(testkit.NewElem(nsFocus, "bridge-session", "id", id, "ice-restart", "true"))
		})
	}
	if resp, err := restart("not-the-session"); err == nil || !strings.Contains(resp.String(), "item-not-found") {
		t.Errorf("stale bridge-session id: %v %v", resp, err)
	}
	if resp, err := restart(bsid); err != nil {
		t.Fatalf("ICE restart: %v %v", resp, err)
	}
	s.wait("transport-info with the new credentials", func() bool { return len(p1.Received("transport-info")) == 1 })
	tr := p1.Received("transport-info")[0].Child("", "jingle").Child("", "content").Child(nsICEUDP, "transport")
	if tr.Attr("ice-generation") != "1" || tr.Attr("ufrag") == "" || tr.Attr("ufrag") == oldUfrag || tr.Child(nsDTLS, "fingerprint") == nil {
		t.Errorf("restart answer: %s", tr)
	}
	if len(p1.Offers()) != 1 || len(p1.Received("session-terminate")) != 0 {
		t.Error("an in-place restart replaced the session")
	}
	if resp, err := restart(bsid); err == nil || !strings.Contains(resp.String(), "resource-constraint") {
		t.Errorf("second restart within the minimum interval: %v %v, want resource-constraint", resp, err)
	}
}
