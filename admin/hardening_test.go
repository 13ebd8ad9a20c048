package admin_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/datakit-gateway/datakit/admin"
)

// Hardening catalogue cases (spec/hardening.md §3.3) against the Admin API
// handler; T32's token rows are TestT32AdminAuthentication.

// billionLaughs is the classic 342-byte YAML alias bomb: nine levels of
// nine references expand to 9^9 strings.
const billionLaughs = `a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
`

// hostileBound is how long a hostile document may take to be refused. The
// spec asks for 100 ms; the bound is 20 times that because the test runs
// under -race on a shared, loaded machine. Durations are logged.
const hostileBound = 2 * time.Second

// TestT35HostileConfig: alias bombs, hostile nesting, oversized bodies,
// duplicate keys, unknown fields, non-core tags, merge keys, invalid UTF-8
// and several documents posted to /config are refused quickly — 400, or 413
// before parsing — and the running configuration stays.
func TestT35HostileConfig(t *testing.T) {
	e := newEnv(t, readFile(t, "testdata/kong.yml"), nil)
	before := configState(t, e)
	const deep = 100_000
	const svc = "_format_version: \"3.0\"\nservices:\n  - name: s\n    host: s.test\n"
	tests := []struct {
		name, ct, body string
		// chunked sends the body without Content-Length.
		chunked bool
		status  int
		// message is a substring of the error message ("" skips).
		message string
	}{
		{name: "billion laughs", ct: "application/yaml", body: billionLaughs, status: 400, message: "excessive aliasing"},
		{name: "deep yaml flow", ct: "application/yaml", body: strings.Repeat("{a: ", deep) + strings.Repeat("}", deep), status: 400, message: "exceeded max depth"},
		{name: "deep yaml block", ct: "application/yaml", body: strings.Repeat("- ", deep) + "x\n", status: 400, message: "exceeded max depth"},
		{name: "deep json as yaml", ct: "application/yaml", body: strings.Repeat("[", deep) + strings.Repeat("]", deep), status: 400, message: "exceeded max depth"},
		{name: "deep json", ct: jsonType, body: `{"_format_version":"3.0","services":` + strings.Repeat("[", deep) + strings.Repeat("]", deep) + "}",
			status: 400, message: "Cannot parse JSON body"},
		{name: "deep json config field", ct: jsonType, body: mustJSON(t, map[string]string{"config": strings.Repeat("[", deep) + strings.Repeat("]", deep)}),
			status: 400, message: "exceeded max depth"},
		{name: "11 MiB", ct: "application/yaml", body: svc + strings.Repeat("#", 11<<20), status: 413, message: "Payload too large"},
		{name: "11 MiB chunked", ct: "application/yaml", body: svc + strings.Repeat("#", 11<<20), chunked: true, status: 413, message: "Payload too large"},
		{name: "duplicate top-level key", ct: "application/yaml", body: svc + "services: []\n", status: 400, message: "duplicate key 'services'"},
		{name: "duplicate entity field", ct: "application/yaml", body: svc + "    name: t\n", status: 400, message: "duplicate key 'name'"},
		{name: "duplicate json key", ct: jsonType, body: `{"_format_version":"3.0","services":[{"name":"s","host":"s.test"}],"services":[]}`,
			status: 400, message: "Cannot parse JSON body"},
		{name: "duplicate json key as yaml", ct: "application/yaml", body: `{"_format_version":"3.0","services":[{"name":"s","host":"s.test","host":"t.test"}]}`,
			status: 400, message: "duplicate key 'host'"},
		{name: "unknown field", ct: "application/yaml", body: svc + "    bogus: 1\n", status: 400, message: "unknown field"},
		{name: "unknown top-level field", ct: "application/yaml", body: svc + "extra: {}\n", status: 400, message: "unknown field"},
		{name: "binary tag", ct: "application/yaml", body: svc + "    tags: [!!binary aGVsbG8=]\n", status: 400, message: "unsupported tag '!!binary'"},
		{name: "custom tag", ct: "application/yaml", body: svc + "    tags: [!evil x]\n", status: 400, message: "unsupported tag '!evil'"},
		{name: "custom mapping tag", ct: "application/yaml", body: "_format_version: \"3.0\"\nservices:\n  - !!python/object {name: s, host: s.test}\n",
			status: 400, message: "unsupported tag"},
		{name: "merge key", ct: "application/yaml", body: "_format_version: \"3.0\"\nbase: &b {host: s.test}\nservices:\n  - <<: *b\n    name: s\n",
			status: 400, message: "merge keys (<<) are not supported"},
		{name: "invalid utf-8", ct: "application/yaml", body: svc + "    tags: [\"\xff\xfe\"]\n", status: 400, message: "invalid UTF-8"},
		{name: "invalid utf-8 json", ct: jsonType, body: "{\"_format_version\":\"3.0\",\"services\":[{\"name\":\"\xff\",\"host\":\"s.test\"}]}",
			status: 400, message: "Cannot parse JSON body"},
		{name: "several documents", ct: "application/yaml", body: svc + "---\n" + svc, status: 400, message: "expected a single document"},
		{name: "several json documents", ct: jsonType, body: `{"_format_version":"3.0"} {"_format_version":"3.0"}`, status: 400, message: "Cannot parse JSON body"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httpRequest(http.MethodPost, "/config", tc.body)
			r.Header.Set("Content-Type", tc.ct)
			if tc.chunked {
				r.ContentLength = -1
			}
			start := time.Now()
			w := serve(e.h, r)
			took := time.Since(start)
			var got struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			}
			_ = json.Unmarshal(w.Body.Bytes(), &got)
			if w.Code != tc.status || !strings.Contains(got.Message, tc.message) {
				t.Errorf("POST /config %s = %d %.300s, want %d with %q", tc.name, w.Code, w.Body, tc.status, tc.message)
			}
			if w.Code == 400 && strings.HasPrefix(tc.message, "Cannot") == (got.Code == 14) {
				t.Errorf("POST /config %s: code %d; want 14 for document errors only", tc.name, got.Code)
			}
			if took > hostileBound {
				t.Errorf("POST /config %s took %v, want under %v (spec: 100 ms)", tc.name, took, hostileBound)
			}
			t.Logf("%s: %d bytes refused with %d in %v", tc.name, len(tc.body), w.Code, took.Round(time.Microsecond))
		})
	}
	if after := configState(t, e); after != before {
		t.Errorf("configuration changed by hostile POST /config:\n%s\nwas\n%s", after, before)
	}

	// A lowered admin_max_body_size applies before parsing too.
	small := newEnv(t, "", func(o *admin.Options) { o.MaxBodySize = 32 })
	w := small.do(t, req{method: http.MethodPost, path: "/config", body: strings.Repeat("#", 33), header: map[string]string{"Content-Type": "text/yaml"}})
	if w.Code != 413 || !jsonEqual(t, w.Body.String(), `{"message":"Payload too large"}`) {
		t.Errorf("POST /config over a 32-byte admin_max_body_size = %d %s", w.Code, w.Body)
	}
}
