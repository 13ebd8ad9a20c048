package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/datakit-gateway/datakit/gateway/config"
	"github.com/datakit-gateway/datakit/gateway/router"
)

// Listener describes the listener a handler serves, for routing and
// X-Forwarded-* headers.
type Listener struct {
	Port int
	TLS  bool
}

// Handler returns the proxy handler for one listener.
func (g *Gateway) Handler(l Listener) http.Handler {
	port := strconv.Itoa(l.Port) // X-Forwarded-Port, formatted once
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { g.serve(w, r, l, port) })
}

type exchangeKey struct{}

func (g *Gateway) serve(w http.ResponseWriter, r *http.Request, l Listener, listenStr string) {
	snap := g.snap.Load()
	g.total.Add(1)
	ex := &Exchange{ctx: r.Context(), snap: snap, req: r, requestID: newRequestID(), started: time.Now(),
		scheme: "http", listenPort: l.Port, listenStr: listenStr, status: http.StatusOK, source: "service"}
	if l.TLS {
		ex.scheme = "https"
	}
	ex.logHead = requestLogHandler{base: g.opts.Logger.Handler(), id: ex.requestID}
	// Count what reaches the client, for the log phase and the access log.
	ex.sent = responseCounter{ResponseWriter: w}
	w = &ex.sent
	defer g.log(ex)
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			ex.Logger().Error("panic while serving a request", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			g.writeError(w, ex, &HTTPError{Status: http.StatusInternalServerError, Message: msgUnexpected})
		}
	}()
	if n := g.inflight.Add(1); n > g.opts.MaxInflight {
		g.inflight.Add(-1)
		g.writeError(w, ex, &HTTPError{Status: http.StatusServiceUnavailable, Message: msgUnavailable,
			Header: http.Header{"Retry-After": {"1"}}})
		return
	}
	defer g.inflight.Add(-1)

	if err := g.intake(ex, r); err != nil {
		g.writeError(w, ex, err)
		return
	}
	if snap == nil {
		g.writeError(w, ex, &HTTPError{Status: http.StatusNotFound, Message: msgNoRoute})
		return
	}
	host, port := splitHost(r.Host, l.Port)
	ex.host = host
	sni := ""
	if r.TLS != nil {
		sni = r.TLS.ServerName
	}
	m, ok := snap.router.Match(router.Request{Method: r.Method, Scheme: ex.scheme, Host: host, Port: port,
		Path: r.URL.EscapedPath(), Headers: r.Header, SNI: sni})
	if !ok {
		g.collectGlobal(ex)
		g.writeError(w, ex, &HTTPError{Status: http.StatusNotFound, Message: msgNoRoute})
		return
	}
	ex.match = m
	ex.route = m.Route.Handle.(*config.Route)
	if m.Route.HTTPSOnly() && g.forwardedProto(ex) != "https" {
		g.collectGlobal(ex)
		g.writeError(w, ex, g.httpsRequired(ex))
		return
	}
	if m.Service != nil {
		ex.service = m.Service.Handle.(*config.Service)
	}
	g.prepareOutbound(ex, r)

	if err := g.access(ex); err != nil {
		g.writeError(w, ex, err)
		return
	}
	if ex.exit != nil {
		g.writeExit(w, ex)
		return
	}
	if ex.service == nil {
		// gateway.md §7.8: proxied with Service defaults only when a plugin
		// chose where to.
		if ex.out.targetHost == "" && ex.out.upstreamName == "" {
			g.writeError(w, ex, &HTTPError{Status: http.StatusServiceUnavailable, Message: msgNoService})
			return
		}
		ex.service = defaultService()
	}
	if err := ex.selectTarget(); err != nil {
		g.writeError(w, ex, err)
		return
	}
	defer func() { ex.pick.Done() }()
	ex.rctx = exchangeContext{Context: r.Context(), ex: ex}
	g.proxy.ServeHTTP(w, r.WithContext(&ex.rctx))
}

