package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// Golden files under testdata/sources are rewritten with
// `go test -run 'Source' -update .`; read the diff before keeping it.
// checkSourcesGoldenXML compares got with testdata/sources/name (golden_test.go).
func checkSourcesGoldenXML(t *testing.T, name string, got *Element) {
	t.Helper()
	checkGoldenXML(t, "sources", name, got)
}

func checkSourcesGoldenText(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "sources", name)
	if *updateGolden {
		if err := os.WriteFile(path, []byte(got+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if want := strings.TrimSuffix(string(raw), "\n"); got != want {
		t.Errorf("%s differs:\n got: %s\nwant: %s", name, got, want)
	}
}

// Builders for tests ------------------------------------------------------------

func src(media string, ssrc uint32, msid string) Source {
	return Source{SSRC: ssrc, Media: media, MSID: msid}
}

func grp(sem string, ssrcs ...uint32) SSRCGroup {
	return SSRCGroup{Semantics: sem, SSRCs: ssrcs, Media: MediaVideo}
}

func set(sources []Source, groups ...SSRCGroup) EndpointSources {
	return EndpointSources{Sources: sources, Groups: groups}
}

// checkIndexes verifies that the SSRC and msid indexes match the stored sets.
func checkIndexes(t *testing.T, cs *ConferenceSources) {
	t.Helper()
	ssrcs := map[uint32]string{}
	msids := map[string]msidRef{}
	for o, es := range cs.byOwner {
		if es.IsEmpty() {
			t.Errorf("owner %s stored with an empty set", o)
		}
		for _, s := range es.Sources {
			if s.Owner != o {
				t.Errorf("source %d of %s has Owner %q", s.SSRC, o, s.Owner)
			}
			ssrcs[s.SSRC] = o
			if s.MSID != "" {
				r := msids[s.MSID]
				msids[s.MSID] = msidRef{owner: o, n: r.n + 1}
			}
		}
	}
	if !maps.Equal(ssrcs, cs.ssrcOwner) {
		t.Errorf("ssrc index %v, want %v", cs.ssrcOwner, ssrcs)
	}
	if !maps.Equal(msids, cs.msidOwner) {
		t.Errorf("msid index %v, want %v", cs.msidOwner, msids)
	}
}

func snapshotOf(cs *ConferenceSources) map[string]EndpointSources {
	out := map[string]EndpointSources{}
	for o, es := range cs.byOwner {
		out[o] = es.Clone()
	}
	return out
}

func mustTryAdd(t *testing.T, cs *ConferenceSources, owner string, es EndpointSources) EndpointSources {
	t.Helper()
	acc, err := cs.TryAdd(owner, es, SourceLimits{})
	if err != nil {
		t.Fatalf("TryAdd(%s): %v", owner, err)
	}
	return acc
}

// Validation on add ------------------------------------------------------------------

func TestSourcesTryAddRules(t *testing.T) {
	audio := func(ssrc uint32, msid string) Source { return src(MediaAudio, ssrc, msid) }
	video := func(ssrc uint32, msid string) Source { return src(MediaVideo, ssrc, msid) }
	// "other" owns 100 (msid "o"), "me" owns 1 (msid "m") and 2+3 FID (msid "v").
	setup := func(t *testing.T) *ConferenceSources {
		cs := NewConferenceSources()
		mustTryAdd(t, cs, "other", set([]Source{audio(100, "o")}))
		mustTryAdd(t, cs, "me", set([]Source{audio(1, "m"), video(2, "v"), video(3, "v")}, grp("FID", 2, 3)))
		return cs
	}
	twenty := func(from uint32) []Source {
		var out []Source
		for i := range uint32(20) {
			out = append(out, audio(from+i, ""))
		}
		return out
	}
	manyGroups := func(n int) EndpointSources {
		var es EndpointSources
		for i := range uint32(n) {
			a, b := 1000+2*i, 1001+2*i
			m := fmt.Sprint("g", i)
			es.Sources = append(es.Sources, video(a, m), video(b, m))
			es.Groups = append(es.Groups, grp("FID", a, b))
		}
		return es
	}
	tests := []struct {
		name   string
		owner  string
		add    EndpointSources
		limits SourceLimits
		want   string // error text; "" for success
	}{
		{"ssrc zero", "me", set([]Source{audio(0, "")}), SourceLimits{}, "Invalid SSRC: 0."},
		{"ssrc of another endpoint", "me", set([]Source{audio(100, "")}), SourceLimits{}, "SSRC is already used: 100."},
		{"same endpoint re-adds its ssrc", "me", set([]Source{audio(1, "m")}), SourceLimits{}, "SSRC is already used: 1."},
		{"same ssrc twice in one request", "new", set([]Source{audio(7, "x"), audio(7, "y")}), SourceLimits{}, "SSRC is already used: 7."},
		{"exact duplicate collapses", "new", set([]Source{audio(7, "x"), audio(7, "x")}), SourceLimits{}, ""},
		{"msid of another endpoint", "me", set([]Source{audio(9, "o")}), SourceLimits{}, "MSID is already used: o."},
		{"own msid in a new FID partner", "me", set([]Source{audio(4, "m")}, SSRCGroup{Semantics: "FID", SSRCs: []uint32{1, 4}, Media: MediaAudio}), SourceLimits{}, ""},
		{"own msid on a lone source", "me", set([]Source{audio(4, "m")}), SourceLimits{}, "MSID is already used: m."},
		{"ssrc limit default", "new", set(append(twenty(500), audio(600, ""))), SourceLimits{}, "SSRC limit (20) exceeded."},
		{"ssrc limit exactly reached", "new", set(twenty(500)), SourceLimits{}, ""},
		{"ssrc limit counts existing", "me", set([]Source{audio(9, ""), audio(10, "")}), SourceLimits{MaxSSRCs: 4, MaxGroups: 4}, "SSRC limit (4) exceeded."},
		{"invalid ssrc before limit", "me", set([]Source{audio(0, ""), audio(10, "")}), SourceLimits{MaxSSRCs: 4, MaxGroups: 4}, "Invalid SSRC: 0."},
		{"group with unsignalled ssrc", "me", set([]Source{video(5, "w")}, grp("FID", 5, 99)), SourceLimits{}, "An SSRC group contains an SSRC, which hasn't been signaled as a source: [5, 99]."},
		{"group with another endpoint's ssrc", "me", set([]Source{video(5, "o")}, grp("FID", 5, 100)), SourceLimits{}, "MSID is already used: o."},
		{"group with another endpoint's ssrc (own msid)", "me", set([]Source{video(5, "w")}, grp("FID", 5, 100)), SourceLimits{}, "An SSRC group contains an SSRC, which hasn't been signaled as a source: [5, 100]."},
		{"group over existing own ssrcs", "me", set([]Source{video(5, "v")}, grp("SIM", 2, 5)), SourceLimits{}, ""},
		{"group limit default", "new", manyGroups(10), SourceLimits{}, ""},
		{"group limit custom", "new", manyGroups(3), SourceLimits{MaxSSRCs: 20, MaxGroups: 2}, "ssrc-group limit (2) exceeded."},
		{"group limit counts existing", "me", set([]Source{video(5, "w"), video(6, "w")}, grp("FID", 5, 6)), SourceLimits{MaxSSRCs: 20, MaxGroups: 1}, "ssrc-group limit (1) exceeded."},
		{"empty group ignored", "me", set([]Source{video(5, "")}, grp("SIM")), SourceLimits{}, ""},
		{"existing group ignored", "me", set([]Source{video(5, "")}, grp("FID", 2, 3)), SourceLimits{MaxSSRCs: 20, MaxGroups: 1}, ""},
		{"FID with three ssrcs", "new", set([]Source{video(5, "w"), video(6, "w"), video(7, "w")}, grp("FID", 5, 6, 7)), SourceLimits{}, "Invalid FID group: [5, 6, 7]."},
		{"FID with one ssrc", "new", set([]Source{video(5, "w")}, grp("FID", 5)), SourceLimits{}, "Invalid FID group: [5]."},
		{"grouped source without msid", "new", set([]Source{video(5, ""), video(6, "")}, grp("FID", 5, 6)), SourceLimits{}, "Required source parameter 'msid' is not present."},
		{"group with different msids", "new", set([]Source{video(5, "a"), video(6, "b")}, grp("FID", 5, 6)), SourceLimits{}, "SsrcGroup contains sources with different MSIDs: [5, 6]."},
		{"two lone video sources share msid", "new", set([]Source{video(5, "w"), video(6, "w")}), SourceLimits{}, "MSID is already used: w."},
		{"audio and video share msid", "new", set([]Source{audio(5, "w"), video(6, "w")}), SourceLimits{}, ""},
		{"lone sources without msid", "new", set([]Source{video(5, ""), video(6, "")}), SourceLimits{}, ""},
		{"simulcast with RTX", "new", set(
			[]Source{video(11, "s"), video(12, "s"), video(13, "s"), video(21, "s"), video(22, "s"), video(23, "s")},
			grp("SIM", 11, 12, 13), grp("FID", 11, 21), grp("FID", 12, 22), grp("FID", 13, 23)), SourceLimits{}, ""},
		{"simulcast plus separate FID with same msid", "new", set(
			[]Source{video(11, "s"), video(12, "s"), video(21, "s"), video(22, "s"), video(31, "s"), video(32, "s")},
			grp("SIM", 11, 12), grp("FID", 11, 21), grp("FID", 12, 22), grp("FID", 31, 32)), SourceLimits{}, "MSID is already used: s."},
		{"two FID groups with same msid", "new", set(
			[]Source{video(11, "s"), video(21, "s"), video(12, "s"), video(22, "s")},
			grp("FID", 11, 21), grp("FID", 12, 22)), SourceLimits{}, "MSID is already used: s."},
		{"all or nothing: last source bad", "new", set([]Source{audio(50, "x"), video(51, "y"), video(100, "")}), SourceLimits{}, "SSRC is already used: 100."},
		{"all or nothing: validation after indexes", "me", set([]Source{video(5, "v")}), SourceLimits{}, "MSID is already used: v."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cs := setup(t)
			before := snapshotOf(cs)
			acc, err := cs.TryAdd(tc.owner, tc.add, tc.limits)
			if tc.want != "" {
				var se *SourceError
				if !errors.As(err, &se) {
					t.Fatalf("err = %v (%T), want SourceError %q", err, err, tc.want)
				}
				if err.Error() != tc.want {
					t.Fatalf("err = %q, want %q", err, tc.want)
				}
				if !acc.IsEmpty() {
					t.Errorf("accepted %v on error", acc)
				}
				if got := snapshotOf(cs); !reflect.DeepEqual(got, before) {
					t.Errorf("state changed on error:\n got %v\nwant %v", got, before)
				}
			} else if err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			checkIndexes(t, cs)
		})
	}
}

func TestSourcesTryAddAccepted(t *testing.T) {
	cs := NewConferenceSources()
	mustTryAdd(t, cs, "me", set([]Source{src(MediaVideo, 2, "v"), src(MediaVideo, 3, "v")}, grp("FID", 2, 3)))
	// An exact duplicate source, an empty group, a group "me" already has and
	// a duplicate (case-insensitive) group are dropped from what is accepted.
	// SIM(2,4) joins FID(2,3) and FID(4,5) into one extended group: valid.
	add := set([]Source{src(MediaVideo, 4, "v"), src(MediaVideo, 4, "v"), src(MediaVideo, 5, "v")},
		grp("SIM"), grp("FID", 2, 3), grp("FID", 4, 5), grp("fid", 4, 5), grp("SIM", 2, 4))
	acc, err := cs.TryAdd("me", add, SourceLimits{})
	if err != nil {
		t.Fatal(err)
	}
	want := set([]Source{
		{SSRC: 4, Media: MediaVideo, MSID: "v", Owner: "me"},
		{SSRC: 5, Media: MediaVideo, MSID: "v", Owner: "me"},
	}, grp("FID", 4, 5), grp("SIM", 2, 4))
	if !reflect.DeepEqual(acc, want) {
		t.Errorf("accepted %+v\nwant %+v", acc, want)
	}
	got := cs.Get("me")
	if !slices.Equal(got.SSRCs(), []uint32{2, 3, 4, 5}) || len(got.Groups) != 3 {
		t.Errorf("stored %+v", got)
	}
	// The caller's slices are not aliased.
	add.Groups[2].SSRCs[0] = 99
	if cs.Get("me").Groups[1].SSRCs[0] != 4 {
		t.Error("stored group aliases the request")
	}
	checkIndexes(t, cs)

	// Adding nothing for a new endpoint stores nothing.
	if acc, err := cs.TryAdd("empty", set(nil, grp("SIM")), SourceLimits{}); err != nil || !acc.IsEmpty() {
		t.Errorf("empty add: %+v %v", acc, err)
	}
	if slices.Contains(cs.Owners(), "empty") {
		t.Error("empty endpoint stored")
	}
}

func TestSourcesZeroValueUsable(t *testing.T) {
	var cs ConferenceSources
	if _, err := cs.TryRemove("a", set([]Source{src(MediaAudio, 1, "")})); err == nil {
		t.Fatal("remove from empty conference succeeded")
	}
	mustTryAdd(t, &cs, "a", set([]Source{src(MediaAudio, 1, "")}))
	if o, ok := cs.OwnerOf(1); !ok || o != "a" {
		t.Errorf("OwnerOf = %q %v", o, ok)
	}
	if got := cs.RemoveOwner("a"); len(got.Sources) != 1 {
		t.Errorf("RemoveOwner = %+v", got)
	}
	checkIndexes(t, &cs)
}

// Validation on remove ------------------------------------------------------------------

func TestSourcesTryRemoveRules(t *testing.T) {
	video := func(ssrc uint32, msid string) Source { return src(MediaVideo, ssrc, msid) }
	// "me": audio 1 (m), simulcast 11,12 with RTX 21,22 (msid s); "other": 100.
	setup := func(t *testing.T) *ConferenceSources {
		cs := NewConferenceSources()
		mustTryAdd(t, cs, "other", set([]Source{src(MediaAudio, 100, "o")}))
		mustTryAdd(t, cs, "me", set(
			[]Source{src(MediaAudio, 1, "m"), video(11, "s"), video(12, "s"), video(21, "s"), video(22, "s")},
			grp("SIM", 11, 12), grp("FID", 11, 21), grp("FID", 12, 22)))
		return cs
	}
	tests := []struct {
		name        string
		owner       string
		rm          EndpointSources
		want        string
		wantRemoved []uint32
		wantGroups  int // groups removed
	}{
		{"endpoint without sources", "nobody", set([]Source{video(11, "")}), "Source does not exist or is not owned by endpoint.", nil, 0},
		{"another endpoint's source", "me", set([]Source{src(MediaAudio, 100, "o")}), "Source does not exist or is not owned by endpoint (ssrc=100).", nil, 0},
		{"other cannot remove mine", "other", set([]Source{src(MediaAudio, 1, "m")}), "Source does not exist or is not owned by endpoint (ssrc=1).", nil, 0},
		{"unknown ssrc", "me", set([]Source{src(MediaAudio, 1, "m"), video(77, "")}), "Source does not exist or is not owned by endpoint (ssrc=77).", nil, 0},
		{"unknown group", "me", set(nil, grp("FID", 11, 22)), "Source group does not exist", nil, 0},
		{"group with other media is not the same group", "me", set(nil, SSRCGroup{Semantics: "FID", SSRCs: []uint32{11, 21}, Media: MediaAudio}), "Source group does not exist", nil, 0},
		{"matched by ssrc only", "me", set([]Source{{SSRC: 1, Media: MediaVideo, MSID: "different", Name: "x"}}), "", []uint32{1}, 0},
		{"removing an RTX ssrc drops its FID group", "me", set([]Source{video(22, "")}), "", []uint32{22}, 1},
		{"removing a layer drops SIM and FID", "me", set([]Source{video(12, ""), video(22, "")}), "", []uint32{12, 22}, 2},
		{"removing the SIM group alone leaves two FIDs with one msid", "me", set(nil, grp("SIM", 11, 12)), "MSID is already used: s.", nil, 0},
		{"remove all video", "me", set([]Source{video(11, ""), video(12, ""), video(21, ""), video(22, "")}, grp("SIM", 11, 12)), "", []uint32{11, 12, 21, 22}, 3},
		{"empty request", "me", set(nil), "", nil, 0},
		{"empty request for unknown endpoint", "nobody", set(nil), "", nil, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cs := setup(t)
			before := snapshotOf(cs)
			removed, err := cs.TryRemove(tc.owner, tc.rm)
			if tc.want != "" {
				if err == nil || err.Error() != tc.want {
					t.Fatalf("err = %v, want %q", err, tc.want)
				}
				if got := snapshotOf(cs); !reflect.DeepEqual(got, before) {
					t.Errorf("state changed on error")
				}
			} else {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				if got := removed.SSRCs(); !slices.Equal(got, tc.wantRemoved) && len(got)+len(tc.wantRemoved) > 0 {
					t.Errorf("removed ssrcs %v, want %v", got, tc.wantRemoved)
				}
				if len(removed.Groups) != tc.wantGroups {
					t.Errorf("removed groups %v, want %d", removed.Groups, tc.wantGroups)
				}
				for _, s := range removed.Sources {
					if s.Owner != tc.owner || (s.SSRC == 1 && s.MSID != "m") {
						t.Errorf("removed source not as stored: %+v", s)
					}
					if _, ok := cs.OwnerOf(s.SSRC); ok {
						t.Errorf("ssrc %d still indexed", s.SSRC)
					}
				}
			}
			checkIndexes(t, cs)
		})
	}
}

