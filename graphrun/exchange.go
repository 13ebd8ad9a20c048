package graphrun

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"github.com/datakit-gateway/datakit/engine"
	"github.com/datakit-gateway/datakit/gateway/config"
)

// message is an HTTP message of an offline run.
type message struct {
	method string
	url    *url.URL
	status int
	header http.Header
	body   []byte
}

func (m *message) message() *Message {
	out := &Message{Method: m.method, Status: m.status, Headers: engine.HeaderMap(m.header), Body: string(m.body)}
	if m.url != nil {
		out.URL = m.url.String()
	}
	return out
}

// apply merges a graph's changes into the message (spec §4.1, §6).
func (m *message) apply(c *engine.Message) {
	engine.MergeHeaders(m.header, c.Headers)
	if c.Query != nil && m.url != nil {
		m.url.RawQuery = *c.Query
	}
	if c.Body != nil {
		m.body = c.Body.Bytes
		if c.Body.ContentType != "" {
			m.header.Set("Content-Type", c.Body.ContentType)
		}
		m.header.Del("Content-Encoding")
	}
	if host := m.header.Get("Host"); host != "" && m.url != nil {
		m.url.Host = host
	}
	m.header.Del("Content-Length")
}

// exchange implements engine.Exchange over a described request.
type exchange struct {
	client   *message
	rawPath  string
	port     int
	props    map[string]any // values written by SET nodes
	given    map[string]any // values GET reads
	sreq     *message
	upstream *message
	resp     *message
}

func newExchange(req Request, opts Options) (*exchange, error) {
	u, err := target(req)
	if err != nil {
		return nil, err
	}
	h, err := headerFromMap(req.Headers)
	if err != nil {
		return nil, &UsageError{Msg: "request: headers: " + err.Error()}
	}
	if h.Get("Host") == "" {
		h.Set("Host", u.Host)
	}
	body, isJSON, err := encodeBody(req.Body)
	if err != nil {
		return nil, &UsageError{Msg: "request: body: " + err.Error()}
	}
	if isJSON && h.Get("Content-Type") == "" {
		h.Set("Content-Type", "application/json")
	}
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	port := 80
	if u.Scheme == "https" {
		port = 443
	}
	if p := u.Port(); p != "" {
		port, _ = strconv.Atoi(p)
	}
	client := &message{method: method, url: u, header: h, body: body}
	ex := &exchange{client: client, rawPath: u.EscapedPath(), port: port, props: map[string]any{}, given: req.Properties}
	sreqURL := *u
	ex.sreq = &message{method: method, url: &sreqURL, header: h.Clone(), body: body}
	up := opts.Upstream
	if up == nil {
		up = &Response{}
	}
	resp, err := up.httpResponse(nil)
	if err != nil {
		return nil, &UsageError{Msg: "upstream: " + err.Error()}
	}
	upBody := make([]byte, resp.ContentLength)
	_, _ = resp.Body.Read(upBody)
	ex.upstream = &message{status: resp.StatusCode, header: resp.Header, body: upBody}
	return ex, nil
}

func (ex *exchange) Request(_ context.Context, field string) (any, error) {
	c := ex.client
	switch field {
	case "body":
		v, err := engine.DecodeBody(c.header.Get("Content-Type"), c.body, len(c.body) > 0)
		if err != nil {
			return nil, &UsageError{Msg: "request: body: invalid JSON under a JSON content type"}
		}
		return v, nil
	case "headers":
		return engine.HeaderMap(c.header), nil
	case "query":
		return engine.DecodeQuery(c.url.RawQuery), nil
	case "path":
		return config.NormalizePath(ex.rawPath), nil
	case "raw_path":
		return ex.rawPath, nil
	case "port":
		return ex.port, nil
	case "method":
		return c.method, nil
	case "scheme":
		return c.url.Scheme, nil
	case "version":
		return 1.1, nil
	}
	return nil, nil
}

func (ex *exchange) ServiceResponse(_ context.Context, field string) (any, error) {
	up := ex.upstream
	switch field {
	case "status":
		return up.status, nil
	case "headers":
		return engine.HeaderMap(up.header), nil
	case "body":
		v, err := engine.DecodeBody(up.header.Get("Content-Type"), up.body, len(up.body) > 0)
		if err != nil {
			return nil, errors.New("invalid JSON in upstream response body")
		}
		return v, nil
	case "raw_body":
		return string(up.body), nil
	}
	return nil, nil
}

func (ex *exchange) ApplyServiceRequest(m *engine.Message) error {
	ex.sreq.apply(m)
	return nil
}

func (ex *exchange) ApplyResponse(m *engine.Message) error {
	ex.resp.apply(m)
	return nil
}

func (ex *exchange) Property(name string) (any, error) { return ex.given[name], nil }

// SetProperty records the value; offline runs apply nothing, and a SET of
// kong.client.consumer looks nothing up (spec §12).
func (ex *exchange) SetProperty(name string, v any) (any, error) {
	ex.props[name] = v
	return v, nil
}

func (ex *exchange) serviceRequest() *Message {
	m := ex.sreq.message()
	m.Status = 0
	return m
}
