package main

// colibri.go: Colibri2 requests to a videobridge and the reading of its
// answers, as pure functions over *Element (no networking here).
//
// The shapes follow what Jicofo puts on the wire (docs/colibri2.md):
// requests are <iq type="get"> carrying
// <conference-modify xmlns="jitsi:colibri2">, attributes are written only when
// they differ from the bridge's default, and endpoint children come in the
// order media, transport, sources, force-mute, capability*, initial-last-n.

import (
	"errors"
	"fmt"
	"strconv"
)

// Colibri2 capability names (docs/colibri2.md#capabilities).
const (
	CapSourceNames         = "source-names" // mandatory on endpoint create
	CapSSRCRewriting       = "ssrc-rewriting"
	CapPrivateAddressConn  = "private-address-connectivity"
	CapRTPMidDemux         = "rtp-mid-demux" // name unverified upstream
	colibriSCTPDefaultPort = 5000
)

// Colibri2 error reasons: the reason attribute of <error xmlns="jitsi:colibri2"/>
// inside a stanza error (docs/colibri2.md#errors).
const (
	ReasonConferenceNotFound      = "conference_not_found"
	ReasonConferenceAlreadyExists = "conference_already_exists"
	ReasonFeatureNotImplemented   = "feature_not_implemented"
	ReasonGracefulShutdown        = "graceful_shutdown"
	ReasonUnknownEndpoint         = "unknown_endpoint"
	ReasonUnspecified             = "unspecified"
)

// ColibriRequest is one conference-modify request to one bridge.
type ColibriRequest struct {
	MeetingID string // always sent
	// Name is the conference room JID; written only with Create.
	Name string
	// Create creates the conference on the bridge (the first request of a
	// session). It brings name, rtcstats-enabled and the connects.
	Create bool
	// RTCStatsDisabled writes rtcstats-enabled="false" (only with Create;
	// true is the bridge's default and is never written).
	RTCStatsDisabled bool
	// Expire expires the whole conference on the bridge.
	Expire    bool
	Endpoints []ColibriEndpoint
	// Relays are prebuilt <relay xmlns="jitsi:colibri2"> elements (Octo).
	Relays []*Element
	// Connects is a prebuilt <connects xmlns="jitsi:colibri2"> element.
	Connects *Element
}

// ColibriEndpoint describes one <endpoint> of a request.
//
// InitialLastN uses -1 for "none": a zero value writes <initial-last-n value="0"/>
// (except with Expire, which writes nothing but the id).
type ColibriEndpoint struct {
	ID, StatsID string
	// Create allocates the endpoint: <transport ice-controlling="true">, the
	// (possibly empty) <sources>, the capabilities with source-names first.
	Create bool
	// Expire writes <endpoint id expire="true"/> and nothing else.
	Expire bool
	// Media are the <media type="audio|video"> elements (jitsi:colibri2) of
	// the participant's offer; written on create only.
	Media []*Element
	// SCTP asks for an SCTP association (<sctp/> in the create transport).
	SCTP bool
	// Transport is the client's urn:xmpp:jingle:transports:ice-udp:1
	// transport, for updates (session-accept, transport-info).
	Transport *Element
	// Sources is a prebuilt <sources xmlns="jitsi:colibri2">; nil leaves the
	// bridge's sources alone on an update (an empty one is sent on create).
	Sources *Element
	// ForceMute, when set, writes <force-mute> with audio/video attributes
	// only for the true entries ([0] audio, [1] video).
	ForceMute *[2]bool
	// Capabilities beyond source-names (which create always writes),
	// e.g. CapSSRCRewriting; written on create only.
	Capabilities []string
	InitialLastN int // -1 = none
	// ICERestart asks for an in-place ICE restart (<transport ice-restart="true"/>).
	ICERestart bool
	// MucRole is written as muc-role on create ("visitor" for visitors).
	MucRole string
	// Diarize writes diarize="true" on create (attribute name unverified upstream).
	Diarize bool
}

