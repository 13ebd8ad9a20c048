package nodes

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/datakit-gateway/datakit/engine"
)

const callLoc = `nodes[1] "CALL" (call)`

// newCall decodes attrs and builds the node as the engine would, with every
// input field connected.
func newCall(t testing.TB, deps Deps, attrs map[string]any, contentTypes ...string) *callNode {
	t.Helper()
	decl, errs := engine.DecodeAttrs(callLoc, attrs, callKind(deps))
	if len(errs) > 0 {
		t.Fatalf("DecodeAttrs(%v) = %v", attrs, errs)
	}
	connected := map[string]bool{}
	for _, f := range decl.Inputs {
		connected[f.Name] = true
	}
	n, err := decl.Build(&engine.BuildInfo{
		Name: "CALL", Index: 1, InputConnected: true, Connected: connected,
		InputFields: decl.Inputs, InputContentTypes: contentTypes,
	})
	if err != nil {
		t.Fatalf("Build = %v", err)
	}
	cn := n.(*callNode)
	t.Cleanup(cn.CloseIdleConnections)
	return cn
}

// callIn lays out inputs by name in the call node's field order.
func callIn(m map[string]any) []any {
	in := make([]any, len(callInputs))
	for i, f := range callInputs {
		in[i] = m[f.Name]
	}
	return in
}

// seen is one request a test server received.
type seen struct {
	Method, URI, Host string
	Header            http.Header
	Body              string
}

// recorder is a test server that records requests and answers with handle.
type recorder struct {
	mu   sync.Mutex
	reqs []seen
	srv  *httptest.Server
}

