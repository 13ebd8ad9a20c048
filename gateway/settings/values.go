package settings

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// The value types of gateway.md §2.1. Each parser takes a trimmed, non-empty
// value and returns an error that quotes the offending part (callers of
// secret settings use parseSecret, which never does).

// parseBool accepts on/off, true/false, yes/no and 1/0, in any case.
func parseBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "on", "true", "yes", "1":
		return true, nil
	case "off", "false", "no", "0":
		return false, nil
	}
	return false, fmt.Errorf("%s is not a boolean (on/off, true/false, yes/no, 1/0)", quote(v))
}

// parseList splits a comma-separated value into trimmed elements, skipping
// empty ones.
func parseList(v string) []string {
	var out []string
	for _, f := range strings.Split(v, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// parseDuration accepts Go syntax ("500ms", "1m30s") or a bare number of
// seconds ("30", "0.5"). Negative durations are refused.
func parseDuration(v string) (time.Duration, error) {
	var d time.Duration
	if f, err := strconv.ParseFloat(v, 64); err == nil && isPlainNumber(v) {
		if f < 0 || math.IsNaN(f) || f*float64(time.Second) >= math.MaxInt64 {
			return 0, fmt.Errorf("%s is not a duration in range", quote(v))
		}
		d = time.Duration(f * float64(time.Second))
	} else {
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			return 0, fmt.Errorf("%s is not a duration (Go syntax such as 500ms or 1m30s, or a number of seconds)", quote(v))
		}
	}
	if d < 0 {
		return 0, fmt.Errorf("%s is negative", quote(v))
	}
	return d, nil
}

// isPlainNumber reports whether v is digits with at most one decimal point,
// so that ParseFloat's other spellings (1e3, Inf, 0x10, 1_000) stay errors.
func isPlainNumber(v string) bool {
	dot := false
	digits := 0
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '.' && !dot:
			dot = true
		default:
			return false
		}
	}
	return digits > 0
}

// parseSize accepts a number of bytes with an optional k, m or g suffix (any
// case, ×1024 each).
func parseSize(v string) (int64, error) {
	num, mult := v, int64(1)
	switch v[len(v)-1] {
	case 'k', 'K':
		num, mult = v[:len(v)-1], 1<<10
	case 'm', 'M':
		num, mult = v[:len(v)-1], 1<<20
	case 'g', 'G':
		num, mult = v[:len(v)-1], 1<<30
	}
	if num == "" || !isDigits(num) {
		return 0, fmt.Errorf("%s is not a size (bytes, or a number with a k, m or g suffix)", quote(v))
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("%s is too large", quote(v))
	}
	return n * mult, nil
}

