package nodes_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/datakit-gateway/datakit/engine"
	"github.com/datakit-gateway/datakit/nodes"
)

// requestExchange serves the client request from a map of its fields.
type requestExchange struct {
	benchExchange
	fields map[string]any
}

func (r requestExchange) Request(_ context.Context, field string) (any, error) {
	return r.fields[field], nil
}

func runGraph(t *testing.T, deps nodes.Deps, cfg string, fields map[string]any) engine.Outcome {
	t.Helper()
	reg := engine.NewRegistry()
	nodes.Register(reg, deps)
	plan, err := engine.CompileBytes([]byte(cfg), reg, engine.Options{})
	if err != nil {
		t.Fatalf("Compile = %v", err)
	}
	return plan.NewRun(requestExchange{fields: fields}, engine.RunOptions{}).Access(context.Background())
}

func contentType(r *engine.Response) string {
	for _, l := range r.Headers {
		if l.Name == "Content-Type" {
			return strings.Join(l.Values, ",")
		}
	}
	return ""
}

// Spec §13.8 and §13.9 through a compiled plan: the exit gets application/xml
// from json_to_xml's declared content type.
func TestPlanXML(t *testing.T) {
	body, err := engine.DecodeJSON([]byte(`{"root":{"name":"Alice","age":30,"is_student":false,"courses":["Math","Science"],` +
		`"address":{"street":"123 Main St","city":"Wonderland"},"null_value":null}}`))
	if err != nil {
		t.Fatal(err)
	}
	out := runGraph(t, nodes.Deps{}, `
debug: true
nodes:
  - name: JSON_XML
    type: json_to_xml
    attributes_name_prefix: "-"
    attributes_block_name: null
    text_block_name: "#text"
    input: request.body
  - {name: EXIT, type: exit, inputs: {body: JSON_XML}}
`, map[string]any{"body": body})
	want := `<root><address><city>Wonderland</city><street>123 Main St</street></address><age>30</age><courses>Math</courses><courses>Science</courses><is_student>false</is_student><name>Alice</name><null_value>null</null_value></root>`
	if out.Err != nil || out.Exit == nil || string(out.Exit.Body) != want || contentType(out.Exit) != "application/xml" {
		t.Fatalf("13.8 = %+v %v, want %s as application/xml", out.Exit, out.Err, want)
	}
	out = runGraph(t, nodes.Deps{}, `
nodes:
  - {name: XML_JSON, type: xml_to_json, attributes_block_name: null, attributes_name_prefix: "-", recognize_type: true,
     text_block_name: "#text", xpath: null, input: request.body}
  - {name: EXIT, type: exit, inputs: {body: XML_JSON}}
`, map[string]any{"body": "<root>\n  <address>\n    <city>Wonderland</city>\n    <street>123 Main St</street>\n  </address>\n" +
		"  <age>30</age>\n  <courses>Math</courses>\n  <courses>Science</courses>\n  <is_student>false</is_student>\n" +
		"  <name>Alice</name>\n  <null_value>null</null_value>\n</root>\n"})
	want = `{"root":{"address":{"city":"Wonderland","street":"123 Main St"},"age":30,"courses":["Math","Science"],"is_student":false,"name":"Alice","null_value":null}}`
	if out.Err != nil || out.Exit == nil || string(out.Exit.Body) != want || contentType(out.Exit) != "application/json" {
		t.Fatalf("13.9 = %+v %v, want %s as application/json", out.Exit, out.Err, want)
	}
}

