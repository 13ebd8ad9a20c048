package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
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
	// cert is the client certificate presented upstream; an unchanged
	// Certificate keeps its parsed pair across swaps, so its key too.
	cert *tls.Certificate
	// sni, when set, is the TLS server name instead of the dialled host
	// (preserve_host: the client's Host).
	sni string
}

func (s *Snapshot) keyOf(svc *config.Service, tlsOpts UpstreamTLS) transportKey {
	k := transportKey{verify: !tlsOpts.Insecure, depth: -1,
		connect: ms(svc.ConnectTimeout), write: ms(svc.WriteTimeout), read: ms(svc.ReadTimeout)}
	if svc.Protocol == "https" {
		k.cert = s.clientCertificate(svc)
	}
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
func (s *Snapshot) buildTransports(e *config.Entities, env upstreamEnv, prev *Snapshot) {
	tlsOpts, control := env.tls, env.control
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
			t = newTransport(k, env)
		}
		byKey[k] = t
		return t
	}
	s.transports = make(map[*config.Service]*http.Transport, len(e.Services))
	for i := range e.Services {
		svc := &e.Services[i]
		s.transports[svc] = get(s.keyOf(svc, tlsOpts))
	}
	s.defaultTransport = get(s.keyOf(defaultService(), tlsOpts))
	if control != nil {
		s.targetTransports = make(map[*config.Service]*http.Transport, len(e.Services))
		for svc := range s.transports {
			k := s.keyOf(svc, tlsOpts)
			k.target = true
			s.targetTransports[svc] = get(k)
		}
		k := s.keyOf(defaultService(), tlsOpts)
		k.target = true
		s.defaultTargetTransport = get(k)
	}
	s.transportsByKey = byKey
	s.keysByTransport = make(map[*http.Transport]transportKey, len(byKey))
	for k, t := range byKey {
		s.keysByTransport[t] = k
	}
	s.newTransport = func(k transportKey) *http.Transport { return newTransport(k, env) }
}

// maxVariantTransports bounds the transports made for per-request
// variations of a Service's key (preserve_host server names, SetTimeouts):
// client Host values are not bounded by configuration when a Route has no
// hosts.
const maxVariantTransports = 256

// variantTransport is the transport of rt's key changed by vary, made on
// first use and kept while the snapshot lives. Past maxVariantTransports,
// the oldest is dropped (its idle connections closed).
func (s *Snapshot) variantTransport(rt *http.Transport, vary func(*transportKey)) *http.Transport {
	k, ok := s.keysByTransport[rt]
	if !ok {
		return rt
	}
	vary(&k)
	if t := s.transportsByKey[k]; t != nil {
		return t
	}
	s.variantMu.Lock()
	defer s.variantMu.Unlock()
	if t := s.variants[k]; t != nil {
		return t
	}
	if s.variants == nil {
		s.variants = map[transportKey]*http.Transport{}
	}
	if len(s.variantOrder) >= maxVariantTransports {
		old := s.variantOrder[0]
		s.variantOrder = s.variantOrder[1:]
		s.variants[old].CloseIdleConnections()
		delete(s.variants, old)
	}
	t := s.newTransport(k)
	s.variants[k] = t
	s.variantOrder = append(s.variantOrder, k)
	return t
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
func newTransport(k transportKey, env upstreamEnv) *http.Transport {
	tlsOpts, control := env.tls, env.control
	dialer := &net.Dialer{KeepAlive: 30 * time.Second}
	// #nosec G402 -- off only by the Service's tls_verify or upstream_tls_verify = off
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: tlsOpts.RootCAs, InsecureSkipVerify: !k.verify}
	if k.cert != nil {
		tlsCfg.Certificates = []tls.Certificate{*k.cert}
	}
	if k.verify && k.depth >= 0 {
		depth := k.depth
		// VerifyConnection, unlike VerifyPeerCertificate, also runs on
		// resumed sessions (gosec G123).
		tlsCfg.VerifyConnection = func(cs tls.ConnectionState) error {
			for _, c := range cs.VerifiedChains {
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
	pool := env.pool.withDefaults()
	idle := min(pool.IdleTimeout, k.read/2)
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
			cfg := tlsCfg.Clone()
			cfg.ServerName = k.sni
			if cfg.ServerName == "" {
				cfg.ServerName, _, _ = net.SplitHostPort(addr)
			}
			tc := tls.Client(c, cfg)
			if err := tc.HandshakeContext(ctx); err != nil {
				_ = c.Close()
				return nil, &connectError{err}
			}
			return tc, nil
		},
		MaxIdleConnsPerHost:    pool.Size,
		DisableKeepAlives:      pool.Size < 0,
		IdleConnTimeout:        idle,
		MaxResponseHeaderBytes: maxUpstreamHeaderBytes,
		ExpectContinueTimeout:  time.Second,
		DisableCompression:     true,
		ForceAttemptHTTP2:      false,
	}
}

// maxUpstreamHeaderBytes caps an upstream response's header (hardening.md
// §2.3); over it the response is a 502.
const maxUpstreamHeaderBytes = 64 << 10

// UpstreamPool is the idle-connection pool of every upstream address
// (upstream_keepalive_pool_size, upstream_keepalive_idle_timeout).
type UpstreamPool struct {
	// Size is the idle connections kept per address: 0 means the default
	// 512, a negative value keeps none.
	Size        int
	IdleTimeout time.Duration // 0: 60 s
}

func (p UpstreamPool) withDefaults() UpstreamPool {
	if p.Size == 0 {
		p.Size = 512
	}
	if p.IdleTimeout <= 0 {
		p.IdleTimeout = 60 * time.Second
	}
	return p
}

// upstreamEnv is what every upstream transport of a snapshot is made with.
type upstreamEnv struct {
	tls     UpstreamTLS
	control TargetControl
	pool    UpstreamPool
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
	if t, ok := rt.(*http.Transport); ok {
		rt = ex.variantTransport(t)
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
		ex.noteResolution(req, err)
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

// variantTransport is t, or its variant for this request: timeouts set by
// a plugin (SetTimeouts), and with preserve_host over https the client's
// Host as SNI (gateway.md §8.9) — connections made for one server name are
// never reused for another.
func (ex *Exchange) variantTransport(t *http.Transport) *http.Transport {
	sni := ""
	if ex.route.PreserveHost && ex.out.scheme == "https" && ex.out.hostOverride == "" {
		if h, _ := splitHost(ex.req.Host, 0); !strings.EqualFold(h, ex.target.host) {
			sni = strings.ToLower(h)
		}
	}
	if sni == "" && ex.timeouts == nil {
		return t
	}
	return ex.snap.variantTransport(t, func(k *transportKey) {
		if sni != "" {
			k.sni = sni
		}
		if to := ex.timeouts; to != nil {
			k.connect, k.write, k.read = to.connect, to.write, to.read
		}
	})
}

// noteResolution records on the picked Target whether its name resolved,
// for kong_upstream_target_health (gateway.md §11.1): a DNS error marks it,
// a try that got past resolution (a response, or a failure after it) clears
// it; a try the client cancelled tells nothing.
func (ex *Exchange) noteResolution(req *http.Request, err error) {
	if err == nil {
		ex.pick.Resolved(true)
		return
	}
	var dnsErr *net.DNSError
	var ce *connectError
	switch {
	case req.Context().Err() != nil:
	case errors.As(err, &dnsErr):
		ex.pick.Resolved(false)
	case errors.As(err, &ce):
		ex.pick.Resolved(true)
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
