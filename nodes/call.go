package nodes

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-retryablehttp"

	"github.com/datakit-gateway/datakit/engine"
)

// Call node limits (hardening §2.4, §2.5).
const (
	callDefaultTimeout  = 60000 // ms
	callMaxTimeout      = 2147483646
	callMaxRetries      = 10
	callDialTimeout     = 5 * time.Second
	callTLSTimeout      = 10 * time.Second
	callMaxConnsPerHost = 256
	callMaxIdlePerHost  = 64
	callMaxIdle         = 256
	callIdleTimeout     = 60 * time.Second
	callMaxHeaderBytes  = 64 << 10
	callBackoffBase     = 100 * time.Millisecond
	callBackoffCap      = time.Second
)

// The call node's fields (spec §3.3), in order.
var (
	callInputs = []engine.Field{
		{Name: "body", Type: engine.TypeAny},
		{Name: "headers", Type: engine.TypeMap},
		{Name: "query", Type: engine.TypeMap},
		{Name: "url", Type: engine.TypeString},
		{Name: "http_proxy", Type: engine.TypeString},
		{Name: "https_proxy", Type: engine.TypeString},
		{Name: "proxy_auth_username", Type: engine.TypeString},
		{Name: "proxy_auth_password", Type: engine.TypeString},
	}
	callOutputs = []engine.Field{
		{Name: "body", Type: engine.TypeAny},
		{Name: "headers", Type: engine.TypeMap},
		{Name: "status", Type: engine.TypeNumber},
		{Name: "raw_body", Type: engine.TypeString},
	}
)

// callConfig is a call node's decoded attributes (spec §2.4).
type callConfig struct {
	url           *url.URL // nil when the attribute is unset
	method        string
	timeout       int64 // ms; 0 = no node limit
	sslVerify     bool
	sslServerName string
	retries       int
}

// callKind returns the call node type (spec §7.1): an HTTP request to a
// third-party API, run concurrently with the rest of the graph.
func callKind(deps Deps) engine.Kind {
	deps = deps.withDefaults()
	return engine.KindFunc(func(a *engine.Attrs) *engine.Decl {
		cfg := decodeCall(a)
		return &engine.Decl{
			IO:      engine.KeyInput | engine.KeyInputs | engine.KeyOutput | engine.KeyOutputs,
			Inputs:  slices.Clone(callInputs), // the engine owns what it is given
			Outputs: slices.Clone(callOutputs),
			Async:   true,
			Build: func(b *engine.BuildInfo) (engine.Node, error) {
				if err := callURLRequired(cfg.url != nil, b.Connected["url"]); err != nil {
					return nil, err
				}
				return newCallNode(cfg, deps, b), nil
			},
		}
	})
}

// callURLRequired is the load-time rule of §2.4: url is required unless the
// node's url input is connected. The engine reports the error at the node.
func callURLRequired(hasURL, urlConnected bool) error {
	if hasURL || urlConnected {
		return nil
	}
	return errors.New("url: required unless the url input is connected")
}

// decodeCall reads the attributes in their §2.4 order so errors come out in
// the order §11 prescribes.
func decodeCall(a *engine.Attrs) callConfig {
	cfg := callConfig{method: http.MethodGet}
	if v, ok := a.Raw("url"); ok {
		s, isStr := v.(string)
		if !isStr {
			a.Errorf("url", "expected string, got %s", engine.JSONType(v))
		} else if u, err := parseCallURL(s); err != nil {
			a.Errorf("url", "invalid URL %q: must be an absolute http or https URL", s)
		} else {
			cfg.url = u
		}
	}
	if v, ok := a.Raw("method"); ok {
		s, isStr := v.(string)
		switch {
		case !isStr:
			a.Errorf("method", "expected string, got %s", engine.JSONType(v))
		case !validMethod(s):
			a.Errorf("method", "invalid method %q: must be 1 to 32 uppercase letters", s)
		default:
			cfg.method = s
		}
	}
	cfg.timeout = a.Int("timeout", callDefaultTimeout, 0, callMaxTimeout)
	cfg.sslVerify = a.Bool("ssl_verify", true)
	cfg.sslServerName = a.String("ssl_server_name", "", 1, 255)
	cfg.retries = int(a.Int("retries", 0, 0, callMaxRetries))
	if cfg.retries > 0 && !retryableMethod(cfg.method) {
		a.Errorf("retries", "only allowed with GET, HEAD, OPTIONS, TRACE, PUT or DELETE, got %s", cfg.method)
		cfg.retries = 0
	}
	return cfg
}

