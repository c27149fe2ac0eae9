package main

// caps.go: entity capabilities (XEP-0115), both ways.
//
// Participants advertise <c hash node ver/> in their presence; ver is a hash
// of their disco#info answer, so the focus asks each client version once and
// remembers the answer by node#ver. A ver is only a claim, though: the answer
// is remembered only when it hashes to that ver, otherwise anyone could
// advertise a popular ver with a crafted answer and every later client of
// that version would be treated by what the attacker said. The focus's own
// presence carries the hash of its own disco#info answer, computed by the
// same function.

import (
	"context"
	"crypto/sha1" // #nosec G505 -- XEP-0115's hash; a cache key, not a secret
	"encoding/base64"
	"errors"
	"sort"
	"strings"
	"sync"
	"time"
)

// capsHashSHA1 is the only caps hash algorithm the focus verifies (every
// client it has met uses it). Answers advertised under another hash are
// used for that participant only, never cached.
const capsHashSHA1 = "sha-1"

// capsNode is the node the focus advertises in its own caps.
const capsNode = "https://github.com/minifocus"

// Bounds of the capabilities cache: entries and bytes (an entry counts its
// key and its features).
const (
	capsCacheEntries = 1000
	capsCacheBytes   = 512 << 10
	// capsEntryMaxBytes: an answer bigger than this is not cached at all, so
	// that one client cannot flush the cache.
	capsEntryMaxBytes = 16 << 10
)

var errCapsIllFormed = errors.New("disco#info answer ill-formed for caps (duplicate identity, feature or form)")

// capsVerification computes the XEP-0115 §5.1 verification string of a
// disco#info <query>: identities (category/type/lang/name), features and
// extended data forms (by FORM_TYPE, fields by var, values sorted), each
// followed by '<', hashed with SHA-1 and base64-encoded. A query that §5.4
// calls ill-formed (duplicate identities, features or FORM_TYPEs) is an
// error.
func capsVerification(query *Element) (string, error) {
	var idents []string
	for _, id := range query.All(nsDiscoInfo, "identity") {
		lang := ""
		for _, a := range id.Attrs {
			if a.Name.Local == "lang" && (a.Name.Space == nsXML || a.Name.Space == "xml") {
				lang = a.Value
			}
		}
		idents = append(idents, id.Attr("category")+"/"+id.Attr("type")+"/"+lang+"/"+id.Attr("name"))
	}
	var feats []string
	for _, f := range query.All(nsDiscoInfo, "feature") {
		feats = append(feats, f.Attr("var"))
	}
	type form struct {
		typ    string
		fields [][]string // var, then its values
	}
	var forms []form
	for _, x := range query.All(nsDataForms, "x") {
		var fm form
		hasType := false
		for _, fl := range x.All(nsDataForms, "field") {
			var vals []string
			for _, v := range fl.All(nsDataForms, "value") {
				vals = append(vals, v.Text)
			}
			if fl.Attr("var") == "FORM_TYPE" {
				if len(vals) > 0 {
					fm.typ = vals[0]
				}
				hasType = true
				continue
			}
			sort.Strings(vals)
			fm.fields = append(fm.fields, append([]string{fl.Attr("var")}, vals...))
		}
		if !hasType {
			continue // a form without FORM_TYPE is left out of the hash
		}
		forms = append(forms, fm)
	}
	sort.Strings(idents)
	sort.Strings(feats)
	sort.Slice(forms, func(i, j int) bool { return forms[i].typ < forms[j].typ })
	for i := 1; i < len(idents); i++ {
		if idents[i] == idents[i-1] {
			return "", errCapsIllFormed
		}
	}
	for i := 1; i < len(feats); i++ {
		if feats[i] == feats[i-1] {
			return "", errCapsIllFormed
		}
	}
	for i := 1; i < len(forms); i++ {
		if forms[i].typ == forms[i-1].typ {
			return "", errCapsIllFormed
		}
	}
	var b strings.Builder
	for _, s := range idents {
		b.WriteString(s)
		b.WriteByte('<')
	}
	for _, s := range feats {
		b.WriteString(s)
		b.WriteByte('<')
	}
	for _, fm := range forms {
		b.WriteString(fm.typ)
		b.WriteByte('<')
		sort.Slice(fm.fields, func(i, j int) bool { return fm.fields[i][0] < fm.fields[j][0] })
		for _, fl := range fm.fields {
			for _, s := range fl {
				b.WriteString(s)
				b.WriteByte('<')
			}
		}
	}
	sum := sha1.Sum([]byte(b.String())) // #nosec G401 -- mandated by XEP-0115
	return base64.StdEncoding.EncodeToString(sum[:]), nil
}

