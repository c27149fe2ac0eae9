package main

// deployment_test.go: the ways a user deploys minifocus next to Jitsi Meet —
// clients reaching the focus by its full JID, through Jitsi's client_proxy
// component (focus.<domain>, lib-jitsi-meet's default) or over HTTP — each
// without authentication, with Jitsi's secure domain (users log in on the
// main domain, guests on guest.<domain>) and with JWT; and the focus
// configured only by docker-jitsi-meet's environment.

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"minifocus/testkit"
)

// deployment is one running Prosody + minifocus + bridge, laid out as a
// Jitsi install of the given path and authentication.
type deployment struct {
	*stack
	path  string // "full-jid", "client-proxy" or "http"
	auth  string // "none", "xmpp" or "jwt"
	proxy *testkit.ClientProxy
}

const aliceToken = "alice"

// startDeployment starts a deployment; cfg, when not nil, replaces the
// configuration built from the Prosody (it is then given the Prosody's
// address by the caller).
func startDeployment(t *testing.T, path, auth string, cfg func(p *testkit.Prosody) Config) *deployment {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	opts := []testkit.Option{testkit.WithClientProxyRoster(), testkit.WithMeetingIDs()}
	switch auth {
	case "xmpp":
		opts = append(opts, testkit.WithSecureDomain(), testkit.WithUser("alice", testkit.Domain, "alicepass"))
	case "jwt":
		opts = append(opts, testkit.WithTokenAuth())
	}
	p := testkit.StartProsody(t, opts...)
	var c Config
	if cfg != nil {
		c = cfg(p)
	} else {
		c = testConfig(p)
		if auth != "none" {
			c.Auth = AuthConfig{Type: auth, LoginDomain: testkit.Domain, Lifetime: dur(time.Hour)}
		}
	}
	c.Conference.InitialTimeout = dur(5 * time.Second)
	d := &deployment{stack: &stack{t: t, prosody: p, ctx: ctx}, path: path, auth: auth}
	if path == "client-proxy" {
		cp, err := testkit.StartClientProxy(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cp.Close)
		d.proxy = cp
	}
	d.focus = startMain(t, c)
	d.addBridge("jvb1", "")
	waitFor(t, 10*time.Second, "focus logged in and the bridge operational", func() bool {
		up, _ := d.focus.XMPP.Connected()
		return up && d.focus.Bridges.OperationalCount() == 1
	})
	if d.proxy != nil {
		wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
		defer wcancel()
		if err := d.proxy.WaitSessions(wctx, 1); err != nil {
			t.Fatalf("the client proxy never learned of the focus: %v", err)
		}
	}
	return d
}

// participant configures a simulated client of this deployment's path: a
// logged-in user (alice) or a guest.
func (d *deployment) participant(user bool) func(*testkit.ParticipantConfig) {
	return func(c *testkit.ParticipantConfig) {
		switch d.path {
		case "client-proxy":
			c.FocusJID = testkit.ComponentDomain
		case "http":
			c.UseHTTP = "http://" + d.focus.HTTP.Addr()
		}
		switch {
		case d.auth == "none":
		case !user:
			c.Domain = testkit.GuestDomain
		case d.auth == "xmpp":
			c.Domain, c.User, c.Password = testkit.Domain, "alice", "alicepass"
		case d.auth == "jwt":
			c.Domain, c.User = testkit.Domain, aliceToken
			c.Password = testkit.SignToken(testkit.TokenSecret, map[string]any{
				"aud": "jitsi", "sub": testkit.Domain, "room": "*", "exp": time.Now().Add(time.Hour).Unix(),
				"context": map[string]any{"user": map[string]any{"name": "Alice"}},
			})
		}
		if user {
			c.MachineUID = "alice-machine"
		}
	}
}

// tryJoin joins or returns the conference error.
func (d *deployment) tryJoin(room string, mod ...func(*testkit.ParticipantConfig)) (*testkit.Participant, error) {
	cfg := testkit.ParticipantConfig{Addr: d.prosody.C2SAddr(), Room: room}
	for _, f := range mod {
		f(&cfg)
	}
	ctx, cancel := context.WithTimeout(d.ctx, 20*time.Second)
	defer cancel()
	p, err := testkit.JoinConference(ctx, cfg)
	if err == nil {
		d.t.Cleanup(func() { p.Close() })
	}
	return p, err
}