// Spec §13.13 #10: jwt_decode reads `authorization: bearer <jwt>` through a
// sub-path; without the header it fails with `token is missing`.
func TestPlanJWTDecode(t *testing.T) {
	cfg := `
nodes:
  - {name: DECODE, type: jwt_decode, input: request.headers.authorization}
  - {name: EXIT, type: exit, inputs: {body: DECODE.payload}}
`
	// {"alg":"HS256","typ":"JWT"} . {"sub":"alice"}
	tok := "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSJ9.c2ln"
	out := runGraph(t, nodes.Deps{}, cfg, map[string]any{"headers": map[string]any{"Authorization": "bearer " + tok}})
	if out.Err != nil || out.Exit == nil || string(out.Exit.Body) != `{"sub":"alice"}` {
		t.Errorf("decode = %+v %v", out.Exit, out.Err)
	}
	out = runGraph(t, nodes.Deps{}, cfg, map[string]any{"headers": map[string]any{}})
	if out.Err == nil || out.Err.Name != "DECODE" || out.Err.Err.Error() != "token is missing" {
		t.Errorf("decode without header = %v, want DECODE: token is missing", out.Err)
	}
}

// The verification half of spec §13.14, and §13.11's sign-then-verify,
// through compiled plans with the gateway's clock in Deps.
func TestPlanJWTSignVerify(t *testing.T) {
	k1, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	jwksText := func(k *rsa.PrivateKey, kid string, private bool) string {
		var raw any = &k.PublicKey
		if private {
			raw = k
		}
		key, err := jwk.Import(raw)
		if err != nil {
			t.Fatal(err)
		}
		_ = key.Set("kid", kid)
		b, _ := json.Marshal(key)
		if private {
			return string(b)
		}
		return `{"keys":[` + string(b) + `]}`
	}
	quote := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	now := time.Unix(1700000000, 0)
	deps := nodes.Deps{Now: func() time.Time { return now }}
	sign := func(priv string) string {
		out := runGraph(t, deps, `
nodes:
  - {name: KEYS, type: static, values: {priv: `+quote(priv)+`}}
  - {name: CLAIMS, type: static, values: {sub: alice}}
  - {name: SIGN, type: jwt_sign, algorithm: RS256, static_claims: {iss: kong}, inputs: {claims: CLAIMS, key: KEYS.priv}}
  - {name: EXIT, type: exit, inputs: {body: SIGN.token}}
`, nil)
		if out.Err != nil || out.Exit == nil {
			t.Fatalf("sign = %v", out.Err)
		}
		return string(out.Exit.Body)
	}
	tok1, tok2 := sign(jwksText(k1, "k1", true)), sign(jwksText(k2, "k2", true))
	verifyCfg := `
nodes:
  - {name: KEYS, type: static, values: {jwks1: ` + quote(jwksText(k1, "k1", false)) + `}}
  - {name: VERIFY_AUTH1, type: jwt_verify, issuers: [kong], inputs: {token: request.headers.authorization, key: KEYS.jwks1}}
  - {name: BUILD_CONSUMER1, type: jq, input: VERIFY_AUTH1.claims, jq: '{username: .sub}'}
  - {name: EXIT, type: exit, inputs: {body: BUILD_CONSUMER1}}
`
	out := runGraph(t, deps, verifyCfg, map[string]any{"headers": map[string]any{"Authorization": "Bearer " + tok1}})
	if out.Err != nil || out.Exit == nil || string(out.Exit.Body) != `{"username":"alice"}` {
		t.Errorf("verify k1 token = %+v %v, want alice", out.Exit, out.Err)
	}
	out = runGraph(t, deps, verifyCfg, map[string]any{"headers": map[string]any{"Authorization": "Bearer " + tok2}})
	if out.Err == nil || out.Err.Name != "VERIFY_AUTH1" || out.Err.Err.Error() != "no matching key in JWKS" {
		t.Errorf("verify k2 token = %v, want VERIFY_AUTH1: no matching key in JWKS", out.Err)
	}
	now = now.Add(301 * time.Second)
	out = runGraph(t, deps, verifyCfg, map[string]any{"headers": map[string]any{"Authorization": "Bearer " + tok1}})
	if out.Err == nil || out.Err.Err.Error() != "token expired" {
		t.Errorf("verify after 301 s = %v, want token expired", out.Err)
	}
}