// BuildConferenceModify renders the <conference-modify xmlns="jitsi:colibri2">
// payload of req.
func BuildConferenceModify(req ColibriRequest) *Element {
	cm := NewElement(nsColibri2, "conference-modify", "meeting-id", req.MeetingID)
	if req.Create {
		cm.Set("name", req.Name)
		cm.Set("create", "true")
		if req.RTCStatsDisabled {
			cm.Set("rtcstats-enabled", "false")
		}
	}
	if req.Expire {
		cm.Set("expire", "true")
	}
	for i := range req.Endpoints {
		cm.Add(buildColibriEndpoint(&req.Endpoints[i]))
	}
	for _, r := range req.Relays {
		cm.Add(r.Copy())
	}
	if req.Connects != nil {
		cm.Add(req.Connects.Copy())
	}
	return cm
}

func buildColibriEndpoint(ep *ColibriEndpoint) *Element {
	el := NewElement(nsColibri2, "endpoint", "id", ep.ID)
	if ep.Expire {
		return el.Set("expire", "true")
	}
	if ep.Create {
		el.Set("create", "true")
	}
	el.Set("stats-id", ep.StatsID)
	if ep.Create {
		el.Set("muc-role", ep.MucRole)
		if ep.Diarize {
			el.Set("diarize", "true")
		}
		for _, m := range ep.Media {
			el.Add(m.Copy())
		}
	}
	switch {
	case ep.Create:
		t := NewElement(nsColibri2, "transport", "ice-controlling", "true")
		if ep.SCTP {
			t.Add(NewElement(nsColibri2, "sctp"))
		}
		el.Add(t)
	case ep.ICERestart:
		el.Add(NewElement(nsColibri2, "transport", "ice-restart", "true"))
	case ep.Transport != nil:
		el.Add(NewElement(nsColibri2, "transport").Add(ep.Transport.Copy()))
	}
	if ep.Sources != nil {
		el.Add(ep.Sources.Copy())
	} else if ep.Create {
		el.Add(NewElement(nsColibri2, "sources"))
	}
	if fm := ep.ForceMute; fm != nil {
		f := NewElement(nsColibri2, "force-mute")
		if fm[0] {
			f.Set("audio", "true")
		}
		if fm[1] {
			f.Set("video", "true")
		}
		el.Add(f)
	}
	if ep.Create {
		el.Add(NewElement(nsColibri2, "capability", "name", CapSourceNames))
		for _, c := range ep.Capabilities {
			if c != CapSourceNames && c != "" {
				el.Add(NewElement(nsColibri2, "capability", "name", c))
			}
		}
	}
	if ep.InitialLastN >= 0 {
		el.Add(NewElement(nsColibri2, "initial-last-n", "value", strconv.Itoa(ep.InitialLastN)))
	}
	return el
}

// ColibriIQ wraps a conference-modify in <iq type="get" to=…> as Jicofo sends
// it (Smack's default type). The id is left for SendIQ to fill in.
func ColibriIQ(to string, payload *Element) *Element {
	return NewIQ("get", to, "", payload)
}

// ColibriAllocation is what an endpoint-create response gives the focus.
type ColibriAllocation struct {
	// Transport is the bridge's urn:xmpp:jingle:transports:ice-udp:1
	// transport for the endpoint (ufrag, pwd, candidates, fingerprint,
	// web-socket), to be copied into the Jingle offer.
	Transport *Element
	// SCTPPort is the <sctp port> of the answer, 0 when none was asked for.
	SCTPPort int
	// FeedbackSources is the conference-level <sources> of the response
	// (jvb-a0/jvb-v0), or nil.
	FeedbackSources *Element
}

// Errors of ParseAllocation. ErrColibriNotModified is a response of the wrong
// kind (Jicofo marks the bridge non-operational); the others mean the
// allocation of this participant failed (ClassifyColibriError tells which).
var (
	ErrColibriNotModified = errors.New("colibri2: response is not conference-modified")
	ErrColibriAllocation  = errors.New("colibri2: allocation failed")
)

