package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestElementRoundTrip(t *testing.T) {
	in := `<iq xmlns="jabber:client" type="set" to="a@b/c" id="1"><conference xmlns="http://jitsi.org/protocol/focus" room="r@conference.meet.test" machine-uid="x&amp;y"><property name="a" value="&quot;q&quot;"/></conference></iq>`
	el, err := ParseElement(in)
	if err != nil {
		t.Fatal(err)
	}
	if got := el.String(); got != in {
		t.Errorf("round trip changed the stanza:\n got %s\nwant %s", got, in)
	}
	conf := el.Child(nsFocus, "conference")
	if conf.Attr("machine-uid") != "x&y" || conf.Child("", "property").Attr("value") != `"q"` {
		t.Errorf("attributes not unescaped: %+v", conf)
	}
}

func TestElementNamespacesAndText(t *testing.T) {
	el := NewElement(nsClient, "message", "to", "x").Add(
		NewElement(nsClient, "body").SetText("a < b & c"),
		NewElement(nsJitmeet, "json-message").SetText(`{"k":"v"}`),
	)
	want := `<message xmlns="jabber:client" to="x"><body>a &lt; b &amp; c</body><json-message xmlns="http://jitsi.org/jitmeet">{"k":"v"}</json-message></message>`
	if got := el.String(); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	back, err := ParseElement(want)
	if err != nil {
		t.Fatal(err)
	}
	if back.Child(nsJitmeet, "json-message").Text != `{"k":"v"}` || back.Child("", "body").Text != "a < b & c" {
		t.Errorf("text not restored: %s", back)
	}
}

// Whatever text and attribute values hold, they come back unchanged after
// serialising and parsing (escaping copies clean runs whole; check the
// edges: escapes first, last, adjacent, and none at all).
func TestElementEscapingRoundTrip(t *testing.T) {
	for _, v := range []string{"", "plain", "&", "<a>", "a&b<c>d\"e'f", "\"\"", "x\ty\nz\r", "&&&", "end&", "&start", "ünï€ode <ok>"} {
		el := NewElement(nsClient, "x", "v", v).SetText(v)
		back, err := ParseElement(el.String())
		if err != nil {
			t.Fatalf("%q: %v (%s)", v, err, el)
		}
		if back.Attr("v") != v || (back.Text != v && !(strings.Contains(v, "\r") && back.Text == strings.ReplaceAll(v, "\r", "\n"))) {
			t.Errorf("%q came back as attr %q, text %q (%s)", v, back.Attr("v"), back.Text, el)
		}
		var b strings.Builder
		writeJSONString(&b, v+"\\\x01")
		var got string
		if err := json.Unmarshal([]byte(b.String()), &got); err != nil || got != v+"\\\x01" {
			t.Errorf("JSON string of %q: %s -> %q %v", v, b.String(), got, err)
		}
	}
}

func TestElementDepthAndSizeLimits(t *testing.T) {
	deep := strings.Repeat("<a>", maxDepth+5) + strings.Repeat("</a>", maxDepth+5)
	if _, err := ParseElement(deep); err == nil {
		t.Error("accepted nesting deeper than maxDepth")
	}
	wide := "<a>" + strings.Repeat("<b/>", maxElements+1) + "</a>"
	if _, err := ParseElement(wide); err == nil {
		t.Error("accepted more than maxElements elements")
	}
	if _, err := ParseElement("<a>" + strings.Repeat("<b/>", 100) + "</a>"); err != nil {
		t.Errorf("refused a normal element: %v", err)
	}
}

func TestStanzaErrorRoundTrip(t *testing.T) {
	iq := NewIQ("set", "focus@auth.meet.test/focus", "42", nil).Set("from", "u@meet.test/r")
	se := Errorf("bad-request", "SSRC limit (%d) exceeded.", 20)
	se.App = append(se.App, NewElement(nsColibri2, "error", "reason", "unknown_endpoint"))
	reply := ErrorIQ(iq, se)
	if reply.Attr("to") != "u@meet.test/r" || reply.Attr("id") != "42" || reply.Attr("type") != "error" {
		t.Fatalf("bad addressing: %s", reply)
	}
	back := ParseStanzaError(reply)
	if back.Condition != "bad-request" || back.Type != "modify" || back.Text != "SSRC limit (20) exceeded." {
		t.Errorf("parsed %+v", back)
	}
	if back.AppChild(nsColibri2).Attr("reason") != "unknown_endpoint" {
		t.Errorf("app child lost: %+v", back.App)
	}
}

func FuzzParseElement(f *testing.F) {
	f.Add(`<iq xmlns="jabber:client" type="get"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`)
	f.Add(`<presence><stats xmlns="http://jitsi.org/protocol/colibri"><stat name="stress_level" value="1.0E-4"/></stats></presence>`)
	f.Fuzz(func(t *testing.T, s string) {
		el, err := ParseElement(s)
		if err != nil {
			return
		}
		// What we parse, we can write and parse again to the same tree.
		again, err := ParseElement(el.String())
		if err != nil {
			t.Fatalf("re-parse of %q failed: %v", el.String(), err)
		}
		if again.String() != el.String() {
			t.Fatalf("unstable serialisation:\n%s\n%s", el.String(), again.String())
		}
	})
}
