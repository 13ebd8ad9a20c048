package router

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

func TestRegexLiteral(t *testing.T) {
	tests := []struct{ re, want string }{
		{`/r12/(?<id>\d+)/items`, "/r12/"},
		{`/version/\d+/service`, "/version/"},
		{`/a/b|/a/c`, "/a/"},
		{`/x|/y`, "/"},
		{`/(?i)abc/`, "/"},
		{`/(api)/v1`, "/api/v1"},
		{`/é/x`, "/é/x"},
		{`(`, ""},
	}
	for _, tt := range tests {
		if got := regexLiteral(tt.re); got != tt.want {
			t.Errorf("regexLiteral(%q) = %q, want %q", tt.re, got, tt.want)
		}
	}
}

// TestIndexAgreesWithScan compares indexed matching with a plain scan of all
// matchers in priority order, over random routes and requests.
func TestIndexAgreesWithScan(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func(vals ...string) string { return vals[rng.IntN(len(vals))] }
	segs := []string{"a", "ab", "api", "users", "v1", "zz"}
	randPath := func() string {
		p := ""
		for range 1 + rng.IntN(3) {
			p += "/" + pick(segs...)
		}
		if rng.IntN(3) == 0 {
			p += "/"
		}
		return p
	}
	matches, pinned := 0, 0
	for round := range 50 {
		var routes []Route
		for i := range 30 {
			rt := Route{ID: fmt.Sprint(rng.IntN(5)), Name: fmt.Sprintf("r%d", i), CreatedAt: int64(rng.IntN(3))}
			for range 1 + rng.IntN(2) {
				switch rng.IntN(3) {
				case 0:
					rt.Paths = append(rt.Paths, randPath())
				case 1:
					rt.Paths = append(rt.Paths, "/"+pick(segs...))
				default:
					rt.Paths = append(rt.Paths, "~"+randPath()+pick("", `/\w+`, "|/api", "(/.*)?"))
				}
			}
			for range rng.IntN(3) {
				rt.Hosts = append(rt.Hosts, pick("a.test", "B.test", "*.test", "a.*", "a.test:8000"))
			}
			if rng.IntN(4) == 0 {
				rt.Methods = []string{pick("GET", "POST")}
			}
			rt.RegexPriority = int64(rng.IntN(3))
			routes = append(routes, rt)
		}
		r := mustNew(t, routes)
		pinned += len(r.matchers) - len(r.index.rest)
		scan := *r
		scan.index = index{}
		for i := range r.matchers {
			scan.index.rest = append(scan.index.rest, int32(i))
		}
		for range 200 {
			req := Request{Method: pick("GET", "POST"), Scheme: "http", Host: pick("a.test", "A.TEST:8000", "b.test", "x.test", "a.org"), Port: 8000, Path: randPath()}
			got, gok := r.Match(req)
			want, wok := scan.Match(req)
			if gok != wok || routeName(got) != routeName(want) || got.MatchedPath != want.MatchedPath {
				t.Fatalf("round %d: Match(%s %s) = %q %q, scan = %q %q", round, req.Host, req.Path, routeName(got), got.MatchedPath, routeName(want), want.MatchedPath)
			}
			if gok {
				matches++
			}
		}
	}
	// Guard the test's own usefulness: both outcomes and the index occur.
	if matches < 1000 || matches > 9800 || pinned < 500 {
		t.Errorf("%d of 10000 requests matched, %d matchers pinned; the random setup needs adjusting", matches, pinned)
	}
}
