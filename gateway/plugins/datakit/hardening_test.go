package datakit_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/datakit-gateway/datakit/egress"
	"github.com/datakit-gateway/datakit/nodes"
)

// This file holds hardening catalogue cases T11–T14 (hardening.md §3.2):
// destinations, redirects and headers built from request data, end to end
// through the gateway handler with the datakit plugin.

// service is a declarative configuration: one Service to upstream, a route
// on /, and the datakit plugin with config (YAML, indented by 8 spaces).
func service(upstream, config string) string {
	return `_format_version: "3.0"
services:
  - name: api
    url: ` + upstream + `
    routes: [{name: r, paths: ["/"]}]
    plugins:
      - name: datakit
        config:
` + config
}

func newPolicy(t *testing.T, allow, self []string) *egress.Policy {
	t.Helper()
	p, err := egress.New(allow, nil, self)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// sendPOST posts a JSON body with extra headers.
func sendPOST(t *testing.T, url string, body any, header http.Header) (*http.Response, string) {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(string(b)))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp, string(out)
}

// TestT11SSRFRequestDerivedURL: a jq node builds call.url from a header;
// every address the policy refuses fails before any connection, other
// schemes are invalid URLs, and the allow-listed fake still answers.
func TestT11SSRFRequestDerivedURL(t *testing.T) {
	noLeaks(t)
	admin, otherPort := newSink(t), newSink(t)
	allowed := newFake(t, nil)
	upstream := newFake(t, nil)
	a, f := admin.port(), allowed.port()
	graph := service(upstream.URL(), `
          debug: true
          nodes:
            - {name: URL, type: jq, input: request.headers, jq: '.["X-Target"]'}
            - {name: FETCH, type: call, inputs: {url: URL}}
            - {name: EXIT, type: exit, inputs: {body: FETCH.body}}
`)
	const refused = "destination not allowed"
	// narrow: refused only by the first policy, which admits no other
	// loopback destination.
	cases := []struct {
		target, want string
		narrow       bool
	}{
		{"http://127.0.0.1:" + a + "/", refused, false},
		{"http://169.254.169.254/latest/meta-data/", refused, false},
		{"http://[::1]:" + a + "/", refused, false},
		{"http://[::ffff:127.0.0.1]:" + a + "/", refused, false},
		{"http://0x7f000001:" + a + "/", refused, false},
		{"http://2130706433:" + a + "/", refused, false},
		{"http://127.1:" + a + "/", refused, false},
		{"http://localhost.:" + a + "/", refused, false},
		{"http://allowed.test@127.0.0.1:" + a + "/", refused, false},
		{"http://127.0.0.1:" + f + "@169.254.169.254/", refused, false},
		{"http://[fe80::1%25lo]:" + a + "/", refused, false},
		{"HTTP://127.0.0.1/", refused, true},
		{"http://127.0.0.1:" + otherPort.port() + "/", refused, true}, // allowed host, other port
		{"file:///etc/passwd", `invalid URL "file:///etc/passwd"`, false},
		{"gopher://127.0.0.1:" + f + "/_x", `invalid URL "gopher://127.0.0.1:` + f + `/_x"`, false},
		{"ftp://127.0.0.1:" + f + "/", `invalid URL "ftp://127.0.0.1:` + f + `/"`, false},
		{"http://127.0.0.1:" + f + "/ok", "", false},
		{"HTTP://127.0.0.1:" + f + "/ok", "", false},
	}
	policies := []struct {
		name  string
		allow []string
	}{
		{"allow the fake's address", []string{"127.0.0.1:" + f}},
		// Loopback allowed as a whole: the gateway's own address stays denied.
		{"allow loopback", []string{"127.0.0.0/8"}},
	}
	wantOK := 0
	for _, p := range policies {
		gw := serveGateway(t, graph, gatewayOptions{policy: newPolicy(t, p.allow, []string{admin.addr()})})
		for _, tc := range cases {
			if tc.narrow && p.name == "allow loopback" {
				continue
			}
			t.Run(p.name+"/"+tc.target, func(t *testing.T) {
				resp, body := get(t, gw.URL+"/", http.Header{"X-Target": {tc.target}})
				if tc.want == "" {
					wantOK++
					if resp.StatusCode != 200 || body != `{"ok":true}` {
						t.Errorf("GET with X-Target %s = %d %s, want 200 from the fake", tc.target, resp.StatusCode, body)
					}
					return
				}
				if resp.StatusCode != 500 || errorOf(t, body) != tc.want {
					t.Errorf("GET with X-Target %s = %d %s, want 500 %q", tc.target, resp.StatusCode, body, tc.want)
				}
			})
		}
	}
	if n := admin.accepted.Load(); n != 0 {
		t.Errorf("the admin address accepted %d connections, want 0", n)
	}
	if n := otherPort.accepted.Load(); n != 0 {
		t.Errorf("the other port accepted %d connections, want 0", n)
	}
	if n := allowed.count(); n != wantOK {
		t.Errorf("the allowed fake saw %d requests, want %d", n, wantOK)
	}
	if n := upstream.count(); n != 0 {
		t.Errorf("the upstream saw %d requests, want 0", n)
	}
}

