package main

// auth.go: optional feature: Prosody/JWT authentication, who may start a conference and who is moderator.

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// authority is Jicofo's XMPP-domain (and JWT) authentication: users logged
// in on the authenticated domain (Prosody checked their password or token)
// get an authentication session; only they may start conferences and they
// are made moderators. Guests (another domain, e.g. guest.<domain>) may
// only join running conferences.
type authority struct {
	domain   string
	jwt      bool
	lifetime time.Duration

	mu       sync.Mutex
	sessions map[string]*authSession // by session id
	byUser   map[string]*authSession // by bound full JID
}

type authSession struct {
	id, machineUID, identity string
	user                     string // the full JID the session is bound to (lower-case)
	lastUsed                 time.Time
}

func newAuthority(c AuthConfig) *authority {
	if c.Type == "none" || c.Type == "" {
		return nil
	}
	a := &authority{domain: strings.ToLower(c.LoginDomain), jwt: c.Type == "jwt", lifetime: c.Lifetime.Duration, sessions: map[string]*authSession{}, byUser: map[string]*authSession{}}
	if a.jwt {
		a.lifetime = time.Minute // a token is checked again at the next login
	}
	return a
}

func sessionInvalid(text string) *StanzaError {
	se := Errorf("not-acceptable", "%s", text)
	se.App = append(se.App, NewElement(nsFocus, "session-invalid"))
	return se
}

// check returns the sender's authentication session: the one named by the
// request (which must be known and from the same machine), or a new one when
// the sender is logged in on the authenticated domain. Nil means a guest.
func (a *authority) check(req ConferenceRequest) (*authSession, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := time.Now()
	for id, s := range a.sessions {
		if now.Sub(s.lastUsed) > a.lifetime {
			delete(a.sessions, id)
			delete(a.byUser, s.user)
		}
	}
	if req.SessionID != "" {
		s := a.sessions[req.SessionID]
		switch {
		case s == nil:
			return nil, sessionInvalid("invalid session")
		case s.machineUID == "" || s.machineUID != req.MachineUID:
			return nil, sessionInvalid("machine UID mismatch or empty")
		}
		s.lastUsed = now
		a.bind(s, req.From) // e.g. a guest connection using the host's login
		return s, nil
	}
	bare := bareJID(req.From)
	at := strings.LastIndexByte(bare, '@')
	if req.From == "" || at < 0 || bare[at+1:] != a.domain {
		return nil, nil // a guest
	}
	if req.MachineUID == "" {
		return nil, Errorf("not-acceptable", "Missing mandatory attribute 'machine-uid'")
	}
	if len(a.sessions) >= 100000 {
		return nil, Errorf("resource-constraint", "too many authentication sessions")
	}
	s := &authSession{id: newUUID(), machineUID: req.MachineUID, identity: bare, lastUsed: now}
	a.sessions[s.id] = s
	a.bind(s, req.From)
	return s, nil
}

// bind ties a session to the full JID that used it last: that occupant is
// the authenticated one (Jicofo binds the session to the sender).
func (a *authority) bind(s *authSession, from string) {
	if from == "" {
		return
	}
	delete(a.byUser, s.user)
	s.user = strings.ToLower(from)
	a.byUser[s.user] = s
}

