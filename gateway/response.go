package gateway

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// modifyResponse runs the response phase on the upstream response before
// anything is sent to the client (gateway.md §9.2).
func (g *Gateway) modifyResponse(resp *http.Response) error {
	ex := exchangeOf(resp.Request.Context())
	ex.headersAt = time.Now()
	ex.resp = resp
	ex.respHeader = resp.Header
	if !ex.statusSet {
		ex.status = resp.StatusCode
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		// gateway.md §8.7: no response phase on an upgrade; header_filter
		// still sees the 101.
		g.proxiedHeaders(ex, resp)
		g.headerFilter(ex)
		g.requestIDHeader(ex, resp.Header)
		g.streams.track(resp)
		return nil
	}
	if err := g.responsePhase(ex, resp); err != nil {
		return err
	}
	switch {
	case ex.exit != nil:
		resp.StatusCode = ex.exit.status
		resp.Header = ex.exit.header
		ex.respHeader = resp.Header
		setBody(resp, ex.exit.body)
		g.headerFilter(ex)
		resp.StatusCode = ex.exit.status
		g.gatewayHeaders(ex, resp.Header)
	default:
		if ex.respBodyOK {
			setBody(resp, ex.respBody)
		}
		g.headerFilter(ex)
		resp.StatusCode = ex.status
		g.proxiedHeaders(ex, resp)
	}
	g.requestIDHeader(ex, resp.Header)
	g.streams.track(resp)
	return nil
}

// responsePhase runs the collected ResponseHandlers, buffering the upstream
// body first when one of them needs it (gateway.md §8.3).
func (g *Gateway) responsePhase(ex *Exchange, resp *http.Response) error {
	needBody, any := false, false
	for _, in := range ex.collected {
		if _, ok := in.inst.(ResponseHandler); !ok {
			continue
		}
		any = true
		if n, ok := in.inst.(ResponseBodyNeeder); !ok || n.NeedsResponseBody(ex) {
			needBody = true
		}
	}
	if !any {
		return nil
	}
	if needBody {
		if err := ex.bufferResponse(resp); err != nil {
			return err
		}
	}
	for _, in := range ex.collected {
		h, ok := in.inst.(ResponseHandler)
		if !ok {
			continue
		}
		if err := g.runHandler(ex, in.slot, func() error { return h.Response(ex.ctx, ex) }); err != nil {
			return &phaseError{err}
		}
		if ex.exit != nil {
			break
		}
	}
	return nil
}

// bufferResponse reads the upstream body up to
// upstream_response_buffer_limit, decompressing gzip for the plugins.
func (ex *Exchange) bufferResponse(resp *http.Response) error {
	limit := ex.snap.limits.UpstreamResponseBufferLimit
	defer resp.Body.Close()
	var src io.Reader = resp.Body
	gz := strings.EqualFold(strings.TrimSpace(resp.Header.Get("Content-Encoding")), "gzip")
	if gz {
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			return err
		}
		src = zr
	}
	b, err := io.ReadAll(io.LimitReader(src, limit+1))
	if err != nil {
		return err
	}
	if int64(len(b)) > limit {
		ex.Logger().Error("upstream response exceeds upstream_response_buffer_limit", "limit", limit)
		return errBufferOverflow
	}
	if gz {
		resp.Header.Del("Content-Encoding")
	}
	ex.respBody, ex.respBodyOK = b, true
	return nil
}

var errBufferOverflow = errors.New("upstream response buffer overflow")

// phaseError carries a plugin failure of the response phase to proxyError.
type phaseError struct{ err error }

func (e *phaseError) Error() string { return e.err.Error() }

func setBody(resp *http.Response, b []byte) {
	resp.Body = io.NopCloser(bytes.NewReader(b))
	resp.ContentLength = int64(len(b))
	resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
	resp.Header.Del("Transfer-Encoding")
	resp.TransferEncoding = nil
}

// proxiedHeaders adds the headers of a proxied response (gateway.md §8.6),
// canonical names straight into the map, values from the Exchange's array.
func (g *Gateway) proxiedHeaders(ex *Exchange, resp *http.Response) {
	h, on := resp.Header, g.opts.Headers
	if on.UpstreamLatency {
		h["X-Kong-Upstream-Latency"] = ex.value(strconv.FormatInt(ex.headersAt.Sub(ex.tryStart).Milliseconds(), 10))
	}
	if on.ProxyLatency {
		h["X-Kong-Proxy-Latency"] = ex.value(strconv.FormatInt(ex.tryStart.Sub(ex.started).Milliseconds(), 10))
	}
	if on.UpstreamStatus && ex.resp != nil {
		h["X-Kong-Upstream-Status"] = ex.value(strconv.Itoa(ex.resp.StatusCode))
	}
	if on.Via {
		via := g.via11
		if prior := h["Via"]; len(prior) > 0 {
			via = strings.Join(prior, ", ") + ", " + via
		}
		h["Via"] = ex.value(via)
	}
	if s := h["Server"]; on.Server && (len(s) == 0 || s[0] == "") {
		h["Server"] = ex.value(g.server)
	}
	g.requestIDHeader(ex, h)
}

