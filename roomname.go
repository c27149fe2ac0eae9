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
	"sort"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/bidi"
	"golang.org/x/text/unicode/norm"
	"mellium.im/xmpp/jid"
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
	// Runs of characters are folded and normalised; the characters
	// stringprep's Unicode 3.2 has no mapping for are kept as they are.
	var b strings.Builder
	run := make([]rune, 0, len(s))
	flush := func() {
		b.WriteString(foldNFKC(string(run)))
		run = run[:0]
	}
	for _, r := range s {
		switch {
		case mapsToNothing(r):
		case keptByStringprep(r):
			flush()
			if to, ok := cjkCorrigenda[r]; ok {
				r = to
			}
			b.WriteRune(r)
		default:
			run = append(run, r)
		}
	}
	flush()
	out := b.String()
	if out == "" || len(out) > 1023 {
		return "", errNodeprep
	}
	hasRAL, hasL := false, false
	for _, r := range out {
		if nodeprepProhibited(r) {
			return "", errNodeprep
		}
		if keptByStringprep(r) {
			continue // no bidi property in Unicode 3.2
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

// foldNFKC case-folds and NFKC-normalises until the result is stable
// (stringprep's B.2 table is closed that way).
func foldNFKC(s string) string {
	for i := 0; i < 3 && s != ""; i++ {
		next := norm.NFKC.String(foldString(s))
		if next == s {
			break
		}
		s = next
	}
	return s
}

// stringprepKept are the code points stringprep leaves unchanged because
// Unicode 3.2, the version it is defined on, did not assign them or had no
// case folding or decomposition for them, while the Unicode version Go
// implements folds or normalises them (ẞ U+1E9E, Georgian and Cherokee
// capitals, presentation forms such as U+FE13…). Found by running every
// code point through Prosody's nodeprep and through foldNFKC, and checked
// against Unicode 3.2's character database.
var stringprepKept = [][2]rune{
	{0x23A, 0x23B}, {0x23D, 0x23E}, {0x241, 0x241}, {0x243, 0x246}, {0x248, 0x248}, {0x24A, 0x24A},
	{0x24C, 0x24C}, {0x24E, 0x24E}, {0x370, 0x370}, {0x372, 0x372}, {0x376, 0x376}, {0x37F, 0x37F},
	{0x3CF, 0x3CF}, {0x3F7, 0x3F7}, {0x3F9, 0x3FA}, {0x3FD, 0x3FF}, {0x4C0, 0x4C0}, {0x4F6, 0x4F6},
	{0x4FA, 0x4FA}, {0x4FC, 0x4FC}, {0x4FE, 0x4FE}, {0x510, 0x510}, {0x512, 0x512}, {0x514, 0x514},
	{0x516, 0x516}, {0x518, 0x518}, {0x51A, 0x51A}, {0x51C, 0x51C}, {0x51E, 0x51E}, {0x520, 0x520},
	{0x522, 0x522}, {0x524, 0x524}, {0x526, 0x526}, {0x528, 0x528}, {0x52A, 0x52A}, {0x52C, 0x52C},
	{0x52E, 0x52E}, {0x10A0, 0x10C5}, {0x10C7, 0x10C7}, {0x10CD, 0x10CD}, {0x10FC, 0x10FC},
	{0x13A0, 0x13F5}, {0x13F8, 0x13FD}, {0x1C80, 0x1C88}, {0x1C90, 0x1CBA}, {0x1CBD, 0x1CBF},
	{0x1D2C, 0x1D2E}, {0x1D30, 0x1D3A}, {0x1D3C, 0x1D4D}, {0x1D4F, 0x1D6A}, {0x1D78, 0x1D78},
	{0x1D9B, 0x1DBF}, {0x1E9E, 0x1E9E}, {0x1EFA, 0x1EFA}, {0x1EFC, 0x1EFC}, {0x1EFE, 0x1EFE},
	{0x2090, 0x209C}, {0x2132, 0x2132}, {0x213B, 0x213C}, {0x2150, 0x2152}, {0x2183, 0x2183},
	{0x2189, 0x2189}, {0x2C00, 0x2C2F}, {0x2C60, 0x2C60}, {0x2C62, 0x2C64}, {0x2C67, 0x2C67},
	{0x2C69, 0x2C69}, {0x2C6B, 0x2C6B}, {0x2C6D, 0x2C70}, {0x2C72, 0x2C72}, {0x2C75, 0x2C75},
	{0x2C7C, 0x2C80}, {0x2C82, 0x2C82}, {0x2C84, 0x2C84}, {0x2C86, 0x2C86}, {0x2C88, 0x2C88},
	{0x2C8A, 0x2C8A}, {0x2C8C, 0x2C8C}, {0x2C8E, 0x2C8E}, {0x2C90, 0x2C90}, {0x2C92, 0x2C92},
	{0x2C94, 0x2C94}, {0x2C96, 0x2C96}, {0x2C98, 0x2C98}, {0x2C9A, 0x2C9A}, {0x2C9C, 0x2C9C},
	{0x2C9E, 0x2C9E}, {0x2CA0, 0x2CA0}, {0x2CA2, 0x2CA2}, {0x2CA4, 0x2CA4}, {0x2CA6, 0x2CA6},
	{0x2CA8, 0x2CA8}, {0x2CAA, 0x2CAA}, {0x2CAC, 0x2CAC}, {0x2CAE, 0x2CAE}, {0x2CB0, 0x2CB0},
	{0x2CB2, 0x2CB2}, {0x2CB4, 0x2CB4}, {0x2CB6, 0x2CB6}, {0x2CB8, 0x2CB8}, {0x2CBA, 0x2CBA},
	{0x2CBC, 0x2CBC}, {0x2CBE, 0x2CBE}, {0x2CC0, 0x2CC0}, {0x2CC2, 0x2CC2}, {0x2CC4, 0x2CC4},
	{0x2CC6, 0x2CC6}, {0x2CC8, 0x2CC8}, {0x2CCA, 0x2CCA}, {0x2CCC, 0x2CCC}, {0x2CCE, 0x2CCE},
	{0x2CD0, 0x2CD0}, {0x2CD2, 0x2CD2}, {0x2CD4, 0x2CD4}, {0x2CD6, 0x2CD6}, {0x2CD8, 0x2CD8},
	{0x2CDA, 0x2CDA}, {0x2CDC, 0x2CDC}, {0x2CDE, 0x2CDE}, {0x2CE0, 0x2CE0}, {0x2CE2, 0x2CE2},
	{0x2CEB, 0x2CEB}, {0x2CED, 0x2CED}, {0x2CF2, 0x2CF2}, {0x2D6F, 0x2D6F}, {0x321D, 0x321E},
	{0x3244, 0x3247}, {0x3250, 0x3250}, {0x327C, 0x327E}, {0x32CC, 0x32CF}, {0x32FF, 0x32FF},
	{0x3377, 0x337A}, {0x33DE, 0x33DF}, {0x33FF, 0x33FF}, {0xA640, 0xA640}, {0xA642, 0xA642},
	{0xA644, 0xA644}, {0xA646, 0xA646}, {0xA648, 0xA648}, {0xA64A, 0xA64A}, {0xA64C, 0xA64C},
	{0xA64E, 0xA64E}, {0xA650, 0xA650}, {0xA652, 0xA652}, {0xA654, 0xA654}, {0xA656, 0xA656},
	{0xA658, 0xA658}, {0xA65A, 0xA65A}, {0xA65C, 0xA65C}, {0xA65E, 0xA65E}, {0xA660, 0xA660},
	{0xA662, 0xA662}, {0xA664, 0xA664}, {0xA666, 0xA666}, {0xA668, 0xA668}, {0xA66A, 0xA66A},
	{0xA66C, 0xA66C}, {0xA680, 0xA680}, {0xA682, 0xA682}, {0xA684, 0xA684}, {0xA686, 0xA686},
	{0xA688, 0xA688}, {0xA68A, 0xA68A}, {0xA68C, 0xA68C}, {0xA68E, 0xA68E}, {0xA690, 0xA690},
	{0xA692, 0xA692}, {0xA694, 0xA694}, {0xA696, 0xA696}, {0xA698, 0xA698}, {0xA69A, 0xA69A},
	{0xA69C, 0xA69D}, {0xA722, 0xA722}, {0xA724, 0xA724}, {0xA726, 0xA726}, {0xA728, 0xA728},
	{0xA72A, 0xA72A}, {0xA72C, 0xA72C}, {0xA72E, 0xA72E}, {0xA732, 0xA732}, {0xA734, 0xA734},
	{0xA736, 0xA736}, {0xA738, 0xA738}, {0xA73A, 0xA73A}, {0xA73C, 0xA73C}, {0xA73E, 0xA73E},
	{0xA740, 0xA740}, {0xA742, 0xA742}, {0xA744, 0xA744}, {0xA746, 0xA746}, {0xA748, 0xA748},
	{0xA74A, 0xA74A}, {0xA74C, 0xA74C}, {0xA74E, 0xA74E}, {0xA750, 0xA750}, {0xA752, 0xA752},
	{0xA754, 0xA754}, {0xA756, 0xA756}, {0xA758, 0xA758}, {0xA75A, 0xA75A}, {0xA75C, 0xA75C},
	{0xA75E, 0xA75E}, {0xA760, 0xA760}, {0xA762, 0xA762}, {0xA764, 0xA764}, {0xA766, 0xA766},
	{0xA768, 0xA768}, {0xA76A, 0xA76A}, {0xA76C, 0xA76C}, {0xA76E, 0xA76E}, {0xA770, 0xA770},
	{0xA779, 0xA779}, {0xA77B, 0xA77B}, {0xA77D, 0xA77E}, {0xA780, 0xA780}, {0xA782, 0xA782},
	{0xA784, 0xA784}, {0xA786, 0xA786}, {0xA78B, 0xA78B}, {0xA78D, 0xA78D}, {0xA790, 0xA790},
	{0xA792, 0xA792}, {0xA796, 0xA796}, {0xA798, 0xA798}, {0xA79A, 0xA79A}, {0xA79C, 0xA79C},
	{0xA79E, 0xA79E}, {0xA7A0, 0xA7A0}, {0xA7A2, 0xA7A2}, {0xA7A4, 0xA7A4}, {0xA7A6, 0xA7A6},
	{0xA7A8, 0xA7A8}, {0xA7AA, 0xA7AE}, {0xA7B0, 0xA7B4}, {0xA7B6, 0xA7B6}, {0xA7B8, 0xA7B8},
	{0xA7BA, 0xA7BA}, {0xA7BC, 0xA7BC}, {0xA7BE, 0xA7BE}, {0xA7C0, 0xA7C0}, {0xA7C2, 0xA7C2},
	{0xA7C4, 0xA7C7}, {0xA7C9, 0xA7C9}, {0xA7D0, 0xA7D0}, {0xA7D6, 0xA7D6}, {0xA7D8, 0xA7D8},
	{0xA7F2, 0xA7F5}, {0xA7F8, 0xA7F9}, {0xAB5C, 0xAB5F}, {0xAB69, 0xAB69}, {0xAB70, 0xABBF},
	{0xFA2E, 0xFA2F}, {0xFA6B, 0xFA6D}, {0xFA70, 0xFAD9}, {0xFE10, 0xFE19}, {0xFE47, 0xFE48},
	{0x10426, 0x10427}, {0x104B0, 0x104D3}, {0x10570, 0x1057A}, {0x1057C, 0x1058A}, {0x1058C, 0x10592},
	{0x10594, 0x10595}, {0x10781, 0x10785}, {0x10787, 0x107B0}, {0x107B2, 0x107BA}, {0x118A0, 0x118BF},
	{0x16E40, 0x16E5F}, {0x1D4C1, 0x1D4C1}, {0x1D6A4, 0x1D6A5}, {0x1D7CA, 0x1D7CB}, {0x1E030, 0x1E06D},
	{0x1F100, 0x1F10A}, {0x1F110, 0x1F12E}, {0x1F130, 0x1F14F}, {0x1F16A, 0x1F16C}, {0x1F190, 0x1F190},
	{0x1F200, 0x1F202}, {0x1F210, 0x1F23B}, {0x1F240, 0x1F248}, {0x1F250, 0x1F251}, {0x1FBF0, 0x1FBF9},
}

// cjkCorrigenda are five CJK compatibility ideographs whose decomposition
// Unicode corrected after 3.2; stringprep keeps the 3.2 one.
var cjkCorrigenda = map[rune]rune{
	0x2F868: 0x2136A, 0x2F874: 0x5F33, 0x2F91F: 0x43AB, 0x2F95F: 0x7AAE, 0x2F9BF: 0x4D57,
}

func keptByStringprep(r rune) bool {
	if _, ok := cjkCorrigenda[r]; ok {
		return true
	}
	i := sort.Search(len(stringprepKept), func(i int) bool { return stringprepKept[i][1] >= r })
	return i < len(stringprepKept) && stringprepKept[i][0] <= r
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

// validateRoom checks the room JID: a bare JID in the conference MUC domain,
// of sane length and characters. It returns the canonical form: the node
// folded as Prosody folds it (nodeprep), the domain lower-cased.
func (f *Focus) validateRoom(room string) (string, error) {
	if room == "" {
		return "", Errorf("bad-request", "no 'room' specified")
	}
	if len(room) > 256 {
		return "", Errorf("bad-request", "invalid room name: longer than 256 characters")
	}
	at := strings.LastIndexByte(room, '@')
	if at <= 0 {
		return "", Errorf("bad-request", "invalid room name %q: expected room@%s", room, f.cfg.XMPP.MUCDomain)
	}
	j, err := jid.Parse(room)
	if err != nil || j.Resourcepart() != "" || strings.ContainsAny(room[:at], "@/\"&'<> \t\r\n") {
		return "", Errorf("bad-request", "invalid room name %q", room)
	}
	if !strings.EqualFold(j.Domainpart(), f.cfg.XMPP.MUCDomain) && !f.otherRoomDomain(j.Domainpart()) {
		return "", Errorf("not-allowed", "room %q is not in the conference domain %s", room, f.cfg.XMPP.MUCDomain)
	}
	// One conference per room as Prosody names it, whatever the spelling.
	canon, err := canonicalRoom(room[:at] + "@" + j.Domainpart())
	if err != nil {
		return "", Errorf("bad-request", "invalid room name %q: %v", room, err)
	}
	return canon, nil
}
