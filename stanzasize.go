package main

// stanzasize.go: keeping what the focus sends under Prosody's stanza size
// limit, whatever participants and bridges send it.
//
// Prosody closes a client stream that sends one stanza over
// c2s_stanza_size_limit (256 KiB by default). For the focus that would end
// every conference at once, so nothing it writes may get there:
//   - every field the focus echoes is bounded where it is read (source
//     names and msids, one endpoint's whole source set, ICE transports from
//     clients and bridges, the bridge's feedback sources);
//   - source-add and source-remove that would be large are split by owner
//     into several stanzas of at most sourceChunkBytes;
//   - a newcomer's session-initiate carries as many owners' sources as fit
//     in initiateBytes; the others follow as source-add once it accepts;
//   - and the XMPP writer refuses anything over maxStanzaBytes (xmpp.go), a
//     last line that is never reached when the above holds.

// Limits on what a participant may signal. Jicofo bounds the number of
// sources and groups (max-ssrcs-per-user, max-ssrc-groups-per-user) but not
// the length of their strings; these bounds are ours.
const (
	// maxSourceNameBytes bounds a source name (the client's are
	// "<endpoint>-a0", "<endpoint>-v1"...).
	maxSourceNameBytes = 128
	// maxMSIDBytes bounds an msid: "<stream id> <track id>", each at most 64
	// characters (RFC 8830), with room to spare.
	maxMSIDBytes = 256
	// maxEndpointSourceBytes bounds what one endpoint's whole source set can
	// take in any stanza that carries it (worst case, escaping included):
	// a source-add that would take an endpoint past it is refused.
	maxEndpointSourceBytes = 48 << 10
)

// Limits on what goes out.
const (
	// sourceChunkBytes is the largest source payload put in one source-add
	// or source-remove; a bigger change is split by owner.
	sourceChunkBytes = 96 << 10
	// initiateBytes is the largest session-initiate the focus builds; remote
	// sources that do not fit follow as source-add.
	initiateBytes = 160 << 10
)

// Limits on an ICE-UDP transport, from a client (forwarded to the bridge)
// or from a bridge (copied into every content of a session-initiate).
const (
	maxCandidates         = 32  // candidates kept (the first ones)
	maxTransportChildren  = 16  // other children kept (fingerprints, web-sockets…)
	maxTransportAttrBytes = 256 // ufrag and pwd are at most 256 characters (RFC 8445)
	maxTransportChildSize = 1024
)

// escapedBound is how many bytes s can take once escaped in XML (at most
// six per byte: `"` becomes &quot;).
func escapedBound(s string) int { return 6 * len(s) }

// sizeBound is an upper bound of what es takes in any encoding the focus
// writes for owner: XML with <ssrc-info owner>, compact JSON, colibri2
// media-sources (which carry the name twice).
func (es EndpointSources) sizeBound(owner string) int {
	n := escapedBound(owner) + 200
	for _, s := range es.Sources {
		n += 300 + escapedBound(owner) + 2*escapedBound(s.Name) + escapedBound(s.MSID) + len(s.VideoType)
	}
	for _, g := range es.Groups {
		n += 100 + 40*len(g.SSRCs)
	}
	return n
}

// checkSourceStrings bounds the strings of one signalled source.
func checkSourceStrings(s Source) error {
	if len(s.Name) > maxSourceNameBytes {
		return sourceErrorf("Source name too long: %d bytes (limit %d).", len(s.Name), maxSourceNameBytes)
	}
	if len(s.MSID) > maxMSIDBytes {
		return sourceErrorf("Source msid too long: %d bytes (limit %d).", len(s.MSID), maxMSIDBytes)
	}
	return nil
}

