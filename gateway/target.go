package gateway

import (
	"net/http"
	"strings"

	"github.com/datakit-gateway/datakit/gateway/balancer"
	"github.com/datakit-gateway/datakit/gateway/router"
)

type target struct {
	host string
	port int
}

// selectTarget chooses where the request goes (gateway.md §8.4): a target
// set by a plugin, the Upstream named by the plugin or the Service host, or
// the Service's host:port.
func (ex *Exchange) selectTarget() error {
	if ex.out.targetHost != "" {
		ex.target = target{ex.out.targetHost, ex.out.targetPort}
		return nil
	}
	name := ex.out.upstreamName
	if name == "" {
		name = ex.service.Host
	}
	up := ex.snap.upstream(name)
	if up == nil {
		ex.target = target{ex.service.Host, ex.service.Port}
		return nil
	}
	pick, err := up.bal.Pick(ex.hashKey(up), &ex.balTries)
	if err != nil {
		return &HTTPError{Status: http.StatusServiceUnavailable, Message: msgNoPeer}
	}
	ex.upstream = up
	ex.pick = pick
	ex.target = target{pick.Target.Host, pick.Target.Port}
	return nil
}

// hashKey is the consistent-hashing key of a request (gateway.md §8.4):
// hash_on, else hash_fallback when empty, else "".
func (ex *Exchange) hashKey(up *upstreamEntry) string {
	if up.cfg.Algorithm != balancer.ConsistentHashing {
		return ""
	}
	u := up.cfg
	if k := ex.hashValue(u.HashOn, u.HashOnHeader, u.HashOnQueryArg, u.HashOnURICapture, u.HashOnCookie); k != "" {
		return k
	}
	return ex.hashValue(u.HashFallback, u.HashFallbackHeader, u.HashFallbackQueryArg, u.HashFallbackURICapture, nil)
}

func (ex *Exchange) hashValue(on string, header, queryArg, capture, cookie *string) string {
	switch on {
	case "consumer":
		if ex.consumer != nil {
			return ex.consumer.ID
		}
		if ex.cred != nil {
			return ex.cred.ID
		}
	case "ip":
		return ex.clientIP
	case "header":
		return strings.Join(ex.req.Header.Values(deref(header)), ", ")
	case "cookie":
		if c, err := ex.req.Cookie(deref(cookie)); err == nil {
			return c.Value
		}
	case "path":
		return ex.NormalizedPath()
	case "query_arg":
		return strings.Join(ex.req.URL.Query()[deref(queryArg)], ",")
	case "uri_capture":
		return ex.match.Captures.Named[deref(capture)]
	}
	return ""
}

// aim points one try of the upstream request at the current target, with the
// Host header of gateway.md §7.7 (recomputed per try).
func (ex *Exchange) aim(req *http.Request) {
	req.URL.Host = joinHostPort(ex.target.host, ex.target.port)
	hostHeader := ""
	if ex.upstream != nil && ex.upstream.cfg.HostHeader != nil {
		hostHeader = *ex.upstream.cfg.HostHeader
	}
	switch t := ex.target; {
	case ex.out.hostOverride != "":
		req.Host = ex.out.hostOverride
	case !ex.route.PreserveHost && hostHeader == "" && !defaultPort(ex.out.scheme, t.port) &&
		!strings.ContainsAny(t.host, ":[]"):
		// What router.HostHeader would build: host:port, the same string.
		req.Host = req.URL.Host
	default:
		req.Host = router.HostHeader(ex.route.PreserveHost, ex.req.Host, hostHeader, t.host, t.port, ex.out.scheme)
	}
}

func defaultPort(scheme string, port int) bool {
	return (scheme == "http" && port == 80) || (scheme == "https" && port == 443)
}

// deref is *p, or "" for nil.
func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
