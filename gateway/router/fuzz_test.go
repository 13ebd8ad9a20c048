package router

import (
	"github.com/datakit-gateway/datakit/gateway/config"
	"strings"
	"testing"
)

// a match is consistent with the route that produced it.
func FuzzMatch(f *testing.F) {
	r, err := New([]Route{
		{ID: "1", Name: "prefix", Paths: []string{"/api/", "/a"}, StripPath: true, Service: &Service{Path: "/up"}},
		{ID: "2", Name: "regex", Paths: []string{`~/users/(?<id>\d+)(/.*)?`}, StripPath: true, Service: &Service{Path: "/u/"}},
		{ID: "3", Name: "host", Hosts: []string{"*.example.com", "example.*:8080"}, Methods: []string{"GET"}},
		{ID: "4", Name: "header", Headers: map[string][]string{"X-V": {"~*^v[0-9]+$", "beta"}}, Paths: []string{"/"}},
		{ID: "5", Name: "sni", SNIs: []string{"*.tls.test"}, Protocols: []string{"https"}, Paths: []string{"/"}},
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Add("GET", "http", "www.example.com", "/api/x", "v1", "")
	f.Add("POST", "https", "example.org:8080", "/users/12/%2e%2e/x", "BETA", "a.tls.test")
	f.Add("GET", "http", "[::1]:80", "//a/../api//", "", "")
	f.Fuzz(func(t *testing.T, method, scheme, host, path, header, sni string) {
		req := Request{Method: method, Scheme: scheme, Host: host, Port: 8000, Path: path,
			Headers: map[string][]string{"X-V": {header}}, SNI: sni}
		m, ok := r.Match(req)
		if !ok {
			return
		}
		if m.Path != config.NormalizePath(path) {
			t.Fatalf("Match(%q).Path = %q, want the normalized path", path, m.Path)
		}
		if !strings.HasPrefix(m.Path, m.MatchedPath) {
			t.Fatalf("Match(%q): matched %q is no prefix of %q", path, m.MatchedPath, m.Path)
		}
		if m.StrippedPrefix != "" && m.StrippedPrefix != m.MatchedPath {
			t.Fatalf("Match(%q): stripped %q, matched %q", path, m.StrippedPrefix, m.MatchedPath)
		}
		up := m.UpstreamPath()
		if strings.HasPrefix(path, "/") && !strings.HasPrefix(up, "/") {
			t.Fatalf("Match(%q).UpstreamPath() = %q, want a leading '/'", path, up)
		}
	})
}