func validMethod(m string) bool {
	if len(m) < 1 || len(m) > 32 {
		return false
	}
	for i := 0; i < len(m); i++ {
		if m[i] < 'A' || m[i] > 'Z' {
			return false
		}
	}
	return true
}

// retryableMethod reports whether a method is idempotent (hardening §2.5).
func retryableMethod(m string) bool {
	switch m {
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return true
	}
	return false
}

// parseCallURL accepts an absolute http or https URL with a host (any case
// of scheme) and a valid port.
func parseCallURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Opaque != "" || u.Hostname() == "" {
		return nil, errors.New("not an absolute http or https URL")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, errors.New("invalid port")
		}
	}
	u.Fragment, u.RawFragment = "", ""
	return u, nil
}

// redactURL shows a URL without userinfo, query and fragment, also when it
// does not parse: error messages and logs must not leak credentials.
func redactURL(s string) string {
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		s = s[:i]
	}
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return s
	}
	authority, path := rest, ""
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		authority, path = rest[:i], rest[i:]
	}
	if i := strings.LastIndexByte(authority, '@'); i >= 0 {
		authority = authority[i+1:]
	}
	return scheme + "://" + authority + path
}

// callNode is a compiled call node. It is immutable and safe for concurrent
// use: one client (and connection pool) serves every request of the node.
type callNode struct {
	name        string
	cfg         callConfig
	userAgent   string
	maxBody     int64
	bodyCT      string // content type of a string body straight from its source
	in          callInputIndex
	client      *retryablehttp.Client
	ownNetwork  bool // false when Deps.CallTransport stands in between
	destination func(u *url.URL, dynamic bool) error
	metrics     Metrics // nil: not recorded
}

var _ engine.Node = (*callNode)(nil)

// callInputIndex is the position of each input in Run's in slice.
type callInputIndex struct {
	body, headers, query, url, httpProxy, httpsProxy, proxyUser, proxyPass int
}

