package gateway_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/datakit-gateway/datakit/gateway"
)

// closedPort returns a local port nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	return port
}

// blockingUpstream never answers until the test ends; arrived receives one
// value per request.
func blockingUpstream(t *testing.T) (*upstream, chan struct{}) {
	t.Helper()
	release, arrived := make(chan struct{}), make(chan struct{}, 16)
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(release) })
	return up, arrived
}

func jsonError(msg, id string) string {
	return "{\n  \"message\":\"" + msg + "\",\n  \"request_id\":\"" + id + "\"\n}"
}

// checkError asserts a gateway-made JSON error response (gateway.md §8.6,
// §8.8).
func checkError(t *testing.T, resp response, status int, msg string) {
	t.Helper()
	id := resp.Header.Get("X-Kong-Request-Id")
	if resp.StatusCode != status || resp.body != jsonError(msg, id) {
		t.Errorf("got %d %q, want %d %q", resp.StatusCode, resp.body, status, jsonError(msg, id))
	}
	if !requestIDs.MatchString(id) {
		t.Errorf("X-Kong-Request-Id = %q", id)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}
	if resp.Header.Get("Server") != "datakit/test" {
		t.Errorf("Server = %q", resp.Header.Get("Server"))
	}
	if !regexp.MustCompile(`^\d+$`).MatchString(resp.Header.Get("X-Kong-Response-Latency")) {
		t.Errorf("X-Kong-Response-Latency = %q", resp.Header.Get("X-Kong-Response-Latency"))
	}
	if resp.Header.Get("Content-Length") != fmt.Sprint(len(resp.body)) && resp.ContentLength != int64(len(resp.body)) {
		t.Errorf("Content-Length = %d, body %d bytes", resp.ContentLength, len(resp.body))
	}
	for _, name := range []string{"X-Kong-Upstream-Latency", "X-Kong-Proxy-Latency", "Via"} {
		if v, ok := resp.Header[name]; ok {
			t.Errorf("gateway-made response has %s %q", name, v)
		}
	}
}