// ParseAllocation reads the answer to an endpoint-create request: resp is the
// result IQ or its <conference-modified> payload. A missing endpoint, a
// missing ICE-UDP transport or, when wantSCTP, a missing <sctp port> is an
// error wrapping ErrColibriAllocation.
func ParseAllocation(resp *Element, endpointID string, wantSCTP bool) (ColibriAllocation, error) {
	var out ColibriAllocation
	cm := resp
	if cm != nil && cm.Local == "iq" {
		cm = cm.Child(nsColibri2, "conference-modified")
	}
	if cm == nil || cm.Space != nsColibri2 || cm.Local != "conference-modified" {
		return out, ErrColibriNotModified
	}
	out.FeedbackSources = cm.Child(nsColibri2, "sources")
	var ep *Element
	for _, e := range cm.All(nsColibri2, "endpoint") {
		if e.Attr("id") == endpointID {
			ep = e
			break
		}
	}
	if ep == nil {
		return out, fmt.Errorf("%w: no endpoint %q in the response", ErrColibriAllocation, endpointID)
	}
	t := ep.Child(nsColibri2, "transport")
	out.Transport = t.Child(nsICEUDP, "transport")
	if out.Transport == nil {
		return out, fmt.Errorf("%w: no ICE-UDP transport for endpoint %q", ErrColibriAllocation, endpointID)
	}
	if sctp := t.Child(nsColibri2, "sctp"); sctp != nil {
		p, err := strconv.Atoi(sctp.Attr("port"))
		if err == nil && p > 0 && p <= 65535 {
			out.SCTPPort = p
		}
	}
	if wantSCTP && out.SCTPPort == 0 {
		return out, fmt.Errorf("%w: requested SCTP, but the response had no SCTP port", ErrColibriAllocation)
	}
	return out, nil
}

// ColibriFailure says what the focus does after a failed Colibri2 request
// (docs/colibri2.md#what-the-focus-does-on-an-error). The zero value means "only log it".
type ColibriFailure struct {
	// FailParticipantOnly: fail this participant's allocation; the session
	// and the other participants on the bridge stay.
	FailParticipantOnly bool
	// RemoveSessionReinvite: remove the session with this bridge (send it
	// conference-modify expire="true", expire relays pointing at it) and
	// re-invite every participant that was on it, this one included.
	RemoveSessionReinvite bool
	// MarkNonOperational: exclude the bridge from selection (until a health
	// check passes and the failure-reset threshold has passed).
	MarkNonOperational bool
	// MarkGracefulShutdown: treat the bridge as in graceful shutdown now,
	// without waiting for its presence.
	MarkGracefulShutdown bool
	// UnknownEndpoint is the id from <endpoint xmlns="jitsi:colibri2" id>
	// when the bridge said reason="unknown_endpoint".
	UnknownEndpoint string
	// Reason is the colibri2 reason of the error, "" when there was none
	// (then the error probably came from the MUC or the server).
	Reason string
}

// colibriReason returns the colibri2 reason and the unknown endpoint id of se.
func colibriReason(se *StanzaError) (reason, endpoint string) {
	for _, a := range se.App {
		if a.Space != nsColibri2 {
			continue
		}
		switch a.Local {
		case "error":
			if reason == "" {
				reason = a.Attr("reason")
			}
		case "endpoint":
			if endpoint == "" {
				endpoint = a.Attr("id")
			}
		}
	}
	return reason, endpoint
}

