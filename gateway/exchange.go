package gateway

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/datakit-gateway/datakit/engine"
	"github.com/datakit-gateway/datakit/gateway/balancer"
	"github.com/datakit-gateway/datakit/gateway/config"
	"github.com/datakit-gateway/datakit/gateway/router"
)

// Exchange is one request's state and the plugin API over it (gateway.md
// §9.4, mirroring Kong's PDK). It is used by one goroutine at a time.
type Exchange struct {
	ctx       context.Context
	snap      *Snapshot
	req       *http.Request
	requestID string
	started   time.Time
	// logger is built on first use (Logger): most requests never log, and
	// slog's With formats its attributes eagerly.
	logger  *slog.Logger
	logHead requestLogHandler
	// rctx carries the Exchange to the ReverseProxy callbacks.
	rctx exchangeContext
	// sent counts what the client is sent.
	sent responseCounter

	clientIP   string
	clientPort int
	peer       string // the TCP peer's address, "" when RemoteAddr does not parse
	scheme     string
	listenPort int
	listenStr  string // listenPort in decimal, formatted once per listener
	host       string // the client's Host without its port

	match    router.Match
	route    *config.Route
	service  *config.Service
	consumer *config.Consumer
	cred     *config.KeyauthCredential

	shared      map[string]any
	pluginState map[any]map[string]any

	body     []byte // buffered client body
	bodyRead bool
	bodyErr  error

	out outbound

	// Upstream response, once proxied.
	resp       *http.Response
	respBody   []byte
	respBodyOK bool
	status     int
	statusSet  bool // a plugin chose the proxied response's status

	exit   *exitResponse
	source string

	// collected are the instances that ran in access, for later phases.
	collected []*instance

	target   target
	upstream *upstreamEntry // the balancer in use, nil for a plain host
	pick     balancer.Pick
	balTries balancer.Tries
	tries    int

	retries    int
	retriesSet bool
	// timeouts override the Service's for this request (SetTimeouts).
	timeouts *upstreamTimeouts

	// inBody wraps a streamed client body on its way upstream.
	inBody clientBody
	// upgrade is a WebSocket handshake (gateway.md §8.7).
	upgrade bool

	// tryStart is the first try's start, headersAt the arrival of the
	// response headers (gateway.md §8.6 latencies).
	tryStart, headersAt time.Time
	// respHeader is the header of the response being prepared: upstream's
	// once proxied, the gateway's for gateway-made responses.
	respHeader http.Header

	// vals backs the one-value slices of the headers the gateway sets on
	// every request (X-Forwarded-*, Via, the request id, latencies): one
	// array in the Exchange instead of an allocation per header.
	vals   []string
	valBuf [16]string
}

// value returns v as a header value slice of capacity 1 (an append by a
// plugin copies instead of overwriting the next header's value).
func (ex *Exchange) value(v string) []string {
	if ex.vals == nil {
		ex.vals = ex.valBuf[:0]
	}
	if len(ex.vals) == cap(ex.vals) {
		ex.vals = make([]string, 0, 8)
	}
	ex.vals = append(ex.vals, v)
	n := len(ex.vals)
	return ex.vals[n-1 : n : n]
}

// exchangeContext is the request context handed to the ReverseProxy: it
// answers exchangeKey with its Exchange. Being a field of the Exchange, it
// costs no allocation, unlike context.WithValue.
type exchangeContext struct {
	context.Context
	ex *Exchange
}

func (c *exchangeContext) Value(key any) any {
	if _, ok := key.(exchangeKey); ok {
		return c.ex
	}
	return c.Context.Value(key)
}

// exchangeOf is the Exchange of a request handed to the ReverseProxy.
func exchangeOf(ctx context.Context) *Exchange { return ctx.Value(exchangeKey{}).(*Exchange) }

