package config

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// The file is read in two passes. The first (this file) turns the TOML
// document into a tree of nodes that remember where each key and value is
// written; the second (decode.go) checks the tree against what ferry
// understands. Keeping the places is the point: every mistake is reported
// on the line of the key or value that is wrong, and the second pass goes
// on after a mistake, so that one run lists all of them.
//
// go-toml's unstable parser gives the syntax tree with byte ranges; the
// table semantics TOML adds on top of the syntax (array tables, dotted
// keys, no key set twice, inline tables closed) are applied here.

// pos is a place in the file, both 1-based; zero when unknown.
type pos struct{ line, col int }

// kind is the type of a node, as TOML names it.
type kind int

const (
	kString kind = iota + 1
	kInteger
	kFloat
	kBool
	kDateTime
	kArray
	kTable
	kArrayOfTables
)

// String names the kind in messages ("want a string, not an integer").
func (k kind) String() string {
	switch k {
	case kString:
		return "a string"
	case kInteger:
		return "an integer"
	case kFloat:
		return "a float"
	case kBool:
		return "a boolean"
	case kDateTime:
		return "a date or time"
	case kArray:
		return "an array"
	case kTable:
		return "a table"
	case kArrayOfTables:
		return "an array of tables"
	}
	return "a value"
}

// defined says how a table came to exist, which decides what may extend it.
type defined int

const (
	implicit defined = iota // named as the parent of another table only
	byHeader                // [table]
	byDotted                // a.b = 1 creates a
	byInline                // a = { … }: closed once written
	byArray                 // an element of [[array]]
)

// node is one value of the document with its place.
type node struct {
	kind kind
	key  pos    // where the key naming the node is written (the header, for [[tables]])
	at   pos    // where the value is written; key for arrays and header tables
	text string // kString: the decoded string; other scalars: as written

	items []*node // kArray and kArrayOfTables

	keys   []string         // kTable: keys in file order
	fields map[string]*node // kTable
	how    defined          // kTable
}

func newTable(key pos, how defined) *node {
	return &node{kind: kTable, key: key, at: key, how: how, fields: map[string]*node{}}
}

func (n *node) set(k string, v *node) {
	n.keys = append(n.keys, k)
	n.fields[k] = v
}

// integer returns the value of a kInteger node.
func (n *node) integer() (int64, error) {
	s := n.text
	digits := strings.TrimLeft(s, "+-")
	if len(digits) > 1 && digits[0] == '0' && digits[1] >= '0' && digits[1] <= '9' {
		return 0, fmt.Errorf("%s: no leading zeros in a TOML integer", s)
	}
	v, err := strconv.ParseInt(s, 0, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: not an integer ferry can hold", s)
	}
	return v, nil
}

// docBuilder applies TOML's table rules to the parser's expressions.
type docBuilder struct {
	p    *unstable.Parser
	errs *Errors
	root *node
	cur  *node    // the table key/values go into: the last header's
	path []string // cur's key path

	lineStarts []int // offsets where lines start, for positions
}

// parseDoc parses src into a tree. A syntax error ends the parse (nothing
// after it can be read reliably) and is the only mistake reported; a
// mistake in the table structure (a key set twice) is reported and the
// offending expression skipped, and the parse goes on.
func parseDoc(src []byte, errs *Errors) (*node, bool) {
	b := &docBuilder{p: &unstable.Parser{}, errs: errs, root: newTable(pos{1, 1}, byHeader)}
	b.cur = b.root
	b.lineStarts = []int{0}
	for i, c := range src {
		if c == '\n' {
			b.lineStarts = append(b.lineStarts, i+1)
		}
	}
	b.p.Reset(src)
	for b.p.NextExpression() {
		b.expression(b.p.Expression())
	}
	if err := b.p.Error(); err != nil {
		at := pos{}
		msg := err.Error()
		var pe *unstable.ParserError
		if errors.As(err, &pe) {
			at = b.offsetPos(pe.Highlight)
			msg = pe.Message
		}
		errs.add(at, "", "%s", msg)
		return nil, false
	}
	return b.root, true
}

// offsetPos finds where hl, a slice of the parser's input, starts. Like
// the parser's own Range, it relies on subslices sharing the input's
// backing array; unlike Range it cannot panic.
func (b *docBuilder) offsetPos(hl []byte) pos {
	data := b.p.Data()
	off := cap(data) - cap(hl)
	if hl == nil || off < 0 || off > len(data) {
		return pos{}
	}
	return b.posAt(off)
}

func (b *docBuilder) posAt(off int) pos {
	// lineStarts[i] is the offset line i+1 starts at.
	i, found := slices.BinarySearch(b.lineStarts, off)
	if !found {
		i--
	}
	return pos{i + 1, off - b.lineStarts[i] + 1}
}

func (b *docBuilder) rangePos(r unstable.Range) pos {
	if int(r.Offset) > len(b.p.Data()) {
		return pos{}
	}
	return b.posAt(int(r.Offset))
}

// keyParts returns the parts of a (possibly dotted) key and where each is.
func (b *docBuilder) keyParts(n *unstable.Node) ([]string, []pos) {
	var parts []string
	var places []pos
	it := n.Key()
	for it.Next() {
		k := it.Node()
		parts = append(parts, string(k.Data))
		places = append(places, b.rangePos(k.Raw))
	}
	return parts, places
}

