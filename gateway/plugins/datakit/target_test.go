package datakit_test

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/datakit-gateway/datakit/egress"
)

// startPolicyGateway is startGateway with a destination policy wired as
// serve does.
func startPolicyGateway(t *testing.T, doc string, p *egress.Policy) string {
	t.Helper()
	return serveGateway(t, doc, gatewayOptions{policy: p}).URL
}

const targetGraph = `
_format_version: "3.0"
services:
  - name: api
    url: http://unused.test:1
    routes: [{name: r, paths: ["/"]}]
    plugins:
      - name: datakit
        config:
          debug: true
          nodes:
            - name: TARGET
              type: property
              property: kong.service.target
              input: request.query.target
`

func TestServiceTargetPolicy(t *testing.T) {
	upstream, upRec := mock(t, 200, `{"ok":true}`, 0)
	u, _ := url.Parse(upstream.URL)
	port := u.Port()
	for _, tc := range []struct {
		name   string
		allow  []string
		self   []string
		target string
		want   int // status; 500 = refused with destination not allowed
	}{
		{"loopback literal refused", nil, nil, "127.0.0.1:" + port, 500},
		{"localhost refused", nil, nil, "localhost:" + port, 500},
		{"mapped loopback refused", nil, nil, "[::ffff:127.0.0.1]:" + port, 500},
		{"metadata address refused", nil, nil, "169.254.169.254:80", 500},
		{"allow re-admits", []string{"127.0.0.1"}, nil, "127.0.0.1:" + port, 200},
		{"allow with other port", []string{"127.0.0.1:1"}, nil, "127.0.0.1:" + port, 500},
		{"self address refused despite allow", []string{"127.0.0.1"}, []string{"127.0.0.1:" + port}, "127.0.0.1:" + port, 500},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := egress.New(tc.allow, nil, tc.self)
			if err != nil {
				t.Fatal(err)
			}
			gw := startPolicyGateway(t, targetGraph, p)
			before := upRec.count()
			resp, body := get(t, gw+"/x?target="+url.QueryEscape(tc.target), nil)
			if resp.StatusCode != tc.want {
				t.Fatalf("target %s: status %d (%s), want %d", tc.target, resp.StatusCode, body, tc.want)
			}
			if tc.want != 500 {
				return
			}
			var got struct{ Error string }
			if err := json.Unmarshal([]byte(body), &got); err != nil || got.Error != "destination not allowed" {
				t.Errorf("body %s: error = %q, want destination not allowed", body, got.Error)
			}
			if upRec.count() != before || strings.Contains(body, port) {
				t.Errorf("upstream reached or address leaked: %s", body)
			}
		})
	}
}
