package gateway_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/datakit-gateway/datakit/gateway"
	"github.com/datakit-gateway/datakit/gateway/config"
)

// setup configures startGateway; the zero value is a plain gateway on a
// listener reported as port 8000.
type setup struct {
	opts     gateway.Options
	build    gateway.BuildOptions
	plugins  []gateway.Plugin
	listener gateway.Listener
}

// startGateway serves a declarative document through the real handler.
func startGateway(t testing.TB, doc string, s setup) *httptest.Server {
	t.Helper()
	if s.listener.Port == 0 {
		s.listener.Port = 8000
	}
	srv := httptest.NewServer(newGateway(t, doc, s).Handler(s.listener))
	t.Cleanup(srv.Close)
	return srv
}

// newGateway is a gateway with the snapshot of a declarative document.
func newGateway(t testing.TB, doc string, s setup) *gateway.Gateway {
	t.Helper()
	plugins := gateway.NewPlugins(s.plugins...)
	ents, err := config.LoadDeclarative([]byte(doc), config.LoadOptions{Plugins: plugins})
	if err != nil {
		if de, ok := err.(*config.DeclarativeError); ok {
			t.Fatalf("LoadDeclarative = %v\n%s", err, strings.Join(de.Lines(), "\n"))
		}
		t.Fatalf("LoadDeclarative = %v", err)
	}
	s.build.Plugins = plugins
	snap, err := gateway.Build(context.Background(), ents, s.build)
	if err != nil {
		t.Fatalf("Build = %v", err)
	}
	if s.opts.Version == "" {
		s.opts.Version = "test"
	}
	g := gateway.New(s.opts)
	g.Swap(snap)
	return g
}

// seen is one request as an upstream received it.
type seen struct {
	Method, URI, Host, Proto string
	Header                   http.Header
	Body                     string
}

// upstream is an httptest server that records what it receives and answers
// with handler (nil: 200 "ok").
type upstream struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []seen
}

func newUpstream(t testing.TB, handler http.HandlerFunc) *upstream {
	t.Helper()
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.reqs = append(u.reqs, seen{Method: r.Method, URI: r.RequestURI, Host: r.Host, Proto: r.Proto,
			Header: r.Header.Clone(), Body: string(b)})
		u.mu.Unlock()
		if handler != nil {
			handler(w, r)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.reqs)
}

func (u *upstream) last(t testing.TB) seen {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.reqs) == 0 {
		t.Fatal("upstream received no request")
	}
	return u.reqs[len(u.reqs)-1]
}

// hostPort is the upstream's address split for a Service.
func (u *upstream) hostPort() (string, string) {
	h, p, _ := net.SplitHostPort(u.Listener.Addr().String())
	return h, p
}

// request is one client request; target is sent verbatim as the
// request-target.
type request struct {
	method, target, host string
	header               http.Header
	body                 io.Reader
}

type response struct {
	*http.Response
	body string
}

// send sends r to the gateway with a fresh connection-reusing client.
func send(t *testing.T, gw *httptest.Server, r request) response {
	t.Helper()
	if r.method == "" {
		r.method = http.MethodGet
	}
	u, _ := url.Parse(gw.URL)
	req, err := http.NewRequest(r.method, gw.URL, r.body)
	if err != nil {
		t.Fatal(err)
	}
	req.URL = &url.URL{Scheme: "http", Host: u.Host, Opaque: r.target}
	if r.host != "" {
		req.Host = r.host
	}
	for k, v := range r.header {
		req.Header[k] = v
	}
	resp, err := gw.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, r.target, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{resp, string(b)}
}

// rawExchange writes raw bytes on a new connection to the gateway and reads
// one response.
func rawExchange(t *testing.T, gw *httptest.Server, raw string) *http.Response {
	t.Helper()
	c, err := net.Dial("tcp", gw.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	return resp
}

// serviceDoc is a document with one service at u and the given route YAML
// (indented as a list item under routes).
func serviceDoc(u *upstream, service, routes string) string {
	host, port := u.hostPort()
	return `_format_version: "3.0"
services:
  - name: svc
    host: ` + host + `
    port: ` + port + `
` + service + `
    routes:
` + routes
}
