package nodes_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/itchyny/gojq"

	"github.com/datakit-gateway/datakit/engine"
	"github.com/datakit-gateway/datakit/nodes"
)

// benchExchange is a minimal request for plan benchmarks.
type benchExchange struct{}

func (benchExchange) Request(_ context.Context, field string) (any, error) {
	switch field {
	case "headers":
		return map[string]any{"Host": "gw.test", "User-Agent": "bench", "X-Tenant": "t1"}, nil
	case "query":
		return map[string]any{"api_key": "K"}, nil
	}
	return nil, nil
}
func (benchExchange) ServiceResponse(context.Context, string) (any, error) { return nil, nil }
func (benchExchange) ApplyServiceRequest(*engine.Message) error            { return nil }
func (benchExchange) ApplyResponse(*engine.Message) error                  { return nil }
func (benchExchange) Property(string) (any, error)                         { return "10.0.0.1", nil }
func (benchExchange) SetProperty(_ string, v any) (any, error)             { return v, nil }

func compilePlan(b *testing.B, cfg string) *engine.Plan {
	b.Helper()
	reg := engine.NewRegistry()
	nodes.Register(reg, nodes.Deps{Version: "bench"})
	plan, err := engine.CompileBytes([]byte(cfg), reg, engine.Options{})
	if err != nil {
		b.Fatal(err)
	}
	return plan
}

func runPlan(b *testing.B, plan *engine.Plan) {
	b.Helper()
	b.ReportAllocs()
	ctx := context.Background()
	for b.Loop() {
		out := plan.NewRun(benchExchange{}, engine.RunOptions{}).Access(ctx)
		if out.Err != nil || out.Abort != nil {
			b.Fatalf("Access = %+v", out)
		}
	}
}

// The two filters of the pure graph; BenchmarkPurePlanJQOnly runs just them
// with gojq, so the engine's overhead is the difference.
const (
	pureFilter1 = `.headers * {"X-Client": .ip}`
	pureFilter2 = `{body: {tenant: .["X-Tenant"], agent: .["User-Agent"]}}`
)

// BenchmarkPurePlan: static, jq ×2, property, exit — the whole access part.
func BenchmarkPurePlan(b *testing.B) {
	plan := compilePlan(b, `
nodes:
  - {name: STATIC, type: static, values: {headers: {X-Static: "1"}}}
  - {name: CLIENT_IP, type: property, property: kong.client.ip}
  - name: HEADERS
    type: jq
    inputs: {headers: STATIC.headers, ip: CLIENT_IP}
    jq: '`+pureFilter1+`'
  - name: BODY
    type: jq
    input: request.headers
    jq: '`+pureFilter2+`'
  - {name: EXIT, type: exit, status: 200, inputs: {headers: HEADERS, body: BODY}}
`)
	runPlan(b, plan)
}

// BenchmarkPurePlanJQOnly is the jq work of BenchmarkPurePlan alone: the
// same two filters run by gojq on the same inputs.
func BenchmarkPurePlanJQOnly(b *testing.B) {
	compile := func(src string) *gojq.Code {
		q, err := gojq.Parse(src)
		if err != nil {
			b.Fatal(err)
		}
		code, err := gojq.Compile(q)
		if err != nil {
			b.Fatal(err)
		}
		return code
	}
	c1, c2 := compile(pureFilter1), compile(pureFilter2)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		in1 := map[string]any{"headers": map[string]any{"X-Static": "1"}, "ip": "10.0.0.1"}
		if _, ok := c1.RunWithContext(ctx, in1).Next(); !ok {
			b.Fatal("no result")
		}
		in2 := map[string]any{"Host": "gw.test", "User-Agent": "bench", "X-Tenant": "t1"}
		if _, ok := c2.RunWithContext(ctx, in2).Next(); !ok {
			b.Fatal("no result")
		}
	}
}

func tokenServer(b *testing.B) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"token_type":"Bearer","access_token":"abc"}`)
	}))
	b.Cleanup(srv.Close)
	return srv
}

// BenchmarkAuthInjectionPlan: spec §13.1 against an in-process token server.
func BenchmarkAuthInjectionPlan(b *testing.B) {
	srv := tokenServer(b)
	plan := compilePlan(b, `
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
    url: `+srv.URL+`/auth-token
    inputs: {headers: BUILD_HEADERS, body: STATIC_INPUTS.body}
  - name: UPSTREAM_AUTH_HEADER
    type: jq
    input: AUTH_REQUEST.body
    output: service_request.headers
    jq: '{Authorization: (.token_type + " " + .access_token)}'
`)
	runPlan(b, plan)
}

// BenchmarkFanOutPlan: N parallel calls to an in-process server, merged by
// one jq node.
func BenchmarkFanOutPlan(b *testing.B) {
	srv := tokenServer(b)
	for _, n := range []int{3, 8, 32} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			var cfg strings.Builder
			cfg.WriteString("nodes:\n")
			inputs := make([]string, n)
			for i := range n {
				fmt.Fprintf(&cfg, "  - {name: C%d, type: call, url: %s/c%d}\n", i, srv.URL, i)
				inputs[i] = fmt.Sprintf("c%d: C%d.body", i, i)
			}
			fmt.Fprintf(&cfg, "  - {name: MERGE, type: jq, inputs: {%s}, jq: '[.[]] | length'}\n", strings.Join(inputs, ", "))
			fmt.Fprintf(&cfg, "  - {name: EXIT, type: exit, inputs: {body: MERGE}}\n")
			runPlan(b, compilePlan(b, cfg.String()))
		})
	}
}
