package prometheus_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	prom "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/datakit-gateway/datakit/engine"
	"github.com/datakit-gateway/datakit/gateway"
	"github.com/datakit-gateway/datakit/gateway/config"
	"github.com/datakit-gateway/datakit/gateway/plugins/datakit"
	"github.com/datakit-gateway/datakit/gateway/plugins/prometheus"
	"github.com/datakit-gateway/datakit/nodes"
)

// setup serves doc through the real gateway with the datakit and
// prometheus plugins recording into a fresh registry, and serves that
// registry like main does.
func setup(t *testing.T, doc string) (gw, metrics *httptest.Server, reg *prom.Registry) {
	t.Helper()
	reg = prom.NewRegistry()
	m := prometheus.NewMetrics(reg, prometheus.Options{Kong: true, NodeID: "node-1"})
	ereg := engine.NewRegistry()
	nodes.Register(ereg, nodes.Deps{Version: "test"})
	plugins := gateway.NewPlugins(datakit.New(datakit.Options{Registry: ereg, Metrics: m}), prometheus.New(m, "test"))
	ents, err := config.LoadDeclarative([]byte(doc), config.LoadOptions{Plugins: plugins})
	if err != nil {
		t.Fatalf("LoadDeclarative = %v", err)
	}
	snap, err := gateway.Build(context.Background(), ents, gateway.BuildOptions{Plugins: plugins})
	if err != nil {
		t.Fatalf("Build = %v", err)
	}
	g := gateway.New(gateway.Options{Version: "test"})
	g.Swap(snap)
	gw = httptest.NewServer(g.Handler(gateway.Listener{Port: 8000}))
	t.Cleanup(gw.Close)
	metrics = httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(metrics.Close)
	return gw, metrics, reg
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

const doc = `
_format_version: "3.0"
services:
  - name: api
    url: {{UPSTREAM}}
    routes:
      - name: ok
        paths: ["/ok"]
        plugins:
          - name: datakit
            instance_name: dk-ok
            config:
              nodes:
                - {name: HDR, type: static, values: {X-From: datakit}, output: service_request.headers}
      - name: fail
        paths: ["/fail"]
        plugins:
          - name: datakit
            instance_name: dk-fail
            config:
              nodes:
                - {name: BOOM, type: jq, inputs: {q: request.query}, jq: 'error("boom")'}
      - name: exit
        paths: ["/exit"]
        plugins:
          - name: datakit
            instance_name: dk-exit
            config:
              nodes:
                - {name: EXIT, type: exit, status: 418}
plugins:
  - name: prometheus
    config: {status_code_metrics: true, latency_metrics: true, bandwidth_metrics: true}
`

func upstream(t *testing.T) *httptest.Server {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello")
	}))
	t.Cleanup(up.Close)
	return up
}

func TestScriptedRun(t *testing.T) {
	gw, metrics, _ := setup(t, strings.ReplaceAll(doc, "{{UPSTREAM}}", upstream(t).URL))
	for _, c := range []struct {
		path string
		want int
	}{{"/ok", 200}, {"/ok/x", 200}, {"/fail", 500}, {"/exit", 418}, {"/nowhere", 404}} {
		if got, body := get(t, gw.URL+c.path); got != c.want {
			t.Fatalf("GET %s = %d %s, want %d", c.path, got, body, c.want)
		}
	}
	_, text := get(t, metrics.URL)
	// The datakit instance (810) ends /fail and /exit in access, before
	// prometheus (13) is collected, so per gateway.md §9.2 ("log runs for
	// plugins collected so far") those requests reach no prometheus log
	// handler; only the datakit metrics see them.
	for _, want := range []string{
		`kong_http_requests_total{code="200",consumer="",route="ok",service="api",source="service",workspace="default"} 2`,
		`kong_request_latency_ms_count{route="ok",service="api",workspace="default"} 2`,
		`kong_upstream_latency_ms_count{route="ok",service="api",workspace="default"} 2`,
		`kong_kong_latency_ms_bucket{route="ok",service="api",workspace="default",le="7"}`,
		`kong_request_latency_ms_bucket{route="ok",service="api",workspace="default",le="80"}`,
		`kong_node_info{node_id="node-1",version="3.11.0"} 1`,
		`kong_datastore_reachable 1`,
		`datakit_plan_runs_total{outcome="complete",plugin="dk-ok"} 2`,
		`datakit_plan_runs_total{outcome="error",plugin="dk-fail"} 1`,
		`datakit_plan_runs_total{outcome="exit",plugin="dk-exit"} 1`,
		`datakit_node_runs_total{node="HDR",plugin="dk-ok",status="success",type="static"} 2`,
		`datakit_node_runs_total{node="BOOM",plugin="dk-fail",status="error",type="jq"} 1`,
		`datakit_node_runs_total{node="EXIT",plugin="dk-exit",status="success",type="exit"} 1`,
		`datakit_node_duration_seconds_count{node="BOOM",plugin="dk-fail",type="jq"} 1`,
	} {
		if !strings.Contains(text, want+"\n") && !strings.Contains(text, want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
	for _, absent := range []string{
		// No upstream was tried for an exit or a failure.
		`kong_upstream_latency_ms_count{route="exit"`,
		`kong_upstream_latency_ms_count{route="fail"`,
		// The unmatched request is not recorded; paths never are labels.
		`code="404"`, `/ok/x`, `/nowhere`,
	} {
		if strings.Contains(text, absent) {
			t.Errorf("scrape has %s", absent)
		}
	}
	if t.Failed() {
		t.Log(text)
	}
}

func TestCardinality(t *testing.T) {
	gw, _, reg := setup(t, strings.ReplaceAll(doc, "{{UPSTREAM}}", upstream(t).URL))
	get(t, gw.URL+"/ok/warmup")
	before := countSeries(t, reg)
	for i := range 1000 {
		if code, _ := get(t, gw.URL+"/ok/p"+itoa(i)+"?q="+itoa(i)); code != 200 {
			t.Fatalf("request %d = %d", i, code)
		}
	}
	if after := countSeries(t, reg); after != before {
		t.Fatalf("series: %d before, %d after 1000 distinct paths", before, after)
	}
	want := `
# HELP kong_http_requests_total HTTP status codes per consumer/service/route in Kong
# TYPE kong_http_requests_total counter
kong_http_requests_total{code="200",consumer="",route="ok",service="api",source="service",workspace="default"} 1001
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "kong_http_requests_total"); err != nil {
		t.Fatal(err)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func countSeries(t *testing.T, reg *prom.Registry) int {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, mf := range mfs {
		n += len(mf.GetMetric())
	}
	return n
}