// requestLogHandler adds the request id to every record. It is built per
// request without allocating; the wrapped handler's WithAttrs (which formats
// the id, as Logger.With did) runs only when the request logs something, and
// yields the same output as Logger.With would have.
type requestLogHandler struct {
	base slog.Handler
	id   string
	once sync.Once
	h    slog.Handler
}

func (h *requestLogHandler) handler() slog.Handler {
	h.once.Do(func() { h.h = h.base.WithAttrs([]slog.Attr{slog.String("request_id", h.id)}) })
	return h.h
}

func (h *requestLogHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.base.Enabled(ctx, l)
}

func (h *requestLogHandler) Handle(ctx context.Context, r slog.Record) error {
	return h.handler().Handle(ctx, r)
}

func (h *requestLogHandler) WithAttrs(as []slog.Attr) slog.Handler { return h.handler().WithAttrs(as) }
func (h *requestLogHandler) WithGroup(name string) slog.Handler    { return h.handler().WithGroup(name) }

// outbound is the upstream request under construction.
type outbound struct {
	method   string
	path     string // escaped path as sent
	rawQuery string
	querySet bool
	header   http.Header
	body     []byte
	bodySet  bool
	// target overrides (kong.service.target / upstream / request.scheme)
	targetHost   string
	targetPort   int
	upstreamName string
	scheme       string
	// hostOverride is a Host header set by a plugin on the upstream request.
	hostOverride string
}

type exitResponse struct {
	status int
	header http.Header
	body   []byte
}

// ErrNotFound reports a name that matches no entity (upstream, consumer).
var ErrNotFound = errors.New("not found")

// Context returns the request's context.
func (ex *Exchange) Context() context.Context { return ex.ctx }

// RequestID is the gateway's request id.
func (ex *Exchange) RequestID() string { return ex.requestID }

// Logger carries the request id.
func (ex *Exchange) Logger() *slog.Logger {
	if ex.logger == nil {
		ex.logger = slog.New(&ex.logHead)
	}
	return ex.logger
}

// Request returns the client request as received (hop-by-hop headers
// removed). Plugins must not modify it; upstream edits go through the
// ServiceRequest methods.
func (ex *Exchange) Request() *http.Request { return ex.req }

// Scheme is the client connection's scheme.
func (ex *Exchange) Scheme() string { return ex.scheme }

// ListenPort is the port of the listener that accepted the request.
func (ex *Exchange) ListenPort() int { return ex.listenPort }

// NormalizedPath is the path the router matched (gateway.md §7.1).
func (ex *Exchange) NormalizedPath() string { return config.NormalizePath(ex.req.URL.EscapedPath()) }

// ClientIP and ClientPort are the client address (trusted_ips applied).
func (ex *Exchange) ClientIP() string { return ex.clientIP }

// ClientPort is the TCP peer's port.
func (ex *Exchange) ClientPort() int { return ex.clientPort }

// Route and Service are the matched entities (nil when none).
func (ex *Exchange) Route() *config.Route { return ex.route }

// Service is the matched Service, nil for a route without one.
func (ex *Exchange) Service() *config.Service { return ex.service }

// Consumer is the authenticated consumer, or nil.
func (ex *Exchange) Consumer() *config.Consumer { return ex.consumer }

// Credential is the credential the consumer authenticated with, or nil.
func (ex *Exchange) Credential() *config.KeyauthCredential { return ex.cred }

// Authenticate sets the request's consumer (and credential, may be nil).
func (ex *Exchange) Authenticate(c *config.Consumer, cred *config.KeyauthCredential) {
	ex.consumer, ex.cred = c, cred
}

// FindConsumer looks a consumer up by id, then username, then custom_id.
func (ex *Exchange) FindConsumer(id, username, customID string) (*config.Consumer, error) {
	if c := ex.snap.findConsumer(id, username, customID); c != nil {
		return c, nil
	}
	return nil, ErrNotFound
}

