package testkit

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Namespaces the client and the launcher need.
const (
	nsClient = "jabber:client"
	nsStream = "http://etherx.jabber.org/streams"
	nsXML    = "http://www.w3.org/XML/1998/namespace" // the "xml:" prefix
	nsStanza = "urn:ietf:params:xml:ns:xmpp-stanzas"
	nsBind   = "urn:ietf:params:xml:ns:xmpp-bind"
)

// Elem is a small XML element tree: enough to build and inspect stanzas
// (Jingle, Colibri, MUC presence payloads) without a struct per payload.
//
// Space is the namespace URL. In elements built by hand an empty Space means
// "same namespace as the parent", as an element without xmlns does in XML;
// parsed elements always carry their resolved namespace. Text is all character
// data directly inside the element, concatenated (mixed content loses its
// interleaving, which XMPP payloads do not use).
type Elem struct {
	Space, Local string
	Attrs        []xml.Attr
	Kids         []*Elem
	Text         string
}

// NewElem returns an element with attributes given as name, value pairs:
// NewElem("", "iq", "type", "get", "to", "meet.test"). It panics on an odd
// number of kv strings, which is a bug in the calling test.
func NewElem(space, local string, kv ...string) *Elem {
	if len(kv)%2 != 0 {
		panic("testkit.NewElem: odd number of attribute name/value strings")
	}
	e := &Elem{Space: space, Local: local}
	for i := 0; i < len(kv); i += 2 {
		e.Set(kv[i], kv[i+1])
	}
	return e
}

// attrName maps "xml:lang" to the name encoding/xml gives the attribute when
// parsing; other names are taken as unqualified.
func attrName(name string) xml.Name {
	if local, ok := strings.CutPrefix(name, "xml:"); ok {
		return xml.Name{Space: nsXML, Local: local}
	}
	return xml.Name{Local: name}
}

// Attr returns the value of the attribute (empty if absent). "xml:lang"
// addresses the xml-namespaced attribute; any other name matches an
// unqualified attribute first and otherwise one with that local name in any
// namespace.
func (e *Elem) Attr(name string) string {
	n := attrName(name)
	for _, a := range e.Attrs {
		if a.Name == n {
			return a.Value
		}
	}
	for _, a := range e.Attrs {
		if a.Name.Local == n.Local && n.Space == "" {
			return a.Value
		}
	}
	return ""
}

// Set sets (or replaces) an attribute and returns e for chaining.
func (e *Elem) Set(name, value string) *Elem {
	n := attrName(name)
	for i := range e.Attrs {
		if e.Attrs[i].Name == n {
			e.Attrs[i].Value = value
			return e
		}
	}
	e.Attrs = append(e.Attrs, xml.Attr{Name: n, Value: value})
	return e
}

// Add appends children and returns e for chaining.
func (e *Elem) Add(kids ...*Elem) *Elem {
	e.Kids = append(e.Kids, kids...)
	return e
}

// SetText sets the character data and returns e for chaining.
func (e *Elem) SetText(text string) *Elem {
	e.Text = text
	return e
}

// Child returns the first child with that local name and namespace (space ""
// matches any namespace), or nil.
func (e *Elem) Child(space, local string) *Elem {
	if e == nil {
		return nil
	}
	for _, k := range e.Kids {
		if k.Local == local && (space == "" || k.Space == space) {
			return k
		}
	}
	return nil
}

// All returns every child with that local name and namespace (space "" matches
// any namespace; local "" matches any name).
func (e *Elem) All(space, local string) []*Elem {
	if e == nil {
		return nil
	}
	var out []*Elem
	for _, k := range e.Kids {
		if (local == "" || k.Local == local) && (space == "" || k.Space == space) {
			out = append(out, k)
		}
	}
	return out
}

// String serialises e as it would be sent inside a jabber:client stream: the
// root gets no xmlns when its namespace is jabber:client (or empty), and any
// element gets an xmlns only where its namespace differs from its parent's.
// Values are escaped, and characters XML cannot carry become U+FFFD, so the
// result is always well-formed.
func (e *Elem) String() string {
	var b strings.Builder
	e.write(&b, nsClient)
	return b.String()
}

