package config

import (
	"fmt"
	"net/netip"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"
)

// splitHostPort splits host[:port], [v6]:port and bare IPv6. hasPort is set
// when a port was written; portOK when it is a number within 0–65535.
func splitHostPort(s string) (host string, port int, hasPort, portOK bool) {
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return s, 0, false, true
		}
		host, rest := s[1:end], s[end+1:]
		if rest == "" {
			return "[" + host + "]", 0, false, true
		}
		if !strings.HasPrefix(rest, ":") {
			return s, 0, false, true
		}
		p, ok := parsePort(rest[1:])
		return "[" + host + "]", p, true, ok
	}
	if strings.Count(s, ":") > 1 { // bare IPv6
		return s, 0, false, true
	}
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		p, ok := parsePort(s[i+1:])
		return s[:i], p, true, ok
	}
	return s, 0, false, true
}

func parsePort(s string) (int, bool) {
	if s == "" || len(s) > 5 || strings.TrimLeft(s, "0123456789") != "" {
		return 0, false
	}
	p, err := strconv.Atoi(s)
	return p, err == nil && p <= 65535
}

// hostKind classifies a host without port: "ipv4", "ipv6" (bracketed or
// bare), "name", or "" when it is neither.
func hostKind(h string) string {
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		if a, err := netip.ParseAddr(h[1 : len(h)-1]); err == nil && a.Is6() {
			return "ipv6"
		}
		return ""
	}
	if a, err := netip.ParseAddr(h); err == nil {
		if a.Is4() {
			return "ipv4"
		}
		return "ipv6"
	}
	if isHostname(h) {
		return "name"
	}
	return ""
}

// isHostname accepts DNS-ish names as Kong does: labels of letters, digits,
// '-' and '_', no empty label, at most 253 bytes; a trailing dot is allowed.
func isHostname(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !isAlnum(c) && c != '-' && c != '_' {
				return false
			}
		}
	}
	return true
}

// checkHost is Kong's typedefs.host: a name or IP, no port.
func checkHost(s string) string {
	h, _, hasPort, _ := splitHostPort(s)
	if hostKind(h) == "" {
		return "invalid value: " + s
	}
	if hasPort {
		return "must not have a port"
	}
	return ""
}

// checkHostOptionalPort is Kong's typedefs.host_with_optional_port.
func checkHostOptionalPort(s string) string {
	h, _, hasPort, portOK := splitHostPort(s)
	if hostKind(h) == "" {
		return "invalid value: " + s
	}
	if hasPort && !portOK {
		return "invalid port number"
	}
	return ""
}

// checkWildcard allows one '*' as the whole leftmost or rightmost label;
// rest is the host with the wildcard label replaced for further checks.
func checkWildcard(s string) (rest, msg string) {
	n := strings.Count(s, "*")
	if n == 0 {
		return s, ""
	}
	if n > 1 {
		return "", "invalid wildcard: must have at most one wildcard"
	}
	h, _, _, _ := splitHostPort(s)
	switch {
	case strings.HasPrefix(h, "*.") && len(h) > 2:
		return strings.Replace(s, "*", "wildcard", 1), ""
	case strings.HasSuffix(h, ".*") && len(h) > 2:
		return strings.Replace(s, "*", "wildcard", 1), ""
	}
	return "", "invalid wildcard: must be placed at leftmost or rightmost label"
}

// checkRouteHost: a Route's hosts entry, wildcard and port allowed.
func checkRouteHost(s string) string {
	rest, msg := checkWildcard(s)
	if msg != "" {
		return msg
	}
	if msg := checkHostOptionalPort(rest); msg != "" {
		if msg == "invalid value: "+rest {
			return "invalid value: " + s
		}
		return msg
	}
	return ""
}

// checkSNIName: a wildcard host that is neither an IP nor has a port.
func checkSNIName(s string) string {
	rest, msg := checkWildcard(s)
	if msg != "" {
		return msg
	}
	h, _, hasPort, _ := splitHostPort(rest)
	switch k := hostKind(h); {
	case k == "ipv4" || k == "ipv6":
		return "must not be an IP"
	case k == "":
		return "invalid value: " + s
	case hasPort:
		return "must not have a port"
	}
	return ""
}

