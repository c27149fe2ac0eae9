package main

// element.go: the one XML tree type every stanza is read into and written from.
//
// A focus reads stanzas whose payloads it must see whole (bridge <stats>, MUC
// status codes, Jingle contents, Colibri2 transports), and it builds stanzas
// that must be byte-exact where clients are picky (attribute names such as
// "focusjid", child order in session-initiate). A small generic tree is the
// simplest thing that does both: parsers walk it, builders append to it.

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Namespaces used across the focus.
const (
	nsClient      = "jabber:client"
	nsStanzas     = "urn:ietf:params:xml:ns:xmpp-stanzas"
	nsPing        = "urn:xmpp:ping"
	nsDiscoInfo   = "http://jabber.org/protocol/disco#info"
	nsCaps        = "http://jabber.org/protocol/caps"
	nsMUC         = "http://jabber.org/protocol/muc"
	nsMUCUser     = "http://jabber.org/protocol/muc#user"
	nsMUCOwner    = "http://jabber.org/protocol/muc#owner"
	nsMUCAdmin    = "http://jabber.org/protocol/muc#admin"
	nsDataForms   = "jabber:x:data"
	nsFocus       = "http://jitsi.org/protocol/focus"
	nsJitmeet     = "http://jitsi.org/jitmeet"
	nsColibri     = "http://jitsi.org/protocol/colibri"
	nsColibri2    = "jitsi:colibri2"
	nsHealthCheck = "http://jitsi.org/protocol/healthcheck"
	nsJingle      = "urn:xmpp:jingle:1"
	nsRTP         = "urn:xmpp:jingle:apps:rtp:1"
	nsSSMA        = "urn:xmpp:jingle:apps:rtp:ssma:0"
	nsRTCPFB      = "urn:xmpp:jingle:apps:rtp:rtcp-fb:0"
	nsHdrExt      = "urn:xmpp:jingle:apps:rtp:rtp-hdrext:0"
	nsICEUDP      = "urn:xmpp:jingle:transports:ice-udp:1"
	nsDTLS        = "urn:xmpp:jingle:apps:dtls:0"
	nsSCTP        = "urn:xmpp:jingle:transports:dtls-sctp:1"
	nsGrouping    = "urn:xmpp:jingle:apps:grouping:0"
	nsStartMuted  = "http://jitsi.org/jitmeet/start-muted"
	nsXML         = "http://www.w3.org/XML/1998/namespace"
)

// Limits on what the parser accepts from the network. A stanza deeper or
// larger than this is dropped (and logged), never half-processed.
const (
	maxDepth    = 32
	maxElements = 20000
)

// Element is an XML element: a namespace, a local name, attributes (without
// xmlns declarations), child elements and the concatenated text content.
type Element struct {
	Space, Local string
	Attrs        []xml.Attr
	Children     []*Element
	Text         string
	// Raw is already serialised content written after Children (in this
	// element's namespace). Only senders set it, to render one payload
	// once for many receivers; parsed elements never have it.
	Raw []byte
}

// NewElement returns an element; kv are attribute name/value pairs.
func NewElement(space, local string, kv ...string) *Element {
	e := &Element{Space: space, Local: local}
	for i := 0; i+1 < len(kv); i += 2 {
		e.Attrs = append(e.Attrs, xml.Attr{Name: xml.Name{Local: kv[i]}, Value: kv[i+1]})
	}
	return e
}

