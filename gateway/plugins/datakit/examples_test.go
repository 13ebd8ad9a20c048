package datakit_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// serviceWith is a document with one service at upstream, a catch-all route
// and a datakit plugin whose config is the given YAML (indented 10 spaces).
func serviceWith(upstream, config string) string {
	return `
_format_version: "3.0"
services:
  - name: api
    url: ` + upstream + `
    routes: [{name: r, paths: ["/"]}]
    plugins:
      - name: datakit
        config:
` + config
}

// echo answers every request with a JSON echo of what it received.
func echo(t *testing.T) (*httptest.Server, *recorded) {
	t.Helper()
	rec := &recorded{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.add(r)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Echo", "1")
		_ = json.NewEncoder(w).Encode(map[string]any{"path": r.URL.Path, "query": r.URL.RawQuery})
	}))
	t.Cleanup(srv.Close)
	return srv, rec
}

// TestRuntimeURL is spec §13.2: the call's URL comes from a jq node.
func TestRuntimeURL(t *testing.T) {
	token, tokenRec := mock(t, 200, `{"token_type":"Bearer","access_token":"abc"}`, 0)
	upstream, _ := mock(t, 200, `{}`, 0)
	gw := startGateway(t, serviceWith(upstream.URL, `
          nodes:
            - name: BUILD_URL
              type: jq
              input: request.headers
              jq: '"`+token.URL+`/" + .["X-Tenant"] + "/auth-token"'
            - {name: AUTH_REQUEST, type: call, method: POST, url: `+token.URL+`/static, inputs: {url: BUILD_URL}}
            - {name: H, type: jq, input: AUTH_REQUEST.body, output: service_request.headers, jq: '{Authorization: (.token_type + " " + .access_token)}'}
`))
	if resp, body := get(t, gw.URL+"/", http.Header{"X-Tenant": {"tenant1"}}); resp.StatusCode != 200 {
		t.Fatalf("status %d %s", resp.StatusCode, body)
	}
	if resp, body := get(t, gw.URL+"/", nil); resp.StatusCode != 200 {
		t.Fatalf("status %d %s", resp.StatusCode, body)
	}
	if got := []string{tokenRec.reqs[0].URL.Path, tokenRec.reqs[1].URL.Path}; got[0] != "/tenant1/auth-token" || got[1] != "//auth-token" {
		t.Errorf("token paths = %v, want [/tenant1/auth-token //auth-token]", got)
	}
}

// TestRenameAndForwardHeaders is spec §13.5.
func TestRenameAndForwardHeaders(t *testing.T) {
	api, apiRec := echo(t)
	upstream, upRec := mock(t, 200, `{}`, 0)
	gw := startGateway(t, serviceWith(upstream.URL, `
          nodes:
            - {name: HEADERS, type: static, values: {X-API-Header-One: foo, X-API-Header-Two: bar}}
            - name: MERGE_HEADERS
              type: jq
              inputs: {static: HEADERS, request: request.headers}
              jq: '.static * (.request | with_entries(.key = "X-Request-" + .key))'
            - {name: API, type: call, url: `+api.URL+`/anything, inputs: {headers: MERGE_HEADERS}}
            - {name: EXIT, type: exit, status: 200, input: API}
`))
	req, _ := http.NewRequest(http.MethodGet, gw.URL+"/", nil)
	req.Host = "gw.test"
	req.Header.Set("User-Agent", "t")
	req.Header.Set("x-custom", "1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Echo") != "1" || !strings.Contains(string(body), `"path":"/anything"`) {
		t.Fatalf("client got %d %s %v", resp.StatusCode, body, resp.Header)
	}
	h := apiRec.reqs[0].Header
	for name, want := range map[string]string{"X-Api-Header-One": "foo", "X-Api-Header-Two": "bar",
		"X-Request-Host": "gw.test", "X-Request-User-Agent": "t", "X-Request-X-Custom": "1", "User-Agent": "datakit/test"} {
		if got := h.Get(name); got != want {
			t.Errorf("API request %s = %q, want %q", name, got, want)
		}
	}
	if upRec.count() != 0 {
		t.Errorf("upstream saw %d requests, want 0 (exit)", upRec.count())
	}
}

// TestClearHeaders is spec §13.6, both variants.
func TestClearHeaders(t *testing.T) {
	api, apiRec := echo(t)
	upstream, upRec := mock(t, 200, `{}`, 0)
	gw := startGateway(t, serviceWith(upstream.URL, `
          nodes:
            - {name: HEADERS, type: static, values: {X-Ignored: null, X-Add-Me: added}}
            - {name: API, type: call, url: `+api.URL+`/anything, inputs: {headers: HEADERS}}
            - {name: EXIT, type: exit, status: 200, inputs: {headers: HEADERS}}
`))
	resp, body := get(t, gw.URL+"/", http.Header{"X-Ignored": {"client"}})
	if resp.StatusCode != 200 || resp.Header.Get("X-Add-Me") != "added" || resp.Header.Get("X-Ignored") != "" || body != "" {
		t.Errorf("client got %d %q %v", resp.StatusCode, body, resp.Header)
	}
	if h := apiRec.reqs[0].Header; h.Get("X-Add-Me") != "added" || h.Get("X-Ignored") != "" {
		t.Errorf("API request headers %v", h)
	}

	gw = startGateway(t, serviceWith(upstream.URL, `
          nodes:
            - {name: HEADERS, type: static, values: {X-Ignored: null, X-Add-Me: added}, output: service_request.headers}
`))
	if resp, _ := get(t, gw.URL+"/", http.Header{"X-Ignored": {"client"}, "X-Kept": {"k"}}); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if h := upRec.reqs[0].Header; h.Get("X-Ignored") != "" || h.Get("X-Add-Me") != "added" || h.Get("X-Kept") != "k" {
		t.Errorf("upstream headers %v", h)
	}
}

