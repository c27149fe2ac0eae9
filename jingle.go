package main

// jingle.go: the Jingle the focus speaks with participants, as pure builders
// and parsers (no networking, no state).
//
// The focus is always the initiator and the offerer. Every participant gets
// its own offer, cut down to the features its client advertised (disco#info):
// no RTX without urn:ietf:rfc:4588, transport-cc only with the tcc feature,
// REMB only when transport-cc is not offered, the SCTP data content only with
// the dtls-sctp feature. The bridge's colibri2 <media> for that endpoint
// mirrors the same offer (ColibriMedia), and the bridge's ICE transport is
// copied into every content (BridgeTransport). Remote sources go either as
// <source>/<ssrc-group> elements in the descriptions or, for clients that
// advertise json-encoded-sources, as one compact JSON message.

import (
	"errors"
	"slices"
	"strconv"
	"strings"
)

// Disco#info feature vars a participant may advertise (docs/conference-room.md#participant-features).
const (
	featureAudio         = "urn:xmpp:jingle:apps:rtp:audio"
	featureVideo         = "urn:xmpp:jingle:apps:rtp:video"
	featureSCTP          = nsSCTP
	featureRTX           = "urn:ietf:rfc:4588"
	featureREMB          = "http://jitsi.org/remb"
	featureTCC           = "http://jitsi.org/tcc"
	featureOpusRED       = "http://jitsi.org/opus-red"
	featureSSRCRewriting = "http://jitsi.org/ssrc-rewriting-1"
	featureJSONSources   = "http://jitsi.org/json-encoded-sources"
	featureAudioMute     = "http://jitsi.org/protocol/audio-mute"
	featureJibri         = "http://jitsi.org/protocol/jibri"
	featureJigasi        = "http://jitsi.org/protocol/jigasi"
)

// Features is what a participant's client supports, from its disco#info.
// colibriCapabilities are the endpoint capabilities the bridge is told of.
func (f Features) colibriCapabilities() []string {
	if f.SSRCRewriting {
		return []string{"source-names", "ssrc-rewriting"}
	}
	return []string{"source-names"}
}

type Features struct {
	Audio, Video  bool // offer the audio / video content
	SCTP          bool // offer the data content (and ask the bridge for SCTP)
	RTX           bool // offer RTX payload types
	REMB          bool // offer goog-remb (only used when TCC is not)
	TCC           bool // offer transport-cc feedback and header extension
	OpusRED       bool // offer RED for opus (if also enabled in config)
	SSRCRewriting bool // the bridge signals remote sources; the focus sends none
	JSONSources   bool // remote sources go as compact JSON (see Effective)
	AudioMute     bool // a Jigasi that can be force-muted
	// Jibri and Jigasi only mean something when the member's real JID is in
	// a trusted domain; the caller checks that (docs/conference-room.md#what-the-focus-reads-from-member-presence).
	Jibri, Jigasi bool
}

// ParseFeatures reads disco#info feature vars; unknown ones are ignored.
func ParseFeatures(vars []string) Features {
	var f Features
	for _, v := range vars {
		switch v {
		case featureAudio:
			f.Audio = true
		case featureVideo:
			f.Video = true
		case featureSCTP:
			f.SCTP = true
		case featureRTX:
			f.RTX = true
		case featureREMB:
			f.REMB = true
		case featureTCC:
			f.TCC = true
		case featureOpusRED:
			f.OpusRED = true
		case featureSSRCRewriting:
			f.SSRCRewriting = true
		case featureJSONSources:
			f.JSONSources = true
		case featureAudioMute:
			f.AudioMute = true
		case featureJibri:
			f.Jibri = true
		case featureJigasi:
			f.Jigasi = true
		}
	}
	return f
}

// DefaultFeatures is what a participant is assumed to support when its
// disco#info fails or times out: audio, video and SCTP, nothing else.
func DefaultFeatures() Features {
	return Features{Audio: true, Video: true, SCTP: true}
}

// Effective applies conference policy to a client's features: with
// use-json-sources off nobody gets JSON sources. The builders below take the
// effective features of the receiver.
func (f Features) Effective(c ConferenceConfig) Features {
	if !c.UseJSONSources {
		f.JSONSources = false
	}
	if !c.UseSSRCRewriting {
		f.SSRCRewriting = false
	}
	return f
}

