package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/datakit-gateway/datakit/admin"
	"github.com/datakit-gateway/datakit/engine"
	"github.com/datakit-gateway/datakit/gateway"
	"github.com/datakit-gateway/datakit/gateway/plugins/datakit"
	"github.com/datakit-gateway/datakit/gateway/plugins/keyauth"
	"github.com/datakit-gateway/datakit/gateway/store"
	"github.com/datakit-gateway/datakit/graphrun"
	"github.com/datakit-gateway/datakit/nodes"
)

const (
	graphPluginID   = "6c2e0b9f-1c4d-4a1f-8e3b-8d2f7a5b2c01"
	keyauthPluginID = "6c2e0b9f-1c4d-4a1f-8e3b-8d2f7a5b2c02"
)

// tokenExchangeConfig is spec §13.1's configuration as JSON.
func tokenExchangeConfig(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "engine", "testdata", "configs", "token_exchange.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := engine.ParseDocument(data)
	if err != nil {
		t.Fatal(err)
	}
	return mustJSON(t, doc)
}

// graphEnv starts an Admin API with the datakit and key-auth plugins, a
// §13.1 datakit plugin named token-exchange and a key-auth plugin named ka:
// from a declarative document (database = off) or written through the
// Admin API into a real SQLite store.
// graphs, when not nil, replaces the node's compiler.
func graphEnv(t *testing.T, database string, mod func(*admin.Options)) *env {
	t.Helper()
	reg := engine.NewRegistry()
	nodes.Register(reg, nodes.Deps{Version: "test"})
	plugins := gateway.NewPlugins(datakit.New(datakit.Options{Registry: reg, NodeID: "node-1", Version: "0.1.0"}),
		keyauth.New("0.1.0"))
	node := &gwNode{g: gateway.New(gateway.Options{Version: "test"}), plugins: plugins}
	opts := admin.Options{
		Database: database, Node: node, Plugins: plugins, Version: "0.1.0",
		LoadedPlugins: []admin.PluginInfo{{Name: "datakit", Version: "0.1.0", Priority: 810},
			{Name: "key-auth", Version: "0.1.0", Priority: 1250}},
		Graphs: admin.GraphsFunc(func(cfg map[string]any) (*engine.Plan, error) {
			return engine.Compile(cfg, reg, engine.Options{})
		}),
	}
	if mod != nil {
		mod(&opts)
	}
	dk := `{"id":"` + graphPluginID + `","name":"datakit","instance_name":"token-exchange","config":` + tokenExchangeConfig(t) + `}`
	ka := `{"id":"` + keyauthPluginID + `","name":"key-auth","instance_name":"ka"}`
	if database == "off" {
		doc := `{"_format_version":"3.0","plugins":[` + dk + `,` + ka + `]}`
		if err := node.LoadDeclarative(context.Background(), []byte(doc)); err != nil {
			t.Fatalf("LoadDeclarative = %v", err)
		}
		return &env{h: admin.New(opts), node: node}
	}
	st, err := store.OpenSQLite(context.Background(), store.SQLiteOptions{Path: filepath.Join(t.TempDir(), "datakit.db")})
	if err != nil {
		t.Fatalf("OpenSQLite = %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	opts.Store = st
	e := &env{h: admin.New(opts), node: node}
	e.call(t, http.MethodPost, "/plugins", dk, http.StatusCreated)
	e.call(t, http.MethodPost, "/plugins", ka, http.StatusCreated)
	return e
}

// tokenExchangeGraph is GET /plugins/{p}/graph for §13.1: the nodes and
// edges in the order of the DOT in spec/datakit.md §13.1.
const tokenExchangeGraph = `{
  "nodes": [
    {"name":"request","type":"request","phase":"access","implicit":true},
    {"name":"STATIC_INPUTS","type":"static","phase":"access","implicit":false},
    {"name":"BUILD_HEADERS","type":"jq","phase":"access","implicit":false},
    {"name":"AUTH_REQUEST","type":"call","phase":"access","implicit":false},
    {"name":"UPSTREAM_AUTH_HEADER","type":"jq","phase":"access","implicit":false},
    {"name":"service_request","type":"service_request","phase":"access","implicit":true}
  ],
  "edges": [
    {"source":"request","source_field":"query","target":"BUILD_HEADERS","target_field":"query","kind":"data"},
    {"source":"STATIC_INPUTS","source_field":"headers","target":"BUILD_HEADERS","target_field":"headers","kind":"data"},
    {"source":"STATIC_INPUTS","source_field":"body","target":"AUTH_REQUEST","target_field":"body","kind":"data"},
    {"source":"BUILD_HEADERS","source_field":"$self","target":"AUTH_REQUEST","target_field":"headers","kind":"data"},
    {"source":"AUTH_REQUEST","source_field":"body","target":"UPSTREAM_AUTH_HEADER","target_field":"$self","kind":"data"},
    {"source":"UPSTREAM_AUTH_HEADER","source_field":"$self","target":"service_request","target_field":"headers","kind":"data"}
  ],
  "phases": {
    "access": ["request","STATIC_INPUTS","BUILD_HEADERS","AUTH_REQUEST","UPSTREAM_AUTH_HEADER","service_request"],
    "response": []
  }
}`

const runMocked = `{"request":{"path":"/x","query":{"api_key":"K"},"headers":{"Authorization":"Bearer forged","X-Other":"1"}},
  "mocks":{"AUTH_REQUEST":{"status":200,"headers":{"Content-Type":"application/json"},"body":{"token_type":"Bearer","access_token":"abc"}}},
  "upstream":{"status":201,"body":"done"}}`

func TestPluginGraph(t *testing.T) {
	golden := readFile(t, filepath.Join("..", "engine", "testdata", "token_exchange.dot"))
	for _, database := range []string{"off", "sqlite"} {
		t.Run(database, func(t *testing.T) {
			e := graphEnv(t, database, nil)
			run(t, e, []behaviour{
				{name: "json by name", req: req{path: "/plugins/token-exchange/graph"}, status: 200, body: tokenExchangeGraph,
					header: map[string]string{"Content-Type": "application/json; charset=utf-8"}},
				{name: "json by id", req: req{path: "/plugins/" + graphPluginID + "/graph?format=json"}, status: 200, body: tokenExchangeGraph},
				{name: "bad format", req: req{path: "/plugins/token-exchange/graph?format=svg"}, status: 400,
					body: `{"message":"format must be one of: dot, json"}`},
				{name: "key-auth", req: req{path: "/plugins/ka/graph"}, status: 404, body: `{"message":"Not found"}`},
				{name: "key-auth by id", req: req{path: "/plugins/" + keyauthPluginID + "/graph"}, status: 404, body: `{"message":"Not found"}`},
				{name: "unknown name", req: req{path: "/plugins/nope/graph"}, status: 404, body: `{"message":"Not found"}`},
				{name: "unknown id", req: req{path: "/plugins/6c2e0b9f-1c4d-4a1f-8e3b-8d2f7a5b2cff/graph"}, status: 404, body: `{"message":"Not found"}`},
				{name: "run key-auth", req: req{method: "POST", path: "/plugins/ka/graph/run", body: `{}`,
					header: map[string]string{"Content-Type": "application/json"}}, status: 404, body: `{"message":"Not found"}`},
				{name: "live calls", req: req{method: "POST", path: "/plugins/token-exchange/graph/run", body: `{"live_calls":true}`,
					header: map[string]string{"Content-Type": "application/json"}}, status: 400, body: `{"message":"live_calls is not enabled on this node"}`},
				{name: "run bad json", req: req{method: "POST", path: "/plugins/token-exchange/graph/run", body: `{"mocks":[]}`,
					header: map[string]string{"Content-Type": "application/json"}}, status: 400, body: `{"message":"Cannot parse JSON body"}`},
				{name: "graph is GET only", req: req{method: "POST", path: "/plugins/token-exchange/graph"}, status: 405},
			})

			w := e.do(t, req{path: "/plugins/token-exchange/graph?format=dot"})
			if w.Code != 200 || w.Body.String() != golden {
				t.Errorf("GET graph?format=dot = %d\n%s\nwant 200\n%s", w.Code, w.Body, golden)
			}
			if ct := w.Header().Get("Content-Type"); ct != "text/vnd.graphviz; charset=utf-8" {
				t.Errorf("GET graph?format=dot Content-Type = %q", ct)
			}

			var got map[string]any
			w = e.do(t, req{method: "POST", path: "/plugins/token-exchange/graph/run", body: runMocked,
				header: map[string]string{"Content-Type": "application/json"}})
			if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &got) != nil {
				t.Fatalf("POST graph/run = %d %s, want 200", w.Code, w.Body)
			}
			want(t, "mocked run", []any{got["outcome"], got["service_request"], got["response"], got["calls"]}, `["proxied",
			  {"method":"GET","url":"http://localhost:8000/x?api_key=K","headers":{"Authorization":"********","Host":"localhost:8000","X-Other":"1"},"body":""},
			  {"status":201,"headers":{},"body":"done"},
			  [{"node":"AUTH_REQUEST","method":"POST","url":"http://127.0.0.1:9001/auth-token",
			    "headers":{"Content-Type":"application/x-www-form-urlencoded","User-Agent":"datakit/0.1.0","X-Api-Key":"********"},
			    "body":"client_id=my_client_id&grant_type=client_credentials"}]]`)
			trace, _ := got["trace"].(map[string]any)
			if trace["status"] != "PLAN_COMPLETE" {
				t.Errorf("mocked run trace status = %v, want PLAN_COMPLETE", trace["status"])
			}
			// The token's value never shows: the trace is redacted.
			if body := w.Body.String(); strings.Contains(body, "Bearer abc") || strings.Contains(body, "Bearer forged") {
				t.Errorf("mocked run output leaks a credential: %s", body)
			}

			w = e.do(t, req{method: "POST", path: "/plugins/token-exchange/graph/run", body: `{"request":{"path":"/x"}}`,
				header: map[string]string{"Content-Type": "application/json"}})
			got = nil
			if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &got) != nil {
				t.Fatalf("POST graph/run unmocked = %d %s, want 200", w.Code, w.Body)
			}
			if got["outcome"] != "error" || !strings.Contains(w.Body.String(), `no mock for call node \"AUTH_REQUEST\"`) {
				t.Errorf("POST graph/run unmocked = %s, want outcome error with no mock for call node \"AUTH_REQUEST\"", w.Body)
			}
			want(t, "unmocked response", []any{got["service_request"], got["response"]},
				`[null,{"status":500,"headers":{"Content-Type":"application/json"},"body":"{\"message\":\"An unexpected error occurred\",\"request_id\":\"00000000000000000000000000000000\"}"}]`)
		})
	}
}