func TestSourcesRemoveFreesSSRCAndMSID(t *testing.T) {
	cs := NewConferenceSources()
	mustTryAdd(t, cs, "a", set([]Source{src(MediaVideo, 1, "m"), src(MediaVideo, 2, "m")}, grp("FID", 1, 2)))
	if _, err := cs.TryRemove("a", set([]Source{src(MediaVideo, 2, "")})); err != nil {
		t.Fatal(err)
	}
	// msid m is still owned by a (source 1 keeps it).
	if _, err := cs.TryAdd("b", set([]Source{src(MediaVideo, 3, "m")}), SourceLimits{}); err == nil || err.Error() != "MSID is already used: m." {
		t.Fatalf("err = %v", err)
	}
	if _, err := cs.TryRemove("a", set([]Source{src(MediaVideo, 1, "")})); err != nil {
		t.Fatal(err)
	}
	if len(cs.Owners()) != 0 {
		t.Fatalf("owners left: %v", cs.Owners())
	}
	mustTryAdd(t, cs, "b", set([]Source{src(MediaVideo, 1, "m")}))
	checkIndexes(t, cs)

	got := cs.RemoveOwner("b")
	if len(got.Sources) != 1 || got.Sources[0].SSRC != 1 {
		t.Errorf("RemoveOwner = %+v", got)
	}
	if got := cs.RemoveOwner("b"); !got.IsEmpty() {
		t.Errorf("second RemoveOwner = %+v", got)
	}
	mustTryAdd(t, cs, "c", set([]Source{src(MediaVideo, 1, "m")}))
	checkIndexes(t, cs)
}

