package gateway_test

// The front-door cases of the hardening catalogue (hardening.md §3.1)
// against the real Server: its listeners, timeouts and header limits.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/datakit-gateway/datakit/gateway"
	"github.com/datakit-gateway/datakit/gateway/config"
)

// TestT01SlowlorisHeaders: a head sent one byte at a time is cut at
// client_header_timeout on every listener, TLS included (hardening.md
// T01). Margin: the close may come up to 1 s late (the catalogue's ±1 s) and
// never before the timeout.
//
// HTTP/2 has no per-request header deadline in net/http: a header block
// trickled over an established connection is cut by keepalive_timeout
// (IdleTimeout: no stream is open yet), after which the server allows 1 s
// for its GOAWAY.
func TestT01SlowlorisHeaders(t *testing.T) {
	leakCheck(t)
	const timeout, idle = 2 * time.Second, 3 * time.Second
	n := startNode(t, `_format_version: "3.0"`, gateway.ServerOptions{ReadHeaderTimeout: timeout, IdleTimeout: idle}, setup{})
	for _, c := range []struct {
		name, addr, alpn string
		prefix           string // sent at once before the trickle
		head             string
		limit, late      time.Duration
	}{
		{"proxy", n.proxy, "", "", http1Head, timeout, time.Second},
		{"proxy TLS", n.tls, "http/1.1", "", http1Head, timeout, time.Second},
		{"status", n.status, "", "", http1Head, timeout, time.Second},
		{"admin", n.admin, "", "", http1Head, timeout, time.Second},
		// The preface and an empty SETTINGS frame, then a HEADERS frame
		// header announcing 100 bytes of block.
		{"proxy HTTP/2", n.tls, "h2", http2.ClientPreface + "\x00\x00\x00\x04\x00\x00\x00\x00\x00",
			"\x00\x00\x64\x01\x04\x00\x00\x00\x01" + strings.Repeat("\x00", 100), idle, 2 * time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			conn := n.dialRaw(t, c.addr, c.alpn)
			if _, err := io.WriteString(conn, c.prefix); err != nil {
				t.Fatal(err)
			}
			stop := make(chan struct{})
			done := trickle(conn, c.head, 250*time.Millisecond, stop)
			after, err := closedWithin(conn, start, c.limit+10*time.Second)
			close(stop)
			<-done
			if err != nil {
				t.Fatalf("connection %s %v after the limit", err, c.limit+10*time.Second)
			}
			if after < c.limit-50*time.Millisecond || after > c.limit+c.late {
				t.Errorf("connection closed after %v, want %v (-50 ms, +%v)", after.Round(time.Millisecond), c.limit, c.late)
			}
		})
	}
}

// http1Head is the start of a request head that never ends.
var http1Head = "GET / HTTP/1.1\r\nHost: slow.test\r\nX-Slow: " + strings.Repeat("x", 100)

