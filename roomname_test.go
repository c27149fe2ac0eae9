package main

import "testing"

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
	f.breakoutDomain.Store("")
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