// forwardedProto is the forwarded scheme (gateway.md §8.2): a trusted
// peer's X-Forwarded-Proto, else the connection's.
func (g *Gateway) forwardedProto(ex *Exchange) string {
	if v := ex.req.Header.Get("X-Forwarded-Proto"); v != "" && g.trustedPeer(ex.req) {
		return strings.ToLower(v)
	}
	return ex.scheme
}

// httpsRequired is the answer to a plain request on an https-only route
// (gateway.md §7.5).
func (g *Gateway) httpsRequired(ex *Exchange) error {
	code := ex.route.HTTPSRedirectStatusCode
	if code == 0 || code == http.StatusUpgradeRequired {
		return &HTTPError{Status: http.StatusUpgradeRequired, Message: "Please use HTTPS protocol",
			Header: http.Header{"Connection": {"Upgrade"}, "Upgrade": {"TLS/1.2, HTTP/1.1"}}}
	}
	trusted := g.trustedPeer(ex.req)
	host := ex.req.Host
	if v := ex.req.Header.Get("X-Forwarded-Host"); v != "" && trusted {
		host = v
	}
	host, _ = splitHost(host, 0)
	if strings.IndexByte(host, ':') >= 0 {
		host = "[" + host + "]"
	}
	if p := g.opts.HTTPSPort; p != 0 && p != 443 && !trusted {
		host += ":" + strconv.Itoa(p)
	}
	return &redirectError{status: code, location: "https://" + host + ex.req.RequestURI}
}

// intake applies the request limits and cleans the client request
// (gateway.md §8.1).
func (g *Gateway) intake(ex *Exchange, r *http.Request) error {
	if r.Method == http.MethodTrace || r.Method == http.MethodConnect {
		return &HTTPError{Status: http.StatusMethodNotAllowed, Message: msgNotAllowed}
	}
	lim := DefaultLimits()
	if ex.snap != nil {
		lim = ex.snap.limits
	}
	if len(r.RequestURI) > lim.ClientMaxURISize {
		return &HTTPError{Status: http.StatusRequestURITooLong, Message: msgURITooLong}
	}
	if strings.IndexByte(r.RequestURI, '#') >= 0 {
		// A request-target has no fragment (RFC 9112 §3.2); net/http keeps a
		// "#" in the query, which the upstream may read as its end.
		return &HTTPError{Status: http.StatusBadRequest, Message: msgBadRequest}
	}
	if r.URL.RawQuery != "" && strings.Count(r.URL.RawQuery, "&")+1 > lim.MaxQueryArgs {
		return &HTTPError{Status: http.StatusBadRequest, Message: msgBadRequest}
	}
	// The head as received: request line, Host, fields, blank line; a
	// field is "name: value\r\n".
	head := len(r.Method) + len(r.RequestURI) + len(r.Proto) + 4 + len("Host: \r\n") + len(r.Host) + 2
	for name, vals := range r.Header {
		for _, v := range vals {
			line := len(name) + len(v) + 2
			if line > lim.ClientMaxHeaderLine {
				return &HTTPError{Status: http.StatusBadRequest, Message: msgHeaderTooBig}
			}
			head += line + 2
		}
		if strings.IndexByte(name, '_') >= 0 {
			delete(r.Header, name)
		}
	}
	if head > lim.ClientMaxHeaderSize {
		return &HTTPError{Status: http.StatusBadRequest, Message: msgHeaderTooBig}
	}
	if lim.ClientMaxBodySize > 0 && r.ContentLength > lim.ClientMaxBodySize {
		return payloadTooLarge()
	}
	ex.upgrade = isUpgrade(r)
	removeHopByHop(r.Header, ex.upgrade)
	r.Header.Del("X-Kong-Request-Id")
	ex.clientIP, ex.clientPort, ex.peer = g.clientAddress(r)
	return nil
}

// hopByHop are the headers removed from both directions (gateway.md §8.1).
var hopByHop = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