// Attr returns the value of the attribute named name (any namespace), or "".
func (e *Element) Attr(name string) string {
	if e == nil {
		return ""
	}
	for _, a := range e.Attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// HasAttr reports whether the attribute is present.
func (e *Element) HasAttr(name string) bool {
	if e == nil {
		return false
	}
	for _, a := range e.Attrs {
		if a.Name.Local == name {
			return true
		}
	}
	return false
}

// Set sets (or replaces) an attribute and returns e. An empty value removes it.
func (e *Element) Set(name, value string) *Element {
	for i, a := range e.Attrs {
		if a.Name.Local == name {
			if value == "" {
				e.Attrs = append(e.Attrs[:i], e.Attrs[i+1:]...)
			} else {
				e.Attrs[i].Value = value
			}
			return e
		}
	}
	if value != "" {
		e.Attrs = append(e.Attrs, xml.Attr{Name: xml.Name{Local: name}, Value: value})
	}
	return e
}

// Add appends children (nil ones are skipped) and returns e.
func (e *Element) Add(kids ...*Element) *Element {
	for _, k := range kids {
		if k != nil {
			e.Children = append(e.Children, k)
		}
	}
	return e
}

// SetText sets the text content and returns e.
func (e *Element) SetText(s string) *Element {
	e.Text = s
	return e
}

// Child returns the first child with that name; space "" matches any namespace.
func (e *Element) Child(space, local string) *Element {
	if e == nil {
		return nil
	}
	for _, c := range e.Children {
		if c.Local == local && (space == "" || c.Space == space) {
			return c
		}
	}
	return nil
}

// All returns every child with that name; space "" matches any namespace.
func (e *Element) All(space, local string) []*Element {
	if e == nil {
		return nil
	}
	var out []*Element
	for _, c := range e.Children {
		if c.Local == local && (space == "" || c.Space == space) {
			out = append(out, c)
		}
	}
	return out
}

// RemoveChildren drops every child with that name and returns e.
func (e *Element) RemoveChildren(space, local string) *Element {
	kept := e.Children[:0]
	for _, c := range e.Children {
		if !(c.Local == local && (space == "" || c.Space == space)) {
			kept = append(kept, c)
		}
	}
	e.Children = kept
	return e
}

// Copy returns a deep copy.
func (e *Element) Copy() *Element {
	if e == nil {
		return nil
	}
	c := &Element{Space: e.Space, Local: e.Local, Text: e.Text, Raw: e.Raw}
	c.Attrs = append([]xml.Attr(nil), e.Attrs...)
	for _, k := range e.Children {
		c.Children = append(c.Children, k.Copy())
	}
	return c
}

// String serialises the element (namespaces declared where they change).
func (e *Element) String() string {
	var b bytes.Buffer
	e.write(&b, "")
	return b.String()
}

// renderChildren serialises kids as the content of an element in namespace
// parentNS (for Element.Raw).
func renderChildren(kids []*Element, parentNS string) []byte {
	var b bytes.Buffer
	for _, k := range kids {
		k.write(&b, parentNS)
	}
	return b.Bytes()
}

// Bytes is String as a byte slice.
func (e *Element) Bytes() []byte {
	var b bytes.Buffer
	b.Grow(e.sizeHint())
	e.write(&b, "")
	return b.Bytes()
}

// sizeHint is about the serialised size of e (escaping aside), so that a
// session-initiate of tens of kilobytes is written into one buffer.
func (e *Element) sizeHint() int {
	n := 2*len(e.Local) + len(e.Space) + 16 + len(e.Text) + len(e.Raw)
	for _, a := range e.Attrs {
		n += len(a.Name.Local) + len(a.Value) + 4
	}
	for _, c := range e.Children {
		n += c.sizeHint()
	}
	return n
}

func (e *Element) write(b *bytes.Buffer, parentNS string) {
	b.WriteByte('<')
	b.WriteString(e.Local)
	if e.Space != parentNS {
		b.WriteString(` xmlns="`)
		escapeAttr(b, e.Space)
		b.WriteByte('"')
	}
	for _, a := range e.Attrs {
		b.WriteByte(' ')
		if a.Name.Space == nsXML || a.Name.Space == "xml" {
			b.WriteString("xml:")
		}
		b.WriteString(a.Name.Local)
		b.WriteString(`="`)
		escapeAttr(b, a.Value)
		b.WriteByte('"')
	}
	if len(e.Children) == 0 && e.Text == "" && len(e.Raw) == 0 {
		b.WriteString("/>")
		return
	}
	b.WriteByte('>')
	if e.Text != "" {
		escapeText(b, e.Text)
	}
	for _, c := range e.Children {
		c.write(b, e.Space)
	}
	b.Write(e.Raw)
	b.WriteString("</")
	b.WriteString(e.Local)
	b.WriteByte('>')
}

func escapeAttr(b *bytes.Buffer, s string) { escapeXML(b, s, true) }

func escapeText(b *bytes.Buffer, s string) { escapeXML(b, s, false) }

// escapeXML writes s as an attribute value (attr) or character data; runs
// that need no escaping are copied whole (source JSON is tens of kilobytes
// in a big conference).
func escapeXML(b *bytes.Buffer, s string, attr bool) {
	last := 0
	for i := 0; i < len(s); i++ {
		var esc string
		switch c := s[i]; {
		case c == '&':
			esc = "&amp;"
		case c == '<':
			esc = "&lt;"
		case c == '>':
			esc = "&gt;"
		case c == '\r':
			esc = "&#xD;"
		case attr && c == '"':
			esc = "&quot;"
		case attr && c == '\n':
			esc = "&#xA;"
		case attr && c == '\t':
			esc = "&#x9;"
		default:
			continue
		}
		b.WriteString(s[last:i])
		b.WriteString(esc)
		last = i + 1
	}
	b.WriteString(s[last:])
}

// ParseElement parses one element from s (used by tests, golden files and fuzzing).
func ParseElement(s string) (*Element, error) {
	d := xml.NewDecoder(strings.NewReader(s))
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, fmt.Errorf("parse element: %w", err)
		}
		if start, ok := tok.(xml.StartElement); ok {
			return readElement(d, start)
		}
	}
}

