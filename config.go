package main

// config.go: the one TOML file, its defaults, docker-jitsi-meet environment
// overrides, and validation that names every problem before anything connects.

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"mellium.im/xmpp/jid"
)

// Config is the whole configuration. Keys are kebab-case in TOML.
type Config struct {
	XMPP       XMPPConfig       `toml:"xmpp"`
	Bridges    BridgesConfig    `toml:"bridges"`
	Conference ConferenceConfig `toml:"conference"`
	Codec      CodecConfig      `toml:"codec"`
	Auth       AuthConfig       `toml:"auth"`
	Jibri      JibriConfig      `toml:"jibri"`
	Jigasi     JigasiConfig     `toml:"jigasi"`
	// Transcription is bridge-side (async) transcription.
	Transcription TranscriptionConfig `toml:"transcription"`
	HTTP          HTTPConfig          `toml:"http"`
	Log           LogConfig           `toml:"log"`
	// StateFile is where a stopping focus leaves its conferences for the
	// next process (handover.go). In the file "" is the default place and
	// "off" no handover; main resolves it, and a Main given "" (as tests
	// are) does no handover.
	StateFile string `toml:"state-file"`

	// Warnings are environment variables the container sets that minifocus
	// does not act on (logged once at start).
	Warnings []string `toml:"-"`
}

// XMPPConfig is the focus's client connection to Prosody.
type XMPPConfig struct {
	Server            string   `toml:"server"`
	Port              int      `toml:"port"`
	Domain            string   `toml:"domain"`
	AuthDomain        string   `toml:"auth-domain"`
	MUCDomain         string   `toml:"muc-domain"`
	InternalMUCDomain string   `toml:"internal-muc-domain"`
	Username          string   `toml:"username"`
	Password          string   `toml:"password"`
	Resource          string   `toml:"resource"`
	TLS               string   `toml:"tls"`
	TLSSkipVerify     bool     `toml:"tls-skip-verify"`
	ReplyTimeout      Duration `toml:"reply-timeout"`
	ClientProxy       string   `toml:"client-proxy"`
	PingInterval      Duration `toml:"ping-interval"`
	TrustedDomains    []string `toml:"trusted-domains"`
	// AVModerationComponent overrides discovery of Jitsi's av_moderation component.
	AVModerationComponent string `toml:"av-moderation-component"`
	// RoomMetadataComponent overrides discovery of Jitsi's room_metadata component.
	RoomMetadataComponent string `toml:"room-metadata-component"`
	// BreakoutMUCDomain overrides discovery of the breakout rooms' MUC domain.
	BreakoutMUCDomain string `toml:"breakout-muc-domain"`
	// Service is a second connection, for the bridges.
	Service ServiceXMPPConfig `toml:"service"`

	// ClientProxy (client-proxy) is the domain of Jitsi's mod_client_proxy
	// component: "focus.<domain>" unless set, "none" turns decoding off; read
	// it with ClientProxyDomain. ClientProxyDefaulted: filled in by default.
	ClientProxyDefaulted bool `toml:"-"`
}

// ServiceXMPPConfig is Jicofo's service connection: a second login, to the
// Prosody the bridges use when they have their own (docker's
// ENABLE_JVB_XMPP_SERVER). The brewery, Colibri2 and health checks go over
// it; empty username, password, TLS settings are the client connection's.
type ServiceXMPPConfig struct {
	Enabled           bool   `toml:"enabled"`
	Server            string `toml:"server"`
	Port              int    `toml:"port"`
	AuthDomain        string `toml:"auth-domain"`
	InternalMUCDomain string `toml:"internal-muc-domain"`
	Username          string `toml:"username"`
	Password          string `toml:"password"`
	TLS               string `toml:"tls"`
}

// BridgesConfig is how videobridges are found and chosen.
type BridgesConfig struct {
	Brewery                  string                   `toml:"brewery"`
	Strategy                 string                   `toml:"strategy"`
	StressThreshold          float64                  `toml:"stress-threshold"`
	MaxParticipantsPerBridge int                      `toml:"max-participants-per-bridge"`
	AverageParticipantStress float64                  `toml:"average-participant-stress"`
	RampUpInterval           Duration                 `toml:"rampup-interval"`
	HealthInterval           Duration                 `toml:"health-interval"`
	HealthChecks             bool                     `toml:"health-checks"`
	HealthUsePresence        bool                     `toml:"health-use-presence"`
	PresenceTimeout          Duration                 `toml:"presence-timeout"`
	FailureBench             Duration                 `toml:"failure-bench"`
	LocalRegion              string                   `toml:"local-region"`
	MoveOnGracefulShutdown   bool                     `toml:"move-on-graceful-shutdown"`
	ICEFailure               ICEFailureConfig         `toml:"ice-failure-detection"`
	LoadRedistribution       LoadRedistributionConfig `toml:"load-redistribution"`
	// RegionGroups are regions close enough to stand in for each other
	// (region strategy), e.g. [["eu-west-1", "eu-central-1"], ["us-east-1", "us-west-2"]].
	RegionGroups [][]string `toml:"region-groups"`
}

// LoadRedistributionConfig is Jicofo's bridge.load-redistribution:
// participants are moved off bridges that stay overloaded.
type LoadRedistributionConfig struct {
	Enabled         bool     `toml:"enabled"`
	Interval        Duration `toml:"interval"`
	Timeout         Duration `toml:"timeout"`
	StressThreshold float64  `toml:"stress-threshold"`
	Endpoints       int      `toml:"endpoints"`
}

// ICEFailureConfig is Jicofo's bridge.ice-failure-detection: a bridge whose
// clients keep restarting their sessions is avoided for a while.
type ICEFailureConfig struct {
	Enabled      bool     `toml:"enabled"`
	Interval     Duration `toml:"interval"`
	MinEndpoints int      `toml:"min-endpoints"`
	Threshold    float64  `toml:"threshold"`
	Timeout      Duration `toml:"timeout"`
}

