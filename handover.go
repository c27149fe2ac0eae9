package main

// handover.go: restarting without anyone noticing.
//
// On SIGTERM (or SIGINT) the focus hands its XMPP session and every
// conference to the next process instead of ending them:
//
//  1. it lets the IQs in flight come back (about a second at most),
//     keeping conference requests for new rooms for the next process,
//  2. it closes the TCP connection to Prosody without </stream> and without
//     unavailable presence, so Prosody hibernates the session (XEP-0198):
//     the focus stays an occupant of every room and of the breweries, and
//     Prosody queues what it would have delivered,
//  3. each conference goroutine writes down its own state (asked through
//     its event queue, so nothing reads it from another goroutine) and
//     stops without a word to anyone,
//  4. the state and the stream's resumption data (id, counters, the
//     stanzas Prosody has not acknowledged) go to the state file: JSON,
//     versioned, written to a temporary file, synced, renamed, mode 0600.
//
// The next process reads the file before it connects, restores the bridge
// registry and the conferences (their goroutines start with the saved
// state, before any stanza is read), then resumes the stream with
// <resume previd=… h=…/>. What Prosody replays (a join, a leave, a
// source-add that arrived in the gap) is handled as usual; the stanzas it
// had not acknowledged are sent again. The breweries are joined again with
// <x/> so that Prosody sends their occupant lists afresh.
//
// Whatever does not fit (no file, a stale, corrupt or incompatible one, a
// refused resumption) is logged in one line and ends in a fresh start. The
// file is deleted as soon as it is read, so it is never used twice.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"mellium.im/xmpp/jid"
)

// handoverVersion is the state file's format. A process refuses a file of
// another version (and starts fresh) rather than guess.
//
// 2: the features' state under "features", by feature name.
// 3: AV moderation's per-participant state and cascading's meshed bridges
// are the features' own (no longer in members and bridge sessions).
const handoverVersion = 3

// handoverDrain bounds the wait for IQs in flight before the handover.
const handoverDrain = time.Second

// handoverLoginMargin is how much of the server's hibernation time a login
// needs: a file older than the hibernation time minus this is stale.
const handoverLoginMargin = 2 * time.Second

// HandoverState is the state file.
type HandoverState struct {
	Version int       `json:"version"`
	Written time.Time `json:"written"`
	PID     int       `json:"pid"`
	// Stream is the client connection's stream management state.
	Stream      streamState       `json:"stream"`
	Conferences []conferenceState `json:"conferences"`
	Bridges     []bridgeState     `json:"bridges"`
	// Features is the features' state on the Focus (pins, logins,
	// components found by discovery), by feature name: see Feature.SaveFocus.
	Features map[string]json.RawMessage `json:"features,omitempty"`
	// Deferred are conference requests for new rooms that arrived during
	// the handover: the next process answers them.
	Deferred []string `json:"deferred_requests,omitempty"`
	// Budgets are what each participant may still cause (limits.go).
	Budgets []budgetState `json:"budgets,omitempty"`
}

type streamState struct {
	ID         string    `json:"id"`
	JID        string    `json:"jid"`
	MaxSeconds int       `json:"max_seconds"`
	In         uint32    `json:"h_in"`  // stanzas received (the h we resume with)
	Acked      uint32    `json:"acked"` // the last h the server acknowledged
	Unacked    []string  `json:"unacked"`
	LostAt     time.Time `json:"lost_at"`
}

type conferenceState struct {
	Room          string               `json:"room"`
	MeetingID     string               `json:"meeting_id"`
	Created       time.Time            `json:"created"`
	Props         map[string]string    `json:"props,omitempty"`
	Joined        bool                 `json:"joined"`
	Configured    bool                 `json:"configured"`
	Members       []memberState        `json:"members"`
	Sources       SourceSet            `json:"sources"`
	Sessions      []bridgeSessionState `json:"bridge_sessions"`
	NoBridge      bool                 `json:"no_bridge,omitempty"`
	LastPresence  string               `json:"last_presence,omitempty"`
	Requests      int                  `json:"requests"`
	Gen           int                  `json:"gen"`
	PendingOwners []string             `json:"pending_owners,omitempty"`
	// Features is the features' state of the conference, by feature
	// name: see Feature.Save.
	Features map[string]json.RawMessage `json:"features,omitempty"`
	// Deadlines of the timers that were running (zero: not running).
	SingleDeadline  time.Time `json:"single_deadline,omitempty"`
	SourceDeadline  time.Time `json:"source_deadline,omitempty"`
	InitialDeadline time.Time `json:"initial_deadline,omitempty"`
}

