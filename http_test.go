package main

// Tests of the HTTP surface: /metrics, /stats and /debug after (and during)
// a scripted conference, the HTTP conference request endpoint with health
// and version, and the status page rendered by a real headless Chromium.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"minifocus/testkit"
)

// httpCall sends one request to the focus's HTTP server and returns the
// response (body already read) and its body.
func httpCall(t *testing.T, rm *runningMain, method, path string, header http.Header, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	addr := rm.HTTP.Addr()
	if operatorPath(path) {
		addr = rm.HTTP.PrivateAddr()
	}
	req, err := http.NewRequest(method, "http://"+addr+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	return resp, b
}

// operatorPath: the paths only the private listener serves.
func operatorPath(path string) bool {
	for _, p := range []string{"/debug", "/move-endpoints/", "/pin"} {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return path == "/"
}

// getJSON GETs path, checks it is a 200 JSON answer and decodes it into v.
func getJSON(t *testing.T, rm *runningMain, path string, v any) {
	t.Helper()
	resp, b := httpCall(t, rm, http.MethodGet, path, nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d %s", path, resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("GET %s: Content-Type %q, want application/json", path, ct)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %v in %s", path, err, b)
	}
}

// The /debug JSON as the status page reads it (declared here, not reused
// from http.go, so a renamed key breaks the test as it breaks the page).
type debugJSON struct {
	Healthy     bool     `json:"healthy"`
	XMPP        string   `json:"xmpp"`
	Reasons     []string `json:"reasons"`
	Version     string   `json:"version"`
	Uptime      string   `json:"uptime"`
	FocusJID    string   `json:"focus_jid"`
	Conferences []struct {
		Room         string   `json:"room"`
		MeetingID    string   `json:"meeting_id"`
		Bridges      []string `json:"bridges"`
		Participants []struct {
			Endpoint  string `json:"endpoint"`
			Session   string `json:"session"`
			Bridge    string `json:"bridge"`
			Sources   int    `json:"sources"`
			Moderator bool   `json:"moderator"`
		} `json:"participants"`
	} `json:"conferences"`
	Bridges []struct {
		JID          string `json:"jid"`
		Nick         string `json:"nick"`
		Operational  bool   `json:"operational"`
		ShuttingDown bool   `json:"shutting_down"`
	} `json:"bridges"`
	Events []struct {
		Time time.Time `json:"time"`
		Room string    `json:"room"`
		Text string    `json:"text"`
	} `json:"events"`
}

func getDebug(t *testing.T, rm *runningMain) debugJSON {
	t.Helper()
	var d debugJSON
	getJSON(t, rm, "/debug", &d)
	return d
}

// sessionStates is the endpoint → session state of room in /debug.
func sessionStates(t *testing.T, rm *runningMain, room string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, c := range getDebug(t, rm).Conferences {
		if c.Room == room {
			for _, p := range c.Participants {
				out[p.Endpoint] = p.Session
			}
		}
	}
	return out
}

// allActive reports whether /debug shows exactly ps in room, all "active".
func allActive(t *testing.T, rm *runningMain, room string, ps ...*testkit.Participant) bool {
	t.Helper()
	got := sessionStates(t, rm, room)
	if len(got) != len(ps) {
		return false
	}
	for _, p := range ps {
		if got[p.Nick()] != "active" {
			return false
		}
	}
	return true
}

// promScrape is one parsed /metrics answer.
type promScrape map[string]*dto.MetricFamily

func scrapeMetrics(t *testing.T, rm *runningMain) promScrape {
	t.Helper()
	resp, b := httpCall(t, rm, http.MethodGet, "/metrics", http.Header{"Accept": {"text/plain; version=0.0.4"}}, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics = %d %s", resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("/metrics Content-Type %q, want the Prometheus text format", ct)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("/metrics is not valid Prometheus text: %v\n%s", err, b)
	}
	return fams
}

// family returns the named family after checking its type (nil, with an
// error reported, if it is missing or of another type).
func (s promScrape) family(t *testing.T, name string, typ dto.MetricType) *dto.MetricFamily {
	t.Helper()
	f := s[name]
	if f == nil {
		t.Errorf("/metrics has no %s", name)
		return nil
	}
	if f.GetType() != typ {
		t.Errorf("%s is a %s, want a %s", name, f.GetType(), typ)
		return nil
	}
	if f.GetHelp() == "" {
		t.Errorf("%s has no HELP text", name)
	}
	return f
}

func sampleValue(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	}
	return 0
}

