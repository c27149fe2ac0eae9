package main

// Benchmarks of the focus's per-join work, at the conference sizes the load
// generator (cmd/loadgen) drives: the offer a joiner gets, validating its
// sources, telling everyone else about them, and parsing its answer. The
// participants are simulcast clients: audio plus three video layers with
// RTX, 7 SSRCs and 4 groups, as in Jicofo's SsrcValidationPerfTest.

import (
	"fmt"
	"os"
	"runtime"
	"testing"

	"minifocus/testkit"
)

const (
	lbFocus   = "focus@auth.meet.test/focus"
	lbRoom    = "load@conference.meet.test"
	lbSID     = "k2j4h5g6f7d8s"
	lbSession = "6f1c2d3e-4b5a-4c7d-8e9f-0a1b2c3d4e5f"
)

// lbICE is a bridge's colibri2 transport for one endpoint.
const lbICE = `<transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag='7m3s1e9vqa2b4c' pwd='3f9qk1v7x2c8n4m6b0z5l1j3h7'>
  <candidate component='1' foundation='1' generation='0' id='7c41b0a01' network='0' port='10000' priority='2130706431' protocol='udp' type='host' ip='127.0.0.1'/>
  <rtcp-mux/>
  <fingerprint xmlns='urn:xmpp:jingle:apps:dtls:0' hash='sha-256' setup='actpass'>A1:B2:C3:D4:E5:F6:07:18:29:3A:4B:5C:6D:7E:8F:90:A1:B2:C3:D4:E5:F6:07:18:29:3A:4B:5C:6D:7E:8F:90</fingerprint>
  <web-socket xmlns='http://jitsi.org/protocol/colibri' url='wss://127.0.0.1:443/colibri-ws/default-id/1a2b3c4d/ep000001?pwd=3f9qk1v7x2c8n4m6b0z5l1j3h7'/>
</transport>`

// lbEndpoint is endpoint i: 7 SSRCs (1 audio, 3 video layers and their
// RTX) and 4 groups (1 SIM, 3 FID).
func lbEndpoint(i int) (string, EndpointSources) {
	id := fmt.Sprintf("%08x", 0x10000000+i)
	base := uint32(100000 + i*16)
	a, v := id+"-audio-0-1 "+id+"-at", id+"-video-0-1 "+id+"-vt"
	src := func(ssrc uint32, media, name, msid, vt string) Source {
		return Source{SSRC: ssrc, Media: media, Name: name, MSID: msid, VideoType: vt}
	}
	return id, EndpointSources{
		Sources: []Source{
			src(base, MediaAudio, id+"-a0", a, ""),
			src(base+1, MediaVideo, id+"-v0", v, "camera"),
			src(base+2, MediaVideo, id+"-v0", v, "camera"),
			src(base+3, MediaVideo, id+"-v0", v, "camera"),
			src(base+4, MediaVideo, id+"-v0", v, "camera"),
			src(base+5, MediaVideo, id+"-v0", v, "camera"),
			src(base+6, MediaVideo, id+"-v0", v, "camera"),
		},
		Groups: []SSRCGroup{
			{Semantics: SemanticsSIM, Media: MediaVideo, SSRCs: []uint32{base + 1, base + 2, base + 3}},
			{Semantics: SemanticsFID, Media: MediaVideo, SSRCs: []uint32{base + 1, base + 4}},
			{Semantics: SemanticsFID, Media: MediaVideo, SSRCs: []uint32{base + 2, base + 5}},
			{Semantics: SemanticsFID, Media: MediaVideo, SSRCs: []uint32{base + 3, base + 6}},
		},
	}
}

// lbConference holds n endpoints with sources; ids[i] is endpoint i.
func lbConference(b *testing.B, n int) (*ConferenceSources, []string, []EndpointSources) {
	b.Helper()
	cs := NewConferenceSources()
	ids := make([]string, n)
	sets := make([]EndpointSources, n)
	for i := range n {
		ids[i], sets[i] = lbEndpoint(i)
		if _, err := cs.TryAdd(ids[i], sets[i], SourceLimits{}); err != nil {
			b.Fatalf("endpoint %d: %v", i, err)
		}
	}
	return cs, ids, sets
}

