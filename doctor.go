package main

// doctor.go: `minifocus doctor [-config PATH]`, a step-by-step check of a
// deployment from the focus's point of view.
//
// It reads the configuration exactly as the daemon does and then walks the
// path the daemon takes: reach Prosody, open a stream (and STARTTLS), log in,
// bind focus@auth.<domain>/focus, create and own a room on the conference
// MUC, find the bridges in the brewery, health-check each one, allocate and
// expire a test conference on each healthy one, and finally say what the web
// config must contain for clients to reach the focus. Each check prints one
// line, "ok", "warn" or "FAIL", and a FAIL (or warn) is followed by indented
// "fix:" lines naming the concrete change: a prosodyctl command, a Prosody
// config line, a config key and its environment variable. Checks that cannot
// run because an earlier one failed are listed as "skip". The exit code is 0
// only when nothing failed.
//
// The doctor must never disturb a running focus: it logs in with a resource
// of its own first, and binds the configured resource (usually "focus") only
// when nothing holds it, because Prosody would otherwise kick the running
// session. The password is never printed.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Doctor time budget: every network step is short, and the whole run stays
// under doctorTotalTimeout even when everything times out.
const (
	doctorStepTimeout  = 3 * time.Second
	doctorLoginTimeout = 6 * time.Second
	doctorBreweryWait  = 3 * time.Second
	doctorTotalTimeout = 20 * time.Second
	doctorHTTPTimeout  = 2 * time.Second
)

// Stream-level namespaces the doctor's raw stream probe reads.
const (
	doctorNSStreams    = "http://etherx.jabber.org/streams"
	doctorNSStreamErrs = "urn:ietf:params:xml:ns:xmpp-streams"
	doctorNSStartTLS   = "urn:ietf:params:xml:ns:xmpp-tls"
	doctorNSSASL       = "urn:ietf:params:xml:ns:xmpp-sasl"
	doctorNSDiscoItems = "http://jabber.org/protocol/disco#items"
)

// doctorSASL are the mechanisms XMPPClient can log in with.
var doctorSASL = []string{"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-1", "PLAIN"}

// doctorDefaultConfigPath is the file the daemon reads when -config is not
// given (the docker image's /config volume).
const doctorDefaultConfigPath = "/config/config.toml"

// runDoctor is `minifocus doctor`; it returns the process exit code.
func runDoctor(args []string, stdout io.Writer, getenv func(string) string) int {
	return runDoctorWith(args, stdout, getenv, nil)
}

