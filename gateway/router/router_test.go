package router

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
)

// routeCase is one request against a set of routes and the name of the
// route expected to match it ("" = none).
type routeCase struct {
	name string
	req  Request
	want string
}

func get(host, path string) Request {
	return Request{Method: "GET", Scheme: "http", Host: host, Port: 8000, Path: path}
}

func mustNew(t testing.TB, routes []Route) *Router {
	t.Helper()
	r, err := New(routes)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return r
}

func runCases(t *testing.T, routes []Route, cases []routeCase) {
	t.Helper()
	r := mustNew(t, routes)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := ""
			if m, ok := r.Match(tc.req); ok {
				got = m.Route.Name
			}
			if got != tc.want {
				t.Errorf("Match(%s %s%s) = %q, want %q", tc.req.Method, tc.req.Host, tc.req.Path, got, tc.want)
			}
		})
	}
}

func TestMatchPaths(t *testing.T) {
	routes := []Route{
		{Name: "root", Paths: []string{"/"}},
		{Name: "users", Paths: []string{"/users"}},
		{Name: "users-slash", Paths: []string{"/users/"}},
		{Name: "orders", Paths: []string{"/orders", "/ord"}},
		{Name: "semi", Paths: []string{"/a%2Fb"}},
	}
	runCases(t, routes, []routeCase{
		{"root", get("x", "/"), "root"},
		{"fallback to root", get("x", "/other"), "root"},
		{"prefix", get("x", "/users"), "users"},
		{"prefix is bytes, not segments", get("x", "/usersxyz"), "users"},
		{"longer prefix wins", get("x", "/users/1"), "users-slash"},
		{"decoded before matching", get("x", "/%75sers/1"), "users-slash"},
		{"dot segments removed before matching", get("x", "/admin/../users/1"), "users-slash"},
		{"slashes merged before matching", get("x", "//users//1"), "users-slash"},
		{"encoded slash is no separator", get("x", "/users%2F1"), "users"},
		{"lower-case reserved escape", get("x", "/a%2fb"), "semi"},
		{"several prefixes, short", get("x", "/ordx"), "orders"},
		{"several prefixes, long", get("x", "/orders/7"), "orders"},
		{"case-sensitive", get("x", "/USERS"), "root"},
	})
}

func TestMatchNoRoute(t *testing.T) {
	runCases(t, []Route{{Name: "api", Paths: []string{"/api"}}}, []routeCase{
		{"no prefix", get("x", "/"), ""},
		{"other path", get("x", "/apx"), ""},
		{"escaped prefix stays escaped", get("x", "/ap%69"), "api"},
		{"dot segment climbs out", get("x", "/api/../x"), ""},
	})
}

func TestMatchRegexPaths(t *testing.T) {
	r := mustNew(t, []Route{
		{Name: "user", Paths: []string{`~/users/(?<id>\d+)/(\w+)(/x)?$`}},
		{Name: "version", Paths: []string{`~/v(?P<major>\d+)`, `~/version/(\d+)`}, StripPath: true},
		{Name: "anchored", Paths: []string{`~/x|/y`}},
	})
	tests := []struct {
		path              string
		want              string
		matched, stripped string
		unnamed           []string
		named             map[string]string
	}{
		{"/users/42/orders", "user", "/users/42/orders", "", []string{"42", "orders", ""}, map[string]string{"id": "42"}},
		{"/users/42/orders/x", "user", "/users/42/orders/x", "", []string{"42", "orders", "/x"}, map[string]string{"id": "42"}},
		{"/users/abc/orders", "", "", "", nil, nil},
		{"/v2/items", "version", "/v2", "/v2", []string{"2"}, map[string]string{"major": "2"}},
		{"/version/3/items", "version", "/version/3", "/version/3", []string{"3"}, nil},
		{"/y/z", "anchored", "/y", "", nil, nil},
		{"/z/x", "", "", "", nil, nil}, // ^(?:…) anchors every alternative
		{"/%76%31", "version", "/v1", "/v1", []string{"1"}, map[string]string{"major": "1"}},
	}
	for _, tt := range tests {
		m, ok := r.Match(get("x", tt.path))
		got := ""
		if ok {
			got = m.Route.Name
		}
		if got != tt.want {
			t.Errorf("Match(%q) = %q, want %q", tt.path, got, tt.want)
			continue
		}
		if !ok {
			continue
		}
		if m.MatchedPath != tt.matched || m.StrippedPrefix != tt.stripped {
			t.Errorf("Match(%q) matched %q stripped %q, want %q, %q", tt.path, m.MatchedPath, m.StrippedPrefix, tt.matched, tt.stripped)
		}
		if !slices.Equal(m.Captures.Unnamed, tt.unnamed) || !maps.Equal(m.Captures.Named, tt.named) {
			t.Errorf("Match(%q) captures = %v %v, want %v %v", tt.path, m.Captures.Unnamed, m.Captures.Named, tt.unnamed, tt.named)
		}
	}
}

