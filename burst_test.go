package main

// Bursts of conference requests against real Prosody (burst.go): each one
// is answered — ready, refused at once (resource-constraint / 429) when its
// sender floods, "not ready" (come back) when the focus is busy — never left
// to time out; a running conference goes on untouched, and the
// focus stays connected (its keepalive, with the tests' one-second ping
// interval, must not take the busy stream for a dead server).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"minifocus/testkit"
)

// burstResult tallies the answers of a burst: ready, refused (the
// per-sender limit's error), not ready (the load limits' "come back"), or
// anything else (a failure).
type burstResult struct {
	mu       sync.Mutex
	ok       int
	refused  int
	notReady int
	other    []string
	slowest  time.Duration // slowest refusal or not-ready answer
	took     []time.Duration
}

type answer int

const (
	answerOther answer = iota
	answerReady
	answerRefused
	answerNotReady
)

func (r *burstResult) add(a answer, d time.Duration, other string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.took = append(r.took, d)
	switch a {
	case answerReady:
		r.ok++
	case answerRefused:
		r.refused++
		r.slowest = max(r.slowest, d)
	case answerNotReady:
		r.notReady++
		r.slowest = max(r.slowest, d)
	default:
		r.other = append(r.other, other)
	}
}

func (r *burstResult) String() string {
	sort.Slice(r.took, func(i, j int) bool { return r.took[i] < r.took[j] })
	p := func(q float64) time.Duration { return r.took[int(q*float64(len(r.took)-1))].Round(time.Millisecond) }
	return fmt.Sprintf("%d ready, %d refused, %d not ready (slowest of those %s), %d failed; answer time p50 %s p99 %s",
		r.ok, r.refused, r.notReady, r.slowest.Round(time.Millisecond), len(r.other), p(0.5), p(0.99))
}

