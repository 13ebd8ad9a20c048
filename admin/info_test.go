package admin_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/datakit-gateway/datakit/admin"
)

func TestRoot(t *testing.T) {
	e := newEnv(t, readFile(t, "testdata/kong.yml"), nil)
	w := e.do(t, req{path: "/"})
	if w.Code != 200 {
		t.Fatalf("GET / = %d %s", w.Code, w.Body)
	}
	var got map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"tagline": "Welcome to datakit", "version": "3.11.0", "datakit_version": "0.1.0", "edition": "community",
		"hostname": "gw-1", "node_id": "0b0c8a5e-4f36-4c39-9d3c-5f3b5e0c1a11",
		"plugins": map[string]any{
			"available_on_server": map[string]any{"datakit": map[string]any{"version": "0.1.0", "priority": 810.0}},
			"enabled_in_cluster":  []any{"datakit"},
		},
		"configuration": map[string]any{"database": "off", "admin_token": nil,
			"router_flavor": "traditional_compatible", "role": "traditional"},
	}
	if !jsonEqual(t, w.Body.String(), mustJSON(t, want)) {
		t.Errorf("GET / = %s, want %s", w.Body, mustJSON(t, want))
	}
}

func TestInformationEndpoints(t *testing.T) {
	loaded := newEnv(t, readFile(t, "testdata/kong.yml"), nil)
	hash := loaded.node.g.Snapshot().Hash()
	run(t, loaded, []behaviour{
		{name: "status", req: req{path: "/status"}, status: 200, body: `{
			"server":{"connections_accepted":0,"connections_active":0,"connections_handled":0,"connections_reading":0,
				"connections_writing":0,"connections_waiting":0,"total_requests":0},
			"configuration_hash":"` + hash + `",
			"datakit":{"configuration_revision":null,"configuration_hash":"` + hash + `","configuration_loaded_at":1700000000,
				"configuration_error":null,"draining":false,"listeners":[{"address":"127.0.0.1:8000","ssl":false,"bound":true}]}}`},
		{name: "ready", req: req{path: "/status/ready"}, status: 200, body: `{"message":"ready"}`},
		{name: "plugins enabled", req: req{path: "/plugins/enabled"}, status: 200, body: `{"enabled_plugins":["datakit"]}`},
		{name: "schema unknown plugin", req: req{path: "/schemas/plugins/key-auth"}, status: 404, body: `{"message":"No plugin named 'key-auth'"}`},
		{name: "validate ok", req: req{method: http.MethodPost, path: "/schemas/plugins/validate", body: validPlugin,
			header: map[string]string{"Content-Type": jsonType}}, status: 200, body: `{"message":"schema validation successful"}`},
		{name: "validate unknown plugin", req: req{method: http.MethodPost, path: "/schemas/plugins/validate", body: `{"name":"nope"}`,
			header: map[string]string{"Content-Type": jsonType}}, status: 400, body: `{"code":2,"name":"schema violation",
			"message":"schema violation (name: plugin 'nope' not enabled; add it to the 'plugins' configuration property)",
			"fields":{"name":"plugin 'nope' not enabled; add it to the 'plugins' configuration property"}}`},
		{name: "validate invalid datakit config", req: req{method: http.MethodPost, path: "/schemas/plugins/validate",
			body:   `{"name":"datakit","config":{"nodes":[{"name":"A","type":"static","values":{"a":1}}],"debug":"yes","extra":1}}`,
			header: map[string]string{"Content-Type": jsonType}}, status: 400, body: invalidDatakitBody},
		{name: "validate form", req: req{method: http.MethodPost, path: "/schemas/plugins/validate",
			body:   "name=datakit&config.debug=true&config.nodes[1].name=A&config.nodes[1].type=static&config.nodes[1].values.a=1",
			header: map[string]string{"Content-Type": formType}}, status: 200, body: `{"message":"schema validation successful"}`},
	})

	empty := newEnv(t, "", nil)
	e := empty.node
	run(t, empty, []behaviour{
		{name: "status without snapshot", req: req{path: "/status"}, status: 200},
		{name: "ready without snapshot", req: req{path: "/status/ready"}, status: 503,
			body: `{"message":"no configuration available (empty configuration present)"}`},
	})
	e.mu.Lock()
	e.draining = true
	e.mu.Unlock()
	run(t, empty, []behaviour{
		{name: "draining", req: req{path: "/status/ready"}, status: 503, body: `{"message":"draining"}`},
	})
}

