// Package router matches HTTP requests to Routes as Kong's
// traditional_compatible router does (gateway.md §7): it compiles a set of
// routes once into an immutable Router and answers, per request, which route
// matched, with its captures and stripped prefix, and the upstream path.
//
// The package is pure: no I/O, no logging, no package state. It defines its
// own small input types so that it depends on nothing else in the repository;
// the gateway adapts its configuration entities to them and gets its own
// entities back through the Handle fields.
//
// Route path_handling is not an input: `v1` acts as `v0` (§3.3), so every
// route gets the v0 upstream path (§7.6).
package router

import (
	"github.com/datakit-gateway/datakit/gateway/config"
	"regexp"
	"strings"
)

// Route is the part of a Route entity that matching needs (§3.3). Unset
// (nil or empty) fields match anything.
type Route struct {
	// ID and Name identify the route in errors; ID also breaks priority ties
	// (smaller first). Zero values are allowed.
	ID, Name string
	// CreatedAt (Unix seconds) breaks priority ties: older routes first.
	CreatedAt int64

	// Protocols is a subset of "http", "https"; empty means both. A route
	// without "https" does not match requests on TLS listeners; one without
	// "http" still matches plain requests, which the proxy answers with an
	// https redirect (§7.5, see HTTPSOnly).
	Protocols []string
	// Methods are compared exactly (they are upper case).
	Methods []string
	// Hosts: "name", "*.suffix" or "prefix.*", each with an optional ":port".
	Hosts []string
	// Paths: normalized prefixes "/…" or regexes "~/…".
	Paths []string
	// Headers maps a header name (any case, not "host") to accepted values;
	// a value "~*<re>" is an unanchored case-insensitive regex.
	Headers map[string][]string
	// SNIs are host names (wildcards as in Hosts, no port), checked on TLS
	// requests only.
	SNIs []string
	// RegexPriority orders regex paths; values outside 0–2³²-1 are clamped.
	RegexPriority int64
	// StripPath removes the matched path part from the upstream path. The
	// zero value false keeps it; the entity's default is true.
	StripPath bool

	// Service is the route's service; nil for a route without service (§7.8).
	// Routes of a Disabled service are left out of the router.
	Service *Service
	// Handle is the caller's own value for this route, returned in Match.
	Handle any
}

// Service is the part of a Service entity that routing needs (§3.2).
type Service struct {
	// Path is the upstream base path; "" means "/".
	Path string
	// Disabled services (enabled=false) drop their routes from the router.
	// The zero value false means enabled.
	Disabled bool
	// Handle is the caller's own value for this service.
	Handle any
}

// HTTPSOnly reports whether the route accepts https but not http: a plain
// request it matches gets a redirect or 426 instead of being proxied (§7.5).
func (r *Route) HTTPSOnly() bool {
	var http, https bool
	for _, p := range r.Protocols {
		http = http || p == "http"
		https = https || p == "https"
	}
	return https && !http
}

// Request holds the attributes of a request that routing reads (§7.1).
type Request struct {
	// Method is the request method, as received.
	Method string
	// Scheme is the listener's: "https" on TLS listeners, else "http".
	Scheme string
	// Host is the Host header (or :authority) as received, with an optional
	// port; case and a trailing dot do not matter.
	Host string
	// Port is the listener's port, used when Host carries none.
	Port int
	// Path is the request-target's path as received, before '?'. It should
	// start with '/'; the router normalizes it (§7.1).
	Path string
	// Headers uses canonical keys, as net/http.Header does.
	Headers map[string][]string
	// SNI is the TLS server name; ignored unless Scheme is "https".
	SNI string
}

// Match is the result of routing a request (§7.4).
type Match struct {
	// Route is the matched route, the router's copy of it; read only.
	Route *Route
	// Service is Route.Service: nil for a route without service (§7.8).
	Service *Service
	// Path is the normalized request path (§7.1).
	Path string
	// MatchedPath is the prefix path, or what the regex consumed; empty when
	// the route has no paths.
	MatchedPath string
	// StrippedPrefix is MatchedPath when the route strips its path, else "".
	StrippedPrefix string
	// Captures are the regex path's groups; zero for prefix routes.
	Captures Captures
}

// Captures holds a regex path's capture groups.
type Captures struct {
	// Unnamed holds every group by number, named ones included:
	// Unnamed[0] is group 1 (Kong's index 1). A group that did not take
	// part in the match is "".
	Unnamed []string
	// Named maps the names of (?P<n>…) / (?<n>…) groups to their values;
	// nil when the regex names none.
	Named map[string]string
}

// UpstreamPath is the v0 upstream path for this match (§7.6); a route
// without service uses the default base "/".
func (m *Match) UpstreamPath() string {
	base := ""
	if m.Service != nil {
		base = m.Service.Path
	}
	return UpstreamPath(base, m.StrippedPrefix, m.Path)
}

