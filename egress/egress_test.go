package egress

import (
	"errors"
	"net/netip"
	"net/url"
	"strings"
	"testing"
)

func mustNew(t *testing.T, allow, deny, self []string) *Policy {
	t.Helper()
	p, err := New(allow, deny, self)
	if err != nil {
		t.Fatalf("New(%q, %q, %q) = %v", allow, deny, self, err)
	}
	return p
}

func check(t *testing.T, p *Policy, raw string, dynamic, want bool) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("url.Parse(%q) = %v", raw, err)
	}
	err = p.CheckURL(u, dynamic)
	if err != nil && !errors.Is(err, ErrNotAllowed) {
		t.Fatalf("CheckURL(%q, %v) = %v, want ErrNotAllowed or nil", raw, dynamic, err)
	}
	if got := err == nil; got != want {
		t.Errorf("CheckURL(%q, dynamic=%v) allowed = %v, want %v", raw, dynamic, got, want)
	}
}

func TestErrNotAllowedText(t *testing.T) {
	if ErrNotAllowed.Error() != "destination not allowed" {
		t.Errorf("ErrNotAllowed = %q", ErrNotAllowed)
	}
}

func TestNewInvalidEntries(t *testing.T) {
	for _, e := range []string{"", "10.0.0.0/33", "http://x", "host:0", "host:99999", "host:x", "[::1", "[fe80::1%lo]:80",
		"1.2.3.4/8/2", "bad host", "*.", "-a.example", "a..b", "*.*.example", "[example.com]:80"} {
		_, err := New([]string{e}, nil, nil)
		if err == nil || !strings.Contains(err.Error(), `"`+e+`"`) {
			t.Errorf("New(allow %q) = %v, want an error naming the entry", e, err)
		}
		if _, err := New(nil, []string{e}, nil); err == nil {
			t.Errorf("New(deny %q) = nil error", e)
		}
	}
	for _, e := range []string{"127.0.0.1", "x:y", ":x", "*.example:80"} {
		if _, err := New(nil, nil, []string{e}); err == nil || !strings.Contains(err.Error(), `"`+e+`"`) {
			t.Errorf("New(self %q) = %v, want an error naming the entry", e, err)
		}
	}
	for _, e := range []string{"10.0.0.0/8", "::ffff:10.0.0.0/104", "fc00::/7", "1.2.3.4", "::1", "[::1]:8080", "1.2.3.4:80",
		"api.internal", "api.internal:443", "*.corp.example", "*.corp.example:8443", "Example.COM."} {
		if _, err := New([]string{e}, []string{e}, nil); err != nil {
			t.Errorf("New(%q) = %v", e, err)
		}
	}
}

func TestSchemes(t *testing.T) {
	p := mustNew(t, nil, nil, nil)
	for _, tc := range []struct {
		url  string
		want bool
	}{
		{"http://example.com/", true}, {"https://example.com/", true},
		{"HTTP://example.com/", true}, {"HtTpS://example.com/", true},
		{"file:///etc/passwd", false}, {"gopher://example.com/", false}, {"ftp://example.com/", false},
		{"ws://example.com/", false}, {"//example.com/", false},
		{"http:///path", false}, {"http://example.com:0/", false}, {"http://example.com:70000/", false},
	} {
		for _, dyn := range []bool{false, true} {
			check(t, p, tc.url, dyn, tc.want)
		}
	}
	if err := p.CheckURL(nil, false); !errors.Is(err, ErrNotAllowed) {
		t.Errorf("CheckURL(nil) = %v", err)
	}
}

// TestSpecialRanges: a dynamic destination in a special range is refused, a
// static one allowed.
func TestSpecialRanges(t *testing.T) {
	p := mustNew(t, nil, nil, nil)
	refused := []string{
		// loopback and its spellings
		"127.0.0.1", "127.255.255.254", "[::1]", "0x7f000001", "2130706433", "127.1", "127.0.1", "0177.0.0.1",
		"0x7f.0.0.1", "017700000001", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "localhost", "localhost.", "LOCALHOST",
		"a.localhost", "127.0.0.1.",
		// private, shared, link-local, unique local
		"10.0.0.1", "10.255.255.255", "172.16.0.1", "172.31.255.255", "192.168.1.1", "100.64.0.1", "100.127.255.255",
		"169.254.169.254", "169.254.0.1", "[fe80::1]", "[fe80::1%25lo]", "[fc00::1]", "[fd12:3456::1]",
		// this network, unspecified, multicast, broadcast, reserved
		"0.0.0.0", "0", "0.1.2.3", "[::]", "224.0.0.1", "239.255.255.250", "[ff02::1]", "255.255.255.255", "240.0.0.1",
		// documentation, benchmarking, IETF
		"192.0.2.1", "198.51.100.1", "203.0.113.1", "198.18.0.1", "192.0.0.1", "[2001:db8::1]",
		// IPv4-mapped, NAT64, 6to4, Teredo forms
		"[::ffff:10.0.0.1]", "[::ffff:169.254.169.254]", "[64:ff9b::7f00:1]", "[64:ff9b::a9fe:a9fe]",
		"[2002:7f00:1::1]", "[2002:a00:1::]", "[2001:0:4136:e378:8000:63bf:80ff:fffe]", // Teredo, client 127.0.0.1
		"[2001:0:7f00:1::1]", // Teredo server 127.0.0.1
		"[::127.0.0.1]",      // IPv4-compatible
	}
	for _, h := range refused {
		check(t, p, "http://"+h+"/", true, false)
		check(t, p, "http://"+h+"/", false, true)
	}
	allowed := []string{"8.8.8.8", "1.1.1.1", "[2606:4700:4700::1111]", "[::ffff:8.8.8.8]", "example.com", "example.com.",
		"172.32.0.1", "100.128.0.1", "11.0.0.1", "127.example.com", "1e100.net", "4294967296", "1.2.3.4.5"}
	for _, h := range allowed {
		check(t, p, "http://"+h+"/", true, true)
	}
}

