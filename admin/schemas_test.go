package admin_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// entityNames are the collections of §3 by schema name.
var entityNames = []string{"services", "routes", "consumers", "plugins", "upstreams", "targets",
	"certificates", "snis", "keyauth_credentials"}

// TestEntitySchemasGolden pins GET /schemas/{entity} for every collection.
func TestEntitySchemasGolden(t *testing.T) {
	e := newEnv(t, "", nil)
	for _, name := range entityNames {
		t.Run(name, func(t *testing.T) {
			w := e.do(t, req{path: "/schemas/" + name})
			if w.Code != 200 {
				t.Fatalf("GET /schemas/%s = %d %s", name, w.Code, w.Body)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, w.Body.Bytes(), "", "  "); err != nil {
				t.Fatal(err)
			}
			pretty.WriteByte('\n')
			path := filepath.Join("testdata", "schemas", name+".json")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, pretty.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if want := readFile(t, path); pretty.String() != want {
				t.Errorf("GET /schemas/%s = %s\nwant %s (run go test -update)", name, pretty.String(), want)
			}
		})
	}
}

// kongSchema is the part of Kong's record format decK reads.
type kongSchema struct {
	Fields       []map[string]map[string]any `json:"fields"`
	EntityChecks []map[string]any            `json:"entity_checks"`
}

func (s kongSchema) field(name string) map[string]any {
	for _, f := range s.Fields {
		if a, ok := f[name]; ok {
			return a
		}
	}
	return nil
}

// flattenDefaults does what go-kong's FillEntityDefaults does with a schema:
// record fields recurse, every other field gives its default or null.
func flattenDefaults(fields []any) map[string]any {
	out := map[string]any{}
	for _, f := range fields {
		for name, attrs := range f.(map[string]any) {
			a := attrs.(map[string]any)
			if a["type"] == "record" && a["fields"] != nil {
				out[name] = flattenDefaults(a["fields"].([]any))
				continue
			}
			out[name] = a["default"]
		}
	}
	return out
}

// TestEntitySchemaDefaultsMatchStore checks that the defaults decK fills
// from a schema are what the Admin API stores for an entity created without
// them: a decK diff right after a sync then finds nothing to change.
func TestEntitySchemaDefaultsMatchStore(t *testing.T) {
	e := newDBEnv(t, nil)
	e.call(t, "POST", "/upstreams", `{"name":"up.internal"}`, 201)
	cases := []struct{ entity, create, path string }{
		{"services", `{"name":"s","host":"s.test"}`, "/services"},
		{"routes", `{"name":"r","paths":["/r"]}`, "/routes"},
		{"upstreams", `{"name":"u.internal"}`, "/upstreams"},
		{"targets", `{"target":"10.0.0.9:80"}`, "/upstreams/up.internal/targets"},
		{"consumers", `{"username":"c"}`, "/consumers"},
	}
	for _, tc := range cases {
		t.Run(tc.entity, func(t *testing.T) {
			var schema map[string]any
			w := e.do(t, req{path: "/schemas/" + tc.entity})
			if err := json.Unmarshal(w.Body.Bytes(), &schema); err != nil {
				t.Fatal(err)
			}
			defaults := flattenDefaults(schema["fields"].([]any))
			stored := e.call(t, "POST", tc.path, tc.create, 201)
			var input map[string]any
			_ = json.Unmarshal([]byte(tc.create), &input)
			for k, d := range defaults {
				if _, given := input[k]; given || d == nil {
					continue
				}
				if !jsonEqual(t, mustJSON(t, stored[k]), mustJSON(t, d)) {
					t.Errorf("%s.%s: schema default %s, stored %s", tc.entity, k, mustJSON(t, d), mustJSON(t, stored[k]))
				}
			}
		})
	}
}

