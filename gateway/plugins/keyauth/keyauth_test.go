package keyauth_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/datakit-gateway/datakit/engine"
	"github.com/datakit-gateway/datakit/gateway"
	"github.com/datakit-gateway/datakit/gateway/config"
	"github.com/datakit-gateway/datakit/gateway/plugins/datakit"
	"github.com/datakit-gateway/datakit/gateway/plugins/keyauth"
	"github.com/datakit-gateway/datakit/nodes"
)

type seen struct {
	mu   sync.Mutex
	reqs []*http.Request
	body []string
}

func upstream(t *testing.T, word string) (*httptest.Server, *seen) {
	t.Helper()
	s := &seen{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.reqs = append(s.reqs, r)
		s.body = append(s.body, string(b))
		s.mu.Unlock()
		_, _ = io.WriteString(w, word)
	}))
	t.Cleanup(srv.Close)
	return srv, s
}

func (s *seen) last() (*http.Request, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reqs[len(s.reqs)-1], s.body[len(s.body)-1]
}

func startGateway(t *testing.T, doc string) *httptest.Server {
	t.Helper()
	reg := engine.NewRegistry()
	nodes.Register(reg, nodes.Deps{Version: "test"})
	plugins := gateway.NewPlugins(keyauth.New("test"), datakit.New(datakit.Options{Registry: reg}))
	ents, err := config.LoadDeclarative([]byte(doc), config.LoadOptions{Plugins: plugins})
	if err != nil {
		t.Fatalf("LoadDeclarative = %v", err)
	}
	snap, err := gateway.Build(context.Background(), ents, gateway.BuildOptions{Plugins: plugins})
	if err != nil {
		t.Fatalf("Build = %v", err)
	}
	g := gateway.New(gateway.Options{Version: "test"})
	g.Swap(snap)
	srv := httptest.NewServer(g.Handler(gateway.Listener{Port: 8000}))
	t.Cleanup(srv.Close)
	return srv
}

func do(t *testing.T, method, u string, header http.Header, body string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, u, strings.NewReader(body))
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func doc(up, pluginConfig string) string {
	return `_format_version: "3.0"
consumers:
  - username: alice
    custom_id: a-1
    keyauth_credentials: [{key: alice-key}]
  - username: anon
services:
  - name: api
    url: ` + up + `
    routes: [{name: r, paths: ["/"]}]
    plugins:
      - name: key-auth
        config: ` + pluginConfig + `
`
}

func TestKeyAuth(t *testing.T) {
	up, s := upstream(t, "ok")
	gw := startGateway(t, doc(up.URL, "{}"))

	cases := []struct {
		name   string
		target string
		header http.Header
		status int
		body   string
	}{
		{"no key", "/", nil, 401, "No API key found in request"},
		{"unknown key", "/", http.Header{"Apikey": {"nope"}}, 401, "Unauthorized"},
		{"empty key", "/", http.Header{"Apikey": {""}}, 401, "No API key found in request"},
		{"duplicate", "/", http.Header{"Apikey": {"alice-key", "alice-key"}}, 401, "Duplicate API key found"},
		{"header", "/", http.Header{"Apikey": {"alice-key"}}, 200, "ok"},
		{"query", "/?apikey=alice-key", nil, 200, "ok"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := do(t, http.MethodGet, gw.URL+tc.target, tc.header, "")
			if resp.StatusCode != tc.status || !strings.Contains(body, tc.body) {
				t.Fatalf("status %d body %q, want %d containing %q", resp.StatusCode, body, tc.status, tc.body)
			}
			if tc.status == 401 && resp.Header.Get("Www-Authenticate") != "Key" {
				t.Errorf("WWW-Authenticate = %q, want Key", resp.Header.Get("Www-Authenticate"))
			}
			if tc.status == 200 {
				r, _ := s.last()
				if r.Header.Get("X-Consumer-Username") != "alice" || r.Header.Get("X-Consumer-Custom-Id") != "a-1" ||
					r.Header.Get("X-Consumer-Id") == "" || r.Header.Get("X-Credential-Identifier") == "" {
					t.Errorf("upstream consumer headers = %v", r.Header)
				}
			}
		})
	}
}