// refused asserts that err is the focus refusing to start a room: the
// conference IQ's not-authorized, or HTTP 403.
func refused(t *testing.T, who string, err error) {
	t.Helper()
	var ce *testkit.ConferenceError
	if !errors.As(err, &ce) || (ce.Condition != "not-authorized" && ce.HTTPStatus != 403) {
		t.Fatalf("%s starting a room: %v, want not-authorized (HTTP 403)", who, err)
	}
}

// TestDeploymentPaths: who may start a room and who may only join one, for
// each way clients reach the focus and each kind of authentication.
func TestDeploymentPaths(t *testing.T) {
	for _, path := range []string{"full-jid", "client-proxy", "http"} {
		for _, auth := range []string{"none", "xmpp", "jwt"} {
			t.Run(path+"/"+auth, func(t *testing.T) {
				d := startDeployment(t, path, auth, nil)
				room := fmt.Sprintf("deploy-%s-%s@%s", strings.ReplaceAll(path, "-", ""), auth, testkit.MUCDomain)
				if auth == "none" {
					// Anyone starts a conference; nobody is authenticated.
					g1, err := d.tryJoin(room, d.participant(false))
					if err != nil {
						t.Fatalf("a guest starting a room without authentication: %v", err)
					}
					g2, err := d.tryJoin(room, d.participant(false))
					if err != nil {
						t.Fatal(err)
					}
					d.wait("both in the conference", func() bool { return g1.Accepted() && g2.Accepted() })
					d.assertThrough(t, g1, g2)
					return
				}
				// A guest may not start the conference, and nothing is created.
				_, err := d.tryJoin(room, d.participant(false))
				refused(t, "a guest", err)
				if d.focus.Focus.lookup(room) != nil {
					t.Fatal("a refused request created the conference")
				}
				var user *testkit.Participant
				if path == "http" {
					// HTTP carries no identity: a logged-in user is refused
					// too unless it presents the session the focus gave it
					// over XMPP (as with Jicofo).
					_, err := d.tryJoin(room, d.participant(true))
					refused(t, "a logged-in user over HTTP without a session", err)
					first, err := d.tryJoin("deploy-login@"+testkit.MUCDomain, d.participant(true), func(c *testkit.ParticipantConfig) { c.UseHTTP = "" })
					if err != nil {
						t.Fatalf("the user's XMPP request: %v", err)
					}
					sid := first.ConferenceResponse().Child(nsFocus, "conference").Attr("session-id")
					if sid == "" {
						t.Fatal("the user got no authentication session")
					}
					if user, err = d.tryJoin(room, d.participant(true), func(c *testkit.ParticipantConfig) { c.SessionID = sid }); err != nil {
						t.Fatalf("the user presenting its session over HTTP: %v", err)
					}
				} else {
					if user, err = d.tryJoin(room, d.participant(true)); err != nil {
						t.Fatalf("a logged-in user starting a room: %v", err)
					}
					resp := user.ConferenceResponse().Child(nsFocus, "conference")
					if !strings.HasPrefix(resp.Attr("identity"), "alice@"+testkit.Domain) || resp.Attr("session-id") == "" {
						t.Errorf("the user's answer names no authenticated identity: %s", resp)
					}
				}
				d.wait("the user made moderator", func() bool { return user.Affiliation() == "owner" })
				// Now the guest may join the running conference, as a
				// participant, not a moderator.
				guest, err := d.tryJoin(room, d.participant(false))
				if err != nil {
					t.Fatalf("a guest joining a running conference: %v", err)
				}
				d.wait("both in the conference", func() bool { return guest.Accepted() && user.Accepted() && knowsExactly(guest, user) })
				if guest.Affiliation() == "owner" || strings.Contains(d.focus.logs.String(), "granting owner endpoint="+guest.Nick()) {
					t.Error("the guest was made moderator")
				}
				d.assertThrough(t, user, guest)
			})
		}
	}
}

