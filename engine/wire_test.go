package engine

import (
	"errors"
	"io"
	"math"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

func TestHeaderMap(t *testing.T) {
	tests := []struct {
		name string
		h    map[string][]string
		want map[string]any
	}{
		{"empty", map[string][]string{}, map[string]any{}},
		{"one line", map[string][]string{"X-Api-Key": {"k"}}, map[string]any{"X-Api-Key": "k"}},
		{"several lines", map[string][]string{"Set-Cookie": {"a=1", "b=2"}},
			map[string]any{"Set-Cookie": []any{"a=1", "b=2"}}},
		{"no lines left out", map[string][]string{"X-Empty": {}, "X-A": {"1"}}, map[string]any{"X-A": "1"}},
		{"canonicalised", map[string][]string{"x-api-key": {"k"}, "www-authenticate": {"Basic"}},
			map[string]any{"X-Api-Key": "k", "Www-Authenticate": "Basic"}},
		{"combined in key byte order", map[string][]string{"x-a": {"3"}, "X-A": {"1", "2"}},
			map[string]any{"X-A": []any{"1", "2", "3"}}},
		{"empty value kept", map[string][]string{"X-A": {""}}, map[string]any{"X-A": ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := HeaderMap(tt.h); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("HeaderMap(%v) = %#v, want %#v", tt.h, got, tt.want)
			}
		})
	}
}

