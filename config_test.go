package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func noEnv(string) string { return "" }

func envOf(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestConfigMinimalFileGetsDebianDefaults(t *testing.T) {
	cfg, err := LoadConfig(writeConfig(t, "[xmpp]\ndomain = \"meet.example.com\"\npassword = \"s3cret\"\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	x := cfg.XMPP
	checks := map[string][2]string{
		"auth-domain":         {x.AuthDomain, "auth.meet.example.com"},
		"muc-domain":          {x.MUCDomain, "conference.meet.example.com"},
		"internal-muc-domain": {x.InternalMUCDomain, "internal.auth.meet.example.com"},
		"brewery":             {cfg.Bridges.Brewery, "jvbbrewery@internal.auth.meet.example.com"},
		"server":              {x.Server, "localhost"},
		"username":            {x.Username, "focus"},
		"resource":            {x.Resource, "focus"},
		"http":                {cfg.HTTP.Listen, "127.0.0.1:8888"},
		"strategy":            {cfg.Bridges.Strategy, "least-load"},
		"focus jid":           {cfg.FocusJID(), "focus@auth.meet.example.com"},
	}
	for name, c := range checks {
		if c[0] != c[1] {
			t.Errorf("%s = %q, want %q", name, c[0], c[1])
		}
	}
	if x.Port != 5222 || x.ReplyTimeout.Duration != 15*time.Second || cfg.Bridges.HealthInterval.Duration != 10*time.Second {
		t.Errorf("numeric defaults wrong: %+v", x)
	}
	if cfg.Conference.MinParticipants != 2 || cfg.Conference.MaxSSRCsPerUser != 20 || cfg.Bridges.MaxParticipantsPerBridge != 80 {
		t.Errorf("conference defaults wrong: %+v", cfg.Conference)
	}
}

func TestConfigEnvironmentWinsAndUsesDockerDefaults(t *testing.T) {
	path := writeConfig(t, "[xmpp]\ndomain = \"file.example\"\npassword = \"from-file\"\nport = 5223\n")
	cfg, err := LoadConfig(path, envOf(map[string]string{
		"JICOFO_AUTH_PASSWORD": "from-env",
		"XMPP_DOMAIN":          "meet.jitsi",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.XMPP.Password != "from-env" || cfg.XMPP.Domain != "meet.jitsi" {
		t.Errorf("env did not win: %+v", cfg.XMPP)
	}
	if cfg.XMPP.Port != 5223 {
		t.Errorf("port set in the file was replaced by a docker default: %d", cfg.XMPP.Port)
	}
	// Keys set nowhere take docker-jitsi-meet's defaults in a container.
	if cfg.XMPP.Server != "xmpp.meet.jitsi" || cfg.XMPP.MUCDomain != "muc.meet.jitsi" || cfg.XMPP.AuthDomain != "auth.meet.jitsi" {
		t.Errorf("docker defaults not applied: %+v", cfg.XMPP)
	}
	if cfg.Bridges.Brewery != "jvbbrewery@internal-muc.meet.jitsi" {
		t.Errorf("brewery = %q", cfg.Bridges.Brewery)
	}
}

func TestConfigEnvironmentAlone(t *testing.T) {
	cfg, err := LoadConfig("", envOf(map[string]string{
		"JICOFO_AUTH_PASSWORD": "pw", "XMPP_SERVER": "prosody", "XMPP_PORT": "5322",
		"XMPP_DOMAIN": "m.test", "XMPP_AUTH_DOMAIN": "a.m.test", "XMPP_MUC_DOMAIN": "c.m.test",
		"XMPP_INTERNAL_MUC_DOMAIN": "i.m.test", "JVB_BREWERY_MUC": "bridges",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.XMPP.Server != "prosody" || cfg.XMPP.Port != 5322 || cfg.XMPP.AuthDomain != "a.m.test" ||
		cfg.XMPP.MUCDomain != "c.m.test" || cfg.Bridges.Brewery != "bridges@i.m.test" {
		t.Errorf("env not applied: %+v %+v", cfg.XMPP, cfg.Bridges)
	}
}

// Every validation problem is reported, one line each, naming the key (and
// its environment variable) and what is expected.
func TestConfigValidationMessages(t *testing.T) {
	cases := []struct {
		name, body string
		env        map[string]string
		want       []string
	}{
		{"missing password", "[xmpp]\ndomain = \"m.test\"\n", nil,
			[]string{"xmpp.password (env JICOFO_AUTH_PASSWORD): missing; the focus logs in as focus@auth.m.test and needs its password"}},
		{"missing domain", "[xmpp]\npassword = \"x\"\n", nil,
			[]string{"xmpp.domain (env XMPP_DOMAIN): missing"}},
		{"bad domain", "[xmpp]\ndomain = \"bad domain!\"\npassword = \"x\"\n", nil,
			[]string{`xmpp.domain (env XMPP_DOMAIN): "bad domain!" is not a valid domain: character ' ' not allowed`}},
		{"port out of range", "[xmpp]\ndomain = \"m.test\"\npassword = \"x\"\nport = 70000\n", nil,
			[]string{"xmpp.port (env XMPP_PORT): 70000 is out of range (1-65535)"}},
		{"port env not a number", "", map[string]string{"JICOFO_AUTH_PASSWORD": "x", "XMPP_PORT": "abc"},
			[]string{`XMPP_PORT (xmpp.port): "abc" is not a number`}},
		{"unknown key", "[xmpp]\ndomain = \"m.test\"\npassword = \"x\"\npasword = \"typo\"\n", nil,
			[]string{`unknown key "xmpp.pasword"`}},
		{"unknown section", "[xmpp]\ndomain = \"m.test\"\npassword = \"x\"\n[bridge]\nbrewery = \"a@b\"\n", nil,
			[]string{`unknown key "bridge.brewery"`}},
		{"wrong type", "[xmpp]\ndomain = \"m.test\"\npassword = \"x\"\nport = \"5222\"\n", nil,
			[]string{"port", "string"}},
		{"bad duration", "[xmpp]\ndomain = \"m.test\"\npassword = \"x\"\nreply-timeout = \"soon\"\n", nil,
			[]string{`"soon" is not a duration`}},
		{"bad tls", "[xmpp]\ndomain = \"m.test\"\npassword = \"x\"\ntls = \"maybe\"\n", nil,
			[]string{`xmpp.tls: "maybe" must be one of required, optional, off`}},
		{"bad brewery", "[xmpp]\ndomain = \"m.test\"\npassword = \"x\"\n[bridges]\nbrewery = \"a@b/c\"\n", nil,
			[]string{`bridges.brewery (env JVB_BREWERY_MUC): "a@b/c" is not a bare room JID`}},
		{"bad strategy", "[xmpp]\ndomain = \"m.test\"\npassword = \"x\"\n[bridges]\nstrategy = \"random\"\n", nil,
			[]string{`bridges.strategy: "random" must be one of least-load, round-robin, region, single`}},
		{"bad listen", "[xmpp]\ndomain = \"m.test\"\npassword = \"x\"\n[http]\nlisten = \"8888\"\n", nil,
			[]string{`http.listen: "8888" is not host:port`}},
		{"bad log level", "[xmpp]\ndomain = \"m.test\"\npassword = \"x\"\n[log]\nlevel = \"loud\"\n", nil,
			[]string{`log.level: "loud" must be one of debug, info, warn, error`}},
		{"two problems", "[xmpp]\ndomain = \"m.test\"\nport = 0\n", nil,
			[]string{"xmpp.password", "xmpp.port (env XMPP_PORT): 0 is out of range"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := ""
			if tc.body != "" {
				path = writeConfig(t, tc.body)
			}
			_, err := LoadConfig(path, envOf(tc.env))
			if err == nil {
				t.Fatal("accepted a bad configuration")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestConfigExampleIsValidAndDocumented(t *testing.T) {
	data, err := os.ReadFile("config.toml.example")
	if err != nil {
		t.Fatal(err)
	}
	body := strings.Replace(string(data), `password = ""`, `password = "x"`, 1)
	if _, err := LoadConfig(writeConfig(t, body), noEnv); err != nil {
		t.Fatalf("config.toml.example does not load: %v", err)
	}
	// Every key line carries a comment on the line above it.
	lines := strings.Split(string(data), "\n")
	for i, l := range lines {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, "[") {
			continue
		}
		if i == 0 || !strings.HasPrefix(strings.TrimSpace(lines[i-1]), "#") {
			t.Errorf("line %d %q has no comment above it", i+1, l)
		}
	}
}

func TestConfigRedactedHidesPassword(t *testing.T) {
	cfg, err := LoadConfig(writeConfig(t, "[xmpp]\ndomain = \"m.test\"\npassword = \"hunter2\"\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	out := cfg.Redacted()
	if strings.Contains(out, "hunter2") || !strings.Contains(out, "<redacted>") {
		t.Errorf("password not redacted:\n%s", out)
	}
}

func FuzzLoadConfig(f *testing.F) {
	f.Add("[xmpp]\ndomain = \"meet.test\"\npassword = \"x\"\n")
	f.Add("[xmpp]\nport = 99999\n[bridges]\nstrategy = \"x\"\nstress-threshold = -1.0E-4\n")
	f.Add("[conference]\ninitial-timeout = \"1h\"\n[log]\nlevel=5\n")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, body string) {
		path := filepath.Join(dir, "c.toml")
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := LoadConfig(path, noEnv)
		if err != nil {
			if !strings.Contains(err.Error(), "\n  ") && !strings.HasPrefix(err.Error(), "invalid configuration") {
				t.Fatalf("error not in the one-line-per-problem form: %v", err)
			}
			return
		}
		// Whatever loads is usable: the checks the daemon relies on hold.
		if cfg.XMPP.Password == "" || cfg.XMPP.Port < 1 || cfg.XMPP.Port > 65535 || cfg.Conference.MinParticipants < 1 {
			t.Fatalf("accepted an unusable config: %+v", cfg)
		}
	})
}

func TestConfigDockerJicofoEnvironment(t *testing.T) {
	cfg, err := LoadConfig("", envOf(map[string]string{
		"JICOFO_AUTH_PASSWORD": "pw", "MAX_BRIDGE_PARTICIPANTS": "30", "ENABLE_CODEC_VP9": "0",
		"ENABLE_CODEC_OPUS_RED": "true", "MAX_SSRCS_PER_USER": "12", "JICOFO_ENABLE_REST": "1",
		"OCTO_BRIDGE_SELECTION_STRATEGY": "RegionBasedBridgeSelectionStrategy", "JICOFO_OCTO_REGION": "eu",
		"ENABLE_AUTH": "1", "AUTH_TYPE": "jwt", "ENABLE_RECORDING": "1", "JIBRI_BREWERY_MUC": "jibribrewery",
		"JIGASI_BREWERY_MUC": "jigasibrewery", "ENABLE_TRANSCRIPTIONS": "0", "JICOFO_ENABLE_HEALTH_CHECKS": "1",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Bridges.MaxParticipantsPerBridge != 30 || cfg.Codec.VP9 || !cfg.Codec.OpusRED || cfg.Conference.MaxSSRCsPerUser != 12 ||
		cfg.HTTP.Listen != "0.0.0.0:8888" || cfg.Bridges.Strategy != "region" || cfg.Bridges.LocalRegion != "eu" {
		t.Errorf("docker variables not applied: %+v %+v %+v %+v", cfg.Bridges, cfg.Codec, cfg.Conference, cfg.HTTP)
	}
	if cfg.Auth.Type != "jwt" || cfg.Auth.LoginDomain != "meet.jitsi" {
		t.Errorf("ENABLE_AUTH=1 AUTH_TYPE=jwt gave auth %+v, want jwt for meet.jitsi", cfg.Auth)
	}
	if cfg.Jibri.Brewery != "jibribrewery@internal-muc.meet.jitsi" {
		t.Errorf("jibri brewery %q", cfg.Jibri.Brewery)
	}
	if cfg.Jigasi.Brewery != "jigasibrewery@internal-muc.meet.jitsi" {
		t.Errorf("jigasi brewery %q", cfg.Jigasi.Brewery)
	}
	var want []string
	if len(cfg.Warnings) != len(want) {
		t.Errorf("warnings %v, want one for each of %v", cfg.Warnings, want)
	}
	for i, w := range want {
		if i < len(cfg.Warnings) && !strings.HasPrefix(cfg.Warnings[i], w+" is set but ignored: ") {
			t.Errorf("warning %d = %q, want one naming %s", i, cfg.Warnings[i], w)
		}
	}
	if _, err := LoadConfig("", envOf(map[string]string{"JICOFO_AUTH_PASSWORD": "pw", "MAX_BRIDGE_PARTICIPANTS": "many"})); err == nil ||
		!strings.Contains(err.Error(), `MAX_BRIDGE_PARTICIPANTS (bridges.max-participants-per-bridge): "many" is not a number`) {
		t.Errorf("bad docker value: %v", err)
	}
}

// source-signaling-delays: a TOML table replaces the default (an empty one
// turns batching off), numbers are milliseconds as in jicofo.conf, docker's
// HOCON map is understood, and bad entries name the key.
func TestConfigSourceSignalingDelays(t *testing.T) {
	base := "[xmpp]\ndomain = \"m.test\"\npassword = \"x\"\n[conference]\n"
	load := func(body string, env map[string]string) (Config, error) {
		return LoadConfig(writeConfig(t, base+body), envOf(env))
	}
	cfg, err := load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.Conference.SourceSignalingDelays
	if d.For(49) != 0 || d.For(50) != 500*time.Millisecond || d.For(99) != 500*time.Millisecond || d.For(100) != time.Second || d.For(5000) != time.Second {
		t.Errorf("default delays %v", d)
	}
	cfg, err = load("source-signaling-delays = {}\n", nil)
	if err != nil || len(cfg.Conference.SourceSignalingDelays) != 0 || cfg.Conference.SourceSignalingDelays.For(1000) != 0 {
		t.Errorf("empty table: %v %v", cfg.Conference.SourceSignalingDelays, err)
	}
	cfg, err = load("source-signaling-delays = { 20 = 250, 10 = \"100ms\" }\n", nil)
	if err != nil || cfg.Conference.SourceSignalingDelays.For(15) != 100*time.Millisecond || cfg.Conference.SourceSignalingDelays.For(25) != 250*time.Millisecond {
		t.Errorf("table with a number and a duration: %v %v", cfg.Conference.SourceSignalingDelays, err)
	}
	if !strings.Contains(cfg.Redacted(), `source-signaling-delays = { 10 = "100ms", 20 = "250ms" }`) {
		t.Errorf("-check-config shows the delays as:\n%s", cfg.Redacted())
	}
	cfg, err = load("", map[string]string{"JICOFO_CONF_SOURCE_SIGNALING_DELAYS": "{ 30 = 200, 60: 400 }"})
	if err != nil || cfg.Conference.SourceSignalingDelays.For(45) != 200*time.Millisecond || cfg.Conference.SourceSignalingDelays.For(60) != 400*time.Millisecond {
		t.Errorf("docker variable: %v %v", cfg.Conference.SourceSignalingDelays, err)
	}
	for body, want := range map[string]string{
		"source-signaling-delays = { x = 100 }\n":       `"x" is not a conference size`,
		"source-signaling-delays = { 50 = \"soon\" }\n": `"soon" is not a duration`,
		"source-signaling-delays = { 50 = \"1m\" }\n":   "must be between 0 and 10s",
		"source-signaling-delays = 5\n":                 "must be a table",
	} {
		if _, err := load(body, nil); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", body, err, want)
		}
	}
	if _, err := load("", map[string]string{"JICOFO_CONF_SOURCE_SIGNALING_DELAYS": "50"}); err == nil || !strings.Contains(err.Error(), "JICOFO_CONF_SOURCE_SIGNALING_DELAYS") {
		t.Errorf("bad docker variable: %v", err)
	}
}

// docker-jitsi-meet's ICE-failure variables map onto [bridges.ice-failure-detection].
func TestConfigICEFailureDetection(t *testing.T) {
	cfg, err := LoadConfig("", envOf(map[string]string{
		"JICOFO_AUTH_PASSWORD": "pw", "JICOFO_ENABLE_ICE_FAILURE_DETECTION": "true", "JICOFO_ICE_FAILURE_INTERVAL": "60",
		"JICOFO_ICE_FAILURE_MIN_ENDPOINTS": "45", "JICOFO_ICE_FAILURE_THRESHOLD": "0.2",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := ICEFailureConfig{Enabled: true, Interval: dur(time.Minute), MinEndpoints: 45, Threshold: 0.2, Timeout: dur(10 * time.Minute)}
	if cfg.Bridges.ICEFailure != want {
		t.Errorf("got %+v, want %+v", cfg.Bridges.ICEFailure, want)
	}
	for _, w := range cfg.Warnings {
		if strings.Contains(w, "ICE_FAILURE") {
			t.Errorf("warned about a variable it acts on: %s", w)
		}
	}
	cfg, err = LoadConfig("", envOf(map[string]string{"JICOFO_AUTH_PASSWORD": "pw", "JICOFO_ENABLE_ICE_FAILURE_DETECTION": "1"}))
	if f := cfg.Bridges.ICEFailure; err != nil || f.Interval.Duration != time.Minute || f.MinEndpoints != 40 {
		t.Errorf("docker's defaults (60 s, 40 endpoints): %+v %v", f, err)
	}
	_, err = LoadConfig("", envOf(map[string]string{"JICOFO_AUTH_PASSWORD": "pw", "JICOFO_ICE_FAILURE_INTERVAL": "soon"}))
	if err == nil || !strings.Contains(err.Error(), "JICOFO_ICE_FAILURE_INTERVAL") {
		t.Errorf("bad interval: %v", err)
	}
	path := writeConfig(t, "[xmpp]\ndomain = \"m.test\"\npassword = \"x\"\n[bridges.ice-failure-detection]\nthreshold = 0.0\n")
	if _, err := LoadConfig(path, noEnv); err == nil || !strings.Contains(err.Error(), "bridges.ice-failure-detection") {
		t.Errorf("zero threshold: %v", err)
	}
}

func TestConfigJibriSIPBrewery(t *testing.T) {
	cfg, err := LoadConfig("", envOf(map[string]string{"JICOFO_AUTH_PASSWORD": "pw", "JIBRI_SIP_BREWERY_MUC": "jibrisipbrewery"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Jibri.SIPBrewery != "jibrisipbrewery@internal-muc.meet.jitsi" {
		t.Errorf("sip-brewery = %q", cfg.Jibri.SIPBrewery)
	}
	for _, w := range cfg.Warnings {
		if strings.Contains(w, "JIBRI_SIP_BREWERY_MUC") {
			t.Errorf("warned about a variable it acts on: %s", w)
		}
	}
}

func TestConfigTranscriptionURL(t *testing.T) {
	path := writeConfig(t, "[xmpp]\ndomain = \"m.test\"\npassword = \"x\"\n[transcription]\nurl-template = \"https://t.example/{{MEETING_ID}}\"\n")
	if _, err := LoadConfig(path, noEnv); err == nil || !strings.Contains(err.Error(), "transcription.url-template") {
		t.Errorf("an http URL: %v", err)
	}
}

// ENABLE_JVB_XMPP_SERVER: the bridges' own Prosody with docker-jitsi-meet's
// defaults, the brewery on its internal MUC, the client's credentials.
func TestConfigJVBXMPPServer(t *testing.T) {
	cfg, err := LoadConfig("", envOf(map[string]string{"JICOFO_AUTH_PASSWORD": "pw", "ENABLE_JVB_XMPP_SERVER": "1", "JVB_XMPP_PORT": "6333"}))
	if err != nil {
		t.Fatal(err)
	}
	want := ServiceXMPPConfig{Enabled: true, Server: "xmpp.jvb.meet.jitsi", Port: 6333, AuthDomain: "auth.jvb.meet.jitsi",
		InternalMUCDomain: "muc.jvb.meet.jitsi", Username: "focus", Password: "pw", TLS: cfg.XMPP.TLS}
	if cfg.XMPP.Service != want {
		t.Errorf("service = %+v\nwant      %+v", cfg.XMPP.Service, want)
	}
	if cfg.Bridges.Brewery != "jvbbrewery@muc.jvb.meet.jitsi" {
		t.Errorf("brewery = %q", cfg.Bridges.Brewery)
	}
	if !strings.Contains(cfg.Redacted(), "[xmpp.service]") || strings.Contains(cfg.Redacted(), `"pw"`) {
		t.Errorf("-check-config output:\n%s", cfg.Redacted())
	}
	path := writeConfig(t, "[xmpp]\ndomain = \"m.test\"\npassword = \"x\"\n[xmpp.service]\nenabled = true\n")
	if _, err := LoadConfig(path, noEnv); err == nil || !strings.Contains(err.Error(), "xmpp.service") {
		t.Errorf("service without a server: %v", err)
	}
}

func TestConfigRegionGroups(t *testing.T) {
	g, err := ParseRegionGroups(`["eu-west-1", "eu-central-1"], ["us-east-1","us-west-2"]`)
	if err != nil || len(g) != 2 || g[0][1] != "eu-central-1" || g[1][0] != "us-east-1" {
		t.Errorf("docker form: %v %v", g, err)
	}
	if g, err := ParseRegionGroups(`[["a","b"]]`); err != nil || len(g) != 1 || len(g[0]) != 2 {
		t.Errorf("enclosed form: %v %v", g, err)
	}
	if _, err := ParseRegionGroups(`eu, us`); err == nil {
		t.Error("accepted a bare list")
	}
	cfg, err := LoadConfig(writeConfig(t, "[xmpp]\ndomain = \"m.test\"\npassword = \"x\"\n[bridges]\nregion-groups = [[\"a\", \"b\"], [\"c\"]]\n"), noEnv)
	if err != nil || len(cfg.Bridges.RegionGroups) != 2 {
		t.Errorf("TOML: %v %v", cfg.Bridges.RegionGroups, err)
	}
	_, err = LoadConfig(writeConfig(t, "[xmpp]\ndomain = \"m.test\"\npassword = \"x\"\n[bridges]\nregion-groups = [[\"a\", \"b\"], [\"b\"]]\n"), noEnv)
	if err == nil || !strings.Contains(err.Error(), `region "b"`) {
		t.Errorf("a region in two groups: %v", err)
	}
}

// The rest of docker-jitsi-meet's jicofo variables: acted on, or named in a
// warning; durations in the forms the compose files use.
func TestConfigDockerJicofoLeftovers(t *testing.T) {
	cfg, err := LoadConfig("", envOf(map[string]string{
		"JICOFO_AUTH_PASSWORD": "pw", "JICOFO_CONF_INITIAL_PARTICIPANT_WAIT_TIMEOUT": "30 seconds",
		"JICOFO_CONF_SINGLE_PARTICIPANT_TIMEOUT": "45", "JICOFO_AUTH_LIFETIME": "2 hours",
		"JICOFO_CONF_SSRC_REWRITING": "0", "JIBRI_REQUEST_RETRIES": "2", "JIBRI_PENDING_TIMEOUT": "1 minute",
		"ENABLE_RECORDING": "1", "XMPP_HIDDEN_DOMAIN": "hidden.example", "JICOFO_RESTART_REQUEST_INTERVAL": "120",
		"ENABLE_MODERATOR_CHECKS": "0", "VISITORS_XMPP_SERVER": "v1.example", "JICOFO_MULTI_STREAM_BACKWARD_COMPAT": "1",
	}))
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Conference
	if c.InitialTimeout.Duration != 30*time.Second || c.SingleParticipantTimeout.Duration != 45*time.Second || c.UseSSRCRewriting ||
		cfg.Auth.Lifetime.Duration != 2*time.Hour || cfg.Jibri.RequestRetries != 2 || cfg.Jibri.PendingTimeout.Duration != time.Minute {
		t.Errorf("values: %+v %+v %+v", c, cfg.Auth, cfg.Jibri)
	}
	if len(cfg.XMPP.TrustedDomains) != 1 || cfg.XMPP.TrustedDomains[0] != "hidden.example" {
		t.Errorf("trusted domains with recording on: %v", cfg.XMPP.TrustedDomains)
	}
	warned := strings.Join(cfg.Warnings, "\n")
	for _, v := range []string{"JICOFO_RESTART_REQUEST_INTERVAL", "ENABLE_MODERATOR_CHECKS", "VISITORS_XMPP_SERVER"} {
		if !strings.Contains(warned, v) {
			t.Errorf("no warning for %s in:\n%s", v, warned)
		}
	}
	if strings.Contains(warned, "MULTI_STREAM") || strings.Contains(warned, "JIBRI_PENDING") {
		t.Errorf("warned about a variable it handles:\n%s", warned)
	}
	cfg, err = LoadConfig("", envOf(map[string]string{"JICOFO_AUTH_PASSWORD": "pw", "JICOFO_TRUSTED_DOMAINS": "recorder.example, sip.example", "ENABLE_RECORDING": "1"}))
	if err != nil || strings.Join(cfg.XMPP.TrustedDomains, ",") != "recorder.example,sip.example" {
		t.Errorf("JICOFO_TRUSTED_DOMAINS: %v %v", cfg.XMPP.TrustedDomains, err)
	}
	if _, err := LoadConfig("", envOf(map[string]string{"JICOFO_AUTH_PASSWORD": "pw", "JIBRI_PENDING_TIMEOUT": "soon"})); err == nil || !strings.Contains(err.Error(), "JIBRI_PENDING_TIMEOUT") {
		t.Errorf("bad duration: %v", err)
	}
	for in, want := range map[string]time.Duration{"15s": 15 * time.Second, "15": 15 * time.Second, "500 ms": 500 * time.Millisecond, "2 minutes": 2 * time.Minute, "1 hour": time.Hour} {
		if d, err := envDuration(in); err != nil || d != want {
			t.Errorf("envDuration(%q) = %v %v, want %v", in, d, err, want)
		}
	}
}

// xmpp.client-proxy defaults to focus.<domain>, as docker-jitsi-meet's and
// Debian's Jicofo configuration set it, both from a file and from docker's
// environment alone; "none" turns it off; -check-config says which holds.
func TestConfigClientProxyDefault(t *testing.T) {
	docker := envOf(map[string]string{"JICOFO_AUTH_PASSWORD": "pw", "XMPP_DOMAIN": "meet.jitsi", "ENABLE_AUTH": "1", "AUTH_TYPE": "internal"})
	cases := []struct {
		name, file string
		env        func(string) string
		domain     string // ClientProxyDomain()
		defaulted  bool
		note       string
	}{
		{"file without the key", "[xmpp]\ndomain = \"meet.example.com\"\npassword = \"pw\"\n", noEnv, "focus.meet.example.com", true, "(the default"},
		{"empty, as older example files wrote it", "[xmpp]\ndomain = \"meet.example.com\"\npassword = \"pw\"\nclient-proxy = \"\"\n", noEnv, "focus.meet.example.com", true, "(the default"},
		{"docker environment alone", "", docker, "focus.meet.jitsi", true, "(the default"},
		{"set", "[xmpp]\ndomain = \"meet.example.com\"\npassword = \"pw\"\nclient-proxy = \"proxy.meet.example.com\"\n", noEnv, "proxy.meet.example.com", false, "(set)"},
		{"turned off", "[xmpp]\ndomain = \"meet.example.com\"\npassword = \"pw\"\nclient-proxy = \"none\"\n", noEnv, "", false, "off"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := ""
			if tc.file != "" {
				path = writeConfig(t, tc.file)
			}
			cfg, err := LoadConfig(path, tc.env)
			if err != nil {
				t.Fatal(err)
			}
			x := cfg.XMPP
			if x.ClientProxyDomain() != tc.domain || x.ClientProxyDefaulted != tc.defaulted {
				t.Errorf("client proxy %q (defaulted %v), want %q (%v)", x.ClientProxyDomain(), x.ClientProxyDefaulted, tc.domain, tc.defaulted)
			}
			if note := x.ClientProxyNote(); !strings.Contains(note, tc.note) {
				t.Errorf("note %q lacks %q", note, tc.note)
			}
			if r := cfg.CheckReport(); !strings.Contains(r, "# "+x.ClientProxyNote()) {
				t.Errorf("-check-config does not say which client-proxy is in effect:\n%s", r)
			}
			// What -check-config prints loads back to the same setting.
			again, err := LoadConfig(writeConfig(t, cfg.Redacted()), noEnv)
			if err != nil && !strings.Contains(err.Error(), "xmpp.password") {
				t.Fatalf("the effective config does not load back: %v", err)
			}
			if again.XMPP.ClientProxyDomain() != tc.domain {
				t.Errorf("printed config loads back as %q, want %q", again.XMPP.ClientProxyDomain(), tc.domain)
			}
		})
	}
	for value, want := range map[string]string{
		`"not a domain"`:     "is not a valid domain",
		`"meet.example.com"`: "is a domain of users or rooms",
	} {
		_, err := LoadConfig(writeConfig(t, "[xmpp]\ndomain = \"meet.example.com\"\npassword = \"pw\"\nclient-proxy = "+value+"\n"), noEnv)
		if err == nil || !strings.Contains(err.Error(), "xmpp.client-proxy") || !strings.Contains(err.Error(), want) {
			t.Errorf("client-proxy = %s: %v, want an error naming the key and %q", value, err, want)
		}
	}
}

// A file TOML cannot parse gets one line naming the file, line and column;
// a file the library cannot place an error in (it panicked formatting it)
// gets one line too.
func TestConfigParseErrorIsOneLine(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ body, want string }{
		{"[xmpp]\ndomain = \"x\n", "line 2, column 12: "},
		{"\"\\", "line 1, column 2: "},
	} {
		path := filepath.Join(dir, "c.toml")
		if err := os.WriteFile(path, []byte(c.body), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := LoadConfig(path, noEnv)
		if err == nil || !strings.Contains(err.Error(), path+": "+c.want) || strings.Count(err.Error(), "\n") != 1 {
			t.Errorf("%q: %v, want one line with %q", c.body, err, c.want)
		}
	}
}
