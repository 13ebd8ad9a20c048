package router

import (
	"strings"
	"testing"
)

// FuzzNormalizePath checks the properties routing and proxying rely on: the
// result is stable (a second normalization, by us or after EscapePath by the
// upstream's decoder, sees the same path), rooted, and free of dot and empty
// segments, and of escapes other than reserved characters.
func FuzzNormalizePath(f *testing.F) {
	for _, s := range []string{
		"/", "/a/%62/c", "/a%2fb", "/a/./b/../c", "//a///b", "/%2e%2e/x",
		"/%%32%65%%32%65/x", "/%zz", "/a/.%2E/b", "/\xff%20",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		n := NormalizePath(p)
		if again := NormalizePath(n); again != n {
			t.Fatalf("NormalizePath(%q) = %q, but NormalizePath(%q) = %q", p, n, n, again)
		}
		if back := NormalizePath(EscapePath(n)); back != n {
			t.Fatalf("NormalizePath(EscapePath(%q)) = %q, want it unchanged", n, back)
		}
		if strings.HasPrefix(p, "/") && !strings.HasPrefix(n, "/") {
			t.Fatalf("NormalizePath(%q) = %q, want a leading '/'", p, n)
		}
		if strings.Contains(n, "//") {
			t.Fatalf("NormalizePath(%q) = %q has an empty segment", p, n)
		}
		for _, seg := range strings.Split(n, "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("NormalizePath(%q) = %q has a dot segment", p, n)
			}
		}
		for i := 0; i < len(n); i++ {
			if n[i] != '%' {
				continue
			}
			if i+2 >= len(n) || !isHex(n[i+1]) || !isHex(n[i+2]) {
				t.Fatalf("NormalizePath(%q) = %q has a stray '%%' at %d", p, n, i)
			}
			if v := unhex(n[i+1])<<4 | unhex(n[i+2]); !isReserved(v) || n[i+1:i+3] != strings.ToUpper(n[i+1:i+3]) {
				t.Fatalf("NormalizePath(%q) = %q keeps %q encoded", p, n, n[i:i+3])
			}
		}
	})
}

// FuzzMatch routes arbitrary requests through a fixed router: no panic, and
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
		if m.Path != NormalizePath(path) {
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