// value is the unlabelled sample of a counter or gauge (-1 if absent).
func (s promScrape) value(name string) float64 {
	f := s[name]
	if f == nil || len(f.Metric) != 1 || len(f.Metric[0].Label) != 0 {
		return -1
	}
	return sampleValue(f.Metric[0])
}

// byLabel maps a labelled counter's label values to their samples (the
// zero ones left out).
func (s promScrape) byLabel(name, label string) map[string]float64 {
	out := map[string]float64{}
	f := s[name]
	if f == nil {
		return out
	}
	for _, m := range f.Metric {
		for _, lp := range m.Label {
			if lp.GetName() == label && sampleValue(m) != 0 {
				out[lp.GetValue()] += sampleValue(m)
			}
		}
	}
	return out
}

// histCount is a histogram's sample count (-1 if absent).
func (s promScrape) histCount(name string) float64 {
	f := s[name]
	if f == nil || len(f.Metric) != 1 || f.Metric[0].Histogram == nil {
		return -1
	}
	return float64(f.Metric[0].Histogram.GetSampleCount())
}

// Every jitsi_jicofo_ series minifocus exports, with its type.
var wantFamilies = map[string]dto.MetricType{
	"jitsi_jicofo_conferences":                          dto.MetricType_GAUGE,
	"jitsi_jicofo_conferences_created_total":            dto.MetricType_COUNTER,
	"jitsi_jicofo_conference_requests_total":            dto.MetricType_COUNTER,
	"jitsi_jicofo_conference_requests_new_total":        dto.MetricType_COUNTER,
	"jitsi_jicofo_conference_requests_failed_total":     dto.MetricType_COUNTER,
	"jitsi_jicofo_participants_moved_total":             dto.MetricType_COUNTER,
	"jitsi_jicofo_bridges_removed_total":                dto.MetricType_COUNTER,
	"jitsi_jicofo_participants_restart_requested_total": dto.MetricType_COUNTER,
	"jitsi_jicofo_participants_ice_failed_total":        dto.MetricType_COUNTER,
	"jitsi_jicofo_colibri_errors_total":                 dto.MetricType_COUNTER,
	"jitsi_jicofo_jingle_sent_total":                    dto.MetricType_COUNTER,
	"jitsi_jicofo_jingle_received_total":                dto.MetricType_COUNTER,
	"jitsi_jicofo_join_to_session_initiate_seconds":     dto.MetricType_HISTOGRAM,
	"jitsi_jicofo_colibri_allocation_seconds":           dto.MetricType_HISTOGRAM,
	"jitsi_jicofo_accept_to_source_add_seconds":         dto.MetricType_HISTOGRAM,
	"go_goroutines":              dto.MetricType_GAUGE,
	"process_start_time_seconds": dto.MetricType_GAUGE,
}

// Jingle actions the participants and the focus exchange.
var wireJingleActions = []string{
	"session-initiate", "session-accept", "session-terminate", "session-info",
	"transport-info", "transport-accept", "transport-reject", "transport-replace",
	"source-add", "source-remove", "content-modify",
}

// jingleByParticipants is what the participants saw: the Jingle IQs they
// received (sent by the focus) and sent (received by the focus), by action.
func jingleByParticipants(ps []*testkit.Participant, extra ...map[string]float64) (fromFocus, toFocus map[string]float64) {
	fromFocus, toFocus = map[string]float64{}, map[string]float64{}
	actions := slices.Clone(wireJingleActions)
	for _, m := range extra {
		for a := range m {
			if !slices.Contains(actions, a) {
				actions = append(actions, a)
			}
		}
	}
	for _, p := range ps {
		fromFocus["session-initiate"] += float64(len(p.Offers()))
		for _, a := range actions {
			if a != "session-initiate" {
				fromFocus[a] += float64(len(p.Received(a)))
			}
			toFocus[a] += float64(len(p.Sent(a)))
		}
	}
	maps.DeleteFunc(fromFocus, func(_ string, v float64) bool { return v == 0 })
	maps.DeleteFunc(toFocus, func(_ string, v float64) bool { return v == 0 })
	return fromFocus, toFocus
}

