package nodes_test

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/datakit-gateway/datakit/engine"
	"github.com/datakit-gateway/datakit/nodes"
)

// reqExchange is a client request with the given headers; it records the
// changes applied to the upstream request.
type reqExchange struct {
	headers map[string]any
	applied []*engine.Message
}

var _ engine.Exchange = (*reqExchange)(nil)

func (x *reqExchange) Request(_ context.Context, field string) (any, error) {
	if field == "headers" {
		return x.headers, nil
	}
	return nil, nil
}
func (x *reqExchange) ServiceResponse(context.Context, string) (any, error) { return nil, nil }
func (x *reqExchange) ApplyServiceRequest(m *engine.Message) error {
	x.applied = append(x.applied, m)
	return nil
}
func (x *reqExchange) ApplyResponse(*engine.Message) error      { return nil }
func (x *reqExchange) Property(string) (any, error)             { return nil, nil }
func (x *reqExchange) SetProperty(_ string, v any) (any, error) { return v, nil }

// compile builds a plan with the real node types.
func compile(t *testing.T, deps nodes.Deps, cfg string) *engine.Plan {
	t.Helper()
	reg := engine.NewRegistry()
	nodes.Register(reg, deps)
	plan, err := engine.CompileBytes([]byte(cfg), reg, engine.Options{PluginID: t.Name()})
	if err != nil {
		t.Fatalf("CompileBytes = %v", err)
	}
	return plan
}

// compileErrors returns the validation messages of cfg.
func compileErrors(t *testing.T, cfg string) []string {
	t.Helper()
	reg := engine.NewRegistry()
	nodes.Register(reg, nodes.Deps{Caches: nodes.NewCacheStores()})
	_, err := engine.CompileBytes([]byte(cfg), reg, engine.Options{})
	if err == nil {
		return nil
	}
	ce, ok := err.(*engine.ConfigError)
	if !ok {
		t.Fatalf("CompileBytes = %v, want a *engine.ConfigError", err)
	}
	return ce.Messages
}

// runTraced runs the access part with a trace and returns the outcome and
// each declared node's final status.
func runTraced(t *testing.T, plan *engine.Plan, x engine.Exchange) (engine.Outcome, map[string]string) {
	t.Helper()
	r := plan.NewRun(x, engine.RunOptions{Trace: true})
	out := r.Access(context.Background())
	status := map[string]string{}
	for _, n := range r.Trace().Nodes {
		status[n.Name] = n.Status
	}
	return out, status
}

// headerMap flattens exit header lines for comparisons.
func headerMap(lines []engine.HeaderLine) map[string]string {
	m := map[string]string{}
	for _, l := range lines {
		m[l.Name] = strings.Join(l.Values, ", ")
	}
	return m
}

// rejectWithoutCredentials is spec §13.12.
const rejectWithoutCredentials = `
nodes:
  - name: CHECK_AUTH
    type: jq
    inputs: {headers: request.headers}
    jq: '.headers.Authorization? != null or .headers.authorization? != null'
  - {name: AUTH_BRANCH, type: branch, input: CHECK_AUTH, else: [UNAUTH_RESPONSE, UNAUTH_EXIT]}
  - name: UNAUTH_RESPONSE
    type: static
    values:
      content-type: application/json
      www-authenticate: 'Bearer resource_metadata="http://127.0.0.1:9200/.well-known/oauth-protected-resource/mcp", error="invalid_token"'
      BODY: '{"message": "Unauthorized"}'
  - name: UNAUTH_EXIT
    type: exit
    status: 401
    inputs: {body: UNAUTH_RESPONSE.BODY, headers: UNAUTH_RESPONSE}
`

