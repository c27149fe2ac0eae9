package main

import "testing"

// Every Moderators hook runs even after one took over (authentication
// grants owners in a breakout room too); one refusal of an unmute drops
// the others' afters; one Ending that keeps the room keeps it.
func TestFeatureHooksCompose(t *testing.T) {
	var ran []string
	fs := []Feature{
		{Name: "a", Moderators: func(*Conference) bool { ran = append(ran, "a"); return true },
			Unmute: func(*Conference, *Participant, string) (bool, func()) {
				return true, func() { ran = append(ran, "after-a") }
			},
			Ending: func(*Conference, bool) bool { return true }},
		{Name: "none"},
		{Name: "b", Moderators: func(*Conference) bool { ran = append(ran, "b"); return false },
			Unmute: func(*Conference, *Participant, string) (bool, func()) { return false, nil },
			Ending: func(*Conference, bool) bool { ran = append(ran, "ending-b"); return false }},
	}
	c := &Conference{f: &Focus{feats: fs}}
	if !c.hookModerators() {
		t.Error("a Moderators hook took over, but hookModerators says none did")
	}
	if ok, after := c.hookUnmute(&Participant{}, nsMuteAudio); ok || after != nil {
		t.Errorf("unmute refused by b: got ok=%v with %d afters", ok, len(after))
	}
	if !c.hookEnding(false) {
		t.Error("a keeps the room, hookEnding says no")
	}
	want := []string{"a", "b", "ending-b"}
	if len(ran) != len(want) {
		t.Fatalf("ran %v, want %v", ran, want)
	}
	for i := range want {
		if ran[i] != want[i] {
			t.Fatalf("ran %v, want %v", ran, want)
		}
	}
}

// The list names each feature once, and each does something.
func TestFeatureListIsWellFormed(t *testing.T) {
	seen := map[string]bool{}
	for _, f := range features() {
		if f.Name == "" || seen[f.Name] {
			t.Errorf("feature name %q empty or repeated", f.Name)
		}
		seen[f.Name] = true
		if f.Setup == nil && f.Request == nil && f.Presence == nil && f.Room == nil && f.Moderators == nil &&
			f.Invite == nil && f.Bridge == nil && f.Unmute == nil && f.Ending == nil && f.InviteAlone == nil {
			t.Errorf("feature %s has no hook", f.Name)
		}
	}
}

// builtWith reports whether the feature named name is in this build's list
// (core tests that cover a feature's routes or state ask it, so that they
// still pass once the feature is removed).
func builtWith(name string) bool {
	for _, ft := range features() {
		if ft.Name == name {
			return true
		}
	}
	return false
}