func newRecorder(t testing.TB, handle func(w http.ResponseWriter, r *http.Request, n int)) *recorder {
	t.Helper()
	rec := &recorder{}
	rec.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, seen{r.Method, r.RequestURI, r.Host, r.Header.Clone(), string(body)})
		n := len(rec.reqs)
		rec.mu.Unlock()
		if handle == nil {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"ok":true}`)
			return
		}
		handle(w, r, n)
	}))
	t.Cleanup(rec.srv.Close)
	return rec
}

func (r *recorder) requests() []seen {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]seen(nil), r.reqs...)
}

func (r *recorder) only(t testing.TB) seen {
	t.Helper()
	reqs := r.requests()
	if len(reqs) != 1 {
		t.Fatalf("server got %d requests, want 1", len(reqs))
	}
	return reqs[0]
}

func testDeps() Deps { return Deps{Version: "test"} }

func TestCallDecl(t *testing.T) {
	decl, errs := engine.DecodeAttrs(callLoc, map[string]any{"url": "http://x.test"}, callKind(testDeps()))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if decl.IO != engine.KeyInput|engine.KeyInputs|engine.KeyOutput|engine.KeyOutputs || !decl.Async {
		t.Errorf("IO = %v, Async = %v", decl.IO, decl.Async)
	}
	names := func(fs []engine.Field) string {
		var s []string
		for _, f := range fs {
			s = append(s, f.Name+" "+f.Type.String())
		}
		return strings.Join(s, ", ")
	}
	if got, want := names(decl.Inputs), "body any, headers map, query map, url string, http_proxy string, https_proxy string, proxy_auth_username string, proxy_auth_password string"; got != want {
		t.Errorf("Inputs = %s, want %s", got, want)
	}
	if got, want := names(decl.Outputs), "body any, headers map, status number, raw_body string"; got != want {
		t.Errorf("Outputs = %s, want %s", got, want)
	}
}

func TestCallAttributes(t *testing.T) {
	tests := []struct {
		name  string
		attrs map[string]any
		want  []string
		cfg   *callConfig // checked when non-nil
	}{
		{name: "defaults", attrs: map[string]any{"url": "http://api.test/x"},
			cfg: &callConfig{method: "GET", timeout: 60000, sslVerify: true}},
		{name: "all set", attrs: map[string]any{"url": "HTTPS://api.test:8443/x?y=1", "method": "PUT", "timeout": 0,
			"ssl_verify": false, "ssl_server_name": "api.test", "retries": 10},
			cfg: &callConfig{method: "PUT", timeout: 0, sslVerify: false, sslServerName: "api.test", retries: 10}},
		{name: "integral float timeout", attrs: map[string]any{"url": "http://a.test", "timeout": 2147483646.0},
			cfg: &callConfig{method: "GET", timeout: 2147483646, sslVerify: true}},
		{name: "url absent is not a decode error", attrs: map[string]any{},
			cfg: &callConfig{method: "GET", timeout: 60000, sslVerify: true}},
		{name: "ftp URL", attrs: map[string]any{"url": "ftp://x"},
			want: []string{callLoc + `: url: invalid URL "ftp://x": must be an absolute http or https URL`}},
		{name: "relative URL", attrs: map[string]any{"url": "/path"},
			want: []string{callLoc + `: url: invalid URL "/path": must be an absolute http or https URL`}},
		{name: "no host", attrs: map[string]any{"url": "http:///path"},
			want: []string{callLoc + `: url: invalid URL "http:///path": must be an absolute http or https URL`}},
		{name: "opaque", attrs: map[string]any{"url": "http:api.test"},
			want: []string{callLoc + `: url: invalid URL "http:api.test": must be an absolute http or https URL`}},
		{name: "empty URL", attrs: map[string]any{"url": ""},
			want: []string{callLoc + `: url: invalid URL "": must be an absolute http or https URL`}},
		{name: "bad port", attrs: map[string]any{"url": "http://a.test:70000/"},
			want: []string{callLoc + `: url: invalid URL "http://a.test:70000/": must be an absolute http or https URL`}},
		{name: "URL not a string", attrs: map[string]any{"url": 5},
			want: []string{callLoc + `: url: expected string, got number`}},
		{name: "lowercase method", attrs: map[string]any{"url": "http://a.test", "method": "post"},
			want: []string{callLoc + `: method: invalid method "post": must be 1 to 32 uppercase letters`}},
		{name: "empty method", attrs: map[string]any{"url": "http://a.test", "method": ""},
			want: []string{callLoc + `: method: invalid method "": must be 1 to 32 uppercase letters`}},
		{name: "long method", attrs: map[string]any{"url": "http://a.test", "method": strings.Repeat("A", 33)},
			want: []string{callLoc + `: method: invalid method "` + strings.Repeat("A", 33) + `": must be 1 to 32 uppercase letters`}},
		{name: "timeout range", attrs: map[string]any{"url": "http://a.test", "timeout": -1},
			want: []string{callLoc + `: timeout: must be between 0 and 2147483646, got -1`}},
		{name: "timeout too big", attrs: map[string]any{"url": "http://a.test", "timeout": 2147483647},
			want: []string{callLoc + `: timeout: must be between 0 and 2147483646, got 2147483647`}},
		{name: "timeout fraction", attrs: map[string]any{"url": "http://a.test", "timeout": 1.5},
			want: []string{callLoc + `: timeout: expected integer, got number`}},
		{name: "ssl_verify type", attrs: map[string]any{"url": "http://a.test", "ssl_verify": "yes"},
			want: []string{callLoc + `: ssl_verify: expected boolean, got string`}},
		{name: "retries range", attrs: map[string]any{"url": "http://a.test", "retries": 11},
			want: []string{callLoc + `: retries: must be between 0 and 10, got 11`}},
		{name: "retries with POST", attrs: map[string]any{"url": "http://a.test", "method": "POST", "retries": 2},
			want: []string{callLoc + `: retries: only allowed with GET, HEAD, OPTIONS, TRACE, PUT or DELETE, got POST`}},
		{name: "zero retries with POST", attrs: map[string]any{"url": "http://a.test", "method": "POST", "retries": 0},
			cfg: &callConfig{method: "POST", timeout: 60000, sslVerify: true}},
		{name: "unknown field", attrs: map[string]any{"url": "http://a.test", "follow_redirects": true},
			want: []string{callLoc + `: follow_redirects: unknown field`}},
		{name: "errors in attribute order",
			attrs: map[string]any{"retries": 1, "method": "PATCH", "url": "gopher://x", "timeout": "1"},
			want: []string{
				callLoc + `: url: invalid URL "gopher://x": must be an absolute http or https URL`,
				callLoc + `: timeout: expected integer, got string`,
				callLoc + `: retries: only allowed with GET, HEAD, OPTIONS, TRACE, PUT or DELETE, got PATCH`,
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			_, errs := engine.DecodeAttrs(callLoc, tt.attrs, callKind(testDeps()))
			for _, e := range errs {
				got = append(got, e.Error())
			}
			var cfg callConfig
			engine.DecodeAttrs(callLoc, tt.attrs, engine.KindFunc(func(a *engine.Attrs) *engine.Decl {
				cfg = decodeCall(a)
				return &engine.Decl{}
			}))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("decode %v = %q, want %q", tt.attrs, got, tt.want)
			}
			if tt.cfg != nil {
				cfg.url = nil
				if !reflect.DeepEqual(cfg, *tt.cfg) {
					t.Errorf("decode %v = %+v, want %+v", tt.attrs, cfg, *tt.cfg)
				}
			}
		})
	}
}

func TestCallURLRequired(t *testing.T) {
	if err := callURLRequired(false, false); err == nil || err.Error() != "url: required unless the url input is connected" {
		t.Errorf("callURLRequired(false, false) = %v", err)
	}
	for _, c := range [][2]bool{{true, false}, {false, true}, {true, true}} {
		if err := callURLRequired(c[0], c[1]); err != nil {
			t.Errorf("callURLRequired(%v, %v) = %v, want nil", c[0], c[1], err)
		}
	}
	decl, _ := engine.DecodeAttrs(callLoc, map[string]any{}, callKind(testDeps()))
	if _, err := decl.Build(&engine.BuildInfo{Name: "CALL", InputFields: decl.Inputs}); err == nil {
		t.Errorf("Build without url and without inputs = nil error")
	}
}

// Spec §13.13 #5.
func TestCallReferenceExample(t *testing.T) {
	rec := newRecorder(t, nil)
	n := newCall(t, testDeps(), map[string]any{"url": rec.srv.URL, "method": "POST"})
	out, err := n.Run(context.Background(), nil, callIn(map[string]any{
		"headers": map[string]any{"X-Foo": "123", "X-Multi": []any{"first", "second"}},
		"query":   map[string]any{"a": true, "b": 10},
		"body":    map[string]any{"data": "my request body data"},
	}))
	if err != nil {
		t.Fatal(err)
	}
	r := rec.only(t)
	if r.Method != "POST" || r.URI != "/?a=true&b=10" {
		t.Errorf("request line = %s %s, want POST /?a=true&b=10", r.Method, r.URI)
	}
	if got := r.Header["X-Foo"]; !reflect.DeepEqual(got, []string{"123"}) {
		t.Errorf("X-Foo = %q", got)
	}
	if got := r.Header["X-Multi"]; !reflect.DeepEqual(got, []string{"first", "second"}) {
		t.Errorf("X-Multi = %q, want two lines", got)
	}
	if got := r.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q", got)
	}
	if r.Body != `{"data":"my request body data"}` {
		t.Errorf("body = %q", r.Body)
	}
	if got := r.Header.Get("User-Agent"); got != "datakit/test" {
		t.Errorf("User-Agent = %q", got)
	}
	if _, ok := r.Header["Accept-Encoding"]; ok {
		t.Errorf("Accept-Encoding sent: %q", r.Header["Accept-Encoding"])
	}
	want := []any{map[string]any{"ok": true}, nil, 200, `{"ok":true}`}
	if h, ok := out[1].(map[string]any); !ok || h["Content-Type"] != "application/json" {
		t.Errorf("headers output = %#v", out[1])
	}
	out[1] = nil
	if !reflect.DeepEqual(out, want) {
		t.Errorf("outputs = %#v, want %#v", out, want)
	}
}

// Spec §13.1: the token request with a form-encoded object body.
func TestCallTokenRequest(t *testing.T) {
	rec := newRecorder(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"token_type":"Bearer","access_token":"abc"}`)
	})
	n := newCall(t, testDeps(), map[string]any{"url": rec.srv.URL + "/auth-token", "method": "POST"})
	headers := map[string]any{"Content-Type": "application/x-www-form-urlencoded", "X-Api-Key": "K"}
	for _, tc := range []struct {
		body any
		want string
	}{
		{map[string]any{"grant_type": "client_credentials", "client_id": "my_client_id"}, "client_id=my_client_id&grant_type=client_credentials"},
		{"grant_type=client_credentials", "grant_type=client_credentials"}, // the 3.11 form: verbatim
	} {
		out, err := n.Run(context.Background(), nil, callIn(map[string]any{"headers": headers, "body": tc.body}))
		if err != nil {
			t.Fatal(err)
		}
		if want := map[string]any{"token_type": "Bearer", "access_token": "abc"}; !reflect.DeepEqual(out[0], want) {
			t.Errorf("body output = %#v, want %#v", out[0], want)
		}
		reqs := rec.requests()
		r := reqs[len(reqs)-1]
		if r.Method != "POST" || r.URI != "/auth-token" || r.Body != tc.want {
			t.Errorf("request = %s %s %q, want POST /auth-token %q", r.Method, r.URI, r.Body, tc.want)
		}
		wantHeader := http.Header{ // exactly these: no client header, no Accept-Encoding
			"Content-Type":   {"application/x-www-form-urlencoded"},
			"X-Api-Key":      {"K"},
			"User-Agent":     {"datakit/test"},
			"Content-Length": {fmt.Sprint(len(tc.want))},
		}
		if !reflect.DeepEqual(r.Header, wantHeader) {
			t.Errorf("headers = %v, want exactly %v", r.Header, wantHeader)
		}
	}
}

