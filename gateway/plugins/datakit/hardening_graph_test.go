package datakit_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/datakit-gateway/datakit/engine"
	"github.com/datakit-gateway/datakit/gateway"
	"github.com/datakit-gateway/datakit/gateway/config"
	"github.com/datakit-gateway/datakit/gateway/plugins/datakit"
)

// This file holds hardening catalogue cases T24–T27 and T30 (hardening.md
// §3.2): cancellation, exit and property nodes, hostile graphs and large
// request bodies.

// TestT24CancellationMidGraph: a client that leaves while a call waits on a
// hanging server, or while jq runs, ends the plan: the server sees its
// connection close, the access log says 499, nothing is left running.
//
// The spec asks for 1000 iterations; 100 per variant keep the test within
// seconds under -race on a shared 2-core machine.
func TestT24CancellationMidGraph(t *testing.T) {
	noLeaks(t)
	const iterations = 100
	hanging := newFake(t, hang)
	quick := newFake(t, nil)
	upstream := newFake(t, nil)
	variants := []struct {
		name, graph string
		// arrived is the count that shows the plan reached the step where the
		// client leaves.
		arrived func() int
	}{
		{"during a hanging call", `
          nodes: [{name: CALL, type: call, url: ` + hanging.URL() + `}]
`, hanging.count},
		{"during jq", `
          nodes:
            - {name: CALL, type: call, url: ` + quick.URL() + `}
            - {name: SPIN, type: jq, input: CALL.body, jq: 'last(range(1e9))'}
`, quick.count},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			logs := &syncBuffer{}
			gw := serveGateway(t, service(upstream.URL(), v.graph), gatewayOptions{logs: logs, accessLog: true})
			for i := range iterations {
				before := v.arrived()
				ctx, cancel := context.WithCancel(context.Background())
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, gw.URL+"/", nil)
				errc := make(chan error, 1)
				go func() {
					resp, err := http.DefaultClient.Do(req)
					if err == nil {
						resp.Body.Close()
						err = fmt.Errorf("got %d, want the request canceled", resp.StatusCode)
					}
					errc <- err
				}()
				if !waitFor(func() bool { return v.arrived() > before }, 5*time.Second) {
					cancel()
					t.Fatalf("iteration %d: the plan never reached its call", i)
				}
				left := time.Now()
				cancel()
				if err := <-errc; !strings.Contains(err.Error(), "context canceled") {
					t.Fatalf("iteration %d: client: %v", i, err)
				}
				// The access record is written when the handler is done.
				if !waitFor(func() bool { return len(logs.records("access")) == i+1 }, 5*time.Second) {
					t.Fatalf("iteration %d: no access record", i)
				}
				if d := time.Since(left); d > time.Second {
					t.Errorf("iteration %d: the request ended %v after the client left (jq's own limit is 1 s)", i, d)
				}
				// Node goroutines end with their request. Margin: 1 s for
				// the spec's 100 ms.
				if !waitFor(func() bool { return gatewayGoroutines() == "" }, time.Second) {
					t.Fatalf("iteration %d: still running:\n%s", i, gatewayGoroutines())
				}
			}
			for i, rec := range logs.records("access") {
				if rec["status"] != float64(499) {
					t.Errorf("access record %d: status %v, want 499", i, rec["status"])
				}
			}
			if v.name == "during a hanging call" {
				// Every hanging request saw its connection close: its handler
				// returned.
				if !waitFor(func() bool { return len(hanging.handlersDone()) == hanging.count() }, 2*time.Second) {
					t.Errorf("%d of %d hanging requests still open", hanging.count()-len(hanging.handlersDone()), hanging.count())
				}
			}
			if len(logs.records("datakit node failed")) != 0 {
				t.Errorf("a client leaving was logged as a node failure")
			}
		})
	}
	if upstream.count() != 0 {
		t.Errorf("upstream saw %d requests", upstream.count())
	}
}

// gatewayGoroutines are the stacks of the goroutines running gateway,
// engine or node code (idle pooled connections run none).
func gatewayGoroutines() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		for _, pkg := range []string{"datakit/engine.", "datakit/nodes.", "datakit/gateway.", "datakit/gateway/plugins/datakit."} {
			if strings.Contains(g, pkg) {
				out = append(out, g)
				break
			}
		}
	}
	return strings.Join(out, "\n\n")
}

