// Package egress is the destination policy for outbound connections
// (hardening §2.7): which hosts, addresses and ports call nodes and
// kong.service.target may reach, checked on the URL before DNS and on the
// resolved address of every connection.
package egress

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
)

// ErrNotAllowed is the refusal of a destination.
var ErrNotAllowed = errors.New("destination not allowed")

// Policy is a compiled destination policy. It is immutable and safe for
// concurrent use.
type Policy struct {
	allow, deny, self []rule
	allowNames        bool // allow holds a host or *.domain rule
}

// rule is one entry: an address prefix, an exact host or a domain suffix,
// with an optional port.
type rule struct {
	prefix netip.Prefix // valid for CIDR and IP entries
	host   string       // exact host name, lower case, no trailing dot
	suffix string       // ".domain" of a *.domain entry
	port   uint16       // 0 = every port
}

// dest is one destination: the host name when known and the address when
// the host is (or resolved to) an IP.
type dest struct {
	name string
	addr netip.Addr // unmapped, no zone
	port uint16
}

// New compiles a policy from the allow and deny lists (CIDRs, host,
// host:port, *.domain) and the gateway's own listen addresses (host:port;
// an empty or unspecified host means every local address on that port).
func New(allow, deny, selfAddrs []string) (*Policy, error) {
	p := &Policy{}
	var errs []error
	for _, list := range []struct {
		name    string
		entries []string
		rules   *[]rule
	}{{"allow", allow, &p.allow}, {"deny", deny, &p.deny}} {
		for _, e := range list.entries {
			r, err := parseRule(e)
			if err != nil {
				errs = append(errs, fmt.Errorf("egress: %s: invalid entry %q", list.name, e))
				continue
			}
			*list.rules = append(*list.rules, r)
		}
	}
	for _, r := range p.allow {
		if r.host != "" || r.suffix != "" {
			p.allowNames = true
		}
	}
	for _, a := range selfAddrs {
		rs, err := selfRules(a)
		if err != nil {
			errs = append(errs, fmt.Errorf("egress: self address: invalid entry %q", a))
			continue
		}
		p.self = append(p.self, rs...)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return p, nil
}

func parseRule(e string) (rule, error) {
	bad := errors.New("invalid entry")
	if e == "" {
		return rule{}, bad
	}
	if strings.Contains(e, "/") {
		pfx, err := netip.ParsePrefix(e)
		if err != nil || pfx.Addr().Zone() != "" {
			return rule{}, bad
		}
		return rule{prefix: canonicalPrefix(pfx)}, nil
	}
	host, port := e, uint16(0)
	if strings.HasPrefix(e, "[") || strings.Count(e, ":") == 1 {
		h, ps, err := net.SplitHostPort(e)
		if err != nil {
			return rule{}, bad
		}
		n, err := strconv.ParseUint(ps, 10, 16)
		if err != nil || n == 0 {
			return rule{}, bad
		}
		host, port = h, uint16(n)
		if strings.HasPrefix(e, "[") {
			if a, err := netip.ParseAddr(host); err != nil || !a.Is6() || a.Zone() != "" {
				return rule{}, bad
			}
		}
	}
	if a, err := netip.ParseAddr(host); err == nil && a.Zone() == "" {
		a = a.Unmap()
		return rule{prefix: netip.PrefixFrom(a, a.BitLen()), port: port}, nil
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if d, ok := strings.CutPrefix(host, "*."); ok {
		if !isHostname(d) {
			return rule{}, bad
		}
		return rule{suffix: "." + d, port: port}, nil
	}
	if !isHostname(host) {
		return rule{}, bad
	}
	return rule{host: host, port: port}, nil
}

// canonicalPrefix unmaps an IPv4-mapped prefix (::ffff:10.0.0.0/104 is
// 10.0.0.0/8), so that it matches the unmapped addresses destinations use.
func canonicalPrefix(p netip.Prefix) netip.Prefix {
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96).Masked()
	}
	return p.Masked()
}