func TestCallURLAndQuery(t *testing.T) {
	rec := newRecorder(t, nil)
	tests := []struct {
		name    string
		attrURL string
		in      map[string]any
		wantURI string
		wantErr string
	}{
		{name: "attribute", attrURL: rec.srv.URL + "/a", wantURI: "/a"},
		{name: "input wins", attrURL: rec.srv.URL + "/a", in: map[string]any{"url": rec.srv.URL + "/b"}, wantURI: "/b"},
		{name: "input only", in: map[string]any{"url": rec.srv.URL + "/c?x=1"}, wantURI: "/c?x=1"},
		{name: "scheme in any case", in: map[string]any{"url": strings.Replace(rec.srv.URL, "http", "HTTP", 1) + "/u"}, wantURI: "/u"},
		{name: "13.2 double slash path", in: map[string]any{"url": rec.srv.URL + "//auth-token"}, wantURI: "//auth-token"},
		{name: "neither", wantErr: "no URL: the url attribute is unset and the url input is null"},
		{name: "invalid input URL without userinfo and query",
			in: map[string]any{"url": "ftp://user:secret@host.test/p?token=s3cr3t#f"}, wantErr: `invalid URL "ftp://host.test/p"`},
		{name: "unparsable input URL", in: map[string]any{"url": "http://u:p@[::1/x?q"}, wantErr: `invalid URL "http://[::1/x"`},
		{name: "empty input URL", in: map[string]any{"url": ""}, wantErr: `invalid URL ""`},
		{name: "query merged", attrURL: rec.srv.URL + "/p?keep=1&a=old&z=%7e",
			in: map[string]any{"query": map[string]any{"a": "new value", "n": nil}}, wantURI: "/p?keep=1&z=%7e&a=new%20value&n"},
		{name: "empty query map keeps the URL query", attrURL: rec.srv.URL + "/p?keep=1",
			in: map[string]any{"query": map[string]any{}}, wantURI: "/p?keep=1"},
		{name: "fragment not sent", attrURL: rec.srv.URL + "/p#frag", wantURI: "/p"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			attrs := map[string]any{}
			if tt.attrURL != "" {
				attrs["url"] = tt.attrURL
			}
			n := newCall(t, testDeps(), attrs)
			before := len(rec.requests())
			_, err := n.Run(context.Background(), nil, callIn(tt.in))
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("Run error = %v, want %q", err, tt.wantErr)
				}
				if len(rec.requests()) != before {
					t.Errorf("a request was sent despite the error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			reqs := rec.requests()
			if got := reqs[len(reqs)-1].URI; got != tt.wantURI {
				t.Errorf("request URI = %q, want %q", got, tt.wantURI)
			}
		})
	}
}

