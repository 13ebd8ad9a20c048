package engine

import (
	"context"
	"errors"
	"testing"
	"time"
)

// FuzzCompile feeds arbitrary documents to CompileBytes: it must never panic
// and must return either a Plan or a *ConfigError. A plan that compiles is
// also rendered and run against an empty exchange.
func FuzzCompile(f *testing.F) {
	f.Add([]byte(`nodes: [{name: A, type: jq, jq: ., input: request.body, output: service_request.body}]`))
	f.Add([]byte(`{"nodes":[{"name":"S","type":"static","values":{"a":1}}]}`))
	h := &fakeHooks{call: func(ctx context.Context, name string, in []any) ([]any, error) {
		return []any{map[string]any{"name": name}, nil, 200, ""}, nil
	}}
	reg := fakeRegistry(h)
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := CompileBytes(data, reg, Options{PlanTimeout: time.Second})
		if err != nil {
			var ce *ConfigError
			if !errors.As(err, &ce) || len(ce.Messages) == 0 {
				t.Fatalf("CompileBytes(%q) error %T %v, want a *ConfigError with messages", data, err, err)
			}
			if p != nil {
				t.Fatalf("CompileBytes(%q) returned a plan and an error", data)
			}
			return
		}
		if p == nil {
			t.Fatalf("CompileBytes(%q) = nil, nil", data)
		}
		_ = p.DOT()
		ex := newFakeEx()
		ex.req["headers"] = map[string]any{"Authorization": "x"}
		ex.resp["status"] = 200
		r := p.NewRun(ex, RunOptions{Trace: true})
		if out := r.Access(context.Background()); out.Abort != nil {
			t.Fatalf("Access abort %v", out.Abort)
		}
		r.Response(context.Background())
		if r.Trace() == nil {
			t.Fatal("no trace")
		}
	})
}