func isHostname(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// selfRules turns one listen address into rules; a wildcard host stands for
// the loopback and unspecified addresses and every interface address.
func selfRules(a string) ([]rule, error) {
	h, ps, err := net.SplitHostPort(a)
	if err != nil {
		return nil, err
	}
	n, err := strconv.ParseUint(ps, 10, 16)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, nil // an ephemeral port is not known here
	}
	port := uint16(n)
	if h != "" && h != "0.0.0.0" && h != "::" {
		r, err := parseRule(h)
		if err != nil {
			return nil, err
		}
		r.port = port
		if r.suffix != "" {
			return nil, errors.New("wildcard self address")
		}
		rs := []rule{r}
		if r.host == "localhost" {
			rs = append(rs, prefixRule(netip.MustParsePrefix("127.0.0.0/8"), port), addrRule(netip.IPv6Loopback(), port))
		}
		return rs, nil
	}
	rs := []rule{
		prefixRule(netip.MustParsePrefix("127.0.0.0/8"), port), addrRule(netip.IPv6Loopback(), port),
		addrRule(netip.IPv4Unspecified(), port), addrRule(netip.IPv6Unspecified(), port),
		{host: "localhost", port: port},
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, ia := range addrs {
			if ipn, ok := ia.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(ipn.IP); ok {
					rs = append(rs, addrRule(ip.Unmap(), port))
				}
			}
		}
	}
	return rs, nil
}

func prefixRule(p netip.Prefix, port uint16) rule { return rule{prefix: p, port: port} }

func addrRule(a netip.Addr, port uint16) rule {
	return rule{prefix: netip.PrefixFrom(a, a.BitLen()), port: port}
}

// match reports whether the rule covers d; embedded also matches the IPv4
// address inside NAT64, 6to4 and Teredo addresses (for deny and self).
func (r rule) match(d dest, embedded bool) bool {
	if r.port != 0 && r.port != d.port {
		return false
	}
	switch {
	case r.prefix.IsValid():
		if !d.addr.IsValid() {
			return false
		}
		if r.prefix.Contains(d.addr) {
			return true
		}
		if embedded {
			for _, e := range embeddedIPv4(d.addr) {
				if r.prefix.Contains(e) {
					return true
				}
			}
		}
		return false
	case r.host != "":
		return d.name == r.host
	default:
		return d.name != "" && strings.HasSuffix(d.name, r.suffix)
	}
}

func matchAny(rs []rule, d dest, embedded bool) bool {
	for _, r := range rs {
		if r.match(d, embedded) {
			return true
		}
	}
	return false
}

// allowed is the decision of §2.7 for one destination.
func (p *Policy) allowed(d dest, dynamic bool) bool {
	if matchAny(p.self, d, true) || matchAny(p.deny, d, true) {
		return false
	}
	if !dynamic {
		return true
	}
	if matchAny(p.allow, d, false) {
		return true
	}
	if len(p.allow) > 0 {
		return false
	}
	return !d.addr.IsValid() || !Special(d.addr)
}

// CheckURL checks a destination URL before DNS: the scheme, and the host as
// the dialer would read it (inet_aton spellings, IPv4-mapped addresses,
// localhost). dynamic means the URL came from request data. The error is
// ErrNotAllowed.
func (p *Policy) CheckURL(u *url.URL, dynamic bool) error {
	if u == nil {
		return ErrNotAllowed
	}
	var port uint16
	switch strings.ToLower(u.Scheme) {
	case "http":
		port = 80
	case "https":
		port = 443
	default:
		return ErrNotAllowed
	}
	if ps := u.Port(); ps != "" {
		n, err := strconv.ParseUint(ps, 10, 16)
		if err != nil || n == 0 {
			return ErrNotAllowed
		}
		port = uint16(n)
	}
	return p.CheckHost(u.Hostname(), port, dynamic)
}

// CheckHost checks a host (name or address, as in a URL) and port before
// DNS; see CheckURL.
func (p *Policy) CheckHost(host string, port uint16, dynamic bool) error {
	d, ok := parseDest(host, port)
	if !ok || !p.allowed(d, dynamic) {
		return ErrNotAllowed
	}
	return nil
}

// parseDest reads a host the way a resolver would; ok is false for an
// empty host.
func parseDest(host string, port uint16) (dest, bool) {
	h := strings.ToLower(strings.TrimSuffix(strings.Trim(host, "[]"), "."))
	d := dest{port: port}
	if h == "" {
		return d, false
	}
	if a, err := netip.ParseAddr(h); err == nil {
		d.addr = a.WithZone("").Unmap()
		return d, true
	}
	// An out-of-range numeric host is a name to resolvers; the dial check
	// sees what it resolves to.
	if a, ok := parseInetAton(h); ok {
		d.addr = a
		return d, true
	}
	d.name = h
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		d.addr = netip.AddrFrom4([4]byte{127, 0, 0, 1}) // RFC 6761: always loopback
	}
	return d, true
}