func TestHeaderLines(t *testing.T) {
	long := strings.Repeat("a", 8<<10)
	tests := []struct {
		name    string
		m       any
		want    []HeaderLine
		wantErr string
	}{
		{name: "nil", m: nil, want: nil},
		{name: "empty", m: map[string]any{}, want: []HeaderLine{}},
		{name: "string", m: map[string]any{"x-foo": "123"},
			want: []HeaderLine{{"X-Foo", []string{"123"}}}},
		{name: "number and boolean as JSON text",
			m:    map[string]any{"X-Int": 10, "X-Float": 1.5, "X-Big": 1e20, "X-Bool": true, "X-False": false},
			want: []HeaderLine{{"X-Big", []string{"100000000000000000000"}}, {"X-Bool", []string{"true"}}, {"X-False", []string{"false"}}, {"X-Float", []string{"1.5"}}, {"X-Int", []string{"10"}}}},
		{name: "array is one line per element", m: map[string]any{"X-Multi": []any{"first", 2, true}},
			want: []HeaderLine{{"X-Multi", []string{"first", "2", "true"}}}},
		{name: "null removes", m: map[string]any{"X-Ignored": nil, "X-Add-Me": "added"},
			want: []HeaderLine{{"X-Add-Me", []string{"added"}}, {"X-Ignored", nil}}},
		{name: "empty array removes", m: map[string]any{"X-A": []any{}},
			want: []HeaderLine{{"X-A", nil}}},
		{name: "case-insensitive keys combined in key byte order",
			m:    map[string]any{"x-a": "3", "X-A": []any{"1", "2"}, "X-a": "x"},
			want: []HeaderLine{{"X-A", []string{"1", "2", "x", "3"}}}},
		{name: "null among combined keys contributes nothing",
			m:    map[string]any{"x-a": nil, "X-A": "1"},
			want: []HeaderLine{{"X-A", []string{"1"}}}},
		{name: "all combined null is a removal",
			m:    map[string]any{"x-a": nil, "X-A": []any{}},
			want: []HeaderLine{{"X-A", nil}}},
		{name: "framing and hop-by-hop dropped",
			m: map[string]any{"Content-Length": "5", "connection": "close", "Keep-Alive": "1",
				"Proxy-Connection": "x", "Proxy-Authenticate": "x", "Proxy-Authorization": "Basic x",
				"Transfer-Encoding": "chunked", "TE": "trailers", "Trailer": "X", "upgrade": "h2c",
				"X-Kept": "1", "Content-Type": "text/plain"},
			want: []HeaderLine{{"Content-Type", []string{"text/plain"}}, {"X-Kept", []string{"1"}}}},
		{name: "dropped header value is not validated", m: map[string]any{"Connection": map[string]any{}},
			want: []HeaderLine{}},
		{name: "host kept", m: map[string]any{"host": "example.test"},
			want: []HeaderLine{{"Host", []string{"example.test"}}}},
		{name: "sorted by canonical name", m: map[string]any{"b": "1", "A": "2", "c": "3"},
			want: []HeaderLine{{"A", []string{"2"}}, {"B", []string{"1"}}, {"C", []string{"3"}}}},
		{name: "value of exactly 8 KiB", m: map[string]any{"X-Long": long},
			want: []HeaderLine{{"X-Long", []string{long}}}},
		{name: "tab allowed", m: map[string]any{"X-Tab": "a\tb"},
			want: []HeaderLine{{"X-Tab", []string{"a\tb"}}}},

		{name: "not a map", m: "oops", wantErr: "expected map, got string"},
		{name: "empty name", m: map[string]any{"": "x"}, wantErr: `invalid header name ""`},
		{name: "space in name", m: map[string]any{"X Foo": "x"}, wantErr: `invalid header name "X Foo"`},
		{name: "colon in name", m: map[string]any{"X:Foo": "x"}, wantErr: `invalid header name "X:Foo"`},
		{name: "non-ASCII name", m: map[string]any{"X-Fö": "x"}, wantErr: `invalid header name "X-Fö"`},
		{name: "CRLF in name", m: map[string]any{"X-A\r\nX-B": "x"}, wantErr: `invalid header name "X-A\r\nX-B"`},
		{name: "object value", m: map[string]any{"x-obj": map[string]any{}}, wantErr: `invalid value for header "x-obj"`},
		{name: "nested array", m: map[string]any{"X-A": []any{[]any{"a"}}}, wantErr: `invalid value for header "X-A"`},
		{name: "object in array", m: map[string]any{"X-A": []any{map[string]any{}}}, wantErr: `invalid value for header "X-A"`},
		{name: "null in array", m: map[string]any{"X-A": []any{"a", nil}}, wantErr: `invalid value for header "X-A"`},
		{name: "CR", m: map[string]any{"X-A": "a\rb"}, wantErr: `invalid value for header "X-A"`},
		{name: "LF", m: map[string]any{"X-A": "a\nX-Injected: 1"}, wantErr: `invalid value for header "X-A"`},
		{name: "NUL", m: map[string]any{"X-A": "a\x00"}, wantErr: `invalid value for header "X-A"`},
		{name: "CRLF in array element", m: map[string]any{"X-A": []any{"ok", "a\r\n"}}, wantErr: `invalid value for header "X-A"`},
		{name: "over 8 KiB", m: map[string]any{"X-A": long + "a"}, wantErr: `invalid value for header "X-A"`},
		{name: "invalid names before values", m: map[string]any{"B b": "x", "A": "\n"}, wantErr: `invalid header name "B b"`},
		{name: "lowest invalid name", m: map[string]any{"b b": "x", "B b": "x", "c c": "x"}, wantErr: `invalid header name "B b"`},
		{name: "first invalid value by canonical name", m: map[string]any{"x-b": "\n", "X-A": "\n", "x-a": "ok"}, wantErr: `invalid value for header "X-A"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := HeaderLines(tt.m)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("HeaderLines(%v) error = %v, want %q", tt.m, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("HeaderLines(%v) error = %v", tt.m, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("HeaderLines(%v) = %#v, want %#v", tt.m, got, tt.want)
			}
		})
	}
}

func TestMergeHeaders(t *testing.T) {
	h := map[string][]string{
		"Authorization": {"Bearer forged"},
		"x-user":        {"forged"}, // non-canonical key from a hand-built header
		"X-Other":       {"1"},
		"X-Ignored":     {"client"},
		"X-Multi":       {"a", "b"},
	}
	lines := []HeaderLine{
		{"Authorization", []string{"Bearer abc"}},
		{"X-Ignored", nil},
		{"X-Multi", []string{"c"}},
		{"X-New", []string{"1", "2"}},
		{"X-User", []string{"real"}},
	}
	MergeHeaders(h, lines)
	want := map[string][]string{
		"Authorization": {"Bearer abc"},
		"X-Other":       {"1"},
		"X-Multi":       {"c"},
		"X-New":         {"1", "2"},
		"X-User":        {"real"},
	}
	if !reflect.DeepEqual(h, want) {
		t.Errorf("MergeHeaders = %v, want %v", h, want)
	}
	// The merged slices are copies: changing the lines later must not alias.
	lines[3].Values[0] = "changed"
	if h["X-New"][0] != "1" {
		t.Errorf("MergeHeaders aliased the line values")
	}
}

func TestDecodeQuery(t *testing.T) {
	tests := []struct {
		raw  string
		want map[string]any
	}{
		{"", map[string]any{}},
		{"a=1", map[string]any{"a": "1"}},
		{"debug", map[string]any{"debug": true}},
		{"a=", map[string]any{"a": ""}},
		{"a=1&a=2&a", map[string]any{"a": []any{"1", "2", true}}},
		{"a=1&b=2&a=3", map[string]any{"a": []any{"1", "3"}, "b": "2"}},
		{"a=1;b=2", map[string]any{"a": "1;b=2"}},
		{"q=hello+world&x=a%20b", map[string]any{"q": "hello world", "x": "a b"}},
		{"k%3Dx=v%26w", map[string]any{"k=x": "v&w"}},
		{"a=%zz&b=%4&c=%", map[string]any{"a": "%zz", "b": "%4", "c": "%"}},
		{"a=%e2%82%ac", map[string]any{"a": "€"}},
		{"a=%ff", map[string]any{"a": "\xff"}},
		{"a=b=c", map[string]any{"a": "b=c"}},
		{"&&a=1&", map[string]any{"a": "1"}},
		{"=1&=", map[string]any{}},
		{"%2B=+", map[string]any{"+": " "}},
		{"api_key=K", map[string]any{"api_key": "K"}},
	}
	for _, tt := range tests {
		if got := DecodeQuery(tt.raw); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("DecodeQuery(%q) = %#v, want %#v", tt.raw, got, tt.want)
		}
	}
}

func TestEncodeQuery(t *testing.T) {
	tests := []struct {
		name string
		m    map[string]any
		want string
	}{
		{"nil", nil, ""},
		{"empty", map[string]any{}, ""},
		{"13.13 #5", map[string]any{"a": true, "b": 10}, "a=true&b=10"},
		{"keys in byte order", map[string]any{"b": "2", "B": "1", "a": "0"}, "B=1&a=0&b=2"},
		{"string", map[string]any{"q": "hello world"}, "q=hello%20world"},
		{"float and negative", map[string]any{"f": 1.5, "n": -3}, "f=1.5&n=-3"},
		{"false", map[string]any{"x": false}, "x=false"},
		{"null is bare key", map[string]any{"debug": nil}, "debug"},
		{"array", map[string]any{"a": []any{"1", 2, nil, true}}, "a=1&a=2&a&a=true"},
		{"nested array flattened", map[string]any{"a": []any{[]any{"x", "y"}, "z"}}, "a=x&a=y&a=z"},
		{"empty array gives nothing", map[string]any{"a": []any{}, "b": "1"}, "b=1"},
		{"object is JSON", map[string]any{"o": map[string]any{"y": 1, "x": "<&>"}}, "o=%7B%22x%22%3A%22%3C%26%3E%22%2C%22y%22%3A1%7D"},
		{"unreserved kept", map[string]any{"A-Z_a.z~0": "-._~"}, "A-Z_a.z~0=-._~"},
		{"reserved escaped", map[string]any{"k&=": "a+b/c?d#e%f"}, "k%26%3D=a%2Bb%2Fc%3Fd%23e%25f"},
		{"UTF-8 and raw bytes", map[string]any{"e": "€", "r": "\xff"}, "e=%E2%82%AC&r=%FF"},
		{"form body 13.1", map[string]any{"grant_type": "client_credentials", "client_id": "my_client_id"},
			"client_id=my_client_id&grant_type=client_credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := EncodeQuery(tt.m); got != tt.want {
				t.Errorf("EncodeQuery(%v) = %q, want %q", tt.m, got, tt.want)
			}
		})
	}
}

func TestQueryRoundTrip(t *testing.T) {
	// A decoded valueless key re-encodes as k=true (the asymmetry of §6.2);
	// everything else survives decode → encode → decode.
	for _, raw := range []string{"a=1&a=2&b=x%20y", "a=%zz", "debug", "k%26=%3D"} {
		once := DecodeQuery(EncodeQuery(DecodeQuery(raw)))
		twice := DecodeQuery(EncodeQuery(once))
		if !reflect.DeepEqual(once, twice) {
			t.Errorf("round trip of %q unstable: %v then %v", raw, once, twice)
		}
	}
	if got := EncodeQuery(DecodeQuery("debug")); got != "debug=true" {
		t.Errorf("EncodeQuery(DecodeQuery(%q)) = %q, want %q", "debug", got, "debug=true")
	}
}

func TestMergeURLQuery(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		m    map[string]any
		want string
	}{
		{"nil map keeps the URL query", "a=1&b=%zz", nil, "a=1&b=%zz"},
		{"empty map keeps the URL query", "a=1", map[string]any{}, "a=1"},
		{"no URL query", "", map[string]any{"a": true, "b": 10}, "a=true&b=10"},
		{"replaced keys dropped, others kept in order", "z=1&a=old&y=2&a=older", map[string]any{"a": "new"}, "z=1&y=2&a=new"},
		{"kept pairs verbatim", "x=a+b&y=%7e", map[string]any{"c": "1"}, "x=a+b&y=%7e&c=1"},
		{"keys compared decoded", "a%20b=1&c=2", map[string]any{"a b": "x"}, "c=2&a%20b=x"},
		{"valueless URL key replaced", "debug&x=1", map[string]any{"debug": nil}, "x=1&debug"},
		{"empty segments removed", "a=1&&b=2&", map[string]any{"c": "3"}, "a=1&b=2&c=3"},
		{"all replaced", "a=1", map[string]any{"a": []any{}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MergeURLQuery(tt.raw, tt.m); got != tt.want {
				t.Errorf("MergeURLQuery(%q, %v) = %q, want %q", tt.raw, tt.m, got, tt.want)
			}
		})
	}
}

func TestIsJSONContentType(t *testing.T) {
	tests := []struct {
		ct   string
		want bool
	}{
		{"application/json", true},
		{"application/json; charset=utf-8", true},
		{"Application/JSON", true},
		{" application/json ;", true},
		{"application/problem+json", true},
		{"application/vnd.api+JSON; v=1", true},
		{"text/json", false},
		{"application/jsonx", false},
		{"application/json-seq", false},
		{"application/+json", false},
		{"+json", false},
		{"text/plain", false},
		{"application/x-www-form-urlencoded", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := IsJSONContentType(tt.ct); got != tt.want {
			t.Errorf("IsJSONContentType(%q) = %v, want %v", tt.ct, got, tt.want)
		}
	}
}

func TestDecodeBody(t *testing.T) {
	tests := []struct {
		name    string
		ct      string
		body    string
		present bool
		want    any
		wantErr string
	}{
		{name: "no body", ct: "application/json", present: false, want: nil},
		{name: "no body, text", ct: "text/plain", body: "ignored", present: false, want: nil},
		{name: "JSON object", ct: "application/json", body: `{"a":1,"b":[1.5,"x"]}`, present: true,
			want: map[string]any{"a": 1, "b": []any{1.5, "x"}}},
		{name: "JSON suffix", ct: "application/problem+json", body: `"s"`, present: true, want: "s"},
		{name: "empty JSON body is null", ct: "application/json", body: "", present: true, want: nil},
		{name: "whitespace JSON body is null", ct: "application/json", body: " \r\n\t", present: true, want: nil},
		{name: "JSON null", ct: "application/json", body: "null", present: true, want: nil},
		{name: "text kept raw", ct: "text/plain", body: `{"a":1}`, present: true, want: `{"a":1}`},
		{name: "no content type is raw", ct: "", body: "x", present: true, want: "x"},
		{name: "empty text body is empty string", ct: "text/plain", body: "", present: true, want: ""},
		{name: "invalid bytes kept", ct: "application/octet-stream", body: "\xff\x00", present: true, want: "\xff\x00"},
		{name: "form not decoded", ct: "application/x-www-form-urlencoded", body: "a=1", present: true, want: "a=1"},
		{name: "invalid JSON", ct: "application/json", body: `{"a":`, present: true, wantErr: "unexpected EOF"},
		{name: "trailing data", ct: "application/json", body: `{} {}`, present: true, wantErr: "invalid character after top-level value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeBody(tt.ct, []byte(tt.body), tt.present)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("DecodeBody(%q, %q) error = %v, want %q", tt.ct, tt.body, err, tt.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("DecodeBody(%q, %q, %v) = %#v, %v, want %#v", tt.ct, tt.body, tt.present, got, err, tt.want)
			}
		})
	}
}

func TestEncodeBody(t *testing.T) {
	tests := []struct {
		name     string
		v        any
		want     string
		wantJSON bool
		wantErr  bool
	}{
		{name: "null", v: nil, want: ""},
		{name: "string verbatim", v: `{"not":"re-encoded"}`, want: `{"not":"re-encoded"}`},
		{name: "empty string", v: "", want: ""},
		{name: "object sorted compact unescaped", v: map[string]any{"data": "<a&b>", "a": 1}, want: `{"a":1,"data":"<a&b>"}`, wantJSON: true},
		{name: "number", v: 30, want: "30", wantJSON: true},
		{name: "float integral", v: 30.0, want: "30", wantJSON: true},
		{name: "boolean", v: false, want: "false", wantJSON: true},
		{name: "array", v: []any{1, "x", nil}, want: `[1,"x",null]`, wantJSON: true},
		{name: "invalid UTF-8 replaced in JSON", v: []any{"\xff"}, want: `["\ufffd"]`, wantJSON: true},
		{name: "NaN is an error", v: math.NaN(), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, isJSON, err := EncodeBody(tt.v)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("EncodeBody(%v) error = nil, want an error", tt.v)
				}
				return
			}
			if err != nil || string(b) != tt.want || isJSON != tt.wantJSON {
				t.Errorf("EncodeBody(%#v) = %q, %v, %v, want %q, %v", tt.v, b, isJSON, err, tt.want, tt.wantJSON)
			}
		})
	}
}

func FuzzQuery(f *testing.F) {
	for _, s := range []string{"", "a=1&a=2", "debug", "a=%zz&b=+", "x=%E2%82%AC;y", "=1&&k%3D=v"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		m := DecodeQuery(raw)
		enc := EncodeQuery(m)
		again := EncodeQuery(DecodeQuery(enc))
		if again != enc {
			t.Fatalf("EncodeQuery not stable for %q: %q then %q", raw, enc, again)
		}
		// Merging a decoded map into the same query drops every original pair
		// but those with an empty key, which decoding discards.
		got := MergeURLQuery(raw, m)
		kept, ok := strings.CutSuffix(got, enc)
		if !ok {
			t.Fatalf("MergeURLQuery(%q, decoded) = %q, want it to end in %q", raw, got, enc)
		}
		for _, pair := range strings.Split(kept, "&") {
			if k, _, _ := strings.Cut(pair, "="); k != "" {
				t.Fatalf("MergeURLQuery(%q, decoded) = %q kept pair %q", raw, got, pair)
			}
		}
	})
}

func BenchmarkHeaderLines(b *testing.B) {
	m := map[string]any{
		"Content-Type":  "application/json",
		"authorization": "Bearer abc",
		"X-Api-Key":     "k",
		"X-Multi":       []any{"first", "second"},
		"X-Count":       10,
		"X-Ignored":     nil,
		"Connection":    "close",
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := HeaderLines(m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeQuery(b *testing.B) {
	raw := "api_key=K&page=2&sort=name&tags=a&tags=b&q=hello+world%21&debug"
	b.ReportAllocs()
	for b.Loop() {
		DecodeQuery(raw)
	}
}

func TestReadLimited(t *testing.T) {
	for _, tc := range []struct {
		size, limit int64
		wantErr     error
	}{
		{0, 10, nil},
		{10, 10, nil},
		{11, 10, ErrTooLarge},
		{5 << 20, 5 << 20, nil},
		{5<<20 + 1, 5 << 20, ErrTooLarge},
	} {
		b, err := ReadLimited(io.LimitReader(zeros{}, tc.size), tc.limit)
		if err != tc.wantErr || err == nil && int64(len(b)) != tc.size {
			t.Errorf("ReadLimited(%d bytes, limit %d) = %d bytes, %v; want %v", tc.size, tc.limit, len(b), err, tc.wantErr)
		}
	}
	boom := errors.New("boom")
	if _, err := ReadLimited(io.MultiReader(io.LimitReader(zeros{}, 100), errReader{boom}), 1000); err != boom {
		t.Errorf("ReadLimited(failing reader) = %v, want %v", err, boom)
	}
}

// TestReadLimitedMemory: an endless body costs the limit, not the copies of
// a growing slice (io.ReadAll allocates about twice the limit).
func TestReadLimitedMemory(t *testing.T) {
	const limit = 8 << 20
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if _, err := ReadLimited(zeros{}, limit); err != ErrTooLarge {
		t.Fatalf("ReadLimited(endless) = %v", err)
	}
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > limit+1<<20 {
		t.Errorf("reading an endless body allocated %d KiB, want at most %d KiB", got>>10, (limit+1<<20)>>10)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }
