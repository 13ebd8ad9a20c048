package datakit_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/datakit-gateway/datakit/egress"
	"github.com/datakit-gateway/datakit/engine"
	"github.com/datakit-gateway/datakit/gateway"
	"github.com/datakit-gateway/datakit/gateway/config"
	"github.com/datakit-gateway/datakit/gateway/plugins/datakit"
	"github.com/datakit-gateway/datakit/nodes"
)

// startGateway serves a declarative configuration through the real gateway
// handler with the datakit plugin and any others given.
func startGateway(t *testing.T, doc string, others ...gateway.Plugin) *httptest.Server {
	t.Helper()
	return serveGateway(t, doc, gatewayOptions{others: others})
}

// gatewayOptions adjust what serveGateway builds; the zero value is the
// gateway with default settings and no destination policy.
type gatewayOptions struct {
	// policy is wired into call nodes, kong.service.target and the proxy's
	// target dials as serve does; nil checks nothing.
	policy *egress.Policy
	// deps are the node settings; Version, the policy hooks and Logger are
	// filled in.
	deps   nodes.Deps
	engine engine.Options
	limits gateway.Limits
	// logs receives every log record as JSON at debug level; nil discards.
	logs      io.Writer
	accessLog bool
	// metrics records the datakit plugin's metrics; nil records nothing.
	metrics datakit.Metrics
	others  []gateway.Plugin
	// readBytes, if non-nil, counts the bytes the gateway reads from its
	// client connections.
	readBytes *atomic.Int64
}

