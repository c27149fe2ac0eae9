package main

// bridgeregion.go: core, off the two-person path: the region part of bridge
// selection (strategies "region" and "single", bridges.region-groups).

import (
	"fmt"
	"slices"
)

// regionGroup is the configured group of region r (without r), or nil.
func (b *Bridges) regionGroup(r string) []string {
	for _, g := range b.cfg.RegionGroups {
		if slices.Contains(g, r) {
			return slices.DeleteFunc(slices.Clone(g), func(x string) bool { return x == r })
		}
	}
	return nil
}

// pickInRegion (strategies region and single): the participant's region, then
// the local region, each widened to its region group when it has no bridge
// with room; in a region, a bridge the conference already uses comes first.
// It returns nil when no region has room.
func (b *Bridges) pickInRegion(cands []*bridgeCand, req SelectRequest, strategy string) (pick *bridgeCand, why string) {
	regions := []string{req.Region}
	if strategy == "region" || req.Region == "" {
		regions = append(regions, b.cfg.LocalRegion)
	}
	for i, r := range regions {
		if r == "" || (i > 0 && r == regions[0]) {
			continue
		}
		inRegion := filterCands(cands, func(c *bridgeCand) bool { return c.good() && c.br.region == r })
		label := "participant's region"
		if r != req.Region {
			label = "local region"
		}
		if len(inRegion) == 0 {
			// Nothing with room in the region itself: its region group
			// (bridges.region-groups), e.g. another EU region for an EU
			// participant.
			group := b.regionGroup(r)
			inRegion = filterCands(cands, func(c *bridgeCand) bool { return c.good() && slices.Contains(group, c.br.region) })
			if len(inRegion) == 0 {
				continue
			}
			label += " group of"
		}
		if conf := filterCands(inRegion, func(c *bridgeCand) bool { return c.inConf }); len(conf) > 0 {
			pick = leastLoaded(conf)
			why = fmt.Sprintf("in the %s %q, already used by the conference and not overloaded", label, r)
		} else {
			pick = leastLoaded(inRegion)
			why = fmt.Sprintf("least loaded with room in the %s %q", label, r)
		}
		return pick, why
	}
	return nil, ""
}
