package gateway_test

import (
	"context"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"testing"

	"github.com/datakit-gateway/datakit/gateway"
	"github.com/datakit-gateway/datakit/gateway/config"
)

var (
	loopback   = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	requestIDs = regexp.MustCompile(`^[0-9a-f]{32}$`)
)

// TestT07XForwardedSpoofing checks gateway.md §8.2 for untrusted and
// trusted peers (the test client is 127.0.0.1) with forged forwarding
// headers (hardening.md T07; CVE-2022-32148). The client address a plugin
// reads — the one a datakit property node returns for kong.client.ip —
// agrees with X-Real-IP.
func TestT07XForwardedSpoofing(t *testing.T) {
	up := newUpstream(t, nil)
	doc := serviceDoc(up, "", "      - {name: r, paths: [/api], strip_path: true}\n") + "plugins:\n  - {name: client-ip}\n"
	clientIP := &testPlugin{name: "client-ip", priority: 900, build: func(config.Plugin) gateway.Instance { return clientIPEcho{} }}
	forged := http.Header{
		"X-Forwarded-For":    {"6.6.6.6"},
		"X-Forwarded-Proto":  {"https"},
		"X-Forwarded-Host":   {"evil"},
		"X-Forwarded-Port":   {"443"},
		"X-Forwarded-Path":   {"/forged"},
		"X-Forwarded-Prefix": {"/forged-prefix"},
		"X-Real-Ip":          {"6.6.6.6"},
		"Forwarded":          {"for=6.6.6.6;host=evil;proto=https"},
		"Via":                {"1.1 edge"},
		"X-Kong-Request-Id":  {"client-chosen"},
	}
	cases := []struct {
		name    string
		trusted bool
		header  http.Header
		want    map[string]string
	}{
		{"untrusted, no client values", false, nil, map[string]string{
			"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Proto": "http", "X-Forwarded-Host": "api.test",
			"X-Forwarded-Port": "8000", "X-Forwarded-Path": "/api/x", "X-Forwarded-Prefix": "/api",
			"X-Real-Ip": "127.0.0.1", "Forwarded": "", "Via": "1.1 datakit/test"}},
		{"untrusted, forged values replaced", false, forged, map[string]string{
			"X-Forwarded-For": "6.6.6.6, 127.0.0.1", "X-Forwarded-Proto": "http", "X-Forwarded-Host": "api.test",
			"X-Forwarded-Port": "8000", "X-Forwarded-Path": "/api/x", "X-Forwarded-Prefix": "/api",
			"X-Real-Ip": "127.0.0.1", "Forwarded": "", "Via": "1.1 edge, 1.1 datakit/test"}},
		{"trusted, client values kept", true, forged, map[string]string{
			"X-Forwarded-For": "6.6.6.6, 127.0.0.1", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil",
			"X-Forwarded-Port": "443", "X-Forwarded-Path": "/forged", "X-Forwarded-Prefix": "/forged-prefix",
			"X-Real-Ip": "6.6.6.6", "Forwarded": "for=6.6.6.6;host=evil;proto=https", "Via": "1.1 edge, 1.1 datakit/test"}},
		{"trusted, real IP without X-Forwarded-For", true, http.Header{"X-Real-Ip": {"198.51.100.1"}}, map[string]string{
			"X-Forwarded-For": "198.51.100.1", "X-Forwarded-Proto": "http", "X-Real-Ip": "198.51.100.1"}},
		{"trusted, invalid real IP keeps the peer", true, http.Header{"X-Real-Ip": {"not-an-ip"}}, map[string]string{
			"X-Forwarded-For": "127.0.0.1", "X-Real-Ip": "127.0.0.1"}},
		{"X-Forwarded-For lines joined", false, http.Header{"X-Forwarded-For": {"10.0.0.1", "10.0.0.2"}}, map[string]string{
			"X-Forwarded-For": "10.0.0.1, 10.0.0.2, 127.0.0.1"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := setup{plugins: []gateway.Plugin{clientIP}}
			if c.trusted {
				s.opts.TrustedIPs = loopback
			}
			gw := startGateway(t, doc, s)
			resp := send(t, gw, request{target: "/api/x?q=1", host: "api.test:8000", header: c.header})
			if resp.StatusCode != 200 {
				t.Fatalf("status %d %q", resp.StatusCode, resp.body)
			}
			got := up.last(t)
			for name, want := range c.want {
				if v := strings.Join(got.Header.Values(name), "|"); v != want {
					t.Errorf("upstream %s = %q, want %q", name, v, want)
				}
			}
			if ip := got.Header.Get("X-Client-Ip"); ip != got.Header.Get("X-Real-Ip") {
				t.Errorf("the client address plugins read is %q, X-Real-IP %q", ip, got.Header.Get("X-Real-Ip"))
			}
			id := got.Header.Get("X-Kong-Request-Id")
			if !requestIDs.MatchString(id) || id != resp.Header.Get("X-Kong-Request-Id") {
				t.Errorf("upstream X-Kong-Request-Id = %q, client got %q; want the same fresh 32-hex id",
					id, resp.Header.Get("X-Kong-Request-Id"))
			}
			if v := got.Header.Get("Connection"); v != "keep-alive" {
				t.Errorf("upstream Connection = %q, want keep-alive", v)
			}
		})
	}
}

