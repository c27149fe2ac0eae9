package main

// sources.go: the media sources of a conference, as pure logic.
//
// Clients signal their sources (SSRCs with a name, an msid and for video a
// videoType, plus SIM/FID ssrc-groups) in session-accept, source-add and
// source-remove. The focus validates them per owner endpoint with Jicofo's
// rules and error texts (docs/jingle-and-sources.md#source-validation), keeps one set per endpoint, and
// re-encodes them for three audiences:
//   - other participants: <source>/<ssrc-group> XML inside <description>s
//     (docs/jingle-and-sources.md#sources-in-xml) or the compact JSON of <json-message> (docs/jingle-and-sources.md#sources-in-json), per
//     receiver filtered by media type and with simulcast stripped (docs/jingle-and-sources.md#telling-participants-about-sources);
//   - the bridge: colibri2 <sources><media-source> (docs/colibri2.md#later-requests);
//   - and back from the bridge: its feedback sources (owner "jvb", docs/colibri2.md#the-answer).
// The per-endpoint rules are in sourcecheck.go and the encodings in
// sourcewire.go; this file holds the model and the conference-wide checks.
// Everything here is deterministic (insertion order within an endpoint,
// sorted owners across endpoints) so encodings can be golden-tested.
// Nothing here is safe for concurrent use; the conference serialises access.

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// OwnerJVB owns the bridge's feedback sources in every encoding.
const OwnerJVB = "jvb"

// Media types of sources.
const (
	MediaAudio = "audio"
	MediaVideo = "video"
)

// SSRC group semantics the focus understands (stored upper-case).
const (
	SemanticsSIM = "SIM"
	SemanticsFID = "FID"
)

// Feedback-source msids the client recognises as the bridge's own.
const (
	msidJVBAudio = "mixedmslabel mixedlabelaudio0"
	msidJVBVideo = "mixedmslabel mixedlabelvideo0"
)

// Source is one SSRC signalled by an endpoint.
type Source struct {
	SSRC      uint32
	Name      string // source name, e.g. "abcd1234-v0"; "" if not signalled
	MSID      string // "<stream> <track>"; "" if not signalled
	VideoType string // "camera", "desktop" or ""
	Media     string // "audio" or "video"
	Owner     string // endpoint id (MUC nickname); "jvb" for bridge feedback sources
}

// SSRCGroup is one ssrc-group (SIM or FID).
type SSRCGroup struct {
	Semantics string // upper-case: SIM, FID
	SSRCs     []uint32
	Media     string // "audio" or "video"
}

// EndpointSources is the set of sources and groups of one endpoint, in the
// order they were added. Values handed out by ConferenceSources share their
// slices with it: treat them as read-only (use Clone to modify).
type EndpointSources struct {
	Sources []Source
	Groups  []SSRCGroup
}

// SourceLimits are the per-endpoint limits of docs/jingle-and-sources.md#source-validation. The zero value
// means the defaults (20 sources, 20 groups).
type SourceLimits struct {
	MaxSSRCs, MaxGroups int
}

// DefaultSourceLimits returns Jicofo's defaults: 20 SSRCs and 20 groups.
func DefaultSourceLimits() SourceLimits { return SourceLimits{MaxSSRCs: 20, MaxGroups: 20} }

func (l SourceLimits) orDefault() SourceLimits {
	if l == (SourceLimits{}) {
		return DefaultSourceLimits()
	}
	return l
}

// SourceError is a rejected source operation or unparsable source signalling.
// Its text is meant for the bad-request answer to the client.
type SourceError struct{ Msg string }

func (e *SourceError) Error() string { return e.Msg }

func sourceErrorf(format string, args ...any) error {
	return &SourceError{Msg: fmt.Sprintf(format, args...)}
}

// ssrcList formats SSRCs the way Jicofo's messages do: [1, 2, 3].
func ssrcList(ssrcs []uint32) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, s := range ssrcs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.FormatUint(uint64(s), 10))
	}
	b.WriteByte(']')
	return b.String()
}

// Group helpers ----------------------------------------------------------------

func (g SSRCGroup) isSIM() bool { return strings.EqualFold(g.Semantics, SemanticsSIM) }
func (g SSRCGroup) isFID() bool { return strings.EqualFold(g.Semantics, SemanticsFID) }