// runDoctorWith is runDoctor with a hook that may adjust the doctor before
// it runs (tests shorten waits and point the HTTP probe elsewhere).
func runDoctorWith(args []string, stdout io.Writer, getenv func(string) string, tweak func(*doctor)) int {
	fs := flag.NewFlagSet("minifocus doctor", flag.ContinueOnError)
	fs.SetOutput(stdout)
	configPath := fs.String("config", "", "path of the TOML config file (default: "+doctorDefaultConfigPath+" if it exists; the environment applies as for the daemon)")
	fs.Usage = func() {
		fmt.Fprintln(stdout, "usage: minifocus doctor [-config PATH]")
		fmt.Fprintln(stdout, "Checks the deployment step by step (Prosody, login, MUC, brewery, bridges, client config) and exits 0 only if every check passes.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stdout, "minifocus doctor: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	path := *configPath
	if path == "" {
		if _, err := os.Stat(doctorDefaultConfigPath); err == nil {
			path = doctorDefaultConfigPath
		}
	}
	d := &doctor{
		out:         stdout,
		getenv:      getenv,
		cfgPath:     path,
		step:        doctorStepTimeout,
		loginWait:   doctorLoginTimeout,
		breweryWait: doctorBreweryWait,
		total:       doctorTotalTimeout,
		httpTimeout: doctorHTTPTimeout,
		log:         slog.New(slog.NewTextHandler(io.Discard, nil)),
		rooms:       map[string]doctorRoomSub{},
		occupants:   map[string]bool{},
	}
	if tweak != nil {
		tweak(d)
	}
	return d.run()
}

// doctor holds the state of one run.
type doctor struct {
	out     io.Writer
	getenv  func(string) string
	cfgPath string
	cfg     Config

	step        time.Duration // one IQ or one network step
	loginWait   time.Duration // one login, TLS fallback included
	breweryWait time.Duration // how long an empty brewery is watched for bridges
	total       time.Duration // the whole run
	httpTimeout time.Duration
	// requestURL is where the HTTP conference request endpoint is probed;
	// "" means https://<xmpp.domain>/conference-request/v1.
	requestURL string
	log        *slog.Logger

	ctx    context.Context
	failed int

	sess        *doctorSession   // the session the later checks use
	others      []*doctorSession // further sessions, closed at the end
	breweryNick string           // the doctor's nick in the brewery

	mu        sync.Mutex // guards the fields below (written by XMPP reader goroutines)
	rooms     map[string]doctorRoomSub
	bridges   *Bridges
	occupants map[string]bool // brewery nick → has colibri stats
}

// doctorRoomSub receives the self-presences (and join errors) of one room.
type doctorRoomSub struct {
	nick string
	ch   chan *Element
}

// Output ----------------------------------------------------------------------

const doctorIndent = "     "

func (d *doctor) line(tag, name, msg string) {
	fmt.Fprintf(d.out, "%-4s %s: %s\n", tag, name, msg)
}

func (d *doctor) ok(name, format string, args ...any) {
	d.line("ok", name, fmt.Sprintf(format, args...))
}

func (d *doctor) warn(name, msg string, fixes ...string) {
	d.line("warn", name, msg)
	d.fixes(fixes)
}

func (d *doctor) fail(name, msg string, fixes ...string) {
	d.failed++
	d.line("FAIL", name, msg)
	d.fixes(fixes)
}

func (d *doctor) fixes(fixes []string) {
	for _, f := range fixes {
		fmt.Fprintf(d.out, "%sfix: %s\n", doctorIndent, f)
	}
}

// detail prints an indented information line under the last check.
func (d *doctor) detail(format string, args ...any) {
	fmt.Fprintf(d.out, "%s%s\n", doctorIndent, fmt.Sprintf(format, args...))
}

func (d *doctor) skip(reason string, names ...string) {
	for _, n := range names {
		d.line("skip", n, "not run: "+reason)
	}
}

// doctorChecks names the checks in the order they run.
var doctorChecks = []string{"config", "prosody", "tls", "login", "focus-jid", "muc", "brewery", "bridge health", "test conference", "clients", "handover"}

// run performs the checks in order and returns the exit code.
func (d *doctor) run() int {
	defer d.closeSessions()
	if !d.checkConfig() {
		return d.skipFrom("prosody", "the configuration is invalid")
	}
	ctx, cancel := context.WithTimeout(context.Background(), d.total)
	defer cancel()
	d.ctx = ctx

	switch {
	case !d.checkTCP():
		return d.skipFrom("tls", "Prosody is not reachable")
	case !d.checkStream():
		return d.skipFrom("login", "the focus cannot log in over this stream")
	case !d.checkLogin():
		return d.skipFrom("focus-jid", "the focus cannot log in")
	case d.outOfTime():
		return d.skipFrom("focus-jid", d.budgetSpent())
	}
	d.checkFocusJID()
	if d.outOfTime() {
		return d.skipFrom("muc", d.budgetSpent())
	}
	d.checkMUC()
	if d.outOfTime() {
		return d.skipFrom("brewery", d.budgetSpent())
	}
	if s := d.cfg.XMPP.Service; s.Enabled {
		// The bridges are on another Prosody; the doctor only logs in to
		// the client side.
		d.skip(fmt.Sprintf("the bridges are on their own Prosody (xmpp.service %s:%d), which the doctor does not check yet", s.Server, s.Port),
			"brewery", "bridge health", "test conference")
	} else {
		d.checkBridges()
	}
	if d.outOfTime() {
		return d.skipFrom("clients", d.budgetSpent())
	}
	d.checkClients()
	d.checkHandover()
	return d.exitCode()
}

// checkBridges runs the brewery, health and test conference checks.
func (d *doctor) checkBridges() {
	bridges := d.checkBrewery()
	defer d.leaveBrewery()
	switch {
	case d.outOfTime():
		d.skip(d.budgetSpent(), "bridge health", "test conference")
	case len(bridges) == 0:
		d.skip("no bridge in the brewery", "bridge health", "test conference")
	default:
		if healthy := d.checkHealth(bridges); len(healthy) == 0 {
			d.skip("no bridge passed its health check", "test conference")
		} else {
			d.checkConference(healthy)
		}
	}
}

// skipFrom lists the checks from first on as not run, and returns the exit
// code.
func (d *doctor) skipFrom(first, reason string) int {
	if i := slices.Index(doctorChecks, first); i >= 0 {
		d.skip(reason, doctorChecks[i:]...)
	}
	return d.exitCode()
}

// outOfTime reports whether the run's time budget is spent.
func (d *doctor) outOfTime() bool { return d.ctx.Err() != nil }

func (d *doctor) budgetSpent() string {
	return fmt.Sprintf("the doctor's %s time budget is used up", d.total)
}

func (d *doctor) exitCode() int {
	if d.failed > 0 {
		return 1
	}
	return 0
}

// stepCtx bounds one network step.
func (d *doctor) stepCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(d.ctx, d.step)
}

// 1. Configuration ------------------------------------------------------------

func (d *doctor) checkConfig() bool {
	cfg, err := LoadConfig(d.cfgPath, d.getenv)
	d.cfg = cfg
	src := d.cfgPath
	if src == "" {
		src = "no config file"
	}
	var envSet []string
	for _, v := range envVars {
		if d.getenv(v.Name) != "" {
			envSet = append(envSet, v.Name)
		}
	}
	if len(envSet) > 0 {
		src += " + environment " + strings.Join(envSet, ", ")
	}
	if err != nil {
		var ce *ConfigError
		if errors.As(err, &ce) {
			d.fail("config", fmt.Sprintf("%s: %d problem(s)", src, len(ce.Problems)), ce.Problems...)
		} else {
			d.fail("config", fmt.Sprintf("%s: %v", src, err), "check the file with: minifocus -check-config -config "+orDefault(d.cfgPath, "FILE"))
		}
		return false
	}
	x := cfg.XMPP
	d.ok("config", "%s: server %s, domain %s, auth-domain %s, muc-domain %s, brewery %s, focus %s/%s, tls %s",
		src, d.addr(), x.Domain, x.AuthDomain, x.MUCDomain, cfg.Bridges.Brewery, cfg.FocusJID(), x.Resource, x.TLS)
	d.detail("%s", x.ClientProxyNote())
	return true
}

func (d *doctor) addr() string {
	return net.JoinHostPort(d.cfg.XMPP.Server, strconv.Itoa(d.cfg.XMPP.Port))
}

// 2. TCP ----------------------------------------------------------------------

func (d *doctor) checkTCP() bool {
	ctx, cancel := d.stepCtx()
	defer cancel()
	start := time.Now()
	var dl net.Dialer
	c, err := dl.DialContext(ctx, "tcp", d.addr())
	if err != nil {
		x := d.cfg.XMPP
		fixes := []string{}
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) {
			fixes = append(fixes, fmt.Sprintf("%q does not resolve from this host: set xmpp.server (env XMPP_SERVER) to Prosody's host name or address (docker-jitsi-meet: xmpp.meet.jitsi on the meet.jitsi network)", x.Server))
		} else {
			fixes = append(fixes,
				"start Prosody (systemctl start prosody, or docker compose up -d prosody) and make it listen on "+d.addr()+" (c2s_ports and c2s_interfaces in prosody.cfg.lua)",
				fmt.Sprintf("if Prosody runs elsewhere, set xmpp.server / xmpp.port (env XMPP_SERVER / XMPP_PORT); now %s:%d", x.Server, x.Port),
				fmt.Sprintf("a firewall between this host and Prosody must allow TCP port %d", x.Port))
		}
		d.fail("prosody", fmt.Sprintf("cannot connect to %s: %v", d.addr(), doctorErr(err)), fixes...)
		return false
	}
	c.Close()
	d.ok("prosody", "%s accepts TCP connections (%s)", d.addr(), doctorSince(start))
	return true
}

// 3. Stream and TLS -----------------------------------------------------------

// doctorStreamProbe is what a raw client stream to the auth domain showed.
type doctorStreamProbe struct {
	tlsOffered  bool     // STARTTLS offered
	tlsRequired bool     // <required/> in <starttls>
	plainMechs  []string // SASL mechanisms offered before TLS
	tlsTried    bool
	tlsErr      error
	tlsVersion  string
	tlsMechs    []string // SASL mechanisms offered after TLS
}

// doctorStreamError is a <stream:error> the server sent.
type doctorStreamError struct{ condition, text string }

func (e *doctorStreamError) Error() string {
	if e.text != "" {
		return e.condition + ": " + e.text
	}
	return e.condition
}

// doctorOpenStream writes a client stream header for domain and reads the
// server's header and <stream:features>.
func doctorOpenStream(rw io.ReadWriter, domain string) (*Element, error) {
	if _, err := fmt.Fprintf(rw, "<?xml version='1.0'?><stream:stream to='%s' version='1.0' xmlns='jabber:client' xmlns:stream='%s'>", domain, doctorNSStreams); err != nil {
		return nil, err
	}
	dec := xml.NewDecoder(rw)
	sawHeader := false
	for {
		tok, err := dec.Token()
		if err != nil {
			if !sawHeader {
				return nil, fmt.Errorf("no XMPP stream header: %w", err)
			}
			return nil, fmt.Errorf("reading stream features: %w", err)
		}
		start, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		if !sawHeader {
			if start.Name.Space != doctorNSStreams || start.Name.Local != "stream" {
				return nil, fmt.Errorf("not an XMPP server: first element is <%s>", start.Name.Local)
			}
			sawHeader = true
			continue
		}
		el, err := readElement(dec, start)
		if err != nil {
			return nil, fmt.Errorf("reading stream features: %w", err)
		}
		switch {
		case el.Space == doctorNSStreams && el.Local == "error":
			se := &doctorStreamError{condition: "undefined-condition"}
			for _, k := range el.Children {
				if k.Space != doctorNSStreamErrs {
					continue
				}
				if k.Local == "text" {
					se.text = k.Text
				} else {
					se.condition = k.Local
				}
			}
			return nil, se
		case el.Space == doctorNSStreams && el.Local == "features":
			return el, nil
		}
	}
}

