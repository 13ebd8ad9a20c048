package admin_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/datakit-gateway/datakit/admin"
)

const (
	notFound    = `{"message":"Not found"}`
	notAllowed  = `{"message":"Method not allowed"}`
	unauthBody  = `{"message":"Invalid credentials. Token or User credentials required"}`
	jsonType    = "application/json"
	formType    = "application/x-www-form-urlencoded"
	guiOrigin   = "https://gui.example.com"
	validPlugin = `{"name":"datakit","config":{"nodes":[{"name":"A","type":"static","values":{"a":1}}]}}`
)

func TestProtectionWithoutToken(t *testing.T) {
	e := newEnv(t, "", func(o *admin.Options) {
		o.AllowedHosts = []string{"admin.internal"}
		o.GUIOrigins = []string{guiOrigin}
		o.MaxBodySize = 100
	})
	ct := func(v string) map[string]string { return map[string]string{"Content-Type": v} }
	run(t, e, []behaviour{
		{name: "localhost", req: req{path: "/status/ready"}, status: 503},
		{name: "ip literal", req: req{path: "/endpoints", header: map[string]string{"Host": "127.0.0.1:8001"}}, status: 200},
		{name: "ipv6 literal", req: req{path: "/endpoints", header: map[string]string{"Host": "[::1]:8001"}}, status: 200},
		{name: "allowed host", req: req{path: "/endpoints", header: map[string]string{"Host": "ADMIN.internal:8001"}}, status: 200},
		{name: "rebinding host", req: req{path: "/endpoints", header: map[string]string{"Host": "evil.example.com"}},
			status: 403, body: `{"message":"Host not allowed"}`},
		{name: "unknown path", req: req{path: "/nope"}, status: 404, body: notFound},
		{name: "targets top level", req: req{path: "/targets"}, status: 404, body: notFound},
		{name: "cache", req: req{path: "/cache"}, status: 404, body: notFound},
		{name: "undefined method", req: req{method: http.MethodDelete, path: "/status"}, status: 405, body: notAllowed,
			header: map[string]string{"Allow": "GET, HEAD, OPTIONS"}},
		{name: "custom method", req: req{method: "PROPFIND", path: "/services"}, status: 405, body: notAllowed},
		{name: "options", req: req{method: http.MethodOptions, path: "/services"}, status: 204, body: "-",
			header: map[string]string{"Allow": "GET, HEAD, OPTIONS, POST"}},
		{name: "head", req: req{method: http.MethodHead, path: "/endpoints"}, status: 200, body: "-",
			header: map[string]string{"Content-Type": "application/json; charset=utf-8"}},
		{name: "trailing slash", req: req{path: "/services/"}, status: 200, body: `{"data":[],"next":null}`},
		{name: "server and latency headers", req: req{path: "/endpoints"}, status: 200,
			header: map[string]string{"Server": "datakit/0.1.0", "X-Kong-Admin-Latency": "0"}},
		{name: "missing type", req: req{method: http.MethodPost, path: "/schemas/plugins/validate", body: validPlugin}, status: 415, body: "-"},
		{name: "other type", req: req{method: http.MethodPost, path: "/schemas/plugins/validate", body: validPlugin,
			header: ct("text/plain")}, status: 415, body: "-"},
		{name: "yaml outside config", req: req{method: http.MethodPost, path: "/schemas/plugins/validate", body: "name: x",
			header: ct("application/yaml")}, status: 415, body: "-"},
		{name: "empty body needs no type", req: req{method: http.MethodPost, path: "/schemas/plugins/validate"}, status: 400},
		{name: "too large", req: req{method: http.MethodPost, path: "/schemas/plugins/validate", body: validPlugin + strings.Repeat(" ", 64),
			header: ct(jsonType)}, status: 413, body: `{"message":"Payload too large"}`},
		{name: "bad json", req: req{method: http.MethodPost, path: "/schemas/plugins/validate", body: `{"name":`,
			header: ct(jsonType)}, status: 400, body: `{"message":"Cannot parse JSON body"}`},
		{name: "cross-site fetch", req: req{method: http.MethodPost, path: "/schemas/plugins/validate", body: `{}`,
			header: map[string]string{"Content-Type": jsonType, "Sec-Fetch-Site": "cross-site"}},
			status: 403, body: `{"message":"cross-origin request rejected"}`},
		{name: "foreign origin", req: req{method: http.MethodDelete, path: "/services/x",
			header: map[string]string{"Origin": "http://evil.example.com"}},
			status: 403, body: `{"message":"cross-origin request rejected"}`},
		{name: "same origin json write", req: req{method: http.MethodPost, path: "/schemas/plugins/validate", body: `{"name":"datakit","config":{"nodes":[{"name":"A","type":"static","values":{"a":1}}]}}`,
			header: map[string]string{"Content-Type": jsonType, "Origin": "http://localhost:8001", "Sec-Fetch-Site": "same-origin"}},
			status: 200, body: `{"message":"schema validation successful"}`},
		{name: "browser form write without token", req: req{method: http.MethodPost, path: "/schemas/plugins/validate", body: "name=datakit",
			header: map[string]string{"Content-Type": formType, "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Site": "same-origin"}},
			status: 403, body: `{"message":"form writes from a browser require admin_token"}`},
		{name: "gui origin may write", req: req{method: http.MethodDelete, path: "/services/x",
			header: map[string]string{"Origin": guiOrigin}}, status: 405,
			header: map[string]string{"Access-Control-Allow-Origin": guiOrigin, "Access-Control-Allow-Credentials": "true"}},
		{name: "no cors for others", req: req{path: "/endpoints", header: map[string]string{"Origin": "http://evil.example.com"}},
			status: 200, header: map[string]string{"Access-Control-Allow-Origin": ""}},
		{name: "preflight", req: req{method: http.MethodOptions, path: "/services", header: map[string]string{
			"Origin": guiOrigin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "kong-admin-token, content-type"}},
			status: 204, header: map[string]string{"Access-Control-Allow-Origin": guiOrigin,
				"Access-Control-Allow-Headers": "kong-admin-token, content-type"}},
	})

	// Two Content-Type headers cannot be set through the table.
	r := httpRequest(http.MethodPost, "/schemas/plugins/validate", `{}`)
	r.Header.Add("Content-Type", jsonType)
	r.Header.Add("Content-Type", jsonType)
	w := serve(e.h, r)
	if w.Code != 400 || !jsonEqual(t, w.Body.String(), `{"message":"Multiple Content-Type headers not allowed"}`) {
		t.Errorf("two Content-Type headers = %d %s, want 400", w.Code, w.Body.String())
	}
}