// capsCache remembers verified disco#info features by caps node#ver,
// bounded in entries and in bytes; the oldest entries go first.
type capsCache struct {
	mu    sync.Mutex
	max   int
	bytes int // bytes held now
	items map[string]capsEntry
	order []string // keys, oldest first
}

type capsEntry struct {
	features []string
	size     int
}

// newCapsCache returns an empty cache of at most max entries.
func newCapsCache(max int) *capsCache { return &capsCache{max: max, items: map[string]capsEntry{}} }

func (c *capsCache) get(key string) ([]string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[key]
	return e.features, ok
}

// capsEntrySize is what an entry is counted as: its strings plus a fixed
// overhead per string and per entry.
func capsEntrySize(key string, features []string) int {
	n := 64 + len(key)
	for _, f := range features {
		n += 16 + len(f)
	}
	return n
}

// put caches a verified answer; one over capsEntryMaxBytes is not cached.
func (c *capsCache) put(key string, v []string) {
	size := capsEntrySize(key, v)
	if size > capsEntryMaxBytes {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.items[key]; ok {
		c.bytes -= old.size
		delete(c.items, key)
		c.order = removeString(c.order, key)
	}
	for len(c.order) > 0 && (len(c.items) >= c.max || c.bytes+size > capsCacheBytes) {
		oldest := c.order[0]
		c.order = c.order[1:]
		c.bytes -= c.items[oldest].size
		delete(c.items, oldest)
	}
	c.items[key] = capsEntry{features: v, size: size}
	c.order = append(c.order, key)
	c.bytes += size
}

// usage reports the entries and bytes held.
func (c *capsCache) usage() (entries, bytes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.items), c.bytes
}

func removeString(s []string, v string) []string {
	for i, x := range s {
		if x == v {
			return append(s[:i], s[i+1:]...)
		}
	}
	return s
}

// capsVer is the verification string of the focus's own disco#info answer,
// which its presence advertises.
func (c *XMPPClient) capsVer() string {
	c.capsOnce.Do(func() {
		v, err := capsVerification(c.discoInfo(""))
		if err != nil {
			c.log.Error("cannot hash the focus's own disco#info", "err", err)
		}
		c.ownCaps = v
	})
	return c.ownCaps
}

// discoTimeout bounds a participant's disco#info; after it the default
// feature set is used (Jicofo's behaviour).
const discoTimeout = 5 * time.Second

// discover learns a member's features: from the caps cache, else by
// disco#info to its occupant JID, else the default set.
func (c *Conference) discover(m *Participant) {
	// Only answers verified against a sha-1 ver are in the cache.
	cacheable := m.CapsKey != "" && m.capsHash == capsHashSHA1
	if cacheable {
		if feats, ok := c.f.caps.get(m.CapsKey); ok {
			m.Features = ParseFeatures(feats)
			m.featuresKnown = true
			return
		}
	}
	m.discoPending = true
	q := NewElement(nsDiscoInfo, "query")
	if m.CapsKey != "" {
		q.Set("node", m.CapsKey)
	}
	iq := NewIQ("get", m.Occupant, "", q)
	key, ver, nick, x := m.CapsKey, m.capsVer, m.Nick, c.f.x
	c.async(func() func() {
		ctx, cancel := context.WithTimeout(context.Background(), discoTimeout)
		defer cancel()
		resp, err := x.SendIQ(ctx, iq)
		var feats []string
		if err == nil {
			query := resp.Child(nsDiscoInfo, "query")
			for _, f := range query.All(nsDiscoInfo, "feature") {
				feats = append(feats, f.Attr("var"))
			}
			if cacheable && len(feats) > 0 {
				// Trusted for others only when the answer hashes to the
				// advertised ver; otherwise it is this member's alone.
				if got, verr := capsVerification(query); verr == nil && got == ver {
					c.f.caps.put(key, feats)
				} else {
					c.log.Info("caps ver does not match the disco#info answer; not cached",
						"endpoint", nick, "ver", truncate(ver, 64), "computed", got, "err", verr)
				}
			}
		}
		return func() {
			m := c.members[nick]
			if m == nil {
				return
			}
			m.discoPending = false
			m.featuresKnown = true
			if err != nil || len(feats) == 0 {
				c.log.Info("disco#info failed; using the default feature set", "endpoint", nick, "err", err)
				m.Features = DefaultFeatures()
			} else {
				m.Features = ParseFeatures(feats)
			}
			c.evaluate()
		}
	})
}