// TestT02SlowBody: a body that pauses longer than client_body_timeout, or
// takes longer than client_body_max_duration as a whole, ends with 408 and a
// closed connection, and the upstream connection it was streaming to is
// released (hardening.md T02, Traefik CVE-2024-28869). Margins: the answer
// comes no earlier than the limit and at most 1 s after it.
func TestT02SlowBody(t *testing.T) {
	leakCheck(t)
	const pause, whole = time.Second, 3 * time.Second
	up := newRawUpstream(t, nil)
	n := startNode(t, up.doc("", "      - {name: r, paths: [/]}\n"),
		gateway.ServerOptions{BodyTimeout: pause, BodyMaxDuration: whole}, setup{})
	cases := []struct {
		name     string
		head     string
		body     string        // sent at once after the head
		trickle  string        // then sent one byte per 100 ms
		limit    time.Duration // the limit that must end it
		upstream bool          // the body was streamed to an upstream request
	}{
		{"declared body never sent", "GET /absent HTTP/1.1\r\nHost: a.test\r\nContent-Length: 10\r\n\r\n", "", "", pause, true},
		{"body stops half way", "POST /half HTTP/1.1\r\nHost: a.test\r\nContent-Length: 10\r\n\r\n", "12345", "", pause, true},
		{"10 B/s past the whole-body limit", "POST /trickle HTTP/1.1\r\nHost: a.test\r\nContent-Length: 100\r\n\r\n", "",
			strings.Repeat("x", 100), whole, true},
		{"chunked, stalled", "POST /chunked HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n", "5\r\nhello\r\n", "", pause, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conn := n.dialRaw(t, n.proxy, "")
			start := time.Now()
			if _, err := io.WriteString(conn, c.head+c.body); err != nil {
				t.Fatal(err)
			}
			stop := make(chan struct{})
			done := closedChan
			if c.trickle != "" {
				done = trickle(conn, c.trickle, 100*time.Millisecond, stop)
			}
			br := bufio.NewReader(conn)
			resp, body := readResponse(t, br, conn)
			after := time.Since(start)
			close(stop)
			<-done
			id := resp.Header.Get("X-Kong-Request-Id")
			if resp.StatusCode != http.StatusRequestTimeout || body != jsonError("Request timeout", id) || !resp.Close {
				t.Errorf("got %d %q (close %v), want 408 %q and Connection: close", resp.StatusCode, body, resp.Close, jsonError("Request timeout", id))
			}
			if after < c.limit-50*time.Millisecond || after > c.limit+time.Second {
				t.Errorf("answered after %v, want %v (-50 ms, +1 s)", after.Round(time.Millisecond), c.limit)
			}
			if _, err := closedWithin(conn, time.Now(), 5*time.Second); err != nil {
				t.Errorf("client connection %v after the 408", err)
			}
			if c.upstream {
				closed := up.awaitClose(t, 5*time.Second)
				if d := closed.Sub(start); d > c.limit+time.Second {
					t.Errorf("upstream connection released %v after the request began, want within %v", d, c.limit+time.Second)
				}
			}
		})
	}
	t.Run("HTTP/2, declared body never sent", func(t *testing.T) {
		c := n.dialH2(t)
		start := time.Now()
		if err := c.headers(1, "POST", "/h2", false, true, hpack.HeaderField{Name: "content-length", Value: "10"}); err != nil {
			t.Fatal(err)
		}
		status, ok := c.status(1, pause+5*time.Second)
		after := time.Since(start)
		if !ok || status != "408" {
			t.Fatalf("stream answered %q (%v), want 408", status, ok)
		}
		if after < pause-50*time.Millisecond || after > pause+time.Second {
			t.Errorf("answered after %v, want %v (-50 ms, +1 s)", after.Round(time.Millisecond), pause)
		}
		up.awaitClose(t, 5*time.Second)
	})
	for _, r := range up.requests() {
		if r.complete {
			t.Errorf("upstream received a complete request %q with body %q", r.head[0], r.body)
		}
	}
	if total, inflight := n.g.Stats(); inflight != 0 || total != int64(len(cases))+1 {
		t.Errorf("Stats() = %d total, %d in flight; want %d and 0", total, inflight, len(cases)+1)
	}
	t.Run("buffered by a plugin", func(t *testing.T) {
		buffer := &testPlugin{name: "buffer", priority: 1000, build: func(config.Plugin) gateway.Instance { return bodyBuffer{} }}
		n := startNode(t, up.doc("", "      - {name: r, paths: [/]}\n")+"plugins:\n  - {name: buffer}\n",
			gateway.ServerOptions{BodyTimeout: pause, BodyMaxDuration: whole}, setup{plugins: []gateway.Plugin{buffer}})
		before := len(up.requests())
		conn := n.dialRaw(t, n.proxy, "")
		start := time.Now()
		if _, err := io.WriteString(conn, "POST /buffered HTTP/1.1\r\nHost: a.test\r\nContent-Length: 10\r\n\r\n12345"); err != nil {
			t.Fatal(err)
		}
		resp, body := readResponse(t, bufio.NewReader(conn), conn)
		after := time.Since(start)
		if resp.StatusCode != http.StatusRequestTimeout || !resp.Close {
			t.Errorf("got %d %q (close %v), want 408 and Connection: close", resp.StatusCode, body, resp.Close)
		}
		if after < pause-50*time.Millisecond || after > pause+time.Second {
			t.Errorf("answered after %v, want %v (-50 ms, +1 s)", after.Round(time.Millisecond), pause)
		}
		if got := len(up.requests()) - before; got != 0 {
			t.Errorf("upstream received %d requests, want none", got)
		}
	})
	t.Run("client that does not read", func(t *testing.T) {
		const send = time.Second
		big := newRawUpstream(t, func(c net.Conn, _ rawRequest) error {
			if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 33554432\r\n\r\n"); err != nil {
				return err
			}
			chunk := make([]byte, 32<<10)
			for range 1024 {
				if _, err := c.Write(chunk); err != nil {
					return err
				}
			}
			return nil
		})
		n := startNode(t, big.doc("", "      - {name: r, paths: [/]}\n"), gateway.ServerOptions{SendTimeout: send}, setup{})
		conn := n.dialRaw(t, n.proxy, "")
		start := time.Now()
		if _, err := io.WriteString(conn, "GET /big HTTP/1.1\r\nHost: a.test\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		closed := big.awaitClose(t, send+10*time.Second)
		if d := closed.Sub(start); d < send-50*time.Millisecond || d > send+2*time.Second {
			t.Errorf("upstream connection released %v after the request, want %v (-50 ms, +2 s)", d.Round(time.Millisecond), send)
		}
		if _, err := closedWithin(conn, time.Now(), 10*time.Second); err != nil {
			t.Errorf("client connection %v after the send timeout", err)
		}
		if _, inflight := n.g.Stats(); inflight != 0 {
			t.Errorf("%d requests still in flight", inflight)
		}
	})
}