func (e *Elem) write(b *strings.Builder, parentSpace string) {
	space := e.Space
	if space == "" {
		space = parentSpace
	}
	b.WriteByte('<')
	b.WriteString(e.Local)
	if space != parentSpace {
		b.WriteString(" xmlns='")
		escape(b, space, true)
		b.WriteByte('\'')
	}
	var prefixes map[string]string // attribute namespace -> declared prefix
	for _, a := range e.Attrs {
		b.WriteByte(' ')
		switch a.Name.Space {
		case "":
		case nsXML, "xml":
			b.WriteString("xml:")
		default:
			if prefixes == nil {
				prefixes = map[string]string{}
			}
			p, ok := prefixes[a.Name.Space]
			if !ok {
				p = fmt.Sprintf("a%d", len(prefixes))
				prefixes[a.Name.Space] = p
				b.WriteString("xmlns:" + p + "='")
				escape(b, a.Name.Space, true)
				b.WriteString("' ")
			}
			b.WriteString(p + ":")
		}
		b.WriteString(a.Name.Local)
		b.WriteString("='")
		escape(b, a.Value, true)
		b.WriteByte('\'')
	}
	if len(e.Kids) == 0 && e.Text == "" {
		b.WriteString("/>")
		return
	}
	b.WriteByte('>')
	escape(b, e.Text, false)
	for _, k := range e.Kids {
		k.write(b, space)
	}
	b.WriteString("</")
	b.WriteString(e.Local)
	b.WriteByte('>')
}

// escape writes s as XML character data (or an attribute value when attr is
// set, where quotes and whitespace control characters are escaped too).
func escape(b *strings.Builder, s string, attr bool) {
	for _, r := range s {
		switch {
		case r == '&':
			b.WriteString("&amp;")
		case r == '<':
			b.WriteString("&lt;")
		case r == '>':
			b.WriteString("&gt;")
		case attr && r == '\'':
			b.WriteString("&apos;")
		case attr && r == '"':
			b.WriteString("&quot;")
		case attr && r == '\n':
			b.WriteString("&#xA;")
		case attr && r == '\r':
			b.WriteString("&#xD;")
		case attr && r == '\t':
			b.WriteString("&#x9;")
		case r == '\r':
			b.WriteString("&#xD;") // a raw CR would be normalised away by the parser
		case !xmlChar(r):
			b.WriteRune(utf8.RuneError)
		default:
			b.WriteRune(r)
		}
	}
}

// xmlChar reports whether r may appear in an XML 1.0 document.
func xmlChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD ||
		r >= 0x10000 && r <= 0x10FFFF
}

// ParseElem parses one XML element (the first one in s).
func ParseElem(s string) (*Elem, error) {
	d := xml.NewDecoder(strings.NewReader(s))
	e, err := readElem(d)
	if err != nil {
		return nil, fmt.Errorf("testkit: parsing element: %w", err)
	}
	return e, nil
}

// errNoElement is returned by readElem when the input ends before an element
// starts.
var errNoElement = errors.New("no element")

// readElem reads tokens up to and including one whole element, skipping
// whitespace (and anything else) before it. Tokens must be namespace-resolved
// as encoding/xml produces them. Namespace declarations are dropped from the
// attributes: the namespace lives in Space.
func readElem(r xml.TokenReader) (*Elem, error) {
	var stack []*Elem
	for {
		tok, err := r.Token()
		if err != nil {
			if err == io.EOF {
				if len(stack) == 0 {
					return nil, errNoElement
				}
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			e := &Elem{Space: t.Name.Space, Local: t.Name.Local}
			for _, a := range t.Attr {
				if a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns") {
					continue
				}
				e.Attrs = append(e.Attrs, a)
			}
			if n := len(stack); n > 0 {
				stack[n-1].Kids = append(stack[n-1].Kids, e)
			}
			stack = append(stack, e)
		case xml.EndElement:
			if len(stack) == 0 {
				return nil, fmt.Errorf("unexpected end element </%s>", t.Name.Local)
			}
			e := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				return e, nil
			}
		case xml.CharData:
			if n := len(stack); n > 0 {
				stack[n-1].Text += string(t)
			}
		}
	}
}

// StanzaError is the <error/> of an error stanza (RFC 6120 §8.3).
type StanzaError struct {
	Type      string // "cancel", "modify", "auth", "wait", "continue"
	Condition string // e.g. "item-not-found", "service-unavailable"
	Text      string
	Stanza    *Elem // the whole error stanza
}

func (e *StanzaError) Error() string {
	msg := fmt.Sprintf("xmpp %s error: %s", e.Stanza.Local, e.Condition)
	if e.Type != "" {
		msg += " (" + e.Type + ")"
	}
	if e.Text != "" {
		msg += ": " + e.Text
	}
	return msg
}

// StanzaErrorOf returns the error carried by a stanza of type "error", or nil
// if the stanza is not an error.
func StanzaErrorOf(st *Elem) *StanzaError {
	if st == nil || st.Attr("type") != "error" {
		return nil
	}
	se := &StanzaError{Stanza: st, Condition: "undefined-condition"}
	el := st.Child("", "error")
	if el == nil {
		return se
	}
	se.Type = el.Attr("type")
	for _, k := range el.Kids {
		switch {
		case k.Space == nsStanza && k.Local == "text":
			se.Text = k.Text
		case k.Space == nsStanza:
			se.Condition = k.Local
		}
	}
	return se
}
