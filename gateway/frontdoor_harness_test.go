package gateway_test

// The harness of the front-door cases: a gateway on the real Server, raw
// clients (HTTP/1.1 bytes, HTTP/2 frames) and a raw upstream that shows
// what the gateway sent.

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/datakit-gateway/datakit/gateway"
)

// leakCheck fails the test if it leaves goroutines behind. Registered first,
// it runs after every other cleanup. Goroutines get up to about 5 s to end:
// net/http lingers 500 ms on a connection it refused before closing it.
func leakCheck(t *testing.T) {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		for end := time.Now().Add(5 * time.Second); goleak.Find(ignore) != nil && time.Now().Before(end); {
			time.Sleep(50 * time.Millisecond)
		}
		goleak.VerifyNone(t, ignore)
	})
}

// node is a gateway run by the real Server on 127.0.0.1:0: a plain and a TLS
// (h2 and http/1.1 by ALPN) proxy listener, a status and an admin listener.
type node struct {
	g                         *gateway.Gateway
	proxy, tls, status, admin string
	roots                     *x509.CertPool
}

func startNode(t *testing.T, doc string, opts gateway.ServerOptions, s setup) *node {
	t.Helper()
	g := newGateway(t, doc, s)
	cert, roots := selfSigned(t)
	opts.Proxy = []gateway.ListenAddr{{Address: "127.0.0.1:0"}, {Address: "127.0.0.1:0", TLS: &tls.Config{
		Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}}}
	opts.Status = []gateway.ListenAddr{{Address: "127.0.0.1:0"}}
	opts.Admin = []gateway.ListenAddr{{Address: "127.0.0.1:0"}}
	opts.AdminHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, "admin")
	})
	srv := gateway.NewServer(g, opts)
	if err := srv.Start(); err != nil {
		t.Fatalf("Start = %v", err)
	}
	t.Cleanup(srv.Close)
	a := srv.Addresses() // in bind order: proxy, status, admin
	return &node{g: g, proxy: a[0], tls: a[1], status: a[2], admin: a[3], roots: roots}
}

// selfSigned is a certificate for 127.0.0.1 and a pool trusting it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	cert := newCertificate(t, "127.0.0.1")
	roots := x509.NewCertPool()
	roots.AddCert(cert.Leaf)
	return cert, roots
}