// TestT03OversizedHeaders: heads over client_max_header_line,
// client_max_header_size and client_max_uri_size are refused before
// routing, and beyond MaxHeaderBytes (twice client_max_header_size) by
// net/http itself (hardening.md T03); the upstream sees none of them.
func TestT03OversizedHeaders(t *testing.T) {
	leakCheck(t)
	up := newUpstream(t, nil)
	lim := gateway.DefaultLimits()
	n := startNode(t, serviceDoc(up, "", "      - {name: r, paths: [/]}\n"),
		gateway.ServerOptions{MaxHeaderBytes: 2 * lim.ClientMaxHeaderSize}, setup{})
	fields := func(count, size int) string {
		var b strings.Builder
		for i := range count {
			b.WriteString("X-F" + strconv.Itoa(i) + ": " + strings.Repeat("v", size) + "\r\n")
		}
		return b.String()
	}
	cases := []struct {
		name, target, fields string
		status               int
		msg                  string // "" for net/http's own answer
	}{
		{"one 10 KiB field", "/", fields(1, 10<<10), 400, "Request header or cookie too large"},
		{"40 KiB of 8 KB fields", "/", fields(5, 8000), 400, "Request header or cookie too large"},
		{"10 000 small fields", "/", fields(10000, 1), 431, ""},
		{"9 KiB URI", "/" + strings.Repeat("u", 9<<10), "", 414, "URI too long"},
		{"100 KB URI", "/" + strings.Repeat("u", 100_000), "", 431, ""},
		// Just under each limit passes.
		{"one 8 KiB field", "/", "X-F: " + strings.Repeat("v", 8<<10-5) + "\r\n", 200, ""},
		{"31 KiB of fields", "/", fields(4, 8000), 200, ""},
		{"8 KiB URI", "/" + strings.Repeat("u", 8<<10-1), "", 200, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conn := n.dialRaw(t, n.proxy, "")
			if _, err := io.WriteString(conn, "GET "+c.target+" HTTP/1.1\r\nHost: a.test\r\n"+c.fields+"\r\n"); err != nil {
				t.Fatal(err)
			}
			resp, body := readResponse(t, bufio.NewReader(conn), conn)
			switch {
			case c.msg != "":
				checkError(t, response{resp, body}, c.status, c.msg)
			case resp.StatusCode != c.status:
				t.Errorf("status %d %q, want %d", resp.StatusCode, body, c.status)
			}
		})
	}
	if got := up.count(); got != 3 {
		t.Errorf("upstream saw %d requests, want 3 (those under the limits)", got)
	}
	t.Run("HTTP/2", func(t *testing.T) {
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: n.roots}, ForceAttemptHTTP2: true}}
		defer client.CloseIdleConnections()
		for _, c := range []struct {
			count, size, status int
		}{{5, 8000, 400}, {1, 10 << 10, 400}, {4, 7000, 200}} {
			req, _ := http.NewRequest("GET", "https://"+n.tls+"/", nil)
			for i := range c.count {
				req.Header.Set("X-F"+strconv.Itoa(i), strings.Repeat("v", c.size))
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("%d fields of %d bytes: %v", c.count, c.size, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.ProtoMajor != 2 || resp.StatusCode != c.status {
				t.Errorf("%d fields of %d bytes over %s = %d %q, want %d over HTTP/2", c.count, c.size, resp.Proto, resp.StatusCode, b, c.status)
			}
		}
	})
}

// bodyBuffer reads the client body in access, as a plugin or graph reading
// request.body does, and fails with ReadBody's error.
type bodyBuffer struct{}

func (bodyBuffer) NeedsRequestBody() bool { return true }
func (bodyBuffer) Access(_ context.Context, ex *gateway.Exchange) error {
	_, err := ex.ReadBody()
	return err
}

