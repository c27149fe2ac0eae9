package main

// clientproxy.go: core, off the two-person path: requests that come through
// Jitsi's mod_client_proxy component (docs/jitsi-prosody-modules.md).

import (
	"fmt"
	"strings"

	"mellium.im/xmpp/jid"
)

// requestSender is who really sent a focus request. Jitsi's
// mod_client_proxy component (xmpp.client-proxy) forwards a client's IQ from
// its own domain with the client's full JID as the resource, so everything
// that depends on the sender (authentication, moderator rights, the rate
// limit, logs) must use that JID, never the proxy's. The reply still goes to
// "from": the component turns it back. An IQ from the proxy domain that
// names no valid sender is an error, not the proxy speaking for itself.
func requestSender(from, clientProxy string) (string, error) {
	if clientProxy == "" {
		return from, nil
	}
	j, err := jid.Parse(from)
	if err != nil || !strings.EqualFold(j.Domainpart(), clientProxy) || j.Localpart() != "" {
		return from, nil
	}
	real, err := jid.Parse(j.Resourcepart())
	if err != nil || j.Resourcepart() == "" || real.Domainpart() == "" {
		return "", fmt.Errorf("a request through the client proxy %s that names no sender (%q)", clientProxy, j.Resourcepart())
	}
	return real.String(), nil
}

// acceptProxySubscription approves the subscription Jitsi's client_proxy
// component asks for when it loads: it learns where the focus is from the
// focus's presence. The installers put that subscription in the focus's
// roster beforehand, and Prosody then answers for the focus; without it the
// request reaches the focus, which accepts it from the configured proxy
// domain only (any other subscription request is ignored).
func (f *Focus) acceptProxySubscription(p *Element) bool {
	proxy := f.cfg.XMPP.ClientProxyDomain()
	if p.Attr("type") != "subscribe" || proxy == "" || !strings.EqualFold(bareJID(p.Attr("from")), proxy) {
		return false
	}
	f.log.Info("accepting the client proxy's presence subscription", "proxy", proxy)
	f.x.Send(NewElement(nsClient, "presence", "type", "subscribed", "to", proxy))
	return true
}