// ConferenceConfig holds per-conference policy.
type ConferenceConfig struct {
	InitialTimeout           Duration `toml:"initial-timeout"`
	SingleParticipantTimeout Duration `toml:"single-participant-timeout"`
	MinParticipants          int      `toml:"min-participants"`
	MaxSSRCsPerUser          int      `toml:"max-ssrcs-per-user"`
	MaxSSRCGroupsPerUser     int      `toml:"max-ssrc-groups-per-user"`
	MaxAudioSenders          int      `toml:"max-audio-senders"`
	MaxVideoSenders          int      `toml:"max-video-senders"`
	StripSimulcast           bool     `toml:"strip-simulcast"`
	UseJSONSources           bool     `toml:"use-json-sources"`
	UseSSRCRewriting         bool     `toml:"use-ssrc-rewriting"`
	EnableAutoOwner          bool     `toml:"enable-auto-owner"`
	RestartMinInterval       Duration `toml:"restart-min-interval"`
	RestartMaxPerMinute      int      `toml:"restart-max-per-minute"`
	MaxConferenceRequests    int      `toml:"max-requests-per-minute"`
	ShutdownTimeout          Duration `toml:"shutdown-timeout"`
	// SourceSignalingDelays gathers source changes in big conferences.
	SourceSignalingDelays SignalingDelays `toml:"source-signaling-delays"`

	// MaxRequestsPerSecond limits conference requests from everyone
	// together (bursts of twice as many pass); MaxPendingJoins bounds the
	// conferences being started at once (burst.go).
	MaxRequestsPerSecond int `toml:"max-requests-per-second"`
	MaxPendingJoins      int `toml:"max-pending-joins"`
}

// CodecConfig chooses what goes into every offer.
type CodecConfig struct {
	VP8              bool `toml:"vp8"`
	VP9              bool `toml:"vp9"`
	AV1              bool `toml:"av1"`
	H264             bool `toml:"h264"`
	OpusRED          bool `toml:"opus-red"`
	TelephoneEvent   bool `toml:"telephone-event"`
	MIDExtension     bool `toml:"mid-extension"`
	ExtmapAllowMix   bool `toml:"extmap-allow-mixed"`
	AbsSendTime      bool `toml:"abs-send-time"`
	AV1DependencyDD  bool `toml:"av1-dependency-descriptor"`
	VideoLayersAlloc bool `toml:"video-layers-allocation"`
	SCTP             bool `toml:"sctp"`
}

// AuthConfig is Jicofo's authentication ("secure domain" or JWT).
type AuthConfig struct {
	Type        string   `toml:"type"`
	LoginDomain string   `toml:"login-domain"`
	Lifetime    Duration `toml:"lifetime"`
}

// JibriConfig is where recorders (Jibri) wait.
type JibriConfig struct {
	Brewery    string `toml:"brewery"`
	SIPBrewery string `toml:"sip-brewery"` // SIP video gateway Jibris
	// RequestRetries is how many other Jibris are tried after a failure.
	RequestRetries int `toml:"request-retries"`
	// PendingTimeout ends a session that never reports "on".
	PendingTimeout Duration `toml:"pending-timeout"`
}

// JigasiConfig is where SIP gateways and transcribers (Jigasi) wait.
type JigasiConfig struct {
	Brewery string `toml:"brewery"`
}

// TranscriptionConfig is Jicofo's jicofo.transcription: where bridges send
// a conference's audio when the room asks for async transcription.
type TranscriptionConfig struct {
	URLTemplate string `toml:"url-template"`
}

// HTTPConfig is the health/metrics/conference-request server, and the
// private one of the operator endpoints.
type HTTPConfig struct {
	Listen string `toml:"listen"`
	// PrivateListen serves the status page, /debug, /move-endpoints, /pin
	// and the profiler ("" turns them off; Listen's address puts them there).
	PrivateListen string `toml:"private-listen"`
	// TrustedProxies are the peers (CIDRs) whose X-Forwarded-For names the
	// sender of an HTTP conference request, for its rate limit.
	TrustedProxies []string `toml:"trusted-proxies"`
}

// LogConfig chooses what is logged and how.
type LogConfig struct {
	Level  string `toml:"level"`
	Format string `toml:"format"`
	XMPP   bool   `toml:"xmpp"`
}

// Duration is a time.Duration written as "15s" in TOML.
type Duration struct{ time.Duration }

// UnmarshalText parses "15s", "1m", "500ms".
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration (use e.g. \"15s\")", string(b))
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration back as text.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.Duration.String()), nil }

func dur(d time.Duration) Duration { return Duration{d} }

// SignalingDelays is Jicofo's source-signaling-delays: from a conference
// size on, source-add and source-remove to participants are gathered for a
// while and sent as one, so a hundred people joining do not make every
// browser renegotiate a hundred times. Sorted by size.
type SignalingDelays []SignalingDelay

// SignalingDelay applies to conferences of at least Size participants.
type SignalingDelay struct {
	Size  int
	Delay time.Duration
}

// maxSignalingDelay bounds a delay: sources held longer than this would
// leave people unseen and unheard.
const maxSignalingDelay = 10 * time.Second

// For is the delay for a conference of size participants (0: none).
func (d SignalingDelays) For(size int) time.Duration {
	var out time.Duration
	for _, e := range d {
		if size >= e.Size {
			out = e.Delay
		}
	}
	return out
}

// UnmarshalTOML reads { 50 = "500ms", 100 = "1s" }; plain numbers are
// milliseconds, as in jicofo.conf. The table replaces the default.
func (d *SignalingDelays) UnmarshalTOML(v any) error {
	m, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("conference.source-signaling-delays must be a table such as { 50 = \"500ms\", 100 = \"1s\" }")
	}
	out := SignalingDelays{}
	for k, val := range m {
		var s string
		switch x := val.(type) {
		case string:
			s = x
		case int64:
			s = strconv.FormatInt(x, 10)
		default:
			return fmt.Errorf("conference.source-signaling-delays: %s = %v is not a duration", k, val)
		}
		e, err := parseSignalingDelay(k, s)
		if err != nil {
			return err
		}
		out = append(out, e)
	}
	*d = out.sorted()
	return nil
}

// MarshalTOML writes the table back (for -check-config).
func (d SignalingDelays) MarshalTOML() ([]byte, error) {
	parts := make([]string, len(d))
	for i, e := range d {
		parts[i] = fmt.Sprintf("%d = %q", e.Size, e.Delay.String())
	}
	return []byte("{ " + strings.Join(parts, ", ") + " }"), nil
}

// ParseSignalingDelays reads docker-jitsi-meet's
// JICOFO_CONF_SOURCE_SIGNALING_DELAYS, a HOCON map such as
// "{ 50 = 500, 100 = 1000 }" (milliseconds; "50: 500" and durations also do).
func ParseSignalingDelays(s string) (SignalingDelays, error) {
	s = strings.TrimSpace(s)
	s = strings.TrimSuffix(strings.TrimPrefix(s, "{"), "}")
	out := SignalingDelays{}
	for _, item := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' || r == ';' }) {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		k, v, ok := strings.Cut(item, "=")
		if !ok {
			k, v, ok = strings.Cut(item, ":")
		}
		if !ok {
			return nil, fmt.Errorf("%q is not SIZE = MILLISECONDS", item)
		}
		e, err := parseSignalingDelay(strings.Trim(strings.TrimSpace(k), `"`), strings.Trim(strings.TrimSpace(v), `"`))
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out.sorted(), nil
}