func newCallNode(cfg callConfig, deps Deps, b *engine.BuildInfo) *callNode {
	n := &callNode{
		name:        b.Name,
		cfg:         cfg,
		userAgent:   "datakit/" + deps.Version,
		maxBody:     deps.MaxCallBodyBytes,
		destination: deps.CallDestination,
		metrics:     nodeMetrics(b),
	}
	fields := b.InputFields
	if len(fields) == 0 {
		fields = callInputs
	}
	pos := func(name string) int {
		for i, f := range fields {
			if f.Name == name {
				return i
			}
		}
		return -1
	}
	n.in = callInputIndex{
		body: pos("body"), headers: pos("headers"), query: pos("query"), url: pos("url"),
		httpProxy: pos("http_proxy"), httpsProxy: pos("https_proxy"),
		proxyUser: pos("proxy_auth_username"), proxyPass: pos("proxy_auth_password"),
	}
	if n.in.body >= 0 && n.in.body < len(b.InputContentTypes) {
		n.bodyCT = b.InputContentTypes[n.in.body]
	}

	// Without a proxy input the transport need not ask for one: its Proxy
	// func would walk the request's whole context chain per call.
	mayProxy := b.Connected["http_proxy"] || b.Connected["https_proxy"]
	// Static and dynamic destinations get separate pools: the dial check of
	// a connection depends on it, and a connection dialled for a static URL
	// must never carry a request to a dynamic one.
	var rt http.RoundTripper = &callTransports{
		static:  newCallTransport(cfg, deps, false, false),
		dynamic: newCallTransport(cfg, deps, mayProxy, true),
	}
	n.ownNetwork = deps.CallTransport == nil
	if deps.CallTransport != nil {
		rt = deps.CallTransport(b.Name, rt)
	}
	logger := deps.Logger.With("node", b.Name)
	n.client = &retryablehttp.Client{
		HTTPClient: &http.Client{
			Transport: rt,
			// Never follow redirects (hardening §2.6): a 3xx is a non-2xx
			// answer and credentials never cross hosts.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		// The library logs METHOD URL with the query; we log retries ourselves.
		Logger:       nil,
		RetryWaitMin: callBackoffBase,
		RetryWaitMax: callBackoffCap,
		RetryMax:     cfg.retries,
		CheckRetry:   n.checkRetry,
		Backoff:      callBackoff,
		// Hand back the last response (or transport error) unchanged: a final
		// 503 is reported as such, not as "giving up after N attempts".
		ErrorHandler: func(resp *http.Response, err error, _ int) (*http.Response, error) { return resp, err },
		RequestLogHook: func(_ retryablehttp.Logger, _ *http.Request, attempt int) {
			if attempt > 0 {
				logger.Debug("call retry", "attempt", attempt)
			}
		},
	}
	return n
}

// callTransports are a node's two connection pools: for static
// destinations and for dynamic ones (a URL or proxy from an input), which
// the destination policy checks differently at every dial (hardening §2.7).
type callTransports struct{ static, dynamic *http.Transport }

// dynamicKey marks the context of a request to a dynamic destination.
type dynamicKey struct{}

func (t *callTransports) RoundTrip(req *http.Request) (*http.Response, error) {
	if dyn, _ := req.Context().Value(dynamicKey{}).(bool); dyn {
		return t.dynamic.RoundTrip(req)
	}
	return t.static.RoundTrip(req)
}

// CloseIdleConnections is found by http.Client.CloseIdleConnections.
func (t *callTransports) CloseIdleConnections() {
	t.static.CloseIdleConnections()
	t.dynamic.CloseIdleConnections()
}

// newCallTransport builds one of the node's connection pools (hardening
// §2.4); dynamic selects the dial check for destinations from inputs.
func newCallTransport(cfg callConfig, deps Deps, mayProxy, dynamic bool) *http.Transport {
	dialTimeout, tlsTimeout := callDialTimeout, callTLSTimeout
	if cfg.timeout > 0 {
		limit := time.Duration(cfg.timeout) * time.Millisecond
		dialTimeout, tlsTimeout = min(dialTimeout, limit), min(tlsTimeout, limit)
	}
	dialer := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second, Resolver: deps.CallResolver}
	dial := dialer.DialContext
	if control := deps.CallDialControl; control != nil {
		// The check needs the name dialled (host and *.domain rules), so each
		// dial gets its own copy of the dialer.
		dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				host = addr
			}
			check := control(host, dynamic)
			d := *dialer
			d.Control = func(network, address string, c syscall.RawConn) error {
				if err := check(network, address, c); err != nil {
					return &refusedError{err}
				}
				return nil
			}
			return d.DialContext(ctx, network, addr)
		}
	}
	// Proxies come only from the node's inputs, never the environment.
	var proxy func(*http.Request) (*url.URL, error)
	if mayProxy {
		proxy = proxyFromContext
	}
	return &http.Transport{
		Proxy:       proxy,
		DialContext: dial,
		TLSClientConfig: &tls.Config{
			MinVersion: tls.VersionTLS12,
			ServerName: cfg.sslServerName,
			// #nosec G402 -- ssl_verify: false is the configuration's explicit choice.
			InsecureSkipVerify: !cfg.sslVerify,
		},
		TLSHandshakeTimeout:    tlsTimeout,
		DisableCompression:     true, // no Accept-Encoding is added (§7.1)
		MaxConnsPerHost:        callMaxConnsPerHost,
		MaxIdleConns:           callMaxIdle,
		MaxIdleConnsPerHost:    callMaxIdlePerHost,
		IdleConnTimeout:        callIdleTimeout,
		MaxResponseHeaderBytes: callMaxHeaderBytes,
		ExpectContinueTimeout:  time.Second,
		ForceAttemptHTTP2:      true,
	}
}

// refusedError is a connection the destination policy refused at dial time:
// the node fails with the policy's error as is, never retried.
type refusedError struct{ err error }

func (e *refusedError) Error() string { return e.err.Error() }
func (e *refusedError) Unwrap() error { return e.err }

// CloseIdleConnections releases the node's idle connections; a plan that is
// replaced can call it instead of waiting for the idle timeout.
func (n *callNode) CloseIdleConnections() { n.client.HTTPClient.CloseIdleConnections() }

