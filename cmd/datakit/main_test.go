package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/datakit-gateway/datakit/demo"
	"github.com/datakit-gateway/datakit/gateway"
	"github.com/datakit-gateway/datakit/gateway/settings"
)

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(args, strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const graphsDir = "../../graphs"

func TestGraphValidate(t *testing.T) {
	good := filepath.Join(graphsDir, "token-exchange.yaml")
	bad := writeFile(t, "bad.yaml", "nodes:\n  - {name: A, type: jq}\n  - {name: A, type: nope}\n")
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
	}{
		{"valid", []string{"graph", "validate", good}, 0, good + ": ok\n"},
		{"invalid", []string{"graph", "validate", bad}, 1, bad + `: nodes[0] "A" (jq): jq: required field missing` + "\n" +
			bad + `: nodes[1] "A" (nope): type: unknown node type "nope"; expected one of: ` + strings.Join(registry().Types(), ", ") + "\n" +
			bad + `: nodes[1] "A" (nope): name: duplicate node name (first used by nodes[0])` + "\n"},
		{"several", []string{"graph", "validate", good, bad}, 1, ""},
		{"unreadable", []string{"graph", "validate", "/nonexistent.yaml"}, 2, ""},
		{"no file", []string{"graph", "validate"}, 2, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, _ := runCLI(t, tt.args...)
			if code != tt.code || (tt.stdout != "" && stdout != tt.stdout) {
				t.Errorf("datakit %v = %d %q, want %d %q", tt.args, code, stdout, tt.code, tt.stdout)
			}
		})
	}
}

func TestGraphDotMatchesGolden(t *testing.T) {
	code, stdout, stderr := runCLI(t, "graph", "dot", filepath.Join(graphsDir, "token-exchange.yaml"))
	want, err := os.ReadFile(filepath.Join(graphsDir, "testdata", "token-exchange", "graph.dot"))
	if err != nil {
		t.Fatal(err)
	}
	if code != 0 || stdout != string(want) {
		t.Errorf("graph dot = %d %q (stderr %q), want 0 and the golden DOT", code, stdout, stderr)
	}
}

func TestGraphRun(t *testing.T) {
	file := filepath.Join(graphsDir, "token-exchange.yaml")
	req := filepath.Join(graphsDir, "testdata", "token-exchange", "request.json")
	mock := "AUTH_REQUEST=" + filepath.Join(graphsDir, "testdata", "token-exchange", "mocks", "AUTH_REQUEST.json")

	code, stdout, stderr := runCLI(t, "graph", "run", file, "--request", req, "--mock", mock, "--no-timing")
	var res struct {
		Outcome        string `json:"outcome"`
		ServiceRequest struct {
			Headers map[string]any `json:"headers"`
		} `json:"service_request"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil || code != 0 {
		t.Fatalf("graph run = %d %v (stderr %q)", code, err, stderr)
	}
	if res.Outcome != "proxied" || res.ServiceRequest.Headers["Authorization"] != "********" {
		t.Errorf("graph run: outcome %q, service_request headers %v", res.Outcome, res.ServiceRequest.Headers)
	}

	// Without the mock the call node fails: outcome error, exit status 1.
	code, stdout, _ = runCLI(t, "graph", "run", file, "--request", req)
	if code != 1 || !strings.Contains(stdout, `"error": "no mock for call node \"AUTH_REQUEST\""`) {
		t.Errorf("graph run without mock = %d %s", code, stdout)
	}
	// Usage errors.
	for _, args := range [][]string{
		{"graph", "run", file},
		{"graph", "run", file, "--request", req, "--mock", "nonsense"},
		{"graph", "run", file, "--request", "/nonexistent.json"},
	} {
		if code, _, _ := runCLI(t, args...); code != 2 {
			t.Errorf("datakit %v = %d, want 2", args, code)
		}
	}
}

func TestVersionAndUsage(t *testing.T) {
	if code, stdout, _ := runCLI(t, "version"); code != 0 || !strings.HasPrefix(stdout, "datakit ") {
		t.Errorf("version = %d %q", code, stdout)
	}
	if code, _, _ := runCLI(t); code != 2 {
		t.Errorf("no arguments = %d, want 2", code)
	}
	if code, _, _ := runCLI(t, "frobnicate"); code != 2 {
		t.Errorf("unknown command = %d, want 2", code)
	}
}

// TestDemoConfiguration serves the demo configuration through a node built
// as `datakit demo` builds it, and runs its three graphs.
func TestDemoConfiguration(t *testing.T) {
	services, err := demo.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer services.Close()
	st, err := settings.Load(settings.LoadOptions{Overrides: []string{"database=off", "proxy_listen=127.0.0.1:0",
		"status_listen=127.0.0.1:0", "admin_listen=127.0.0.1:0", "declarative_config_string=" + string(services.Config())}, SearchPaths: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	n, err := newNode(st, newLogger(st, io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(n.gw.Handler(gateway.Listener{Port: 8000}))
	defer srv.Close()
	get := func(path string, h http.Header) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		req.Header = h
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/token-exchange?api_key=K", nil); code != 200 || !strings.Contains(body, `"Authorization": "Bearer `) {
		t.Errorf("/token-exchange = %d %s", code, body)
	}
	if code, body := get("/combine", nil); code != 200 || !strings.HasPrefix(body, `{"author":"Yours Truly","uuid":"`) {
		t.Errorf("/combine = %d %s", code, body)
	}
	if code, body := get("/debug", http.Header{"X-Datakit-Debug-Trace": {"1"}}); code != 200 || !strings.Contains(body, `"status":"PLAN_COMPLETE"`) {
		t.Errorf("/debug traced = %d %s", code, body)
	}
}

func TestConfigValidate(t *testing.T) {
	good := writeFile(t, "kong.yml", "_format_version: \"3.0\"\nservices:\n  - {name: s, url: \"http://127.0.0.1:9\"}\n")
	bad := writeFile(t, "bad.yml", "_format_version: \"3.0\"\nservices:\n  - name: s\n    url: \"http://127.0.0.1:9\"\n    plugins:\n      - name: datakit\n        config: {nodes: [{name: X, type: jq}]}\n")
	if code, stdout, _ := runCLI(t, "config", "validate", good); code != 0 || stdout != "parse successful\n" {
		t.Errorf("config validate good = %d %q", code, stdout)
	}
	code, _, stderr := runCLI(t, "config", "validate", bad)
	if code != 1 || !strings.Contains(stderr, `nodes[0] "X" (jq): jq: required field missing`) {
		t.Errorf("config validate bad = %d %q", code, stderr)
	}
}

// TestGraphRunOfflineCache: graph run answers Redis caches from fresh memory
// stores; a closed port shows nothing was dialled.
func TestGraphRunOfflineCache(t *testing.T) {
	file := writeFile(t, "cache.yaml", `
resources: {cache: {strategy: redis, redis: {host: 127.0.0.1, port: 1}}}
nodes:
  - {name: K, type: static, values: {key: k}}
  - {name: GET, type: cache, input: K}
  - {name: EXIT, type: exit, inputs: {body: GET}}
`)
	req := writeFile(t, "req.json", `{}`)
	code, stdout, stderr := runCLI(t, "graph", "run", file, "--request", req)
	if code != 0 || !strings.Contains(stdout, `"outcome": "exit"`) || !strings.Contains(stdout, `\"miss\":true`) {
		t.Errorf("graph run = %d %s %s", code, stdout, stderr)
	}
}
