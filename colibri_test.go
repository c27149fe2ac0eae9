package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var updateColibriGolden = flag.Bool("update-colibri", false, "rewrite testdata/colibri/*.xml golden files")

// colibriGolden compares got with testdata/colibri/name (the file holds the
// element serialised by Element.String plus a final newline).
func colibriGolden(t *testing.T, name string, got *Element) {
	t.Helper()
	path := filepath.Join("testdata", "colibri", name)
	s := got.String() + "\n"
	if *updateColibriGolden {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("golden %s: %v (run go test -run Colibri -update-colibri)", path, err)
	}
	if string(want) != s {
		t.Errorf("%s differs\n got: %s\nwant: %s", name, s, want)
	}
	// The golden text must parse back to the same tree.
	back, err := ParseElement(string(want))
	if err != nil {
		t.Fatalf("golden %s does not parse: %v", path, err)
	}
	if back.String() != got.String() {
		t.Errorf("%s: parse/serialise round trip differs:\n%s", name, back)
	}
}

func testMedia(t *testing.T) []*Element {
	t.Helper()
	audio, err := ParseElement(`<media xmlns="jitsi:colibri2" type="audio">` +
		`<payload-type xmlns="urn:xmpp:jingle:apps:rtp:1" id="111" name="opus" clockrate="48000" channels="2">` +
		`<parameter name="minptime" value="10"/><parameter name="useinbandfec" value="1"/>` +
		`<rtcp-fb xmlns="urn:xmpp:jingle:apps:rtp:rtcp-fb:0" type="transport-cc"/></payload-type>` +
		`<rtp-hdrext xmlns="urn:xmpp:jingle:apps:rtp:rtp-hdrext:0" id="1" uri="urn:ietf:params:rtp-hdrext:ssrc-audio-level"/>` +
		`<extmap-allow-mixed xmlns="urn:xmpp:jingle:apps:rtp:rtp-hdrext:0"/></media>`)
	if err != nil {
		t.Fatal(err)
	}
	video, err := ParseElement(`<media xmlns="jitsi:colibri2" type="video">` +
		`<payload-type xmlns="urn:xmpp:jingle:apps:rtp:1" id="100" name="VP8" clockrate="90000">` +
		`<rtcp-fb xmlns="urn:xmpp:jingle:apps:rtp:rtcp-fb:0" type="nack" subtype="pli"/></payload-type>` +
		`<payload-type xmlns="urn:xmpp:jingle:apps:rtp:1" id="96" name="rtx" clockrate="90000">` +
		`<parameter name="apt" value="100"/></payload-type></media>`)
	if err != nil {
		t.Fatal(err)
	}
	return []*Element{audio, video}
}

