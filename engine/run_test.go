package engine

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// events lists a trace's events as "NAME action".
func events(tr *Trace) []string {
	var out []string
	for _, e := range tr.Events {
		out = append(out, e.Name+" "+e.Action)
	}
	return out
}

// statuses maps node names to their final trace status.
func statuses(tr *Trace) map[string]string {
	out := map[string]string{}
	for _, n := range tr.Nodes {
		out[n.Name] = n.Status
	}
	return out
}

func runAccess(t *testing.T, p *Plan, ex *fakeEx) (Outcome, *Trace) {
	t.Helper()
	r := p.NewRun(ex, RunOptions{Trace: true})
	out := r.Access(context.Background())
	return out, r.Trace()
}

func wantNoFailure(t *testing.T, out Outcome) {
	t.Helper()
	if out.Err != nil || out.Abort != nil {
		t.Fatalf("outcome: err %v, abort %v", out.Err, out.Abort)
	}
}

func TestRunOrder(t *testing.T) {
	// D is runnable at the start, beside A; B only once A completed; C once B
	// did. Declaration order breaks ties only.
	p := mustCompile(t, nil, `nodes:
  - {name: C, type: jq, jq: ., input: B}
  - {name: A, type: static, values: {x: 1}}
  - {name: B, type: jq, jq: ., input: A.x}
  - {name: D, type: jq, jq: '"d"'}
`, Options{})
	out, tr := runAccess(t, p, newFakeEx())
	wantNoFailure(t, out)
	want := []string{"A run", "A complete", "D run", "D complete", "B run", "B complete", "C run", "C complete"}
	if got := events(tr); !slices.Equal(got, want) {
		t.Errorf("events = %v, want %v", got, want)
	}
	if tr.Status != "PLAN_COMPLETE" {
		t.Errorf("trace status = %s", tr.Status)
	}
	names := []string{}
	for _, n := range tr.Nodes {
		names = append(names, n.Name)
	}
	if want := []string{"C", "A", "B", "D"}; !slices.Equal(names, want) {
		t.Errorf("trace nodes = %v, want %v", names, want)
	}
}

// callRecorder records what each call node received.
type callRecorder struct {
	mu sync.Mutex
	in map[string][]any
}

func (c *callRecorder) hooks() *fakeHooks {
	c.in = map[string][]any{}
	return &fakeHooks{call: func(ctx context.Context, name string, in []any) ([]any, error) {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.in[name] = slices.Clone(in)
		return []any{map[string]any{"ok": true}, map[string]any{"X-Up": "1"}, 200, `{"ok":true}`}, nil
	}}
}

func TestRunDelivery(t *testing.T) {
	var rec callRecorder
	p := mustCompile(t, rec.hooks(), `nodes:
  - {name: CALL, type: call, url: "http://x", input: request}
  - {name: NUM, type: static, values: {n: 5}}
  - {name: URL, type: call, url: "http://x", inputs: {url: NUM.n, headers: PICK}}
  - {name: PICK, type: jq, jq: '{"headers": {"X-A": "1"}, "body": "b"}'}
  - {name: AUTH, type: jq, jq: ., input: request.headers.authorization}
  - {name: EXIT, type: exit, input: PICK}
  - {name: AUTH_OUT, type: jq, jq: ., input: AUTH, output: service_request.body}
`, Options{})
	ex := newFakeEx()
	ex.req["body"] = map[string]any{"a": 1}
	ex.req["headers"] = map[string]any{"Authorization": "Bearer x", "X-B": "2"}
	ex.req["query"] = map[string]any{"q": "1"}
	out, tr := runAccess(t, p, ex)
	wantNoFailure(t, out)

	// object expansion: request's body, headers, query feed CALL's fields
	want := []any{ex.req["body"], ex.req["headers"], ex.req["query"], nil, nil, nil, nil, nil}
	if got := rec.in["CALL"]; !reflect.DeepEqual(got, want) {
		t.Errorf("CALL inputs = %v, want %v", got, want)
	}
	// number -> string conversion; an any-typed jq result into a fixed field
	// and a field target gets the whole value
	if got := rec.in["URL"]; got[3] != "5" || !reflect.DeepEqual(got[1], map[string]any{"headers": map[string]any{"X-A": "1"}, "body": "b"}) {
		t.Errorf("URL inputs = %v, want url \"5\" and PICK's whole value", got)
	}
	// any -> fixed fields: exit picks body and headers from PICK's object
	if out.Exit == nil || string(out.Exit.Body) != "b" || !reflect.DeepEqual(out.Exit.Headers, []HeaderLine{{"X-A", []string{"1"}}}) {
		t.Errorf("exit = %+v, want body b and X-A: 1", out.Exit)
	}
	// sub-path reads header maps case-insensitively
	// and traces mask credential members of objects, not bare values
	for _, e := range tr.Events {
		if e.Name == "AUTH" && e.Action == "complete" {
			if v := (*e.Values)[0].Value; v != "Bearer x" {
				t.Errorf("AUTH output in trace = %v, want Bearer x", v)
			}
		}
		if e.Name == "request" && e.Action == "complete" {
			want := TraceValue{Key: "headers", Type: "map", Value: map[string]any{"Authorization": masked, "X-B": "2"}}
			if v := (*e.Values)[1]; !reflect.DeepEqual(v, want) {
				t.Errorf("request headers in trace = %v, want %v", v, want)
			}
		}
	}
	if ex.req["headers"].(map[string]any)["Authorization"] != "Bearer x" {
		t.Errorf("redaction changed the request's own headers")
	}
	if got := slices.Sorted(slices.Values(ex.reads)); !slices.Equal(got, []string{"request.body", "request.headers", "request.query"}) {
		t.Errorf("request fields read = %v", got)
	}
}

