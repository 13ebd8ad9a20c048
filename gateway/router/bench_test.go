package router

import (
	"fmt"
	"testing"
)

// benchRoutes builds n routes of one kind ("prefix", "host", "regex",
// "unindexed") or a third of each of the first three ("mixed"), and requests
// that hit the last route of each kind. "unindexed" routes (a prefix without
// a full first segment, wildcard hosts) are all scanned: the worst case.
func benchRoutes(kind string, n int) ([]Route, []Request) {
	var routes []Route
	var hits []Request
	add := func(k string, i int) {
		r := Route{ID: fmt.Sprintf("%08d", i), Name: fmt.Sprintf("%s-%d", k, i), StripPath: true, Service: &Service{Path: "/up"}}
		switch k {
		case "prefix":
			r.Paths = []string{fmt.Sprintf("/svc%d/", i)}
		case "host":
			r.Hosts = []string{fmt.Sprintf("h%d.example.com", i)}
			r.Paths = []string{"/"}
		case "regex":
			r.Paths = []string{fmt.Sprintf(`~/r%d/(?<id>\d+)/items`, i)}
		case "unindexed":
			r.Paths = []string{fmt.Sprintf("/u%d", i)}
			r.Hosts = []string{fmt.Sprintf("*.h%d.test", i)}
		}
		routes = append(routes, r)
	}
	last := map[string]int{}
	for i := range n {
		k := kind
		if kind == "mixed" {
			k = []string{"prefix", "host", "regex"}[i%3]
		}
		add(k, i)
		last[k] = i
	}
	for _, k := range []string{"prefix", "host", "regex", "unindexed"} {
		i, ok := last[k]
		if !ok {
			continue
		}
		switch k {
		case "prefix":
			hits = append(hits, Request{Method: "GET", Scheme: "http", Host: "api.test", Path: fmt.Sprintf("/svc%d/orders/7", i)})
		case "host":
			hits = append(hits, Request{Method: "GET", Scheme: "http", Host: fmt.Sprintf("H%d.example.com:8000", i), Path: "/orders/7"})
		case "regex":
			hits = append(hits, Request{Method: "GET", Scheme: "http", Host: "api.test", Path: fmt.Sprintf("/r%d/42/items", i)})
		case "unindexed":
			hits = append(hits, Request{Method: "GET", Scheme: "http", Host: fmt.Sprintf("www.h%d.test", i), Path: fmt.Sprintf("/u%d/x", i)})
		}
	}
	return routes, hits
}

func BenchmarkMatch(b *testing.B) {
	for _, kind := range []string{"prefix", "host", "regex", "mixed", "unindexed"} {
		for _, n := range []int{1, 100, 1000} {
			routes, hits := benchRoutes(kind, n)
			r := mustNew(b, routes)
			for _, req := range hits {
				if _, ok := r.Match(req); !ok {
					b.Fatalf("Match(%s %s) found no route", req.Host, req.Path)
				}
			}
			b.Run(fmt.Sprintf("%s/%d/hit", kind, n), func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					r.Match(hits[i%len(hits)])
					i++
				}
			})
			miss := Request{Method: "GET", Scheme: "http", Host: "nowhere.test", Path: "/missing/path"}
			b.Run(fmt.Sprintf("%s/%d/miss", kind, n), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					r.Match(miss)
				}
			})
		}
	}
}

func BenchmarkUpstreamPath(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		UpstreamPath("/service/", "/route", "/route/items/7")
	}
}