// ClassifyColibriError maps the error of an endpoint allocation (the blocking
// request with <endpoint create="true">, and the errors of ParseAllocation)
// to the focus's reaction, row by row as Jicofo does it:
//
//	timeout                                  → non-operational, remove session + re-invite
//	bad-request                              → fail this participant only
//	item-not-found + conference_not_found    → remove session + re-invite
//	item-not-found, any other or no reason   → fail this participant only (MUC: occupant gone)
//	conflict, no reason (not from a bridge)  → remove session + re-invite
//	conflict + conference_already_exists     → remove session + re-invite
//	conflict + another reason                → remove session + re-invite
//	service-unavailable + graceful_shutdown  → graceful shutdown, remove session + re-invite
//	service-unavailable otherwise, any other → non-operational, remove session + re-invite
//	not conference-modified                  → non-operational, fail this participant only
//	no transport / no sctp when requested    → fail this participant only
//
// Any other error (not connected, cancelled) fails the participant only.
// UnknownEndpoint and Reason are filled in whenever the error carries them.
func ClassifyColibriError(err error) ColibriFailure {
	var f ColibriFailure
	if err == nil {
		return f
	}
	var se *StanzaError
	switch {
	case errors.As(err, &se):
		f.Reason, f.UnknownEndpoint = colibriReason(se)
		if f.Reason != ReasonUnknownEndpoint {
			f.UnknownEndpoint = ""
		}
		switch se.Condition {
		case "bad-request":
			f.FailParticipantOnly = true
		case "item-not-found":
			if f.Reason == ReasonConferenceNotFound {
				f.RemoveSessionReinvite = true
			} else {
				f.FailParticipantOnly = true
			}
		case "conflict":
			f.RemoveSessionReinvite = true
		case "service-unavailable":
			if f.Reason == ReasonGracefulShutdown {
				f.MarkGracefulShutdown = true
			} else {
				f.MarkNonOperational = true
			}
			f.RemoveSessionReinvite = true
		default:
			f.MarkNonOperational = true
			f.RemoveSessionReinvite = true
		}
	case errors.Is(err, ErrIQTimeout):
		f.MarkNonOperational = true
		f.RemoveSessionReinvite = true
	case errors.Is(err, ErrColibriNotModified):
		f.MarkNonOperational = true
		f.FailParticipantOnly = true
	default: // ErrColibriAllocation, not connected, cancelled
		f.FailParticipantOnly = true
	}
	return f
}

// ClassifyColibriUpdateError maps the error of any other request (updates,
// force-mute, expires, relays), which the focus sends without waiting:
//
//	timeout                                       → only logged (zero value)
//	reason unknown_endpoint + <endpoint id> given → UnknownEndpoint: drop and re-invite that participant
//	any other error, or not conference-modified   → remove session + re-invite
//
// Other errors (not connected, cancelled) are only logged.
func ClassifyColibriUpdateError(err error) ColibriFailure {
	var f ColibriFailure
	if err == nil || errors.Is(err, ErrIQTimeout) {
		return f
	}
	var se *StanzaError
	switch {
	case errors.As(err, &se):
		f.Reason, f.UnknownEndpoint = colibriReason(se)
		if f.Reason != ReasonUnknownEndpoint || f.UnknownEndpoint == "" {
			f.UnknownEndpoint = ""
			f.RemoveSessionReinvite = true
		}
	case errors.Is(err, ErrColibriNotModified):
		f.RemoveSessionReinvite = true
	}
	return f
}

// ColibriError builds the stanza error a bridge sends: condition, text and,
// when reason is set, <error xmlns="jitsi:colibri2" reason=…/>; a non-empty
// endpoint adds <endpoint xmlns="jitsi:colibri2" id=…/> (unknown_endpoint).
func ColibriError(condition, reason, text, endpoint string) *StanzaError {
	se := Errorf(condition, "%s", text)
	if reason != "" {
		se.App = append(se.App, NewElement(nsColibri2, "error", "reason", reason))
	}
	if endpoint != "" {
		se.App = append(se.App, NewElement(nsColibri2, "endpoint", "id", endpoint))
	}
	return se
}

// Relays (Octo): bridges of one conference are linked in a full mesh so that
// participants on different bridges hear and see each other (docs/colibri2.md#relays-between-bridges).

// BuildConferenceExpire is the request that ends the conference on a bridge.
func BuildConferenceExpire(meetingID string) *Element {
	return BuildConferenceModify(ColibriRequest{MeetingID: meetingID, Expire: true})
}

// EndpointExpireRequest is the request that releases one endpoint.
func EndpointExpireRequest(meetingID, endpoint string) ColibriRequest {
	return ColibriRequest{MeetingID: meetingID, Endpoints: []ColibriEndpoint{{ID: endpoint, Expire: true, InitialLastN: -1}}}
}

// BuildEndpointExpire is EndpointExpireRequest as a Colibri2 payload.
func BuildEndpointExpire(meetingID, endpoint string) *Element {
	return BuildConferenceModify(EndpointExpireRequest(meetingID, endpoint))
}