// checkJingleCounters waits until the jingle_{sent,received}_total series
// match, action by action, what the participants received and sent.
func checkJingleCounters(t *testing.T, rm *runningMain, ps []*testkit.Participant) promScrape {
	t.Helper()
	var s promScrape
	var sent, recv, fromFocus, toFocus map[string]float64
	deadline := time.Now().Add(10 * time.Second)
	for {
		s = scrapeMetrics(t, rm)
		sent = s.byLabel("jitsi_jicofo_jingle_sent_total", "action")
		recv = s.byLabel("jitsi_jicofo_jingle_received_total", "action")
		fromFocus, toFocus = jingleByParticipants(ps, sent, recv)
		if maps.Equal(sent, fromFocus) && maps.Equal(recv, toFocus) {
			return s
		}
		if time.Now().After(deadline) {
			t.Errorf("jingle counters do not match the wire:\n jingle_sent_total     %v\n participants received %v\n jingle_received_total %v\n participants sent     %v",
				sent, fromFocus, recv, toFocus)
			return s
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestHTTPMetricsAfterConference scripts a three-participant conference
// (one of them asking over HTTP) with a screenshare, and checks /stats and
// /debug while it runs and /metrics during and after it.
func TestHTTPMetricsAfterConference(t *testing.T) {
	s := startStack(t, 1)
	rm := s.focus
	room := "metrics@conference.meet.test"
	p1 := s.join(room)
	p2 := s.join(room)
	p3 := s.join(room, func(c *testkit.ParticipantConfig) { c.UseHTTP = "http://" + rm.HTTP.Addr() })
	all := []*testkit.Participant{p1, p2, p3}
	const requests = 3 // one conference request per join
	s.wait("every session accepted and sources exchanged", func() bool {
		return p1.Accepted() && p2.Accepted() && p3.Accepted() &&
			knowsExactly(p1, p2, p3) && knowsExactly(p2, p1, p3) && knowsExactly(p3, p1, p2)
	})

	// p2 shares its screen: one more source-add in, two more out.
	seen1, seen3 := len(p1.RemoteSources()[p2.Nick()]), len(p3.RemoteSources()[p2.Nick()])
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	if err := p2.AddScreenshare(ctx); err != nil {
		t.Fatal(err)
	}
	s.wait("the screenshare reached the others", func() bool {
		return len(p1.RemoteSources()[p2.Nick()]) > seen1 && len(p3.RemoteSources()[p2.Nick()]) > seen3
	})
	s.wait("/debug shows every session active", func() bool { return allActive(t, rm, room, all...) })
	noViolations(t, all...)

	// /stats while the conference runs.
	var stats struct {
		Conferences       *int `json:"conferences"`
		Participants      *int `json:"participants"`
		LargestConference *int `json:"largest_conference"`
		EndpointPairs     *int `json:"endpoint_pairs"`
		BridgeSelector    *struct {
			BridgeCount            *int `json:"bridge_count"`
			OperationalBridgeCount *int `json:"operational_bridge_count"`
			InShutdownBridgeCount  *int `json:"in_shutdown_bridge_count"`
		} `json:"bridge_selector"`
	}
	getJSON(t, rm, "/stats", &stats)
	intIs := func(what string, got *int, want int) {
		t.Helper()
		if got == nil {
			t.Errorf("/stats has no %s", what)
		} else if *got != want {
			t.Errorf("/stats %s = %d, want %d", what, *got, want)
		}
	}
	intIs("conferences", stats.Conferences, 1)
	intIs("participants", stats.Participants, 3)
	intIs("largest_conference", stats.LargestConference, 3)
	intIs("endpoint_pairs", stats.EndpointPairs, 9)
	if stats.BridgeSelector == nil {
		t.Error("/stats has no bridge_selector")
	} else {
		intIs("bridge_selector.bridge_count", stats.BridgeSelector.BridgeCount, 1)
		intIs("bridge_selector.operational_bridge_count", stats.BridgeSelector.OperationalBridgeCount, 1)
		intIs("bridge_selector.in_shutdown_bridge_count", stats.BridgeSelector.InShutdownBridgeCount, 0)
	}

	// /debug while the conference runs.
	d := getDebug(t, rm)
	if !d.Healthy || d.XMPP != "connected" || d.FocusJID != "focus@auth.meet.test/focus" || d.Version != version || d.Uptime == "" {
		t.Errorf("/debug header: healthy=%v xmpp=%q focus_jid=%q version=%q uptime=%q", d.Healthy, d.XMPP, d.FocusJID, d.Version, d.Uptime)
	}
	if len(d.Conferences) != 1 || d.Conferences[0].Room != room {
		t.Fatalf("/debug conferences = %+v, want just %s", d.Conferences, room)
	}
	c := d.Conferences[0]
	bridgeJID := s.bridges[0].JID()
	if c.MeetingID == "" || !slices.Equal(c.Bridges, []string{bridgeJID}) {
		t.Errorf("/debug conference: meeting_id=%q bridges=%v, want an id and [%s]", c.MeetingID, c.Bridges, bridgeJID)
	}
	var eps []string
	moderators := 0
	for _, p := range c.Participants {
		eps = append(eps, p.Endpoint)
		if p.Session != "active" || p.Bridge != bridgeJID || p.Sources < 2 {
			t.Errorf("/debug participant %+v: want session active on %s with its sources", p, bridgeJID)
		}
		if p.Moderator {
			moderators++
		}
	}
	if !slices.Equal(eps, nicks(all...)) {
		t.Errorf("/debug participants %v, want %v in join order", eps, nicks(all...))
	}
	if moderators != 1 {
		t.Errorf("/debug shows %d moderators, want 1", moderators)
	}
	if len(d.Bridges) != 1 || d.Bridges[0].Nick != "jvb1" || d.Bridges[0].JID != bridgeJID || !d.Bridges[0].Operational {
		t.Errorf("/debug bridges = %+v, want jvb1 operational", d.Bridges)
	}
	for _, p := range all {
		var joined, established bool
		for _, e := range d.Events {
			if e.Room != room || e.Time.IsZero() {
				continue
			}
			joined = joined || e.Text == p.Nick()+" joined"
			established = established || strings.HasPrefix(e.Text, p.Nick()+": session established")
		}
		if !joined || !established {
			t.Errorf("/debug events for %s: joined=%v session established=%v\n%+v", p.Nick(), joined, established, d.Events)
		}
	}
	var dbgBridges []map[string]any
	getJSON(t, rm, "/debug/bridges", &dbgBridges)
	if len(dbgBridges) != 1 || dbgBridges[0]["nick"] != "jvb1" || dbgBridges[0]["operational"] != true {
		t.Errorf("/debug/bridges = %v", dbgBridges)
	}

	// /metrics while the conference runs.
	m := checkJingleCounters(t, rm, all)
	if got := m.value("jitsi_jicofo_conferences"); got != 1 {
		t.Errorf("conferences gauge = %v during the conference, want 1", got)
	}
	if got := m.byLabel("jitsi_jicofo_jingle_received_total", "action")["source-add"]; got != 1 {
		t.Errorf(`jingle_received_total{action="source-add"} = %v, want 1 (the screenshare)`, got)
	}

	// Everyone leaves; the conference ends.
	for _, p := range []*testkit.Participant{p3, p1, p2} {
		if err := p.Leave(); err != nil {
			t.Fatal(err)
		}
	}
	s.wait("the conference to end", func() bool {
		return rm.Focus.lookup(room) == nil && len(s.bridges[0].Conferences()) == 0 &&
			scrapeMetrics(t, rm).value("jitsi_jicofo_conferences") == 0
	})

	m = checkJingleCounters(t, rm, all)
	for name, typ := range wantFamilies {
		m.family(t, name, typ)
	}
	for name, want := range map[string]float64{
		"jitsi_jicofo_conferences":                          0,
		"jitsi_jicofo_conferences_created_total":            1,
		"jitsi_jicofo_conference_requests_total":            requests,
		"jitsi_jicofo_conference_requests_new_total":        1,
		"jitsi_jicofo_conference_requests_failed_total":     0,
		"jitsi_jicofo_participants_moved_total":             0,
		"jitsi_jicofo_bridges_removed_total":                0,
		"jitsi_jicofo_participants_restart_requested_total": 0,
		"jitsi_jicofo_participants_ice_failed_total":        0,
		"jitsi_jicofo_colibri_errors_total":                 0,
	} {
		if got := m.value(name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	initiates := m.byLabel("jitsi_jicofo_jingle_sent_total", "action")["session-initiate"]
	if initiates != 3 {
		t.Errorf(`jingle_sent_total{action="session-initiate"} = %v, want 3 (one offer each)`, initiates)
	}
	accepts := m.byLabel("jitsi_jicofo_jingle_received_total", "action")["session-accept"]
	if accepts != 3 {
		t.Errorf(`jingle_received_total{action="session-accept"} = %v, want 3`, accepts)
	}
	if got := m.histCount("jitsi_jicofo_accept_to_source_add_seconds"); got != accepts {
		t.Errorf("accept_to_source_add_seconds_count = %v, want %v (one per session-accept)", got, accepts)
	}
	if got := m.byLabel("jitsi_jicofo_jingle_sent_total", "action")["source-remove"]; got != 0 {
		t.Errorf(`jingle_sent_total{action="source-remove"} = %v, want 0 (leaving occupants need none)`, got)
	}
	if got := m.histCount("jitsi_jicofo_join_to_session_initiate_seconds"); got != initiates {
		t.Errorf("join_to_session_initiate_seconds_count = %v, want %v (one per session-initiate)", got, initiates)
	}
	allocations, colibri := 0, len(s.bridges[0].Requests())
	for _, r := range s.bridges[0].Requests() {
		for _, ep := range r.All("", "endpoint") {
			if ep.Attr("create") == "true" {
				allocations++
			}
		}
	}
	if allocations != 3 {
		t.Errorf("the bridge saw %d endpoint allocations, want 3", allocations)
	}
	if got := m.histCount("jitsi_jicofo_colibri_allocation_seconds"); got < float64(allocations) || got > float64(colibri) {
		t.Errorf("colibri_allocation_seconds_count = %v, want between %d allocations and %d Colibri2 requests", got, allocations, colibri)
	}
	if h := m["jitsi_jicofo_join_to_session_initiate_seconds"]; h != nil && len(h.Metric) == 1 {
		if sum := h.Metric[0].Histogram.GetSampleSum(); sum <= 0 || sum > 3*20 {
			t.Errorf("join_to_session_initiate_seconds_sum = %v, want a few seconds at most", sum)
		}
	}

	// /stats after the end.
	getJSON(t, rm, "/stats", &stats)
	intIs("conferences after the end", stats.Conferences, 0)
	intIs("participants after the end", stats.Participants, 0)
}

// postConference POSTs body to the conference request endpoint.
func postConference(t *testing.T, rm *runningMain, body string) (*http.Response, []byte) {
	t.Helper()
	return httpCall(t, rm, http.MethodPost, "/conference-request/v1",
		http.Header{"Content-Type": {"application/json"}, "Origin": {"https://meet.test"}}, strings.NewReader(body))
}

// TestHTTPConferenceRequestEndpoint drives POST/OPTIONS
// /conference-request/v1, /about/health and /about/version directly.
func TestHTTPConferenceRequestEndpoint(t *testing.T) {
	s := startStack(t, 0)
	rm := s.focus
	waitFor(t, 10*time.Second, "XMPP login", func() bool { up, _ := rm.XMPP.Connected(); return up })

	// No bridge yet: unhealthy, and it says why.
	resp, b := httpCall(t, rm, http.MethodGet, "/about/health", nil, nil)
	var health struct {
		Healthy *bool    `json:"healthy"`
		XMPP    string   `json:"xmpp"`
		Reasons []string `json:"reasons"`
	}
	if err := json.Unmarshal(b, &health); err != nil {
		t.Fatalf("health body %q: %v", b, err)
	}
	if resp.StatusCode != http.StatusServiceUnavailable || health.Healthy == nil || *health.Healthy ||
		health.XMPP != "connected" || len(health.Reasons) != 1 || !strings.Contains(health.Reasons[0], "no operational bridge") {
		t.Errorf("health without a bridge = %d %s, want 503 with the reason", resp.StatusCode, b)
	}

	// Version.
	var ver map[string]string
	getJSON(t, rm, "/about/version", &ver)
	if ver["name"] != "minifocus" || ver["version"] == "" || ver["version"] != version || ver["os"] != runtime.GOOS {
		t.Errorf("/about/version = %v", ver)
	}

	// The browser's preflight.
	resp, b = httpCall(t, rm, http.MethodOptions, "/conference-request/v1", http.Header{
		"Origin":                         {"https://meet.test"},
		"Access-Control-Request-Method":  {"POST"},
		"Access-Control-Request-Headers": {"content-type,authorization"},
	}, nil)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("OPTIONS = %d %s, want 200", resp.StatusCode, b)
	}
	checkCORS := func(what string, h http.Header) {
		t.Helper()
		if got := h.Get("Access-Control-Allow-Origin"); got != "*" && got != "https://meet.test" {
			t.Errorf("%s: Access-Control-Allow-Origin %q", what, got)
		}
		methods := strings.ToUpper(h.Get("Access-Control-Allow-Methods"))
		if !slices.Contains(splitList(methods), "POST") {
			t.Errorf("%s: Access-Control-Allow-Methods %q lacks POST", what, methods)
		}
		headers := strings.ToLower(h.Get("Access-Control-Allow-Headers"))
		if !slices.Contains(splitList(headers), "content-type") || !slices.Contains(splitList(headers), "authorization") {
			t.Errorf("%s: Access-Control-Allow-Headers %q lacks Content-Type or Authorization", what, headers)
		}
	}
	checkCORS("OPTIONS", resp.Header)

	// Bad requests: 400 and a reason, in text.
	room := "httpapi@conference.meet.test"
	bad := []struct {
		name, body, reason string
	}{
		{"empty body", "", "invalid JSON"},
		{"invalid JSON", `{"room": "` + room + `",`, "invalid JSON"},
		{"not an object", `["` + room + `"]`, "invalid JSON"},
		{"two values", `{"room":"` + room + `"} {}`, "more than one value"},
		{"missing room", `{"machineUid":"m1","properties":{}}`, "no 'room' specified"},
		{"empty room", `{"room":""}`, "no 'room' specified"},
		{"room not a string", `{"room":42}`, "invalid JSON"},
		{"room in another domain", `{"room":"x@conference.elsewhere.test"}`, "not in the conference domain"},
		{"room without a domain", `{"room":"lobby"}`, "invalid room name"},
		{"room with a resource", `{"room":"` + room + `/nick"}`, "invalid room name"},
		{"oversized body", `{"room":"` + room + `","properties":{"x":"` + strings.Repeat("a", 16<<10) + `"}}`, "too large"},
		{"object property", `{"room":"` + room + `","properties":{"startAudioMuted":{"n":1}}}`, `property "startAudioMuted" must be a string, number or boolean`},
		{"array property", `{"room":"` + room + `","properties":{"p":[1,2]}}`, `property "p" must be`},
		{"properties not an object", `{"room":"` + room + `","properties":"x"}`, "invalid JSON"},
		{"sessionId not a string", `{"room":"` + room + `","sessionId":7}`, "invalid JSON"},
		{"too many properties", `{"room":"` + room + `","properties":{` + manyProps(65) + `}}`, "too many properties"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			resp, b := postConference(t, rm, tc.body)
			if resp.StatusCode != http.StatusBadRequest || !strings.HasPrefix(string(b), "Bad request: ") || !strings.Contains(string(b), tc.reason) {
				t.Errorf("= %d %q, want 400 \"Bad request: …%s…\"", resp.StatusCode, b, tc.reason)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
				t.Errorf("error Content-Type %q, want text/plain", ct)
			}
			if resp.Header.Get("Access-Control-Allow-Origin") == "" {
				t.Error("an error answer without CORS headers is unreadable to the page")
			}
		})
	}
	if rm.Focus.lookup(room) != nil {
		t.Error("a refused request created the conference")
	}

	// Only POST and OPTIONS.
	if resp, b := httpCall(t, rm, http.MethodGet, "/conference-request/v1", nil, nil); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /conference-request/v1 = %d %s, want 405", resp.StatusCode, b)
	}

	// A good request, as lib-jitsi-meet sends it (properties of all three
	// JSON types; the room in mixed case).
	good := `{"room":"HTTPApi@conference.meet.test","sessionId":"s1","machineUid":"m1",` +
		`"properties":{"rtcstatsEnabled":false,"visitors-version":1,"startVideoMuted":"10"}}`
	resp, b = postConference(t, rm, good)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("good request = %d %s", resp.StatusCode, b)
	}
	checkCORS("POST", resp.Header)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var answer struct {
		Room       string            `json:"room"`
		Ready      bool              `json:"ready"`
		FocusJID   string            `json:"focusJid"`
		Properties map[string]string `json:"properties"`
	}
	if err := json.Unmarshal(b, &answer); err != nil {
		t.Fatalf("answer %s: %v", b, err)
	}
	if answer.Room != room || !answer.Ready || answer.FocusJID != "focus@auth.meet.test" || answer.Properties["authentication"] != "false" {
		t.Errorf("answer = %s, want room %s, ready, focusJid focus@auth.meet.test, properties with authentication=false", b, room)
	}
	if rm.Focus.lookup(room) == nil {
		t.Error("the request did not create the conference")
	}
	// A body just under the limit is fine.
	resp, b = postConference(t, rm, `{"room":"`+room+`","properties":{"x":"`+strings.Repeat("a", 15<<10)+`"}}`)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("a 15 KiB request = %d %.200s, want 200", resp.StatusCode, b)
	}

	// A bridge appears: healthy.
	s.addBridge("jvb1", "")
	waitFor(t, 10*time.Second, "health 200 once a bridge is operational", func() bool {
		resp, _ := httpCall(t, rm, http.MethodGet, "/about/health", nil, nil)
		return resp.StatusCode == http.StatusOK
	})
	resp, b = httpCall(t, rm, http.MethodGet, "/about/health", nil, nil)
	health.Healthy, health.Reasons = nil, nil
	if err := json.Unmarshal(b, &health); err != nil || resp.StatusCode != http.StatusOK ||
		health.Healthy == nil || !*health.Healthy || health.XMPP != "connected" || len(health.Reasons) != 0 {
		t.Errorf("health with a bridge = %d %s", resp.StatusCode, b)
	}
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		out = append(out, strings.TrimSpace(f))
	}
	return out
}