// TestT04OversizedBody: a body over client_max_body_size is a 413 with
// Connection: close — declared, before anything is proxied; chunked, with
// the upstream request aborted — and one over client_body_buffer_limit read
// by a plugin is refused holding less than twice the limit (hardening.md
// T04).
func TestT04OversizedBody(t *testing.T) {
	leakCheck(t)
	const limit = 1 << 20
	up := newRawUpstream(t, nil)
	lim := gateway.DefaultLimits()
	lim.ClientMaxBodySize, lim.ClientBodyBufferLimit = limit, limit
	buffer := &testPlugin{name: "buffer", priority: 1000, build: func(config.Plugin) gateway.Instance { return bodyBuffer{} }}
	doc := up.doc("", "      - {name: streamed, paths: [/streamed]}\n      - {name: buffered, paths: [/buffered]}\n") +
		"plugins:\n  - {name: buffer, route: buffered}\n"
	n := startNode(t, doc, gateway.ServerOptions{}, setup{plugins: []gateway.Plugin{buffer}, build: gateway.BuildOptions{Limits: lim}})
	cases := []struct {
		name    string
		path    string
		size    int
		chunked bool
		status  int
		// upstream is what the upstream must have seen of the request:
		// nothing, an aborted request or the whole body.
		upstream string
	}{
		{"declared 2 MiB", "/streamed", 2 * limit, false, 413, "nothing"},
		{"chunked 2 MiB", "/streamed", 2 * limit, true, 413, "aborted"},
		{"declared 1 MiB passes", "/streamed", limit, false, 200, "whole"},
		{"chunked 1 MiB passes", "/streamed", limit, true, 200, "whole"},
		{"buffered, declared 2 MiB", "/buffered", 2 * limit, false, 413, "nothing"},
		{"buffered, chunked 2 MiB", "/buffered", 2 * limit, true, 413, "nothing"},
		{"buffered, chunked 1 MiB passes", "/buffered", limit, true, 200, "whole"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := len(up.requests())
			conn := n.dialRaw(t, n.proxy, "")
			var mem, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&mem)
			sent := postRaw(conn, "POST "+c.path+" HTTP/1.1\r\nHost: a.test\r\n", c.size, c.chunked)
			resp, body := readResponse(t, bufio.NewReader(conn), conn)
			runtime.ReadMemStats(&after)
			if c.status == 413 {
				checkError(t, response{resp, body}, 413, "Payload too large")
				if !resp.Close {
					t.Errorf("413 without Connection: close")
				}
				if _, err := closedWithin(conn, time.Now(), 5*time.Second); err != nil {
					t.Errorf("client connection %v after the 413", err)
				}
			} else if resp.StatusCode != c.status {
				t.Fatalf("status %d %q, want %d", resp.StatusCode, body, c.status)
			}
			<-sent
			if grown := after.TotalAlloc - mem.TotalAlloc; c.path == "/buffered" && c.status == 413 {
				t.Logf("allocated %d bytes while refusing the body", grown)
				if grown >= 2*limit {
					t.Errorf("refusing the body allocated %d bytes, want under twice the %d-byte buffer limit", grown, limit)
				}
			}
			reqs := up.requests()[before:]
			switch c.upstream {
			case "nothing":
				if len(reqs) != 0 {
					t.Errorf("upstream received %q", reqs[0].head[0])
				}
			case "aborted":
				up.awaitClose(t, 5*time.Second) // and it has recorded the request
				if reqs = up.requests()[before:]; len(reqs) != 1 || reqs[0].complete || len(reqs[0].body) > limit {
					t.Fatalf("upstream received %d requests, want one incomplete", len(reqs))
				}
			case "whole":
				if len(reqs) != 1 || !reqs[0].complete || len(reqs[0].body) != c.size {
					t.Errorf("upstream received %d requests, want one with the whole %d-byte body", len(reqs), c.size)
				}
			}
		})
	}
}

