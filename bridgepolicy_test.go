package main

import (
	"encoding/json"
	"minifocus/testkit"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A room pinned to a bridge version (POST /pin) starts its conferences on
// bridges of that version only; bad pins are refused; GET /pin lists pins
// and /pin/remove lifts them.
func TestConferencePinnedBridgeVersion(t *testing.T) {
	s := startStack(t, 0)
	s.addBridge("old", "").SetVersion("2.3.100")
	newer := s.addBridge("new", "")
	newer.SetVersion("2.3.200")
	newer.SetStress(0.5) // least-load alone would never pick it
	s.wait("bridges with their versions", func() bool {
		in, ok := s.focus.Bridges.Info(newer.JID())
		return s.focus.Bridges.OperationalCount() == 2 && ok && in.Version == "2.3.200" && in.Stress == 0.5
	})
	base := "http://" + s.focus.HTTP.PrivateAddr()
	post := func(path, body string) int {
		t.Helper()
		resp, err := http.Post(base+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	room := "pinned@conference.meet.test"
	for body, why := range map[string]string{
		`{"conferenceId":"pinned@elsewhere.test","jvbVersion":"2.3.200","durationMinutes":5}`:       "room outside the MUC",
		`{"conferenceId":"pinned@conference.meet.test","jvbVersion":"","durationMinutes":5}`:        "no version",
		`{"conferenceId":"pinned@conference.meet.test","jvbVersion":"2.3.200","durationMinutes":0}`: "no duration",
		`not json`: "not JSON",
	} {
		if code := post("/pin", body); code != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", why, code)
		}
	}
	if code := post("/pin", `{"conferenceId":"Pinned@conference.meet.test","jvbVersion":"2.3.200","durationMinutes":5}`); code != http.StatusOK {
		t.Fatalf("pin: status %d", code)
	}
	resp, err := http.Get(base + "/pin")
	if err != nil {
		t.Fatal(err)
	}
	var pins []Pin
	if err := json.NewDecoder(resp.Body).Decode(&pins); err != nil || len(pins) != 1 || pins[0].Room != room || pins[0].Version != "2.3.200" {
		t.Errorf("GET /pin: %+v %v", pins, err)
	}
	resp.Body.Close()
	p1 := s.join(room)
	p2 := s.join(room)
	s.wait("sessions", func() bool { return p1.Accepted() && p2.Accepted() })
	if s.bridgeOf(p1) != "new" || s.bridgeOf(p2) != "new" {
		t.Errorf("pinned room on %s and %s, want new", s.bridgeOf(p1), s.bridgeOf(p2))
	}
	// Another room is not affected.
	q1 := s.join("free@conference.meet.test")
	q2 := s.join("free@conference.meet.test")
	s.wait("free sessions", func() bool { return q1.Accepted() && q2.Accepted() })
	if s.bridgeOf(q1) != "old" {
		t.Errorf("an unpinned room went to %s, want the least loaded (old)", s.bridgeOf(q1))
	}
	if code := post("/pin/remove", `{"conferenceId":"pinned@conference.meet.test"}`); code != http.StatusOK {
		t.Errorf("unpin: status %d", code)
	}
	if pins := s.focus.Focus.Pins(); len(pins) != 0 {
		t.Errorf("pins after removal: %+v", pins)
	}
}

// A pinned version admits bridges whose version-release or version equals
// it, and none other, even when that leaves no bridge.
func TestBridgeSelectPinnedVersion(t *testing.T) {
	h := newBridgeHarness(t, testBridgesConfig())
	h.addBridge(t, "a", "version", "2.3.100")
	h.addBridge(t, "b", "version", "2.3.200", "release", "g123", "stress_level", "0.5")
	for _, v := range []string{"2.3.200-g123", "2.3.200"} {
		c, err := h.b.Select(SelectRequest{Conference: "r@c", Version: v})
		if err != nil || nickOf(c.JID) != "b" {
			t.Errorf("pinned to %s: %v %v", v, c, err)
		}
	}
	if c, err := h.b.Select(SelectRequest{Conference: "r@c", Version: "9.9"}); err == nil || !strings.Contains(err.Error(), `"9.9"`) {
		t.Errorf("no bridge of the pinned version: %v %v", c, err)
	}
}

// Region strategy with region groups: when the participant's region has no
// bridge with room, a bridge in its group comes before the least loaded
// bridge elsewhere.
func TestBridgeRegionGroups(t *testing.T) {
	for _, tc := range []struct {
		groups [][]string
		want   string
	}{
		{nil, "use1"},
		{[][]string{{"eu-west", "eu-central"}, {"us-east"}}, "euc1"},
	} {
		cfg := testBridgesConfig()
		cfg.Strategy = "region"
		cfg.RegionGroups = tc.groups
		h := newBridgeHarness(t, cfg)
		h.addBridge(t, "euw1", "region", "eu-west", "stress_level", "0.9")
		h.addBridge(t, "euc1", "region", "eu-central", "stress_level", "0.3")
		h.addBridge(t, "use1", "region", "us-east", "stress_level", "0.1")
		c, err := h.b.Select(SelectRequest{Conference: "r@c", Region: "eu-west"})
		if err != nil || nickOf(c.JID) != tc.want {
			t.Errorf("groups %v: picked %v (%v), want %s", tc.groups, c, err, tc.want)
		} else if tc.groups != nil && !strings.Contains(c.Reason, "group") {
			t.Errorf("reason does not mention the group: %s", c.Reason)
		}
	}
}

// A version pin outlives a restart of the focus (SaveFocus/RestoreFocus
// through the state file).
func TestHandoverKeepsPin(t *testing.T) {
	stateFile := filepath.Join(t.TempDir(), "state.json")
	s := startStack(t, 1, func(c *Config, _ *testkit.Prosody) { c.StateFile = stateFile })
	room := "pinned@conference.meet.test"
	p1 := s.join(room)
	s.wait("p1 in the room", func() bool {
		snap := s.focus.Focus.Snapshots(s.ctx)
		return p1 != nil && len(snap) == 1 && len(snap[0].Participants) == 1
	})
	s.wait("stream management on", func() bool { return s.focus.XMPP.resumable() })
	if err := s.focus.Focus.PinVersion(room, "2.3-test", time.Hour); err != nil {
		t.Fatal(err)
	}
	handOverMain(t, s.focus)
	s.focus = startMain(t, s.focus.Config)
	s.wait("the conference restored", func() bool { return s.focus.Focus.lookup(room) != nil })
	if pins := s.focus.Focus.Pins(); len(pins) != 1 || pins[0].Room != room || pins[0].Version != "2.3-test" {
		t.Errorf("pins after the restart: %+v", pins)
	}
}