// authenticated reports whether a real JID belongs to an authenticated user.
func (a *authority) authenticated(realJID string) bool {
	if a == nil {
		return false
	}
	bare := bareJID(realJID)
	if at := strings.LastIndexByte(bare, '@'); at >= 0 && bare[at+1:] == a.domain {
		return true // logged in on the authenticated domain
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.byUser[strings.ToLower(realJID)] != nil
}

// loginURL answers <login-url/>: where the web app sends the user to log in.
func (f *Focus) loginURL(iq, p *Element) *Element {
	room, machine := p.Attr("room"), p.Attr("machine-uid")
	switch {
	case authOf(f).auth == nil:
		return ErrorIQ(iq, Errorf("feature-not-implemented", "authentication is off"))
	case room == "":
		return ErrorIQ(iq, Errorf("not-acceptable", "Missing mandatory attribute 'room'"))
	case machine == "":
		return ErrorIQ(iq, Errorf("bad-request", "Missing mandatory attribute 'machine-uid'"))
	}
	el := NewElement(nsFocus, "login-url")
	if !authOf(f).auth.jwt {
		local := room
		if at := strings.IndexByte(room, '@'); at >= 0 {
			local = room[:at]
		}
		el.Set("url", "./"+local+"?login=true")
	}
	return ResultIQ(iq, el)
}

// logout answers <logout session-id/>: the session is forgotten.
func (f *Focus) logout(iq, p *Element) *Element {
	if authOf(f).auth == nil {
		return ErrorIQ(iq, Errorf("feature-not-implemented", "authentication is off"))
	}
	authOf(f).auth.mu.Lock()
	defer authOf(f).auth.mu.Unlock()
	s := authOf(f).auth.sessions[p.Attr("session-id")]
	if s == nil {
		return ErrorIQ(iq, sessionInvalid("invalid session"))
	}
	delete(authOf(f).auth.sessions, s.id)
	delete(authOf(f).auth.byUser, s.user)
	return ResultIQ(iq, NewElement(nsFocus, "logout"))
}

func authenticationFeature() Feature {
	return Feature{Name: "authentication", FocusState: func() any { return new(authFocusState) }, SaveFocus: saveAuthSessions, RestoreFocus: restoreAuthSessions,
		Moderators: authModerators, Request: authRequest,
		Setup: func(m *Main) {
			authOf(m.Focus).auth = newAuthority(m.Config.Auth)
			m.Focus.focusIQ["login-url/get"] = m.Focus.loginURL
			m.Focus.focusIQ["logout/set"] = m.Focus.logout
		}}
}

// authRequest checks the sender's login (unless the room is exempt); only
// authenticated users start a conference, guests join a running one
// (Jicofo's secure domain).
func authRequest(f *Focus, room string, req ConferenceRequest, a *Admission) error {
	if authOf(f).auth == nil {
		return nil
	}
	var session *authSession
	if !a.Exempt {
		var err error
		if session, err = authOf(f).auth.check(req); err != nil {
			f.log.Info("conference request refused: authentication", "room", room, "from", req.From, "err", err)
			return err
		}
		if session == nil {
			a.NoStart = func() error {
				f.log.Info("conference request refused: only authenticated users start conferences", "room", room, "from", req.From)
				return Errorf("not-authorized", "not authorized user domain")
			}
		}
	}
	a.Properties = append([][2]string{{"authentication", "true"}, {"externalAuth", fmt.Sprint(authOf(f).auth.jwt)}}, a.Properties...)
	if session != nil {
		a.Authenticated = true
		a.Joined = append(a.Joined, func(c *Conference, resp *ConferenceResponse) {
			resp.SessionID, resp.Identity = session.id, session.identity
			// Its member may now be made moderator (authModerators).
			c.post(event{kind: evFunc, fn: c.electOwner})
		})
	}
	return nil
}

// authModerators: with authentication, exactly the authenticated members
// are moderators (Jicofo's authentication role manager).
func authModerators(c *Conference) bool {
	if authOf(c.f).auth == nil {
		return false
	}
	for _, nick := range c.order {
		if m := c.members[nick]; m != nil && m.Affiliation != "owner" && !m.isService() && authOf(c.f).auth.authenticated(m.RealJID) {
			c.grantOwner(m)
		}
	}
	return true
}

// authFocusState is authentication's state on the Focus.
type authFocusState struct {
	auth *authority // nil when authentication is off
}

func authOf(f *Focus) *authFocusState { return focusState[authFocusState](f) }

// authState is a login session carried across a restart.
type authState struct {
	ID, MachineUID, Identity, User string
	LastUsed                       time.Time
}

func saveAuthSessions(f *Focus) (json.RawMessage, error) {
	a := authOf(f).auth
	if a == nil {
		return nil, nil
	}
	a.mu.Lock()
	out := make([]authState, 0, len(a.sessions))
	for _, s := range a.sessions {
		out = append(out, authState{ID: s.id, MachineUID: s.machineUID, Identity: s.identity, User: s.user, LastUsed: s.lastUsed})
	}
	a.mu.Unlock()
	if len(out) == 0 {
		return nil, nil
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return json.Marshal(out)
}

func restoreAuthSessions(f *Focus, raw json.RawMessage) error {
	var sessions []authState
	if err := json.Unmarshal(raw, &sessions); err != nil {
		return err
	}
	a := authOf(f).auth
	if a == nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, st := range sessions {
		if st.ID == "" || len(a.sessions) >= 100000 {
			continue
		}
		s := &authSession{id: st.ID, machineUID: st.MachineUID, identity: st.Identity, user: st.User, lastUsed: st.LastUsed}
		a.sessions[s.id] = s
		if s.user != "" {
			a.byUser[s.user] = s
		}
	}
	return nil
}