// serveGateway serves doc through the real gateway handler built with o.
func serveGateway(t *testing.T, doc string, o gatewayOptions) *httptest.Server {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	if o.logs != nil {
		logger = slog.New(slog.NewJSONHandler(o.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	deps := o.deps
	if deps.Version == "" {
		deps.Version = "test"
	}
	deps.Logger = logger
	if deps.Caches == nil {
		deps.Caches = nodes.NewCacheStores()
		t.Cleanup(func() { _ = deps.Caches.Close() })
	}
	dk := datakit.Options{Registry: engine.NewRegistry(), NodeID: "node-1", Engine: o.engine, Metrics: o.metrics}
	build := gateway.BuildOptions{Limits: o.limits, Logger: logger}
	if p := o.policy; p != nil {
		deps.CallDestination, deps.CallDialControl = p.CheckURL, p.ControlHost
		dk.TargetDestination = func(host string, port uint16) error { return p.CheckHost(host, port, true) }
		build.TargetControl = func(host string) func(network, address string, c syscall.RawConn) error {
			return p.ControlHost(host, true)
		}
	}
	nodes.Register(dk.Registry, deps)
	build.Plugins = gateway.NewPlugins(append(o.others, datakit.New(dk))...)
	ents, err := config.LoadDeclarative([]byte(doc), config.LoadOptions{Plugins: build.Plugins})
	if err != nil {
		t.Fatalf("LoadDeclarative = %v", err)
	}
	snap, err := gateway.Build(context.Background(), ents, build)
	if err != nil {
		t.Fatalf("Build = %v", err)
	}
	g := gateway.New(gateway.Options{Version: "test", Logger: logger, AccessLog: o.accessLog})
	g.Swap(snap)
	srv := httptest.NewUnstartedServer(g.Handler(gateway.Listener{Port: 8000}))
	if o.readBytes != nil {
		srv.Listener = &countingListener{Listener: srv.Listener, n: o.readBytes}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// recorded is what a mock server saw.
type recorded struct {
	mu   sync.Mutex
	reqs []*http.Request
	body []string
}

func (r *recorded) add(req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.reqs = append(r.reqs, req)
	r.body = append(r.body, string(b))
	r.mu.Unlock()
}

func (r *recorded) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.reqs)
}

// mock answers JSON after recording the request.
func mock(t *testing.T, status int, body string, delay time.Duration) (*httptest.Server, *recorded) {
	t.Helper()
	rec := &recorded{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.add(r)
		if delay > 0 {
			time.Sleep(delay)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, rec
}

func get(t *testing.T, url string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

const tokenExchange = `
_format_version: "3.0"
services:
  - name: api
    url: {{UPSTREAM}}
    routes: [{name: r, paths: ["/"]}]
    plugins:
      - name: datakit
        config:
          debug: {{DEBUG}}
          nodes:
            - name: STATIC_INPUTS
              type: static
              values:
                headers: {Content-Type: application/x-www-form-urlencoded}
                body: {grant_type: client_credentials, client_id: my_client_id}
            - name: BUILD_HEADERS
              type: jq
              inputs: {headers: STATIC_INPUTS.headers, query: request.query}
              jq: '.headers * {"X-Api-Key": (.query.api_key // "none")}'
            - name: AUTH_REQUEST
              type: call
              method: POST
              url: {{TOKEN}}/auth-token
              inputs: {headers: BUILD_HEADERS, body: STATIC_INPUTS.body}
            - name: UPSTREAM_AUTH_HEADER
              type: jq
              input: AUTH_REQUEST.body
              output: service_request.headers
              jq: '{Authorization: (.token_type + " " + .access_token)}'
`

func TestTokenExchange(t *testing.T) {
	token, tokenRec := mock(t, 200, `{"token_type":"Bearer","access_token":"abc"}`, 0)
	upstream, upRec := mock(t, 200, `{"ok":true}`, 0)
	doc := strings.NewReplacer("{{UPSTREAM}}", upstream.URL, "{{TOKEN}}", token.URL, "{{DEBUG}}", "false").Replace(tokenExchange)
	gw := startGateway(t, doc)

	resp, body := get(t, gw.URL+"/x?api_key=K", http.Header{"Authorization": {"Bearer forged"}, "X-Other": {"1"}})
	if resp.StatusCode != 200 || body != `{"ok":true}` {
		t.Fatalf("GET /x = %d %q, want 200 upstream body", resp.StatusCode, body)
	}
	if tokenRec.count() != 1 {
		t.Fatalf("token service saw %d requests, want 1", tokenRec.count())
	}
	tr := tokenRec.reqs[0]
	for name, want := range map[string]string{
		"Content-Type": "application/x-www-form-urlencoded", "X-Api-Key": "K", "User-Agent": "datakit/test",
		"Authorization": "", "X-Other": "",
	} {
		if got := tr.Header.Get(name); got != want {
			t.Errorf("token request %s = %q, want %q", name, got, want)
		}
	}
	if tr.Method != "POST" || tr.URL.Path != "/auth-token" || tokenRec.body[0] != "client_id=my_client_id&grant_type=client_credentials" {
		t.Errorf("token request = %s %s %q", tr.Method, tr.URL.Path, tokenRec.body[0])
	}
	ur := upRec.reqs[0]
	if ur.URL.Path != "/x" || ur.URL.RawQuery != "api_key=K" || ur.Header.Get("Authorization") != "Bearer abc" || ur.Header.Get("X-Other") != "1" {
		t.Errorf("upstream request = %s?%s Authorization=%q X-Other=%q", ur.URL.Path, ur.URL.RawQuery,
			ur.Header.Get("Authorization"), ur.Header.Get("X-Other"))
	}
}

func TestTokenExchangeFailure(t *testing.T) {
	for _, debug := range []bool{false, true} {
		token, _ := mock(t, 403, `{"code":403}`, 0)
		upstream, upRec := mock(t, 200, `{}`, 0)
		d := "false"
		if debug {
			d = "true"
		}
		doc := strings.NewReplacer("{{UPSTREAM}}", upstream.URL, "{{TOKEN}}", token.URL, "{{DEBUG}}", d).Replace(tokenExchange)
		gw := startGateway(t, doc)
		resp, body := get(t, gw.URL+"/x", nil)
		if resp.StatusCode != 500 || upRec.count() != 0 {
			t.Fatalf("debug=%v: status %d, upstream saw %d; want 500 and 0", debug, resp.StatusCode, upRec.count())
		}
		var got map[string]any
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatalf("body %q: %v", body, err)
		}
		id := resp.Header.Get("X-Kong-Request-Id")
		if got["request_id"] != id || len(id) != 32 {
			t.Errorf("request_id = %v, header %q", got["request_id"], id)
		}
		want := map[string]any{"message": "An unexpected error occurred", "request_id": id}
		if debug {
			want = map[string]any{"error": "non-2XX response code: 403", "message": "node execution error",
				"node": map[string]any{"index": float64(3), "name": "AUTH_REQUEST", "type": "call"}, "request_id": id}
		}
		if b1, b2 := mustJSON(got), mustJSON(want); b1 != b2 {
			t.Errorf("debug=%v: body = %s, want %s", debug, b1, b2)
		}
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestCombineTwoAPIsInParallel(t *testing.T) {
	var inflight, overlap atomic.Int32
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if inflight.Add(1) > 1 {
			overlap.Store(1)
		}
		time.Sleep(50 * time.Millisecond)
		if inflight.Load() > 1 {
			overlap.Store(1)
		}
		inflight.Add(-1)
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/json" {
			_, _ = io.WriteString(w, `{"slideshow":{"author":"Yours Truly"}}`)
			return
		}
		_, _ = io.WriteString(w, `{"uuid":"0b7e2a40"}`)
	}))
	t.Cleanup(api.Close)
	upstream, upRec := mock(t, 200, `{}`, 0)
	doc := `
_format_version: "3.0"
services:
  - name: api
    url: ` + upstream.URL + `
    routes: [{name: r, paths: ["/"]}]
    plugins:
      - name: datakit
        config:
          nodes:
            - {name: AUTHOR, type: call, url: ` + api.URL + `/json}
            - {name: UUID, type: call, url: ` + api.URL + `/uuid}
            - name: JOIN
              type: jq
              inputs: {input1: AUTHOR.body, input2: UUID.body}
              jq: '{author: .input1.slideshow.author, uuid: .input2.uuid}'
            - {name: EXIT, type: exit, status: 200, inputs: {body: JOIN}}
`
	gw := startGateway(t, doc)
	resp, body := get(t, gw.URL+"/anything", nil)
	if resp.StatusCode != 200 || body != `{"author":"Yours Truly","uuid":"0b7e2a40"}` || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /anything = %d %q (%s)", resp.StatusCode, body, resp.Header.Get("Content-Type"))
	}
	if upRec.count() != 0 {
		t.Errorf("upstream saw %d requests, want 0", upRec.count())
	}
	if overlap.Load() != 1 {
		t.Errorf("the two calls never were in flight together")
	}
}

func TestReshapeUpstreamResponse(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(201)
		_, _ = io.WriteString(w, `{"a":1}`)
	}))
	t.Cleanup(upstream.Close)
	doc := `
_format_version: "3.0"
services:
  - name: api
    url: ` + upstream.URL + `
    routes: [{name: r, paths: ["/"]}]
    plugins:
      - name: datakit
        config:
          debug: true
          nodes:
            - name: RESHAPE
              type: jq
              inputs: {body: service_response.body, status: service_response.status}
              jq: '{data: .body, upstream_status: .status}'
              output: response.body
            - {name: TAG, type: static, values: {X-Reshaped: "yes"}, output: response.headers}
`
	gw := startGateway(t, doc)
	resp, body := get(t, gw.URL+"/", nil)
	if resp.StatusCode != 201 || body != `{"data":{"a":1},"upstream_status":201}` || resp.Header.Get("X-Reshaped") != "yes" {
		t.Fatalf("GET / = %d %q X-Reshaped=%q", resp.StatusCode, body, resp.Header.Get("X-Reshaped"))
	}
	if resp.ContentLength != int64(len(body)) {
		t.Errorf("Content-Length = %d, want %d", resp.ContentLength, len(body))
	}

	resp, body = get(t, gw.URL+"/", http.Header{"X-Datakit-Debug-Trace": {"1"}})
	var tr engine.Trace
	if err := json.Unmarshal([]byte(body), &tr); err != nil {
		t.Fatalf("trace body %q: %v", body, err)
	}
	phases := map[string]string{}
	statuses := map[string]string{}
	for _, n := range tr.Nodes {
		phases[n.Name], statuses[n.Name] = n.Phase, n.Status
	}
	if resp.StatusCode != 201 || phases["RESHAPE"] != "response" || phases["TAG"] != "access" || statuses["response"] != "NODE_SKIPPED" {
		t.Errorf("traced: status %d, phases %v, statuses %v", resp.StatusCode, phases, statuses)
	}
}