// Context keys of one run: the proxy chosen from the inputs and the retry
// state, read back by the transport and the retry policy.
type (
	proxyKey      struct{}
	retryStateKey struct{}
)

// retryState counts the tries of one run, so the retry policy can tell
// whether the next wait still fits in the timeout.
type retryState struct{ tries int }

func proxyFromContext(req *http.Request) (*url.URL, error) {
	u, _ := req.Context().Value(proxyKey{}).(*url.URL)
	return u, nil
}

// callBackoff waits 100 ms × 2^(try−1), capped at 1 s; Retry-After is
// ignored (hardening §2.5). attempt counts from 0 for the first retry.
func callBackoff(_, _ time.Duration, attempt int, _ *http.Response) time.Duration {
	if attempt >= 4 {
		return callBackoffCap
	}
	return min(callBackoffBase<<attempt, callBackoffCap)
}

// checkRetry retries transport failures before any response and 502, 503,
// 504, while the node's timeout leaves room for the wait. It never returns an
// error: the caller maps the last response or transport error itself.
func (n *callNode) checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil || n.cfg.retries == 0 {
		return false, nil
	}
	if err != nil {
		var certErr *tls.CertificateVerificationError
		var authErr x509.UnknownAuthorityError
		var refused *refusedError
		if errors.As(err, &certErr) || errors.As(err, &authErr) || errors.As(err, &refused) {
			return false, nil // neither a certificate nor a refusal gets better by asking again
		}
	} else if s := resp.StatusCode; s != http.StatusBadGateway && s != http.StatusServiceUnavailable && s != http.StatusGatewayTimeout {
		return false, nil
	}
	st, _ := ctx.Value(retryStateKey{}).(*retryState)
	if st == nil {
		return true, nil
	}
	wait := callBackoff(0, 0, st.tries, resp)
	st.tries++
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) <= wait {
		return false, nil
	}
	return true, nil
}

// errCallTimeout is the cause of the node's own deadline, told apart from
// the request's cancellation and the plan's deadline.
var errCallTimeout = errors.New("call timeout")

// Run sends the request of spec §7.1 and returns body, headers, status and
// raw_body.
func (n *callNode) Run(ctx context.Context, _ *engine.Env, in []any) ([]any, error) {
	input := func(i int) any {
		if i < 0 || i >= len(in) {
			return nil
		}
		return in[i]
	}
	u, dynamic, err := n.target(input(n.in.url))
	if err != nil {
		return nil, err
	}
	if q := input(n.in.query); q != nil {
		qm, ok := q.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("query: expected map, got %s", engine.JSONType(q))
		}
		u.RawQuery = engine.MergeURLQuery(u.RawQuery, qm)
		u.ForceQuery = false
	}
	if n.destination != nil {
		if err := n.destination(u, dynamic); err != nil {
			return nil, err
		}
	}
	h, host, body, err := n.request(input(n.in.headers), input(n.in.body))
	if err != nil {
		return nil, err
	}
	proxy, err := n.proxy(u, input)
	if err != nil {
		return nil, err
	}

	runCtx := ctx
	if n.cfg.timeout > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeoutCause(ctx, time.Duration(n.cfg.timeout)*time.Millisecond, errCallTimeout)
		defer cancel()
	}
	if proxy != nil {
		runCtx = context.WithValue(runCtx, proxyKey{}, proxy)
	}
	if dynamic || proxy != nil {
		runCtx = context.WithValue(runCtx, dynamicKey{}, true)
	}
	if n.cfg.retries > 0 {
		runCtx = context.WithValue(runCtx, retryStateKey{}, &retryState{})
	}
	// The request is made with its context: WithContext copies a stack value
	// once, where building it and then attaching the context copied twice.
	base := http.Request{Method: n.cfg.method, URL: u, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Host: host}
	req := base.WithContext(runCtx)

	var resp *http.Response
	if n.cfg.retries == 0 {
		resp, err = n.send(req, body)
	} else {
		resp, err = n.sendRetrying(req, body)
	}
	if n.metrics != nil {
		n.metrics.CallDone(n.name, callCode(resp, err))
	}
	if err != nil {
		if resp != nil {
			_ = resp.Body.Close()
		}
		return nil, n.failure(ctx, runCtx, err)
	}
	defer resp.Body.Close()
	return n.response(ctx, runCtx, req.Method, resp)
}

