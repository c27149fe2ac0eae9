package main

import (
	"context"
	"encoding/json"
	"io"
	"reflect"
	"testing"
	"time"
)

// featureStateMain is a Main without a network, for the state hooks.
func featureStateMain() *Main {
	cfg := DefaultConfig()
	cfg.XMPP.Domain, cfg.XMPP.Password = "meet.test", "x"
	cfg.Auth = AuthConfig{Type: "xmpp", LoginDomain: "auth.meet.test", Lifetime: dur(time.Hour)}
	cfg.deriveDefaults()
	return NewMain(cfg, NewLogger(LogConfig{Level: "error"}, io.Discard))
}

// onlyBuilt keeps the entries of saved for the features this build has
// (a removed feature's state is dropped on restore).
func onlyBuilt(saved map[string]string) map[string]any {
	out := map[string]any{}
	for _, ft := range features() {
		if raw, ok := saved[ft.Name]; ok {
			var v any
			if err := json.Unmarshal([]byte(raw), &v); err != nil {
				panic(err)
			}
			out[ft.Name] = v
		}
	}
	return out
}

func decodeAll(t *testing.T, m map[string]json.RawMessage) map[string]any {
	t.Helper()
	out := map[string]any{}
	for k, raw := range m {
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatalf("%s saved bad JSON: %v", k, err)
		}
		out[k] = v
	}
	return out
}

// A conference's feature state (moderation, metadata, main room, a pending
// Jibri session with its deadline) goes through Restore and comes back out
// of Save unchanged, under each feature's name; a feature this build does
// not have is dropped; bad state of a feature refuses the conference.
func TestFeatureStateRoundTrip(t *testing.T) {
	m := featureStateMain()
	room := "state@" + m.Config.XMPP.MUCDomain
	deadline := time.Now().Add(time.Hour).Truncate(time.Second).UTC().Format(time.RFC3339)
	in := map[string]string{
		"av-moderation":  `{"media":{"audio":{"enabled":true,"whitelist":{"a":true}},"video":{"enabled":false}},"members":{"a":{"force_muted":[true,false],"self_unmuted":{"video":true}}}}`,
		"transcription":  `{"transcriber":"jvb@meet.test/b","metadata":{"startMuted":{"audio":true,"video":false},"recording":{"isTranscribingEnabled":false},"asyncTranscription":true,"transcription":{"httpHeaders":null,"urlParams":null}}}`,
		"breakout-rooms": `"main@` + m.Config.XMPP.MUCDomain + `"`,
		"jibri":          `{"recording":{"ID":"rec1","Mode":"file","StreamID":"","YoutubeID":"","AppData":"","Initiator":"a","SIP":"","DisplayName":"","Jibri":"jibri@meet.test/j","Status":"pending","Failure":"","Tried":["jibri@meet.test/j"],"PendingDeadline":"` + deadline + `"}}`,
		"cascade":        `["jvbbrewery@internal.auth.meet.test/a","jvbbrewery@internal.auth.meet.test/b"]`,
		"gone-feature":   `{"x":1}`,
	}
	cs := conferenceState{Room: room, Joined: true, Configured: true, Features: map[string]json.RawMessage{},
		Members: []memberState{{Nick: "a", Occupant: room + "/a", State: "active", SID: "sa"}},
		Sessions: []bridgeSessionState{{JID: "jvbbrewery@internal.auth.meet.test/a", ID: "ca"},
			{JID: "jvbbrewery@internal.auth.meet.test/b", ID: "cb"}, {JID: "jvbbrewery@internal.auth.meet.test/c", ID: "cc"}}}
	for k, v := range in {
		cs.Features[k] = json.RawMessage(v)
	}
	if err := m.Focus.safeRestoreConference(cs, time.Now()); err != nil {
		t.Fatal(err)
	}
	c := m.Focus.lookup(room)
	if c == nil {
		t.Fatal("conference not restored")
	}
	out, ok := handOverConference(context.Background(), c)
	if !ok {
		t.Fatal("conference not handed over")
	}
	if got, want := decodeAll(t, out.Features), onlyBuilt(in); !reflect.DeepEqual(got, want) {
		t.Errorf("feature state after a round trip:\n got %v\nwant %v", got, want)
	}

	bad := conferenceState{Room: "bad@" + m.Config.XMPP.MUCDomain, Joined: true,
		Features: map[string]json.RawMessage{}}
	for _, ft := range features() {
		if ft.Restore != nil {
			bad.Features[ft.Name] = json.RawMessage(`{"not":`)
		}
	}
	if len(bad.Features) > 0 {
		if err := m.Focus.safeRestoreConference(bad, time.Now()); err == nil {
			t.Error("a conference with unreadable feature state was restored")
		}
		if m.Focus.lookup(bad.Room) != nil {
			t.Error("the refused conference is registered")
		}
	}
}

// The Focus's feature state (discovered components, login sessions, pins)
// goes through RestoreFocus and comes back out of SaveFocus.
func TestFeatureFocusStateRoundTrip(t *testing.T) {
	m := featureStateMain()
	room := "pinned@" + m.Config.XMPP.MUCDomain
	expires := time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano)
	in := map[string]string{
		"av-moderation":  `"avmoderation.meet.test"`,
		"transcription":  `"metadata.meet.test"`,
		"breakout-rooms": `"breakout.meet.test"`,
		"authentication": `[{"ID":"s1","MachineUID":"m1","Identity":"u@auth.meet.test","User":"u","LastUsed":"2026-01-02T03:04:05Z"}]`,
		"gone-feature":   `[1]`,
	}
	saved := map[string]json.RawMessage{"bridge-policy": json.RawMessage(`[{"conferenceId":"` + room + `","jvbVersion":"2.3-test","expiresAt":"` + expires + `"}]`)}
	for k, v := range in {
		saved[k] = json.RawMessage(v)
	}
	m.Focus.restoreFeatures(saved)
	out := m.Focus.saveFeatures()
	if _, ok := onlyBuilt(map[string]string{"bridge-policy": "1"})["bridge-policy"]; ok && out["bridge-policy"] == nil {
		t.Error("the pin was not saved again")
	}
	delete(out, "bridge-policy") // its own test checks the values (TestHandoverKeepsPin)
	if got, want := decodeAll(t, out), onlyBuilt(in); !reflect.DeepEqual(got, want) {
		t.Errorf("focus feature state after a round trip:\n got %v\nwant %v", got, want)
	}
}
