package main

// jibri.go: recording and live streaming with Jibri (docs/conference-features.md#jibri).
//
// Jibris wait in their own brewery room and say in presence whether they are
// idle and healthy. A moderator asks the focus to start; the focus picks an
// idle Jibri, asks it to join the conference and record (or stream), and
// tells the room how it goes in its presence (<jibri-recording-status/>).
// The Jibri reports back with status IQs (pending, on, off).
//
// Jibris in a second brewery (jibri.sip-brewery) are SIP video gateways: a
// start with a sipaddress calls that address into the conference, one
// session per address, published as <jibri-sip-call-state/>.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

const (
	nsJibri          = "http://jitsi.org/protocol/jibri"
	nsJibriCallState = "http://jitsi.org/protocol/jibri/call_state"
	nsHealthState    = "http://jitsi.org/protocol/health"
)

// maxSIPCalls bounds the SIP gateway sessions of one conference.
const maxSIPCalls = 20

// Jibri selection timings (Jicofo's): a Jibri just picked is not picked
// again for a moment (its presence will say busy), and one that failed is
// avoided for a minute.
const (
	jibriSelectGap   = 200 * time.Millisecond
	jibriFailBackoff = time.Minute
)

// ErrNoJibri and ErrJibrisBusy are the two ways selection fails.
var (
	ErrNoJibri    = errors.New("no Jibris available")
	ErrJibrisBusy = errors.New("all Jibris are busy")
)

type jibriInstance struct {
	jid              string
	idle, healthy    bool
	selected, failed time.Time
}

// Jibris is the registry of the Jibri brewery.
type Jibris struct {
	brewery, nick string
	log           *slog.Logger
	member        *breweryMember // the focus in the brewery room (brewery.go)

	mu        sync.Mutex
	instances map[string]*jibriInstance
	onGone    func(jid string) // a Jibri left the brewery (set by the focus)
}

// NewJibris returns nil when no Jibri brewery is configured.
func NewJibris(brewery, nick string, x *XMPPClient, log *slog.Logger) *Jibris {
	if brewery == "" {
		return nil
	}
	j := &Jibris{brewery: strings.ToLower(brewery), nick: nick, log: log.With("component", "jibri"), instances: map[string]*jibriInstance{}}
	j.member = newBreweryMember(j.brewery, nick, "Jibri", func() breweryConn { return x }, j.log, func(string) { j.forgetAll() })
	j.member.follow(x)
	return j
}

func (j *Jibris) forgetAll() {
	j.mu.Lock()
	j.instances = map[string]*jibriInstance{}
	j.mu.Unlock()
}

// Leave leaves the brewery for good (the focus is shutting down).
func (j *Jibris) Leave() {
	if j != nil {
		j.member.Leave()
	}
}

