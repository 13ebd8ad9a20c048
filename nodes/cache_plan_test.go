package nodes

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/datakit-gateway/datakit/engine"
)

// cacheOrFetch is spec §13.7 with the mock's URL and a strategy.
const cacheOrFetch = `
resources: {cache: {strategy: %s}}
nodes:
  - {name: CACHE_KEY_GET, type: static, values: {key: cache key}}
  - {name: GET, type: cache, input: CACHE_KEY_GET, ttl: 200}
  - {name: branch, type: branch, input: GET.miss, then: [DATA, SET, EXIT_MISS], else: [EXIT_HIT]}
  - {name: DATA, type: call, url: %s/anything}
  - name: VALUES
    type: static
    values: {hit: {x-hit: true}, ttl: 100, miss: {x-miss: true}, key: cache key}
  - {name: SET, type: cache, inputs: {key: VALUES.key, data: DATA, ttl: VALUES.ttl}}
  - {name: EXIT_MISS, type: exit, status: 200, inputs: {headers: VALUES.miss, body: DATA}}
  - {name: EXIT_HIT, type: exit, status: 200, inputs: {headers: VALUES.hit, body: GET.data}}
`

func TestCacheOrFetch(t *testing.T) {
	for _, strategy := range []string{cacheMemory, cacheRedis} {
		t.Run(strategy, func(t *testing.T) {
			pluginID := "local-" + strategy
			if strategy == cacheRedis {
				_, pluginID = redisForTest(t)
			}
			var calls atomic.Int32
			mock := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, `{"url":"`+r.URL.Path+`"}`)
			}))
			defer mock.Close()
			stores, _ := newTestStores(t)
			reg := engine.NewRegistry()
			Register(reg, Deps{Version: "test", Caches: stores})
			plan, err := engine.CompileBytes([]byte(fmt.Sprintf(cacheOrFetch, strategy, mock.URL)), reg, engine.Options{PluginID: pluginID})
			if err != nil {
				t.Fatal(err)
			}
			run := func() (*engine.Response, map[string]string) {
				t.Helper()
				r := plan.NewRun(&fakeExchange{}, engine.RunOptions{Trace: true})
				out := r.Access(context.Background())
				if out.Err != nil || out.Abort != nil || out.Exit == nil {
					t.Fatalf("Access = %+v, want an exit", out)
				}
				status := map[string]string{}
				for _, n := range r.Trace().Nodes {
					status[n.Name] = n.Status
				}
				return out.Exit, status
			}

			first, status := run()
			if first.Status != 200 || headerValue(first, "X-Miss") != "true" || headerValue(first, "X-Hit") != "" {
				t.Errorf("first response: %d %+v, want 200 with X-Miss: true", first.Status, first.Headers)
			}
			body, err := engine.DecodeJSON(first.Body)
			if err != nil {
				t.Fatalf("first body %q: %v", first.Body, err)
			}
			obj, _ := body.(map[string]any)
			if obj["status"] != 200 || obj["raw_body"] != `{"url":"/anything"}` || fmt.Sprint(obj["body"]) != "map[url:/anything]" || obj["headers"] == nil {
				t.Errorf("first body = %s, want DATA's node-wise output", first.Body)
			}
			for _, n := range []string{"GET", "DATA", "SET", "EXIT_MISS"} {
				if status[n] != "NODE_COMPLETE" {
					t.Errorf("first run: %s = %s, want NODE_COMPLETE", n, status[n])
				}
			}
			if status["EXIT_HIT"] != "NODE_SKIPPED" {
				t.Errorf("first run: EXIT_HIT = %s, want NODE_SKIPPED", status["EXIT_HIT"])
			}

			second, status := run()
			if second.Status != 200 || headerValue(second, "X-Hit") != "true" || headerValue(second, "X-Miss") != "" {
				t.Errorf("second response: %d %+v, want 200 with X-Hit: true", second.Status, second.Headers)
			}
			if string(second.Body) != string(first.Body) {
				t.Errorf("second body = %s, want %s", second.Body, first.Body)
			}
			for _, n := range []string{"DATA", "SET", "EXIT_MISS"} {
				if status[n] != "NODE_SKIPPED" {
					t.Errorf("second run: %s = %s, want NODE_SKIPPED", n, status[n])
				}
			}
			if status["EXIT_HIT"] != "NODE_COMPLETE" {
				t.Errorf("second run: EXIT_HIT = %s, want NODE_COMPLETE", status["EXIT_HIT"])
			}
			if n := calls.Load(); n != 1 {
				t.Errorf("the mock saw %d requests, want 1", n)
			}
		})
	}
}