// syncBuffer collects log output written from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestT10ErrorResponseShape checks each situation of gateway.md §8.8's table
// that a plain configuration can produce, in JSON, in plain text and for
// HEAD: the template's message and request id, nothing else — no Go error,
// stack, internal address or credential, in the body, the headers or the
// logs (hardening.md T10).
func TestT10ErrorResponseShape(t *testing.T) {
	up := newUpstream(t, nil)
	slow, _ := blockingUpstream(t)
	slowHost, slowPort := slow.hostPort()
	dead := closedPort(t)
	reset, _ := resetter(t)
	resetHost, resetPort, _ := net.SplitHostPort(reset)
	doc := `_format_version: "3.0"
services:
  - name: ok
    url: ` + up.URL + `
    routes: [{name: ok, paths: [/ok]}, {name: panic, paths: [/panic]}]
  - name: refused
    host: 127.0.0.1
    port: ` + dead + `
    retries: 1
    routes: [{name: refused, paths: [/refused]}]
  - name: slow
    host: ` + slowHost + `
    port: ` + slowPort + `
    read_timeout: 1
    retries: 0
    routes: [{name: slow, paths: [/slow]}]
  - name: reset
    host: ` + resetHost + `
    port: ` + resetPort + `
    retries: 0
    routes: [{name: reset, paths: [/reset]}]
  - name: unresolvable
    host: nonexistent.invalid
    retries: 0
    routes: [{name: unresolvable, paths: [/dns]}]
  - name: nopeer
    host: empty.pool
    routes: [{name: nopeer, paths: [/nopeer]}]
upstreams:
  - name: empty.pool
routes:
  - {name: orphan, paths: [/orphan]}
plugins:
  - {name: boom, route: panic, config: {mode: panic}}
`
	var logs syncBuffer
	gw := startGateway(t, doc, setup{plugins: taggers(map[string]int{"boom": 10}), opts: gateway.Options{
		AccessLog: true, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}})
	const canary = "SECRET-5f0c1d2e-8a7b-4c3d-9e1f-0a1b2c3d4e5f"
	long := "/ok?" + strings.Repeat("a", 8<<10)
	args := "/ok?" + strings.Repeat("a=1&", 1000) + "b=2"
	cases := []struct {
		method, target string
		status         int
		msg            string
	}{
		{"GET", "/nothing", 404, "no Route matched with those values"},
		{"GET", "/orphan", 503, "no Service found with those values"},
		{"GET", "/refused", 502, "An invalid response was received from the upstream server"},
		{"POST", "/refused", 502, "An invalid response was received from the upstream server"},
		{"GET", "/reset", 502, "An invalid response was received from the upstream server"},
		{"GET", "/slow", 504, "The upstream server is timing out"},
		{"GET", "/dns", 503, "name resolution failed"},
		{"GET", "/nopeer", 503, "failure to get a peer from the ring-balancer"},
		{"GET", "/panic", 500, "An unexpected error occurred"},
		{"TRACE", "/ok", 405, "Method not allowed"},
		{"GET", long, 414, "URI too long"},
		{"GET", args, 400, "Bad request"},
	}
	// leaks are what no error response may show.
	leaks := []string{canary, "127.0.0.1", dead, slowPort, resetPort, "nonexistent.invalid", "dial", "tcp", "refused",
		"reset by peer", "timeout", "goroutine", "panic", "boom", ".go:"}
	for _, c := range cases {
		t.Run(c.method+" "+c.target[:min(len(c.target), 12)], func(t *testing.T) {
			secret := http.Header{"Authorization": {"Bearer " + canary}}
			target := c.target
			if !strings.Contains(target, "?") {
				target += "?token=" + canary
			}
			json := send(t, gw, request{method: c.method, target: target, header: secret})
			checkError(t, json, c.status, c.msg)
			plain := send(t, gw, request{method: c.method, target: target, header: http.Header{
				"Accept": {"text/plain"}, "Authorization": {"Bearer " + canary}}})
			id := plain.Header.Get("X-Kong-Request-Id")
			if want := c.msg + "\nrequest_id: " + id + "\n"; plain.StatusCode != c.status || plain.body != want ||
				plain.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
				t.Errorf("Accept: text/plain: %d %q (%s), want %d %q", plain.StatusCode, plain.body, plain.Header.Get("Content-Type"), c.status, want)
			}
			for _, r := range []response{json, plain} {
				for name, vals := range r.Header {
					for _, leak := range leaks {
						if strings.Contains(name+": "+strings.Join(vals, ","), leak) {
							t.Errorf("response header %s: %q shows %q", name, vals, leak)
						}
					}
				}
			}
			if c.method != http.MethodGet {
				return
			}
			head := send(t, gw, request{method: http.MethodHead, target: target, header: secret})
			if head.StatusCode != c.status || head.body != "" || head.ContentLength != int64(len(jsonError(c.msg, id))) {
				t.Errorf("HEAD = %d, body %q, Content-Length %d; want %d, no body, %d",
					head.StatusCode, head.body, head.ContentLength, c.status, len(jsonError(c.msg, id)))
			}
		})
	}
	t.Run("1000 query args pass", func(t *testing.T) {
		resp := send(t, gw, request{target: "/ok?" + strings.Repeat("a=1&", 999) + "b=2"})
		if resp.StatusCode != 200 {
			t.Errorf("status %d", resp.StatusCode)
		}
	})
	t.Run("CONNECT", func(t *testing.T) {
		resp := rawExchange(t, gw, "CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\n\r\n")
		if resp.StatusCode != 405 {
			t.Errorf("CONNECT = %d, want 405", resp.StatusCode)
		}
	})
	// The causes go to the log, with the request id, and credentials never
	// do (hardening.md §1.4).
	out := logs.String()
	if strings.Contains(out, canary) {
		t.Errorf("the log shows the credential:\n%s", out)
	}
	for _, want := range []string{"connection refused", "plugin panicked", "boom", "runtime/debug.Stack"} {
		if !strings.Contains(out, want) {
			t.Errorf("the log does not show %q", want)
		}
	}
}