// checkUpstreamName: a hostname, no IP, no port (Kong's messages).
func checkUpstreamName(s string) string {
	h, _, hasPort, _ := splitHostPort(s)
	switch k := hostKind(h); {
	case k == "":
		return fmt.Sprintf("Invalid name ('%s'); must be a valid hostname", s)
	case k != "name":
		return fmt.Sprintf("Invalid name ('%s'); no ip addresses allowed", s)
	case hasPort:
		return fmt.Sprintf("Invalid name ('%s'); no port allowed", s)
	}
	return ""
}

// normalizeTarget validates host[:port] and stores the default port 8000;
// bare IPv6 addresses gain brackets.
func normalizeTarget(s string) (string, bool) {
	h, port, hasPort, portOK := splitHostPort(s)
	kind := hostKind(h)
	if kind == "" || hasPort && !portOK {
		return "", false
	}
	if !hasPort {
		port = 8000
	}
	if kind == "ipv6" && !strings.HasPrefix(h, "[") {
		h = "[" + h + "]"
	}
	return h + ":" + strconv.Itoa(port), true
}

// decodePercent decodes every valid %XX escape except those whose byte is in
// keep, which stay encoded with upper-case hex; escape, when set, is applied
// to decoded bytes (the format migration escapes regex metacharacters).
func decodePercent(p, keep string, escape func(byte) string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] == '%' && i+2 < len(p) && isHex(p[i+1]) && isHex(p[i+2]) {
			c := unhex(p[i+1])<<4 | unhex(p[i+2])
			i += 2
			if strings.IndexByte(keep, c) >= 0 {
				fmt.Fprintf(&b, "%%%02X", c)
				continue
			}
			if escape != nil {
				b.WriteString(escape(c))
				continue
			}
			b.WriteByte(c)
			continue
		}
		b.WriteByte(p[i])
	}
	return b.String()
}

// rfc3986 holds the characters a Service path may contain: unreserved,
// reserved and '%'.
const rfc3986 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~:/?#[]@!$&'()*+,;=%"

// checkServicePath: starts with '/', no empty segment, RFC 3986 characters,
// valid percent-escapes.
func checkServicePath(p string) string {
	switch {
	case !strings.HasPrefix(p, "/"):
		return "should start with: /"
	case strings.Contains(p, "//"):
		return "must not have empty segments"
	case !onlyChars(p, rfc3986):
		return fmt.Sprintf("invalid path: '%s' (characters outside of the reserved list of RFC 3986 found)", p)
	}
	for i := 0; i < len(p); i++ {
		if p[i] == '%' && (i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2])) {
			end := min(i+3, len(p))
			return fmt.Sprintf("invalid url-encoded value: '%s'", p[i:end])
		}
	}
	return ""
}

func onlyChars(s, set string) bool {
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(set, s[i]) < 0 {
			return false
		}
	}
	return true
}

// checkRoutePath: a prefix path in normalized form, or '~' and a regex that
// compiles anchored (§7.2).
func checkRoutePath(p string) string {
	switch {
	case !strings.HasPrefix(p, "/") && !strings.HasPrefix(p, "~/"):
		return "should start with: / (fixed path) or ~/ (regex path)"
	case strings.Contains(p, "//"):
		return "must not have empty segments"
	case strings.HasPrefix(p, "~"):
		re := p[1:]
		if _, err := regexp.Compile("^(?:" + re + ")"); err != nil {
			reason := err.Error()
			if se, ok := err.(*syntax.Error); ok {
				reason = se.Code.String() + ": `" + se.Expr + "`"
			}
			return fmt.Sprintf("invalid regex: '%s' (%s)", re, reason)
		}
	default:
		if n := NormalizePath(p); n != p {
			return fmt.Sprintf("non-normalized path, consider use '%s' instead", n)
		}
	}
	return ""
}

// migratePath rewrites a route path of a "1.1"/"2.1" document (§5.5): plain
// paths are prefixes and get normalized, anything else was a regex and gains
// '~', with its escapes decoded and decoded metacharacters escaped.
func migratePath(p string) string {
	if onlyChars(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~/%-") {
		return NormalizePath(p)
	}
	return "~" + decodePercent(p, "!#$%&'()*+,/:;=?@[]", func(c byte) string {
		if strings.IndexByte(`.^-{}\|`, c) >= 0 {
			return `\` + string(c)
		}
		return string(c)
	})
}
