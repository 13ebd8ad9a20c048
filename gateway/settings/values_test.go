package settings

import (
	"log/slog"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseBool(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    bool
		wantErr bool
	}{
		{"on", true, false}, {"off", false, false},
		{"true", true, false}, {"false", false, false},
		{"yes", true, false}, {"no", false, false},
		{"1", true, false}, {"0", false, false},
		{"ON", true, false}, {"Off", false, false}, {"TRUE", true, false},
		{"enabled", false, true}, {"2", false, true}, {"y", false, true},
	} {
		got, err := parseBool(tc.in)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("parseBool(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestParseList(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"a", []string{"a"}},
		{"a,b", []string{"a", "b"}},
		{" a , b ,c ", []string{"a", "b", "c"}},
		{"a,,b,", []string{"a", "b"}},
		{",", nil},
		{"a b, c", []string{"a b", "c"}},
	} {
		if got := parseList(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseList(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{"500ms", 500 * time.Millisecond, ""},
		{"1m30s", 90 * time.Second, ""},
		{"1h", time.Hour, ""},
		{"30", 30 * time.Second, ""},
		{"0", 0, ""},
		{"0.5", 500 * time.Millisecond, ""},
		{"1.", time.Second, ""},
		{"0s", 0, ""},
		{"-1", 0, `"-1" is not a duration`},
		{"-1s", 0, `"-1s" is negative`},
		{"1e3", 0, `"1e3" is not a duration`},
		{"Inf", 0, `"Inf" is not a duration`},
		{"1_000", 0, `"1_000" is not a duration`},
		{"10 s", 0, `"10 s" is not a duration`},
		{"ten", 0, `"ten" is not a duration (Go syntax such as 500ms or 1m30s, or a number of seconds)`},
		{"99999999999999999999", 0, `"99999999999999999999" is not a duration in range`},
		{"9223372037", 0, `"9223372037" is not a duration in range`},
	} {
		got, err := parseDuration(tc.in)
		if !matchErr(err, tc.wantErr) || (tc.wantErr == "" && got != tc.want) {
			t.Errorf("parseDuration(%q) = %v, %v; want %v, error %q", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    int64
		wantErr string
	}{
		{"0", 0, ""},
		{"100", 100, ""},
		{"8k", 8 << 10, ""},
		{"8K", 8 << 10, ""},
		{"10m", 10 << 20, ""},
		{"10M", 10 << 20, ""},
		{"2g", 2 << 30, ""},
		{"k", 0, `"k" is not a size`},
		{"-1", 0, `"-1" is not a size`},
		{"1.5m", 0, `"1.5m" is not a size`},
		{"10mb", 0, `"10mb" is not a size (bytes, or a number with a k, m or g suffix)`},
		{"1 k", 0, `"1 k" is not a size`},
		{"9223372036854775807", 9223372036854775807, ""},
		{"9223372036854775808", 0, `"9223372036854775808" is too large`},
		{"9007199254740992k", 0, `"9007199254740992k" is too large`},
	} {
		got, err := parseSize(tc.in)
		if !matchErr(err, tc.wantErr) || (tc.wantErr == "" && got != tc.want) {
			t.Errorf("parseSize(%q) = %v, %v; want %v, error %q", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestParseInt(t *testing.T) {
	for _, tc := range []struct {
		in      string
		lo, hi  int
		want    int
		wantErr string
	}{
		{"5432", 1, 65535, 5432, ""},
		{"1", 1, 10, 1, ""},
		{"0", 1, 10, 0, `"0" is out of range 1–10`},
		{"11", 1, 10, 0, `"11" is out of range 1–10`},
		{"-3", -5, 5, -3, ""},
		{"1.0", 1, 10, 0, `"1.0" is not an integer`},
		{"+1", 1, 10, 0, `"+1" is not an integer`},
		{"0x10", 1, 100, 0, `"0x10" is not an integer`},
		{"99999999999999999999", 1, 10, 0, `out of range`},
	} {
		got, err := parseInt(tc.in, tc.lo, tc.hi)
		if !matchErr(err, tc.wantErr) || (tc.wantErr == "" && got != tc.want) {
			t.Errorf("parseInt(%q, %d, %d) = %v, %v; want %v, error %q", tc.in, tc.lo, tc.hi, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestParseListen(t *testing.T) {
	all := listenRules{ssl: true, http2: true}
	for _, tc := range []struct {
		in      string
		rules   listenRules
		want    []Listen
		wantErr string
	}{
		{"0.0.0.0:8000", all, []Listen{{Host: "0.0.0.0", Port: 8000}}, ""},
		{"0.0.0.0:8000, 0.0.0.0:8443 http2 ssl", all,
			[]Listen{{Host: "0.0.0.0", Port: 8000}, {Host: "0.0.0.0", Port: 8443, SSL: true, HTTP2: true}}, ""},
		{"127.0.0.1:8443 ssl", all, []Listen{{Host: "127.0.0.1", Port: 8443, SSL: true}}, ""},
		{"[::]:8000", all, []Listen{{Host: "::", Port: 8000}}, ""},
		{"[::1]:8001 SSL", all, []Listen{{Host: "::1", Port: 8001, SSL: true}}, ""},
		{"LocalHost:0", all, []Listen{{Host: "localhost", Port: 0}}, ""},
		{"off", all, []Listen{}, ""},
		{"OFF", all, []Listen{}, ""},
		{"off, 127.0.0.1:1", all, nil, `off cannot be combined with addresses`},
		{"::1:8000", all, nil, `"::1:8000" is not host:port ([::]:8000 for IPv6)`},
		{"8000", all, nil, `"8000" is not host:port`},
		{":8000", all, nil, `":8000" has no host (0.0.0.0 or [::] for every address)`},
		{"127.0.0.1:http", all, nil, `"127.0.0.1:http": port "http" is not a number`},
		{"127.0.0.1:65536", all, nil, `"127.0.0.1:65536": port "65536" is out of range 0–65535`},
		{"127.0.0.1:-1", all, nil, `port "-1" is not a number`},
		{"bad host!:80", all, nil, `"bad" is not host:port`},
		{"bad!host:80", all, nil, `"bad!host:80": "bad!host" is not an IP address or host name`},
		{"[fe80::1%eth0]:80", all, nil, `zoned addresses are not supported`},
		{"0.0.0.0:8000 http2", all, nil, `"0.0.0.0:8000 http2": http2 requires ssl (no cleartext HTTP/2)`},
		{"0.0.0.0:8000 reuseport", all, nil, `"0.0.0.0:8000 reuseport": unknown flag "reuseport" (want ssl, http2)`},
		{"127.0.0.1:8007 ssl", listenRules{}, nil, `"127.0.0.1:8007 ssl": ssl is not supported on this listener`},
		{"127.0.0.1:8001 http2 ssl", listenRules{ssl: true}, nil, `http2 is not supported on this listener`},
		{",", all, nil, `"," has no address; use off to disable the listener`},
		{"a:1 x, b:2 y", all, nil, `"a:1 x": unknown flag "x" (want ssl, http2); "b:2 y": unknown flag "y" (want ssl, http2)`},
	} {
		got, err := parseListen(tc.rules)(tc.in)
		if !matchErr(err, tc.wantErr) || (tc.wantErr == "" && !reflect.DeepEqual(got, tc.want)) {
			t.Errorf("parseListen(%q) = %+v, %v; want %+v, error %q", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestListenMethods(t *testing.T) {
	for _, tc := range []struct {
		l        Listen
		addr     string
		str      string
		loopback bool
	}{
		{Listen{Host: "0.0.0.0", Port: 8443, SSL: true, HTTP2: true}, "0.0.0.0:8443", "0.0.0.0:8443 http2 ssl", false},
		{Listen{Host: "::", Port: 8000}, "[::]:8000", "[::]:8000", false},
		{Listen{Host: "::1", Port: 8001}, "[::1]:8001", "[::1]:8001", true},
		{Listen{Host: "127.0.0.2", Port: 1, SSL: true}, "127.0.0.2:1", "127.0.0.2:1 ssl", true},
		{Listen{Host: "localhost", Port: 8001}, "localhost:8001", "localhost:8001", true},
		{Listen{Host: "::ffff:127.0.0.1", Port: 1}, "[::ffff:127.0.0.1]:1", "[::ffff:127.0.0.1]:1", true},
		{Listen{Host: "10.0.0.1", Port: 8001}, "10.0.0.1:8001", "10.0.0.1:8001", false},
		{Listen{Host: "example.com", Port: 8001}, "example.com:8001", "example.com:8001", false},
	} {
		if got := tc.l.Address(); got != tc.addr {
			t.Errorf("%+v.Address() = %q, want %q", tc.l, got, tc.addr)
		}
		if got := tc.l.String(); got != tc.str {
			t.Errorf("%+v.String() = %q, want %q", tc.l, got, tc.str)
		}
		if got := tc.l.IsLoopback(); got != tc.loopback {
			t.Errorf("%+v.IsLoopback() = %v, want %v", tc.l, got, tc.loopback)
		}
		// String is datakit.conf syntax: it parses back to the same entry.
		if back, err := parseListen(listenRules{ssl: true, http2: true})(tc.l.String()); err != nil || back[0] != tc.l {
			t.Errorf("parseListen(%q) = %+v, %v; want %+v", tc.l.String(), back, err, tc.l)
		}
	}
}

func TestParseHeaders(t *testing.T) {
	all := ^HeaderSet(0)
	for _, tc := range []struct {
		in      string
		allowed HeaderSet
		want    HeaderSet
		wantErr string
	}{
		{"server_tokens, latency_tokens, X-Kong-Request-Id", all, ServerTokens | LatencyTokens | HeaderRequestID, ""},
		{"off", all, 0, ""},
		{"Server", all, HeaderServer, ""},
		{"via, x-kong-upstream-status", all, HeaderVia | HeaderUpstreamStatus, ""},
		{"SERVER_TOKENS", all, ServerTokens, ""},
		{"X-Kong-Upstream-Latency, X-Kong-Proxy-Latency", all, HeaderUpstreamLatency | HeaderProxyLatency, ""},
		{"X-Kong-Response-Latency, X-Kong-Admin-Latency", all, HeaderResponseLatency | HeaderAdminLatency, ""},
		{"off, Server", all, 0, "off cannot be combined with other headers"},
		{"X-Powered-By", all, 0, `"X-Powered-By" is not a header token (want server_tokens, latency_tokens, Server, Via, X-Kong-Proxy-Latency, X-Kong-Upstream-Latency, X-Kong-Response-Latency, X-Kong-Admin-Latency, X-Kong-Upstream-Status, X-Kong-Request-Id, off)`},
		{"X-Kong-Request-Id", HeaderRequestID, HeaderRequestID, ""},
		{"off", HeaderRequestID, 0, ""},
		{"Server", HeaderRequestID, 0, `"Server" is not a header token (want X-Kong-Request-Id, off)`},
		{"server_tokens", HeaderRequestID, 0, `"server_tokens" is not a header token (want X-Kong-Request-Id, off)`},
	} {
		got, err := parseHeaders(tc.allowed)(tc.in)
		if !matchErr(err, tc.wantErr) || got != tc.want {
			t.Errorf("parseHeaders(%q) = %v, %v; want %v, error %q", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestHeaderSet(t *testing.T) {
	s := ServerTokens | HeaderRequestID
	if !s.Has(HeaderServer) || !s.Has(ServerTokens) || s.Has(HeaderProxyLatency) || s.Has(LatencyTokens) {
		t.Errorf("%v.Has gives the wrong members", s)
	}
	if got, want := s.String(), "Server, Via, X-Kong-Request-Id"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got := HeaderSet(0).String(); got != "off" {
		t.Errorf("HeaderSet(0).String() = %q, want off", got)
	}
	if got := HeaderSet(0).Names(); got == nil || len(got) != 0 {
		t.Errorf("HeaderSet(0).Names() = %#v, want an empty non-nil slice", got)
	}
	// String is datakit.conf syntax.
	for _, h := range []HeaderSet{0, s, ^HeaderSet(0) >> 8, HeaderUpstreamStatus} {
		if back, err := parseHeaders(^HeaderSet(0))(h.String()); err != nil || back != h {
			t.Errorf("parseHeaders(%q) = %v, %v; want %v", h.String(), back, err, h)
		}
	}
}

func TestParseTrustedIPs(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []string
		wantErr string
	}{
		{"10.0.0.1", []string{"10.0.0.1/32"}, ""},
		{"::1", []string{"::1/128"}, ""},
		{"10.0.0.0/8, 192.168.1.7/24", []string{"10.0.0.0/8", "192.168.1.0/24"}, ""},
		{"0.0.0.0/0, ::/0", []string{"0.0.0.0/0", "::/0"}, ""},
		{"10.0.0.1, 10.0.0.1/32", []string{"10.0.0.1/32"}, ""},
		{"10.0.0.0/33", nil, `"10.0.0.0/33" is not a CIDR`},
		{"example.com", nil, `"example.com" is not an IP address or CIDR`},
		{"fe80::1%eth0", nil, `"fe80::1%eth0" is not an IP address or CIDR`},
		{"1.2.3.4, nope, 5/8", nil, `"nope" is not an IP address or CIDR; "5/8" is not a CIDR`},
	} {
		got, err := parseTrustedIPs(tc.in)
		var gotStr []string
		for _, p := range got {
			gotStr = append(gotStr, p.String())
		}
		if !matchErr(err, tc.wantErr) || !reflect.DeepEqual(gotStr, tc.want) {
			t.Errorf("parseTrustedIPs(%q) = %q, %v; want %q, error %q", tc.in, gotStr, err, tc.want, tc.wantErr)
		}
	}
	got, _ := parseTrustedIPs("10.1.2.3")
	if !got[0].Contains(netip.MustParseAddr("10.1.2.3")) || got[0].Contains(netip.MustParseAddr("10.1.2.4")) {
		t.Errorf("parseTrustedIPs(10.1.2.3) = %v, want exactly that address", got)
	}
}

func TestCheckDestination(t *testing.T) {
	for _, tc := range []struct {
		in      string
		wantErr string
	}{
		{"10.0.0.0/8", ""},
		{"127.0.0.1", ""},
		{"::1", ""},
		{"fd00::/8", ""},
		{"api.example.com", ""},
		{"api.example.com:443", ""},
		{"*.example.com", ""},
		{"*.example.com:8443", ""},
		{"10.0.0.1:8080", ""},
		{"[::1]:8080", ""},
		{"localhost", ""},
		{"10.0.0.0/99", `"10.0.0.0/99" is not a CIDR`},
		{"example.com:0", `"example.com:0": port "0" is not 1–65535`},
		{"example.com:http", `port "http" is not 1–65535`},
		{"[example.com]:80", `"[example.com]:80": "example.com" is not an IPv6 address`},
		{"*", `"*" is not a CIDR, IP, host, host:port or *.domain`},
		{"a.*.com", `is not a CIDR, IP, host`},
		{"http://example.com", `"http://example.com" is a URL; give host or host:port`},
		{"exa mple.com", `is not a CIDR, IP, host`},
	} {
		if err := checkDestination(tc.in); !matchErr(err, tc.wantErr) {
			t.Errorf("checkDestination(%q) = %v, want error %q", tc.in, err, tc.wantErr)
		}
	}
}

func TestParsePlugins(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []string
		wantErr string
	}{
		{"bundled", []string{"datakit", "key-auth", "prometheus"}, ""},
		{"key-auth", []string{"key-auth"}, ""},
		{"prometheus, bundled", []string{"prometheus", "datakit", "key-auth"}, ""},
		{"Datakit, datakit", []string{"datakit"}, ""},
		{"off", []string{}, ""},
		{"off, datakit", nil, "off cannot be combined with plugin names"},
		{"key auth", nil, `"key auth" is not a plugin name`},
		{" , ", nil, `" , " has no plugin names; use off for none`},
	} {
		got, err := parsePlugins(tc.in)
		if !matchErr(err, tc.wantErr) || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parsePlugins(%q) = %#v, %v; want %#v, error %q", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestParseMisc(t *testing.T) {
	for _, tc := range []struct {
		name    string
		parse   func(string) (any, error)
		in      string
		want    any
		wantErr string
	}{
		{"node_id", wrap(parseNodeID), "0B7E1D3A-52A4-4B4B-9E4B-7C0B2A1D9F00", "0b7e1d3a-52a4-4b4b-9e4b-7c0b2a1d9f00", ""},
		{"node_id", wrap(parseNodeID), "node-1", nil, `"node-1" is not a UUID`},
		{"node_id", wrap(parseNodeID), "0b7e1d3a_52a4-4b4b-9e4b-7c0b2a1d9f00", nil, `is not a UUID`},
		{"log_level", wrap(parseLogLevel), "debug", slog.LevelDebug, ""},
		{"log_level", wrap(parseLogLevel), "WARN", slog.LevelWarn, ""},
		{"log_level", wrap(parseLogLevel), "error", slog.LevelError, ""},
		{"log_level", wrap(parseLogLevel), "notice", nil, `"notice" is not one of debug, info, warn, error`},
		{"enum", wrap(parseEnum("text", "json")), "JSON", "json", ""},
		{"string", wrap(parseString), "/var/lib/datakit.db", "/var/lib/datakit.db", ""},
		{"string", wrap(parseString), "a\x00b", nil, `"a\x00b" contains a control character`},
		{"string", wrap(parseString), "a\xffb", nil, `"a\xffb" is not valid UTF-8`},
		{"header", wrap(parseHeaderName), "X-Forwarded-For", "X-Forwarded-For", ""},
		{"header", wrap(parseHeaderName), "X Real", nil, `"X Real" is not a header name`},
		{"header names", wrap(parseHeaderNames), "x-secret, X-SECRET, authorization-2",
			[]string{"X-Secret", "Authorization-2"}, ""},
		{"origin", wrap(listOf(checkOrigin)), "https://gui.example.com, http://localhost:8002",
			[]string{"https://gui.example.com", "http://localhost:8002"}, ""},
		{"origin", wrap(listOf(checkOrigin)), "*", nil, `"*" is not an origin (scheme://host[:port])`},
		{"origin", wrap(listOf(checkOrigin)), "https://x.example/admin", nil, `is not an origin`},
		{"hosts", wrap(lowerList(listOf(checkHost))), "Admin.Example.com, 10.0.0.1:8001",
			[]string{"admin.example.com", "10.0.0.1:8001"}, ""},
		{"hosts", wrap(lowerList(listOf(checkHost))), "a/b", nil, `"a/b" is not a host name`},
		{"non-empty", wrap(nonEmpty(listOf(parseCertSource))), ",", nil, `"," is an empty list`},
		{"non-empty", wrap(nonEmpty(listOf(parseCertSource))), "system, /etc/ca.pem", []string{"system", "/etc/ca.pem"}, ""},
		{"positive", wrap(mustBePositive(parseSize)), "0", nil, `"0" must be greater than 0 (limits can be raised, not disabled)`},
		{"positive", wrap(mustBePositive(parseDuration)), "0ms", nil, `"0ms" must be greater than 0`},
		{"positive", wrap(mustBePositive(parseDuration)), "1ms", time.Millisecond, ""},
	} {
		got, err := tc.parse(tc.in)
		if !matchErr(err, tc.wantErr) || (tc.wantErr == "" && !reflect.DeepEqual(got, tc.want)) {
			t.Errorf("%s: parse(%q) = %#v, %v; want %#v, error %q", tc.name, tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestParseSecret(t *testing.T) {
	const value = "sh0rt\x00secret"
	for _, tc := range []struct {
		in      string
		min     int
		wantErr string
	}{
		{"0123456789abcdef", 16, ""},
		{"ünïcödé-ünïcödé-", 16, ""},
		{"0123456789abcde", 16, "must be at least 16 characters"},
		{value, 0, "contains a control character"},
		{"a\xffb", 0, "not valid UTF-8"},
		{"x", 0, ""},
	} {
		got, err := parseSecret(tc.min)(tc.in)
		if !matchErr(err, tc.wantErr) || (err == nil && got.Reveal() != tc.in) {
			t.Errorf("parseSecret(%d)(%q) = %q, %v; want error %q", tc.min, tc.in, got.Reveal(), err, tc.wantErr)
		}
		if err != nil && strings.Contains(err.Error(), tc.in) {
			t.Errorf("parseSecret(%d)(%q) error %q echoes the value", tc.min, tc.in, err)
		}
	}
}

func TestQuoteShortens(t *testing.T) {
	long := strings.Repeat("é", 100)
	q := quote(long)
	if len(q) > 90 || !strings.HasSuffix(q, "…") || strings.Contains(q, `\x`) {
		t.Errorf("quote(100 × é) = %q, want at most 80 bytes of whole runes and an ellipsis", q)
	}
}

func wrap[T any](f func(string) (T, error)) func(string) (any, error) {
	return func(v string) (any, error) {
		x, err := f(v)
		if err != nil {
			return nil, err
		}
		return x, nil
	}
}

// matchErr reports whether err is nil when want is "", else whether its
// message contains want.
func matchErr(err error, want string) bool {
	if want == "" {
		return err == nil
	}
	return err != nil && strings.Contains(err.Error(), want)
}
