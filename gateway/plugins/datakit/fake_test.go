package datakit_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// This file holds the test doubles of the hardening tests: a recording
// third party, a black-hole listener, a TCP proxy that can be cut, a DNS
// server and a log buffer. All listen on 127.0.0.1:0.

// fakeRequest is one request a fake received.
type fakeRequest struct {
	Method, URI string
	Header      http.Header
	Body        string
	At          time.Time
}

// fake is a recording upstream or third party: the requests, the raw bytes
// received, and its connections. handle answers (nil: 200 {"ok":true}).
type fake struct {
	srv    *httptest.Server
	handle http.HandlerFunc

	mu       sync.Mutex
	reqs     []fakeRequest
	raw      bytes.Buffer
	opened   int
	closed   int
	closedAt []time.Time
	done     []time.Time // when each handler returned or saw its client leave
}

func newFake(t *testing.T, handle http.HandlerFunc) *fake {
	t.Helper()
	f := &fake{handle: handle}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.srv.Listener = &rawListener{Listener: f.srv.Listener, f: f}
	f.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		f.mu.Lock()
		defer f.mu.Unlock()
		switch s {
		case http.StateNew:
			f.opened++
		case http.StateClosed, http.StateHijacked:
			f.closed++
			f.closedAt = append(f.closedAt, time.Now())
		}
	}
	f.srv.Start()
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fake) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.reqs = append(f.reqs, fakeRequest{r.Method, r.RequestURI, r.Header.Clone(), string(body), time.Now()})
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.done = append(f.done, time.Now())
		f.mu.Unlock()
	}()
	if f.handle == nil {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
		return
	}
	f.handle(w, r)
}

func (f *fake) URL() string { return f.srv.URL }

// addr is the fake's host:port.
func (f *fake) addr() string { return f.srv.Listener.Addr().String() }

func (f *fake) port() string {
	_, p, _ := net.SplitHostPort(f.addr())
	return p
}

func (f *fake) requests() []fakeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeRequest(nil), f.reqs...)
}

func (f *fake) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.reqs)
}

// rawBytes is everything the fake read from its connections.
func (f *fake) rawBytes() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.raw.String()
}

// conns is the number of connections opened and closed so far.
func (f *fake) conns() (opened, closed int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.opened, f.closed
}

// handlersDone is when each finished handler returned.
func (f *fake) handlersDone() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.done...)
}

// rawListener tees what its connections read into the fake's raw log.
type rawListener struct {
	net.Listener
	f *fake
}

func (l *rawListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &rawConn{Conn: c, f: l.f}, nil
}

type rawConn struct {
	net.Conn
	f *fake
}

func (c *rawConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.f.mu.Lock()
		c.f.raw.Write(p[:n])
		c.f.mu.Unlock()
	}
	return n, err
}

// hang blocks a fake's handler until its client goes away.
func hang(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() }

// answer is a handler writing status, Content-Type and body.
func answer(status int, contentType, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// countingListener counts the bytes read from its connections.
type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, n: l.n}, nil
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// sink is a listener that accepts connections and never answers (a black
// hole), counting them; it stands for addresses nothing may reach.
type sink struct {
	ln       net.Listener
	accepted atomic.Int32
	wg       sync.WaitGroup
}

func newSink(t *testing.T) *sink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &sink{ln: ln}
	var mu sync.Mutex
	var conns []net.Conn
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepted.Add(1)
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		s.wg.Wait()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return s
}

func (s *sink) addr() string { return s.ln.Addr().String() }

func (s *sink) port() string {
	_, p, _ := net.SplitHostPort(s.addr())
	return p
}

// tcpProxy forwards connections to a target until cut: then it closes
// every connection and accepts new ones only to hold them (black hole) or
// to close them at once (down).
type tcpProxy struct {
	ln     net.Listener
	target string
	mode   atomic.Int32 // proxyForward, proxyBlackHole, proxyDown
	wg     sync.WaitGroup

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool // the test is over: connections are closed, not tracked
}

const (
	proxyForward = iota
	proxyBlackHole
	proxyDown
)

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Go(p.accept)
	t.Cleanup(func() {
		_ = ln.Close()
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		p.closeAll()
		p.wg.Wait()
	})
	return p
}

