package main

// metrics.go: core, off the two-person path: Prometheus metrics and the event log.

import (
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

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