func TestBranchRejectWithoutCredentials(t *testing.T) {
	plan := compile(t, nodes.Deps{}, rejectWithoutCredentials)

	t.Run("no credentials", func(t *testing.T) {
		x := &reqExchange{headers: map[string]any{"Host": "gw.test"}}
		out, status := runTraced(t, plan, x)
		if out.Err != nil || out.Exit == nil {
			t.Fatalf("Access = %+v, want an exit", out)
		}
		if out.Exit.Status != http.StatusUnauthorized {
			t.Errorf("status = %d, want 401", out.Exit.Status)
		}
		wantHeaders := map[string]string{
			"Content-Type":     "application/json",
			"Www-Authenticate": `Bearer resource_metadata="http://127.0.0.1:9200/.well-known/oauth-protected-resource/mcp", error="invalid_token"`,
			"Body":             `{"message": "Unauthorized"}`,
		}
		if got := headerMap(out.Exit.Headers); !reflect.DeepEqual(got, wantHeaders) {
			t.Errorf("headers = %v, want %v", got, wantHeaders)
		}
		if got := string(out.Exit.Body); got != `{"message": "Unauthorized"}` {
			t.Errorf("body = %q, want %q", got, `{"message": "Unauthorized"}`)
		}
		if len(x.applied) != 0 {
			t.Errorf("upstream request changed: %+v", x.applied)
		}
		for _, n := range []string{"CHECK_AUTH", "AUTH_BRANCH", "UNAUTH_RESPONSE", "UNAUTH_EXIT"} {
			if status[n] != "NODE_COMPLETE" {
				t.Errorf("%s = %s, want NODE_COMPLETE", n, status[n])
			}
		}
	})

	for _, h := range []string{"Authorization", "authorization"} {
		t.Run("with "+h, func(t *testing.T) {
			x := &reqExchange{headers: map[string]any{"Host": "gw.test", h: "Bearer x"}}
			out, status := runTraced(t, plan, x)
			if out.Err != nil || out.Exit != nil || out.Abort != nil {
				t.Fatalf("Access = %+v, want the request proxied", out)
			}
			want := map[string]string{
				"CHECK_AUTH": "NODE_COMPLETE", "AUTH_BRANCH": "NODE_COMPLETE",
				"UNAUTH_RESPONSE": "NODE_SKIPPED", "UNAUTH_EXIT": "NODE_SKIPPED", "request": "NODE_COMPLETE",
			}
			if !reflect.DeepEqual(status, want) {
				t.Errorf("trace statuses = %v, want %v", status, want)
			}
		})
	}
}

func TestBranchNested(t *testing.T) {
	tests := []struct {
		outer, inner bool
		want         map[string]string
	}{
		{true, true, map[string]string{"INNER": "NODE_COMPLETE", "A": "NODE_COMPLETE", "B": "NODE_SKIPPED", "O": "NODE_SKIPPED", "USE_A": "NODE_COMPLETE"}},
		{true, false, map[string]string{"INNER": "NODE_COMPLETE", "A": "NODE_SKIPPED", "B": "NODE_COMPLETE", "O": "NODE_SKIPPED", "USE_A": "NODE_SKIPPED"}},
		// A skipped branch skips both of its lists, and what depends on them.
		{false, true, map[string]string{"INNER": "NODE_SKIPPED", "A": "NODE_SKIPPED", "B": "NODE_SKIPPED", "O": "NODE_COMPLETE", "USE_A": "NODE_SKIPPED"}},
		{false, false, map[string]string{"INNER": "NODE_SKIPPED", "A": "NODE_SKIPPED", "B": "NODE_SKIPPED", "O": "NODE_COMPLETE", "USE_A": "NODE_SKIPPED"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("outer=%v,inner=%v", tt.outer, tt.inner), func(t *testing.T) {
			plan := compile(t, nodes.Deps{}, fmt.Sprintf(`
nodes:
  - {name: FLAGS, type: static, values: {outer: %v, inner: %v}}
  - {name: OUTER, type: branch, input: FLAGS.outer, then: [INNER], else: [O]}
  - {name: INNER, type: branch, input: FLAGS.inner, then: [A], else: [B]}
  - {name: A, type: static, values: {v: a}}
  - {name: B, type: static, values: {v: b}}
  - {name: O, type: static, values: {v: o}}
  - {name: USE_A, type: jq, input: A.v, jq: '. + "!"', output: service_request.body}
`, tt.outer, tt.inner))
			x := &reqExchange{}
			out, status := runTraced(t, plan, x)
			if out.Err != nil || out.Exit != nil {
				t.Fatalf("Access = %+v", out)
			}
			for n, want := range tt.want {
				if status[n] != want {
					t.Errorf("%s = %s, want %s", n, status[n], want)
				}
			}
			// A service_request field fed by a skipped node is left unchanged.
			body := ""
			for _, m := range x.applied {
				if m.Body != nil {
					body = string(m.Body.Bytes)
				}
			}
			wantBody := ""
			if tt.want["USE_A"] == "NODE_COMPLETE" {
				wantBody = "a!"
			}
			if body != wantBody {
				t.Errorf("upstream body = %q, want %q", body, wantBody)
			}
		})
	}
}

// A node listed by several branches runs only if all of them select it.
func TestBranchNodeListedTwice(t *testing.T) {
	tests := []struct {
		b1, b2 bool
		want   string
	}{
		{true, true, "NODE_COMPLETE"},
		{true, false, "NODE_SKIPPED"},
		{false, true, "NODE_SKIPPED"},
		{false, false, "NODE_SKIPPED"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%v,%v", tt.b1, tt.b2), func(t *testing.T) {
			plan := compile(t, nodes.Deps{}, fmt.Sprintf(`
nodes:
  - {name: FLAGS, type: static, values: {b1: %v, b2: %v}}
  - {name: B1, type: branch, input: FLAGS.b1, then: [N]}
  - {name: B2, type: branch, input: FLAGS.b2, then: [N], else: [OTHER]}
  - {name: N, type: exit, status: 203}
  - {name: OTHER, type: static, values: {x: 1}}
`, tt.b1, tt.b2))
			out, status := runTraced(t, plan, &reqExchange{})
			if out.Err != nil {
				t.Fatalf("Access = %+v", out)
			}
			if status["N"] != tt.want {
				t.Errorf("N = %s, want %s", status["N"], tt.want)
			}
			if ran := out.Exit != nil; ran != (tt.want == "NODE_COMPLETE") {
				t.Errorf("exit fired = %v, want %v", ran, !ran)
			}
			wantOther := "NODE_SKIPPED"
			if !tt.b2 {
				wantOther = "NODE_COMPLETE"
			}
			if status["OTHER"] != wantOther {
				t.Errorf("OTHER = %s, want %s", status["OTHER"], wantOther)
			}
		})
	}
}