func TestMatchHosts(t *testing.T) {
	routes := []Route{
		{Name: "exact", Hosts: []string{"api.example.com"}},
		{Name: "suffix", Hosts: []string{"*.example.com"}},
		{Name: "prefix", Hosts: []string{"example.*"}},
		{Name: "port", Hosts: []string{"ported.test:8443"}},
		{Name: "listener-port", Hosts: []string{"listener.test:8000"}},
		{Name: "ipv6", Hosts: []string{"[::1]"}},
		{Name: "ipv6-bare", Hosts: []string{"::2"}},
		{Name: "many", Hosts: []string{"one.test", "two.test"}},
	}
	runCases(t, routes, []routeCase{
		{"exact", get("api.example.com", "/"), "exact"},
		{"exact wins over wildcard", get("api.example.com:8000", "/"), "exact"},
		{"case-insensitive", get("API.Example.COM", "/"), "exact"},
		{"trailing dot", get("api.example.com.", "/"), "exact"},
		{"trailing dot with port", get("api.example.com.:9000", "/"), "exact"},
		{"leftmost wildcard", get("www.example.com", "/"), "suffix"},
		{"leftmost wildcard, deeper", get("a.b.example.com", "/"), "suffix"},
		{"leftmost wildcard needs a label", get("example.com", "/"), "prefix"}, // but is example.*
		{"rightmost wildcard", get("example.org", "/"), "prefix"},
		{"rightmost wildcard, deeper", get("example.co.uk", "/"), "prefix"},
		{"rightmost wildcard is a prefix", get("www.example.org", "/"), ""},
		{"port required", get("ported.test", "/"), ""},
		{"port matches", get("ported.test:8443", "/"), "port"},
		{"port differs", get("ported.test:8444", "/"), ""},
		{"listener port when Host has none", get("listener.test", "/"), "listener-port"},
		{"Host port beats listener port", get("listener.test:9000", "/"), ""},
		{"ipv6", get("[::1]:8000", "/"), "ipv6"},
		{"bare ipv6 route", get("[::2]", "/"), "ipv6-bare"},
		{"any of several", get("two.test", "/"), "many"},
		{"unknown host", get("other.test", "/"), ""},
		{"invalid port", get("ported.test:x", "/"), ""},
	})
}