func (p *tcpProxy) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

// set switches the mode; leaving forward closes the open connections.
func (p *tcpProxy) set(mode int32) {
	p.mode.Store(mode)
	if mode != proxyForward {
		p.closeAll()
	}
}

// track records an open connection; false once the test is over.
func (p *tcpProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *tcpProxy) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		_ = c.Close()
	}
	clear(p.conns)
}

func (p *tcpProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		switch p.mode.Load() {
		case proxyDown:
			_ = c.Close()
			continue
		case proxyBlackHole:
			if !p.track(c) {
				_ = c.Close()
			}
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		if !p.track(c) || !p.track(up) {
			_ = c.Close()
			_ = up.Close()
			continue
		}
		p.wg.Go(func() { _, _ = io.Copy(up, c); _ = up.Close() })
		p.wg.Go(func() { _, _ = io.Copy(c, up); _ = c.Close() })
	}
}

// dnsServer answers A queries from answer (name without the trailing dot
// → address) and AAAA queries with no records; it counts A queries.
type dnsServer struct {
	conn     net.PacketConn
	answer   func(name string) netip.Addr
	aQueries atomic.Int32
	wg       sync.WaitGroup
}

func newDNSServer(t *testing.T, answer func(name string) netip.Addr) *dnsServer {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &dnsServer{conn: pc, answer: answer}
	d.wg.Go(d.serve)
	t.Cleanup(func() { _ = pc.Close(); d.wg.Wait() })
	return d
}

// resolver is a Go resolver asking only this server.
func (d *dnsServer) resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var dialer net.Dialer
		return dialer.DialContext(ctx, "udp", d.conn.LocalAddr().String())
	}}
}

func (d *dnsServer) serve() {
	buf := make([]byte, 512)
	for {
		n, from, err := d.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		if resp, ok := d.reply(buf[:n]); ok {
			_, _ = d.conn.WriteTo(resp, from)
		}
	}
}

// reply builds the answer to one query: the header, the question as asked,
// and for an A question one record pointing back at it (RFC 1035 §4.1).
func (d *dnsServer) reply(q []byte) ([]byte, bool) {
	if len(q) < 12 || binary.BigEndian.Uint16(q[4:6]) != 1 {
		return nil, false
	}
	var labels []string
	i := 12
	for i < len(q) && q[i] != 0 {
		l := int(q[i])
		if i+1+l > len(q) {
			return nil, false
		}
		labels = append(labels, string(q[i+1:i+1+l]))
		i += 1 + l
	}
	end := i + 5 // the zero label, QTYPE, QCLASS
	if end > len(q) {
		return nil, false
	}
	qtype := binary.BigEndian.Uint16(q[i+1 : i+3])
	var addr netip.Addr
	if qtype == 1 {
		d.aQueries.Add(1)
		addr = d.answer(strings.Join(labels, "."))
	}
	resp := append([]byte(nil), q[:2]...)                   // ID
	resp = append(resp, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0) // QR RD RA, QDCOUNT 1
	resp = append(resp, q[12:end]...)
	if addr.Is4() {
		binary.BigEndian.PutUint16(resp[6:8], 1) // ANCOUNT
		a := addr.As4()
		resp = append(resp, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4)
		resp = append(resp, a[:]...)
	}
	return resp, true
}

// syncBuffer is a log destination shared by request goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// records are the JSON log records with that message.
func (s *syncBuffer) records(msg string) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(s.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// noLeaks registers a check that the goroutines running after the test's
// cleanups (servers closed) are those running now. Call it first, so that
// its cleanup runs last.
func noLeaks(t *testing.T) {
	t.Helper()
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

// failure is the error and node of a debug failure body.
type failure struct {
	Error string
	Node  struct{ Name string }
}

func failureOf(t *testing.T, body string) failure {
	t.Helper()
	var f failure
	if err := json.Unmarshal([]byte(body), &f); err != nil {
		t.Fatalf("failure body %q: %v", body, err)
	}
	return f
}

// errorOf is the error member of a debug failure body.
func errorOf(t *testing.T, body string) string {
	t.Helper()
	return failureOf(t, body).Error
}
