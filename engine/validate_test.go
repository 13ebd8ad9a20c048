package engine

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

const nameRuleText = `must match ^[A-Za-z_][A-Za-z0-9_-]{0,254}$`

// compileErrors compiles cfg with the fake registry and returns the messages
// of its *ConfigError (nil when it compiled).
func compileErrors(t *testing.T, cfg string) []string {
	t.Helper()
	p, err := CompileBytes([]byte(cfg), fakeRegistry(nil), Options{})
	if err == nil {
		if p == nil {
			t.Fatalf("CompileBytes(%q) = nil, nil", cfg)
		}
		return nil
	}
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("CompileBytes(%q) error %T, want *ConfigError", cfg, err)
	}
	if p != nil {
		t.Fatalf("CompileBytes(%q) returned a plan with an error", cfg)
	}
	return ce.Messages
}

func manyNodes(n int) string {
	var b strings.Builder
	b.WriteString("nodes:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - {name: N%d, type: jq, jq: .}\n", i)
	}
	return b.String()
}

func TestValidationMessages(t *testing.T) {
	const types = "branch, cache, call, exit, jq, json_to_xml, jwt_decode, jwt_sign, jwt_verify, property, static, xml_to_json"
	const callIn = "body, headers, query, url, http_proxy, https_proxy, proxy_auth_username, proxy_auth_password"
	tests := []struct {
		name string
		cfg  string
		want []string
	}{
		{"valid", `nodes: [{name: A, type: jq, jq: ., input: request.body, output: service_request.body}]`, nil},
		// nodes itself
		{"no nodes", `nodes: []`, []string{"nodes: must contain between 1 and 64 nodes, got 0"}},
		{"too many nodes", manyNodes(65), []string{"nodes: must contain between 1 and 64 nodes, got 65"}},
		{"nodes missing", `debug: false`, []string{"nodes: required field missing"}},
		{"nodes not array", `nodes: 3`, []string{"nodes: expected array, got number"}},
		{"node not object", `nodes: [1, {name: A, type: jq, jq: .}]`, []string{"nodes[0]: expected object, got number"}},
		// type
		{"type missing", `nodes: [{name: A}]`, []string{`nodes[0] "A": type: required field missing`}},
		{"type unknown", `nodes: [{name: A, type: nope}]`,
			[]string{`nodes[0] "A" (nope): type: unknown node type "nope"; expected one of: ` + types}},
		{"type not string", `nodes: [{name: A, type: 5}]`, []string{`nodes[0] "A": type: expected string, got number`}},
		// name
		{"name missing", `nodes: [{type: jq, jq: .}]`, []string{`nodes[0] (jq): name: required field missing`}},
		{"name not string", `nodes: [{name: [x], type: jq, jq: .}]`, []string{`nodes[0] (jq): name: expected string, got array`}},
		{"name regex", `nodes: [{name: 1bad, type: jq, jq: .}]`,
			[]string{`nodes[0] "1bad" (jq): name: invalid node name: ` + nameRuleText}},
		{"name too long", `nodes: [{name: ` + strings.Repeat("a", 256) + `, type: jq, jq: .}]`,
			[]string{`nodes[0] "` + strings.Repeat("a", 256) + `" (jq): name: invalid node name: ` + nameRuleText}},
		{"name reserved", `nodes: [{name: request, type: jq, jq: .}]`,
			[]string{`nodes[0] "request" (jq): name: "request" is a reserved node name`}},
		{"name duplicate", `nodes: [{name: A, type: jq, jq: .}, {name: B, type: jq, jq: .}, {name: A, type: static, values: {}}]`,
			[]string{`nodes[2] "A" (static): name: duplicate node name (first used by nodes[0])`}},
		{"names are case-sensitive", `nodes: [{name: A, type: jq, jq: .}, {name: a, type: jq, jq: .}]`, nil},
		// connection keys
		{"input and inputs", `nodes: [{name: A, type: jq, jq: ., input: request.body, inputs: {x: request.body}}]`,
			[]string{`nodes[0] "A" (jq): inputs: cannot be used together with input`}},
		{"output and outputs", `nodes: [{name: C, type: call, url: "http://x", output: service_request, outputs: {body: response.body}}]`,
			[]string{`nodes[0] "C" (call): outputs: cannot be used together with output`}},
		{"13.13#8 inputs on property", `nodes: [{name: P, type: property, property: kong.ctx.shared.x, inputs: {body: request.body}}]`,
			[]string{`nodes[0] "P" (property): inputs: not supported by property nodes`}},
		{"13.13#8 outputs on property", `nodes: [{name: P, type: property, property: kong.ctx.shared.x, outputs: {body: response.body}}]`,
			[]string{`nodes[0] "P" (property): outputs: not supported by property nodes`}},
		{"input on static", `nodes: [{name: S, type: static, values: {a: 1}, input: request.body}]`,
			[]string{`nodes[0] "S" (static): input: not supported by static nodes`}},
		{"output on exit", `nodes: [{name: E, type: exit, output: response}]`,
			[]string{`nodes[0] "E" (exit): output: not supported by exit nodes`}},
		{"inputs null is absent", `nodes: [{name: A, type: jq, jq: ., input: request.body, inputs: null, outputs: null}]`, nil},
		{"unknown input field", `nodes: [{name: C, type: call, url: "http://x", inputs: {foo: request.body}}]`,
			[]string{`nodes[0] "C" (call): inputs.foo: unknown input field "foo"; expected one of: ` + callIn}},
		{"unknown output field", `nodes: [{name: S, type: static, values: {a: 1, c: 2}, outputs: {b: response.body}}]`,
			[]string{`nodes[0] "S" (static): outputs.b: unknown output field "b"; expected one of: a, c`}},
		{"invalid input field name", `nodes: [{name: A, type: jq, jq: ., inputs: {1x: request.body}}]`,
			[]string{`nodes[0] "A" (jq): inputs.1x: invalid input field name: ` + nameRuleText}},
		{"inputs not a map", `nodes: [{name: A, type: jq, jq: ., inputs: x}]`,
			[]string{`nodes[0] "A" (jq): inputs: expected object, got string`}},
		{"list form valid", `nodes: [{name: A, type: jq, jq: ., inputs: [{b: request.body}, {a: request.query}]}]`, nil},
		{"list form two keys", `nodes: [{name: A, type: jq, jq: ., inputs: [{a: request.body, b: request.query}]}]`,
			[]string{`nodes[0] "A" (jq): inputs[0]: expected a map with exactly one key`}},
		{"list form not a map", `nodes: [{name: A, type: jq, jq: ., inputs: [5]}]`,
			[]string{`nodes[0] "A" (jq): inputs[0]: expected a map with exactly one key`}},
		{"list form duplicate", `nodes: [{name: A, type: jq, jq: ., inputs: [{a: request.body}, {a: request.query}]}]`,
			[]string{`nodes[0] "A" (jq): inputs[1]: duplicate field "a"`}},
		{"outputs list form duplicate", `nodes: [{name: C, type: call, url: "http://x", outputs: [{body: response.body}, {body: service_request.body}]}]`,
			[]string{`nodes[0] "C" (call): outputs[1]: duplicate field "body"`}},
		// references
		{"reference empty segment", `nodes: [{name: A, type: jq, jq: ., input: "request..body"}]`,
			[]string{`nodes[0] "A" (jq): input: invalid connection reference "request..body": expected "NODE" or "NODE.FIELD"`}},
		{"reference trailing dot", `nodes: [{name: A, type: jq, jq: ., inputs: {x: "request."}}]`,
			[]string{`nodes[0] "A" (jq): inputs.x: invalid connection reference "request.": expected "NODE" or "NODE.FIELD"`}},
		{"target sub-path", `nodes: [{name: A, type: jq, jq: ., output: response.body.x}]`,
			[]string{`nodes[0] "A" (jq): output: invalid connection reference "response.body.x": a target cannot have a sub-path`}},
		{"reference empty", `nodes: [{name: A, type: jq, jq: ., input: ""}]`,
			[]string{`nodes[0] "A" (jq): input: length must be between 1 and 255, got 0`}},
		{"reference not string", `nodes: [{name: A, type: jq, jq: ., input: 5}]`,
			[]string{`nodes[0] "A" (jq): input: expected string, got number`}},
		{"source sub-path valid", `nodes: [{name: A, type: jq, jq: ., input: request.headers.authorization}]`, nil},
		// connection errors
		{"unknown source node", `nodes: [{name: A, type: jq, jq: ., input: NOPE}]`,
			[]string{`nodes[0] "A" (jq): input: invalid connection ("NOPE" -> "A"): unknown node "NOPE"`}},
		{"unknown target node", `nodes: [{name: A, type: jq, jq: ., output: NOPE.x}]`,
			[]string{`nodes[0] "A" (jq): output: invalid connection ("A" -> "NOPE.x"): unknown node "NOPE"`}},
		{"no output field", `nodes: [{name: A, type: jq, jq: ., input: request.nope}]`,
			[]string{`nodes[0] "A" (jq): input: invalid connection ("request.nope" -> "A"): node "request" has no output field "nope"`}},
		{"no input field", `nodes: [{name: A, type: jq, jq: ., output: C.nope}, {name: C, type: call, url: "http://x"}]`,
			[]string{`nodes[0] "A" (jq): output: invalid connection ("A" -> "C.nope"): node "C" has no input field "nope"`}},
		{"has no inputs (implicit)", `nodes: [{name: A, type: jq, jq: ., output: request}]`,
			[]string{`nodes[0] "A" (jq): output: invalid connection ("A" -> "request"): node "request" has no inputs`}},
		{"has no inputs (static)", `nodes: [{name: A, type: jq, jq: ., output: S}, {name: S, type: static, values: {a: 1}}]`,
			[]string{`nodes[0] "A" (jq): output: invalid connection ("A" -> "S"): node "S" has no inputs`}},
		{"has no outputs (implicit)", `nodes: [{name: A, type: jq, jq: ., input: service_request}]`,
			[]string{`nodes[0] "A" (jq): input: invalid connection ("service_request" -> "A"): node "service_request" has no outputs`}},
		{"has no outputs (exit)", `nodes: [{name: E, type: exit}, {name: A, type: jq, jq: ., input: E}]`,
			[]string{`nodes[1] "A" (jq): input: invalid connection ("E" -> "A"): node "E" has no outputs`}},
		{"self connection", `nodes: [{name: A, type: jq, jq: ., input: A}]`,
			[]string{`nodes[0] "A" (jq): input: invalid connection ("A" -> "A"): a node cannot connect to itself`}},
		{"type mismatch field", `nodes: [{name: B, type: branch, input: request.headers}]`,
			[]string{`nodes[0] "B" (branch): input: invalid connection ("request.headers" -> "B"): type mismatch: map -> boolean`}},
		{"type mismatch into expansion", `nodes: [{name: S, type: static, values: {s: x}}, {name: E, type: exit, input: S.s}]`,
			[]string{`nodes[1] "E" (exit): input: invalid connection ("S.s" -> "E"): type mismatch: string -> object`}},
		{"string number convertible", `nodes: [{name: S, type: static, values: {n: 5}}, {name: C, type: call, inputs: {url: S.n}}]`, nil},
		{"literal string into number", `nodes: [{name: S, type: static, values: {s: "12"}}, {name: C, type: call, url: "http://x", output: E.n}, {name: E, type: jq, jq: .}]`, nil},
		{"no common fields", `nodes: [{name: S, type: static, values: {x: 1}}, {name: C, type: call, url: "http://x", input: S}]`,
			[]string{`nodes[1] "C" (call): input: invalid connection ("S" -> "C"): no common fields between "S" and "C"`}},
		{"invalid literal header value", `nodes: [{name: S, type: static, values: {h: {X-A: "a\nb"}}}, {name: C, type: call, url: "http://x", inputs: {headers: S.h}}]`,
			[]string{`nodes[1] "C" (call): inputs.headers: invalid connection ("S.h" -> "C.headers"): invalid value: invalid value for header "X-A"`}},
		{"invalid literal header name", `nodes: [{name: S, type: static, values: {"a b": x}, output: response.headers}]`,
			[]string{`nodes[0] "S" (static): output: invalid connection ("S" -> "response.headers"): invalid value: invalid header name "a b"`}},
		{"13.13#5 valid", `nodes:
  - {name: CALL_INPUTS, type: static, values: {headers: {X-Foo: "123", X-Multi: [first, second]}, query: {a: true, b: 10}, body: {data: my request body data}}}
  - {name: CALL, type: call, method: POST, url: "http://127.0.0.1/", input: CALL_INPUTS}`, nil},
		{"13.13#5", `nodes:
  - {name: CALL_INPUTS, type: static, values: {headers: "oops not valid headers", query: {a: true, b: 10}, body: {data: my request body data}}}
  - {name: CALL, type: call, method: POST, url: "http://127.0.0.1/", input: CALL_INPUTS}`,
			[]string{`nodes[1] "CALL" (call): input: invalid connection ("CALL_INPUTS.headers" -> "CALL.headers"): type mismatch: string -> map`}},
		{"13.13#6 valid", `nodes: [{name: CALL, type: call, url: "http://x", input: request, output: service_request}]`, nil},
		{"13.13#6", `nodes: [{name: CALL, type: call, url: "http://x", input: request, output: service_request.headers}]`,
			[]string{`nodes[0] "CALL" (call): output: invalid connection ("CALL" -> "service_request.headers"): type mismatch: object -> map`}},
		{"13.13#2", `nodes:
  - {name: GET_FOO, type: property, property: kong.ctx.shared.foo, output: FILTER}
  - {name: GET_BAR, type: property, property: kong.ctx.shared.bar, output: FILTER}
  - {name: FILTER, type: jq, jq: .}`,
			[]string{`nodes[1] "GET_BAR" (property): output: invalid connection ("GET_BAR" -> "FILTER"): conflicts with existing connection ("GET_FOO" -> "FILTER")`}},
		{"13.13#2 valid", `nodes:
  - {name: GET_FOO, type: property, property: kong.ctx.shared.foo}
  - {name: GET_BAR, type: property, property: kong.ctx.shared.bar}
  - {name: FILTER, type: jq, inputs: {foo: GET_FOO, bar: GET_BAR}, jq: .foo * .bar}`, nil},
		{"13.13#7", `nodes:
  - {name: get-foo, type: property, property: kong.ctx.shared.foo, output: response}
  - {name: get-bar, type: property, property: kong.ctx.shared.bar, output: response.body}`,
			[]string{`nodes[1] "get-bar" (property): output: invalid connection ("get-bar" -> "response.body"): conflicts with existing connection ("get-foo" -> "response.body")`}},
		{"node-wise excludes user fields", `nodes: [{name: A, type: jq, jq: ., inputs: {x: request.body}}, {name: B, type: jq, jq: ., output: A}]`,
			[]string{`nodes[1] "B" (jq): output: invalid connection ("B" -> "A"): conflicts with existing connection ("request.body" -> "A.x")`}},
		{"edge on both sides kept once", `nodes: [{name: A, type: jq, jq: ., output: B}, {name: B, type: jq, jq: ., input: A}]`, nil},
		// branch lists
		{"branch lists", `nodes:
  - {name: B, type: branch, input: X, then: [NOPE, request, B, X2, X2], else: [X2, X]}
  - {name: X, type: jq, jq: "true"}
  - {name: X2, type: jq, jq: .}`,
			[]string{
				`nodes[0] "B" (branch): then[0]: unknown node "NOPE"`,
				`nodes[0] "B" (branch): then[1]: cannot list implicit node "request"`,
				`nodes[0] "B" (branch): then[2]: a branch cannot list itself`,
				`nodes[0] "B" (branch): then[4]: duplicate entry "X2"`,
				`nodes[0] "B" (branch): else[0]: "X2" is also listed in then`,
				`nodes[0] "B" (branch): input: invalid dependency ("X" -> "B"): circular dependency: B -> X -> B`,
			}},
		{"branch without lists", `nodes: [{name: B, type: branch, input: X}, {name: X, type: jq, jq: "true"}]`, nil},
		// graph errors
		{"data cycle", `nodes: [{name: A, type: jq, jq: ., input: B}, {name: B, type: jq, jq: ., input: A}]`,
			[]string{`nodes[0] "A" (jq): input: invalid dependency ("B" -> "A"): circular dependency: A -> B -> A`}},
		{"shortest cycle through lowest index", `nodes:
  - {name: A, type: jq, jq: ., inputs: {c: C}}
  - {name: B, type: jq, jq: ., inputs: {a: A}}
  - {name: D, type: jq, jq: ., inputs: {b: B}}
  - {name: C, type: jq, jq: ., inputs: {d: D, b: B}}`,
			[]string{`nodes[0] "A" (jq): inputs.c: invalid dependency ("C" -> "A.c"): circular dependency: A -> B -> C -> A`}},
		{"cycle reported from lowest index", `nodes:
  - {name: Z, type: jq, jq: ., input: request.body}
  - {name: B, type: jq, jq: ., input: C}
  - {name: A, type: jq, jq: ., input: B}
  - {name: C, type: jq, jq: ., input: A}`,
			[]string{`nodes[1] "B" (jq): input: invalid dependency ("C" -> "B"): circular dependency: B -> A -> C -> B`}},
		{"two cycles", `nodes:
  - {name: X, type: jq, jq: ., input: Y}
  - {name: A, type: jq, jq: ., input: B}
  - {name: B, type: jq, jq: ., input: A}
  - {name: Y, type: jq, jq: ., input: X}`,
			[]string{
				`nodes[0] "X" (jq): input: invalid dependency ("Y" -> "X"): circular dependency: X -> Y -> X`,
				`nodes[1] "A" (jq): input: invalid dependency ("B" -> "A"): circular dependency: A -> B -> A`,
			}},
		{"branch control cycle", `nodes: [{name: X, type: jq, jq: "true"}, {name: BR, type: branch, input: X, then: [X]}]`,
			[]string{`nodes[1] "BR" (branch): then[0]: invalid dependency ("BR" -> "X"): circular dependency: X -> BR -> X`}},
		{"response part into service_request", `nodes: [{name: R, type: jq, jq: ., input: service_response.body, output: service_request.body}]`,
			[]string{`nodes[0] "R" (jq): output: invalid dependency ("R" -> "service_request.body"): "R" depends on service_response and runs after proxying`}},
		{"response part into service_request (indirect)", `nodes:
  - {name: R, type: jq, jq: ., input: service_response.status}
  - {name: S, type: jq, jq: ., input: R, output: service_request.headers}
  - {name: T, type: jq, jq: ., input: R, output: service_request.query}`,
			[]string{
				`nodes[1] "S" (jq): output: invalid dependency ("S" -> "service_request.headers"): "S" depends on service_response and runs after proxying`,
				`nodes[2] "T" (jq): output: invalid dependency ("T" -> "service_request.query"): "T" depends on service_response and runs after proxying`,
			}},
		{"access-only property in response part", `nodes: [{name: P, type: property, property: kong.service.target, input: service_response.body}]`,
			[]string{`nodes[0] "P" (property): property: property "kong.service.target" can only be set before proxying, but this node depends on service_response`}},
		{"read-only property", `nodes: [{name: P, type: property, property: kong.client.ip, input: request.body}]`,
			[]string{`nodes[0] "P" (property): property: property "kong.client.ip" is read-only and cannot be set`}},
		{"write-only property", `nodes: [{name: P, type: property, property: kong.service.target}]`,
			[]string{`nodes[0] "P" (property): property: property "kong.service.target" is write-only; connect an input to set it`}},
		{"response-only getter feeding service_request", `nodes: [{name: P, type: property, property: kong.service.response.status, output: service_request.body}]`,
			[]string{`nodes[0] "P" (property): output: invalid dependency ("P" -> "service_request.body"): "P" depends on service_response and runs after proxying`}},
		// top level
		{"debug type", `{debug: 1, nodes: [{name: A, type: jq, jq: .}]}`, []string{"debug: expected boolean, got number"}},
		{"unknown top-level key", `{nodes: [{name: A, type: jq, jq: .}], foo: 1, bar: 2}`,
			[]string{"bar: unknown field", "foo: unknown field"}},
		{"unknown attribute", `nodes: [{name: A, type: jq, jq: ., zz: 1, bogus: 2}]`,
			[]string{`nodes[0] "A" (jq): bogus: unknown field`, `nodes[0] "A" (jq): zz: unknown field`}},
		{"attribute required", `nodes: [{name: A, type: jq}]`, []string{`nodes[0] "A" (jq): jq: required field missing`}},
		{"not an object", `[1, 2]`, []string{"config: expected object, got array"}},
		{"syntax error yaml", "nodes: [\n", []string{"syntax error: yaml: line 1: did not find expected node content"}},
		{"syntax error json", `{"nodes": [}`, []string{"syntax error: invalid character '}' looking for beginning of value"}},
		{"json document", `{"nodes": [{"name": "A", "type": "jq", "jq": "."}], "debug": true}`, nil},
		{"duplicate yaml key", "nodes: []\nnodes: []\n", []string{`syntax error: line 2: mapping key "nodes" already defined`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := compileErrors(t, tt.cfg)
			if !slices.Equal(got, tt.want) {
				t.Errorf("Compile(%q) errors =\n%s\nwant\n%s", tt.cfg, strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// TestValidationOrder checks that one configuration with many errors gets all
// of them, in the order of spec §11: attribute errors per node in index order
// (fields in §2.3 then §2.4 order), debug, resources; then connection errors
// in connection order; then graph errors.
func TestValidationOrder(t *testing.T) {
	cfg := `
debug: maybe
zeta: 1
nodes:
  - {name: A, type: jq, jq: ., input: B, bogus: 1}
  - {name: B, type: jq, jq: ., input: A}
  - {type: nope, name: 9x}
  - {name: P, type: property, property: kong.client.ip, input: request.body, inputs: {x: y}}
  - {name: C, type: call, url: "http://x", inputs: {zz: request.body, body: NOPE}, output: request}
  - {name: A, type: static, values: {a: 1}}
  - {name: S, type: static, values: {x: 1}, output: C}
`
	want := []string{
		`nodes[0] "A" (jq): bogus: unknown field`,
		`nodes[2] "9x" (nope): type: unknown node type "nope"; expected one of: branch, cache, call, exit, jq, json_to_xml, jwt_decode, jwt_sign, jwt_verify, property, static, xml_to_json`,
		`nodes[2] "9x" (nope): name: invalid node name: ` + nameRuleText,
		`nodes[3] "P" (property): inputs: not supported by property nodes`,
		`nodes[3] "P" (property): property: property "kong.client.ip" is read-only and cannot be set`,
		`nodes[4] "C" (call): inputs.zz: unknown input field "zz"; expected one of: body, headers, query, url, http_proxy, https_proxy, proxy_auth_username, proxy_auth_password`,
		`nodes[5] "A" (static): name: duplicate node name (first used by nodes[0])`,
		`debug: expected boolean, got string`,
		`zeta: unknown field`,
		`nodes[4] "C" (call): inputs.body: invalid connection ("NOPE" -> "C.body"): unknown node "NOPE"`,
		`nodes[4] "C" (call): output: invalid connection ("C" -> "request"): node "request" has no inputs`,
		`nodes[6] "S" (static): output: invalid connection ("S" -> "C"): no common fields between "S" and "C"`,
		`nodes[0] "A" (jq): input: invalid dependency ("B" -> "A"): circular dependency: A -> B -> A`,
	}
	got := compileErrors(t, cfg)
	if !slices.Equal(got, want) {
		t.Errorf("Compile errors =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestHostileDocuments feeds documents built to exhaust time or memory: each
// must get a clear error quickly.
func TestHostileDocuments(t *testing.T) {
	var bomb strings.Builder
	bomb.WriteString("a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n")
	prev := "a"
	for _, n := range []string{"b", "c", "d", "e", "f", "g", "h", "i"} {
		fmt.Fprintf(&bomb, "%s: &%s [*%s,*%s,*%s,*%s,*%s,*%s,*%s,*%s,*%s]\n", n, n, prev, prev, prev, prev, prev, prev, prev, prev, prev)
		prev = n
	}
	bomb.WriteString("nodes: [{name: A, type: static, values: {x: *i}}]\n")

	var many strings.Builder
	many.WriteString(`{"nodes":[`)
	for i := range 100000 {
		if i > 0 {
			many.WriteByte(',')
		}
		fmt.Fprintf(&many, `{"name":"N%d","type":"jq","jq":"."}`, i)
	}
	many.WriteString(`]}`)

	tests := []struct {
		name string
		doc  string
		want string // a prefix of the single message
	}{
		{"alias bomb", bomb.String(), "syntax error: document too large"},
		{"100000 nodes", many.String(), "nodes: must contain between 1 and 64 nodes, got 100000"},
		{"deep yaml", "nodes: " + strings.Repeat("[", 10000) + strings.Repeat("]", 10000), "syntax error: "},
		{"deep yaml block", "nodes:\n" + deepBlock(10000), "syntax error: "},
		{"deep yaml sequence markers", "nodes:\n  " + strings.Repeat("- ", 100000) + "x\n", "syntax error: nesting exceeds 512 levels"},
		{"deep yaml flow", "nodes: " + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + "\n", "syntax error: nesting exceeds 512 levels"},
		{"deep json", `{"nodes":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`, "syntax error: "},
		{"huge document", "nodes: [{name: A, type: jq, jq: '" + strings.Repeat("x", 9<<20) + "'}]", "syntax error: document exceeds"},
		{"huge string", "nodes: [{name: A, type: jq, jq: '" + strings.Repeat("x", 1<<20) + "'}]", `nodes[0] "A" (jq): jq: length must be between 1 and 10240, got 1048576`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			done := make(chan []string, 1)
			go func() {
				_, err := CompileBytes([]byte(tt.doc), fakeRegistry(nil), Options{})
				var ce *ConfigError
				if !errors.As(err, &ce) {
					done <- []string{fmt.Sprintf("not a *ConfigError: %v", err)}
					return
				}
				done <- ce.Messages
			}()
			timer := time.NewTimer(10 * time.Second)
			defer timer.Stop()
			select {
			case msgs := <-done:
				if len(msgs) != 1 || !strings.HasPrefix(msgs[0], tt.want) {
					short := msgs
					if len(short) > 3 {
						short = short[:3]
					}
					t.Errorf("CompileBytes(%s) = %d messages %.300q, want one starting %q", tt.name, len(msgs), short, tt.want)
				}
			case <-timer.C:
				t.Fatalf("CompileBytes(%s) still running after 10 s", tt.name)
			}
		})
	}
}

func deepBlock(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(strings.Repeat(" ", i+2))
		b.WriteString("- \n")
	}
	return b.String()
}