func TestKeyAuthHideCredentialsAndBody(t *testing.T) {
	up, s := upstream(t, "ok")
	gw := startGateway(t, doc(up.URL, `{hide_credentials: true, key_in_body: true, realm: service}`))
	if resp, _ := do(t, http.MethodGet, gw.URL+"/?apikey=alice-key&x=1", nil, ""); resp.StatusCode != 200 {
		t.Fatalf("query key: %d", resp.StatusCode)
	}
	if r, _ := s.last(); r.URL.RawQuery != "x=1" {
		t.Errorf("upstream query = %q, want the key removed", r.URL.RawQuery)
	}
	if resp, _ := do(t, http.MethodGet, gw.URL+"/", http.Header{"Apikey": {"alice-key"}}, ""); resp.StatusCode != 200 {
		t.Fatalf("header key: %d", resp.StatusCode)
	}
	if r, _ := s.last(); r.Header.Get("Apikey") != "" {
		t.Errorf("upstream still got the apikey header")
	}
	form := url.Values{"apikey": {"alice-key"}, "other": {"v"}}.Encode()
	resp, _ := do(t, http.MethodPost, gw.URL+"/", http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, form)
	if resp.StatusCode != 200 {
		t.Fatalf("body key: %d", resp.StatusCode)
	}
	if _, body := s.last(); body != "other=v" {
		t.Errorf("upstream body = %q, want the key removed", body)
	}
	resp, _ = do(t, http.MethodPost, gw.URL+"/", http.Header{"Content-Type": {"application/json"}}, `{"apikey":"alice-key","n":1}`)
	if _, body := s.last(); resp.StatusCode != 200 || body != `{"n":1}` {
		t.Errorf("JSON body key: %d, upstream body %q", resp.StatusCode, body)
	}
	if resp, _ := do(t, http.MethodGet, gw.URL+"/", nil, ""); resp.Header.Get("Www-Authenticate") != `Key realm="service"` {
		t.Errorf("WWW-Authenticate = %q", resp.Header.Get("Www-Authenticate"))
	}
}

func TestKeyAuthAnonymous(t *testing.T) {
	up, s := upstream(t, "ok")
	gw := startGateway(t, doc(up.URL, `{anonymous: anon}`))
	if resp, _ := do(t, http.MethodGet, gw.URL+"/", nil, ""); resp.StatusCode != 200 {
		t.Fatalf("anonymous: %d", resp.StatusCode)
	}
	if r, _ := s.last(); r.Header.Get("X-Consumer-Username") != "anon" || r.Header.Get("X-Anonymous-Consumer") != "true" {
		t.Errorf("anonymous headers = %v", r.Header)
	}
	gw = startGateway(t, doc(up.URL, `{anonymous: ghost}`))
	resp, body := do(t, http.MethodGet, gw.URL+"/", nil, "")
	if resp.StatusCode != 500 || !strings.Contains(body, "anonymous consumer ghost is configured but doesn't exist") {
		t.Errorf("missing anonymous: %d %s", resp.StatusCode, body)
	}
}

func TestKeyAuthConfigErrors(t *testing.T) {
	plugins := gateway.NewPlugins(keyauth.New("test"))
	_, err := config.LoadDeclarative([]byte(`_format_version: "3.0"
plugins: [{name: key-auth, config: {key_names: ["bad name"]}}]
`), config.LoadOptions{Plugins: plugins})
	if err == nil || !strings.Contains(err.Error(), "bad header name 'bad name', allowed characters are A-Z, a-z, 0-9, '_', and '-'") {
		t.Errorf("bad key name: %v", err)
	}
}

// TestRouteByConsumer is spec §13.10: key-auth authenticates, a datakit
// graph picks the upstream by consumer.
func TestRouteByConsumer(t *testing.T) {
	a, _ := upstream(t, "A")
	b, _ := upstream(t, "B")
	def, _ := upstream(t, "default")
	target := func(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "http://") }
	gw := startGateway(t, `_format_version: "3.0"
consumers:
  - {username: caller-a, keyauth_credentials: [{key: ka}]}
  - {username: caller-b, keyauth_credentials: [{key: kb}]}
  - {username: caller-c, keyauth_credentials: [{key: kc}]}
upstreams:
  - {name: upstream-a, targets: [{target: "`+target(a)+`"}]}
  - {name: upstream-b, targets: [{target: "`+target(b)+`"}]}
  - {name: upstream-default, targets: [{target: "`+target(def)+`"}]}
services:
  - name: api
    host: upstream-default
    routes:
      - name: r
        paths: ["/"]
        plugins:
          - name: key-auth
          - name: datakit
            config:
              nodes:
                - {name: GET_CONSUMER, type: property, property: kong.client.consumer}
                - name: PICK_UPSTREAM
                  type: jq
                  input: GET_CONSUMER
                  jq: '{"caller-a": "upstream-a", "caller-b": "upstream-b"}[.username] // "upstream-default"'
                - {name: SET_UPSTREAM, type: property, property: kong.service.upstream, input: PICK_UPSTREAM}
`)
	for key, want := range map[string]string{"ka": "A", "kb": "B", "kc": "default"} {
		if resp, body := do(t, http.MethodGet, gw.URL+"/", http.Header{"Apikey": {key}}, ""); resp.StatusCode != 200 || body != want {
			t.Errorf("key %s: %d %q, want %q", key, resp.StatusCode, body, want)
		}
	}
}
