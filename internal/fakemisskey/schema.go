package fakemisskey

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"unicode/utf8"
)

// A param is one property of an endpoint's paramDef: the subset of JSON
// Schema Misskey's endpoints use (packages/backend/src/server/api/
// endpoints/*.ts, validated by Ajv in endpoint-base.ts).
type param struct {
	typ       string // "string", "boolean", "integer", "number", "array", "object"
	nullable  bool
	id        bool // format "misskey:id": /^[a-zA-Z0-9]+$/
	minLength int
	maxLength int // 0 = none
	enum      []string
	min, max  *int64 // integers
	items     *param
	minItems  int
	maxItems  int // 0 = none
	unique    bool
	props     map[string]*param // objects
	required  []string          // objects
}

// schema is an endpoint's paramDef: an object's properties and the names
// it requires.
type schema struct {
	props    map[string]*param
	required []string
	// anyOf lists alternatives of required properties, one of which must
	// be present (notes/create: text, fileIds, poll or renoteId).
	anyOf [][]string
}

var idFormat = regexp.MustCompile(`^[a-zA-Z0-9]+$`)

// invalidParam is Misskey's INVALID_PARAM answer's detail: the failing
// schema path and Ajv's message (endpoint-base.ts).
type invalidParam struct{ Param, Reason string }

func (e *invalidParam) Error() string { return e.Param + ": " + e.Reason }

// validate checks body against sc. Unlike Misskey's Ajv, which ignores
// properties its paramDef does not name, the fake refuses them: a
// misspelt parameter, which Misskey would silently drop, then fails ferry's
// tests instead of changing nothing. The access token "i" is read before
// validation, as ApiCallService does, and is always allowed.
func (sc schema) validate(body map[string]any) error {
	names := make([]string, 0, len(body))
	for k := range body {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if k == "i" {
			continue
		}
		p, ok := sc.props[k]
		if !ok {
			return &invalidParam{"#/additionalProperties", fmt.Sprintf("must NOT have additional properties (%s)", k)}
		}
		if err := p.check("#/properties/"+k, body[k]); err != nil {
			return err
		}
	}
	for _, r := range sc.required {
		if _, ok := body[r]; !ok {
			return &invalidParam{"#/required", fmt.Sprintf("must have required property '%s'", r)}
		}
	}
	if len(sc.anyOf) > 0 {
		ok := false
		for _, alt := range sc.anyOf {
			all := true
			for _, r := range alt {
				if v, has := body[r]; !has || v == nil {
					all = false
				}
			}
			ok = ok || all
		}
		if !ok {
			return &invalidParam{"#/anyOf", "must match a schema in anyOf"}
		}
	}
	return nil
}

func (p *param) check(path string, v any) error {
	if p.typ == "any" {
		return nil // checked by the endpoint (anyOf of several types)
	}
	if v == nil {
		if p.nullable {
			return nil
		}
		return &invalidParam{path + "/type", "must be " + p.typ}
	}
	switch p.typ {
	case "string":
		s, ok := v.(string)
		if !ok {
			return &invalidParam{path + "/type", "must be string"}
		}
		n := utf8.RuneCountInString(s)
		if n < p.minLength {
			return &invalidParam{path + "/minLength", fmt.Sprintf("must NOT have fewer than %d characters", p.minLength)}
		}
		if p.maxLength > 0 && n > p.maxLength {
			return &invalidParam{path + "/maxLength", fmt.Sprintf("must NOT have more than %d characters", p.maxLength)}
		}
		if p.id && !idFormat.MatchString(s) {
			return &invalidParam{path + "/format", `must match format "misskey:id"`}
		}
		if len(p.enum) > 0 && !slices.Contains(p.enum, s) {
			return &invalidParam{path + "/enum", "must be equal to one of the allowed values"}
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return &invalidParam{path + "/type", "must be boolean"}
		}
	case "integer", "number":
		n, ok := v.(json.Number)
		if !ok {
			return &invalidParam{path + "/type", "must be " + p.typ}
		}
		if p.typ == "integer" {
			i, err := n.Int64()
			if err != nil {
				return &invalidParam{path + "/type", "must be integer"}
			}
			if p.min != nil && i < *p.min {
				return &invalidParam{path + "/minimum", fmt.Sprintf("must be >= %d", *p.min)}
			}
			if p.max != nil && i > *p.max {
				return &invalidParam{path + "/maximum", fmt.Sprintf("must be <= %d", *p.max)}
			}
		}
	case "array":
		a, ok := v.([]any)
		if !ok {
			return &invalidParam{path + "/type", "must be array"}
		}
		if len(a) < p.minItems {
			return &invalidParam{path + "/minItems", fmt.Sprintf("must NOT have fewer than %d items", p.minItems)}
		}
		if p.maxItems > 0 && len(a) > p.maxItems {
			return &invalidParam{path + "/maxItems", fmt.Sprintf("must NOT have more than %d items", p.maxItems)}
		}
		seen := map[string]bool{}
		for i, e := range a {
			if p.items != nil {
				if err := p.items.check(fmt.Sprintf("%s/items/%d", path, i), e); err != nil {
					return err
				}
			}
			if p.unique {
				k := fmt.Sprint(e)
				if seen[k] {
					return &invalidParam{path + "/uniqueItems", "must NOT have duplicate items"}
				}
				seen[k] = true
			}
		}
	case "object":
		m, ok := v.(map[string]any)
		if !ok {
			return &invalidParam{path + "/type", "must be object"}
		}
		sub := schema{props: p.props, required: p.required}
		for k := range m {
			if _, ok := p.props[k]; !ok {
				return &invalidParam{path + "/additionalProperties", fmt.Sprintf("must NOT have additional properties (%s)", k)}
			}
		}
		for k, sp := range p.props {
			if e, ok := m[k]; ok {
				if err := sp.check(path+"/properties/"+k, e); err != nil {
					return err
				}
			}
		}
		for _, r := range sub.required {
			if _, ok := m[r]; !ok {
				return &invalidParam{path + "/required", fmt.Sprintf("must have required property '%s'", r)}
			}
		}
	}
	return nil
}

// Shorthands for paramDefs.
func str() *param                 { return &param{typ: "string"} }
func nstr() *param                { return &param{typ: "string", nullable: true} }
func id() *param                  { return &param{typ: "string", id: true} }
func nid() *param                 { return &param{typ: "string", id: true, nullable: true} }
func boolean() *param             { return &param{typ: "boolean"} }
func enum(vs ...string) *param    { return &param{typ: "string", enum: vs} }
func integer(lo, hi int64) *param { return &param{typ: "integer", min: &lo, max: &hi} }
func anyInt() *param              { return &param{typ: "integer"} }
func arr(items *param, minItems, maxItems int) *param {
	return &param{typ: "array", items: items, minItems: minItems, maxItems: maxItems, unique: true}
}
func maxLen(p *param, n int) *param { p.maxLength = n; return p }
func minLen(p *param, n int) *param { p.minLength = n; return p }