// lbFeedback are the bridge's own sources, in every session-initiate.
func lbFeedback() EndpointSources {
	return EndpointSources{Sources: []Source{
		{SSRC: 411111111, Media: MediaAudio, Name: "jvb-a0", MSID: "mixedmslabel mixedlabelaudio0", Owner: OwnerJVB},
		{SSRC: 422222222, Media: MediaVideo, Name: "jvb-v0", MSID: "mixedmslabel mixedlabelvideo0", Owner: OwnerJVB},
	}}
}

// lbFeatures are the effective features of the captured lib-jitsi-meet
// client under the default config (JSON sources on) or with XML sources.
func lbFeatures(form string) Features {
	cc := DefaultConfig().Conference
	cc.UseJSONSources = form == "json"
	return ParseFeatures(testkit.ClientFeatures()).Effective(cc)
}

// BenchmarkJoinOffer: the offer and session-initiate for a participant
// joining a conference whose other endpoints all have sources, encoded.
func BenchmarkJoinOffer(b *testing.B) {
	t, err := ParseElement(lbICE)
	if err != nil {
		b.Fatal(err)
	}
	media, data, err := BridgeTransport(t, 5000)
	if err != nil {
		b.Fatal(err)
	}
	codec := DefaultConfig().Codec
	for _, n := range []int{100, 500} {
		// n-1 endpoints with sources; the joiner has none yet.
		cs, _, _ := lbConference(b, n-1)
		receiver, _ := lbEndpoint(n - 1)
		for _, form := range []string{"json", "xml"} {
			b.Run(fmt.Sprintf("endpoints=%d/%s", n, form), func(b *testing.B) {
				f := lbFeatures(form)
				b.ReportAllocs()
				size := 0
				for b.Loop() {
					offer := BuildOffer(codec, f)
					iq := BuildSessionInitiate(SessionInitiateParams{
						From: lbFocus, To: lbRoom + "/" + receiver, SID: lbSID, Offer: offer,
						MediaTransport: media, DataTransport: data,
						BridgeSessionID: lbSession, Region: "local",
						Conference: cs, Receiver: receiver, Feedback: lbFeedback(),
						Features: f, StripSimulcast: true,
					})
					size = len(iq.Bytes())
				}
				b.ReportMetric(float64(size), "stanza-bytes")
			})
		}
	}
}

// BenchmarkSourcesAddRemoveOneIn500: validating and adding one endpoint's
// 7 SSRCs and 4 groups to a conference of 499 others, then removing them
// (Jicofo's "single add/remove"; BenchmarkTryAdd500 covers adding all 500).
func BenchmarkSourcesAddRemoveOneIn500(b *testing.B) {
	cs, _, _ := lbConference(b, 499)
	id, es := lbEndpoint(499)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := cs.TryAdd(id, es, SourceLimits{}); err != nil {
			b.Fatal(err)
		}
		cs.RemoveOwner(id)
	}
}

// BenchmarkSourceAddFanout100: one participant's accepted sources sent to
// the 99 others of a 100-endpoint conference, one encoded source-add each.
// This is the least the fan-out of a join can cost.
func BenchmarkSourceAddFanout100(b *testing.B) {
	cs, ids, _ := lbConference(b, 100)
	owner := ids[99]
	ss := SourceSet{owner: cs.Get(owner)}
	to := make([]string, 99)
	for i := range to {
		to[i] = lbRoom + "/" + ids[i]
	}
	for _, form := range []string{"json", "xml"} {
		b.Run(form, func(b *testing.B) {
			f := lbFeatures(form)
			b.ReportAllocs()
			bytes := 0
			for b.Loop() {
				bytes = 0
				for _, r := range to {
					bytes += len(BuildSourceAdd(lbFocus, r, lbSID, ss, f, true).Bytes())
				}
			}
			b.ReportMetric(float64(bytes)/float64(len(to)), "bytes/receiver")
		})
	}
}