// The offer ----------------------------------------------------------------

// Payload type numbers of the offer (docs/jingle-and-sources.md#the-offer). They are what the
// bridge expects; changing one needs the same change on every bridge.
const (
	ptAV1            = 41
	ptAV1RTX         = 42
	ptVP8            = 100
	ptVP8RTX         = 96
	ptVP9            = 101
	ptVP9RTX         = 97
	ptH264           = 107
	ptH264RTX        = 99
	ptOpus           = 111
	ptRED            = 112
	ptTelephoneEvent = 126
)

// RTP header extensions: id and URI.
const (
	extAudioLevel    = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
	extMID           = "urn:ietf:params:rtp-hdrext:sdes:mid"
	extAbsSendTime   = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
	extTCC           = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
	extAV1DD         = "https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension"
	extVideoLayers   = "http://www.webrtc.org/experiments/rtp-hdrext/video-layers-allocation00"
	idAudioLevel     = 1
	idAbsSendTime    = 3
	idTCC            = 5
	idMID            = 10
	idAV1DD          = 11
	idVideoLayers    = 12
	h264ProfileLevel = "42e01f;level-asymmetry-allowed=1;packetization-mode=1;"
)

// videoCodecs in the order their payload types appear in the offer.
var videoCodecs = []videoCodec{
	{name: "AV1", pt: ptAV1, rtxPT: ptAV1RTX, on: func(c CodecConfig) bool { return c.AV1 }, rtxFB: true},
	{name: "VP8", pt: ptVP8, rtxPT: ptVP8RTX, on: func(c CodecConfig) bool { return c.VP8 }, rtxFB: true},
	{name: "H264", pt: ptH264, rtxPT: ptH264RTX, on: func(c CodecConfig) bool { return c.H264 },
		params: [][2]string{{"profile-level-id", h264ProfileLevel}}},
	{name: "VP9", pt: ptVP9, rtxPT: ptVP9RTX, on: func(c CodecConfig) bool { return c.VP9 }, rtxFB: true},
}

// rtxOrder is the order of the RTX payload types (by codec index above):
// AV1 42, VP8 96, VP9 97, H264 99.
var rtxOrder = []int{0, 1, 3, 2}

// The bridge's transport ----------------------------------------------------

// Errors about the bridge's transport; the allocation has failed.
var (
	errNoTransport   = errors.New("the bridge returned no ICE-UDP transport")
	errNoICE         = errors.New("the bridge's ICE-UDP transport has no ufrag or pwd")
	errNoFingerprint = errors.New("the bridge's ICE-UDP transport has no DTLS fingerprint")
)

// BridgeTransport turns the ICE-UDP <transport> of the bridge's colibri2
// answer into the transports of the offer: media for the audio and video
// contents and, when sctpPort > 0, data for the data content (the same plus
// an <sctpmap>). Transport attributes (ufrag, pwd, ice-generation…) and
// candidates are kept as they are; each <web-socket> keeps only its url; each
// fingerprint gets required="false" and a cryptex that is "true" only if the
// bridge said so. Children are written web-sockets, rtcp-mux, fingerprints,
// sctpmap, candidates (clients must not depend on the order).
func BridgeTransport(iceUDP *Element, sctpPort int) (media, data *Element, err error) {
	if iceUDP == nil || iceUDP.Local != "transport" || iceUDP.Space != nsICEUDP {
		return nil, nil, errNoTransport
	}
	// Bounded first: it is copied into every content of the offer.
	iceUDP, _ = sanitizeTransport(iceUDP)
	if iceUDP.Attr("ufrag") == "" || iceUDP.Attr("pwd") == "" {
		return nil, nil, errNoICE
	}
	t := &Element{Space: nsICEUDP, Local: "transport"}
	t.Attrs = append(t.Attrs, iceUDP.Attrs...)
	for _, ws := range iceUDP.All(nsColibri, "web-socket") {
		if u := ws.Attr("url"); u != "" {
			t.Add(NewElement(nsColibri, "web-socket", "url", u))
		}
	}
	t.Add(NewElement(nsICEUDP, "rtcp-mux"))
	fps := 0
	for _, fp := range iceUDP.All(nsDTLS, "fingerprint") {
		if fp.Text == "" {
			continue
		}
		cryptex := "false"
		if fp.Attr("cryptex") == "true" {
			cryptex = "true"
		}
		c := NewElement(nsDTLS, "fingerprint", "hash", fp.Attr("hash"), "required", "false")
		c.Set("setup", fp.Attr("setup")).Set("cryptex", cryptex)
		t.Add(c.SetText(strings.TrimSpace(fp.Text)))
		fps++
	}
	if fps == 0 {
		return nil, nil, errNoFingerprint
	}
	cands := iceUDP.All(nsICEUDP, "candidate")
	if sctpPort > 0 {
		data = t.Copy()
		data.Add(NewElement(nsSCTP, "sctpmap", "number", strconv.Itoa(sctpPort),
			"protocol", "webrtc-datachannel", "streams", "1024"))
		for _, c := range cands {
			data.Add(c.Copy())
		}
	}
	for _, c := range cands {
		t.Add(c.Copy())
	}
	return t, data, nil
}

