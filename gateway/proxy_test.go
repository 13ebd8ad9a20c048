package gateway_test

import (
	"bufio"
	"crypto/x509"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/datakit-gateway/datakit/gateway"
)

// resetter accepts connections, reads the request head, then resets the
// connection: a failure after the request was sent.
func resetter(t *testing.T) (addr string, conns *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns = &atomic.Int32{}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			br := bufio.NewReader(c)
			if _, err := http.ReadRequest(br); err == nil {
				c.(*net.TCPConn).SetLinger(0)
			}
			c.Close()
		}
	}()
	return ln.Addr().String(), conns
}

func poolDoc(svcExtra string, targets ...string) string {
	doc := `_format_version: "3.0"
upstreams:
  - name: pool.internal
    targets:
`
	for _, tg := range targets {
		doc += `      - target: "` + tg + "\"\n"
	}
	return doc + `services:
  - name: svc
    host: pool.internal
` + svcExtra + `
    routes: [{name: r, paths: [/]}]
`
}

// TestRetries checks gateway.md §8.5: connection failures before response
// headers move to a fresh Target; a POST that was sent is never re-sent; no
// HTTP status is retried.
func TestRetries(t *testing.T) {
	t.Run("dead target then live", func(t *testing.T) {
		live := newUpstream(t, nil)
		dead := "127.0.0.1:" + closedPort(t)
		gw := startGateway(t, poolDoc("    retries: 1", dead, live.Listener.Addr().String()), setup{})
		for i := range 4 {
			for _, m := range []string{"GET", "POST"} {
				resp := send(t, gw, request{method: m, target: "/", body: strings.NewReader("payload")})
				if resp.StatusCode != 200 || resp.body != "ok" {
					t.Fatalf("%s #%d = %d %q, want 200 from the live target", m, i, resp.StatusCode, resp.body)
				}
			}
		}
		if got := live.last(t).Body; got != "payload" {
			t.Errorf("retried POST body = %q", got)
		}
	})
	t.Run("no retries configured", func(t *testing.T) {
		live := newUpstream(t, nil)
		dead := "127.0.0.1:" + closedPort(t)
		gw := startGateway(t, poolDoc("    retries: 0", dead, live.Listener.Addr().String()), setup{})
		failed := 0
		for range 2 {
			if send(t, gw, request{target: "/"}).StatusCode == 502 {
				failed++
			}
		}
		if failed != 1 || live.count() != 1 {
			t.Errorf("2 GETs with retries 0 over a dead and a live target: %d failed, live saw %d; want 1 and 1", failed, live.count())
		}
	})
	t.Run("POST reset after sending is not re-sent", func(t *testing.T) {
		live := newUpstream(t, nil)
		reset, conns := resetter(t)
		gw := startGateway(t, poolDoc("    retries: 3", reset, live.Listener.Addr().String()), setup{})
		statuses := map[int]int{}
		for range 2 { // round-robin: one of them goes to the resetter first
			statuses[send(t, gw, request{method: "POST", target: "/", body: strings.NewReader("x")}).StatusCode]++
		}
		if statuses[502] != 1 || statuses[200] != 1 || live.count() != 1 || conns.Load() != 1 {
			t.Errorf("statuses %v, live saw %d, resetter %d; want one 502, one 200, 1 and 1", statuses, live.count(), conns.Load())
		}
		// The same failure on a GET is retried on the live target.
		for range 2 {
			if r := send(t, gw, request{target: "/"}); r.StatusCode != 200 {
				t.Errorf("GET = %d, want 200 after a retry", r.StatusCode)
			}
		}
	})
	t.Run("statuses are never retried", func(t *testing.T) {
		var hits atomic.Int32
		up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			w.WriteHeader(503)
		})
		gw := startGateway(t, serviceDoc(up, "    retries: 5", "      - {name: r, paths: [/]}\n"), setup{})
		if r := send(t, gw, request{target: "/"}); r.StatusCode != 503 || hits.Load() != 1 {
			t.Errorf("upstream 503: got %d after %d tries, want 503 after 1", r.StatusCode, hits.Load())
		}
	})
	t.Run("read timeout on GET is retried", func(t *testing.T) {
		slow, arrived := blockingUpstream(t)
		gw := startGateway(t, serviceDoc(slow, "    read_timeout: 30\n    retries: 2", "      - {name: r, paths: [/]}\n"), setup{})
		checkError(t, send(t, gw, request{target: "/"}), 504, "The upstream server is timing out")
		if n := len(arrived); n != 3 {
			t.Errorf("upstream saw %d tries, want 3", n)
		}
		checkError(t, send(t, gw, request{method: "POST", target: "/", body: strings.NewReader("x")}), 504, "The upstream server is timing out")
		if n := len(arrived); n != 4 {
			t.Errorf("a timed-out POST was re-sent: upstream saw %d tries, want 4", n)
		}
	})
}