// TestT32AdminAuthentication: with admin_token every request needs the
// token, checked before routing and before the body is read: a missing,
// wrong or wrong-length token gets 401 on known and unknown paths alike
// (hardening T32; the start-up half is in cmd/datakit).
func TestT32AdminAuthentication(t *testing.T) {
	e := newEnv(t, "", func(o *admin.Options) {
		o.AdminToken = "s3cr3t-t0ken-value"
		o.GUIOrigins = []string{guiOrigin}
	})
	tok := func(h map[string]string) map[string]string {
		h["Kong-Admin-Token"] = "s3cr3t-t0ken-value"
		return h
	}
	run(t, e, []behaviour{
		{name: "no token", req: req{path: "/"}, status: 401, body: unauthBody},
		{name: "wrong token", req: req{path: "/", header: map[string]string{"Kong-Admin-Token": "s3cr3t-t0ken-valuE"}}, status: 401, body: unauthBody},
		{name: "no token unknown path", req: req{path: "/nope"}, status: 401, body: unauthBody},
		{name: "wrong token unknown path", req: req{path: "/nope", header: map[string]string{"Kong-Admin-Token": "s3cr3t-t0ken-valuX"}}, status: 401, body: unauthBody},
		{name: "empty token", req: req{path: "/", header: map[string]string{"Kong-Admin-Token": ""}}, status: 401, body: unauthBody},
		{name: "shorter token", req: req{path: "/", header: map[string]string{"Kong-Admin-Token": "s3cr3t"}}, status: 401, body: unauthBody},
		{name: "prefix of token", req: req{path: "/", header: map[string]string{"Kong-Admin-Token": "s3cr3t-t0ken-valu"}}, status: 401, body: unauthBody},
		{name: "longer token", req: req{path: "/", header: map[string]string{"Kong-Admin-Token": "s3cr3t-t0ken-value-and-more"}}, status: 401, body: unauthBody},
		{name: "token with whitespace", req: req{path: "/", header: map[string]string{"Kong-Admin-Token": "s3cr3t-t0ken-value "}}, status: 401, body: unauthBody},
		{name: "token in another header", req: req{path: "/", header: map[string]string{"Authorization": "Bearer s3cr3t-t0ken-value"}}, status: 401, body: unauthBody},
		{name: "wrong token write", req: req{method: http.MethodPost, path: "/config", body: "_format_version: \"3.0\"\n",
			header: map[string]string{"Kong-Admin-Token": "nope", "Content-Type": "application/yaml"}}, status: 401, body: unauthBody},
		{name: "wrong token before body checks", req: req{method: http.MethodPost, path: "/services", body: "x",
			header: map[string]string{"Content-Type": "text/plain"}}, status: 401, body: unauthBody},
		{name: "wrong token options", req: req{method: http.MethodOptions, path: "/services"}, status: 401, body: unauthBody},
		{name: "token unknown path", req: req{path: "/nope", header: tok(map[string]string{})}, status: 404, body: notFound},
		{name: "token", req: req{path: "/endpoints", header: tok(map[string]string{})}, status: 200},
		{name: "token skips host check", req: req{path: "/endpoints", header: tok(map[string]string{"Host": "gw.example.com"})}, status: 200},
		{name: "browser form write with token", req: req{method: http.MethodPost, path: "/schemas/plugins/validate",
			body:   "name=datakit&config.nodes[1].name=A&config.nodes[1].type=static&config.nodes[1].values.a=1",
			header: tok(map[string]string{"Content-Type": formType, "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Site": "same-origin"})},
			status: 200, body: `{"message":"schema validation successful"}`},
		{name: "cross-site still refused", req: req{method: http.MethodPost, path: "/schemas/plugins/validate", body: `{}`,
			header: tok(map[string]string{"Content-Type": jsonType, "Sec-Fetch-Site": "same-site"})}, status: 403},
		{name: "preflight without token", req: req{method: http.MethodOptions, path: "/services", header: map[string]string{
			"Origin": guiOrigin, "Access-Control-Request-Method": "GET"}}, status: 204},
	})
}
