package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The golden files under testdata/jingle are rewritten with
// `go test -run 'Jingle|Offer' -update .`; read the diff before keeping it.
// checkJingleGolden compares got with testdata/jingle/name (golden_test.go).
func checkJingleGolden(t *testing.T, name string, got *Element) {
	t.Helper()
	checkGoldenXML(t, "jingle", name, got)
}

func jingleAllFeatures() Features {
	return Features{Audio: true, Video: true, SCTP: true, RTX: true, REMB: true, TCC: true, JSONSources: true}
}

// lib-jitsi-meet's disco features (the subset the focus reads).
var jingleClientFeatures = []string{
	"http://jabber.org/protocol/disco#info",
	"urn:xmpp:jingle:1",
	"urn:xmpp:jingle:apps:rtp:1",
	"urn:xmpp:jingle:transports:ice-udp:1",
	"urn:xmpp:jingle:apps:dtls:0",
	"urn:xmpp:jingle:transports:dtls-sctp:1",
	"urn:xmpp:jingle:apps:rtp:audio",
	"urn:xmpp:jingle:apps:rtp:video",
	"http://jitsi.org/json-encoded-sources",
	"urn:ietf:rfc:4588",
	"http://jitsi.org/remb",
	"http://jitsi.org/tcc",
	"http://jitsi.org/source-name",
	"http://jitsi.org/receive-multiple-video-streams",
	"http://jitsi.org/ssrc-rewriting-1",
}

func TestParseFeatures(t *testing.T) {
	got := ParseFeatures(jingleClientFeatures)
	want := Features{Audio: true, Video: true, SCTP: true, RTX: true, REMB: true, TCC: true,
		SSRCRewriting: true, JSONSources: true}
	if got != want {
		t.Errorf("ParseFeatures = %+v, want %+v", got, want)
	}
	if got := ParseFeatures([]string{"http://jitsi.org/protocol/jibri", "http://jitsi.org/protocol/jigasi",
		"http://jitsi.org/protocol/audio-mute", "http://jitsi.org/opus-red", "bogus"}); got != (Features{Jibri: true, Jigasi: true, AudioMute: true, OpusRED: true}) {
		t.Errorf("ParseFeatures(jibri…) = %+v", got)
	}
	if got := ParseFeatures(nil); got != (Features{}) {
		t.Errorf("ParseFeatures(nil) = %+v", got)
	}
	if got := DefaultFeatures(); got != (Features{Audio: true, Video: true, SCTP: true}) {
		t.Errorf("DefaultFeatures = %+v", got)
	}
	cc := DefaultConfig().Conference
	cc.UseJSONSources = false
	if ParseFeatures(jingleClientFeatures).Effective(cc).JSONSources {
		t.Error("Effective kept JSON sources with use-json-sources off")
	}
	rewriting := Features{Audio: true, SSRCRewriting: true}
	if !rewriting.Effective(DefaultConfig().Conference).SSRCRewriting {
		t.Error("Effective dropped SSRC rewriting with use-ssrc-rewriting on")
	}
	cc = DefaultConfig().Conference
	cc.UseSSRCRewriting = false
	if rewriting.Effective(cc).SSRCRewriting {
		t.Error("Effective kept SSRC rewriting with use-ssrc-rewriting off")
	}
}

// Helpers over an offer.

func offerContentNamed(offer []*Element, name string) *Element {
	for _, c := range offer {
		if c.Attr("name") == name {
			return c
		}
	}
	return nil
}

func offerPayloadIDs(desc *Element) []string {
	var ids []string
	for _, p := range desc.All(nsRTP, "payload-type") {
		ids = append(ids, p.Attr("id"))
	}
	return ids
}

func offerHdrExtIDs(desc *Element) []string {
	var ids []string
	for _, p := range desc.All(nsHdrExt, "rtp-hdrext") {
		ids = append(ids, p.Attr("id"))
	}
	return ids
}

func offerHasFB(desc *Element, typ string) bool {
	for _, p := range desc.All(nsRTP, "payload-type") {
		for _, fb := range p.All(nsRTCPFB, "rtcp-fb") {
			if fb.Attr("type") == typ {
				return true
			}
		}
	}
	return false
}