// FindCredential looks a key-auth key up in the snapshot and returns the
// credential with its consumer.
func (ex *Exchange) FindCredential(key string) (*config.KeyauthCredential, *config.Consumer, bool) {
	cred := ex.snap.credentials[key]
	if cred == nil || cred.Consumer == nil {
		return nil, nil, false
	}
	c := ex.snap.consumers.byID[cred.Consumer.ID]
	return cred, c, c != nil
}

// PluginState is kong.ctx.plugin for one instance.
func (ex *Exchange) PluginState(inst any) map[string]any {
	if ex.pluginState == nil {
		ex.pluginState = map[any]map[string]any{}
	}
	m := ex.pluginState[inst]
	if m == nil {
		m = map[string]any{}
		ex.pluginState[inst] = m
	}
	return m
}

// ReadBody returns the client body, buffering it (up to
// client_body_buffer_limit) on first use.
func (ex *Exchange) ReadBody() ([]byte, error) {
	if ex.bodyRead {
		return ex.body, ex.bodyErr
	}
	ex.bodyRead = true
	if ex.req.Body == nil || ex.req.Body == http.NoBody {
		return nil, nil
	}
	limit := ex.snap.limits.ClientBodyBufferLimit
	if ex.req.ContentLength > limit {
		ex.bodyErr = payloadTooLarge() // refused before reading a byte
		return nil, ex.bodyErr
	}
	b, err := readBody(ex.req.Body, ex.req.ContentLength, limit)
	switch {
	case errors.Is(err, engine.ErrTooLarge):
		ex.bodyErr = payloadTooLarge()
	case err != nil:
		ex.bodyErr = bodyError(ex.req.Body, err)
	default:
		ex.body = b
	}
	return ex.body, ex.bodyErr
}

// readBody reads a body of size bytes (-1: unknown) that may hold no more
// than limit: a declared size in one allocation of that size, an unknown one
// in pieces, so that a body over the limit is refused having held no more
// than the limit (hardening.md T04, T30).
func readBody(r io.Reader, size, limit int64) ([]byte, error) {
	if size < 0 {
		return engine.ReadLimited(r, limit)
	}
	b := make([]byte, size)
	_, err := io.ReadFull(r, b)
	return b, err
}

// clientGone reports whether the client left. Its request's context also
// ends when net/http reacts to a body read deadline the client let pass; that
// client is still there and owed a 408.
func (ex *Exchange) clientGone() bool { return ex.ctx.Err() != nil && !bodyExpired(ex.req.Body) }

// HasBody reports whether the client sent a body.
func (ex *Exchange) HasBody() bool {
	return ex.req.ContentLength != 0 && ex.req.Body != nil && ex.req.Body != http.NoBody
}

// ServiceRequestHeader is the upstream request's header, editable in access.
func (ex *Exchange) ServiceRequestHeader() http.Header {
	if ex.out.header == nil {
		ex.out.header = ex.req.Header.Clone()
	}
	return ex.out.header
}

// SetServiceRequestQuery replaces the upstream query string (encoded).
func (ex *Exchange) SetServiceRequestQuery(raw string) { ex.out.rawQuery, ex.out.querySet = raw, true }

// ServiceRequestQuery is the upstream query string (encoded).
func (ex *Exchange) ServiceRequestQuery() string { return ex.out.rawQuery }

// SetServiceRequestBody replaces the upstream body.
func (ex *Exchange) SetServiceRequestBody(b []byte) {
	ex.out.body, ex.out.bodySet = b, true
	ex.ServiceRequestHeader().Del("Content-Encoding")
}

// SetTarget sends the request to host:port, bypassing load balancing.
func (ex *Exchange) SetTarget(host string, port int) {
	ex.out.targetHost, ex.out.targetPort, ex.out.upstreamName = host, port, ""
}

// SetUpstream sends the request through the named Upstream's balancer.
func (ex *Exchange) SetUpstream(name string) error {
	if ex.snap.upstream(name) == nil {
		return ErrNotFound
	}
	ex.out.upstreamName, ex.out.targetHost = name, ""
	return nil
}