// TestErrorFormats checks the Accept negotiation and the four templates of
// gateway.md §8.8.
func TestErrorFormats(t *testing.T) {
	gw := startGateway(t, `_format_version: "3.0"`, setup{})
	const (
		jsonCT  = "application/json; charset=utf-8"
		htmlCT  = "text/html; charset=utf-8"
		xmlCT   = "application/xml; charset=utf-8"
		plainCT = "text/plain; charset=utf-8"
	)
	cases := []struct {
		header http.Header
		want   string
	}{
		{nil, jsonCT},
		{http.Header{"Accept": {"text/html"}}, htmlCT},
		{http.Header{"Accept": {"application/xml"}}, xmlCT},
		{http.Header{"Accept": {"text/plain"}}, plainCT},
		{http.Header{"Accept": {"text/*"}}, plainCT},
		{http.Header{"Accept": {"*/*"}}, jsonCT},
		{http.Header{"Accept": {"application/*"}}, jsonCT},
		{http.Header{"Accept": {"image/png"}}, jsonCT},
		{http.Header{"Accept": {"text/html;q=0.5, application/xml;q=0.9"}}, xmlCT},
		{http.Header{"Accept": {"text/plain;q=0.1, text/html"}}, htmlCT},
		{http.Header{"Accept": {"text/html, application/xml"}}, htmlCT},            // tie: first wins
		{http.Header{"Accept": {"application/xml;q=0.8, text/html;q=0.8"}}, xmlCT}, // tie: first wins
		{http.Header{"Accept": {"text/html;q=0, text/plain;q=0.001"}}, plainCT},
		{http.Header{"Content-Type": {"text/html"}}, htmlCT},
		{http.Header{"Content-Type": {"application/xml; charset=utf-8"}}, xmlCT},
		{http.Header{"Accept": {"text/plain"}, "Content-Type": {"text/html"}}, plainCT},
	}
	for _, c := range cases {
		resp := send(t, gw, request{target: "/missing", header: c.header})
		if ct := resp.Header.Get("Content-Type"); ct != c.want {
			t.Errorf("Accept %q Content-Type %q: got %q, want %q", c.header.Get("Accept"), c.header.Get("Content-Type"), ct, c.want)
		}
	}
	id := func(r response) string { return r.Header.Get("X-Kong-Request-Id") }
	r := send(t, gw, request{target: "/missing", header: http.Header{"Accept": {"text/html"}}})
	if want := "<!doctype html>\n<html>\n  <head>\n    <meta charset=\"utf-8\">\n    <title>Error</title>\n  </head>\n  <body>\n    <h1>Error</h1>\n    <p>no Route matched with those values.</p>\n    <p>request_id: " + id(r) + "</p>\n  </body>\n</html>\n"; r.body != want {
		t.Errorf("HTML body = %q, want %q", r.body, want)
	}
	r = send(t, gw, request{target: "/missing", header: http.Header{"Accept": {"application/xml"}}})
	if want := "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<error>\n  <message>no Route matched with those values</message>\n  <requestid>" + id(r) + "</requestid>\n</error>\n"; r.body != want {
		t.Errorf("XML body = %q, want %q", r.body, want)
	}
	r = send(t, gw, request{target: "/missing", header: http.Header{"Accept": {"text/plain"}}})
	if want := "no Route matched with those values\nrequest_id: " + id(r) + "\n"; r.body != want {
		t.Errorf("plain body = %q, want %q", r.body, want)
	}
	t.Run("error_default_type", func(t *testing.T) {
		gw := startGateway(t, `_format_version: "3.0"`, setup{opts: gateway.Options{ErrorFormat: gateway.ParseErrorFormat("text/html")}})
		if ct := send(t, gw, request{target: "/x"}).Header.Get("Content-Type"); ct != htmlCT {
			t.Errorf("default type text/html: got %q", ct)
		}
	})
}

// TestMaxInflight: beyond max_inflight_requests the gateway answers 503 at
// once, never queueing (gateway.md §8.1).
func TestMaxInflight(t *testing.T) {
	up, arrived := blockingUpstream(t)
	gw := startGateway(t, serviceDoc(up, "", "      - {name: r, paths: [/]}\n"), setup{opts: gateway.Options{MaxInflight: 1}})
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, err := gw.Client().Get(gw.URL + "/held")
		if err == nil {
			resp.Body.Close()
		}
	}()
	<-arrived
	resp := send(t, gw, request{target: "/second"})
	checkError(t, resp, 503, "Service unavailable")
	if resp.Header.Get("Retry-After") != "1" {
		t.Errorf("Retry-After = %q, want 1", resp.Header.Get("Retry-After"))
	}
	gw.CloseClientConnections()
	<-done
}

// TestHTTPSOnlyRoute checks gateway.md §7.5 on the plain listener.
func TestHTTPSOnlyRoute(t *testing.T) {
	up := newUpstream(t, nil)
	doc := serviceDoc(up, "", `      - {name: r426, paths: [/u], protocols: [https]}
      - {name: r301, paths: [/m], protocols: [https], https_redirect_status_code: 301}
`)
	gw := startGateway(t, doc, setup{opts: gateway.Options{TrustedIPs: loopback}})
	resp := send(t, gw, request{target: "/u"})
	checkError(t, resp, 426, "Please use HTTPS protocol")
	if resp.Header.Get("Upgrade") != "TLS/1.2, HTTP/1.1" {
		t.Errorf("Upgrade = %q", resp.Header.Get("Upgrade"))
	}
	client := gw.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	req, _ := http.NewRequest("GET", gw.URL+"/m/x?y=1", nil)
	req.Host = "shop.test:8000"
	r, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != 301 || r.Header.Get("Location") != "https://shop.test/m/x?y=1" {
		t.Errorf("redirect = %d %q", r.StatusCode, r.Header.Get("Location"))
	}
	// A trusted peer that says it terminated TLS is proxied.
	if resp := send(t, gw, request{target: "/u", header: http.Header{"X-Forwarded-Proto": {"https"}}}); resp.StatusCode != 200 || up.count() != 1 {
		t.Errorf("forwarded https = %d, upstream saw %d", resp.StatusCode, up.count())
	}
}