// ParseRegionGroups reads docker-jitsi-meet's JICOFO_BRIDGE_REGION_GROUPS,
// HOCON lists such as `["eu-west-1","eu-central-1"],["us-east-1","us-west-2"]`
// (an enclosing pair of brackets is allowed).
func ParseRegionGroups(s string) ([][]string, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "[[") && strings.HasSuffix(s, "]]") {
		s = s[1 : len(s)-1]
	}
	var out [][]string
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimLeft(strings.TrimSpace(s), ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			break
		}
		end := strings.IndexByte(s, ']')
		if !strings.HasPrefix(s, "[") || end < 0 {
			return nil, fmt.Errorf("%q is not a list of [\"region\", ...] groups", s)
		}
		var g []string
		for _, r := range strings.Split(s[1:end], ",") {
			if r = strings.Trim(strings.TrimSpace(r), `"`); r != "" {
				g = append(g, r)
			}
		}
		out = append(out, g)
		s = s[end+1:]
	}
	return out, nil
}

func parseSignalingDelay(size, delay string) (SignalingDelay, error) {
	n, err := strconv.Atoi(size)
	if err != nil || n < 0 {
		return SignalingDelay{}, fmt.Errorf("conference.source-signaling-delays: %q is not a conference size", size)
	}
	d, err := time.ParseDuration(delay)
	if err != nil {
		ms, err2 := strconv.Atoi(delay)
		if err2 != nil {
			return SignalingDelay{}, fmt.Errorf("conference.source-signaling-delays: %q is not a duration (use \"500ms\" or milliseconds)", delay)
		}
		d = time.Duration(ms) * time.Millisecond
	}
	if d < 0 || d > maxSignalingDelay {
		return SignalingDelay{}, fmt.Errorf("conference.source-signaling-delays: %s for %d participants must be between 0 and %s", d, n, maxSignalingDelay)
	}
	return SignalingDelay{Size: n, Delay: d}, nil
}

func (d SignalingDelays) sorted() SignalingDelays {
	sort.Slice(d, func(i, j int) bool { return d[i].Size < d[j].Size })
	return d
}

// DefaultConfig follows a standard Debian Jitsi Meet install: only the domain
// and the focus password differ from one deployment to the next.
func DefaultConfig() Config {
	return Config{
		XMPP: XMPPConfig{
			Server:       "localhost",
			Port:         5222,
			Username:     "focus",
			Resource:     "focus",
			TLS:          "optional",
			ReplyTimeout: dur(15 * time.Second),
			PingInterval: dur(10 * time.Second),
		},
		Bridges: BridgesConfig{
			Strategy:                 "least-load",
			StressThreshold:          0.8,
			MaxParticipantsPerBridge: 80,
			AverageParticipantStress: 0.01,
			RampUpInterval:           dur(20 * time.Second),
			HealthInterval:           dur(10 * time.Second),
			HealthChecks:             true,
			PresenceTimeout:          dur(45 * time.Second),
			FailureBench:             dur(60 * time.Second),
			LoadRedistribution: LoadRedistributionConfig{
				Interval: dur(time.Minute), Timeout: dur(3 * time.Minute), StressThreshold: 0.9, Endpoints: 10,
			},
			ICEFailure: ICEFailureConfig{
				Interval: dur(2 * time.Minute), MinEndpoints: 30, Threshold: 0.1, Timeout: dur(10 * time.Minute),
			},
		},
		Conference: ConferenceConfig{
			InitialTimeout:           dur(15 * time.Second),
			SingleParticipantTimeout: dur(20 * time.Second),
			MinParticipants:          2,
			MaxSSRCsPerUser:          20,
			MaxSSRCGroupsPerUser:     20,
			MaxAudioSenders:          999999,
			MaxVideoSenders:          999999,
			StripSimulcast:           true,
			UseJSONSources:           true,
			UseSSRCRewriting:         true,
			EnableAutoOwner:          true,
			RestartMinInterval:       dur(5 * time.Second),
			RestartMaxPerMinute:      5,
			MaxConferenceRequests:    120,
			MaxRequestsPerSecond:     100,
			MaxPendingJoins:          100,
			ShutdownTimeout:          dur(10 * time.Second),
			SourceSignalingDelays:    SignalingDelays{{50, 500 * time.Millisecond}, {100, time.Second}},
		},
		Codec: CodecConfig{
			VP8: true, VP9: true, AV1: true, H264: true,
			TelephoneEvent: true, MIDExtension: true, ExtmapAllowMix: true,
			AbsSendTime: true, AV1DependencyDD: true, SCTP: true,
		},
		Auth:  AuthConfig{Type: "none", Lifetime: dur(24 * time.Hour)},
		Jibri: JibriConfig{RequestRetries: 5, PendingTimeout: dur(90 * time.Second)},
		HTTP:  HTTPConfig{Listen: "127.0.0.1:8888", PrivateListen: "127.0.0.1:8889", TrustedProxies: slices.Clone(defaultTrustedProxies)},
		Log:   LogConfig{Level: "info", Format: "text"},
	}
}

// envVar maps a docker-jitsi-meet variable onto a config key. dockerDefault
// is that project's default, used only when neither the file nor the
// environment sets the key and the container environment is in use.
type envVar struct {
	Name, Key, DockerDefault string
}

// envVars is the table the README documents, in the same order.
var envVars = []envVar{
	{"JICOFO_AUTH_PASSWORD", "xmpp.password", ""},
	{"XMPP_SERVER", "xmpp.server", "xmpp.meet.jitsi"},
	{"XMPP_PORT", "xmpp.port", "5222"},
	{"XMPP_DOMAIN", "xmpp.domain", "meet.jitsi"},
	{"XMPP_AUTH_DOMAIN", "xmpp.auth-domain", "auth.meet.jitsi"},
	{"XMPP_MUC_DOMAIN", "xmpp.muc-domain", "muc.meet.jitsi"},
	{"XMPP_INTERNAL_MUC_DOMAIN", "xmpp.internal-muc-domain", "internal-muc.meet.jitsi"},
	{"JVB_BREWERY_MUC", "bridges.brewery", "jvbbrewery"},
	{"MINIFOCUS_HTTP_LISTEN", "http.listen", ""},
	{"MINIFOCUS_HTTP_PRIVATE_LISTEN", "http.private-listen", ""},
}

// ConfigError lists every problem found, one per line.
type ConfigError struct{ Problems []string }

func (e *ConfigError) Error() string {
	return "invalid configuration:\n  " + strings.Join(e.Problems, "\n  ")
}

