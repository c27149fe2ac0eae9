package main

// http.go: health, version, metrics and the HTTP conference request on the
// public listener; the status page, debug and operator endpoints on a
// private one (loopback by default).

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"sort"
	"strings"
	"sync/atomic"
	"time"
)

// HTTP server timeouts: requests here are tiny, so anything slow is a stuck
// or hostile client, and must not pin a goroutine forever.
const (
	httpReadHeaderTimeout = 5 * time.Second
	httpReadTimeout       = 10 * time.Second
	httpWriteTimeout      = 60 * time.Second // a conference request may wait for a MUC join; a CPU profile takes 30 s
	httpIdleTimeout       = 60 * time.Second
)

// HTTPServer serves the client and operator HTTP endpoints on two
// listeners. The public one (http.listen) has what clients and monitoring
// need: the conference request, health, version and metrics. The private
// one (http.private-listen, loopback by default) has those too, plus what
// only operators may use: the status page and /debug (participants' real
// JIDs), /move-endpoints, /pin and the profiler. When both addresses are the
// same, one listener serves everything (an explicit choice for a port that
// clients cannot reach); an empty private-listen turns the operator
// endpoints off.
type HTTPServer struct {
	m        *Main
	mux      *http.ServeMux // public routes
	pmux     *http.ServeMux // public and operator routes
	srv      *http.Server
	psrv     *http.Server // nil when there is no separate private listener
	ln, pln  net.Listener
	shutting atomic.Bool
	proxies  []*net.IPNet // peers whose X-Forwarded-For is believed
}

// NewHTTPServer registers every route.
func NewHTTPServer(m *Main) *HTTPServer {
	h := &HTTPServer{m: m, mux: http.NewServeMux(), pmux: http.NewServeMux(), proxies: parseProxies(m.Config.HTTP.TrustedProxies)}
	for _, mux := range []*http.ServeMux{h.mux, h.pmux} {
		mux.HandleFunc("GET /about/health", h.health)
		mux.HandleFunc("GET /about/version", h.version)
		h.publicRoutes(mux)
	}
	h.routes()
	handler := http.Handler(h.mux)
	switch c := m.Config.HTTP; {
	case c.PrivateListen == "":
	case sharedListener(c):
		handler = h.pmux // everything on one listener, by choice
	default:
		h.psrv = newHTTPServer(h.pmux)
	}
	h.srv = newHTTPServer(handler)
	return h
}

// sharedListener: the operator endpoints share the public listener when
// both addresses are the same (a port 0 always gets a listener of its own).
func sharedListener(c HTTPConfig) bool {
	_, port, _ := net.SplitHostPort(c.Listen)
	return c.PrivateListen == c.Listen && port != "0"
}

func newHTTPServer(handler http.Handler) *http.Server {
	return &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: httpReadHeaderTimeout,
		ReadTimeout:       httpReadTimeout,
		WriteTimeout:      httpWriteTimeout,
		IdleTimeout:       httpIdleTimeout,
	}
}

// Listen binds the configured addresses (":0" style ports are resolved).
func (h *HTTPServer) Listen() error {
	ln, err := net.Listen("tcp", h.m.Config.HTTP.Listen)
	if err != nil {
		return errors.New("http: listen on " + h.m.Config.HTTP.Listen + ": " + err.Error())
	}
	if h.psrv != nil {
		pln, err := net.Listen("tcp", h.m.Config.HTTP.PrivateListen)
		if err != nil {
			ln.Close()
			return errors.New("http: listen on " + h.m.Config.HTTP.PrivateListen + " (http.private-listen): " + err.Error())
		}
		h.pln = pln
	}
	h.ln = ln
	return nil
}

// Addr is the bound public address.
func (h *HTTPServer) Addr() string {
	if h.ln == nil {
		return ""
	}
	return h.ln.Addr().String()
}

// PrivateAddr is the bound address of the operator endpoints: the public
// one when they share it, "" when they are off.
func (h *HTTPServer) PrivateAddr() string {
	switch {
	case h.pln != nil:
		return h.pln.Addr().String()
	case h.m.Config.HTTP.PrivateListen != "" && sharedListener(h.m.Config.HTTP):
		return h.Addr()
	}
	return ""
}