// parseInt accepts a decimal integer in [lo, hi].
func parseInt(v string, lo, hi int) (int, error) {
	s := strings.TrimPrefix(v, "-")
	if s == "" || !isDigits(s) {
		return 0, fmt.Errorf("%s is not an integer", quote(v))
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%s is out of range %d–%d", quote(v), lo, hi)
	}
	return n, nil
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// parseString accepts any value without control characters (a NUL or a
// newline in a path or a database name is never what was meant).
func parseString(v string) (string, error) {
	if i := strings.IndexFunc(v, unicode.IsControl); i >= 0 {
		return "", fmt.Errorf("%s contains a control character", quote(v))
	}
	if !utf8.ValidString(v) {
		return "", fmt.Errorf("%s is not valid UTF-8", quote(v))
	}
	return v, nil
}

// parseSecret is parseString for secrets: its errors never include the value.
func parseSecret(minChars int) func(string) (Secret, error) {
	return func(v string) (Secret, error) {
		if !utf8.ValidString(v) {
			return "", errors.New("not valid UTF-8")
		}
		if strings.ContainsFunc(v, unicode.IsControl) {
			return "", errors.New("contains a control character")
		}
		if utf8.RuneCountInString(v) < minChars {
			return "", fmt.Errorf("must be at least %d characters", minChars)
		}
		return Secret(v), nil
	}
}

// parseEnum accepts one of values (any case) and returns its canonical form.
func parseEnum(values ...string) func(string) (string, error) {
	return func(v string) (string, error) {
		for _, want := range values {
			if strings.EqualFold(v, want) {
				return want, nil
			}
		}
		return "", fmt.Errorf("%s is not one of %s", quote(v), strings.Join(values, ", "))
	}
}

// parseLogLevel maps log_level to slog levels.
func parseLogLevel(v string) (slog.Level, error) {
	name, err := parseEnum("debug", "info", "warn", "error")(v)
	if err != nil {
		return 0, err
	}
	var l slog.Level
	return l, l.UnmarshalText([]byte(name))
}

// listenRules says which flags a listen setting allows.
type listenRules struct {
	ssl, http2 bool
}

// parseListen accepts "off" or a comma-separated list of
// "host:port [ssl] [http2]" entries.
func parseListen(rules listenRules) func(string) ([]Listen, error) {
	return func(v string) ([]Listen, error) {
		if strings.EqualFold(v, "off") {
			return []Listen{}, nil
		}
		var out []Listen
		var errs []error
		for _, f := range parseList(v) {
			l, err := parseListenEntry(f, rules)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			out = append(out, l)
		}
		if len(errs) > 0 {
			return nil, joinInline(errs)
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("%s has no address; use off to disable the listener", quote(v))
		}
		return out, nil
	}
}

func parseListenEntry(f string, rules listenRules) (Listen, error) {
	fields := strings.Fields(f)
	if strings.EqualFold(fields[0], "off") {
		return Listen{}, errors.New("off cannot be combined with addresses")
	}
	host, port, err := net.SplitHostPort(fields[0])
	if err != nil {
		return Listen{}, fmt.Errorf("%s is not host:port ([::]:8000 for IPv6)", quote(fields[0]))
	}
	var l Listen
	switch a, err := netip.ParseAddr(host); {
	case host == "":
		return Listen{}, fmt.Errorf("%s has no host (0.0.0.0 or [::] for every address)", quote(fields[0]))
	case err == nil && a.Zone() != "":
		return Listen{}, fmt.Errorf("%s: zoned addresses are not supported", quote(fields[0]))
	case err == nil:
		l.Host = a.String()
	case isHostname(host):
		l.Host = strings.ToLower(host)
	default:
		return Listen{}, fmt.Errorf("%s: %s is not an IP address or host name", quote(fields[0]), quote(host))
	}
	if !isDigits(port) {
		return Listen{}, fmt.Errorf("%s: port %s is not a number", quote(fields[0]), quote(port))
	}
	if l.Port, err = strconv.Atoi(port); err != nil || l.Port > 65535 {
		return Listen{}, fmt.Errorf("%s: port %s is out of range 0–65535", quote(fields[0]), quote(port))
	}
	for _, flag := range fields[1:] {
		switch strings.ToLower(flag) {
		case "ssl":
			if !rules.ssl {
				return Listen{}, fmt.Errorf("%s: ssl is not supported on this listener", quote(f))
			}
			l.SSL = true
		case "http2":
			if !rules.http2 {
				return Listen{}, fmt.Errorf("%s: http2 is not supported on this listener", quote(f))
			}
			l.HTTP2 = true
		default:
			return Listen{}, fmt.Errorf("%s: unknown flag %s (want ssl, http2)", quote(f), quote(flag))
		}
	}
	if l.HTTP2 && !l.SSL {
		return Listen{}, fmt.Errorf("%s: http2 requires ssl (no cleartext HTTP/2)", quote(f))
	}
	return l, nil
}

// isHostname reports whether s is a DNS name of letters, digits, '-' and '_'
// in dot-separated labels of at most 63 bytes, 253 in all; a trailing dot is
// refused so one name has one spelling.
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
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// parsePlugins expands "bundled" and removes duplicates; "off" = none.
func parsePlugins(v string) ([]string, error) {
	if strings.EqualFold(v, "off") {
		return []string{}, nil
	}
	var out []string
	add := func(n string) {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	for _, f := range parseList(v) {
		switch n := strings.ToLower(f); {
		case n == "bundled":
			add("datakit")
			add("key-auth")
			add("prometheus")
		case n == "off":
			return nil, errors.New("off cannot be combined with plugin names")
		case isPluginName(n):
			add(n)
		default:
			return nil, fmt.Errorf("%s is not a plugin name", quote(f))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s has no plugin names; use off for none", quote(v))
	}
	return out, nil
}

func isPluginName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return s != ""
}

// parseHeaders parses the headers setting: server_tokens, latency_tokens,
// the header names of HeaderSet (any case) or off.
func parseHeaders(allowed HeaderSet) func(string) (HeaderSet, error) {
	return func(v string) (HeaderSet, error) {
		var set HeaderSet
		off := false
		tokens := parseList(v)
		for _, t := range tokens {
			var bits HeaderSet
			switch lt := strings.ToLower(t); lt {
			case "off":
				off = true
				continue
			case "server_tokens":
				bits = ServerTokens
			case "latency_tokens":
				bits = LatencyTokens
			default:
				for _, h := range headerNames() {
					if strings.EqualFold(h.name, lt) {
						bits = h.bit
					}
				}
			}
			if bits == 0 || !allowed.Has(bits) {
				return 0, fmt.Errorf("%s is not a header token (want %s)", quote(t), headerTokens(allowed))
			}
			set |= bits
		}
		if off && len(tokens) > 1 {
			return 0, errors.New("off cannot be combined with other headers")
		}
		return set, nil
	}
}

// headerTokens describes the tokens allowed for a HeaderSet setting.
func headerTokens(allowed HeaderSet) string {
	var out []string
	if allowed.Has(ServerTokens) {
		out = append(out, "server_tokens")
	}
	if allowed.Has(LatencyTokens) {
		out = append(out, "latency_tokens")
	}
	out = append(out, allowed.Names()...)
	return strings.Join(append(out, "off"), ", ")
}

// parseTrustedIPs parses IPs and CIDRs; a single IP becomes /32 or /128.
func parseTrustedIPs(v string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	var errs []error
	for _, f := range parseList(v) {
		p, err := parsePrefix(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	if len(errs) > 0 {
		return nil, joinInline(errs)
	}
	return out, nil
}

func parsePrefix(f string) (netip.Prefix, error) {
	if strings.Contains(f, "/") {
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%s is not a CIDR", quote(f))
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(f)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%s is not an IP address or CIDR", quote(f))
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// checkDestination checks the syntax of a datakit_call_allow/deny entry:
// a CIDR, an IP, [IPv6]:port, host, host:port or *.domain[:port]. Matching
// is the SSRF policy's business; this only catches typos at start-up.
func checkDestination(f string) error {
	if _, err := parsePrefix(f); err == nil {
		return nil
	}
	if strings.Contains(f, "://") {
		return fmt.Errorf("%s is a URL; give host or host:port", quote(f))
	}
	if strings.Contains(f, "/") {
		return fmt.Errorf("%s is not a CIDR", quote(f))
	}
	host := f
	if strings.HasPrefix(f, "[") || strings.Count(f, ":") == 1 {
		h, port, err := net.SplitHostPort(f)
		if err != nil {
			return fmt.Errorf("%s is not host:port", quote(f))
		}
		if n, err := strconv.Atoi(port); err != nil || !isDigits(port) || n < 1 || n > 65535 {
			return fmt.Errorf("%s: port %s is not 1–65535", quote(f), quote(port))
		}
		if strings.HasPrefix(f, "[") {
			if a, err := netip.ParseAddr(h); err != nil || !a.Is6() || a.Zone() != "" {
				return fmt.Errorf("%s: %s is not an IPv6 address", quote(f), quote(h))
			}
			return nil
		}
		host = h
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	if isHostname(strings.TrimPrefix(host, "*.")) {
		return nil
	}
	return fmt.Errorf("%s is not a CIDR, IP, host, host:port or *.domain", quote(f))
}

// checkHeaderName checks an HTTP header field name (RFC 9110 token).
func checkHeaderName(f string) error {
	for i := 0; i < len(f); i++ {
		if !isTokenChar(f[i]) {
			return fmt.Errorf("%s is not a header name", quote(f))
		}
	}
	return nil
}

func isTokenChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// parseHeaderNames parses a list of header names into canonical form.
func parseHeaderNames(v string) ([]string, error) {
	var out []string
	for _, f := range parseList(v) {
		if err := checkHeaderName(f); err != nil {
			return nil, err
		}
		if c := textproto.CanonicalMIMEHeaderKey(f); !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out, nil
}

// checkOrigin checks an admin_gui_origin entry: scheme://host[:port], no path.
func checkOrigin(f string) error {
	u, err := url.Parse(f)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%s is not an origin (scheme://host[:port])", quote(f))
	}
	return nil
}

// checkHost checks an admin_allowed_hosts entry: a host name or IP, with an
// optional port.
func checkHost(f string) error {
	host := f
	if h, _, err := net.SplitHostPort(f); err == nil {
		host = h
	}
	if _, err := netip.ParseAddr(host); err == nil || isHostname(host) {
		return nil
	}
	return fmt.Errorf("%s is not a host name", quote(f))
}

// parseNodeID accepts a UUID (any case) and returns it in lower case.
func parseNodeID(v string) (string, error) {
	if len(v) != 36 {
		return "", fmt.Errorf("%s is not a UUID", quote(v))
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return "", fmt.Errorf("%s is not a UUID", quote(v))
			}
		case !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'):
			return "", fmt.Errorf("%s is not a UUID", quote(v))
		}
	}
	return strings.ToLower(v), nil
}

// nonEmpty refuses a list that is only commas.
func nonEmpty(parse func(string) ([]string, error)) func(string) ([]string, error) {
	return func(v string) ([]string, error) {
		out, err := parse(v)
		if err == nil && len(out) == 0 {
			return nil, fmt.Errorf("%s is an empty list", quote(v))
		}
		return out, err
	}
}

// listOf makes a list parser from an element check.
func listOf(check func(string) error) func(string) ([]string, error) {
	return func(v string) ([]string, error) {
		out := parseList(v)
		var errs []error
		for _, f := range out {
			if err := check(f); err != nil {
				errs = append(errs, err)
			}
		}
		if len(errs) > 0 {
			return nil, joinInline(errs)
		}
		return out, nil
	}
}

// joinInline joins element errors into one line: every message is one line
// of output (gateway.md §2.2 "one line naming the cause").
func joinInline(errs []error) error {
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return errors.New(strings.Join(msgs, "; "))
}

// quote quotes a value for an error message on one line, shortened so that a
// pasted document cannot flood the log.
func quote(v string) string {
	const max = 80
	if len(v) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(v[cut]) {
			cut--
		}
		return strconv.Quote(v[:cut]) + "…"
	}
	return strconv.Quote(v)
}