func testSources(t *testing.T) *Element {
	t.Helper()
	s, err := ParseElement(`<sources xmlns="jitsi:colibri2">` +
		`<media-source type="audio" id="ab12cd34-a0"><source xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" ssrc="1111" name="ab12cd34-a0"/></media-source>` +
		`<media-source type="video" id="ab12cd34-v0"><source xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" ssrc="2222" name="ab12cd34-v0" videoType="camera"/>` +
		`<source xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" ssrc="3333" name="ab12cd34-v0"/>` +
		`<ssrc-group xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" semantics="FID"><source ssrc="2222"/><source ssrc="3333"/></ssrc-group>` +
		`</media-source></sources>`)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestColibriBuildGolden(t *testing.T) {
	clientTransport, err := ParseElement(`<transport xmlns="urn:xmpp:jingle:transports:ice-udp:1" ufrag="Wx9a" pwd="0123456789abcdefghijkl">` +
		`<rtcp-mux/><fingerprint xmlns="urn:xmpp:jingle:apps:dtls:0" hash="sha-256" setup="active">AA:BB:CC</fingerprint>` +
		`<candidate component="1" foundation="1" generation="0" id="c1" ip="192.0.2.7" port="53000" priority="2122260223" protocol="udp" type="host" network="0"/>` +
		`</transport>`)
	if err != nil {
		t.Fatal(err)
	}
	const meeting = "5f1c0d1e-0000-4000-8000-000000000001"
	cases := []struct {
		file string
		req  ColibriRequest
	}{
		{"create.xml", ColibriRequest{
			MeetingID: meeting, Name: "room1@conference.meet.test", Create: true,
			Endpoints: []ColibriEndpoint{{
				ID: "ab12cd34", StatsID: "Alice-xyz", Create: true, Media: testMedia(t), SCTP: true,
				InitialLastN: -1,
			}},
		}},
		{"create-full.xml", ColibriRequest{
			MeetingID: meeting, Name: "room1@conference.meet.test", Create: true, RTCStatsDisabled: true,
			Endpoints: []ColibriEndpoint{{
				ID: "ab12cd34", StatsID: "Alice-xyz", Create: true, Media: testMedia(t), SCTP: true,
				Sources: testSources(t), ForceMute: &[2]bool{true, false},
				Capabilities: []string{CapSourceNames, CapSSRCRewriting}, InitialLastN: -1,
			}},
		}},
		{"create-second-endpoint.xml", ColibriRequest{
			MeetingID: meeting,
			Endpoints: []ColibriEndpoint{{
				ID: "ef56ab78", StatsID: "Bob-abc", Create: true, Media: testMedia(t), MucRole: "visitor",
				InitialLastN: -1,
			}},
		}},
		{"update.xml", ColibriRequest{
			MeetingID: meeting,
			Endpoints: []ColibriEndpoint{{
				ID: "ab12cd34", StatsID: "Alice-xyz", Transport: clientTransport, Sources: testSources(t),
				InitialLastN: 5,
			}},
		}},
		{"update-sources-only.xml", ColibriRequest{
			MeetingID: meeting,
			Endpoints: []ColibriEndpoint{{
				ID: "ab12cd34", StatsID: "Alice-xyz", Sources: NewElement(nsColibri2, "sources"), InitialLastN: -1,
			}},
		}},
		{"ice-restart.xml", ColibriRequest{
			MeetingID: meeting,
			Endpoints: []ColibriEndpoint{{ID: "ab12cd34", StatsID: "Alice-xyz", ICERestart: true, InitialLastN: -1}},
		}},
		{"expire-endpoints.xml", ColibriRequest{
			MeetingID: meeting,
			Endpoints: []ColibriEndpoint{{ID: "ab12cd34", Expire: true}, {ID: "ef56ab78", Expire: true, StatsID: "x"}},
		}},
		{"expire-conference.xml", ColibriRequest{MeetingID: meeting, Expire: true}},
		{"force-mute.xml", ColibriRequest{
			MeetingID: meeting,
			Endpoints: []ColibriEndpoint{
				{ID: "ab12cd34", ForceMute: &[2]bool{true, false}, InitialLastN: -1},
				{ID: "ef56ab78", ForceMute: &[2]bool{true, true}, InitialLastN: -1},
				{ID: "99aa88bb", ForceMute: &[2]bool{false, false}, InitialLastN: -1},
			},
		}},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			cm := BuildConferenceModify(c.req)
			colibriGolden(t, c.file, cm)
			iq := ColibriIQ("jvbbrewery@internal.auth.meet.test/jvb1", cm)
			if iq.Attr("type") != "get" || iq.Attr("to") != "jvbbrewery@internal.auth.meet.test/jvb1" || iq.Payload() != cm {
				t.Errorf("ColibriIQ: %s", iq)
			}
		})
	}
}

