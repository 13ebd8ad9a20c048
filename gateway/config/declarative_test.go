package config

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// uuid5 derives a name-based UUID by hand from RFC 4122 §4.3, independently
// of the package's implementation.
func uuid5(ns, name string) string {
	raw, err := hex.DecodeString(strings.ReplaceAll(ns, "-", ""))
	if err != nil {
		panic(err)
	}
	h := sha1.Sum(append(raw, name...))
	b := h[:16]
	b[6] = b[6]&0x0f | 0x50
	b[8] = b[8]&0x3f | 0x80
	x := hex.EncodeToString(b)
	return x[:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:]
}

const kongRoot = "fd02801f-0957-4a15-a55a-c8d9606f30b5"

func load(t *testing.T, doc string) (*Entities, error) {
	t.Helper()
	return LoadDeclarative([]byte(doc), LoadOptions{Plugins: fakeSchemas{}, Now: fixedNow, Rand: &zeroRand{}})
}

func mustLoad(t *testing.T, doc string) *Entities {
	t.Helper()
	e, err := load(t, doc)
	if err != nil {
		var de *DeclarativeError
		if errors.As(err, &de) {
			t.Fatalf("LoadDeclarative = %v\n%s", err, strings.Join(de.Lines(), "\n"))
		}
		t.Fatalf("LoadDeclarative = %v", err)
	}
	return e
}

// TestDeterministicIDs recomputes §5.3's vectors from the derivation rule.
func TestDeterministicIDs(t *testing.T) {
	nsServices := uuid5(kongRoot, "services")
	if nsServices != "90050c4f-539a-5bd9-bfb5-2ff1c430ca18" {
		t.Fatalf("hand-made uuid5 disagrees with the spec vector: %s", nsServices)
	}
	billing := uuid5(nsServices, "billing")
	tests := []struct{ collection, key, want string }{
		{"services", "billing", "aa93ac78-2b4d-59d0-9897-62a161ae6928"},
		{"routes", "billing-api", "184fce19-d039-5a34-ab1b-9c6fdf2d2686"},
		{"plugins", "plugins:*:key-auth::" + billing + ":", "b6bce088-61bd-5149-b5c9-7178770b80d5"},
		{"consumers", "alice", uuid5(uuid5(kongRoot, "consumers"), "alice")},
	}
	for _, tc := range tests {
		if got := DeterministicID(tc.collection, tc.key); got != tc.want {
			t.Errorf("DeterministicID(%q, %q) = %s, want %s", tc.collection, tc.key, got, tc.want)
		}
	}

	cert, key := testCert(t, "a.test", false)
	doc := fmt.Sprintf(`_format_version: "3.0"
services:
- name: billing
  url: http://billing.test
  routes:
  - name: billing-api
    paths: [/billing]
  plugins:
  - name: key-auth
consumers:
- username: alice
- custom_id: c-42
plugins:
- name: prometheus
  service: billing
upstreams:
- name: pool
  targets:
  - target: 10.0.0.1
certificates:
- cert: %q
  key: %q
  snis:
  - name: a.test
`, cert, key)
	e := mustLoad(t, doc)
	ns := func(c string) string { return uuid5(kongRoot, c) }
	sum := sha256Hex(cert)
	want := map[string]string{
		"service":         "aa93ac78-2b4d-59d0-9897-62a161ae6928",
		"route":           "184fce19-d039-5a34-ab1b-9c6fdf2d2686",
		"nested plugin":   "b6bce088-61bd-5149-b5c9-7178770b80d5",
		"top plugin":      uuid5(ns("plugins"), "plugins:*:prometheus::billing:"),
		"consumer alice":  uuid5(ns("consumers"), "alice"),
		"consumer custom": uuid5(ns("consumers"), "c-42"),
		"upstream":        uuid5(ns("upstreams"), "pool"),
		"target":          uuid5(ns("targets"), "targets:*:"+uuid5(ns("upstreams"), "pool")+":10.0.0.1"),
		"certificate":     uuid5(ns("certificates"), sum),
		"sni":             uuid5(ns("snis"), "a.test"),
	}
	got := map[string]string{
		"service": e.Services[0].ID, "route": e.Routes[0].ID,
		"upstream": e.Upstreams[0].ID, "target": e.Targets[0].ID,
		"certificate": e.Certificates[0].ID, "sni": e.SNIs[0].ID,
	}
	for _, p := range e.Plugins {
		if p.Name == "key-auth" {
			got["nested plugin"] = p.ID
		} else {
			got["top plugin"] = p.ID
		}
	}
	for _, c := range e.Consumers {
		if c.Username != nil {
			got["consumer alice"] = c.ID
		} else {
			got["consumer custom"] = c.ID
		}
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("id of %s = %s, want %s", k, got[k], w)
		}
	}
}