// TestT12RedirectsAndRebinding: redirects are never followed, so neither the
// admin address nor a second host is reached and credentials stay with the
// host they were wired for; a name that resolves to loopback is refused at
// the dial, on the address that was actually resolved.
func TestT12RedirectsAndRebinding(t *testing.T) {
	noLeaks(t)
	upstream := newFake(t, nil)

	t.Run("redirect to the admin address", func(t *testing.T) {
		admin := newSink(t)
		third := newFake(t, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://"+admin.addr()+"/", http.StatusFound)
		})
		gw := serveGateway(t, service(upstream.URL(), `
          debug: true
          nodes:
            - {name: FETCH, type: call, url: `+third.URL()+`/start}
`), gatewayOptions{policy: newPolicy(t, nil, []string{admin.addr()})})
		resp, body := get(t, gw.URL+"/", nil)
		if resp.StatusCode != 500 || errorOf(t, body) != "non-2XX response code: 302" {
			t.Errorf("GET = %d %s, want 500 non-2XX response code: 302", resp.StatusCode, body)
		}
		if n := admin.accepted.Load(); n != 0 {
			t.Errorf("the admin address accepted %d connections", n)
		}
		if third.count() != 1 || upstream.count() != 0 {
			t.Errorf("third party saw %d requests, upstream %d; want 1 and 0", third.count(), upstream.count())
		}
	})

	t.Run("credentials never cross to a second host", func(t *testing.T) {
		var b *fake
		b = newFake(t, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, b.URL()+"/again", http.StatusTemporaryRedirect)
		})
		a := newFake(t, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, b.URL()+"/next", http.StatusTemporaryRedirect)
		})
		gw := serveGateway(t, service(upstream.URL(), `
          debug: true
          nodes:
            - name: CREDS
              type: static
              values: {Authorization: Bearer SECRET-t12, Cookie: session=SECRET-t12, Proxy-Authorization: Basic SECRET-t12}
            - {name: FETCH, type: call, url: `+a.URL()+`/start, inputs: {headers: CREDS}}
`), gatewayOptions{policy: newPolicy(t, nil, nil)})
		resp, body := get(t, gw.URL+"/", nil)
		if resp.StatusCode != 500 || errorOf(t, body) != "non-2XX response code: 307" {
			t.Errorf("GET = %d %s, want 500 non-2XX response code: 307", resp.StatusCode, body)
		}
		reqs := a.requests()
		if len(reqs) != 1 {
			t.Fatalf("first host saw %d requests, want 1", len(reqs))
		}
		h := reqs[0].Header
		if h.Get("Authorization") != "Bearer SECRET-t12" || h.Get("Cookie") != "session=SECRET-t12" || h.Get("Proxy-Authorization") != "" {
			t.Errorf("first host got Authorization %q, Cookie %q, Proxy-Authorization %q; want the wired two only",
				h.Get("Authorization"), h.Get("Cookie"), h.Get("Proxy-Authorization"))
		}
		if n := b.count(); n != 0 {
			t.Errorf("the second host saw %d requests, want 0", n)
		}
		if strings.Contains(body, "SECRET-t12") {
			t.Errorf("the error body shows the credentials: %s", body)
		}
	})

	t.Run("DNS rebinding refused at the dial", func(t *testing.T) {
		target := newFake(t, nil)
		dns := newDNSServer(t, func(string) netip.Addr { return netip.MustParseAddr("127.0.0.1") })
		gw := serveGateway(t, service(upstream.URL(), `
          debug: true
          nodes:
            - {name: FETCH, type: call, retries: 2, inputs: {url: request.query.url}}
`), gatewayOptions{policy: newPolicy(t, nil, nil), deps: nodes.Deps{CallResolver: dns.resolver()}})
		// The name passes the URL check (it is no special address); only the
		// dial sees what it resolves to.
		resp, body := get(t, gw.URL+"/?url=http://rebind.test:"+target.port()+"/", nil)
		if resp.StatusCode != 500 || errorOf(t, body) != "destination not allowed" {
			t.Errorf("GET = %d %s, want 500 destination not allowed", resp.StatusCode, body)
		}
		if opened, _ := target.conns(); opened != 0 {
			t.Errorf("the rebound address accepted %d connections, want 0", opened)
		}
		// One lookup, by the dial itself: no separate check-time lookup a
		// rebinding server could answer differently.
		if n := dns.aQueries.Load(); n != 1 {
			t.Errorf("A queries = %d, want 1 (the dial's, not retried)", n)
		}
	})
}