// TestReferenceChecks runs spec §13.13 #3, #4, #9 and #11 through the gateway.
func TestReferenceChecks(t *testing.T) {
	upstream, _ := mock(t, 200, `{}`, 0)
	t.Run("3 property types", func(t *testing.T) {
		gw := startGateway(t, serviceWith(upstream.URL, `
          nodes:
            - {name: SERVICE, type: property, property: kong.router.service}
            - {name: IP, type: property, property: kong.client.ip}
            - name: TYPES
              type: jq
              inputs: {service: SERVICE, ip: IP}
              jq: '{"$self": (.|type), "service": (.service|type), "ip": (.ip|type)}'
            - {name: EXIT, type: exit, inputs: {body: TYPES}}
`))
		if _, body := get(t, gw.URL+"/", nil); body != `{"$self":"object","ip":"string","service":"object"}` {
			t.Errorf("body = %s", body)
		}
	})
	t.Run("4 runtime type mismatch", func(t *testing.T) {
		gw := startGateway(t, serviceWith(upstream.URL, `
          debug: true
          nodes:
            - {name: BAD, type: jq, jq: '"oops, not an object/map"'}
            - {name: EXIT, type: exit, inputs: {headers: BAD}}
`))
		resp, body := get(t, gw.URL+"/", nil)
		want := `"error":"type mismatch for input \"headers\" (from \"BAD\"): expected map, got string","message":"node execution error","node":{"index":2,"name":"EXIT","type":"exit"}`
		if resp.StatusCode != 500 || !strings.Contains(body, want) {
			t.Errorf("got %d %s", resp.StatusCode, body)
		}
	})
	t.Run("9 ctx.shared non_nil", func(t *testing.T) {
		gw := startGateway(t, serviceWith(upstream.URL, `
          debug: true
          nodes:
            - {name: SRC, type: property, property: kong.ctx.shared.src, non_nil: true}
            - {name: DST, type: property, property: kong.ctx.shared.api_key, non_nil: true, input: SRC}
`))
		resp, body := get(t, gw.URL+"/", nil)
		if resp.StatusCode != 500 || !strings.Contains(body, `property \"kong.ctx.shared.src\" is nil`) {
			t.Errorf("got %d %s", resp.StatusCode, body)
		}
	})
	t.Run("11 list-form inputs and variables", func(t *testing.T) {
		gw := startGateway(t, serviceWith(upstream.URL, `
          nodes:
            - {name: KEY, type: jq, inputs: [{req: request.headers}], jq: '{"key": $req.Foo}'}
            - {name: EXIT, type: exit, inputs: {body: KEY}}
`))
		if _, body := get(t, gw.URL+"/", http.Header{"foo": {"value"}}); body != `{"key":"value"}` {
			t.Errorf("body = %s", body)
		}
	})
}

// TestVaultSecret is spec §13.3: a vault value reaches the call and never
// the trace.
func TestVaultSecret(t *testing.T) {
	t.Setenv("MY_TOKEN", "s3cr3t-value")
	token, tokenRec := mock(t, 200, `{"token_type":"Bearer","access_token":"abc"}`, 0)
	upstream, _ := mock(t, 200, `{}`, 0)
	gw := startGateway(t, serviceWith(upstream.URL, `
          debug: true
          resources: {vault: {token: "{vault://env/my-token}"}}
          nodes:
            - {name: STATIC_INPUTS, type: static, values: {headers: {Content-Type: application/x-www-form-urlencoded}, body: "grant_type=client_credentials"}}
            - name: BUILD_HEADERS
              type: jq
              inputs: {headers: STATIC_INPUTS.headers, apikey: vault.token}
              jq: '.headers * {"X-Api-Key": .apikey, "X-Echo": .apikey}'
            - {name: AUTH_REQUEST, type: call, method: POST, url: `+token.URL+`/auth-token, inputs: {headers: BUILD_HEADERS, body: STATIC_INPUTS.body}}
`))
	resp, body := get(t, gw.URL+"/", http.Header{"X-Datakit-Debug-Trace": {"1"}})
	if resp.StatusCode != 200 || tokenRec.count() != 1 || tokenRec.reqs[0].Header.Get("X-Api-Key") != "s3cr3t-value" {
		t.Fatalf("status %d, token service saw %d requests", resp.StatusCode, tokenRec.count())
	}
	if strings.Contains(body, "s3cr3t-value") || !strings.Contains(body, `"X-Echo":"********"`) {
		t.Errorf("trace shows the secret or lacks the masked value: %s", body)
	}
}
