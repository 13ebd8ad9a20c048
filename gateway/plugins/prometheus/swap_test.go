package prometheus_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// swapBefore has a route, a consumer, a datakit instance, a node and a
// Target that swapAfter removes or changes.
const swapBefore = `
_format_version: "3.0"
services:
  - name: api
    url: {{UPSTREAM}}
    routes:
      - name: keep
        paths: ["/keep"]
        plugins:
          - name: key-auth
          - name: datakit
            instance_name: dk-keep
            config:
              nodes:
                - {name: HDR, type: static, values: {X-From: datakit}, output: service_request.headers}
                - {name: OLD, type: call, url: "{{UPSTREAM}}/created"}
      - name: gone
        paths: ["/gone"]
        plugins:
          - name: datakit
            instance_name: dk-gone
            config:
              nodes:
                - {name: CALL, type: call, url: "{{UPSTREAM}}/created"}
  - name: pool
    host: backend
    routes: [{name: pooled, paths: ["/pooled"]}]
upstreams:
  - name: backend
    targets: [{target: "{{UPSTREAM_ADDR}}"}, {target: "{{CLOSED_ADDR}}"}]
consumers:
  - username: alice
    keyauth_credentials: [{key: alice-key}]
plugins:
  - name: prometheus
    config: {per_consumer: true, status_code_metrics: true, latency_metrics: true, bandwidth_metrics: true, upstream_health_metrics: true}
`

// swapAfter: route gone, its instance dk-gone, consumer alice, node OLD and
// the closed Target are removed; service api is renamed api2; node HDR
// changes type.
const swapAfter = `
_format_version: "3.0"
services:
  - name: api2
    url: {{UPSTREAM}}
    routes:
      - name: keep
        paths: ["/keep"]
        plugins:
          - name: datakit
            instance_name: dk-keep
            config:
              nodes:
                - {name: HDR, type: jq, jq: '{"X-From": "datakit"}', output: service_request.headers}
                - {name: NEW, type: call, url: "{{UPSTREAM}}/created"}
  - name: pool
    host: backend
    routes: [{name: pooled, paths: ["/pooled"]}]
upstreams:
  - name: backend
    targets: [{target: "{{UPSTREAM_ADDR}}"}]
plugins:
  - name: prometheus
    config: {per_consumer: true, status_code_metrics: true, latency_metrics: true, bandwidth_metrics: true, upstream_health_metrics: true}
`

// request sends GET path with header h and wants 200.
func request(t *testing.T, base, path string, h http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = h
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d, want 200", path, resp.StatusCode)
	}
}

// TestSeriesDeletedOnSwap: a swap deletes the series of removed or changed
// entities and keeps the others with their values; alternating two
// configurations never grows the series count.
func TestSeriesDeletedOnSwap(t *testing.T) {
	up := upstream(t)
	closed := closedURL(t)
	r := strings.NewReplacer("{{UPSTREAM}}", up.URL, "{{UPSTREAM_ADDR}}", strings.TrimPrefix(up.URL, "http://"),
		"{{CLOSED_ADDR}}", strings.TrimSuffix(strings.TrimPrefix(closed, "http://"), "/"))
	before, after := r.Replace(swapBefore), r.Replace(swapAfter)
	tg := newTestGateway(t)
	runBefore := func() {
		request(t, tg.proxy, "/keep", http.Header{"Apikey": {"alice-key"}})
		request(t, tg.proxy, "/gone", nil)
		request(t, tg.proxy, "/pooled", nil)
		request(t, tg.proxy, "/pooled", nil) // round-robin: both Targets
	}
	runAfter := func() {
		request(t, tg.proxy, "/keep", nil)
		request(t, tg.proxy, "/pooled", nil)
	}

	tg.load(t, before)
	runBefore()
	_, text := get(t, tg.metrics)
	for _, want := range []string{`route="gone"`, `consumer="alice"`, `plugin="dk-gone"`, `node="OLD"`,
		`service="api"`, `type="static"`, `target="` + r.Replace("{{CLOSED_ADDR}}") + `"`} {
		if !strings.Contains(text, want) {
			t.Fatalf("before the swap, the scrape lacks %s:\n%s", want, text)
		}
	}
	countBefore := countSeries(t, tg.reg)

	tg.load(t, after)
	_, text = get(t, tg.metrics)
	for _, removed := range []string{`route="gone"`, `consumer="alice"`, `plugin="dk-gone"`, `node="OLD"`,
		`service="api"`, `type="static"`, `target="` + r.Replace("{{CLOSED_ADDR}}") + `"`} {
		if strings.Contains(text, removed) {
			t.Errorf("after the swap, the scrape still has %s", removed)
		}
	}
	for _, kept := range []string{
		`kong_http_requests_total{code="200",consumer="",route="pooled",service="pool",source="service",workspace="default"} 2`,
		`datakit_plan_runs_total{outcome="complete",plugin="dk-keep"} 1`,
		`kong_upstream_target_health{address="` + r.Replace("{{UPSTREAM_ADDR}}") + `",state="healthchecks_off",subsystem="http",target="` +
			r.Replace("{{UPSTREAM_ADDR}}") + `",upstream="backend"} 1`,
	} {
		if !strings.Contains(text, kept+"\n") {
			t.Errorf("after the swap, the scrape lacks %s", kept)
		}
	}
	if t.Failed() {
		t.Log(text)
	}
	runAfter()
	countAfter := countSeries(t, tg.reg)

	for i := range 3 {
		tg.load(t, before)
		runBefore()
		if n := countSeries(t, tg.reg); n != countBefore {
			t.Fatalf("reload %d of the first configuration: %d series, want %d", i, n, countBefore)
		}
		tg.load(t, after)
		runAfter()
		if n := countSeries(t, tg.reg); n != countAfter {
			t.Fatalf("reload %d of the second configuration: %d series, want %d", i, n, countAfter)
		}
	}
}

