package testkit

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// The XMPP layout every test Prosody serves. It mirrors a Jitsi Meet deployment
// (see docs/prosody-and-clients.md#the-prosody-layout) so that code under test sees
// the same hosts, auth types and MUC settings as in production.
const (
	// Domain is the anonymous virtual host browsers (simulated participants) log into.
	Domain = "meet.test"
	// MUCDomain hosts the conference rooms; only admins may create rooms.
	MUCDomain = "conference.meet.test"
	// AuthDomain is the password-protected host of the focus and the bridges.
	AuthDomain = "auth.meet.test"
	// InternalMUCDomain hosts the bridge brewery room.
	InternalMUCDomain = "internal.auth.meet.test"
	// ComponentDomain is the XEP-0114 component the focus may connect as.
	ComponentDomain = "focus.meet.test"

	// FocusUser and FocusPassword are the focus account on AuthDomain (an admin).
	FocusUser     = "focus"
	FocusPassword = "focuspass"
	// JVBUser and JVBPassword are the bridge account on AuthDomain (an admin).
	JVBUser     = "jvb"
	JVBPassword = "jvbpass"

	// DefaultComponentSecret is the XEP-0114 secret of ComponentDomain unless
	// WithComponentSecret is given.
	DefaultComponentSecret = "change-me"
)

// defaultGlobalModules are loaded on every host, as in the reference layout.
var defaultGlobalModules = []string{"roster", "saslauth", "tls", "disco", "ping", "time", "version", "smacks"}

// defaultDisabledModules are autoloaded by Prosody but unwanted: no federation,
// and no offline storage that would make message tests depend on timing.
var defaultDisabledModules = []string{"s2s", "offline"}

// meetHostModules are loaded on the anonymous browser host only.
var meetHostModules = []string{"bosh", "websocket", "external_services"}

type account struct{ user, host, pass string }

// settings collects everything the options can change.
type settings struct {
	users             []account
	admins            []string
	smacksHibernation time.Duration
	enable            []string
	disable           []string
	componentSecret   string
	logLevel          string
	startTimeout      time.Duration
	extraGlobal       []string

	// Jitsi layouts (jitsi_layout.go).
	mainAuth    string   // authentication of Domain: "" (anonymous), "internal_hashed", "test_token"
	guestHost   bool     // an anonymous GuestDomain
	plugins     []string // files of prosody-plugins/ to install
	mucModules  []string // extra modules on the conference MUC
	proxyRoster bool     // ComponentDomain subscribed to the focus's presence
	// jitsiComponents: identities on Domain and the breakout MUC.
	jitsiComponents bool
}

func defaultSettings() settings {
	return settings{
		users: []account{
			{FocusUser, AuthDomain, FocusPassword},
			{JVBUser, AuthDomain, JVBPassword},
		},
		admins:            []string{FocusUser + "@" + AuthDomain, JVBUser + "@" + AuthDomain},
		smacksHibernation: 60 * time.Second,
		componentSecret:   DefaultComponentSecret,
		logLevel:          "info",
		startTimeout:      10 * time.Second,
	}
}

// Option changes how a Prosody is configured or started.
type Option func(*settings)

// WithUser registers one more account (with prosodyctl, before Prosody
// starts). The host should use password authentication (AuthDomain).
func WithUser(user, host, pass string) Option {
	return func(s *settings) { s.users = append(s.users, account{user, host, pass}) }
}

// WithAdmin adds bare JIDs to the global admins list (in addition to the focus
// and bridge users). Admins own every MUC room and may create rooms.
func WithAdmin(jids ...string) Option {
	return func(s *settings) { s.admins = append(s.admins, jids...) }
}

// WithSmacksHibernation sets smacks_hibernation_time (XEP-0198 resumption
// window); whole seconds, at least 1.
func WithSmacksHibernation(d time.Duration) Option {
	return func(s *settings) { s.smacksHibernation = d }
}

// WithModules enables extra Prosody modules on every host (global
// modules_enabled), e.g. "http_openmetrics" or "muc_mam".
func WithModules(names ...string) Option {
	return func(s *settings) { s.enable = append(s.enable, names...) }
}

// WithoutModules disables modules everywhere: they are dropped from every
// modules_enabled list and added to modules_disabled (which also stops
// autoloaded ones such as "c2s" from loading), e.g. WithoutModules("smacks").
func WithoutModules(names ...string) Option {
	return func(s *settings) { s.disable = append(s.disable, names...) }
}

// WithComponentSecret sets the XEP-0114 secret of ComponentDomain.
func WithComponentSecret(secret string) Option {
	return func(s *settings) { s.componentSecret = secret }
}

// WithLogLevel sets the minimum level written to Prosody's log file
// ("debug", "info", "warn", "error"); "debug" logs every stanza.
func WithLogLevel(level string) Option {
	return func(s *settings) { s.logLevel = level }
}

// WithStartTimeout bounds how long starting (or restarting) may take until
// c2s answers. The default is 10 s.
func WithStartTimeout(d time.Duration) Option {
	return func(s *settings) { s.startTimeout = d }
}

// WithGlobalConfig appends raw Lua lines to the global section of the
// generated config (before the first VirtualHost), for settings no other
// option covers, e.g. `cross_domain_websocket = true`.
func WithGlobalConfig(lua string) Option {
	return func(s *settings) { s.extraGlobal = append(s.extraGlobal, lua) }
}

