package testkit

import (
	"crypto/hmac"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// The hosts of a deployment with authentication, and of Jitsi's components.
const (
	// GuestDomain is the anonymous host of guests when the main domain
	// requires a login (WithSecureDomain, WithTokenAuth), as docker-jitsi-meet
	// and Debian name it.
	GuestDomain = "guest.meet.test"
	// AVModerationDomain and MetadataDomain are XEP-0114 components (secret
	// ComponentSecret) where tests play Jitsi's av_moderation and
	// room_metadata components, at the addresses Jitsi's installers give them.
	AVModerationDomain = "avmoderation.meet.test"
	MetadataDomain     = "metadata.meet.test"
	// BreakoutMUCDomain is the MUC of breakout rooms (WithJitsiComponents).
	BreakoutMUCDomain = "breakout.meet.test"
	// TokenAppID and TokenSecret are the JWT issuer and HS256 secret of
	// WithTokenAuth (docker's JWT_APP_ID and JWT_APP_SECRET).
	TokenAppID  = "minifocus-test"
	TokenSecret = "token-secret-for-tests"
)

//go:embed prosody-plugins/*.lua
var prosodyPlugins embed.FS

// WithSecureDomain lays the hosts out as Jitsi's "secure domain" does
// (docker-jitsi-meet ENABLE_AUTH=1 AUTH_TYPE=internal, or Debian's
// authentication guide): the main domain checks passwords, guests log in
// anonymously on GuestDomain. Register users on Domain with WithUser or
// Register.
func WithSecureDomain() Option {
	return func(s *settings) { s.mainAuth = "internal_hashed"; s.guestHost = true }
}

// WithTokenAuth lays the hosts out as Jitsi's JWT authentication does
// (docker-jitsi-meet ENABLE_AUTH=1 AUTH_TYPE=jwt ENABLE_GUESTS=1): the main
// domain logs in only users with a valid token (SignToken; give it as the
// password), guests log in anonymously on GuestDomain. The token check is a
// stand-in for Jitsi's mod_auth_token (see prosody-plugins/).
func WithTokenAuth() Option {
	return func(s *settings) {
		s.mainAuth = "test_token"
		s.guestHost = true
		s.plugins = append(s.plugins, "mod_auth_test_token.lua")
	}
}

// WithMeetingIDs loads a stand-in for Jitsi's mod_muc_meeting_id on the
// conference MUC: rooms get a meeting id in their configuration form and
// disco#info.
func WithMeetingIDs() Option {
	return func(s *settings) {
		s.mucModules = append(s.mucModules, "test_meeting_id")
		s.plugins = append(s.plugins, "mod_test_meeting_id.lua")
	}
}

// WithJitsiComponents announces Jitsi's av_moderation (AVModerationDomain),
// room_metadata (MetadataDomain) and breakout_rooms (BreakoutMUCDomain)
// components in Domain's disco#info, as Jitsi's host modules do, and serves
// the breakout MUC with a stand-in for mod_muc_breakout_rooms (see
// prosody-plugins/): breakout room "<main>_<n>@breakout.meet.test" belongs
// to "<main>@conference.meet.test". Tests play the av_moderation and
// room_metadata components themselves over XEP-0114.
func WithJitsiComponents() Option {
	return func(s *settings) {
		s.jitsiComponents = true
		s.plugins = append(s.plugins, "mod_test_jitsi_components.lua", "mod_test_breakout_rooms.lua")
	}
}

// WithClientProxyRoster subscribes ComponentDomain to the focus account's
// presence before Prosody starts, as both Jitsi installers do for
// mod_client_proxy ("prosodyctl mod_roster_command subscribe focus.<domain>
// focus@auth.<domain>"): each time the focus comes online Prosody tells the
// component, which is how the proxy learns where to forward requests. Use
// it with StartClientProxy.
func WithClientProxyRoster() Option {
	return func(s *settings) { s.proxyRoster = true }
}

// SignToken returns an HS256 JWT for WithTokenAuth with the given claims;
// "iss" defaults to TokenAppID.
func SignToken(secret string, claims map[string]any) string {
	if _, ok := claims["iss"]; !ok {
		claims["iss"] = TokenAppID
	}
	enc := base64.RawURLEncoding
	body, err := json.Marshal(claims)
	if err != nil {
		panic("testkit.SignToken: " + err.Error())
	}
	unsigned := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc.EncodeToString(body)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(unsigned))
	return unsigned + "." + enc.EncodeToString(mac.Sum(nil))
}

// writeJitsiFiles writes the plugins the options need and the focus's
// roster, before Prosody starts.
func (p *Prosody) writeJitsiFiles() error {
	if len(p.set.plugins) > 0 {
		dir := filepath.Join(p.Dir, "plugins")
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return fmt.Errorf("testkit: %w", err)
		}
		if err := p.chown(dir); err != nil {
			return err
		}
		for _, name := range dedupe(p.set.plugins) {
			b, err := prosodyPlugins.ReadFile("prosody-plugins/" + name)
			if err != nil {
				return fmt.Errorf("testkit: %w", err)
			}
			path := filepath.Join(dir, name)
			if err := os.WriteFile(path, b, 0o640); err != nil {
				return fmt.Errorf("testkit: %w", err)
			}
			if err := p.chown(path); err != nil {
				return err
			}
		}
	}
	if p.set.proxyRoster {
		// Prosody's internal storage: data/<host>/roster/<user>.dat, a Lua
		// table; the component is a contact with subscription "from" (it
		// receives the focus's presence).
		dir := filepath.Join(p.Dir, "data", storeName(AuthDomain))
		roster := filepath.Join(dir, "roster")
		for _, d := range []string{dir, roster} {
			if err := os.MkdirAll(d, 0o750); err != nil {
				return fmt.Errorf("testkit: %w", err)
			}
			if err := p.chown(d); err != nil {
				return err
			}
		}
		path := filepath.Join(roster, storeName(FocusUser)+".dat")
		body := fmt.Sprintf("return {\n\t[false] = { version = 1; pending = {}; };\n\t[%s] = { subscription = \"from\"; groups = {}; };\n};\n", luaString(ComponentDomain))
		if err := os.WriteFile(path, []byte(body), 0o640); err != nil {
			return fmt.Errorf("testkit: %w", err)
		}
		if err := p.chown(path); err != nil {
			return err
		}
	}
	return nil
}

// storeName encodes a host or user name as Prosody's file storage does
// (every byte that is not a letter or digit as %xx).
func storeName(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02x", c)
		}
	}
	return b.String()
}