// HandlePresence consumes presence from the Jibri brewery.
func (j *Jibris) HandlePresence(p *Element) bool {
	if j == nil {
		return false
	}
	from, ok := j.member.HandlePresence(p)
	if from == "" {
		return ok
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if p.Attr("type") == "unavailable" {
		delete(j.instances, from)
		if j.onGone != nil {
			go j.onGone(from) // outside the lock
		}
		return true
	}
	st := p.Child(nsJibri, "jibri-status")
	if st == nil {
		return true
	}
	in := j.instances[from]
	if in == nil {
		if len(j.instances) >= 1000 {
			return true
		}
		in = &jibriInstance{jid: from}
		j.instances[from] = in
		j.log.Info("Jibri available", "jibri", from)
	}
	in.idle = st.Child("", "busy-status").Attr("status") == "idle"
	in.healthy = st.Child(nsHealthState, "health-status").Attr("status") != "unhealthy"
	if in.idle && in.healthy {
		in.failed = time.Time{} // a fresh "available" clears an old failure
	}
	return true
}

// Select picks an idle, healthy Jibri, avoiding those picked a moment ago
// or failed within the last minute (the least recently failed first).
func (j *Jibris) Select(exclude map[string]bool) (string, error) {
	if j == nil {
		return "", ErrNoJibri
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(j.instances) == 0 {
		return "", ErrNoJibri
	}
	now := time.Now()
	var best *jibriInstance
	for _, in := range j.instances {
		if !in.idle || !in.healthy || exclude[in.jid] || now.Sub(in.selected) < jibriSelectGap || now.Sub(in.failed) < jibriFailBackoff {
			continue
		}
		if best == nil || in.failed.Before(best.failed) || in.failed.Equal(best.failed) && in.jid < best.jid {
			best = in
		}
	}
	if best == nil {
		return "", ErrJibrisBusy
	}
	best.selected = now
	return best.jid, nil
}

// MarkFailed keeps a Jibri out of selection for a minute.
func (j *Jibris) MarkFailed(jid string) {
	if j == nil {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if in := j.instances[jid]; in != nil {
		in.failed = time.Now()
	}
}

// Count returns the known Jibris and how many are available.
func (j *Jibris) Count() (total, available int) {
	if j == nil {
		return 0, 0
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, in := range j.instances {
		total++
		if in.idle && in.healthy {
			available++
		}
	}
	return total, available
}

// recording is a conference's recording or live stream, or (sip set) one
// call of the Jibri SIP gateway.
type recording struct {
	id, mode, streamID, youtubeID, appData, initiator string
	sip, displayName                                  string
	jibri                                             string
	status                                            string // pending, on, off
	failure                                           string
	tried                                             map[string]bool
	pending                                           *time.Timer
	pendingUntil                                      time.Time // when pending fires
}

// onJibriRequest handles a moderator's start/stop (an IQ from an occupant).
func (c *Conference) onJibriRequest(m *Participant, iq *Element) {
	p := iq.Payload()
	switch {
	case m == nil:
		c.send(ErrorIQ(iq, Errorf("forbidden", "not a member of this conference")))
		return
	case !m.moderator():
		c.send(ErrorIQ(iq, Errorf("not-allowed", "only moderators can start or stop recording")))
		return
	}
	sip := p.Attr("sipaddress")
	switch p.Attr("action") {
	case "start":
		if sip != "" {
			c.startSIPCall(m, iq, p)
		} else {
			c.startRecording(m, iq, p)
		}
	case "stop":
		r := jibriOf(c).recording
		if sip != "" {
			r = jibriOf(c).sipCalls[sip]
		}
		if r == nil || r.status == "off" {
			c.send(ErrorIQ(iq, Errorf("item-not-found", "Unknown session")))
			return
		}
		c.send(ResultIQ(iq, nil))
		c.send(jibriStopIQ(r.jibri, r.id))
		c.recordingOff(r, "", m.Occupant)
	default:
		c.send(ErrorIQ(iq, Errorf("bad-request", "action must be start or stop")))
	}
}

func (c *Conference) startRecording(m *Participant, iq, p *Element) {
	mode, stream := p.Attr("recording_mode"), p.Attr("streamid")
	if mode == "" {
		mode = "file"
		if stream != "" {
			mode = "stream"
		}
	}
	switch {
	case jibriOf(c).recording != nil && jibriOf(c).recording.status != "off":
		c.send(ErrorIQ(iq, Errorf("unexpected-request", "Recording or live streaming is already enabled")))
		return
	case mode == "stream" && stream == "":
		c.send(ErrorIQ(iq, Errorf("bad-request", "Stream ID is empty or undefined")))
		return
	case mode == "file" && stream != "":
		c.send(ErrorIQ(iq, Errorf("bad-request", "Stream ID is provided for a FILE recording.")))
		return
	case mode != "file" && mode != "stream":
		c.send(ErrorIQ(iq, Errorf("bad-request", "recording_mode must be file or stream")))
		return
	}
	r := &recording{id: newUUID(), mode: mode, streamID: stream, youtubeID: p.Attr("you_tube_broadcast_id"),
		appData: p.Attr("app_data"), initiator: m.Occupant, tried: map[string]bool{}}
	if c.beginJibri(iq, r) {
		jibriOf(c).recording = r
		c.f.events.Add(c.room, "%s started %s on %s", m.Nick, map[string]string{"file": "recording", "stream": "live streaming"}[mode], nickOf(r.jibri))
		c.publishPresence()
	}
}

// startSIPCall asks a SIP gateway Jibri to call sipaddress into the
// conference.
func (c *Conference) startSIPCall(m *Participant, iq, p *Element) {
	sip := p.Attr("sipaddress")
	// Ended calls stay in the presence (state off) until room is needed.
	active := 0
	for addr, r := range jibriOf(c).sipCalls {
		switch {
		case r.status != "off":
			active++
		case len(jibriOf(c).sipCalls) >= maxSIPCalls:
			delete(jibriOf(c).sipCalls, addr)
		}
	}
	switch {
	case len(sip) > 256 || strings.ContainsAny(sip, " \t\r\n<>\""):
		c.send(ErrorIQ(iq, Errorf("bad-request", "invalid sipaddress")))
		return
	case jibriOf(c).sipCalls[sip] != nil && jibriOf(c).sipCalls[sip].status != "off":
		c.send(ErrorIQ(iq, Errorf("unexpected-request", "a SIP call to %s is already running", sip)))
		return
	case active >= maxSIPCalls:
		c.send(ErrorIQ(iq, Errorf("resource-constraint", "too many SIP calls in this conference")))
		return
	}
	r := &recording{id: newUUID(), sip: sip, displayName: p.Attr("displayname"), appData: p.Attr("app_data"),
		initiator: m.Occupant, tried: map[string]bool{}}
	if c.beginJibri(iq, r) {
		if jibriOf(c).sipCalls == nil {
			jibriOf(c).sipCalls = map[string]*recording{}
		}
		jibriOf(c).sipCalls[sip] = r
		c.f.events.Add(c.room, "%s called %s through the SIP gateway %s", m.Nick, sip, nickOf(r.jibri))
		c.publishPresence()
	}
}

// beginJibri asks a Jibri to start r and answers the request: false (with
// the error sent) when no Jibri could be asked.
func (c *Conference) beginJibri(iq *Element, r *recording) bool {
	if err := c.askJibri(r); err != nil {
		cond := "service-unavailable"
		if errors.Is(err, ErrJibrisBusy) {
			cond = "resource-constraint"
		}
		c.send(ErrorIQ(iq, Errorf(cond, "%v", err)))
		return false
	}
	jibriPoolsOf(c.f).recordings.Store(r.id, c)
	c.send(ResultIQ(iq, NewElement(nsJibri, "jibri", "session_id", r.id)))
	c.armPending(r)
	return true
}

// jibriPool is where r's Jibri comes from.
func (c *Conference) jibriPool(r *recording) *Jibris {
	if r.sip != "" {
		return jibriPoolsOf(c.f).sipJibris
	}
	return jibriPoolsOf(c.f).jibris
}

// current reports whether r is still one of this conference's sessions.
func (c *Conference) current(r *recording) bool {
	if r.sip != "" {
		return jibriOf(c).sipCalls[r.sip] == r
	}
	return jibriOf(c).recording == r
}

// jibriSessions lists the recording and the SIP calls.
func (c *Conference) jibriSessions() []*recording {
	var out []*recording
	if jibriOf(c).recording != nil {
		out = append(out, jibriOf(c).recording)
	}
	for _, sip := range slices.Sorted(maps.Keys(jibriOf(c).sipCalls)) {
		out = append(out, jibriOf(c).sipCalls[sip])
	}
	return out
}

// askJibri sends the start request to a newly selected Jibri; its answer
// arrives asynchronously (a failure tries another).
func (c *Conference) askJibri(r *recording) error {
	pool := c.jibriPool(r)
	jid, err := pool.Select(r.tried)
	if err != nil {
		if r.sip != "" && pool == nil {
			return errors.New("no SIP Jibris available")
		}
		return err
	}
	r.jibri, r.status, r.failure = jid, "pending", ""
	r.tried[jid] = true
	req := NewElement(nsJibri, "jibri", "action", "start", "session_id", r.id)
	if r.sip != "" {
		req.Set("sipaddress", r.sip).Set("displayname", r.displayName)
	} else {
		req.Set("recording_mode", r.mode).Set("streamid", r.streamID).Set("you_tube_broadcast_id", r.youtubeID)
	}
	req.Set("app_data", r.appData).Set("room", c.room)
	c.log.Info("asking Jibri to start", "jibri", jid, "mode", r.mode, "sip", r.sip, "session", r.id)
	wait := c.f.x.StartIQ(NewIQ("set", jid, "", req))
	c.async(func() func() {
		resp, err := wait(context.Background())
		return func() {
			if !c.current(r) || r.jibri != jid || r.status == "off" {
				return
			}
			st := resp.Child(nsJibri, "jibri")
			if err == nil && (st.Attr("status") == "pending" || st.Attr("status") == "on") {
				if st.Attr("status") == "on" {
					c.recordingOn(r)
				}
				return
			}
			why := fmt.Sprint(err)
			if errors.Is(err, ErrIQTimeout) {
				// It may start late: tell it not to (docs/conference-features.md#jibri).
				c.send(jibriStopIQ(jid, r.id))
			}
			if err == nil {
				why = "status " + st.Attr("status") + " " + st.Attr("failure_reason")
			}
			c.log.Warn("Jibri refused or failed to start", "jibri", jid, "why", why)
			c.jibriFailed(r, why)
		}
	})
	return nil
}

// jibriStopIQ asks a Jibri to stop the session it runs for us.
func jibriStopIQ(jibri, sessionID string) *Element {
	return NewIQ("set", jibri, "", NewElement(nsJibri, "jibri", "action", "stop", "session_id", sessionID))
}

// jibriFailed marks the Jibri and tries another, up to five in all.
func (c *Conference) jibriFailed(r *recording, why string) {
	c.jibriPool(r).MarkFailed(r.jibri)
	if len(r.tried) <= c.cfg().Jibri.RequestRetries {
		if err := c.askJibri(r); err == nil {
			c.armPending(r)
			c.publishPresence()
			return
		}
	}
	c.recordingOff(r, "error", "")
	c.f.events.Add(c.room, "recording failed: %s", why)
}

// armPending fails a session that does not reach "on" in time.
func (c *Conference) armPending(r *recording) {
	if r.pending != nil {
		r.pending.Stop()
	}
	r.pendingUntil = time.Now().Add(c.cfg().Jibri.PendingTimeout.Duration) // for the handover
	r.pending = c.later(c.cfg().Jibri.PendingTimeout.Duration, func() {
		if c.current(r) && r.status == "pending" {
			c.send(jibriStopIQ(r.jibri, r.id))
			c.jibriFailed(r, "no 'on' within the pending timeout")
		}
	})
}

func (c *Conference) recordingOn(r *recording) {
	if r.pending != nil {
		r.pending.Stop()
	}
	r.status = "on"
	c.log.Info("recording on", "jibri", r.jibri, "session", r.id)
	c.publishPresence()
}

func (c *Conference) recordingOff(r *recording, failure, stopper string) {
	if r.pending != nil {
		r.pending.Stop()
	}
	r.status, r.failure = "off", failure
	jibriPoolsOf(c.f).recordings.Delete(r.id)
	if stopper != "" {
		r.initiator = stopper
	}
	c.publishPresence()
}

// onJibriStatus handles a status IQ from the Jibri of this conference.
func (c *Conference) onJibriStatus(iq *Element) {
	st := iq.Payload()
	var r *recording
	for _, x := range c.jibriSessions() {
		if x.id == st.Attr("session_id") || (st.Attr("session_id") == "" && x.jibri == iq.Attr("from")) {
			r = x
			break
		}
	}
	if r == nil || iq.Attr("from") != r.jibri {
		c.send(ErrorIQ(iq, Errorf("item-not-found", "Unknown session")))
		return
	}
	c.send(ResultIQ(iq, nil))
	switch st.Attr("status") {
	case "on":
		c.recordingOn(r)
	case "off":
		if st.Attr("failure_reason") != "" && st.Attr("should_retry") == "true" && r.status != "off" {
			c.jibriFailed(r, st.Attr("failure_reason"))
			return
		}
		c.recordingOff(r, st.Attr("failure_reason"), "")
	}
}

// recordingPresence is the <jibri-recording-status/> and the
// <jibri-sip-call-state/>s the focus publishes.
func (c *Conference) recordingPresence() []*Element {
	var out []*Element
	for _, r := range c.jibriSessions() {
		if r.sip != "" {
			el := NewElement(nsJibriCallState, "jibri-sip-call-state", "state", r.status, "sipaddress", r.sip, "session_id", r.id)
			out = append(out, el.Set("failure_reason", r.failure))
			continue
		}
		el := NewElement(nsJibri, "jibri-recording-status", "status", r.status, "session_id", r.id, "recording_mode", r.mode)
		out = append(out, el.Set("initiator", r.initiator).Set("failure_reason", r.failure))
	}
	return out
}

// routeJibriIQ sends a Jibri-namespace IQ to its conference: status reports
// come from a Jibri in the brewery (found by session id), start/stop
// requests from room occupants.
func (f *Focus) routeJibriIQ(iq *Element) {
	from := strings.ToLower(iq.Attr("from"))
	if jibriPoolsOf(f).jibris != nil && strings.HasPrefix(from, jibriPoolsOf(f).jibris.brewery+"/") || jibriPoolsOf(f).sipJibris != nil && strings.HasPrefix(from, jibriPoolsOf(f).sipJibris.brewery+"/") {
		v, ok := jibriPoolsOf(f).recordings.Load(iq.Payload().Attr("session_id"))
		if !ok {
			f.x.Send(ErrorIQ(iq, Errorf("item-not-found", "Unknown session")))
			return
		}
		c := v.(*Conference)
		if !c.post(event{kind: evFunc, fn: func() { c.onJibriStatus(iq) }}) {
			f.x.Send(ErrorIQ(iq, Errorf("item-not-found", "Unknown session")))
		}
		return
	}
	f.routeToConference(iq)
}

// jibriGone fails the recording a Jibri was doing when it left the brewery
// (it crashed or was stopped): another Jibri is tried (docs/conference-features.md#jibri).
func (f *Focus) jibriGone(jid string) {
	jibriPoolsOf(f).recordings.Range(func(_, v any) bool {
		c := v.(*Conference)
		c.post(event{kind: evFunc, fn: func() {
			for _, r := range c.jibriSessions() {
				if r.jibri == jid && r.status != "off" {
					c.log.Warn("the session's Jibri left", "jibri", jid, "sip", r.sip)
					c.jibriFailed(r, "Jibri left")
				}
			}
		}})
		return true
	})
}

// jibriState is Jibri's per-conference state.
type jibriState struct {
	recording *recording
	sipCalls  map[string]*recording // Jibri SIP gateway calls by SIP address
}

func jibriOf(c *Conference) *jibriState { return confState[jibriState](c) }

func jibriFeature() Feature {
	return Feature{Name: "jibri", ConfState: func() any { return new(jibriState) }, FocusState: func() any { return new(jibriPools) }, Save: saveJibri, Restore: restoreJibri,
		Setup: func(m *Main) {
			user := m.Config.XMPP.Username
			f := m.Focus
			jibriPoolsOf(f).jibris = NewJibris(m.Config.Jibri.Brewery, user, m.XMPP, m.Log)
			if jibriPoolsOf(f).jibris != nil {
				jibriPoolsOf(f).jibris.onGone = f.jibriGone
			}
			jibriPoolsOf(f).sipJibris = NewJibris(m.Config.Jibri.SIPBrewery, user, m.XMPP, m.Log)
			if jibriPoolsOf(f).sipJibris != nil {
				jibriPoolsOf(f).sipJibris.onGone = f.jibriGone
			}
			m.presence = append(m.presence, jibriPoolsOf(f).jibris.HandlePresence, jibriPoolsOf(f).sipJibris.HandlePresence)
			m.leave = append(m.leave, jibriPoolsOf(f).jibris.Leave, jibriPoolsOf(f).sipJibris.Leave) // nil-safe
			m.XMPP.HandleIQ(nsJibri, m.Focus.routeJibriIQ)
			m.Focus.confIQ[nsJibri] = (*Conference).onJibriRequest
		},
		Presence: func(c *Conference, props, p *Element) {
			p.Add(c.recordingPresence()...)
		},
		Room: func(c *Conference, ev RoomEvent) {
			if ev.Member != nil && !ev.Leaving && c.announces(ev.Member, ev.Presence, "http://jitsi.org/protocol/jibri") {
				ev.Member.Jibri = true
			}
		},
		Ending: func(c *Conference, final bool) bool {
			if final { // the conference stops: so do its recordings and calls
				for _, r := range c.jibriSessions() {
					if r.status != "off" {
						c.send(jibriStopIQ(r.jibri, r.id))
						c.recordingOff(r, "", "")
					}
				}
			}
			return false
		}}
}

// jibriPools are Jibri's state on the Focus.
type jibriPools struct {
	jibris    *Jibris // nil when no Jibri brewery is configured
	sipJibris *Jibris // the SIP gateway Jibris; nil when not configured
	// recordings maps a recording session id to its conference, for the
	// Jibris' status reports.
	recordings sync.Map
}

func jibriPoolsOf(f *Focus) *jibriPools { return focusState[jibriPools](f) }

// recordingState is a Jibri session carried across a restart.
type recordingState struct {
	ID, Mode, StreamID, YoutubeID, AppData, Initiator string
	SIP, DisplayName, Jibri, Status, Failure          string
	Tried                                             []string
	PendingDeadline                                   time.Time `json:",omitempty"`
}

// jibriSaved is a conference's Jibri sessions carried across a restart.
type jibriSaved struct {
	Recording *recordingState           `json:"recording,omitempty"`
	SIPCalls  map[string]recordingState `json:"sip_calls,omitempty"`
}

// saveJibri writes the sessions down and stops their pending timers (the
// deadlines go with them).
func saveJibri(c *Conference) (json.RawMessage, error) {
	if jibriOf(c).recording == nil && len(jibriOf(c).sipCalls) == 0 {
		return nil, nil
	}
	export := func(r *recording) recordingState {
		st := recordingState{ID: r.id, Mode: r.mode, StreamID: r.streamID, YoutubeID: r.youtubeID, AppData: r.appData,
			Initiator: r.initiator, SIP: r.sip, DisplayName: r.displayName, Jibri: r.jibri, Status: r.status, Failure: r.failure}
		for j := range r.tried {
			st.Tried = append(st.Tried, j)
		}
		sort.Strings(st.Tried)
		if r.pending != nil {
			r.pending.Stop()
			if r.status == "pending" {
				st.PendingDeadline = r.pendingUntil
			}
		}
		return st
	}
	var saved jibriSaved
	if jibriOf(c).recording != nil {
		r := export(jibriOf(c).recording)
		saved.Recording = &r
	}
	if len(jibriOf(c).sipCalls) > 0 {
		saved.SIPCalls = map[string]recordingState{}
		for k, r := range jibriOf(c).sipCalls {
			saved.SIPCalls[k] = export(r)
		}
	}
	return json.Marshal(saved)
}

// restoreJibri puts the sessions back (Jibri's IQs find them at once) and
// has the goroutine arm their pending timers for what was left of them.
func restoreJibri(c *Conference, raw json.RawMessage) error {
	var saved jibriSaved
	if err := json.Unmarshal(raw, &saved); err != nil {
		return err
	}
	restore := func(st recordingState) *recording {
		r := &recording{id: st.ID, mode: st.Mode, streamID: st.StreamID, youtubeID: st.YoutubeID, appData: st.AppData,
			initiator: st.Initiator, sip: st.SIP, displayName: st.DisplayName, jibri: st.Jibri, status: st.Status,
			failure: st.Failure, tried: map[string]bool{}}
		for _, j := range st.Tried {
			r.tried[j] = true
		}
		return r
	}
	deadlines := map[*recording]time.Time{}
	if saved.Recording != nil {
		jibriOf(c).recording = restore(*saved.Recording)
		deadlines[jibriOf(c).recording] = saved.Recording.PendingDeadline
	}
	if len(saved.SIPCalls) > 0 {
		jibriOf(c).sipCalls = map[string]*recording{}
		for k, st := range saved.SIPCalls {
			jibriOf(c).sipCalls[k] = restore(st)
			deadlines[jibriOf(c).sipCalls[k]] = st.PendingDeadline
		}
	}
	for _, r := range c.jibriSessions() {
		if r.status != "off" {
			jibriPoolsOf(c.f).recordings.Store(r.id, c)
		}
	}
	c.postWait(event{kind: evFunc, fn: func() {
		now := time.Now()
		for _, r := range c.jibriSessions() {
			if r.status != "pending" {
				continue
			}
			c.armPending(r)
			if t := deadlines[r]; !t.IsZero() {
				r.pending.Reset(max(t.Sub(now), 0))
				r.pendingUntil = t
			}
		}
	}})
	return nil
}
