package config

import (
	"fmt"
	"slices"
)

// fields reads the keys of one table, reporting a value of the wrong type
// on its line and, in unknown, every key nobody read.
type fields struct {
	errs *Errors
	t    *node
	path string // the table's key path: "route.sink"
	ctx  string // what messages are about: `route "blog"`
	rel  string // the table's path in messages under ctx: "source."
}

func (f *fields) key(k string) string {
	if f.path == "" {
		return k
	}
	return f.path + "." + k
}

// failf reports a mistake at p on key k, prefixed with the context.
func (f *fields) failf(p pos, k, format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	if f.ctx != "" {
		msg = f.ctx + ": " + msg
	}
	f.errs.add(p, k, "%s", msg)
}

// get returns the node of key k when it is present and of kind want (nil
// and false when absent; the node and false, reported, when of another
// kind).
func (f *fields) get(k string, want kind) (*node, bool) {
	n := f.t.fields[k]
	if n == nil {
		return nil, false
	}
	if n.kind != want {
		f.failf(n.at, f.key(k), "%s%s: want %s, not %s", f.rel, k, want, n.kind)
		return n, false
	}
	return n, true
}

// str returns the string at k ("" when absent or not a string).
func (f *fields) str(k string) (string, *node, bool) {
	n, ok := f.get(k, kString)
	if !ok {
		return "", n, false
	}
	return n.text, n, true
}

// boolean returns the boolean at k (nil when absent or not a boolean).
func (f *fields) boolean(k string) (*bool, *node) {
	n, ok := f.get(k, kBool)
	if !ok {
		return nil, n
	}
	v := n.text == "true"
	return &v, n
}

// integer returns the integer at k.
func (f *fields) integer(k string) (int, *node, bool) {
	n, ok := f.get(k, kInteger)
	if !ok {
		return 0, n, false
	}
	v, err := n.integer()
	if err != nil {
		f.failf(n.at, f.key(k), "%s%s: %v", f.rel, k, err)
		return 0, n, false
	}
	return int(v), n, true
}

// strs returns the array of strings at k, each with its node; elements of
// another type are reported and left out.
func (f *fields) strs(k string) ([]string, []*node) {
	n, ok := f.get(k, kArray)
	if !ok {
		return nil, nil
	}
	var vals []string
	var nodes []*node
	for i, el := range n.items {
		if el.kind != kString {
			f.failf(el.at, f.key(k), "%s%s[%d]: want a string, not %s", f.rel, k, i, el.kind)
			continue
		}
		vals, nodes = append(vals, el.text), append(nodes, el)
	}
	return vals, nodes
}

// table returns the table at k.
func (f *fields) table(k string) (*node, bool) {
	return f.get(k, kTable)
}

// tables returns the tables of [[k]] (or of k = [{…}, …]); false when k
// holds another kind of value, which is reported.
func (f *fields) tables(k string) ([]*node, bool) {
	n := f.t.fields[k]
	switch {
	case n == nil:
		return nil, true
	case n.kind == kArrayOfTables:
		return n.items, true
	case n.kind == kArray && !slices.ContainsFunc(n.items, func(el *node) bool { return el.kind != kTable }):
		return n.items, true
	}
	f.failf(n.at, f.key(k), "%s%s: want [[%s]] tables, not %s", f.rel, k, f.key(k), n.kind)
	return nil, false
}

// unknown reports every key of the table not in valid, with the nearest
// valid key when one is near enough to be a typo.
func (f *fields) unknown(valid ...string) {
	for _, k := range f.t.keys {
		if !slices.Contains(valid, k) {
			f.errs.add(f.t.fields[k].key, f.key(k), "unknown key %q%s", f.key(k), didYouMean(k, valid))
		}
	}
}