func TestCallRequestHeadersAndBody(t *testing.T) {
	rec := newRecorder(t, nil)
	tests := []struct {
		name     string
		in       map[string]any
		ct       string // InputContentTypes of body
		check    func(t *testing.T, r seen)
		wantErr  string
		noRecord bool
	}{
		{name: "only wired headers, UA default", in: map[string]any{}, check: func(t *testing.T, r seen) {
			want := http.Header{"User-Agent": {"datakit/test"}, "Content-Length": {"0"}} // POST framing
			if !reflect.DeepEqual(r.Header, want) {
				t.Errorf("headers = %v, want %v", r.Header, want)
			}
		}},
		{name: "User-Agent given", in: map[string]any{"headers": map[string]any{"user-agent": "mine"}}, check: func(t *testing.T, r seen) {
			if got := r.Header["User-Agent"]; !reflect.DeepEqual(got, []string{"mine"}) {
				t.Errorf("User-Agent = %q", got)
			}
		}},
		{name: "User-Agent null sends none", in: map[string]any{"headers": map[string]any{"User-Agent": nil}}, check: func(t *testing.T, r seen) {
			if got, ok := r.Header["User-Agent"]; ok {
				t.Errorf("User-Agent = %q, want none", got)
			}
		}},
		{name: "13.6 null omitted", in: map[string]any{"headers": map[string]any{"X-Ignored": nil, "X-Add-Me": "added"}}, check: func(t *testing.T, r seen) {
			if _, ok := r.Header["X-Ignored"]; ok || r.Header.Get("X-Add-Me") != "added" {
				t.Errorf("headers = %v", r.Header)
			}
		}},
		{name: "hop-by-hop and framing dropped", in: map[string]any{"headers": map[string]any{
			"Connection": "x-secret", "Proxy-Authorization": "Basic Zm9vOmJhcg==", "Content-Length": "99",
			"Transfer-Encoding": "chunked", "X-Secret": "kept", "Upgrade": "h2c"}, "body": "abc"},
			check: func(t *testing.T, r seen) {
				for _, h := range []string{"Proxy-Authorization", "Upgrade", "Transfer-Encoding"} {
					if _, ok := r.Header[h]; ok {
						t.Errorf("%s sent", h)
					}
				}
				if r.Body != "abc" || r.Header.Get("Content-Length") != "3" || r.Header.Get("X-Secret") != "kept" {
					t.Errorf("body %q, headers %v", r.Body, r.Header)
				}
			}},
		{name: "Host sets the authority", in: map[string]any{"headers": map[string]any{"host": "api.example.test"}}, check: func(t *testing.T, r seen) {
			if r.Host != "api.example.test" {
				t.Errorf("Host = %q", r.Host)
			}
		}},
		{name: "Host with CRLF", in: map[string]any{"headers": map[string]any{"Host": "a.test\r\nX-Injected: 1"}},
			wantErr: `invalid value for header "Host"`, noRecord: true},
		{name: "Host with space", in: map[string]any{"headers": map[string]any{"Host": "a.test x"}},
			wantErr: `invalid value for header "Host"`, noRecord: true},
		{name: "two Host values", in: map[string]any{"headers": map[string]any{"Host": []any{"a.test", "b.test"}}},
			wantErr: `invalid value for header "Host"`, noRecord: true},
		{name: "invalid header name", in: map[string]any{"headers": map[string]any{"X Bad": "1"}},
			wantErr: `invalid header name "X Bad"`, noRecord: true},
		{name: "invalid header value", in: map[string]any{"headers": map[string]any{"X-A": "1\nX-Injected: 1"}},
			wantErr: `invalid value for header "X-A"`, noRecord: true},
		{name: "headers not a map", in: map[string]any{"headers": "oops"},
			wantErr: `expected map, got string`, noRecord: true},
		{name: "JSON body keeps a given Content-Type", in: map[string]any{"headers": map[string]any{"content-type": "application/vnd.api+json"}, "body": []any{1, "x"}},
			check: func(t *testing.T, r seen) {
				if r.Header.Get("Content-Type") != "application/vnd.api+json" || r.Body != `[1,"x"]` {
					t.Errorf("Content-Type %q body %q", r.Header.Get("Content-Type"), r.Body)
				}
			}},
		{name: "Content-Type null: JSON body without one", in: map[string]any{"headers": map[string]any{"Content-Type": nil}, "body": 5},
			check: func(t *testing.T, r seen) {
				if _, ok := r.Header["Content-Type"]; ok || r.Body != "5" {
					t.Errorf("Content-Type %q body %q", r.Header["Content-Type"], r.Body)
				}
			}},
		{name: "string body: no Content-Type", in: map[string]any{"body": "plain"}, check: func(t *testing.T, r seen) {
			if _, ok := r.Header["Content-Type"]; ok || r.Body != "plain" {
				t.Errorf("Content-Type %q body %q", r.Header["Content-Type"], r.Body)
			}
		}},
		{name: "string from json_to_xml", in: map[string]any{"body": "<a/>"}, ct: "application/xml", check: func(t *testing.T, r seen) {
			if r.Header.Get("Content-Type") != "application/xml" || r.Body != "<a/>" {
				t.Errorf("Content-Type %q body %q", r.Header.Get("Content-Type"), r.Body)
			}
		}},
		{name: "form with params, object body", in: map[string]any{
			"headers": map[string]any{"Content-Type": "Application/X-WWW-Form-Urlencoded; charset=utf-8"},
			"body":    map[string]any{"a": "x y", "b": []any{1, 2}, "c": map[string]any{"d": true}}},
			check: func(t *testing.T, r seen) {
				if r.Body != "a=x%20y&b=1&b=2&c=%7B%22d%22%3Atrue%7D" {
					t.Errorf("body %q", r.Body)
				}
			}},
		{name: "form content type, array body is JSON", in: map[string]any{
			"headers": map[string]any{"Content-Type": "application/x-www-form-urlencoded"}, "body": []any{1}},
			check: func(t *testing.T, r seen) {
				if r.Body != "[1]" || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
					t.Errorf("body %q", r.Body)
				}
			}},
		{name: "null body", in: map[string]any{"body": nil}, check: func(t *testing.T, r seen) {
			if r.Body != "" || r.Header.Get("Content-Type") != "" {
				t.Errorf("body %q headers %v", r.Body, r.Header)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cts []string
			if tt.ct != "" {
				cts = []string{tt.ct}
			}
			n := newCall(t, testDeps(), map[string]any{"url": rec.srv.URL, "method": "POST"}, cts...)
			before := len(rec.requests())
			_, err := n.Run(context.Background(), nil, callIn(tt.in))
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("Run error = %v, want %q", err, tt.wantErr)
				}
				if len(rec.requests()) != before {
					t.Errorf("a request was sent despite the error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			reqs := rec.requests()
			tt.check(t, reqs[len(reqs)-1])
		})
	}
}

func TestCallResponse(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if ct := q.Get("ct"); ct != "" {
			w.Header().Set("Content-Type", ct)
		}
		w.Header()["X-Multi"] = []string{"a", "b"}
		switch q.Get("case") {
		case "redirect":
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
			return
		case "elsewhere":
			t.Errorf("redirect was followed")
		case "gzip":
			w.Header().Set("Content-Encoding", "gzip")
		}
		if s := q.Get("status"); s != "" {
			var code int
			fmt.Sscan(s, &code)
			w.WriteHeader(code)
		}
		io.WriteString(w, q.Get("body"))
	}))
	t.Cleanup(srv.Close)
	n := newCall(t, testDeps(), map[string]any{})
	n2 := newCall(t, testDeps(), map[string]any{"method": "HEAD"})
	tests := []struct {
		name    string
		node    *callNode
		query   string
		body    any
		status  int
		raw     string
		wantErr string
	}{
		{name: "JSON", query: "ct=application/json&body=" + url.QueryEscape(`{"a":[1,2.5]}`), body: map[string]any{"a": []any{1, 2.5}}, status: 200, raw: `{"a":[1,2.5]}`},
		{name: "JSON suffix with params", query: "ct=" + url.QueryEscape("application/problem+JSON; charset=utf-8") + "&body=7", body: 7, status: 200, raw: "7"},
		{name: "empty JSON is null", query: "ct=application/json", body: nil, status: 200, raw: ""},
		{name: "text kept raw", query: "ct=text/plain&body=" + url.QueryEscape(`{"a":1}`), body: `{"a":1}`, status: 200, raw: `{"a":1}`},
		{name: "empty text is empty string", query: "ct=text/plain", body: "", status: 200, raw: ""},
		{name: "204 has no body", query: "status=204", body: nil, status: 204, raw: ""},
		{name: "HEAD has no body", node: n2, query: "ct=text/plain&body=x", body: nil, status: 200, raw: ""},
		{name: "invalid JSON", query: "ct=application/json&body=" + url.QueryEscape(`{"a":`), body: nil, status: 200, raw: `{"a":`,
			wantErr: "invalid JSON in response body: unexpected EOF"},
		{name: "403", query: "status=403&ct=application/json&body=" + url.QueryEscape(`{"e":1}`), body: map[string]any{"e": 1}, status: 403, raw: `{"e":1}`,
			wantErr: "non-2XX response code: 403"},
		{name: "503 without retries", query: "status=503&ct=text/plain&body=busy", body: "busy", status: 503, raw: "busy",
			wantErr: "non-2XX response code: 503"},
		{name: "redirect not followed", query: "case=redirect", status: 302, wantErr: "non-2XX response code: 302"},
		{name: "compressed body not decompressed", query: "case=gzip&ct=text/plain&body=%1F%8B%08", body: "\x1f\x8b\x08", status: 200, raw: "\x1f\x8b\x08"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			node := tt.node
			if node == nil {
				node = n
			}
			out, err := node.Run(context.Background(), nil, callIn(map[string]any{"url": srv.URL + "/?" + tt.query}))
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr) {
				t.Fatalf("Run error = %v, want %q", err, tt.wantErr)
			}
			if len(out) != 4 {
				t.Fatalf("outputs = %#v, want 4 values", out)
			}
			if tt.name == "redirect not followed" {
				if h := out[1].(map[string]any); h["Location"] != "/elsewhere" {
					t.Errorf("Location = %#v", h["Location"])
				}
				return
			}
			if !reflect.DeepEqual(out[0], tt.body) || out[2] != tt.status || out[3] != tt.raw {
				t.Errorf("outputs = %#v, want body %#v status %d raw %q", out, tt.body, tt.status, tt.raw)
			}
			if h := out[1].(map[string]any); !reflect.DeepEqual(h["X-Multi"], []any{"a", "b"}) {
				t.Errorf("headers output = %#v", h)
			}
		})
	}
}