// Session-initiate ------------------------------------------------------------

// SessionInitiateParams is everything a session-initiate depends on.
type SessionInitiateParams struct {
	// Action is "session-initiate" when empty; "transport-replace" has the
	// same shape.
	Action string
	// From is the focus's full JID (also the initiator); To the
	// participant's occupant JID.
	From, To, SID string
	// Offer is BuildOffer's result for this participant; it is not modified.
	Offer []*Element
	// MediaTransport and DataTransport come from BridgeTransport. Without
	// a DataTransport the data content is left out.
	MediaTransport, DataTransport *Element
	// StartAudioMuted / StartVideoMuted add <startmuted> when either is set.
	StartAudioMuted, StartVideoMuted bool
	// BridgeSessionID is the colibri2 session's id; Region the bridge's
	// region ("" leaves the attribute out).
	BridgeSessionID, Region string

	// Remote sources: see RemoteSources. Features are the receiver's
	// effective features (Features.Effective); with JSONSources the sources
	// go as one <json-message>, else as XML in the descriptions.
	Conference     *ConferenceSources
	Receiver       string          // the receiver's endpoint id
	Feedback       EndpointSources // the bridge's feedback sources (owner "jvb")
	Features       Features
	StripSimulcast bool
	// Remote, when set, is RemoteSources' result computed by the caller
	// already (it keeps it as what the receiver was told).
	Remote SourceSet
}

// BuildSessionInitiate builds the whole <iq type="set"> (no id: the sender
// sets it).
func BuildSessionInitiate(p SessionInitiateParams) *Element {
	action := p.Action
	if action == "" {
		action = "session-initiate"
	}
	remote := p.Remote
	if remote == nil {
		remote = RemoteSources(p.Conference, p.Receiver, p.Feedback, p.Features, p.StripSimulcast)
	}
	j := NewElement(nsJingle, "jingle", "action", action, "initiator", p.From, "sid", p.SID)
	group := NewElement(nsGrouping, "group", "semantics", "BUNDLE")
	for _, oc := range p.Offer {
		name := oc.Attr("name")
		t := p.MediaTransport
		if name == "data" {
			if p.DataTransport == nil {
				continue
			}
			t = p.DataTransport
		}
		c := &Element{Space: oc.Space, Local: oc.Local, Attrs: slices.Clone(oc.Attrs)}
		if d := oc.Child(nsRTP, "description"); d != nil {
			// Shared as it is when nothing is added to it (sources as JSON,
			// rtcp-mux there already); copied otherwise.
			if !p.Features.JSONSources || d.Child(nsRTP, "rtcp-mux") == nil {
				d = d.Copy()
				if d.Child(nsRTP, "rtcp-mux") == nil {
					d.Add(NewElement(nsRTP, "rtcp-mux"))
				}
			}
			c.Add(d)
		}
		if t != nil {
			c.Add(t.Copy())
		}
		j.Add(c)
		group.Add(NewElement(nsGrouping, "content", "name", name))
	}
	if !p.Features.JSONSources {
		// Into the descriptions, after <rtcp-mux/> (docs/jingle-and-sources.md#the-offer).
		AppendSourcesToContents(j.Children, remote, p.Features, false)
	}
	j.Add(group)
	if p.StartAudioMuted || p.StartVideoMuted {
		j.Add(NewElement(nsStartMuted, "startmuted",
			"audio", strconv.FormatBool(p.StartAudioMuted), "video", strconv.FormatBool(p.StartVideoMuted)))
	}
	if p.BridgeSessionID != "" {
		bs := NewElement(nsFocus, "bridge-session", "id", p.BridgeSessionID)
		j.Add(bs.Set("region", p.Region))
	}
	if p.Features.JSONSources {
		// Always present with JSON sources, even when empty, as Jicofo does.
		j.Add(SourcesJSONMessage(remote, p.Features, false))
	}
	iq := NewElement(nsClient, "iq", "type", "set", "from", p.From, "to", p.To)
	return iq.Add(j)
}

