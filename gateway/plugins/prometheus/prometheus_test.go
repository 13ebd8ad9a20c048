package prometheus_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	prom "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/datakit-gateway/datakit/engine"
	"github.com/datakit-gateway/datakit/gateway"
	"github.com/datakit-gateway/datakit/gateway/plugins/datakit"
	"github.com/datakit-gateway/datakit/gateway/plugins/keyauth"
	"github.com/datakit-gateway/datakit/gateway/plugins/prometheus"
	"github.com/datakit-gateway/datakit/nodes"
)

// testGateway is the real gateway with the datakit, key-auth and
// prometheus plugins recording into a fresh registry, wired like main does:
// the registry served over HTTP, every swap handed to Metrics.Swapped.
type testGateway struct {
	gw      *gateway.Gateway
	plugins *gateway.Plugins
	reg     *prom.Registry
	// proxy and metrics are the gateway's and the registry's base URLs.
	proxy, metrics string
}

func newTestGateway(t *testing.T) *testGateway {
	t.Helper()
	reg := prom.NewRegistry()
	m := prometheus.NewMetrics(reg, prometheus.Options{Kong: true, NodeID: "node-1"})
	ereg := engine.NewRegistry()
	nodes.Register(ereg, nodes.Deps{Version: "test"})
	plugins := gateway.NewPlugins(datakit.New(datakit.Options{Registry: ereg, Metrics: m}),
		keyauth.New("test"), prometheus.New(m, "test"))
	g := gateway.New(gateway.Options{Version: "test", OnSwap: m.Swapped})
	gw := httptest.NewServer(g.Handler(gateway.Listener{Port: 8000}))
	t.Cleanup(gw.Close)
	metrics := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(metrics.Close)
	return &testGateway{gw: g, plugins: plugins, reg: reg, proxy: gw.URL, metrics: metrics.URL}
}

// load swaps doc in, as a reload does.
func (tg *testGateway) load(t *testing.T, doc string) {
	t.Helper()
	if err := tg.gw.LoadDeclarative(context.Background(), []byte(doc), gateway.BuildOptions{Plugins: tg.plugins}); err != nil {
		t.Fatalf("LoadDeclarative = %v", err)
	}
}

