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
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"
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

// Metrics are the Prometheus series, under Jicofo's jitsi_jicofo_ names so
// existing dashboards keep working, plus latency histograms Jicofo lacks.
type Metrics struct {
	reg *prometheus.Registry

	Conferences              prometheus.Gauge
	ConferencesCreated       prometheus.Counter
	ConferenceRequests       prometheus.Counter
	ConferenceRequestsNew    prometheus.Counter
	ConferenceRequestsFailed prometheus.Counter
	ParticipantsMoved        prometheus.Counter
	BridgesRemoved           prometheus.Counter
	RestartRequests          prometheus.Counter
	ICEFailed                prometheus.Counter
	ColibriErrors            prometheus.Counter
	jingleSent, jingleRecv   *prometheus.CounterVec
	RequestToInitiate        prometheus.Histogram
	ColibriRTT               prometheus.Histogram
	AcceptToSourceAdd        prometheus.Histogram
	Participants             prometheus.Gauge
	ParticipantsTotal        prometheus.Counter

	// ConferenceRequestsRefused counts requests over a rate or load limit.
	ConferenceRequestsRefused prometheus.Counter
}

// NewMetrics registers every series on a registry of its own (so tests can
// run several focuses in one process).
func NewMetrics() *Metrics {
	reg := prometheus.NewRegistry()
	f := promauto.With(reg)
	ns := "jitsi_jicofo"
	counter := func(name, help string) prometheus.Counter {
		return f.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: name, Help: help})
	}
	latency := []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	m := &Metrics{
		reg:                      reg,
		Conferences:              f.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "conferences", Help: "Conferences currently running."}),
		ConferencesCreated:       counter("conferences_created_total", "Conferences created."),
		ConferenceRequests:       counter("conference_requests_total", "Conference requests received (XMPP and HTTP)."),
		ConferenceRequestsNew:    counter("conference_requests_new_total", "Conference requests for rooms without a conference."),
		ConferenceRequestsFailed: counter("conference_requests_failed_total", "Conference requests answered with an error."),
		ParticipantsMoved:        counter("participants_moved_total", "Participants moved to another bridge."),
		BridgesRemoved:           counter("bridges_removed_total", "Bridges removed from a conference because they failed."),
		RestartRequests:          counter("participants_restart_requested_total", "session-terminate with restart requests."),
		ICEFailed:                counter("participants_ice_failed_total", "session-info ice-state failed notifications."),
		ColibriErrors:            counter("colibri_errors_total", "Colibri2 requests that failed."),
		jingleSent:               f.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "jingle_sent_total", Help: "Jingle IQs sent, by action."}, []string{"action"}),
		jingleRecv:               f.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "jingle_received_total", Help: "Jingle IQs received, by action."}, []string{"action"}),
		RequestToInitiate:        f.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "join_to_session_initiate_seconds", Help: "From a member joining the room to its session-initiate.", Buckets: latency}),
		ColibriRTT:               f.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "colibri_allocation_seconds", Help: "Colibri2 endpoint allocation round trip.", Buckets: latency}),
		AcceptToSourceAdd:        f.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "accept_to_source_add_seconds", Help: "From a session-accept to the source-add fan-out to the others.", Buckets: latency}),
		Participants:             f.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "participants_current", Help: "Members currently in conference rooms (the focus excluded)."}),
		ParticipantsTotal:        counter("participants_total", "Participants ever invited."),
	}
	m.ConferenceRequestsRefused = counter("conference_requests_refused_total",
		"Conference requests over the per-sender limit (also counted as failed), or answered not ready for the total or pending-join limits.")
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// registerState adds the series computed from live state at scrape time:
// the bridge pool and the XMPP connection.
func (m *Metrics) registerState(b *Bridges, x *XMPPClient) {
	ns := "jitsi_jicofo"
	f := promauto.With(m.reg)
	count := func(pred func(BridgeInfo) bool) func() float64 {
		return func() float64 {
			n := 0
			for _, bi := range b.Snapshot() {
				if pred(bi) {
					n++
				}
			}
			return float64(n)
		}
	}
	f.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "bridge_selector_bridge_count", Help: "Bridges in the brewery."},
		count(func(BridgeInfo) bool { return true }))
	f.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "bridge_selector_bridge_count_operational", Help: "Bridges that can take participants."},
		func() float64 { return float64(b.OperationalCount()) })
	f.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "bridge_selector_bridge_count_in_shutdown", Help: "Bridges in graceful shutdown or shutting down."},
		count(func(bi BridgeInfo) bool { return bi.GracefulShutdown || bi.ShuttingDown }))
	f.NewCounterFunc(prometheus.CounterOpts{Namespace: ns, Name: "xmpp_disconnects_total", Help: "XMPP connection losses."},
		func() float64 { _, d := x.Stats(); return float64(d) })
	f.NewCounterFunc(prometheus.CounterOpts{Namespace: ns, Name: "xmpp_resumptions_total", Help: "XMPP streams resumed with XEP-0198 after a loss."},
		func() float64 { return float64(x.Resumes()) })
	f.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "healthy", Help: "1 when /about/health would answer 200."},
		func() float64 {
			if up, _ := x.Connected(); up && b.OperationalCount() > 0 {
				return 1
			}
			return 0
		})
	f.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "version", Help: "Always 1; the version is in the label.", ConstLabels: prometheus.Labels{"version": version}},
		func() float64 { return 1 })
}