func TestConferenceRequestBursts(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	p := testkit.StartProsody(t, testkit.WithUser("alice", testkit.AuthDomain, "alicepw"))
	cfg := testConfig(p)
	// Above the per-sender limit, so that each limit shows on its own.
	cfg.Conference.MaxPendingJoins = 150
	rm := startMain(t, cfg)
	s := &stack{t: t, prosody: p, focus: rm, ctx: ctx}
	s.addBridge("jvb1", "")
	waitFor(t, 10*time.Second, "focus logged in and bridge operational", func() bool {
		up, _ := rm.XMPP.Connected()
		return up && rm.Bridges.OperationalCount() == 1
	})
	room := "running@conference.meet.test"
	p1 := s.join(room)
	p2 := s.join(room)
	s.wait("the running conference", func() bool { return p1.Accepted() && p2.Accepted() && knowsExactly(p1, p2) })

	// 1. One authenticated user on three connections (the three
	// logins): they share one budget, their bare JID's.
	xr := &burstResult{}
	var wg sync.WaitGroup
	for c := 0; c < 3; c++ {
		cl, err := testkit.Dial(ctx, testkit.DialConfig{Addr: p.C2SAddr(), Domain: testkit.AuthDomain, User: "alice", Password: "alicepw", Resource: fmt.Sprintf("r%d", c)})
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		for i := 0; i < 130; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				xr.add(xmppRequest(ctx, cl, cfg, fmt.Sprintf("x%d-%d@conference.meet.test", c, i)))
			}()
		}
	}
	wg.Wait()
	t.Logf("XMPP, 390 requests from one user on 3 connections: %s", xr)
	if xr.ok != cfg.Conference.MaxConferenceRequests || xr.refused != 390-xr.ok || len(xr.other) > 0 {
		t.Errorf("XMPP burst: %d ready (at most %d per minute for one user), others %v",
			xr.ok, cfg.Conference.MaxConferenceRequests, xr.other)
	}

	settle := func(tokens int) {
		waitFor(t, 30*time.Second, "the total budget to refill and the new conferences to be joined", func() bool {
			rm.Focus.mu.Lock()
			defer rm.Focus.mu.Unlock()
			rm.Focus.total.refill(time.Now(), 2*cfg.Conference.MaxRequestsPerSecond, float64(cfg.Conference.MaxRequestsPerSecond))
			return rm.Focus.total.tokens >= float64(tokens) && rm.Focus.startingLocked() == 0
		})
	}
	settle(2 * cfg.Conference.MaxRequestsPerSecond)

	// 1b. 1000 XMPP requests from ten anonymous users, each within its own
	// budget: the total and pending-join limits answer "not ready".
	mr := &burstResult{}
	start := time.Now()
	for c := 0; c < 10; c++ {
		cl, err := testkit.Dial(ctx, testkit.DialConfig{Addr: p.C2SAddr(), Domain: testkit.Domain})
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		for i := 0; i < 100; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				mr.add(xmppRequest(ctx, cl, cfg, fmt.Sprintf("m%d-%d@conference.meet.test", c, i)))
			}()
		}
	}
	wg.Wait()
	t.Logf("XMPP, 1000 requests from 10 users: %s", mr)
	if mr.ok == 0 || mr.ok > totalAllowed(cfg, time.Since(start)) || mr.refused > 0 || len(mr.other) > 0 {
		t.Errorf("XMPP burst from 10 users: %d ready, %d refused, %d not ready, failed %v", mr.ok, mr.refused, mr.notReady, mr.other)
	}
	settle(2 * cfg.Conference.MaxRequestsPerSecond)

	// 2. 1000 HTTP requests at once, from 1000 addresses behind the local
	// proxy: the total and pending-join limits answer "not ready" for the
	// focus. An honest client arriving in the middle of it polls again, as
	// lib-jitsi-meet does, and gets into the running conference.
	late := make(chan *testkit.Participant, 1)
	go func() {
		pc := testkit.ParticipantConfig{Addr: p.C2SAddr(), Room: room, RetryNotReady: true}
		jctx, jcancel := context.WithTimeout(ctx, 60*time.Second)
		defer jcancel()
		p3, err := testkit.JoinConference(jctx, pc)
		if err != nil {
			t.Errorf("a client joining during the burst: %v", err)
		}
		late <- p3
	}()
	start = time.Now()
	hr := burstHTTP(t, ctx, rm, 1000, func(i int) string { return fmt.Sprintf("198.51.%d.%d", i/250, i%250+1) }, "h")
	t.Logf("HTTP, 1000 requests from 1000 senders: %s", hr)
	if hr.ok == 0 || hr.ok > totalAllowed(cfg, time.Since(start)) || hr.refused > 0 || len(hr.other) > 0 {
		t.Errorf("HTTP burst: %d ready, %d refused, %d not ready, failed %v", hr.ok, hr.refused, hr.notReady, hr.other)
	}
	if p3 := <-late; p3 != nil {
		defer p3.Close()
		s.wait("the late client in the running conference", func() bool { return p3.Accepted() && knowsExactly(p3, p1, p2) })
	}

	// 3. 200 HTTP requests from one address: its own budget.
	settle(cfg.Conference.MaxConferenceRequests + 1)
	sr := burstHTTP(t, ctx, rm, 200, func(int) string { return "203.0.113.7" }, "s")
	t.Logf("HTTP, 200 requests from one sender: %s", sr)
	if sr.ok != cfg.Conference.MaxConferenceRequests || sr.refused != 200-sr.ok || len(sr.other) > 0 {
		t.Errorf("one HTTP sender: %d ready (at most %d per minute), others %v", sr.ok, cfg.Conference.MaxConferenceRequests, sr.other)
	}

	// Nothing running was harmed, and the focus never lost its stream.
	s.barrier(p1, 750000)
	if conn, disc := rm.XMPP.Stats(); conn != 1 || disc != 0 || rm.XMPP.Resumes() != 0 {
		t.Errorf("the focus's XMPP stream: %d logins, %d losses, %d resumptions during the bursts", conn, disc, rm.XMPP.Resumes())
	}
	for _, pp := range []*testkit.Participant{p1, p2} {
		if len(pp.Offers()) != 1 || len(pp.Received("session-terminate")) != 0 || pp.FocusOccupant() == "" {
			t.Errorf("%s's conference was disturbed by the bursts", pp.Nick())
		}
	}
	if c := rm.Focus.lookup(room); c == nil {
		t.Error("the running conference ended")
	}
}

// totalAllowed is the most requests the total limit lets through in d
// (from a full bucket).
func totalAllowed(cfg Config, d time.Duration) int {
	r := cfg.Conference.MaxRequestsPerSecond
	return 2*r + int(d.Seconds()*float64(r)) + 1
}

// xmppRequest sends one conference IQ and classifies the answer.
func xmppRequest(ctx context.Context, cl *testkit.Client, cfg Config, room string) (answer, time.Duration, string) {
	iq := testkit.NewElem("", "iq", "to", cfg.FocusJID()+"/"+cfg.XMPP.Resource, "type", "set").Add(
		testkit.NewElem(nsFocus, "conference", "machine-uid", "m", "room", room))
	start := time.Now()
	resp, err := cl.SendIQ(ctx, iq)
	took := time.Since(start)
	var se *testkit.StanzaError
	switch {
	case errors.As(err, &se) && se.Condition == "resource-constraint":
		return answerRefused, took, ""
	case err == nil && resp.Child(nsFocus, "conference").Attr("ready") == "true":
		return answerReady, took, ""
	case err == nil && resp.Child(nsFocus, "conference").Attr("ready") == "false":
		return answerNotReady, took, ""
	}
	return answerOther, took, fmt.Sprint(resp, err)
}