// newCertificate is a fresh self-signed ECDSA certificate for name (a DNS
// name or an IP address), usable by servers and clients.
func newCertificate(t *testing.T, name string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	if ip := net.ParseIP(name); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	} else {
		tmpl.DNSNames = []string{name}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// dialRaw opens a client connection, TLS with the given ALPN protocol when
// alpn is not empty, closed at the end of the test.
func (n *node) dialRaw(t *testing.T, addr, alpn string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if alpn != "" {
		tc := tls.Client(c, &tls.Config{RootCAs: n.roots, ServerName: "127.0.0.1", NextProtos: []string{alpn}})
		_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
		if err := tc.Handshake(); err != nil {
			c.Close()
			t.Fatalf("TLS handshake: %v", err)
		}
		_ = tc.SetDeadline(time.Time{})
		c = tc
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedWithin waits up to limit for the peer to close c, and reports when
// it did (the time since start) or that it did not.
func closedWithin(c net.Conn, start time.Time, limit time.Duration) (time.Duration, error) {
	_ = c.SetReadDeadline(start.Add(limit))
	buf := make([]byte, 4096)
	for {
		_, err := c.Read(buf)
		if err == nil {
			continue // a response before the close is read past
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return 0, errors.New("still open")
		}
		return time.Since(start), nil // EOF or reset: closed
	}
}

// closedChan is a channel that never blocks a receiver.
var closedChan = func() <-chan struct{} { c := make(chan struct{}); close(c); return c }()

// trickle writes one byte of head per interval on c until stop closes or a
// write fails; done closes when it returned.
func trickle(c net.Conn, head string, interval time.Duration, stop <-chan struct{}) (done <-chan struct{}) {
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for i := 0; ; i++ {
			if _, err := c.Write([]byte{head[i%len(head)]}); err != nil {
				return
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	return ch
}

// rawRequest is one request as the raw upstream read it.
type rawRequest struct {
	conn     int      // which upstream connection carried it, from 0
	head     []string // request line and fields, as received
	body     string
	complete bool // the body reached the end its framing announced
}

// framing counts the request's Content-Length and Transfer-Encoding fields.
func (r rawRequest) framing() int {
	n := 0
	for _, l := range r.head[1:] {
		name, _, _ := strings.Cut(l, ":")
		if strings.EqualFold(name, "Content-Length") || strings.EqualFold(name, "Transfer-Encoding") {
			n++
		}
	}
	return n
}

func (r rawRequest) field(name string) (string, bool) {
	for _, l := range r.head[1:] {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(k, name) {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

// rawUpstream is an HTTP/1.1 upstream that parses requests itself, so that
// the test sees the bytes the gateway sent: every request head line, each
// framing field, and when connections close.
type rawUpstream struct {
	ln net.Listener
	// respond answers a complete request (nil: 200 "ok").
	respond func(c net.Conn, r rawRequest) error
	// closes receives the time each connection ended.
	closes chan time.Time

	mu    sync.Mutex
	reqs  []rawRequest
	conns []net.Conn
	wg    sync.WaitGroup
}

func newRawUpstream(t *testing.T, respond func(c net.Conn, r rawRequest) error) *rawUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &rawUpstream{ln: ln, respond: respond, closes: make(chan time.Time, 64)}
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u.mu.Lock()
			id := len(u.conns)
			u.conns = append(u.conns, c)
			u.mu.Unlock()
			u.wg.Add(1)
			go func() {
				defer u.wg.Done()
				u.serve(id, c)
				c.Close()
				select {
				case u.closes <- time.Now():
				default:
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		u.mu.Lock()
		for _, c := range u.conns {
			c.Close()
		}
		u.mu.Unlock()
		u.wg.Wait()
	})
	return u
}

func (u *rawUpstream) serve(id int, c net.Conn) {
	br := bufio.NewReader(c)
	for {
		r, err := readRawRequest(br)
		if len(r.head) == 0 {
			return
		}
		r.conn = id
		u.mu.Lock()
		u.reqs = append(u.reqs, r)
		u.mu.Unlock()
		if err != nil || !r.complete {
			return
		}
		respond := u.respond
		if respond == nil {
			respond = func(c net.Conn, _ rawRequest) error {
				_, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				return err
			}
		}
		if err := respond(c, r); err != nil {
			return
		}
	}
}

// readRawRequest reads one request, framed by its own Transfer-Encoding or
// Content-Length field.
func readRawRequest(br *bufio.Reader) (rawRequest, error) {
	var r rawRequest
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return r, err
		}
		if line == "\r\n" {
			break
		}
		r.head = append(r.head, strings.TrimRight(line, "\r\n"))
	}
	body := io.Reader(strings.NewReader(""))
	size := int64(-1)
	te, _ := r.field("Transfer-Encoding")
	chunked := strings.EqualFold(te, "chunked")
	if chunked {
		body = httputil.NewChunkedReader(br)
	} else if cl, ok := r.field("Content-Length"); ok {
		size, _ = strconv.ParseInt(cl, 10, 64)
		body = io.LimitReader(br, size)
	}
	b, err := io.ReadAll(body)
	r.body = string(b)
	r.complete = err == nil && (size < 0 || int64(len(b)) == size)
	if chunked && err == nil {
		// The chunked reader stops before the trailer section.
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return r, err
			}
			if line == "\r\n" {
				break
			}
		}
	}
	return r, err
}

func (u *rawUpstream) addr() string { return u.ln.Addr().String() }

func (u *rawUpstream) requests() []rawRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]rawRequest(nil), u.reqs...)
}

// doc is a declarative document with one Service at the upstream and routes
// (YAML list items indented by six spaces).
func (u *rawUpstream) doc(service, routes string) string {
	host, port, _ := net.SplitHostPort(u.addr())
	return `_format_version: "3.0"
services:
  - name: svc
    host: ` + host + `
    port: ` + port + `
` + service + `
    routes:
` + routes
}

// awaitClose waits for one upstream connection to end and reports when.
func (u *rawUpstream) awaitClose(t *testing.T, limit time.Duration) time.Time {
	t.Helper()
	select {
	case at := <-u.closes:
		return at
	case <-time.After(limit):
		t.Fatalf("no upstream connection closed within %v", limit)
		return time.Time{}
	}
}

// readResponse reads one response from a raw connection within 10 s.
func readResponse(t *testing.T, br *bufio.Reader, c net.Conn) (*http.Response, string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading response body: %v", err)
	}
	resp.Body.Close()
	return resp, string(b)
}

