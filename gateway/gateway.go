package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"sync/atomic"
	"time"
)

// Options configure a Gateway.
type Options struct {
	// Version is datakit's version, shown in Server and Via.
	Version string
	Logger  *slog.Logger
	// TrustedIPs are the peers whose X-Forwarded-* and real-IP headers are
	// believed.
	TrustedIPs []netip.Prefix
	// RealIPHeader is real_ip_header (zero value: X-Real-IP).
	RealIPHeader string
	// ErrorFormat is error_default_type.
	ErrorFormat errorFormat
	// MaxInflight caps proxy requests in flight (zero value: 4096).
	MaxInflight int64
	// Transport sends upstream requests; nil builds the default transport.
	Transport http.RoundTripper
}

// Gateway is the proxy: an http.Handler per listener over the active
// Snapshot, swapped atomically on reload.
type Gateway struct {
	opts     Options
	snap     atomic.Pointer[Snapshot]
	proxy    *httputil.ReverseProxy
	inflight atomic.Int64
	total    atomic.Int64
	via      string
	server   string
}

// New returns a gateway without a snapshot: every request gets 404 until
// Swap installs one.
func New(opts Options) *Gateway {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.RealIPHeader == "" {
		opts.RealIPHeader = "X-Real-IP"
	}
	if opts.MaxInflight == 0 {
		opts.MaxInflight = 4096
	}
	if opts.Transport == nil {
		opts.Transport = newTransport()
	}
	g := &Gateway{opts: opts, server: "datakit/" + opts.Version, via: "datakit/" + opts.Version}
	g.proxy = &httputil.ReverseProxy{
		Rewrite:        g.rewrite,
		Transport:      opts.Transport,
		ModifyResponse: g.modifyResponse,
		ErrorHandler:   g.proxyError,
		ErrorLog:       slog.NewLogLogger(opts.Logger.Handler(), slog.LevelDebug),
		// Responses stream: flush as data arrives, as nginx does with
		// proxy_buffering off for streaming endpoints.
		FlushInterval: -1,
	}
	return g
}

// Swap installs a new snapshot; in-flight requests finish on theirs.
func (g *Gateway) Swap(s *Snapshot) { g.snap.Store(s) }

// Snapshot is the active snapshot, or nil.
func (g *Gateway) Snapshot() *Snapshot { return g.snap.Load() }

// newTransport is the upstream transport (gateway.md §8.9): HTTP/1.1, no
// environment proxies, per-address keep-alive pools.
func newTransport() *http.Transport {
	dialer := &net.Dialer{KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if d, ok := ctx.Value(connectTimeoutKey{}).(time.Duration); ok && d > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, d)
				defer cancel()
			}
			return dialer.DialContext(ctx, network, addr)
		},
		MaxIdleConnsPerHost:   512,
		IdleConnTimeout:       60 * time.Second,
		TLSHandshakeTimeout:   60 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
		ForceAttemptHTTP2:     false,
	}
}

type connectTimeoutKey struct{}

// newRequestID returns 16 random bytes as 32 lower-case hex characters.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