// callCode is a request's datakit_call_requests_total label: the status
// code when it is a valid one, else "error" — a bounded set whatever the
// peer sends.
func callCode(resp *http.Response, err error) string {
	if err != nil || resp.StatusCode < 100 || resp.StatusCode > 599 {
		return "error"
	}
	return strconv.Itoa(resp.StatusCode)
}

// send is one try, as go-retryablehttp makes it with RetryMax 0 and our
// CheckRetry and ErrorHandler (the same body, GetBody and Content-Length;
// idle connections closed after a failure), without its per-request wrapper,
// reader closures and hooks.
func (n *callNode) send(req *http.Request, body []byte) (*http.Response, error) {
	if len(body) > 0 {
		req.ContentLength = int64(len(body))
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	resp, err := n.client.HTTPClient.Do(req)
	if err != nil {
		n.client.HTTPClient.CloseIdleConnections()
	}
	return resp, err
}

// sendRetrying sends through go-retryablehttp, which repeats the request
// under the node's retry policy.
func (n *callNode) sendRetrying(req *http.Request, body []byte) (*http.Response, error) {
	rreq, err := retryablehttp.FromRequest(req)
	if err != nil {
		return nil, fmt.Errorf("request failed: %w", err)
	}
	if len(body) > 0 {
		// Buffered bytes: every try sends the identical body (hardening §2.5).
		if err := rreq.SetBody(body); err != nil {
			return nil, fmt.Errorf("request failed: %w", err)
		}
	}
	return n.client.Do(rreq)
}

// target selects and checks the URL (§7.1 step 1); dynamic reports that it
// came from the url input. The result is a fresh copy the caller may change.
func (n *callNode) target(v any) (*url.URL, bool, error) {
	if v == nil {
		if n.cfg.url == nil {
			return nil, false, errors.New("no URL: the url attribute is unset and the url input is null")
		}
		u := *n.cfg.url
		return &u, false, nil
	}
	s, ok := v.(string)
	if !ok {
		return nil, false, fmt.Errorf("url: expected string, got %s", engine.JSONType(v))
	}
	u, err := parseCallURL(s)
	if err != nil {
		return nil, false, fmt.Errorf("invalid URL %q", redactURL(s))
	}
	return u, true, nil
}

// request builds the request's header, Host and body (§7.1 step 2, §6.3):
// the headers are exactly the input's plus the User-Agent default.
func (n *callNode) request(headers, bodyIn any) (h http.Header, host string, body []byte, err error) {
	lines, err := engine.HeaderLines(headers)
	if err != nil {
		return nil, "", nil, err
	}
	h = make(http.Header, len(lines)+2)
	hasUA, hasCT := false, false
	for _, l := range lines {
		switch l.Name {
		case "Host":
			if l.Values == nil {
				continue
			}
			if len(l.Values) != 1 || !validHost(l.Values[0]) {
				return nil, "", nil, errors.New(`invalid value for header "Host"`)
			}
			host = l.Values[0]
			continue
		case "User-Agent":
			hasUA = true
		case "Content-Type":
			hasCT = true
		}
		// A nil entry stays in the map for User-Agent and Content-Type: the
		// graph asked for no such header, so no default is added either.
		if l.Values != nil || l.Name == "User-Agent" {
			h[l.Name] = l.Values
		}
	}
	if !hasUA {
		h["User-Agent"] = []string{n.userAgent}
	}

	ctype := h.Get("Content-Type")
	if obj, isObj := bodyIn.(map[string]any); isObj && isFormContentType(ctype) {
		body = []byte(engine.EncodeQuery(obj))
	} else {
		b, isJSON, err := engine.EncodeBody(bodyIn)
		if err != nil {
			return nil, "", nil, fmt.Errorf("invalid body: %w", err)
		}
		body = b
		if !hasCT {
			if isJSON {
				h["Content-Type"] = []string{"application/json"}
			} else if _, isStr := bodyIn.(string); isStr && n.bodyCT != "" {
				h["Content-Type"] = []string{n.bodyCT}
			}
		}
	}
	return h, host, body, nil
}

func isFormContentType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/x-www-form-urlencoded"
}

