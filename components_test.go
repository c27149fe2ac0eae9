package main

// components_test.go: a Prosody component connection for the tests of the
// features that talk to Jitsi's components.

import (
	"crypto/sha1"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"net"
	"testing"
	"time"

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
	c, err := net.DialTimeout("tcp", p.ComponentAddr(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='%s'>", domain)
	d := xml.NewDecoder(c)
	id := ""
	for id == "" {
		tok, err := d.Token()
		if err != nil {
			t.Fatal(err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "stream" {
			for _, a := range se.Attr {
				if a.Name.Local == "id" {
					id = a.Value
				}
			}
		}
	}
	sum := sha1.Sum([]byte(id + p.ComponentSecret))
	fmt.Fprintf(c, "<handshake>%s</handshake>", hex.EncodeToString(sum[:]))
	for {
		tok, err := d.Token()
		if err != nil {
			t.Fatalf("component handshake: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "handshake" {
			break
		}
	}
	_ = c.SetDeadline(time.Time{})
	return &componentConn{c: c, domain: domain}
}

func (cc *componentConn) send(t *testing.T, to, json string) {
	t.Helper()
	msg := NewElement("jabber:component:accept", "message", "from", cc.domain, "to", to).Add(NewElement(nsJitmeet, "json-message").SetText(json))
	if _, err := cc.c.Write(msg.Bytes()); err != nil {
		t.Fatal(err)
	}
}
