package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/datakit-gateway/datakit/gateway/balancer"
	"github.com/datakit-gateway/datakit/gateway/config"
)

// UpstreamTLS is the node-wide upstream TLS policy (upstream_tls_verify,
// upstream_tls_trusted_certificate); a Service's tls_verify and
// tls_verify_depth refine it.
type UpstreamTLS struct {
	// Insecure turns verification off for Services whose tls_verify is
	// null. The zero value verifies (upstream_tls_verify = on).
	Insecure bool
	// RootCAs are the trusted roots; nil means the system pool.
	RootCAs *x509.CertPool
}

// transportKey is everything an upstream connection depends on besides its
// address. Connections made under one key are never reused under another
// (gateway.md §8.9), so a Service that skips verification can never hand its
// connection to one that verifies.
type transportKey struct {
	// target marks the transport of requests whose destination a plugin
	// chose (kong.service.target): its connections pass the target check.
	target  bool
	verify  bool
	depth   int // tls_verify_depth; -1 when unset
	connect time.Duration
	write   time.Duration
	read    time.Duration
}

func keyOf(svc *config.Service, tlsOpts UpstreamTLS) transportKey {
	k := transportKey{verify: !tlsOpts.Insecure, depth: -1,
		connect: ms(svc.ConnectTimeout), write: ms(svc.WriteTimeout), read: ms(svc.ReadTimeout)}
	if svc.TLSVerify != nil {
		k.verify = *svc.TLSVerify
	}
	if svc.TLSVerifyDepth != nil {
		k.depth = *svc.TLSVerifyDepth
	}
	return k
}

func ms(n int) time.Duration {
	if n <= 0 {
		n = defaultTimeoutMS
	}
	return time.Duration(n) * time.Millisecond
}

const defaultTimeoutMS = 60000

// buildTransports gives every Service its transport, reusing the previous
// snapshot's transport for an unchanged key so that idle pools survive swaps
// (gateway.md §10.3). Transports dropped here close their idle connections
// through IdleConnTimeout once unused.
func (s *Snapshot) buildTransports(e *config.Entities, tlsOpts UpstreamTLS, control TargetControl, prev *Snapshot) {
	byKey := map[transportKey]*http.Transport{}
	get := func(k transportKey) *http.Transport {
		if t := byKey[k]; t != nil {
			return t
		}
		t := (*http.Transport)(nil)
		if prev != nil {
			t = prev.transportsByKey[k]
		}
		if t == nil {
			t = newTransport(k, tlsOpts, control)
		}
		byKey[k] = t
		return t
	}
	s.transports = make(map[*config.Service]*http.Transport, len(e.Services))
	for i := range e.Services {
		svc := &e.Services[i]
		s.transports[svc] = get(keyOf(svc, tlsOpts))
	}
	s.defaultTransport = get(keyOf(defaultService(), tlsOpts))
	if control != nil {
		s.targetTransports = make(map[*config.Service]*http.Transport, len(e.Services))
		for svc := range s.transports {
			k := keyOf(svc, tlsOpts)
			k.target = true
			s.targetTransports[svc] = get(k)
		}
		k := keyOf(defaultService(), tlsOpts)
		k.target = true
		s.defaultTargetTransport = get(k)
	}
	s.transportsByKey = byKey
}

// TargetControl checks the connections of requests whose target a plugin
// set (kong.service.target, a dynamic destination): given the dialled host
// name it returns a net.Dialer Control that refuses forbidden addresses
// after resolution. A refusal answers 502 and is not retried.
type TargetControl func(host string) func(network, address string, c syscall.RawConn) error

// transportFor is the transport of a Service; a §7.8 default service gets
// the default one.
func (s *Snapshot) transportFor(svc *config.Service) *http.Transport {
	if t := s.transports[svc]; t != nil {
		return t
	}
	return s.defaultTransport
}

// targetTransportFor is the transport for a plugin-chosen target: the
// checked one when a TargetControl is configured.
func (s *Snapshot) targetTransportFor(svc *config.Service) *http.Transport {
	if s.targetTransports == nil {
		return s.transportFor(svc)
	}
	if t := s.targetTransports[svc]; t != nil {
		return t
	}
	return s.defaultTargetTransport
}

// defaultService is the Service a route without one proxies with once a
// plugin chose its target (gateway.md §7.8).
func defaultService() *config.Service {
	return &config.Service{Protocol: "http", Port: 80, Enabled: true, Retries: 5,
		ConnectTimeout: defaultTimeoutMS, WriteTimeout: defaultTimeoutMS, ReadTimeout: defaultTimeoutMS}
}