// assertThrough checks that the requests took the deployment's path, and
// that the XMPP ones (also through the proxy) were counted against their
// real senders, the participants ps.
func (d *deployment) assertThrough(t *testing.T, ps ...*testkit.Participant) {
	t.Helper()
	if d.path != "http" {
		f := d.focus.Focus
		f.mu.Lock()
		for _, p := range ps {
			if f.limiter[bareJID(p.Client().JID())] == nil {
				t.Errorf("no request was counted against %s", p.Client().JID())
			}
		}
		f.mu.Unlock()
	}
	if d.proxy == nil {
		return
	}
	reqs := 0
	for _, st := range d.proxy.Forwarded() {
		if st.Child(nsFocus, "conference") != nil {
			reqs++
		}
	}
	if reqs == 0 {
		t.Error("no conference request went through the client proxy")
	}
	f := d.focus.Focus
	f.mu.Lock()
	defer f.mu.Unlock()
	for sender := range f.limiter {
		if strings.HasPrefix(sender, testkit.ComponentDomain) {
			t.Errorf("a request was counted against the proxy %q instead of its sender", sender)
		}
	}
}

// The headline case: minifocus given nothing but docker-jitsi-meet's jicofo
// environment with authentication on (ENABLE_AUTH=1, AUTH_TYPE=internal, the
// XMPP_* names, no client-proxy anywhere), clients going through
// focus.<domain> as lib-jitsi-meet does by default: a logged-in user starts
// a conference, a guest cannot, but joins the running one.
func TestDockerEnvironmentSecureDomainThroughClientProxy(t *testing.T) {
	d := startDeployment(t, "client-proxy", "xmpp", func(p *testkit.Prosody) Config {
		host, port := splitAddr(p.C2SAddr())
		env := map[string]string{
			"ENABLE_AUTH":              "1",
			"AUTH_TYPE":                "internal",
			"JICOFO_AUTH_PASSWORD":     testkit.FocusPassword,
			"XMPP_SERVER":              host,
			"XMPP_PORT":                fmt.Sprint(port),
			"XMPP_DOMAIN":              testkit.Domain,
			"XMPP_AUTH_DOMAIN":         testkit.AuthDomain,
			"XMPP_MUC_DOMAIN":          testkit.MUCDomain,
			"XMPP_INTERNAL_MUC_DOMAIN": testkit.InternalMUCDomain,
			"JVB_BREWERY_MUC":          "jvbbrewery",
			"MINIFOCUS_HTTP_LISTEN":    "127.0.0.1:0",
		}
		cfg, err := LoadConfig("", envOf(env))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.XMPP.ClientProxyDomain() != testkit.ComponentDomain || cfg.Auth.Type != "xmpp" || cfg.Auth.LoginDomain != testkit.Domain {
			t.Fatalf("docker's environment gave client-proxy %q, auth %+v", cfg.XMPP.ClientProxy, cfg.Auth)
		}
		return cfg
	})
	room := "dockerauth@" + testkit.MUCDomain
	_, err := d.tryJoin(room, d.participant(false))
	refused(t, "a guest through focus."+testkit.Domain, err)
	alice, err := d.tryJoin(room, d.participant(true))
	if err != nil {
		t.Fatalf("a logged-in user through focus.%s: %v", testkit.Domain, err)
	}
	d.wait("alice made moderator", func() bool { return alice.Affiliation() == "owner" })
	guest, err := d.tryJoin(room, d.participant(false))
	if err != nil {
		t.Fatalf("a guest joining the running conference through focus.%s: %v", testkit.Domain, err)
	}
	d.wait("both in the conference", func() bool {
		return guest.Accepted() && alice.Accepted() && knowsExactly(guest, alice) && knowsExactly(alice, guest)
	})
	if guest.Affiliation() == "owner" {
		t.Error("the guest was made moderator")
	}
	d.assertThrough(t, alice, guest)
	// The logs name the real senders, not the proxy.
	logs := d.focus.logs.String()
	guestRefused := regexp.MustCompile(`refused: only authenticated users start conferences.*from=\S+@` + regexp.QuoteMeta(testkit.GuestDomain) + `/`)
	if !strings.Contains(logs, "from=alice@"+testkit.Domain+"/") || !guestRefused.MatchString(logs) {
		t.Errorf("the focus's logs do not name the real senders:\n%s", logs)
	}
}