func sha256Hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// TestNestingAndReferences loads every nesting of §5.2 plus top-level
// references by name and id.
func TestNestingAndReferences(t *testing.T) {
	cert, key := testCert(t, "a.test", false)
	doc := fmt.Sprintf(`_format_version: "3.0"
_transform: true
_comment: anything
services:
- name: billing
  _comment: also here
  host: billing.test
  routes:
  - name: billing-api
    paths: [/billing]
    plugins:
    - name: prometheus
  plugins:
  - name: key-auth
    config: {key_names: [x-key]}
- name: orders
  host: orders.test
  protocol: https
  client_certificate: %[3]s
routes:
- name: orders-api
  service: orders
  hosts: [orders.example]
- service: aa93ac78-2b4d-59d0-9897-62a161ae6928
  methods: [POST]
consumers:
- username: alice
  keyauth_credentials:
  - key: secret-1
  plugins:
  - name: prometheus
keyauth_credentials:
- consumer: alice
plugins:
- name: datakit
  route: orders-api
  consumer: alice
  config: {nodes: [{name: A, type: static}]}
upstreams:
- name: pool
  targets:
  - target: 10.0.0.1:81
    weight: 0
targets:
- upstream: pool
  target: "[::1]"
certificates:
- id: %[3]s
  cert: %[1]q
  key: %[2]q
  snis:
  - name: "*.a.test"
  - b.test
snis:
- name: c.test
  certificate: %[3]s
`, cert, key, "11111111-2222-4333-8444-555555555555")
	e := mustLoad(t, doc)
	if e.Count() != 2+3+1+4+1+2+1+3+2 {
		t.Errorf("Count() = %d", e.Count())
	}
	svc := map[string]string{}
	for _, s := range e.Services {
		svc[*s.Name] = s.ID
	}
	routes := map[string]Route{}
	for _, r := range e.Routes {
		routes[deref(r.Name)] = r
	}
	if r := routes["billing-api"]; r.Service == nil || r.Service.ID != svc["billing"] {
		t.Errorf("nested route service = %+v, want %s", r.Service, svc["billing"])
	}
	if r := routes["orders-api"]; r.Service == nil || r.Service.ID != svc["orders"] || r.Service.Key != "" {
		t.Errorf("top-level route by name = %+v, want %s", r.Service, svc["orders"])
	}
	if r := routes[""]; r.Service == nil || r.Service.ID != svc["billing"] {
		t.Errorf("top-level route by id = %+v", r.Service)
	}
	alice := e.Consumers[0].ID
	for _, p := range e.Plugins {
		switch {
		case p.Name == "key-auth":
			if p.Service == nil || p.Service.ID != svc["billing"] || p.Route != nil || p.Config["hide_credentials"] != false {
				t.Errorf("service-nested plugin = %+v", p)
			}
		case p.Name == "datakit":
			if p.Route == nil || p.Route.ID != routes["orders-api"].ID || p.Consumer == nil || p.Consumer.ID != alice {
				t.Errorf("multi-scope plugin = %+v", p)
			}
		case p.Route != nil:
			if p.Route.ID != routes["billing-api"].ID || p.Service != nil {
				t.Errorf("route-nested plugin = %+v", p)
			}
		default:
			if p.Consumer == nil || p.Consumer.ID != alice {
				t.Errorf("consumer-nested plugin = %+v", p)
			}
		}
	}
	for _, k := range e.KeyauthCredentials {
		if k.Consumer.ID != alice || k.Key == "" {
			t.Errorf("credential = %+v", k)
		}
	}
	for _, tg := range e.Targets {
		if tg.Upstream.ID != e.Upstreams[0].ID || (tg.Target != "10.0.0.1:81" && tg.Target != "[::1]:8000") {
			t.Errorf("target = %+v", tg)
		}
		if tg.CreatedAt != 1700000000.123 {
			t.Errorf("target created_at = %v, want fractional ms", tg.CreatedAt)
		}
	}
	c := e.Certificates[0]
	if !reflect.DeepEqual(c.SNIs, []string{"*.a.test", "b.test", "c.test"}) {
		t.Errorf("certificate snis = %v", c.SNIs)
	}
	for _, s := range e.SNIs {
		if s.Certificate.ID != c.ID {
			t.Errorf("sni %s certificate = %v", s.Name, s.Certificate)
		}
	}
	if e.Services[0].CreatedAt != fixedNow.Unix() || e.Services[0].UpdatedAt != fixedNow.Unix() {
		t.Errorf("timestamps = %d/%d", e.Services[0].CreatedAt, e.Services[0].UpdatedAt)
	}
	for i := 1; i < len(e.Routes); i++ {
		if e.Routes[i-1].ID > e.Routes[i].ID {
			t.Errorf("routes not sorted by id")
		}
	}
}