func (b *docBuilder) expression(e *unstable.Node) {
	switch e.Kind {
	case unstable.KeyValue:
		b.keyValue(b.cur, b.path, e)
	case unstable.Table, unstable.ArrayTable:
		parts, places := b.keyParts(e)
		b.cur, b.path = b.header(parts, places, e.Kind == unstable.ArrayTable), parts
	}
}

// header opens [parts] or [[parts]] and returns the table its keys go
// into. A header that breaks the table rules is reported; its keys then
// go into a table outside the document, unchecked, so that one mistake
// does not cause a cascade of others.
func (b *docBuilder) header(parts []string, places []pos, array bool) *node {
	if len(parts) == 0 { // the parser never gives one, but a panic would be worse
		return newTable(pos{}, byHeader)
	}
	at := places[0]
	t := b.root
	for i, k := range parts[:len(parts)-1] {
		c, ok := t.fields[k]
		switch {
		case !ok:
			c = newTable(places[i], implicit)
			t.set(k, c)
		case c.kind == kArrayOfTables:
			c = c.items[len(c.items)-1]
		case c.kind != kTable || c.how == byInline:
			b.errs.add(at, dotted(parts[:i+1]), "%s is already %s (line %d), so it cannot hold [%s]",
				dotted(parts[:i+1]), c.kind, c.key.line, dotted(parts))
			return newTable(at, byHeader)
		}
		t = c
	}
	last := parts[len(parts)-1]
	c, ok := t.fields[last]
	switch {
	case array && !ok:
		arr := &node{kind: kArrayOfTables, key: at, at: at}
		t.set(last, arr)
		el := newTable(at, byArray)
		arr.items = append(arr.items, el)
		return el
	case array && c.kind == kArrayOfTables:
		el := newTable(at, byArray)
		c.items = append(c.items, el)
		return el
	case !array && !ok:
		el := newTable(at, byHeader)
		t.set(last, el)
		return el
	case !array && c.kind == kTable && c.how == implicit:
		c.how, c.key, c.at = byHeader, at, at
		return c
	}
	what := "[" + dotted(parts) + "]"
	if array {
		what = "[[" + dotted(parts) + "]]"
	}
	b.errs.add(at, dotted(parts), "%s: %s is already defined on line %d", what, dotted(parts), c.key.line)
	return newTable(at, byHeader)
}

// keyValue sets key = value in table t. A dotted key may only extend
// tables that dotted keys made, as TOML says.
func (b *docBuilder) keyValue(t *node, path []string, e *unstable.Node) {
	parts, places := b.keyParts(e)
	if len(parts) == 0 {
		return
	}
	parts = append(slices.Clip(path), parts...)
	places = append(make([]pos, len(path)), places...)
	first := len(path)
	for i := first; i < len(parts)-1; i++ {
		k := parts[i]
		c, ok := t.fields[k]
		switch {
		case !ok:
			c = newTable(places[i], byDotted)
			t.set(k, c)
		case c.kind != kTable || c.how != byDotted:
			b.errs.add(places[i], dotted(parts), "%s is already %s (line %d): %s cannot be set",
				dotted(parts[:i+1]), c.kind, c.key.line, dotted(parts))
			return
		}
		t = c
	}
	last := parts[len(parts)-1]
	at := places[len(places)-1]
	if c, ok := t.fields[last]; ok {
		b.errs.add(at, dotted(parts), "%s is set twice (first on line %d)", dotted(parts), c.key.line)
		return
	}
	v := b.value(e.Value(), at, parts)
	v.key = at
	t.set(last, v)
}

// value converts a parser value; key is where its key is written, path
// the key's path.
func (b *docBuilder) value(v *unstable.Node, key pos, path []string) *node {
	n := &node{key: key, at: b.rangePos(v.Raw)}
	switch v.Kind {
	case unstable.String:
		n.kind = kString
	case unstable.Integer:
		n.kind = kInteger
	case unstable.Float:
		n.kind = kFloat
	case unstable.Bool:
		n.kind = kBool
	case unstable.LocalDate, unstable.LocalTime, unstable.LocalDateTime, unstable.DateTime:
		n.kind = kDateTime
	case unstable.Array:
		// The parser records no range for an array: its key places it.
		n.kind, n.at = kArray, key
		it := v.Children()
		for it.Next() {
			el := it.Node()
			if el.Kind == unstable.Comment {
				continue
			}
			n.items = append(n.items, b.value(el, key, path))
		}
		return n
	case unstable.InlineTable:
		t := newTable(key, byDotted)
		t.at = n.at
		it := v.Children()
		for it.Next() {
			if kv := it.Node(); kv.Kind == unstable.KeyValue {
				b.keyValue(t, path, kv)
			}
		}
		closeInline(t)
		return t
	}
	n.text = string(v.Data)
	return n
}

// closeInline marks an inline table and the tables its dotted keys made
// as closed to later keys and headers.
func closeInline(t *node) {
	if t.kind != kTable || t.how != byDotted {
		return
	}
	t.how = byInline
	for _, c := range t.fields {
		closeInline(c)
	}
}

func dotted(parts []string) string { return strings.Join(parts, ".") }