// doctorStartTLS sends <starttls/> and waits for <proceed/>.
func doctorStartTLS(rw io.ReadWriter) error {
	if _, err := io.WriteString(rw, "<starttls xmlns='"+doctorNSStartTLS+"'/>"); err != nil {
		return err
	}
	dec := xml.NewDecoder(rw)
	for {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("waiting for <proceed/>: %w", err)
		}
		if start, ok := tok.(xml.StartElement); ok {
			if start.Name.Local == "proceed" {
				return nil
			}
			return fmt.Errorf("server answered <%s/> to <starttls/>", start.Name.Local)
		}
	}
}

func doctorSASLMechs(features *Element) []string {
	var out []string
	for _, m := range features.Child(doctorNSSASL, "mechanisms").All(doctorNSSASL, "mechanism") {
		out = append(out, strings.TrimSpace(m.Text))
	}
	return out
}

func doctorUsableMech(mechs []string) bool {
	for _, m := range mechs {
		if slices.Contains(doctorSASL, strings.ToUpper(m)) {
			return true
		}
	}
	return false
}

// probeStream opens a raw client stream to the auth domain and, when tryTLS,
// negotiates STARTTLS as the focus would.
func (d *doctor) probeStream(tryTLS bool) (*doctorStreamProbe, error) {
	ctx, cancel := d.stepCtx()
	defer cancel()
	var dl net.Dialer
	conn, err := dl.DialContext(ctx, "tcp", d.addr())
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	}
	domain := d.cfg.XMPP.AuthDomain
	features, err := doctorOpenStream(conn, domain)
	if err != nil {
		return nil, err
	}
	p := &doctorStreamProbe{plainMechs: doctorSASLMechs(features)}
	if st := features.Child(doctorNSStartTLS, "starttls"); st != nil {
		p.tlsOffered = true
		p.tlsRequired = st.Child(doctorNSStartTLS, "required") != nil
	}
	if !tryTLS || !p.tlsOffered {
		_, _ = io.WriteString(conn, "</stream:stream>")
		return p, nil
	}
	p.tlsTried = true
	if p.tlsErr = doctorStartTLS(conn); p.tlsErr != nil {
		return p, nil
	}
	tc := tls.Client(conn, &tls.Config{
		ServerName:         domain,
		InsecureSkipVerify: d.cfg.XMPP.TLSSkipVerify, // #nosec G402 -- the operator's explicit choice, as for the daemon
		MinVersion:         tls.VersionTLS12,
	})
	if p.tlsErr = tc.HandshakeContext(ctx); p.tlsErr != nil {
		return p, nil
	}
	p.tlsVersion = tls.VersionName(tc.ConnectionState().Version)
	if f, err := doctorOpenStream(tc, domain); err == nil {
		p.tlsMechs = doctorSASLMechs(f)
	} else {
		p.tlsErr = fmt.Errorf("stream after STARTTLS: %w", err)
	}
	_, _ = io.WriteString(tc, "</stream:stream>")
	return p, nil
}

func (d *doctor) checkStream() bool {
	x := d.cfg.XMPP
	p, err := d.probeStream(x.TLS != "off")
	if err != nil {
		var se *doctorStreamError
		if errors.As(err, &se) && se.condition == "host-unknown" {
			d.fail("tls", fmt.Sprintf("Prosody at %s does not serve %s (stream error %s)", d.addr(), x.AuthDomain, se),
				fmt.Sprintf("the focus account lives on xmpp.auth-domain (env XMPP_AUTH_DOMAIN) = %q: add to prosody.cfg.lua: VirtualHost %q with authentication = \"internal_hashed\", then prosodyctl reload", x.AuthDomain, x.AuthDomain),
				"or set xmpp.auth-domain (env XMPP_AUTH_DOMAIN) to the Prosody host where the focus account is registered")
			return false
		}
		d.fail("tls", fmt.Sprintf("cannot open an XMPP stream to %s at %s: %v", x.AuthDomain, d.addr(), doctorErr(err)),
			fmt.Sprintf("xmpp.port (env XMPP_PORT) must be Prosody's client port (c2s_ports, usually 5222), not the BOSH/HTTP (5280), component (5347) or server-to-server (5269) port; now %d", x.Port))
		return false
	}
	mechs := p.plainMechs
	offered := "does not offer STARTTLS"
	if p.tlsOffered {
		offered = "offers STARTTLS"
	}
	certFixes := func() []string {
		var cv *tls.CertificateVerificationError
		var ua x509.UnknownAuthorityError
		var he x509.HostnameError
		if errors.As(p.tlsErr, &cv) || errors.As(p.tlsErr, &ua) || errors.As(p.tlsErr, &he) {
			return []string{
				fmt.Sprintf("Prosody's certificate for %s is not trusted here: give Prosody a certificate for %s from a CA this host trusts (prosodyctl --root cert import /etc/letsencrypt/live)", x.AuthDomain, x.AuthDomain),
				"or set xmpp.tls-skip-verify = true (docker-jitsi-meet does the same for Jicofo on its private network)",
			}
		}
		return []string{
			fmt.Sprintf("Prosody has no usable certificate for %s: prosodyctl cert generate %s (self-signed; then set xmpp.tls-skip-verify = true), or prosodyctl --root cert import /etc/letsencrypt/live, then prosodyctl reload", x.AuthDomain, x.AuthDomain),
		}
	}
	noLoginFix := fmt.Sprintf("VirtualHost %q in prosody.cfg.lua must use authentication = \"internal_hashed\" (the focus and the bridges log in with passwords)", x.AuthDomain)

	switch {
	case x.TLS == "off":
		if !doctorUsableMech(mechs) {
			d.fail("tls", fmt.Sprintf("xmpp.tls = \"off\", but Prosody offers no password login without TLS (SASL: %s)", doctorMechs(mechs)),
				"set xmpp.tls = \"optional\" (Prosody requires encryption: c2s_require_encryption = true), or set c2s_require_encryption = false in prosody.cfg.lua for a private network",
				noLoginFix)
			return false
		}
		d.ok("tls", "off (xmpp.tls = \"off\"); Prosody %s; SASL: %s", offered, doctorMechs(mechs))
	case p.tlsTried && p.tlsErr == nil:
		mechs = p.tlsMechs
		verify := "certificate verified for " + x.AuthDomain
		if x.TLSSkipVerify {
			verify = "certificate not verified (xmpp.tls-skip-verify = true)"
		}
		if !doctorUsableMech(mechs) {
			d.fail("tls", fmt.Sprintf("STARTTLS works (%s), but Prosody offers no password login (SASL: %s)", p.tlsVersion, doctorMechs(mechs)), noLoginFix)
			return false
		}
		d.ok("tls", "STARTTLS works (%s, %s); SASL: %s", p.tlsVersion, verify, doctorMechs(mechs))
	case p.tlsTried: // STARTTLS offered but failed
		msg := fmt.Sprintf("Prosody offers STARTTLS for %s but it fails: %v", x.AuthDomain, doctorErr(p.tlsErr))
		if x.TLS == "required" {
			d.fail("tls", msg+" (xmpp.tls = \"required\")", append(certFixes(), "or set xmpp.tls = \"optional\" to log in without TLS on a trusted network")...)
			return false
		}
		if !doctorUsableMech(mechs) || p.tlsRequired {
			d.fail("tls", msg+"; and Prosody offers no login without it", certFixes()...)
			return false
		}
		d.warn("tls", msg+"; the focus logs in without TLS (xmpp.tls = \"optional\")",
			append(certFixes(), "or set xmpp.tls = \"off\" to stop trying (fine on loopback or a private network)")...)
	default: // not offered
		if x.TLS == "required" {
			d.fail("tls", fmt.Sprintf("xmpp.tls = \"required\", but Prosody does not offer STARTTLS for %s", x.AuthDomain),
				fmt.Sprintf("give Prosody a certificate for %s (prosodyctl cert generate %s) and keep mod_tls enabled", x.AuthDomain, x.AuthDomain),
				"or set xmpp.tls = \"optional\" to log in without TLS on a trusted network")
			return false
		}
		if !doctorUsableMech(mechs) {
			d.fail("tls", fmt.Sprintf("Prosody offers no password login for %s (SASL: %s)", x.AuthDomain, doctorMechs(mechs)), noLoginFix)
			return false
		}
		d.ok("tls", "Prosody does not offer STARTTLS; the focus logs in without TLS (fine on loopback or a private network); SASL: %s", doctorMechs(mechs))
	}
	return true
}

