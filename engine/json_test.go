package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strings"
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

// decodeCases cover every branch of decodeJSONFast and the inputs it must
// leave to decodeJSONReference (errors, trailing data, depth).
var decodeCases = []string{
	`null`, `true`, `false`, ` 	
 true 
`, `0`, `-0`, `1`, `-1`, `42`, `255`, `256`, `-255`,
	`123456789012345678`, `-123456789012345678`, `1234567890123456789`, `9223372036854775807`,
	`-9223372036854775808`, `9223372036854775808`, `-9223372036854775809`, `123456789012345678901234567890`,
	`1.0`, `1.5`, `-0.0`, `1e2`, `1E2`, `1e+2`, `1e-2`, `1.25e-7`, `1e400`, `-1e400`, `0.1`,
	`""`, `"abc"`, `"h\u00e9llo"`, `"héllo"`, `"\"\\\/\b\f\n\r\t"`, `"\ud83d\ude00"`, `"\ud83d"`,
	`"\ud83dx"`, `"\ude00\ud83d"`, `"\ud83d\u0041"`, `"\u0000"`, "\"\xff\"", "\"a\xc3\"", "\"\xed\xa0\x80\"",
	"\"\xef\xbf\xbd\"", `"\uD83D\uDE00"`,
	`[]`, `[ ]`, `[1,2,3]`, `[1, "a", null, true, [false], {"k": -1.5}]`, `{}`, `{ }`, `{"a":1}`,
	`{"a":1,"a":2}`, `{"a":{"b":{"c":[1,{"d":null}]}}}`, ` { "a" : [ 1 , 2 ] , "b" : "c" } `,
	// Errors, and what the stream decoder tolerates after a value.
	``, ` `, `{`, `[`, `]`, `}`, `"`, `"abc`, `[1,]`, `[1 2]`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{1:2}`,
	`{"a" 1}`, `tru`, `nul`, `falsey`, `truex`, `-`, `--1`, `01`, `-01`, `1.`, `1.e1`, `1e`, `1e+`, `.5`,
	`+1`, `0x10`, `1 2`, `1 x`, `1 ]`, `1 ,`, `{} {}`, `[] x`, `"a" "b"`, `"a"x`, `2x`, `0.5.5`,
	`1 tru`, `1 "abc`, `"\x"`, `"\u12"`, `"\u12g4"`, "\"a\tb\"", "\"a\nb\"", `[1,2`, `{"a":1`, `NaN`,
	`Infinity`, `'a'`, "\x00", `{"a":1}}`, `[1]]`, `1 {`, `1 [`, `1 :`,
}

func checkDecode(t *testing.T, in []byte) {
	t.Helper()
	want, wantErr := decodeJSONReference(in)
	got, err := DecodeJSON(in)
	if (err != nil) != (wantErr != nil) || err != nil && err.Error() != wantErr.Error() {
		t.Fatalf("DecodeJSON(%q) error = %v, want %v", in, err, wantErr)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("DecodeJSON(%q) = %#v, want %#v", in, got, want)
	}
	if fast, ok := decodeJSONFast(in); ok && (wantErr != nil || !reflect.DeepEqual(fast, want)) {
		t.Fatalf("decodeJSONFast(%q) = %#v, want %#v (error %v)", in, fast, want, wantErr)
	}
}

func TestDecodeJSONMatchesReference(t *testing.T) {
	for _, in := range decodeCases {
		t.Run(in, func(t *testing.T) { checkDecode(t, []byte(in)) })
	}
	for _, n := range []int{maxJSONDepth - 1, maxJSONDepth, maxJSONDepth + 1} {
		for _, open := range []string{"[", `{"a":`} {
			close := map[string]string{"[": "]", `{"a":`: "}"}[open]
			checkDecode(t, []byte(strings.Repeat(open, n)+"1"+strings.Repeat(close, n)))
		}
	}
}

// TestDecodeJSONFastTakesWellFormed guards the speed-up: documents without
// errors must not fall back to encoding/json.
func TestDecodeJSONFastTakesWellFormed(t *testing.T) {
	for _, in := range []string{`{"token_type":"Bearer","access_token":"abc","expires_in":3600}`,
		`[1,-2.5e3,"x\n",null,{"a":[true,false]}]`, "\"\xff\""} {
		if _, ok := decodeJSONFast([]byte(in)); !ok {
			t.Errorf("decodeJSONFast(%q) refused a well-formed document", in)
		}
	}
}

func FuzzDecodeJSON(f *testing.F) {
	for _, in := range decodeCases {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, in []byte) { checkDecode(t, in) })
}

// benchJSON is a typical call response: a token with a few fields.
const benchJSON = `{"token_type":"Bearer","access_token":"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.abc",` +
	`"expires_in":3600,"scope":["read","write"],"issued":1700000000123,"ratio":0.75,"user":{"id":42,"name":"h\u00e9"}}`

func BenchmarkDecodeJSON(b *testing.B) {
	data := []byte(benchJSON)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeJSON(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeJSONReference(b *testing.B) {
	data := []byte(benchJSON)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeJSONReference(data); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDecodeJSONOutOfRange: a number beyond float64 is an error, not an
// infinity that fails later when the value is written (hardening T20).
func TestDecodeJSONOutOfRange(t *testing.T) {
	for _, in := range []string{`1e400`, `{"n":-1e400}`, `[1, 2e308]`} {
		if v, err := DecodeJSON([]byte(in)); err == nil || !strings.HasPrefix(err.Error(), "number ") {
			t.Errorf("DecodeJSON(%q) = %v, %v; want number … out of range", in, v, err)
		}
	}
	if _, ok := ParseNumber("1e400"); ok {
		t.Errorf(`ParseNumber("1e400") succeeded`)
	}
	if v, err := DecodeJSON([]byte(`[1e-400, 1.7976931348623157e308]`)); err != nil || fmt.Sprint(v) != "[0 1.7976931348623157e+308]" {
		t.Errorf("DecodeJSON(underflow, max) = %v, %v", v, err)
	}
}

// TestDecodeJSONTrailingData: only white space may follow the value.
func TestDecodeJSONTrailingData(t *testing.T) {
	for _, in := range []string{"2x", `{"a":1}}`, "[1] 2", "true false"} {
		if v, err := DecodeJSON([]byte(in)); err == nil {
			t.Errorf("DecodeJSON(%q) = %v, want an error", in, v)
		}
	}
	for _, in := range []string{" 2 ", "{\"a\":1}\n", "\t[1]\r\n"} {
		if _, err := DecodeJSON([]byte(in)); err != nil {
			t.Errorf("DecodeJSON(%q) = %v", in, err)
		}
	}
}