// LoadConfig reads path (may be "" for environment only), applies the
// environment and derived defaults, and validates the result.
func LoadConfig(path string, getenv func(string) string) (Config, error) {
	cfg := DefaultConfig()
	var problems []string
	defined := map[string]bool{}
	if path != "" {
		md, err := toml.DecodeFile(path, &cfg)
		if err != nil {
			var perr toml.ParseError
			if errors.As(err, &perr) {
				// Our own one line: the library's ErrorWithPosition panics on
				// some malformed files (a lone `"\` at the end, found by fuzzing).
				return cfg, &ConfigError{[]string{fmt.Sprintf("%s: line %d, column %d: %s", path, max(perr.Position.Line, 1), max(perr.Position.Col, 1), perr.Message)}}
			}
			return cfg, &ConfigError{[]string{fmt.Sprintf("%s: %v", path, err)}}
		}
		for _, k := range md.Undecoded() {
			problems = append(problems, fmt.Sprintf("%s: unknown key %q (check the spelling against config.toml.example)", path, k.String()))
		}
		for _, k := range md.Keys() {
			defined[k.String()] = true
		}
	}
	problems = append(problems, applyEnv(&cfg, getenv, defined)...)
	problems = append(problems, applyDockerExtras(&cfg, getenv)...)
	cfg.deriveDefaults()
	applyDockerAuth(&cfg, getenv)
	problems = append(problems, cfg.validate()...)
	if len(problems) > 0 {
		return cfg, &ConfigError{problems}
	}
	return cfg, nil
}

func applyEnv(cfg *Config, getenv func(string) string, defined map[string]bool) []string {
	var problems []string
	docker := false
	for _, v := range envVars {
		if getenv(v.Name) != "" && v.DockerDefault != "" || v.Name == "JICOFO_AUTH_PASSWORD" && getenv(v.Name) != "" {
			docker = true
		}
	}
	for _, v := range envVars {
		val := getenv(v.Name)
		if val == "" {
			if !docker || defined[v.Key] || v.DockerDefault == "" {
				continue
			}
			val = v.DockerDefault
		}
		switch v.Key {
		case "xmpp.password":
			cfg.XMPP.Password = val
		case "xmpp.server":
			cfg.XMPP.Server = val
		case "xmpp.port":
			p, err := strconv.Atoi(val)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s (xmpp.port): %q is not a number", v.Name, val))
				continue
			}
			cfg.XMPP.Port = p
		case "xmpp.domain":
			cfg.XMPP.Domain = val
		case "xmpp.auth-domain":
			cfg.XMPP.AuthDomain = val
		case "xmpp.muc-domain":
			cfg.XMPP.MUCDomain = val
		case "xmpp.internal-muc-domain":
			cfg.XMPP.InternalMUCDomain = val
		case "http.listen":
			cfg.HTTP.Listen = val
		case "http.private-listen":
			cfg.HTTP.PrivateListen = val
		case "bridges.brewery":
			// docker names only the room; the domain is the internal MUC.
			cfg.Bridges.Brewery = val
		}
	}
	return problems
}

// deriveDefaults fills keys whose default depends on the domain.
func (c *Config) deriveDefaults() {
	x := &c.XMPP
	if x.Domain == "" {
		return
	}
	if x.AuthDomain == "" {
		x.AuthDomain = "auth." + x.Domain
	}
	if x.MUCDomain == "" {
		x.MUCDomain = "conference." + x.Domain
	}
	if x.InternalMUCDomain == "" {
		x.InternalMUCDomain = "internal." + x.AuthDomain
	}
	if c.Bridges.Brewery == "" {
		c.Bridges.Brewery = "jvbbrewery"
	}
	if x.ClientProxy == "" {
		// Both of Jitsi's installers configure Jicofo with client-proxy =
		// focus.<domain>, and lib-jitsi-meet sends its conference request
		// there by default.
		x.ClientProxy = "focus." + x.Domain
		x.ClientProxyDefaulted = true
	}
	svc := &x.Service
	if svc.Enabled {
		svc.Username = orDefault(svc.Username, x.Username)
		svc.Password = orDefault(svc.Password, x.Password)
		svc.TLS = orDefault(svc.TLS, x.TLS)
		if svc.Port == 0 {
			svc.Port = 6222
		}
	}
	if !strings.Contains(c.Bridges.Brewery, "@") {
		if svc.Enabled && svc.InternalMUCDomain != "" {
			c.Bridges.Brewery += "@" + svc.InternalMUCDomain
		} else {
			c.Bridges.Brewery += "@" + x.InternalMUCDomain
		}
	}
	if c.Jibri.Brewery != "" && !strings.Contains(c.Jibri.Brewery, "@") {
		c.Jibri.Brewery += "@" + x.InternalMUCDomain
	}
	if c.Jibri.SIPBrewery != "" && !strings.Contains(c.Jibri.SIPBrewery, "@") {
		c.Jibri.SIPBrewery += "@" + x.InternalMUCDomain
	}
	if c.Jigasi.Brewery != "" && !strings.Contains(c.Jigasi.Brewery, "@") {
		c.Jigasi.Brewery += "@" + x.InternalMUCDomain
	}
}

