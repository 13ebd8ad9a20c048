package admin_test

import (
	"encoding/json"
	"testing"
)

// docsThirdPartyAuth is the body of Kong's Datakit example "Authenticate to
// a third-party service" (POST /plugins), as the docs give it: static
// inputs, a jq node building headers, a call to the token endpoint, and a
// jq node setting the upstream Authorization header (datakit.md §13.1, the
// 3.11 string body form).
const docsThirdPartyAuth = `{
  "name": "datakit",
  "config": {
    "nodes": [
      {
        "name": "STATIC_INPUTS",
        "type": "static",
        "values": {
          "headers": {
            "Content-Type": "application/x-www-form-urlencoded"
          },
          "body": "grant_type=client_credentials"
        }
      },
      {
        "name": "BUILD_HEADERS",
        "type": "jq",
        "inputs": {
          "headers": "STATIC_INPUTS.headers",
          "query": "request.query"
        },
        "jq": ".headers * {\"X-Api-Key\": (.query.api_key // \"none\")}"
      },
      {
        "name": "AUTH_REQUEST",
        "type": "call",
        "inputs": {
          "headers": "BUILD_HEADERS",
          "body": "STATIC_INPUTS.body"
        },
        "url": "https://example.com/auth-token",
        "method": "POST"
      },
      {
        "name": "UPSTREAM_AUTH_HEADER",
        "type": "jq",
        "input": "AUTH_REQUEST.body",
        "output": "service_request.headers",
        "jq": "{\"Authorization\": (.token_type + \" \" + .access_token)}"
      }
    ]
  }
}`

// TestDatakitDocsExample posts the docs' body verbatim globally, under a
// Service and under a Route, and reads each plugin back.
func TestDatakitDocsExample(t *testing.T) {
	e := newDBEnv(t, nil)
	svc := e.call(t, "POST", "/services", `{"name":"example-service","url":"http://httpbin.test/anything"}`, 201)
	e.call(t, "POST", "/services/example-service/routes", `{"name":"example-route","paths":["/anything"]}`, 201)

	var sent map[string]any
	if err := json.Unmarshal([]byte(docsThirdPartyAuth), &sent); err != nil {
		t.Fatal(err)
	}
	wantNodes := mustJSON(t, sent["config"].(map[string]any)["nodes"])
	for _, tc := range []struct{ name, path, scope string }{
		{"global", "/plugins", ""},
		{"service", "/services/example-service/plugins", "service"},
		{"route", "/routes/example-route/plugins", "route"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			created := e.call(t, "POST", tc.path, docsThirdPartyAuth, 201)
			id, _ := created["id"].(string)
			got := e.call(t, "GET", "/plugins/"+id, "", 200)
			if !jsonEqual(t, mustJSON(t, got), mustJSON(t, created)) {
				t.Errorf("GET /plugins/%s = %s, want the created %s", id, mustJSON(t, got), mustJSON(t, created))
			}
			cfg, _ := got["config"].(map[string]any)
			if !jsonEqual(t, mustJSON(t, cfg["nodes"]), wantNodes) {
				t.Errorf("config.nodes = %s, want %s", mustJSON(t, cfg["nodes"]), wantNodes)
			}
			if got["name"] != "datakit" || got["enabled"] != true {
				t.Errorf("plugin = %s", mustJSON(t, got))
			}
			for _, s := range []string{"service", "route"} {
				ref, _ := got[s].(map[string]any)
				if (s == tc.scope) != (ref != nil) {
					t.Errorf("%s = %v, want scope %q", s, got[s], tc.scope)
				}
			}
			if tc.scope == "service" && got["service"].(map[string]any)["id"] != svc["id"] {
				t.Errorf("service = %v, want %v", got["service"], svc["id"])
			}
		})
	}
	var page struct{ Data []json.RawMessage }
	if err := json.Unmarshal(e.do(t, req{path: "/plugins"}).Body.Bytes(), &page); err != nil || len(page.Data) != 3 {
		t.Errorf("GET /plugins: %d plugins, want 3", len(page.Data))
	}
}
