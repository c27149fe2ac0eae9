package main

// Golden files: expected stanzas under testdata/<dir>/, compared as parsed
// trees (indentation does not matter). Rewrite them with
// `go test -run NAME -update .` and read the diff before keeping it.

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var updateGolden = flag.Bool("update", false, "rewrite golden files under testdata/")

// checkGoldenXML compares got with testdata/dir/name.
func checkGoldenXML(t *testing.T, dir, name string, got *Element) {
	t.Helper()
	path := filepath.Join("testdata", dir, name)
	if *updateGolden {
		var b bytes.Buffer
		writeIndented(&b, got, "", "")
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	want, err := ParseElement(string(raw))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if g, w := got.String(), want.String(); g != w {
		t.Errorf("%s differs:\n got: %s\nwant: %s\n(first difference at byte %d)", path, g, w, firstDiff(g, w))
	}
}

func firstDiff(a, b string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// writeIndented writes e one element per line, in a form ParseElement reads
// back to the same tree (text-bearing elements stay on one line).
func writeIndented(b *bytes.Buffer, e *Element, parentNS, indent string) {
	one := &Element{Space: e.Space, Local: e.Local, Attrs: e.Attrs}
	s := one.String()
	if parentNS == e.Space {
		// String declares the namespace of a root; drop it when inherited.
		s = strings.Replace(s, ` xmlns="`+e.Space+`"`, "", 1)
	}
	if e.Text != "" && len(e.Children) == 0 {
		// Quotes stay as they are so that JSON text reads as JSON.
		text := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(e.Text)
		b.WriteString(indent + strings.TrimSuffix(s, "/>") + ">" + text + "</" + e.Local + ">\n")
		return
	}
	if len(e.Children) == 0 {
		b.WriteString(indent + s + "\n")
		return
	}
	b.WriteString(indent + strings.TrimSuffix(s, "/>") + ">\n")
	for _, c := range e.Children {
		writeIndented(b, c, e.Space, indent+"  ")
	}
	b.WriteString(indent + "</" + e.Local + ">\n")
}
