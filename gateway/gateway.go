package gateway

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"sync"
	"sync/atomic"
)

// Options configure a Gateway.
type Options struct {
	// AccessLog writes one `access` record per request at info level
	// (access_log).
	AccessLog bool
	// Version is datakit's version, shown in Server and Via.
	Version string
	Logger  *slog.Logger
	// TrustedIPs are the peers whose X-Forwarded-* and real-IP headers are
	// believed.
	TrustedIPs []netip.Prefix
	// RealIPHeader is real_ip_header (zero value: X-Real-IP).
	RealIPHeader string
	// RealIPRecursive takes the rightmost untrusted address of the real-IP
	// header instead of the last one.
	RealIPRecursive bool
	// ErrorFormat is error_default_type.
	ErrorFormat errorFormat
	// MaxInflight caps proxy requests in flight (zero value: 4096).
	MaxInflight int64
	// Transport, when set, sends every upstream try instead of the
	// snapshot's per-Service transports (tests, instrumentation).
	Transport http.RoundTripper
	// Headers are the headers the gateway adds (the headers and
	// headers_upstream settings); nil: Kong's defaults (DefaultHeaders).
	Headers *Headers
	// HTTPSPort is the first TLS proxy listener's port, used in https
	// redirects (gateway.md §7.5); 0 or 443 leaves the port out.
	HTTPSPort int
	// OnSwap, if non-nil, is called with each snapshot Swap installs, after
	// it serves new requests; swaps and their calls never overlap (metrics
	// drop the series of removed entities).
	OnSwap func(*Snapshot)
}

// Gateway is the proxy: an http.Handler per listener over the active
// Snapshot, swapped atomically on reload.
type Gateway struct {
	opts     Options
	snap     atomic.Pointer[Snapshot]
	swapMu   sync.Mutex // serializes Swap with its OnSwap call
	proxy    *httputil.ReverseProxy
	inflight atomic.Int64
	total    atomic.Int64
	via      string
	server   string
	// via10, via11 and via2 are this hop's Via entry per client protocol.
	via10, via11, via2 string
	// onSwap runs after every swap (a Server binding TLS listeners that
	// wait for a certificate).
	onSwap atomic.Pointer[func()]
	// streams are the upgraded connections and event streams a shutdown
	// ends.
	streams streams
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
	if opts.Headers == nil {
		h := DefaultHeaders()
		opts.Headers = &h
	}
	g := &Gateway{opts: opts, server: "datakit/" + opts.Version, via: "datakit/" + opts.Version}
	g.via10, g.via11, g.via2 = "1.0 "+g.via, "1.1 "+g.via, "2 "+g.via
	g.proxy = &httputil.ReverseProxy{
		Rewrite:        g.rewrite,
		Transport:      roundTripperFunc(g.roundTrip),
		ModifyResponse: g.modifyResponse,
		ErrorHandler:   g.proxyError,
		ErrorLog:       slog.NewLogLogger(opts.Logger.Handler(), slog.LevelDebug),
		// The default flush policy: streaming responses (unknown length,
		// text/event-stream) are flushed as data arrives, the others leave
		// in one write with their headers — flushing every response at once
		// cost a system call per request.
		BufferPool: newBufferPool(),
	}
	return g
}

// Headers says which headers the gateway adds (gateway.md §8.2, §8.6).
type Headers struct {
	// To responses (the headers setting).
	Server, Via, ProxyLatency, UpstreamLatency, ResponseLatency, UpstreamStatus, RequestID bool
	// UpstreamRequestID adds X-Kong-Request-Id to upstream requests
	// (headers_upstream).
	UpstreamRequestID bool
}

// DefaultHeaders are Kong's defaults: headers = server_tokens,
// latency_tokens, X-Kong-Request-Id; headers_upstream = X-Kong-Request-Id.
func DefaultHeaders() Headers {
	return Headers{Server: true, Via: true, ProxyLatency: true, UpstreamLatency: true, ResponseLatency: true,
		RequestID: true, UpstreamRequestID: true}
}

// Stats are the proxy's request counters: all requests so far, and those in
// flight.
func (g *Gateway) Stats() (total, inflight int64) { return g.total.Load(), g.inflight.Load() }

// Swap installs a new snapshot; in-flight requests finish on theirs.
func (g *Gateway) Swap(s *Snapshot) {
	g.swapMu.Lock()
	defer g.swapMu.Unlock()
	g.snap.Store(s)
	if g.opts.OnSwap != nil {
		g.opts.OnSwap(s)
	}
	if f := g.onSwap.Load(); f != nil {
		(*f)()
	}
}

// Snapshot is the active snapshot, or nil.
func (g *Gateway) Snapshot() *Snapshot { return g.snap.Load() }

// newRequestID returns 16 random bytes as 32 lower-case hex characters.
// The bytes and their hex live on the stack: the string is the one allocation.
func newRequestID() string {
	var b [16 + 32]byte
	_, _ = rand.Read(b[:16])
	hex.Encode(b[16:], b[:16])
	return string(b[16:])
}

// copyBufferSize is the size of the proxy's body copy buffers.
const copyBufferSize = 32 << 10

// bufferPool recycles the 32 KiB buffers the proxy copies bodies through
// (httputil.BufferPool); without it every request allocates one. It pools
// array pointers, so that Put does not allocate a slice header.
type bufferPool struct{ pool sync.Pool }

func newBufferPool() *bufferPool {
	return &bufferPool{pool: sync.Pool{New: func() any { return new([copyBufferSize]byte) }}}
}

func (p *bufferPool) Get() []byte { return p.pool.Get().(*[copyBufferSize]byte)[:] }

func (p *bufferPool) Put(b []byte) {
	if cap(b) < copyBufferSize {
		return // not one of ours
	}
	p.pool.Put((*[copyBufferSize]byte)(b[:copyBufferSize]))
}