func TestSpecial(t *testing.T) {
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{"127.0.0.1", true}, {"::1", true}, {"::", true}, {"10.1.2.3", true}, {"172.16.0.0", true},
		{"192.168.0.1", true}, {"100.64.0.0", true}, {"169.254.169.254", true}, {"fe80::abcd", true},
		{"fc00::", true}, {"0.0.0.0", true}, {"255.255.255.255", true}, {"224.0.0.1", true}, {"ff05::2", true},
		{"::ffff:127.0.0.1", true}, {"64:ff9b::a00:1", true}, {"2002:c0a8:101::", true},
		{"2001:0:1:2:0:0:f5ff:fffe", true},
		{"8.8.8.8", false}, {"2606:4700::1", false}, {"::ffff:8.8.8.8", false}, {"2a00:1450::1", false},
	} {
		if got := Special(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("Special(%s) = %v, want %v", tc.addr, got, tc.want)
		}
	}
}

func TestAllowDeny(t *testing.T) {
	for _, tc := range []struct {
		name        string
		allow, deny []string
		url         string
		dynamic     bool
		want        bool
	}{
		{"allow re-admits loopback", []string{"127.0.0.1"}, nil, "http://127.0.0.1:9000/", true, true},
		{"allow matches spellings", []string{"127.0.0.1"}, nil, "http://0x7f000001:9000/", true, true},
		{"allow matches mapped form", []string{"127.0.0.1"}, nil, "http://[::ffff:127.0.0.1]:9000/", true, true},
		{"allow CIDR", []string{"10.0.0.0/8"}, nil, "http://10.1.2.3/", true, true},
		{"allow CIDR other range", []string{"10.0.0.0/8"}, nil, "http://192.168.1.1/", true, false},
		{"non-empty allow must match public", []string{"10.0.0.0/8"}, nil, "http://8.8.8.8/", true, false},
		{"non-empty allow must match name", []string{"10.0.0.0/8"}, nil, "http://example.com/", true, false},
		{"non-empty allow ignores static", []string{"10.0.0.0/8"}, nil, "http://example.com/", false, true},
		{"allow with port: that port", []string{"127.0.0.1:9000"}, nil, "http://127.0.0.1:9000/", true, true},
		{"allow with port: other port", []string{"127.0.0.1:9000"}, nil, "http://127.0.0.1:9001/", true, false},
		{"allow with port: default port", []string{"api.test:443"}, nil, "https://api.test/", true, true},
		{"allow with port: default port mismatch", []string{"api.test:443"}, nil, "http://api.test/", true, false},
		{"allow IPv6 with port", []string{"[::1]:8080"}, nil, "http://[::1]:8080/", true, true},
		{"allow host any port", []string{"api.test"}, nil, "http://API.test.:1234/", true, true},
		{"allow host is not its subdomain", []string{"api.test"}, nil, "http://x.api.test/", true, false},
		{"allow wildcard", []string{"*.corp.example"}, nil, "http://a.b.corp.example/", true, true},
		{"allow wildcard not apex", []string{"*.corp.example"}, nil, "http://corp.example/", true, false},
		{"allow wildcard not suffix trick", []string{"*.corp.example"}, nil, "http://evilcorp.example/", true, false},
		{"allow wildcard with port", []string{"*.corp.example:8443"}, nil, "https://a.corp.example:8443/", true, true},
		{"allow wildcard other port", []string{"*.corp.example:8443"}, nil, "https://a.corp.example/", true, false},
		{"userinfo does not fool", []string{"allowed.test"}, nil, "http://allowed.test@127.0.0.1/", true, false},
		{"deny beats allow", []string{"10.0.0.0/8"}, []string{"10.0.0.5"}, "http://10.0.0.5/", true, false},
		{"deny static", nil, []string{"10.0.0.0/8"}, "http://10.0.0.5/", false, false},
		{"deny static name", nil, []string{"*.internal"}, "http://db.internal/", false, false},
		{"deny port only", nil, []string{"example.com:8080"}, "http://example.com:8080/", false, false},
		{"deny port other", nil, []string{"example.com:8080"}, "http://example.com/", false, true},
		{"deny mapped form", nil, []string{"10.0.0.0/8"}, "http://[::ffff:10.0.0.1]/", false, false},
		{"deny NAT64 form", nil, []string{"8.8.8.0/24"}, "http://[64:ff9b::808:808]/", false, false},
		{"deny 6to4 form", nil, []string{"8.8.8.0/24"}, "http://[2002:808:808::1]/", false, false},
		{"deny Teredo client", nil, []string{"8.8.8.0/24"}, "http://[2001:0:1:2::f7f7:f7f7]/", false, false},
		{"deny inet_aton form", nil, []string{"8.8.8.8"}, "http://134744072/", false, false},
		{"deny mapped CIDR entry", nil, []string{"::ffff:10.0.0.0/104"}, "http://10.2.3.4/", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check(t, mustNew(t, tc.allow, tc.deny, nil), tc.url, tc.dynamic, tc.want)
		})
	}
}