func (c *Config) validate() []string {
	var p []string
	add := func(key, env, format string, args ...any) {
		name := key
		if env != "" {
			name += " (env " + env + ")"
		}
		p = append(p, name+": "+fmt.Sprintf(format, args...))
	}
	x := c.XMPP
	if x.Domain == "" {
		add("xmpp.domain", "XMPP_DOMAIN", "missing; set the XMPP domain of the deployment, e.g. \"meet.example.com\"")
	} else {
		for _, d := range []struct{ key, env, val string }{
			{"xmpp.domain", "XMPP_DOMAIN", x.Domain},
			{"xmpp.auth-domain", "XMPP_AUTH_DOMAIN", x.AuthDomain},
			{"xmpp.muc-domain", "XMPP_MUC_DOMAIN", x.MUCDomain},
			{"xmpp.internal-muc-domain", "XMPP_INTERNAL_MUC_DOMAIN", x.InternalMUCDomain},
		} {
			if err := checkDomain(d.val); err != nil {
				add(d.key, d.env, "%q is not a valid domain: %v", d.val, err)
			}
		}
		if j, err := jid.Parse(c.Bridges.Brewery); err != nil || j.Localpart() == "" || j.Resourcepart() != "" {
			add("bridges.brewery", "JVB_BREWERY_MUC", "%q is not a bare room JID like \"jvbbrewery@internal.auth.meet.example.com\"", c.Bridges.Brewery)
		}
	}
	if x.Password == "" {
		add("xmpp.password", "JICOFO_AUTH_PASSWORD", "missing; the focus logs in as %s@%s and needs its password", x.Username, orDefault(x.AuthDomain, "auth.<domain>"))
	}
	if x.Server == "" {
		add("xmpp.server", "XMPP_SERVER", "missing; the host name or address of Prosody")
	}
	if x.Port < 1 || x.Port > 65535 {
		add("xmpp.port", "XMPP_PORT", "%d is out of range (1-65535)", x.Port)
	}
	if x.Username == "" || strings.ContainsAny(x.Username, "@/ \"&'<>:") {
		add("xmpp.username", "", "%q is not a valid user name", x.Username)
	}
	if x.Resource == "" || strings.ContainsAny(x.Resource, "/ ") {
		add("xmpp.resource", "", "%q is not a valid resource", x.Resource)
	}
	switch x.TLS {
	case "required", "optional", "off":
	default:
		add("xmpp.tls", "", "%q must be one of required, optional, off", x.TLS)
	}
	if x.ReplyTimeout.Duration < 100*time.Millisecond || x.ReplyTimeout.Duration > 5*time.Minute {
		add("xmpp.reply-timeout", "", "%s must be between 100ms and 5m", x.ReplyTimeout.Duration)
	}
	if x.PingInterval.Duration < time.Second {
		add("xmpp.ping-interval", "", "%s must be at least 1s", x.PingInterval.Duration)
	}
	if p := x.ClientProxyDomain(); p != "" {
		if err := checkDomain(p); err != nil {
			add("xmpp.client-proxy", "", "%q is not a valid domain (or \"none\" to turn client_proxy decoding off): %v", x.ClientProxy, err)
		} else if strings.EqualFold(p, x.Domain) || strings.EqualFold(p, x.AuthDomain) || strings.EqualFold(p, x.MUCDomain) {
			add("xmpp.client-proxy", "", "%q is a domain of users or rooms, not the client_proxy component (usually focus.%s)", x.ClientProxy, x.Domain)
		}
	}
	b := c.Bridges
	switch b.Strategy {
	case "least-load", "round-robin", "region", "single":
	default:
		add("bridges.strategy", "", "%q must be one of least-load, round-robin, region, single", b.Strategy)
	}
	if b.StressThreshold <= 0 || b.StressThreshold > 10 {
		add("bridges.stress-threshold", "", "%v must be above 0 (0.8 is usual)", b.StressThreshold)
	}
	if b.MaxParticipantsPerBridge < 1 {
		add("bridges.max-participants-per-bridge", "", "%d must be at least 1", b.MaxParticipantsPerBridge)
	}
	seen := map[string]bool{}
	for _, g := range b.RegionGroups {
		for _, r := range g {
			if r == "" || seen[r] {
				add("bridges.region-groups", "JICOFO_BRIDGE_REGION_GROUPS", "region %q is empty or in more than one group", r)
			}
			seen[r] = true
		}
	}
	if f := b.ICEFailure; f.Interval.Duration <= 0 || f.Timeout.Duration <= 0 || f.Threshold <= 0 || f.MinEndpoints < 0 {
		add("bridges.ice-failure-detection", "", "interval and timeout must be positive, threshold above 0 (0.1: one restart per ten endpoints), min-endpoints at least 0")
	}
	if l := b.LoadRedistribution; l.Interval.Duration < 100*time.Millisecond || l.Timeout.Duration < 0 || l.StressThreshold <= 0 || l.Endpoints < 1 {
		add("bridges.load-redistribution", "", "interval must be at least 100ms, timeout at least 0, stress-threshold above 0 and endpoints at least 1")
	}
	if b.HealthInterval.Duration < 100*time.Millisecond {
		add("bridges.health-interval", "", "%s must be at least 100ms", b.HealthInterval.Duration)
	}
	cc := c.Conference
	if cc.MinParticipants < 1 {
		add("conference.min-participants", "", "%d must be at least 1", cc.MinParticipants)
	}
	if cc.MaxSSRCsPerUser < 1 || cc.MaxSSRCGroupsPerUser < 0 {
		add("conference.max-ssrcs-per-user", "", "limits must be positive")
	}
	if cc.MaxConferenceRequests < 0 || cc.MaxRequestsPerSecond < 0 || cc.MaxPendingJoins < 0 {
		add("conference.max-requests-per-second", "", "request limits must be at least 0 (0: no limit)")
	}
	if cc.InitialTimeout.Duration <= 0 || cc.SingleParticipantTimeout.Duration <= 0 {
		add("conference.initial-timeout", "", "timeouts must be positive")
	}
	if c.Jibri.RequestRetries < 0 || c.Jibri.PendingTimeout.Duration <= 0 {
		add("jibri.request-retries", "JIBRI_REQUEST_RETRIES", "retries must be at least 0 and the pending timeout positive")
	}
	if s := c.XMPP.Service; s.Enabled && (s.Server == "" || s.AuthDomain == "" || s.Port < 1 || s.Port > 65535) {
		add("xmpp.service", "ENABLE_JVB_XMPP_SERVER", "the bridges' connection needs server, auth-domain and a port (1-65535)")
	}
	if u := c.Transcription.URLTemplate; u != "" && !strings.HasPrefix(u, "ws://") && !strings.HasPrefix(u, "wss://") {
		add("transcription.url-template", "", "%q must be a ws:// or wss:// URL", u)
	}
	if _, _, err := net.SplitHostPort(c.HTTP.Listen); err != nil && c.HTTP.Listen != "" {
		add("http.listen", "", "%q is not host:port (%v)", c.HTTP.Listen, err)
	}
	if _, _, err := net.SplitHostPort(c.HTTP.PrivateListen); err != nil && c.HTTP.PrivateListen != "" {
		add("http.private-listen", "MINIFOCUS_HTTP_PRIVATE_LISTEN", "%q is not host:port (%v)", c.HTTP.PrivateListen, err)
	}
	for _, p := range c.HTTP.TrustedProxies {
		if _, err := parseCIDROrIP(p); err != nil {
			add("http.trusted-proxies", "", "%q is not an address or CIDR (%v)", p, err)
		}
	}

	switch c.Auth.Type {
	case "none", "xmpp", "jwt":
		if c.Auth.Type != "none" && c.Auth.LoginDomain == "" {
			add("auth.login-domain", "", "missing; the domain whose users are authenticated (e.g. %q)", orDefault(c.XMPP.Domain, "meet.example.com"))
		}
	default:
		add("auth.type", "AUTH_TYPE", "%q must be one of none, xmpp, jwt", c.Auth.Type)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		add("log.level", "", "%q must be one of debug, info, warn, error", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		add("log.format", "", "%q must be text or json", c.Log.Format)
	}
	return p
}

// orDefault is s, or d when s is empty.
func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// checkDomain accepts host names as Prosody does (letters, digits, '-', '.', '_').
func checkDomain(d string) error {
	if d == "" {
		return errors.New("empty")
	}
	if len(d) > 253 {
		return errors.New("longer than 253 characters")
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" {
			return errors.New("empty label")
		}
		for _, r := range label {
			if !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
				return fmt.Errorf("character %q not allowed", r)
			}
		}
	}
	return nil
}