func TestOfferPayloadTypes(t *testing.T) {
	codec := DefaultConfig().Codec
	tests := []struct {
		name                string
		codec               func(*CodecConfig)
		f                   Features
		audioPTs, videoPTs  string
		audioExts, videoExt string
		contents            string
		remb, tcc           bool
	}{
		{name: "all features", f: jingleAllFeatures(),
			audioPTs: "111 126", videoPTs: "41 100 107 101 42 96 97 99",
			audioExts: "1 10 5", videoExt: "11 10 3 5", contents: "audio video data", tcc: true},
		{name: "disco fallback", f: DefaultFeatures(),
			audioPTs: "111 126", videoPTs: "41 100 107 101",
			audioExts: "1 10", videoExt: "11 10 3", contents: "audio video data"},
		{name: "remb without tcc", f: Features{Audio: true, Video: true, REMB: true, RTX: true},
			audioPTs: "111 126", videoPTs: "41 100 107 101 42 96 97 99",
			audioExts: "1 10", videoExt: "11 10 3", contents: "audio video", remb: true},
		{name: "red", codec: func(c *CodecConfig) { c.OpusRED = true },
			f:        Features{Audio: true, OpusRED: true},
			audioPTs: "112 111 126", audioExts: "1 10", contents: "audio"},
		{name: "red config without feature", codec: func(c *CodecConfig) { c.OpusRED = true },
			f: Features{Audio: true}, audioPTs: "111 126", audioExts: "1 10", contents: "audio"},
		{name: "red feature without config", f: Features{Audio: true, OpusRED: true},
			audioPTs: "111 126", audioExts: "1 10", contents: "audio"},
		{name: "docker codecs", codec: func(c *CodecConfig) {
			c.MIDExtension, c.AV1, c.TelephoneEvent, c.SCTP = false, false, false, false
			c.VideoLayersAlloc = true
		}, f: jingleAllFeatures(),
			audioPTs: "111", videoPTs: "100 107 101 96 97 99",
			audioExts: "1 5", videoExt: "12 11 3 5", contents: "audio video", tcc: true},
		{name: "video only h264", codec: func(c *CodecConfig) { c.AV1, c.VP8, c.VP9 = false, false, false },
			f: Features{Video: true, RTX: true}, videoPTs: "107 99", videoExt: "11 10 3", contents: "video"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := codec
			if tt.codec != nil {
				tt.codec(&c)
			}
			offer := BuildOffer(c, tt.f)
			var names []string
			for _, ct := range offer {
				names = append(names, ct.Attr("name"))
				if ct.Attr("creator") != "initiator" || ct.Attr("senders") != "both" {
					t.Errorf("content %s: %s", ct.Attr("name"), ct)
				}
				if ct.Child(nsICEUDP, "transport") != nil {
					t.Errorf("content %s has a transport", ct.Attr("name"))
				}
				if d := ct.Child(nsRTP, "description"); d.Children[len(d.Children)-1].Local != "rtcp-mux" {
					t.Errorf("content %s: description does not end in rtcp-mux", ct.Attr("name"))
				}
			}
			if got := strings.Join(names, " "); got != tt.contents {
				t.Errorf("contents = %q, want %q", got, tt.contents)
			}
			if a := offerContentNamed(offer, "audio"); a != nil {
				d := a.Child(nsRTP, "description")
				if got := strings.Join(offerPayloadIDs(d), " "); got != tt.audioPTs {
					t.Errorf("audio PTs = %q, want %q", got, tt.audioPTs)
				}
				if got := strings.Join(offerHdrExtIDs(d), " "); got != tt.audioExts {
					t.Errorf("audio hdrexts = %q, want %q", got, tt.audioExts)
				}
				if d.Attr("maxptime") != "60" {
					t.Errorf("audio maxptime = %q", d.Attr("maxptime"))
				}
				if got := offerHasFB(d, "transport-cc"); got != tt.tcc {
					t.Errorf("audio transport-cc = %v, want %v", got, tt.tcc)
				}
			}
			if v := offerContentNamed(offer, "video"); v != nil {
				d := v.Child(nsRTP, "description")
				if got := strings.Join(offerPayloadIDs(d), " "); got != tt.videoPTs {
					t.Errorf("video PTs = %q, want %q", got, tt.videoPTs)
				}
				if got := strings.Join(offerHdrExtIDs(d), " "); got != tt.videoExt {
					t.Errorf("video hdrexts = %q, want %q", got, tt.videoExt)
				}
				if got := offerHasFB(d, "goog-remb"); got != tt.remb {
					t.Errorf("goog-remb = %v, want %v", got, tt.remb)
				}
				if got := offerHasFB(d, "transport-cc"); got != tt.tcc {
					t.Errorf("video transport-cc = %v, want %v", got, tt.tcc)
				}
				if d.HasAttr("maxptime") {
					t.Error("video description has maxptime")
				}
			}
		})
	}
}

func TestOfferOpusParameters(t *testing.T) {
	codec := DefaultConfig().Codec
	opus := func(c CodecConfig, f Features) string {
		d := offerContentNamed(BuildOffer(c, f), "audio").Child(nsRTP, "description")
		for _, p := range d.All(nsRTP, "payload-type") {
			if p.Attr("name") == "opus" {
				return p.String()
			}
		}
		return ""
	}
	want := `<payload-type xmlns="urn:xmpp:jingle:apps:rtp:1" id="111" name="opus" clockrate="48000" channels="2">` +
		`<parameter name="minptime" value="10"/><parameter name="useinbandfec" value="1"/></payload-type>`
	if got := opus(codec, Features{Audio: true}); got != want {
		t.Errorf("opus:\n got %s\nwant %s", got, want)
	}
	codec.OpusRED = true
	if got := opus(codec, Features{Audio: true}); strings.Contains(got, "useinbandfec") {
		t.Errorf("useinbandfec with RED enabled in config: %s", got)
	}
	d := offerContentNamed(BuildOffer(codec, Features{Audio: true, OpusRED: true}), "audio").Child(nsRTP, "description")
	red := d.All(nsRTP, "payload-type")[0]
	if got, want := red.String(), `<payload-type xmlns="urn:xmpp:jingle:apps:rtp:1" id="112" name="red" clockrate="48000" channels="2"><parameter value="111/111"/></payload-type>`; got != want {
		t.Errorf("red:\n got %s\nwant %s", got, want)
	}
}

func TestOfferVideoCodecDetails(t *testing.T) {
	d := offerContentNamed(BuildOffer(DefaultConfig().Codec, jingleAllFeatures()), "video").Child(nsRTP, "description")
	for _, p := range d.All(nsRTP, "payload-type") {
		fbs := len(p.All(nsRTCPFB, "rtcp-fb"))
		switch p.Attr("name") {
		case "H264":
			if got := p.Child(nsRTP, "parameter").Attr("value"); got != h264ProfileLevel || len(p.All(nsRTP, "parameter")) != 1 {
				t.Errorf("H264 parameters: %s", p)
			}
			fallthrough
		case "AV1", "VP8", "VP9":
			if fbs != 4 || p.HasAttr("channels") || p.Attr("clockrate") != "90000" {
				t.Errorf("%s: %s", p.Attr("name"), p)
			}
		case "rtx":
			apt := p.Child(nsRTP, "parameter")
			if apt.Attr("name") != "apt" {
				t.Errorf("rtx without apt: %s", p)
			}
			wantFB := 3
			if apt.Attr("value") == "107" {
				wantFB = 0
			}
			if fbs != wantFB {
				t.Errorf("rtx for %s has %d rtcp-fb, want %d", apt.Attr("value"), fbs, wantFB)
			}
		default:
			t.Errorf("unexpected payload type %s", p)
		}
	}
}

func TestOfferNoRTXWithoutFeature(t *testing.T) {
	f := jingleAllFeatures()
	f.RTX = false
	offer := BuildOffer(DefaultConfig().Codec, f)
	for _, p := range offerContentNamed(offer, "video").Child(nsRTP, "description").All(nsRTP, "payload-type") {
		if p.Attr("name") == "rtx" {
			t.Errorf("RTX payload type without the RTX feature: %s", p)
		}
	}
}