func TestCallBodyLimit(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := strings.Repeat("x", len(r.URL.Query().Get("n")))
		if r.URL.Query().Get("chunked") != "" {
			w.(http.Flusher).Flush() // no Content-Length: the cap is found while reading
		}
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	n := newCall(t, Deps{MaxCallBodyBytes: 16}, map[string]any{})
	for _, tc := range []struct {
		query   string
		wantErr string
	}{
		{"n=" + strings.Repeat("1", 16), ""},
		{"n=" + strings.Repeat("1", 17), "response body exceeds limit of 16 bytes"},
		{"chunked=1&n=" + strings.Repeat("1", 16), ""},
		{"chunked=1&n=" + strings.Repeat("1", 17), "response body exceeds limit of 16 bytes"},
	} {
		out, err := n.Run(context.Background(), nil, callIn(map[string]any{"url": srv.URL + "/?" + tc.query}))
		if tc.wantErr == "" {
			if err != nil || len(out[3].(string)) != 16 {
				t.Errorf("Run(%s) = %v, %v", tc.query, out, err)
			}
		} else if err == nil || err.Error() != tc.wantErr {
			t.Errorf("Run(%s) error = %v, want %q", tc.query, err, tc.wantErr)
		}
	}
	if d := (Deps{}).withDefaults(); d.MaxCallBodyBytes != 10<<20 {
		t.Errorf("default MaxCallBodyBytes = %d", d.MaxCallBodyBytes)
	}
}

func TestCallResponseHeaderLimit(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Big", strings.Repeat("a", 70<<10))
	}))
	t.Cleanup(srv.Close)
	n := newCall(t, testDeps(), map[string]any{"url": srv.URL})
	_, err := n.Run(context.Background(), nil, callIn(nil))
	if err == nil || !strings.HasPrefix(err.Error(), "request failed: ") {
		t.Fatalf("Run error = %v, want request failed", err)
	}
}

func TestCallBackoff(t *testing.T) {
	want := []time.Duration{100, 200, 400, 800, 1000, 1000, 1000, 1000, 1000, 1000}
	for i, w := range want {
		if got := callBackoff(0, 0, i, &http.Response{Header: http.Header{"Retry-After": {"999999"}}}); got != w*time.Millisecond {
			t.Errorf("callBackoff(try %d) = %v, want %v", i+1, got, w*time.Millisecond)
		}
	}
	if got := callBackoff(0, 0, 62, nil); got != time.Second {
		t.Errorf("callBackoff(63) = %v", got)
	}
}