// clientIPEcho sends upstream the client address plugins read.
type clientIPEcho struct{}

func (clientIPEcho) Access(_ context.Context, ex *gateway.Exchange) error {
	ex.ServiceRequestHeader().Set("X-Client-Ip", ex.ClientIP())
	return nil
}

// TestForwardedPrefixAbsent: no X-Forwarded-Prefix without a stripped
// prefix other than "/".
func TestForwardedPrefixAbsent(t *testing.T) {
	up := newUpstream(t, nil)
	for _, route := range []string{
		"      - {name: r, paths: [/], strip_path: true}\n",
		"      - {name: r, paths: [/api], strip_path: false}\n",
	} {
		gw := startGateway(t, serviceDoc(up, "", route), setup{})
		send(t, gw, request{target: "/api/x", header: http.Header{"X-Forwarded-Prefix": {"/forged"}}})
		if v, ok := up.last(t).Header["X-Forwarded-Prefix"]; ok {
			t.Errorf("route %q: X-Forwarded-Prefix = %q, want absent", strings.TrimSpace(route), v)
		}
	}
}

// TestHostHeader checks gateway.md §7.7.
func TestHostHeader(t *testing.T) {
	up := newUpstream(t, nil)
	host, port := up.hostPort()
	cases := []struct {
		name, doc, want string
	}{
		{"service host and port", serviceDoc(up, "", "      - {name: r, paths: [/]}\n"), host + ":" + port},
		{"preserve_host", serviceDoc(up, "", "      - {name: r, paths: [/], preserve_host: true}\n"), "client.test:8000"},
		{"upstream host_header", `_format_version: "3.0"
upstreams:
  - name: pool.internal
    host_header: backend.test
    targets: [{target: "` + host + ":" + port + `"}]
services:
  - name: svc
    host: pool.internal
    routes: [{name: r, paths: [/]}]
`, "backend.test"},
		{"upstream target address", `_format_version: "3.0"
upstreams:
  - name: pool.internal
    targets: [{target: "` + host + ":" + port + `"}]
services:
  - name: svc
    host: pool.internal
    routes: [{name: r, paths: [/]}]
`, host + ":" + port},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			gw := startGateway(t, c.doc, setup{})
			if resp := send(t, gw, request{target: "/", host: "client.test:8000"}); resp.StatusCode != 200 {
				t.Fatalf("status %d %q", resp.StatusCode, resp.body)
			}
			if got := up.last(t).Host; got != c.want {
				t.Errorf("upstream Host = %q, want %q", got, c.want)
			}
		})
	}
}

