package main

// bridgepolicy.go: optional feature: bridge version pinning (/pin).

import (
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"time"
)

// Pin keeps a room's new conferences on bridges of one version (Jicofo's
// /pin, docs/bridges.md#versions-and-pinning), for trying a bridge release on one meeting.
type Pin struct {
	Room    string    `json:"conferenceId"`
	Version string    `json:"jvbVersion"`
	Expires time.Time `json:"expiresAt"`
}

// PinVersion pins room to bridge version for d (replacing an earlier pin).
// While it is in force, a conference of the room that has no bridge yet (or
// lost them all) starts on a bridge of that version; once it has bridges,
// their version rules, as for any conference.
func (f *Focus) PinVersion(room, version string, d time.Duration) error {
	room, err := f.validateRoom(room)
	if err != nil {
		return err
	}
	version = strings.TrimSpace(version)
	if version == "" || len(version) > 128 {
		return Errorf("bad-request", "jvbVersion must be a bridge version such as 2.3-61-g814bffd6")
	}
	if d <= 0 || d > maxPinDuration {
		return Errorf("bad-request", "durationMinutes must be between 1 and %d", int(maxPinDuration.Minutes()))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if pinsOf(f).pins == nil {
		pinsOf(f).pins = map[string]Pin{}
	}
	pinsOf(f).pins[room] = Pin{Room: room, Version: version, Expires: time.Now().Add(d)}
	f.log.Info("room pinned to a bridge version", "room", room, "version", version, "for", d)
	return nil
}

// Unpin removes room's pin; false when there was none.
func (f *Focus) Unpin(room string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	room = roomKey(room)
	_, ok := pinsOf(f).pins[room]
	delete(pinsOf(f).pins, room)
	return ok
}

// Pins lists the pins in force, by room.
func (f *Focus) Pins() []Pin {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []Pin{}
	now := time.Now()
	for room, p := range pinsOf(f).pins {
		if now.After(p.Expires) {
			delete(pinsOf(f).pins, room)
			continue
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Room < out[j].Room })
	return out
}

// pinnedVersion is the version room is pinned to now, or "": looked up at
// every bridge selection, so expiry and removal reach running conferences.
func (f *Focus) pinnedVersion(room string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p, ok := pinsOf(f).pins[room]; ok && time.Now().Before(p.Expires) {
		return p.Version
	}
	return ""
}

// pins lists the bridge version pins (Jicofo's GET /pin).
func (h *HTTPServer) pins(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, h.m.Focus.Pins())
}

// pin pins a room's new conferences to a bridge version: body
// {"conferenceId":"room@muc","jvbVersion":"2.3-61-g814bffd6","durationMinutes":60}.
func (h *HTTPServer) pin(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Room     string `json:"conferenceId"`
		Version  string `json:"jvbVersion"`
		Duration int    `json:"durationMinutes"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequestBody)).Decode(&body); err != nil {
		http.Error(w, "Bad request: "+err.Error(), http.StatusBadRequest)
		return
	}
	if err := h.m.Focus.PinVersion(body.Room, body.Version, time.Duration(body.Duration)*time.Minute); err != nil {
		http.Error(w, "Bad request: "+err.Error(), http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// unpin removes a room's pin: body {"conferenceId":"room@muc"}.
func (h *HTTPServer) unpin(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Room string `json:"conferenceId"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequestBody)).Decode(&body); err != nil || body.Room == "" {
		http.Error(w, "Bad request: Missing parameter: conferenceId", http.StatusBadRequest)
		return
	}
	h.m.Focus.Unpin(body.Room)
	w.WriteHeader(http.StatusOK)
}

func bridgePolicyFeature() Feature {
	return Feature{Name: "bridge-policy", FocusState: func() any { return new(pinState) }, SaveFocus: savePins, RestoreFocus: restorePins, Setup: func(m *Main) {
		m.Focus.pinned = m.Focus.pinnedVersion
		m.HTTP.pmux.HandleFunc("GET /pin", m.HTTP.pins)
		m.HTTP.pmux.HandleFunc("POST /pin", m.HTTP.pin)
		m.HTTP.pmux.HandleFunc("POST /pin/remove", m.HTTP.unpin)
	}}
}

// pinState is version pinning's state on the Focus.
type pinState struct {
	pins map[string]Pin // by room, under Focus.mu
}

func pinsOf(f *Focus) *pinState { return focusState[pinState](f) }

// savePins carries the version pins across a restart.
func savePins(f *Focus) (json.RawMessage, error) {
	pins := f.Pins()
	if len(pins) == 0 {
		return nil, nil
	}
	return json.Marshal(pins)
}

func restorePins(f *Focus, raw json.RawMessage) error {
	var pins []Pin
	if err := json.Unmarshal(raw, &pins); err != nil {
		return err
	}
	for _, p := range pins {
		if d := time.Until(p.Expires); d > 0 {
			_ = f.PinVersion(p.Room, p.Version, d)
		}
	}
	return nil
}

// maxPinDuration bounds a pin; a forgotten one must not outlive a release.
const maxPinDuration = 7 * 24 * time.Hour