func TestCallRetries(t *testing.T) {
	tests := []struct {
		name      string
		method    string
		retries   int
		statuses  []int // answer per try; the last repeats
		wantTries int
		wantErr   string
	}{
		{name: "GET retried on 503 then succeeds", method: "GET", retries: 2, statuses: []int{503, 200}, wantTries: 2},
		{name: "PUT retried on 502 and 504", method: "PUT", retries: 3, statuses: []int{502, 504, 200}, wantTries: 3},
		{name: "retries exhausted returns the last status", method: "GET", retries: 2, statuses: []int{503}, wantTries: 3,
			wantErr: "non-2XX response code: 503"},
		{name: "500 not retried", method: "GET", retries: 2, statuses: []int{500}, wantTries: 1, wantErr: "non-2XX response code: 500"},
		{name: "429 not retried", method: "GET", retries: 2, statuses: []int{429}, wantTries: 1, wantErr: "non-2XX response code: 429"},
		{name: "POST never retried", method: "POST", retries: 0, statuses: []int{503}, wantTries: 1, wantErr: "non-2XX response code: 503"},
		{name: "no retries by default", method: "GET", retries: 0, statuses: []int{503}, wantTries: 1, wantErr: "non-2XX response code: 503"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder(t, func(w http.ResponseWriter, _ *http.Request, n int) {
				s := tt.statuses[min(n, len(tt.statuses))-1]
				w.Header().Set("Retry-After", "999999") // must be ignored
				w.WriteHeader(s)
				io.WriteString(w, "try")
			})
			n := newCall(t, testDeps(), map[string]any{"url": rec.srv.URL, "method": tt.method, "retries": tt.retries})
			start := time.Now()
			out, err := n.Run(context.Background(), nil, callIn(map[string]any{
				"body": map[string]any{"k": "v"}, "headers": map[string]any{"Idempotency-Key": "abc"}}))
			elapsed := time.Since(start)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr) {
				t.Fatalf("Run error = %v, want %q", err, tt.wantErr)
			}
			reqs := rec.requests()
			if len(reqs) != tt.wantTries {
				t.Fatalf("tries = %d, want %d", len(reqs), tt.wantTries)
			}
			for i, r := range reqs {
				if r.Body != `{"k":"v"}` || r.Header.Get("Idempotency-Key") != "abc" || !reflect.DeepEqual(r.Header, reqs[0].Header) {
					t.Errorf("try %d sent %q %v, want identical bytes and headers", i+1, r.Body, r.Header)
				}
			}
			// Waits are 100 ms, 200 ms, …: Retry-After's 999999 s is ignored.
			var minWait time.Duration
			for i := 0; i < tt.wantTries-1; i++ {
				minWait += callBackoff(0, 0, i, nil)
			}
			if elapsed < minWait || elapsed > minWait+2*time.Second {
				t.Errorf("elapsed %v, want about %v", elapsed, minWait)
			}
			if out[3] != "try" {
				t.Errorf("raw_body = %#v", out[3])
			}
		})
	}
}

func TestCallRetryTransportFailure(t *testing.T) {
	// A listener that accepts and immediately closes: every try fails at
	// transport level before any response.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var accepted atomic.Int32
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	n := newCall(t, testDeps(), map[string]any{"url": "http://" + ln.Addr().String() + "/x?token=secret", "retries": 1})
	_, err = n.Run(context.Background(), nil, callIn(nil))
	if err == nil || !strings.HasPrefix(err.Error(), "request failed: ") || strings.Contains(err.Error(), "secret") ||
		strings.Contains(err.Error(), "http://") {
		t.Fatalf("Run error = %v, want request failed without the URL", err)
	}
	if got := accepted.Load(); got != 2 {
		t.Errorf("connections = %d, want 2 (one retry)", got)
	}
}

func TestCallNoRetryAfterPartialResponse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var accepted atomic.Int32
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			// Headers, then a body cut short.
			buf := make([]byte, 4096)
			c.Read(buf)
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	n := newCall(t, testDeps(), map[string]any{"url": "http://" + ln.Addr().String() + "/", "retries": 2})
	_, err = n.Run(context.Background(), nil, callIn(nil))
	if err == nil || err.Error() != "request failed: unexpected EOF" {
		t.Fatalf("Run error = %v, want request failed: unexpected EOF", err)
	}
	if got := accepted.Load(); got != 1 {
		t.Errorf("connections = %d, want 1 (no retry after part of a response)", got)
	}
}

func TestCallRetriesStopAtTimeout(t *testing.T) {
	rec := newRecorder(t, func(w http.ResponseWriter, _ *http.Request, _ int) { w.WriteHeader(503) })
	// Tries at 0 ms and ~100 ms; the next wait (200 ms) no longer fits in
	// 250 ms, so the last 503 is reported rather than a timeout.
	n := newCall(t, testDeps(), map[string]any{"url": rec.srv.URL, "retries": 5, "timeout": 250})
	start := time.Now()
	_, err := n.Run(context.Background(), nil, callIn(nil))
	if err == nil || err.Error() != "non-2XX response code: 503" {
		t.Fatalf("Run error = %v, want the last 503", err)
	}
	if tries := len(rec.requests()); tries < 1 || tries > 2 {
		t.Errorf("tries = %d, want at most 2", tries)
	}
	if elapsed := time.Since(start); elapsed > 250*time.Millisecond {
		t.Errorf("elapsed %v beyond the timeout", elapsed)
	}
}

// blockingServer answers only when the client goes away; arrived receives
// one value per request.
func blockingServer(t *testing.T) (*httptest.Server, chan struct{}) {
	arrived := make(chan struct{}, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	return srv, arrived
}

func TestCallTimeout(t *testing.T) {
	srv, _ := blockingServer(t)
	n := newCall(t, testDeps(), map[string]any{"url": srv.URL, "timeout": 100, "retries": 3})
	start := time.Now()
	_, err := n.Run(context.Background(), nil, callIn(nil))
	if err == nil || err.Error() != "request timed out after 100 ms" {
		t.Fatalf("Run error = %v, want timeout", err)
	}
	if elapsed := time.Since(start); elapsed < 100*time.Millisecond || elapsed > time.Second {
		t.Errorf("elapsed %v, want about 100 ms", elapsed)
	}
}

func TestCallTimeoutWhileReadingBody(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	n := newCall(t, testDeps(), map[string]any{"url": srv.URL, "timeout": 100})
	_, err := n.Run(context.Background(), nil, callIn(nil))
	if err == nil || err.Error() != "request timed out after 100 ms" {
		t.Fatalf("Run error = %v, want timeout", err)
	}
}

func TestCallCancellation(t *testing.T) {
	srv, arrived := blockingServer(t)
	n := newCall(t, testDeps(), map[string]any{"url": srv.URL, "timeout": 0})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-arrived
		cancel()
	}()
	start := time.Now()
	_, err := n.Run(ctx, nil, callIn(nil))
	if !errors.Is(err, context.Canceled) || err != ctx.Err() {
		t.Fatalf("Run error = %v, want ctx.Err()", err)
	}
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("cancellation took %v", elapsed)
	}
	// A parent deadline (the plan's) is reported as the parent's error, not
	// as the node's timeout.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	if _, err := n.Run(ctx2, nil, callIn(nil)); err != context.DeadlineExceeded {
		t.Errorf("Run under a parent deadline = %v, want context.DeadlineExceeded", err)
	}
}