// TestHTTPSUpstream checks upstream verification (gateway.md §8.9).
func TestHTTPSUpstream(t *testing.T) {
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "secure "+r.Host)
	}))
	up.Config.ErrorLog = log.New(io.Discard, "", 0) // rejected handshakes are the point
	up.StartTLS()
	t.Cleanup(up.Close)
	host, port, _ := net.SplitHostPort(up.Listener.Addr().String())
	doc := func(extra string) string {
		return `_format_version: "3.0"
services:
  - name: svc
    protocol: https
    host: ` + host + `
    port: ` + port + `
` + extra + `
    routes: [{name: r, paths: [/]}]
`
	}
	checkError(t, send(t, startGateway(t, doc(""), setup{}), request{target: "/"}), 502,
		"An invalid response was received from the upstream server")
	if r := send(t, startGateway(t, doc("    tls_verify: false"), setup{}), request{target: "/"}); r.StatusCode != 200 || !strings.HasPrefix(r.body, "secure") {
		t.Errorf("tls_verify false = %d %q, want 200", r.StatusCode, r.body)
	}
	// Trusting the server's certificate verifies it, by IP SAN.
	roots := x509.NewCertPool()
	roots.AddCert(up.Certificate())
	trusted := setup{build: gateway.BuildOptions{UpstreamTLS: gateway.UpstreamTLS{RootCAs: roots}}}
	if r := send(t, startGateway(t, doc(""), trusted), request{target: "/"}); r.StatusCode != 200 {
		t.Errorf("trusted root = %d %q, want 200", r.StatusCode, r.body)
	}
	// Node-wide upstream_tls_verify off, the Service turning it back on.
	insecure := setup{build: gateway.BuildOptions{UpstreamTLS: gateway.UpstreamTLS{Insecure: true}}}
	if r := send(t, startGateway(t, doc(""), insecure), request{target: "/"}); r.StatusCode != 200 {
		t.Errorf("upstream_tls_verify off = %d, want 200", r.StatusCode)
	}
	if r := send(t, startGateway(t, doc("    tls_verify: true"), insecure), request{target: "/"}); r.StatusCode != 502 {
		t.Errorf("tls_verify true over upstream_tls_verify off = %d, want 502", r.StatusCode)
	}
}

// TestWebSocket proxies an upgrade and echoes bytes both ways over the
// spliced connections (gateway.md §8.7).
func TestWebSocket(t *testing.T) {
	var seenHeader http.Header
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seenHeader = r.Header.Clone()
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			http.Error(w, "not an upgrade", 400)
			return
		}
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
		buf := make([]byte, 5)
		for {
			if _, err := io.ReadFull(brw, buf); err != nil {
				return
			}
			_, _ = c.Write([]byte(strings.ToUpper(string(buf))))
		}
	}))
	t.Cleanup(up.Close)
	host, port, _ := net.SplitHostPort(up.Listener.Addr().String())
	doc := `_format_version: "3.0"
services:
  - {name: ws, host: ` + host + `, port: ` + port + `, routes: [{name: r, paths: [/ws]}]}
`
	gw := startGateway(t, doc, setup{})
	// The same through the real Server, whose per-operation deadlines must
	// leave a hijacked connection alone.
	n := startNode(t, doc, gateway.ServerOptions{SendTimeout: time.Second, BodyTimeout: time.Second}, setup{})
	for _, addr := range []string{gw.Listener.Addr().String(), n.proxy} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, _ = io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: gw.test\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"+
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 101 || resp.Header.Get("Sec-Websocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" ||
			!requestIDs.MatchString(resp.Header.Get("X-Kong-Request-Id")) {
			t.Fatalf("%s: handshake = %d %v", addr, resp.StatusCode, resp.Header)
		}
		if got := seenHeader.Get("Connection"); got != "keep-alive, Upgrade" {
			t.Errorf("upstream Connection = %q, want %q", got, "keep-alive, Upgrade")
		}
		for i, msg := range []string{"hello", "world"} {
			if i > 0 && addr == n.proxy {
				time.Sleep(1500 * time.Millisecond) // a pause past both client deadlines
			}
			_, _ = io.WriteString(c, msg)
			got := make([]byte, 5)
			if _, err := io.ReadFull(br, got); err != nil || string(got) != strings.ToUpper(msg) {
				t.Fatalf("%s: echo of %q = %q, %v", addr, msg, got, err)
			}
		}
	}
	// Any other Upgrade value is dropped: a plain request reaches upstream.
	r := rawExchange(t, gw, "GET /ws HTTP/1.1\r\nHost: gw.test\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n")
	if r.StatusCode != 400 || seenHeader.Get("Upgrade") != "" {
		t.Errorf("Upgrade: h2c = %d, upstream Upgrade %q; want the upgrade dropped", r.StatusCode, seenHeader.Get("Upgrade"))
	}
}