func isUpgrade(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket") && headerHasToken(r.Header, "Connection", "upgrade")
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h[name] {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

func removeHopByHop(h http.Header, keepUpgrade bool) {
	// Decided before anything is removed: "Connection: TE" must not lose
	// "TE: trailers", which is end-to-end in meaning.
	trailers := headerHasToken(h, "Te", "trailers")
	for _, v := range h["Connection"] {
		for t := range strings.SplitSeq(v, ",") {
			if t = strings.TrimSpace(t); t != "" && !(keepUpgrade && strings.EqualFold(t, "upgrade")) {
				h.Del(t)
			}
		}
	}
	for _, name := range hopByHop {
		if keepUpgrade && name == "Upgrade" {
			continue
		}
		delete(h, name)
	}
	if trailers {
		h["Te"] = []string{"trailers"}
	}
}

// clientAddress is the TCP peer, or the real-IP header of a trusted peer;
// peer is the TCP peer's address ("" when RemoteAddr does not parse).
func (g *Gateway) clientAddress(r *http.Request) (ip string, port int, peer string) {
	ip, port = g.realClientAddress(r)
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		peer = host
	}
	return ip, port, peer
}

func (g *Gateway) realClientAddress(r *http.Request) (string, int) {
	host, portStr, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr, 0
	}
	port, _ := strconv.Atoi(portStr)
	if !g.trusted(host) {
		return host, port
	}
	var parts []string
	for _, line := range r.Header.Values(g.opts.RealIPHeader) {
		parts = append(parts, strings.Split(line, ",")...)
	}
	// The last element; with real_ip_recursive the rightmost one that is
	// not itself trusted (gateway.md §8.1).
	for i := len(parts) - 1; i >= 0; i-- {
		ip, err := netip.ParseAddr(strings.TrimSpace(parts[i]))
		if err != nil {
			return host, port
		}
		if !g.opts.RealIPRecursive || i == 0 || !g.trusted(ip.String()) {
			return ip.String(), port
		}
	}
	return host, port
}

// trustedPeer reports whether the TCP peer is in trusted_ips.
func (g *Gateway) trustedPeer(r *http.Request) bool {
	if len(g.opts.TrustedIPs) == 0 {
		return false
	}
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	return g.trusted(host)
}

func (g *Gateway) trusted(host string) bool {
	if len(g.opts.TrustedIPs) == 0 {
		return false
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	for _, p := range g.opts.TrustedIPs {
		if p.Contains(ip.Unmap()) {
			return true
		}
	}
	return false
}

func splitHost(hostport string, def int) (string, int) {
	host, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return hostport, def
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return host, 0
	}
	return host, port
}

// prepareOutbound starts the upstream request from the client request.
func (g *Gateway) prepareOutbound(ex *Exchange, r *http.Request) {
	scheme := "http"
	if ex.service != nil {
		scheme = ex.service.Protocol
	}
	// The header is copied only when a plugin edits it (ServiceRequestHeader):
	// the proxy clones the client's header for the upstream request anyway.
	ex.out = outbound{method: r.Method, rawQuery: r.URL.RawQuery,
		path: ex.match.UpstreamPath(), scheme: scheme}
}

// access runs the access handlers in priority order (gateway.md §9.3).
func (g *Gateway) access(ex *Exchange) error {
	for _, slot := range ex.snap.plugins {
		in := g.collect(ex, slot)
		if in == nil {
			continue
		}
		h, ok := in.inst.(AccessHandler)
		if !ok {
			continue
		}
		if err := g.runHandler(ex, in.slot, func() error { return h.Access(ex.ctx, ex) }); err != nil {
			return err
		}
		if ex.exit != nil {
			return nil
		}
	}
	return nil
}

// collect returns the instance of slot that applies to the request now.
func (g *Gateway) collect(ex *Exchange, slot *pluginSlot) *instance {
	var routeID, serviceID, consumerID string
	if ex.route != nil {
		routeID = ex.route.ID
	}
	if ex.service != nil {
		serviceID = ex.service.ID
	}
	if ex.consumer != nil {
		consumerID = ex.consumer.ID
	}
	in := slot.lookup(routeID, serviceID, consumerID)
	if in == nil || (ex.scheme == "https" && !in.https) || (ex.scheme == "http" && !in.http) {
		return nil
	}
	if ex.collected == nil {
		ex.collected = make([]*instance, 0, len(ex.snap.plugins))
	}
	ex.collected = append(ex.collected, in)
	return in
}