// BenchmarkPropagateOneAccept: what the focus does today when one
// participant's session-accept arrives in a conference of n (see
// Conference.onAccept and Conference.propagate): add its sources, then for
// every other receiver recompute the whole view (RemoteSources), diff it
// with what the receiver was told (DiffSourceSets) and encode the
// source-add. Compare with BenchmarkSourceAddFanout100, the encoding alone.
func BenchmarkPropagateOneAccept(b *testing.B) {
	fb := lbFeedback()
	for _, n := range []int{25, 100, 500} {
		b.Run(fmt.Sprintf("endpoints=%d", n), func(b *testing.B) {
			cs, ids, sets := lbConference(b, n)
			f := lbFeatures("json")
			joiner, joinerSources := ids[n-1], sets[n-1]
			cs.RemoveOwner(joiner)
			// What each receiver has been told before the joiner accepted.
			signaled := make([]SourceSet, n-1)
			to := make([]string, n-1)
			for r := range n - 1 {
				signaled[r] = RemoteSources(cs, ids[r], fb, f, true)
				to[r] = lbRoom + "/" + ids[r]
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := cs.TryAdd(joiner, joinerSources, SourceLimits{}); err != nil {
					b.Fatal(err)
				}
				for r := range n - 1 {
					want := RemoteSources(cs, ids[r], fb, f, true)
					removed, added := DiffSourceSets(signaled[r], want)
					if iq := BuildSourceRemove(lbFocus, to[r], lbSID, removed, f, true); iq != nil {
						_ = iq.Bytes()
					}
					if iq := BuildSourceAdd(lbFocus, to[r], lbSID, added, f, true); iq != nil {
						_ = iq.Bytes()
					}
				}
				cs.RemoveOwner(joiner)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n-1), "ns/receiver")
		})
	}
}

// BenchmarkSignaledViews: the per-receiver views (RemoteSources) of a whole
// conference, which the focus keeps for every participant (its "signaled"
// set). retained-B/participant is the heap they hold after a GC.
func BenchmarkSignaledViews(b *testing.B) {
	fb := lbFeedback()
	for _, n := range []int{100, 500} {
		b.Run(fmt.Sprintf("endpoints=%d", n), func(b *testing.B) {
			cs, ids, _ := lbConference(b, n)
			f := lbFeatures("json")
			build := func() []SourceSet {
				views := make([]SourceSet, n)
				for r := range n {
					views[r] = RemoteSources(cs, ids[r], fb, f, true)
				}
				return views
			}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			kept := build()
			runtime.GC()
			runtime.ReadMemStats(&after)
			retained := float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
			runtime.KeepAlive(kept)
			kept = nil
			b.ReportAllocs()
			for b.Loop() {
				_ = build()
			}
			b.ReportMetric(retained, "retained-B/participant")
		})
	}
}

// BenchmarkParseSessionAccept: a captured lib-jitsi-meet session-accept,
// from text (as it comes off the stream) and from the parsed element.
func BenchmarkParseSessionAccept(b *testing.B) {
	raw, err := os.ReadFile("testdata/jingle/client-session-accept.xml")
	if err != nil {
		b.Fatal(err)
	}
	text := string(raw)
	parse := func(el *Element) int {
		req, err := ParseJingle(el)
		if err != nil {
			b.Fatal(err)
		}
		srcs, err := ParseJingleSources(req.Jingle, "a38a5182")
		if err != nil {
			b.Fatal(err)
		}
		return len(srcs.Sources)
	}
	el, err := ParseElement(text)
	if err != nil {
		b.Fatal(err)
	}
	if parse(el) == 0 {
		b.Fatal("the captured session-accept has no sources")
	}
	b.Run("text", func(b *testing.B) {
		b.SetBytes(int64(len(text)))
		b.ReportAllocs()
		for b.Loop() {
			el, err := ParseElement(text)
			if err != nil {
				b.Fatal(err)
			}
			parse(el)
		}
	})
	b.Run("element", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			parse(el)
		}
	})
}
