package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"minifocus/testkit"
)

// doctorTOML is the config file a doctor test writes.
type doctorTOML struct {
	Server     string
	Port       int
	Username   string
	Password   string
	TLS        string
	AuthDomain string
	MUCDomain  string
	// ClientProxy is written as xmpp.client-proxy when set.
	ClientProxy string
}

func (c doctorTOML) write(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "[xmpp]\nserver = %q\nport = %d\ndomain = \"meet.test\"\npassword = %q\ntls = %q\n", c.Server, c.Port, c.Password, c.TLS)
	if c.Username != "" {
		fmt.Fprintf(&b, "username = %q\n", c.Username)
	}
	if c.AuthDomain != "" {
		fmt.Fprintf(&b, "auth-domain = %q\n", c.AuthDomain)
	}
	if c.MUCDomain != "" {
		fmt.Fprintf(&b, "muc-domain = %q\n", c.MUCDomain)
	}
	if c.ClientProxy != "" {
		fmt.Fprintf(&b, "client-proxy = %q\n", c.ClientProxy)
	}
	path := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// closedPortURL is a conference-request URL nothing listens on.
func closedPortURL(t *testing.T) string {
	t.Helper()
	return "http://127.0.0.1:" + fmt.Sprint(unusedPort(t)) + "/conference-request/v1"
}

func unusedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

// runDoctorTest runs the doctor on a config file and returns its exit code
// and output.
func runDoctorTest(t *testing.T, path, requestURL string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	start := time.Now()
	code := runDoctorWith([]string{"-config", path}, &out, func(string) string { return "" }, func(d *doctor) {
		d.requestURL = requestURL
		d.breweryWait = time.Second
	})
	t.Logf("doctor exit %d after %s:\n%s", code, time.Since(start).Round(time.Millisecond), out.String())
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("the doctor took %s, want under 20s", took)
	}
	return code, out.String()
}

// checkLine returns the line of check name (prefix "ok", "warn", "FAIL" or
// "skip") and the fix lines right after it.
func checkLine(out, tag, name string) (string, []string, bool) {
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		if !strings.HasPrefix(l, fmt.Sprintf("%-4s %s: ", tag, name)) {
			continue
		}
		var fixes []string
		for _, f := range lines[i+1:] {
			if !strings.HasPrefix(f, doctorIndent) {
				break
			}
			if s, ok := strings.CutPrefix(f, doctorIndent+"fix: "); ok {
				fixes = append(fixes, s)
			}
		}
		return l, fixes, true
	}
	return "", nil, false
}

// assertAllOK checks that every check line is "ok" and nothing asks for a fix.
func assertAllOK(t *testing.T, out string, want ...string) {
	t.Helper()
	n := 0
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if strings.HasPrefix(l, doctorIndent) {
			if strings.Contains(l, "fix:") {
				t.Errorf("unexpected fix line: %q", l)
			}
			continue
		}
		n++
		if !strings.HasPrefix(l, "ok   ") {
			t.Errorf("line is not ok: %q", l)
		}
	}
	for _, name := range want {
		if _, _, ok := checkLine(out, "ok", name); !ok {
			t.Errorf("no ok line for check %q", name)
		}
	}
	if n < len(want) {
		t.Errorf("%d check lines, want at least %d", n, len(want))
	}
}

// assertFail checks that check name failed with a fix mentioning each of
// fixWants, and that the exit code is 1.
func assertFail(t *testing.T, code int, out, name, msgWant string, fixWants ...string) {
	t.Helper()
	if code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	line, fixes, ok := checkLine(out, "FAIL", name)
	if !ok {
		t.Fatalf("no FAIL line for check %q", name)
	}
	if !strings.Contains(line, msgWant) {
		t.Errorf("FAIL line %q does not mention %q", line, msgWant)
	}
	if len(fixes) == 0 {
		t.Errorf("FAIL %s has no fix line", name)
	}
	all := strings.Join(fixes, "\n")
	for _, w := range fixWants {
		if !strings.Contains(all, w) {
			t.Errorf("the fix for %s does not mention %q:\n%s", name, w, all)
		}
	}
}