// postRaw writes a request head and then size bytes of body, declared with
// Content-Length or sent in 32 KiB chunks, on a goroutine that ends when
// the body is sent or the connection fails; done closes then.
func postRaw(c net.Conn, head string, size int, chunked bool) (done <-chan struct{}) {
	ch := make(chan struct{})
	piece := []byte(strings.Repeat("b", 32<<10))
	go func() {
		defer close(ch)
		if chunked {
			head += "Transfer-Encoding: chunked\r\n\r\n"
		} else {
			head += "Content-Length: " + strconv.Itoa(size) + "\r\n\r\n"
		}
		if _, err := io.WriteString(c, head); err != nil {
			return
		}
		for sent := 0; sent < size; sent += len(piece) {
			p := piece[:min(len(piece), size-sent)]
			if chunked {
				if _, err := io.WriteString(c, strconv.FormatInt(int64(len(p)), 16)+"\r\n"); err != nil {
					return
				}
			}
			if _, err := c.Write(p); err != nil {
				return
			}
			if chunked {
				if _, err := io.WriteString(c, "\r\n"); err != nil {
					return
				}
			}
		}
		if chunked {
			_, _ = io.WriteString(c, "0\r\n\r\n")
		}
	}()
	return ch
}

// getRaw sends GET target, verbatim, on a fresh connection.
func getRaw(t *testing.T, gw *httptest.Server, target string) response {
	t.Helper()
	resp := rawExchange(t, gw, "GET "+target+" HTTP/1.1\r\nHost: a.test\r\n\r\n")
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return response{resp, string(b)}
}

// h2conn is a raw HTTP/2 client connection: the test writes frames, a
// goroutine reads the server's and records what matters.
type h2conn struct {
	w   *http2.Framer
	enc *hpack.Encoder
	buf bytes.Buffer

	maxStreams atomic.Uint32 // SETTINGS_MAX_CONCURRENT_STREAMS as advertised
	goAway     atomic.Uint32 // the GOAWAY error code + 1; 0 before any
	closed     chan struct{} // closed when reading fails: the server hung up
	statuses   chan streamStatus
}

// streamStatus is the :status of a response on a stream.
type streamStatus struct {
	id     uint32
	status string
}

func (n *node) dialH2(t *testing.T) *h2conn {
	t.Helper()
	conn := n.dialRaw(t, n.tls, "h2")
	if p := conn.(*tls.Conn).ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("ALPN chose %q, want h2", p)
	}
	c := &h2conn{w: http2.NewFramer(conn, nil), closed: make(chan struct{}), statuses: make(chan streamStatus, 16)}
	c.enc = hpack.NewEncoder(&c.buf)
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	if err := c.w.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	r := http2.NewFramer(nil, conn)
	r.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	go func() {
		defer close(c.closed)
		for {
			f, err := r.ReadFrame()
			if err != nil {
				return
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if v, ok := f.Value(http2.SettingMaxConcurrentStreams); ok {
					c.maxStreams.Store(v)
				}
			case *http2.GoAwayFrame:
				c.goAway.CompareAndSwap(0, uint32(f.ErrCode)+1)
			case *http2.MetaHeadersFrame:
				select {
				case c.statuses <- streamStatus{f.StreamID, f.PseudoValue("status")}:
				default:
				}
			}
		}
	}()
	t.Cleanup(func() { conn.Close(); <-c.closed })
	return c
}

// headers opens stream id with a request for path.
func (c *h2conn) headers(id uint32, method, path string, endStream, endHeaders bool, extra ...hpack.HeaderField) error {
	c.buf.Reset()
	for _, f := range append([]hpack.HeaderField{{Name: ":method", Value: method}, {Name: ":scheme", Value: "https"},
		{Name: ":authority", Value: "127.0.0.1"}, {Name: ":path", Value: path}}, extra...) {
		if err := c.enc.WriteField(f); err != nil {
			return err
		}
	}
	return c.w.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.buf.Bytes(), EndStream: endStream, EndHeaders: endHeaders})
}

// status waits up to limit for the response status of stream id.
func (c *h2conn) status(id uint32, limit time.Duration) (string, bool) {
	deadline := time.After(limit)
	for {
		select {
		case s := <-c.statuses:
			if s.id == id {
				return s.status, true
			}
		case <-c.closed:
			return "", false
		case <-deadline:
			return "", false
		}
	}
}

// ended waits up to limit for a GOAWAY or the connection's end.
func (c *h2conn) ended(limit time.Duration) bool {
	deadline := time.After(limit)
	for c.goAway.Load() == 0 {
		select {
		case <-c.closed:
			return true
		case <-deadline:
			return false
		case <-time.After(10 * time.Millisecond):
		}
	}
	return true
}
