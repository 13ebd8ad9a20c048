package settings

import (
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Settings are a node's effective settings (gateway.md §2.2). Load fills every
// field, defaults included; the zero value is not a usable configuration (use
// Default or Load). Durations are time.Duration, sizes are bytes, lists are
// in the order given. A loaded value is read-only by convention and then safe
// for concurrent use.
type Settings struct {
	// ConfPath is the datakit.conf file that was read; "" when none was.
	// It is not a setting and is not part of Public.
	ConfPath string

	// LogLevel is log_level (debug, info, warn, error); zero = info.
	LogLevel slog.Level
	// LogFormat is log_format: "text" or "json".
	LogFormat string
	// AccessLog is access_log: one record per proxy request (§11.2); zero = off.
	AccessLog bool
	// NodeID is node_id, a lower-case UUID; Load generates one per start when unset.
	NodeID string
	// Plugins is plugins with "bundled" expanded (datakit, key-auth, prometheus),
	// duplicates removed; nil/empty = off (no plugins).
	Plugins []string

	// ProxyListen, AdminListen and StatusListen are the listeners; empty = off.
	ProxyListen  []Listen
	AdminListen  []Listen
	StatusListen []Listen

	// SSLCert and SSLCertKey are PEM file paths of the fallback proxy
	// certificate; AdminSSLCert and AdminSSLCertKey those of admin ssl
	// listeners. "" = none.
	SSLCert         string
	SSLCertKey      string
	AdminSSLCert    string
	AdminSSLCertKey string

	// AdminToken is admin_token (§4.1); zero = no token.
	AdminToken Secret
	// AdminAllowRemoteWithoutToken accepts a non-loopback admin_listen without a token.
	AdminAllowRemoteWithoutToken bool
	// AdminGUIOrigin lists origins (scheme://host[:port]) allowed CORS and
	// cross-site writes; nil = none.
	AdminGUIOrigin []string
	// AdminAllowedHosts lists extra Host values the tokenless Admin API
	// accepts (lower-case); nil = none.
	AdminAllowedHosts []string
	// AdminMaxBodySize is admin_max_body_size in bytes (> 0).
	AdminMaxBodySize int64

	// Database is "sqlite", "postgres" or "off".
	Database string
	// SQLitePath is sqlite_path.
	SQLitePath string
	// PGHost … PGSchema connect to PostgreSQL; PGSchema "" = the server's default.
	PGHost     string
	PGPort     int
	PGUser     string
	PGPassword Secret
	PGDatabase string
	PGSchema   string
	// PGSSL enables TLS to PostgreSQL; PGSSLVerify verifies its certificate.
	PGSSL       bool
	PGSSLVerify bool
	// PGTimeout bounds each connect and statement; PGMaxConnections sizes the
	// pool (plus one LISTEN connection).
	PGTimeout        time.Duration
	PGMaxConnections int
	// DBUpdateFrequency is the poll interval, DBUpdateDebounce the coalescing
	// delay of change notifications (§6.7); DBStartupTimeout the retry window
	// for reaching the database at start.
	DBUpdateFrequency time.Duration
	DBUpdateDebounce  time.Duration
	DBStartupTimeout  time.Duration

	// DeclarativeConfig is a declarative file path, DeclarativeConfigString a
	// whole document (it wins); both only with Database "off". "" = none.
	DeclarativeConfig       string
	DeclarativeConfigString string

	// TrustedIPs are the trusted_ips prefixes (single IPs as /32 or /128);
	// nil = trust no peer.
	TrustedIPs []netip.Prefix
	// RealIPHeader names the header carrying the client address from a
	// trusted peer; RealIPRecursive picks the rightmost untrusted entry.
	RealIPHeader    string
	RealIPRecursive bool
	// Headers and HeadersUpstream are the headers added to responses and to
	// upstream requests (§8.6); zero = off.
	Headers         HeaderSet
	HeadersUpstream HeaderSet
	// ErrorDefaultType is the error body format when Accept and Content-Type
	// decide nothing (§8.8).
	ErrorDefaultType string

	// ClientMaxBodySize caps any request body in bytes; 0 = unlimited.
	ClientMaxBodySize int64
	// ClientBodyBufferLimit caps a request body held in memory;
	// UpstreamResponseBufferLimit an upstream body held in memory (bytes, > 0).
	ClientBodyBufferLimit       int64
	UpstreamResponseBufferLimit int64
	// ClientMaxHeaderSize caps request line + headers, ClientMaxURISize the
	// request target (bytes, > 0).
	ClientMaxHeaderSize int64
	ClientMaxURISize    int64
	// ClientHeaderTimeout is ReadHeaderTimeout; ClientBodyTimeout and
	// ClientSendTimeout the longest pause between two reads / writes (> 0).
	ClientHeaderTimeout time.Duration
	ClientBodyTimeout   time.Duration
	ClientSendTimeout   time.Duration
	// KeepaliveTimeout is IdleTimeout (> 0).
	KeepaliveTimeout time.Duration
	// HTTP2MaxConcurrentStreams is per HTTP/2 connection (> 0).
	HTTP2MaxConcurrentStreams int
	// UpstreamKeepalivePoolSize is the idle connections kept per upstream
	// address (0 = none kept); UpstreamKeepaliveIdleTimeout how long (> 0).
	UpstreamKeepalivePoolSize    int
	UpstreamKeepaliveIdleTimeout time.Duration
	// UpstreamTLSVerify verifies upstream certificates against
	// UpstreamTLSTrustedCertificate: "system" and/or PEM file paths.
	UpstreamTLSVerify             bool
	UpstreamTLSTrustedCertificate []string
	// DrainTimeout bounds the wait for in-flight requests at shutdown (0 =
	// none); DrainDelay is served while not ready before listeners close.
	DrainTimeout time.Duration
	DrainDelay   time.Duration

	// The limits below are positive: they can be raised, never disabled
	// (hardening.md §1.5).

	// ClientMaxHeaderLine caps one header field in bytes.
	ClientMaxHeaderLine int64
	// MaxQueryArgs caps the query pairs of a request.
	MaxQueryArgs int
	// ClientBodyMaxDuration caps reading a whole request body.
	ClientBodyMaxDuration time.Duration
	// MaxInflightRequests caps proxy requests in flight per node.
	MaxInflightRequests int
	// RedactHeaders are header names logged as [REDACTED] besides the
	// built-in set (canonical form); nil = none.
	RedactHeaders []string
	// DatakitMaxBodySize caps each call node's response body (bytes).
	DatakitMaxBodySize int64
	// DatakitPlanTimeout bounds each plan part, DatakitJqTimeout each jq evaluation.
	DatakitPlanTimeout time.Duration
	DatakitJqTimeout   time.Duration
	// DatakitCallAllow and DatakitCallDeny are the call destination policy
	// entries (CIDR, IP, host, host:port, *.domain), syntax-checked only;
	// nil = none.
	DatakitCallAllow []string
	DatakitCallDeny  []string
	// DatakitJqConcurrency caps concurrent jq evaluations per process;
	// Load defaults it to GOMAXPROCS.
	DatakitJqConcurrency int
	// The jq guard limits of hardening.md §2.8 (bytes, index, bytes, bytes, depth).
	DatakitJqMaxValueBytes  int64
	DatakitJqMaxArrayIndex  int
	DatakitJqMaxRegexBytes  int64
	DatakitJqMaxOutputBytes int64
	DatakitJqMaxOutputDepth int
}

// Masked is how a secret setting is shown wherever settings are shown.
const Masked = "******"

// Secret is a setting value that must never be printed or logged. It
// formats as "******" through fmt (any verb that uses String), slog and
// encoding (JSON, text); Reveal returns the value for the one place that
// needs it. The zero value means unset.
type Secret string

// Reveal returns the secret itself.
func (s Secret) Reveal() string { return string(s) }

// IsSet reports whether the secret has a value.
func (s Secret) IsSet() bool { return s != "" }

// String returns "******" (or "" when unset), never the value.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return Masked
}