// Serve blocks serving requests until Shutdown.
func (h *HTTPServer) Serve() {
	if h.psrv != nil {
		go func() {
			if err := h.psrv.Serve(h.pln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				h.m.Log.Error("private http server stopped", "err", err)
			}
		}()
	}
	if err := h.srv.Serve(h.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		h.m.Log.Error("http server stopped", "err", err)
	}
}

// SetShuttingDown makes health report 503 while the focus drains.
func (h *HTTPServer) SetShuttingDown() { h.shutting.Store(true) }

// Shutdown stops the server, waiting up to d for requests in flight.
func (h *HTTPServer) Shutdown(d time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if h.psrv != nil {
		go func() { _ = h.psrv.Shutdown(ctx) }()
	}
	_ = h.srv.Shutdown(ctx)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// healthStatus is the body of /about/health.
type healthStatus struct {
	Healthy bool     `json:"healthy"`
	XMPP    string   `json:"xmpp"`
	Reasons []string `json:"reasons,omitempty"`
}

// Check runs the health checks: is the XMPP session up, and is the focus
// not shutting down (later: is there an operational bridge).
func (h *HTTPServer) Check() healthStatus {
	st := healthStatus{Healthy: true, XMPP: "connected"}
	if up, err := h.m.XMPP.Connected(); !up {
		st.Healthy = false
		st.XMPP = "disconnected"
		reason := "XMPP session is not up"
		if err != nil {
			reason += ": " + err.Error()
		}
		st.Reasons = append(st.Reasons, reason)
	}
	if sx := h.m.ServiceXMPP; sx != nil {
		if up, err := sx.Connected(); !up {
			st.Healthy = false
			reason := "the bridges' XMPP connection (xmpp.service) is not up"
			if err != nil {
				reason += ": " + err.Error()
			}
			st.Reasons = append(st.Reasons, reason)
		}
	}
	if h.m.Config.Bridges.Brewery != "" && h.m.Bridges.OperationalCount() == 0 {
		st.Healthy = false
		st.Reasons = append(st.Reasons, "no operational bridge in "+h.m.Config.Bridges.Brewery)
	}
	if h.shutting.Load() {
		st.Healthy = false
		st.Reasons = append(st.Reasons, "shutting down")
	}
	return st
}

func (h *HTTPServer) health(w http.ResponseWriter, r *http.Request) {
	st := h.Check()
	code := http.StatusOK
	if !st.Healthy {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, st)
}

func (h *HTTPServer) version(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"name": "minifocus", "version": version, "os": runtime.GOOS})
}

//go:embed status.html
var statusPage []byte

// publicRoutes are the routes every listener serves (health and version
// are registered with them).
func (h *HTTPServer) publicRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /stats", h.stats)
	mux.Handle("GET /metrics", h.m.Metrics.Handler())
	mux.HandleFunc("POST /conference-request/v1", h.conferenceRequest)
	mux.HandleFunc("OPTIONS /conference-request/v1", h.cors)
}

// routes registers the operator endpoints, on the private listener only.
func (h *HTTPServer) routes() {
	h.pmux.HandleFunc("GET /{$}", h.status)
	h.pmux.HandleFunc("GET /debug", h.debug)
	h.pmux.HandleFunc("GET /debug/bridges", h.m.Bridges.DebugHandler)
	// Go's profiler, for operators chasing CPU or memory.
	h.pmux.HandleFunc("GET /debug/pprof/", pprof.Index)
	h.pmux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	h.pmux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
}

func (h *HTTPServer) status(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(statusPage)
}

// debugState is GET /debug: everything the status page shows.
type debugState struct {
	healthStatus
	Version     string                `json:"version"`
	Uptime      string                `json:"uptime"`
	FocusJID    string                `json:"focus_jid"`
	Conferences []*ConferenceSnapshot `json:"conferences"`
	Bridges     []BridgeInfo          `json:"bridges"`
	Events      []LoggedEvent         `json:"events"`
}

