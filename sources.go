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
// Everything here is deterministic (insertion order within an endpoint,
// sorted owners across endpoints) so encodings can be golden-tested.
// Nothing here is safe for concurrent use; the conference serialises access.

import (
	"encoding/json"
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

// Parsing what clients send -------------------------------------------------------

// contentMedia maps a description media / content name to a source media
// type; "" with no error means a content that carries no sources (data).
func contentMedia(m string) (string, error) {
	switch strings.ToLower(m) {
	case MediaAudio:
		return MediaAudio, nil
	case MediaVideo:
		return MediaVideo, nil
	case "data", "application":
		return "", nil
	}
	return "", sourceErrorf("Invalid media type: %s", m)
}

// parseSSRC reads an ssrc attribute. Numbers outside 1..2^32-1 get Jicofo's
// validation message; 0 is let through so that validation reports it.
func parseSSRC(raw string) (uint32, error) {
	v, err := strconv.ParseInt(strings.TrimSpace(raw), 10, 64)
	if err != nil {
		return 0, sourceErrorf("Invalid ssrc attribute: %q", raw)
	}
	if v < 0 || v >= 1<<32 {
		return 0, sourceErrorf("Invalid SSRC: %d.", v)
	}
	return uint32(v), nil
}

func parseVideoType(v string) string {
	switch {
	case strings.EqualFold(v, "camera"):
		return "camera"
	case strings.EqualFold(v, "desktop"):
		return "desktop"
	}
	return "" // unknown values are ignored rather than failing the session
}

// parseSourceElement reads <source xmlns=ssma ssrc name videoType> with its
// msid <parameter>. A legacy <ssrc-info owner> is ignored: the owner is
// always the sender.
func parseSourceElement(el *Element, media, owner string) (Source, error) {
	ssrc, err := parseSSRC(el.Attr("ssrc"))
	if err != nil {
		return Source{}, err
	}
	s := Source{SSRC: ssrc, Name: el.Attr("name"), Media: media, Owner: owner,
		VideoType: parseVideoType(el.Attr("videoType"))}
	for _, p := range el.All("", "parameter") {
		if p.Attr("name") == "msid" {
			s.MSID = p.Attr("value")
			break
		}
	}
	if err := checkSourceStrings(s); err != nil {
		return Source{}, err
	}
	return s, nil
}

func parseGroupElement(el *Element, media string) (SSRCGroup, error) {
	sem := strings.ToUpper(el.Attr("semantics"))
	if sem != SemanticsSIM && sem != SemanticsFID {
		return SSRCGroup{}, sourceErrorf("Invalid ssrc-group semantics: %s", el.Attr("semantics"))
	}
	g := SSRCGroup{Semantics: sem, Media: media}
	for _, s := range el.All("", "source") {
		ssrc, err := parseSSRC(s.Attr("ssrc"))
		if err != nil {
			return SSRCGroup{}, err
		}
		g.SSRCs = append(g.SSRCs, ssrc)
	}
	return g, nil
}

// ParseJingleSources reads the sources and ssrc-groups a client signals in the
// <content>s of a <jingle> (session-accept, transport-accept, source-add,
// source-remove). Sources and groups are taken from under <description> and
// directly under <content>. The media type is description@media, else the
// content name; data contents are skipped. Exact duplicates are collapsed.
// Every source is owned by owner, whatever a legacy <ssrc-info> claims. An
// unknown media type, an unparsable SSRC or unknown group semantics is an
// error (*SourceError) whose text suits a bad-request answer.
func ParseJingleSources(jingle *Element, owner string) (EndpointSources, error) {
	var es EndpointSources
	if jingle == nil {
		return es, nil
	}
	seen := map[Source]bool{}
	for _, c := range jingle.All(nsJingle, "content") {
		desc := c.Child(nsRTP, "description")
		m := desc.Attr("media")
		if m == "" {
			m = c.Attr("name")
		}
		media, err := contentMedia(m)
		if err != nil {
			return EndpointSources{}, err
		}
		if media == "" {
			continue
		}
		for _, parent := range []*Element{desc, c} {
			for _, el := range parent.All(nsSSMA, "source") {
				s, err := parseSourceElement(el, media, owner)
				if err != nil {
					return EndpointSources{}, err
				}
				if !seen[s] {
					seen[s] = true
					es.Sources = append(es.Sources, s)
				}
				if len(es.Sources) > maxSourcesPerRequest {
					return EndpointSources{}, sourceErrorf("Too many sources in one request (limit %d).", maxSourcesPerRequest)
				}
			}
			for _, el := range parent.All(nsSSMA, "ssrc-group") {
				g, err := parseGroupElement(el, media)
				if err != nil {
					return EndpointSources{}, err
				}
				if len(es.Groups) >= maxSourcesPerRequest || len(g.SSRCs) > maxSourcesPerRequest {
					return EndpointSources{}, sourceErrorf("Too many ssrc-groups in one request (limit %d).", maxSourcesPerRequest)
				}
				if !containsGroup(es.Groups, g) {
					es.Groups = append(es.Groups, g)
				}
			}
		}
	}
	return es, nil
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

// OwnerOf returns the endpoint that signalled ssrc.
func (cs *ConferenceSources) OwnerOf(ssrc uint32) (string, bool) {
	o, ok := cs.ssrcOwner[ssrc]
	return o, ok
}

// Snapshot returns every endpoint's sources (read-only values).
func (cs *ConferenceSources) Snapshot() SourceSet {
	out := make(SourceSet, len(cs.byOwner))
	for o, es := range cs.byOwner {
		out[o] = es
	}
	return out
}

// ForReceiver returns what receiver should be told about before per-receiver
// filtering: every other endpoint's sources plus the bridge's feedback
// sources (owner "jvb") when there are any (docs/jingle-and-sources.md#the-invite-step-by-step, step 5).
func (cs *ConferenceSources) ForReceiver(receiver string, feedback EndpointSources) SourceSet {
	return cs.forReceiver(receiver, feedback, false)
}

// forReceiver is ForReceiver with the endpoints' simulcast layers stripped
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

// validateEndpointSources checks one endpoint's resulting set (docs/jingle-and-sources.md#source-validation
// rule 6): FID groups have exactly two SSRCs, grouped sources have an msid,
// a group's sources share one msid, and per media type every extended group
// (a SIM group with its FID partners, a lone FID group, a lone source) has
// its own msid.
func validateEndpointSources(es EndpointSources) error {
	index := make(map[uint32]int, len(es.Sources))
	for i, s := range es.Sources {
		index[s.SSRC] = i
	}
	for _, g := range es.Groups {
		msid := ""
		for k, ssrc := range g.SSRCs {
			i, ok := index[ssrc]
			if !ok { // cannot happen after TryAdd/TryRemove's own checks
				return sourceErrorf("An SSRC group contains an SSRC, which hasn't been signaled as a source: %s.", ssrcList(g.SSRCs))
			}
			if g.isFID() && len(g.SSRCs) != 2 {
				return sourceErrorf("Invalid FID group: %s.", ssrcList(g.SSRCs))
			}
			s := es.Sources[i]
			if s.MSID == "" {
				return sourceErrorf("Required source parameter 'msid' is not present.")
			}
			if k == 0 {
				msid = s.MSID
			} else if s.MSID != msid {
				return sourceErrorf("SsrcGroup contains sources with different MSIDs: %s.", ssrcList(g.SSRCs))
			}
		}
	}
	for _, media := range []string{MediaAudio, MediaVideo} {
		seenGroup := map[int]bool{}
		seenMSID := map[string]bool{}
		for i, s := range es.Sources {
			if s.Media != media || s.MSID == "" {
				continue
			}
			key := extendedGroup(s.SSRC, i, es.Groups)
			if seenGroup[key] {
				continue
			}
			seenGroup[key] = true
			if seenMSID[s.MSID] {
				return sourceErrorf("MSID is already used: %s.", s.MSID)
			}
			seenMSID[s.MSID] = true
		}
	}
	return nil
}

// extendedGroup identifies the extended group of a source: the index of its
// SIM group (also for the RTX partner of a simulcast layer), else of its FID
// group, else a per-source key (negative).
func extendedGroup(ssrc uint32, sourceIndex int, groups []SSRCGroup) int {
	simOf := func(s uint32) int {
		for gi, g := range groups {
			if g.isSIM() && slices.Contains(g.SSRCs, s) {
				return gi
			}
		}
		return -1
	}
	if gi := simOf(ssrc); gi >= 0 {
		return gi
	}
	for gi, g := range groups {
		if !g.isFID() || !slices.Contains(g.SSRCs, ssrc) {
			continue
		}
		if len(g.SSRCs) > 1 && g.SSRCs[1] == ssrc {
			if si := simOf(g.SSRCs[0]); si >= 0 {
				return si
			}
		}
		return gi
	}
	return -1 - sourceIndex
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

// XML toward participants ----------------------------------------------------------------

// AppendXML appends the sources and groups of one media type to a
// <description>: <source ssrc name videoType> with <ssrc-info owner> and the
// msid <parameter>, then the <ssrc-group>s (docs/jingle-and-sources.md#sources-in-xml). owner is written
// into <ssrc-info>; when "" each source's own Owner is used.
func (es EndpointSources) AppendXML(desc *Element, media, owner string) {
	for _, s := range es.Sources {
		if s.Media != media {
			continue
		}
		el := NewElement(nsSSMA, "source", "ssrc", strconv.FormatUint(uint64(s.SSRC), 10))
		el.Set("name", s.Name).Set("videoType", s.VideoType)
		o := owner
		if o == "" {
			o = s.Owner
		}
		if o != "" {
			el.Add(NewElement(nsJitmeet, "ssrc-info", "owner", o))
		}
		if s.MSID != "" {
			el.Add(NewElement(nsRTP, "parameter", "name", "msid", "value", s.MSID))
		}
		desc.Add(el)
	}
	for _, g := range es.Groups {
		if g.Media == media {
			desc.Add(groupElement(g))
		}
	}
}

func groupElement(g SSRCGroup) *Element {
	el := NewElement(nsSSMA, "ssrc-group", "semantics", strings.ToUpper(g.Semantics))
	for _, s := range g.SSRCs {
		el.Add(NewElement(nsSSMA, "source", "ssrc", strconv.FormatUint(uint64(s), 10)))
	}
	return el
}

// appendSetXML writes every owner's sources of one media type (owners sorted;
// per owner its sources, then its groups).
func (ss SourceSet) appendSetXML(desc *Element, media string) {
	for _, o := range ss.Owners() {
		ss[o].AppendXML(desc, media, o)
	}
}

func (ss SourceSet) hasMedia(media string) bool {
	for _, es := range ss {
		for _, s := range es.Sources {
			if s.Media == media {
				return true
			}
		}
		for _, g := range es.Groups {
			if g.Media == media {
				return true
			}
		}
	}
	return false
}

// SourcesJingleContents builds the <content name="audio|video"> elements (no
// creator/senders) with a <description media=…> holding the sources, as used
// in source-add and source-remove toward a receiver with features f (media
// types it does not support are left out; simulcast stripped when
// stripSimulcast). Contents come audio first; none when nothing remains.
func SourcesJingleContents(ss SourceSet, f Features, stripSimulcast bool) []*Element {
	ss = ss.Filter(f.Audio, f.Video, stripSimulcast)
	var out []*Element
	for _, media := range []string{MediaAudio, MediaVideo} {
		if !ss.hasMedia(media) {
			continue
		}
		desc := NewElement(nsRTP, "description", "media", media)
		ss.appendSetXML(desc, media)
		out = append(out, NewElement(nsJingle, "content", "name", media).Add(desc))
	}
	return out
}

// AppendSourcesToContents puts the receiver's view of ss into the
// <description>s of an offer's contents (session-initiate, transport-replace
// toward a receiver without JSON sources), matching by description@media.
func AppendSourcesToContents(contents []*Element, ss SourceSet, f Features, stripSimulcast bool) {
	ss = ss.Filter(f.Audio, f.Video, stripSimulcast)
	for _, c := range contents {
		desc := c.Child(nsRTP, "description")
		if m := desc.Attr("media"); m == MediaAudio || m == MediaVideo {
			ss.appendSetXML(desc, m)
		}
	}
}

// SourcesPayload returns the children to put into a source-add/source-remove
// <jingle> for a receiver: one <json-message> when it gets JSON sources
// (f.JSONSources), else the contents of SourcesJingleContents. Nil when the
// receiver's view of ss is empty (then nothing should be sent).
func SourcesPayload(ss SourceSet, f Features, stripSimulcast bool) []*Element {
	ss = ss.Filter(f.Audio, f.Video, stripSimulcast)
	if len(ss) == 0 {
		return nil
	}
	if f.JSONSources {
		return []*Element{SourcesJSONMessage(ss, f, false)}
	}
	return SourcesJingleContents(ss, f, false)
}

// JSON toward participants -----------------------------------------------------------------

// SourcesJSON encodes the receiver's view of ss in the compact form of
// docs/jingle-and-sources.md#sources-in-json: {"sources":{"<owner>":[videoSources,videoGroups,
// audioSources(,audioGroups)]}}, owners sorted.
func SourcesJSON(ss SourceSet, f Features, stripSimulcast bool) string {
	ss = ss.Filter(f.Audio, f.Video, stripSimulcast)
	var b strings.Builder
	b.Grow(64 + 400*len(ss)) // about what an endpoint with audio and video takes
	b.WriteString(`{"sources":{`)
	for i, o := range ss.Owners() {
		if i > 0 {
			b.WriteByte(',')
		}
		writeJSONString(&b, o)
		b.WriteByte(':')
		ss[o].writeCompactJSON(&b)
	}
	b.WriteString(`}}`)
	return b.String()
}

// SourcesJSONMessage wraps SourcesJSON in <json-message xmlns="http://jitsi.org/jitmeet">.
func SourcesJSONMessage(ss SourceSet, f Features, stripSimulcast bool) *Element {
	return NewElement(nsJitmeet, "json-message").SetText(SourcesJSON(ss, f, stripSimulcast))
}

// CompactJSON is one endpoint's [videoSources,videoGroups,audioSources(,audioGroups)].
func (es EndpointSources) CompactJSON() string {
	var b strings.Builder
	es.writeCompactJSON(&b)
	return b.String()
}

func (es EndpointSources) writeCompactJSON(b *strings.Builder) {
	b.WriteByte('[')
	es.writeJSONSources(b, MediaVideo)
	b.WriteByte(',')
	es.writeJSONGroups(b, MediaVideo)
	b.WriteByte(',')
	es.writeJSONSources(b, MediaAudio)
	for _, g := range es.Groups {
		if g.Media == MediaAudio && jsonSemantics(g) != "" {
			b.WriteByte(',')
			es.writeJSONGroups(b, MediaAudio)
			break
		}
	}
	b.WriteByte(']')
}

func (es EndpointSources) writeJSONSources(b *strings.Builder, media string) {
	b.WriteByte('[')
	n := 0
	for _, s := range es.Sources {
		if s.Media != media {
			continue
		}
		if n > 0 {
			b.WriteByte(',')
		}
		n++
		b.WriteString(`{"s":`)
		b.WriteString(strconv.FormatUint(uint64(s.SSRC), 10))
		if s.Name != "" {
			b.WriteString(`,"n":`)
			writeJSONString(b, s.Name)
		}
		if s.MSID != "" {
			b.WriteString(`,"m":`)
			writeJSONString(b, s.MSID)
		}
		if s.VideoType == "desktop" {
			b.WriteString(`,"v":"d"`)
		}
		b.WriteByte('}')
	}
	b.WriteByte(']')
}

func jsonSemantics(g SSRCGroup) string {
	switch {
	case g.isSIM():
		return "s"
	case g.isFID():
		return "f"
	}
	return ""
}

func (es EndpointSources) writeJSONGroups(b *strings.Builder, media string) {
	b.WriteByte('[')
	n := 0
	for _, g := range es.Groups {
		sem := jsonSemantics(g)
		if g.Media != media || sem == "" {
			continue
		}
		if n > 0 {
			b.WriteByte(',')
		}
		n++
		b.WriteString(`["`)
		b.WriteString(sem)
		b.WriteByte('"')
		for _, s := range g.SSRCs {
			b.WriteByte(',')
			b.WriteString(strconv.FormatUint(uint64(s), 10))
		}
		b.WriteByte(']')
	}
	b.WriteByte(']')
}

// writeJSONString writes s as a JSON string, escaping only what JSON requires
// (the XML writer escapes the rest when this ends up in a <json-message>).
func writeJSONString(b *strings.Builder, s string) {
	const hex = "0123456789abcdef"
	b.WriteByte('"')
	last := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '"' && c != '\\' && c >= 0x20 {
			continue
		}
		b.WriteString(s[last:i])
		if c < 0x20 {
			b.WriteString(`\u00`)
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xf])
		} else {
			b.WriteByte('\\')
			b.WriteByte(c)
		}
		last = i + 1
	}
	b.WriteString(s[last:])
	b.WriteByte('"')
}