// Equal reports whether two groups have the same semantics, media and SSRCs
// (in order). This is the identity used for duplicate detection and removal.
func (g SSRCGroup) Equal(o SSRCGroup) bool {
	return strings.EqualFold(g.Semantics, o.Semantics) && g.Media == o.Media && slices.Equal(g.SSRCs, o.SSRCs)
}

func containsGroup(groups []SSRCGroup, g SSRCGroup) bool {
	for _, h := range groups {
		if h.Equal(g) {
			return true
		}
	}
	return false
}

func (g SSRCGroup) clone() SSRCGroup {
	g.Semantics = strings.ToUpper(g.Semantics)
	g.SSRCs = slices.Clone(g.SSRCs)
	return g
}

// EndpointSources helpers -------------------------------------------------------

// IsEmpty reports whether there are no sources and no groups.
func (es EndpointSources) IsEmpty() bool { return len(es.Sources) == 0 && len(es.Groups) == 0 }

// SSRCs lists the SSRCs of all sources in order.
func (es EndpointSources) SSRCs() []uint32 {
	out := make([]uint32, len(es.Sources))
	for i, s := range es.Sources {
		out[i] = s.SSRC
	}
	return out
}

// Clone returns a deep copy.
func (es EndpointSources) Clone() EndpointSources {
	out := EndpointSources{Sources: slices.Clone(es.Sources)}
	if es.Groups != nil {
		out.Groups = make([]SSRCGroup, len(es.Groups))
		for i, g := range es.Groups {
			out.Groups[i] = g
			out.Groups[i].SSRCs = slices.Clone(g.SSRCs)
		}
	}
	return out
}

// Filter keeps the sources and groups of the given media types.
func (es EndpointSources) Filter(audio, video bool) EndpointSources {
	if audio && video {
		return es
	}
	keep := func(m string) bool { return (m == MediaAudio && audio) || (m == MediaVideo && video) }
	var out EndpointSources
	for _, s := range es.Sources {
		if keep(s.Media) {
			out.Sources = append(out.Sources, s)
		}
	}
	for _, g := range es.Groups {
		if keep(g.Media) {
			out.Groups = append(out.Groups, g)
		}
	}
	return out
}

// StripSimulcast keeps only the first SSRC of each SIM group and its FID
// (RTX) partner, and drops the SIM groups and the FID groups of the dropped
// layers (docs/jingle-and-sources.md#the-invite-step-by-step, step 5). Malformed FID groups are left alone.
func (es EndpointSources) StripSimulcast() EndpointSources {
	if !slices.ContainsFunc(es.Groups, SSRCGroup.isSIM) {
		return es
	}
	drop := map[uint32]bool{}
	for _, g := range es.Groups {
		if g.isSIM() {
			for _, s := range g.SSRCs[min(1, len(g.SSRCs)):] {
				drop[s] = true
			}
		}
	}
	var out EndpointSources
	for _, g := range es.Groups {
		switch {
		case g.isSIM():
			continue
		case g.isFID() && len(g.SSRCs) == 2 && drop[g.SSRCs[0]]:
			drop[g.SSRCs[1]] = true
			continue
		}
		out.Groups = append(out.Groups, g)
	}
	for _, s := range es.Sources {
		if !drop[s.SSRC] {
			out.Sources = append(out.Sources, s)
		}
	}
	return out
}

// The conference's validated sources -------------------------------------------------

type msidRef struct {
	owner string
	n     int // sources of owner carrying this msid
}

// ConferenceSources holds every endpoint's validated sources, with indexes
// SSRC → owner and msid → owner so that validation does not scan the other
// endpoints. The zero value is ready to use. Each endpoint's set is replaced,
// never modified in place, so the values returned by Get and Snapshot stay
// valid after later changes.
type ConferenceSources struct {
	byOwner   map[string]EndpointSources
	ssrcOwner map[uint32]string
	msidOwner map[string]msidRef
	// Each owner's sources without simulcast layers, as sent to receivers:
	// computed once per change rather than once per receiver.
	strippedBy map[string][2]EndpointSources // owner → {sources, stripped}
}

// NewConferenceSources returns an empty set.
func NewConferenceSources() *ConferenceSources {
	cs := &ConferenceSources{}
	cs.init()
	return cs
}