// Redacted renders the effective config as TOML with secrets hidden.
func (c Config) Redacted() string {
	cp := c
	if cp.XMPP.Password != "" {
		cp.XMPP.Password = "<redacted>"
	}
	if cp.XMPP.Service.Password != "" {
		cp.XMPP.Service.Password = "<redacted>"
	}
	var b strings.Builder
	if err := toml.NewEncoder(&b).Encode(cp); err != nil {
		return "error: " + err.Error()
	}
	return b.String()
}

// CheckReport is what -check-config prints for a valid configuration: the
// effective settings (secrets hidden) and the notes on defaults that matter.
func (c Config) CheckReport() string {
	return c.Redacted() + "# " + c.XMPP.ClientProxyNote() + "\n# configuration OK\n"
}

// clientProxyOff is the xmpp.client-proxy value that turns decoding off.
const clientProxyOff = "none"

// ClientProxyDomain is the domain whose conference requests carry the real
// sender in the resource (Jitsi's mod_client_proxy), or "" when off.
func (x XMPPConfig) ClientProxyDomain() string {
	if strings.EqualFold(x.ClientProxy, clientProxyOff) {
		return ""
	}
	return x.ClientProxy
}

// ClientProxyNote says which client-proxy setting is in effect and why, for
// -check-config and doctor.
func (x XMPPConfig) ClientProxyNote() string {
	switch {
	case x.ClientProxyDomain() == "":
		return fmt.Sprintf("xmpp.client-proxy = %q: off; every conference request is taken as coming from its from address (clients must address the focus's full JID or use HTTP)", x.ClientProxy)
	case x.ClientProxyDefaulted:
		return fmt.Sprintf("xmpp.client-proxy = %q (the default, as Jitsi's installers configure Jicofo): requests from it are attributed to the sender it names; %q turns this off", x.ClientProxy, clientProxyOff)
	default:
		return fmt.Sprintf("xmpp.client-proxy = %q (set): requests from it are attributed to the sender it names", x.ClientProxy)
	}
}

// FocusJID is the bare JID the focus logs in as, advertised to clients.
func (c Config) FocusJID() string { return c.XMPP.Username + "@" + c.XMPP.AuthDomain }

// dockerExtra is one more variable of docker-jitsi-meet's jicofo service:
// either applied to a key, or named as ignored with the reason.
type dockerExtra struct {
	Name    string
	Key     string // the TOML key it sets, for messages and the README
	apply   func(c *Config, v string) error
	Ignored string // why minifocus does not act on it
}

var envDurationUnits = map[string]time.Duration{
	"": time.Second, "s": time.Second, "sec": time.Second, "second": time.Second, "seconds": time.Second,
	"ms": time.Millisecond, "millis": time.Millisecond, "millisecond": time.Millisecond, "milliseconds": time.Millisecond,
	"m": time.Minute, "min": time.Minute, "minute": time.Minute, "minutes": time.Minute,
	"h": time.Hour, "hour": time.Hour, "hours": time.Hour,
}

// envDuration reads a duration as docker-jitsi-meet's variables write them:
// "15s" (Go), "15 seconds" or "1 minute" (HOCON), or a bare number of seconds.
func envDuration(v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return d, nil
	}
	num, unit, _ := strings.Cut(v, " ")
	n, err := strconv.Atoi(strings.TrimSpace(num))
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a duration (use e.g. \"15s\" or \"15 seconds\")", v)
	}
	if d, ok := envDurationUnits[strings.ToLower(strings.TrimSpace(unit))]; ok {
		return time.Duration(n) * d, nil
	}
	return 0, fmt.Errorf("%q is not a duration (use e.g. \"15s\" or \"15 seconds\")", v)
}

func envBool(v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "true", "yes", "on":
		return true, nil
	case "0", "false", "no", "off", "":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a boolean (use 1 or 0)", v)
}

func setBool(p *bool) func(*Config, string) error {
	return func(_ *Config, v string) error {
		b, err := envBool(v)
		*p = b
		return err
	}
}