// setup serves doc through a testGateway.
func setup(t *testing.T, doc string) (proxy, metrics string, reg *prom.Registry) {
	t.Helper()
	tg := newTestGateway(t)
	tg.load(t, doc)
	return tg.proxy, tg.metrics, tg.reg
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
      - name: calls
        paths: ["/calls"]
        plugins:
          - name: datakit
            instance_name: dk-calls
            config:
              nodes:
                - {name: CREATE, type: call, method: POST, url: "{{UPSTREAM}}/created"}
      - name: calldown
        paths: ["/calldown"]
        plugins:
          - name: datakit
            instance_name: dk-calldown
            config:
              nodes:
                - {name: DOWN, type: call, url: "{{CLOSED}}"}
      - name: chaos
        paths: ["/chaos"]
        plugins:
          - name: datakit
            instance_name: dk-chaos
            config:
              nodes:
                - name: PICK
                  type: jq
                  inputs: {p: request.path, q: request.query}
                  jq: 'if .q.fail == "jq" then error(.p + .q.v) else "{{CLOSED}}" + .p end'
                - {name: CALL, type: call, inputs: {url: PICK}}
      - name: cache
        paths: ["/cache"]
        plugins:
          - name: datakit
            instance_name: dk-cache
            config:
              resources: {cache: {strategy: memory}}
              nodes:
                - {name: KEY, type: static, values: {key: k}}
                - {name: GET, type: cache, input: KEY}
                - {name: SET, type: cache, inputs: {key: KEY.key, data: GET.miss}}
plugins:
  - name: prometheus
    config: {status_code_metrics: true, latency_metrics: true, bandwidth_metrics: true}
`

// upstream answers "hello", and 201 at /created.
func upstream(t *testing.T) *httptest.Server {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/created" {
			w.WriteHeader(http.StatusCreated)
		}
		_, _ = io.WriteString(w, "hello")
	}))
	t.Cleanup(up.Close)
	return up
}

// closedURL is an http URL of a local port nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return "http://" + addr + "/"
}

// testDoc is doc with the test's servers.
func testDoc(t *testing.T) string {
	return strings.NewReplacer("{{UPSTREAM}}", upstream(t).URL, "{{CLOSED}}", closedURL(t)).Replace(doc)
}

func TestScriptedRun(t *testing.T) {
	gw, metrics, _ := setup(t, testDoc(t))
	for _, c := range []struct {
		path string
		want int
	}{{"/ok", 200}, {"/ok/x", 200}, {"/fail", 500}, {"/exit", 418}, {"/nowhere", 404},
		{"/calls", 200}, {"/calldown", 500}, {"/cache", 200}, {"/cache", 200}} {
		if got, body := get(t, gw+c.path); got != c.want {
			t.Fatalf("GET %s = %d %s, want %d", c.path, got, body, c.want)
		}
	}
	_, text := get(t, metrics)
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
		`datakit_call_requests_total{code="201",node="CREATE",plugin="dk-calls"} 1`,
		`datakit_call_requests_total{code="error",node="DOWN",plugin="dk-calldown"} 1`,
		`datakit_plan_runs_total{outcome="error",plugin="dk-calldown"} 1`,
		`datakit_cache_lookups_total{node="GET",plugin="dk-cache",result="miss"} 1`,
		`datakit_cache_lookups_total{node="GET",plugin="dk-cache",result="hit"} 1`,
	} {
		// A whole sample line, or a bucket's labels followed by its value.
		if !strings.Contains(text, want+"\n") && !(strings.HasSuffix(want, "}") && strings.Contains(text, want+" ")) {
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

// TestT29MetricsCardinality (hardening T29): 10 000 requests with random
// methods, paths, header and query values and node errors (jq errors with
// random text, calls to random URLs that fail) leave the series count as
// the first request of each kind left it.
func TestT29MetricsCardinality(t *testing.T) {
	gw, _, reg := setup(t, testDoc(t))
	rnd := rand.New(rand.NewPCG(29, 29))
	word := func() string {
		b := make([]byte, 1+rnd.IntN(12))
		for i := range b {
			b[i] = 'a' + byte(rnd.IntN(26))
		}
		return string(b)
	}
	methods := []string{"GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"}
	type kind struct {
		path func() string
		want int
	}
	kinds := []kind{
		{func() string { return "/ok/" + word() + "?" + word() + "=" + word() }, 200},
		{func() string { return "/fail/" + word() }, 500},
		{func() string { return "/chaos/" + word() + "?fail=jq&v=" + word() }, 500},
		{func() string { return "/chaos/" + word() + "?" + word() + "=" + word() }, 500},
		{func() string { return "/nowhere/" + word() }, 404},
	}
	type job struct {
		method, path string
		want         int
		header       http.Header
	}
	newJob := func(method string, k kind) job {
		return job{method, k.path(), k.want, http.Header{"X-Random": {word()}, "X-" + word(): {word()}}}
	}
	send := func(j job) error {
		req, err := http.NewRequest(j.method, gw+j.path, nil)
		if err != nil {
			return err
		}
		req.Header = j.header
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != j.want {
			return fmt.Errorf("%s %s = %d, want %d", j.method, j.path, resp.StatusCode, j.want)
		}
		return nil
	}
	for _, k := range kinds {
		if err := send(newJob("GET", k)); err != nil {
			t.Fatal(err)
		}
	}
	before := countSeries(t, reg)

	const total = 10000
	jobs := make(chan job)
	errs := make(chan error, total)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				if err := send(j); err != nil {
					errs <- err
				}
			}
		}()
	}
	okCount := 1 // the warm-up request
	for i := range total {
		method := methods[rnd.IntN(len(methods))]
		if i%10 == 0 {
			method = "X" + strings.ToUpper(word()) // extension methods
		}
		k := rnd.IntN(len(kinds))
		if k == 0 {
			okCount++
		}
		jobs <- newJob(method, kinds[k])
	}
	close(jobs)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if after := countSeries(t, reg); after != before {
		t.Fatalf("series: %d before, %d after %d random requests", before, after, total)
	}
	want := fmt.Sprintf(`
# HELP kong_http_requests_total HTTP status codes per consumer/service/route in Kong
# TYPE kong_http_requests_total counter
kong_http_requests_total{code="200",consumer="",route="ok",service="api",source="service",workspace="default"} %d
`, okCount)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "kong_http_requests_total"); err != nil {
		t.Fatal(err)
	}
}

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
