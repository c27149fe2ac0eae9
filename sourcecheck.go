package main

// sourcecheck.go: core, off the two-person path: the per-endpoint source
// rules TryAdd applies (docs/jingle-and-sources.md#source-validation).

import (
	"slices"
)

// validateEndpointSources checks one endpoint's resulting set (docs/jingle-and-sources.md#source-validation
// rule 6): FID groups have exactly two SSRCs, grouped sources have an msid,
// a group's sources share one msid, and per media type every extended group
// (a SIM group with its FID partners, a lone FID group, a lone source) has
// its own msid.
func validateEndpointSources(es EndpointSources) error {
	index := make(map[uint32]int, len(es.Sources))
	for i, s := range es.Sources {
		index[s.SSRC] = i
	}
	for _, g := range es.Groups {
		msid := ""
		for k, ssrc := range g.SSRCs {
			i, ok := index[ssrc]
			if !ok { // cannot happen after TryAdd/TryRemove's own checks
				return sourceErrorf("An SSRC group contains an SSRC, which hasn't been signaled as a source: %s.", ssrcList(g.SSRCs))
			}
			if g.isFID() && len(g.SSRCs) != 2 {
				return sourceErrorf("Invalid FID group: %s.", ssrcList(g.SSRCs))
			}
			s := es.Sources[i]
			if s.MSID == "" {
				return sourceErrorf("Required source parameter 'msid' is not present.")
			}
			if k == 0 {
				msid = s.MSID
			} else if s.MSID != msid {
				return sourceErrorf("SsrcGroup contains sources with different MSIDs: %s.", ssrcList(g.SSRCs))
			}
		}
	}
	for _, media := range []string{MediaAudio, MediaVideo} {
		seenGroup := map[int]bool{}
		seenMSID := map[string]bool{}
		for i, s := range es.Sources {
			if s.Media != media || s.MSID == "" {
				continue
			}
			key := extendedGroup(s.SSRC, i, es.Groups)
			if seenGroup[key] {
				continue
			}
			seenGroup[key] = true
			if seenMSID[s.MSID] {
				return sourceErrorf("MSID is already used: %s.", s.MSID)
			}
			seenMSID[s.MSID] = true
		}
	}
	return nil
}

// extendedGroup identifies the extended group of a source: the index of its
// SIM group (also for the RTX partner of a simulcast layer), else of its FID
// group, else a per-source key (negative).
func extendedGroup(ssrc uint32, sourceIndex int, groups []SSRCGroup) int {
	simOf := func(s uint32) int {
		for gi, g := range groups {
			if g.isSIM() && slices.Contains(g.SSRCs, s) {
				return gi
			}
		}
		return -1
	}
	if gi := simOf(ssrc); gi >= 0 {
		return gi
	}
	for gi, g := range groups {
		if !g.isFID() || !slices.Contains(g.SSRCs, ssrc) {
			continue
		}
		if len(g.SSRCs) > 1 && g.SSRCs[1] == ssrc {
			if si := simOf(g.SSRCs[0]); si >= 0 {
				return si
			}
		}
		return gi
	}
	return -1 - sourceIndex
}