func TestSourcesSnapshotsAreStable(t *testing.T) {
	cs := NewConferenceSources()
	mustTryAdd(t, cs, "a", set([]Source{src(MediaAudio, 1, "x")}))
	snap := cs.Snapshot()
	held := cs.Get("a")
	mustTryAdd(t, cs, "a", set([]Source{src(MediaVideo, 2, "y")}))
	if _, err := cs.TryRemove("a", set([]Source{src(MediaAudio, 1, "")})); err != nil {
		t.Fatal(err)
	}
	if len(snap["a"].Sources) != 1 || snap["a"].Sources[0].SSRC != 1 || len(held.Sources) != 1 {
		t.Errorf("earlier values changed: %+v %+v", snap, held)
	}
	if got := cs.Get("a").SSRCs(); !slices.Equal(got, []uint32{2}) {
		t.Errorf("now %v", got)
	}
}

// Parsing --------------------------------------------------------------------------------

func TestSourcesParseClientCapture(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "sources", "session-accept-p2p.xml"))
	if err != nil {
		t.Fatal(err)
	}
	iq, err := ParseElement(string(raw))
	if err != nil {
		t.Fatal(err)
	}
	es, err := ParseJingleSources(iq.Child(nsJingle, "jingle"), "a38a5182")
	if err != nil {
		t.Fatal(err)
	}
	want := EndpointSources{
		Sources: []Source{
			{SSRC: 1752923664, Name: "a38a5182-a0", MSID: "a38a5182-audio-0-1 23838968-53c9-473a-82b7-9437a10d15c5-1", Media: MediaAudio, Owner: "a38a5182"},
			{SSRC: 1319127653, Name: "a38a5182-v0", MSID: "a38a5182-video-0-1 19238d4d-9a26-4829-8c04-8f69aea55b80-1", VideoType: "camera", Media: MediaVideo, Owner: "a38a5182"},
			{SSRC: 439085284, Name: "a38a5182-v0", MSID: "a38a5182-video-0-1 19238d4d-9a26-4829-8c04-8f69aea55b80-1", VideoType: "camera", Media: MediaVideo, Owner: "a38a5182"},
		},
		Groups: []SSRCGroup{{Semantics: "FID", SSRCs: []uint32{1319127653, 439085284}, Media: MediaVideo}},
	}
	if !reflect.DeepEqual(es, want) {
		t.Fatalf("parsed\n%+v\nwant\n%+v", es, want)
	}
	cs := NewConferenceSources()
	if _, err := cs.TryAdd("a38a5182", es, DefaultSourceLimits()); err != nil {
		t.Fatalf("the real client's sources do not validate: %v", err)
	}
	// What the bridge gets for it.
	checkSourcesGoldenXML(t, "colibri2-capture.xml", cs.Get("a38a5182").Colibri2Sources("a38a5182"))
}

