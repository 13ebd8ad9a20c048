// Package graphrun runs a Datakit plan offline (spec §12, `datakit graph
// run`): against a described client request, with call nodes answered by
// mocks and the upstream by a described response, always traced, never
// touching the network. The CLI and the Admin API's graph runner share it.
package graphrun

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/datakit-gateway/datakit/engine"
	"github.com/datakit-gateway/datakit/nodes"
)

// RequestID is the request id of offline runs.
const RequestID = "00000000000000000000000000000000"

// Request describes the client request (REQ.json); every member is optional.
type Request struct {
	Method     string          `json:"method"`
	Path       string          `json:"path"`
	Query      map[string]any  `json:"query"`
	URL        string          `json:"url"`
	Headers    map[string]any  `json:"headers"`
	Body       json.RawMessage `json:"body"`
	ClientIP   string          `json:"client_ip"`
	Properties map[string]any  `json:"properties"`
}

// Response describes a mocked call or upstream response (RESP.json). Error
// simulates a transport failure.
type Response struct {
	Status  int             `json:"status"`
	Headers map[string]any  `json:"headers"`
	Body    json.RawMessage `json:"body"`
	Error   string          `json:"error"`
}

// Options configure an offline run.
type Options struct {
	// Mocks answer call nodes by name; an unmocked call node fails.
	Mocks map[string]Response
	// Upstream is the upstream response; nil: 200, no headers, empty body.
	Upstream *Response
	// NoTiming prints trace times as 0.
	NoTiming bool
	// Version is datakit's version (User-Agent of calls).
	Version string
	// Live, when set, sends the call nodes without a mock to the network,
	// under its destination policy; nil keeps every run offline.
	Live *Live
}

// Live is the destination policy of live calls (hardening §2.7), the call
// node's CallDestination and CallDialControl.
type Live struct {
	Destination func(u *url.URL, dynamic bool) error
	DialControl func(host string, dynamic bool) func(network, address string, c syscall.RawConn) error
}

// Message is an HTTP message as the output shows it; bodies are strings.
type Message struct {
	Node    string         `json:"node,omitempty"`
	Method  string         `json:"method,omitempty"`
	URL     string         `json:"url,omitempty"`
	Status  int            `json:"status,omitempty"`
	Headers map[string]any `json:"headers"`
	Body    string         `json:"body"`
}

// Result is the output of `datakit graph run`, members in spec order.
type Result struct {
	Outcome        string         `json:"outcome"`
	Calls          []Message      `json:"calls"`
	ServiceRequest *Message       `json:"service_request"`
	Response       *Message       `json:"response"`
	Properties     map[string]any `json:"properties"`
	Trace          *engine.Trace  `json:"trace"`
}

// UsageError is a request description that cannot be run (exit status 2).
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// ConfigFromDocument returns the plugin configuration of a document holding
// either a configuration or a `datakit` plugin entity (`name` plus `config`).
func ConfigFromDocument(doc any) any {
	if m, ok := doc.(map[string]any); ok {
		if cfg, ok := m["config"]; ok {
			if _, named := m["name"]; named {
				return cfg
			}
		}
	}
	return doc
}

// Compile builds a plan whose call nodes are answered by mocks.
func Compile(doc any, opts Options, rec *Recorder) (*engine.Plan, error) {
	reg := engine.NewRegistry()
	deps := nodes.Deps{Version: opts.Version, CallTransport: rec.transport, Offline: true}
	if opts.Live != nil {
		deps.CallDestination, deps.CallDialControl = opts.Live.Destination, opts.Live.DialControl
	}
	nodes.Register(reg, deps)
	return engine.Compile(ConfigFromDocument(doc), reg, engine.Options{PluginID: "local"})
}