func TestSelfAddresses(t *testing.T) {
	p := mustNew(t, []string{"127.0.0.1", "admin.test"}, nil, []string{"127.0.0.1:8001", "admin.test:8444", "[::1]:8100", ":8007", "127.0.0.1:0"})
	for _, tc := range []struct {
		url  string
		want bool
	}{
		{"http://127.0.0.1:8001/", false}, {"http://localhost:8001/", false}, {"http://0x7f000001:8001/", false},
		{"http://[::ffff:127.0.0.1]:8001/", false}, {"https://admin.test:8444/", false}, {"http://[::1]:8100/", false},
		{"http://127.0.0.2:8007/", false}, {"http://0.0.0.0:8007/", false}, {"http://[::]:8007/", false}, {"http://localhost:8007/", false},
		{"http://127.0.0.1:8002/", true}, {"https://admin.test/", true},
	} {
		// Self addresses are refused static or dynamic, even when allow matches.
		check(t, p, tc.url, false, tc.want)
		check(t, p, tc.url, true, tc.want)
	}
}

func TestControl(t *testing.T) {
	p := mustNew(t, nil, []string{"203.0.113.7"}, []string{"127.0.0.1:8001"})
	for _, tc := range []struct {
		address string
		dynamic bool
		want    bool
	}{
		{"127.0.0.1:80", false, true}, {"127.0.0.1:80", true, false}, {"[::1]:80", true, false},
		{"[::ffff:127.0.0.1]:80", true, false}, {"169.254.169.254:80", true, false}, {"[fe80::1%lo]:80", true, false},
		{"8.8.8.8:443", true, true}, {"203.0.113.7:80", false, false}, {"127.0.0.1:8001", false, false},
		{"not an address", false, false},
	} {
		err := p.Control(tc.dynamic)("tcp", tc.address, nil)
		if got := err == nil; got != tc.want || (err != nil && !errors.Is(err, ErrNotAllowed)) {
			t.Errorf("Control(%v)(%q) = %v, want allowed %v", tc.dynamic, tc.address, err, tc.want)
		}
	}

	// A name allowed by a host entry keeps its resolved address admitted;
	// without the name the address alone is refused.
	p = mustNew(t, []string{"api.internal:8080"}, nil, nil)
	if err := p.ControlHost("API.internal.", true)("tcp", "10.0.0.1:8080", nil); err != nil {
		t.Errorf("ControlHost(api.internal)(10.0.0.1:8080) = %v", err)
	}
	if err := p.ControlHost("api.internal", true)("tcp", "10.0.0.1:8081", nil); err == nil {
		t.Errorf("ControlHost(api.internal)(10.0.0.1:8081) allowed")
	}
	if err := p.Control(true)("tcp", "10.0.0.1:8080", nil); err == nil {
		t.Errorf("Control(10.0.0.1:8080) allowed")
	}
	if err := p.ControlHost("other.test", true)("tcp", "8.8.8.8:8080", nil); err == nil {
		t.Errorf("ControlHost(other.test) allowed with a non-matching allow list")
	}
	// A literal host gives no name.
	if err := p.ControlHost("127.0.0.1", true)("tcp", "127.0.0.1:8080", nil); err == nil {
		t.Errorf("ControlHost(127.0.0.1) allowed")
	}
}

func TestParseInetAton(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // "" = not an address
	}{
		{"127.1", "127.0.0.1"}, {"127.0.1", "127.0.0.1"}, {"0x7f000001", "127.0.0.1"}, {"2130706433", "127.0.0.1"},
		{"0177.0.0.01", "127.0.0.1"}, {"0x7F.1", ""}, // callers lower-case first
		{"0", "0.0.0.0"}, {"1.2.3.4", "1.2.3.4"}, {"1.2.65535", "1.2.255.255"}, {"1.2.65536", ""},
		{"256.1.1.1", ""}, {"4294967295", "255.255.255.255"}, {"4294967296", ""}, {"08", ""}, {"1.2.3.4.5", ""},
		{"cafe", ""}, {"1.example", ""}, {"1..2", ""},
	} {
		a, ok := parseInetAton(tc.in)
		got := ""
		if ok {
			got = a.String()
		}
		if got != tc.want {
			t.Errorf("parseInetAton(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
