package testkit

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

const fbBrewery = "jvbbrewery@" + InternalMUCDomain

// fbPeer is a test client that records every stanza it is handed.
type fbPeer struct {
	t   *testing.T
	c   *Client
	mu  sync.Mutex
	got []*Elem
	sig chan struct{}
}

func fbDialPeer(t *testing.T, p *Prosody, user, pass, resource string) *fbPeer {
	t.Helper()
	o := &fbPeer{t: t, sig: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, DialConfig{Addr: p.C2SAddr(), Domain: AuthDomain, User: user, Password: pass,
		Resource: resource, Handler: o.record})
	if err != nil {
		t.Fatal(err)
	}
	o.c = c
	t.Cleanup(func() { c.Close() })
	return o
}

func (o *fbPeer) record(e *Elem) {
	o.mu.Lock()
	o.got = append(o.got, e)
	close(o.sig)
	o.sig = make(chan struct{})
	o.mu.Unlock()
}

// mark returns a cursor: wait(mark, …) looks only at stanzas received later.
func (o *fbPeer) mark() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.got)
}

func (o *fbPeer) wait(from int, what string, match func(*Elem) bool) *Elem {
	o.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		o.mu.Lock()
		got, sig := o.got[from:], o.sig
		o.mu.Unlock()
		for _, e := range got {
			if match(e) {
				return e
			}
		}
		from += len(got)
		select {
		case <-sig:
		case <-deadline:
			o.t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// joinBrewery joins as nick and waits for the self-presence.
func (o *fbPeer) joinBrewery(nick string) {
	o.t.Helper()
	m := o.mark()
	if err := o.c.Send(NewElem("", "presence", "to", fbBrewery+"/"+nick).Add(NewElem(nsMUC, "x"))); err != nil {
		o.t.Fatal(err)
	}
	o.wait(m, "self-presence in the brewery", func(e *Elem) bool {
		return e.Local == "presence" && e.Attr("from") == fbBrewery+"/"+nick && fbHasStatus(e, "110")
	})
}

// iq sends an IQ with a parsed payload and returns the response.
func (o *fbPeer) iq(to, typ, payload string) (*Elem, *StanzaError) {
	o.t.Helper()
	pl, err := ParseElem(payload)
	if err != nil {
		o.t.Fatalf("bad payload %s: %v", payload, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := o.c.SendIQ(ctx, NewElem("", "iq", "type", typ, "to", to).Add(pl))
	var se *StanzaError
	if errors.As(err, &se) {
		return resp, se
	}
	if err != nil {
		o.t.Fatalf("iq to %s: %v", to, err)
	}
	return resp, nil
}

func fbStats(p *Elem) map[string]string {
	s := p.Child(nsColibri, "stats")
	if s == nil {
		return nil
	}
	m := map[string]string{}
	for _, st := range s.All("", "stat") {
		m[st.Attr("name")] = st.Attr("value")
	}
	return m
}

func fbStartBridge(t *testing.T, p *Prosody, cfg FakeBridgeConfig) *FakeBridge {
	t.Helper()
	cfg.Addr = p.C2SAddr()
	if cfg.PresenceInterval == 0 {
		cfg.PresenceInterval = 200 * time.Millisecond
	}
	cfg.Logf = t.Logf
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	b, err := StartFakeBridge(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

func TestFakeBridge(t *testing.T) {
	p := StartProsody(t)
	focus := fbDialPeer(t, p, FocusUser, FocusPassword, "focus")
	focus.joinBrewery("focus")

	t.Run("Presence", func(t *testing.T) { fbTestPresence(t, p, focus) })
	t.Run("Knobs", func(t *testing.T) { fbTestKnobs(t, p, focus) })
	t.Run("RoundTrips", func(t *testing.T) { fbTestRoundTrips(t, p, focus) })
	t.Run("Pipelined", func(t *testing.T) { fbTestPipelined(t, p, focus) })
	t.Run("Errors", func(t *testing.T) { fbTestErrors(t, p, focus) })
	t.Run("FaultInjection", func(t *testing.T) { fbTestFaults(t, p, focus) })
	t.Run("Relays", func(t *testing.T) { fbTestRelays(t, p, focus) })
	t.Run("Health", func(t *testing.T) { fbTestHealth(t, p, focus) })
	t.Run("Forbidden", func(t *testing.T) { fbTestForbidden(t, p, focus) })
	t.Run("LeaveRejoin", func(t *testing.T) { fbTestLeaveRejoin(t, p, focus) })
}

func fbTestPresence(t *testing.T, p *Prosody, focus *fbPeer) {
	m := focus.mark()
	b := fbStartBridge(t, p, FakeBridgeConfig{Nick: "jvb-presence", Region: "r1", RelayID: "relay-1", Stress: 0.1})
	if b.JID() != fbBrewery+"/jvb-presence" {
		t.Fatalf("JID %q", b.JID())
	}
	from := func(e *Elem) bool { return e.Local == "presence" && e.Attr("from") == b.JID() }
	first := focus.wait(m, "the bridge's join presence", from)
	if first.Child(nsColibri, "stats") != nil {
		t.Errorf("the join presence carries stats (JVB's does not): %s", first)
	}
	withStats := focus.wait(m, "a stats presence", func(e *Elem) bool { return from(e) && fbStats(e) != nil })
	st := fbStats(withStats)
	want := map[string]string{
		"stress_level": "0.1", "average_participant_stress": "0.01", "drain": "false",
		"graceful_shutdown": "false", "shutting_down": "false", "healthy": "true", "version": "2.3.0-fake",
		"conferences": "0", "participants": "0", "region": "r1", "relay_id": "relay-1",
	}
	for k, v := range want {
		if st[k] != v {
			t.Errorf("stat %s = %q, want %q", k, st[k], v)
		}
	}
	if !regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$`).MatchString(st["current_timestamp"]) {
		t.Errorf("current_timestamp %q", st["current_timestamp"])
	}
	// Periodic: two more stats presences within a second.
	m2 := focus.mark()
	focus.wait(m2, "a periodic presence", func(e *Elem) bool { return from(e) && fbStats(e) != nil })
	m3 := focus.mark()
	focus.wait(m3, "another periodic presence", func(e *Elem) bool { return from(e) && fbStats(e) != nil })

	// A peer joining later gets the occupant's current presence, stats included.
	late := fbDialPeer(t, p, FocusUser, FocusPassword, "late")
	m = late.mark()
	late.joinBrewery("late")
	late.wait(m, "the bridge's presence on join", func(e *Elem) bool { return from(e) && fbStats(e)["relay_id"] == "relay-1" })

	// Without region/relay id those stats are absent.
	b2 := fbStartBridge(t, p, FakeBridgeConfig{Nick: "jvb-plain"})
	m = focus.mark()
	pr := focus.wait(m, "stats of jvb-plain", func(e *Elem) bool { return e.Attr("from") == b2.JID() && fbStats(e) != nil })
	if s := fbStats(pr); s["region"] != "" || s["relay_id"] != "" || s["stress_level"] != "0.0" {
		t.Errorf("plain bridge stats: %v", s)
	}
}

func fbTestKnobs(t *testing.T, p *Prosody, focus *fbPeer) {
	b := fbStartBridge(t, p, FakeBridgeConfig{Nick: "jvb-knobs", Region: "r1"})
	from := func(e *Elem) bool { return e.Local == "presence" && e.Attr("from") == b.JID() }
	b.SetStress(0.85)
	b.SetDrain(true)
	b.SetGracefulShutdown(true)
	b.SetShuttingDown(true)
	b.SetVersion("2.4.0-other")
	b.SetRegion("r2")
	b.SetHealth(HealthError)
	b.SetStat("release", "77")
	m := focus.mark()
	pr := focus.wait(m, "knobs in presence", func(e *Elem) bool { return from(e) && fbStats(e)["stress_level"] == "0.85" })
	want := map[string]string{"drain": "true", "graceful_shutdown": "true", "shutting_down": "true",
		"version": "2.4.0-other", "region": "r2", "healthy": "false", "release": "77"}
	for k, v := range want {
		if got := fbStats(pr)[k]; got != v {
			t.Errorf("stat %s = %q, want %q", k, got, v)
		}
	}
	// Java's number format, and a missing drain.
	b.SetStress(0.0001)
	b.OmitStat("drain", true)
	b.SetRegion("")
	m = focus.mark()
	pr = focus.wait(m, "scientific stress", func(e *Elem) bool { return from(e) && fbStats(e)["stress_level"] == "1.0E-4" })
	if s := fbStats(pr); s["drain"] != "" || s["region"] != "" {
		t.Errorf("drain/region not omitted: %v", s)
	}
}

func TestFakeBridgeJavaDouble(t *testing.T) {
	for f, want := range map[float64]string{0: "0.0", 0.1: "0.1", 1: "1.0", 0.85: "0.85", 1e-4: "1.0E-4",
		1.5e-5: "1.5E-5", 0.001: "0.001", 12345678: "1.2345678E7", -2: "-2.0"} {
		if got := fbJavaDouble(f); got != want {
			t.Errorf("%v → %q, want %q", f, got, want)
		}
	}
}

// Colibri2 payload builders for the tests.
func fbCreateConf(mid, name string) string {
	return fmt.Sprintf(`<conference-modify xmlns='jitsi:colibri2' meeting-id='%s' name='%s' create='true'>`, mid, name)
}

func fbEndpointCreate(id string, sctp bool, extra string) string {
	s := ""
	if sctp {
		s = "<sctp/>"
	}
	return fmt.Sprintf(`<endpoint id='%s' create='true' stats-id='%s-stats'>`+
		`<media type='audio'><payload-type xmlns='urn:xmpp:jingle:apps:rtp:1' id='111' name='opus' clockrate='48000' channels='2'/></media>`+
		`<transport ice-controlling='true'>%s</transport><sources/>%s<capability name='source-names'/></endpoint>`, id, id, s, extra)
}

const fbClientTransport = `<transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag='cUfr' pwd='clientpassword0123456789'>` +
	`<rtcp-mux/><fingerprint xmlns='urn:xmpp:jingle:apps:dtls:0' hash='sha-256' setup='active'>AA:BB</fingerprint>` +
	`<candidate component='1' foundation='1' generation='0' id='c1' ip='192.0.2.7' port='53000' priority='1' protocol='udp' type='host' network='0'/></transport>`

func fbSources(ep string, ssrc int) string {
	return fmt.Sprintf(`<sources><media-source type='audio' id='%[1]s-a0'>`+
		`<source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='%[2]d' name='%[1]s-a0'/></media-source></sources>`, ep, ssrc)
}

func fbCheckCreatedTransport(t *testing.T, b *FakeBridge, conf ConferenceState, ep *Elem, sctp bool) {
	t.Helper()
	tr := ep.Child(nsColibri2, "transport")
	ice := tr.Child(nsICEUDP, "transport")
	if ice == nil {
		t.Fatalf("no ICE-UDP transport: %s", ep)
	}
	st := conf.Endpoints[ep.Attr("id")]
	if ice.Attr("ufrag") == "" || ice.Attr("ufrag") != st.Ufrag || len(ice.Attr("pwd")) < 22 || ice.Attr("pwd") != st.Pwd {
		t.Errorf("ufrag/pwd %q/%q vs state %q/%q", ice.Attr("ufrag"), ice.Attr("pwd"), st.Ufrag, st.Pwd)
	}
	c := ice.Child("", "candidate")
	if c == nil || c.Attr("type") != "host" || c.Attr("ip") != "127.0.0.1" || c.Attr("port") != "10000" ||
		c.Attr("protocol") != "udp" || c.Attr("component") != "1" || c.Attr("generation") != "0" || c.Attr("id") == "" {
		t.Errorf("candidate: %s", c)
	}
	if ice.Child(nsICEUDP, "rtcp-mux") == nil {
		t.Error("no rtcp-mux")
	}
	fp := ice.Child(nsDTLS, "fingerprint")
	if fp == nil || fp.Attr("hash") != "sha-256" || fp.Attr("setup") != "actpass" || fp.Text != b.Fingerprint() ||
		!regexp.MustCompile(`^([0-9A-F]{2}:){31}[0-9A-F]{2}$`).MatchString(fp.Text) {
		t.Errorf("fingerprint: %s", fp)
	}
	ws := ice.Child(nsColibri, "web-socket")
	wantURL := fmt.Sprintf("wss://127.0.0.1:443/colibri-ws/default-id/%s/%s?pwd=%s", conf.InternalID, ep.Attr("id"), st.WSPwd)
	if ws == nil || ws.Attr("url") != wantURL || !regexp.MustCompile(`^[a-zA-Z0-9]{24}$`).MatchString(st.WSPwd) ||
		conf.InternalID == conf.MeetingID || conf.InternalID == "" {
		t.Errorf("web-socket %s, want %s", ws, wantURL)
	}
	sc := tr.Child(nsColibri2, "sctp")
	if sctp != (sc != nil) {
		t.Errorf("sctp presence %v, want %v: %s", sc != nil, sctp, tr)
	}
	if sc != nil && (sc.Attr("port") != "5000" || sc.Attr("role") != "server") {
		t.Errorf("sctp: %s", sc)
	}
}

func fbCheckFeedback(t *testing.T, conf ConferenceState, resp *Elem) {
	t.Helper()
	src := resp.Child(nsColibri2, "conference-modified").Child(nsColibri2, "sources")
	ms := src.All(nsColibri2, "media-source")
	if len(ms) != 2 {
		t.Fatalf("feedback sources: %s", src)
	}
	for i, want := range []struct{ typ, id string }{{"audio", "jvb-a0"}, {"video", "jvb-v0"}} {
		s := ms[i].Child(nsSSMA, "source")
		if ms[i].Attr("type") != want.typ || ms[i].Attr("id") != want.id || fbAttr(s, "name") != want.id ||
			fbAttr(s, "ssrc") != fmt.Sprint(conf.FeedbackSSRCs[i]) {
			t.Errorf("feedback source %d: %s (ssrcs %v)", i, ms[i], conf.FeedbackSSRCs)
		}
	}
}

func fbTestRoundTrips(t *testing.T, p *Prosody, focus *fbPeer) {
	b := fbStartBridge(t, p, FakeBridgeConfig{Nick: "jvb-rt"})
	mid := "meeting-rt"
	// Create the conference with the first endpoint (type get, as Jicofo).
	resp, se := focus.iq(b.JID(), "get", fbCreateConf(mid, "room1@"+MUCDomain)+fbEndpointCreate("ep1", true, "<force-mute audio='true'/>")+`</conference-modify>`)
	if se != nil {
		t.Fatal(se)
	}
	if resp.Attr("from") != b.JID() {
		t.Errorf("response from %q", resp.Attr("from"))
	}
	conf := b.Conferences()[mid]
	if conf.Name != "room1@"+MUCDomain || !conf.RTCStatsEnabled || len(conf.Endpoints) != 1 {
		t.Fatalf("state: %+v", conf)
	}
	cm := resp.Child(nsColibri2, "conference-modified")
	eps := cm.All(nsColibri2, "endpoint")
	if len(eps) != 1 || eps[0].Attr("id") != "ep1" {
		t.Fatalf("endpoints: %s", cm)
	}
	fbCheckCreatedTransport(t, b, conf, eps[0], true)
	fbCheckFeedback(t, conf, resp)
	if st := conf.Endpoints["ep1"]; st.StatsID != "ep1-stats" || !st.SCTP || st.ForceMute != [2]bool{true, false} ||
		len(st.Media) != 1 || st.InitialLastN != -1 || st.Transport != nil {
		t.Errorf("ep1 state: %+v", st)
	}

	// Second endpoint, IQ type set, no SCTP: same fingerprint and feedback SSRCs, no <sctp>.
	resp, se = focus.iq(b.JID(), "set", `<conference-modify xmlns='jitsi:colibri2' meeting-id='`+mid+`'>`+fbEndpointCreate("ep2", false, "")+`</conference-modify>`)
	if se != nil {
		t.Fatal(se)
	}
	conf = b.Conferences()[mid]
	fbCheckCreatedTransport(t, b, conf, resp.Child(nsColibri2, "conference-modified").Child(nsColibri2, "endpoint"), false)
	fbCheckFeedback(t, conf, resp)
	if conf.Endpoints["ep1"].Ufrag == conf.Endpoints["ep2"].Ufrag {
		t.Error("endpoints share a ufrag")
	}
	if b.EndpointCount() != 2 {
		t.Errorf("EndpointCount %d", b.EndpointCount())
	}

	// Update: transport, sources and initial-last-n. The answer is a bare endpoint.
	resp, se = focus.iq(b.JID(), "get", `<conference-modify xmlns='jitsi:colibri2' meeting-id='`+mid+`'><endpoint id='ep1' stats-id='ep1-stats'>`+
		`<transport>`+fbClientTransport+`</transport>`+fbSources("ep1", 1111)+`<initial-last-n value='5'/></endpoint></conference-modify>`)
	if se != nil {
		t.Fatal(se)
	}
	if want := `<conference-modified xmlns='jitsi:colibri2'><endpoint id='ep1'/></conference-modified>`; resp.Kids[0].String() != want {
		t.Errorf("update response %s, want %s", resp.Kids[0], want)
	}
	st := b.Conferences()[mid].Endpoints["ep1"]
	if st.Transport.Attr("ufrag") != "cUfr" || fbAttr(st.Sources.Child(nsColibri2, "media-source"), "id") != "ep1-a0" || st.InitialLastN != 5 {
		t.Errorf("after update: %+v", st)
	}

	// Batch force-mute with an unknown endpoint: ignored, echoed.
	resp, se = focus.iq(b.JID(), "get", `<conference-modify xmlns='jitsi:colibri2' meeting-id='`+mid+`'>`+
		`<endpoint id='ep1'><force-mute/></endpoint><endpoint id='ep2'><force-mute audio='true' video='true'/></endpoint>`+
		`<endpoint id='ghost'><force-mute audio='true'/></endpoint></conference-modify>`)
	if se != nil {
		t.Fatal(se)
	}
	if n := len(resp.Kids[0].All(nsColibri2, "endpoint")); n != 3 {
		t.Errorf("force-mute echoes %d endpoints", n)
	}
	conf = b.Conferences()[mid]
	if conf.Endpoints["ep1"].ForceMute != [2]bool{} || conf.Endpoints["ep2"].ForceMute != [2]bool{true, true} {
		t.Errorf("force-mute state: %v %v", conf.Endpoints["ep1"].ForceMute, conf.Endpoints["ep2"].ForceMute)
	}

	// ICE restart: new credentials with ice-generation, no <sctp> (not asked).
	old := conf.Endpoints["ep1"]
	resp, se = focus.iq(b.JID(), "get", `<conference-modify xmlns='jitsi:colibri2' meeting-id='`+mid+`'><endpoint id='ep1' stats-id='ep1-stats'><transport ice-restart='true'/></endpoint></conference-modify>`)
	if se != nil {
		t.Fatal(se)
	}
	ice := resp.Kids[0].Child(nsColibri2, "endpoint").Child(nsColibri2, "transport").Child(nsICEUDP, "transport")
	if ice == nil || ice.Attr("ice-generation") != "1" || ice.Attr("ufrag") == old.Ufrag || ice.Attr("pwd") == old.Pwd {
		t.Errorf("ice restart answer: %s", resp)
	}
	if resp.Kids[0].Child(nsColibri2, "sources") != nil {
		t.Error("feedback sources in a non-create response")
	}

	// Expire ep2 (and an unknown one): echoed with expire.
	resp, se = focus.iq(b.JID(), "get", `<conference-modify xmlns='jitsi:colibri2' meeting-id='`+mid+`'><endpoint id='ep2' expire='true'/><endpoint id='nope' expire='true'/></conference-modify>`)
	if se != nil {
		t.Fatal(se)
	}
	for _, e := range resp.Kids[0].All(nsColibri2, "endpoint") {
		if e.Attr("expire") != "true" {
			t.Errorf("expire echo: %s", e)
		}
	}
	if _, ok := b.Conferences()[mid].Endpoints["ep2"]; ok {
		t.Error("ep2 not expired")
	}
	// Expiring the last endpoint deletes the conference silently.
	if _, se = focus.iq(b.JID(), "get", `<conference-modify xmlns='jitsi:colibri2' meeting-id='`+mid+`'><endpoint id='ep1' expire='true'/></conference-modify>`); se != nil {
		t.Fatal(se)
	}
	if _, ok := b.Conferences()[mid]; ok {
		t.Error("empty conference not expired")
	}

	// Conference expire: empty conference-modified, state gone; rtcstats-enabled=false kept.
	if _, se = focus.iq(b.JID(), "get", `<conference-modify xmlns='jitsi:colibri2' meeting-id='m2' name='r2@`+MUCDomain+`' create='true' rtcstats-enabled='false'>`+fbEndpointCreate("a", false, "")+`</conference-modify>`); se != nil {
		t.Fatal(se)
	}
	if b.Conferences()["m2"].RTCStatsEnabled {
		t.Error("rtcstats-enabled=false ignored")
	}
	resp, se = focus.iq(b.JID(), "get", `<conference-modify xmlns='jitsi:colibri2' meeting-id='m2' expire='true'/>`)
	if se != nil {
		t.Fatal(se)
	}
	if s := resp.Kids[0].String(); s != `<conference-modified xmlns='jitsi:colibri2'/>` {
		t.Errorf("expire response %s", s)
	}
	if len(b.Conferences()) != 0 || b.EndpointCount() != 0 {
		t.Errorf("state after expire: %v", b.Conferences())
	}
	// A conference create with no endpoint stays (create requests are not auto-expired).
	if _, se = focus.iq(b.JID(), "get", `<conference-modify xmlns='jitsi:colibri2' meeting-id='m3' create='true'/>`); se != nil {
		t.Fatal(se)
	}
	if _, ok := b.Conferences()["m3"]; !ok {
		t.Error("bare create did not create")
	}
	// Every request was recorded, in order.
	reqs := b.Requests()
	if len(reqs) != 10 || reqs[0].Attr("create") != "true" || reqs[len(reqs)-1].Attr("meeting-id") != "m3" {
		t.Errorf("%d requests recorded", len(reqs))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if r, err := b.WaitRequest(ctx, func(e *Elem) bool { return e.Attr("expire") == "true" }); err != nil || r.Attr("meeting-id") != "m2" {
		t.Errorf("WaitRequest: %v %v", r, err)
	}
}

// fbTestPipelined sends a second endpoint's create before the answer to the
// conference create: the bridge processes in arrival order.
func fbTestPipelined(t *testing.T, p *Prosody, focus *fbPeer) {
	b := fbStartBridge(t, p, FakeBridgeConfig{Nick: "jvb-pipe"})
	b.SetColibriDelay(100 * time.Millisecond)
	m := focus.mark()
	for i, pl := range []string{
		fbCreateConf("mp", "room@"+MUCDomain) + fbEndpointCreate("p1", true, "") + `</conference-modify>`,
		`<conference-modify xmlns='jitsi:colibri2' meeting-id='mp'>` + fbEndpointCreate("p2", true, "") + `</conference-modify>`,
		`<conference-modify xmlns='jitsi:colibri2' meeting-id='mp'><endpoint id='p1'>` + fbSources("p1", 5) + `</endpoint></conference-modify>`,
	} {
		el, _ := ParseElem(pl)
		if err := focus.c.Send(NewElem("", "iq", "type", "get", "to", b.JID(), "id", fmt.Sprintf("pipe%d", i)).Add(el)); err != nil {
			t.Fatal(err)
		}
	}
	var order []string
	for i := 0; i < 3; i++ {
		r := focus.wait(m, "pipelined response", func(e *Elem) bool {
			return e.Local == "iq" && strings.HasPrefix(e.Attr("id"), "pipe") && !strings.Contains(strings.Join(order, ","), e.Attr("id"))
		})
		if se := StanzaErrorOf(r); se != nil {
			t.Errorf("%s: %v", r.Attr("id"), se)
		}
		order = append(order, r.Attr("id"))
	}
	if strings.Join(order, ",") != "pipe0,pipe1,pipe2" {
		t.Errorf("response order %v", order)
	}
	if b.Conferences()["mp"].Endpoints["p1"].Sources == nil || b.EndpointCount() != 2 {
		t.Errorf("state: %+v", b.Conferences())
	}
}

func fbWantErr(t *testing.T, resp *Elem, se *StanzaError, condition, reason, text, endpoint string) {
	t.Helper()
	if se == nil {
		t.Fatalf("want %s, got %s", condition, resp)
	}
	el := resp.Child("", "error")
	gotReason := fbAttr(el.Child(nsColibri2, "error"), "reason")
	gotEP := fbAttr(el.Child(nsColibri2, "endpoint"), "id")
	if se.Condition != condition || gotReason != reason || se.Text != text || gotEP != endpoint {
		t.Errorf("got %s/%q/%q/%q, want %s/%q/%q/%q: %s", se.Condition, gotReason, se.Text, gotEP,
			condition, reason, text, endpoint, resp)
	}
	if len(resp.Kids) != 1 {
		t.Errorf("error response echoes the request (Smack's ErrorIQ does not): %s", resp)
	}
	wantType := "cancel"
	if condition == "bad-request" {
		wantType = "modify"
	}
	if se.Type != wantType {
		t.Errorf("error type %q, want %q", se.Type, wantType)
	}
}

func fbTestErrors(t *testing.T, p *Prosody, focus *fbPeer) {
	b := fbStartBridge(t, p, FakeBridgeConfig{Nick: "jvb-err"})
	to := b.JID()
	cmod := func(mid, body string) string {
		return `<conference-modify xmlns='jitsi:colibri2' meeting-id='` + mid + `'>` + body + `</conference-modify>`
	}
	if _, se := focus.iq(to, "get", fbCreateConf("me", "room@"+MUCDomain)+fbEndpointCreate("e1", false, "")+`</conference-modify>`); se != nil {
		t.Fatal(se)
	}
	rows := []struct {
		name, payload                        string
		condition, reason, text, endpointErr string
	}{
		{"conference exists", fbCreateConf("me", "room@"+MUCDomain) + fbEndpointCreate("new", false, "") + `</conference-modify>`,
			"conflict", "conference_already_exists", "Conference already exists for ID: me", ""},
		{"conference not found", cmod("nope", fbEndpointCreate("x", false, "")),
			"item-not-found", "conference_not_found", "Conference not found for ID: nope", ""},
		{"expire of unknown conference", `<conference-modify xmlns='jitsi:colibri2' meeting-id='nope' expire='true'/>`,
			"item-not-found", "conference_not_found", "Conference not found for ID: nope", ""},
		{"name not a JID", `<conference-modify xmlns='jitsi:colibri2' meeting-id='bad' name='not a jid' create='true'/>`,
			"bad-request", "", "Invalid conference name (not a JID)", ""},
		{"name with resource", `<conference-modify xmlns='jitsi:colibri2' meeting-id='bad' name='a@b/c' create='true'/>`,
			"bad-request", "", "Invalid conference name (not a JID)", ""},
		{"endpoint and relay", cmod("me", `<endpoint id='e1'/><relay id='r'/>`),
			"feature-not-implemented", "feature_not_implemented", "Using both 'relay' and 'endpoint' in a request", ""},
		{"two endpoints with sources", cmod("me", `<endpoint id='e1'><sources/></endpoint><endpoint id='e2'/>`),
			"feature-not-implemented", "feature_not_implemented", "Creating or updating media, sources or transport for more than one endpoint in a request.", ""},
		{"two relays", cmod("me", `<relay id='r1' expire='true'/><relay id='r2' expire='true'/>`),
			"feature-not-implemented", "feature_not_implemented", "Updating more than one 'relay' in a request.", ""},
		{"duplicate endpoint", cmod("me", fbEndpointCreate("e1", false, "")),
			"conflict", "", "Endpoint with ID e1 already exists", ""},
		{"create without transport", cmod("me", `<endpoint id='e9' create='true'><capability name='source-names'/></endpoint>`),
			"bad-request", "", "Attempt to create endpoint e9 with no <transport>", ""},
		{"create without source-names", cmod("me", `<endpoint id='e9' create='true'><transport ice-controlling='true'/></endpoint>`),
			"bad-request", "", "Source name support is mandatory.", ""},
		{"sctp role client", cmod("me", `<endpoint id='e10' create='true'><transport ice-controlling='true'><sctp role='client'/></transport><capability name='source-names'/></endpoint>`),
			"feature-not-implemented", "", "Unsupported SCTP role: client", ""},
		{"sctp port", cmod("me", `<endpoint id='e11' create='true'><transport ice-controlling='true'><sctp port='5001'/></transport><capability name='source-names'/></endpoint>`),
			"bad-request", "", "Specific SCTP port requested, not supported.", ""},
		{"unknown endpoint", cmod("me", `<endpoint id='ghost'><transport>`+fbClientTransport+`</transport></endpoint>`),
			"item-not-found", "unknown_endpoint", "Endpoint not found for ID: ghost", "ghost"},
		{"relays disabled", cmod("me", `<relay id='r1' create='true'><transport/></relay>`),
			"feature-not-implemented", "", "Octo is disabled in configuration.", ""},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			resp, se := focus.iq(to, "get", r.payload)
			fbWantErr(t, resp, se, r.condition, r.reason, r.text, r.endpointErr)
		})
	}
	t.Run("sources for a visitor", func(t *testing.T) {
		if _, se := focus.iq(to, "get", cmod("me", `<endpoint id='vis' create='true' muc-role='visitor'><transport ice-controlling='true'/><sources/><capability name='source-names'/></endpoint>`)); se != nil {
			t.Fatal(se)
		}
		// Empty sources are fine, non-empty ones are refused.
		if _, se := focus.iq(to, "get", cmod("me", `<endpoint id='vis'><sources/></endpoint>`)); se != nil {
			t.Errorf("empty sources for a visitor: %v", se)
		}
		resp, se := focus.iq(to, "get", cmod("me", `<endpoint id='vis'>`+fbSources("vis", 9)+`</endpoint>`))
		fbWantErr(t, resp, se, "bad-request", "", "Attempt to set sources for visitor endpoint vis", "")
	})
	t.Run("graceful shutdown", func(t *testing.T) {
		b.SetGracefulShutdown(true)
		defer b.SetGracefulShutdown(false)
		resp, se := focus.iq(to, "get", fbCreateConf("mg", "room@"+MUCDomain)+`</conference-modify>`)
		fbWantErr(t, resp, se, "service-unavailable", "graceful_shutdown", "In graceful shutdown", "")
		// Existing conferences still accept endpoints.
		if _, se := focus.iq(to, "get", cmod("me", fbEndpointCreate("late", false, ""))); se != nil {
			t.Errorf("endpoint create in graceful shutdown: %v", se)
		}
	})
	// As in JVB, an endpoint refused for its SCTP role exists all the same.
	if _, ok := b.Conferences()["me"].Endpoints["e10"]; !ok {
		t.Error("e10 should exist after the SCTP role error (JVB creates it first)")
	}
	// The failed conference creates left nothing behind, the graceful one neither.
	if _, ok := b.Conferences()["bad"]; ok {
		t.Error("conference with a bad name was created")
	}
	if _, ok := b.Conferences()["mg"]; ok {
		t.Error("conference created in graceful shutdown")
	}
	// Unknown IQ payloads and the dead shutdown IQs.
	resp, se := focus.iq(to, "get", `<query xmlns='urn:example:nothing'/>`)
	if se == nil || se.Condition != "feature-not-implemented" {
		t.Errorf("unknown payload: %v %s", se, resp)
	}
	resp, se = focus.iq(to, "set", `<graceful-shutdown xmlns='http://jitsi.org/protocol/colibri'/>`)
	if se == nil || se.Condition != "service-unavailable" {
		t.Errorf("graceful-shutdown IQ: %v %s", se, resp)
	}
	// Version.
	resp, se = focus.iq(to, "get", `<query xmlns='jabber:iq:version'/>`)
	if se != nil || resp.Kids[0].Child("", "name").Text != "JVB" || resp.Kids[0].Child("", "version").Text != "2.3.0-fake" {
		t.Errorf("version: %v %s", se, resp)
	}
}

func fbTestFaults(t *testing.T, p *Prosody, focus *fbPeer) {
	b := fbStartBridge(t, p, FakeBridgeConfig{Nick: "jvb-faults"})
	to := b.JID()
	cmod := func(mid, body string) string {
		return `<conference-modify xmlns='jitsi:colibri2' meeting-id='` + mid + `'>` + body + `</conference-modify>`
	}
	// FailNext: arbitrary condition, with and without reason; state untouched.
	b.FailNext("internal-server-error", "")
	b.FailNext("service-unavailable", "graceful_shutdown")
	resp, se := focus.iq(to, "get", fbCreateConf("mf", "room@"+MUCDomain)+fbEndpointCreate("f1", true, "")+`</conference-modify>`)
	fbWantErr(t, resp, se, "internal-server-error", "", "Injected failure", "")
	resp, se = focus.iq(to, "get", fbCreateConf("mf", "room@"+MUCDomain)+fbEndpointCreate("f1", true, "")+`</conference-modify>`)
	fbWantErr(t, resp, se, "service-unavailable", "graceful_shutdown", "In graceful shutdown", "")
	if len(b.Conferences()) != 0 {
		t.Fatal("a failed request changed the state")
	}
	b.FailNext("item-not-found", "unknown_endpoint")
	resp, se = focus.iq(to, "get", cmod("mf", `<endpoint id='zz'/>`))
	fbWantErr(t, resp, se, "item-not-found", "unknown_endpoint", "Endpoint not found for ID: zz", "zz")

	// OmitSCTP: no <sctp> although asked.
	b.OmitSCTP(true)
	resp, se = focus.iq(to, "get", fbCreateConf("mf", "room@"+MUCDomain)+fbEndpointCreate("f1", true, "")+`</conference-modify>`)
	if se != nil {
		t.Fatal(se)
	}
	if resp.Kids[0].Child(nsColibri2, "endpoint").Child(nsColibri2, "transport").Child(nsColibri2, "sctp") != nil {
		t.Error("OmitSCTP ignored")
	}
	b.OmitSCTP(false)

	// ForgetEndpoint → unknown_endpoint; ForgetConference → conference_not_found.
	if _, se := focus.iq(to, "get", cmod("mf", fbEndpointCreate("f2", false, ""))); se != nil {
		t.Fatal(se)
	}
	b.ForgetEndpoint("mf", "f2")
	resp, se = focus.iq(to, "get", cmod("mf", `<endpoint id='f2'>`+fbSources("f2", 3)+`</endpoint>`))
	fbWantErr(t, resp, se, "item-not-found", "unknown_endpoint", "Endpoint not found for ID: f2", "f2")
	b.ForgetConference("mf")
	resp, se = focus.iq(to, "get", cmod("mf", `<endpoint id='f1'>`+fbSources("f1", 3)+`</endpoint>`))
	fbWantErr(t, resp, se, "item-not-found", "conference_not_found", "Conference not found for ID: mf", "")

	// Delay: the answer comes no sooner than the delay.
	b.SetColibriDelay(300 * time.Millisecond)
	start := time.Now()
	if _, se := focus.iq(to, "get", fbCreateConf("md", "room@"+MUCDomain)+`</conference-modify>`); se != nil {
		t.Fatal(se)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("answered after %v despite a 300ms delay", d)
	}
	b.SetColibriDelay(0)

	// Dropped responses: processed, never answered.
	b.DropResponses(true)
	pl, _ := ParseElem(cmod("md", fbEndpointCreate("d1", false, "")))
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	_, err := focus.c.SendIQ(ctx, NewElem("", "iq", "type", "get", "to", to).Add(pl))
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("dropped response: %v", err)
	}
	// The request reaches the bridge before the timeout on an idle machine,
	// not necessarily on a loaded one: give it time.
	processed := func() bool { _, ok := b.Conferences()["md"].Endpoints["d1"]; return ok }
	for deadline := time.Now().Add(5 * time.Second); !processed() && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if !processed() {
		t.Error("dropped request was not processed")
	}
	b.DropResponses(false)

	// Silent expiry (docs/colibri2.md#expiry-by-the-bridge-itself): endpoint then empty conference vanish.
	b.SetSilentExpiry(100*time.Millisecond, 100*time.Millisecond)
	deadline := time.Now().Add(5 * time.Second)
	for len(b.Conferences()) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if len(b.Conferences()) != 0 {
		t.Errorf("silent expiry left %v", b.Conferences())
	}
	b.SetSilentExpiry(0, 0)

	// A new fingerprint for later transports.
	old := b.Fingerprint()
	b.RotateFingerprint()
	if b.Fingerprint() == old {
		t.Error("fingerprint not rotated")
	}
}

func fbTestRelays(t *testing.T, p *Prosody, focus *fbPeer) {
	b := fbStartBridge(t, p, FakeBridgeConfig{Nick: "jvb-relay", RelayID: "relay-a"})
	to := b.JID()
	cmod := func(body string) string {
		return `<conference-modify xmlns='jitsi:colibri2' meeting-id='mr'>` + body + `</conference-modify>`
	}
	if _, se := focus.iq(to, "get", fbCreateConf("mr", "room@"+MUCDomain)+fbEndpointCreate("local1", false, "")+`</conference-modify>`); se != nil {
		t.Fatal(se)
	}
	// Initiator side: sctp role client → the bridge answers server.
	resp, se := focus.iq(to, "get", cmod(`<relay id='relay-b' create='true' mesh-id='0'><media type='audio'/>`+
		`<transport use-unique-port='true' ice-controlling='true'><sctp role='client'/></transport>`+
		`<endpoints><endpoint id='remote1' create='true' stats-id='r1'><capability name='source-names'/></endpoint></endpoints></relay>`))
	if se != nil {
		t.Fatal(se)
	}
	rel := resp.Kids[0].Child(nsColibri2, "relay")
	ice := rel.Child(nsColibri2, "transport").Child(nsICEUDP, "transport")
	if fbAttr(rel, "id") != "relay-b" || ice == nil || fbAttr(ice.Child(nsDTLS, "fingerprint"), "setup") != "actpass" ||
		ice.Child(nsColibri, "web-socket") != nil {
		t.Errorf("relay answer: %s", rel)
	}
	if sc := rel.Child(nsColibri2, "transport").Child(nsColibri2, "sctp"); sc == nil || sc.Attr("role") != "server" || sc.Attr("port") != "5000" {
		t.Errorf("relay sctp: %s", rel)
	}
	if rs := b.Conferences()["mr"].Relays["relay-b"]; !rs.ICEControlling || !rs.UseUniquePort || rs.MeshID != "0" || len(rs.Endpoints) != 1 {
		t.Errorf("relay state: %+v", rs)
	}
	// Without SCTP: a colibri-relay-ws URL.
	resp, se = focus.iq(to, "get", cmod(`<relay id='relay-c' create='true'><transport/></relay>`))
	if se != nil {
		t.Fatal(se)
	}
	ws := resp.Kids[0].Child(nsColibri2, "relay").Child(nsColibri2, "transport").Child(nsICEUDP, "transport").Child(nsColibri, "web-socket")
	if ws == nil || !strings.Contains(ws.Attr("url"), "/colibri-relay-ws/default-id/") || !strings.Contains(ws.Attr("url"), "/relay-c?pwd=") {
		t.Errorf("relay web-socket: %s", resp)
	}
	// Transport update and endpoint changes.
	if _, se := focus.iq(to, "get", cmod(`<relay id='relay-b'><transport>`+fbClientTransport+`</transport>`+
		`<endpoints><endpoint id='remote1' expire='true'/><endpoint id='remote2' create='true'/></endpoints></relay>`)); se != nil {
		t.Fatal(se)
	}
	if rs := b.Conferences()["mr"].Relays["relay-b"]; rs.Transport == nil || strings.Join(rs.Endpoints, ",") != "remote2" {
		t.Errorf("relay state after update: %+v", rs)
	}
	// Unknown relay on update → bad-request; duplicate → conflict; expire unknown is fine.
	resp, se = focus.iq(to, "get", cmod(`<relay id='relay-x'><transport>`+fbClientTransport+`</transport></relay>`))
	fbWantErr(t, resp, se, "bad-request", "", "Unknown relay relay-x", "")
	resp, se = focus.iq(to, "get", cmod(`<relay id='relay-b' create='true'><transport/></relay>`))
	fbWantErr(t, resp, se, "conflict", "", "Relay with ID relay-b already exists", "")
	if _, se := focus.iq(to, "get", cmod(`<relay id='relay-x' expire='true'/>`)); se != nil {
		t.Errorf("expire of an unknown relay: %v", se)
	}
	if _, se := focus.iq(to, "get", cmod(`<relay id='relay-b' expire='true'/>`)); se != nil {
		t.Fatal(se)
	}
	if _, ok := b.Conferences()["mr"].Relays["relay-b"]; ok {
		t.Error("relay not expired")
	}
}

func fbTestHealth(t *testing.T, p *Prosody, focus *fbPeer) {
	b := fbStartBridge(t, p, FakeBridgeConfig{Nick: "jvb-health"})
	const hc = `<healthcheck xmlns='http://jitsi.org/protocol/healthcheck'/>`
	resp, se := focus.iq(b.JID(), "get", hc)
	if se != nil || resp.Attr("type") != "result" || len(resp.Kids) != 0 {
		t.Errorf("healthy: %v %s", se, resp)
	}
	b.SetHealth(HealthError)
	resp, se = focus.iq(b.JID(), "get", hc)
	if se == nil || se.Condition != "internal-server-error" || se.Text == "" {
		t.Errorf("unhealthy: %v %s", se, resp)
	}
	b.SetHealth(HealthSilent)
	pl, _ := ParseElem(hc)
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	_, err := focus.c.SendIQ(ctx, NewElem("", "iq", "type", "get", "to", b.JID()).Add(pl))
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("silent: %v", err)
	}
	b.SetHealth(HealthOK)
	if _, se := focus.iq(b.JID(), "get", hc); se != nil {
		t.Errorf("healthy again: %v", se)
	}
	if n := b.HealthChecks(); n != 4 {
		t.Errorf("HealthChecks %d, want 4", n)
	}
}

// fbTestForbidden checks who may talk to the bridge.
//
// What really happens with Prosody 0.12: an IQ to the bridge's occupant JID
// from a client that is not in the brewery never reaches the bridge; the MUC
// answers it itself with not-acceptable ("You are not currently connected to
// this chat"). The bridge's own check (JVB's MucClient: the bare from must be
// the brewery) is seen when an IQ is sent to the bridge's real JID: it answers
// forbidden, even to the focus account. (The MUC's error comes from the
// occupant JID, with by=<brewery> in <error>, and no colibri2 reason.)
func fbTestForbidden(t *testing.T, p *Prosody, focus *fbPeer) {
	b := fbStartBridge(t, p, FakeBridgeConfig{Nick: "jvb-forbid"})
	outsider := fbDialPeer(t, p, FocusUser, FocusPassword, "outsider")
	const cm = `<conference-modify xmlns='jitsi:colibri2' meeting-id='mx' create='true'/>`
	resp, se := outsider.iq(b.JID(), "get", cm)
	if se == nil || se.Condition != "not-acceptable" || fbAttr(resp.Child("", "error"), "by") != fbBrewery {
		t.Errorf("outsider to the occupant JID: want the MUC's not-acceptable, got %v %s", se, resp)
	}
	real := b.ClientJID()
	if !strings.HasPrefix(real, JVBUser+"@"+AuthDomain+"/") {
		t.Fatalf("ClientJID %q", real)
	}
	for _, pl := range []string{cm, `<healthcheck xmlns='http://jitsi.org/protocol/healthcheck'/>`, `<query xmlns='jabber:iq:version'/>`} {
		resp, se = outsider.iq(real, "get", pl)
		if se == nil || se.Condition != "forbidden" || se.Type != "auth" {
			t.Errorf("direct IQ %s: want forbidden, got %v %s", pl, se, resp)
		}
	}
	// An unknown payload is refused before the membership check, as by Smack.
	resp, se = outsider.iq(real, "get", `<query xmlns='urn:example:nothing'/>`)
	if se == nil || se.Condition != "feature-not-implemented" {
		t.Errorf("direct unknown IQ: %v %s", se, resp)
	}
	// Ping is answered by anyone (Smack's PingManager).
	if _, se = outsider.iq(real, "get", `<ping xmlns='urn:xmpp:ping'/>`); se != nil {
		t.Errorf("ping: %v", se)
	}
	if len(b.Requests()) != 0 || b.HealthChecks() != 0 || len(b.Conferences()) != 0 {
		t.Error("a refused IQ was processed")
	}
}

func fbTestLeaveRejoin(t *testing.T, p *Prosody, focus *fbPeer) {
	b := fbStartBridge(t, p, FakeBridgeConfig{Nick: "jvb-leave"})
	from := func(e *Elem) bool { return e.Local == "presence" && e.Attr("from") == b.JID() }
	m := focus.mark()
	focus.wait(m, "stats", func(e *Elem) bool { return from(e) && fbStats(e) != nil })
	m = focus.mark()
	b.Leave()
	focus.wait(m, "unavailable", func(e *Elem) bool { return from(e) && e.Attr("type") == "unavailable" })
	if b.Joined() {
		t.Error("Joined after Leave")
	}
	// No presence while away.
	time.Sleep(600 * time.Millisecond)
	m2 := focus.mark()
	time.Sleep(500 * time.Millisecond)
	focus.mu.Lock()
	for _, e := range focus.got[m2:] {
		if from(e) {
			t.Errorf("presence while away: %s", e)
		}
	}
	focus.mu.Unlock()
	m = focus.mark() // before Rejoin: its join presence may arrive before Rejoin returns
	if err := b.Rejoin(); err != nil {
		t.Fatal(err)
	}
	focus.wait(m, "stats after rejoin", func(e *Elem) bool { return from(e) && e.Attr("type") == "" && fbStats(e) != nil })
}

// TestFakeBridgeReconnect restarts Prosody: the bridge logs in again, re-joins
// the (new, empty) brewery and keeps its Colibri2 state.
func TestFakeBridgeReconnect(t *testing.T) {
	p := StartProsody(t)
	b := fbStartBridge(t, p, FakeBridgeConfig{Nick: "jvb-reconnect", ReconnectDelay: 200 * time.Millisecond})
	focus := fbDialPeer(t, p, FocusUser, FocusPassword, "focus")
	focus.joinBrewery("focus")
	if _, se := focus.iq(b.JID(), "get", fbCreateConf("mrc", "room@"+MUCDomain)+fbEndpointCreate("e", false, "")+`</conference-modify>`); se != nil {
		t.Fatal(se)
	}
	if err := p.Restart(); err != nil {
		t.Fatal(err)
	}
	focus = fbDialPeer(t, p, FocusUser, FocusPassword, "focus")
	m := focus.mark()
	focus.joinBrewery("focus")
	focus.wait(m, "the bridge's stats after the restart", func(e *Elem) bool {
		return e.Attr("from") == b.JID() && fbStats(e)["conferences"] == "1"
	})
	if !b.Joined() {
		t.Error("not joined after reconnect")
	}
	if _, se := focus.iq(b.JID(), "get", `<conference-modify xmlns='jitsi:colibri2' meeting-id='mrc'><endpoint id='e'>`+fbSources("e", 1)+`</endpoint></conference-modify>`); se != nil {
		t.Errorf("colibri after reconnect: %v", se)
	}
}
