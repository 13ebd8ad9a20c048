package config

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
)

// ForeignKey references another entity. Output is always {"id":…}; on input
// an endpoint key (a name, a username) may stand in for the id until the
// reference is resolved.
type ForeignKey struct {
	ID string `json:"id"`
	// Key is the endpoint key given instead of an id; empty once resolved.
	Key string `json:"-"`
}

// written is the reference as the input gave it, which deterministic plugin
// ids are derived from (§5.3).
func (f *ForeignKey) written() string {
	if f == nil {
		return ""
	}
	if f.ID != "" {
		return f.ID
	}
	return f.Key
}

// reader decodes one record of plain values strictly: every field is read
// through it, and whatever was not read is an "unknown field". A null or
// absent field leaves the destination (its default) untouched.
type reader struct {
	in   map[string]any
	errs *FieldErrors
	read map[string]bool
}

func newReader(in map[string]any, errs *FieldErrors) *reader {
	return &reader{in: in, errs: errs, read: make(map[string]bool, len(in))}
}

// get marks a field as known and returns its value when present and non-null.
func (r *reader) get(k string) (any, bool) {
	r.read[k] = true
	v, ok := r.in[k]
	return v, ok && v != nil
}

// present reports whether a field was given, null included.
func (r *reader) present(k string) bool {
	_, ok := r.in[k]
	return ok
}

// done reports the fields nobody read, in sorted order.
func (r *reader) done() {
	var unknown []string
	for k := range r.in {
		if !r.read[k] {
			unknown = append(unknown, k)
		}
	}
	slices.Sort(unknown)
	for _, k := range unknown {
		r.errs.Field(k).Add("unknown field")
	}
}

func (r *reader) str(k string, dst *string) bool {
	v, ok := r.get(k)
	if !ok {
		return false
	}
	s, ok := v.(string)
	if !ok {
		r.errs.Field(k).Add("expected a string")
		return false
	}
	if s == "" {
		r.errs.Field(k).Add("length must be at least 1")
		return false
	}
	*dst = s
	return true
}

func (r *reader) strPtr(k string, dst **string) {
	var s string
	if r.str(k, &s) {
		*dst = &s
	}
}

// required reads a string that must be given.
func (r *reader) required(k string, dst *string) {
	if v := r.in[k]; v == nil {
		r.read[k] = true
		r.errs.Field(k).Add("required field missing")
		return
	}
	r.str(k, dst)
}

func (r *reader) boolPtr(k string, dst **bool) {
	v, ok := r.get(k)
	if !ok {
		return
	}
	b, ok := v.(bool)
	if !ok {
		r.errs.Field(k).Add("expected a boolean")
		return
	}
	*dst = &b
}

func (r *reader) boolean(k string, dst *bool) {
	var b *bool
	r.boolPtr(k, &b)
	if b != nil {
		*dst = *b
	}
}

// integer reads a whole number within [lo, hi].
func (r *reader) integer(k string, dst *int, lo, hi int) bool {
	v, ok := r.get(k)
	if !ok {
		return false
	}
	n, ok := toInt(v)
	if !ok {
		r.errs.Field(k).Add("expected an integer")
		return false
	}
	if n < lo || n > hi {
		r.errs.Field(k).Addf("value should be between %d and %d", lo, hi)
		return false
	}
	*dst = n
	return true
}

func (r *reader) intPtr(k string, dst **int, lo, hi int) {
	var n int
	if r.integer(k, &n, lo, hi) {
		*dst = &n
	}
}

// toInt accepts the number shapes of both parsers and of Go callers.
func toInt(v any) (int, bool) {
	var f float64
	switch n := v.(type) {
	case int:
		return n, true
	case int64:
		f = float64(n)
	case float64:
		f = n
	case json.Number:
		x, err := n.Float64()
		if err != nil {
			return 0, false
		}
		f = x
	default:
		return 0, false
	}
	if f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, false
	}
	return int(f), true
}

func toFloat(v any) (float64, bool) {
	switch n := v.(type) {
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case float64:
		return n, true
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	}
	return 0, false
}

// strings reads an array of strings; a set drops duplicates. check validates
// each element, its errors landing at the element's 1-based position.
func (r *reader) strings(k string, dst *[]string, set bool, check func(string) string) bool {
	v, ok := r.get(k)
	if !ok {
		return false
	}
	out, ok := stringList(v, set, check, r.errs.Field(k))
	if ok {
		*dst = out
	}
	return ok
}

func stringList(v any, set bool, check func(string) string, errs *FieldErrors) ([]string, bool) {
	arr, ok := v.([]any)
	if !ok {
		if set {
			errs.Add("expected a set")
		} else {
			errs.Add("expected an array")
		}
		return nil, false
	}
	out := make([]string, 0, len(arr))
	good := true
	for i, e := range arr {
		s, isStr := e.(string)
		switch {
		case !isStr:
			errs.Index(i).Add("expected a string")
		case s == "":
			errs.Index(i).Add("length must be at least 1")
		case check != nil && check(s) != "":
			errs.Index(i).Add(check(s))
		case set && slices.Contains(out, s):
			continue
		default:
			out = append(out, s)
			continue
		}
		good = false
	}
	return out, good
}