func TestNoRoute(t *testing.T) {
	gw := startGateway(t, `_format_version: "3.0"`)
	resp, body := get(t, gw.URL+"/nothing", nil)
	id := resp.Header.Get("X-Kong-Request-Id")
	want := "{\n  \"message\":\"no Route matched with those values\",\n  \"request_id\":\"" + id + "\"\n}"
	if resp.StatusCode != 404 || body != want {
		t.Errorf("GET /nothing = %d %q, want 404 %q", resp.StatusCode, body, want)
	}
}

// TestStoredConfigHasDefaults: the configuration as stored carries the
// schema's debug default, as decK expects after filling defaults.
func TestStoredConfigHasDefaults(t *testing.T) {
	reg := engine.NewRegistry()
	nodes.Register(reg, nodes.Deps{})
	plugins := gateway.NewPlugins(datakit.New(datakit.Options{Registry: reg}))
	cfg, err := plugins.ValidatePluginConfig(config.Plugin{Name: "datakit", Config: map[string]any{
		"nodes": []any{map[string]any{"name": "S", "type": "static", "values": map[string]any{"a": 1}}}}})
	if err != nil || cfg["debug"] != false || cfg["nodes"] == nil {
		t.Errorf("ValidatePluginConfig = %v, %v; want debug false and the nodes kept", cfg, err)
	}
}
