package engine

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// benchEx is an Exchange without locks or recording, so that benchmarks
// measure the engine rather than the fake.
type benchEx struct{ req map[string]any }

func (b benchEx) Request(ctx context.Context, f string) (any, error) { return b.req[f], nil }
func (benchEx) ServiceResponse(context.Context, string) (any, error) { return nil, nil }
func (benchEx) ApplyServiceRequest(*Message) error                   { return nil }
func (benchEx) ApplyResponse(*Message) error                         { return nil }
func (benchEx) Property(string) (any, error)                         { return "p", nil }
func (benchEx) SetProperty(n string, v any) (any, error)             { return v, nil }

// BenchmarkPurePlan runs a five-node plan of pure nodes: static, two jq-like
// nodes, a property getter and an exit.
func BenchmarkPurePlan(b *testing.B) {
	p := mustCompile(b, nil, `nodes:
  - {name: S, type: static, values: {a: 1, h: {X-A: x}}}
  - {name: J1, type: jq, jq: .a, input: S}
  - {name: P, type: property, property: kong.ctx.shared.x}
  - {name: J2, type: jq, jq: ., inputs: {j: J1, p: P}}
  - {name: E, type: exit, inputs: {body: J2, headers: S.h}}
`, Options{})
	ex := benchEx{}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		out := p.NewRun(ex, RunOptions{}).Access(ctx)
		if out.Exit == nil {
			b.Fatal("no exit")
		}
	}
}

// BenchmarkFanOut measures the scheduler's cost for async nodes that answer
// at once: n calls in parallel, joined by one node.
func BenchmarkFanOut(b *testing.B) {
	outs := []any{map[string]any{"ok": true}, nil, 200, ""}
	h := &fakeHooks{call: func(ctx context.Context, name string, in []any) ([]any, error) { return outs, nil }}
	for _, n := range []int{3, 8, 32} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			var cfg, join strings.Builder
			cfg.WriteString("nodes:\n")
			for i := range n {
				fmt.Fprintf(&cfg, "  - {name: C%d, type: call, url: \"http://x\", inputs: {query: request.query}}\n", i)
				fmt.Fprintf(&join, "c%d: C%d.status, ", i, i)
			}
			fmt.Fprintf(&cfg, "  - {name: JOIN, type: jq, jq: ., inputs: {%s}}\n", strings.TrimSuffix(join.String(), ", "))
			p := mustCompile(b, h, cfg.String(), Options{})
			ex := benchEx{req: map[string]any{"query": map[string]any{"q": "1"}}}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if out := p.NewRun(ex, RunOptions{}).Access(ctx); out.Err != nil {
					b.Fatal(out.Err)
				}
			}
		})
	}
}