// validHost checks a Host header value: Go's client sanitises a CRLF in
// req.Host instead of refusing it (hardening §2.4), so refuse it here along
// with other bytes no authority contains.
func validHost(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f || c == '/' || c == '?' || c == '#' || c == '@' {
			return false
		}
	}
	return true
}

// proxy picks http_proxy for http URLs and https_proxy for https URLs and
// attaches the proxy credentials; nil means a direct connection.
func (n *callNode) proxy(target *url.URL, input func(int) any) (*url.URL, error) {
	field := n.in.httpProxy
	if target.Scheme == "https" {
		field = n.in.httpsProxy
	}
	raw, _ := input(field).(string)
	if raw == "" {
		return nil, nil // unset or empty: no proxy
	}
	p, err := parseProxyURL(raw)
	if err != nil {
		return nil, fmt.Errorf("invalid proxy URL %q", redactURL(raw))
	}
	user, hasUser := input(n.in.proxyUser).(string)
	pass, hasPass := input(n.in.proxyPass).(string)
	if hasUser || hasPass {
		// The transport turns these into Proxy-Authorization: Basic, on the
		// forwarded request or on the CONNECT, and pools connections per
		// credentials.
		p.User = url.UserPassword(user, pass)
	}
	if n.destination != nil {
		if err := n.destination(p, true); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// parseProxyURL accepts http://host[:port][/]: credentials come from the
// proxy_auth inputs only.
func parseProxyURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" || u.Opaque != "" || u.Hostname() == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("not an http://host:port URL")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, errors.New("invalid port")
		}
	}
	return &url.URL{Scheme: "http", Host: u.Host}, nil
}

// failure maps a transport error (§7.1 step 4): the request's own
// cancellation as is, the node's deadline as a timeout, anything else as
// request failed without the URL.
func (n *callNode) failure(ctx, runCtx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(context.Cause(runCtx), errCallTimeout) {
		return fmt.Errorf("request timed out after %d ms", n.cfg.timeout)
	}
	var oe *OfflineError
	if errors.As(err, &oe) {
		return oe
	}
	var refused *refusedError
	if errors.As(err, &refused) {
		return refused.err
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return fmt.Errorf("request failed: %w", err)
}

// OfflineError is returned by a Deps.CallTransport that answers for the node
// itself (an offline run without a mock for it): the node fails with its
// message as is.
type OfflineError struct{ Msg string }

func (e *OfflineError) Error() string { return e.Msg }

// response reads the whole body within the timeout and builds the outputs
// (§7.1 step 6).
func (n *callNode) response(ctx, runCtx context.Context, method string, resp *http.Response) ([]any, error) {
	if resp.ContentLength > n.maxBody {
		return nil, fmt.Errorf("response body exceeds limit of %d bytes", n.maxBody)
	}
	// HEAD, 204 and 304 answers carry no body even with a Content-Length.
	present := method != http.MethodHead && resp.StatusCode != http.StatusNoContent &&
		resp.StatusCode != http.StatusNotModified
	var data []byte
	var err error
	switch {
	case !present:
	case resp.ContentLength > 0 && n.ownNetwork:
		// Our transport enforces the announced length (a mock transport
		// need not): read it in one piece.
		data = make([]byte, resp.ContentLength)
		_, err = io.ReadFull(resp.Body, data)
	default:
		data, err = engine.ReadLimited(resp.Body, n.maxBody)
	}
	if err == engine.ErrTooLarge {
		// Closing before EOF drops the connection instead of pooling it.
		return nil, fmt.Errorf("response body exceeds limit of %d bytes", n.maxBody)
	}
	if err != nil {
		return nil, n.failure(ctx, runCtx, err)
	}
	headers := engine.HeaderMap(resp.Header)
	body, decodeErr := engine.DecodeBody(resp.Header.Get("Content-Type"), data, present)
	out := []any{body, headers, resp.StatusCode, string(data)}
	if decodeErr != nil {
		return out, fmt.Errorf("invalid JSON in response body: %w", decodeErr)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return out, fmt.Errorf("non-2XX response code: %d", resp.StatusCode)
	}
	return out, nil
}