// GoString keeps %#v from printing the value.
func (s Secret) GoString() string { return strconv.Quote(s.String()) }

// MarshalText keeps encoders (JSON, YAML, text) from writing the value.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// LogValue keeps slog from writing the value.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// Listen is one entry of a listen setting: "host:port [http2] [ssl]".
type Listen struct {
	// Host is an IP literal (IPv6 without brackets) or a host name.
	Host string
	// Port is 0–65535; 0 lets the system choose (tests).
	Port int
	// SSL serves TLS; HTTP2 offers h2 through ALPN (requires SSL).
	SSL, HTTP2 bool
}

// Address returns host:port for net.Listen ("[::]:8000" for IPv6).
func (l Listen) Address() string { return net.JoinHostPort(l.Host, strconv.Itoa(l.Port)) }

// String returns the entry in datakit.conf syntax, e.g. "0.0.0.0:8443 http2 ssl".
func (l Listen) String() string {
	s := l.Address()
	if l.HTTP2 {
		s += " http2"
	}
	if l.SSL {
		s += " ssl"
	}
	return s
}

// IsLoopback reports whether the listener accepts loopback connections only:
// a loopback IP (127.0.0.0/8, ::1) or the name "localhost".
func (l Listen) IsLoopback() bool {
	if strings.EqualFold(l.Host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(l.Host)
	return err == nil && a.Unmap().IsLoopback()
}

// HeaderSet is a set of the response and upstream headers the gateway adds
// (gateway.md §8.6). The zero value is the empty set ("off").
type HeaderSet uint16

// The headers a HeaderSet may hold.
const (
	HeaderServer HeaderSet = 1 << iota
	HeaderVia
	HeaderProxyLatency
	HeaderUpstreamLatency
	HeaderResponseLatency
	HeaderAdminLatency
	HeaderUpstreamStatus
	HeaderRequestID

	// ServerTokens is the server_tokens token: Server and Via.
	ServerTokens = HeaderServer | HeaderVia
	// LatencyTokens is the latency_tokens token: the four latency headers.
	LatencyTokens = HeaderProxyLatency | HeaderUpstreamLatency | HeaderResponseLatency | HeaderAdminLatency
)

// headerNames lists the set's members in their canonical spelling and order.
func headerNames() []struct {
	bit  HeaderSet
	name string
} {
	return []struct {
		bit  HeaderSet
		name string
	}{
		{HeaderServer, "Server"},
		{HeaderVia, "Via"},
		{HeaderProxyLatency, "X-Kong-Proxy-Latency"},
		{HeaderUpstreamLatency, "X-Kong-Upstream-Latency"},
		{HeaderResponseLatency, "X-Kong-Response-Latency"},
		{HeaderAdminLatency, "X-Kong-Admin-Latency"},
		{HeaderUpstreamStatus, "X-Kong-Upstream-Status"},
		{HeaderRequestID, "X-Kong-Request-Id"},
	}
}

// Has reports whether every header of h is in the set.
func (s HeaderSet) Has(h HeaderSet) bool { return s&h == h }

// Names returns the set's header names in a fixed order; empty for off.
func (s HeaderSet) Names() []string {
	names := []string{}
	for _, h := range headerNames() {
		if s.Has(h.bit) {
			names = append(names, h.name)
		}
	}
	return names
}

// String returns the set in datakit.conf syntax ("off" when empty).
func (s HeaderSet) String() string {
	if s == 0 {
		return "off"
	}
	return strings.Join(s.Names(), ", ")
}

// Default returns settings with every setting at its default, as Load gives
// with no file, environment or overrides (node_id: a new UUID).
func Default() *Settings {
	s, err := build(nil, defaultEnvironment())
	if err != nil {
		// The defaults are a constant of this package and tested.
		panic("settings: invalid defaults: " + err.Error())
	}
	return s
}

// Names returns every setting name in the order of gateway.md §2.2.
func Names() []string {
	tab := newTable(1)
	names := make([]string, len(tab))
	for i, e := range tab {
		names[i] = e.name
	}
	return names
}

// IsSecret reports whether the named setting is secret (admin_token,
// pg_password).
func IsSecret(name string) bool {
	e, ok := lookupEntry(newTable(1), name)
	return ok && e.secret
}

// Lookup returns the effective value of the named setting as Public shows
// it, with nil for secret settings (kong.configuration.{key}). ok is false
// for a name that is not a setting. It costs microseconds: resolve names
// once at load, not per request.
func (s *Settings) Lookup(name string) (value any, ok bool) {
	e, ok := lookupEntry(newTable(1), name)
	if !ok {
		return nil, false
	}
	if e.secret {
		return nil, true
	}
	return e.get(s), true
}

// Public returns every setting by name with JSON-friendly values: strings,
// bools, int64 for sizes and counts, durations as Go duration strings
// ("1m15s"), []string for lists and listeners, and for a secret "******"
// when it is set, else nil. The map is new on each call.
func (s *Settings) Public() map[string]any {
	tab := newTable(1)
	m := make(map[string]any, len(tab))
	for _, e := range tab {
		switch {
		case !e.secret:
			m[e.name] = e.get(s)
		case e.get(s) == any(true):
			m[e.name] = Masked
		default:
			m[e.name] = nil
		}
	}
	return m
}

func lookupEntry(tab []entry, name string) (entry, bool) {
	i := slices.IndexFunc(tab, func(e entry) bool { return e.name == name })
	if i < 0 {
		return entry{}, false
	}
	return tab[i], true
}
