package router

import (
	"net"
	"strconv"
	"strings"
)

// UpstreamPath computes the v0 upstream path (§7.6) from the Service path
// ("" means "/"), the stripped prefix ("" when the route does not strip, see
// Match.StrippedPrefix) and the normalized request path. strippedPrefix must
// be a prefix of path; when it is not, nothing is stripped.
//
// The result is still to be escaped with EscapePath before it is sent.
func UpstreamPath(servicePath, strippedPrefix, path string) string {
	base := servicePath
	if base == "" {
		base = "/"
	}
	strip := strippedPrefix != "" && strings.HasPrefix(path, strippedPrefix)
	postfix := ""
	if strip {
		postfix = trimDotPrefix(path[len(strippedPrefix):])
	}

	if strings.HasSuffix(base, "/") {
		switch {
		case !strip:
			return base + strings.TrimPrefix(path, "/")
		case postfix == "" && base == "/":
			return "/"
		case postfix == "" && strings.HasSuffix(path, "/"):
			return base
		case postfix == "":
			return base[:len(base)-1]
		case postfix[0] == '/':
			return base[:len(base)-1] + postfix
		default:
			return base + postfix
		}
	}
	switch {
	case !strip && path == "/":
		return base
	case !strip:
		return base + path
	case postfix == "" && len(path) > 1 && strings.HasSuffix(path, "/"):
		return base + "/"
	case postfix == "":
		return base
	case postfix[0] == '/':
		return base + postfix
	default:
		return base + "/" + postfix
	}
}

// trimDotPrefix drops one leading "./" or "../" from the postfix; "." and ".."
// alone become empty. A prefix like "/route" leaves "./req" of "/route./req",
// which must not reach the upstream as a relative segment.
func trimDotPrefix(postfix string) string {
	switch {
	case postfix == "." || postfix == "..":
		return ""
	case strings.HasPrefix(postfix, "./"):
		return postfix[2:]
	case strings.HasPrefix(postfix, "../"):
		return postfix[3:]
	}
	return postfix
}

// HostHeader returns the Host header of an upstream request (§7.7). With
// preserveHost it is the client's Host as received. Otherwise it is the
// Upstream's host_header when set, else the target host (Service host or the
// selected Target) with ":port" unless the port is the scheme's default
// (80 for http, 443 for https). It is recomputed for every try, as the target
// may change.
func HostHeader(preserveHost bool, clientHost, upstreamHostHeader, targetHost string, targetPort int, scheme string) string {
	switch {
	case preserveHost:
		return clientHost
	case upstreamHostHeader != "":
		return upstreamHostHeader
	}
	host := strings.TrimSuffix(strings.TrimPrefix(targetHost, "["), "]")
	if (scheme == "http" && targetPort == 80) || (scheme == "https" && targetPort == 443) {
		if strings.Contains(host, ":") {
			return "[" + host + "]"
		}
		return host
	}
	return net.JoinHostPort(host, strconv.Itoa(targetPort))
}