type memberState struct {
	Nick          string    `json:"nick"`
	Occupant      string    `json:"occupant"`
	RealJID       string    `json:"real_jid"`
	Role          string    `json:"role"`
	Affiliation   string    `json:"affiliation"`
	CapsKey       string    `json:"caps,omitempty"`
	Features      Features  `json:"features"`
	FeaturesKnown bool      `json:"features_known"`
	Region        string    `json:"region,omitempty"`
	StatsID       string    `json:"stats_id,omitempty"`
	Jibri         bool      `json:"jibri,omitempty"`
	Jigasi        bool      `json:"jigasi,omitempty"`
	JoinedAt      time.Time `json:"joined_at"`
	Invite        int       `json:"invite"`
	Inviting      bool      `json:"inviting,omitempty"`
	Failed        bool      `json:"failed,omitempty"`
	HungUp        bool      `json:"hung_up,omitempty"` // ended its session itself: not re-invited
	Attempts      int       `json:"attempts,omitempty"`
	Bridge        string    `json:"bridge,omitempty"`
	SID           string    `json:"sid,omitempty"`
	State         string    `json:"state"` // none, pending, active
	Signaled      SourceSet `json:"signaled"`
	IceGeneration int       `json:"ice_generation,omitempty"`
	Initiated     bool      `json:"initiated,omitempty"`
	StartMuted    [2]bool   `json:"start_muted"`
}

type bridgeSessionState struct {
	JID        string          `json:"jid"`
	ID         string          `json:"conference_id"`
	Region     string          `json:"region,omitempty"`
	RelayID    string          `json:"relay_id,omitempty"`
	CreateSent bool            `json:"create_sent"`
	Feedback   EndpointSources `json:"feedback"`
	Endpoints  []string        `json:"endpoints"`
}

type bridgeState struct {
	JID          string  `json:"jid"`
	Nick         string  `json:"nick"`
	Stress       float64 `json:"stress"`
	AvgStress    float64 `json:"avg_participant_stress,omitempty"`
	Region       string  `json:"region,omitempty"`
	RelayID      string  `json:"relay_id,omitempty"`
	Version      string  `json:"version,omitempty"`
	Release      string  `json:"release,omitempty"`
	Drain        bool    `json:"drain,omitempty"`
	Graceful     bool    `json:"graceful,omitempty"`
	ShuttingDown bool    `json:"shutting_down,omitempty"`
	Healthy      *bool   `json:"healthy,omitempty"`
	Conferences  int     `json:"conferences"`
	Participants int     `json:"participants"`
	Endpoints    int     `json:"endpoints"`
}

// Where the state file lives ---------------------------------------------------

// defaultStateFile is where the state file goes when the config does not
// say: systemd's StateDirectory, else docker-jitsi-meet's /config volume
// (it survives the container's re-creation), else /var/lib/minifocus.
func defaultStateFile(getenv func(string) string) string {
	if d := getenv("STATE_DIRECTORY"); d != "" {
		// systemd may list several directories, separated by colons.
		d, _, _ = strings.Cut(d, ":")
		return filepath.Join(d, "state.json")
	}
	if fi, err := os.Stat("/config"); err == nil && fi.IsDir() {
		return "/config/minifocus-state.json"
	}
	return "/var/lib/minifocus/state.json"
}

// resolveStateFile turns the state-file setting into a path: "" means the
// default, "off" (or "none") turns the handover off.
func resolveStateFile(setting string, getenv func(string) string) string {
	switch strings.ToLower(strings.TrimSpace(setting)) {
	case "":
		return defaultStateFile(getenv)
	case "off", "none", "false":
		return ""
	}
	return setting
}

// Reading and writing the file ----------------------------------------------