func TestRunSubPathValue(t *testing.T) {
	p := mustCompile(t, nil, `nodes:
  - {name: AUTH, type: jq, jq: ., input: request.headers.authorization}
  - {name: MISSING, type: jq, jq: ., input: request.headers.nope.deeper}
  - {name: EXIT, type: exit, inputs: {body: AUTH, headers: MISSING}}
`, Options{})
	ex := newFakeEx()
	ex.req["headers"] = map[string]any{"Authorization": "Bearer x"}
	out, _ := runAccess(t, p, ex)
	wantNoFailure(t, out)
	if out.Exit == nil || string(out.Exit.Body) != "Bearer x" {
		t.Errorf("exit = %+v, want body %q", out.Exit, "Bearer x")
	}
}

func TestRunTypeMismatch(t *testing.T) {
	reg := func() *Registry {
		r := fakeRegistry(nil)
		r.Register("num", KindFunc(func(a *Attrs) *Decl {
			return &Decl{IO: KeyInputs, Inputs: []Field{{"n", TypeNumber}, {"b", TypeBoolean}, {"a", TypeArray}},
				Build: func(b *BuildInfo) (Node, error) {
					return NodeFunc(func(ctx context.Context, env *Env, in []any) ([]any, error) {
						env.Exit(&Response{Status: 200, Body: []byte(fmt.Sprintf("%#v", in))})
						return nil, nil
					}), nil
				}}
		}))
		return r
	}
	tests := []struct {
		name, cfg   string
		node, error string
		index       int
		exitBody    string
	}{
		{"13.13#4", `nodes:
  - {name: BAD, type: jq, jq: '"oops, not an object/map"'}
  - {name: EXIT, type: exit, inputs: {headers: BAD}}`,
			"EXIT", `type mismatch for input "headers" (from "BAD"): expected map, got string`, 2, ""},
		{"string to number", `nodes:
  - {name: J, type: jq, jq: '"42"'}
  - {name: N, type: num, inputs: {n: J}}`, "", "", 0, `[]interface {}{42, interface {}(nil), interface {}(nil)}`},
		{"not a number", `nodes:
  - {name: J, type: jq, jq: '"4x"'}
  - {name: N, type: num, inputs: {n: J}}`, "N", `type mismatch for input "n" (from "J"): expected number, got string`, 2, ""},
		{"boolean", `nodes:
  - {name: J, type: jq, jq: '1'}
  - {name: N, type: num, inputs: {b: J}}`, "N", `type mismatch for input "b" (from "J"): expected boolean, got number`, 2, ""},
		{"array", `nodes:
  - {name: J, type: jq, jq: '{}'}
  - {name: N, type: num, inputs: {a: J}}`, "N", `type mismatch for input "a" (from "J"): expected array, got object`, 2, ""},
		{"null passes", `nodes:
  - {name: J, type: jq, jq: 'null'}
  - {name: N, type: num, inputs: {n: J, b: J, a: J}}`, "", "", 0, `[]interface {}{interface {}(nil), interface {}(nil), interface {}(nil)}`},
		{"non-object into expansion", `nodes:
  - {name: J, type: jq, jq: '"x"'}
  - {name: EXIT, type: exit, input: J}`, "EXIT", `type mismatch for input "$self" (from "J"): expected object, got string`, 2, ""},
		{"sub-path source", `nodes:
  - {name: EXIT, type: exit, inputs: {headers: request.headers.x-h}}`, "EXIT", `type mismatch for input "headers" (from "request.headers.x-h"): expected map, got string`, 1, ""},
		{"implicit consumer", `nodes:
  - {name: J, type: jq, jq: '"x"', output: service_request.query}`, "service_request", `type mismatch for input "query" (from "J"): expected map, got string`, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := CompileBytes([]byte(tt.cfg), reg(), Options{})
			if err != nil {
				t.Fatal(err)
			}
			ex := newFakeEx()
			ex.req["headers"] = map[string]any{"X-H": "v"}
			out, tr := runAccess(t, p, ex)
			if tt.node == "" {
				wantNoFailure(t, out)
				if out.Exit == nil || string(out.Exit.Body) != tt.exitBody {
					t.Errorf("exit = %+v, want body %s", out.Exit, tt.exitBody)
				}
				return
			}
			if out.Err == nil {
				t.Fatalf("Access() err = nil, want %q on %s", tt.error, tt.node)
			}
			if out.Err.Name != tt.node || out.Err.Err.Error() != tt.error || out.Err.Index != tt.index {
				t.Errorf("Access() err = %s index %d: %v, want %s index %d: %s", out.Err.Name, out.Err.Index, out.Err.Err, tt.node, tt.index, tt.error)
			}
			if st := statuses(tr)[tt.node]; st != "NODE_ERROR" {
				t.Errorf("%s status = %s, want NODE_ERROR", tt.node, st)
			}
			if out.Exit != nil && tt.node == "EXIT" {
				t.Errorf("exit used despite failure")
			}
			if ex.sreq != nil {
				t.Errorf("service_request applied after a failure: %+v", ex.sreq)
			}
		})
	}
}