// TestT25ExitNode: invalid statuses are load errors; an exit answers with
// its status, body and headers minus hop-by-hop ones, after its siblings
// ran to completion, within the plan timeout, without touching the
// upstream.
func TestT25ExitNode(t *testing.T) {
	noLeaks(t)
	upstream := newFake(t, nil)
	for _, status := range []int{99, 600, 0} {
		doc := service(upstream.URL(), fmt.Sprintf(`
          nodes: [{name: EXIT, type: exit, status: %d}]
`, status))
		want := fmt.Sprintf(`nodes[0] \"EXIT\" (exit): status: must be between 200 and 599, got %d`, status)
		if err := loadError(doc); !strings.Contains(err, want) {
			t.Errorf("status %d: load error %q, want %q", status, err, want)
		}
	}

	slow := newFake(t, func(w http.ResponseWriter, _ *http.Request) {
		time.Sleep(150 * time.Millisecond)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{}`)
	})
	cases := []struct {
		name, values      string
		status            int
		contentType, body string
	}{
		{"object body", `{body: {a: 1}}`, 201, "application/json", `{"a":1}`},
		{"string body", `{body: hello}`, 202, "text/plain; charset=utf-8", "hello"},
		{"null body", `{body: null}`, 203, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(slow.handlersDone())
			gw := serveGateway(t, service(upstream.URL(), fmt.Sprintf(`
          nodes:
            - {name: SIBLING, type: call, url: %s}
            - name: HEADERS
              type: static
              values:
                X-Ok: "yes"
                Connection: close
                Keep-Alive: timeout=5
                Transfer-Encoding: chunked
                Upgrade: websocket
                TE: trailers
                Trailer: X-Ok
                Proxy-Authenticate: Basic
                Content-Length: "999"
            - {name: BODY, type: static, values: %s}
            - {name: EXIT, type: exit, status: %d, inputs: {body: BODY.body, headers: HEADERS}}
`, slow.URL(), tc.values, tc.status)), gatewayOptions{})
			resp, body := get(t, gw.URL+"/", nil)
			answered := time.Now()
			if resp.StatusCode != tc.status || body != tc.body || resp.Header.Get("Content-Type") != tc.contentType {
				t.Errorf("exit = %d %q (%s), want %d %q (%s)", resp.StatusCode, body, resp.Header.Get("Content-Type"), tc.status, tc.body, tc.contentType)
			}
			if resp.ContentLength != int64(len(tc.body)) || resp.Header.Get("X-Ok") != "yes" {
				t.Errorf("Content-Length %d, X-Ok %q", resp.ContentLength, resp.Header.Get("X-Ok"))
			}
			for _, h := range []string{"Keep-Alive", "Upgrade", "Te", "Trailer", "Proxy-Authenticate"} {
				if v := resp.Header.Values(h); len(v) > 0 {
					t.Errorf("hop-by-hop %s = %q reached the client", h, v)
				}
			}
			if resp.Close || len(resp.TransferEncoding) > 0 {
				t.Errorf("framing taken from the exit's headers: close %v, transfer encoding %v", resp.Close, resp.TransferEncoding)
			}
			// The sibling call completed before the exit was answered.
			done := slow.handlersDone()
			if len(done) != before+1 || done[before].After(answered) {
				t.Errorf("the sibling call did not complete before the exit response")
			}
		})
	}
	t.Run("hanging sibling ends at the plan timeout", func(t *testing.T) {
		hanging := newFake(t, hang)
		gw := serveGateway(t, service(upstream.URL(), `
          debug: true
          nodes:
            - {name: SIBLING, type: call, url: `+hanging.URL()+`, timeout: 0}
            - {name: EXIT, type: exit, status: 200}
`), gatewayOptions{engine: engine.Options{PlanTimeout: 300 * time.Millisecond}})
		resp, body, d := timed(t, gw.URL+"/", nil)
		if resp.StatusCode != 500 || errorOf(t, body) != "plan exceeded time limit of 300 ms" || d > 300*time.Millisecond+400*time.Millisecond {
			t.Errorf("GET = %d %s after %v, want plan exceeded time limit of 300 ms at 300 ms (+400 ms margin)", resp.StatusCode, body, d)
		}
	})
	if n := upstream.count(); n != 0 {
		t.Errorf("upstream saw %d requests, want 0", n)
	}
}

// TestT26PropertyNode: unknown names are load errors; routing set from
// request data passes the destination policy (as in T11); CRLF and values
// of the wrong type fail the node.
func TestT26PropertyNode(t *testing.T) {
	noLeaks(t)
	upstream := newFake(t, nil)
	port := upstream.port()
	t.Run("load errors", func(t *testing.T) {
		for _, tc := range []struct{ node, want string }{
			{`{name: P, type: property, property: kong.nope}`, `nodes[0] \"P\" (property): property: unknown property \"kong.nope\"`},
			{`{name: P, type: property, property: kong.client.ip, input: request.query}`,
				`property \"kong.client.ip\" is read-only and cannot be set`},
			{`{name: P, type: property, property: kong.service.target}`,
				`property \"kong.service.target\" is write-only; connect an input to set it`},
		} {
			if err := loadError(service(upstream.URL(), "          nodes: ["+tc.node+"]\n")); !strings.Contains(err, tc.want) {
				t.Errorf("%s: load error %q, want %q", tc.node, err, tc.want)
			}
		}
	})
	t.Run("target policy", func(t *testing.T) {
		graph := service("http://unused.test:1", `
          debug: true
          nodes:
            - {name: TARGET, type: property, property: kong.service.target, input: request.query.target}
`)
		for _, tc := range []struct {
			name   string
			allow  []string
			self   []string
			target string
			want   int // status; 500 = refused with destination not allowed
		}{
			{"loopback literal refused", nil, nil, "127.0.0.1:" + port, 500},
			{"localhost refused", nil, nil, "localhost:" + port, 500},
			{"mapped loopback refused", nil, nil, "[::ffff:127.0.0.1]:" + port, 500},
			{"metadata address refused", nil, nil, "169.254.169.254:80", 500},
			{"allow re-admits", []string{"127.0.0.1"}, nil, "127.0.0.1:" + port, 200},
			{"allow with other port", []string{"127.0.0.1:1"}, nil, "127.0.0.1:" + port, 500},
			{"self address refused despite allow", []string{"127.0.0.1"}, []string{"127.0.0.1:" + port}, "127.0.0.1:" + port, 500},
		} {
			t.Run(tc.name, func(t *testing.T) {
				gw := serveGateway(t, graph, gatewayOptions{policy: newPolicy(t, tc.allow, tc.self)})
				before := upstream.count()
				resp, body := get(t, gw.URL+"/x?target="+url.QueryEscape(tc.target), nil)
				if resp.StatusCode != tc.want {
					t.Fatalf("target %s: status %d (%s), want %d", tc.target, resp.StatusCode, body, tc.want)
				}
				if tc.want != 500 {
					return
				}
				if got := errorOf(t, body); got != "destination not allowed" {
					t.Errorf("body %s: error = %q, want destination not allowed", body, got)
				}
				if upstream.count() != before || strings.Contains(body, port) {
					t.Errorf("upstream reached or address leaked: %s", body)
				}
			})
		}
	})
	t.Run("CRLF and type mismatches", func(t *testing.T) {
		gw := serveGateway(t, service(upstream.URL(), `
          debug: true
          nodes:
            - {name: TARGET, type: property, property: kong.service.target, input: request.body.target}
            - {name: SCHEME, type: property, property: kong.service.request.scheme, input: request.body.scheme}
            - {name: STATUS, type: property, property: kong.response.status, input: request.body.status}
            - {name: SHARED, type: property, property: kong.ctx.shared.v, input: request.body.shared}
`), gatewayOptions{policy: newPolicy(t, []string{"127.0.0.1:" + port}, nil)})
		for _, tc := range []struct {
			name       string
			values     map[string]any
			node, want string
		}{
			{"CRLF in the target", map[string]any{"target": "evil.test\r\nX-Evil: 1:80"}, "TARGET", `invalid target "evil.test\r\nX-Evil: 1:80"`},
			{"CRLF in the target host", map[string]any{"target": "evil.test\r\n.test:80"}, "TARGET", `invalid target "evil.test\r\n.test:80"`},
			{"space in the target host", map[string]any{"target": "evil .test:80"}, "TARGET", `invalid target "evil .test:80"`},
			{"userinfo in the target", map[string]any{"target": "a@127.0.0.1:" + port}, "TARGET", `invalid target "a@127.0.0.1:` + port + `"`},
			{"number as the target", map[string]any{"target": 8080}, "TARGET", `invalid target "8080"`},
			{"CRLF in the scheme", map[string]any{"scheme": "http\r\n"}, "SCHEME", `invalid scheme "http\r\n"`},
			{"string status", map[string]any{"status": "200\r\n"}, "STATUS", `invalid status "200\r\n"`},
			{"status out of range", map[string]any{"status": 99}, "STATUS", `invalid status 99`},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := upstream.count()
				resp, body := sendPOST(t, gw.URL+"/", tc.values, nil)
				if f := failureOf(t, body); resp.StatusCode != 500 || f.Node.Name != tc.node || f.Error != tc.want {
					t.Errorf("POST %v = %d %s, want 500 at %s: %s", tc.values, resp.StatusCode, body, tc.node, tc.want)
				}
				if upstream.count() != before {
					t.Errorf("the upstream was reached")
				}
			})
		}
		// Plain data for a kong.ctx key is data, CRLF included.
		if resp, body := sendPOST(t, gw.URL+"/", map[string]any{"shared": "a\r\nb", "target": "127.0.0.1:" + port}, nil); resp.StatusCode != 200 {
			t.Errorf("valid values: %d %s", resp.StatusCode, body)
		}
	})
	t.Run("request data that is not JSON for a JSON property", func(t *testing.T) {
		gw := serveGateway(t, service(upstream.URL(), `
          debug: true
          nodes: [{name: HOST, type: property, property: kong.request.forwarded_host, content_type: application/json}]
`), gatewayOptions{})
		req, _ := http.NewRequest(http.MethodGet, gw.URL+"/", nil)
		req.Host = "not-json.test"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if f := failureOf(t, string(body)); resp.StatusCode != 500 || f.Error != `invalid JSON in property "kong.request.forwarded_host"` {
			t.Errorf("GET = %d %s, want 500 invalid JSON in property", resp.StatusCode, body)
		}
	})
}

