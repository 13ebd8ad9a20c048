package config

import (
	"strings"
	"testing"
)

func TestNormalizePath(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		// §7.1 examples.
		{"/a/%62/c", "/a/b/c"},
		{"/a%2fb", "/a%2Fb"},
		{"/a/./b/../c", "/a/c"},
		{"//a///b", "/a/b"},
		{"/%2e%2e/x", "/x"},

		// Already normalized.
		{"", ""},
		{"/", "/"},
		{"/a/b/", "/a/b/"},
		{"/a.b/..c/c../...", "/a.b/..c/c../..."},

		// Step 1: decoding; reserved characters stay encoded, upper-case.
		{"/%41%7a", "/Az"},
		{"/%7E%2D%5F%2E", "/~-_."},
		{"/%20%C3%A9", "/ \xc3\xa9"},
		{"/%00", "/\x00"},
		{"/%21%2a%27%28%29%3b%3a%40%26%3d%2b%24%2c%2f%3f%25%23%5b%5d", "/%21%2A%27%28%29%3B%3A%40%26%3D%2B%24%2C%2F%3F%25%23%5B%5D"},
		{"/%2541", "/%2541"},               // decoded once only
		{"/%252e%252e/x", "/%252e%252e/x"}, // still no dot segment
		{"/a%2F..%2Fb", "/a%2F..%2Fb"},     // an encoded '/' splits nothing
		{"/%", "/%25"},                     // a stray '%' is kept encoded
		{"/%zz", "/%25zz"},
		{"/%4", "/%254"},
		{"/%%34%31", "/%2541"}, // no new escape out of a stray '%'
		{"/%%32%65%%32%65/x", "/%252e%252e/x"},

		// Step 2: dot segments, never above the root.
		{"/..", "/"},
		{"/../../a", "/a"},
		{"/a/..", "/"},
		{"/a/.", "/a/"},
		{"/a/b/..", "/a/"},
		{"/a/b/../", "/a/"},
		{"/a/./", "/a/"},
		{"/a/b/c/./../../g", "/a/g"},
		{"/a/%2E/b", "/a/b"},
		{"/a/.%2e/b", "/b"},
		{"/a/%2E%2e/b", "/b"},

		// Step 3: repeated slashes, also those dot removal leaves behind.
		{"///", "/"},
		{"/a//", "/a/"},
		{"/a/.//../b", "/a/b"},
		{"//..//a", "/a"},
		{"/a//..//b", "/a/b"},
	}
	for _, tt := range tests {
		if got := NormalizePath(tt.in); got != tt.want {
			t.Errorf("NormalizePath(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestNormalizePathNoAllocs(t *testing.T) {
	p := "/api/v1/users/42/orders"
	if n := testing.AllocsPerRun(100, func() { _ = NormalizePath(p) }); n != 0 {
		t.Errorf("NormalizePath(%q) allocates %v times, want 0", p, n)
	}
}

func TestEscapePath(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"/a/b", "/a/b"},
		{"/a b", "/a%20b"},
		{"/\xc3\xa9", "/%C3%A9"},
		{"/%2F%25", "/%2F%25"},
		{"/!#$&'()*+,:;=?@[]~-._", "/!#$&'()*+,:;=?@[]~-._"},
		{"/\"<>\\^`{|}\x00\x7f", "/%22%3C%3E%5C%5E%60%7B%7C%7D%00%7F"},
	}
	for _, tt := range tests {
		if got := EscapePath(tt.in); got != tt.want {
			t.Errorf("EscapePath(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

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

func BenchmarkNormalizePath(b *testing.B) {
	for _, p := range []string{"/api/v1/users/42/orders", "/api/%76%31//users/./42/../42/orders%2Fx"} {
		b.Run(p, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				NormalizePath(p)
			}
		})
	}
}