var errTooDeep = errors.New("xml: element nesting or size over the limit")

// readElement reads the rest of the element that start opened from a token
// reader that resolves namespaces (encoding/xml's Token, or mellium's session
// reader). Past maxDepth or maxElements it reads on to the end of the element
// without keeping anything and returns errTooDeep, so the stream stays usable.
func readElement(r xml.TokenReader, start xml.StartElement) (*Element, error) {
	root := fromStart(start)
	stack := []*Element{root}
	texts := [][]byte{nil} // character data of each open element, nil until some arrives
	count, depth, over := 1, 1, false
	for depth > 0 {
		tok, err := r.Token()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			count++
			if over || depth > maxDepth || count > maxElements {
				over = true
				continue
			}
			el := fromStart(t)
			parent := stack[len(stack)-1]
			parent.Children = append(parent.Children, el)
			stack = append(stack, el)
			texts = append(texts, nil)
		case xml.EndElement:
			depth--
			if over {
				continue
			}
			top := stack[len(stack)-1]
			if txt := texts[len(texts)-1]; len(bytes.TrimSpace(txt)) > 0 {
				top.Text = string(txt)
			}
			stack = stack[:len(stack)-1]
			texts = texts[:len(texts)-1]
		case xml.CharData:
			if over {
				continue
			}
			if len(texts[len(texts)-1])+len(t) > 1<<20 {
				over = true
				continue
			}
			texts[len(texts)-1] = append(texts[len(texts)-1], t...)
		}
	}
	if over {
		return nil, errTooDeep
	}
	return root, nil
}

func fromStart(t xml.StartElement) *Element {
	e := &Element{Space: t.Name.Space, Local: t.Name.Local}
	if len(t.Attr) > 0 {
		e.Attrs = make([]xml.Attr, 0, len(t.Attr))
	}
	for _, a := range t.Attr {
		if a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns") {
			continue
		}
		// Attributes in foreign namespaces carry nothing a focus reads, and
		// could not be written back unchanged without their prefix.
		if a.Name.Space != "" && a.Name.Space != nsXML && a.Name.Space != "xml" {
			continue
		}
		e.Attrs = append(e.Attrs, a)
	}
	return e
}