func TestSourcesParseJingle(t *testing.T) {
	const head = `<jingle xmlns="urn:xmpp:jingle:1" action="source-add" sid="s">`
	tests := []struct {
		name    string
		xml     string
		want    EndpointSources
		wantErr string
	}{
		{"content-level sources, media from content name",
			head + `<content name="audio"><source xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" ssrc="5" name="e-a0"><parameter name="msid" value="a b"/></source></content></jingle>`,
			set([]Source{{SSRC: 5, Name: "e-a0", MSID: "a b", Media: MediaAudio, Owner: "e"}}), ""},
		{"description media wins over content name",
			head + `<content name="0"><description xmlns="urn:xmpp:jingle:apps:rtp:1" media="video"><source xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" ssrc="6" videoType="Desktop"/></description></content></jingle>`,
			set([]Source{{SSRC: 6, VideoType: "desktop", Media: MediaVideo, Owner: "e"}}), ""},
		{"legacy ssrc-info owner is ignored",
			head + `<content name="audio"><description xmlns="urn:xmpp:jingle:apps:rtp:1" media="audio"><source xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" ssrc="7"><ssrc-info xmlns="http://jitsi.org/jitmeet" owner="room@muc/victim"/></source></description></content></jingle>`,
			set([]Source{{SSRC: 7, Media: MediaAudio, Owner: "e"}}), ""},
		{"msid parameter in rtp namespace, unknown videoType ignored",
			head + `<content name="video"><description xmlns="urn:xmpp:jingle:apps:rtp:1" media="video"><source xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" ssrc="8" videoType="hologram"><parameter xmlns="urn:xmpp:jingle:apps:rtp:1" name="cname" value="c"/><parameter xmlns="urn:xmpp:jingle:apps:rtp:1" name="msid" value="x y"/></source></description></content></jingle>`,
			set([]Source{{SSRC: 8, MSID: "x y", Media: MediaVideo, Owner: "e"}}), ""},
		{"groups under description and content, semantics case-insensitive, duplicates collapse",
			head + `<content name="video"><description xmlns="urn:xmpp:jingle:apps:rtp:1" media="video"><source xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" ssrc="1"/><source xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" ssrc="1"/><ssrc-group xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" semantics="sim"><source ssrc="1"/><source ssrc="2"/></ssrc-group></description><ssrc-group xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" semantics="FID"><source ssrc="1"/><source ssrc="3"/></ssrc-group><ssrc-group xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" semantics="SIM"><source ssrc="1"/><source ssrc="2"/></ssrc-group></content></jingle>`,
			set([]Source{{SSRC: 1, Media: MediaVideo, Owner: "e"}}, grp("SIM", 1, 2), grp("FID", 1, 3)), ""},
		{"data content skipped",
			head + `<content name="data"><transport xmlns="urn:xmpp:jingle:transports:ice-udp:1"/></content><content name="x"><description xmlns="urn:xmpp:jingle:apps:rtp:1" media="application"/></content></jingle>`,
			EndpointSources{}, ""},
		{"no contents", head + `</jingle>`, EndpointSources{}, ""},
		{"unknown media type",
			head + `<content name="screen"><source xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" ssrc="5"/></content></jingle>`,
			EndpointSources{}, "Invalid media type: screen"},
		{"unknown semantics",
			head + `<content name="video"><description xmlns="urn:xmpp:jingle:apps:rtp:1" media="video"><ssrc-group xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" semantics="FEC-FR"><source ssrc="1"/></ssrc-group></description></content></jingle>`,
			EndpointSources{}, "Invalid ssrc-group semantics: FEC-FR"},
		{"non-numeric ssrc",
			head + `<content name="audio"><source xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" ssrc="abc"/></content></jingle>`,
			EndpointSources{}, `Invalid ssrc attribute: "abc"`},
		{"missing ssrc",
			head + `<content name="audio"><source xmlns="urn:xmpp:jingle:apps:rtp:ssma:0"/></content></jingle>`,
			EndpointSources{}, `Invalid ssrc attribute: ""`},
		{"ssrc out of range",
			head + `<content name="audio"><source xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" ssrc="4294967296"/></content></jingle>`,
			EndpointSources{}, "Invalid SSRC: 4294967296."},
		{"negative ssrc in group",
			head + `<content name="video"><description xmlns="urn:xmpp:jingle:apps:rtp:1" media="video"><ssrc-group xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" semantics="FID"><source ssrc="-1"/></ssrc-group></description></content></jingle>`,
			EndpointSources{}, "Invalid SSRC: -1."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			el, err := ParseElement(tc.xml)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseJingleSources(el, "e")
			if tc.wantErr != "" {
				var se *SourceError
				if !errors.As(err, &se) || err.Error() != tc.wantErr {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
	if es, err := ParseJingleSources(nil, "e"); err != nil || !es.IsEmpty() {
		t.Errorf("nil jingle: %v %v", es, err)
	}
}

// Encodings ----------------------------------------------------------------------------

// Three endpoints as a real client writes them (source-add), plus the
// bridge's feedback sources from a colibri2 create response.
func sourcesFixture(t testing.TB) (*ConferenceSources, EndpointSources) {
	const ssma = `xmlns="urn:xmpp:jingle:apps:rtp:ssma:0"`
	jingles := map[string]string{
		"abcd1234": `<jingle xmlns="urn:xmpp:jingle:1" action="source-add">
  <content name="audio"><description xmlns="urn:xmpp:jingle:apps:rtp:1" media="audio">
    <source ` + ssma + ` ssrc="1001" name="abcd1234-a0"><parameter name="msid" value="abcd-audio a1"/></source>
  </description></content>
  <content name="video"><description xmlns="urn:xmpp:jingle:apps:rtp:1" media="video">
    <source ` + ssma + ` ssrc="2001" name="abcd1234-v0" videoType="camera"><parameter name="msid" value="abcd-video v1"/></source>
    <source ` + ssma + ` ssrc="2002" name="abcd1234-v0" videoType="camera"><parameter name="msid" value="abcd-video v1"/></source>
    <source ` + ssma + ` ssrc="2003" name="abcd1234-v0" videoType="camera"><parameter name="msid" value="abcd-video v1"/></source>
    <source ` + ssma + ` ssrc="3001" name="abcd1234-v0" videoType="camera"><parameter name="msid" value="abcd-video v1"/></source>
    <source ` + ssma + ` ssrc="3002" name="abcd1234-v0" videoType="camera"><parameter name="msid" value="abcd-video v1"/></source>
    <source ` + ssma + ` ssrc="3003" name="abcd1234-v0" videoType="camera"><parameter name="msid" value="abcd-video v1"/></source>
    <ssrc-group ` + ssma + ` semantics="SIM"><source ssrc="2001"/><source ssrc="2002"/><source ssrc="2003"/></ssrc-group>
    <ssrc-group ` + ssma + ` semantics="FID"><source ssrc="2001"/><source ssrc="3001"/></ssrc-group>
    <ssrc-group ` + ssma + ` semantics="FID"><source ssrc="2002"/><source ssrc="3002"/></ssrc-group>
    <ssrc-group ` + ssma + ` semantics="FID"><source ssrc="2003"/><source ssrc="3003"/></ssrc-group>
  </description></content></jingle>`,
		"efgh5678": `<jingle xmlns="urn:xmpp:jingle:1" action="source-add">
  <content name="audio"><description xmlns="urn:xmpp:jingle:apps:rtp:1" media="audio">
    <source ` + ssma + ` ssrc="4001" name="efgh5678-a0"><parameter name="msid" value="efgh-audio a&amp;&quot;"/></source>
  </description></content>
  <content name="video"><description xmlns="urn:xmpp:jingle:apps:rtp:1" media="video">
    <source ` + ssma + ` ssrc="5001" name="efgh5678-v1" videoType="desktop"><parameter name="msid" value="efgh-desktop d"/></source>
    <source ` + ssma + ` ssrc="5002" name="efgh5678-v1" videoType="desktop"><parameter name="msid" value="efgh-desktop d"/></source>
    <ssrc-group ` + ssma + ` semantics="FID"><source ssrc="5001"/><source ssrc="5002"/></ssrc-group>
  </description></content></jingle>`,
		"legacy01": `<jingle xmlns="urn:xmpp:jingle:1" action="source-add">
  <content name="audio"><source ` + ssma + ` ssrc="6001"/></content>
  <content name="video"><source ` + ssma + ` ssrc="6002"><parameter name="msid" value="legacy v"/></source></content></jingle>`,
	}
	cs := NewConferenceSources()
	for _, owner := range []string{"abcd1234", "efgh5678", "legacy01"} {
		el, err := ParseElement(jingles[owner])
		if err != nil {
			t.Fatal(err)
		}
		es, err := ParseJingleSources(el, owner)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cs.TryAdd(owner, es, SourceLimits{}); err != nil {
			t.Fatalf("%s: %v", owner, err)
		}
	}
	fb, err := ParseElement(`<sources xmlns="jitsi:colibri2">
  <media-source type="audio" id="jvb-a0"><source xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" ssrc="8" name="jvb-a0"/></media-source>
  <media-source type="video" id="jvb-v0"><source xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" ssrc="9"/></media-source>
</sources>`)
	if err != nil {
		t.Fatal(err)
	}
	feedback, err := ParseFeedbackSources(fb)
	if err != nil {
		t.Fatal(err)
	}
	return cs, feedback
}

var fullFeatures = Features{Audio: true, Video: true}

func TestSourcesFeedbackParse(t *testing.T) {
	_, fb := sourcesFixture(t)
	want := set([]Source{
		{SSRC: 8, Name: "jvb-a0", MSID: "mixedmslabel mixedlabelaudio0", Media: MediaAudio, Owner: "jvb"},
		{SSRC: 9, Name: "jvb-v0", MSID: "mixedmslabel mixedlabelvideo0", Media: MediaVideo, Owner: "jvb"},
	})
	if !reflect.DeepEqual(fb, want) {
		t.Errorf("got  %+v\nwant %+v", fb, want)
	}
	bad, _ := ParseElement(`<sources xmlns="jitsi:colibri2"><media-source type="data" id="x"/></sources>`)
	if _, err := ParseFeedbackSources(bad); err == nil {
		t.Error("media-source type data accepted")
	}
	if es, err := ParseFeedbackSources(nil); err != nil || !es.IsEmpty() {
		t.Errorf("nil: %v %v", es, err)
	}
}

func TestSourcesGoldenXML(t *testing.T) {
	cs, fb := sourcesFixture(t)
	wrap := func(contents []*Element) *Element {
		return NewElement(nsJingle, "jingle", "action", "source-add").Add(contents...)
	}
	checkSourcesGoldenXML(t, "contents-full.xml", wrap(SourcesJingleContents(cs.ForReceiver("zz", fb), fullFeatures, false)))
	checkSourcesGoldenXML(t, "contents-stripped.xml", wrap(SourcesJingleContents(cs.ForReceiver("legacy01", fb), fullFeatures, true)))
	checkSourcesGoldenXML(t, "colibri2-abcd1234.xml", cs.Get("abcd1234").Colibri2Sources("abcd1234"))
	checkSourcesGoldenXML(t, "colibri2-legacy01.xml", cs.Get("legacy01").Colibri2Sources("legacy01"))

	// Audio-only receivers get no video content.
	audioOnly := SourcesJingleContents(cs.ForReceiver("zz", fb), Features{Audio: true}, true)
	if len(audioOnly) != 1 || audioOnly[0].Attr("name") != "audio" {
		t.Errorf("audio-only receiver got %v", audioOnly)
	}
	if got := SourcesJingleContents(SourceSet{}, fullFeatures, true); got != nil {
		t.Errorf("empty set gave %v", got)
	}
	if got := (EndpointSources{}).Colibri2Sources("x").String(); got != `<sources xmlns="jitsi:colibri2"/>` {
		t.Errorf("empty colibri2 sources: %s", got)
	}
}

func TestSourcesXMLShape(t *testing.T) {
	es := set([]Source{{SSRC: 1234567, Name: "abcd1234-v0", VideoType: "camera", MSID: "stream-id track-id", Media: MediaVideo, Owner: "abcd1234"},
		{SSRC: 7654321, Media: MediaVideo, Owner: "abcd1234"}}, grp("FID", 1234567, 7654321))
	desc := NewElement(nsRTP, "description", "media", "video")
	es.AppendXML(desc, MediaVideo, "")
	want := `<description xmlns="urn:xmpp:jingle:apps:rtp:1" media="video">` +
		`<source xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" ssrc="1234567" name="abcd1234-v0" videoType="camera">` +
		`<ssrc-info xmlns="http://jitsi.org/jitmeet" owner="abcd1234"/>` +
		`<parameter xmlns="urn:xmpp:jingle:apps:rtp:1" name="msid" value="stream-id track-id"/></source>` +
		`<source xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" ssrc="7654321"><ssrc-info xmlns="http://jitsi.org/jitmeet" owner="abcd1234"/></source>` +
		`<ssrc-group xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" semantics="FID"><source ssrc="1234567"/><source ssrc="7654321"/></ssrc-group>` +
		`</description>`
	if got := desc.String(); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	// Audio sources are not written into a video description.
	d2 := NewElement(nsRTP, "description", "media", "audio")
	es.AppendXML(d2, MediaAudio, "x")
	if len(d2.Children) != 0 {
		t.Errorf("video sources in audio description: %s", d2)
	}
}

func TestSourcesAppendToOffer(t *testing.T) {
	cs, fb := sourcesFixture(t)
	offer := []*Element{
		NewElement(nsJingle, "content", "name", "audio").Add(NewElement(nsRTP, "description", "media", "audio")),
		NewElement(nsJingle, "content", "name", "video").Add(NewElement(nsRTP, "description", "media", "video")),
		NewElement(nsJingle, "content", "name", "data").Add(NewElement(nsRTP, "description", "media", "application")),
	}
	AppendSourcesToContents(offer, cs.ForReceiver("abcd1234", fb), fullFeatures, true)
	count := func(c *Element) int { return len(c.Child(nsRTP, "description").All(nsSSMA, "source")) }
	// audio: 8 (jvb), 4001, 6001; video: 9, 5001, 5002, 6002.
	if a, v, d := count(offer[0]), count(offer[1]), count(offer[2]); a != 3 || v != 4 || d != 0 {
		t.Errorf("sources per content: audio %d video %d data %d", a, v, d)
	}
}

func TestSourcesJSONSpecExample(t *testing.T) {
	ss := SourceSet{
		"abcd1234": set([]Source{
			{SSRC: 1, Name: "abcd1234-v0", MSID: "x y", Media: MediaVideo},
			{SSRC: 2, Name: "abcd1234-v0", MSID: "x y", Media: MediaVideo},
			{SSRC: 3, Name: "abcd1234-a0", MSID: "x z", Media: MediaAudio},
		}, grp("FID", 1, 2)),
		"jvb": set([]Source{
			{SSRC: 9, Name: "jvb-v0", MSID: "mixedmslabel mixedlabelvideo0", Media: MediaVideo},
			{SSRC: 8, Name: "jvb-a0", MSID: "mixedmslabel mixedlabelaudio0", Media: MediaAudio},
		}),
	}
	want := `{"sources":{"abcd1234":[[{"s":1,"n":"abcd1234-v0","m":"x y"},{"s":2,"n":"abcd1234-v0","m":"x y"}],[["f",1,2]],[{"s":3,"n":"abcd1234-a0","m":"x z"}]],"jvb":[[{"s":9,"n":"jvb-v0","m":"mixedmslabel mixedlabelvideo0"}],[],[{"s":8,"n":"jvb-a0","m":"mixedmslabel mixedlabelaudio0"}]]}}`
	if got := SourcesJSON(ss, fullFeatures, true); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	// Desktop gets "v":"d", camera nothing; audio groups add a 4th array.
	es := set([]Source{
		{SSRC: 5, VideoType: "desktop", Media: MediaVideo},
		{SSRC: 6, VideoType: "camera", Media: MediaVideo},
		{SSRC: 7, MSID: "a b", Media: MediaAudio}, {SSRC: 8, MSID: "a b", Media: MediaAudio},
	}, SSRCGroup{Semantics: "FID", SSRCs: []uint32{7, 8}, Media: MediaAudio})
	if got, want := es.CompactJSON(), `[[{"s":5,"v":"d"},{"s":6}],[],[{"s":7,"m":"a b"},{"s":8,"m":"a b"}],[["f",7,8]]]`; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if got := SourcesJSON(SourceSet{}, fullFeatures, true); got != `{"sources":{}}` {
		t.Errorf("empty: %s", got)
	}
}

func TestSourcesGoldenJSON(t *testing.T) {
	cs, fb := sourcesFixture(t)
	full := SourcesJSON(cs.ForReceiver("zz", fb), fullFeatures, false)
	stripped := SourcesJSON(cs.ForReceiver("legacy01", fb), fullFeatures, true)
	for _, s := range []string{full, stripped} {
		if !json.Valid([]byte(s)) {
			t.Errorf("invalid JSON: %s", s)
		}
	}
	checkSourcesGoldenText(t, "sources-full.json", full)
	checkSourcesGoldenText(t, "sources-stripped.json", stripped)

	// The escaped msid survives a JSON round trip.
	var parsed struct {
		Sources map[string][]json.RawMessage `json:"sources"`
	}
	if err := json.Unmarshal([]byte(full), &parsed); err != nil {
		t.Fatal(err)
	}
	var audio []struct {
		M string `json:"m"`
	}
	if err := json.Unmarshal(parsed.Sources["efgh5678"][2], &audio); err != nil || audio[0].M != `efgh-audio a&"` {
		t.Errorf("audio of efgh5678: %+v %v", audio, err)
	}
}

func TestSourcesPayload(t *testing.T) {
	cs, fb := sourcesFixture(t)
	ss := cs.ForReceiver("abcd1234", fb)
	if _, ok := ss["abcd1234"]; ok {
		t.Fatal("receiver's own sources included")
	}
	if _, ok := ss[OwnerJVB]; !ok {
		t.Fatal("feedback sources missing")
	}
	js := SourcesPayload(ss, Features{Audio: true, Video: true, JSONSources: true}, true)
	if len(js) != 1 || js[0].Local != "json-message" || js[0].Space != nsJitmeet || !strings.HasPrefix(js[0].Text, `{"sources":{`) {
		t.Errorf("JSON payload %v", js)
	}
	xml := SourcesPayload(ss, fullFeatures, true)
	if len(xml) != 2 || xml[0].Attr("name") != "audio" || xml[1].Attr("name") != "video" || xml[0].Attr("creator") != "" {
		t.Errorf("XML payload %v", xml)
	}
	if got := SourcesPayload(SourceSet{"a": set([]Source{src(MediaVideo, 1, "")})}, Features{Audio: true, JSONSources: true}, true); got != nil {
		t.Errorf("nothing to signal gave %v", got)
	}
	if got := cs.ForReceiver("x", EndpointSources{}); len(got) != 3 {
		t.Errorf("no feedback: owners %v", got.Owners())
	}
}

func TestSourcesStripSimulcast(t *testing.T) {
	cs, _ := sourcesFixture(t)
	got := cs.Get("abcd1234").StripSimulcast()
	if ssrcs := got.SSRCs(); !slices.Equal(ssrcs, []uint32{1001, 2001, 3001}) {
		t.Errorf("kept %v", ssrcs)
	}
	if len(got.Groups) != 1 || !got.Groups[0].Equal(grp("FID", 2001, 3001)) {
		t.Errorf("groups %v", got.Groups)
	}
	// Without SIM nothing changes; malformed FID groups do not panic.
	es := set([]Source{src(MediaVideo, 1, "")}, grp("FID", 1))
	if !reflect.DeepEqual(es.StripSimulcast(), es) {
		t.Error("set without SIM changed")
	}
	es = set([]Source{src(MediaVideo, 1, ""), src(MediaVideo, 2, "")}, grp("SIM", 1, 2), grp("FID", 2), grp("SIM"))
	if ssrcs := es.StripSimulcast().SSRCs(); !slices.Equal(ssrcs, []uint32{1}) {
		t.Errorf("kept %v", ssrcs)
	}
}

func TestSourcesDiff(t *testing.T) {
	cs, fb := sourcesFixture(t)
	old := cs.ForReceiver("legacy01", fb).Filter(true, true, true)
	if _, err := cs.TryRemove("efgh5678", set([]Source{src(MediaVideo, 5002, "")})); err != nil {
		t.Fatal(err)
	}
	mustTryAdd(t, cs, "new", set([]Source{src(MediaAudio, 42, "n")}))
	now := cs.ForReceiver("legacy01", fb).Filter(true, true, true)
	removed, added := DiffSourceSets(old, now)
	if len(removed) != 1 || !slices.Equal(removed["efgh5678"].SSRCs(), []uint32{5002}) || len(removed["efgh5678"].Groups) != 1 {
		t.Errorf("removed %+v", removed)
	}
	if len(added) != 1 || !slices.Equal(added["new"].SSRCs(), []uint32{42}) {
		t.Errorf("added %+v", added)
	}
	r, a := DiffSourceSets(now, now)
	if len(r)+len(a) != 0 {
		t.Errorf("self diff %v %v", r, a)
	}
}

func TestSourcesSourceInfo(t *testing.T) {
	tests := []struct {
		js                  string
		audioMuted, videoMu bool
		ok                  bool
	}{
		{`{}`, true, true, true},
		{`{"a38a5182-a0":{"muted":false},"a38a5182-v0":{"muted":false}}`, false, false, true},
		{`{"a38a5182-a0":{"muted":false},"a38a5182-v0":{"muted":true}}`, false, true, true},
		{`{"a38a5182-a0":{},"a38a5182-v0":{"muted":false,"videoType":"desktop"}}`, true, false, true},
		{`{"weird-name-v0":{"muted":false}}`, true, true, true}, // char after the first '-' is 'n'
		{`{"x":{"muted":false,"mediaType":"audio"}}`, false, true, true},
		{`{"x-v0":{"muted":false,"mediaType":"audio"}}`, false, true, true},
		{`{"x-a0":5,"y-v0":{"muted":false}}`, true, false, true},
		{`{"x-a0":{"muted":false},"x-a1":{"muted":true}}`, false, true, true},
		{`not json`, true, true, false},
		{`[1]`, true, true, false},
		{`null`, true, true, false},
	}
	for _, tc := range tests {
		a, v, ok := ParseSourceInfo(tc.js)
		if a != tc.audioMuted || v != tc.videoMu || ok != tc.ok {
			t.Errorf("%s: got %v %v %v, want %v %v %v", tc.js, a, v, ok, tc.audioMuted, tc.videoMu, tc.ok)
		}
	}
}

// Fuzzing and benchmarks ------------------------------------------------------------------

func FuzzParseJingleSources(f *testing.F) {
	if raw, err := os.ReadFile(filepath.Join("testdata", "sources", "session-accept-p2p.xml")); err == nil {
		f.Add(string(raw))
	}
	f.Add(`<jingle xmlns="urn:xmpp:jingle:1"><content name="video"><description xmlns="urn:xmpp:jingle:apps:rtp:1" media="video"><source xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" ssrc="1"><parameter name="msid" value="a b"/></source><source xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" ssrc="2"><parameter name="msid" value="a b"/></source><ssrc-group xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" semantics="SIM"><source ssrc="1"/><source ssrc="2"/></ssrc-group><ssrc-group xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" semantics="FID"><source ssrc="2"/></ssrc-group></description></content></jingle>`)
	f.Add(`<jingle xmlns="urn:xmpp:jingle:1"><content name="audio"><source xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" ssrc="0"/></content></jingle>`)
	f.Add("<A/>0") // an empty add once left an empty set stored
	f.Fuzz(func(t *testing.T, data string) {
		el, err := ParseElement(data)
		if err != nil {
			return
		}
		if j := el.Child(nsJingle, "jingle"); j != nil {
			el = j
		}
		es, err := ParseJingleSources(el, "fuzz")
		if err != nil {
			return
		}
		cs := NewConferenceSources()
		mustTryAdd(t, cs, "other", set([]Source{src(MediaAudio, 1, "a b"), src(MediaVideo, 2, "x")}))
		before := snapshotOf(cs)
		acc, err := cs.TryAdd("fuzz", es, SourceLimits{})
		if err != nil {
			if got := snapshotOf(cs); !reflect.DeepEqual(got, before) {
				t.Fatalf("state changed on error %v", err)
			}
		}
		checkIndexes(t, cs)
		fb := EndpointSources{}
		for _, strip := range []bool{false, true} {
			ss := cs.ForReceiver("other", fb)
			if js := SourcesJSON(ss, fullFeatures, strip); !json.Valid([]byte(js)) {
				t.Fatalf("invalid JSON %s", js)
			}
			for _, c := range SourcesJingleContents(ss, fullFeatures, strip) {
				if _, err := ParseElement(c.String()); err != nil {
					t.Fatalf("unparsable XML %s: %v", c, err)
				}
			}
		}
		_ = cs.Get("fuzz").Colibri2Sources("fuzz").String()
		if _, err := cs.TryRemove("fuzz", acc); err != nil && !acc.IsEmpty() {
			// Removing what was just added only fails if the rest would be invalid.
			var se *SourceError
			if !errors.As(err, &se) {
				t.Fatalf("remove: %v", err)
			}
		}
		_, _ = cs.TryRemove("fuzz", es)
		cs.RemoveOwner("fuzz")
		checkIndexes(t, cs)
		if len(cs.Owners()) != 1 {
			t.Fatalf("owners %v", cs.Owners())
		}
	})
}

// benchEndpoint is a simulcast client: audio, 3 video layers with RTX; 7
// SSRCs and 4 groups.
func benchEndpoint(i int) (string, EndpointSources) {
	id := fmt.Sprintf("ep%05d", i)
	base := uint32(i*10 + 1)
	a, v := id+"-audio t", id+"-video t"
	es := EndpointSources{Sources: []Source{
		{SSRC: base, Name: id + "-a0", MSID: a, Media: MediaAudio},
		{SSRC: base + 1, Name: id + "-v0", MSID: v, Media: MediaVideo, VideoType: "camera"},
		{SSRC: base + 2, Name: id + "-v0", MSID: v, Media: MediaVideo, VideoType: "camera"},
		{SSRC: base + 3, Name: id + "-v0", MSID: v, Media: MediaVideo, VideoType: "camera"},
		{SSRC: base + 4, Name: id + "-v0", MSID: v, Media: MediaVideo, VideoType: "camera"},
		{SSRC: base + 5, Name: id + "-v0", MSID: v, Media: MediaVideo, VideoType: "camera"},
		{SSRC: base + 6, Name: id + "-v0", MSID: v, Media: MediaVideo, VideoType: "camera"},
	}, Groups: []SSRCGroup{
		grp("SIM", base+1, base+2, base+3),
		grp("FID", base+1, base+4), grp("FID", base+2, base+5), grp("FID", base+3, base+6),
	}}
	return id, es
}

func BenchmarkTryAdd500(b *testing.B) {
	ids := make([]string, 500)
	sets := make([]EndpointSources, 500)
	for i := range sets {
		ids[i], sets[i] = benchEndpoint(i)
	}
	b.ReportAllocs()
	for b.Loop() {
		cs := NewConferenceSources()
		for i := range sets {
			if _, err := cs.TryAdd(ids[i], sets[i], SourceLimits{}); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkSourcesJSON(b *testing.B) {
	cs := NewConferenceSources()
	for i := range 500 {
		id, es := benchEndpoint(i)
		if _, err := cs.TryAdd(id, es, SourceLimits{}); err != nil {
			b.Fatal(err)
		}
	}
	ss := cs.ForReceiver("ep00000", EndpointSources{})
	b.ReportAllocs()
	for b.Loop() {
		_ = SourcesJSON(ss, fullFeatures, true)
	}
}

func TestSourcesBenchFixtureValid(t *testing.T) {
	cs := NewConferenceSources()
	for i := range 500 {
		id, es := benchEndpoint(i)
		mustTryAdd(t, cs, id, es)
	}
	if len(cs.Owners()) != 500 || len(cs.ssrcOwner) != 3500 {
		t.Errorf("owners %d ssrcs %d", len(cs.Owners()), len(cs.ssrcOwner))
	}
	checkIndexes(t, cs)
}

// HasMedia reports whether any source has that media type (for the sender
// limits of source-add).
func (es EndpointSources) HasMedia(media string) bool {
	for _, s := range es.Sources {
		if s.Media == media {
			return true
		}
	}
	return false
}

// OwnerOf returns the endpoint that signalled ssrc.
func (cs *ConferenceSources) OwnerOf(ssrc uint32) (string, bool) {
	o, ok := cs.ssrcOwner[ssrc]
	return o, ok
}

// ForReceiver returns what receiver should be told about before per-receiver
// filtering: every other endpoint's sources plus the bridge's feedback
// sources (owner "jvb") when there are any (docs/jingle-and-sources.md#the-invite-step-by-step, step 5).
func (cs *ConferenceSources) ForReceiver(receiver string, feedback EndpointSources) SourceSet {
	return cs.forReceiver(receiver, feedback, false)
}