// TestPluginGraphLiveCalls: with live_calls the unmocked call node goes
// out under the node's destination policy — here one refusing everything,
// so the run reports the refusal and nothing is dialled.
func TestPluginGraphLiveCalls(t *testing.T) {
	var asked []string
	e := graphEnv(t, "off", func(o *admin.Options) {
		o.GraphLiveCalls = &graphrun.Live{Destination: func(u *url.URL, _ bool) error {
			asked = append(asked, u.String())
			return errors.New("destination not allowed")
		}}
	})
	w := e.do(t, req{method: "POST", path: "/plugins/token-exchange/graph/run", body: `{"live_calls":true}`,
		header: map[string]string{"Content-Type": "application/json"}})
	var got struct{ Outcome string }
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &got) != nil || got.Outcome != "error" {
		t.Fatalf("POST graph/run live = %d %s, want 200 and outcome error", w.Code, w.Body)
	}
	if len(asked) != 1 || asked[0] != "http://127.0.0.1:9001/auth-token" {
		t.Errorf("the policy was asked about %v, want the token URL once", asked)
	}
}

// TestPluginGraphInvalidConfig: a configuration the node no longer compiles
// (its registry changed since the write) answers 400 code 2 as §9.8.
func TestPluginGraphInvalidConfig(t *testing.T) {
	e := graphEnv(t, "off", func(o *admin.Options) {
		o.Graphs = admin.GraphsFunc(func(cfg map[string]any) (*engine.Plan, error) {
			return engine.Compile(cfg, engine.NewRegistry(), engine.Options{})
		})
	})
	w := e.do(t, req{path: "/plugins/token-exchange/graph"})
	var got map[string]any
	if w.Code != 400 || json.Unmarshal(w.Body.Bytes(), &got) != nil {
		t.Fatalf("GET graph = %d %s, want 400", w.Code, w.Body)
	}
	fields, _ := got["fields"].(map[string]any)
	msgs, _ := fields["config"].([]any)
	if got["code"] != 2.0 || got["name"] != "schema violation" || len(msgs) == 0 {
		t.Errorf("GET graph = %s, want code 2 with an array under fields.config", w.Body)
	}
}