// invalidDoc has errors at every level of the tree (§5.4).
const invalidDoc = `_format_version: "3.0"
services:
- name: billing
  host: billing.test
  routes:
  - name: ok
    paths: [/ok]
  - name: bad
    paths: [nope, /fine]
    service: billing
  plugins:
  - name: datakit
    config: {nodes: [{type: jq}, {}]}
- name: billing
  host: other.test
  port: 99999
routes:
- name: dangling
  service: missing
  paths: [/x]
consumers:
- tags: [a]
plugins:
- name: key-auth
  consumer: nobody
`

func TestErrorTree(t *testing.T) {
	_, err := load(t, invalidDoc)
	var de *DeclarativeError
	if !errors.As(err, &de) {
		t.Fatalf("LoadDeclarative = %v, want *DeclarativeError", err)
	}
	tree, _ := json.MarshalIndent(de.Fields, "", "  ")
	golden(t, "errors_tree.json", append(tree, '\n'))
	flat, _ := json.MarshalIndent(de.Flattened, "", "  ")
	golden(t, "errors_flattened.json", append(flat, '\n'))
	golden(t, "errors_lines.txt", []byte(strings.Join(de.Lines(), "\n")+"\n"))

	if !strings.HasPrefix(de.Error(), `declarative config is invalid: {"consumers":{"1":{"@entity":["at least one of`) {
		t.Errorf("Error() = %s", de.Error())
	}
	// The datakit messages are an array under config, one flattened entry each (§9.8).
	var shape map[string]any
	b, _ := json.Marshal(de.Fields)
	_ = json.Unmarshal(b, &shape)
	cfg := shape["services"].(map[string]any)["1"].(map[string]any)["plugins"].(map[string]any)["1"].(map[string]any)["config"]
	if arr, ok := cfg.([]any); !ok || len(arr) != 3 {
		t.Errorf("datakit config errors = %#v, want an array of 3", cfg)
	}
	n := 0
	for _, f := range de.Flattened {
		if f.EntityType == "plugin" && f.EntityName == "datakit" {
			for _, e := range f.Errors {
				if e.Type == "field" && e.Field == "config" {
					n++
				}
			}
			if f.Entity["service"].(map[string]any)["id"] != "aa93ac78-2b4d-59d0-9897-62a161ae6928" {
				t.Errorf("flattened entity parent = %v", f.Entity["service"])
			}
			if _, nested := f.Entity["routes"]; nested {
				t.Errorf("flattened entity keeps nested children")
			}
		}
	}
	if n != 3 {
		t.Errorf("flattened datakit config entries = %d, want 3", n)
	}
}