func TestColibriMediaMirrorsOffer(t *testing.T) {
	for _, f := range []Features{jingleAllFeatures(), DefaultFeatures(), {Audio: true}} {
		offer := BuildOffer(DefaultConfig().Codec, f)
		media := ColibriMedia(offer)
		var want []*Element
		for _, c := range offer {
			if c.Attr("name") != "data" {
				want = append(want, c)
			}
		}
		if len(media) != len(want) {
			t.Fatalf("%+v: %d media for %d contents", f, len(media), len(want))
		}
		for i, m := range media {
			d := want[i].Child(nsRTP, "description")
			if m.Space != nsColibri2 || m.Local != "media" || m.Attr("type") != d.Attr("media") {
				t.Errorf("media %d: %s", i, m)
			}
			// Everything but rtcp-mux, in the same order.
			exp := &Element{Space: nsColibri2, Local: "media", Attrs: m.Attrs}
			for _, k := range d.Children {
				if k.Local != "rtcp-mux" {
					exp.Add(k)
				}
			}
			if m.String() != exp.String() {
				t.Errorf("media %s:\n got %s\nwant %s", m.Attr("type"), m, exp)
			}
		}
	}
	// The offer is not shared with the media.
	offer := BuildOffer(DefaultConfig().Codec, jingleAllFeatures())
	ColibriMedia(offer)[0].Children[0].Set("id", "0")
	if offer[0].Child(nsRTP, "description").Children[0].Attr("id") == "0" {
		t.Error("ColibriMedia shares elements with the offer")
	}
}

// A bridge's colibri2 ICE-UDP transport as docs/colibri2.md#the-answer describes it.
const bridgeICE = `<transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag='2ivqh1fvtf0l3h' pwd='1a5ejbent91k6io6a3fauikg22'>
  <candidate component='1' foundation='1' generation='0' id='653aa1ba1' network='0' port='10000' priority='2130706431' protocol='udp' type='host' ip='10.0.0.5'/>
  <candidate component='1' foundation='2' generation='0' id='56f8f8982' network='0' port='10000' priority='1694498815' protocol='udp' type='srflx' ip='203.0.113.10' rel-addr='10.0.0.5' rel-port='10000'/>
  <rtcp-mux/>
  <fingerprint xmlns='urn:xmpp:jingle:apps:dtls:0' hash='sha-256' setup='actpass'>2E:CC:85:4A:6B:90:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:23</fingerprint>
  <web-socket xmlns='http://jitsi.org/protocol/colibri' url='wss://jvb1.example.com:443/colibri-ws/default-id/3d937bbdf97a23e0/ab12cd34?pwd=Xa8' extra='dropped'/>
</transport>`

func jingleParse(t testing.TB, s string) *Element {
	t.Helper()
	e, err := ParseElement(s)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestBridgeTransport(t *testing.T) {
	media, data, err := BridgeTransport(jingleParse(t, bridgeICE), 5000)
	if err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range media.Children {
		kids = append(kids, k.Local)
	}
	if got, want := strings.Join(kids, " "), "web-socket rtcp-mux fingerprint candidate candidate"; got != want {
		t.Errorf("media children %q, want %q", got, want)
	}
	if media.Attr("ufrag") != "2ivqh1fvtf0l3h" || media.Attr("pwd") != "1a5ejbent91k6io6a3fauikg22" {
		t.Errorf("ufrag/pwd: %s", media)
	}
	fp := media.Child(nsDTLS, "fingerprint")
	if got, want := fp.String(), `<fingerprint xmlns="urn:xmpp:jingle:apps:dtls:0" hash="sha-256" required="false" setup="actpass" cryptex="false">2E:CC:85:4A:6B:90:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:23</fingerprint>`; got != want {
		t.Errorf("fingerprint\n got %s\nwant %s", got, want)
	}
	if got, want := media.Child(nsColibri, "web-socket").String(), `<web-socket xmlns="http://jitsi.org/protocol/colibri" url="wss://jvb1.example.com:443/colibri-ws/default-id/3d937bbdf97a23e0/ab12cd34?pwd=Xa8"/>`; got != want {
		t.Errorf("web-socket %s", got)
	}
	if media.Child(nsSCTP, "sctpmap") != nil {
		t.Error("sctpmap in the media transport")
	}
	sm := data.Child(nsSCTP, "sctpmap")
	if got, want := sm.String(), `<sctpmap xmlns="urn:xmpp:jingle:transports:dtls-sctp:1" number="5000" protocol="webrtc-datachannel" streams="1024"/>`; got != want {
		t.Errorf("sctpmap %s", got)
	}
	if len(data.All(nsICEUDP, "candidate")) != 2 || data.Children[len(data.Children)-1].Local != "candidate" {
		t.Errorf("data transport: %s", data)
	}
	if _, data, _ := BridgeTransport(jingleParse(t, bridgeICE), 0); data != nil {
		t.Error("data transport without an SCTP port")
	}

	cryptex := strings.Replace(bridgeICE, "setup='actpass'", "setup='actpass' cryptex='true'", 1)
	media, _, _ = BridgeTransport(jingleParse(t, cryptex), 0)
	if media.Child(nsDTLS, "fingerprint").Attr("cryptex") != "true" {
		t.Error("cryptex=true was not kept")
	}
	odd := strings.Replace(bridgeICE, "setup='actpass'", "setup='actpass' cryptex='yes'", 1)
	media, _, _ = BridgeTransport(jingleParse(t, odd), 0)
	if media.Child(nsDTLS, "fingerprint").Attr("cryptex") != "false" {
		t.Error("cryptex other than true must become false")
	}

	for name, in := range map[string]string{
		"no fingerprint": strings.NewReplacer("<fingerprint", "<other", "</fingerprint", "</other").Replace(bridgeICE),
		"empty fingerprint": `<transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag='a' pwd='b'>` +
			`<fingerprint xmlns='urn:xmpp:jingle:apps:dtls:0' hash='sha-256' setup='actpass'/></transport>`,
		"no ufrag":        strings.Replace(bridgeICE, "ufrag=", "x=", 1),
		"wrong namespace": `<transport xmlns='jitsi:colibri2'/>`,
	} {
		if _, _, err := BridgeTransport(jingleParse(t, in), 5000); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, _, err := BridgeTransport(nil, 5000); err == nil {
		t.Error("nil transport: no error")
	}
}

func TestBuildSessionTerminate(t *testing.T) {
	got := BuildSessionTerminate("focus@auth.meet.jitsi/focus", "room@muc.meet.jitsi/abcd", "s1", "expired", "Idle session timeout").String()
	want := `<iq xmlns="jabber:client" type="set" from="focus@auth.meet.jitsi/focus" to="room@muc.meet.jitsi/abcd">` +
		`<jingle xmlns="urn:xmpp:jingle:1" action="session-terminate" sid="s1"><reason><expired/><text>Idle session timeout</text></reason></jingle></iq>`
	if got != want {
		t.Errorf("\n got %s\nwant %s", got, want)
	}
}

func jingleTestdata(t testing.TB, name string) *Element {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "jingle", name))
	if err != nil {
		t.Fatal(err)
	}
	return jingleParse(t, string(raw))
}

