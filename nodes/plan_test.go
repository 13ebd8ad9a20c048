package nodes_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/datakit-gateway/datakit/engine"
	"github.com/datakit-gateway/datakit/nodes"
)

// TestCallsOverlap: three call nodes are in flight together. Each answer
// waits (up to 5 s) until the server has seen all three requests, so the
// peak is 3 only if the calls overlap — a structural proof, not timing.
func TestCallsOverlap(t *testing.T) {
	var mu sync.Mutex
	inflight, peak := 0, 0
	all := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		inflight++
		peak = max(peak, inflight)
		if inflight == 3 {
			close(all)
		}
		mu.Unlock()
		select {
		case <-all:
		case <-time.After(5 * time.Second):
		}
		mu.Lock()
		inflight--
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"path":"`+r.URL.Path+`"}`)
	}))
	defer srv.Close()
	reg := engine.NewRegistry()
	nodes.Register(reg, nodes.Deps{Version: "test"})
	cfg := fmt.Sprintf(`
nodes:
  - {name: A, type: call, url: %[1]s/a}
  - {name: B, type: call, url: %[1]s/b}
  - {name: C, type: call, url: %[1]s/c}
  - {name: JOIN, type: jq, inputs: {a: A.body, b: B.body, c: C.body}, jq: '[.a.path, .b.path, .c.path]'}
  - {name: EXIT, type: exit, inputs: {body: JOIN}}
`, srv.URL)
	plan, err := engine.CompileBytes([]byte(cfg), reg, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	out := plan.NewRun(benchExchange{}, engine.RunOptions{}).Access(context.Background())
	if out.Err != nil || out.Exit == nil || string(out.Exit.Body) != `["/a","/b","/c"]` {
		t.Fatalf("Access = %+v", out)
	}
	if peak != 3 {
		t.Errorf("at most %d calls were in flight together, want 3", peak)
	}
}