func TestEntitySchemaEndpoints(t *testing.T) {
	for _, mode := range []string{"off", "sqlite"} {
		t.Run(mode, func(t *testing.T) {
			e := newEnv(t, "", nil)
			if mode == "sqlite" {
				e = newDBEnv(t, nil)
			}
			js := map[string]string{"Content-Type": "application/json"}
			run(t, e, []behaviour{
				{name: "unknown", req: req{path: "/schemas/widgets"}, status: 404,
					body: `{"message":"No entity named 'widgets'"}`},
				{name: "admin path is not a schema name", req: req{path: "/schemas/key-auths"}, status: 404,
					body: `{"message":"No entity named 'key-auths'"}`},
				{name: "plugins entity", req: req{path: "/schemas/plugins"}, status: 200},
				{name: "plugin subschema still served", req: req{path: "/schemas/plugins/datakit"}, status: 200},
				{name: "valid service", req: req{method: "POST", path: "/schemas/services/validate",
					body: `{"name":"a","url":"http://a.test"}`, header: js}, status: 200,
					body: `{"message":"schema validation successful"}`},
				{name: "invalid service", req: req{method: "POST", path: "/schemas/services/validate",
					body: `{"path":"x"}`, header: js}, status: 400,
					body: `{"code":2,"name":"schema violation","message":"2 schema violations (host: required field missing; path: should start with: /)","fields":{"host":"required field missing","path":"should start with: /"}}`},
				{name: "foreign keys stay unresolved", req: req{method: "POST", path: "/schemas/routes/validate",
					body: `{"paths":["/a"],"service":{"name":"nowhere"}}`, header: js}, status: 200},
				{name: "key-auth needs a consumer", req: req{method: "POST", path: "/schemas/keyauth_credentials/validate",
					body: `{"key":"k"}`, header: js}, status: 400},
				{name: "form body", req: req{method: "POST", path: "/schemas/consumers/validate",
					body: "username=alice", header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}},
					status: 200},
				{name: "consumer check", req: req{method: "POST", path: "/schemas/consumers/validate", body: `{}`, header: js},
					status: 400, body: `{"code":2,"name":"schema violation","message":"schema violation (at least one of these fields must be non-empty: 'custom_id', 'username')","fields":{"@entity":["at least one of these fields must be non-empty: 'custom_id', 'username'"]}}`},
				{name: "unknown validate", req: req{method: "POST", path: "/schemas/widgets/validate", body: `{}`, header: js},
					status: 404},
				{name: "validate is POST only", req: req{path: "/schemas/services/validate"}, status: 405},
			})
			if mode == "sqlite" {
				if w := e.do(t, req{path: "/services"}); !jsonEqual(t, w.Body.String(), `{"data":[],"next":null}`) {
					t.Errorf("validate stored something: %s", w.Body)
				}
			}
		})
	}
}

// TestEntitySchemaAttributes spot-checks attributes derived from the
// decoders against §3.
func TestEntitySchemaAttributes(t *testing.T) {
	e := newEnv(t, "", nil)
	get := func(name string) kongSchema {
		var s kongSchema
		if err := json.Unmarshal(e.do(t, req{path: "/schemas/" + name}).Body.Bytes(), &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	svc, rt, up, tg, ka := get("services"), get("routes"), get("upstreams"), get("targets"), get("keyauth_credentials")
	checks := []struct {
		what string
		got  any
		want string
	}{
		{"services.port", svc.field("port"), `{"type":"integer","default":80,"between":[0,65535]}`},
		{"services.protocol", svc.field("protocol"), `{"type":"string","default":"http","one_of":["http","https"]}`},
		{"services.host", svc.field("host"), `{"type":"string","required":true}`},
		{"services.name", svc.field("name"), `{"type":"string","unique":true}`},
		{"services.id", svc.field("id"), `{"type":"string","uuid":true,"auto":true}`},
		{"services.ca_certificates", svc.field("ca_certificates"), `{"type":"array","eq":null,"elements":{"type":"string"}}`},
		{"services.client_certificate", svc.field("client_certificate"), `{"type":"foreign","reference":"certificates"}`},
		{"routes.protocols", rt.field("protocols"), `{"type":"set","default":["http","https"],"elements":{"type":"string","one_of":["http","https"]}}`},
		{"routes.service", rt.field("service"), `{"type":"foreign","reference":"services"}`},
		{"upstreams.algorithm.one_of", up.field("algorithm")["one_of"], `["consistent-hashing","least-connections","round-robin"]`},
		{"targets.weight", tg.field("weight"), `{"type":"integer","default":100,"between":[0,65535]}`},
		{"targets.upstream", tg.field("upstream"), `{"type":"foreign","reference":"upstreams","required":true}`},
		{"keyauth_credentials.key", ka.field("key"), `{"type":"string","unique":true,"auto":true}`},
		{"consumers checks", get("consumers").EntityChecks, `[{"at_least_one_of":["custom_id","username"]}]`},
	}
	for _, c := range checks {
		if !jsonEqual(t, mustJSON(t, c.got), c.want) {
			t.Errorf("%s = %s, want %s", c.what, mustJSON(t, c.got), c.want)
		}
	}
}
