package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/datakit-gateway/datakit/admin"
	"github.com/datakit-gateway/datakit/engine"
	"github.com/datakit-gateway/datakit/gateway"
	"github.com/datakit-gateway/datakit/gateway/config"
	"github.com/datakit-gateway/datakit/gateway/plugins/datakit"
	"github.com/datakit-gateway/datakit/nodes"
)

// gwNode adapts a real *gateway.Gateway to admin.Node, as cmd/datakit does.
type gwNode struct {
	g        *gateway.Gateway
	plugins  *gateway.Plugins
	mu       sync.Mutex
	draining bool
	// block, when set, is received from before a load proceeds (429 test).
	block chan struct{}
	// started, when set, is closed once a load begins.
	started chan struct{}
	// loads counts LoadDeclarative calls.
	loads int
}

var _ admin.Node = (*gwNode)(nil)

func (n *gwNode) Active() (*config.Entities, string) {
	s := n.g.Snapshot()
	if s == nil {
		return nil, ""
	}
	return s.Entities(), s.Hash()
}

func (n *gwNode) LoadDeclarative(ctx context.Context, doc []byte) error {
	n.mu.Lock()
	n.loads++
	block := n.block
	if n.started != nil {
		close(n.started)
		n.started = nil
	}
	n.mu.Unlock()
	if block != nil {
		<-block
	}
	return n.g.LoadDeclarative(ctx, doc, gateway.BuildOptions{Plugins: n.plugins})
}

func (n *gwNode) Status() admin.Status {
	n.mu.Lock()
	defer n.mu.Unlock()
	st := admin.Status{Draining: n.draining, Hash: config.EmptyHash, DatabaseReachable: true, Revision: 7,
		Listeners: []admin.Listener{{Address: "127.0.0.1:8000", Bound: true}}}
	if s := n.g.Snapshot(); s != nil {
		st.Ready = true
		st.Hash = s.Hash()
		st.Empty = s.Entities() == nil || s.Entities().Count() == 0
		st.LoadedAt = time.Unix(1700000000, 0)
	}
	return st
}

// newPlugins loads the datakit plugin as e2e tests do.
func newPlugins() *gateway.Plugins {
	reg := engine.NewRegistry()
	nodes.Register(reg, nodes.Deps{Version: "test"})
	return gateway.NewPlugins(datakit.New(datakit.Options{Registry: reg, NodeID: "node-1", Version: "0.1.0"}))
}

// env is an Admin API over a real gateway.
type env struct {
	h    http.Handler
	node *gwNode
	// store is the datastore of a DB-mode env (newDBEnv); nil DB-less.
	store admin.Store
}

// newEnv starts a DB-less Admin API; doc, when not empty, is loaded first.
func newEnv(t *testing.T, doc string, mod func(*admin.Options)) *env {
	t.Helper()
	plugins := newPlugins()
	node := &gwNode{g: gateway.New(gateway.Options{Version: "test"}), plugins: plugins}
	if doc != "" {
		if err := node.LoadDeclarative(context.Background(), []byte(doc)); err != nil {
			t.Fatalf("LoadDeclarative = %v", err)
		}
	}
	opts := admin.Options{
		Database: "off", Node: node, Plugins: plugins,
		LoadedPlugins: []admin.PluginInfo{{Name: "datakit", Version: "0.1.0", Priority: 810}},
		Configuration: map[string]any{"database": "off", "admin_token": nil},
		NodeID:        "0b0c8a5e-4f36-4c39-9d3c-5f3b5e0c1a11", Hostname: "gw-1", Version: "0.1.0",
		ServerHeader: "datakit/0.1.0", LatencyHeader: true,
	}
	if mod != nil {
		mod(&opts)
	}
	return &env{h: admin.New(opts), node: node}
}

// req is one request of a behaviour table.
type req struct {
	method, path, body string
	header             map[string]string
}

// do sends a request to the handler; Host is localhost:8001 unless set.
func (e *env) do(t *testing.T, q req) *httptest.ResponseRecorder {
	t.Helper()
	method := q.method
	if method == "" {
		method = http.MethodGet
	}
	var body io.Reader
	if q.body != "" {
		body = strings.NewReader(q.body)
	}
	r := httptest.NewRequest(method, q.path, body)
	r.Host = "localhost:8001"
	for k, v := range q.header {
		if k == "Host" {
			r.Host = v
			continue
		}
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w
}

// jsonEqual compares two JSON texts by value.
func jsonEqual(t *testing.T, got, want string) bool {
	t.Helper()
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		return false
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad want JSON %q: %v", want, err)
	}
	return reflect.DeepEqual(g, w)
}

// compact renders JSON compactly for messages.
func compact(s string) string {
	var b bytes.Buffer
	if json.Compact(&b, []byte(s)) != nil {
		return s
	}
	return b.String()
}

// behaviour is one row of a behaviour table.
type behaviour struct {
	name string
	req
	status int
	// body is the exact JSON body expected; "" skips the check, "-" wants
	// an empty body.
	body   string
	header map[string]string
}

// run checks a behaviour table against an env.
func run(t *testing.T, e *env, table []behaviour) {
	t.Helper()
	for _, tc := range table {
		t.Run(tc.name, func(t *testing.T) {
			w := e.do(t, tc.req)
			if w.Code != tc.status {
				t.Errorf("%s %s = %d %s, want %d", tc.method, tc.path, w.Code, w.Body.String(), tc.status)
			}
			switch tc.body {
			case "":
			case "-":
				if w.Body.Len() != 0 {
					t.Errorf("%s %s body = %q, want empty", tc.method, tc.path, w.Body.String())
				}
			default:
				if !jsonEqual(t, w.Body.String(), tc.body) {
					t.Errorf("%s %s body = %s, want %s", tc.method, tc.path, w.Body.String(), compact(tc.body))
				}
			}
			for k, v := range tc.header {
				if got := w.Header().Get(k); got != v {
					t.Errorf("%s %s header %s = %q, want %q", tc.method, tc.path, k, got, v)
				}
			}
		})
	}
}

func httpRequest(method, path, body string) *http.Request {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.Host = "localhost:8001"
	return r
}

func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
