package main

// sourcewire.go: core wire codec: sources in Jingle XML, JSON and Colibri2, parsed and encoded (read as reference).

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
)

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

// sourceView is a change of some owners' sources as one class of receivers
// sees it, rendered once.
type sourceView struct {
	f           Features
	self        string    // the owner these receivers are (left out), or ""
	old         SourceSet // what they had been told about the owners
	want        SourceSet // what they are told now (shared, read-only)
	remove, add [][]byte  // rendered payloads, one per stanza; none when there is nothing to send
}

func newSourceView(f Features, self string, strip bool, cur, signaled SourceSet, owners []string) *sourceView {
	v := &sourceView{f: f, self: self, old: SourceSet{}, want: cur.Filter(f.Audio, f.Video, strip)}
	delete(v.want, self)
	for _, o := range owners {
		if es, ok := signaled[o]; ok && o != self {
			v.old[o] = es
		}
	}
	removed, added := DiffSourceSets(v.old, v.want)
	v.remove = sourcePayloads(RenderSources(removed, f, strip), removed, f, strip)
	v.add = sourcePayloads(RenderSources(added, f, strip), added, f, strip)
	return v
}

// matches reports whether a receiver with these features, told signaled so
// far, sees the change as v does: it was told the very same values (shared
// by an earlier sourceView), not just equal ones.
func (v *sourceView) matches(f Features, self string, signaled SourceSet, owners []string) bool {
	if v.f != f || v.self != self {
		return false
	}
	for _, o := range owners {
		if o == self {
			continue
		}
		a, hadA := v.old[o]
		b, hadB := signaled[o]
		if hadA != hadB || !sameSources(a, b) {
			return false
		}
	}
	return true
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
