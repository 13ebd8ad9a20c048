package gateway_test

import (
	"bufio"
	"net/http"
	"os"
	"strings"
	"testing"
)

// TestUpstreamPathVectors sends every row of gateway.md §7.6's table through
// the proxy and checks the request-target the upstream received.
func TestUpstreamPathVectors(t *testing.T) {
	f, err := os.Open("router/testdata/upstream_path_v0.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	up := newUpstream(t, nil)
	rows := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fs := strings.Fields(line)
		if len(fs) != 6 {
			t.Fatalf("bad vector line %q", line)
		}
		rows++
		row, svcPath, routePath, strip, target, want := fs[0], fs[1], fs[2], fs[3], fs[4], fs[5]
		strips := map[string][]string{"T": {"true"}, "F": {"false"}, "*": {"true", "false"}}[strip]
		for _, sp := range strips {
			t.Run(row+"/strip="+sp, func(t *testing.T) {
				route := "      - name: r\n        hosts: [vectors.test]\n        strip_path: " + sp + "\n"
				if routePath != "-" {
					route += "        paths: [\"" + routePath + "\"]\n"
				}
				gw := startGateway(t, serviceDoc(up, "    path: "+svcPath, route), setup{})
				resp := send(t, gw, request{target: target, host: "vectors.test"})
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("GET %s = %d %q, want 200", target, resp.StatusCode, resp.body)
				}
				if got := up.last(t).URI; got != want {
					t.Errorf("service %s route %s strip_path=%s: GET %s reached upstream as %q, want %q",
						svcPath, routePath, sp, target, got, want)
				}
			})
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if rows != 82 {
		t.Fatalf("read %d vector rows, want 82", rows)
	}
}

// TestRouterThroughProxy checks matching and priority (gateway.md §7.2,
// §7.3) end to end: each case has two routes; the named one must win.
func TestRouterThroughProxy(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Route", r.Header.Get("X-Route"))
	})
	host, port := up.hostPort()
	// Each route's service tags the upstream request through its path.
	doc := func(routes string) string {
		return `_format_version: "3.0"
services:
  - name: a
    host: ` + host + `
    port: ` + port + `
    path: /a
  - name: b
    host: ` + host + `
    port: ` + port + `
    path: /b
routes:
` + routes
	}
	cases := []struct {
		name   string
		routes string
		req    request
		want   string // upstream path prefix: /a or /b; "404" for no match
	}{
		{"longer prefix wins", `
  - {name: ra, service: a, paths: [/api], strip_path: true, created_at: 1}
  - {name: rb, service: b, paths: [/api/v1], strip_path: true, created_at: 2}`,
			request{target: "/api/v1/x"}, "/b/x"},
		{"more fields win over longer path", `
  - {name: ra, service: a, paths: [/api/v1/long], strip_path: false}
  - {name: rb, service: b, paths: [/api], methods: [GET], strip_path: false}`,
			request{target: "/api/v1/long"}, "/b/api/v1/long"},
		{"plain host beats wildcard host", `
  - {name: ra, service: a, hosts: ["*.example.test"]}
  - {name: rb, service: b, hosts: [api.example.test]}`,
			request{target: "/", host: "api.example.test"}, "/b"},
		{"suffix wildcard host", `
  - {name: ra, service: a, hosts: ["*.example.test"]}
  - {name: rb, service: b, hosts: [other.test]}`,
			request{target: "/", host: "deep.api.example.test"}, "/a"},
		{"prefix wildcard host", `
  - {name: ra, service: a, hosts: ["api.*"]}
  - {name: rb, service: b, hosts: [other.test]}`,
			request{target: "/", host: "api.anything.test"}, "/a"},
		{"host with port requires the port", `
  - {name: ra, service: a, hosts: ["api.test:9999"]}
  - {name: rb, service: b, hosts: [api.test]}`,
			request{target: "/", host: "api.test"}, "/b"},
		{"host port from listener", `
  - {name: ra, service: a, hosts: ["api.test:8000"]}
  - {name: rb, service: b, hosts: [other.test]}`,
			request{target: "/", host: "api.test"}, "/a"},
		{"method mismatch", `
  - {name: ra, service: a, paths: [/], methods: [POST]}
  - {name: rb, service: b, paths: [/x], methods: [PUT]}`,
			request{target: "/x"}, "404"},
		{"method match", `
  - {name: ra, service: a, paths: [/], methods: [POST], strip_path: false}
  - {name: rb, service: b, paths: [/], methods: [GET], strip_path: false}`,
			request{target: "/x"}, "/b/x"},
		{"header match case-insensitive", `
  - {name: ra, service: a, paths: [/]}
  - {name: rb, service: b, paths: [/], headers: {x-version: [V2]}}`,
			request{target: "/", header: http.Header{"X-Version": {"v2"}}}, "/b"},
		{"header regex", `
  - {name: ra, service: a, paths: [/]}
  - {name: rb, service: b, paths: [/], headers: {x-version: ["~*^v[0-9]+$"]}}`,
			request{target: "/", header: http.Header{"X-Version": {"V17"}}}, "/b"},
		{"header absent falls back", `
  - {name: ra, service: a, paths: [/]}
  - {name: rb, service: b, paths: [/], headers: {x-version: [v2]}}`,
			request{target: "/"}, "/a"},
		{"regex beats prefix of same field count", `
  - {name: ra, service: a, paths: [/users/list], strip_path: false}
  - {name: rb, service: b, paths: ["~/users/\\w+"], strip_path: false}`,
			request{target: "/users/list"}, "/b/users/list"},
		{"regex_priority orders regexes", `
  - {name: ra, service: a, paths: ["~/v\\d+"], regex_priority: 1, strip_path: false}
  - {name: rb, service: b, paths: ["~/v1"], regex_priority: 5, strip_path: false}`,
			request{target: "/v1"}, "/b/v1"},
		{"tie goes to the older route", `
  - {name: ra, service: a, paths: [/same], created_at: 200, strip_path: false}
  - {name: rb, service: b, paths: [/same], created_at: 100, strip_path: false}`,
			request{target: "/same"}, "/b/same"},
		{"normalized path matches", `
  - {name: ra, service: a, paths: [/a/b], strip_path: false}
  - {name: rb, service: b, paths: [/zzz]}`,
			request{target: "/x/../a/%62"}, "/a/a/b"},
		{"regex captures strip", `
  - {name: ra, service: a, paths: ["~/version/\\d+/service"], strip_path: true}
  - {name: rb, service: b, paths: [/zzz]}`,
			request{target: "/version/1/service/path"}, "/a/path"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			gw := startGateway(t, doc(c.routes), setup{})
			resp := send(t, gw, c.req)
			if c.want == "404" {
				if resp.StatusCode != http.StatusNotFound {
					t.Fatalf("GET %s = %d, want 404", c.req.target, resp.StatusCode)
				}
				return
			}
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s = %d %q, want 200", c.req.target, resp.StatusCode, resp.body)
			}
			if got := up.last(t).URI; got != c.want {
				t.Errorf("GET %s (Host %q) reached upstream as %q, want %q", c.req.target, c.req.host, got, c.want)
			}
		})
	}
}