// writeHandoverFile writes st atomically: a temporary file in the same
// directory, synced, renamed over path; mode 0600 (it holds session ids).
func writeHandoverFile(path string, st *HandoverState) error {
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode the state: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	f, err := os.CreateTemp(dir, ".minifocus-state-*")
	if err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("state file: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("write the state file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync the state file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close the state file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	ok = true
	if d, err := os.Open(dir); err == nil { // make the rename durable
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// checkWritable makes sure the state file's directory exists and takes a
// new file.
func checkWritable(path string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	f, err := os.CreateTemp(dir, ".minifocus-state-*")
	if err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// errNoStateFile: there is nothing to hand over (the normal fresh start).
var errNoStateFile = errors.New("no state file")

// takeHandoverFile reads and deletes the state file, and checks that it can
// be used now: right version, and young enough for Prosody to still hold
// the session.
func takeHandoverFile(path string, now time.Time) (*HandoverState, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errNoStateFile
	}
	if err != nil {
		return nil, fmt.Errorf("read the state file: %w", err)
	}
	// Consumed at once: a crash below must not make the next start try it
	// again.
	if err := os.Remove(path); err != nil {
		return nil, fmt.Errorf("cannot delete the state file after reading it (it would be used twice): %w", err)
	}
	var probe struct {
		Version int `json:"version"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return nil, fmt.Errorf("corrupt state file: %w", err)
	}
	if probe.Version != handoverVersion {
		return nil, fmt.Errorf("state file of format version %d, this minifocus reads version %d", probe.Version, handoverVersion)
	}
	st := &HandoverState{}
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("corrupt state file: %w", err)
	}
	if st.Stream.ID == "" || st.Stream.JID == "" || st.Stream.MaxSeconds <= 0 || st.Stream.LostAt.IsZero() {
		return nil, errors.New("corrupt state file: no resumable stream in it")
	}
	max := time.Duration(st.Stream.MaxSeconds) * time.Second
	if age := now.Sub(st.Stream.LostAt); age+handoverLoginMargin >= max {
		return nil, fmt.Errorf("stale state file: written %s ago, Prosody keeps a session %s", age.Round(time.Millisecond), max)
	}
	return st, nil
}

// The stream -----------------------------------------------------------------

// exportStream is the stream management state after the connection was
// closed for a handover; ok is false when the stream cannot be resumed.
func (c *XMPPClient) exportStream() (streamState, bool) {
	m := &c.sm
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.id == "" || m.lostAt.IsZero() {
		return streamState{}, false
	}
	st := streamState{
		ID: m.id, JID: m.jid.String(), MaxSeconds: int(m.max / time.Second),
		In: m.in, Acked: m.acked, LostAt: m.lostAt,
	}
	for _, b := range m.unacked {
		st.Unacked = append(st.Unacked, string(b))
	}
	for _, b := range m.gap {
		st.Unacked = append(st.Unacked, string(b))
	}
	return st, true
}

// resumable reports whether the live stream could be resumed by another
// process (stream management on, with a resumption id).
func (c *XMPPClient) resumable() bool {
	c.sm.mu.Lock()
	defer c.sm.mu.Unlock()
	return c.sm.enabled && c.sm.id != ""
}

// adoptStream takes over the previous process's stream: the next login
// resumes it. Call before Run.
func (c *XMPPClient) adoptStream(st streamState) error {
	j, err := jid.Parse(st.JID)
	if err != nil {
		return fmt.Errorf("bad JID in the state file: %w", err)
	}
	m := &c.sm
	m.mu.Lock()
	defer m.mu.Unlock()
	m.enabled, m.offer, m.didResume = true, false, false
	m.id, m.jid = st.ID, j
	m.max = time.Duration(st.MaxSeconds) * time.Second
	m.in, m.acked = st.In, st.Acked
	m.unacked = nil
	for _, s := range st.Unacked {
		m.unacked = append(m.unacked, []byte(s))
	}
	m.out = st.Acked + uint32(len(m.unacked))
	m.gap = nil
	m.lostAt = st.LostAt
	c.adopted.Store(true)
	return nil
}

// adoptionRefused: the stream of the previous process could not be resumed
// (Prosody restarted, the hibernation ran out, the queue overflowed). Its
// rooms are gone; the session callbacks see the loss before the new login.
func (c *XMPPClient) adoptionRefused() {
	c.log.Warn("handover: Prosody did not resume the previous process's stream; the restored conferences end and this is a fresh start")
	c.failWaiters()
	if c.onRefused != nil {
		c.onRefused()
	}
	for _, f := range c.onSession {
		f(false)
	}
}

// waitConnected waits until a session is up, or for d at most.
func (c *XMPPClient) waitConnected(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		if up, _ := c.Connected(); up {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitIdle waits until no IQ awaits its answer, or until the deadline.
func (c *XMPPClient) waitIdle(deadline time.Time) bool {
	for {
		c.waitMu.Lock()
		n := len(c.waiters)
		c.waitMu.Unlock()
		if n == 0 {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Conferences ------------------------------------------------------------------

// noteDeadline remembers when a timer armed by later fires (Go's timers do
// not tell), for the handover. Only the timers the conference holds now are
// kept. It runs on the conference goroutine.
func (c *Conference) noteDeadline(t *time.Timer, d time.Duration) {
	if c.deadlines == nil {
		c.deadlines = map[*time.Timer]time.Time{}
	}
	if len(c.deadlines) >= 16 {
		held := map[*time.Timer]bool{c.singleTimer: true, c.sourceTimer: true, c.initialTimer: true}
		for k := range c.deadlines {
			if !held[k] {
				delete(c.deadlines, k)
			}
		}
	}
	c.deadlines[t] = time.Now().Add(d)
}

// deadlineOf is when t fires, or fallback when that is not known.
func (c *Conference) deadlineOf(t *time.Timer, fallback time.Time) time.Time {
	if d, ok := c.deadlines[t]; ok && t != nil {
		return d
	}
	return fallback
}

var sessionStateNames = map[sessionState]string{sessNone: "none", sessPending: "pending", sessActive: "active"}

// retire writes the conference's state down and ends its goroutine without
// a word to anyone: the room, the sessions and the bridge allocations stay
// as they are for the next process. It runs on the conference goroutine.
// ok is false for a conference that is not in a state worth handing over
// (still joining its room): that one leaves its room.
func (c *Conference) retire(now time.Time) (cs conferenceState, ok bool) {
	c.stopped = true
	c.f.forget(c)
	c.f.metrics.Participants.Sub(float64(len(c.members)))
	c.stopMu.Lock()
	c.reason = "handed over to the next process"
	c.stopMu.Unlock()
	if !isJoined(c) {
		c.send(NewElement(nsClient, "presence", "to", c.self, "type", "unavailable"))
		c.stopMu.Lock()
		c.reason = "still joining its room at the handover: left it"
		c.stopMu.Unlock()
		return cs, false
	}
	cs = conferenceState{
		Room: c.room, MeetingID: c.meetingID, Created: c.created, Props: c.props,
		Joined: true, Configured: c.configured, Sources: c.sources.Snapshot(),
		NoBridge: c.noBridge, LastPresence: c.lastPresence, Requests: c.requests, Gen: c.gen,
	}
	for _, nick := range c.order {
		m := c.members[nick]
		if m == nil {
			continue
		}
		cs.Members = append(cs.Members, memberState{
			Nick: m.Nick, Occupant: m.Occupant, RealJID: m.RealJID, Role: m.Role, Affiliation: m.Affiliation,
			CapsKey: m.CapsKey, Features: m.Features, FeaturesKnown: m.featuresKnown, Region: m.Region,
			StatsID: m.StatsID, Jibri: m.Jibri, Jigasi: m.Jigasi, JoinedAt: m.joinedAt, Invite: m.invite,
			Inviting: m.inviting, Failed: m.failed, HungUp: m.hungUp, Attempts: m.attempts, Bridge: m.bridge, SID: m.sid,
			State: sessionStateNames[m.state], Signaled: m.signaled, IceGeneration: m.iceGeneration,
			Initiated: m.initiated, StartMuted: m.startMuted,
		})
	}
	for _, s := range c.sessions {
		bs := bridgeSessionState{JID: s.jid, ID: s.id, Region: s.region, RelayID: s.relayID,
			CreateSent: s.createSent, Feedback: s.feedback}
		for ep := range s.endpoints {
			bs.Endpoints = append(bs.Endpoints, ep)
		}
		sort.Strings(bs.Endpoints)
		cs.Sessions = append(cs.Sessions, bs)
	}
	sort.Slice(cs.Sessions, func(i, j int) bool { return cs.Sessions[i].JID < cs.Sessions[j].JID })
	for o := range c.pendingOwners {
		cs.PendingOwners = append(cs.PendingOwners, o)
	}
	sort.Strings(cs.PendingOwners)
	if fs, err := c.saveFeatures(); err != nil {
		c.log.Warn("handover: a feature's state is not carried over", "err", err)
	} else {
		cs.Features = fs
	}
	// Timers, as the deadlines later noted. The initial timer is also
	// reset in place, so its deadline is taken as a full period from now
	// (the latest it can be).
	cc := c.cfg().Conference
	if c.singleTimer != nil && len(c.members) == 1 {
		for _, m := range c.members {
			if m.sid != "" || m.inviting { // not fired yet: a session to end
				cs.SingleDeadline = c.deadlineOf(c.singleTimer, now.Add(cc.SingleParticipantTimeout.Duration))
			}
		}
	}
	if c.sourceTimer != nil {
		cs.SourceDeadline = c.deadlineOf(c.sourceTimer, now.Add(cc.SourceSignalingDelays.For(len(c.members))))
	}
	if len(c.members) == 0 {
		cs.InitialDeadline = now.Add(cc.InitialTimeout.Duration)
	}
	return cs, true
}

// handOverConference asks c's goroutine for its state and retires it.
func handOverConference(ctx context.Context, c *Conference) (conferenceState, bool) {
	type result struct {
		cs conferenceState
		ok bool
	}
	ch := make(chan result, 1)
	if !c.postWait(event{kind: evFunc, fn: func() {
		cs, ok := c.retire(time.Now())
		ch <- result{cs, ok}
	}}) {
		return conferenceState{}, false
	}
	select {
	case r := <-ch:
		return r.cs, r.ok
	case <-c.done:
		select {
		case r := <-ch:
			return r.cs, r.ok
		default:
			return conferenceState{}, false
		}
	case <-ctx.Done():
		return conferenceState{}, false
	}
}

// restoreConference starts a conference from its saved state. Its
// goroutine starts with the state in place, so the stanzas Prosody replays
// find it as the previous process left it.
func (f *Focus) restoreConference(cs conferenceState, now time.Time) error {
	room, err := f.validateRoom(cs.Room)
	if err != nil {
		return err
	}
	if !cs.Joined {
		return errors.New("the conference had not joined its room")
	}
	seen := map[string]bool{}
	for _, ms := range cs.Members {
		if ms.Nick == "" || seen[ms.Nick] || !strings.EqualFold(bareJID(ms.Occupant), room) {
			return fmt.Errorf("bad member %q", ms.Nick)
		}
		seen[ms.Nick] = true
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.confs[room] != nil {
		return errors.New("the room has a conference already")
	}
	c := newConference(f, room, cs.Props)
	c.restored = true
	c.created = cs.Created
	c.meetingID = cs.MeetingID
	if c.meetingID != "" {
		c.log = c.log.With("meeting_id", c.meetingID)
	}
	c.configured = cs.Configured
	c.noBridge = cs.NoBridge
	c.lastPresence = cs.LastPresence
	c.requests, c.gen = cs.Requests, cs.Gen
	huge := SourceLimits{MaxSSRCs: 1 << 20, MaxGroups: 1 << 20} // checked when they were added
	for _, owner := range cs.Sources.Owners() {
		if _, err := c.sources.TryAdd(owner, cs.Sources[owner], huge); err != nil {
			return fmt.Errorf("sources of %s: %w", owner, err)
		}
	}
	for _, bs := range cs.Sessions {
		s := &bridgeSession{jid: bs.JID, id: bs.ID, region: bs.Region, relayID: bs.RelayID,
			createSent: bs.CreateSent, feedback: bs.Feedback, endpoints: map[string]bool{}}
		for _, ep := range bs.Endpoints {
			s.endpoints[ep] = true
		}
		c.sessions[bs.JID] = s
	}
	var reinvite []string
	for _, ms := range cs.Members {
		m := &Participant{
			Nick: ms.Nick, Occupant: ms.Occupant, RealJID: ms.RealJID, Role: ms.Role, Affiliation: ms.Affiliation,
			CapsKey: ms.CapsKey, Features: ms.Features, featuresKnown: ms.FeaturesKnown, Region: ms.Region,
			StatsID: ms.StatsID, Jibri: ms.Jibri, Jigasi: ms.Jigasi, joinedAt: ms.JoinedAt, invite: ms.Invite,
			failed: ms.Failed, hungUp: ms.HungUp, attempts: ms.Attempts, bridge: ms.Bridge, sid: ms.SID, signaled: ms.Signaled,
			iceGeneration: ms.IceGeneration,
			initiated:     ms.Initiated, startMuted: ms.StartMuted, conf: f.cfg.Conference,
		}
		if m.signaled == nil {
			m.signaled = SourceSet{}
		}
		switch ms.State {
		case "pending":
			m.state = sessPending
		case "active":
			m.state = sessActive
		}
		if ms.Inviting {
			// The bridge's answer went to the previous process: the
			// allocation is made again.
			reinvite = append(reinvite, m.Nick)
		}
		c.members[m.Nick] = m
		c.order = append(c.order, m.Nick)
	}
	if err := c.restoreFeatures(cs.Features); err != nil {
		return err
	}
	close(c.joined)
	f.metrics.Participants.Add(float64(len(c.members)))
	f.confs[room] = c
	// First in the queue, before any replayed stanza: what needs the
	// goroutine (timers, re-invites, discovery still owed).
	c.postWait(event{kind: evFunc, fn: func() { c.afterRestore(cs, reinvite, now) }})
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		c.run()
		f.forget(c)
	}()
	return nil
}

// safeRestoreConference is restoreConference that turns a panic (a state
// no test foresaw) into an error: a bad conference must not stop the start.
func (f *Focus) safeRestoreConference(cs conferenceState, now time.Time) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("restoring it panicked: %v", r)
		}
	}()
	return f.restoreConference(cs, now)
}

// afterRestore runs first on a restored conference's goroutine: timers
// again, owed work done again.
func (c *Conference) afterRestore(cs conferenceState, reinvite []string, now time.Time) {
	left := func(t time.Time) time.Duration { return max(t.Sub(now), 0) }
	if !cs.SingleDeadline.IsZero() && len(c.members) == 1 {
		c.armSingleTimer()
		c.singleTimer.Reset(left(cs.SingleDeadline))
		c.noteDeadline(c.singleTimer, left(cs.SingleDeadline))
	}
	if len(c.members) == 0 {
		d := c.cfg().Conference.InitialTimeout.Duration
		if !cs.InitialDeadline.IsZero() {
			d = left(cs.InitialDeadline)
		}
		c.initialTimer = c.later(d, func() {
			if len(c.members) == 0 && !c.hookEnding(false) { // a feature may keep the room (breakout rooms)
				c.stop("nobody joined within the initial timeout", false)
			}
		})
	}
	if len(cs.PendingOwners) > 0 {
		c.pendingOwners = map[string]bool{}
		for _, o := range cs.PendingOwners {
			c.pendingOwners[o] = true
		}
		c.sourceTimer = c.later(left(cs.SourceDeadline), c.flushPendingSources)
	}
	for _, nick := range reinvite {
		m := c.members[nick]
		if m == nil {
			continue
		}
		if s := c.sessions[m.bridge]; s != nil {
			c.expireEndpoint(s, nick)
		}
		m.bridge, m.sid, m.state = "", "", sessNone
	}
	for _, nick := range c.order {
		if m := c.members[nick]; m != nil && !m.featuresKnown {
			c.discover(m)
		}
	}
	c.log.Info("conference restored from the previous process", "participants", len(c.members), "bridges", len(c.sessions))
	c.evaluate()
}

// endRestored ends every conference (their bridge conferences expired, their
// rooms left) and waits for them a moment: the rooms they were restored into
// are gone with the stream that could not be resumed.
func (f *Focus) endRestored(reason string) {
	deadline := time.After(2 * time.Second)
	for _, c := range f.all() {
		c.postWait(event{kind: evStop, reason: reason})
	}
	for _, c := range f.all() {
		select {
		case <-c.done:
		case <-deadline:
			return
		}
	}
}

// Bridges ----------------------------------------------------------------------

func (b *Bridges) exportState() []bridgeState {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]bridgeState, 0, len(b.bridges))
	for _, br := range b.bridges {
		out = append(out, bridgeState{
			JID: br.jid, Nick: br.nick, Stress: br.stress, AvgStress: br.avgPartStress, Region: br.region,
			RelayID: br.relayID, Version: br.version, Release: br.release, Drain: br.drain, Graceful: br.graceful,
			ShuttingDown: br.shuttingDown, Healthy: br.healthy, Conferences: br.conferences,
			Participants: br.participants, Endpoints: br.endpoints,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].JID < out[j].JID })
	return out
}

// restoreState fills the registry with the bridges the previous process
// knew, as if their last presence had just arrived: conferences can place
// a participant who joined in the gap before the brewery's occupant list
// comes back.
func (b *Bridges) restoreState(bridges []bridgeState) {
	for _, bs := range bridges {
		if !strings.EqualFold(strings.SplitN(bs.JID, "/", 2)[0], b.brewery) {
			continue // another brewery (the configuration changed)
		}
		stat := func(name, value string) *Element {
			return NewElement(nsColibri, "stat", "name", name, "value", value)
		}
		st := NewElement(nsColibri, "stats").Add(
			stat("stress_level", strconv.FormatFloat(bs.Stress, 'g', -1, 64)),
			stat("drain", strconv.FormatBool(bs.Drain)),
			stat("graceful_shutdown", strconv.FormatBool(bs.Graceful)),
			stat("shutting_down", strconv.FormatBool(bs.ShuttingDown)),
			stat("conferences", strconv.Itoa(bs.Conferences)),
			stat("participants", strconv.Itoa(bs.Participants)),
		)
		if bs.AvgStress > 0 {
			st.Add(stat("average_participant_stress", strconv.FormatFloat(bs.AvgStress, 'g', -1, 64)))
		}
		for _, kv := range [][2]string{{"region", bs.Region}, {"relay_id", bs.RelayID}, {"version", bs.Version}, {"release", bs.Release}} {
			if kv[1] != "" {
				st.Add(stat(kv[0], kv[1]))
			}
		}
		if bs.Healthy != nil {
			st.Add(stat("healthy", strconv.FormatBool(*bs.Healthy)))
		}
		b.updateBridge(bs.JID, bs.Nick, st)
		b.mu.Lock()
		if br := b.bridges[bridgeKey(bs.JID)]; br != nil {
			br.endpoints = bs.Endpoints
		}
		b.mu.Unlock()
	}
}

// Main: the handover and the restore ---------------------------------------------

// handoverCtl is Main's part of the handover.
type handoverCtl struct {
	requested atomic.Bool // the next stop is a handover
	draining  atomic.Bool // the handover has begun: new conferences wait for the next process
	mu        sync.Mutex
	deferred  []string // conference requests for new rooms received while draining
}

// maxDeferred bounds the conference requests kept for the next process.
const maxDeferred = 1000

// RequestHandover makes the next stop a handover to the next process
// (SIGTERM, SIGINT) rather than the end of every conference.
func (m *Main) RequestHandover() { m.ho.requested.Store(true) }

// deferRequests wraps the focus's conference request handler: while the
// handover drains, a request that would start a new conference is kept for
// the next process (it would not be joined in time here) instead of being
// answered.
func (m *Main) deferRequests() {
	orig := m.XMPP.iqHandlers[nsFocus]
	if orig == nil {
		return
	}
	m.XMPP.HandleIQ(nsFocus, func(iq *Element) {
		if m.ho.draining.Load() && iq.Attr("type") == "set" {
			if p := iq.Payload(); p != nil && p.Local == "conference" {
				if room, err := m.Focus.validateRoom(p.Attr("room")); err == nil && m.Focus.lookup(room) == nil {
					m.ho.mu.Lock()
					if len(m.ho.deferred) < maxDeferred {
						m.ho.deferred = append(m.ho.deferred, iq.String())
						m.ho.mu.Unlock()
						return
					}
					m.ho.mu.Unlock()
				}
			}
		}
		orig(iq)
	})
}

// runDeferred hands the conference requests the previous process kept to
// the usual handler, once: after the stream is back, before what Prosody
// replays (they arrived before it).
func (m *Main) runDeferred(reqs []string) {
	var once sync.Once
	h := m.XMPP.iqHandlers[nsFocus]
	m.XMPP.OnSession(func(up bool) {
		if !up {
			return
		}
		once.Do(func() {
			for _, r := range reqs {
				if iq, err := ParseElement(r); err == nil && h != nil {
					h(iq)
				}
			}
		})
	})
}

// handOver runs instead of the shutdown when a handover was requested. It
// reports false, having changed nothing, when a handover is not possible
// (the caller then ends the conferences as usual).
func (m *Main) handOver(xcancel context.CancelFunc, xdone, sdone, bdone <-chan struct{}) bool {
	path := m.Config.StateFile
	switch {
	case path == "":
		m.Log.Info("handover off (state-file = \"off\"): ending the conferences")
		return false
	case !m.XMPP.resumable():
		m.Log.Warn("handover impossible: the XMPP stream is not resumable (does Prosody load mod_smacks?); ending the conferences")
		return false
	}
	if err := checkWritable(path); err != nil {
		// Found out now, while the meetings can still be ended cleanly.
		m.Log.Error("handover impossible: the state file cannot be written; ending the conferences", "path", path, "err", err)
		return false
	}
	start := time.Now()
	m.ho.draining.Store(true)
	m.HTTP.SetShuttingDown()
	// In flight: answers from bridges and clients still to come. New work
	// arriving meanwhile is handled too; whatever Prosody delivers after
	// the connection is closed goes to the next process.
	if !m.XMPP.waitIdle(start.Add(handoverDrain)) {
		m.Log.Info("handover: some IQs were still unanswered after the drain; their answers go to the next process")
	}
	m.XMPP.detach.Store(true)
	xcancel()
	select {
	case <-xdone:
	case <-time.After(2 * time.Second):
		m.Log.Warn("handover: the XMPP connection did not close in time")
	}
	st := &HandoverState{Version: handoverVersion, Written: time.Now(), PID: os.Getpid()}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	running := m.Focus.all()
	for _, c := range running {
		if cs, ok := handOverConference(ctx, c); ok {
			st.Conferences = append(st.Conferences, cs)
		} else if isJoined(c) {
			// It did not write its state down in time: not to be left half
			// alive in the next process, it leaves its room (the next
			// process sends this with the rest); its clients start again.
			m.Log.Warn("handover: conference not handed over; leaving its room", "room", c.room)
			_ = m.XMPP.Send(NewElement(nsClient, "presence", "to", c.self, "type", "unavailable"))
		}
	}
	cancel()
	sort.Slice(st.Conferences, func(i, j int) bool { return st.Conferences[i].Room < st.Conferences[j].Room })
	m.ho.mu.Lock()
	st.Deferred = m.ho.deferred
	m.ho.mu.Unlock()
	st.Bridges = m.Bridges.exportState()
	st.Features = m.Focus.saveFeatures()
	st.Budgets = m.Focus.budgets.export(time.Now())
	// Last: what the conferences sent while retiring is in the stream's
	// queue now.
	stream, ok := m.XMPP.exportStream()
	if !ok {
		m.Log.Error("handover failed: the stream's resumption data is gone; the conferences are lost to the next process")
	} else {
		st.Stream = stream
		if err := writeHandoverFile(path, st); err != nil {
			m.Log.Error("handover failed: cannot write the state file; the next process starts fresh", "path", path, "err", err)
		} else {
			m.Log.Info("handed over: state written for the next process", "path", path, "conferences", len(st.Conferences),
				"of", len(running), "unacked_stanzas", len(stream.Unacked), "took", time.Since(start).Round(time.Millisecond))
		}
	}
	<-bdone
	select {
	case <-sdone:
	case <-time.After(2 * time.Second):
	}
	m.HTTP.Shutdown(3 * time.Second)
	m.Log.Info("stopped")
	return true
}

// restoreHandover takes over from the previous process, if it left a
// usable state file. It runs before the XMPP connection starts.
func (m *Main) restoreHandover() {
	path := m.Config.StateFile
	if path == "" {
		return
	}
	m.deferRequests()
	now := time.Now()
	st, err := takeHandoverFile(path, now)
	switch {
	case errors.Is(err, errNoStateFile):
		m.Log.Info("no handover state file: fresh start", "path", path)
		return
	case err != nil:
		m.Log.Warn("handover state file not used: fresh start", "path", path, "err", err)
		return
	}
	if err := m.XMPP.adoptStream(st.Stream); err != nil {
		m.Log.Warn("handover state file not used: fresh start", "path", path, "err", err)
		return
	}
	// The features' state (components found by discovery, needed before
	// the first replayed stanza; pins; logins) before the conferences.
	m.Focus.restoreFeatures(st.Features)
	m.XMPP.onRefused = func() { m.Focus.endRestored("the previous process's XMPP stream could not be resumed") }
	if m.ServiceXMPP != nil {
		// What Prosody replays may need a bridge at once (a join in the
		// gap): the bridges' own connection logs in first.
		m.XMPP.beforeAdopt = func() { m.ServiceXMPP.waitConnected(3 * time.Second) }
	}
	m.Bridges.restoreState(st.Bridges)
	m.Focus.budgets.restore(st.Budgets, now)
	if len(st.Deferred) > 0 {
		m.runDeferred(st.Deferred)
	}
	restored := 0
	for _, cs := range st.Conferences {
		if err := m.Focus.safeRestoreConference(cs, now); err != nil {
			// Its participants see the focus in the room but no
			// conference: leaving the room tells their clients to start
			// again (they send a new conference request).
			m.Log.Warn("handover: conference not restored; leaving its room", "room", cs.Room, "err", err)
			if cs.Room != "" {
				_ = m.XMPP.Send(NewElement(nsClient, "presence", "to", cs.Room+"/"+m.Config.XMPP.Username, "type", "unavailable"))
			}
			for _, bs := range cs.Sessions {
				if bs.CreateSent && cs.MeetingID != "" {
					iq := ColibriIQ(bs.JID, BuildConferenceModify(ColibriRequest{MeetingID: cs.MeetingID, Expire: true}))
					_ = m.Focus.bx.Send(iq.Set("id", randomID()))
				}
			}
			continue
		}
		restored++
	}
	m.Log.Info("handover: state taken over from the previous process; resuming its XMPP stream", "conferences", restored,
		"of", len(st.Conferences), "bridges", len(st.Bridges), "written", now.Sub(st.Written).Round(time.Millisecond))
}

// Addresses found by discovery ---------------------------------------------------

// saveDiscovered is the state a feature keeps of a component address found
// by discovery: needed before the first replayed stanza (it is discovered
// again later).
func saveDiscovered(v *atomic.Value) (json.RawMessage, error) {
	addr, _ := v.Load().(string)
	if addr == "" {
		return nil, nil
	}
	return json.Marshal(addr)
}

// restoreDiscovered puts a saved address back unless the configuration
// names one.
func restoreDiscovered(v *atomic.Value, configured string, raw json.RawMessage) error {
	var addr string
	if err := json.Unmarshal(raw, &addr); err != nil {
		return err
	}
	if addr != "" && configured == "" {
		v.Store(addr)
	}
	return nil
}

// Doctor ---------------------------------------------------------------------------

// handoverMinHibernation is the least hibernation time the doctor accepts:
// a restart (stop, start, login) must fit in it with room to spare.
const handoverMinHibernation = 10 * time.Second

// checkHandover tells whether a restart can hand the meetings over: Prosody
// must offer stream management with resumption (mod_smacks) and keep a
// lost session long enough; the state file's directory must exist.
func (d *doctor) checkHandover() {
	if d.sess == nil {
		d.skip("the focus did not log in", "handover")
		return
	}
	c := d.sess.x
	deadline := time.Now().Add(min(d.step, 3*time.Second))
	var enabled bool
	var id string
	var hib time.Duration
	for {
		c.sm.mu.Lock()
		enabled, id, hib = c.sm.enabled, c.sm.id, c.sm.max
		c.sm.mu.Unlock()
		if enabled || time.Now().After(deadline) || d.outOfTime() {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	smFix := "load mod_smacks in Prosody (add \"smacks\" to modules_enabled in prosody.cfg.lua; Jitsi's and docker-jitsi-meet's configurations do) and set smacks_hibernation_time = 60, then restart Prosody"
	switch {
	case !enabled:
		d.warn("handover", "Prosody does not offer stream management (XEP-0198): a restart of the focus ends every meeting", smFix)
		return
	case id == "":
		d.warn("handover", "Prosody offers stream management without resumption: a restart of the focus ends every meeting", smFix)
		return
	case hib < handoverMinHibernation:
		d.warn("handover", fmt.Sprintf("Prosody keeps a lost session only %s: a restart of the focus that takes longer ends every meeting", hib),
			"set smacks_hibernation_time = 60 in prosody.cfg.lua, then restart Prosody")
		return
	}
	path := resolveStateFile(d.cfg.StateFile, d.getenv)
	if path == "" {
		d.ok("handover", "Prosody keeps a lost session %s, but the handover is off (state-file = \"off\"): SIGTERM ends every meeting", hib)
		return
	}
	note := ""
	if fi, err := os.Stat(filepath.Dir(path)); err != nil || !fi.IsDir() {
		// Created at the first handover, where the focus may write (under
		// systemd's ProtectSystem=strict only with StateDirectory=minifocus).
		note = " (its directory does not exist yet here)"
	}
	d.ok("handover", "Prosody keeps a lost session %s (XEP-0198): a restart (SIGTERM) hands the meetings over through %s%s", hib, path, note)
}

// saveFeatures collects the features' state of c for the state file, by
// feature name. It runs on the conference goroutine.
func (c *Conference) saveFeatures() (map[string]json.RawMessage, error) {
	var out map[string]json.RawMessage
	for _, ft := range c.feats() {
		if ft.Save == nil {
			continue
		}
		raw, err := ft.Save(c)
		if err != nil {
			return nil, fmt.Errorf("saving %s: %w", ft.Name, err)
		}
		if raw == nil {
			continue
		}
		if out == nil {
			out = map[string]json.RawMessage{}
		}
		out[ft.Name] = raw
	}
	return out, nil
}

// restoreFeatures hands each feature its saved state of c. State of a
// feature this build does not have is dropped.
func (c *Conference) restoreFeatures(saved map[string]json.RawMessage) error {
	for _, ft := range c.feats() {
		raw, ok := saved[ft.Name]
		if !ok || ft.Restore == nil {
			continue
		}
		if err := ft.Restore(c, raw); err != nil {
			return fmt.Errorf("restoring %s: %w", ft.Name, err)
		}
	}
	return nil
}

// saveFeatures collects the features' state on the Focus, by feature name;
// a feature that cannot save is left out (and said).
func (f *Focus) saveFeatures() map[string]json.RawMessage {
	var out map[string]json.RawMessage
	for _, ft := range f.featureList() {
		if ft.SaveFocus == nil {
			continue
		}
		raw, err := ft.SaveFocus(f)
		if err != nil {
			f.log.Warn("handover: feature state not saved", "feature", ft.Name, "err", err)
			continue
		}
		if raw == nil {
			continue
		}
		if out == nil {
			out = map[string]json.RawMessage{}
		}
		out[ft.Name] = raw
	}
	return out
}

// restoreFeatures hands each feature its saved state on the Focus; a
// feature whose state is unusable starts without it (and says so).
func (f *Focus) restoreFeatures(saved map[string]json.RawMessage) {
	for _, ft := range f.featureList() {
		raw, ok := saved[ft.Name]
		if !ok || ft.RestoreFocus == nil {
			continue
		}
		if err := ft.RestoreFocus(f, raw); err != nil {
			f.log.Warn("handover: feature state not restored", "feature", ft.Name, "err", err)
		}
	}
}