// Router is a compiled, immutable set of routes. It is safe for concurrent
// use; a new configuration builds a new Router.
type Router struct {
	// matchers in priority order (§7.3): the first that matches wins.
	matchers []matcher
	index    index
}

// route is a compiled Route: everything a request is compared with,
// normalized once.
type route struct {
	src       *Route
	methods   []string
	hosts     []hostPattern
	headers   []headerMatcher
	snis      []hostPattern
	plainOnly bool // protocols lack "https": TLS requests never match
}

// headerMatcher is one header name of a route with its accepted values.
type headerMatcher struct {
	name    string // canonical, as in net/http.Header
	values  []string
	regexes []*regexp.Regexp
}

// matcher is one part of a route for priority purposes (§7.3): all its
// regex paths, all its prefix paths of one length, or no paths at all.
type matcher struct {
	route    *route
	priority uint64
	order    int // position among the route's matchers
	prefixes []string
	regexes  []*regexp.Regexp
	// pathLiterals holds the prefixes, or for regexes the literal each of
	// their matches starts with; the index pins matchers by them.
	pathLiterals []string
}

// Match returns the highest-priority route that req matches (§7.2, §7.3).
func (r *Router) Match(req Request) (Match, bool) {
	path := config.NormalizePath(req.Path)
	host, port, hasPort := splitHostPort(req.Host)
	if !hasPort {
		port = req.Port
	}
	tls := req.Scheme == "https"
	bySegment, byHost, rest := r.index.candidates(path, host)
	for {
		i, ok := popMin(&bySegment, &byHost, &rest)
		if !ok {
			break
		}
		m := &r.matchers[i]
		rt := m.route
		var matched string
		if len(m.prefixes) > 0 {
			p, ok := matchPrefix(m.prefixes, path)
			if !ok {
				continue
			}
			matched = p
		}
		if !rt.matchAttributes(&req, host, port, tls) {
			continue
		}
		res := Match{Route: rt.src, Service: rt.src.Service, Path: path}
		if len(m.regexes) > 0 {
			var ok bool
			if matched, res.Captures, ok = matchRegex(m.regexes, path); !ok {
				continue
			}
		}
		res.MatchedPath = matched
		if rt.src.StripPath {
			res.StrippedPrefix = matched
		}
		return res, true
	}
	return Match{}, false
}

func matchPrefix(prefixes []string, path string) (string, bool) {
	for _, p := range prefixes {
		if strings.HasPrefix(path, p) {
			return p, true
		}
	}
	return "", false
}

// matchRegex tries the regexes in their declared order; each is anchored at
// the start of the path, so the consumed part is a prefix of it.
func matchRegex(regexes []*regexp.Regexp, path string) (string, Captures, bool) {
	for _, re := range regexes {
		loc := re.FindStringSubmatchIndex(path)
		if loc == nil {
			continue
		}
		return path[:loc[1]], captures(re, path, loc), true
	}
	return "", Captures{}, false
}

func captures(re *regexp.Regexp, path string, loc []int) Captures {
	n := re.NumSubexp()
	if n == 0 {
		return Captures{}
	}
	c := Captures{Unnamed: make([]string, n)}
	for g := 1; g <= n; g++ {
		if loc[2*g] >= 0 {
			c.Unnamed[g-1] = path[loc[2*g]:loc[2*g+1]]
		}
	}
	for g, name := range re.SubexpNames() {
		if name == "" {
			continue
		}
		if c.Named == nil {
			c.Named = make(map[string]string)
		}
		c.Named[name] = c.Unnamed[g-1]
	}
	return c
}

// matchAttributes checks every field but paths.
func (rt *route) matchAttributes(req *Request, host string, port int, tls bool) bool {
	if tls && rt.plainOnly {
		return false
	}
	if len(rt.methods) > 0 && !containsString(rt.methods, req.Method) {
		return false
	}
	if len(rt.hosts) > 0 && !matchHosts(rt.hosts, host, port) {
		return false
	}
	for i := range rt.headers {
		if !rt.headers[i].match(req.Headers[rt.headers[i].name]) {
			return false
		}
	}
	if tls && len(rt.snis) > 0 {
		sni := strings.TrimSuffix(req.SNI, ".")
		if !matchHosts(rt.snis, sni, 0) {
			return false
		}
	}
	return true
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func matchHosts(patterns []hostPattern, host string, port int) bool {
	for i := range patterns {
		if patterns[i].match(host, port) {
			return true
		}
	}
	return false
}

// match reports whether some line of the header equals some value
// (case-insensitively) or matches some regex.
func (h *headerMatcher) match(lines []string) bool {
	for _, line := range lines {
		for _, v := range h.values {
			if strings.EqualFold(line, v) {
				return true
			}
		}
		for _, re := range h.regexes {
			if re.MatchString(line) {
				return true
			}
		}
	}
	return false
}
