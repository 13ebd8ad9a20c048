package gateway_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/datakit-gateway/datakit/gateway"
)

// TestHeadersSetting: the headers and headers_upstream settings choose the
// headers the gateway adds (gateway.md §8.2, §8.6).
func TestHeadersSetting(t *testing.T) {
	up := newUpstream(t, nil)
	doc := serviceDoc(up, "", "      - {name: r, paths: [/p]}\n")
	all := gateway.DefaultHeaders()
	all.UpstreamStatus = true
	for _, tc := range []struct {
		name    string
		headers *gateway.Headers
		// present on the proxied response, the 404 and the upstream request
		proxied, made, upstream []string
		absent                  []string
	}{
		{name: "defaults", headers: nil,
			proxied:  []string{"Via", "Server", "X-Kong-Proxy-Latency", "X-Kong-Upstream-Latency", "X-Kong-Request-Id"},
			made:     []string{"Server", "X-Kong-Response-Latency", "X-Kong-Request-Id"},
			upstream: []string{"Via", "X-Kong-Request-Id"},
			absent:   []string{"X-Kong-Upstream-Status"}},
		{name: "all with X-Kong-Upstream-Status", headers: &all,
			proxied: []string{"X-Kong-Upstream-Status", "Via"}},
		{name: "off", headers: &gateway.Headers{},
			absent: []string{"Via", "Server", "X-Kong-Proxy-Latency", "X-Kong-Upstream-Latency",
				"X-Kong-Response-Latency", "X-Kong-Request-Id", "X-Kong-Upstream-Status"}},
		{name: "request id only", headers: &gateway.Headers{RequestID: true},
			proxied: []string{"X-Kong-Request-Id"}, made: []string{"X-Kong-Request-Id"},
			absent: []string{"Via", "Server", "X-Kong-Response-Latency"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gw := startGateway(t, doc, setup{opts: gateway.Options{Headers: tc.headers}})
			proxied := send(t, gw, request{target: "/p"})
			made := send(t, gw, request{target: "/nowhere"})
			upHeader := up.last(t).Header
			check := func(what string, h http.Header, names []string, want bool) {
				for _, name := range names {
					if got := h.Get(name) != ""; got != want {
						t.Errorf("%s: %s present = %v, want %v", what, name, got, want)
					}
				}
			}
			check("proxied response", proxied.Header, tc.proxied, true)
			check("gateway-made response", made.Header, tc.made, true)
			check("upstream request", upHeader, tc.upstream, true)
			check("proxied response", proxied.Header, tc.absent, false)
			check("gateway-made response", made.Header, tc.absent, false)
			if tc.headers != nil && !tc.headers.Via && !tc.headers.UpstreamRequestID {
				check("upstream request", upHeader, []string{"Via", "X-Kong-Request-Id"}, false)
			}
		})
	}
}

// TestUpstreamResponseHeaderLimit: an upstream header block over 64 KiB is
// a 502 (hardening.md §2.3); just under passes.
func TestUpstreamResponseHeaderLimit(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		n := 60 << 10
		if r.URL.Path == "/big" {
			n = 70 << 10
		}
		w.Header().Set("X-Big", strings.Repeat("a", n))
	})
	gw := startGateway(t, serviceDoc(up, "", "      - {name: r, paths: [/]}\n"), setup{})
	if r := send(t, gw, request{target: "/small"}); r.StatusCode != 200 {
		t.Errorf("60 KiB upstream header = %d, want 200", r.StatusCode)
	}
	checkError(t, send(t, gw, request{target: "/big"}), 502, "An invalid response was received from the upstream server")
}