// TestColibriBuildRules checks the attribute rules of docs/colibri2.md#conference-attributes and #later-requests
// independently of the golden text.
func TestColibriBuildRules(t *testing.T) {
	// name and rtcstats-enabled only with create; rtcstats-enabled only when false.
	cm := BuildConferenceModify(ColibriRequest{MeetingID: "m", Name: "r@c", RTCStatsDisabled: true})
	if cm.HasAttr("name") || cm.HasAttr("rtcstats-enabled") || cm.HasAttr("create") {
		t.Errorf("non-create carries create attributes: %s", cm)
	}
	cm = BuildConferenceModify(ColibriRequest{MeetingID: "m", Name: "r@c", Create: true})
	if cm.HasAttr("rtcstats-enabled") || cm.Attr("name") != "r@c" || cm.Attr("create") != "true" {
		t.Errorf("create: %s", cm)
	}
	// Create always has source-names exactly once, first, and an ice-controlling transport.
	cm = BuildConferenceModify(ColibriRequest{MeetingID: "m", Endpoints: []ColibriEndpoint{{
		ID: "e", Create: true, Capabilities: []string{CapSSRCRewriting, CapSourceNames}, InitialLastN: -1,
	}}})
	ep := cm.Child(nsColibri2, "endpoint")
	caps := ep.All(nsColibri2, "capability")
	if len(caps) != 2 || caps[0].Attr("name") != CapSourceNames || caps[1].Attr("name") != CapSSRCRewriting {
		t.Errorf("capabilities: %s", ep)
	}
	tr := ep.Child(nsColibri2, "transport")
	if tr.Attr("ice-controlling") != "true" || tr.Child(nsColibri2, "sctp") != nil {
		t.Errorf("create transport without SCTP: %s", tr)
	}
	if s := ep.Child(nsColibri2, "sources"); s == nil || len(s.Children) != 0 {
		t.Errorf("create must send empty sources: %s", ep)
	}
	if ep.Child(nsColibri2, "force-mute") != nil || ep.Child(nsColibri2, "initial-last-n") != nil {
		t.Errorf("unexpected children: %s", ep)
	}
	// An update with nothing set writes only id/stats-id.
	cm = BuildConferenceModify(ColibriRequest{MeetingID: "m", Endpoints: []ColibriEndpoint{{ID: "e", StatsID: "s", InitialLastN: -1}}})
	if ep := cm.Child(nsColibri2, "endpoint"); len(ep.Children) != 0 || ep.Attr("stats-id") != "s" {
		t.Errorf("bare update: %s", ep)
	}
	// Children order of a create: media, transport, sources, force-mute, capability, initial-last-n.
	cm = BuildConferenceModify(ColibriRequest{MeetingID: "m", Endpoints: []ColibriEndpoint{{
		ID: "e", Create: true, Media: testMedia(t), SCTP: true, Sources: testSources(t),
		ForceMute: &[2]bool{false, true}, InitialLastN: 3,
	}}})
	var order []string
	for _, c := range cm.Child(nsColibri2, "endpoint").Children {
		order = append(order, c.Local)
	}
	if got := strings.Join(order, ","); got != "media,media,transport,sources,force-mute,capability,initial-last-n" {
		t.Errorf("order: %s", got)
	}
	// The builder must not alias the caller's elements.
	m := testMedia(t)
	cm = BuildConferenceModify(ColibriRequest{MeetingID: "m", Endpoints: []ColibriEndpoint{{ID: "e", Create: true, Media: m, InitialLastN: -1}}})
	cm.Child(nsColibri2, "endpoint").Child(nsColibri2, "media").Set("type", "changed")
	if m[0].Attr("type") != "audio" {
		t.Error("BuildConferenceModify aliases the media elements")
	}
}