// dockerExtras is the rest of the jicofo service's environment that the
// image understands (the table in the README lists it).
func dockerExtras(c *Config) []dockerExtra {
	intKey := func(p *int) func(*Config, string) error {
		return func(_ *Config, v string) error {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				return fmt.Errorf("%q is not a number", v)
			}
			*p = n
			return nil
		}
	}
	floatKey := func(p *float64) func(*Config, string) error {
		return func(_ *Config, v string) error {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return fmt.Errorf("%q is not a number", v)
			}
			*p = f
			return nil
		}
	}
	durationKey := func(p *Duration) func(*Config, string) error {
		return func(_ *Config, v string) error {
			d, err := envDuration(v)
			if err != nil {
				return err
			}
			*p = dur(d)
			return nil
		}
	}
	secondsKey := func(p *Duration) func(*Config, string) error {
		return func(_ *Config, v string) error {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || n <= 0 {
				return fmt.Errorf("%q is not a number of seconds", v)
			}
			*p = dur(time.Duration(n) * time.Second)
			return nil
		}
	}
	return []dockerExtra{
		{Name: "MAX_BRIDGE_PARTICIPANTS", Key: "bridges.max-participants-per-bridge", apply: intKey(&c.Bridges.MaxParticipantsPerBridge)},
		{Name: "BRIDGE_STRESS_THRESHOLD", Key: "bridges.stress-threshold", apply: floatKey(&c.Bridges.StressThreshold)},
		{Name: "BRIDGE_AVG_PARTICIPANT_STRESS", Key: "bridges.average-participant-stress", apply: floatKey(&c.Bridges.AverageParticipantStress)},
		{Name: "JICOFO_ENABLE_BRIDGE_HEALTH_CHECKS", Key: "bridges.health-checks", apply: setBool(&c.Bridges.HealthChecks)},
		{Name: "JICOFO_HEALTH_CHECKS_USE_PRESENCE", Key: "bridges.health-use-presence", apply: setBool(&c.Bridges.HealthUsePresence)},
		{Name: "JICOFO_OCTO_REGION", Key: "bridges.local-region", apply: func(c *Config, v string) error { c.Bridges.LocalRegion = v; return nil }},
		{Name: "OCTO_BRIDGE_SELECTION_STRATEGY", Key: "bridges.strategy", apply: func(c *Config, v string) error {
			switch v {
			case "SingleBridgeSelectionStrategy":
				c.Bridges.Strategy = "single"
			case "RegionBasedBridgeSelectionStrategy", "IntraRegionBridgeSelectionStrategy":
				c.Bridges.Strategy = "region"
			case "SplitBridgeSelectionStrategy":
				c.Bridges.Strategy = "round-robin"
			default:
				return fmt.Errorf("%q is not a strategy minifocus knows", v)
			}
			return nil
		}},
		{Name: "ENABLE_CODEC_VP8", Key: "codec.vp8", apply: setBool(&c.Codec.VP8)},
		{Name: "ENABLE_CODEC_VP9", Key: "codec.vp9", apply: setBool(&c.Codec.VP9)},
		{Name: "ENABLE_CODEC_AV1", Key: "codec.av1", apply: setBool(&c.Codec.AV1)},
		{Name: "ENABLE_CODEC_H264", Key: "codec.h264", apply: setBool(&c.Codec.H264)},
		{Name: "ENABLE_CODEC_OPUS_RED", Key: "codec.opus-red", apply: setBool(&c.Codec.OpusRED)},
		{Name: "JICOFO_ENABLE_MID", Key: "codec.mid-extension", apply: setBool(&c.Codec.MIDExtension)},
		{Name: "ENABLE_VLA", Key: "codec.video-layers-allocation", apply: setBool(&c.Codec.VideoLayersAlloc)},
		{Name: "MAX_SSRCS_PER_USER", Key: "conference.max-ssrcs-per-user", apply: intKey(&c.Conference.MaxSSRCsPerUser)},
		{Name: "MAX_SSRC_GROUPS_PER_USER", Key: "conference.max-ssrc-groups-per-user", apply: intKey(&c.Conference.MaxSSRCGroupsPerUser)},
		{Name: "ENABLE_AUTO_OWNER", Key: "conference.enable-auto-owner", apply: setBool(&c.Conference.EnableAutoOwner)},
		{Name: "JICOFO_CONF_MAX_AUDIO_SENDERS", Key: "conference.max-audio-senders", apply: intKey(&c.Conference.MaxAudioSenders)},
		{Name: "JICOFO_CONF_MAX_VIDEO_SENDERS", Key: "conference.max-video-senders", apply: intKey(&c.Conference.MaxVideoSenders)},
		{Name: "JICOFO_CONF_STRIP_SIMULCAST", Key: "conference.strip-simulcast", apply: setBool(&c.Conference.StripSimulcast)},
		{Name: "JICOFO_CONF_SOURCE_SIGNALING_DELAYS", Key: "conference.source-signaling-delays", apply: func(c *Config, v string) error {
			d, err := ParseSignalingDelays(v)
			if err == nil {
				c.Conference.SourceSignalingDelays = d
			}
			return err
		}},
		{Name: "JICOFO_RESTART_REQUEST_MAX", Key: "conference.restart-max-per-minute", apply: intKey(&c.Conference.RestartMaxPerMinute)},
		{Name: "JICOFO_ENABLE_REST", Key: "http.listen", apply: func(c *Config, v string) error {
			on, err := envBool(v)
			if on {
				c.HTTP.Listen = "0.0.0.0:8888"
			}
			return err
		}},
		{Name: "JICOFO_ENABLE_HEALTH_CHECKS", Key: "(always on)", apply: func(*Config, string) error { return nil }},
		{Name: "ENABLE_AUTH", Key: "auth.type", apply: enableAuth},
		{Name: "JICOFO_ENABLE_AUTH", Key: "auth.type", apply: enableAuth},
		{Name: "ENABLE_RECORDING", Key: "jibri.brewery", apply: func(c *Config, v string) error {
			on, err := envBool(v)
			if on && c.Jibri.Brewery == "" {
				c.Jibri.Brewery = "jibribrewery"
			}
			return err
		}},
		{Name: "JIBRI_BREWERY_MUC", Key: "jibri.brewery", apply: func(c *Config, v string) error { c.Jibri.Brewery = v; return nil }},
		{Name: "JIBRI_SIP_BREWERY_MUC", Key: "jibri.sip-brewery", apply: func(c *Config, v string) error { c.Jibri.SIPBrewery = v; return nil }},
		{Name: "JIGASI_BREWERY_MUC", Key: "jigasi.brewery", apply: func(c *Config, v string) error { c.Jigasi.Brewery = v; return nil }},
		{Name: "JIGASI_SIP_URI", Key: "jigasi.brewery", apply: enableJigasi},
		{Name: "ENABLE_TRANSCRIPTIONS", Key: "jigasi.brewery", apply: enableJigasi},
		{Name: "ENABLE_VISITORS", Ignored: "visitors are not implemented yet"},
		{Name: "ENABLE_JVB_XMPP_SERVER", Key: "xmpp.service.enabled", apply: func(c *Config, v string) error {
			on, err := envBool(v)
			if on {
				s := &c.XMPP.Service
				s.Enabled = true
				s.Server = orDefault(s.Server, "xmpp.jvb.meet.jitsi")
				s.AuthDomain = orDefault(s.AuthDomain, "auth.jvb.meet.jitsi")
				s.InternalMUCDomain = orDefault(s.InternalMUCDomain, "muc.jvb.meet.jitsi")
			}
			return err
		}},
		{Name: "JVB_XMPP_SERVER", Key: "xmpp.service.server", apply: func(c *Config, v string) error { c.XMPP.Service.Server = v; return nil }},
		{Name: "JVB_XMPP_PORT", Key: "xmpp.service.port", apply: intKey(&c.XMPP.Service.Port)},
		{Name: "JVB_XMPP_AUTH_DOMAIN", Key: "xmpp.service.auth-domain", apply: func(c *Config, v string) error { c.XMPP.Service.AuthDomain = v; return nil }},
		{Name: "JVB_XMPP_INTERNAL_MUC_DOMAIN", Key: "xmpp.service.internal-muc-domain", apply: func(c *Config, v string) error { c.XMPP.Service.InternalMUCDomain = v; return nil }},
		{Name: "ENABLE_OCTO", Key: "(bridges are cascaded whenever a conference spans several)", apply: func(*Config, string) error { return nil }},
		{Name: "JICOFO_ENABLE_ICE_FAILURE_DETECTION", Key: "bridges.ice-failure-detection.enabled", apply: func(c *Config, v string) error {
			on, err := envBool(v)
			if on {
				// docker-jitsi-meet's defaults, unless the variables below say otherwise.
				f := &c.Bridges.ICEFailure
				f.Enabled, f.Interval, f.MinEndpoints = true, dur(time.Minute), 40
			}
			return err
		}},
		{Name: "JICOFO_ICE_FAILURE_INTERVAL", Key: "bridges.ice-failure-detection.interval", apply: secondsKey(&c.Bridges.ICEFailure.Interval)},
		{Name: "JICOFO_ICE_FAILURE_MIN_ENDPOINTS", Key: "bridges.ice-failure-detection.min-endpoints", apply: intKey(&c.Bridges.ICEFailure.MinEndpoints)},
		{Name: "JICOFO_ICE_FAILURE_THRESHOLD", Key: "bridges.ice-failure-detection.threshold", apply: floatKey(&c.Bridges.ICEFailure.Threshold)},
		{Name: "JICOFO_CONF_INITIAL_PARTICIPANT_WAIT_TIMEOUT", Key: "conference.initial-timeout", apply: durationKey(&c.Conference.InitialTimeout)},
		{Name: "JICOFO_CONF_SINGLE_PARTICIPANT_TIMEOUT", Key: "conference.single-participant-timeout", apply: durationKey(&c.Conference.SingleParticipantTimeout)},
		{Name: "JICOFO_CONF_SSRC_REWRITING", Key: "conference.use-ssrc-rewriting", apply: setBool(&c.Conference.UseSSRCRewriting)},
		{Name: "JICOFO_AUTH_LIFETIME", Key: "auth.lifetime", apply: durationKey(&c.Auth.Lifetime)},
		{Name: "JICOFO_TRUSTED_DOMAINS", Key: "xmpp.trusted-domains", apply: func(c *Config, v string) error {
			c.XMPP.TrustedDomains = nil
			for _, d := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' }) {
				c.XMPP.TrustedDomains = append(c.XMPP.TrustedDomains, strings.Trim(d, `"[]`))
			}
			return nil
		}},
		{Name: "JIBRI_REQUEST_RETRIES", Key: "jibri.request-retries", apply: intKey(&c.Jibri.RequestRetries)},
		{Name: "JIBRI_PENDING_TIMEOUT", Key: "jibri.pending-timeout", apply: durationKey(&c.Jibri.PendingTimeout)},
		{Name: "JICOFO_RESTART_REQUEST_INTERVAL", Key: "(one minute)", apply: func(c *Config, v string) error {
			if d, err := envDuration(v); err != nil || d != time.Minute {
				c.Warnings = append(c.Warnings, fmt.Sprintf("JICOFO_RESTART_REQUEST_INTERVAL=%s is set but ignored: restart requests are counted per minute (conference.restart-max-per-minute)", v))
			}
			return nil
		}},
		{Name: "ENABLE_MODERATOR_CHECKS", Key: "(always on)", apply: func(c *Config, v string) error {
			if on, err := envBool(v); err == nil && !on {
				c.Warnings = append(c.Warnings, "ENABLE_MODERATOR_CHECKS=0 is set but ignored: only moderators may start recordings and dial out")
			}
			return nil
		}},
		{Name: "JICOFO_MULTI_STREAM_BACKWARD_COMPAT", Key: "(no longer read by Jicofo either)", apply: func(*Config, string) error { return nil }},
		{Name: "ENABLE_AUTO_LOGIN", Ignored: "logging in is left to the web client's login page"},
		{Name: "ENABLE_SHARED_DOCUMENT_RANDOM_NAME", Ignored: "minifocus does not name shared documents (Etherpad)"},
		{Name: "JICOFO_TRANSLATION_URL_TEMPLATE", Ignored: "live translation is not implemented yet"},
		{Name: "VISITORS_XMPP_SERVER", Ignored: "visitors are not implemented yet"},
		{Name: "VISITORS_XMPP_DOMAIN", Ignored: "visitors are not implemented yet"},
		{Name: "VISITORS_XMPP_AUTH_DOMAIN", Ignored: "visitors are not implemented yet"},
		{Name: "VISITORS_MAX_PARTICIPANTS", Ignored: "visitors are not implemented yet"},
		{Name: "VISITORS_MAX_VISITORS_PER_NODE", Ignored: "visitors are not implemented yet"},
		{Name: "JICOFO_BRIDGE_REGION_GROUPS", Key: "bridges.region-groups", apply: func(c *Config, v string) error {
			g, err := ParseRegionGroups(v)
			if err == nil {
				c.Bridges.RegionGroups = g
			}
			return err
		}},
		{Name: "JICOFO_ENABLE_LOAD_REDISTRIBUTION", Key: "bridges.load-redistribution.enabled", apply: setBool(&c.Bridges.LoadRedistribution.Enabled)},
		{Name: "JICOFO_MAX_MEMORY", Ignored: "there is no JVM; minifocus needs a few MB"},
	}
}

