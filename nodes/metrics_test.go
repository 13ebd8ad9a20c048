package nodes

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/datakit-gateway/datakit/engine"
)

// metricsRecorder is a plan's engine.Recorder that also takes the node
// types' Metrics, keeping what they report in order.
type metricsRecorder struct {
	mu     sync.Mutex
	events []string
}

var _ Metrics = (*metricsRecorder)(nil)

func (r *metricsRecorder) NodeDone(string, string, string, time.Duration) {}

func (r *metricsRecorder) CallDone(node, code string) { r.add("call " + node + " " + code) }

func (r *metricsRecorder) CacheLookup(node, result string) { r.add("cache " + node + " " + result) }

func (r *metricsRecorder) add(e string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

// take returns the events so far and forgets them.
func (r *metricsRecorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.events
	r.events = nil
	return e
}

// compileWith compiles cfg with the node types over stores, recording into
// rec.
func compileWith(t *testing.T, cfg string, stores *CacheStores, rec engine.Recorder) *engine.Plan {
	t.Helper()
	reg := engine.NewRegistry()
	Register(reg, Deps{Version: "test", Caches: stores})
	plan, err := engine.CompileBytes([]byte(cfg), reg, engine.Options{PluginID: "metrics", Recorder: rec})
	if err != nil {
		t.Fatal(err)
	}
	return plan
}

func access(plan *engine.Plan) engine.Outcome {
	return plan.NewRun(&fakeExchange{}, engine.RunOptions{}).Access(context.Background())
}

// TestCallMetrics: a call node reports its final status code, or "error"
// when no response came or its code is outside 100–599; a node that fails
// before sending reports nothing.
func TestCallMetrics(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/"))
		w.WriteHeader(code)
	}))
	defer srv.Close()
	blocking, _ := blockingServer(t)
	closed := fmt.Sprintf("http://127.0.0.1:%d/", closedPort(t))
	tests := []struct {
		name string
		call string // the CALL node's attributes
		want []string
	}{
		{"created", "url: " + srv.URL + "/201", []string{"call CALL 201"}},
		{"non-2xx", "url: " + srv.URL + "/503", []string{"call CALL 503"}},
		{"retried, counted once", "url: " + srv.URL + "/503, retries: 1", []string{"call CALL 503"}},
		{"code outside 100-599", "url: " + srv.URL + "/799", []string{"call CALL error"}},
		{"connection refused", "url: " + closed, []string{"call CALL error"}},
		{"timeout", "url: " + blocking.URL + ", timeout: 50", []string{"call CALL error"}},
		{"not sent", "inputs: {url: BAD.u}", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &metricsRecorder{}
			plan := compileWith(t, "nodes:\n"+
				"  - {name: BAD, type: static, values: {u: 'not a url'}}\n"+
				"  - {name: CALL, type: call, "+tt.call+"}\n", nil, rec)
			out := access(plan)
			if got := rec.take(); !slices.Equal(got, tt.want) {
				t.Errorf("call metrics = %q, want %q (outcome %+v)", got, tt.want, out)
			}
		})
	}
}

// TestCacheMetrics: each cache GET is a hit or a miss (spec §13.7's
// cache-or-fetch: a miss, the call, then a hit); a bypassed backend error is
// the miss the graph sees; a failed GET and a SET are not lookups.
func TestCacheMetrics(t *testing.T) {
	mock := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{}`)
	}))
	defer mock.Close()
	stores, _ := newTestStores(t)
	rec := &metricsRecorder{}
	plan := compileWith(t, fmt.Sprintf(cacheOrFetch, cacheMemory, mock.URL), stores, rec)
	for i, want := range [][]string{{"cache GET miss", "call DATA 200"}, {"cache GET hit"}} {
		if out := access(plan); out.Err != nil || out.Exit == nil {
			t.Fatalf("run %d: Access = %+v, want an exit", i, out)
		}
		if got := rec.take(); !slices.Equal(got, want) {
			t.Errorf("run %d: metrics = %q, want %q", i, got, want)
		}
	}

	down := fmt.Sprintf(`
resources: {cache: {strategy: redis, redis: {host: 127.0.0.1, port: %d}}}
nodes:
  - {name: K, type: static, values: {key: k}}
  - {name: GET, type: cache, input: K, bypass_on_error: %%t}
`, closedPort(t))
	for _, bypass := range []bool{true, false} {
		plan := compileWith(t, fmt.Sprintf(down, bypass), stores, rec)
		out := access(plan)
		var want []string
		if bypass {
			want = []string{"cache GET miss"}
		}
		if got := rec.take(); (out.Err == nil) != bypass || !slices.Equal(got, want) {
			t.Errorf("Redis down, bypass_on_error %t: metrics %q, error %v; want %q", bypass, got, out.Err, want)
		}
	}
}