// collectGlobal collects the global instances: without a route (or before
// access on an https-only route) only they run header_filter and log
// (gateway.md §9.2).
func (g *Gateway) collectGlobal(ex *Exchange) {
	for _, slot := range ex.snap.plugins {
		in := slot.instances[scopeKey{}]
		if in == nil || (ex.scheme == "https" && !in.https) || (ex.scheme == "http" && !in.http) {
			continue
		}
		ex.collected = append(ex.collected, in)
	}
}

// headerFilter runs the collected header_filter handlers: their failures are
// logged and change nothing else (gateway.md §9.5).
func (g *Gateway) headerFilter(ex *Exchange) {
	for _, in := range ex.collected {
		h, ok := in.inst.(HeaderFilterHandler)
		if !ok {
			continue
		}
		_ = g.runHandler(ex, in.slot, func() error { return h.HeaderFilter(ex.ctx, ex) })
	}
}

// log runs the collected log handlers once the request is over.
func (g *Gateway) log(ex *Exchange) {
	if len(ex.collected) == 0 && !g.opts.AccessLog {
		return
	}
	now := time.Now()
	status := ex.sent.status
	if status == 0 {
		status = ex.ResponseStatus()
		if ex.ctx.Err() != nil {
			status = 499 // the client left before a response was sent
		}
	}
	rec := &LogRecord{RequestID: ex.requestID, Method: ex.req.Method, Path: ex.req.URL.Path,
		Status: status, Route: ex.route, Service: ex.service, Consumer: ex.consumer,
		ClientIP: ex.clientIP, Source: ex.source, Started: ex.started, Latency: now.Sub(ex.started),
		Tries: ex.tries, BytesOut: ex.sent.bytes}
	if ex.req.ContentLength > 0 {
		rec.BytesIn = ex.req.ContentLength
	}
	if ex.tries > 0 && !ex.headersAt.IsZero() {
		rec.UpstreamLatency = ex.headersAt.Sub(ex.tryStart)
	}
	rec.GatewayLatency = rec.Latency - rec.UpstreamLatency
	if g.opts.AccessLog {
		g.accessLog(ex, rec)
	}
	for _, in := range ex.collected {
		h, ok := in.inst.(LogHandler)
		if !ok {
			continue
		}
		func() {
			defer func() {
				if v := recover(); v != nil {
					ex.Logger().Error("plugin panicked in log", "plugin", in.cfg.Name, "panic", fmt.Sprint(v))
				}
			}()
			h.Log(rec)
		}()
	}
}

// runHandler turns a plugin's error or panic into the request's error
// (gateway.md §9.5).
func (g *Gateway) runHandler(ex *Exchange, slot *pluginSlot, f func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			ex.Logger().Error("plugin panicked", "plugin", slot.plugin.Name(), "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			err = &HTTPError{Status: http.StatusInternalServerError, Message: msgUnexpected}
		}
	}()
	err = f()
	if err == nil {
		return nil
	}
	var he *HTTPError
	if errors.As(err, &he) {
		return err
	}
	var re ResponseError
	if errors.As(err, &re) {
		return err
	}
	if ex.ctx.Err() != nil {
		// The client went away: nothing failed but the request itself.
		return err
	}
	ex.Logger().Error("plugin failed", "plugin", slot.plugin.Name(), "error", err)
	return &HTTPError{Status: http.StatusInternalServerError, Message: msgUnexpected}
}

// ResponseError is an error that carries its own complete response (the
// datakit plugin's node-failure body); it was logged by the plugin.
type ResponseError interface {
	error
	Response() (status int, header http.Header, body []byte)
}