func enableJigasi(c *Config, v string) error {
	if on, err := envBool(v); (err != nil || on) && c.Jigasi.Brewery == "" {
		c.Jigasi.Brewery = "jigasibrewery" // JIGASI_SIP_URI is a URI, not a boolean
	}
	return nil
}

func enableAuth(c *Config, v string) error {
	on, err := envBool(v)
	if on && c.Auth.Type == "none" {
		c.Auth.Type = "xmpp"
	}
	return err
}

// applyDockerAuth finishes docker-jitsi-meet's authentication settings:
// AUTH_TYPE=jwt means JWT, anything else XMPP; the authenticated users are
// those of XMPP_DOMAIN (guests log in on guest.<domain>).
func applyDockerAuth(c *Config, getenv func(string) string) {
	if c.Auth.Type == "none" {
		return
	}
	t := getenv("JICOFO_AUTH_TYPE")
	if t == "" {
		t = getenv("AUTH_TYPE")
	}
	if t == "jwt" {
		c.Auth.Type = "jwt"
	}
	if c.Auth.LoginDomain == "" {
		c.Auth.LoginDomain = c.XMPP.Domain
	}
}

// applyDockerExtras applies the variables above that are set, and records a
// warning for each one that is set but not acted on.
func applyDockerExtras(c *Config, getenv func(string) string) []string {
	var problems []string
	for _, e := range dockerExtras(c) {
		v := getenv(e.Name)
		if v == "" {
			continue
		}
		if e.Ignored != "" {
			if on, err := envBool(v); err == nil && !on {
				continue // set to off: nothing is lost
			}
			c.Warnings = append(c.Warnings, fmt.Sprintf("%s is set but ignored: %s", e.Name, e.Ignored))
			continue
		}
		if err := e.apply(c, v); err != nil {
			problems = append(problems, fmt.Sprintf("%s (%s): %v", e.Name, e.Key, err))
		}
	}
	// docker-jitsi-meet trusts its hidden domain (where Jibri and Jigasi
	// log in) when recording or transcription is on, unless told otherwise.
	if len(c.XMPP.TrustedDomains) == 0 && getenv("JICOFO_TRUSTED_DOMAINS") == "" {
		rec, _ := envBool(getenv("ENABLE_RECORDING"))
		tr, _ := envBool(getenv("ENABLE_TRANSCRIPTIONS"))
		if rec || tr {
			c.XMPP.TrustedDomains = []string{orDefault(getenv("XMPP_HIDDEN_DOMAIN"), "hidden.meet.jitsi")}
		}
	}
	return problems
}