func TestMatchMethodsHeaders(t *testing.T) {
	routes := []Route{
		{Name: "get", Methods: []string{"GET", "HEAD"}, Paths: []string{"/m"}},
		{Name: "post", Methods: []string{"POST"}, Paths: []string{"/m"}},
		{Name: "version", Headers: map[string][]string{"x-version": {"v1", "V2"}}, Paths: []string{"/h"}},
		{Name: "regex", Headers: map[string][]string{"X-Version": {"~*^beta-\\d+$"}}, Paths: []string{"/h"}},
		{Name: "two", Headers: map[string][]string{"X-Version": {"v3"}, "X-Team": {"a"}}, Paths: []string{"/h"}},
	}
	withHeaders := func(path string, h map[string][]string) Request {
		r := get("x", path)
		r.Headers = h
		return r
	}
	post := get("x", "/m")
	post.Method = "POST"
	put := get("x", "/m")
	put.Method = "PUT"
	lower := get("x", "/m")
	lower.Method = "get"
	runCases(t, routes, []routeCase{
		{"GET", get("x", "/m"), "get"},
		{"HEAD", Request{Method: "HEAD", Path: "/m"}, "get"},
		{"POST", post, "post"},
		{"other method", put, ""},
		{"methods are exact", lower, ""},
		{"header value", withHeaders("/h", map[string][]string{"X-Version": {"v1"}}), "version"},
		{"header value any case", withHeaders("/h", map[string][]string{"X-Version": {"v2"}}), "version"},
		{"some line matches", withHeaders("/h", map[string][]string{"X-Version": {"v9", "V1"}}), "version"},
		{"header regex", withHeaders("/h", map[string][]string{"X-Version": {"Beta-12"}}), "regex"},
		{"header regex no match", withHeaders("/h", map[string][]string{"X-Version": {"beta-x"}}), ""},
		{"header missing", get("x", "/h"), ""},
		{"two headers", withHeaders("/h", map[string][]string{"X-Version": {"v3"}, "X-Team": {"A"}}), "two"},
		{"one of two headers", withHeaders("/h", map[string][]string{"X-Version": {"v3"}}), ""},
	})
}

func TestMatchProtocolsSNIs(t *testing.T) {
	routes := []Route{
		{Name: "plain", Protocols: []string{"http"}, Paths: []string{"/plain"}},
		{Name: "tls", Protocols: []string{"https"}, Paths: []string{"/tls"}},
		{Name: "sni", Protocols: []string{"http", "https"}, SNIs: []string{"api.test", "*.wild.test"}, Paths: []string{"/sni"}},
	}
	tls := func(path, sni string) Request {
		return Request{Method: "GET", Scheme: "https", Host: "x", Port: 8443, Path: path, SNI: sni}
	}
	runCases(t, routes, []routeCase{
		{"http-only over http", get("x", "/plain"), "plain"},
		{"http-only over https", tls("/plain", ""), ""},
		{"https-only over https", tls("/tls", ""), "tls"},
		{"https-only over http matches, for the redirect", get("x", "/tls"), "tls"},
		{"sni", tls("/sni", "api.test"), "sni"},
		{"sni trailing dot", tls("/sni", "api.test."), "sni"},
		{"sni wildcard", tls("/sni", "a.wild.test"), "sni"},
		{"sni mismatch", tls("/sni", "other.test"), ""},
		{"sni missing", tls("/sni", ""), ""},
		{"plain http ignores snis", get("x", "/sni"), "sni"},
	})
}

func TestHTTPSOnly(t *testing.T) {
	tests := []struct {
		protocols []string
		want      bool
	}{
		{nil, false},
		{[]string{"http"}, false},
		{[]string{"https"}, true},
		{[]string{"http", "https"}, false},
	}
	for _, tt := range tests {
		r := Route{Protocols: tt.protocols}
		if got := r.HTTPSOnly(); got != tt.want {
			t.Errorf("Route{Protocols: %q}.HTTPSOnly() = %v, want %v", tt.protocols, got, tt.want)
		}
	}
}

