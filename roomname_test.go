package main

import (
	"math/rand/v2"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"minifocus/testkit"
)

// Room names fold as Prosody's nodeprep folds them (every expected value is
// what Prosody 0.12's own nodeprep returns).
func TestNodeprep(t *testing.T) {
	same := map[string]string{
		"strasse":          "strasse",
		"STRASSE":          "strasse",
		"Straße":           "strasse",
		"STRAẞE":           "straẞe", // U+1E9E is not in Unicode 3.2: left alone
		"ΌΣΟΣ":             "όσοσ",
		"όσος":             "όσοσ",       // final sigma
		"ｓｔｒａｓｓｅ":          "strasse",    // fullwidth, by NFKC
		"soft\u00adhyphen": "softhyphen", // B.1: mapped to nothing
		"ﬁle":              "file",       // ligature
		"café":             "café",
		"cafe\u0301":       "café", // combining accent composed
		"İstanbul":         "i\u0307stanbul",
		"ǅ":                "d\u017e",
		"①":                "1",
		"\u212a":           "k", // Kelvin sign
		"שלום":             "שלום",
	}
	for in, want := range same {
		got, err := nodeprep(in)
		if err != nil || got != want {
			t.Errorf("nodeprep(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "a b", "a@b", "a/b", "a:b", "a<b", "a'b", "a\"b", "a&b",
		"a\u00a0b", "a\u2028b", "a\ue000b", "a\u200eb", "a\x01b", "\u00ad",
		"＠room",   // fullwidth @ becomes @ after NFKC
		"שלוםabc", // right-to-left mixed with left-to-right
	} {
		if got, err := nodeprep(bad); err == nil {
			t.Errorf("nodeprep(%q) = %q, want an error", bad, got)
		}
	}
}

// One conference per room as Prosody names it: every spelling of a room
// validates to the same key, and looking up any spelling finds it.
func TestValidateRoomFoldsLikeProsody(t *testing.T) {
	f := &Focus{cfg: Config{XMPP: XMPPConfig{MUCDomain: "conference.meet.test"}}, confs: map[string]*Conference{}}
	var keys []string
	for _, spelling := range []string{"strasse@conference.meet.test", "Straße@conference.meet.test", "STRASSE@Conference.Meet.Test"} {
		k, err := f.validateRoom(spelling)
		if err != nil {
			t.Fatalf("%s: %v", spelling, err)
		}
		keys = append(keys, k)
	}
	for _, k := range keys {
		if k != "strasse@conference.meet.test" {
			t.Fatalf("keys %v, want all strasse@conference.meet.test", keys)
		}
	}
	c := &Conference{room: keys[0]}
	f.confs[keys[0]] = c
	if f.lookup("straße@conference.meet.test") != c || f.lookup("STRASSE@conference.meet.test") != c {
		t.Fatal("lookup by another spelling did not find the conference")
	}
	if _, err := f.validateRoom("a\u2028b@conference.meet.test"); err == nil {
		t.Fatal("a node nodeprep refuses must be refused")
	}
}

// prosodyNodeprep runs names through the nodeprep of the Prosody the tests
// use (its util.encodings, with the Lua interpreter its launcher names).
func prosodyNodeprep(t *testing.T, names []string) []string {
	t.Helper()
	testkit.SkipIfShort(t) // runs Prosody's own Lua
	launcher, err := exec.LookPath("prosody")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(launcher)
	if err != nil {
		t.Fatal(err)
	}
	lua := strings.TrimPrefix(strings.SplitN(string(src), "\n", 2)[0], "#!/usr/bin/env ")
	lua = strings.TrimPrefix(lua, "#!")
	dir := regexp.MustCompile(`CFG_SOURCEDIR\s*=\s*'([^']+)'`).FindStringSubmatch(string(src))
	if dir == nil {
		t.Fatalf("no CFG_SOURCEDIR in %s", launcher)
	}
	script := `package.cpath = "` + dir[1] + `/?.so;" .. package.cpath
local enc = require "util.encodings"
for line in io.lines() do io.write((enc.stringprep.nodeprep(line) or "<refused>") .. "\n") end`
	cmd := exec.Command(strings.Fields(lua)[0], "-e", script)
	cmd.Stdin = strings.NewReader(strings.Join(names, "\n") + "\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v", lua, err)
	}
	return strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
}

// Prosody itself is the reference: names with every kind of character
// fold the same way here and there, or are refused by both.
func TestNodeprepAgreesWithProsody(t *testing.T) {
	names := []string{"Straße", "STRAẞE", "ΌΣΟΣ", "όσος", "ｓｔｒａｓｓｅ", "soft\u00adhyphen", "ﬁle", "cafe\u0301",
		"שלום", "שלוםabc", "a b", "＠room", "İstanbul", "ǅ", "①", "\u212a", "Ⴀbc", "ᏸ", "a\ufe13b",
		"Meeting-Room_1", "ДОБРЫЙ", "ǈubljana", "ﾊﾝｶｸ", "x\u0345y", "ΐ", "ﬃ", "㍿", "a\u200db", "\u3000x", "e\u0308\u0301"}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 300 { // random names from scripts with case and compatibility forms
		var b strings.Builder
		for range 1 + rng.IntN(6) {
			switch rng.IntN(4) {
			case 0:
				b.WriteRune(rune(0x41 + rng.IntN(58)))
			case 1:
				b.WriteRune(rune(0xC0 + rng.IntN(0x250-0xC0)))
			case 2:
				b.WriteRune(rune(0x370 + rng.IntN(0x530-0x370)))
			default:
				b.WriteRune(rune(0xFB00 + rng.IntN(0xFFEF-0xFB00)))
			}
		}
		names = append(names, b.String())
	}
	want := prosodyNodeprep(t, names)
	if len(want) != len(names) {
		t.Fatalf("prosody answered %d names of %d", len(want), len(names))
	}
	for i, n := range names {
		got, err := nodeprep(n)
		if err != nil {
			got = "<refused>"
		}
		if got != want[i] {
			t.Errorf("nodeprep(%q) = %q, Prosody says %q", n, got, want[i])
		}
	}
}