// Run compiles and runs the configuration doc against req.
func Run(ctx context.Context, doc any, req Request, opts Options) (*Result, error) {
	rec := &Recorder{mocks: opts.Mocks, live: opts.Live != nil}
	plan, err := Compile(doc, opts, rec)
	if err != nil {
		return nil, err
	}
	ex, err := newExchange(req, opts)
	if err != nil {
		return nil, err
	}
	clock := time.Now
	if opts.NoTiming {
		clock = func() time.Time { return time.Unix(0, 0) }
	}
	run := plan.NewRun(ex, engine.RunOptions{RequestID: RequestID, Trace: true, Clock: clock, Ordered: true})
	res := &Result{Calls: []Message{}, Properties: ex.props}
	out := run.Access(ctx)
	if out.Abort != nil {
		return nil, &UsageError{Msg: out.Abort.Error()}
	}
	switch {
	case out.Err != nil:
		res.Outcome, res.Response = "error", failureResponse(plan.Debug(), out.Err)
	case out.Exit != nil:
		res.Outcome, res.Response = "exit", exitMessage(out.Exit)
	default:
		res.Outcome = "proxied"
		res.ServiceRequest = ex.serviceRequest()
		ex.resp = ex.upstream
		out = run.Response(ctx)
		switch {
		case out.Abort != nil:
			return nil, &UsageError{Msg: out.Abort.Error()}
		case out.Err != nil:
			res.Outcome, res.Response = "error", failureResponse(plan.Debug(), out.Err)
		case out.Exit != nil:
			res.Outcome, res.Response = "exit", exitMessage(out.Exit)
		default:
			res.Response = ex.resp.message()
		}
	}
	res.Trace = run.Trace()
	res.Calls = rec.calls(res.Trace)
	res.redact(run)
	return res, nil
}

// redact masks credential headers everywhere in the output, as the trace
// does (spec §12).
func (r *Result) redact(run *engine.Run) {
	for i := range r.Calls {
		r.Calls[i].redact(run)
	}
	r.ServiceRequest.redact(run)
	r.Response.redact(run)
}

func (m *Message) redact(run *engine.Run) {
	if m == nil {
		return
	}
	if h, ok := run.Redact(map[string]any(m.Headers)).(map[string]any); ok {
		m.Headers = h
	}
	m.URL = run.Redact(m.URL).(string)
	m.Body = run.Redact(m.Body).(string)
}

// failureResponse is the 500 a failed plan answers (spec §5.4).
func failureResponse(debug bool, ne *engine.NodeError) *Message {
	return &Message{Status: http.StatusInternalServerError,
		Headers: map[string]any{"Content-Type": "application/json"},
		Body:    string(engine.FailureBody(ne, debug, RequestID))}
}

func exitMessage(r *engine.Response) *Message {
	h := http.Header{}
	for _, l := range r.Headers {
		h[l.Name] = l.Values
	}
	return &Message{Status: r.Status, Headers: engine.HeaderMap(h), Body: string(r.Body)}
}

// Recorder answers call nodes from mocks and records what they sent.
type Recorder struct {
	mocks map[string]Response
	live  bool // unmocked call nodes reach the network
	mu    sync.Mutex
	sent  map[string]Message
}

func (rec *Recorder) transport(node string, network http.RoundTripper) http.RoundTripper {
	if _, mocked := rec.mocks[node]; rec.live && !mocked {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			rec.record(node, req)
			return network.RoundTrip(req)
		})
	}
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		rec.record(node, req)
		mock, ok := rec.mocks[node]
		if !ok {
			return nil, &nodes.OfflineError{Msg: fmt.Sprintf("no mock for call node %q", node)}
		}
		if mock.Error != "" {
			return nil, errors.New(mock.Error)
		}
		return mock.httpResponse(req)
	})
}

