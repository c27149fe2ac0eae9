package main

// services.go: core, off the two-person path: believing a member that says it
// is one of Jitsi's services (Jibri, Jigasi) only from a trusted domain.

import (
	"strings"
)

// trusted: realJID's domain is one of xmpp.trusted-domains.
func (c *Conference) trusted(realJID string) bool {
	at := strings.IndexByte(realJID, '@')
	if at < 0 {
		return false
	}
	dom := realJID[at+1:]
	if i := strings.IndexByte(dom, '/'); i >= 0 {
		dom = dom[:i]
	}
	for _, d := range c.cfg().XMPP.TrustedDomains {
		if strings.EqualFold(d, dom) {
			return true
		}
	}
	return false
}

// announces: m's presence lists the feature var, and m's real JID is in a
// trusted domain (services are believed only from there).
func (c *Conference) announces(m *Participant, p *Element, feature string) bool {
	fe := p.Child("", "features")
	if fe == nil || !c.trusted(m.RealJID) {
		return false
	}
	for _, f := range fe.All("", "feature") {
		if f.Attr("var") == feature {
			return true
		}
	}
	return false
}