// parseInetAton reads the IPv4 spellings of inet_aton(3) that
// net.ParseIP refuses: 1 to 4 parts, each decimal, 0x hex or 0 octal
// (127.1, 0x7f000001, 2130706433, 0177.0.0.1).
func parseInetAton(h string) (netip.Addr, bool) {
	var none netip.Addr
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= '0' && c <= '9' || c == '.' || c == 'x' || c >= 'a' && c <= 'f') {
			return none, false
		}
	}
	if h[0] < '0' || h[0] > '9' {
		return none, false // a name like "cafe" or "deadbeef.example"
	}
	parts := strings.Split(h, ".")
	if len(parts) > 4 {
		return none, false
	}
	vals := make([]uint64, len(parts))
	for i, s := range parts {
		if s == "" || s[0] < '0' || s[0] > '9' {
			// A label starting with a letter makes it a name (1.example).
			return none, false
		}
		base := 10
		switch {
		case strings.HasPrefix(s, "0x"):
			base, s = 16, s[2:]
			if s == "" {
				s = "0"
			}
		case len(s) > 1 && s[0] == '0':
			base, s = 8, s[1:]
		}
		v, err := strconv.ParseUint(s, base, 32)
		if err != nil {
			return none, false
		}
		vals[i] = v
	}
	var n uint64
	last := len(vals) - 1
	for i := 0; i < last; i++ {
		if vals[i] > 0xff {
			return none, false
		}
		n |= vals[i] << (24 - 8*i)
	}
	if vals[last] >= 1<<(32-8*last) {
		return none, false
	}
	n |= vals[last]
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uint32(n)) // #nosec G115 -- n < 1<<32: each part was range-checked
	return netip.AddrFrom4(b), true
}

// Control returns a net.Dialer.Control function checking the resolved
// IP:port of every connection (DNS rebinding, address spellings). Without
// the host name, allow entries naming hosts cannot re-admit an address: use
// ControlHost where the dialled name is known.
func (p *Policy) Control(dynamic bool) func(network, address string, c syscall.RawConn) error {
	return p.ControlHost("", dynamic)
}

// ControlHost is Control for a connection to the named host (as given to
// the dialer, before resolution), so that host and *.domain rules apply.
func (p *Policy) ControlHost(host string, dynamic bool) func(network, address string, c syscall.RawConn) error {
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	if _, err := netip.ParseAddr(strings.Trim(name, "[]")); err == nil {
		name = ""
	}
	return func(_, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return ErrNotAllowed
		}
		d := dest{name: name, addr: ap.Addr().WithZone("").Unmap(), port: ap.Port()}
		if !p.allowed(d, dynamic) {
			return ErrNotAllowed
		}
		return nil
	}
}

// special are the IANA special-purpose ranges (IPv4 and IPv6 registries),
// plus multicast and the reserved 240/4 with broadcast.
var special = func() []netip.Prefix {
	var ps []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
		"172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.31.196.0/24", "192.52.193.0/24",
		"192.88.99.0/24", "192.168.0.0/16", "192.175.48.0/24", "198.18.0.0/15",
		"198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
		"::/96", // ::, ::1 and the deprecated IPv4-compatible form
		"64:ff9b::/96", "64:ff9b:1::/48", "100::/64", "100:0:0:1::/64", "2001::/23",
		"2001:db8::/32", "2002::/16", "2620:4f:8000::/48", "3fff::/20", "5f00::/16",
		"fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
	} {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	return ps
}()

// Special reports whether a is in an IANA special-purpose range, directly
// or as the IPv4 address inside an IPv4-mapped, NAT64, 6to4 or Teredo
// address.
func Special(a netip.Addr) bool {
	a = a.WithZone("").Unmap()
	for _, p := range special {
		if p.Contains(a) {
			return true
		}
	}
	for _, e := range embeddedIPv4(a) {
		if Special(e) {
			return true
		}
	}
	return false
}

var (
	nat64  = netip.MustParsePrefix("64:ff9b::/96")
	sixTo4 = netip.MustParsePrefix("2002::/16")
	teredo = netip.MustParsePrefix("2001::/32")
)

// embeddedIPv4 returns the IPv4 addresses an IPv6 address carries: NAT64
// (last 32 bits), 6to4 (bits 16–47), Teredo (server bits 32–63, client the
// inverted last 32 bits).
func embeddedIPv4(a netip.Addr) []netip.Addr {
	if !a.Is6() {
		return nil
	}
	b := a.As16()
	v4 := func(x []byte) netip.Addr { return netip.AddrFrom4([4]byte(x)) }
	switch {
	case nat64.Contains(a):
		return []netip.Addr{v4(b[12:16])}
	case sixTo4.Contains(a):
		return []netip.Addr{v4(b[2:6])}
	case teredo.Contains(a):
		c := [4]byte{^b[12], ^b[13], ^b[14], ^b[15]}
		return []netip.Addr{v4(b[4:8]), netip.AddrFrom4(c)}
	}
	return nil
}