// TestT05RequestSmuggling sends ambiguous framings on raw connections
// (hardening.md T05, §2.2; CVE-2025-22871). The statuses are net/http's or
// the gateway's; a body error is a 400, never a 502; the upstream gets at
// most one request per request the gateway parsed, each with at most one
// framing field; and after an anomaly the client connection closes.
func TestT05RequestSmuggling(t *testing.T) {
	leakCheck(t)
	up := newRawUpstream(t, nil)
	n := startNode(t, up.doc("", `      - {name: a, hosts: [a.test], paths: [/]}
      - {name: other, hosts: [other.test], paths: [/], preserve_host: true}
`), gateway.ServerOptions{}, setup{})
	const host = "Host: a.test\r\n"
	cases := []struct {
		name     string
		raw      string
		statuses []int    // the responses, in order
		closed   bool     // the connection closes after them
		upstream []string // the request lines the upstream receives
		// fields the last upstream request must carry ("Name: value") or,
		// prefixed with "-", must not carry ("-Name").
		fields []string
		body   string // the last upstream request's body
	}{
		{"CL and TE: chunked wins", "POST /clte HTTP/1.1\r\n" + host + "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
			[]int{200}, false, []string{"POST /clte HTTP/1.1"}, nil, "hello"},
		{"CL and TE: the rest is a request of its own", "POST /clte HTTP/1.1\r\n" + host + "Content-Length: 30\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" +
			"GET /second HTTP/1.1\r\n" + host + "\r\n",
			[]int{200, 200}, false, []string{"POST /clte HTTP/1.1", "GET /second HTTP/1.1"}, nil, ""},
		{"identical duplicate CL", "POST /dup HTTP/1.1\r\n" + host + "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
			[]int{200}, false, []string{"POST /dup HTTP/1.1"}, []string{"Content-Length: 5"}, "hello"},
		{"differing duplicate CL", "POST /dup HTTP/1.1\r\n" + host + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
			[]int{400}, true, nil, nil, ""},
		{"CL with a sign", "POST /sign HTTP/1.1\r\n" + host + "Content-Length: +5\r\n\r\nhello", []int{400}, true, nil, nil, ""},
		{"bare LF in a chunk size", "POST /lf HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n",
			[]int{400}, true, []string{"POST /lf HTTP/1.1"}, nil, ""},
		{"TE: identity", "POST /id HTTP/1.1\r\n" + host + "Transfer-Encoding: identity\r\nContent-Length: 5\r\n\r\nhello", []int{501}, true, nil, nil, ""},
		{"TE: gzip, chunked", "POST /gz HTTP/1.1\r\n" + host + "Transfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", []int{501}, true, nil, nil, ""},
		{"space in a field name", "GET /sp HTTP/1.1\r\n" + host + "X-Bad Name: 1\r\n\r\n", []int{400}, true, nil, nil, ""},
		{"space before the colon", "POST /sp HTTP/1.1\r\n" + host + "Content-Length : 5\r\n\r\nhello", []int{400}, true, nil, nil, ""},
		{"underscore in a field name", "GET /us HTTP/1.1\r\n" + host + "X_User: admin\r\nX-User: real\r\n\r\n",
			[]int{200}, false, []string{"GET /us HTTP/1.1"}, []string{"-X_User", "X-User: real"}, ""},
		{"two Host fields", "GET /hh HTTP/1.1\r\n" + host + "Host: other.test\r\n\r\n", []int{400}, true, nil, nil, ""},
		{"no Host", "GET /nohost HTTP/1.1\r\n\r\n", []int{400}, true, nil, nil, ""},
		{"absolute-form naming a routed host", "GET http://other.test/abs?q=1 HTTP/1.1\r\n" + host + "\r\n",
			[]int{200}, false, []string{"GET /abs?q=1 HTTP/1.1"}, []string{"Host: other.test"}, ""},
		{"absolute-form naming an unknown host", "GET http://evil.test/abs HTTP/1.1\r\n" + host + "\r\n", []int{404}, false, nil, nil, ""},
		{"obs-fold", "GET /fold HTTP/1.1\r\n" + host + "X-Folded: a\r\n  b\r\n\r\n",
			[]int{200}, false, []string{"GET /fold HTTP/1.1"}, []string{"X-Folded: a b"}, ""},
		{"pipelining", "GET /p1 HTTP/1.1\r\n" + host + "\r\nPOST /p2 HTTP/1.1\r\n" + host + "Content-Length: 2\r\n\r\nhiGET /p3 HTTP/1.1\r\n" + host + "\r\n",
			[]int{200, 200, 200}, false, []string{"GET /p1 HTTP/1.1", "POST /p2 HTTP/1.1", "GET /p3 HTTP/1.1"}, nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := len(up.requests())
			conn := n.dialRaw(t, n.proxy, "")
			if _, err := io.WriteString(conn, c.raw); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(conn)
			for i, want := range c.statuses {
				resp, body := readResponse(t, br, conn)
				if resp.StatusCode != want {
					t.Errorf("response %d: %d %q, want %d", i, resp.StatusCode, body, want)
				}
				if resp.StatusCode >= 400 && resp.Header.Get("X-Kong-Request-Id") != "" && strings.Contains(body, "127.0.0.1") {
					t.Errorf("response %d names an internal address: %q", i, body)
				}
			}
			if _, err := closedWithin(conn, time.Now(), 200*time.Millisecond); (err == nil) != c.closed {
				t.Errorf("connection closed: %v, want %v", err == nil, c.closed)
			}
			if c.name == "bare LF in a chunk size" {
				// The upstream request it began is aborted with its connection.
				up.awaitClose(t, 5*time.Second)
			}
			reqs := up.requests()[before:]
			var lines []string
			for _, r := range reqs {
				lines = append(lines, r.head[0])
				if r.framing() > 1 {
					t.Errorf("upstream request %q has %d framing fields: %q", r.head[0], r.framing(), r.head)
				}
			}
			if strings.Join(lines, "|") != strings.Join(c.upstream, "|") {
				t.Fatalf("upstream received %q, want %q", lines, c.upstream)
			}
			if len(reqs) == 0 {
				return
			}
			last := reqs[len(reqs)-1]
			if c.closed && last.complete {
				t.Errorf("an anomalous request reached the upstream whole: %q", last.head)
			}
			if !c.closed && last.body != c.body {
				t.Errorf("upstream body %q, want %q", last.body, c.body)
			}
			for _, f := range c.fields {
				name, want, _ := strings.Cut(strings.TrimPrefix(f, "-"), ": ")
				got, ok := last.field(name)
				if strings.HasPrefix(f, "-") && ok || !strings.HasPrefix(f, "-") && got != want {
					t.Errorf("upstream %s = %q (present %v), want %q", name, got, ok, f)
				}
			}
			for _, l := range last.head[1:] {
				if l == "" || l[0] == ' ' || l[0] == '\t' {
					t.Errorf("upstream head has a continuation line %q", l)
				}
			}
		})
	}
	// An upstream connection that carried an aborted request is never used
	// again.
	reqs := up.requests()
	for i, r := range reqs {
		for _, later := range reqs[i+1:] {
			if !r.complete && later.conn == r.conn {
				t.Errorf("upstream connection %d carried %q after the aborted %q", r.conn, later.head[0], r.head[0])
			}
		}
	}
}

