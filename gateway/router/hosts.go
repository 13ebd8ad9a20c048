package router

import (
	"errors"
	"strings"
)

// hostKind says how a host or SNI pattern compares to a request's host.
type hostKind uint8

const (
	hostExact  hostKind = iota
	hostSuffix          // "*.x.com": name holds ".x.com"
	hostPrefix          // "x.*": name holds "x."
)

// hostPattern is a compiled Route `hosts` or `snis` value.
type hostPattern struct {
	kind hostKind
	name string // lower case, without trailing dot
	port int    // 0: any port
}

var (
	errWildcardCount    = errors.New("invalid wildcard: must have at most one wildcard")
	errWildcardPosition = errors.New("invalid wildcard: must be placed at leftmost or rightmost label")
	errEmptyHost        = errors.New("must not be empty")
	errInvalidPort      = errors.New("invalid port number")
)

// compileHost parses a Route `hosts` value (allowPort) or `snis` value.
func compileHost(v string, allowPort bool) (hostPattern, error) {
	name, port, hasPort := splitHostPort(v)
	if hasPort {
		if !allowPort {
			return hostPattern{}, errors.New("must not have a port")
		}
		if port <= 0 {
			return hostPattern{}, errInvalidPort
		}
	}
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if strings.Contains(name, ":") && !strings.HasPrefix(name, "[") {
		// A bare IPv6 address: requests always carry it in brackets.
		name = "[" + name + "]"
	}
	if name == "" {
		return hostPattern{}, errEmptyHost
	}
	if strings.Count(name, "*") > 1 {
		return hostPattern{}, errWildcardCount
	}
	switch {
	case !strings.Contains(name, "*"):
		return hostPattern{kind: hostExact, name: name, port: port}, nil
	case len(name) > 2 && strings.HasPrefix(name, "*."):
		return hostPattern{kind: hostSuffix, name: name[1:], port: port}, nil
	case len(name) > 2 && strings.HasSuffix(name, ".*"):
		return hostPattern{kind: hostPrefix, name: name[:len(name)-1], port: port}, nil
	}
	return hostPattern{}, errWildcardPosition
}

// match reports whether a request host (any case, no trailing dot) and port
// satisfy the pattern.
func (h *hostPattern) match(host string, port int) bool {
	if h.port != 0 && h.port != port {
		return false
	}
	switch h.kind {
	case hostSuffix:
		return len(host) >= len(h.name) && equalFoldASCII(host[len(host)-len(h.name):], h.name)
	case hostPrefix:
		return len(host) >= len(h.name) && equalFoldASCII(host[:len(h.name)], h.name)
	}
	return equalFoldASCII(host, h.name)
}

// wildcard reports whether the pattern holds a '*' (priority bit 60, §7.3).
func (h *hostPattern) wildcard() bool { return h.kind != hostExact }

// equalFoldASCII compares s with lower, which is already lower case, ignoring
// ASCII case; host names are ASCII (IDNs arrive as punycode), and unlike
// strings.ToLower this does not allocate.
func equalFoldASCII(s, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// splitHostPort splits "host", "host:port", "[v6]" or "[v6]:port"; the host
// keeps IPv6 brackets and loses a trailing dot. A bare IPv6 address (two or
// more colons, no brackets) is all host. An unparsable port gives port 0 with
// hasPort true, which no port-specific route matches.
func splitHostPort(v string) (host string, port int, hasPort bool) {
	host = v
	var portStr string
	switch {
	case strings.HasPrefix(v, "["):
		end := strings.IndexByte(v, ']')
		if end < 0 {
			return v, 0, false
		}
		host = v[:end+1]
		rest := v[end+1:]
		if !strings.HasPrefix(rest, ":") {
			return host, 0, false
		}
		portStr = rest[1:]
	case strings.Count(v, ":") == 1:
		i := strings.IndexByte(v, ':')
		host, portStr = v[:i], v[i+1:]
	default:
		return strings.TrimSuffix(v, "."), 0, false
	}
	return strings.TrimSuffix(host, "."), parsePort(portStr), true
}

// parsePort returns the port number, or 0 when s is not one.
func parsePort(s string) int {
	if s == "" || len(s) > 5 {
		return 0
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + int(c-'0')
	}
	if n > 65535 {
		return 0
	}
	return n
}