// rewrite builds the upstream request (httputil.ReverseProxy.Rewrite); the
// target and Host are set per try by roundTrip.
func (g *Gateway) rewrite(pr *httputil.ProxyRequest) {
	ex := exchangeOf(pr.In.Context())
	out := pr.Out
	out.URL.Scheme = ex.out.scheme
	out.URL.Path, out.URL.RawPath = unescapedPath(ex.out.path), ex.out.path
	out.URL.RawQuery = ex.out.rawQuery
	out.URL.ForceQuery = ex.out.rawQuery == "" && pr.In.URL.ForceQuery && !ex.out.querySet
	out.Method = ex.out.method
	if ex.out.header != nil {
		out.Header = ex.out.header
	} else if fwd := ex.req.Header["Forwarded"]; fwd != nil {
		// ReverseProxy drops Forwarded from its copy; forwardedHeaders
		// decides whether it stays.
		out.Header["Forwarded"] = fwd
	}
	if h := out.Header["Host"]; len(h) > 0 && h[0] != "" {
		ex.out.hostOverride = h[0]
		delete(out.Header, "Host")
	}
	if b, ok := ex.bufferedBody(); ok {
		out.Body = bodyReader(b)
		out.ContentLength = int64(len(b))
		if ex.out.bodySet {
			out.Header.Del("Content-Length")
			out.Header.Del("Transfer-Encoding")
		}
	} else if out.Body != nil && out.Body != http.NoBody {
		ex.inBody.r, ex.inBody.limit, ex.inBody.streamed = out.Body, ex.snap.limits.ClientMaxBodySize, true
		out.Body = &ex.inBody
	}
	g.forwardedHeaders(ex, out)
	if ex.upgrade {
		out.Header["Connection"] = []string{"keep-alive, Upgrade"}
		out.Header["Upgrade"] = ex.req.Header["Upgrade"]
	} else {
		out.Header["Connection"] = ex.value("keep-alive")
		delete(out.Header, "Upgrade")
	}
}

// bufferedBody is the upstream body when it is held in memory: a plugin's
// replacement or the buffered client body.
func (ex *Exchange) bufferedBody() ([]byte, bool) {
	switch {
	case ex.out.bodySet:
		return ex.out.body, true
	case ex.bodyRead:
		return ex.body, true
	}
	return nil, false
}

func bodyReader(b []byte) io.ReadCloser {
	if len(b) == 0 {
		return http.NoBody
	}
	return io.NopCloser(bytes.NewReader(b))
}

// clientBody is a streamed client body on its way upstream. It tells a
// client failure from an upstream one (gateway.md §8.8: never a 502 for the
// client's fault), enforces client_max_body_size on bodies without
// Content-Length, and ignores Close so that a try that failed before reading
// it leaves it whole for the next try. The transport reads it on its own
// goroutine, which may outlive RoundTrip: the handler asks through state.
type clientBody struct {
	r        io.ReadCloser
	limit    int64 // 0: unlimited
	streamed bool

	mu  sync.Mutex
	n   int64
	err error
}

var errBodyTooLarge = errors.New("client body exceeds client_max_body_size")