// TestHopByHopRequest checks gateway.md §8.1's hop-by-hop and underscore
// rules on the way upstream.
func TestHopByHopRequest(t *testing.T) {
	up := newUpstream(t, nil)
	gw := startGateway(t, serviceDoc(up, "", "      - {name: r, paths: [/]}\n"), setup{})
	raw := "GET /x HTTP/1.1\r\nHost: a.test\r\n" +
		"Connection: keep-alive, X-Secret\r\nConnection: \r\nConnection: x-other\r\n" +
		"X-Secret: 1\r\nX-Other: 2\r\nX-Kept: 3\r\n" +
		"Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nProxy-Authorization: Basic Zm9v\r\n" +
		"Upgrade: h2c\r\nTE: trailers\r\nX_Underscore: 4\r\n\r\n"
	resp := rawExchange(t, gw, raw)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	got := up.last(t).Header
	for _, name := range []string{"X-Secret", "X-Other", "Keep-Alive", "Proxy-Connection", "Proxy-Authorization",
		"Upgrade", "X_underscore", "X_Underscore"} {
		if v, ok := got[http.CanonicalHeaderKey(name)]; ok {
			t.Errorf("upstream got %s: %q, want it removed", name, v)
		}
	}
	if got.Get("X-Kept") != "3" {
		t.Errorf("X-Kept = %q, want 3", got.Get("X-Kept"))
	}
	if got.Get("Te") != "trailers" {
		t.Errorf("TE = %q, want trailers", got.Get("Te"))
	}
	// TE other than trailers is dropped.
	rawExchange(t, gw, "GET /x HTTP/1.1\r\nHost: a.test\r\nTE: gzip\r\n\r\n")
	if v := up.last(t).Header.Get("Te"); v != "" {
		t.Errorf("TE: gzip reached upstream as %q", v)
	}
}

// TestResponseHeaders checks gateway.md §8.6 on a proxied response.
func TestResponseHeaders(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Connection", "X-Private")
		h.Set("X-Private", "secret")
		h.Set("Keep-Alive", "timeout=5")
		h.Set("Proxy-Authenticate", "Basic")
		h.Set("Upgrade", "foo")
		h.Set("Via", "1.1 origin")
		if r.URL.Query().Get("server") != "" {
			h.Set("Server", "origin/1")
		}
		_, _ = w.Write([]byte("body"))
	})
	gw := startGateway(t, serviceDoc(up, "", "      - {name: r, paths: [/]}\n"), setup{})
	for _, c := range []struct{ target, server string }{{"/", "datakit/test"}, {"/?server=1", "origin/1"}} {
		resp := send(t, gw, request{target: c.target})
		h := resp.Header
		if resp.body != "body" {
			t.Errorf("body %q", resp.body)
		}
		for _, name := range []string{"X-Private", "Keep-Alive", "Proxy-Authenticate", "Upgrade"} {
			if v, ok := h[name]; ok {
				t.Errorf("%s: client got %s %q, want it removed", c.target, name, v)
			}
		}
		if got := h.Get("Via"); got != "1.1 origin, 1.1 datakit/test" {
			t.Errorf("Via = %q", got)
		}
		if got := h.Get("Server"); got != c.server {
			t.Errorf("%s: Server = %q, want %q", c.target, got, c.server)
		}
		for _, name := range []string{"X-Kong-Upstream-Latency", "X-Kong-Proxy-Latency"} {
			if !regexp.MustCompile(`^\d+$`).MatchString(h.Get(name)) {
				t.Errorf("%s = %q, want whole ms", name, h.Get(name))
			}
		}
		if _, ok := h["X-Kong-Response-Latency"]; ok {
			t.Errorf("proxied response has X-Kong-Response-Latency")
		}
		if !requestIDs.MatchString(h.Get("X-Kong-Request-Id")) {
			t.Errorf("X-Kong-Request-Id = %q", h.Get("X-Kong-Request-Id"))
		}
		if h.Get("Date") == "" {
			t.Errorf("no Date")
		}
	}
}