// invalidDatakitBody is the 400 for a datakit config the engine rejects:
// fields.config holds the engine's messages (§9.8).
const invalidDatakitBody = `{"code":2,"name":"schema violation",
	"message":"2 schema violations (config: debug: expected boolean, got string; config: extra: unknown field)",
	"fields":{"config":["debug: expected boolean, got string","extra: unknown field"]}}`

func TestStatusDBMode(t *testing.T) {
	e := newEnv(t, "", func(o *admin.Options) { o.Database = "sqlite" })
	w := e.do(t, req{path: "/status"})
	var got map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if _, ok := got["configuration_hash"]; ok {
		t.Errorf("GET /status in sqlite mode has configuration_hash: %s", w.Body)
	}
	if db, _ := got["database"].(map[string]any); db["reachable"] != true {
		t.Errorf("GET /status database = %v, want reachable true", got["database"])
	}
	if dk, _ := got["datakit"].(map[string]any); dk["configuration_revision"] != 7.0 {
		t.Errorf("GET /status configuration_revision = %v, want 7", dk["configuration_revision"])
	}
}

func TestEndpoints(t *testing.T) {
	e := newEnv(t, "", nil)
	w := e.do(t, req{path: "/endpoints"})
	var got struct{ Data []string }
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Data) == 0 || got.Data[0] != "/" || !slices.IsSorted(got.Data) {
		t.Fatalf("GET /endpoints = %v, want sorted with / first", got.Data)
	}
	for _, p := range []string{"/services/{services}/routes", "/services/{services}/routes/{routes}",
		"/routes/{routes}/service", "/consumers/{consumers}/key-auth", "/upstreams/{upstreams}/targets/{targets}",
		"/config", "/status/ready", "/schemas/plugins/{name}", "/key-auths/{keyauth_credentials}", "/basic-auths"} {
		if !slices.Contains(got.Data, p) {
			t.Errorf("GET /endpoints lacks %s", p)
		}
	}
	if slices.Contains(got.Data, "/targets") {
		t.Errorf("GET /endpoints lists /targets")
	}
}

func TestPluginSchema(t *testing.T) {
	e := newEnv(t, "", nil)
	w := e.do(t, req{path: "/schemas/plugins/datakit"})
	if w.Code != 200 {
		t.Fatalf("GET /schemas/plugins/datakit = %d %s", w.Code, w.Body)
	}
	var got struct {
		Fields []map[string]map[string]any
	}
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	byName := map[string]map[string]any{}
	for _, f := range got.Fields {
		for k, v := range f {
			byName[k] = v
		}
	}
	if p := byName["protocols"]; p["type"] != "set" || !jsonEqual(t, mustJSON(t, p["default"]), `["grpc","grpcs","http","https"]`) {
		t.Errorf("protocols = %v", p)
	}
	cfg := byName["config"]
	if cfg["type"] != "record" {
		t.Fatalf("config = %v, want a record", cfg)
	}
	defaults := map[string]any{}
	for _, f := range cfg["fields"].([]any) {
		for k, v := range f.(map[string]any) {
			defaults[k] = v.(map[string]any)["default"]
			if k == "nodes" && v.(map[string]any)["required"] != true {
				t.Errorf("config.nodes not required: %v", v)
			}
		}
	}
	if !jsonEqual(t, mustJSON(t, defaults), `{"nodes":null,"debug":false,"resources":null}`) {
		t.Errorf("config defaults = %v", defaults)
	}
	if _, ok := byName["consumer"]; ok {
		t.Errorf("datakit schema restricts consumer: %v", byName["consumer"])
	}
}