// The example response of docs/colibri2.md#the-answer (as the focus receives it).
const colibriExampleResponse = `<iq xmlns="jabber:client" type="result" id="a1" from="jvbbrewery@internal-muc.meet.jitsi/jvb-1" to="jvbbrewery@internal-muc.meet.jitsi/focus">
  <conference-modified xmlns="jitsi:colibri2">
    <endpoint xmlns="jitsi:colibri2" id="ab12cd34">
      <transport>
        <transport xmlns="urn:xmpp:jingle:transports:ice-udp:1" ufrag="2ivqh1fvtf0l3h" pwd="1a5ejbent91k6io6a3fauikg22">
          <candidate component="1" foundation="1" generation="0" id="653aa1ba" network="0" port="10000"
                     priority="2130706431" protocol="udp" type="host" ip="10.0.0.5"/>
          <candidate component="1" foundation="2" generation="0" id="56f8f898" network="0" port="10000"
                     priority="1694498815" protocol="udp" type="srflx" ip="203.0.113.10" rel-addr="10.0.0.5" rel-port="10000"/>
          <rtcp-mux/>
          <fingerprint xmlns="urn:xmpp:jingle:apps:dtls:0" hash="sha-256" setup="actpass">2E:CC:85:23</fingerprint>
          <web-socket xmlns="http://jitsi.org/protocol/colibri"
                      url="wss://jvb1.example.com:443/colibri-ws/default-id/3d937bbdf97a23e0/ab12cd34?pwd=Xa8abcdefghijklmnopqrstu"/>
        </transport>
        <sctp port="5000" role="server"/>
      </transport>
    </endpoint>
    <sources>
      <media-source type="audio" id="jvb-a0"><source xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" ssrc="3191927963" name="jvb-a0"/></media-source>
      <media-source type="video" id="jvb-v0"><source xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" ssrc="1863439907" name="jvb-v0"/></media-source>
    </sources>
  </conference-modified>
</iq>`

func TestColibriParseAllocation(t *testing.T) {
	iq, err := ParseElement(colibriExampleResponse)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range []*Element{iq, iq.Payload()} {
		a, err := ParseAllocation(in, "ab12cd34", true)
		if err != nil {
			t.Fatal(err)
		}
		if a.Transport == nil || a.Transport.Space != nsICEUDP || a.Transport.Attr("ufrag") != "2ivqh1fvtf0l3h" ||
			a.Transport.Attr("pwd") != "1a5ejbent91k6io6a3fauikg22" {
			t.Errorf("transport: %s", a.Transport)
		}
		if n := len(a.Transport.All(nsICEUDP, "candidate")); n != 2 {
			t.Errorf("candidates: %d", n)
		}
		if fp := a.Transport.Child(nsDTLS, "fingerprint"); fp == nil || fp.Attr("setup") != "actpass" || fp.Text != "2E:CC:85:23" {
			t.Errorf("fingerprint: %s", fp)
		}
		if ws := a.Transport.Child(nsColibri, "web-socket"); ws == nil || !strings.Contains(ws.Attr("url"), "/colibri-ws/default-id/") {
			t.Errorf("web-socket: %s", ws)
		}
		if a.SCTPPort != 5000 {
			t.Errorf("sctp port %d", a.SCTPPort)
		}
		ms := a.FeedbackSources.All(nsColibri2, "media-source")
		if len(ms) != 2 || ms[0].Attr("id") != "jvb-a0" || ms[1].Child(nsSSMA, "source").Attr("ssrc") != "1863439907" {
			t.Errorf("feedback sources: %s", a.FeedbackSources)
		}
	}

	// Without SCTP requested, a missing <sctp> is fine.
	noSCTP := iq.Copy()
	tr := noSCTP.Payload().Child(nsColibri2, "endpoint").Child(nsColibri2, "transport")
	tr.RemoveChildren(nsColibri2, "sctp")
	if a, err := ParseAllocation(noSCTP, "ab12cd34", false); err != nil || a.SCTPPort != 0 {
		t.Errorf("no sctp, not wanted: %+v %v", a, err)
	}
	if _, err := ParseAllocation(noSCTP, "ab12cd34", true); !errors.Is(err, ErrColibriAllocation) {
		t.Errorf("no sctp, wanted: %v", err)
	}
	// An update response: no transport, no sources.
	upd, _ := ParseElement(`<conference-modified xmlns="jitsi:colibri2"><endpoint id="ab12cd34"/></conference-modified>`)
	if _, err := ParseAllocation(upd, "ab12cd34", false); !errors.Is(err, ErrColibriAllocation) {
		t.Errorf("no transport: %v", err)
	}
	if _, err := ParseAllocation(iq, "other", false); !errors.Is(err, ErrColibriAllocation) {
		t.Errorf("other endpoint: %v", err)
	}
	// A result that is not conference-modified.
	empty := NewElement(nsClient, "iq", "type", "result")
	for _, bad := range []*Element{nil, empty, NewElement(nsColibri2, "conference-modify")} {
		if _, err := ParseAllocation(bad, "ab12cd34", false); !errors.Is(err, ErrColibriNotModified) {
			t.Errorf("%v: %v", bad, err)
		}
	}
	// A conference-modified without sources (a non-create response) gives nil feedback sources.
	noSrc := iq.Copy()
	noSrc.Payload().RemoveChildren(nsColibri2, "sources")
	if a, err := ParseAllocation(noSrc, "ab12cd34", true); err != nil || a.FeedbackSources != nil {
		t.Errorf("no sources: %v %v", a.FeedbackSources, err)
	}
}