// healthDoc balances over a working Target and one whose name never
// resolves (.invalid, RFC 6761).
const healthDoc = `
_format_version: "3.0"
services:
  - {name: pool, host: backend, connect_timeout: 5000, routes: [{name: pooled, paths: ["/"]}]}
upstreams:
  - name: backend
    targets: [{target: "{{UPSTREAM_ADDR}}"}, {target: "nowhere.invalid:80"}]
plugins:
  - name: prometheus
    config: {upstream_health_metrics: {{HEALTH}}}
`

const healthHelp = `
# HELP kong_upstream_target_health Health status of targets of upstream. States = healthchecks_off|healthy|unhealthy|dns_error, value is 1 when state is populated.
# TYPE kong_upstream_target_health gauge
`

// healthLines are the four series of one Target, 1 on state.
func healthLines(target, state string) string {
	var b strings.Builder
	for _, s := range []string{"dns_error", "healthchecks_off", "healthy", "unhealthy"} {
		v := "0"
		if s == state {
			v = "1"
		}
		b.WriteString(`kong_upstream_target_health{address="` + target + `",state="` + s + `",subsystem="http",target="` +
			target + `",upstream="backend"} ` + v + "\n")
	}
	return b.String()
}

// TestUpstreamTargetHealth: without health checks every Target is
// healthchecks_off until a try fails to resolve its name (dns_error); the
// state survives a swap that keeps the Upstream; the metric exists only
// while an instance sets upstream_health_metrics.
func TestUpstreamTargetHealth(t *testing.T) {
	u, err := url.Parse(upstream(t).URL)
	if err != nil {
		t.Fatal(err)
	}
	doc := func(health bool) string {
		h := "false"
		if health {
			h = "true"
		}
		return strings.NewReplacer("{{UPSTREAM_ADDR}}", u.Host, "{{HEALTH}}", h).Replace(healthDoc)
	}
	tg := newTestGateway(t)
	compare := func(step, want string) {
		t.Helper()
		if err := testutil.GatherAndCompare(tg.reg, strings.NewReader(want), "kong_upstream_target_health"); err != nil {
			t.Errorf("%s: %v", step, err)
		}
	}

	tg.load(t, doc(true))
	compare("before any request", healthHelp+healthLines("nowhere.invalid:80", "healthchecks_off")+healthLines(u.Host, "healthchecks_off"))
	// Round-robin gives the unresolvable Target every other try; a retry
	// takes the request to the working one.
	for range 4 {
		request(t, tg.proxy, "/", nil)
	}
	want := healthHelp + healthLines("nowhere.invalid:80", "dns_error") + healthLines(u.Host, "healthchecks_off")
	compare("after requests", want)
	tg.load(t, doc(true))
	compare("after a swap keeping the Upstream", want)
	tg.load(t, doc(false))
	compare("with upstream_health_metrics off", "")
}