func headerValue(r *engine.Response, name string) string {
	for _, l := range r.Headers {
		if l.Name == name {
			return strings.Join(l.Values, ", ")
		}
	}
	return ""
}

func TestCacheConfigErrors(t *testing.T) {
	tests := []struct {
		name, cfg string
		want      []string
	}{
		{"no resources", `
nodes:
  - {name: C, type: cache, inputs: {key: request.path}}
`, []string{`nodes[0] "C" (cache): type: cache nodes require resources.cache.strategy`}},
		{"no strategy", `
resources: {cache: {memory: {dictionary_name: d}}}
nodes:
  - {name: C, type: cache, inputs: {key: request.path}}
  - {name: D, type: cache, inputs: {key: request.path}, ttl: 0}
`, []string{
			`nodes[0] "C" (cache): type: cache nodes require resources.cache.strategy`,
			`nodes[1] "D" (cache): type: cache nodes require resources.cache.strategy`,
			`nodes[1] "D" (cache): ttl: must be at least 1, got 0`,
		}},
		{"resource errors", `
resources:
  cache:
    strategy: redis
    redis: {port: 99999, sentinel_master: m, cluster_max_redirections: 5, connection_is_proxied: false, sentinel_nodes: null, db: 1}
nodes:
  - {name: C, type: cache, inputs: {key: request.path}}
`, []string{
			`resources.cache.redis.port: must be between 0 and 65535, got 99999`,
			`resources.cache.redis.sentinel_master: not supported`,
			`resources.cache.redis.db: unknown field`,
		}},
		{"invalid strategy reported once", `
resources: {cache: {strategy: disk}}
nodes:
  - {name: C, type: cache, inputs: {key: request.path}}
`, []string{`resources.cache.strategy: must be one of: memory, redis; got "disk"`}},
		{"fields", `
resources: {cache: {strategy: memory}}
nodes:
  - {name: C, type: cache, inputs: {key: request.path, value: request.body}, outputs: {found: response.body}}
  - {name: S, type: static, values: {n: 1}}
  - {name: D, type: cache, inputs: {key: S.n, ttl: S.n, data: S}, outputs: {hit: response.body}}
`, []string{
			`nodes[0] "C" (cache): inputs.value: unknown input field "value"; expected one of: key, ttl, data`,
			`nodes[0] "C" (cache): outputs.found: unknown output field "found"; expected one of: hit, miss, stored, data`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := engine.NewRegistry()
			Register(reg, Deps{Caches: NewCacheStores()}) // validation builds nothing
			_, err := engine.CompileBytes([]byte(tt.cfg), reg, engine.Options{})
			var got []string
			if ce, ok := err.(*engine.ConfigError); ok {
				got = ce.Messages
			} else if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("errors =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// Without cache nodes, resources.cache needs no strategy.
func TestCacheResourceWithoutCacheNodes(t *testing.T) {
	reg := engine.NewRegistry()
	stores := NewCacheStores()
	defer stores.Close()
	Register(reg, Deps{Caches: stores})
	if _, err := engine.CompileBytes([]byte("resources: {cache: {memory: {dictionary_name: x}}}\nnodes: [{name: S, type: static, values: {a: 1}}]\n"), reg, engine.Options{}); err != nil {
		t.Errorf("CompileBytes = %v", err)
	}
}