func TestRunBranches(t *testing.T) {
	p := mustCompile(t, nil, `nodes:
  - {name: COND, type: jq, jq: "true"}
  - {name: OUTER, type: branch, input: COND, then: [T1, BOTH], else: [INNER, E1, BOTH2]}
  - {name: T1, type: jq, jq: '"t"'}
  - {name: E1, type: jq, jq: '"e"', output: service_request.body}
  - {name: E2, type: jq, jq: ., input: E1}
  - {name: E3, type: jq, jq: ., inputs: {e: E2, t: T1}}
  - {name: INNER, type: branch, input: COND, then: [N1], else: [N2]}
  - {name: N1, type: jq, jq: '"n1"'}
  - {name: N2, type: jq, jq: '"n2"'}
  - {name: SECOND, type: branch, input: COND, then: [BOTH, BOTH2]}
  - {name: BOTH, type: jq, jq: '{"X": "both"}', output: service_request.headers}
  - {name: BOTH2, type: jq, jq: '"both2"'}
  - {name: FREE, type: jq, jq: ., input: T1}
`, Options{})
	ex := newFakeEx()
	out, tr := runAccess(t, p, ex)
	wantNoFailure(t, out)
	want := map[string]string{
		"COND": "NODE_COMPLETE", "OUTER": "NODE_COMPLETE", "T1": "NODE_COMPLETE",
		"E1": "NODE_SKIPPED", "E2": "NODE_SKIPPED", "E3": "NODE_SKIPPED",
		"INNER": "NODE_SKIPPED", "N1": "NODE_SKIPPED", "N2": "NODE_SKIPPED",
		"SECOND": "NODE_COMPLETE", "BOTH": "NODE_COMPLETE", "BOTH2": "NODE_SKIPPED",
		"FREE": "NODE_COMPLETE", "service_request": "NODE_COMPLETE",
	}
	if got := statuses(tr); !reflect.DeepEqual(got, want) {
		t.Errorf("statuses = %v, want %v", got, want)
	}
	for _, e := range tr.Events {
		if e.Name == "OUTER" && e.Action == "complete" {
			if v := *e.Values; len(v) != 1 || v[0] != (TraceValue{Key: "selected", Type: "string", Value: "then"}) {
				t.Errorf("OUTER complete values = %v", v)
			}
		}
	}
	// the body fed by a skipped node is left unchanged
	if ex.sreq == nil || ex.sreq.Body != nil || !reflect.DeepEqual(ex.sreq.Headers, []HeaderLine{{"X", []string{"both"}}}) {
		t.Errorf("service_request = %+v", ex.sreq)
	}
}