// TestMatchPriority covers §7.3: each case is a pair of routes that both
// match the request; the expected winner is named.
func TestMatchPriority(t *testing.T) {
	h := func(kv ...string) map[string][]string {
		m := map[string][]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = []string{kv[i+1]}
		}
		return m
	}
	req := Request{Method: "GET", Scheme: "https", Host: "api.example.com", Path: "/users/123/orders", SNI: "api.example.com",
		Headers: map[string][]string{"X-A": {"1"}, "X-B": {"2"}, "X-C": {"3"}}}
	tests := []struct {
		name string
		a, b Route // b is listed second; want names the winner
		want string
	}{
		{"more fields win",
			Route{Name: "a", Paths: []string{"/users"}},
			Route{Name: "b", Paths: []string{"/"}, Methods: []string{"GET"}}, "b"},
		{"more fields beat regex",
			Route{Name: "a", Paths: []string{`~/users/\d+`}, RegexPriority: 100},
			Route{Name: "b", Paths: []string{"/"}, Hosts: []string{"*.example.com"}}, "b"},
		{"snis count as a field",
			Route{Name: "a", Paths: []string{"/users/123"}},
			Route{Name: "b", Paths: []string{"/"}, SNIs: []string{"api.example.com"}}, "b"},
		{"plain hosts beat wildcard hosts",
			Route{Name: "a", Hosts: []string{"*.example.com"}, Headers: h("X-A", "1", "X-B", "2")},
			Route{Name: "b", Hosts: []string{"api.example.com"}, Headers: h("X-A", "1")}, "b"},
		{"one wildcard spoils plain hosts",
			Route{Name: "a", Hosts: []string{"api.example.com", "*.other.com"}},
			Route{Name: "b", Hosts: []string{"api.example.com"}}, "b"},
		{"more header names win",
			Route{Name: "a", Headers: h("X-A", "1"), Paths: []string{`~/users/\d+`}},
			Route{Name: "b", Headers: h("X-A", "1", "X-B", "2"), Paths: []string{"/"}}, "b"},
		{"regex beats longer prefix",
			Route{Name: "a", Paths: []string{"/users/123/orders"}},
			Route{Name: "b", Paths: []string{`~/users`}}, "b"},
		{"higher regex_priority wins",
			Route{Name: "a", Paths: []string{`~/users/\d+/orders`}, RegexPriority: 1},
			Route{Name: "b", Paths: []string{`~/users`}, RegexPriority: 2}, "b"},
		{"negative regex_priority counts as 0",
			Route{Name: "a", Paths: []string{`~/users`}, RegexPriority: -5, CreatedAt: 1},
			Route{Name: "b", Paths: []string{`~/users`}, RegexPriority: 0, CreatedAt: 2}, "a"},
		{"regex_priority ignored on prefix paths",
			Route{Name: "a", Paths: []string{"/users"}, RegexPriority: 100},
			Route{Name: "b", Paths: []string{"/users/"}}, "b"},
		{"longer prefix wins",
			Route{Name: "a", Paths: []string{"/users"}},
			Route{Name: "b", Paths: []string{"/users/123"}}, "b"},
		{"tie: older route wins",
			Route{Name: "a", Paths: []string{"/users"}, CreatedAt: 20, ID: "1"},
			Route{Name: "b", Paths: []string{"/users"}, CreatedAt: 10, ID: "2"}, "b"},
		{"tie: smaller id wins",
			Route{Name: "a", Paths: []string{"/users"}, CreatedAt: 10, ID: "bbb"},
			Route{Name: "b", Paths: []string{"/users"}, CreatedAt: 10, ID: "aaa"}, "b"},
		{"tie: input order last",
			Route{Name: "a", Paths: []string{"/users"}},
			Route{Name: "b", Paths: []string{"/users"}}, "a"},
		{"a route's longer matcher beats another's shorter",
			Route{Name: "a", Paths: []string{"/u", "/users/123"}, CreatedAt: 2},
			Route{Name: "b", Paths: []string{"/users"}, CreatedAt: 1}, "a"},
		{"no paths loses to paths",
			Route{Name: "a", Hosts: []string{"api.example.com"}},
			Route{Name: "b", Hosts: []string{"api.example.com"}, Paths: []string{"/"}}, "b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, order := range [][]Route{{tt.a, tt.b}, {tt.b, tt.a}} {
				if tt.name == "tie: input order last" {
					order = []Route{tt.a, tt.b}
				}
				r := mustNew(t, order)
				m, ok := r.Match(req)
				if !ok {
					t.Fatalf("Match(%q) found no route", req.Path)
				}
				if m.Route.Name != tt.want {
					t.Errorf("Match(%q) with routes %q, %q = %q, want %q", req.Path, order[0].Name, order[1].Name, m.Route.Name, tt.want)
				}
			}
		})
	}
}