func TestBranchNonBooleanInput(t *testing.T) {
	for _, tt := range []struct{ filter, got string }{
		{`"yes"`, "string"},
		{`1`, "number"},
		{`null`, "null"},
		{`{}`, "object"},
		{`[true]`, "array"},
	} {
		t.Run(tt.filter, func(t *testing.T) {
			plan := compile(t, nodes.Deps{}, `
nodes:
  - {name: COND, type: jq, jq: '`+tt.filter+`'}
  - {name: BR, type: branch, input: COND, then: [YES]}
  - {name: YES, type: exit, status: 200}
`)
			out, status := runTraced(t, plan, &reqExchange{})
			want := "branch input must be a boolean, got " + tt.got
			if out.Err == nil || out.Err.Name != "BR" || out.Err.Type != "branch" || out.Err.Err.Error() != want {
				t.Fatalf("Access().Err = %v, want branch \"BR\": %s", out.Err, want)
			}
			if out.Exit != nil {
				t.Errorf("exit fired after a failed branch")
			}
			if status["BR"] != "NODE_ERROR" {
				t.Errorf("BR = %s, want NODE_ERROR", status["BR"])
			}
		})
	}
}

func TestBranchWithoutLists(t *testing.T) {
	plan := compile(t, nodes.Deps{}, `
nodes:
  - {name: COND, type: jq, jq: 'true'}
  - {name: BR, type: branch, input: COND}
`)
	out, status := runTraced(t, plan, &reqExchange{})
	if out.Err != nil || status["BR"] != "NODE_COMPLETE" {
		t.Errorf("Access = %+v, BR = %s; want BR complete", out, status["BR"])
	}
}

func TestBranchValidation(t *testing.T) {
	names := make([]string, 65)
	for i := range names {
		names[i] = "A"
	}
	tests := []struct {
		name, node string
		want       []string
	}{
		{"empty then", `{name: BR, type: branch, then: []}`,
			[]string{`nodes[1] "BR" (branch): then: length must be between 1 and 64, got 0`}},
		{"too many", `{name: BR, type: branch, else: [` + strings.Join(names, ", ") + `]}`,
			[]string{`nodes[1] "BR" (branch): else: length must be between 1 and 64, got 65`}},
		{"not a list", `{name: BR, type: branch, then: A}`,
			[]string{`nodes[1] "BR" (branch): then: expected array, got string`}},
		{"bad entries keep their positions", `{name: BR, type: branch, then: [1, "", NOPE]}`,
			[]string{
				`nodes[1] "BR" (branch): then[0]: expected string, got number`,
				`nodes[1] "BR" (branch): then[1]: length must be between 1 and 255, got 0`,
			}},
		{"names checked by the engine", `{name: BR, type: branch, then: [A, NOPE, request, BR, A], else: [A]}`,
			[]string{
				`nodes[1] "BR" (branch): then[1]: unknown node "NOPE"`,
				`nodes[1] "BR" (branch): then[2]: cannot list implicit node "request"`,
				`nodes[1] "BR" (branch): then[3]: a branch cannot list itself`,
				`nodes[1] "BR" (branch): then[4]: duplicate entry "A"`,
				`nodes[1] "BR" (branch): else[0]: "A" is also listed in then`,
			}},
		{"io keys", `{name: BR, type: branch, inputs: {x: A}, output: A, outputs: {y: A}, then: [A]}`,
			[]string{
				`nodes[1] "BR" (branch): inputs: not supported by branch nodes`,
				`nodes[1] "BR" (branch): output: not supported by branch nodes`,
				`nodes[1] "BR" (branch): outputs: not supported by branch nodes`,
			}},
		{"unknown attribute", `{name: BR, type: branch, then: [A], when: true}`,
			[]string{`nodes[1] "BR" (branch): when: unknown field`}},
		{"string input", `{name: BR, type: branch, input: A.s, then: [A]}`,
			[]string{`nodes[1] "BR" (branch): input: invalid connection ("A.s" -> "BR"): type mismatch: string -> boolean`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := compileErrors(t, "nodes:\n  - {name: A, type: static, values: {s: x}}\n  - "+tt.node+"\n")
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}