// Colibri2 toward and from the bridge ---------------------------------------------------------

// Colibri2Sources encodes one endpoint's complete source set for a colibri2
// endpoint (docs/colibri2.md#later-requests): <sources xmlns="jitsi:colibri2"> with one
// <media-source type id> per source name (id = the name, or
// "<endpointID>-a0"/"-v0" for unnamed sources) holding its <source ssrc name
// videoType/> (no msid, no ssrc-info) and the ssrc-groups whose first SSRC is
// one of them. An empty set gives an empty <sources/>.
func (es EndpointSources) Colibri2Sources(endpointID string) *Element {
	root := NewElement(nsColibri2, "sources")
	byID := map[string]*Element{}
	idOf := map[uint32]string{}
	for _, s := range es.Sources {
		id := s.Name
		if id == "" {
			id = endpointID + "-" + s.Media[:min(1, len(s.Media))] + "0"
		}
		ms := byID[id]
		if ms == nil {
			ms = NewElement(nsColibri2, "media-source", "type", s.Media, "id", id)
			byID[id] = ms
			root.Add(ms)
		}
		el := NewElement(nsSSMA, "source", "ssrc", strconv.FormatUint(uint64(s.SSRC), 10))
		ms.Add(el.Set("name", s.Name).Set("videoType", s.VideoType))
		idOf[s.SSRC] = id
	}
	for _, g := range es.Groups {
		if len(g.SSRCs) == 0 {
			continue
		}
		if id, ok := idOf[g.SSRCs[0]]; ok {
			byID[id].Add(groupElement(g))
		}
	}
	return root
}