func startDoctorBridge(t *testing.T, p *testkit.Prosody, nick string) *testkit.FakeBridge {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	fb, err := testkit.StartFakeBridge(ctx, testkit.FakeBridgeConfig{
		Addr: p.C2SAddr(), Nick: nick, Stress: 0.1, Region: "eu", Version: "2.3.0-fake",
		PresenceInterval: time.Second, ReconnectDelay: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("fake bridge %s: %v", nick, err)
	}
	t.Cleanup(fb.Close)
	return fb
}

func startDoctorClientProxy(t *testing.T, p *testkit.Prosody, _ *testkit.FakeBridge) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	cp, err := testkit.StartClientProxy(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cp.Close)
}

func prosodyTOML(p *testkit.Prosody) doctorTOML {
	host, port := splitAddr(p.C2SAddr())
	return doctorTOML{Server: host, Port: port, Password: testkit.FocusPassword, TLS: "off"}
}

// TestDoctorSetups runs the doctor against good and broken deployments: a
// real Prosody laid out like Jitsi Meet and faithful fake bridges.
func TestDoctorSetups(t *testing.T) {
	cases := []struct {
		name    string
		prosody []testkit.Option
		noXMPP  bool                                                           // no Prosody at all
		bridge  bool                                                           // start one fake bridge "jvb1"
		edit    func(*doctorTOML)                                              // config changes
		prepare func(t *testing.T, p *testkit.Prosody, fb *testkit.FakeBridge) // before the doctor runs
		check   func(t *testing.T, code int, out string, p *testkit.Prosody, fb *testkit.FakeBridge)
	}{
		{
			name:   "good",
			bridge: true,
			check: func(t *testing.T, code int, out string, p *testkit.Prosody, fb *testkit.FakeBridge) {
				if code != 0 {
					t.Errorf("exit code %d, want 0", code)
				}
				assertAllOK(t, out, "config", "prosody", "tls", "login", "focus-jid", "muc", "brewery",
					"bridge jvb1 health", "bridge jvb1 conference", "clients")
				for _, want := range []string{
					"bound as focus@auth.meet.test/focus",
					"bridge jvb1: stress 0.10, region eu, version 2.3.0-fake",
					"candidates: 127.0.0.1:10000/udp host; SCTP port 5000",
					`hosts.focus = "focus@auth.meet.test/focus"`,
					"focus.meet.test is declared in Prosody but nothing serves it",
				} {
					if !strings.Contains(out, want) {
						t.Errorf("output lacks %q", want)
					}
				}
				if strings.Contains(out, testkit.FocusPassword) {
					t.Error("the output contains the password")
				}
				if confs := fb.Conferences(); len(confs) != 0 {
					t.Errorf("the test conference was not expired: %v", confs)
				}
				if fb.HealthChecks() == 0 {
					t.Error("the bridge saw no health check")
				}
				assertNoDoctorRooms(t, p)
			},
		},
		{
			// Jitsi's mod_client_proxy serves focus.<domain> (the double
			// behaves as the module: it answers the focus account's own
			// queries to it with bad-request), and the default client-proxy
			// decodes what it forwards.
			name:    "jitsi client_proxy",
			bridge:  true,
			prosody: []testkit.Option{testkit.WithClientProxyRoster()},
			prepare: startDoctorClientProxy,
			check: func(t *testing.T, code int, out string, _ *testkit.Prosody, _ *testkit.FakeBridge) {
				if code != 0 {
					t.Errorf("exit code %d, want 0", code)
				}
				line, _, ok := checkLine(out, "ok", "clients")
				if !ok || !strings.Contains(line, `hosts.focus = "focus.meet.test"`) || !strings.Contains(line, "(the default") {
					t.Errorf("clients line %q, want hosts.focus = focus.meet.test with the default client-proxy", line)
				}
				if !strings.Contains(out, `xmpp.client-proxy = "focus.meet.test" (the default`) {
					t.Error("the config check does not say which client-proxy is in effect")
				}
			},
		},
		{
			name:    "client_proxy decoding turned off",
			bridge:  true,
			prosody: []testkit.Option{testkit.WithClientProxyRoster()},
			prepare: startDoctorClientProxy,
			edit:    func(c *doctorTOML) { c.ClientProxy = "none" },
			check: func(t *testing.T, code int, out string, _ *testkit.Prosody, _ *testkit.FakeBridge) {
				line, fixes, ok := checkLine(out, "warn", "clients")
				if !ok || !strings.Contains(line, "would take proxied requests as coming from the proxy itself") || !strings.Contains(strings.Join(fixes, "\n"), "remove xmpp.client-proxy") {
					t.Errorf("clients: %q %v, want a warning that names the fix", line, fixes)
				}
			},
		},
		{
			name:   "wrong password",
			bridge: true,
			edit:   func(c *doctorTOML) { c.Password = "not-the-password" },
			check: func(t *testing.T, code int, out string, _ *testkit.Prosody, _ *testkit.FakeBridge) {
				assertFail(t, code, out, "login", "refused the login of focus@auth.meet.test: not-authorized",
					"prosodyctl register focus auth.meet.test PASSWORD", "JICOFO_AUTH_PASSWORD")
				if strings.Contains(out, "not-the-password") {
					t.Error("the output contains the password")
				}
				if _, _, ok := checkLine(out, "skip", "brewery"); !ok {
					t.Error("the brewery check should be skipped without a login")
				}
			},
		},
		{
			name:   "prosody not running",
			noXMPP: true,
			check: func(t *testing.T, code int, out string, _ *testkit.Prosody, _ *testkit.FakeBridge) {
				assertFail(t, code, out, "prosody", "connection refused", "XMPP_SERVER", "xmpp.server", "firewall")
				if _, _, ok := checkLine(out, "skip", "login"); !ok {
					t.Error("the login check should be skipped")
				}
			},
		},
		{
			name:   "wrong auth domain",
			bridge: true,
			edit:   func(c *doctorTOML) { c.AuthDomain = "auth.example.org" },
			check: func(t *testing.T, code int, out string, _ *testkit.Prosody, _ *testkit.FakeBridge) {
				assertFail(t, code, out, "tls", "does not serve auth.example.org",
					`VirtualHost "auth.example.org"`, "XMPP_AUTH_DOMAIN")
			},
		},
		{
			name:   "wrong MUC domain",
			bridge: true,
			edit:   func(c *doctorTOML) { c.MUCDomain = "muc.meet.test" },
			check: func(t *testing.T, code int, out string, _ *testkit.Prosody, _ *testkit.FakeBridge) {
				assertFail(t, code, out, "muc", "the conference MUC does not exist",
					"XMPP_MUC_DOMAIN", "it has: conference.meet.test", `Component "muc.meet.test" "muc"`)
				// Only the MUC check fails: the bridge part still runs.
				for _, name := range []string{"brewery", "bridge jvb1 health", "bridge jvb1 conference", "clients"} {
					if _, _, ok := checkLine(out, "ok", name); !ok {
						t.Errorf("check %q should pass", name)
					}
				}
			},
		},
		{
			name:    "focus not an admin",
			prosody: []testkit.Option{testkit.WithUser("notadmin", testkit.AuthDomain, "notadminpass")},
			bridge:  true,
			edit:    func(c *doctorTOML) { c.Username, c.Password = "notadmin", "notadminpass" },
			check: func(t *testing.T, code int, out string, _ *testkit.Prosody, _ *testkit.FakeBridge) {
				assertFail(t, code, out, "muc", "may not create rooms there",
					`admins = { "notadmin@auth.meet.test" }`, "component_admins_as_room_owners")
				if _, _, ok := checkLine(out, "ok", "bridge jvb1 conference"); !ok {
					t.Error("the bridge checks should still pass")
				}
			},
		},
		{
			name: "no bridge",
			check: func(t *testing.T, code int, out string, _ *testkit.Prosody, _ *testkit.FakeBridge) {
				assertFail(t, code, out, "brewery", "no bridge in the brewery jvbbrewery@internal.auth.meet.test",
					"MUC_JIDS", "JVB_BREWERY_MUC", "prosodyctl register jvb auth.meet.test")
				if !strings.Contains(out, "the room did not exist") {
					t.Error("the output should say that the brewery room did not exist")
				}
				if _, _, ok := checkLine(out, "skip", "bridge health"); !ok {
					t.Error("the health check should be skipped")
				}
				if _, _, ok := checkLine(out, "ok", "clients"); !ok {
					t.Error("the clients check should still run")
				}
			},
		},
		{
			name:    "unhealthy bridge",
			bridge:  true,
			prepare: func(t *testing.T, _ *testkit.Prosody, fb *testkit.FakeBridge) { fb.SetHealth(testkit.HealthError) },
			check: func(t *testing.T, code int, out string, _ *testkit.Prosody, _ *testkit.FakeBridge) {
				assertFail(t, code, out, "bridge jvb1 health", "internal-server-error: No valid IP addresses available for harvesting.",
					"jvb.log")
				if _, _, ok := checkLine(out, "skip", "test conference"); !ok {
					t.Error("the test conference should be skipped")
				}
			},
		},
		{
			name:   "bridge refuses the test conference",
			bridge: true,
			prepare: func(t *testing.T, _ *testkit.Prosody, fb *testkit.FakeBridge) {
				fb.FailNext("service-unavailable", "graceful_shutdown")
			},
			check: func(t *testing.T, code int, out string, _ *testkit.Prosody, _ *testkit.FakeBridge) {
				assertFail(t, code, out, "bridge jvb1 conference", "allocating a test conference failed: service-unavailable: In graceful shutdown",
					"graceful shutdown")
				if _, _, ok := checkLine(out, "ok", "bridge jvb1 health"); !ok {
					t.Error("the health check should pass")
				}
			},
		},
		{
			name:   "tls required without a certificate",
			bridge: true,
			edit:   func(c *doctorTOML) { c.TLS = "required" },
			check: func(t *testing.T, code int, out string, _ *testkit.Prosody, _ *testkit.FakeBridge) {
				assertFail(t, code, out, "tls", "Prosody offers STARTTLS for auth.meet.test but it fails",
					"prosodyctl cert generate auth.meet.test", `xmpp.tls = "optional"`)
			},
		},
		{
			name:   "tls optional without a certificate",
			bridge: true,
			edit:   func(c *doctorTOML) { c.TLS = "optional" },
			check: func(t *testing.T, code int, out string, _ *testkit.Prosody, _ *testkit.FakeBridge) {
				if code != 0 {
					t.Errorf("exit code %d, want 0 (a warning only)", code)
				}
				if _, fixes, ok := checkLine(out, "warn", "tls"); !ok || len(fixes) == 0 {
					t.Error("want a tls warning with a fix")
				}
				if _, _, ok := checkLine(out, "ok", "bridge jvb1 conference"); !ok {
					t.Error("the later checks should pass")
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var p *testkit.Prosody
			var fb *testkit.FakeBridge
			cfg := doctorTOML{Server: "127.0.0.1", Port: unusedPort(t), Password: testkit.FocusPassword, TLS: "off"}
			if !tc.noXMPP {
				p = testkit.StartProsody(t, tc.prosody...)
				cfg = prosodyTOML(p)
				if tc.bridge {
					fb = startDoctorBridge(t, p, "jvb1")
				}
			}
			if tc.edit != nil {
				tc.edit(&cfg)
			}
			if tc.prepare != nil {
				tc.prepare(t, p, fb)
			}
			requestURL := closedPortURL(t)
			if tc.name == "good" {
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.Method == http.MethodOptions && r.URL.Path == "/conference-request/v1" {
						w.Header().Set("Access-Control-Allow-Methods", "POST, OPTIONS")
						return
					}
					http.NotFound(w, r)
				}))
				t.Cleanup(srv.Close)
				requestURL = srv.URL + "/conference-request/v1"
			}
			code, out := runDoctorTest(t, cfg.write(t), requestURL)
			tc.check(t, code, out, p, fb)
			if tc.name == "good" && !strings.Contains(out, fmt.Sprintf("or conferenceRequestUrl = %q", requestURL)) {
				t.Error("the published HTTP endpoint is not suggested as conferenceRequestUrl")
			}
		})
	}
}

