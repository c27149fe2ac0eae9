package main

// roomname.go: room identity as Prosody sees it.
//
// Prosody prepares the node part of every JID with stringprep's nodeprep
// profile (RFC 3920 appendix A, through libidn): characters that map to
// nothing are removed, the rest is case-folded and NFKC-normalised, and a
// node that then holds a prohibited character is refused. So "Straße",
// "STRASSE" and "strasse" are one room, as are "ς" and "σ". The focus keys
// its conferences (and pins) by the same folding: two spellings of one room
// are one conference, never two that both join the same MUC room.

import (
	"errors"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/bidi"
	"golang.org/x/text/unicode/norm"
)

var errNodeprep = errors.New("not a valid JID node (nodeprep)")

// foldString is Unicode full case folding (ß→ss, ς→σ). A cases.Caser is
// not safe for concurrent use, so each call makes its own.
func foldString(s string) string { return cases.Fold().String(s) }

// nodeprep folds a JID node part the way stringprep's nodeprep profile
// does: map to nothing (B.1), case-fold with NFKC (B.2, repeated until
// stable), refuse prohibited characters (C.1.1–C.9 and "&'/:<>@) and
// strings that break the bidi rule. Unassigned code points are let through,
// as Prosody does for JIDs it routes.
func nodeprep(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", errNodeprep
	}
	if isPlainASCII(s) {
		out := strings.ToLower(s)
		if strings.ContainsAny(out, " \"&'/:<>@\x7f") || strings.IndexFunc(out, func(r rune) bool { return r < 0x20 }) >= 0 || out == "" {
			return "", errNodeprep
		}
		return out, nil
	}
	out := strings.Map(func(r rune) rune {
		if mapsToNothing(r) {
			return -1
		}
		return r
	}, s)
	for i := 0; i < 3; i++ {
		next := norm.NFKC.String(foldString(out))
		if next == out {
			break
		}
		out = next
	}
	if out == "" || len(out) > 1023 {
		return "", errNodeprep
	}
	hasRAL, hasL := false, false
	for _, r := range out {
		if nodeprepProhibited(r) {
			return "", errNodeprep
		}
		p, _ := bidi.LookupRune(r)
		switch p.Class() {
		case bidi.R, bidi.AL:
			hasRAL = true
		case bidi.L:
			hasL = true
		}
	}
	if hasRAL {
		first, _ := utf8.DecodeRuneInString(out)
		last, _ := utf8.DecodeLastRuneInString(out)
		if hasL || !isRAL(first) || !isRAL(last) {
			return "", errNodeprep
		}
	}
	return out, nil
}

func isPlainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func isRAL(r rune) bool {
	p, _ := bidi.LookupRune(r)
	return p.Class() == bidi.R || p.Class() == bidi.AL
}

// mapsToNothing is stringprep table B.1.
func mapsToNothing(r rune) bool {
	switch {
	case r == 0x00AD, r == 0x034F, r == 0x1806, r >= 0x180B && r <= 0x180D,
		r >= 0x200B && r <= 0x200D, r == 0x2060, r >= 0xFE00 && r <= 0xFE0F, r == 0xFEFF:
		return true
	}
	return false
}

// nodeprepProhibited is stringprep tables C.1.1 to C.9 plus the eight ASCII
// characters nodeprep adds.
func nodeprepProhibited(r rune) bool {
	switch {
	case strings.ContainsRune("\"&'/:<>@ ", r): // nodeprep's own, and C.1.1
		return true
	case r < 0x20 || r == 0x7F || (r >= 0x80 && r <= 0x9F): // C.2.1, C.2.2
		return true
	case r == 0x00A0, r == 0x1680, r >= 0x2000 && r <= 0x200B, r == 0x202F, r == 0x205F, r == 0x3000: // C.1.2
		return true
	case r == 0x06DD, r == 0x070F, r == 0x180E, r == 0x200C, r == 0x200D, r == 0x2028, r == 0x2029,
		r >= 0x2060 && r <= 0x2063, r >= 0xFFF9 && r <= 0xFFFC, r >= 0x1D173 && r <= 0x1D17A: // C.2.2
		return true
	case r >= 0xE000 && r <= 0xF8FF, r >= 0xF0000 && r <= 0xFFFFD, r >= 0x100000 && r <= 0x10FFFD: // C.3
		return true
	case r >= 0xFDD0 && r <= 0xFDEF, r&0xFFFE == 0xFFFE: // C.4
		return true
	case r >= 0xD800 && r <= 0xDFFF: // C.5
		return true
	case r >= 0xFFF9 && r <= 0xFFFD: // C.6
		return true
	case r >= 0x2FF0 && r <= 0x2FFB: // C.7
		return true
	case r == 0x0340, r == 0x0341, r == 0x200E, r == 0x200F, r >= 0x202A && r <= 0x202E, r >= 0x206A && r <= 0x206F: // C.8
		return true
	case r == 0xE0001, r >= 0xE0020 && r <= 0xE007F: // C.9
		return true
	}
	return false
}

// canonicalRoom returns a room's bare JID as Prosody identifies it: the
// node part through nodeprep, the domain lower-cased. A node nodeprep
// refuses is an error (Prosody would refuse the JID).
func canonicalRoom(bare string) (string, error) {
	at := strings.LastIndexByte(bare, '@')
	if at <= 0 {
		return "", errNodeprep
	}
	node, err := nodeprep(bare[:at])
	if err != nil {
		return "", err
	}
	return node + "@" + strings.ToLower(bare[at+1:]), nil
}

// roomKey is the registry key of a room: canonicalRoom, or the lower-cased
// JID when nodeprep refuses it (such a room can have no conference).
func roomKey(bare string) string {
	if k, err := canonicalRoom(bare); err == nil {
		return k
	}
	return strings.ToLower(bare)
}