func (h *HTTPServer) debug(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	st := debugState{
		healthStatus: h.Check(),
		Version:      version,
		Uptime:       time.Since(h.m.started).Round(time.Second).String(),
		FocusJID:     h.m.XMPP.JID(),
		Conferences:  h.m.Focus.Snapshots(ctx),
		Bridges:      h.m.Bridges.Snapshot(),
		Events:       h.m.Events.Recent(),
	}
	writeJSON(w, http.StatusOK, st)
}

// stats is Jicofo's legacy flat JSON (the keys tooling reads).
func (h *HTTPServer) stats(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	snaps := h.m.Focus.Snapshots(ctx)
	participants, largest, pairs := 0, 0, 0
	for _, s := range snaps {
		n := len(s.Participants)
		participants += n
		pairs += n * n
		if n > largest {
			largest = n
		}
	}
	bridges := h.m.Bridges.Snapshot()
	inShutdown := 0
	for _, b := range bridges {
		if b.GracefulShutdown || b.ShuttingDown {
			inShutdown++
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"conferences":        len(snaps),
		"participants":       participants,
		"largest_conference": largest,
		"endpoint_pairs":     pairs,
		"bridge_selector": map[string]int{
			"bridge_count":             len(bridges),
			"operational_bridge_count": h.m.Bridges.OperationalCount(),
			"in_shutdown_bridge_count": inShutdown,
		},
		"version": version,
	})
}

// cors answers the browser's preflight for the HTTP conference request
// (the web page is usually on another origin).
func (h *HTTPServer) cors(w http.ResponseWriter, r *http.Request) {
	setCORS(w)
	w.WriteHeader(http.StatusOK)
}

func setCORS(w http.ResponseWriter) {
	w.Header().Set("Access-Control-Allow-Origin", "*")
	w.Header().Set("Access-Control-Allow-Methods", "POST, OPTIONS")
	w.Header().Set("Access-Control-Allow-Headers", "Content-Type, Authorization")
	w.Header().Set("Access-Control-Max-Age", "3600")
}

// maxRequestBody bounds the conference request JSON.
const maxRequestBody = 16 << 10

// conferenceRequest is POST /conference-request/v1: the camelCase JSON form
// of the conference IQ, answered by the same code.
func (h *HTTPServer) conferenceRequest(w http.ResponseWriter, r *http.Request) {
	setCORS(w)
	req, err := parseConferenceRequestJSON(http.MaxBytesReader(w, r.Body, maxRequestBody))
	if err != nil {
		http.Error(w, "Bad request: "+err.Error(), http.StatusBadRequest)
		return
	}
	req.RateKey = h.senderOf(r)
	ctx, cancel := context.WithTimeout(r.Context(), requestWait)
	defer cancel()
	resp, err := h.m.Focus.Request(ctx, req)
	if err != nil {
		se, _ := err.(*StanzaError)
		switch {
		case se != nil && se.Condition == "not-authorized":
			http.Error(w, "Error", http.StatusForbidden)
		case se != nil && se.Condition == "resource-constraint":
			w.Header().Set("Retry-After", "5")
			http.Error(w, "Error: "+se.Error(), http.StatusTooManyRequests)
		case se != nil && (se.Condition == "internal-server-error" || se.Condition == "service-unavailable"):
			http.Error(w, "Error: "+se.Error(), http.StatusServiceUnavailable)
		default:
			http.Error(w, "Bad request: "+err.Error(), http.StatusBadRequest)
		}
		return
	}
	props := map[string]string{}
	for _, kv := range resp.Properties {
		props[kv[0]] = kv[1]
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"room": resp.Room, "ready": resp.Ready, "focusJid": resp.FocusJID, "properties": props,
	})
}