// colibriErrIQ renders a bridge error the way it arrives, and parses it back.
func colibriErrIQ(t *testing.T, se *StanzaError) error {
	t.Helper()
	req := NewIQ("get", "b@m/jvb", "x1", nil)
	req.Set("from", "b@m/focus")
	wire, err := ParseElement(ErrorIQ(req, se).String())
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Errorf("colibri: %w", ParseStanzaError(wire))
}

// TestColibriClassifyError has one row per line of docs/colibri2.md#what-the-focus-does-on-an-error (allocation)
// and of the docs/colibri2.md#errors table.
func TestColibriClassifyError(t *testing.T) {
	fail := ColibriFailure{FailParticipantOnly: true}
	reinvite := ColibriFailure{RemoveSessionReinvite: true}
	nonOp := ColibriFailure{RemoveSessionReinvite: true, MarkNonOperational: true}
	with := func(f ColibriFailure, reason, ep string) ColibriFailure {
		f.Reason, f.UnknownEndpoint = reason, ep
		return f
	}
	rows := []struct {
		name  string
		err   error
		alloc ColibriFailure // ClassifyColibriError
		async ColibriFailure // ClassifyColibriUpdateError
	}{
		{"timeout", fmt.Errorf("iq to x: %w", ErrIQTimeout), nonOp, ColibriFailure{}},
		{"bad-request (invalid name)", colibriErrIQ(t, ColibriError("bad-request", "", "Invalid conference name (not a JID)", "")), fail, reinvite},
		{"bad-request (no source-names)", colibriErrIQ(t, ColibriError("bad-request", "", "Source name support is mandatory.", "")), fail, reinvite},
		{"item-not-found conference_not_found", colibriErrIQ(t, ColibriError("item-not-found", ReasonConferenceNotFound, "Conference not found for ID: m", "")),
			with(reinvite, ReasonConferenceNotFound, ""), with(reinvite, ReasonConferenceNotFound, "")},
		{"item-not-found from the MUC", colibriErrIQ(t, Errorf("item-not-found", "")), fail, reinvite},
		{"item-not-found unknown_endpoint", colibriErrIQ(t, ColibriError("item-not-found", ReasonUnknownEndpoint, "Endpoint not found for ID: e1", "e1")),
			with(fail, ReasonUnknownEndpoint, "e1"), with(ColibriFailure{}, ReasonUnknownEndpoint, "e1")},
		{"unknown_endpoint without endpoint id", colibriErrIQ(t, ColibriError("item-not-found", ReasonUnknownEndpoint, "Endpoint not found", "")),
			with(fail, ReasonUnknownEndpoint, ""), with(reinvite, ReasonUnknownEndpoint, "")},
		{"conflict without reason (endpoint exists)", colibriErrIQ(t, ColibriError("conflict", "", "Endpoint with ID e1 already exists", "")), reinvite, reinvite},
		{"conflict conference_already_exists", colibriErrIQ(t, ColibriError("conflict", ReasonConferenceAlreadyExists, "Conference already exists for ID: m", "")),
			with(reinvite, ReasonConferenceAlreadyExists, ""), with(reinvite, ReasonConferenceAlreadyExists, "")},
		{"conflict other reason", colibriErrIQ(t, ColibriError("conflict", ReasonUnspecified, "x", "")),
			with(reinvite, ReasonUnspecified, ""), with(reinvite, ReasonUnspecified, "")},
		{"service-unavailable graceful_shutdown", colibriErrIQ(t, ColibriError("service-unavailable", ReasonGracefulShutdown, "In graceful shutdown", "")),
			with(ColibriFailure{RemoveSessionReinvite: true, MarkGracefulShutdown: true}, ReasonGracefulShutdown, ""), with(reinvite, ReasonGracefulShutdown, "")},
		{"service-unavailable no reason", colibriErrIQ(t, ColibriError("service-unavailable", "", "Service unavailable", "")), nonOp, reinvite},
		{"feature-not-implemented (validateRequest)", colibriErrIQ(t, ColibriError("feature-not-implemented", ReasonFeatureNotImplemented, "x", "")),
			with(nonOp, ReasonFeatureNotImplemented, ""), with(reinvite, ReasonFeatureNotImplemented, "")},
		{"feature-not-implemented (sctp role)", colibriErrIQ(t, ColibriError("feature-not-implemented", "", "x", "")), nonOp, reinvite},
		{"internal-server-error", colibriErrIQ(t, ColibriError("internal-server-error", "", "boom", "")), nonOp, reinvite},
		{"forbidden (not from brewery)", colibriErrIQ(t, Errorf("forbidden", "")), nonOp, reinvite},
		{"not conference-modified", fmt.Errorf("x: %w", ErrColibriNotModified),
			ColibriFailure{FailParticipantOnly: true, MarkNonOperational: true}, reinvite},
		{"no transport", fmt.Errorf("%w: no ICE-UDP transport", ErrColibriAllocation), fail, ColibriFailure{}},
		{"no sctp", fmt.Errorf("%w: requested SCTP", ErrColibriAllocation), fail, ColibriFailure{}},
		{"not connected", errors.New("xmpp: not connected"), fail, ColibriFailure{}},
		{"nil", nil, ColibriFailure{}, ColibriFailure{}},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			if got := ClassifyColibriError(r.err); got != r.alloc {
				t.Errorf("allocation: got %+v, want %+v", got, r.alloc)
			}
			if got := ClassifyColibriUpdateError(r.err); got != r.async {
				t.Errorf("async: got %+v, want %+v", got, r.async)
			}
		})
	}
}

