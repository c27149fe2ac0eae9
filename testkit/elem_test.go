package testkit

import "testing"

func TestElemString(t *testing.T) {
	iq := NewElem("", "iq", "type", "set", "to", "a@b/c").Add(
		NewElem("urn:xmpp:jingle:1", "jingle", "action", "session-initiate").Add(
			NewElem("", "content", "name", "audio").Add(
				NewElem("urn:xmpp:jingle:apps:rtp:1", "description", "media", "audio"),
				NewElem("urn:xmpp:jingle:transports:ice-udp:1", "transport", "pwd", `a'b"c<&>`+"\n"),
			),
		),
		NewElem("", "body", "xml:lang", "en").SetText("x < y & z\x00\r"),
	)
	want := `<iq type='set' to='a@b/c'>` +
		`<jingle xmlns='urn:xmpp:jingle:1' action='session-initiate'><content name='audio'>` +
		`<description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/>` +
		`<transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' pwd='a&apos;b&quot;c&lt;&amp;&gt;&#xA;'/>` +
		`</content></jingle>` +
		`<body xml:lang='en'>x &lt; y &amp; z` + "\uFFFD" + `&#xD;</body></iq>`
	if got := iq.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}

	back, err := ParseElem(iq.String())
	if err != nil {
		t.Fatal(err)
	}
	if back.String() != want {
		t.Errorf("round trip:\n%s", back)
	}
	tr := back.Child("urn:xmpp:jingle:1", "jingle").Child("", "content").Child("urn:xmpp:jingle:transports:ice-udp:1", "transport")
	if tr == nil || tr.Attr("pwd") != "a'b\"c<&>\n" {
		t.Errorf("transport pwd lost: %v", tr)
	}
	if back.Child("", "body").Attr("xml:lang") != "en" || back.Child("", "body").Space != "" {
		t.Errorf("body: %+v", back.Child("", "body"))
	}
	if back.Child("urn:other", "jingle") != nil || len(back.All("", "")) != 2 {
		t.Error("Child/All namespace filtering")
	}

	// A stanza parsed from the stream carries jabber:client, which String
	// leaves implicit; a foreign namespace at the root is declared.
	msg, _ := ParseElem(`<message xmlns='jabber:client' to='x'><body>hi</body></message>`)
	if got := msg.String(); got != `<message to='x'><body>hi</body></message>` {
		t.Errorf("got %s", got)
	}
	if got := NewElem("urn:x", "a").String(); got != `<a xmlns='urn:x'/>` {
		t.Errorf("got %s", got)
	}
	if _, err := ParseElem(`<a><b></a>`); err == nil {
		t.Error("malformed XML parsed")
	}
}

func TestStanzaErrorOf(t *testing.T) {
	st, _ := ParseElem(`<iq xmlns='jabber:client' type='error' id='1'><error type='cancel'>` +
		`<item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>` +
		`<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>no such room</text></error></iq>`)
	se := StanzaErrorOf(st)
	if se == nil || se.Condition != "item-not-found" || se.Type != "cancel" || se.Text != "no such room" {
		t.Fatalf("%+v", se)
	}
	if se.Error() != "xmpp iq error: item-not-found (cancel): no such room" {
		t.Errorf("%q", se.Error())
	}
	if StanzaErrorOf(NewElem("", "iq", "type", "result")) != nil {
		t.Error("result treated as error")
	}
}