func TestRunBranchFalseAndBadInput(t *testing.T) {
	p := mustCompile(t, nil, `nodes:
  - {name: COND, type: jq, jq: "false"}
  - {name: B, type: branch, input: COND, then: [T], else: [E]}
  - {name: T, type: jq, jq: '"t"'}
  - {name: E, type: jq, jq: '"e"'}
  - {name: EMPTY, type: branch, input: COND}
`, Options{})
	out, tr := runAccess(t, p, newFakeEx())
	wantNoFailure(t, out)
	if got := statuses(tr); got["T"] != "NODE_SKIPPED" || got["E"] != "NODE_COMPLETE" || got["EMPTY"] != "NODE_COMPLETE" {
		t.Errorf("statuses = %v", got)
	}

	p = mustCompile(t, nil, `nodes:
  - {name: COND, type: jq, jq: '"yes"'}
  - {name: B, type: branch, input: COND, then: [T]}
  - {name: T, type: jq, jq: '"t"'}
`, Options{})
	out, tr = runAccess(t, p, newFakeEx())
	if out.Err == nil || out.Err.Name != "B" || out.Err.Err.Error() != "branch input must be a boolean, got string" {
		t.Fatalf("Access() err = %v, want the branch's boolean error", out.Err)
	}
	if got := statuses(tr); got["T"] != "NODE_CANCELED" {
		t.Errorf("T status = %s, want NODE_CANCELED", got["T"])
	}
}

func TestRunExitInAccess(t *testing.T) {
	p := mustCompile(t, nil, `nodes:
  - {name: S, type: static, values: {body: bye, code: 1}}
  - {name: EXIT, type: exit, status: 403, inputs: {body: S.body}}
  - {name: SLOW, type: call, url: "http://x", delay: 20}
  - {name: AFTER, type: jq, jq: ., input: SLOW.status}
  - {name: H, type: jq, jq: '{"X-A": "1"}', output: service_request.headers}
  - {name: R, type: jq, jq: ., input: service_response.status, output: response.body}
  - {name: EXIT2, type: exit, status: 500, inputs: {body: AFTER}}
`, Options{})
	ex := newFakeEx()
	r := p.NewRun(ex, RunOptions{Trace: true})
	out := r.Access(context.Background())
	wantNoFailure(t, out)
	if out.Exit == nil || out.Exit.Status != 403 || string(out.Exit.Body) != "bye" {
		t.Fatalf("exit = %+v, want the first exit (403, bye)", out.Exit)
	}
	if again := r.Response(context.Background()); again.Exit != out.Exit {
		t.Errorf("Response() after an exit = %+v", again)
	}
	tr := r.Trace()
	want := map[string]string{
		"S": "NODE_COMPLETE", "EXIT": "NODE_COMPLETE", "SLOW": "NODE_COMPLETE", "AFTER": "NODE_COMPLETE",
		"H": "NODE_COMPLETE", "R": "NODE_PENDING", "EXIT2": "NODE_COMPLETE",
		"service_request": "NODE_PENDING", "service_response": "NODE_PENDING", "response": "NODE_PENDING",
	}
	if got := statuses(tr); !reflect.DeepEqual(got, want) {
		t.Errorf("statuses = %v, want %v", got, want)
	}
	if ex.sreq != nil || ex.response != nil {
		t.Errorf("sinks applied after an exit: %+v %+v", ex.sreq, ex.response)
	}
	if slices.Contains(ex.reads, "service_response.status") {
		t.Errorf("service_response read after an exit")
	}
}