// TestT13HeaderInjection: header maps a jq node builds from request data
// with CR, LF, NUL, oversized values or non-token names fail the node that
// writes them, whichever message they go to; nothing reaches the wire.
func TestT13HeaderInjection(t *testing.T) {
	noLeaks(t)
	big := strings.Repeat("v", 100<<10)
	cases := []struct {
		name    string
		headers any
		want    string
	}{
		{"CRLF in a value", map[string]any{"X-Inj": "a\r\nX-Evil: 1"}, `invalid value for header "X-Inj"`},
		{"LF in a value", map[string]any{"X-Inj": "a\nX-Evil: 1"}, `invalid value for header "X-Inj"`},
		{"NUL in a value", map[string]any{"X-Inj": "a\x00X-Evil: 1"}, `invalid value for header "X-Inj"`},
		{"CRLF in an array element", map[string]any{"X-Inj": []any{"ok", "a\r\nX-Evil: 1"}}, `invalid value for header "X-Inj"`},
		{"100 KB value", map[string]any{"X-Inj": big}, `invalid value for header "X-Inj"`},
		{"colon and CRLF in a name", map[string]any{"X-Evil: 1\r\nX-A": "v"}, `invalid header name "X-Evil: 1\r\nX-A"`},
		{"space in a name", map[string]any{"X Evil": "v"}, `invalid header name "X Evil"`},
		{"non-token byte in a name", map[string]any{"X-Évil": "v"}, `invalid header name "X-Évil"`},
		{"CRLF in Host", map[string]any{"Host": "a.test\r\nX-Evil: 1"}, `invalid value for header "Host"`},
	}
	sinks := []struct {
		name, node string
		config     func(third string) string
		// upstreamCalls is how many requests the upstream gets per request.
		upstreamCalls int
	}{
		{"call.headers", "CALL", func(third string) string {
			return `
          debug: true
          nodes:
            - {name: INJ, type: jq, input: request.body, jq: .headers}
            - {name: CALL, type: call, url: ` + third + `, inputs: {headers: INJ}}
`
		}, 0},
		{"service_request.headers", "service_request", func(string) string {
			return `
          debug: true
          nodes:
            - {name: INJ, type: jq, input: request.body, jq: .headers, output: service_request.headers}
`
		}, 0},
		{"response.headers", "response", func(string) string {
			return `
          debug: true
          nodes:
            - {name: INJ, type: jq, inputs: {b: request.body, s: service_response.status}, jq: .b.headers, output: response.headers}
`
		}, 1},
	}
	for _, s := range sinks {
		third, upstream := newFake(t, nil), newFake(t, nil)
		gw := serveGateway(t, service(upstream.URL(), s.config(third.URL())), gatewayOptions{})
		for _, tc := range cases {
			t.Run(s.name+"/"+tc.name, func(t *testing.T) {
				before := upstream.count()
				resp, body := sendPOST(t, gw.URL+"/", map[string]any{"headers": tc.headers}, nil)
				if got := failureOf(t, body); resp.StatusCode != 500 || got.Error != tc.want || got.Node.Name != s.node {
					t.Errorf("POST = %d %.200s, want 500 %q at node %s", resp.StatusCode, body, tc.want, s.node)
				}
				if v := resp.Header.Values("X-Evil"); len(v) > 0 {
					t.Errorf("the response carries X-Evil %q", v)
				}
				if n := upstream.count() - before; n != s.upstreamCalls {
					t.Errorf("upstream saw %d requests, want %d", n, s.upstreamCalls)
				}
			})
		}
		if n := third.count(); n != 0 {
			t.Errorf("%s: the third party saw %d requests, want 0", s.name, n)
		}
		for name, raw := range map[string]string{"third party": third.rawBytes(), "upstream": upstream.rawBytes()} {
			if strings.Contains(strings.ToLower(raw), "\nx-evil") {
				t.Errorf("%s: the %s received an injected line:\n%.500s", s.name, name, raw)
			}
		}
	}
}

