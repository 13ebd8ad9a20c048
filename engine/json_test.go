package engine

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
)

// referenceJSON is encoding/json's output, the behaviour appendJSON copies.
func referenceJSON(v any) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "error"
	}
	return string(bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}))
}

func TestEncodeJSONMatchesEncodingJSON(t *testing.T) {
	values := []any{
		nil, true, false, 0, -7, math.MaxInt64, 30.0, 1.5, math.Copysign(0, -1), 1e-6, 1e-7, 123456789e13, 1e21, 1e300, 5e-324,
		"", "plain", "quote\" back\\slash", "ctl\n\r\t\b\f\x00\x1f", "<&>", "ünï", "bad\xffutf8", "\u2028\u2029",
		[]any{}, []any{1, "a", nil}, map[string]any{}, map[string]any{"b": 1, "a": []any{map[string]any{"z": nil, "y": 2.5}}},
		int64(42), struct{ A int }{1},
	}
	for _, v := range values {
		got, err := EncodeJSON(v)
		if want := referenceJSON(v); err != nil || string(got) != want {
			t.Errorf("EncodeJSON(%#v) = %s, %v; want %s", v, got, err, want)
		}
	}
	if _, err := EncodeJSON(math.NaN()); err == nil {
		t.Errorf("EncodeJSON(NaN) succeeded, want an error")
	}
}

func FuzzEncodeJSON(f *testing.F) {
	f.Add([]byte(`{"a":[1,2.5,"x\u2028"],"b":null}`))
	f.Add([]byte(`"\ud800"`))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := DecodeJSON(data)
		if err != nil {
			return
		}
		got, err := EncodeJSON(v)
		want := referenceJSON(v)
		if want == "error" {
			if err == nil {
				t.Fatalf("EncodeJSON(%s) = %s, want an error as encoding/json gives", data, got)
			}
			return
		}
		if err != nil || string(got) != want {
			t.Fatalf("EncodeJSON(%s) = %s, %v; want %s", data, got, err, want)
		}
	})
}