func (b *clientBody) Read(p []byte) (int, error) {
	if _, err := b.state(); err != nil {
		return 0, err
	}
	n, err := b.r.Read(p)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.n += int64(n)
	if b.limit > 0 && b.n > b.limit {
		b.err = errBodyTooLarge
		return 0, b.err
	}
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

func (b *clientBody) Close() error { return nil }

// state is how many bytes were read so far and the body's failure, if any.
func (b *clientBody) state() (int64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n, b.err
}

func unescapedPath(p string) string {
	if u, err := url.PathUnescape(p); err == nil {
		return u
	}
	return p
}

// forwardedHeaders sets X-Forwarded-*, X-Real-IP, Via and the request id
// (gateway.md §8.2). Names are written in canonical form straight into the
// map, and values come from the Exchange's array (ex.value): this runs on
// every proxied request.
func (g *Gateway) forwardedHeaders(ex *Exchange, out *http.Request) {
	h := out.Header
	in := ex.req
	peer := ex.peer
	trusted := g.trusted(peer)
	// The one header merged rather than replaced, trusted peer or not.
	if prior := in.Header["X-Forwarded-For"]; len(prior) > 0 {
		h["X-Forwarded-For"] = ex.value(strings.Join(prior, ", ") + ", " + peer)
	} else {
		h["X-Forwarded-For"] = ex.value(ex.clientIP)
	}
	setForwarded := func(name, own string) {
		if v := in.Header[name]; trusted && len(v) > 0 && v[0] != "" {
			h[name] = ex.value(v[0])
		} else if own != "" {
			h[name] = ex.value(own)
		} else {
			delete(h, name)
		}
	}
	setForwarded("X-Forwarded-Proto", ex.scheme)
	setForwarded("X-Forwarded-Host", ex.host)
	setForwarded("X-Forwarded-Port", ex.listenStr)
	setForwarded("X-Forwarded-Path", in.URL.EscapedPath())
	prefix := ex.match.StrippedPrefix
	if prefix == "/" {
		prefix = ""
	}
	setForwarded("X-Forwarded-Prefix", prefix)
	h["X-Real-Ip"] = ex.value(ex.clientIP)
	if !trusted {
		delete(h, "Forwarded")
	}
	if g.opts.Headers.Via {
		via := g.viaFor(in)
		if prior := in.Header["Via"]; len(prior) > 0 && prior[0] != "" {
			via = prior[0] + ", " + via
		}
		h["Via"] = ex.value(via)
	}
	if g.opts.Headers.UpstreamRequestID {
		h["X-Kong-Request-Id"] = ex.value(ex.requestID)
	}
}

// viaFor is this hop's Via entry for the client request's protocol.
func (g *Gateway) viaFor(r *http.Request) string {
	switch {
	case r.ProtoMajor == 2:
		return g.via2
	case r.ProtoMinor == 0:
		return g.via10
	}
	return g.via11
}

// accessLog writes the one access record of a request (gateway.md §11.2):
// names else ids, no query string, no header values.
func (g *Gateway) accessLog(ex *Exchange, rec *LogRecord) {
	logger := g.opts.Logger
	if !logger.Enabled(ex.ctx, slog.LevelInfo) {
		return
	}
	attrs := []slog.Attr{
		slog.String("request_id", rec.RequestID), slog.String("client_ip", rec.ClientIP),
		slog.String("method", rec.Method), slog.String("host", ex.req.Host), slog.String("path", rec.Path),
		slog.String("proto", ex.req.Proto), slog.Int("status", rec.Status),
		slog.Int64("bytes_in", rec.BytesIn), slog.Int64("bytes_out", rec.BytesOut),
		slog.Int64("latency_ms", rec.Latency.Milliseconds()),
		slog.Int64("upstream_latency_ms", rec.UpstreamLatency.Milliseconds()),
		slog.Int64("proxy_latency_ms", rec.GatewayLatency.Milliseconds()),
	}
	if r := rec.Route; r != nil {
		attrs = append(attrs, slog.String("route", nameOr(r.Name, r.ID)))
	}
	if s := rec.Service; s != nil {
		attrs = append(attrs, slog.String("service", nameOr(s.Name, s.ID)))
	}
	if c := rec.Consumer; c != nil {
		attrs = append(attrs, slog.String("consumer", nameOr(c.Username, c.ID)))
	}
	if ex.target.host != "" {
		attrs = append(attrs, slog.String("upstream_addr", joinHostPort(ex.target.host, ex.target.port)))
	}
	attrs = append(attrs, slog.Int("tries", rec.Tries), slog.String("source", rec.Source))
	logger.LogAttrs(ex.ctx, slog.LevelInfo, "access", attrs...)
}

func nameOr(name *string, id string) string {
	if name != nil && *name != "" {
		return *name
	}
	return id
}

// responseCounter records the status and the body bytes written to the
// client; Unwrap lets http.ResponseController reach the connection
// (flushes, WebSocket hijacks).
type responseCounter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (c *responseCounter) WriteHeader(code int) {
	if c.status == 0 && code >= 200 || code == http.StatusSwitchingProtocols {
		c.status = code
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *responseCounter) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	n, err := c.ResponseWriter.Write(b)
	c.bytes += int64(n)
	return n, err
}

func (c *responseCounter) Unwrap() http.ResponseWriter { return c.ResponseWriter }