func TestDocumentErrors(t *testing.T) {
	tests := []struct{ name, doc, want string }{
		{"format missing", `services: []`, `{"_format_version":"required field missing"}`},
		{"format wrong", `_format_version: "4.0"`, `{"_format_version":"expected one of: 1.1, 2.1, 3.0"}`},
		{"format number", `_format_version: 2.0`, `{"_format_version":"expected one of: 1.1, 2.1, 3.0"}`},
		{"unknown top-level", "_format_version: \"3.0\"\nfoo: 1\n_workspace: x", `{"_workspace":"unknown field","foo":"unknown field"}`},
		{"collection not array", "_format_version: \"3.0\"\nservices: {a: 1}", `{"services":"expected an array"}`},
		{"entry not record", "_format_version: \"3.0\"\nconsumers: [alice]", `{"consumers":{"1":"expected a record"}}`},
		{"nested fk", "_format_version: \"3.0\"\nservices:\n- name: s\n  host: s.test\n  routes:\n  - paths: [/]\n    service: s", `{"services":{"1":{"routes":{"1":{"service":"value must be null"}}}}}`},
		{"nested under wrong parent", "_format_version: \"3.0\"\nupstreams:\n- name: u\n  routes: []", `{"upstreams":{"1":{"routes":"unknown field"}}}`},
		{"dangling", "_format_version: \"3.0\"\nroutes:\n- paths: [/]\n  service: foo", `{"routes":{"1":{"service":"invalid reference 'service: foo' (no such entry in 'services')"}}}`},
		{"certificate by name", "_format_version: \"3.0\"\nsnis:\n- name: a.test\n  certificate: mycert", `{"snis":{"1":{"certificate":"invalid reference 'certificate: mycert' (no such entry in 'certificates')"}}}`},
		{"unique name", "_format_version: \"3.0\"\nupstreams:\n- name: u\n- name: u", `{"upstreams":{"2":{"@entity":["uniqueness violation: 'upstreams' entity with name set to 'u' already declared"]}}}`},
		{"unique id", "_format_version: \"3.0\"\nconsumers:\n- username: a\n  id: 11111111-2222-4333-8444-555555555555\n- username: b\n  id: 11111111-2222-4333-8444-555555555555", `{"consumers":{"2":{"@entity":["uniqueness violation: 'consumers' entity with primary key set to '11111111-2222-4333-8444-555555555555' already declared"]}}}`},
		{"unique key-auth key", "_format_version: \"3.0\"\nconsumers:\n- username: a\n  keyauth_credentials: [{key: k}, {key: k}]", `{"consumers":{"1":{"keyauth_credentials":{"2":{"@entity":["uniqueness violation: 'keyauth_credentials' entity with key set to 'k' already declared"]}}}}}`},
		{"unique target", "_format_version: \"3.0\"\nupstreams:\n- name: u\n  targets: [{target: a.test}, {target: \"a.test:8000\"}]", `{"upstreams":{"1":{"targets":{"2":{"@entity":["uniqueness violation: 'targets' entity with upstream and target set to '{target=\"a.test:8000\",upstream={id=\"` + DeterministicID("upstreams", "u") + `\"}}' already declared"]}}}}}`},
		{"one plugin per scope", "_format_version: \"3.0\"\nservices:\n- name: s\n  host: s.test\n  plugins: [{name: prometheus}]\nplugins:\n- name: prometheus\n  service: s", `{"plugins":{"1":{"@entity":["uniqueness violation: 'plugins' entity with name, route, service and consumer set to '{consumer=null,name=\"prometheus\",route=null,service={id=\"` + DeterministicID("services", "s") + `\"}}' already declared"]}}}`},
		{"scope forbidden nested", "_format_version: \"3.0\"\nconsumers:\n- username: a\n  plugins: [{name: key-auth}]", `{"consumers":{"1":{"plugins":{"1":{"consumer":"value must be null"}}}}}`},
		{"not a mapping", `[1, 2]`, `{"@entity":["expected a record"]}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, tc.doc)
			var de *DeclarativeError
			if !errors.As(err, &de) {
				t.Fatalf("LoadDeclarative(%q) = %v, want *DeclarativeError", tc.doc, err)
			}
			got, _ := json.Marshal(de.Fields)
			if string(got) != tc.want {
				t.Errorf("LoadDeclarative(%q) tree =\n%s\nwant\n%s", tc.doc, got, tc.want)
			}
		})
	}
}

// TestFormatMigration covers §5.5 for both legacy versions.
func TestFormatMigration(t *testing.T) {
	paths := []struct{ in, want string }{
		{"/foo", "/foo"},
		{"/foo/./bar//", "/foo/bar/"},
		{"/caf%C3%A9", "/café"},
		{"/a%2Fb", "/a%2Fb"},
		{`/v\d+/x`, `~/v\d+/x`},
		{"/files/(?<id>[0-9]+)$", "~/files/(?<id>[0-9]+)$"},
		{"/x%2E%7B%3F(y)", `~/x\.\{%3F(y)`},
		{"/%41bc$", "~/Abc$"},
	}
	for _, version := range []string{"1.1", "2.1"} {
		var b strings.Builder
		fmt.Fprintf(&b, "_format_version: %q\nservices:\n- name: s\n  host: s.test\n  routes:\n  - name: nested\n    paths: [%q]\nroutes:\n", version, paths[0].in)
		for i, p := range paths {
			fmt.Fprintf(&b, "- name: r%d\n  paths: [%q]\n", i, p.in)
		}
		e := mustLoad(t, b.String())
		got := map[string]string{}
		for _, r := range e.Routes {
			got[*r.Name] = r.Paths[0]
		}
		for i, p := range paths {
			if g := got[fmt.Sprintf("r%d", i)]; g != p.want {
				t.Errorf("%s: migrate %q = %q, want %q", version, p.in, g, p.want)
			}
		}
		if got["nested"] != "/foo" {
			t.Errorf("%s: nested route path = %q", version, got["nested"])
		}
	}
	// In 3.0 nothing is rewritten.
	e := mustLoad(t, "_format_version: \"3.0\"\nroutes:\n- paths: [\"~/v\\\\d+\"]")
	if e.Routes[0].Paths[0] != `~/v\d+` {
		t.Errorf("3.0 path = %q", e.Routes[0].Paths[0])
	}
}

// TestExportRoundTrip exports a loaded document and loads the export back.
func TestExportRoundTrip(t *testing.T) {
	doc := `_format_version: "3.0"
services:
- name: billing
  url: https://billing.test:8443/v1
  tags: [team-a]
  routes:
  - name: billing-api
    paths: [/billing, "~/v(?<n>\\d+)"]
    headers: {x-env: [prod]}
    plugins:
    - name: key-auth
      config: {key_names: [apikey, x-key]}
consumers:
- username: alice
  custom_id: "007"
  keyauth_credentials:
  - key: secret-1
    id: 22222222-2222-4333-8444-555555555555
upstreams:
- name: pool
  hash_on: header
  hash_on_header: x-user
  targets:
  - target: 10.0.0.1:81
plugins:
- name: datakit
  config: {nodes: [{name: A, type: static, values: {a: 1.5, b: null}}]}
`
	e1 := mustLoad(t, doc)
	out, err := Export(e1)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "export.yaml", out)
	e2 := mustLoad(t, string(out))
	j1, _ := json.Marshal(e1)
	j2, _ := json.Marshal(e2)
	if string(j1) != string(j2) {
		t.Errorf("export round trip differs:\n%s\n%s", j1, j2)
	}
	out2, _ := Export(e2)
	if string(out) != string(out2) {
		t.Errorf("export not stable")
	}
}

func TestHash(t *testing.T) {
	if got, want := Hash(nil), "d41d8cd98f00b204e9800998ecf8427e"; got != want {
		t.Errorf("Hash(nil) = %s, want %s", got, want)
	}
	if EmptyHash != strings.Repeat("0", 32) {
		t.Errorf("EmptyHash = %s", EmptyHash)
	}
}

// TestHostile: hostile documents fail with a clear error, quickly (T35).
func TestHostile(t *testing.T) {
	laughs := `a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
`
	tests := []struct {
		name string
		doc  []byte
		want string
	}{
		{"billion laughs", []byte(laughs), "excessive aliasing"},
		{"deep yaml flow", []byte(strings.Repeat("[", 100000) + strings.Repeat("]", 100000)), "exceeded max depth"},
		{"deep yaml block", []byte(deepBlock(2000)), "exceeded max depth of 1000"},
		{"deep json", []byte("{\"a\":" + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + "}"), "exceeded max depth of 1000"},
		{"huge", []byte("_format_version: \"3.0\"\n_comment: \"" + strings.Repeat("x", 33<<20) + "\"\n"), "document too large"},
		{"yaml duplicate key", []byte("_format_version: \"3.0\"\n_format_version: \"3.0\"\n"), "line 2: duplicate key '_format_version'"},
		{"json duplicate key", []byte(`{"_format_version":"3.0","services":[],"services":[]}`), "duplicate key 'services'"},
		{"several documents", []byte("_format_version: \"3.0\"\n---\n_format_version: \"3.0\"\n"), "expected a single document"},
		{"binary tag", []byte("_format_version: \"3.0\"\n_comment: !!binary aGVsbG8=\n"), "unsupported tag '!!binary'"},
		{"custom tag", []byte("_format_version: !foo \"3.0\"\n"), "unsupported tag '!foo'"},
		{"merge key", []byte("x: &x {a: 1}\ny:\n  <<: *x\n"), "merge keys (<<) are not supported"},
		{"invalid utf-8", []byte("_format_version: \"3.0\"\n_comment: \"\xff\xfe\"\n"), "invalid UTF-8"},
		{"json trailing", []byte(`{"_format_version":"3.0"} {}`), "failed parsing"},
		{"syntax", []byte("_format_version: [\n"), "failed parsing declarative configuration"},
		{"alias cycle", []byte("a: &a [*a]\n"), "failed parsing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			_, err := LoadDeclarative(tc.doc, LoadOptions{})
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("took %v", d)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("LoadDeclarative(%s) = %v, want error containing %q", tc.name, err, tc.want)
			}
		})
	}
	_, err := LoadDeclarative(make([]byte, 40<<20), LoadOptions{})
	if !errors.Is(err, ErrDocumentTooLarge) {
		t.Errorf("oversized document: %v, want ErrDocumentTooLarge", err)
	}
}

func deepBlock(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteString(strings.Repeat(" ", i) + "a:\n")
	}
	return b.String()
}

// TestAliasesWithinBudget: ordinary anchors keep working.
func TestAliasesWithinBudget(t *testing.T) {
	e := mustLoad(t, `_format_version: "3.0"
services:
- name: a
  host: a.test
  tags: &tags [team-a, prod]
- name: b
  host: b.test
  tags: *tags
`)
	if !reflect.DeepEqual(e.Services[0].Tags, e.Services[1].Tags) {
		t.Errorf("aliased tags differ: %v %v", e.Services[0].Tags, e.Services[1].Tags)
	}
}

func TestJSONDocument(t *testing.T) {
	e := mustLoad(t, `{"_format_version":"3.0","services":[{"name":"a","host":"a.test","port":8080}]}`)
	if e.Services[0].Port != 8080 {
		t.Errorf("port = %d", e.Services[0].Port)
	}
}