func FuzzParseAllocation(f *testing.F) {
	f.Add(colibriExampleResponse, "ab12cd34", true)
	f.Add(`<conference-modified xmlns="jitsi:colibri2"><endpoint id="e"><transport><sctp port="x"/></transport></endpoint></conference-modified>`, "e", true)
	f.Add(`<conference-modified xmlns="jitsi:colibri2"><endpoint id="e"><transport><transport xmlns="urn:xmpp:jingle:transports:ice-udp:1"/><sctp port="99999"/></transport></endpoint></conference-modified>`, "e", false)
	f.Add(`<iq type="result"/>`, "", false)
	f.Fuzz(func(t *testing.T, xmlText, epID string, wantSCTP bool) {
		el, err := ParseElement(xmlText)
		if err != nil {
			return
		}
		a, err := ParseAllocation(el, epID, wantSCTP)
		if err != nil {
			if !errors.Is(err, ErrColibriAllocation) && !errors.Is(err, ErrColibriNotModified) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if a.Transport == nil || a.Transport.Space != nsICEUDP || a.Transport.Local != "transport" {
			t.Fatalf("success without ICE-UDP transport: %+v", a)
		}
		if wantSCTP && (a.SCTPPort <= 0 || a.SCTPPort > 65535) {
			t.Fatalf("success with bad SCTP port %d", a.SCTPPort)
		}
		_ = ClassifyColibriError(err)
	})
}