// BuildSourceAdd builds a source-add telling a receiver with (effective)
// features receiver about sources: <content name="audio|video"> with only a
// <description media> holding sources and groups, or one <json-message>.
// Media types the receiver does not support are left out and simulcast is
// stripped when stripSimulcast. It returns nil when there is nothing to send,
// which includes every receiver that uses SSRC rewriting (the bridge tells
// those about sources itself).
func BuildSourceAdd(from, to, sid string, sources SourceSet, receiver Features, stripSimulcast bool) *Element {
	return buildSources("source-add", from, to, sid, sources, receiver, stripSimulcast)
}

// BuildSourceRemove is BuildSourceAdd for source-remove.
func BuildSourceRemove(from, to, sid string, sources SourceSet, receiver Features, stripSimulcast bool) *Element {
	return buildSources("source-remove", from, to, sid, sources, receiver, stripSimulcast)
}

func buildSources(action, from, to, sid string, ss SourceSet, f Features, stripSimulcast bool) *Element {
	if f.SSRCRewriting {
		return nil
	}
	payload := SourcesPayload(ss, f, stripSimulcast)
	if len(payload) == 0 {
		return nil
	}
	j := NewElement(nsJingle, "jingle", "action", action, "sid", sid).Add(payload...)
	return NewElement(nsClient, "iq", "type", "set", "from", from, "to", to).Add(j)
}

// RenderSources renders the payload BuildSourceAdd and BuildSourceRemove
// would carry, once, for every receiver with the same features; nil when
// there is nothing to send.
func RenderSources(ss SourceSet, f Features, stripSimulcast bool) []byte {
	if f.SSRCRewriting {
		return nil
	}
	return renderChildren(SourcesPayload(ss, f, stripSimulcast), nsJingle)
}

// BuildRenderedSources is BuildSourceAdd (action "source-add") or
// BuildSourceRemove with a payload from RenderSources; nil for an empty one.
func BuildRenderedSources(action, from, to, sid string, payload []byte) *Element {
	if len(payload) == 0 {
		return nil
	}
	j := NewElement(nsJingle, "jingle", "action", action, "sid", sid)
	j.Raw = payload
	return NewElement(nsClient, "iq", "type", "set", "from", from, "to", to).Add(j)
}

// BuildSessionTerminate builds a session-terminate (no initiator attribute)
// with a reason such as "expired", "success" or "general-error" and an
// optional text (docs/jingle-and-sources.md#ending-a-session).
func BuildSessionTerminate(from, to, sid, reason, text string) *Element {
	j := NewElement(nsJingle, "jingle", "action", "session-terminate", "sid", sid)
	if reason != "" {
		r := NewElement(nsJingle, "reason").Add(NewElement(nsJingle, reason))
		if text != "" {
			r.Add(NewElement(nsJingle, "text").SetText(text))
		}
		j.Add(r)
	}
	return NewElement(nsClient, "iq", "type", "set", "from", from, "to", to).Add(j)
}

// Parsing what clients send ----------------------------------------------------