// The real client's session-accept and transport-info (recorded from a real client, docs/prosody-and-clients.md#what-a-simulated-participant-imitates).
func TestParseJingleClientCapture(t *testing.T) {
	r, err := ParseJingle(jingleTestdata(t, "client-session-accept.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Action != "session-accept" || r.SID != "8bee0cf8d5da" || r.From != "room1@conference.meet.test/a38a5182" {
		t.Errorf("action/sid/from: %+v", r)
	}
	tr := r.Transport
	if tr == nil || tr.Attr("ufrag") != "fSWl" || tr.Attr("pwd") != "vkJBbz3SPudZVIyl5s0MhGCn" {
		t.Fatalf("transport: %v", tr)
	}
	if fp := tr.Child(nsDTLS, "fingerprint"); fp == nil || fp.Attr("setup") != "active" ||
		!strings.HasPrefix(fp.Text, "C3:E7:40:8D") {
		t.Errorf("fingerprint: %v", fp)
	}
	if tr.Child(nsICEUDP, "rtcp-mux") == nil {
		t.Error("rtcp-mux was not added to the client transport")
	}
	// This P2P accept trickles every candidate; the transport-info has them.
	if n := len(tr.All(nsICEUDP, "candidate")); n != 0 {
		t.Errorf("%d candidates in the accept", n)
	}
	if r.InitialLastN != -1 || r.BridgeSessionID != "" || r.Restart {
		t.Errorf("unexpected extras: %+v", r)
	}
	// The original is not modified by the rtcp-mux fix-up.
	for _, c := range r.Jingle.All(nsJingle, "content") {
		if c.Child(nsICEUDP, "transport").Child(nsICEUDP, "rtcp-mux") != nil {
			t.Error("ParseJingle modified the request's transport")
		}
	}

	r, err = ParseJingle(jingleTestdata(t, "client-transport-info.xml"))
	if err != nil {
		t.Fatal(err)
	}
	cands := r.Transport.All(nsICEUDP, "candidate")
	if r.Action != "transport-info" || len(cands) != 2 || cands[0].Attr("ip") != "127.0.0.1" ||
		cands[0].Attr("port") != "34354" || cands[1].Attr("tcptype") != "active" {
		t.Errorf("transport-info: %+v %v", r, r.Transport)
	}
	if r.Transport.Child(nsDTLS, "fingerprint") == nil || r.Transport.Attr("ufrag") != "fSWl" {
		t.Errorf("transport-info transport: %s", r.Transport)
	}
}

func TestParseJingle(t *testing.T) {
	const head = `<iq xmlns='jabber:client' type='set' from='room@muc/ab' to='focus@auth/focus' id='1'>`
	tests := []struct {
		name, xml string
		cond      string // expected error condition, "" for none
		text      string
		check     func(*testing.T, JingleRequest)
	}{
		{name: "no jingle", xml: head + `<ping xmlns='urn:xmpp:ping'/></iq>`, cond: "bad-request"},
		{name: "missing action", xml: head + `<jingle xmlns='urn:xmpp:jingle:1' sid='s1'/></iq>`,
			cond: "bad-request", text: "Missing 'action'",
			check: func(t *testing.T, r JingleRequest) {
				if r.SID != "s1" {
					t.Errorf("sid %q not kept on error", r.SID)
				}
			}},
		{name: "unsupported", xml: head + `<jingle xmlns='urn:xmpp:jingle:1' action='content-modify' sid='s1'/></iq>`,
			cond: "feature-not-implemented", text: "Unsupported 'action'"},
		{name: "legacy addsource", xml: head + `<jingle xmlns='urn:xmpp:jingle:1' action='addsource' sid='s1'/></iq>`,
			check: func(t *testing.T, r JingleRequest) {
				if r.Action != "source-add" {
					t.Errorf("action %q", r.Action)
				}
			}},
		{name: "legacy removesource", xml: head + `<jingle xmlns='urn:xmpp:jingle:1' action='removesource' sid='s1'/></iq>`,
			check: func(t *testing.T, r JingleRequest) {
				if r.Action != "source-remove" {
					t.Errorf("action %q", r.Action)
				}
			}},
		{name: "terminate restart", xml: head + `<jingle xmlns='urn:xmpp:jingle:1' action='session-terminate' sid='s1'>` +
			`<reason><connectivity-error/><text>ICE FAILED</text></reason>` +
			`<bridge-session xmlns='http://jitsi.org/protocol/focus' id='b-1' restart='true'/></jingle></iq>`,
			check: func(t *testing.T, r JingleRequest) {
				if r.Reason != "connectivity-error" || r.ReasonText != "ICE FAILED" || r.BridgeSessionID != "b-1" || !r.Restart || r.ICERestart {
					t.Errorf("%+v", r)
				}
			}},
		{name: "ice failed", xml: head + `<jingle xmlns='urn:xmpp:jingle:1' action='session-info' sid='s1'>` +
			`<ice-state xmlns='http://jitsi.org/protocol/focus'>failed</ice-state>` +
			`<bridge-session xmlns='http://jitsi.org/protocol/focus' id='b-1'/></jingle></iq>`,
			check: func(t *testing.T, r JingleRequest) {
				if r.ICEState != "failed" || r.BridgeSessionID != "b-1" || r.Restart || r.ICERestart {
					t.Errorf("%+v", r)
				}
			}},
		{name: "ice restart", xml: head + `<jingle xmlns='urn:xmpp:jingle:1' action='session-info' sid='s1'>` +
			`<bridge-session xmlns='http://jitsi.org/protocol/focus' id='b-1' ice-restart='true'/></jingle></iq>`,
			check: func(t *testing.T, r JingleRequest) {
				if !r.ICERestart || r.Restart {
					t.Errorf("%+v", r)
				}
			}},
		{name: "initial last-n", xml: head + `<jingle xmlns='urn:xmpp:jingle:1' action='session-accept' sid='s1'>` +
			`<content name='audio'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/></content>` +
			`<content name='video'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='video'/>` +
			`<initial-last-n xmlns='jitsi:colibri2' value='5'/>` +
			`<transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag='u2' pwd='p2'><rtcp-mux/></transport></content>` +
			`</jingle></iq>`,
			check: func(t *testing.T, r JingleRequest) {
				if r.InitialLastN != 5 {
					t.Errorf("initial last-n %d", r.InitialLastN)
				}
				if r.Transport.Attr("ufrag") != "u2" || len(r.Transport.All(nsICEUDP, "rtcp-mux")) != 1 {
					t.Errorf("transport %s", r.Transport)
				}
			}},
		{name: "initial last-n in description", xml: head + `<jingle xmlns='urn:xmpp:jingle:1' action='session-accept' sid='s1'>` +
			`<content name='video'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='video'>` +
			`<initial-last-n xmlns='jitsi:colibri2' value='0'/></description></content></jingle></iq>`,
			check: func(t *testing.T, r JingleRequest) {
				if r.InitialLastN != 0 || r.Transport != nil {
					t.Errorf("%+v", r)
				}
			}},
		{name: "bad initial last-n", xml: head + `<jingle xmlns='urn:xmpp:jingle:1' action='session-accept' sid='s1'>` +
			`<content name='video'><initial-last-n xmlns='jitsi:colibri2' value='-3'/></content></jingle></iq>`,
			check: func(t *testing.T, r JingleRequest) {
				if r.InitialLastN != -1 {
					t.Errorf("initial last-n %d", r.InitialLastN)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseJingle(jingleParse(t, tt.xml))
			if tt.cond == "" && err != nil {
				t.Fatalf("error %v", err)
			}
			if tt.cond != "" {
				var se *StanzaError
				if !errors.As(err, &se) || se.Condition != tt.cond || (tt.text != "" && se.Text != tt.text) {
					t.Fatalf("error %v, want %s %q", err, tt.cond, tt.text)
				}
			}
			if tt.check != nil {
				tt.check(t, r)
			}
		})
	}
}

func FuzzParseJingle(f *testing.F) {
	for _, name := range []string{"client-session-accept.xml", "client-transport-info.xml"} {
		raw, err := os.ReadFile(filepath.Join("testdata", "jingle", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(raw))
	}
	f.Add(`<iq xmlns='jabber:client' type='set'><jingle xmlns='urn:xmpp:jingle:1' action='session-terminate' sid='s'>` +
		`<reason><success/><text>bye</text></reason><bridge-session xmlns='http://jitsi.org/protocol/focus' id='x' restart='true'/></jingle></iq>`)
	f.Add(`<iq><jingle xmlns='urn:xmpp:jingle:1' action='session-accept'><content name='video'><initial-last-n xmlns='jitsi:colibri2' value='99999999999999999999'/></content></jingle></iq>`)
	f.Fuzz(func(t *testing.T, s string) {
		iq, err := ParseElement(s)
		if err != nil {
			return
		}
		r, err := ParseJingle(iq)
		if err != nil {
			var se *StanzaError
			if !errors.As(err, &se) {
				t.Fatalf("error is not a stanza error: %v", err)
			}
			return
		}
		if !jingleActions[r.Action] {
			t.Fatalf("accepted action %q", r.Action)
		}
		if r.Transport != nil && r.Transport.Child(nsICEUDP, "rtcp-mux") == nil {
			t.Fatal("transport without rtcp-mux")
		}
		if r.Transport != nil {
			_ = r.Transport.String()
		}
	})
}

// Session-initiate, source-add, source-remove -----------------------------------

const (
	jFocus   = "focus@auth.meet.jitsi/focus"
	jTo      = "room1@conference.meet.jitsi/rcv00001"
	jSID     = "4p1k9tq2sh3ng"
	jSession = "4b2f2c1e-9d8a-4f3b-a5c6-0d1e2f3a4b5c"
)

func jSrc(owner, media string, ssrc uint32, name, msid, videoType string) Source {
	return Source{SSRC: ssrc, Name: name, MSID: msid, VideoType: videoType, Media: media, Owner: owner}
}

// jingleConference is a conference of three endpoints: the receiver
// rcv00001 (whose own sources must never come back to it), ab12cd34 with
// audio and 3-layer simulcast video with RTX, and ef56gh78 with audio and a
// desktop share with RTX; plus the bridge's feedback sources.
func jingleConference(t testing.TB) (*ConferenceSources, EndpointSources) {
	cs := NewConferenceSources()
	add := func(owner string, es EndpointSources) {
		if _, err := cs.TryAdd(owner, es, SourceLimits{}); err != nil {
			t.Fatalf("%s: %v", owner, err)
		}
	}
	const av, vv = "ab12cd34-audio-0 a-track", "ab12cd34-video-0 v-track"
	add("ab12cd34", EndpointSources{Sources: []Source{
		jSrc("", MediaAudio, 1001, "ab12cd34-a0", av, ""),
		jSrc("", MediaVideo, 2001, "ab12cd34-v0", vv, "camera"),
		jSrc("", MediaVideo, 2002, "ab12cd34-v0", vv, "camera"),
		jSrc("", MediaVideo, 2003, "ab12cd34-v0", vv, "camera"),
		jSrc("", MediaVideo, 3001, "ab12cd34-v0", vv, "camera"),
		jSrc("", MediaVideo, 3002, "ab12cd34-v0", vv, "camera"),
		jSrc("", MediaVideo, 3003, "ab12cd34-v0", vv, "camera"),
	}, Groups: []SSRCGroup{
		{Semantics: "SIM", SSRCs: []uint32{2001, 2002, 2003}, Media: MediaVideo},
		{Semantics: "FID", SSRCs: []uint32{2001, 3001}, Media: MediaVideo},
		{Semantics: "FID", SSRCs: []uint32{2002, 3002}, Media: MediaVideo},
		{Semantics: "FID", SSRCs: []uint32{2003, 3003}, Media: MediaVideo},
	}})
	const ed = "ef56gh78-video-1 d-track"
	add("ef56gh78", EndpointSources{Sources: []Source{
		jSrc("", MediaAudio, 4001, "ef56gh78-a0", "ef56gh78-audio-0 a-track", ""),
		jSrc("", MediaVideo, 5001, "ef56gh78-v1", ed, "desktop"),
		jSrc("", MediaVideo, 5002, "ef56gh78-v1", ed, "desktop"),
	}, Groups: []SSRCGroup{{Semantics: "FID", SSRCs: []uint32{5001, 5002}, Media: MediaVideo}}})
	add("rcv00001", EndpointSources{Sources: []Source{
		jSrc("", MediaAudio, 7001, "rcv00001-a0", "rcv-audio t", ""),
		jSrc("", MediaVideo, 7002, "rcv00001-v0", "rcv-video t", "camera"),
	}})
	feedback := EndpointSources{Sources: []Source{
		jSrc(OwnerJVB, MediaAudio, 3191927963, "jvb-a0", "mixedmslabel mixedlabelaudio0", ""),
		jSrc(OwnerJVB, MediaVideo, 1863439907, "jvb-v0", "mixedmslabel mixedlabelvideo0", ""),
	}}
	return cs, feedback
}

func jingleInitiate(t testing.TB, codec CodecConfig, f Features, strip bool) SessionInitiateParams {
	cs, fb := jingleConference(t)
	offer := BuildOffer(codec, f)
	sctp := 0
	if OfferHasData(offer) {
		sctp = 5000
	}
	media, data, err := BridgeTransport(jingleParse(t, bridgeICE), sctp)
	if err != nil {
		t.Fatal(err)
	}
	return SessionInitiateParams{
		From: jFocus, To: jTo, SID: jSID, Offer: offer,
		MediaTransport: media, DataTransport: data,
		BridgeSessionID: jSession, Region: "eu-west-1",
		Conference: cs, Receiver: "rcv00001", Feedback: fb, Features: f, StripSimulcast: strip,
	}
}

func TestJingleSessionInitiateGolden(t *testing.T) {
	codec := DefaultConfig().Codec
	xmlClient := jingleAllFeatures()
	xmlClient.JSONSources = false
	noTCC := Features{Audio: true, Video: true, RTX: true, REMB: true}
	tests := []struct {
		file string
		p    func(t *testing.T) SessionInitiateParams
	}{
		// lib-jitsi-meet today: JSON sources, RTX, TCC, SCTP.
		{"session-initiate-json.xml", func(t *testing.T) SessionInitiateParams {
			p := jingleInitiate(t, codec, jingleAllFeatures(), true)
			p.StartVideoMuted = true
			return p
		}},
		{"session-initiate-xml.xml", func(t *testing.T) SessionInitiateParams {
			return jingleInitiate(t, codec, xmlClient, true)
		}},
		// Disco failed: no RTX, no TCC, XML sources, data kept; no region.
		{"session-initiate-fallback.xml", func(t *testing.T) SessionInitiateParams {
			p := jingleInitiate(t, codec, DefaultFeatures(), true)
			p.Region = ""
			return p
		}},
		// REMB instead of TCC, no SCTP, simulcast kept.
		{"session-initiate-remb-nosctp-simulcast.xml", func(t *testing.T) SessionInitiateParams {
			return jingleInitiate(t, codec, noTCC, false)
		}},
		{"session-initiate-ssrc-rewriting.xml", func(t *testing.T) SessionInitiateParams {
			f := jingleAllFeatures()
			f.SSRCRewriting = true
			return jingleInitiate(t, codec, f, true)
		}},
		{"session-initiate-ssrc-rewriting-xml-audio-only.xml", func(t *testing.T) SessionInitiateParams {
			f := Features{Audio: true, SSRCRewriting: true}
			p := jingleInitiate(t, codec, f, true)
			p.StartAudioMuted = true
			return p
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			checkJingleGolden(t, tt.file, BuildSessionInitiate(tt.p(t)))
		})
	}
}

func jingleSourceDelta(t testing.TB) SourceSet {
	cs, _ := jingleConference(t)
	return SourceSet{"ab12cd34": cs.Get("ab12cd34"), "ef56gh78": cs.Get("ef56gh78")}
}

func TestJingleSourceAddRemoveGolden(t *testing.T) {
	xmlClient := Features{Audio: true, Video: true}
	jsonClient := Features{Audio: true, Video: true, JSONSources: true}
	tests := []struct {
		file  string
		build func(from, to, sid string, ss SourceSet, f Features, strip bool) *Element
		f     Features
		strip bool
	}{
		{"source-add-xml.xml", BuildSourceAdd, xmlClient, true},
		{"source-add-json.xml", BuildSourceAdd, jsonClient, true},
		{"source-add-xml-simulcast.xml", BuildSourceAdd, xmlClient, false},
		{"source-add-json-simulcast-video-only.xml", BuildSourceAdd, Features{Video: true, JSONSources: true}, false},
		{"source-remove-xml.xml", BuildSourceRemove, xmlClient, true},
		{"source-remove-json.xml", BuildSourceRemove, jsonClient, true},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			checkJingleGolden(t, tt.file, tt.build(jFocus, jTo, jSID, jingleSourceDelta(t), tt.f, tt.strip))
		})
	}
}

// A payload rendered once for many receivers goes over the wire exactly as
// the one built per receiver.
func TestJingleRenderedSourcesMatchBuilt(t *testing.T) {
	for _, f := range []Features{
		{Audio: true, Video: true},
		{Audio: true, Video: true, JSONSources: true},
		{Video: true},
		{Audio: true, Video: true, SSRCRewriting: true},
	} {
		for _, strip := range []bool{true, false} {
			ss := jingleSourceDelta(t)
			for action, build := range map[string]func(string, string, string, SourceSet, Features, bool) *Element{
				"source-add": BuildSourceAdd, "source-remove": BuildSourceRemove,
			} {
				built := build(jFocus, jTo, jSID, ss, f, strip)
				rendered := BuildRenderedSources(action, jFocus, jTo, jSID, RenderSources(ss, f, strip))
				if (built == nil) != (rendered == nil) {
					t.Fatalf("%+v strip=%v %s: built %v, rendered %v", f, strip, action, built, rendered)
				}
				if built != nil && built.String() != rendered.String() {
					t.Errorf("%+v strip=%v %s:\nbuilt    %s\nrendered %s", f, strip, action, built, rendered)
				}
			}
		}
	}
	if BuildRenderedSources("source-add", jFocus, jTo, jSID, RenderSources(SourceSet{}, Features{Audio: true}, true)) != nil {
		t.Error("an empty change was rendered into a source-add")
	}
}

func jingleAttrNames(e *Element) string {
	var names []string
	for _, a := range e.Attrs {
		names = append(names, a.Name.Local)
	}
	return strings.Join(names, " ")
}

// allSSRCs lists every ssrc attribute of <source>s under e, recursively, and
// the SSRCs of a json-message.
func jingleSSRCs(t *testing.T, e *Element) map[string]bool {
	out := map[string]bool{}
	var walk func(*Element)
	walk = func(e *Element) {
		if e.Local == "source" && e.Space == nsSSMA && e.Attr("ssrc") != "" {
			out[e.Attr("ssrc")] = true
		}
		if e.Local == "json-message" {
			var m struct {
				Sources map[string][]json.RawMessage `json:"sources"`
			}
			if err := json.Unmarshal([]byte(e.Text), &m); err != nil {
				t.Fatalf("json-message: %v: %s", err, e.Text)
			}
			for _, arrays := range m.Sources {
				for i, raw := range arrays {
					if i%2 == 1 { // groups
						continue
					}
					var srcs []struct {
						S uint32 `json:"s"`
					}
					if err := json.Unmarshal(raw, &srcs); err != nil {
						t.Fatal(err)
					}
					for _, s := range srcs {
						out[strconv.FormatUint(uint64(s.S), 10)] = true
					}
				}
			}
		}
		for _, c := range e.Children {
			walk(c)
		}
	}
	walk(e)
	return out
}

func TestJingleSessionInitiateShape(t *testing.T) {
	codec := DefaultConfig().Codec
	for _, form := range []string{"json", "xml"} {
		t.Run(form, func(t *testing.T) {
			f := jingleAllFeatures()
			f.JSONSources = form == "json"
			p := jingleInitiate(t, codec, f, true)
			media, data, err := BridgeTransport(jingleParse(t, bridgeICE), 5123)
			if err != nil {
				t.Fatal(err)
			}
			p.MediaTransport, p.DataTransport = media, data
			before := make([]string, len(p.Offer))
			for i, c := range p.Offer {
				before[i] = c.String()
			}
			iq := BuildSessionInitiate(p)
			for i, c := range p.Offer {
				if c.String() != before[i] {
					t.Fatalf("BuildSessionInitiate modified offer content %d", i)
				}
			}
			if iq.Attr("type") != "set" || iq.Attr("from") != jFocus || iq.Attr("to") != jTo || iq.HasAttr("id") {
				t.Errorf("iq attributes: %s", jingleAttrNames(iq))
			}
			j := iq.Child(nsJingle, "jingle")
			if got := jingleAttrNames(j); got != "action initiator sid" {
				t.Errorf("jingle attributes %q", got)
			}
			if j.Attr("action") != "session-initiate" || j.Attr("initiator") != jFocus || j.Attr("sid") != jSID {
				t.Errorf("jingle: action=%q initiator=%q sid=%q", j.Attr("action"), j.Attr("initiator"), j.Attr("sid"))
			}
			var contents, bundle []string
			for _, c := range j.All(nsJingle, "content") {
				contents = append(contents, c.Attr("name"))
				d, tr := c.Child(nsRTP, "description"), c.Child(nsICEUDP, "transport")
				if d == nil || tr == nil || c.Children[0] != d || c.Children[1] != tr {
					t.Errorf("content %s: want description then transport", c.Attr("name"))
				}
				if d.Child(nsRTP, "rtcp-mux") == nil {
					t.Errorf("content %s: no rtcp-mux in the description", c.Attr("name"))
				}
				if d.Child(nsSSMA, "source") != nil && form == "json" {
					t.Errorf("content %s: XML sources with JSON sources", c.Attr("name"))
				}
				sm := tr.Child(nsSCTP, "sctpmap")
				if (sm != nil) != (c.Attr("name") == "data") {
					t.Errorf("content %s: sctpmap %v", c.Attr("name"), sm)
				}
				if sm != nil && sm.Attr("number") != "5123" {
					t.Errorf("sctpmap number %q", sm.Attr("number"))
				}
			}
			for _, c := range j.Child(nsGrouping, "group").All(nsGrouping, "content") {
				bundle = append(bundle, c.Attr("name"))
			}
			if strings.Join(contents, " ") != "audio video data" || strings.Join(bundle, " ") != "audio video data" {
				t.Errorf("contents %v, BUNDLE %v", contents, bundle)
			}
			if g := j.Child(nsGrouping, "group"); g.Attr("semantics") != "BUNDLE" {
				t.Errorf("group %s", g)
			}
			var session []string
			for _, c := range j.Children {
				if c.Local != "content" {
					session = append(session, c.Local)
				}
			}
			wantSession := "group bridge-session"
			if form == "json" {
				wantSession += " json-message"
			}
			if got := strings.Join(session, " "); got != wantSession {
				t.Errorf("session-level children %q, want %q", got, wantSession)
			}
			bs := j.Child(nsFocus, "bridge-session")
			if bs.Attr("id") != jSession || bs.Attr("region") != "eu-west-1" {
				t.Errorf("bridge-session %s", bs)
			}
			ssrcs := jingleSSRCs(t, j)
			for _, want := range []string{"1001", "2001", "3001", "4001", "5001", "5002", "3191927963", "1863439907"} {
				if !ssrcs[want] {
					t.Errorf("ssrc %s not signalled", want)
				}
			}
			for _, not := range []string{"7001", "7002", "2002", "2003", "3002", "3003"} {
				if ssrcs[not] {
					t.Errorf("ssrc %s signalled (own source or stripped simulcast layer)", not)
				}
			}
		})
	}
}

func TestJingleSessionInitiateVariants(t *testing.T) {
	codec := DefaultConfig().Codec
	p := jingleInitiate(t, codec, DefaultFeatures(), true)
	p.Region = ""
	p.Action = "transport-replace"
	j := BuildSessionInitiate(p).Child(nsJingle, "jingle")
	if j.Attr("action") != "transport-replace" {
		t.Errorf("action %q", j.Attr("action"))
	}
	if bs := j.Child(nsFocus, "bridge-session"); bs.HasAttr("region") || bs.Attr("id") != jSession {
		t.Errorf("bridge-session without region: %s", bs)
	}
	if j.Child(nsStartMuted, "startmuted") != nil || j.Child(nsJitmeet, "json-message") != nil {
		t.Errorf("unexpected startmuted/json-message: %s", j)
	}
	for _, pt := range j.Child(nsJingle, "content").Child(nsRTP, "description").All(nsRTP, "payload-type") {
		if offerHasFB(&Element{Children: []*Element{pt}}, "transport-cc") {
			t.Errorf("transport-cc without TCC: %s", pt)
		}
	}

	// No SCTP port from the bridge: the data content is left out entirely.
	p = jingleInitiate(t, codec, jingleAllFeatures(), true)
	p.DataTransport = nil
	j = BuildSessionInitiate(p).Child(nsJingle, "jingle")
	if len(j.All(nsJingle, "content")) != 2 || len(j.Child(nsGrouping, "group").Children) != 2 {
		t.Errorf("data content without a data transport: %s", j)
	}

	// TCC beats REMB; no RTX without the feature.
	f := Features{Audio: true, Video: true, REMB: true, TCC: true}
	p = jingleInitiate(t, codec, f, true)
	j = BuildSessionInitiate(p).Child(nsJingle, "jingle")
	video := j.All(nsJingle, "content")[1].Child(nsRTP, "description")
	if offerHasFB(video, "goog-remb") || !offerHasFB(video, "transport-cc") {
		t.Errorf("REMB with TCC: %s", video)
	}
	for _, pt := range video.All(nsRTP, "payload-type") {
		if pt.Attr("name") == "rtx" {
			t.Errorf("RTX without the feature: %s", pt)
		}
	}

	// Start muted: both attributes always present.
	p.StartAudioMuted = true
	sm := BuildSessionInitiate(p).Child(nsJingle, "jingle").Child(nsStartMuted, "startmuted")
	if sm.Attr("audio") != "true" || sm.Attr("video") != "false" {
		t.Errorf("startmuted %s", sm)
	}
}

func TestJingleRemoteSources(t *testing.T) {
	cs, fb := jingleConference(t)
	all := Features{Audio: true, Video: true}
	if got := RemoteSources(cs, "rcv00001", fb, all, true).Owners(); strings.Join(got, " ") != "ab12cd34 ef56gh78 jvb" {
		t.Errorf("owners %v", got)
	}
	rw := all
	rw.SSRCRewriting = true
	if got := RemoteSources(cs, "rcv00001", fb, rw, true).Owners(); strings.Join(got, " ") != "jvb" {
		t.Errorf("SSRC rewriting: owners %v", got)
	}
	if got := RemoteSources(nil, "x", EndpointSources{}, all, true); len(got) != 0 {
		t.Errorf("nil conference: %v", got)
	}
	audio := RemoteSources(cs, "rcv00001", fb, Features{Audio: true}, true)
	for o, es := range audio {
		if es.HasMedia(MediaVideo) || len(es.Groups) != 0 {
			t.Errorf("%s: video for an audio-only receiver: %+v", o, es)
		}
	}
}

func TestJingleSourceAddRemove(t *testing.T) {
	ss := jingleSourceDelta(t)
	for _, build := range []func(string, string, string, SourceSet, Features, bool) *Element{BuildSourceAdd, BuildSourceRemove} {
		if iq := build(jFocus, jTo, jSID, ss, Features{Audio: true, Video: true, JSONSources: true, SSRCRewriting: true}, true); iq != nil {
			t.Errorf("sent to an SSRC-rewriting receiver: %s", iq)
		}
		if iq := build(jFocus, jTo, jSID, SourceSet{}, Features{Audio: true, Video: true}, true); iq != nil {
			t.Errorf("sent with nothing to say: %s", iq)
		}
		audioOnly := SourceSet{"ab12cd34": ss["ab12cd34"].Filter(true, false)}
		if iq := build(jFocus, jTo, jSID, audioOnly, Features{Video: true}, true); iq != nil {
			t.Errorf("audio sent to a video-only receiver: %s", iq)
		}
		iq := build(jFocus, jTo, jSID, ss, Features{Audio: true, Video: true}, true)
		j := iq.Child(nsJingle, "jingle")
		if got := jingleAttrNames(j); got != "action sid" {
			t.Errorf("jingle attributes %q", got)
		}
		for _, c := range j.All(nsJingle, "content") {
			if jingleAttrNames(c) != "name" || len(c.Children) != 1 || c.Children[0].Local != "description" ||
				c.Children[0].Attr("media") != c.Attr("name") {
				t.Errorf("content %s", c)
			}
		}
		if iq.Attr("from") != jFocus || iq.Attr("to") != jTo || j.Attr("sid") != jSID {
			t.Errorf("addressing %s", jingleAttrNames(iq))
		}
		jj := build(jFocus, jTo, jSID, ss, Features{Audio: true, Video: true, JSONSources: true}, true).Child(nsJingle, "jingle")
		if len(jj.Children) != 1 || jj.Children[0].Local != "json-message" {
			t.Errorf("JSON form: %s", jj)
		}
	}
}

// A receiver joining a 100-participant conference (simulcast clients, built
// by sources_test.go's benchEndpoint).
func jingleBenchConference(b *testing.B) (*ConferenceSources, EndpointSources) {
	cs := NewConferenceSources()
	for i := range 100 {
		id, es := benchEndpoint(i)
		if _, err := cs.TryAdd(id, es, SourceLimits{}); err != nil {
			b.Fatal(err)
		}
	}
	_, fb := jingleConference(b)
	return cs, fb
}

func BenchmarkBuildSessionInitiate(b *testing.B) {
	cs, fb := jingleBenchConference(b)
	media, data, err := BridgeTransport(jingleParse(b, bridgeICE), 5000)
	if err != nil {
		b.Fatal(err)
	}
	codec := DefaultConfig().Codec
	for _, form := range []string{"json", "xml"} {
		b.Run(form, func(b *testing.B) {
			f := jingleAllFeatures()
			f.JSONSources = form == "json"
			b.ReportAllocs()
			var n int
			for b.Loop() {
				offer := BuildOffer(codec, f)
				iq := BuildSessionInitiate(SessionInitiateParams{
					From: jFocus, To: jTo, SID: jSID, Offer: offer,
					MediaTransport: media, DataTransport: data,
					BridgeSessionID: jSession, Region: "eu-west-1",
					Conference: cs, Receiver: "ep00042", Feedback: fb, Features: f, StripSimulcast: true,
				})
				n = len(iq.Bytes())
			}
			b.ReportMetric(float64(n), "bytes/stanza")
		})
	}
}

func BenchmarkBuildSourceAdd(b *testing.B) {
	cs, _ := jingleBenchConference(b)
	// One participant's sources to each of the 99 others.
	ss := SourceSet{"ep00007": cs.Get("ep00007")}
	for _, form := range []string{"json", "xml"} {
		b.Run(form, func(b *testing.B) {
			f := Features{Audio: true, Video: true, JSONSources: form == "json"}
			b.ReportAllocs()
			for b.Loop() {
				_ = BuildSourceAdd(jFocus, jTo, jSID, ss, f, true).Bytes()
			}
		})
	}
}
