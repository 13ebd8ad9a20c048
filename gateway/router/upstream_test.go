package router

import (
	"bufio"
	"os"
	"strings"
	"testing"
)

type upstreamVector struct {
	row       string
	service   string
	route     string // "" = no paths
	stripPath bool
	request   string
	upstream  string
}

// loadUpstreamVectors reads the §7.6 table, expanding "*" into both
// strip_path values.
func loadUpstreamVectors(t *testing.T) []upstreamVector {
	t.Helper()
	f, err := os.Open("testdata/upstream_path_v0.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []upstreamVector
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
		v := upstreamVector{row: fs[0], service: fs[1], route: fs[2], request: fs[4], upstream: fs[5]}
		if v.route == "-" {
			v.route = ""
		}
		switch fs[3] {
		case "T":
			v.stripPath = true
			out = append(out, v)
		case "F":
			out = append(out, v)
		case "*":
			out = append(out, v)
			v.stripPath = true
			out = append(out, v)
		default:
			t.Fatalf("bad strip_path in %q", line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestUpstreamPathVectors runs every §7.6 vector through New, Match and
// Match.UpstreamPath, as the proxy does.
func TestUpstreamPathVectors(t *testing.T) {
	vectors := loadUpstreamVectors(t)
	if len(vectors) < 82 {
		t.Fatalf("loaded %d vectors, want at least 82", len(vectors))
	}
	for _, v := range vectors {
		name := v.row + "/strip=" + map[bool]string{true: "T", false: "F"}[v.stripPath]
		t.Run(name, func(t *testing.T) {
			rt := Route{Name: "r", StripPath: v.stripPath, Service: &Service{Path: v.service}}
			if v.route != "" {
				rt.Paths = []string{v.route}
			}
			r, err := New([]Route{rt})
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			m, ok := r.Match(Request{Method: "GET", Scheme: "http", Host: "example.test", Path: v.request})
			if !ok {
				t.Fatalf("Match(%q) found no route", v.request)
			}
			if got := m.UpstreamPath(); got != v.upstream {
				t.Errorf("service %q route %q strip=%v: UpstreamPath(%q) = %q, want %q",
					v.service, v.route, v.stripPath, v.request, got, v.upstream)
			}
		})
	}
}

func TestUpstreamPathRegex(t *testing.T) {
	r, err := New([]Route{{Name: "v", Paths: []string{`~/version/\d+/service`}, StripPath: true, Service: &Service{}}})
	if err != nil {
		t.Fatal(err)
	}
	m, ok := r.Match(Request{Method: "GET", Path: "/version/1/service/path"})
	if !ok {
		t.Fatal("no match")
	}
	if got, want := m.StrippedPrefix, "/version/1/service"; got != want {
		t.Errorf("StrippedPrefix = %q, want %q", got, want)
	}
	if got, want := m.UpstreamPath(), "/path"; got != want {
		t.Errorf("UpstreamPath(%q) = %q, want %q", "/version/1/service/path", got, want)
	}
}

func TestUpstreamPath(t *testing.T) {
	tests := []struct {
		service, stripped, path, want string
	}{
		{"", "", "/a/b", "/a/b"},             // no service: base "/"
		{"", "/a", "/a/b", "/b"},             // no service, strip_path
		{"/s", "/x", "/a/b", "/s/a/b"},       // prefix not in path: nothing stripped
		{"/s", "/a", "/a.", "/s"},            // "." alone
		{"/s/", "/a", "/a..", "/s"},          // ".." alone, base with '/'
		{"/s/", "/a", "/a.../b", "/s/.../b"}, // "..." is no dot segment
	}
	for _, tt := range tests {
		if got := UpstreamPath(tt.service, tt.stripped, tt.path); got != tt.want {
			t.Errorf("UpstreamPath(%q, %q, %q) = %q, want %q", tt.service, tt.stripped, tt.path, got, tt.want)
		}
	}
}

func TestHostHeader(t *testing.T) {
	tests := []struct {
		name         string
		preserve     bool
		client, hdr  string
		target       string
		port         int
		scheme, want string
	}{
		{"preserve", true, "Client.test:8000", "up.test", "svc.test", 8080, "http", "Client.test:8000"},
		{"upstream host_header", false, "client.test", "up.test:81", "svc.test", 8080, "http", "up.test:81"},
		{"http default port", false, "client.test", "", "svc.test", 80, "http", "svc.test"},
		{"https default port", false, "client.test", "", "svc.test", 443, "https", "svc.test"},
		{"443 over http", false, "client.test", "", "svc.test", 443, "http", "svc.test:443"},
		{"other port", false, "client.test", "", "svc.test", 8080, "http", "svc.test:8080"},
		{"ipv6 with port", false, "", "", "::1", 8080, "http", "[::1]:8080"},
		{"ipv6 bracketed default port", false, "", "", "[::1]", 80, "http", "[::1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := HostHeader(tt.preserve, tt.client, tt.hdr, tt.target, tt.port, tt.scheme)
			if got != tt.want {
				t.Errorf("HostHeader(%v, %q, %q, %q, %d, %q) = %q, want %q",
					tt.preserve, tt.client, tt.hdr, tt.target, tt.port, tt.scheme, got, tt.want)
			}
		})
	}
}