// TestRunFailureCancels is the trace example of spec §10: API fails with 403
// while SLOW_API is in flight.
func TestRunFailureCancels(t *testing.T) {
	slowDone := make(chan error, 1)
	h := &fakeHooks{call: func(ctx context.Context, name string, in []any) ([]any, error) {
		if name == "API" {
			return []any{map[string]any{"code": 403}, map[string]any{"Content-Type": "application/json"}, 403, `{"code":403}`},
				errors.New("non-2XX response code: 403")
		}
		<-ctx.Done()
		slowDone <- ctx.Err()
		return nil, ctx.Err()
	}}
	p := mustCompile(t, h, `debug: true
nodes:
  - {name: API, type: call, url: "http://x", inputs: {query: request.query}}
  - {name: SLOW_API, type: call, url: "http://x", inputs: {query: request.query}}
  - {name: FILTER, type: jq, jq: ., inputs: {a: API, b: SLOW_API}}
`, Options{})
	ex := newFakeEx()
	ex.req["query"] = map[string]any{"a": "true", "b": "123"}
	out, tr := runAccess(t, p, ex)
	if out.Err == nil || out.Err.Name != "API" || out.Err.Type != "call" || out.Err.Index != 1 || out.Err.Err.Error() != "non-2XX response code: 403" {
		t.Fatalf("Access() err = %+v", out.Err)
	}
	if err := <-slowDone; !errors.Is(err, context.Canceled) {
		t.Errorf("SLOW_API saw %v, want context.Canceled", err)
	}
	wantNodes := []TraceNode{
		{Name: "API", Type: "call", Phase: "access", Status: "NODE_ERROR", Error: "non-2XX response code: 403"},
		{Name: "SLOW_API", Type: "call", Phase: "access", Status: "NODE_CANCELED"},
		{Name: "FILTER", Type: "jq", Phase: "access", Status: "NODE_CANCELED"},
		{Name: "request", Type: "request", Phase: "access", Status: "NODE_COMPLETE"},
	}
	if !reflect.DeepEqual(tr.Nodes, wantNodes) || tr.Status != "PLAN_ERROR" {
		t.Errorf("trace nodes = %+v (%s), want %+v", tr.Nodes, tr.Status, wantNodes)
	}
	wantEvents := []string{"request run", "request complete", "API run", "SLOW_API run", "API resume", "API fail", "SLOW_API cancel", "FILTER cancel"}
	if got := events(tr); !slices.Equal(got, wantEvents) {
		t.Fatalf("events = %v, want %v", got, wantEvents)
	}
	ev := tr.Events
	query := []TraceValue{{Key: "query", Type: "map", Value: map[string]any{"a": "true", "b": "123"}}}
	if !reflect.DeepEqual(*ev[1].Values, query) || !reflect.DeepEqual(*ev[2].Values, query) || len(*ev[0].Values) != 0 {
		t.Errorf("request/API values = %v %v %v", *ev[0].Values, *ev[1].Values, *ev[2].Values)
	}
	fail := *ev[5].Values
	keys := []string{}
	for _, v := range fail[1:] {
		keys = append(keys, v.Key)
	}
	if fail[0] != (TraceValue{Type: "error", Value: "non-2XX response code: 403"}) || !slices.Equal(keys, []string{"body", "headers", "status", "raw_body"}) {
		t.Errorf("API fail values = %+v", fail)
	}
	if ev[4].Duration == nil || ev[6].Duration == nil || ev[7].Duration != nil {
		t.Errorf("durations: resume %v, SLOW_API cancel %v, FILTER cancel %v", ev[4].Duration, ev[6].Duration, ev[7].Duration)
	}
	if ev[6].Values != nil || ev[7].Values != nil {
		t.Errorf("cancel events carry values")
	}
}

func TestRunPanic(t *testing.T) {
	h := &fakeHooks{call: func(ctx context.Context, name string, in []any) ([]any, error) { panic("boom") }}
	for _, cfg := range []string{
		`nodes: [{name: P, type: jq, jq: panic}]`,
		`nodes: [{name: P, type: call, url: "http://x"}]`,
	} {
		p := mustCompile(t, h, cfg, Options{})
		out, tr := runAccess(t, p, newFakeEx())
		if out.Err == nil || out.Err.Name != "P" || !errors.Is(out.Err, errInternal) || out.Err.Err.Error() != "internal error" {
			t.Errorf("Access(%q) err = %v, want internal error", cfg, out.Err)
		}
		if tr.Nodes[0].Error != "internal error" {
			t.Errorf("trace error = %q", tr.Nodes[0].Error)
		}
	}
}