// parseConferenceRequestJSON validates the body strictly: an object with a
// string room, optional strings sessionId/machineUid, and properties whose
// values are strings, numbers or booleans (lib-jitsi-meet sends all three).
func parseConferenceRequestJSON(body io.Reader) (ConferenceRequest, error) {
	var raw struct {
		Room       *string                    `json:"room"`
		SessionID  string                     `json:"sessionId"`
		MachineUID string                     `json:"machineUid"`
		Properties map[string]json.RawMessage `json:"properties"`
	}
	dec := json.NewDecoder(body)
	if err := dec.Decode(&raw); err != nil {
		return ConferenceRequest{}, fmt.Errorf("invalid JSON: %v", err)
	}
	if dec.More() {
		return ConferenceRequest{}, fmt.Errorf("invalid JSON: more than one value")
	}
	if raw.Room == nil || *raw.Room == "" {
		return ConferenceRequest{}, fmt.Errorf("no 'room' specified")
	}
	if len(raw.Properties) > 64 {
		return ConferenceRequest{}, fmt.Errorf("too many properties")
	}
	req := ConferenceRequest{Room: *raw.Room, SessionID: raw.SessionID, MachineUID: raw.MachineUID, Properties: map[string]string{}}
	keys := make([]string, 0, len(raw.Properties))
	for k := range raw.Properties {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := raw.Properties[k]
		if string(v) == "null" {
			return ConferenceRequest{}, fmt.Errorf("property %q must be a string, number or boolean", k)
		}
		var s string
		switch {
		case json.Unmarshal(v, &s) == nil:
		case string(v) == "true" || string(v) == "false":
			s = string(v)
		default:
			var n json.Number
			d := json.NewDecoder(strings.NewReader(string(v)))
			d.UseNumber()
			if err := d.Decode(&n); err != nil {
				return ConferenceRequest{}, fmt.Errorf("property %q must be a string, number or boolean", k)
			}
			s = n.String()
		}
		req.Properties[k] = s
	}
	return req, nil
}

// Snapshot is the conference's state for /debug and the status page,
// built on the conference goroutine.
type ConferenceSnapshot struct {
	Room         string                `json:"room"`
	MeetingID    string                `json:"meeting_id"`
	Created      time.Time             `json:"created"`
	Bridges      []string              `json:"bridges"`
	Participants []ParticipantSnapshot `json:"participants"`
}

// ParticipantSnapshot is one participant in a ConferenceSnapshot.
type ParticipantSnapshot struct {
	Endpoint  string `json:"endpoint"`
	JID       string `json:"jid"`
	Role      string `json:"role"`
	Moderator bool   `json:"moderator"`
	Bridge    string `json:"bridge,omitempty"`
	Session   string `json:"session"`
	SID       string `json:"sid,omitempty"`
	Sources   int    `json:"sources"`
}

// Snapshot asks the conference goroutine for its state (nil if it ended).
func (c *Conference) Snapshot(ctx context.Context) *ConferenceSnapshot {
	ch := make(chan *ConferenceSnapshot, 1)
	if !c.post(event{kind: evFunc, fn: func() { ch <- c.snapshot() }}) {
		return nil
	}
	select {
	case s := <-ch:
		return s
	case <-ctx.Done():
		return nil
	case <-c.done:
		return nil
	}
}

func (c *Conference) snapshot() *ConferenceSnapshot {
	s := &ConferenceSnapshot{Room: c.room, MeetingID: c.meetingID, Created: c.created}
	for jid := range c.sessions {
		s.Bridges = append(s.Bridges, jid)
	}
	sort.Strings(s.Bridges)
	for _, nick := range c.order {
		m := c.members[nick]
		if m == nil {
			continue
		}
		state := map[sessionState]string{sessNone: "none", sessPending: "pending", sessActive: "active"}[m.state]
		if m.inviting {
			state = "inviting"
		}
		s.Participants = append(s.Participants, ParticipantSnapshot{
			Endpoint: m.Nick, JID: m.RealJID, Role: m.Role, Moderator: m.moderator(),
			Bridge: m.bridge, Session: state, SID: m.sid, Sources: len(c.sources.Get(m.Nick).Sources),
		})
	}
	return s
}

// Snapshots returns every conference's state (for /debug and the status
// page), sorted by room.
func (f *Focus) Snapshots(ctx context.Context) []*ConferenceSnapshot {
	var out []*ConferenceSnapshot
	for _, c := range f.all() {
		if s := c.Snapshot(ctx); s != nil {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Room < out[j].Room })
	return out
}