// burstHTTP sends n conference requests for distinct new rooms at once, the
// i-th with X-Forwarded-For from(i), and tallies the answers.
func burstHTTP(t *testing.T, ctx context.Context, rm *runningMain, n int, from func(int) string, prefix string) *burstResult {
	t.Helper()
	r := &burstResult{}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n}, Timeout: 30 * time.Second}
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := fmt.Sprintf(`{"room":"%s%d@conference.meet.test"}`, prefix, i)
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+rm.HTTP.Addr()+"/conference-request/v1", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Forwarded-For", from(i))
			start := time.Now()
			resp, err := client.Do(req)
			if err != nil {
				r.add(answerOther, time.Since(start), err.Error())
				return
			}
			var got struct {
				Ready bool `json:"ready"`
			}
			derr := json.NewDecoder(resp.Body).Decode(&got)
			resp.Body.Close()
			a := answerOther
			switch {
			case resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") != "":
				a = answerRefused
			case resp.StatusCode == http.StatusOK && derr == nil && got.Ready:
				a = answerReady
			case resp.StatusCode == http.StatusOK && derr == nil:
				a = answerNotReady
			}
			r.add(a, time.Since(start), resp.Status)
		}()
	}
	wg.Wait()
	return r
}

// The sender of an HTTP request is its peer, unless the peer is a trusted
// proxy: then the last X-Forwarded-For address (the one the proxy saw).
func TestHTTPSenderBehindProxies(t *testing.T) {
	h := &HTTPServer{proxies: parseProxies(defaultTrustedProxies)}
	for _, tc := range []struct {
		peer, xff, want string
	}{
		{"203.0.113.5:4000", "", "http:203.0.113.5"},
		{"203.0.113.5:4000", "198.51.100.1", "http:203.0.113.5"}, // not a proxy: its header proves nothing
		{"127.0.0.1:4000", "198.51.100.1", "http:198.51.100.1"},
		{"172.18.0.3:4000", "10.9.9.9, 198.51.100.1", "http:198.51.100.1"}, // the client's own claim is ignored
		{"127.0.0.1:4000", "garbage", "http:127.0.0.1"},
		{"[2001:db8:1:2:3:4:5:6]:4000", "", "http:2001:db8:1:2::"}, // a /64
	} {
		r := httptest.NewRequest(http.MethodPost, "/conference-request/v1", nil)
		r.RemoteAddr = tc.peer
		if tc.xff != "" {
			r.Header.Set("X-Forwarded-For", tc.xff)
		}
		if got := h.senderOf(r); got != tc.want {
			t.Errorf("peer %s, X-Forwarded-For %q: sender %s, want %s", tc.peer, tc.xff, got, tc.want)
		}
	}
}

// The keepalive pings only after silence and gives up only after a written
// ping was followed by nothing for the dead time.
func TestKeepaliveBusyIsNotDead(t *testing.T) {
	var k keepalive
	t0 := time.Unix(1000, 0)
	iv, dead := time.Second, 3*time.Second
	k.heard(t0)
	if ping, err := k.check(t0.Add(500*time.Millisecond), iv, dead); ping || err != nil {
		t.Fatalf("pinged while traffic flows: %v %v", ping, err)
	}
	if ping, err := k.check(t0.Add(time.Second), iv, dead); !ping || err != nil {
		t.Fatalf("no ping after a silent interval: %v %v", ping, err)
	}
	// Queued behind a burst for a long time: not written, not dead.
	if ping, err := k.check(t0.Add(20*time.Second), iv, dead); ping || err != nil {
		t.Fatalf("a ping still queued counted against the server: %v %v", ping, err)
	}
	k.wrote(t0.Add(21 * time.Second))
	if _, err := k.check(t0.Add(23*time.Second), iv, dead); err != nil {
		t.Fatalf("dead before the dead time: %v", err)
	}
	k.heard(t0.Add(23500 * time.Millisecond)) // any traffic answers it
	if ping, err := k.check(t0.Add(24*time.Second), iv, dead); ping || err != nil {
		t.Fatalf("after traffic: %v %v", ping, err)
	}
	if ping, _ := k.check(t0.Add(25*time.Second), iv, dead); !ping {
		t.Fatal("no ping after the next silence")
	}
	k.wrote(t0.Add(25 * time.Second))
	if _, err := k.check(t0.Add(28*time.Second), iv, dead); err == nil {
		t.Fatal("a written ping followed by silence for the dead time is not fatal")
	}
}

