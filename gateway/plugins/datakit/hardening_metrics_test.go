package datakit_test

import (
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	prom "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/datakit-gateway/datakit/gateway"
	"github.com/datakit-gateway/datakit/gateway/plugins/prometheus"
)

// This file holds hardening catalogue case T29 (hardening.md §3.2). The
// prometheus package's TestCardinality covers distinct paths on one route.

// series counts the samples /metrics exposes.
func series(t *testing.T, url string) int {
	t.Helper()
	_, body := get(t, url, nil)
	n := 0
	for _, line := range strings.Split(body, "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			n++
		}
	}
	return n
}

// TestT29MetricsCardinality: 10 000 requests with random methods, paths,
// header values and node errors add no series to /metrics.
func TestT29MetricsCardinality(t *testing.T) {
	noLeaks(t)
	upstream := newFake(t, nil)
	reg := prom.NewRegistry()
	m := prometheus.NewMetrics(reg, prometheus.Options{Kong: true, NodeID: "node-1"})
	metrics := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(metrics.Close)
	gw := serveGateway(t, `_format_version: "3.0"
services:
  - name: api
    url: `+upstream.URL()+`
    routes:
      - name: ok
        paths: ["/ok"]
        plugins:
          - name: datakit
            config:
              nodes:
                - {name: ECHO, type: jq, input: request.headers, jq: '{"X-Seen": .["X-Random"]}', output: service_request.headers}
      - name: fail
        paths: ["/fail"]
        plugins:
          - name: datakit
            config:
              nodes:
                - {name: BOOM, type: jq, input: request.query, jq: 'error("failed: " + (.q // "") + " " + (.p // ""))'}
      - name: exit
        paths: ["/exit"]
        plugins:
          - name: datakit
            config:
              nodes:
                - {name: EXIT, type: exit, status: 418, inputs: {body: request.query}}
plugins:
  - name: prometheus
    config: {status_code_metrics: true, latency_metrics: true, bandwidth_metrics: true}
`, gatewayOptions{metrics: m, others: []gateway.Plugin{prometheus.New(m, "test")}})

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	defer client.CloseIdleConnections()
	send := func(method, path string, header http.Header) {
		req, err := http.NewRequest(method, gw.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header = header
		resp, err := client.Do(req)
		if err != nil {
			t.Error(err)
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	// Every kind of request once, so that each fixed label value exists.
	for _, path := range []string{"/ok", "/fail", "/exit", "/nowhere"} {
		send(http.MethodGet, path, nil)
		send(http.MethodTrace, path, nil)
	}
	before := series(t, metrics.URL)

	const requests = 10000
	r := rand.New(rand.NewPCG(1, 2)) // reproducible
	word := func() string {
		b := make([]byte, 1+r.IntN(12))
		for i := range b {
			b[i] = byte('a' + r.IntN(26))
		}
		return string(b)
	}
	methods := []string{"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE"}
	type request struct {
		method, path string
		header       http.Header
	}
	work := make(chan request)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for req := range work {
				send(req.method, req.path, req.header)
			}
		})
	}
	for range requests {
		method := methods[r.IntN(len(methods))]
		if r.IntN(4) == 0 {
			method = strings.ToUpper(word()) // an extension method
		}
		path := []string{"/ok/", "/fail/", "/exit/", "/"}[r.IntN(4)] + word() + "?q=" + word() + "&p=" + word()
		work <- request{method, path, http.Header{"X-Random": {word()}, "User-Agent": {word()}, "X-" + word(): {word()}}}
	}
	close(work)
	wg.Wait()

	t.Logf("%d series", before)
	if after := series(t, metrics.URL); after != before {
		_, body := get(t, metrics.URL, nil)
		t.Errorf("series: %d before, %d after %d random requests\n%s", before, after, requests, body)
	}
	if upstream.count() == 0 {
		t.Errorf("no request was proxied: the random requests did not exercise the routes")
	}
}