// SetServiceScheme sets the upstream request scheme (http or https).
func (ex *Exchange) SetServiceScheme(s string) { ex.out.scheme = s }

// Target is the effective upstream target "host:port" as overridden by
// plugins, or "" when the service decides.
func (ex *Exchange) Target() string {
	if ex.out.targetHost == "" {
		return ""
	}
	return joinHostPort(ex.out.targetHost, ex.out.targetPort)
}

// UpstreamName is the Upstream chosen by SetUpstream, or "".
func (ex *Exchange) UpstreamName() string { return ex.out.upstreamName }

// ServiceScheme is the upstream scheme.
func (ex *Exchange) ServiceScheme() string { return ex.out.scheme }

// ServiceResponse is the upstream response (response phase), or nil.
func (ex *Exchange) ServiceResponse() *http.Response { return ex.resp }

// ServiceResponseBody is the buffered upstream body; ok is false when the
// body streams.
func (ex *Exchange) ServiceResponseBody() (b []byte, ok bool) { return ex.respBody, ex.respBodyOK }

// SetResponseStatus sets the status of the proxied response.
func (ex *Exchange) SetResponseStatus(status int) {
	ex.status, ex.statusSet = status, true
	if ex.exit != nil {
		ex.exit.status = status
	}
}

// Shared is kong.ctx.shared: per-request values shared by plugins.
func (ex *Exchange) Shared() map[string]any {
	if ex.shared == nil {
		ex.shared = map[string]any{}
	}
	return ex.shared
}

// ResponseStatus is the status the client will get.
func (ex *Exchange) ResponseStatus() int {
	if ex.exit != nil {
		return ex.exit.status
	}
	return ex.status
}

// ResponseHeader is the header of the response being prepared: the proxied
// one in the response phase, the gateway's own in header_filter of a
// gateway-made response; nil before either exists.
func (ex *Exchange) ResponseHeader() http.Header { return ex.respHeader }

// SetRetries overrides the Service's retries for this request (§9.4).
func (ex *Exchange) SetRetries(n int) { ex.retries, ex.retriesSet = n, true }

// upstreamTimeouts are a request's connect, write and read timeouts.
type upstreamTimeouts struct{ connect, write, read time.Duration }

// SetTimeouts overrides the Service's connect, write and read timeouts for
// this request (§9.4, Kong's kong.service.set_timeouts); a value ≤ 0 keeps
// the current one.
func (ex *Exchange) SetTimeouts(connect, write, read time.Duration) {
	k := ex.snap.keysByTransport[ex.snap.transportFor(ex.service)]
	cur := upstreamTimeouts{k.connect, k.write, k.read}
	if ex.timeouts != nil {
		cur = *ex.timeouts
	}
	for _, v := range []struct{ set, cur *time.Duration }{{&connect, &cur.connect}, {&write, &cur.write}, {&read, &cur.read}} {
		if *v.set > 0 {
			*v.cur = *v.set
		}
	}
	ex.timeouts = &cur
}

// Tries is how many tries the upstream request took so far.
func (ex *Exchange) Tries() int { return ex.tries }

// SetResponseBody replaces the proxied response body (buffered only).
func (ex *Exchange) SetResponseBody(b []byte) {
	ex.respBody, ex.respBodyOK = b, true
	ex.resp.Header.Del("Content-Encoding")
}

// Exit ends the request with this response: in access the upstream is not
// contacted; in the response phase it replaces the upstream response.
func (ex *Exchange) Exit(status int, body []byte, header http.Header) {
	if header == nil {
		header = http.Header{}
	}
	ex.exit = &exitResponse{status: status, header: header, body: body}
	ex.source = "exit"
}

// Source is where the response comes from: service, exit or error.
func (ex *Exchange) Source() string { return ex.source }

func joinHostPort(host string, port int) string {
	if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
		host = "[" + host + "]"
	}
	return host + ":" + strconv.Itoa(port)
}
