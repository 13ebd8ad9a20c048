package engine

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"unicode/utf8"
)

// Attrs gives a node kind (or a resource decoder) typed, validated access to
// its attributes. Every getter records a located error (spec §11) when the
// value is invalid and returns the zero or default value instead; keys never
// read are reported as `unknown field` by the engine afterwards. An explicit
// null is the same as an absent key.
type Attrs struct {
	loc       string // "nodes[2] "AUTH" (call)" or a path such as "resources.cache"
	prefix    string // field path prefix inside loc ("" or "redis.")
	values    map[string]any
	used      map[string]bool
	errs      *[]error
	resources map[string]any
	subs      []*Attrs
}

func newAttrs(loc, prefix string, values map[string]any, errs *[]error, resources map[string]any) *Attrs {
	return &Attrs{loc: loc, prefix: prefix, values: values, used: map[string]bool{}, errs: errs, resources: resources}
}

// Errorf records an error at the attribute field (a path such as `url` or
// `static_claims.iss`).
func (a *Attrs) Errorf(field, format string, args ...any) {
	*a.errs = append(*a.errs, fmt.Errorf("%s: %s%s: %s", a.loc, a.prefix, field, fmt.Sprintf(format, args...)))
}

// Resource returns the decoded `resources.<name>` entry, or nil.
func (a *Attrs) Resource(name string) any { return a.resources[name] }

// Has reports whether the attribute is present and not null, marking it read.
func (a *Attrs) Has(name string) bool {
	v, ok := a.Raw(name)
	return ok && v != nil
}

// Raw returns the attribute's decoded value and marks it read; ok is false
// when it is absent or null.
func (a *Attrs) Raw(name string) (any, bool) {
	a.used[name] = true
	v, ok := a.values[name]
	if !ok || v == nil {
		return nil, false
	}
	return v, true
}

// Sub returns Attrs for an object-valued attribute (e.g. `redis`), whose
// unknown keys are reported like the node's own; ok is false if the attribute
// is absent, null or not an object (the latter recorded as an error).
func (a *Attrs) Sub(name string) (*Attrs, bool) {
	m, ok := a.Object(name)
	if !ok {
		return nil, false
	}
	sub := newAttrs(a.loc, a.prefix+name+".", m, a.errs, a.resources)
	a.subs = append(a.subs, sub)
	return sub, true
}

// Required records `required field missing` unless the attribute is present.
func (a *Attrs) Required(name string) bool {
	if a.Has(name) {
		return true
	}
	a.Errorf(name, "required field missing")
	return false
}

// String returns a string attribute whose length (in characters) must be
// within [min, max]; absent gives def.
func (a *Attrs) String(name, def string, min, max int) string {
	v, ok := a.Raw(name)
	if !ok {
		return def
	}
	s, isStr := v.(string)
	if !isStr {
		a.Errorf(name, "expected string, got %s", JSONType(v))
		return def
	}
	if n := utf8.RuneCountInString(s); n < min || n > max {
		a.Errorf(name, "length must be between %d and %d, got %d", min, max, n)
		return def
	}
	return s
}

// OneOf returns a string attribute restricted to the allowed values.
func (a *Attrs) OneOf(name, def string, allowed ...string) string {
	v, ok := a.Raw(name)
	if !ok {
		return def
	}
	s, isStr := v.(string)
	if !isStr {
		a.Errorf(name, "expected string, got %s", JSONType(v))
		return def
	}
	for _, x := range allowed {
		if s == x {
			return s
		}
	}
	a.Errorf(name, "must be one of: %s; got %q", strings.Join(allowed, ", "), s)
	return def
}

// Int returns an integer attribute within [min, max]; integral numbers such
// as 5.0 are accepted, 5.5 is not.
func (a *Attrs) Int(name string, def, min, max int64) int64 {
	v, ok := a.Raw(name)
	if !ok {
		return def
	}
	n, isInt := AsInt(v)
	if !isInt {
		a.Errorf(name, "expected integer, got %s", JSONType(v))
		return def
	}
	if n < min || n > max {
		if max == math.MaxInt64 {
			a.Errorf(name, "must be at least %d, got %d", min, n)
		} else {
			a.Errorf(name, "must be between %d and %d, got %d", min, max, n)
		}
		return def
	}
	return n
}

// Bool returns a boolean attribute.
func (a *Attrs) Bool(name string, def bool) bool {
	v, ok := a.Raw(name)
	if !ok {
		return def
	}
	b, isBool := v.(bool)
	if !isBool {
		a.Errorf(name, "expected boolean, got %s", JSONType(v))
		return def
	}
	return b
}

// StringList returns an array-of-strings attribute with between minItems and
// maxItems entries, each of 1..maxLen characters.
func (a *Attrs) StringList(name string, minItems, maxItems, maxLen int) []string {
	v, ok := a.Raw(name)
	if !ok {
		return nil
	}
	arr, isArr := v.([]any)
	if !isArr {
		a.Errorf(name, "expected array, got %s", JSONType(v))
		return nil
	}
	if len(arr) < minItems || len(arr) > maxItems {
		a.Errorf(name, "length must be between %d and %d, got %d", minItems, maxItems, len(arr))
		return nil
	}
	out := make([]string, 0, len(arr))
	for i, e := range arr {
		s, isStr := e.(string)
		field := fmt.Sprintf("%s[%d]", name, i)
		switch {
		case !isStr:
			a.Errorf(field, "expected string, got %s", JSONType(e))
		case utf8.RuneCountInString(s) < 1 || utf8.RuneCountInString(s) > maxLen:
			a.Errorf(field, "length must be between 1 and %d, got %d", maxLen, utf8.RuneCountInString(s))
		default:
			out = append(out, s)
		}
	}
	return out
}

// StringMap returns a map-of-strings attribute (e.g. static_claims).
func (a *Attrs) StringMap(name string) map[string]string {
	v, ok := a.Raw(name)
	if !ok {
		return nil
	}
	m, isMap := v.(map[string]any)
	if !isMap {
		a.Errorf(name, "expected object, got %s", JSONType(v))
		return nil
	}
	out := make(map[string]string, len(m))
	for _, k := range SortedKeys(m) {
		s, isStr := m[k].(string)
		if !isStr {
			a.Errorf(name+"."+k, "expected string, got %s", JSONType(m[k]))
			continue
		}
		out[k] = s
	}
	return out
}

// Object returns an object-valued attribute as decoded.
func (a *Attrs) Object(name string) (map[string]any, bool) {
	v, ok := a.Raw(name)
	if !ok {
		return nil, false
	}
	m, isMap := v.(map[string]any)
	if !isMap {
		a.Errorf(name, "expected object, got %s", JSONType(v))
		return nil, false
	}
	return m, true
}

// unknown records `unknown field` for every key no getter read, in byte order.
func (a *Attrs) unknown(skip func(string) bool) {
	var keys []string
	for k := range a.values {
		if !a.used[k] && (skip == nil || !skip(k)) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		a.Errorf(k, "unknown field")
	}
	for _, sub := range a.subs {
		sub.unknown(nil)
	}
}

// SortedKeys returns m's keys in byte order.
func SortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
