package router

import (
	"cmp"
	"errors"
	"fmt"
	"github.com/datakit-gateway/datakit/gateway/config"
	"net/textproto"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
)

// RouteError reports an invalid field of one route given to New.
type RouteError struct {
	Index int    // position in the slice given to New
	Route string // the route's name, else its id; may be empty
	Field string // e.g. "paths[1]", `headers["X-Version"]`
	Err   error
}

func (e *RouteError) Error() string {
	if e.Route == "" {
		return fmt.Sprintf("routes[%d]: %s: %v", e.Index, e.Field, e.Err)
	}
	return fmt.Sprintf("routes[%d] %q: %s: %v", e.Index, e.Route, e.Field, e.Err)
}

func (e *RouteError) Unwrap() error { return e.Err }

// Priority bit layout (§7.3), high bits first.
const (
	fieldCountShift    = 61 // number of set fields among methods, hosts, headers, paths, snis
	plainHostsBit      = 1 << 60
	headerCountShift   = 52
	maxHeaderCount     = 255
	regexBit           = 1 << 51
	regexPriorityShift = 19
	maxRegexPriority   = 1<<32 - 1
	maxPrefixLength    = 1<<19 - 1
)

// New compiles routes into a Router. Every route is checked; the error joins
// a *RouteError for each invalid field. Routes whose Service is Disabled are
// left out unchecked (§7.3). New keeps its own copies of the routes and
// services: later changes to the arguments do not affect the Router.
func New(routes []Route) (*Router, error) {
	var errs []error
	var matchers []matcher
	services := make(map[*Service]*Service)
	for i := range routes {
		if s := routes[i].Service; s != nil && s.Disabled {
			continue
		}
		rt, ms, rerrs := compileRoute(i, &routes[i], services)
		errs = append(errs, rerrs...)
		if len(rerrs) > 0 {
			continue
		}
		for _, m := range ms {
			m.route = rt
			matchers = append(matchers, m)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	// Stable, so equal keys keep the input order and the result is
	// deterministic even for routes sharing created_at and id.
	slices.SortStableFunc(matchers, func(a, b matcher) int {
		if c := cmp.Compare(b.priority, a.priority); c != 0 {
			return c
		}
		if c := cmp.Compare(a.route.src.CreatedAt, b.route.src.CreatedAt); c != 0 {
			return c
		}
		if c := strings.Compare(a.route.src.ID, b.route.src.ID); c != 0 {
			return c
		}
		return cmp.Compare(a.order, b.order)
	})
	return &Router{matchers: matchers, index: buildIndex(matchers)}, nil
}

// compileRoute validates and compiles one route into its matchers, which
// still lack their route pointer.
func compileRoute(index int, in *Route, services map[*Service]*Service) (*route, []matcher, []error) {
	label := in.Name
	if label == "" {
		label = in.ID
	}
	var errs []error
	fail := func(field string, err error) {
		errs = append(errs, &RouteError{Index: index, Route: label, Field: field, Err: err})
	}

	src := *in
	if src.Service != nil {
		s, ok := services[src.Service]
		if !ok {
			c := *src.Service
			s = &c
			services[src.Service] = s
		}
		src.Service = s
	}
	src.Protocols = slices.Clone(in.Protocols)
	src.Methods = slices.Clone(in.Methods)
	src.Hosts = slices.Clone(in.Hosts)
	src.Paths = slices.Clone(in.Paths)
	src.SNIs = slices.Clone(in.SNIs)
	if in.Headers != nil {
		src.Headers = make(map[string][]string, len(in.Headers))
		for k, v := range in.Headers {
			src.Headers[k] = slices.Clone(v)
		}
	}
	rt := &route{src: &src}

	rt.plainOnly = len(in.Protocols) > 0
	for i, p := range in.Protocols {
		switch p {
		case "https":
			rt.plainOnly = false
		case "http":
		default:
			fail(fmt.Sprintf("protocols[%d]", i), errors.New("expected one of: http, https"))
		}
	}

	for i, m := range in.Methods {
		if m == "" {
			fail(fmt.Sprintf("methods[%d]", i), errors.New("must not be empty"))
		}
	}
	rt.methods = src.Methods

	plainHosts := len(in.Hosts) > 0
	for i, h := range in.Hosts {
		p, err := compileHost(h, true)
		if err != nil {
			fail(fmt.Sprintf("hosts[%d]", i), err)
			continue
		}
		plainHosts = plainHosts && !p.wildcard()
		rt.hosts = append(rt.hosts, p)
	}
	for i, h := range in.SNIs {
		p, err := compileHost(h, false)
		if err != nil {
			fail(fmt.Sprintf("snis[%d]", i), err)
			continue
		}
		rt.snis = append(rt.snis, p)
	}

	rt.headers = compileHeaders(in.Headers, fail)

	prefixes, regexes, regexLits := compilePaths(in.Paths, fail)
	if len(errs) > 0 {
		return nil, nil, errs
	}

	// Priority bits shared by all matchers of the route.
	var fields uint64
	for _, set := range []bool{len(in.Methods) > 0, len(in.Hosts) > 0, len(rt.headers) > 0, len(in.Paths) > 0, len(in.SNIs) > 0} {
		if set {
			fields++
		}
	}
	base := fields<<fieldCountShift | uint64(min(len(rt.headers), maxHeaderCount))<<headerCountShift
	if plainHosts {
		base |= plainHostsBit
	}

	if len(in.Paths) == 0 {
		return rt, []matcher{{priority: base}}, nil
	}
	var ms []matcher
	// Matchers in the order their first path appears in the route.
	for _, g := range groupOrder(in.Paths) {
		if g == regexGroup {
			prio := base | regexBit | uint64(min(max(in.RegexPriority, 0), maxRegexPriority))<<regexPriorityShift
			ms = append(ms, matcher{priority: prio, order: len(ms), regexes: regexes, pathLiterals: regexLits})
			continue
		}
		var same []string
		for _, p := range prefixes {
			if len(p) == g {
				same = append(same, p)
			}
		}
		// #nosec G115 -- g is a path length, not negative
		ms = append(ms, matcher{priority: base | uint64(min(g, maxPrefixLength)), order: len(ms), prefixes: same, pathLiterals: same})
	}
	return rt, ms, nil
}

// regexGroup is groupOrder's key for the regex paths; prefix groups are keyed
// by their length, which is at least 1.
const regexGroup = 0

// groupOrder lists the route's matcher groups in order of first appearance.
func groupOrder(paths []string) []int {
	var groups []int
	for _, p := range paths {
		g := len(p)
		if strings.HasPrefix(p, "~") {
			g = regexGroup
		}
		if !slices.Contains(groups, g) {
			groups = append(groups, g)
		}
	}
	return groups
}

// compilePaths checks paths (§3.3) and compiles regex paths anchored at the
// start of the path (§7.2).
func compilePaths(paths []string, fail func(string, error)) (prefixes []string, regexes []*regexp.Regexp, regexLits []string) {
	for i, p := range paths {
		field := fmt.Sprintf("paths[%d]", i)
		switch {
		case strings.HasPrefix(p, "~/"):
			re, err := compileRegex("^(?:"+p[1:]+")", p[1:])
			if err != nil {
				fail(field, err)
				continue
			}
			regexes = append(regexes, re)
			regexLits = append(regexLits, regexLiteral(p[1:]))
		case strings.HasPrefix(p, "/"):
			if n := config.NormalizePath(p); n != p {
				fail(field, fmt.Errorf("non-normalized path, consider use '%s' instead", n))
				continue
			}
			prefixes = append(prefixes, p)
		default:
			fail(field, errors.New("should start with: / (fixed path) or ~/ (regex path)"))
		}
	}
	return prefixes, regexes, regexLits
}

// compileHeaders canonicalizes header names, merging names that differ only
// in case, and compiles "~*" values; the result is ordered by name.
func compileHeaders(headers map[string][]string, fail func(string, error)) []headerMatcher {
	names := make([]string, 0, len(headers))
	for name := range headers {
		names = append(names, name)
	}
	slices.Sort(names) // errors and merged values in a stable order

	var out []headerMatcher
	for _, name := range names {
		field := fmt.Sprintf("headers[%q]", name)
		if err := checkHeaderName(name); err != nil {
			fail(field, err)
			continue
		}
		values := headers[name]
		if len(values) == 0 {
			fail(field, errors.New("must have at least one value"))
			continue
		}
		canon := textproto.CanonicalMIMEHeaderKey(name)
		k := slices.IndexFunc(out, func(h headerMatcher) bool { return h.name == canon })
		if k < 0 {
			out = append(out, headerMatcher{name: canon})
			k = len(out) - 1
		}
		h := &out[k]
		for i, v := range values {
			if re, ok := strings.CutPrefix(v, "~*"); ok {
				compiled, err := compileRegex("(?i)"+re, re)
				if err != nil {
					fail(fmt.Sprintf("%s[%d]", field, i), err)
					continue
				}
				h.regexes = append(h.regexes, compiled)
				continue
			}
			h.values = append(h.values, v)
		}
	}
	slices.SortFunc(out, func(a, b headerMatcher) int { return strings.Compare(a.name, b.name) })
	return out
}

func checkHeaderName(name string) error {
	if name == "" {
		return errors.New("header name must not be empty")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("invalid header name %q", name)
		}
	}
	if strings.EqualFold(name, "host") {
		return errors.New("cannot contain 'host' header, which must be specified in the 'hosts' attribute")
	}
	return nil
}

// compileRegex compiles expr, the user's pattern re wrapped for anchoring or
// case folding, and reports errors as Kong does in terms of re:
// `invalid regex: '<re>' (<reason>)`. RE2 has no lookaround or
// backreferences, so those fail here.
func compileRegex(expr, re string) (*regexp.Regexp, error) {
	// re alone first, so the reason quotes the user's text, not the wrapper.
	_, err := regexp.Compile(re)
	if err == nil {
		var compiled *regexp.Regexp
		// A valid re can still break its wrapper: "\Q(" quotes the ")".
		if compiled, err = regexp.Compile(expr); err == nil {
			return compiled, nil
		}
	}
	reason := err.Error()
	var serr *syntax.Error
	if errors.As(err, &serr) {
		reason = fmt.Sprintf("%s: `%s`", serr.Code, serr.Expr)
	}
	return nil, fmt.Errorf("invalid regex: '%s' (%s)", re, reason)
}