func doctorMechs(m []string) string {
	if len(m) == 0 {
		return "none"
	}
	return strings.Join(m, ", ")
}

// 4. Login --------------------------------------------------------------------

// doctorSession is one XMPP login of the doctor.
type doctorSession struct {
	x      *XMPPClient
	cancel context.CancelFunc
	done   chan struct{}
}

func (s *doctorSession) close() {
	s.cancel()
	select {
	case <-s.done:
	case <-time.After(3 * time.Second):
	}
}

// login logs in as the focus with resource and waits for the session.
func (d *doctor) login(resource string) (*doctorSession, error) {
	x := d.cfg.XMPP
	c := NewXMPPClient(XMPPOptions{
		Addr:          d.addr(),
		Domain:        x.AuthDomain,
		Username:      x.Username,
		Password:      x.Password,
		Resource:      resource,
		TLS:           x.TLS,
		TLSSkipVerify: x.TLSSkipVerify,
		ReplyTimeout:  d.step,
		PingInterval:  time.Minute,
		PingTarget:    x.Domain,
		Logger:        d.log,
	})
	c.HandlePresence(d.routePresence)
	ctx, cancel := context.WithCancel(context.Background())
	s := &doctorSession{x: c, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		c.Run(ctx)
	}()
	deadline := time.Now().Add(d.loginWait)
	for {
		up, err := c.Connected()
		switch {
		case up:
			return s, nil
		case err != nil:
			s.close()
			return nil, err
		case time.Now().After(deadline) || d.ctx.Err() != nil:
			s.close()
			return nil, fmt.Errorf("no session within %s", d.loginWait)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (d *doctor) closeSessions() {
	for _, s := range d.others {
		s.close()
	}
	d.others = nil
	if d.sess != nil {
		d.sess.close()
		d.sess = nil
	}
}

func (d *doctor) checkLogin() bool {
	x := d.cfg.XMPP
	start := time.Now()
	s, err := d.login(x.Resource + "-doctor-" + randomID()[:6])
	if err != nil {
		var ae *AuthError
		if errors.As(err, &ae) {
			d.fail("login", fmt.Sprintf("Prosody refused the login of %s: %s", d.cfg.FocusJID(), ae.Condition),
				fmt.Sprintf("the account is missing or its password differs from xmpp.password (env JICOFO_AUTH_PASSWORD): on the Prosody host run  prosodyctl register %s %s PASSWORD  with PASSWORD = the value of xmpp.password / JICOFO_AUTH_PASSWORD", x.Username, x.AuthDomain),
				"docker-jitsi-meet: the prosody and jicofo services must get the same JICOFO_AUTH_PASSWORD; Prosody registers it only on first start, so after changing it re-run the prosodyctl register above in the prosody container (or remove its stale config volume)")
			return false
		}
		d.fail("login", fmt.Sprintf("%s could not log in at %s: %v", d.cfg.FocusJID(), d.addr(), doctorErr(err)),
			"run the doctor again; if this persists, look at Prosody's log (/var/log/prosody/prosody.log, or docker compose logs prosody) for this connection")
		return false
	}
	d.sess = s
	d.ok("login", "%s logged in (%s)", d.cfg.FocusJID(), doctorSince(start))
	return true
}

// 5. Focus JID ----------------------------------------------------------------

func (d *doctor) checkFocusJID() {
	x := d.cfg.XMPP
	want := d.cfg.FocusJID() + "/" + x.Resource
	d.breweryNick = x.Username

	// Is the resource taken (a running minifocus or Jicofo)? Binding it
	// again would make Prosody kick that session.
	ctx, cancel := d.stepCtx()
	resp, err := d.sess.x.SendIQ(ctx, NewIQ("get", want, "", NewElement(nsDiscoInfo, "query")))
	cancel()
	var se *StanzaError
	free := errors.As(err, &se) && (se.Condition == "service-unavailable" || se.Condition == "recipient-unavailable" || se.Condition == "item-not-found")
	if !free {
		d.breweryNick = x.Username + "-doctor-" + randomID()[:4]
		who := "something"
		if err == nil {
			who = "a running focus"
			if id := resp.Child(nsDiscoInfo, "query").Child(nsDiscoInfo, "identity"); id != nil && id.Attr("name") != "" {
				who += " (" + id.Attr("name") + ")"
			}
		}
		d.ok("focus-jid", "%s is online: %s holds it, so the doctor keeps its own resource %s instead of taking it over", want, who, d.sess.x.JID())
		return
	}
	s, err := d.login(x.Resource)
	if err != nil {
		d.fail("focus-jid", fmt.Sprintf("cannot log in as %s: %v", want, doctorErr(err)),
			"look at Prosody's log (/var/log/prosody/prosody.log) for this login")
		return
	}
	got := s.x.JID()
	if !strings.EqualFold(doctorBare(got), d.cfg.FocusJID()) || doctorResource(got) != x.Resource {
		d.others = append(d.others, s)
		d.fail("focus-jid", fmt.Sprintf("Prosody bound %s instead of %s", got, want),
			fmt.Sprintf("clients without client_proxy send conference requests to %s: Prosody must bind the resource as requested (check conflict_resolve and any module that rewrites resources on %s)", want, x.AuthDomain))
		return
	}
	d.others = append(d.others, d.sess)
	d.sess = s
	d.ok("focus-jid", "bound as %s", got)
}

func doctorBare(j string) string {
	if i := strings.IndexByte(j, '/'); i >= 0 {
		return j[:i]
	}
	return j
}

func doctorResource(j string) string {
	if i := strings.IndexByte(j, '/'); i >= 0 {
		return j[i+1:]
	}
	return ""
}

// Presence routing --------------------------------------------------------------

// routePresence runs on the XMPP reader goroutine: it hands self-presences
// of joined rooms to their waiter and brewery presences to the registry.
func (d *doctor) routePresence(p *Element) {
	from := p.Attr("from")
	bare, nick := strings.ToLower(doctorBare(from)), doctorResource(from)
	d.mu.Lock()
	sub, subscribed := d.rooms[bare]
	b := d.bridges
	if b != nil && nick != "" && bare == strings.ToLower(d.cfg.Bridges.Brewery) && nick != d.breweryNick {
		switch p.Attr("type") {
		case "unavailable":
			delete(d.occupants, nick)
		case "", "available":
			d.occupants[nick] = p.Child(nsColibri, "stats") != nil
		}
	}
	d.mu.Unlock()
	if b != nil {
		b.HandlePresence(p)
	}
	if subscribed && nick == sub.nick {
		select {
		case sub.ch <- p:
		default:
		}
	}
}

// joinRoom sends a MUC join and waits for the self-presence or the error.
func (d *doctor) joinRoom(room, nick string) (*Element, error) {
	key := strings.ToLower(room)
	ch := make(chan *Element, 16)
	d.mu.Lock()
	d.rooms[key] = doctorRoomSub{nick: nick, ch: ch}
	d.mu.Unlock()
	p := NewElement(nsClient, "presence", "to", room+"/"+nick).Add(NewElement(nsMUC, "x"))
	if err := d.sess.x.Send(p); err != nil {
		return nil, err
	}
	ctx, cancel := d.stepCtx()
	defer cancel()
	for {
		select {
		case p := <-ch:
			switch p.Attr("type") {
			case "error":
				return p, ParseStanzaError(p)
			case "", "available":
				if doctorHasStatus(p, "110") {
					return p, nil
				}
			}
		case <-ctx.Done():
			return nil, fmt.Errorf("no answer to the join within %s", d.step)
		}
	}
}

// leaveRoom stops routing the room and sends the leave presence.
func (d *doctor) leaveRoom(room, nick string) {
	d.mu.Lock()
	delete(d.rooms, strings.ToLower(room))
	d.mu.Unlock()
	_ = d.sess.x.Send(NewElement(nsClient, "presence", "to", room+"/"+nick, "type", "unavailable"))
}

func doctorHasStatus(p *Element, code string) bool {
	for _, x := range p.All(nsMUCUser, "x") {
		for _, st := range x.All(nsMUCUser, "status") {
			if st.Attr("code") == code {
				return true
			}
		}
	}
	return false
}

// 6. Conference MUC -----------------------------------------------------------

func (d *doctor) iq(typ, to string, payload *Element) (*Element, error) {
	ctx, cancel := d.stepCtx()
	defer cancel()
	return d.sess.x.SendIQ(ctx, NewIQ(typ, to, "", payload))
}

// discoIdentities returns "category/type" of every identity of jid.
func (d *doctor) discoIdentities(jid string) ([]string, *Element, error) {
	resp, err := d.iq("get", jid, NewElement(nsDiscoInfo, "query"))
	if err != nil {
		return nil, nil, err
	}
	q := resp.Child(nsDiscoInfo, "query")
	var ids []string
	for _, id := range q.All(nsDiscoInfo, "identity") {
		ids = append(ids, id.Attr("category")+"/"+id.Attr("type"))
	}
	return ids, q, nil
}

func doctorIsMUC(ids []string) bool {
	for _, id := range ids {
		if strings.HasPrefix(id, "conference/") {
			return true
		}
	}
	return false
}

// mucServices lists the MUC components Prosody advertises under the domain
// and the auth domain (disco#items, then disco#info on each item).
func (d *doctor) mucServices() []string {
	seen := map[string]bool{}
	var out []string
	for _, host := range []string{d.cfg.XMPP.Domain, d.cfg.XMPP.AuthDomain} {
		resp, err := d.iq("get", host, NewElement(doctorNSDiscoItems, "query"))
		if err != nil {
			continue
		}
		for _, it := range resp.Child(doctorNSDiscoItems, "query").All(doctorNSDiscoItems, "item") {
			j := it.Attr("jid")
			if j == "" || seen[j] || strings.Contains(j, "@") || len(seen) > 32 {
				continue
			}
			seen[j] = true
			if ids, _, err := d.discoIdentities(j); err == nil && doctorIsMUC(ids) {
				out = append(out, j)
			}
		}
	}
	sort.Strings(out)
	return out
}

func (d *doctor) adminFixes() []string {
	focus := d.cfg.FocusJID()
	return []string{
		fmt.Sprintf("make the focus a Prosody admin: in prosody.cfg.lua put  admins = { %q }  in the global section (or, under Component %q \"muc\", admins = { %q } with component_admins_as_room_owners = true), then prosodyctl restart", focus, d.cfg.XMPP.MUCDomain, focus),
		"docker-jitsi-meet does this itself; if you changed XMPP_AUTH_DOMAIN or the focus user, check the admins line in the prosody container's /config/prosody.cfg.lua and conf.d/jitsi-meet.cfg.lua",
	}
}

func (d *doctor) checkMUC() {
	x := d.cfg.XMPP
	muc := x.MUCDomain
	ids, q, err := d.discoIdentities(muc)
	if err != nil || !doctorIsMUC(ids) {
		why := ""
		if err != nil {
			why = fmt.Sprintf("disco#info to %s failed: %v", muc, doctorErr(err))
		} else {
			why = fmt.Sprintf("%s answers but is not a MUC service (identities: %s)", muc, strings.Join(ids, ", "))
		}
		fixes := []string{}
		others := slices.DeleteFunc(d.mucServices(), func(s string) bool { return strings.EqualFold(s, x.InternalMUCDomain) })
		if len(others) > 0 {
			fixes = append(fixes, fmt.Sprintf("set xmpp.muc-domain (env XMPP_MUC_DOMAIN) to the conference MUC of this Prosody; it has: %s", strings.Join(others, ", ")))
		} else {
			fixes = append(fixes, "set xmpp.muc-domain (env XMPP_MUC_DOMAIN) to the conference MUC of this Prosody (the web config's hosts.muc)")
		}
		fixes = append(fixes, fmt.Sprintf("or declare it in prosody.cfg.lua: Component %q \"muc\" (with restrict_room_creation = true), then prosodyctl reload", muc))
		d.fail("muc", fmt.Sprintf("the conference MUC does not exist: %s", why), fixes...)
		return
	}
	name := q.Child(nsDiscoInfo, "identity").Attr("name")
	room := "__minifocus-doctor-" + randomID()[:8] + "@" + muc
	nick := x.Username
	self, err := d.joinRoom(room, nick)
	if err != nil {
		d.leaveRoom(room, nick)
		var se *StanzaError
		if errors.As(err, &se) {
			d.fail("muc", fmt.Sprintf("%s is a MUC service (%q), but the focus may not create rooms there: %v", muc, name, se), d.adminFixes()...)
		} else {
			d.fail("muc", fmt.Sprintf("joining the test room %s: %v", room, doctorErr(err)),
				"look at Prosody's log for the MUC component "+muc)
		}
		return
	}
	if err := d.ownRoom(muc, room, self); err != nil {
		d.destroyRoom(room, nick)
		d.fail("muc", err.msg, err.fixes...)
		return
	}
	created := "created"
	if !doctorHasStatus(self, "201") {
		created = "joined the existing"
	}
	gone := "destroyed it"
	if err := d.destroyRoom(room, nick); err != nil {
		gone = fmt.Sprintf("left it (destroying it failed: %v; Prosody removes it once empty)", doctorErr(err))
	}
	d.ok("muc", "%s is a MUC service (%q); the focus %s test room %s as owner, configured it and %s", muc, name, created, room, gone)
}

// doctorFailure is a failed check's message and fixes.
type doctorFailure struct {
	msg   string
	fixes []string
}

// ownRoom checks that the focus is the owner of the room it joined and can
// configure it as the daemon does (muc#owner form get, then submit).
func (d *doctor) ownRoom(muc, room string, self *Element) *doctorFailure {
	aff := self.Child(nsMUCUser, "x").Child(nsMUCUser, "item").Attr("affiliation")
	if aff != "owner" {
		return &doctorFailure{fmt.Sprintf("the focus joined the test room %s as %q, not as owner: it could not run conferences", room, aff), d.adminFixes()}
	}
	if _, err := d.iq("get", room, NewElement(nsMUCOwner, "query")); err != nil {
		return &doctorFailure{fmt.Sprintf("the focus owns the test room but cannot read its configuration form: %v", doctorErr(err)), d.adminFixes()}
	}
	submit := NewElement(nsDataForms, "x", "type", "submit").Add(
		formField("FORM_TYPE", "http://jabber.org/protocol/muc#roomconfig"),
		formField("muc#roomconfig_whois", "anyone"),
	)
	if _, err := d.iq("set", room, NewElement(nsMUCOwner, "query").Add(submit)); err != nil {
		return &doctorFailure{fmt.Sprintf("the focus owns the test room but cannot configure it (whois = anyone): %v", doctorErr(err)),
			[]string{fmt.Sprintf("check the modules on Component %q \"muc\" in prosody.cfg.lua: one of them refuses the owner's configuration form", muc)}}
	}
	return nil
}

// destroyRoom destroys the test room (muc#owner destroy) and leaves it; a
// non-persistent room also goes away when its last occupant leaves.
func (d *doctor) destroyRoom(room, nick string) error {
	destroy := NewElement(nsMUCOwner, "query").Add(
		NewElement(nsMUCOwner, "destroy").Add(NewElement(nsMUCOwner, "reason").SetText("minifocus doctor test room")))
	_, err := d.iq("set", room, destroy)
	d.leaveRoom(room, nick)
	return err
}

// 7. Brewery ------------------------------------------------------------------

func (d *doctor) bridgeFixes() []string {
	x := d.cfg.XMPP
	brewery := d.cfg.Bridges.Brewery
	room, dom, _ := strings.Cut(brewery, "@")
	return []string{
		fmt.Sprintf("every bridge must join %s: in jvb.conf videobridge.apis.xmpp-client.configs.<name> set MUC_JIDS = %q and a MUC_NICKNAME unique per bridge (docker-jitsi-meet: JVB_BREWERY_MUC=%s and XMPP_INTERNAL_MUC_DOMAIN=%s on the jvb service)", brewery, brewery, room, dom),
		"or, if the bridges use another room, set bridges.brewery (env JVB_BREWERY_MUC) / xmpp.internal-muc-domain (env XMPP_INTERNAL_MUC_DOMAIN) here to match their MUC_JIDS",
		fmt.Sprintf("the bridge logs in as jvb@%s: prosodyctl register jvb %s PASSWORD with the bridge's password (JVB_AUTH_PASSWORD); its log (/var/log/jitsi/jvb.log, or docker compose logs jvb) must show the login and the MUC join", x.AuthDomain, x.AuthDomain),
	}
}

// checkBrewery joins the brewery and returns the bridges found there.
func (d *doctor) checkBrewery() []BridgeInfo {
	brewery := d.cfg.Bridges.Brewery
	b := NewBridges(d.cfg.Bridges, d.breweryNick, nil, d.log)
	d.mu.Lock()
	d.bridges = b
	d.mu.Unlock()
	start := time.Now()
	self, err := d.joinRoom(brewery, d.breweryNick)
	if err != nil {
		var se *StanzaError
		fixes := d.bridgeFixes()
		if errors.As(err, &se) {
			_, dom, _ := strings.Cut(brewery, "@")
			switch {
			case strings.Contains(strings.ToLower(se.Text), "remote domain") || se.Condition == "remote-server-not-found" || se.Condition == "service-unavailable" || se.Condition == "item-not-found":
				fixes = append([]string{fmt.Sprintf("Prosody has no MUC %s: declare Component %q \"muc\" in prosody.cfg.lua, or set xmpp.internal-muc-domain (env XMPP_INTERNAL_MUC_DOMAIN) to the MUC the bridges use", dom, dom)}, fixes...)
			case se.Condition == "not-allowed" || se.Condition == "forbidden":
				fixes = append([]string{fmt.Sprintf("the room does not exist (no bridge has joined it) and the focus may not create it: %s", d.adminFixes()[0])}, fixes...)
			}
			d.fail("brewery", fmt.Sprintf("cannot join the brewery %s: %v", brewery, se), fixes...)
		} else {
			d.fail("brewery", fmt.Sprintf("joining the brewery %s: %v", brewery, doctorErr(err)), fixes...)
		}
		d.leaveRoom(brewery, d.breweryNick)
		return nil
	}
	created := doctorHasStatus(self, "201")
	// Occupants' presences arrive before the self-presence; an empty
	// brewery is watched a little longer for a bridge that is (re)joining.
	for len(b.Snapshot()) == 0 && time.Since(start) < d.breweryWait && d.ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
	}
	bridges := b.Snapshot()
	if len(bridges) == 0 {
		d.mu.Lock()
		var others []string
		for nick := range d.occupants {
			if nick != d.cfg.XMPP.Username { // a running focus
				others = append(others, nick)
			}
		}
		d.mu.Unlock()
		sort.Strings(others)
		msg := fmt.Sprintf("no bridge in the brewery %s after %s", brewery, d.breweryWait)
		switch {
		case created:
			msg += ": the room did not exist, so no bridge has joined it (the doctor created it and leaves it again)"
		case len(others) > 0:
			msg += fmt.Sprintf(": its occupants (%s) publish no <stats xmlns=%q>, so they are not videobridges", strings.Join(others, ", "), nsColibri)
		}
		d.fail("brewery", msg, d.bridgeFixes()...)
		return nil
	}
	d.ok("brewery", "%s has %d bridge(s)", brewery, len(bridges))
	for _, br := range bridges {
		var flags []string
		if br.Drain {
			flags = append(flags, "draining")
		}
		if br.GracefulShutdown {
			flags = append(flags, "in graceful shutdown")
		}
		if br.ShuttingDown {
			flags = append(flags, "shutting down")
		}
		if br.Healthy != nil && !*br.Healthy {
			flags = append(flags, "reports healthy=false")
		}
		extra := ""
		if len(flags) > 0 {
			extra = "; " + strings.Join(flags, ", ")
		}
		d.detail("bridge %s: stress %.2f, region %s, version %s, %d conference(s), %d participant(s)%s",
			br.Nick, br.Stress, orDefault(br.Region, "(none)"), orDefault(br.Version, "(unknown)"), br.Conferences, br.Participants, extra)
	}
	return bridges
}

func (d *doctor) leaveBrewery() {
	d.mu.Lock()
	_, joined := d.rooms[strings.ToLower(d.cfg.Bridges.Brewery)]
	d.mu.Unlock()
	if joined {
		d.leaveRoom(d.cfg.Bridges.Brewery, d.breweryNick)
	}
}

// 8. Bridge health ------------------------------------------------------------

// doctorParallel runs f for every bridge at once and returns the results in order.
func doctorParallel[T any](bridges []BridgeInfo, f func(BridgeInfo) T) []T {
	out := make([]T, len(bridges))
	var wg sync.WaitGroup
	for i, br := range bridges {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = f(br)
		}()
	}
	wg.Wait()
	return out
}

type doctorResult struct {
	err  error
	took time.Duration
	msg  string
}

// checkHealth sends each bridge its health-check IQ and returns the bridges
// that passed.
func (d *doctor) checkHealth(bridges []BridgeInfo) []BridgeInfo {
	results := doctorParallel(bridges, func(br BridgeInfo) doctorResult {
		start := time.Now()
		_, err := d.iq("get", br.JID, NewElement(nsHealthCheck, "healthcheck"))
		return doctorResult{err: err, took: time.Since(start)}
	})
	var healthy []BridgeInfo
	for i, br := range bridges {
		r := results[i]
		name := "bridge " + br.Nick + " health"
		if r.err == nil {
			d.ok(name, "passed (%s)", doctorRound(r.took))
			healthy = append(healthy, br)
			continue
		}
		var se *StanzaError
		switch {
		case errors.As(r.err, &se) && se.Condition == "forbidden":
			d.fail(name, fmt.Sprintf("the bridge refused the health check: %v", se),
				fmt.Sprintf("a bridge only serves requests that come through the brewery it joined: its MUC_JIDS must be exactly %q", d.cfg.Bridges.Brewery))
		case errors.As(r.err, &se) && (se.Condition == "feature-not-implemented" || se.Condition == "service-unavailable" && se.Text == ""):
			d.fail(name, fmt.Sprintf("%s does not implement Jitsi health checks: %v", br.JID, se),
				fmt.Sprintf("only jitsi-videobridge instances should join %s; remove the occupant %q from it", d.cfg.Bridges.Brewery, br.Nick))
		case errors.As(r.err, &se):
			d.fail(name, fmt.Sprintf("the bridge reports itself unhealthy: %v", se),
				"read the bridge's log (/var/log/jitsi/jvb.log, or docker compose logs jvb) around this time: it says which of its own checks fails (often its network: JVB_ADVERTISE_IPS / ice4j harvesters, or the UDP port 10000)",
				"restart the bridge once the cause is fixed; the focus uses it again after its next passing health check")
		default:
			d.fail(name, fmt.Sprintf("no answer to the health check: %v", doctorErr(r.err)),
				"the bridge is stuck or overloaded: check its CPU and its log (/var/log/jitsi/jvb.log, or docker compose logs jvb), and restart it")
		}
	}
	return healthy
}

// 9. Test conference ----------------------------------------------------------

func (d *doctor) checkConference(bridges []BridgeInfo) {
	offer := BuildOffer(d.cfg.Codec, DefaultFeatures())
	sctp := OfferHasData(offer)
	media := ColibriMedia(offer)
	results := doctorParallel(bridges, func(br BridgeInfo) doctorResult {
		return d.testConference(br, media, sctp)
	})
	for i, br := range bridges {
		r := results[i]
		name := "bridge " + br.Nick + " conference"
		if r.err == nil {
			d.ok(name, "%s (%s)", r.msg, doctorRound(r.took))
			continue
		}
		d.fail(name, r.msg+": "+doctorErr(r.err).Error(), doctorColibriFixes(r.err)...)
	}
}

// testConference creates a conference with one endpoint on a bridge, checks
// the allocation and expires the conference.
func (d *doctor) testConference(br BridgeInfo, media []*Element, sctp bool) doctorResult {
	start := time.Now()
	meetingID := newUUID()
	epID := randomID()[:8]
	req := ColibriRequest{
		MeetingID:        meetingID,
		Name:             "__minifocus-doctor-" + epID + "@" + d.cfg.XMPP.MUCDomain,
		Create:           true,
		RTCStatsDisabled: true,
		Endpoints: []ColibriEndpoint{{
			ID: epID, StatsID: "minifocus-doctor", Create: true,
			Media: media, SCTP: sctp, InitialLastN: -1,
		}},
	}
	resp, err := d.iq("get", br.JID, BuildConferenceModify(req))
	if err != nil {
		return doctorResult{err: err, msg: "allocating a test conference failed"}
	}
	expire := func() error {
		_, err := d.iq("get", br.JID, BuildConferenceExpire(meetingID))
		return err
	}
	alloc, err := ParseAllocation(resp, epID, sctp)
	if err == nil {
		_, _, err = BridgeTransport(alloc.Transport, alloc.SCTPPort)
	}
	if err != nil {
		_ = expire()
		return doctorResult{err: err, msg: "the bridge's answer to the test allocation is unusable"}
	}
	var cands []string
	for _, c := range alloc.Transport.All(nsICEUDP, "candidate") {
		cands = append(cands, fmt.Sprintf("%s:%s/%s %s", c.Attr("ip"), c.Attr("port"), c.Attr("protocol"), c.Attr("type")))
	}
	if err := expire(); err != nil {
		return doctorResult{err: err, msg: "the test conference was allocated but expiring it failed"}
	}
	msg := fmt.Sprintf("allocated a test conference (candidates: %s", orDefault(strings.Join(cands, ", "), "none"))
	if sctp {
		msg += fmt.Sprintf("; SCTP port %d", alloc.SCTPPort)
	}
	return doctorResult{took: time.Since(start), msg: msg + ") and expired it"}
}

// doctorColibriFixes says what to do about a failed test allocation.
func doctorColibriFixes(err error) []string {
	f := ClassifyColibriError(err)
	logHint := "read the bridge's log (/var/log/jitsi/jvb.log, or docker compose logs jvb) around this time"
	switch {
	case f.MarkGracefulShutdown:
		return []string{"the bridge is in graceful shutdown and takes no new conferences: wait for it to restart, or start another bridge"}
	case errors.Is(err, ErrIQTimeout) || errors.Is(err, context.DeadlineExceeded):
		return []string{"the bridge did not answer in time: it is overloaded or stuck; " + logHint}
	case errors.Is(err, ErrColibriNotModified):
		return []string{"the answer is not a Colibri2 conference-modified: the occupant is not a jitsi-videobridge 2.1 or newer (minifocus speaks Colibri2 only)"}
	case strings.Contains(err.Error(), "SCTP"):
		return []string{"the bridge did not open SCTP (data channels): enable it in jvb.conf (videobridge.sctp.enabled = true), or set codec.sctp = false here"}
	case errors.Is(err, errNoTransport) || errors.Is(err, errNoICE) || errors.Is(err, errNoFingerprint) || errors.Is(err, ErrColibriAllocation):
		return []string{"the bridge's ICE/DTLS transport is incomplete: " + logHint}
	}
	return []string{logHint + "; minifocus speaks Colibri2 (jitsi-videobridge 2.1 or newer)"}
}

// 10. How clients reach the focus ---------------------------------------------

func (d *doctor) checkClients() {
	x := d.cfg.XMPP
	decoding := x.ClientProxyDomain() // "" when xmpp.client-proxy = "none"
	proxy := decoding
	if proxy == "" {
		proxy = "focus." + x.Domain
	}
	fullJID := d.cfg.FocusJID() + "/" + x.Resource

	listed := false
	if resp, err := d.iq("get", x.Domain, NewElement(doctorNSDiscoItems, "query")); err == nil {
		for _, it := range resp.Child(doctorNSDiscoItems, "query").All(doctorNSDiscoItems, "item") {
			if strings.EqualFold(it.Attr("jid"), proxy) {
				listed = true
			}
		}
	}
	_, _, perr := d.discoIdentities(proxy)
	// Jitsi's mod_client_proxy answers anything but presence that its
	// target account (the doctor logs in as the focus) addresses to the
	// component itself with bad-request; Prosody answers for an absent
	// component with service-unavailable or remote-server-not-found.
	var se *StanzaError
	proxyLive := perr == nil || errors.As(perr, &se) && se.Condition == "bad-request"
	why := ""
	switch {
	case proxyLive:
	case listed:
		why = fmt.Sprintf("%s is declared in Prosody but nothing serves it (%v), so it is not Jitsi's client_proxy", proxy, doctorErr(perr))
	default:
		why = fmt.Sprintf("there is no %s component (%v)", proxy, doctorErr(perr))
	}

	httpURL, published, httpWhy := d.probeConferenceRequest()
	httpLine := func() {
		if published {
			d.detail("or conferenceRequestUrl = %q (it answers the CORS preflight for POST)", httpURL)
		} else {
			d.detail("%s is not published (%s); to use HTTP instead, proxy it to this focus's http.listen and set conferenceRequestUrl", httpURL, httpWhy)
		}
	}

	switch {
	case proxyLive && decoding == "":
		d.warn("clients", fmt.Sprintf("%s answers (a client_proxy component), but xmpp.client-proxy = %q, so the focus would take proxied requests as coming from the proxy itself", proxy, x.ClientProxy),
			fmt.Sprintf("remove xmpp.client-proxy (its default is %q, Jicofo's client-proxy)", proxy))
		d.detail("web config (config.js): hosts.focus = %q (also its default)", proxy)
		httpLine()
	case proxyLive:
		d.ok("clients", "web config (config.js): hosts.focus = %q (the client_proxy component answers; it is also the default; %s)", proxy, x.ClientProxyNote())
		httpLine()
	case decoding != "" && !x.ClientProxyDefaulted:
		d.warn("clients", fmt.Sprintf("xmpp.client-proxy = %q, but %s", x.ClientProxy, why),
			fmt.Sprintf("install Jitsi's mod_client_proxy as Component %q \"client_proxy\" with target_address = %q, or remove xmpp.client-proxy and set hosts.focus = %q in the web config", proxy, d.cfg.FocusJID(), fullJID))
		httpLine()
	default:
		// Decoding requests from an absent proxy is harmless: nothing can
		// send from a domain that nobody serves.
		d.ok("clients", "web config (config.js) must say hosts.focus = %q, since %s", fullJID, why)
		httpLine()
	}
}

// probeConferenceRequest checks whether the HTTP conference request endpoint
// is published at the public URL: it must answer the CORS preflight for POST.
func (d *doctor) probeConferenceRequest() (target string, published bool, why string) {
	target = d.requestURL
	if target == "" {
		target = "https://" + d.cfg.XMPP.Domain + "/conference-request/v1"
	}
	ctx, cancel := context.WithTimeout(d.ctx, d.httpTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodOptions, target, nil)
	if err != nil {
		return target, false, err.Error()
	}
	req.Header.Set("Origin", "https://"+d.cfg.XMPP.Domain)
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "content-type")
	client := &http.Client{Timeout: d.httpTimeout}
	resp, err := client.Do(req)
	if err != nil {
		return target, false, doctorErr(err).Error()
	}
	resp.Body.Close()
	allow := strings.ToUpper(resp.Header.Get("Access-Control-Allow-Methods"))
	if resp.StatusCode/100 == 2 && strings.Contains(allow, "POST") {
		return target, true, ""
	}
	return target, false, fmt.Sprintf("HTTP %d to the preflight, Access-Control-Allow-Methods %q", resp.StatusCode, allow)
}

// Helpers ------------------------------------------------------------------------

func doctorSince(t time.Time) time.Duration { return doctorRound(time.Since(t)) }

// doctorRound keeps two or three significant digits for output.
func doctorRound(d time.Duration) time.Duration {
	if d < time.Millisecond {
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Millisecond)
}

// doctorErr shortens errors for one-line output: a context deadline reads
// as a timeout.
func doctorErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrIQTimeout) {
		return errors.New("timed out")
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