// newTransport is an upstream transport (gateway.md §8.5, §8.9): HTTP/1.1,
// no environment proxies, the key's timeouts applied per connection.
func newTransport(k transportKey, tlsOpts UpstreamTLS, control TargetControl) *http.Transport {
	dialer := &net.Dialer{KeepAlive: 30 * time.Second}
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: tlsOpts.RootCAs, InsecureSkipVerify: !k.verify}
	if k.verify && k.depth >= 0 {
		depth := k.depth
		tlsCfg.VerifyPeerCertificate = func(_ [][]byte, chains [][]*x509.Certificate) error {
			for _, c := range chains {
				if len(c)-1 <= depth {
					return nil
				}
			}
			return fmt.Errorf("certificate chain longer than tls_verify_depth %d", depth)
		}
	}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		d := dialer
		if k.target && control != nil {
			host, _, _ := net.SplitHostPort(addr)
			checked := *dialer
			checked.Control = control(host)
			d = &checked
		}
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, &connectError{err}
		}
		return &deadlineConn{Conn: c, read: k.read, write: k.write}, nil
	}
	// Idle connections must close before the read deadline their reader
	// goroutine is parked on fires, or a request could pick a dying one.
	idle := min(60*time.Second, k.read/2)
	return &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(ctx, k.connect)
			defer cancel()
			return dial(ctx, network, addr)
		},
		// The handshake is ours so that connect_timeout covers TCP connect
		// and TLS together and a handshake failure counts as "nothing sent".
		DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(ctx, k.connect)
			defer cancel()
			c, err := dial(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			host, _, _ := net.SplitHostPort(addr)
			cfg := tlsCfg.Clone()
			cfg.ServerName = host
			tc := tls.Client(c, cfg)
			if err := tc.HandshakeContext(ctx); err != nil {
				_ = c.Close()
				return nil, &connectError{err}
			}
			return tc, nil
		},
		MaxIdleConnsPerHost:   512,
		IdleConnTimeout:       idle,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
		ForceAttemptHTTP2:     false,
	}
}

// connectError marks a failure before anything was sent upstream (TCP
// connect, name resolution, TLS handshake): always safe to retry.
type connectError struct{ err error }

func (e *connectError) Error() string { return e.err.Error() }
func (e *connectError) Unwrap() error { return e.err }

// deadlineConn applies write_timeout between writes and read_timeout between
// reads (gateway.md §8.5). A write also pushes the read deadline, so the wait
// for response headers is measured from the end of sending. Deadlines move
// lazily (rearm): three re-arms per proxied request would each cost a
// runtime timer update.
type deadlineConn struct {
	net.Conn
	read, write time.Duration

	mu              sync.Mutex // the transport reads and writes from two goroutines
	readBy, writeBy time.Time  // the deadlines set last (monotonic, like the runtime's)
}

func (c *deadlineConn) Read(p []byte) (int, error) {
	next := time.Now().Add(c.read)
	c.mu.Lock()
	if rearm(&c.readBy, next, c.read) {
		_ = c.Conn.SetReadDeadline(next)
	}
	c.mu.Unlock()
	return c.Conn.Read(p)
}

func (c *deadlineConn) Write(p []byte) (int, error) {
	now := time.Now()
	c.mu.Lock()
	if next := now.Add(c.write); rearm(&c.writeBy, next, c.write) {
		_ = c.Conn.SetWriteDeadline(next)
	}
	if next := now.Add(c.read); rearm(&c.readBy, next, c.read) {
		_ = c.Conn.SetReadDeadline(next)
	}
	c.mu.Unlock()
	return c.Conn.Write(p)
}

// roundTripperFunc adapts a function to http.RoundTripper.
type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// roundTrip sends the upstream request, retrying connection failures before
// response headers on a fresh peer (gateway.md §8.5). It never retries a
// response, whatever its status.
func (g *Gateway) roundTrip(req *http.Request) (*http.Response, error) {
	ex := exchangeOf(req.Context())
	rt := g.opts.Transport
	switch {
	case rt != nil:
	case ex.out.targetHost != "":
		rt = ex.snap.targetTransportFor(ex.service)
	default:
		rt = ex.snap.transportFor(ex.service)
	}
	retries := ex.service.Retries
	if ex.retriesSet {
		retries = ex.retries
	}
	if ex.out.targetHost != "" {
		retries = 0 // SetTarget: no balancer, no retries
	}
	ex.tryStart = time.Now()
	var lastErr error
	for try := 0; ; try++ {
		if try > 0 {
			if !ex.nextTarget() {
				return nil, lastErr
			}
			req = ex.retryRequest(req)
		}
		ex.aim(req)
		ex.tries++
		resp, err := rt.RoundTrip(req)
		if err == nil {
			return resp, nil
		}
		if try >= retries || !ex.retryable(req, err) {
			return nil, err
		}
		lastErr = err
		ex.Logger().Debug("retrying upstream request", "target", req.URL.Host, "error", err)
	}
}

// retryable tells whether a failed try may be repeated (gateway.md §8.5).
func (ex *Exchange) retryable(req *http.Request, err error) bool {
	sent, bodyErr := ex.inBody.state()
	if req.Context().Err() != nil || bodyErr != nil {
		return false // the client is gone or its body failed: not the upstream's fault
	}
	var ce *connectError
	if errors.As(err, &ce) {
		return sent == 0 // nothing was sent; a streamed body is still whole
	}
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
	default:
		return false
	}
	return !ex.inBody.streamed
}

// retryRequest is req for the next try: a copy, so the transport can finish
// with the failed one, with a fresh reader over a buffered body.
func (ex *Exchange) retryRequest(req *http.Request) *http.Request {
	r := *req
	u := *req.URL
	r.URL = &u
	if b, ok := ex.bufferedBody(); ok {
		r.Body = bodyReader(b)
	}
	return &r
}

// nextTarget picks a fresh peer for a retry: the Upstream's balancer when
// the request goes through one, else the same host and port. It reports
// false when no peer is left.
func (ex *Exchange) nextTarget() bool {
	ex.pick.Done()
	ex.pick = balancer.Pick{}
	if ex.upstream == nil {
		return true
	}
	pick, err := ex.upstream.bal.Pick(ex.hashKey(ex.upstream), &ex.balTries)
	if err != nil {
		return false
	}
	ex.pick = pick
	ex.target = target{pick.Target.Host, pick.Target.Port}
	return true
}