// credentialSetter stands for a graph that sets credentials upstream and a
// header on the response.
type credentialSetter struct{}

func (credentialSetter) Access(_ context.Context, ex *gateway.Exchange) error {
	h := ex.ServiceRequestHeader()
	h.Set("Authorization", "Bearer gateway-token")
	h.Set("X-Api-Key", "gateway-key")
	return nil
}

func (credentialSetter) HeaderFilter(_ context.Context, ex *gateway.Exchange) error {
	ex.ResponseHeader().Set("X-Graph", "set")
	return nil
}

// TestT06ConnectionHeaderDeletion: headers a client names in Connection are
// removed before the gateway and its plugins add theirs, so a client cannot
// delete those; the same holds for the upstream's Connection on the way
// back (hardening.md T06; CVE-2021-33197, CVE-2024-45410, CVE-2026-29054).
func TestT06ConnectionHeaderDeletion(t *testing.T) {
	leakCheck(t)
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Connection"] = []string{"X-Kong-Request-Id, Via, Server", "X-Upstream-Secret, x-graph"}
		h.Set("X-Kong-Request-Id", "upstream-id")
		h.Set("Via", "1.1 origin")
		h.Set("X-Upstream-Secret", "s")
		h.Set("X-Graph", "upstream")
		h.Set("Keep-Alive", "timeout=5")
		h.Set("Upgrade", "h2c")
		h.Set("Server", "origin/1")
		_, _ = io.WriteString(w, "ok")
	})
	setter := &testPlugin{name: "setter", priority: 900, build: func(config.Plugin) gateway.Instance { return credentialSetter{} }}
	gw := startGateway(t, serviceDoc(up, "", "      - {name: r, paths: [/]}\n")+"plugins:\n  - {name: setter}\n",
		setup{plugins: []gateway.Plugin{setter}})
	const client = "Authorization: Basic Y2xpZW50\r\nX-Api-Key: client-key\r\nX-Forwarded-For: 6.6.6.6\r\nX-Real-Ip: 6.6.6.6\r\n"
	for _, c := range []struct{ name, connection string }{
		{"lower case", "Connection: close, authorization, x-api-key, x-forwarded-for, x-real-ip\r\n"},
		{"upper case", "Connection: CLOSE, AUTHORIZATION, X-API-KEY, X-FORWARDED-FOR, X-REAL-IP\r\n"},
		{"mixed case", "Connection: Close, Authorization, X-Api-Key, X-Forwarded-For, X-Real-Ip\r\n"},
		{"split, the first empty", "Connection: \r\nConnection: close\r\nConnection: Authorization, X-Api-Key\r\nConnection: x-forwarded-for\r\nConnection: X-REAL-IP\r\n"},
		{"no Connection", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp := rawExchange(t, gw, "GET /x HTTP/1.1\r\nHost: a.test\r\n"+c.connection+client+"\r\n")
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			got := up.last(t).Header
			wantXFF := "127.0.0.1" // the client's value was named hop-by-hop
			if c.connection == "" {
				wantXFF = "6.6.6.6, 127.0.0.1"
			}
			for name, want := range map[string]string{
				"Authorization": "Bearer gateway-token", "X-Api-Key": "gateway-key",
				"X-Forwarded-For": wantXFF, "X-Real-Ip": "127.0.0.1", "Connection": "keep-alive",
			} {
				if v := strings.Join(got.Values(name), "|"); v != want {
					t.Errorf("upstream %s = %q, want %q", name, v, want)
				}
			}
			h := resp.Header
			for name, want := range map[string]string{"Via": "1.1 datakit/test", "Server": "datakit/test", "X-Graph": "set"} {
				if v := strings.Join(h.Values(name), "|"); v != want {
					t.Errorf("client %s = %q, want %q", name, v, want)
				}
			}
			if !requestIDs.MatchString(h.Get("X-Kong-Request-Id")) {
				t.Errorf("client X-Kong-Request-Id = %q", h.Get("X-Kong-Request-Id"))
			}
			for _, name := range []string{"X-Upstream-Secret", "Keep-Alive", "Upgrade"} {
				if v, ok := h[name]; ok {
					t.Errorf("client got %s %q, want it removed", name, v)
				}
			}
		})
	}
	t.Run("Upgrade only on a real upgrade", func(t *testing.T) {
		for _, head := range []string{
			"Upgrade: websocket\r\nConnection: keep-alive\r\n",
			"Upgrade: h2c\r\nConnection: Upgrade\r\n",
			"Upgrade: websocket\r\n",
		} {
			resp := rawExchange(t, gw, "GET /x HTTP/1.1\r\nHost: a.test\r\n"+head+"\r\n")
			resp.Body.Close()
			if v, ok := up.last(t).Header["Upgrade"]; ok || resp.StatusCode != 200 {
				t.Errorf("%q: status %d, upstream Upgrade %q", head, resp.StatusCode, v)
			}
		}
	})
}