// record keeps what node sends; the request keeps its body.
func (rec *Recorder) record(node string, req *http.Request) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	headers := req.Header.Clone()
	if req.Host != "" && req.Host != req.URL.Host {
		headers.Set("Host", req.Host)
	}
	rec.mu.Lock()
	if rec.sent == nil {
		rec.sent = map[string]Message{}
	}
	rec.sent[node] = Message{Node: node, Method: req.Method, URL: req.URL.String(), Headers: engine.HeaderMap(headers), Body: string(body)}
	rec.mu.Unlock()
}

// calls lists what call nodes sent, in dispatch order (their trace `run`
// events).
func (rec *Recorder) calls(tr *engine.Trace) []Message {
	out := []Message{}
	seen := map[string]bool{}
	for _, ev := range tr.Events {
		if ev.Action != "run" || ev.Type != "call" || seen[ev.Name] {
			continue
		}
		seen[ev.Name] = true
		if m, ok := rec.sent[ev.Name]; ok {
			out = append(out, m)
		}
	}
	return out
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// encodeBody returns a described body as bytes: a JSON string verbatim, any
// other value JSON-encoded (isJSON).
func encodeBody(raw json.RawMessage) (b []byte, isJSON bool, err error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, false, nil
	}
	v, err := engine.DecodeJSON(raw)
	if err != nil {
		return nil, false, err
	}
	if s, ok := v.(string); ok {
		return []byte(s), false, nil
	}
	b, err = engine.EncodeJSON(v)
	return b, true, err
}

func headerFromMap(m map[string]any) (http.Header, error) {
	h := http.Header{}
	lines, err := engine.HeaderLines(anyMap(m))
	if err != nil {
		return nil, err
	}
	for _, l := range lines {
		if l.Values != nil {
			h[l.Name] = l.Values
		}
	}
	// Host is a header of the described message, not an authority.
	for k, v := range m {
		if strings.EqualFold(k, "host") {
			if s, ok := v.(string); ok {
				h.Set("Host", s)
			}
		}
	}
	return h, nil
}

func anyMap(m map[string]any) any {
	if m == nil {
		return nil
	}
	return m
}

func (m Response) httpResponse(req *http.Request) (*http.Response, error) {
	h, err := headerFromMap(m.Headers)
	if err != nil {
		return nil, err
	}
	body, isJSON, err := encodeBody(m.Body)
	if err != nil {
		return nil, err
	}
	if isJSON && h.Get("Content-Type") == "" {
		h.Set("Content-Type", "application/json")
	}
	status := m.Status
	if status == 0 {
		status = http.StatusOK
	}
	return &http.Response{StatusCode: status, Status: fmt.Sprintf("%d %s", status, http.StatusText(status)),
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: h,
		Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)), Request: req}, nil
}

// target resolves the request's url/path/query into scheme, host, port,
// raw path and raw query.
func target(req Request) (u *url.URL, err error) {
	if req.URL != "" {
		if req.Path != "" || req.Query != nil {
			return nil, &UsageError{Msg: "request: url cannot be combined with path or query"}
		}
		if strings.HasPrefix(req.URL, "/") {
			u, err = url.ParseRequestURI(req.URL)
			if err == nil {
				u.Scheme, u.Host = "http", "localhost:8000"
			}
		} else {
			u, err = url.Parse(req.URL)
		}
		if err != nil || u.Host == "" && u.Scheme != "" {
			return nil, &UsageError{Msg: fmt.Sprintf("request: invalid url %q", req.URL)}
		}
		return u, nil
	}
	u = &url.URL{Scheme: "http", Host: "localhost:8000", Path: "/"}
	if req.Path != "" {
		p, perr := url.ParseRequestURI(req.Path)
		if perr != nil || p.RawQuery != "" {
			return nil, &UsageError{Msg: fmt.Sprintf("request: invalid path %q", req.Path)}
		}
		u.Path, u.RawPath = p.Path, p.RawPath
	}
	if req.Query != nil {
		u.RawQuery = engine.EncodeQuery(req.Query)
	}
	return u, nil
}

// Encode writes a result as indented JSON with object keys in byte order.
func Encode(r *Result) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}
