package main

// components.go: core, off the two-person path: finding Jitsi's Prosody
// components (AV moderation, room metadata, breakout rooms) by disco#info on
// the XMPP domain, and checking that a message comes from one.

import (
	"context"
	"strings"
	"sync/atomic"
)

// discoverComponents asks the XMPP domain which of Jitsi's Prosody
// components it has; the features said which types they use.
func (f *Focus) discoverComponents() {
	ctx, cancel := context.WithTimeout(context.Background(), f.cfg.XMPP.ReplyTimeout.Duration)
	defer cancel()
	resp, err := f.x.SendIQ(ctx, NewIQ("get", f.cfg.XMPP.Domain, "", NewElement(nsDiscoInfo, "query")))
	if err != nil {
		return
	}
	for _, id := range resp.Child(nsDiscoInfo, "query").All(nsDiscoInfo, "identity") {
		if id.Attr("category") != "component" || id.Attr("name") == "" {
			continue
		}
		if take := f.components[id.Attr("type")]; take == nil || !take(id.Attr("name")) {
			continue
		}
		f.log.Info("Jitsi component found", "type", id.Attr("type"), "address", id.Attr("name"))
	}
}

// storeIfUnset stores a discovered address unless one is configured (a
// configured address wins). It reports whether the component is used.
func storeIfUnset(v *atomic.Value, configured, found string) bool {
	if configured == "" {
		v.Store(found)
	}
	return true
}

// fromComponent reports whether a message comes from the component whose
// address is in addr (exactly, and of type normal as Jicofo requires).
func fromComponent(msg *Element, addr *atomic.Value) bool {
	a, _ := addr.Load().(string)
	return a != "" && strings.EqualFold(msg.Attr("from"), a) && (msg.Attr("type") == "" || msg.Attr("type") == "normal")
}
