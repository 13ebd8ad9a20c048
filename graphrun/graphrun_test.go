package graphrun_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"

	"github.com/datakit-gateway/datakit/graphrun"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestLiveCalls: with Live set, call nodes without a mock reach the network
// under the given destination policy and are recorded; mocked nodes and
// runs without Live never touch it.
func TestLiveCalls(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"token":"live-` + r.Header.Get("X-Req") + `"}`))
	}))
	defer srv.Close()
	doc := map[string]any{"debug": true, "nodes": []any{
		map[string]any{"name": "CALL", "type": "call", "url": srv.URL + "/token",
			"inputs": map[string]any{"headers": "STATIC"}},
		map[string]any{"name": "STATIC", "type": "static", "values": map[string]any{"X-Req": "1"}},
		map[string]any{"name": "EXIT", "type": "exit", "inputs": map[string]any{"body": "CALL.body"}},
	}}
	allowAll := &graphrun.Live{}
	refuse := &graphrun.Live{Destination: func(*url.URL, bool) error { return errors.New("destination not allowed") }}
	mocked := map[string]graphrun.Response{"CALL": {Status: 200, Headers: map[string]any{"Content-Type": "application/json"},
		Body: []byte(`{"token":"mocked"}`)}}
	for _, tc := range []struct {
		name     string
		live     *graphrun.Live
		mocks    map[string]graphrun.Response
		outcome  string
		body     string // in the response
		wantHits int32
		calls    int // recorded: a refused call never reaches the transport
	}{
		{"live", allowAll, nil, "exit", `"live-1"`, 1, 1},
		{"live refused by the policy", refuse, nil, "error", "destination not allowed", 0, 0},
		{"a mock wins over live", allowAll, mocked, "exit", `"mocked"`, 0, 1},
		{"offline", nil, nil, "error", `no mock for call node \"CALL\"`, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hits.Store(0)
			res, err := graphrun.Run(context.Background(), doc, graphrun.Request{},
				graphrun.Options{Live: tc.live, Mocks: tc.mocks, Version: "test"})
			if err != nil {
				t.Fatalf("Run = %v", err)
			}
			if res.Outcome != tc.outcome || res.Response == nil || !strings.Contains(res.Response.Body, tc.body) {
				t.Fatalf("Run = %s %+v, want %s with %q", res.Outcome, res.Response, tc.outcome, tc.body)
			}
			if got := hits.Load(); got != tc.wantHits {
				t.Errorf("the server saw %d requests, want %d", got, tc.wantHits)
			}
			if len(res.Calls) != tc.calls {
				t.Fatalf("Calls = %+v, want %d", res.Calls, tc.calls)
			}
			if tc.calls == 1 && (res.Calls[0].URL != srv.URL+"/token" || res.Calls[0].Headers["X-Req"] != "1") {
				t.Errorf("Calls = %+v, want the call recorded with its header", res.Calls)
			}
		})
	}
}