// accessCounter counts the requests that reached the access phase.
type accessCounter struct{ n *atomic.Int32 }

func (c accessCounter) Access(context.Context, *gateway.Exchange) error {
	c.n.Add(1)
	return nil
}

// TestT08QueryPathSmuggling: the query reaches the upstream byte for byte,
// whatever Go's parser thinks of it; too many pairs are refused before any
// plugin; the path is normalised once, and the upstream gets the path the
// router matched, so an encoded traversal cannot slip past a route's
// plugins (hardening.md T08; CVE-2022-2880, CVE-2026-39825).
func TestT08QueryPathSmuggling(t *testing.T) {
	leakCheck(t)
	up := newUpstream(t, nil)
	var accessed atomic.Int32
	counter := &testPlugin{name: "counter", priority: 2000, build: func(config.Plugin) gateway.Instance { return accessCounter{&accessed} }}
	doc := serviceDoc(up, "", `      - {name: public, paths: [/public], strip_path: false}
      - {name: admin, paths: [/admin], strip_path: false}
      - {name: root, paths: [/], strip_path: false}
`) + `plugins:
  - {name: counter}
  - {name: guard, route: admin, config: {mode: exit}}
`
	plugins := append(taggers(map[string]int{"guard": 1000}), counter)
	gw := startGateway(t, doc, setup{plugins: plugins})
	pairs := func(n int) string { return strings.TrimSuffix(strings.Repeat("a=1&", n), "&") }
	cases := []struct {
		target string
		want   string // the upstream request-target, or the status
	}{
		{"/public/x?a=%x&b=ok", "/public/x?a=%x&b=ok"},
		{"/public/x?a=1;b=2", "/public/x?a=1;b=2"},
		{"/public/x?", "/public/x?"},
		{"/public/x?x=%20&y=a+b&&z", "/public/x?x=%20&y=a+b&&z"},
		{"/public/x?" + pairs(1000), "/public/x?" + pairs(1000)},
		{"/public/x?" + pairs(1001), "400"},
		{"/public/a%2fb?k", "/public/a%2Fb?k"},
		{"/public/a%23b?c=%23", "/public/a%23b?c=%23"},
		// A request-target holds no fragment: a "#" would be the end of the
		// query for some parsers and part of it for others.
		{"/public/x?c=%23#frag", "400"},
		{"/public/x#?hidden=1", "400"},
		{"/public/%7E%7e%41", "/public/~~A"},
		{"/%7euser/./x/../y?q", "/~user/y?q"},
		{"/public/..%2fadmin", "/public/..%2Fadmin"},
		{"/public/%2E%2E%2Fadmin", "/public/..%2Fadmin"},
		// Each of these is the admin route's path once normalised: its
		// plugin answers, the upstream never sees them.
		{"/admin", "418"},
		{"/public/%2e%2e/admin", "418"},
		{"/public/%2E%2e/admin?x=1", "418"},
		{"//admin", "418"},
		{"/public/./../admin", "418"},
		{"/public/..//admin/", "418"},
	}
	for _, c := range cases {
		t.Run(c.target[:min(len(c.target), 40)], func(t *testing.T) {
			before, beforeAccess := up.count(), accessed.Load()
			resp := getRaw(t, gw, c.target)
			switch c.want {
			case "400":
				checkError(t, resp, 400, "Bad request")
				if accessed.Load() != beforeAccess {
					t.Errorf("a plugin ran before the query was refused")
				}
			case "418":
				if resp.StatusCode != 418 || up.count() != before {
					t.Errorf("status %d, upstream reached: %v; want the admin route's 418", resp.StatusCode, up.count() != before)
				}
			default:
				if resp.StatusCode != 200 {
					t.Fatalf("status %d %q", resp.StatusCode, resp.body)
				}
				if got := up.last(t).URI; got != c.want {
					t.Errorf("reached upstream as %q, want %q", got, c.want)
				}
			}
		})
	}
	// Past Go's own 10 000-pair limit, where net/url stops parsing: refused at
	// max_query_args, and with the limits raised the upstream still gets
	// every byte, the pair after the 10 000th included.
	long := "/public/x?" + pairs(10_001) + "&hidden=1"
	lim := gateway.DefaultLimits()
	lim.ClientMaxURISize, lim.ClientMaxHeaderSize = 64<<10, 64<<10
	raised := lim
	raised.MaxQueryArgs = 20_000
	t.Run("10 001 pairs then hidden=1", func(t *testing.T) {
		gw := startGateway(t, doc, setup{plugins: plugins, build: gateway.BuildOptions{Limits: lim}})
		checkError(t, send(t, gw, request{target: long}), 400, "Bad request")
		gw = startGateway(t, doc, setup{plugins: plugins, build: gateway.BuildOptions{Limits: raised}})
		if resp := send(t, gw, request{target: long}); resp.StatusCode != 200 {
			t.Fatalf("with max_query_args 20000: status %d %q %v", resp.StatusCode, resp.body, resp.Header)
		}
		if got := up.last(t).URI; got != long {
			t.Errorf("with max_query_args 20000, the upstream got a %d-byte target, want the %d bytes sent", len(got), len(long))
		}
	})
}