// TestT27HostileGraphs: broken and oversized graphs are rejected quickly
// with per-node messages; the largest valid chain runs; a request never
// has more than 32 calls in flight.
func TestT27HostileGraphs(t *testing.T) {
	noLeaks(t)
	upstream := newFake(t, nil)
	nodesOf := func(n int) string {
		var b strings.Builder
		b.WriteString("nodes:\n")
		for i := range n {
			fmt.Fprintf(&b, "  - {name: N%d, type: static, values: {a: %d}}\n", i, i)
		}
		return b.String()
	}
	cases := []struct {
		name, config string
		want         []string // fragments of the validation error
	}{
		{"cycle", `
nodes:
  - {name: A, type: jq, input: B, jq: .}
  - {name: B, type: jq, input: A, jq: .}
`, []string{`nodes[0] "A" (jq): input: invalid dependency ("B" -> "A"): circular dependency: A -> B -> A`}},
		{"self-link", `nodes: [{name: A, type: jq, input: A, jq: .}]`, []string{`nodes[0] "A" (jq)`}},
		{"dangling link", `nodes: [{name: A, type: jq, input: NOWHERE, jq: .}]`, []string{`nodes[0] "A" (jq)`, `NOWHERE`}},
		{"duplicate names", `
nodes:
  - {name: A, type: static, values: {a: 1}}
  - {name: A, type: static, values: {a: 1}}
`, []string{`nodes[1] "A" (static)`}},
		{"two links into one input", `
nodes:
  - {name: A, type: static, values: {a: 1}}
  - {name: B, type: static, values: {a: 1}, output: C}
  - {name: C, type: jq, input: A, jq: .}
`, []string{`"C"`}},
		{"unknown type", `nodes: [{name: A, type: teleport}]`, []string{`nodes[0] "A" (teleport)`}},
		{"missing url", `nodes: [{name: A, type: call}]`, []string{`nodes[0] "A" (call): url`}},
		{"invalid url", `nodes: [{name: A, type: call, url: "ftp://x"}]`, []string{`nodes[0] "A" (call): url: invalid URL "ftp://x"`}},
		{"negative timeout", `nodes: [{name: A, type: call, url: "http://x.test", timeout: -1}]`, []string{`nodes[0] "A" (call): timeout`}},
		{"input with inputs", `nodes: [{name: A, type: jq, input: request.body, inputs: {a: request.query}, jq: .}]`, []string{`nodes[0] "A" (jq)`}},
		{"65 nodes", nodesOf(65), []string{`got 65`}},
		{"10000 nodes", nodesOf(10000), []string{`got 10000`}},
	}
	for _, name := range []string{"request", "service_request", "service_response", "response", "vault"} {
		cases = append(cases, struct {
			name, config string
			want         []string
		}{"reserved name " + name, `nodes: [{name: ` + name + `, type: static, values: {a: 1}}]`, []string{`nodes[0] "` + name + `" (static)`}})
	}
	plugins := gateway.NewPlugins(datakit.New(datakit.Options{Registry: registry()}))
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var cfg map[string]any
			if err := yaml.Unmarshal([]byte(tc.config), &cfg); err != nil {
				t.Fatal(err)
			}
			// What an Admin API write of the plugin runs, timed apart from
			// decoding the document.
			start := time.Now()
			_, err := plugins.ValidatePluginConfig(config.Plugin{Name: "datakit", Config: cfg})
			// Spec: 100 ms; 1 s here, under -race on a shared machine.
			d := time.Since(start)
			t.Logf("rejected in %v", d)
			if d > time.Second {
				t.Errorf("rejected after %v", d)
			}
			if err == nil {
				t.Fatal("the configuration was accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("validation error %.500q, want it to contain %q", err, w)
				}
			}
		})
	}
	t.Run("64-deep chain runs", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("          nodes:\n            - {name: N0, type: jq, input: request.query, jq: '0'}\n")
		for i := 1; i < 63; i++ {
			fmt.Fprintf(&b, "            - {name: N%d, type: jq, input: N%d, jq: '. + 1'}\n", i, i-1)
		}
		b.WriteString("            - {name: N63, type: exit, inputs: {body: N62}}\n")
		gw := serveGateway(t, service(upstream.URL(), b.String()), gatewayOptions{})
		if resp, body := get(t, gw.URL+"/", nil); resp.StatusCode != 200 || body != "62" {
			t.Errorf("64-deep chain = %d %q, want 200 62", resp.StatusCode, body)
		}
	})
	t.Run("at most 32 calls in flight", func(t *testing.T) {
		var inflight, peak atomic.Int32
		slow := newFake(t, func(w http.ResponseWriter, _ *http.Request) {
			n := inflight.Add(1)
			defer inflight.Add(-1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			time.Sleep(100 * time.Millisecond)
		})
		var b strings.Builder
		b.WriteString("          nodes:\n")
		for i := range 40 {
			fmt.Fprintf(&b, "            - {name: C%d, type: call, url: %s}\n", i, slow.URL())
		}
		gw := serveGateway(t, service(upstream.URL(), b.String()), gatewayOptions{})
		if resp, body := get(t, gw.URL+"/", nil); resp.StatusCode != 200 {
			t.Fatalf("GET = %d %s", resp.StatusCode, body)
		}
		if p := peak.Load(); p > 32 || p < 2 || slow.count() != 40 {
			t.Errorf("peak calls in flight = %d of %d calls, want between 2 and 32", p, slow.count())
		}
	})
}