// ports are the loopback TCP ports one Prosody listens on.
type ports struct{ c2s, http, component int }

// renderConfig writes the Prosody configuration for base directory dir.
// The layout follows docs/prosody-and-clients.md#the-prosody-layout; the template is
// built in Go so that every value is Lua-quoted.
func renderConfig(dir string, p ports, s settings) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }

	global := without(dedupe(append(slices.Clone(defaultGlobalModules), s.enable...)), s.disable)
	disabled := dedupe(append(slices.Clone(defaultDisabledModules), s.disable...))
	meet := without(meetHostModules, s.disable)
	hibernation := int(s.smacksHibernation / time.Second)
	if hibernation < 1 {
		hibernation = 1
	}

	w("-- Generated by minifocus/testkit for one test Prosody; do not edit.")
	w("data_path = %s", luaString(dir+"/data"))
	w("pidfile = %s", luaString(dir+"/prosody.pid"))
	w("log = { { levels = { min = %s }, to = \"file\", filename = %s } }", luaString(s.logLevel), luaString(dir+"/prosody.log"))
	w("admins = %s", luaList(dedupe(s.admins)))
	w("")
	w(`interfaces = { "127.0.0.1" }`)
	w("c2s_ports = { %d }", p.c2s)
	w("c2s_direct_tls_ports = { }")
	w("s2s_ports = { }")
	w("component_ports = { %d }", p.component)
	w(`component_interfaces = { "127.0.0.1" }`)
	w("http_ports = { %d }", p.http)
	w(`http_interfaces = { "127.0.0.1" }`)
	w("https_ports = { }")
	w("http_default_host = %s", luaString(Domain))
	w("")
	w("c2s_require_encryption = false")
	w("allow_unencrypted_plain_auth = true")
	w("consider_bosh_secure = true")
	w("consider_websocket_secure = true")
	w("")
	w("modules_enabled = %s", luaList(global))
	w("modules_disabled = %s", luaList(disabled))
	w("smacks_hibernation_time = %d", hibernation)
	w(`storage = "internal"`)
	for _, extra := range s.extraGlobal {
		w("%s", extra)
	}
	if len(s.plugins) > 0 {
		w("plugin_paths = { %s }", luaString(dir+"/plugins"))
	}
	w("")
	w("VirtualHost %s", luaString(Domain))
	w("    authentication = %s", luaString(orAnonymous(s.mainAuth)))
	if s.mainAuth == "test_token" {
		w("    app_id = %s", luaString(TokenAppID))
		w("    app_secret = %s", luaString(TokenSecret))
	}
	mainModules := meet
	if s.jitsiComponents {
		mainModules = append(slices.Clone(meet), "test_jitsi_components")
	}
	w("    modules_enabled = %s", luaList(mainModules))
	w("    external_services = { }")
	if s.jitsiComponents {
		w("    test_jitsi_components = %s", luaList([]string{
			"av_moderation=" + AVModerationDomain, "room_metadata=" + MetadataDomain, "breakout_rooms=" + BreakoutMUCDomain}))
	}
	w("")
	if s.guestHost {
		w("VirtualHost %s", luaString(GuestDomain))
		w(`    authentication = "anonymous"`)
		w("    modules_enabled = %s", luaList(meet))
		w("")
	}
	writeMUC(w, MUCDomain, s.mucModules...)
	w("VirtualHost %s", luaString(AuthDomain))
	w(`    authentication = "internal_hashed"`)
	w("")
	writeMUC(w, InternalMUCDomain)
	if s.jitsiComponents {
		writeMUC(w, BreakoutMUCDomain, "test_breakout_rooms")
		w("    main_muc = %s", luaString(MUCDomain))
		w("")
	}
	for _, c := range []string{ComponentDomain, AVModerationDomain, MetadataDomain} {
		w("Component %s", luaString(c))
		w("    component_secret = %s", luaString(s.componentSecret))
	}
	return b.String()
}

func orAnonymous(auth string) string {
	if auth == "" {
		return "anonymous"
	}
	return auth
}

func writeMUC(w func(string, ...any), host string, modules ...string) {
	w("Component %s \"muc\"", luaString(host))
	if len(modules) > 0 {
		w("    modules_enabled = %s", luaList(modules))
	}
	w(`    storage = "memory"`)
	w("    restrict_room_creation = true")
	w("    muc_room_locking = false")
	w("    muc_room_default_public_jids = true")
	w("    muc_tombstones = false")
	w("")
}

// luaString quotes s as a Lua string literal. Lua strings are byte strings, so
// UTF-8 passes through; quotes, backslashes and control bytes are escaped.
func luaString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '\n':
			b.WriteString(`\n`)
		case c < 0x20 || c == 0x7f:
			fmt.Fprintf(&b, `\%03d`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func luaList(items []string) string {
	if len(items) == 0 {
		return "{ }"
	}
	quoted := make([]string, len(items))
	for i, it := range items {
		quoted[i] = luaString(it)
	}
	return "{ " + strings.Join(quoted, "; ") + " }"
}

func dedupe(items []string) []string {
	var out []string
	for _, it := range items {
		if !slices.Contains(out, it) {
			out = append(out, it)
		}
	}
	return out
}

func without(items, drop []string) []string {
	var out []string
	for _, it := range items {
		if !slices.Contains(drop, it) {
			out = append(out, it)
		}
	}
	return out
}