// Stanza helpers --------------------------------------------------------------

// NewIQ builds an IQ stanza of the given type with one optional payload.
func NewIQ(typ, to, id string, payload *Element) *Element {
	iq := NewElement(nsClient, "iq", "type", typ)
	iq.Set("to", to).Set("id", id)
	return iq.Add(payload)
}

// Payload returns the first child element of a stanza (the IQ payload).
func (e *Element) Payload() *Element {
	for _, c := range e.Children {
		if c.Local != "error" {
			return c
		}
	}
	return nil
}

// ResultIQ builds the empty result to iq, with optional payload.
func ResultIQ(iq *Element, payload *Element) *Element {
	r := NewElement(nsClient, "iq", "type", "result")
	r.Set("to", iq.Attr("from")).Set("id", iq.Attr("id"))
	return r.Add(payload)
}

// StanzaError is an XMPP stanza error (RFC 6120 §8.3) with an optional
// application-specific child (such as Colibri2's <error reason=…/>).
type StanzaError struct {
	Type      string // cancel, modify, auth, wait
	Condition string // e.g. bad-request, item-not-found
	Text      string
	App       []*Element
}

func (e *StanzaError) Error() string {
	if e.Text != "" {
		return e.Condition + ": " + e.Text
	}
	return e.Condition
}

// AppChild returns the application-specific child with that namespace.
func (e *StanzaError) AppChild(space string) *Element {
	for _, a := range e.App {
		if a.Space == space {
			return a
		}
	}
	return nil
}

// Errorf returns a stanza error; the type follows the condition as RFC 6120 suggests.
func Errorf(condition, format string, args ...any) *StanzaError {
	typ := "cancel"
	switch condition {
	case "bad-request", "not-acceptable", "jid-malformed":
		typ = "modify"
	case "not-authorized", "forbidden":
		typ = "auth"
	case "resource-constraint", "remote-server-timeout":
		typ = "wait"
	}
	text := format
	if len(args) > 0 {
		text = fmt.Sprintf(format, args...)
	}
	return &StanzaError{Type: typ, Condition: condition, Text: text}
}

// Element renders the <error/> child.
func (e *StanzaError) Element() *Element {
	el := NewElement(nsClient, "error", "type", e.Type)
	el.Add(NewElement(nsStanzas, e.Condition))
	if e.Text != "" {
		el.Add(NewElement(nsStanzas, "text").SetText(e.Text))
	}
	el.Add(e.App...)
	return el
}

// ErrorIQ builds the error reply to iq.
func ErrorIQ(iq *Element, se *StanzaError) *Element {
	r := NewElement(nsClient, "iq", "type", "error")
	r.Set("to", iq.Attr("from")).Set("id", iq.Attr("id"))
	return r.Add(se.Element())
}

// ParseStanzaError reads the <error/> child of an error stanza.
func ParseStanzaError(st *Element) *StanzaError {
	el := st.Child("", "error")
	se := &StanzaError{Type: el.Attr("type"), Condition: "undefined-condition"}
	if el == nil {
		return se
	}
	for _, c := range el.Children {
		switch {
		case c.Space == nsStanzas && c.Local == "text":
			se.Text = c.Text
		case c.Space == nsStanzas:
			se.Condition = c.Local
		default:
			se.App = append(se.App, c)
		}
	}
	return se
}

func formValue(x *Element, v string) string {
	for _, f := range x.All(nsDataForms, "field") {
		if f.Attr("var") == v {
			if v := f.Child(nsDataForms, "value"); v != nil {
				return strings.TrimSpace(v.Text)
			}
		}
	}
	return ""
}

func formField(v, value string) *Element {
	return NewElement(nsDataForms, "field", "var", v).Add(NewElement(nsDataForms, "value").SetText(value))
}