// holder is an access handler that keeps running until released, whatever
// happens to its stream: a slow handler. It records how many ran at once.
type holder struct {
	entered, running, peak atomic.Int32
	release                chan struct{}
}

func (h *holder) Access(_ context.Context, ex *gateway.Exchange) error {
	h.entered.Add(1)
	n := h.running.Add(1)
	for p := h.peak.Load(); n > p && !h.peak.CompareAndSwap(p, n); p = h.peak.Load() {
	}
	<-h.release
	h.running.Add(-1)
	ex.Exit(http.StatusOK, nil, nil)
	return nil
}

// TestT09HTTP2Abuse: the TLS proxy listener advertises
// http2_max_concurrent_streams, never runs more handlers than that on one
// connection, and hangs up on a flood of reset streams and on a header
// block that never ends (hardening.md T09; CVE-2023-44487, CVE-2023-45288).
func TestT09HTTP2Abuse(t *testing.T) {
	leakCheck(t)
	hold := &holder{release: make(chan struct{})}
	holdPlugin := &testPlugin{name: "hold", priority: 1000, build: func(config.Plugin) gateway.Instance { return hold }}
	up := newUpstream(t, nil)
	n := startNode(t, serviceDoc(up, "", "      - {name: r, paths: [/]}\n")+"plugins:\n  - {name: hold}\n",
		gateway.ServerOptions{MaxHeaderBytes: 64 << 10}, setup{plugins: []gateway.Plugin{holdPlugin}})
	t.Cleanup(func() { close(hold.release) }) // before the server closes

	t.Run("HEADERS and RST_STREAM loop", func(t *testing.T) {
		c := n.dialH2(t)
		sent := 0
		for ; sent < 5000; sent++ {
			id := uint32(2*sent + 1)
			if c.headers(id, "GET", "/hold", true, true) != nil || c.w.WriteRSTStream(id, http2.ErrCodeCancel) != nil || c.goAway.Load() != 0 {
				break
			}
		}
		if !c.ended(10 * time.Second) {
			t.Fatalf("after %d reset streams the connection is still open, without GOAWAY", sent)
		}
		t.Logf("%d streams opened and reset; peak %d handlers; GOAWAY code %d", sent, hold.peak.Load(), int(c.goAway.Load())-1)
		if got := c.maxStreams.Load(); got != 128 {
			t.Errorf("advertised SETTINGS_MAX_CONCURRENT_STREAMS = %d, want 128", got)
		}
		if p := hold.peak.Load(); p > 128 || p == 0 {
			t.Errorf("%d handlers ran at once on one connection, want 1 to 128", p)
		}
		if code := c.goAway.Load(); code != 0 && http2.ErrCode(code-1) != http2.ErrCodeEnhanceYourCalm {
			t.Errorf("GOAWAY %v, want ENHANCE_YOUR_CALM", http2.ErrCode(code-1))
		}
	})

	t.Run("endless CONTINUATION", func(t *testing.T) {
		entered := hold.entered.Load()
		c := n.dialH2(t)
		var frag bytes.Buffer
		if err := hpack.NewEncoder(&frag).WriteField(hpack.HeaderField{Name: "x-flood", Value: strings.Repeat("f", 8<<10)}); err != nil {
			t.Fatal(err)
		}
		if err := c.headers(1, "GET", "/hold", true, false); err != nil {
			t.Fatal(err)
		}
		sent := 0
		for end := time.Now().Add(20 * time.Second); sent < 256<<20 && time.Now().Before(end) && c.goAway.Load() == 0; sent += frag.Len() {
			if c.w.WriteContinuation(1, false, frag.Bytes()) != nil {
				break
			}
		}
		if !c.ended(10 * time.Second) {
			t.Fatalf("after %d bytes of CONTINUATION the connection is still open, without GOAWAY", sent)
		}
		t.Logf("%d bytes of CONTINUATION sent before the server hung up (GOAWAY code %d)", sent, int(c.goAway.Load())-1)
		// Loopback buffers hold a few MiB the server never read.
		if sent > 16<<20 {
			t.Errorf("the server took %d bytes of one header block, want it cut near MaxHeaderBytes (64 KiB)", sent)
		}
		if hold.entered.Load() != entered {
			t.Errorf("the unfinished request reached a handler")
		}
	})
}