// splitSourceSet cuts ss into parts whose rendering for a receiver with
// features f each fits in budget, keeping each owner whole (an owner never
// takes more than maxEndpointSourceBytes). Owners go in sorted order, the
// bridge's feedback sources first.
func splitSourceSet(ss SourceSet, f Features, strip bool, budget int) []SourceSet {
	var out []SourceSet
	cur, used := SourceSet{}, 0
	owners := ss.Owners()
	for i, o := range owners {
		if o == OwnerJVB {
			copy(owners[1:i+1], owners[:i])
			owners[0] = OwnerJVB
			break
		}
	}
	for _, o := range owners {
		n := len(RenderSources(SourceSet{o: ss[o]}, f, strip))
		if len(cur) > 0 && used+n > budget {
			out = append(out, cur)
			cur, used = SourceSet{}, 0
		}
		cur[o] = ss[o]
		used += n
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// sourcePayloads is payload (RenderSources of ss) when it fits in
// sourceChunkBytes, else ss split by owner and rendered part by part.
func sourcePayloads(payload []byte, ss SourceSet, f Features, strip bool) [][]byte {
	if len(payload) == 0 {
		return nil
	}
	if len(payload) <= sourceChunkBytes {
		return [][]byte{payload}
	}
	var out [][]byte
	for _, part := range splitSourceSet(ss, f, strip, sourceChunkBytes) {
		if p := RenderSources(part, f, strip); len(p) > 0 {
			out = append(out, p)
		}
	}
	return out
}

// fitRemoteSources returns the part of remote (a receiver's view, already
// filtered) that fits in a session-initiate whose other content takes
// base bytes: the bridge's feedback sources, then owners in sorted order
// while they fit. The rest is sent as source-add after the session-accept.
func fitRemoteSources(remote SourceSet, f Features, base int) SourceSet {
	budget := initiateBytes - base
	parts := splitSourceSet(remote, f, false, budget)
	if len(parts) == 0 {
		return SourceSet{}
	}
	first := parts[0]
	if n := len(RenderSources(first, f, false)); n > budget {
		// Even the first owner does not fit (a huge transport): send the
		// offer alone.
		return SourceSet{}
	}
	return first
}

// sanitizeTransport returns a copy of an ICE-UDP transport cut down to what
// the focus is willing to forward: attributes of at most
// maxTransportAttrBytes, the first maxCandidates candidates and
// maxTransportChildren other children, each at most maxTransportChildSize
// bytes serialised. dropped counts what was left out (for a log line).
func sanitizeTransport(t *Element) (out *Element, dropped int) {
	if t == nil {
		return nil, 0
	}
	out = &Element{Space: t.Space, Local: t.Local}
	for _, a := range t.Attrs {
		if len(a.Value) > maxTransportAttrBytes || len(out.Attrs) >= 16 {
			dropped++
			continue
		}
		out.Attrs = append(out.Attrs, a)
	}
	cands, others := 0, 0
	for _, k := range t.Children {
		isCand := k.Local == "candidate"
		switch {
		case isCand && cands >= maxCandidates, !isCand && others >= maxTransportChildren:
			dropped++
			continue
		}
		if k.sizeHint() > maxTransportChildSize || len(k.String()) > maxTransportChildSize {
			dropped++
			continue
		}
		if isCand {
			cands++
		} else {
			others++
		}
		out.Children = append(out.Children, k.Copy())
	}
	if len(t.Text) <= maxTransportAttrBytes {
		out.Text = t.Text
	}
	return out, dropped
}

// maxFeedbackSources bounds the bridge's own sources (and their groups)
// kept from its answer: a bridge has one audio and one video source.
const maxFeedbackSources = 20

// BuildFittedSessionInitiate is BuildSessionInitiate kept within initiateBytes: when the whole would be bigger, the offer
// carries the bridge's feedback sources and as many owners as fit, and
// whole is the size the whole would have had (0 when it fitted). told is
// what the receiver is told by it; the rest must follow as source-add after
// the session-accept.
func BuildFittedSessionInitiate(p SessionInitiateParams) (iq *Element, told SourceSet, whole int) {
	if p.Remote == nil {
		p.Remote = RemoteSources(p.Conference, p.Receiver, p.Feedback, p.Features, p.StripSimulcast)
	}
	iq = BuildSessionInitiate(p)
	// sizeHint leaves out escaping (at most six bytes per byte): only a
	// stanza that might be too big is serialised to be measured.
	if 6*iq.sizeHint() <= initiateBytes {
		return iq, p.Remote, 0
	}
	if whole = len(iq.Bytes()); whole <= initiateBytes {
		return iq, p.Remote, 0
	}
	remote := p.Remote
	p.Remote = SourceSet{}
	base := len(BuildSessionInitiate(p).Bytes())
	p.Remote = fitRemoteSources(remote, p.Features, base)
	return BuildSessionInitiate(p), p.Remote, whole
}

// maxSourcesPerRequest bounds the sources and the ssrc-groups one Jingle
// request may list before validation (which then applies the per-endpoint
// limits), so that checking a hostile request for duplicates stays cheap.
const maxSourcesPerRequest = 256