// TestT14IdentityHeaders: the graph sets Authorization and X-User from a
// token call; whatever the client forges under those names (any case, or
// with an underscore) never reaches the upstream, whatever the token
// service answers.
func TestT14IdentityHeaders(t *testing.T) {
	noLeaks(t)
	forged := http.Header{
		"Authorization": {"Bearer forged"},
		"X-User":        {"mallory"},
		"x-user":        {"mallory-lower"},
		"X_User":        {"mallory-underscore"},
	}
	graphs := []struct {
		name, jq string
		// failClosed: a missing field fails the node instead of clearing
		// the header.
		failClosed bool
	}{
		{"overwrite", `{Authorization: ("Bearer " + .access_token), "X-User": .user}`, false},
		{"fail closed", `if (.access_token | type) != "string" or (.user | type) != "string" then error("no identity")
                  else {Authorization: ("Bearer " + .access_token), "X-User": .user} end`, true},
	}
	answers := []struct {
		name, contentType, body string
		// user is the X-User the upstream must see ("" none); complete
		// answers reach the upstream in both graphs.
		user     string
		complete bool
	}{
		{"complete", "application/json", `{"access_token":"real","user":"alice"}`, "alice", true},
		{"without user", "application/json", `{"access_token":"real"}`, "", false},
		{"null", "application/json", `null`, "", false},
		{"empty", "application/json", ``, "", false},
	}
	for _, g := range graphs {
		for _, a := range answers {
			t.Run(g.name+"/"+a.name, func(t *testing.T) {
				token := newFake(t, answer(200, a.contentType, a.body))
				upstream := newFake(t, nil)
				gw := serveGateway(t, service(upstream.URL(), `
          nodes:
            - {name: TOKEN, type: call, url: `+token.URL()+`/token}
            - name: AUTH
              type: jq
              input: TOKEN.body
              output: service_request.headers
              jq: '`+g.jq+`'
`), gatewayOptions{})
				resp, _ := get(t, gw.URL+"/", forged)
				wantProxied, wantUpstream := a.complete || !g.failClosed, 0
				if wantProxied {
					wantUpstream = 1
				}
				if (resp.StatusCode == 200) != wantProxied || upstream.count() != wantUpstream {
					t.Fatalf("status %d, upstream saw %d requests; want proxied = %v, exactly once", resp.StatusCode, upstream.count(), wantProxied)
				}
				if tr := token.requests(); len(tr) != 1 || tr[0].Header.Get("Authorization") != "" || tr[0].Header.Get("X-User") != "" {
					t.Errorf("token service requests = %v, want one without the client's headers", tr)
				}
				if !wantProxied {
					return
				}
				h := upstream.requests()[0].Header
				if got := h.Values("X-User"); a.user == "" && len(got) != 0 || a.user != "" && (len(got) != 1 || got[0] != a.user) {
					t.Errorf("upstream X-User = %q, want %q", got, a.user)
				}
				if got := h.Values("Authorization"); len(got) != 1 || strings.Contains(got[0], "forged") {
					t.Errorf("upstream Authorization = %q", got)
				}
				for name, vs := range h {
					for _, v := range vs {
						if strings.Contains(v, "mallory") {
							t.Errorf("upstream got the forged %s: %q", name, v)
						}
					}
				}
			})
		}
	}
}
