package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// metricsDoc has a graph with a call answered 201 and a cache GET, a graph
// whose call fails, and a balanced Service; metricsDocAfter drops the
// failing graph's route and the Upstream.
const metricsDoc = `
_format_version: "3.0"
services:
  - name: s
    url: {{UPSTREAM}}
    routes:
      - name: r
        paths: ["/"]
        plugins:
          - name: datakit
            instance_name: dk
            config:
              resources: {cache: {strategy: memory}}
              nodes:
                - {name: CREATE, type: call, method: POST, url: "{{UPSTREAM}}/created"}
                - {name: KEY, type: static, values: {key: k}}
                - {name: GET, type: cache, input: KEY}
                - {name: SET, type: cache, inputs: {key: KEY.key, data: GET.miss}}
      - name: down
        paths: ["/down"]
        plugins:
          - name: datakit
            instance_name: dk-down
            config:
              nodes:
                - {name: DOWN, type: call, url: "http://{{CLOSED}}/"}
  - name: pool
    host: backend
    routes: [{name: pooled, paths: ["/pooled"]}]
upstreams:
  - name: backend
    targets: [{target: "{{UPSTREAM_ADDR}}"}]
plugins:
  - name: prometheus
    config: {status_code_metrics: true, latency_metrics: true, bandwidth_metrics: true, upstream_health_metrics: true}
`

const metricsDocAfter = `
_format_version: "3.0"
services:
  - name: s
    url: {{UPSTREAM}}
    routes:
      - name: r
        paths: ["/"]
        plugins:
          - name: datakit
            instance_name: dk
            config:
              resources: {cache: {strategy: memory}}
              nodes:
                - {name: CREATE, type: call, method: POST, url: "{{UPSTREAM}}/created"}
                - {name: KEY, type: static, values: {key: k}}
                - {name: GET, type: cache, input: KEY}
                - {name: SET, type: cache, inputs: {key: KEY.key, data: GET.miss}}
plugins:
  - name: prometheus
    config: {status_code_metrics: true, latency_metrics: true, bandwidth_metrics: true, upstream_health_metrics: true}
`

// TestMetricsThroughServe scrapes /metrics on the status listener and the
// Admin API of a real `datakit serve` node: the Kong-compatible and datakit
// series of a scripted run, then, after POST /config, without the series of
// the removed route, plugin instance and Upstream.
func TestMetricsThroughServe(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/created" {
			w.WriteHeader(http.StatusCreated)
		}
		_, _ = io.WriteString(w, "hello")
	}))
	defer up.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	_ = l.Close()
	r := strings.NewReplacer("{{UPSTREAM}}", up.URL, "{{UPSTREAM_ADDR}}", strings.TrimPrefix(up.URL, "http://"),
		"{{CLOSED}}", closed)
	file := filepath.Join(t.TempDir(), "kong.yml")
	if err := os.WriteFile(file, []byte(r.Replace(metricsDoc)), 0o644); err != nil {
		t.Fatal(err)
	}
	var addrs []string
	proxy, status, exit := startNodeWith(t, []string{"database=off", "declarative_config=" + file,
		"proxy_listen=127.0.0.1:0", "status_listen=127.0.0.1:0", "admin_listen=127.0.0.1:0", "log_level=error"}, &addrs)
	adminURL := "http://" + addrs[2]
	defer func() {
		signalSelf(t, syscall.SIGTERM)
		<-exit
	}()

	for _, c := range []struct {
		path string
		want int
	}{{"/", 200}, {"/", 200}, {"/down", 500}, {"/pooled", 200}} {
		if code, body, err := fetch(proxy + c.path); err != nil || code != c.want {
			t.Fatalf("GET %s = %d %q %v, want %d", c.path, code, body, err, c.want)
		}
	}
	upstreamAddr := r.Replace("{{UPSTREAM_ADDR}}")
	scrape := func(step string, present, absent []string) {
		t.Helper()
		for _, base := range []string{status, adminURL} {
			code, text, err := fetch(base + "/metrics")
			if err != nil || code != 200 {
				t.Fatalf("%s: GET %s/metrics = %d %v", step, base, code, err)
			}
			for _, want := range present {
				if !strings.Contains(text, want+"\n") {
					t.Errorf("%s: %s/metrics lacks %s", step, base, want)
				}
			}
			for _, gone := range absent {
				if strings.Contains(text, gone) {
					t.Errorf("%s: %s/metrics still has %s", step, base, gone)
				}
			}
		}
	}
	kept := []string{
		`kong_http_requests_total{code="200",consumer="",route="r",service="s",source="service",workspace="default"} 2`,
		`kong_node_info{node_id="` + nodeIDOf(t, adminURL) + `",version="3.11.0"} 1`,
		`kong_datastore_reachable 1`,
		`datakit_call_requests_total{code="201",node="CREATE",plugin="dk"} 2`,
		`datakit_cache_lookups_total{node="GET",plugin="dk",result="miss"} 1`,
		`datakit_cache_lookups_total{node="GET",plugin="dk",result="hit"} 1`,
		`datakit_plan_runs_total{outcome="complete",plugin="dk"} 2`,
		`datakit_config_revision 0`,
	}
	removed := []string{
		`datakit_call_requests_total{code="error",node="DOWN",plugin="dk-down"} 1`,
		`kong_http_requests_total{code="200",consumer="",route="pooled",service="pool",source="service",workspace="default"} 1`,
		`kong_upstream_target_health{address="` + upstreamAddr + `",state="healthchecks_off",subsystem="http",target="` +
			upstreamAddr + `",upstream="backend"} 1`,
	}
	scrape("after the scripted run", append(append(kept, removed...), `# TYPE go_goroutines gauge`), nil)

	resp := postJSON(t, adminURL+"/config", map[string]any{"config": r.Replace(metricsDocAfter)})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /config = %d, want 201", resp.StatusCode)
	}
	scrape("after POST /config", kept, []string{`plugin="dk-down"`, `route="pooled"`, `kong_upstream_target_health{`})
}

// nodeIDOf reads the node's id from the Admin API root.
func nodeIDOf(t *testing.T, adminURL string) string {
	t.Helper()
	code, body, err := fetch(adminURL + "/")
	var root struct {
		NodeID string `json:"node_id"`
	}
	if err != nil || code != 200 || json.Unmarshal([]byte(body), &root) != nil || root.NodeID == "" {
		t.Fatalf("GET / = %d %v %s, want the node_id", code, err, body)
	}
	return root.NodeID
}
