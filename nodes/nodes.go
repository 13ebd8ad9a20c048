// Package nodes implements the Datakit node types (one file each) and
// registers them with an engine.Registry. Node types decode their own
// attributes into typed structs at load time and run prepared, immutable
// values per request.
package nodes

import (
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"syscall"
	"time"

	"github.com/datakit-gateway/datakit/engine"
)

// Deps are the gateway settings and services node types are built with.
type Deps struct {
	// Version is datakit's version, sent as `User-Agent: datakit/<version>`
	// by call nodes. Zero value: "dev".
	Version string
	// Logger receives warnings of node types; zero value: slog.Default().
	Logger *slog.Logger
	// CallTransport, if non-nil, stands between call nodes and the
	// network: given a node's name and its own network (the connection
	// pools the destination policy checks), it returns the round tripper the
	// node uses — mocks in graph runs, the network only for live calls.
	CallTransport func(node string, network http.RoundTripper) http.RoundTripper
	// CallDestination, if non-nil, is the destination policy of call nodes
	// (hardening §2.7), asked before any connection about the target URL and
	// the proxy URL of each request; dynamic reports that the URL came from an
	// input. Its error fails the node with its text (`destination not
	// allowed`). Zero value: every destination is allowed.
	CallDestination func(u *url.URL, dynamic bool) error
	// CallDialControl, if non-nil, gives the net.Dialer.Control of one
	// connection of a call node to host (the name or address dialled, before
	// resolution: the target or the proxy), to check the resolved address of
	// every connection, retries and proxies included (DNS rebinding, address
	// spellings). dynamic reports that the target URL or the proxy came from
	// an input. Its error fails the node with `destination not allowed`.
	// Zero value: no check.
	CallDialControl func(host string, dynamic bool) func(network, address string, c syscall.RawConn) error
	// CallResolver resolves the names call nodes dial; the destination policy
	// checks what it answers at every connection. Zero value: the system's.
	CallResolver *net.Resolver
	// MaxCallBodyBytes caps a call response body (datakit_max_body_size);
	// zero value: 10 MiB.
	MaxCallBodyBytes int64
	// JQTimeout bounds one jq evaluation (datakit_jq_timeout); zero value:
	// 1000 ms.
	JQTimeout time.Duration
	// JQConcurrency caps the evaluations running at once in the jq nodes of
	// one registry, the process's for the gateway (datakit_jq_concurrency);
	// zero or negative: GOMAXPROCS.
	JQConcurrency int
	// The limits of the jq guard and of a jq result (hardening §2.8,
	// datakit_jq_max_*): bytes of a value built by an operator or builtin
	// (8 MiB), array index in an assignment path or setpath (524288), bytes
	// of a regex pattern (4 KiB), estimated bytes of the result (8 MiB) and
	// its nesting (10000). Zero or negative: those defaults.
	JQMaxValueBytes  int64
	JQMaxArrayIndex  int
	JQMaxRegexBytes  int64
	JQMaxOutputBytes int64
	JQMaxOutputDepth int
	// Caches are the process's cache stores (memory dictionaries, Redis
	// clients), shared by every plan compiled with the registry; the caller
	// closes them. Zero value: Register creates stores private to the
	// registry, never closed.
	Caches *CacheStores
	// Offline keeps node types off the network beyond CallTransport: Redis
	// caches use fresh memory stores instead (datakit graph run).
	Offline bool
	// Now is the clock of the JWT nodes (iat/nbf/exp, expiry checks); zero
	// value: time.Now.
	Now func() time.Time
}

// Metrics receive what call and cache nodes measure beyond their runs
// (gateway.md §11.1). A plan's engine.Recorder that implements it gets
// them; label values are the node's configured name and small fixed sets.
type Metrics interface {
	// CallDone counts one call node request by its final status code
	// (100–599, after retries) or "error" when no response came.
	CallDone(node, code string)
	// CacheLookup counts one cache node GET: "hit" or "miss".
	CacheLookup(node, result string)
}

// nodeMetrics is the Metrics of the plan a node is built for, or nil.
func nodeMetrics(b *engine.BuildInfo) Metrics {
	m, _ := b.Recorder.(Metrics)
	return m
}

func (d Deps) withDefaults() Deps {
	if d.Version == "" {
		d.Version = "dev"
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.MaxCallBodyBytes == 0 {
		d.MaxCallBodyBytes = 10 << 20
	}
	if d.JQTimeout == 0 {
		d.JQTimeout = time.Second
	}
	if d.JQConcurrency <= 0 {
		d.JQConcurrency = runtime.GOMAXPROCS(0)
	}
	if d.JQMaxValueBytes <= 0 {
		d.JQMaxValueBytes = 8 << 20
	}
	if d.JQMaxArrayIndex <= 0 {
		d.JQMaxArrayIndex = 524288
	}
	if d.JQMaxRegexBytes <= 0 {
		d.JQMaxRegexBytes = 4 << 10
	}
	if d.JQMaxOutputBytes <= 0 {
		d.JQMaxOutputBytes = 8 << 20
	}
	if d.JQMaxOutputDepth <= 0 {
		d.JQMaxOutputDepth = 10000
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	return d
}
