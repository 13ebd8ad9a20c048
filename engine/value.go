package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Runtime values are JSON values in the representation gojq uses: nil, bool,
// int (integers that fit in 64 bits), float64, string, []any and
// map[string]any.

// JSONType names the JSON type of a runtime value: null, boolean, number,
// string, array or object.
func JSONType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case int, int64, float64, json.Number:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

// AsInt returns v as an integer if it is an integral number.
func AsInt(v any) (int64, bool) {
	switch n := v.(type) {
	case int:
		return int64(n), true
	case int64:
		return n, true
	case float64:
		if n == math.Trunc(n) && n >= -(1<<63) && n < 1<<63 {
			return int64(n), true
		}
	}
	return 0, false
}

// EncodeJSON writes v as compact JSON with object keys in byte order, no
// escaping of <, > and &, and no trailing newline (spec §1.2).
func EncodeJSON(v any) ([]byte, error) {
	return appendJSON(make([]byte, 0, 64), v)
}

// maxJSONDepth bounds nesting of decoded documents: deeper input is hostile.
const maxJSONDepth = 10000

// DecodeJSON decodes one JSON document into runtime values: integers that fit
// in 64 bits become int, other numbers float64.
//
// A hand-written decoder (decodeJSONFast) takes every well-formed document;
// whatever it refuses goes through decodeJSONReference, so errors — and the
// stream decoder's leniency about what follows the value — stay exactly as
// encoding/json reports them.
func DecodeJSON(b []byte) (any, error) {
	if v, ok := decodeJSONFast(b); ok {
		return v, nil
	}
	return decodeJSONReference(b)
}

// decodeJSONReference is encoding/json's stream decoder with UseNumber and a
// walk converting the numbers: the definition of DecodeJSON's results, which
// tests compare decodeJSONFast with.
func decodeJSONReference(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	// Only white space may follow the value ("2x" and `{"a":1}}` are not
	// JSON documents).
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("invalid character after top-level value")
	}
	return normalizeNumbers(v, 0)
}

func normalizeNumbers(v any, depth int) (any, error) {
	if depth > maxJSONDepth {
		return nil, fmt.Errorf("nesting exceeds %d levels", maxJSONDepth)
	}
	switch x := v.(type) {
	case json.Number:
		n, ok := numberValue(string(x))
		if !ok {
			return nil, fmt.Errorf("number %s out of range", x)
		}
		return n, nil
	case []any:
		for i, e := range x {
			n, err := normalizeNumbers(e, depth+1)
			if err != nil {
				return nil, err
			}
			x[i] = n
		}
	case map[string]any:
		for k, e := range x {
			n, err := normalizeNumbers(e, depth+1)
			if err != nil {
				return nil, err
			}
			x[k] = n
		}
	}
	return v, nil
}

// numberValue converts JSON number text: int when integral and within 64
// bits, else float64; false when it overflows float64.
func numberValue(s string) (any, bool) {
	if !strings.ContainsAny(s, ".eE") {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return int(n), true
		}
	}
	// A number beyond float64 (1e400) has no value: encoding it again would
	// fail far from where it came in.
	f, _ := strconv.ParseFloat(s, 64)
	return f, !math.IsInf(f, 0)
}

// ParseNumber parses a whole string as a JSON number (spec §6.4).
func ParseNumber(s string) (any, bool) {
	if !json.Valid([]byte(s)) {
		return nil, false
	}
	s = strings.TrimSpace(s)
	if s == "" || !(s[0] == '-' || (s[0] >= '0' && s[0] <= '9')) {
		return nil, false
	}
	return numberValue(s)
}

// FormatNumber writes a number as its JSON text.
func FormatNumber(v any) string {
	b, _ := EncodeJSON(v)
	return string(b)
}

// errTypeMismatch is wrapped by conversion failures.
var errTypeMismatch = errors.New("type mismatch")

// Convert checks a runtime value against a declared field type and applies
// the scalar conversions of spec §6.4. null always passes.
func Convert(v any, t Type) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch t {
	case TypeAny, TypeNone:
		return v, nil
	case TypeString:
		switch x := v.(type) {
		case string:
			return x, nil
		case int, float64:
			return FormatNumber(x), nil
		}
	case TypeNumber:
		switch x := v.(type) {
		case int, float64:
			return x, nil
		case string:
			if n, ok := ParseNumber(x); ok {
				return n, nil
			}
		}
	case TypeBoolean:
		if _, ok := v.(bool); ok {
			return v, nil
		}
	case TypeArray:
		if _, ok := v.([]any); ok {
			return v, nil
		}
	case TypeMap, TypeObject:
		if _, ok := v.(map[string]any); ok {
			return v, nil
		}
	}
	return nil, errTypeMismatch
}

// Index reads a sub-path into a value: each key indexes an object (case
// insensitively when no exact key exists, so header maps find canonical
// names); a missing key or a non-object yields nil.
func Index(v any, path []string) any {
	for _, key := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		next, ok := m[key]
		if !ok {
			next = nil
			for k, x := range m {
				if strings.EqualFold(k, key) {
					next = x
					break
				}
			}
		}
		v = next
	}
	return v
}