func TestRunMaxInflight(t *testing.T) {
	var running, peak atomic.Int32
	var mu sync.Mutex
	var order []string
	h := &fakeHooks{call: func(ctx context.Context, name string, in []any) ([]any, error) {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		mu.Lock()
		order = append(order, name)
		mu.Unlock()
		timer := time.NewTimer(5 * time.Millisecond)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-ctx.Done():
		}
		return nil, nil
	}}
	var b strings.Builder
	b.WriteString("nodes:\n")
	for i := range 5 {
		fmt.Fprintf(&b, "  - {name: C%d, type: call, url: \"http://x\"}\n", i)
	}
	p := mustCompile(t, h, b.String(), Options{MaxInflight: 2})
	out, tr := runAccess(t, p, newFakeEx())
	wantNoFailure(t, out)
	if got := peak.Load(); got > 2 {
		t.Errorf("peak in flight = %d, want at most 2", got)
	}
	for _, n := range tr.Nodes {
		if n.Status != "NODE_COMPLETE" {
			t.Errorf("%s status = %s", n.Name, n.Status)
		}
	}
	// the first two start together; the others wait, then start in nodes
	// order (the scheduler's run events, not the goroutines' own order)
	if len(order) != 5 {
		t.Errorf("calls run = %v", order)
	}
	var runs []string
	for _, e := range tr.Events {
		if e.Action == "run" {
			runs = append(runs, e.Name)
		}
	}
	if want := []string{"C0", "C1", "C2", "C3", "C4"}; !slices.Equal(runs, want) {
		t.Errorf("run events = %v, want %v", runs, want)
	}
}

func TestRunPlanTimeout(t *testing.T) {
	h := &fakeHooks{call: func(ctx context.Context, name string, in []any) ([]any, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}}
	p := mustCompile(t, h, `nodes:
  - {name: PURE, type: jq, jq: '1'}
  - {name: A, type: call, url: "http://x"}
  - {name: B, type: call, url: "http://x"}
  - {name: AFTER, type: jq, jq: ., input: A}
`, Options{PlanTimeout: 30 * time.Millisecond})
	out, tr := runAccess(t, p, newFakeEx())
	if out.Err == nil || out.Err.Name != "A" || out.Err.Err.Error() != "plan exceeded time limit of 30 ms" {
		t.Fatalf("Access() err = %v, want A: plan exceeded time limit of 30 ms", out.Err)
	}
	if out.Abort != nil {
		t.Errorf("abort = %v", out.Abort)
	}
	want := map[string]string{"PURE": "NODE_COMPLETE", "A": "NODE_ERROR", "B": "NODE_ERROR", "AFTER": "NODE_CANCELED"}
	if got := statuses(tr); !reflect.DeepEqual(got, want) {
		t.Errorf("statuses = %v, want %v", got, want)
	}
}

func TestRunClientCancel(t *testing.T) {
	started := make(chan struct{}, 3)
	h := &fakeHooks{call: func(ctx context.Context, name string, in []any) ([]any, error) {
		started <- struct{}{}
		<-ctx.Done()
		return nil, ctx.Err()
	}}
	p := mustCompile(t, h, `nodes:
  - {name: A, type: call, url: "http://x"}
  - {name: B, type: call, url: "http://x"}
  - {name: C, type: call, url: "http://x"}
  - {name: D, type: jq, jq: ., inputs: {a: A, b: B}}
`, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for range 3 {
			<-started
		}
		cancel()
	}()
	r := p.NewRun(newFakeEx(), RunOptions{Trace: true})
	out := r.Access(ctx)
	if !errors.Is(out.Abort, context.Canceled) || out.Err != nil {
		t.Fatalf("Access() = abort %v, err %v; want context.Canceled", out.Abort, out.Err)
	}
	want := map[string]string{"A": "NODE_CANCELED", "B": "NODE_CANCELED", "C": "NODE_CANCELED", "D": "NODE_CANCELED"}
	if got := statuses(r.Trace()); !reflect.DeepEqual(got, want) {
		t.Errorf("statuses = %v, want %v", got, want)
	}
	goleak.VerifyNone(t)
}

// TestRunClientCancelInline: a pure node that returns the cancellation it
// saw when the client left (jq does) aborts the run; it is no node failure.
func TestRunClientCancelInline(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := &fakeHooks{jq: func(jctx context.Context, name string) ([]any, error) {
		cancel() // the client leaves while the node runs
		<-jctx.Done()
		return nil, jctx.Err()
	}}
	p := mustCompile(t, h, `nodes:
  - {name: A, type: call, url: "http://x"}
  - {name: SPIN, type: jq, jq: hook, input: A}
  - {name: AFTER, type: jq, jq: ., input: SPIN}
`, Options{})
	r := p.NewRun(newFakeEx(), RunOptions{Trace: true})
	out := r.Access(ctx)
	if !errors.Is(out.Abort, context.Canceled) || out.Err != nil {
		t.Fatalf("Access() = abort %v, err %v; want context.Canceled and no node error", out.Abort, out.Err)
	}
	want := map[string]string{"A": "NODE_COMPLETE", "SPIN": "NODE_CANCELED", "AFTER": "NODE_CANCELED"}
	if got := statuses(r.Trace()); !reflect.DeepEqual(got, want) {
		t.Errorf("statuses = %v, want %v", got, want)
	}
}