func manyProps(n int) string {
	var parts []string
	for i := range n {
		parts = append(parts, fmt.Sprintf(`"p%d":"v"`, i))
	}
	return strings.Join(parts, ",")
}

const chromiumPath = "/usr/bin/chromium"

// runChromium runs headless Chromium on url with the extra flags, each run
// with a fresh profile under dir, and returns its stdout.
func runChromium(t *testing.T, dir, url string, extra ...string) []byte {
	t.Helper()
	profile, err := os.MkdirTemp(dir, "profile-")
	if err != nil {
		t.Fatal(err)
	}
	args := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + profile, "--virtual-time-budget=5000",
	}
	args = append(append(args, extra...), url)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromiumPath, args...)
	// Chromium forks helpers: run it in a process group of its own and kill
	// the whole group if it hangs.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+profile, "XDG_CACHE_HOME="+profile)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %s: %v\n%s", strings.Join(extra, " "), err, lastLines(stderr.String(), 20))
	}
	t.Logf("chromium %s took %s", strings.Join(extra, " "), time.Since(start).Round(time.Millisecond))
	return stdout.Bytes()
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestStatusPageInHeadlessChromium loads the status page in a real browser
// while a conference runs on two bridges and checks what it rendered.
func TestStatusPageInHeadlessChromium(t *testing.T) {
	testkit.SkipIfShort(t) // needs chromium and Prosody
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("this test needs Debian's chromium at %s (%v): run `make deps` to install it", chromiumPath, err)
	}
	s := startStack(t, 2)
	rm := s.focus
	room := "statuspage@conference.meet.test"
	p1 := s.join(room)
	p2 := s.join(room)
	s.wait("both sessions up", func() bool {
		return p1.Accepted() && p2.Accepted() && knowsExactly(p1, p2) && knowsExactly(p2, p1)
	})
	s.wait("/debug shows both sessions active", func() bool { return allActive(t, rm, room, p1, p2) })

	dir := t.TempDir()
	url := "http://" + rm.HTTP.PrivateAddr() + "/"
	dom := string(runChromium(t, dir, url, "--dump-dom"))
	want := []string{
		`data-room="` + room + `"`,
		`data-endpoint="` + p1.Nick() + `"`,
		`data-endpoint="` + p2.Nick() + `"`,
		`data-bridge="jvb1"`,
		`data-bridge="jvb2"`,
		`<span class="pill active">active</span>`,
	}
	for _, w := range want {
		if !strings.Contains(dom, w) {
			t.Errorf("the rendered page lacks %s", w)
		}
	}
	if n := strings.Count(dom, `class="pill active"`); n != 2 {
		t.Errorf("%d active session pills, want 2", n)
	}
	if !strings.Contains(dom, `id="health">healthy`) {
		t.Error("the header does not show a healthy focus")
	}
	if n := strings.Count(dom, `<span class="pill good">ok</span>`); n != 2 {
		t.Errorf("%d bridges shown ok, want 2", n)
	}
	if !strings.Contains(dom, p1.Nick()+" joined") {
		t.Error("the event list lacks the join")
	}
	if t.Failed() {
		t.Logf("dumped DOM:\n%s", dom)
	}

	shot := filepath.Join(dir, "status.png")
	runChromium(t, dir, url, "--screenshot="+shot, "--window-size=1200,800")
	png, err := os.ReadFile(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) || len(png) < 10<<10 {
		t.Errorf("the screenshot is not a plausible PNG (%d bytes)", len(png))
	}
	if dst := os.Getenv("MINIFOCUS_SCREENSHOT"); dst != "" {
		if err := os.WriteFile(dst, png, 0o644); err != nil {
			t.Fatalf("copying the screenshot to %s: %v", dst, err)
		}
		t.Logf("screenshot written to %s", dst)
	}
}

