package main

// burst.go: conference requests under load. A burst of requests must be
// answered quickly (an answer or a clear refusal) rather than pile up until
// they time out, and must not harm the conferences already running. Three
// limits apply, XMPP and HTTP alike:
//
//   - per sender (conference.max-requests-per-minute): the real sender's
//     bare JID over XMPP (after client_proxy decoding), its address over
//     HTTP (an IPv6 address counts as its /64);
//   - in total (conference.max-requests-per-second, with bursts of twice
//     that);
//   - conferences being started at once (conference.max-pending-joins): a
//     request that would start one more while that many are still joining
//     their rooms is refused.
//
// Over the per-sender limit the request is refused: resource-constraint
// over XMPP, 429 with Retry-After over HTTP (lib-jitsi-meet gives up on
// such an error: that sender is flooding). Over the total or pending-join
// limits the answer is ready="false" (HTTP: 200 with "ready": false), the
// protocol's "not yet": honest clients caught in a burst poll again with
// back-off (1, 2, 4 … s) instead of failing.

import (
	"net"
	"net/http"
	"strings"
	"time"
)

// defaultTrustedProxies: loopback (a proxy on the same host) and private
// networks (docker-jitsi-meet's web container, a proxy in the same cluster).
// A client that can reach the focus directly from such an address can name
// another sender in X-Forwarded-For, which only moves it to another
// per-sender budget: the total limit still holds.
var defaultTrustedProxies = []string{
	"127.0.0.0/8", "::1/128",
	"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7",
}

func parseCIDROrIP(s string) (*net.IPNet, error) {
	if !strings.Contains(s, "/") {
		ip := net.ParseIP(strings.TrimSpace(s))
		if ip == nil {
			return nil, &net.ParseError{Type: "IP address", Text: s}
		}
		bits := 128
		if ip.To4() != nil {
			ip, bits = ip.To4(), 32
		}
		return &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)}, nil
	}
	_, n, err := net.ParseCIDR(strings.TrimSpace(s))
	return n, err
}

// parseProxies parses the (validated) trusted proxies.
func parseProxies(list []string) []*net.IPNet {
	var out []*net.IPNet
	for _, s := range list {
		if n, err := parseCIDROrIP(s); err == nil {
			out = append(out, n)
		}
	}
	return out
}

func trusted(ip net.IP, nets []*net.IPNet) bool {
	for _, n := range nets {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// senderOf is whom an HTTP conference request counts against: the peer's
// address or, when the peer is a trusted proxy, the last address its
// X-Forwarded-For names (the one the proxy itself saw; addresses further
// left come from the client and prove nothing). An IPv6 sender is its /64,
// the block one subscriber gets.
func (h *HTTPServer) senderOf(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip := net.ParseIP(host)
	if ip != nil && trusted(ip, h.proxies) {
		if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
			last := xff[len(xff)-1]
			if i := strings.LastIndexByte(last, ','); i >= 0 {
				last = last[i+1:]
			}
			if fwd := net.ParseIP(strings.TrimSpace(last)); fwd != nil {
				ip = fwd
			}
		}
	}
	if ip == nil {
		return "http:" + host
	}
	if ip.To4() == nil {
		ip = ip.Mask(net.CIDRMask(64, 128))
	}
	return "http:" + ip.String()
}

// rateKey is whom a request counts against for the per-sender limit.
func (r ConferenceRequest) rateKey() string {
	if r.RateKey != "" {
		return r.RateKey
	}
	return bareJID(r.From)
}

// errBusy refuses a request over a limit; the client retries.
func errBusy(text string) *StanzaError { return Errorf("resource-constraint", "%s", text) }

// admitRequest applies the per-sender limit (an error) and the total one
// (busy: the answer is "not ready"). Accounts of the trusted domains (Jibri's
// recorders and Jigasi, one account for all their instances) have no
// per-sender limit.
func (f *Focus) admitRequest(req ConferenceRequest) (busy bool, err error) {
	if key := req.rateKey(); key != "" && !f.trustedSender(req.From) && !f.allowRequest(key) {
		return false, errBusy("too many conference requests from you; try again later")
	}
	rate := f.cfg.Conference.MaxRequestsPerSecond
	if rate <= 0 {
		return false, nil
	}
	f.mu.Lock()
	ok := f.total.take(time.Now(), 2*rate, float64(rate))
	f.mu.Unlock()
	return !ok, nil
}

// notReady is the answer to a request the focus has no capacity for now.
func (f *Focus) notReady(room, why string) ConferenceResponse {
	f.metrics.ConferenceRequestsRefused.Inc()
	f.log.Debug("conference request answered not ready", "room", room, "why", why)
	return ConferenceResponse{Room: room, Ready: false, FocusJID: f.cfg.FocusJID()}
}

// startingLocked counts the conferences still joining their rooms (f.mu
// held).
func (f *Focus) startingLocked() int {
	n := 0
	for _, c := range f.confs {
		if !isJoined(c) {
			n++
		}
	}
	return n
}

// trustedSender reports whether a conference request comes from an account
// of xmpp.trusted-domains.
func (f *Focus) trustedSender(from string) bool {
	bare := bareJID(from)
	at := strings.LastIndexByte(bare, '@')
	if at < 0 {
		return false
	}
	for _, d := range f.cfg.XMPP.TrustedDomains {
		if strings.EqualFold(d, bare[at+1:]) {
			return true
		}
	}
	return false
}
