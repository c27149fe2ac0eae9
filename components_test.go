package main

// components_test.go: a Prosody component connection for the tests of the
// features that talk to Jitsi's components.

import (
	"net"
	"testing"

	"minifocus/testkit"
)

// componentConn is a XEP-0114 component connection, standing in for one of
// Jitsi's Prosody components (stock Prosody has none): av_moderation
// (avModSwitch, avModWhitelists) or room_metadata.
type componentConn struct {
	c      net.Conn
	domain string
}

func dialComponent(t *testing.T, p *testkit.Prosody, domain string) *componentConn {
	t.Helper()
	c, _, err := p.DialComponent(domain)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &componentConn{c: c, domain: domain}
}

func (cc *componentConn) send(t *testing.T, to, json string) {
	t.Helper()
	msg := NewElement("jabber:component:accept", "message", "from", cc.domain, "to", to).Add(NewElement(nsJitmeet, "json-message").SetText(json))
	if _, err := cc.c.Write(msg.Bytes()); err != nil {
		t.Fatal(err)
	}
}