// lazyBody is n bytes of c between prefix and suffix, made as they are
// read; read counts what was taken.
func lazyBody(prefix string, c byte, n int64, suffix string, read *atomic.Int64) io.Reader {
	return &countingReader{r: io.MultiReader(strings.NewReader(prefix),
		io.LimitReader(repeatReader(c), n), strings.NewReader(suffix)), n: read}
}

type repeatReader byte

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// TestT30LargeBodies: a body over the buffer cap is refused with 413 before
// it is buffered (a declared length unread); a graph that does not read the
// body leaves it unread; a compressed body is never decompressed.
func TestT30LargeBodies(t *testing.T) {
	noLeaks(t)
	upstream := newFake(t, nil)
	const bufferCap = 1 << 20
	limits := gateway.DefaultLimits()
	limits.ClientBodyBufferLimit = bufferCap
	var gatewayRead atomic.Int64
	gw := serveGateway(t, `_format_version: "3.0"
services:
  - name: api
    url: `+upstream.URL()+`
    routes:
      - name: reads
        paths: ["/read"]
        plugins:
          - name: datakit
            config:
              nodes:
                - {name: SIZE, type: jq, input: request.body, jq: 'if type == "string" then utf8bytelength else type end'}
                - {name: EXIT, type: exit, inputs: {body: SIZE}}
      - name: ignores
        paths: ["/ignore"]
        plugins:
          - name: datakit
            config:
              nodes: [{name: EXIT, type: exit, status: 204}]
`, gatewayOptions{limits: limits, readBytes: &gatewayRead})
	const huge = 100 << 20
	cases := []struct {
		name, path, contentType string
		body                    func(sent *atomic.Int64) io.Reader
		chunked                 bool
		status                  int
		maxRead                 int64 // bytes the gateway may read
	}{
		{"100 MB JSON, declared", "/read", "application/json", func(sent *atomic.Int64) io.Reader {
			return lazyBody(`"`, 'a', huge, `"`, sent)
		}, false, 413, 64 << 10},
		{"100 MB JSON, chunked", "/read", "application/json", func(sent *atomic.Int64) io.Reader {
			return lazyBody(`"`, 'a', huge, `"`, sent)
		}, true, 413, bufferCap + 1<<20},
		{"100 MB non-JSON, declared", "/read", "application/octet-stream", func(sent *atomic.Int64) io.Reader {
			return lazyBody("", 0, huge, "", sent)
		}, false, 413, 64 << 10},
		{"100 MB to a graph that does not read it", "/ignore", "application/json", func(sent *atomic.Int64) io.Reader {
			return lazyBody(`"`, 'a', huge, `"`, sent)
		}, false, 204, 64 << 10},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var sent atomic.Int64
			req, _ := http.NewRequest(http.MethodPost, gw.URL+tc.path, tc.body(&sent))
			req.Header.Set("Content-Type", tc.contentType)
			if !tc.chunked {
				req.ContentLength = huge + int64(len(`""`))
				if tc.contentType == "application/octet-stream" {
					req.ContentLength = huge
				}
			}
			before := gatewayRead.Load()
			var resp *http.Response
			var err error
			growth := heapDuring(func() { resp, err = http.DefaultClient.Do(req) })
			if err != nil {
				t.Fatalf("POST: %v (client sent %d bytes)", err, sent.Load())
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Errorf("POST = %d %s, want %d", resp.StatusCode, body, tc.status)
			}
			if tc.status == 413 && (!strings.Contains(string(body), "Payload too large") || !resp.Close) {
				t.Errorf("413 body %s, Connection: close %v", body, resp.Close)
			}
			if read := gatewayRead.Load() - before; read > tc.maxRead {
				t.Errorf("the gateway read %d KiB of the body, want at most %d KiB", read>>10, tc.maxRead>>10)
			}
			t.Logf("client sent %d KiB, gateway read %d KiB, heap growth %d KiB", sent.Load()>>10, (gatewayRead.Load()-before)>>10, growth>>10)
			if growth > 2*bufferCap+1<<20 {
				t.Errorf("heap grew by %d KiB, want under 2× the %d KiB cap", growth>>10, bufferCap>>10)
			}
		})
	}
	t.Run("gzip bomb is not decompressed", func(t *testing.T) {
		// Gzip members concatenated are one gzip stream (RFC 1952 §2.2): 1 MiB
		// of zeros compresses to about 1 KiB, so 700 members make a body
		// under the cap that inflates to 700 MiB.
		var member bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&member, gzip.BestSpeed)
		_, _ = zw.Write(make([]byte, 1<<20))
		_ = zw.Close()
		bomb := bytes.NewBuffer(bytes.Repeat(member.Bytes(), 700))
		for _, tc := range []struct{ contentType, want string }{
			{"application/octet-stream", fmt.Sprint(bomb.Len())}, // the graph sees the compressed bytes
			{"application/json", "Invalid JSON in request body"},
		} {
			req, _ := http.NewRequest(http.MethodPost, gw.URL+"/read", bytes.NewReader(bomb.Bytes()))
			req.Header.Set("Content-Type", tc.contentType)
			req.Header.Set("Content-Encoding", "gzip")
			var resp *http.Response
			var err error
			growth := heapDuring(func() { resp, err = http.DefaultClient.Do(req) })
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !strings.Contains(string(body), tc.want) {
				t.Errorf("%s: %d %s, want %s", tc.contentType, resp.StatusCode, body, tc.want)
			}
			if growth > 2*bufferCap+1<<20 {
				t.Errorf("%s: heap grew by %d KiB for a %d KiB body", tc.contentType, growth>>10, bomb.Len()>>10)
			}
		}
	})
	if n := upstream.count(); n != 0 {
		t.Errorf("upstream saw %d requests", n)
	}
}