// gatewayHeaders adds the headers of a gateway-made response.
func (g *Gateway) gatewayHeaders(ex *Exchange, h http.Header) {
	if g.opts.Headers.ResponseLatency {
		h.Set("X-Kong-Response-Latency", strconv.FormatInt(time.Since(ex.started).Milliseconds(), 10))
	}
	if g.opts.Headers.Server {
		h.Set("Server", g.server)
	}
	g.requestIDHeader(ex, h)
}

// requestIDHeader adds X-Kong-Request-Id, which every response carries
// when enabled.
func (g *Gateway) requestIDHeader(ex *Exchange, h http.Header) {
	if g.opts.Headers.RequestID {
		h["X-Kong-Request-Id"] = ex.value(ex.requestID)
	}
}

// proxyError maps a failed proxy attempt to its response (gateway.md §8.8):
// client-side failures are never reported as 502.
func (g *Gateway) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	ex := exchangeOf(r.Context())
	var pe *phaseError
	if errors.As(err, &pe) {
		g.writeError(w, ex, pe.err)
		return
	}
	_, bodyErr := ex.inBody.state()
	gone := ex.clientGone()
	switch {
	case bodyExpired(ex.req.Body), bodyErr != nil && !gone:
		g.writeError(w, ex, bodyError(ex.req.Body, bodyErr))
	case gone: // nothing to write
	default:
		g.writeError(w, ex, upstreamError(err))
	}
}

// bodyError answers a client body that failed (gateway.md §8.8): 408 when
// the client was too slow, 413 over client_max_body_size, else 400. The
// connection closes after it: the rest of the body cannot be told from a
// next request (hardening.md §1.2).
func bodyError(body io.Reader, err error) *HTTPError {
	switch {
	case bodyExpired(body):
		return &HTTPError{Status: http.StatusRequestTimeout, Message: msgRequestTimeout, Err: err,
			Header: http.Header{"Connection": {"close"}}}
	case errors.Is(err, errBodyTooLarge):
		return payloadTooLarge()
	}
	return &HTTPError{Status: http.StatusBadRequest, Message: msgBadRequest, Err: err,
		Header: http.Header{"Connection": {"close"}}}
}

// payloadTooLarge is the 413 of a body over its limit; the connection closes
// rather than read the rest.
func payloadTooLarge() *HTTPError {
	return &HTTPError{Status: http.StatusRequestEntityTooLarge, Message: msgTooLarge,
		Header: http.Header{"Connection": {"close"}}}
}

// upstreamError classifies a transport failure (gateway.md §8.8).
func upstreamError(err error) *HTTPError {
	var dnsErr *net.DNSError
	var netErr net.Error
	switch {
	case errors.As(err, &dnsErr):
		return &HTTPError{Status: http.StatusServiceUnavailable, Message: msgNameFailed, Err: err}
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &netErr) && netErr.Timeout():
		return &HTTPError{Status: http.StatusGatewayTimeout, Message: msgTimeout, Err: err}
	}
	return &HTTPError{Status: http.StatusBadGateway, Message: msgBadUpstream, Err: err}
}

// writeError answers a gateway error in the negotiated format.
func (g *Gateway) writeError(w http.ResponseWriter, ex *Exchange, err error) {
	ex.source = "error"
	if ex.clientGone() {
		return // nothing is written, the access log says 499
	}
	var re ResponseError
	if errors.As(err, &re) {
		status, header, body := re.Response()
		g.writeResponse(w, ex, status, header, body)
		return
	}
	var he *HTTPError
	if !errors.As(err, &he) {
		he = &HTTPError{Status: http.StatusInternalServerError, Message: msgUnexpected, Err: err}
	}
	if he.Err != nil && he.Status >= 500 && ex.ctx.Err() == nil {
		ex.Logger().Error("request failed", "status", he.Status, "error", he.Err)
	}
	ct, body := errorBody(negotiateFormat(ex.req, g.opts.ErrorFormat), he.Message, ex.requestID)
	h := http.Header{"Content-Type": {ct}}
	for k, v := range he.Header {
		h[k] = v
	}
	g.writeResponse(w, ex, he.Status, h, body)
}

func (g *Gateway) writeExit(w http.ResponseWriter, ex *Exchange) {
	g.writeResponse(w, ex, ex.exit.status, ex.exit.header, ex.exit.body)
}

// writeResponse sends a gateway-made response.
func (g *Gateway) writeResponse(w http.ResponseWriter, ex *Exchange, status int, header http.Header, body []byte) {
	h := w.Header()
	for k, v := range header {
		h[k] = v
	}
	ex.status, ex.respHeader = status, h
	if ex.exit != nil {
		ex.exit.status = status
	}
	g.headerFilter(ex)
	status = ex.ResponseStatus()
	g.gatewayHeaders(ex, h)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if ex.req.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}