// JingleRequest is a Jingle IQ from a participant, with what the focus acts on.
type JingleRequest struct {
	Action string // legacy addsource/removesource become source-add/source-remove
	SID    string
	From   string
	Jingle *Element
	// Transport is a copy of the first ICE-UDP transport found in the
	// contents, with <rtcp-mux/> added if missing (ready for colibri2).
	Transport *Element
	// TransportDropped counts what sanitizeTransport left out of Transport.
	TransportDropped int
	// From <bridge-session xmlns="http://jitsi.org/protocol/focus">.
	BridgeSessionID string
	Restart         bool // restart="true" (session-terminate)
	ICERestart      bool // ice-restart="true" (session-info)
	// ICEState is the text of <ice-state> in a session-info ("failed").
	ICEState string
	// InitialLastN is <initial-last-n xmlns="jitsi:colibri2" value=N/> of
	// the video content; -1 when absent.
	InitialLastN int
	// Reason and ReasonText of a session-terminate.
	Reason, ReasonText string
}

// Actions the focus handles (docs/jingle-and-sources.md#requests-from-the-participant).
var jingleActions = map[string]bool{
	"session-accept": true, "transport-accept": true, "transport-info": true,
	"transport-reject": true, "source-add": true, "source-remove": true,
	"session-info": true, "session-terminate": true,
}

// ParseJingle reads a Jingle IQ. On error it still returns what it could
// read (the SID in particular), so the caller can route by sid first and
// answer "unknown sid" the way Jicofo does. The error is a *StanzaError:
// bad-request "Missing 'action'", feature-not-implemented "Unsupported
// 'action'", or bad-request for an IQ without <jingle>.
func ParseJingle(iq *Element) (JingleRequest, error) {
	r := JingleRequest{InitialLastN: -1, From: iq.Attr("from")}
	j := iq.Child(nsJingle, "jingle")
	if j == nil {
		return r, Errorf("bad-request", "Missing 'jingle'")
	}
	r.Jingle = j
	r.SID = j.Attr("sid")
	r.Action = j.Attr("action")
	switch r.Action {
	case "addsource":
		r.Action = "source-add"
	case "removesource":
		r.Action = "source-remove"
	}
	for _, c := range j.All(nsJingle, "content") {
		if r.Transport == nil {
			if t := c.Child(nsICEUDP, "transport"); t != nil {
				// Bounded: it is forwarded to the bridge.
				r.Transport, r.TransportDropped = sanitizeTransport(t)
				if r.Transport.Child(nsICEUDP, "rtcp-mux") == nil {
					r.Transport.Add(NewElement(nsICEUDP, "rtcp-mux"))
				}
			}
		}
		if c.Attr("name") == "video" && r.InitialLastN < 0 {
			r.InitialLastN = initialLastN(c)
		}
	}
	if bs := j.Child(nsFocus, "bridge-session"); bs != nil {
		r.BridgeSessionID = bs.Attr("id")
		r.Restart = bs.Attr("restart") == "true"
		r.ICERestart = bs.Attr("ice-restart") == "true"
	}
	if st := j.Child(nsFocus, "ice-state"); st != nil {
		r.ICEState = strings.TrimSpace(st.Text)
	}
	if reason := j.Child(nsJingle, "reason"); reason != nil {
		for _, k := range reason.Children {
			if k.Local == "text" {
				r.ReasonText = k.Text
			} else if r.Reason == "" {
				r.Reason = k.Local
			}
		}
	}
	switch {
	case r.Action == "":
		return r, Errorf("bad-request", "Missing 'action'")
	case !jingleActions[r.Action]:
		return r, Errorf("feature-not-implemented", "Unsupported 'action'")
	}
	return r, nil
}

// initialLastN finds <initial-last-n> in a content or its description.
func initialLastN(c *Element) int {
	el := c.Child(nsColibri2, "initial-last-n")
	if el == nil {
		el = c.Child(nsRTP, "description").Child(nsColibri2, "initial-last-n")
	}
	if el == nil {
		return -1
	}
	n, err := strconv.Atoi(el.Attr("value"))
	if err != nil || n < 0 {
		return -1
	}
	return n
}

// offerFor is the offer for a participant with features f, and the
// Colibri2 media that mirror it: built once per feature set (the codec
// configuration is fixed) and shared. Both are read-only: builders copy
// what they change.
func (f *Focus) offerFor(feat Features) (offer, media []*Element) {
	if v, ok := f.offers.Load(feat); ok {
		o := v.([2][]*Element)
		return o[0], o[1]
	}
	offer = BuildOffer(f.cfg.Codec, feat)
	media = ColibriMedia(offer)
	f.offers.Store(feat, [2][]*Element{offer, media})
	return offer, media
}
