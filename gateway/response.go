package gateway

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// modifyResponse runs the response phase on the upstream response before
// anything is sent to the client (gateway.md §9.2).
func (g *Gateway) modifyResponse(resp *http.Response) error {
	ex := resp.Request.Context().Value(exchangeKey{}).(*Exchange)
	ex.resp = resp
	if !ex.statusSet {
		ex.status = resp.StatusCode
	}
	var handlers []ResponseHandler
	var slots []*pluginSlot
	needBody := false
	for _, in := range ex.collected {
		h, ok := in.inst.(ResponseHandler)
		if !ok {
			continue
		}
		handlers = append(handlers, h)
		slots = append(slots, ex.snap.slotOf(in))
		if n, ok := in.inst.(ResponseBodyNeeder); !ok || n.NeedsResponseBody(ex) {
			needBody = true
		}
	}
	if needBody {
		limit := ex.snap.limits.UpstreamResponseBufferLimit
		b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
		resp.Body.Close()
		if err != nil {
			return err
		}
		if int64(len(b)) > limit {
			ex.logger.Error("upstream response exceeds upstream_response_buffer_limit", "limit", limit)
			return errBufferOverflow
		}
		ex.respBody, ex.respBodyOK = b, true
	}
	for i, h := range handlers {
		if err := g.runHandler(ex, slots[i], func() error { return h.Response(ex.ctx, ex) }); err != nil {
			return &phaseError{err}
		}
		if ex.exit != nil {
			break
		}
	}
	switch {
	case ex.exit != nil:
		resp.StatusCode = ex.exit.status
		resp.Header = ex.exit.header
		setBody(resp, ex.exit.body)
		g.gatewayHeaders(ex, resp.Header)
	default:
		resp.StatusCode = ex.status
		if ex.respBodyOK {
			setBody(resp, ex.respBody)
		}
		g.proxiedHeaders(ex, resp)
	}
	resp.Header.Set("X-Kong-Request-Id", ex.requestID)
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

// proxiedHeaders adds the headers of a proxied response (gateway.md §8.6).
func (g *Gateway) proxiedHeaders(ex *Exchange, resp *http.Response) {
	h := resp.Header
	now := time.Since(ex.started)
	h.Set("X-Kong-Upstream-Latency", strconv.FormatInt(now.Milliseconds(), 10))
	h.Set("X-Kong-Proxy-Latency", "0")
	via := "1.1 " + g.via
	if prior := h.Get("Via"); prior != "" {
		via = prior + ", " + via
	}
	h.Set("Via", via)
	if h.Get("Server") == "" {
		h.Set("Server", g.server)
	}
}

// gatewayHeaders adds the headers of a gateway-made response.
func (g *Gateway) gatewayHeaders(ex *Exchange, h http.Header) {
	h.Set("X-Kong-Response-Latency", strconv.FormatInt(time.Since(ex.started).Milliseconds(), 10))
	h.Set("Server", g.server)
	h.Set("X-Kong-Request-Id", ex.requestID)
}

// proxyError maps a failed proxy attempt to its response (gateway.md §8.8):
// client-side failures are never reported as 502.
func (g *Gateway) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	ex := r.Context().Value(exchangeKey{}).(*Exchange)
	var pe *phaseError
	if errors.As(err, &pe) {
		g.writeError(w, ex, pe.err)
		return
	}
	if r.Context().Err() != nil {
		return // the client went away: nothing to write
	}
	var dnsErr *net.DNSError
	var netErr net.Error
	switch {
	case errors.As(err, &dnsErr):
		g.writeError(w, ex, &HTTPError{Status: http.StatusServiceUnavailable, Message: msgNameFailed, Err: err})
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &netErr) && netErr.Timeout():
		g.writeError(w, ex, &HTTPError{Status: http.StatusGatewayTimeout, Message: msgTimeout, Err: err})
	default:
		g.writeError(w, ex, &HTTPError{Status: http.StatusBadGateway, Message: msgBadUpstream, Err: err})
	}
}

// writeError answers a gateway error in the negotiated format.
func (g *Gateway) writeError(w http.ResponseWriter, ex *Exchange, err error) {
	ex.source = "error"
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
	if he.Err != nil && he.Status >= 500 {
		ex.logger.Error("request failed", "status", he.Status, "error", he.Err)
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
	g.gatewayHeaders(ex, h)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if ex.req.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}
