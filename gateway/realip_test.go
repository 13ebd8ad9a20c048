package gateway_test

import (
	"net/http"
	"net/netip"
	"testing"

	"github.com/datakit-gateway/datakit/gateway"
)

// TestRealIP: a trusted peer's real-IP header gives the client address: its
// last element, or with real_ip_recursive the rightmost untrusted one
// (gateway.md §8.1). X-Real-IP sent upstream shows the result.
func TestRealIP(t *testing.T) {
	up := newUpstream(t, nil)
	doc := serviceDoc(up, "", "      - {name: r, paths: [/]}\n")
	trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8")}
	cases := []struct {
		name   string
		opts   gateway.Options
		header []string
		want   string
	}{
		{"untrusted peer", gateway.Options{}, []string{"203.0.113.9"}, "127.0.0.1"},
		{"trusted: last element", gateway.Options{TrustedIPs: trusted}, []string{"203.0.113.9, 10.0.0.5"}, "10.0.0.5"},
		{"trusted, recursive: rightmost untrusted", gateway.Options{TrustedIPs: trusted, RealIPRecursive: true},
			[]string{"198.51.100.1, 203.0.113.9", "10.0.0.5"}, "203.0.113.9"},
		{"recursive, all trusted: the first", gateway.Options{TrustedIPs: trusted, RealIPRecursive: true},
			[]string{"10.0.0.7, 10.0.0.5"}, "10.0.0.7"},
		{"invalid value keeps the peer", gateway.Options{TrustedIPs: trusted}, []string{"not-an-ip"}, "127.0.0.1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			gw := startGateway(t, doc, setup{opts: tc.opts})
			resp := send(t, gw, request{target: "/", header: http.Header{"X-Real-Ip": tc.header}})
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if got := up.last(t).Header.Get("X-Real-Ip"); got != tc.want {
				t.Errorf("X-Real-IP upstream = %q, want %q", got, tc.want)
			}
		})
	}
}