func (cs *ConferenceSources) init() {
	if cs.byOwner == nil {
		cs.byOwner = map[string]EndpointSources{}
		cs.ssrcOwner = map[uint32]string{}
		cs.msidOwner = map[string]msidRef{}
	}
}

// sameSources reports whether a and b are the same value (same backing
// arrays). Sets are replaced, never modified in place, so this is a cheap
// "unchanged since" test.
func sameSources(a, b EndpointSources) bool {
	if len(a.Sources) != len(b.Sources) || len(a.Groups) != len(b.Groups) {
		return false
	}
	if len(a.Sources) > 0 && &a.Sources[0] != &b.Sources[0] {
		return false
	}
	return len(a.Groups) == 0 || &a.Groups[0] == &b.Groups[0]
}

// Get returns owner's sources (empty if none). Read-only.
func (cs *ConferenceSources) Get(owner string) EndpointSources { return cs.byOwner[owner] }

// stripped is es (owner's current sources) after StripSimulcast, cached.
func (cs *ConferenceSources) stripped(owner string, es EndpointSources) EndpointSources {
	if e, ok := cs.strippedBy[owner]; ok && sameSources(e[0], es) {
		return e[1]
	}
	out := es.StripSimulcast()
	if cs.strippedBy == nil {
		cs.strippedBy = map[string][2]EndpointSources{}
	}
	cs.strippedBy[owner] = [2]EndpointSources{es, out}
	return out
}

// Owners lists the endpoints that have sources, sorted.
func (cs *ConferenceSources) Owners() []string {
	out := make([]string, 0, len(cs.byOwner))
	for o := range cs.byOwner {
		out = append(out, o)
	}
	sort.Strings(out)
	return out
}

// Snapshot returns every endpoint's sources (read-only values).
func (cs *ConferenceSources) Snapshot() SourceSet {
	out := make(SourceSet, len(cs.byOwner))
	for o, es := range cs.byOwner {
		out[o] = es
	}
	return out
}

// forReceiver is every endpoint's sources but receiver's own, plus the
// bridge's feedback sources, with the endpoints' simulcast layers stripped
// when strip is set (the feedback sources have none).
func (cs *ConferenceSources) forReceiver(receiver string, feedback EndpointSources, strip bool) SourceSet {
	out := make(SourceSet, len(cs.byOwner)+1)
	for o, es := range cs.byOwner {
		if o == receiver {
			continue
		}
		if strip {
			es = cs.stripped(o, es)
		}
		out[o] = es
	}
	if !feedback.IsEmpty() {
		out[OwnerJVB] = feedback
	}
	return out
}

// TryAdd validates add as new sources of owner and, if every check passes,
// adds them (docs/jingle-and-sources.md#source-validation; all or nothing). It returns what was accepted:
// add without exact duplicates, empty groups and groups owner already has,
// with Owner set on every source. On error cs is unchanged and the error is
// a *SourceError carrying Jicofo's message.
func (cs *ConferenceSources) TryAdd(owner string, add EndpointSources, limits SourceLimits) (EndpointSources, error) {
	cs.init()
	limits = limits.orDefault()
	existing := cs.byOwner[owner]

	// Collapse exact duplicates (the request is a set, as in Jicofo).
	newSources := make([]Source, 0, len(add.Sources))
	batch := make(map[uint32]int, len(add.Sources))
	for _, s := range add.Sources {
		s.Owner = owner
		if i, ok := batch[s.SSRC]; ok && newSources[i] == s {
			continue
		}
		if _, ok := batch[s.SSRC]; !ok {
			batch[s.SSRC] = len(newSources)
		}
		newSources = append(newSources, s)
	}
	seenBatch := make(map[uint32]bool, len(newSources))
	for _, s := range newSources {
		if s.SSRC == 0 {
			return EndpointSources{}, sourceErrorf("Invalid SSRC: %d.", s.SSRC)
		}
		if _, used := cs.ssrcOwner[s.SSRC]; used || seenBatch[s.SSRC] {
			return EndpointSources{}, sourceErrorf("SSRC is already used: %d.", s.SSRC)
		}
		seenBatch[s.SSRC] = true
		if s.MSID != "" {
			if r, ok := cs.msidOwner[s.MSID]; ok && r.owner != owner {
				return EndpointSources{}, sourceErrorf("MSID is already used: %s.", s.MSID)
			}
		}
		if len(existing.Sources)+len(newSources) > limits.MaxSSRCs {
			return EndpointSources{}, sourceErrorf("SSRC limit (%d) exceeded.", limits.MaxSSRCs)
		}
	}

	known := func(ssrc uint32) bool {
		if seenBatch[ssrc] {
			return true
		}
		o, ok := cs.ssrcOwner[ssrc]
		return ok && o == owner
	}
	var newGroups []SSRCGroup
	for _, g := range add.Groups {
		switch {
		case len(g.SSRCs) == 0, containsGroup(existing.Groups, g):
			continue // silently ignored, as Jicofo does
		}
		for _, ssrc := range g.SSRCs {
			if !known(ssrc) {
				return EndpointSources{}, sourceErrorf(
					"An SSRC group contains an SSRC, which hasn't been signaled as a source: %s.", ssrcList(g.SSRCs))
			}
		}
		if !containsGroup(newGroups, g) {
			newGroups = append(newGroups, g.clone())
		}
	}
	if len(existing.Groups)+len(newGroups) > limits.MaxGroups {
		return EndpointSources{}, sourceErrorf("ssrc-group limit (%d) exceeded.", limits.MaxGroups)
	}

	result := EndpointSources{
		Sources: concat(existing.Sources, newSources),
		Groups:  concat(existing.Groups, newGroups),
	}
	if err := validateEndpointSources(result); err != nil {
		return EndpointSources{}, err
	}
	if n := result.sizeBound(owner); n > maxEndpointSourceBytes {
		return EndpointSources{}, sourceErrorf("Sources too large: up to %d bytes when signalled (limit %d).", n, maxEndpointSourceBytes)
	}

	if !result.IsEmpty() {
		cs.byOwner[owner] = result
	}
	delete(cs.strippedBy, owner)
	for _, s := range newSources {
		cs.ssrcOwner[s.SSRC] = owner
		if s.MSID != "" {
			r := cs.msidOwner[s.MSID]
			cs.msidOwner[s.MSID] = msidRef{owner: owner, n: r.n + 1}
		}
	}
	accepted := EndpointSources{Sources: newSources, Groups: newGroups}
	if len(accepted.Sources) == 0 {
		accepted.Sources = nil
	}
	return accepted, nil
}

// concat returns a fresh slice holding a then b (never aliasing either).
func concat[T any](a, b []T) []T {
	if len(a)+len(b) == 0 {
		return nil
	}
	out := make([]T, 0, len(a)+len(b))
	return append(append(out, a...), b...)
}

// TryRemove removes sources of owner, matched by SSRC only, together with
// every group of owner containing a removed SSRC and the groups listed in rm
// (which must exist exactly). It returns what was removed, as stored. On
// error (a source or group owner does not have, or a remaining set that
// would be invalid) cs is unchanged. An empty rm removes nothing.
func (cs *ConferenceSources) TryRemove(owner string, rm EndpointSources) (EndpointSources, error) {
	if rm.IsEmpty() {
		return EndpointSources{}, nil
	}
	existing := cs.byOwner[owner]
	if existing.IsEmpty() {
		return EndpointSources{}, sourceErrorf("Source does not exist or is not owned by endpoint.")
	}
	drop := make(map[uint32]bool, len(rm.Sources))
	for _, s := range rm.Sources {
		if o, ok := cs.ssrcOwner[s.SSRC]; !ok || o != owner {
			return EndpointSources{}, sourceErrorf("Source does not exist or is not owned by endpoint (ssrc=%d).", s.SSRC)
		}
		drop[s.SSRC] = true
	}
	for _, g := range rm.Groups {
		if !containsGroup(existing.Groups, g) {
			return EndpointSources{}, sourceErrorf("Source group does not exist")
		}
	}
	var removed, remaining EndpointSources
	for _, s := range existing.Sources {
		if drop[s.SSRC] {
			removed.Sources = append(removed.Sources, s)
		} else {
			remaining.Sources = append(remaining.Sources, s)
		}
	}
	for _, g := range existing.Groups {
		if containsGroup(rm.Groups, g) || slices.ContainsFunc(g.SSRCs, func(s uint32) bool { return drop[s] }) {
			removed.Groups = append(removed.Groups, g)
		} else {
			remaining.Groups = append(remaining.Groups, g)
		}
	}
	if err := validateEndpointSources(remaining); err != nil {
		return EndpointSources{}, err
	}
	if remaining.IsEmpty() {
		delete(cs.byOwner, owner)
	} else {
		cs.byOwner[owner] = remaining
	}
	delete(cs.strippedBy, owner)
	cs.unindex(removed.Sources)
	return removed, nil
}