// The operator endpoints (status page, /debug with real JIDs, the profiler,
// /move-endpoints, /pin) answer only on the private listener; the public one,
// where conference requests come from, has the conference request, health,
// version and metrics. Both addresses the same puts everything on one
// listener; an empty private-listen turns the operator endpoints off.
func TestOperatorEndpointsOnlyOnPrivateListener(t *testing.T) {
	operator := [][2]string{{"GET", "/"}, {"GET", "/debug"}, {"GET", "/debug/bridges"}, {"GET", "/debug/pprof/"}}
	if builtWith("operator") {
		operator = append(operator, [2]string{"GET", "/move-endpoints/move-endpoint?conference=a@conference.meet.test&endpoint=b"},
			[2]string{"GET", "/move-endpoints/move-endpoints?bridge=jvb1"})
	}
	if builtWith("bridge-policy") {
		operator = append(operator, [2]string{"GET", "/pin"}, [2]string{"POST", "/pin"}, [2]string{"POST", "/pin/remove"})
	}
	public := [][2]string{{"GET", "/about/health"}, {"GET", "/about/version"}, {"GET", "/metrics"}, {"GET", "/stats"},
		{"OPTIONS", "/conference-request/v1"}, {"POST", "/conference-request/v1"}}
	free := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().String()
	}
	start := func(listen, private string) *HTTPServer {
		cfg := DefaultConfig()
		cfg.XMPP.Domain, cfg.XMPP.Password = "meet.test", "x"
		cfg.deriveDefaults()
		cfg.HTTP.Listen, cfg.HTTP.PrivateListen = listen, private
		m := NewMain(cfg, NewLogger(LogConfig{Level: "error", Format: "text"}, io.Discard))
		if err := m.HTTP.Listen(); err != nil {
			t.Fatal(err)
		}
		go m.HTTP.Serve()
		t.Cleanup(func() { m.HTTP.Shutdown(time.Second) })
		return m.HTTP
	}
	status := func(addr string, r [2]string) int {
		req, _ := http.NewRequest(r[0], "http://"+addr+r[1], strings.NewReader("{}"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s on %s: %v", r[0], r[1], addr, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	check := func(mode, addr string, routes [][2]string, served bool) {
		for _, r := range routes {
			if code := status(addr, r); (code != http.StatusNotFound && code != http.StatusMethodNotAllowed) != served {
				t.Errorf("%s: %s %s on %s answered %d; served=%v wanted", mode, r[0], r[1], addr, code, served)
			}
		}
	}

	h := start("127.0.0.1:0", "127.0.0.1:0")
	if h.PrivateAddr() == "" || h.PrivateAddr() == h.Addr() {
		t.Fatalf("separate listeners: public %s, private %s", h.Addr(), h.PrivateAddr())
	}
	check("public", h.Addr(), operator, false)
	check("public", h.Addr(), public, true)
	check("private", h.PrivateAddr(), operator, true)
	check("private", h.PrivateAddr(), public, true)

	addr := free()
	h = start(addr, addr)
	if h.PrivateAddr() != h.Addr() {
		t.Errorf("shared listener: public %s, private %s", h.Addr(), h.PrivateAddr())
	}
	check("shared", h.Addr(), operator, true)
	check("shared", h.Addr(), public, true)

	h = start("127.0.0.1:0", "")
	if h.PrivateAddr() != "" {
		t.Errorf("operator endpoints off, yet on %s", h.PrivateAddr())
	}
	check("off", h.Addr(), operator, false)
	check("off", h.Addr(), public, true)
}