// oneOf is a check for fixed values, with Kong's message.
func oneOf(values ...string) func(string) string {
	return func(s string) string {
		if slices.Contains(values, s) {
			return ""
		}
		return "expected one of: " + strings.Join(values, ", ")
	}
}

// enum reads a string restricted to values.
func (r *reader) enum(k string, dst *string, values ...string) {
	var s string
	if !r.str(k, &s) {
		return
	}
	if msg := oneOf(values...)(s); msg != "" {
		r.errs.Field(k).Add(msg)
		return
	}
	*dst = s
}

// null reads a field that must be null (§3: fields datakit does not support).
func (r *reader) null(k string) {
	if _, ok := r.get(k); ok {
		r.errs.Field(k).Add("value must be null")
	}
}

// record reads a nested object.
func (r *reader) record(k string) (map[string]any, bool) {
	v, ok := r.get(k)
	if !ok {
		return nil, false
	}
	m, ok := v.(map[string]any)
	if !ok {
		r.errs.Field(k).Add("expected a record")
		return nil, false
	}
	return m, true
}

// foreign reads a reference: an id or endpoint key as a string (declarative
// style) or {"id":…} / {"<key field>":…} (Admin API style).
func (r *reader) foreign(k, keyField string, dst **ForeignKey) {
	v, ok := r.get(k)
	if !ok {
		return
	}
	errs := r.errs.Field(k)
	var ref string
	switch t := v.(type) {
	case string:
		ref = t
	case map[string]any:
		if len(t) != 1 {
			errs.Add("expected a record with one of: id, " + keyField)
			return
		}
		for f, fv := range t {
			s, isStr := fv.(string)
			switch {
			case f != "id" && f != keyField:
				errs.Field(f).Add("unknown field")
			case !isStr:
				errs.Field(f).Add("expected a string")
			case f == "id" && !IsUUID(s):
				errs.Field(f).Add("expected a valid UUID")
			case f == "id":
				*dst = &ForeignKey{ID: s}
			default:
				*dst = &ForeignKey{Key: s}
			}
		}
		return
	default:
		errs.Add("expected a string")
		return
	}
	if ref == "" {
		errs.Add("length must be at least 1")
		return
	}
	if IsUUID(ref) {
		*dst = &ForeignKey{ID: strings.ToLower(ref)}
		return
	}
	*dst = &ForeignKey{Key: ref}
}

// common reads id, created_at and tags, which every entity has.
func (r *reader) common(id *string, createdAt *int64, tags *[]string) {
	r.id(id)
	r.timestamp("created_at", createdAt)
	r.strings("tags", tags, true, checkTag)
}

// timestamp reads Unix seconds.
func (r *reader) timestamp(k string, dst *int64) {
	v, ok := r.get(k)
	if !ok {
		return
	}
	n, ok := toInt(v)
	if !ok || n < 0 {
		r.errs.Field(k).Add("expected an integer")
		return
	}
	*dst = int64(n)
}

func (r *reader) id(dst *string) {
	v, ok := r.get("id")
	if !ok {
		return
	}
	s, _ := v.(string)
	if !IsUUID(s) {
		r.errs.Field("id").Add("expected a valid UUID")
		return
	}
	*dst = strings.ToLower(s)
}

// IsUUID reports whether s is a UUID in the canonical 36-character form
// (any case), as Kong accepts ids; an Admin path segment of that shape is an
// id, any other an endpoint key (§3.1).
func IsUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	_, err := uuid.Parse(s)
	return err == nil
}

// checkTag: printable ASCII except ',' and '/', or non-ASCII UTF-8.
func checkTag(s string) string {
	for _, c := range s {
		if c == utf8.RuneError || c < 0x20 || c == 0x7f || c == ',' || c == '/' {
			return fmt.Sprintf("invalid tag '%s': expected printable ascii (except `,` and `/`) or valid utf-8 sequences", s)
		}
	}
	return ""
}

// checkName is Kong's utf8_name: ASCII alphanumerics and ".-_~", or non-ASCII.
func checkName(s string) string {
	for _, c := range s {
		// #nosec G115 -- byte(c) only runs for c < utf8.RuneSelf
		if c < utf8.RuneSelf && !isAlnum(byte(c)) && !strings.ContainsRune(".-_~", c) || c == utf8.RuneError {
			return fmt.Sprintf("invalid value '%s': the only accepted ascii characters are alphanumerics or ., -, _, and ~", s)
		}
	}
	return ""
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// name reads an optional utf8_name field.
func (r *reader) name(k string, dst **string) {
	var s string
	if !r.str(k, &s) {
		return
	}
	if msg := checkName(s); msg != "" {
		r.errs.Field(k).Add(msg)
		return
	}
	*dst = &s
}

// sortedKeys lists a map's keys in order, so errors and output never depend
// on map iteration.
func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