// The initial timeout counts from when the focus is in the room: a join
// that takes longer than the timeout (here Prosody is frozen for a while)
// still leaves the clients the whole timeout to come in.
func TestInitialTimeoutCountsFromJoin(t *testing.T) {
	s := startStack(t, 1, func(c *Config, _ *testkit.Prosody) { c.Conference.InitialTimeout = dur(2 * time.Second) })
	room := "slowjoin@conference.meet.test"
	pid := s.prosody.PID()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			_ = syscall.Kill(pid, syscall.SIGCONT)
		}
	}
	defer resume()
	answer := make(chan string, 1)
	go func() {
		resp, err := http.Post("http://"+s.focus.HTTP.Addr()+"/conference-request/v1", "application/json",
			strings.NewReader(`{"room":"`+room+`"}`))
		if err != nil {
			answer <- err.Error()
			return
		}
		resp.Body.Close()
		answer <- resp.Status
	}()
	var conf *Conference
	s.wait("the conference to exist", func() bool { conf = s.focus.Focus.lookup(room); return conf != nil })
	// Frozen for longer than the initial timeout (and less than the
	// keepalive's dead time, 5 s with the tests' settings).
	frozen := s.focus.Config.Conference.InitialTimeout.Duration + 500*time.Millisecond
	s.wait("the join to be held up past the initial timeout", func() bool { return time.Since(conf.created) > frozen })
	resume()
	if got := <-answer; got != "200 OK" {
		t.Fatalf("conference request answered %s", got)
	}
	p1 := s.join(room)
	p2 := s.join(room)
	s.wait("sessions", func() bool { return p1.Accepted() && p2.Accepted() })
	if c := s.focus.Focus.lookup(room); c != conf {
		t.Error("the conference that waited for its room ended; the participants are in a new one")
	}
}

// The per-sender limit keys on the real sender's bare JID; accounts of the
// trusted domains (all Jibris or Jigasis share one) have none.
func TestConferenceRequestSenderKeys(t *testing.T) {
	f := &Focus{cfg: DefaultConfig(), limiter: map[string]*rateWindow{}}
	f.cfg.XMPP.TrustedDomains = []string{"recorder.meet.test"}
	f.cfg.Conference.MaxConferenceRequests = 2
	f.cfg.Conference.MaxRequestsPerSecond = 0
	count := func(from, key string) (admitted int) {
		for i := 0; i < 5; i++ {
			if busy, err := f.admitRequest(ConferenceRequest{From: from, RateKey: key}); err == nil && !busy {
				admitted++
			}
		}
		return admitted
	}
	if n := count("alice@meet.test/r1", ""); n != 2 {
		t.Errorf("alice's first connection: %d admitted, want 2", n)
	}
	if n := count("Alice@meet.test/r2", ""); n != 0 {
		t.Errorf("alice's second connection got a budget of its own: %d admitted", n)
	}
	if n := count("recorder@recorder.meet.test/jibri-1", ""); n != 5 {
		t.Errorf("a trusted account was limited: %d admitted of 5", n)
	}
	if n := count("", "http:203.0.113.9"); n != 2 {
		t.Errorf("an HTTP sender: %d admitted, want 2", n)
	}
}

// A server that goes silent (frozen: the TCP connection stays up) is still
// noticed by the keepalive, within its dead time, and the focus comes back
// once the server does.
func TestKeepaliveNoticesSilentServer(t *testing.T) {
	p := testkit.StartProsody(t)
	rm := startMain(t, testConfig(p))
	waitFor(t, 10*time.Second, "login", func() bool { up, _ := rm.XMPP.Connected(); return up })
	pid := p.PID()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	stopped := true
	defer func() {
		if stopped {
			_ = syscall.Kill(pid, syscall.SIGCONT)
		}
	}()
	waitFor(t, 20*time.Second, "the keepalive to give up on the frozen server", func() bool { _, d := rm.XMPP.Stats(); return d >= 1 })
	t.Logf("frozen server noticed after %s (ping interval %s, reply timeout %s)", time.Since(start).Round(time.Millisecond),
		rm.Config.XMPP.PingInterval.Duration, rm.Config.XMPP.ReplyTimeout.Duration)
	_ = syscall.Kill(pid, syscall.SIGCONT)
	stopped = false
	waitFor(t, 20*time.Second, "back in session", func() bool { up, _ := rm.XMPP.Connected(); return up })
}
