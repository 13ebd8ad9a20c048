package admin

import (
	"encoding/json"
	"errors"
	"net/url"
	"testing"
)

func TestDecodeForm(t *testing.T) {
	tests := []struct {
		form string
		want string // JSON; "" wants errFormShape
	}{
		{"", `{}`},
		{"name=billing&host=billing.test", `{"name":"billing","host":"billing.test"}`},
		{"config.key_names=apikey", `{"config":{"key_names":"apikey"}}`},
		{"paths[1]=/a&paths[2]=/b", `{"paths":["/a","/b"]}`},
		{"paths[2]=/b&paths[1]=/a", `{"paths":["/a","/b"]}`},
		{"paths[10]=/c&paths[2]=/b", `{"paths":["/b","/c"]}`},
		{"paths[]=/a&paths[]=/b", `{"paths":["/a","/b"]}`},
		{"paths=/a&paths=/b", `{"paths":["/a","/b"]}`},
		{"headers[x-env]=prod", `{"headers":{"x-env":"prod"}}`},
		{"headers.x-env=prod&headers.x-env=dev", `{"headers":{"x-env":["prod","dev"]}}`},
		{"service.id=aa93ac78-2b4d-59d0-9897-62a161ae6928", `{"service":{"id":"aa93ac78-2b4d-59d0-9897-62a161ae6928"}}`},
		{"service.name=billing", `{"service":{"name":"billing"}}`},
		{"path=", `{"path":null}`},
		{"config.nodes[1].name=A&config.nodes[1].type=static&config.nodes[2].name=B",
			`{"config":{"nodes":[{"name":"A","type":"static"},{"name":"B"}]}}`},
		{"a[1][2]=x", `{"a":[[ "x" ]]}`},
		{"a=1&a.b=2", ""},
		{"a[1]=1&a.b=2", ""},
		{"a.=1", ""},
		{".a=1", ""},
		{"a[=1", ""},
		{"[1]=x", ""},
		{"a..b=1", ""},
	}
	for _, tc := range tests {
		vals, err := url.ParseQuery(tc.form)
		if err != nil {
			t.Fatalf("ParseQuery(%q) = %v", tc.form, err)
		}
		got, err := decodeForm(vals)
		if tc.want == "" {
			if !errors.Is(err, errFormShape) {
				t.Errorf("decodeForm(%q) = %v, %v, want errFormShape", tc.form, got, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("decodeForm(%q) = %v", tc.form, err)
			continue
		}
		var want any
		if err := json.Unmarshal([]byte(tc.want), &want); err != nil {
			t.Fatal(err)
		}
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(want)
		if string(gb) != string(wb) {
			t.Errorf("decodeForm(%q) = %s, want %s", tc.form, gb, wb)
		}
	}
}

// FuzzDecodeForm checks that any urlencoded body decodes or fails with
// errFormShape, never panics, and that a decoded value is plain JSON.
func FuzzDecodeForm(f *testing.F) {
	for _, s := range []string{"name=billing", "config.key_names[1]=apikey", "a[]=x&a[]=y", "headers[x-env]=prod",
		"a=1&a.b=2", "a[99999999999999999999]=x", "a[0]=x", "a[-1]=x", "a.b.c.d.e=1", "%5B=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		vals, err := url.ParseQuery(body)
		if err != nil {
			return
		}
		m, err := decodeForm(vals)
		if err != nil {
			if !errors.Is(err, errFormShape) {
				t.Fatalf("decodeForm(%q) = %v, want errFormShape", body, err)
			}
			return
		}
		if _, err := json.Marshal(m); err != nil {
			t.Fatalf("decodeForm(%q) = %v, not JSON: %v", body, m, err)
		}
		if len(vals) > 0 && len(m) == 0 {
			t.Fatalf("decodeForm(%q) lost every key", body)
		}
	})
}