// ParseFeedbackSources reads the conference-level <sources> of a colibri2
// create response (the bridge's own sources): <media-source type id> with
// <source ssrc name/> and optional <ssrc-group>s. Sources are owned by "jvb"
// and get the msid the client expects (mixedmslabel mixedlabel{audio|video}0)
// unless the bridge sent one; an unnamed source takes the media-source id.
// A nil element gives an empty set.
func ParseFeedbackSources(sources *Element) (EndpointSources, error) {
	var es EndpointSources
	for _, ms := range sources.All(nsColibri2, "media-source") {
		media := strings.ToLower(ms.Attr("type"))
		if media != MediaAudio && media != MediaVideo {
			return EndpointSources{}, sourceErrorf("Invalid media type: %s", ms.Attr("type"))
		}
		for _, el := range ms.All(nsSSMA, "source") {
			s, err := parseSourceElement(el, media, OwnerJVB)
			if err != nil {
				return EndpointSources{}, err
			}
			if s.Name == "" {
				s.Name = ms.Attr("id")
			}
			if s.MSID == "" {
				s.MSID = msidJVBVideo
				if media == MediaAudio {
					s.MSID = msidJVBAudio
				}
			}
			if !slices.Contains(es.Sources, s) && len(es.Sources) < maxFeedbackSources {
				es.Sources = append(es.Sources, s)
			}
		}
		for _, el := range ms.All(nsSSMA, "ssrc-group") {
			g, err := parseGroupElement(el, media)
			if err != nil {
				return EndpointSources{}, err
			}
			if len(g.SSRCs) > 0 && len(g.SSRCs) <= maxFeedbackSources && len(es.Groups) < maxFeedbackSources && !containsGroup(es.Groups, g) {
				es.Groups = append(es.Groups, g)
			}
		}
	}
	return es, nil
}

// Presence -------------------------------------------------------------------------------------

// ParseSourceInfo reads the JSON of a member's <SourceInfo> presence element
// (docs/conference-room.md#what-the-focus-reads-from-member-presence): {"<sourceName>":{"muted":bool,"videoType":…,"mediaType":…}}.
// "muted" defaults to true; without mediaType the media comes from the
// character after the first '-' of the name ('a' or 'v'). The member is
// audio-muted unless some audio source has muted:false (same for video).
// ok is false for invalid JSON (the caller keeps the previous state).
func ParseSourceInfo(js string) (audioMuted, videoMuted, ok bool) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(js), &m); err != nil || m == nil {
		return true, true, false
	}
	audioMuted, videoMuted = true, true
	for name, raw := range m {
		var info struct {
			Muted     *bool   `json:"muted"`
			MediaType *string `json:"mediaType"`
		}
		if json.Unmarshal(raw, &info) != nil {
			continue // not an object: ignore this entry
		}
		media := ""
		if info.MediaType != nil {
			media = strings.ToLower(*info.MediaType)
		} else if i := strings.IndexByte(name, '-'); i >= 0 && i+1 < len(name) {
			switch name[i+1] {
			case 'a':
				media = MediaAudio
			case 'v':
				media = MediaVideo
			}
		}
		if info.Muted == nil || *info.Muted {
			continue
		}
		switch media {
		case MediaAudio:
			audioMuted = false
		case MediaVideo:
			videoMuted = false
		}
	}
	return audioMuted, videoMuted, true
}