// TestRunParallel proves that async nodes overlap without timing assertions:
// each waits until all three have started (a barrier a serial scheduler could
// never pass), and every node starts before any of them ends.
func TestRunParallel(t *testing.T) {
	var mu sync.Mutex
	var log []string
	var started sync.WaitGroup
	started.Add(3)
	all := make(chan struct{})
	go func() { started.Wait(); close(all) }()
	h := &fakeHooks{call: func(ctx context.Context, name string, in []any) ([]any, error) {
		mu.Lock()
		log = append(log, "start "+name)
		mu.Unlock()
		started.Done()
		timer := time.NewTimer(10 * time.Second)
		defer timer.Stop()
		select {
		case <-all:
		case <-timer.C:
			return nil, errors.New("the other calls never started")
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		mu.Lock()
		log = append(log, "end "+name)
		mu.Unlock()
		return []any{name, nil, 200, name}, nil
	}}
	p := mustCompile(t, h, `nodes:
  - {name: A, type: call, url: "http://x"}
  - {name: B, type: call, url: "http://x"}
  - {name: C, type: call, url: "http://x"}
  - {name: JOIN, type: jq, jq: ., inputs: {a: A.body, b: B.body, c: C.body}}
  - {name: EXIT, type: exit, inputs: {body: JOIN}}
`, Options{})
	out, _ := runAccess(t, p, newFakeEx())
	wantNoFailure(t, out)
	mu.Lock()
	defer mu.Unlock()
	if len(log) != 6 {
		t.Fatalf("log = %v", log)
	}
	for _, e := range log[:3] {
		if !strings.HasPrefix(e, "start ") {
			t.Errorf("log = %v: a node ended before all started", log)
		}
	}
	if out.Exit == nil || string(out.Exit.Body) != `{"a":"A","b":"B","c":"C"}` {
		t.Errorf("exit = %+v", out.Exit)
	}
}

func TestRunResponsePart(t *testing.T) {
	cfg := `nodes:
  - name: RESHAPE
    type: jq
    inputs: {body: service_response.body, status: service_response.status}
    jq: .
    output: response.body
  - {name: TAG, type: static, values: {X-Reshaped: "yes"}, output: response.headers}
  - {name: STATUS, type: property, property: kong.service.response.status}
`
	for _, traced := range []bool{false, true} {
		p := mustCompile(t, nil, cfg, Options{})
		if !p.HasResponsePart() || !p.NeedsResponseBody() || p.ReadsRequestBody() {
			t.Errorf("HasResponsePart %v NeedsResponseBody %v ReadsRequestBody %v", p.HasResponsePart(), p.NeedsResponseBody(), p.ReadsRequestBody())
		}
		ex := newFakeEx()
		ex.resp["body"] = map[string]any{"a": 1}
		ex.resp["status"] = 201
		r := p.NewRun(ex, RunOptions{Trace: traced})
		wantNoFailure(t, r.Access(context.Background()))
		if len(ex.reads) != 0 || ex.response != nil {
			t.Fatalf("access part read %v / applied %+v", ex.reads, ex.response)
		}
		wantNoFailure(t, r.Response(context.Background()))
		if got := ex.reads; !slices.Equal(got, []string{"service_response.body", "service_response.status"}) {
			t.Errorf("reads = %v", got)
		}
		if traced {
			if ex.response != nil {
				t.Errorf("response applied while tracing")
			}
			tr := r.Trace()
			phases := map[string]string{}
			for _, n := range tr.Nodes {
				phases[n.Name] = n.Phase + " " + n.Status
			}
			want := map[string]string{"RESHAPE": "response NODE_COMPLETE", "TAG": "access NODE_COMPLETE", "STATUS": "response NODE_COMPLETE",
				"service_response": "response NODE_COMPLETE", "response": "response NODE_SKIPPED"}
			if !reflect.DeepEqual(phases, want) {
				t.Errorf("trace nodes = %v, want %v", phases, want)
			}
			continue
		}
		want := &Message{
			Headers: []HeaderLine{{"X-Reshaped", []string{"yes"}}},
			Body:    &Body{Bytes: []byte(`{"body":{"a":1},"status":201}`), ContentType: "application/json"},
		}
		if !reflect.DeepEqual(ex.response, want) {
			t.Errorf("response = %+v %+v, want %+v %+v", ex.response, ex.response.Body, want, want.Body)
		}
	}
}

func TestRunServiceRequest(t *testing.T) {
	p := mustCompile(t, nil, `nodes:
  - {name: H, type: jq, jq: '{"x-a": 1, "X-Multi": ["a", "b"], "X-Gone": null}', output: service_request.headers}
  - {name: Q, type: static, values: {q: {a: true, b: 10, c: "x y"}}, outputs: {q: service_request.query}}
  - {name: B, type: jq, jq: '{"k": "v"}', output: service_request.body}
`, Options{})
	ex := newFakeEx()
	out, tr := runAccess(t, p, ex)
	wantNoFailure(t, out)
	q := "a=true&b=10&c=x%20y"
	want := &Message{
		Headers: []HeaderLine{{"X-A", []string{"1"}}, {"X-Gone", nil}, {"X-Multi", []string{"a", "b"}}},
		Query:   &q,
		Body:    &Body{Bytes: []byte(`{"k":"v"}`), ContentType: "application/json"},
	}
	if !reflect.DeepEqual(ex.sreq, want) {
		t.Errorf("service_request = %+v (query %q, body %+v)", ex.sreq, deref(ex.sreq.Query), ex.sreq.Body)
	}
	if got := events(tr); got[len(got)-1] != "service_request complete" {
		t.Errorf("events = %v", got)
	}

	// a string body keeps the request's content type unless headers set one
	p = mustCompile(t, nil, `nodes:
  - {name: B, type: jq, jq: '"raw"', output: service_request.body}
  - {name: H, type: jq, jq: '{"Content-Type": "text/csv"}', output: service_request.headers}
  - {name: B2, type: jq, jq: '[1]', output: response.body}
  - {name: H2, type: jq, jq: '{"content-type": "text/csv"}', output: response.headers}
`, Options{})
	ex = newFakeEx()
	r := p.NewRun(ex, RunOptions{})
	wantNoFailure(t, r.Access(context.Background()))
	wantNoFailure(t, r.Response(context.Background()))
	if b := ex.sreq.Body; string(b.Bytes) != "raw" || b.ContentType != "" {
		t.Errorf("service_request body = %+v", b)
	}
	if b := ex.response.Body; string(b.Bytes) != "[1]" || b.ContentType != "" {
		t.Errorf("response body = %+v, want the headers' content type kept", b)
	}
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

// TestRunConcurrentRequests runs one plan from many goroutines: a Plan is
// immutable and every run has its own state (run with -race).
func TestRunConcurrentRequests(t *testing.T) {
	p := mustCompile(t, nil, `nodes:
  - {name: A, type: call, url: "http://x"}
  - {name: B, type: jq, jq: ., input: request.query}
  - {name: EXIT, type: exit, inputs: {body: B}}
`, Options{})
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ex := newFakeEx()
			ex.req["query"] = map[string]any{"i": i}
			out := p.NewRun(ex, RunOptions{Trace: i%2 == 0}).Access(context.Background())
			if out.Exit == nil || string(out.Exit.Body) != fmt.Sprintf(`{"i":%d}`, i) {
				t.Errorf("run %d exit = %+v", i, out.Exit)
			}
		}()
	}
	wg.Wait()
}

func TestRunExitInResponsePart(t *testing.T) {
	p := mustCompile(t, nil, `nodes:
  - {name: TAG, type: static, values: {X-A: "1"}, output: response.headers}
  - {name: EXIT, type: exit, status: 502, inputs: {body: service_response.status}}
`, Options{})
	ex := newFakeEx()
	ex.resp["status"] = 500
	r := p.NewRun(ex, RunOptions{Trace: true})
	first := r.Access(context.Background())
	wantNoFailure(t, first)
	if first.Exit != nil {
		t.Fatalf("exit in the access part: %+v", first.Exit)
	}
	out := r.Response(context.Background())
	wantNoFailure(t, out)
	if out.Exit == nil || out.Exit.Status != 502 || string(out.Exit.Body) != "500" {
		t.Errorf("exit = %+v, want 502 with body 500", out.Exit)
	}
	if ex.response != nil {
		t.Errorf("response applied despite the exit: %+v", ex.response)
	}
	if got := statuses(r.Trace()); got["EXIT"] != "NODE_COMPLETE" || got["TAG"] != "NODE_COMPLETE" {
		t.Errorf("statuses = %v", got)
	}
}