// JingleSent counts a Jingle action sent.
func (m *Metrics) JingleSent(action string) { m.jingleSent.WithLabelValues(action).Inc() }

// JingleReceived counts a Jingle action received (unknown actions share one label).
func (m *Metrics) JingleReceived(action string) {
	switch action {
	case "session-accept", "session-terminate", "session-info", "transport-info", "transport-accept",
		"transport-reject", "source-add", "source-remove", "addsource", "removesource":
	default:
		action = "other"
	}
	m.jingleRecv.WithLabelValues(action).Inc()
}

// Handler serves /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

//go:embed status.html
var statusPage []byte

// EventLog keeps the last few human-readable events for the status page and
// /debug (a bounded ring: old events fall off).
type EventLog struct {
	mu     sync.Mutex
	events []LoggedEvent
	max    int
}

// LoggedEvent is one line of the event log.
type LoggedEvent struct {
	Time time.Time `json:"time"`
	Room string    `json:"room,omitempty"`
	Text string    `json:"text"`
}

// Add records an event.
func (l *EventLog) Add(room, format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.max == 0 {
		l.max = 200
	}
	l.events = append(l.events, LoggedEvent{Time: time.Now(), Room: room, Text: fmt.Sprintf(format, args...)})
	if len(l.events) > l.max {
		l.events = append(l.events[:0], l.events[len(l.events)-l.max:]...)
	}
}

// Recent returns a copy of the log, oldest first.
func (l *EventLog) Recent() []LoggedEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]LoggedEvent(nil), l.events...)
}

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
	h.pmux.HandleFunc("GET /move-endpoints/move-endpoint", h.moveEndpoints)
	h.pmux.HandleFunc("GET /move-endpoints/move-endpoints", h.moveEndpoints)
	h.pmux.HandleFunc("GET /pin", h.pins)
	h.pmux.HandleFunc("POST /pin", h.pin)
	h.pmux.HandleFunc("POST /pin/remove", h.unpin)
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

// moveEndpoints is Jicofo's /move-endpoints API: move one endpoint
// (conference + endpoint) or numEndpoints (default 1) off a bridge.
func (h *HTTPServer) moveEndpoints(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	room, endpoint, bridge := q.Get("conference"), q.Get("endpoint"), q.Get("bridge")
	n := 1
	if strings.HasSuffix(r.URL.Path, "/move-endpoints") {
		if bridge == "" {
			http.Error(w, "Bad request: Missing parameter: bridge", http.StatusBadRequest)
			return
		}
		if v := q.Get("numEndpoints"); v != "" {
			if _, err := fmt.Sscan(v, &n); err != nil || n < 1 || n > 10000 {
				http.Error(w, "Bad request: numEndpoints must be a positive number", http.StatusBadRequest)
				return
			}
		}
	} else if room == "" || endpoint == "" {
		http.Error(w, "Bad request: Missing parameter: conference and endpoint", http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	moved, confs, err := h.m.Focus.Move(ctx, room, endpoint, bridge, n)
	if err != nil {
		http.Error(w, "Error: "+err.Error(), http.StatusInternalServerError)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"movedEndpoints": moved, "conferences": confs})
}

// pins lists the bridge version pins (Jicofo's GET /pin).
func (h *HTTPServer) pins(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, h.m.Focus.Pins())
}

// pin pins a room's new conferences to a bridge version: body
// {"conferenceId":"room@muc","jvbVersion":"2.3-61-g814bffd6","durationMinutes":60}.
func (h *HTTPServer) pin(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Room     string `json:"conferenceId"`
		Version  string `json:"jvbVersion"`
		Duration int    `json:"durationMinutes"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequestBody)).Decode(&body); err != nil {
		http.Error(w, "Bad request: "+err.Error(), http.StatusBadRequest)
		return
	}
	if err := h.m.Focus.PinVersion(body.Room, body.Version, time.Duration(body.Duration)*time.Minute); err != nil {
		http.Error(w, "Bad request: "+err.Error(), http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// unpin removes a room's pin: body {"conferenceId":"room@muc"}.
func (h *HTTPServer) unpin(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Room string `json:"conferenceId"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequestBody)).Decode(&body); err != nil || body.Room == "" {
		http.Error(w, "Bad request: Missing parameter: conferenceId", http.StatusBadRequest)
		return
	}
	h.m.Focus.Unpin(body.Room)
	w.WriteHeader(http.StatusOK)
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
