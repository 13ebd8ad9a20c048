package main

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/datakit-gateway/datakit/gateway"
	"github.com/datakit-gateway/datakit/gateway/settings"
)

// TestJQSettingsReachNodes: the datakit_jq_* limits configure the jq nodes
// the gateway runs (buildPlugins).
func TestJQSettingsReachNodes(t *testing.T) {
	tests := []struct{ path, jq, want string }{
		{"/value", `"x" * 101`, "jq: value exceeds limit of 100 bytes"},
		{"/index", `.[11] = 1`, "jq: array index exceeds limit of 10"},
		{"/regex", `"abc" | test("abcdef")`, "jq: value exceeds limit of 5 bytes"},
		{"/output", `[range(20)]`, "jq: value exceeds limit of 200 bytes"},
		{"/depth", `[[[[1]]]]`, "jq: result exceeds depth limit of 3"},
	}
	doc := "_format_version: \"3.0\"\nservices:\n  - name: api\n    url: " + upstreamSaying(t, "ok", 0) + "\n    routes:\n"
	for _, tt := range tests {
		doc += `      - name: r` + tt.path[1:] + `
        paths: ["` + tt.path + `"]
        plugins:
          - name: datakit
            config:
              debug: true
              nodes: [{name: J, type: jq, jq: '` + tt.jq + `'}]
`
	}
	st, err := settings.Load(settings.LoadOptions{SearchPaths: []string{}, Overrides: []string{
		"database=off", "declarative_config_string=" + doc, "proxy_listen=127.0.0.1:0",
		"status_listen=127.0.0.1:0", "admin_listen=127.0.0.1:0",
		"datakit_jq_max_value_bytes=100", "datakit_jq_max_array_index=10", "datakit_jq_max_regex_bytes=5",
		"datakit_jq_max_output_bytes=200", "datakit_jq_max_output_depth=3", "datakit_jq_concurrency=1"}})
	if err != nil {
		t.Fatal(err)
	}
	n, err := newNode(st, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer n.close()
	srv := httptest.NewServer(n.gw.Handler(gateway.Listener{Port: 8000}))
	defer srv.Close()
	for _, tt := range tests {
		resp, err := http.Get(srv.URL + tt.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(string(body), `"error":"`+tt.want+`"`) {
			t.Errorf("GET %s (jq %s) = %d %s, want 500 with error %q", tt.path, tt.jq, resp.StatusCode, body, tt.want)
		}
	}
}