// Prosody's meeting id (Jitsi's mod_muc_meeting_id) is the conference's: the
// focus reads it from the room configuration, as Jicofo does, and uses it
// with the bridge, so that logs, Jibri and clients agree.
func TestMeetingIDFromProsody(t *testing.T) {
	d := startDeployment(t, "full-jid", "none", nil)
	room := "meetingid@" + testkit.MUCDomain
	p1, err := d.tryJoin(room)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := d.tryJoin(room)
	if err != nil {
		t.Fatal(err)
	}
	d.wait("sessions", func() bool { return p1.Accepted() && p2.Accepted() })
	ctx, cancel := context.WithTimeout(d.ctx, 5*time.Second)
	defer cancel()
	info, err := p1.Client().SendIQ(ctx, testkit.NewElem("", "iq", "type", "get", "to", room).Add(testkit.NewElem(nsDiscoInfo, "query")))
	if err != nil {
		t.Fatal(err)
	}
	want := ""
	for _, f := range info.Child(nsDiscoInfo, "query").Child(nsDataForms, "x").All(nsDataForms, "field") {
		if f.Attr("var") == "muc#roominfo_meetingId" {
			want = f.Child(nsDataForms, "value").Text
		}
	}
	if want == "" {
		t.Fatalf("the room's disco#info has no meeting id: %s", info)
	}
	snap := d.focus.Focus.lookup(room).Snapshot(ctx)
	if snap == nil || snap.MeetingID != want {
		t.Errorf("the focus's meeting id %v, Prosody's %q", snap, want)
	}
	if _, ok := d.bridges[0].Conferences()[want]; !ok {
		t.Errorf("the bridge has no conference %q: %v", want, d.bridges[0].Conferences())
	}
}

// Without the installer's roster entry, the client proxy's own subscription
// request reaches the focus, which approves it (from the proxy domain only),
// so the proxy still learns where the focus is.
func TestClientProxySubscriptionWithoutRosterEntry(t *testing.T) {
	s := startStackWith(t, 1, nil)
	ctx, cancel := context.WithTimeout(s.ctx, 15*time.Second)
	defer cancel()
	cp, err := testkit.StartClientProxy(ctx, s.prosody)
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	if err := cp.WaitSessions(ctx, 1); err != nil {
		t.Fatalf("the proxy never learned of the focus: %v", err)
	}
	room := "unrostered@" + testkit.MUCDomain
	via := func(c *testkit.ParticipantConfig) { c.FocusJID = testkit.ComponentDomain }
	p1 := s.join(room, via)
	p2 := s.join(room, via)
	s.wait("sessions through the proxy", func() bool { return p1.Accepted() && p2.Accepted() })
}

// Only the client proxy's subscription request is approved.
func TestAcceptProxySubscription(t *testing.T) {
	f := testFocus()
	cases := []struct {
		from, typ string
		want      bool
	}{
		{"focus.meet.test", "subscribe", true},
		{"FOCUS.meet.test", "subscribe", true},
		{"focus.meet.test", "unsubscribe", false},
		{"focus.meet.test", "", false},
		{"stranger@meet.test/x", "subscribe", false},
		{"x@focus.meet.test", "subscribe", false},
	}
	for _, tc := range cases {
		p := NewElement(nsClient, "presence", "from", tc.from).Set("type", tc.typ)
		if got := f.acceptProxySubscription(p); got != tc.want {
			t.Errorf("subscription %s from %s: accepted %v, want %v", tc.typ, tc.from, got, tc.want)
		}
	}
	f.cfg.XMPP.ClientProxy = "none"
	if f.acceptProxySubscription(NewElement(nsClient, "presence", "from", "focus.meet.test", "type", "subscribe")) {
		t.Error("accepted with client-proxy decoding off")
	}
}