// RemoveOwner forgets all of owner's sources and returns them.
func (cs *ConferenceSources) RemoveOwner(owner string) EndpointSources {
	es, ok := cs.byOwner[owner]
	if !ok {
		return EndpointSources{}
	}
	delete(cs.byOwner, owner)
	delete(cs.strippedBy, owner)
	cs.unindex(es.Sources)
	return es
}

func (cs *ConferenceSources) unindex(sources []Source) {
	for _, s := range sources {
		delete(cs.ssrcOwner, s.SSRC)
		if s.MSID == "" {
			continue
		}
		if r := cs.msidOwner[s.MSID]; r.n <= 1 {
			delete(cs.msidOwner, s.MSID)
		} else {
			r.n--
			cs.msidOwner[s.MSID] = r
		}
	}
}

// Per-receiver sets -----------------------------------------------------------------

// SourceSet maps an owner (endpoint id, or "jvb") to its sources: what one
// receiver is (to be) told about. Encodings iterate owners sorted.
type SourceSet map[string]EndpointSources

// Owners returns the owners, sorted.
func (ss SourceSet) Owners() []string {
	out := make([]string, 0, len(ss))
	for o := range ss {
		out = append(out, o)
	}
	sort.Strings(out)
	return out
}

// IsEmpty reports whether no owner has any source or group.
func (ss SourceSet) IsEmpty() bool {
	for _, es := range ss {
		if !es.IsEmpty() {
			return false
		}
	}
	return true
}

// Filter applies a receiver's view (docs/jingle-and-sources.md#telling-participants-about-sources): only the media types it
// supports, and simulcast stripped when stripSimulcast. Owners left with
// nothing are dropped.
func (ss SourceSet) Filter(audio, video, stripSimulcast bool) SourceSet {
	out := make(SourceSet, len(ss))
	for o, es := range ss {
		es = es.Filter(audio, video)
		if stripSimulcast {
			es = es.StripSimulcast()
		}
		if !es.IsEmpty() {
			out[o] = es
		}
	}
	return out
}

// DiffSourceSets returns what a receiver that was told old must be told to
// end up at new: first removed (for a source-remove), then added (for a
// source-add) (docs/jingle-and-sources.md#telling-participants-about-sources). Sources and groups compare by value.
func DiffSourceSets(old, new SourceSet) (removed, added SourceSet) {
	removed, added = SourceSet{}, SourceSet{}
	minus := func(a, b EndpointSources) EndpointSources {
		var out EndpointSources
		have := make(map[Source]bool, len(b.Sources))
		for _, s := range b.Sources {
			have[s] = true
		}
		for _, s := range a.Sources {
			if !have[s] {
				out.Sources = append(out.Sources, s)
			}
		}
		for _, g := range a.Groups {
			if !containsGroup(b.Groups, g) {
				out.Groups = append(out.Groups, g)
			}
		}
		return out
	}
	for o, es := range old {
		if d := minus(es, new[o]); !d.IsEmpty() {
			removed[o] = d
		}
	}
	for o, es := range new {
		if d := minus(es, old[o]); !d.IsEmpty() {
			added[o] = d
		}
	}
	return removed, added
}

// RemoteSources is what a receiver is told about in its session-initiate
// (docs/jingle-and-sources.md#the-invite-step-by-step, step 5): every other endpoint's sources plus the bridge's
// feedback sources, or only the feedback sources for a receiver that uses
// SSRC rewriting; then only the media types it supports, with simulcast
// stripped when stripSimulcast. cs may be nil.
func RemoteSources(cs *ConferenceSources, receiver string, feedback EndpointSources, f Features, stripSimulcast bool) SourceSet {
	var ss SourceSet
	switch {
	case f.SSRCRewriting || cs == nil:
		ss = SourceSet{}
		if !feedback.IsEmpty() {
			ss[OwnerJVB] = feedback
		}
	default:
		ss = cs.forReceiver(receiver, feedback, stripSimulcast)
	}
	return ss.Filter(f.Audio, f.Video, stripSimulcast)
}