// TestMatchSplitMatchers checks that one route's regex and prefix paths of
// different lengths compete separately (§7.3).
func TestMatchSplitMatchers(t *testing.T) {
	r := mustNew(t, []Route{
		{Name: "mixed", Paths: []string{"/a", "~/re/\\d+", "/abcdef"}, CreatedAt: 2},
		{Name: "mid", Paths: []string{"/abc"}, CreatedAt: 1},
	})
	tests := []struct {
		path, want, matched string
	}{
		{"/abcdefg", "mixed", "/abcdef"},
		{"/abcd", "mid", "/abc"},
		{"/ab", "mixed", "/a"},
		{"/re/1", "mixed", "/re/1"},
	}
	for _, tt := range tests {
		m, ok := r.Match(get("x", tt.path))
		if !ok || m.Route.Name != tt.want || m.MatchedPath != tt.matched {
			t.Errorf("Match(%q) = %q %q (%v), want %q %q", tt.path, m.MatchedPath, routeName(m), ok, tt.want, tt.matched)
		}
	}
}

func routeName(m Match) string {
	if m.Route == nil {
		return ""
	}
	return m.Route.Name
}

func TestMatchServices(t *testing.T) {
	enabled := &Service{Path: "/up", Handle: "svc-1"}
	disabled := &Service{Path: "/off", Disabled: true}
	r := mustNew(t, []Route{
		{Name: "on", Paths: []string{"/on"}, Service: enabled, Handle: 1},
		{Name: "off", Paths: []string{"/off"}, Service: disabled},
		{Name: "off-bad", Paths: []string{"~/(?=x)"}, Service: disabled}, // not compiled, not checked
		{Name: "none", Paths: []string{"/none"}},
	})
	enabled.Path = "/changed" // New keeps its own copy

	m, ok := r.Match(get("x", "/on/x"))
	if !ok || m.Service == nil || m.Service.Handle != "svc-1" || m.Route.Handle != 1 {
		t.Fatalf("Match(/on/x) = %+v, %v; want route on with its handles", m, ok)
	}
	if got, want := m.UpstreamPath(), "/up/on/x"; got != want {
		t.Errorf("UpstreamPath(/on/x) = %q, want %q", got, want)
	}
	if _, ok := r.Match(get("x", "/off")); ok {
		t.Errorf("Match(/off) matched a route of a disabled service")
	}
	m, ok = r.Match(get("x", "/none/y"))
	if !ok || m.Service != nil {
		t.Fatalf("Match(/none/y) = %+v, %v; want route none without service", m, ok)
	}
	if got, want := m.UpstreamPath(), "/none/y"; got != want {
		t.Errorf("UpstreamPath(/none/y) = %q, want %q", got, want)
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name  string
		route Route
		want  []string // substrings of the error, in order
	}{
		{"lookahead", Route{Name: "r", Paths: []string{"~/(?=a)"}},
			[]string{`routes[0] "r": paths[0]: invalid regex: '/(?=a)' (invalid or unsupported Perl syntax: ` + "`(?=`)"}},
		{"backreference", Route{Name: "r", Paths: []string{`~/(a)\1`}},
			[]string{`paths[0]: invalid regex: '/(a)\1' (invalid escape sequence: ` + "`\\1`)"}},
		{"non-normalized", Route{Name: "r", Paths: []string{"/a/../b"}},
			[]string{`paths[0]: non-normalized path, consider use '/b' instead`}},
		{"empty segment", Route{Name: "r", Paths: []string{"/a//b"}},
			[]string{`paths[0]: non-normalized path, consider use '/a/b' instead`}},
		{"lower-case escape", Route{Name: "r", Paths: []string{"/a%2fb"}},
			[]string{`consider use '/a%2Fb' instead`}},
		{"relative", Route{ID: "id-1", Paths: []string{"a", "~a"}},
			[]string{`routes[0] "id-1": paths[0]: should start with: / (fixed path) or ~/ (regex path)`, `paths[1]: should start`}},
		{"wildcard in the middle", Route{Name: "r", Hosts: []string{"a.*.com"}},
			[]string{`hosts[0]: invalid wildcard: must be placed at leftmost or rightmost label`}},
		{"two wildcards", Route{Name: "r", Hosts: []string{"*.a.*"}},
			[]string{`hosts[0]: invalid wildcard: must have at most one wildcard`}},
		{"bad port", Route{Name: "r", Hosts: []string{"a.test:99999"}},
			[]string{`hosts[0]: invalid port number`}},
		{"sni port", Route{Name: "r", SNIs: []string{"a.test:443"}},
			[]string{`snis[0]: must not have a port`}},
		{"host header", Route{Name: "r", Headers: map[string][]string{"Host": {"x"}}},
			[]string{`headers["Host"]: cannot contain 'host' header`}},
		{"header regex", Route{Name: "r", Headers: map[string][]string{"X-A": {"ok", "~*(x"}}},
			[]string{`headers["X-A"][1]: invalid regex: '(x' (missing closing ): ` + "`(x`)"}},
		{"protocol", Route{Name: "r", Protocols: []string{"grpc"}},
			[]string{`protocols[0]: expected one of: http, https`}},
		{"quote breaks the anchor", Route{Name: "r", Paths: []string{`~/\Qa`}},
			[]string{`paths[0]: invalid regex: '/\Qa' (missing closing ): `}},
		{"no name", Route{Paths: []string{"x"}},
			[]string{`routes[0]: paths[0]: should start`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New([]Route{tt.route})
			if err == nil {
				t.Fatalf("New(%+v) = nil error, want %q", tt.route, tt.want)
			}
			msg := err.Error()
			for _, w := range tt.want {
				i := strings.Index(msg, w)
				if i < 0 {
					t.Fatalf("New(%+v) = %q, want it to contain %q", tt.route, msg, w)
				}
				msg = msg[i+len(w):]
			}
			var re *RouteError
			if !errors.As(err, &re) {
				t.Errorf("New(%+v) error %T is no *RouteError", tt.route, err)
			}
		})
	}
}

