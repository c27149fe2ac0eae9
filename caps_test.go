package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"minifocus/testkit"
)

// XEP-0115 §5.2, the simple example: one identity and four features.
func TestCapsVerificationSimpleExample(t *testing.T) {
	q, err := ParseElement(`<query xmlns="http://jabber.org/protocol/disco#info">
		<identity category="client" name="Exodus 0.9.1" type="pc"/>
		<feature var="http://jabber.org/protocol/caps"/>
		<feature var="http://jabber.org/protocol/disco#info"/>
		<feature var="http://jabber.org/protocol/disco#items"/>
		<feature var="http://jabber.org/protocol/muc"/>
	</query>`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := capsVerification(q)
	if err != nil || got != "QgayPKawpkPSDYmwT/WM94uAlu0=" {
		t.Fatalf("ver = %q, %v; want QgayPKawpkPSDYmwT/WM94uAlu0=", got, err)
	}
}

// XEP-0115 §5.3, the complex example: identities with xml:lang, features in
// any order and an extended data form.
func TestCapsVerificationComplexExample(t *testing.T) {
	q, err := ParseElement(`<query xmlns="http://jabber.org/protocol/disco#info">
		<identity xml:lang="en" category="client" name="Psi 0.11" type="pc"/>
		<identity xml:lang="el" category="client" name="Ψ 0.11" type="pc"/>
		<feature var="http://jabber.org/protocol/disco#items"/>
		<feature var="http://jabber.org/protocol/caps"/>
		<feature var="http://jabber.org/protocol/disco#info"/>
		<feature var="http://jabber.org/protocol/muc"/>
		<x xmlns="jabber:x:data" type="result">
			<field var="FORM_TYPE" type="hidden"><value>urn:xmpp:dataforms:softwareinfo</value></field>
			<field var="ip_version"><value>ipv4</value><value>ipv6</value></field>
			<field var="os"><value>Mac</value></field>
			<field var="os_version"><value>10.5.1</value></field>
			<field var="software"><value>Psi</value></field>
			<field var="software_version"><value>0.11</value></field>
		</x>
	</query>`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := capsVerification(q)
	if err != nil || got != "q07IKJEyjvHSyhy//CH0CxmKi8w=" {
		t.Fatalf("ver = %q, %v; want q07IKJEyjvHSyhy//CH0CxmKi8w=", got, err)
	}
}

// The client's ver (features only, no identity) is what the captures show.
func TestCapsVerificationMatchesClient(t *testing.T) {
	q := NewElement(nsDiscoInfo, "query")
	for _, f := range testkit.ClientFeatures() {
		q.Add(NewElement(nsDiscoInfo, "feature", "var", f))
	}
	got, err := capsVerification(q)
	if err != nil || got != "dtzK/3xhISaXUMVg59IpXxdvKyQ=" {
		t.Fatalf("ver = %q, %v", got, err)
	}
	q.Add(NewElement(nsDiscoInfo, "feature", "var", testkit.ClientFeatures()[0]))
	if _, err := capsVerification(q); err == nil {
		t.Fatal("a duplicate feature must make the answer ill-formed")
	}
}

// The focus advertises the hash of what its disco#info answers.
func TestCapsOwnVerIsHashOfDiscoInfo(t *testing.T) {
	x := NewXMPPClient(XMPPOptions{Features: []string{"urn:xmpp:jingle:1", nsCaps}})
	want, err := capsVerification(x.discoInfo(""))
	if err != nil {
		t.Fatal(err)
	}
	if got := x.capsVer(); got != want || strings.HasPrefix(got, "minifocus") || len(got) != 28 {
		t.Fatalf("own ver %q, want %q", got, want)
	}
}

// The cache holds bounded bytes, not only entries; the oldest go first.
func TestCapsCacheBoundedBytes(t *testing.T) {
	c := newCapsCache(capsCacheEntries)
	big := make([]string, 200)
	for i := range big {
		big[i] = strings.Repeat("f", 60) + fmt.Sprint(i)
	}
	if capsEntrySize("k", big) > capsEntryMaxBytes {
		t.Fatal("test entry too big to be cached at all")
	}
	for i := 0; i < 200; i++ {
		c.put(fmt.Sprintf("node#%d", i), big)
	}
	entries, bytes := c.usage()
	if bytes > capsCacheBytes || entries >= 200 {
		t.Fatalf("cache holds %d entries, %d bytes (limit %d bytes)", entries, bytes, capsCacheBytes)
	}
	if _, ok := c.get("node#0"); ok {
		t.Fatal("the oldest entry should have been evicted")
	}
	if _, ok := c.get("node#199"); !ok {
		t.Fatal("the newest entry should be cached")
	}
	huge := make([]string, 2000)
	for i := range huge {
		huge[i] = fmt.Sprint("feature-", i)
	}
	c.put("huge#1", huge)
	if _, ok := c.get("huge#1"); ok {
		t.Fatal("an entry over capsEntryMaxBytes must not be cached")
	}
	t.Logf("cache after 200 puts of %d-byte entries: %d entries, %d bytes", capsEntrySize("node#0", big), entries, bytes)
}

// On the wire: the ver in the focus's room presence is the hash of what
// the focus answers to disco#info.
func TestFocusCapsVerOnTheWire(t *testing.T) {
	s := startStack(t, 1)
	p := s.join("capsver@conference.meet.test")
	var caps *testkit.Elem
	s.wait("the focus presence", func() bool {
		caps = p.FocusPresence().Child(nsCaps, "c")
		return caps != nil
	})
	ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
	defer cancel()
	q := testkit.NewElem(nsDiscoInfo, "query", "node", caps.Attr("node")+"#"+caps.Attr("ver"))
	resp, err := p.Client().SendIQ(ctx, testkit.NewElem("", "iq", "type", "get", "to", s.focus.XMPP.JID()).Add(q))
	if err != nil {
		t.Fatal(err)
	}
	el, err := ParseElement(resp.String())
	if err != nil {
		t.Fatal(err)
	}
	got, err := capsVerification(el.Child(nsDiscoInfo, "query"))
	if err != nil || caps.Attr("hash") != "sha-1" || got != caps.Attr("ver") {
		t.Fatalf("presence advertises %s %q; its disco#info hashes to %q (%v)", caps.Attr("hash"), caps.Attr("ver"), got, err)
	}
}