// assertNoDoctorRooms checks that the doctor's test room and its brewery
// presence are gone.
func assertNoDoctorRooms(t *testing.T, p *testkit.Prosody) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := testkit.Dial(ctx, testkit.DialConfig{Addr: p.C2SAddr(), Domain: testkit.AuthDomain, User: testkit.JVBUser, Password: testkit.JVBPassword})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := c.SendIQ(ctx, testkit.NewElem("", "iq", "type", "get", "to", testkit.MUCDomain).Add(testkit.NewElem(doctorNSDiscoItems, "query")))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(resp.String(), "__minifocus-doctor-") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the doctor's test room is still there: %s", resp)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDoctorWithRunningFocus checks that the doctor does not take over the
// session of a focus that is already running, and that the HTTP conference
// request endpoint of the real focus passes the doctor's preflight probe.
func TestDoctorWithRunningFocus(t *testing.T) {
	p := testkit.StartProsody(t)
	fb := startDoctorBridge(t, p, "jvb1")
	rm := startMain(t, testConfig(p))
	waitFor(t, 10*time.Second, "the focus to log in and see the bridge", func() bool {
		up, _ := rm.XMPP.Connected()
		return up && rm.Bridges.OperationalCount() == 1
	})

	code, out := runDoctorTest(t, prosodyTOML(p).write(t), "http://"+rm.HTTP.Addr()+"/conference-request/v1")
	if code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	assertAllOK(t, out, "focus-jid", "muc", "brewery", "bridge jvb1 health", "bridge jvb1 conference", "clients")
	line, _, _ := checkLine(out, "ok", "focus-jid")
	if !strings.Contains(line, "a running focus (minifocus) holds it") {
		t.Errorf("focus-jid line %q does not report the running focus", line)
	}
	if !strings.Contains(out, "or conferenceRequestUrl") {
		t.Error("the focus's own /conference-request/v1 should count as published")
	}
	// The running focus kept its one session and its bridge.
	time.Sleep(300 * time.Millisecond)
	if connects, disconnects := rm.XMPP.Stats(); connects != 1 || disconnects != 0 {
		t.Errorf("the running focus has %d connects and %d disconnects, want 1 and 0 (was it kicked?)", connects, disconnects)
	}
	if got := rm.Bridges.OperationalCount(); got != 1 {
		t.Errorf("the running focus sees %d operational bridges, want 1", got)
	}
	if confs := fb.Conferences(); len(confs) != 0 {
		t.Errorf("the test conference was not expired: %v", confs)
	}
}

// TestDoctorInvalidConfig names every problem and runs nothing else.
func TestDoctorInvalidConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(path, []byte("[xmpp]\ndomain = \"meet.test\"\ntls = \"maybe\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	code := runDoctor([]string{"-config", path}, &out, func(string) string { return "" })
	assertFail(t, code, out.String(), "config", "2 problem(s)", "JICOFO_AUTH_PASSWORD", "xmpp.tls")
	if _, _, ok := checkLine(out.String(), "skip", "prosody"); !ok {
		t.Errorf("the other checks should be skipped:\n%s", out.String())
	}
	if code := runDoctor([]string{"-bogus"}, &out, func(string) string { return "" }); code != 2 {
		t.Errorf("a bad flag exits %d, want 2", code)
	}
}