func TestNewCollectsAllErrors(t *testing.T) {
	_, err := New([]Route{
		{Name: "ok", Paths: []string{"/ok"}},
		{Name: "bad1", Paths: []string{"~/("}},
		{Name: "bad2", Hosts: []string{"*"}, Paths: []string{"/x/"}, Methods: []string{""}},
	})
	if err == nil {
		t.Fatal("New = nil error, want three")
	}
	var got []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var re *RouteError
		if !errors.As(e, &re) {
			t.Fatalf("error %v is no *RouteError", e)
		}
		got = append(got, fmt.Sprintf("%d %s %s", re.Index, re.Route, re.Field))
	}
	want := []string{"1 bad1 paths[0]", "2 bad2 methods[0]", "2 bad2 hosts[0]"}
	if !slices.Equal(got, want) {
		t.Errorf("New errors = %q, want %q", got, want)
	}
}

// TestMatchConcurrent lets the race detector check that Match does not write
// shared state.
func TestMatchConcurrent(t *testing.T) {
	r := mustNew(t, []Route{
		{Name: "a", Paths: []string{`~/a/(?<n>\d+)`}},
		{Name: "b", Paths: []string{"/b"}, Hosts: []string{"*.test"}},
	})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 200 {
				path := fmt.Sprintf("/a/%d", i*1000+j)
				m, ok := r.Match(get("x.test", path))
				if !ok || m.Captures.Named["n"] != path[3:] {
					t.Errorf("Match(%q) = %+v, %v", path, m, ok)
					return
				}
				if _, ok := r.Match(get("x.test", "/b/%2e%2e/b")); !ok {
					t.Errorf("Match(/b/%%2e%%2e/b) found no route")
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestMatchAllocs(t *testing.T) {
	var routes []Route
	for i := range 50 {
		routes = append(routes, Route{Name: fmt.Sprint(i), Paths: []string{fmt.Sprintf("/svc%d/", i)}, Hosts: []string{fmt.Sprintf("h%d.test", i)}})
	}
	r := mustNew(t, routes)
	req := get("h7.test:8000", "/svc7/items/1")
	if n := testing.AllocsPerRun(100, func() { r.Match(req) }); n != 0 {
		t.Errorf("Match(prefix route) allocates %v times, want 0", n)
	}
}