// forwardProxy is an HTTP proxy for http:// targets and a CONNECT tunnel for
// https:// ones; it records the Proxy-Authorization it saw.
type forwardProxy struct {
	srv   *httptest.Server
	mu    sync.Mutex
	auths []string
	hosts []string
	wg    sync.WaitGroup
}

func newForwardProxy(t *testing.T) *forwardProxy {
	p := &forwardProxy{}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.auths = append(p.auths, r.Header.Get("Proxy-Authorization"))
		p.hosts = append(p.hosts, r.Method+" "+r.Host)
		p.mu.Unlock()
		if r.Method != http.MethodConnect {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"via":"proxy","uri":%q}`, r.RequestURI)
			return
		}
		upstream, err := net.Dial("tcp", r.Host)
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			upstream.Close()
			return
		}
		io.WriteString(conn, "HTTP/1.1 200 Connection established\r\n\r\n")
		p.wg.Add(2)
		go func() {
			defer p.wg.Done()
			io.Copy(upstream, buf)
			upstream.Close()
		}()
		go func() {
			defer p.wg.Done()
			io.Copy(conn, upstream)
			conn.Close()
		}()
	}))
	t.Cleanup(func() { p.srv.Close(); p.wg.Wait() })
	return p
}

func (p *forwardProxy) seen() ([]string, []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.auths...), append([]string(nil), p.hosts...)
}

func TestCallProxy(t *testing.T) {
	proxy := newForwardProxy(t)
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "direct-or-tunnelled")
	}))
	t.Cleanup(tlsSrv.Close)
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("user:p@ss"))

	t.Run("http_proxy for http URL with auth", func(t *testing.T) {
		n := newCall(t, testDeps(), map[string]any{"url": "http://upstream.invalid/x?q=1"})
		out, err := n.Run(context.Background(), nil, callIn(map[string]any{
			"http_proxy": proxy.srv.URL, "proxy_auth_username": "user", "proxy_auth_password": "p@ss"}))
		if err != nil {
			t.Fatal(err)
		}
		if want := map[string]any{"via": "proxy", "uri": "http://upstream.invalid/x?q=1"}; !reflect.DeepEqual(out[0], want) {
			t.Errorf("body = %#v, want %#v", out[0], want)
		}
		auths, _ := proxy.seen()
		if auths[len(auths)-1] != basic {
			t.Errorf("Proxy-Authorization = %q, want %q", auths[len(auths)-1], basic)
		}
	})
	t.Run("https_proxy tunnels with CONNECT", func(t *testing.T) {
		n := newCall(t, testDeps(), map[string]any{"url": tlsSrv.URL, "ssl_verify": false})
		out, err := n.Run(context.Background(), nil, callIn(map[string]any{
			"https_proxy": proxy.srv.URL + "/", "http_proxy": "http://127.0.0.1:1",
			"proxy_auth_username": "user", "proxy_auth_password": "p@ss"}))
		if err != nil {
			t.Fatal(err)
		}
		if out[3] != "direct-or-tunnelled" {
			t.Errorf("raw_body = %#v", out[3])
		}
		auths, hosts := proxy.seen()
		if hosts[len(hosts)-1] != "CONNECT "+tlsSrv.Listener.Addr().String() || auths[len(auths)-1] != basic {
			t.Errorf("proxy saw %q with %q", hosts[len(hosts)-1], auths[len(auths)-1])
		}
	})
	t.Run("http_proxy not used for https", func(t *testing.T) {
		_, before := proxy.seen()
		n := newCall(t, testDeps(), map[string]any{"url": tlsSrv.URL, "ssl_verify": false})
		if _, err := n.Run(context.Background(), nil, callIn(map[string]any{"http_proxy": proxy.srv.URL})); err != nil {
			t.Fatal(err)
		}
		if _, after := proxy.seen(); len(after) != len(before) {
			t.Errorf("proxy used for an https URL via http_proxy")
		}
	})
	t.Run("environment ignored", func(t *testing.T) {
		t.Setenv("HTTP_PROXY", "http://127.0.0.1:1")
		t.Setenv("http_proxy", "http://127.0.0.1:1")
		rec := newRecorder(t, nil)
		n := newCall(t, testDeps(), map[string]any{"url": rec.srv.URL})
		if _, err := n.Run(context.Background(), nil, callIn(nil)); err != nil {
			t.Fatalf("Run = %v (environment proxy used?)", err)
		}
	})
	for _, tc := range []struct{ raw, want string }{
		{"socks5://127.0.0.1:1080", `invalid proxy URL "socks5://127.0.0.1:1080"`},
		{"https://proxy.test:3128", `invalid proxy URL "https://proxy.test:3128"`},
		{"http://user:secret@proxy.test:3128", `invalid proxy URL "http://proxy.test:3128"`},
		{"http://proxy.test:3128/path", `invalid proxy URL "http://proxy.test:3128/path"`},
		{"http://proxy.test:3128?x=secret", `invalid proxy URL "http://proxy.test:3128"`},
		{"proxy.test:3128", `invalid proxy URL "proxy.test:3128"`},
		{"http://:3128", `invalid proxy URL "http://:3128"`},
	} {
		t.Run("invalid "+tc.raw, func(t *testing.T) {
			n := newCall(t, testDeps(), map[string]any{"url": "http://upstream.invalid/"})
			_, err := n.Run(context.Background(), nil, callIn(map[string]any{"http_proxy": tc.raw}))
			if err == nil || err.Error() != tc.want {
				t.Errorf("Run error = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestCallTLS(t *testing.T) {
	var mu sync.Mutex
	var sni []string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "secure")
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // expected handshake failures
	srv.TLS = &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		mu.Lock()
		sni = append(sni, h.ServerName)
		mu.Unlock()
		return nil, nil
	}}
	srv.StartTLS()
	t.Cleanup(srv.Close)

	t.Run("verified by default", func(t *testing.T) {
		n := newCall(t, testDeps(), map[string]any{"url": srv.URL})
		_, err := n.Run(context.Background(), nil, callIn(nil))
		if err == nil || !strings.HasPrefix(err.Error(), "request failed: ") || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("Run error = %v, want a certificate failure", err)
		}
	})
	t.Run("ssl_verify false", func(t *testing.T) {
		n := newCall(t, testDeps(), map[string]any{"url": srv.URL, "ssl_verify": false})
		out, err := n.Run(context.Background(), nil, callIn(nil))
		if err != nil || out[3] != "secure" {
			t.Fatalf("Run = %v, %v", out, err)
		}
	})
	t.Run("ssl_server_name is the SNI", func(t *testing.T) {
		n := newCall(t, testDeps(), map[string]any{"url": srv.URL, "ssl_verify": false, "ssl_server_name": "api.example.test"})
		if _, err := n.Run(context.Background(), nil, callIn(nil)); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		if sni[len(sni)-1] != "api.example.test" {
			t.Errorf("SNI = %q", sni[len(sni)-1])
		}
	})
	t.Run("TLS 1.1 refused", func(t *testing.T) {
		old := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		old.Config.ErrorLog = log.New(io.Discard, "", 0)
		old.TLS = &tls.Config{MaxVersion: tls.VersionTLS11}
		old.StartTLS()
		defer old.Close()
		n := newCall(t, testDeps(), map[string]any{"url": old.URL, "ssl_verify": false})
		if _, err := n.Run(context.Background(), nil, callIn(nil)); err == nil {
			t.Fatal("Run over TLS 1.1 succeeded")
		}
	})
}

func TestCallDepsHooks(t *testing.T) {
	t.Run("CallTransport replaces the network", func(t *testing.T) {
		var names []string
		deps := Deps{Version: "test", CallTransport: func(node string, _ http.RoundTripper) http.RoundTripper {
			names = append(names, node)
			return roundTripFunc(func(r *http.Request) (*http.Response, error) {
				return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
					Body: io.NopCloser(strings.NewReader(`{"mock":"` + r.URL.Host + `"}`)), Request: r}, nil
			})
		}}
		n := newCall(t, deps, map[string]any{"url": "http://mocked.test/"})
		out, err := n.Run(context.Background(), nil, callIn(nil))
		if err != nil || !reflect.DeepEqual(out[0], map[string]any{"mock": "mocked.test"}) || !reflect.DeepEqual(names, []string{"CALL"}) {
			t.Fatalf("Run = %v, %v; transports for %v", out, err, names)
		}
	})
	t.Run("CallDestination sees target and proxy", func(t *testing.T) {
		rec := newRecorder(t, nil)
		type check struct {
			url     string
			dynamic bool
		}
		var checks []check
		deps := Deps{Version: "test", CallDestination: func(u *url.URL, dynamic bool) error {
			checks = append(checks, check{u.Redacted(), dynamic})
			if dynamic && u.Path == "/dynamic" {
				return errors.New("destination not allowed")
			}
			return nil
		}}
		n := newCall(t, deps, map[string]any{"url": rec.srv.URL + "/static"})
		if _, err := n.Run(context.Background(), nil, callIn(nil)); err != nil {
			t.Fatal(err)
		}
		_, err := n.Run(context.Background(), nil, callIn(map[string]any{"url": rec.srv.URL + "/dynamic"}))
		if err == nil || err.Error() != "destination not allowed" {
			t.Fatalf("Run error = %v", err)
		}
		if len(rec.requests()) != 1 {
			t.Errorf("requests = %d, want 1 (refused before connecting)", len(rec.requests()))
		}
		_, err = n.Run(context.Background(), nil, callIn(map[string]any{"http_proxy": "http://127.0.0.1:1", "proxy_auth_username": "u"}))
		want := []check{{rec.srv.URL + "/static", false}, {rec.srv.URL + "/dynamic", true}, {rec.srv.URL + "/static", false}, {"http://u:xxxxx@127.0.0.1:1", true}}
		if !reflect.DeepEqual(checks, want) {
			t.Errorf("checks = %v, want %v", checks, want)
		}
		if err == nil {
			t.Errorf("Run through a dead proxy succeeded")
		}
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestCallConcurrent(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		body, _ := io.ReadAll(r.Body)
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	n := newCall(t, testDeps(), map[string]any{"url": srv.URL, "method": "PUT", "retries": 1})
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := n.Run(context.Background(), nil, callIn(map[string]any{"body": map[string]any{"i": i}}))
			if err != nil || !reflect.DeepEqual(out[0], map[string]any{"i": i}) {
				t.Errorf("Run %d = %v, %v", i, out, err)
			}
		}()
	}
	wg.Wait()
	if hits.Load() != 32 {
		t.Errorf("hits = %d", hits.Load())
	}
}

func TestRedactURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"http://u:p@h.test:1/a/b?q=1#f", "http://h.test:1/a/b"},
		{"https://h.test", "https://h.test"},
		{"http://a@b@h.test/x@y", "http://h.test/x@y"},
		{"no-scheme?x", "no-scheme"},
		{"", ""},
	} {
		if got := redactURL(tc.in); got != tc.want {
			t.Errorf("redactURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func BenchmarkCallNode(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"token_type":"Bearer","access_token":"abc"}`)
	}))
	defer srv.Close()
	n := newCall(b, testDeps(), map[string]any{"url": srv.URL + "/auth-token", "method": "POST"})
	in := callIn(map[string]any{
		"headers": map[string]any{"Content-Type": "application/x-www-form-urlencoded", "X-Api-Key": "K"},
		"body":    map[string]any{"grant_type": "client_credentials", "client_id": "my_client_id"},
		"query":   map[string]any{"a": true},
	})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := n.Run(ctx, nil, in); err != nil {
			b.Fatal(err)
		}
	}
}
