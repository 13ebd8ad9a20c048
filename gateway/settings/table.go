package settings

import (
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// entry is one row of the settings table: its name, its default in
// datakit.conf syntax ("" = none), how a value is parsed into a Settings
// and how the effective value is shown.
type entry struct {
	name   string
	def    string
	secret bool
	// set parses a trimmed, non-empty value into s. Its error describes the
	// value without naming the setting or the source; for a secret it never
	// contains the value.
	set func(s *Settings, v string) error
	// get returns the value as Public shows it; for a secret, whether it is set.
	get func(s *Settings) any
}

// newTable returns the settings of gateway.md §2.2 in its order. It is built
// per call so that no package state exists; gomaxprocs is the default of
// datakit_jq_concurrency.
func newTable(gomaxprocs int) []entry {
	const maxCount = math.MaxInt32
	nonNegative, positive := false, true
	return []entry{
		field("log_level", "info", parseLogLevel, func(s *Settings) *slog.Level { return &s.LogLevel },
			func(l slog.Level) any { return strings.ToLower(l.String()) }),
		text("log_format", "text", parseEnum("text", "json"), func(s *Settings) *string { return &s.LogFormat }),
		boolean("access_log", "on", func(s *Settings) *bool { return &s.AccessLog }),
		text("node_id", "", parseNodeID, func(s *Settings) *string { return &s.NodeID }),
		list("plugins", "bundled", parsePlugins, func(s *Settings) *[]string { return &s.Plugins }),

		listen("proxy_listen", "0.0.0.0:8000, 0.0.0.0:8443 http2 ssl", listenRules{ssl: true, http2: true},
			func(s *Settings) *[]Listen { return &s.ProxyListen }),
		listen("admin_listen", "127.0.0.1:8001", listenRules{ssl: true},
			func(s *Settings) *[]Listen { return &s.AdminListen }),
		listen("status_listen", "127.0.0.1:8007", listenRules{},
			func(s *Settings) *[]Listen { return &s.StatusListen }),

		text("ssl_cert", "", parseString, func(s *Settings) *string { return &s.SSLCert }),
		text("ssl_cert_key", "", parseString, func(s *Settings) *string { return &s.SSLCertKey }),
		text("admin_ssl_cert", "", parseString, func(s *Settings) *string { return &s.AdminSSLCert }),
		text("admin_ssl_cert_key", "", parseString, func(s *Settings) *string { return &s.AdminSSLCertKey }),

		secret("admin_token", parseSecret(16), func(s *Settings) *Secret { return &s.AdminToken }),
		boolean("admin_allow_remote_without_token", "off", func(s *Settings) *bool { return &s.AdminAllowRemoteWithoutToken }),
		list("admin_gui_origin", "", listOf(checkOrigin), func(s *Settings) *[]string { return &s.AdminGUIOrigin }),
		list("admin_allowed_hosts", "", lowerList(listOf(checkHost)), func(s *Settings) *[]string { return &s.AdminAllowedHosts }),
		size("admin_max_body_size", "10m", positive, func(s *Settings) *int64 { return &s.AdminMaxBodySize }),

		text("database", "sqlite", parseEnum("sqlite", "postgres", "off"), func(s *Settings) *string { return &s.Database }),
		text("sqlite_path", "./datakit.db", parseString, func(s *Settings) *string { return &s.SQLitePath }),
		text("pg_host", "127.0.0.1", parseString, func(s *Settings) *string { return &s.PGHost }),
		integer("pg_port", "5432", 1, 65535, func(s *Settings) *int { return &s.PGPort }),
		text("pg_user", "datakit", parseString, func(s *Settings) *string { return &s.PGUser }),
		secret("pg_password", parseSecret(0), func(s *Settings) *Secret { return &s.PGPassword }),
		text("pg_database", "datakit", parseString, func(s *Settings) *string { return &s.PGDatabase }),
		text("pg_schema", "", parseString, func(s *Settings) *string { return &s.PGSchema }),
		boolean("pg_ssl", "off", func(s *Settings) *bool { return &s.PGSSL }),
		boolean("pg_ssl_verify", "on", func(s *Settings) *bool { return &s.PGSSLVerify }),
		duration("pg_timeout", "5s", positive, func(s *Settings) *time.Duration { return &s.PGTimeout }),
		integer("pg_max_connections", "10", 1, maxCount, func(s *Settings) *int { return &s.PGMaxConnections }),
		duration("db_update_frequency", "1s", positive, func(s *Settings) *time.Duration { return &s.DBUpdateFrequency }),
		duration("db_update_debounce", "100ms", nonNegative, func(s *Settings) *time.Duration { return &s.DBUpdateDebounce }),
		duration("db_startup_timeout", "30s", positive, func(s *Settings) *time.Duration { return &s.DBStartupTimeout }),

		text("declarative_config", "", parseString, func(s *Settings) *string { return &s.DeclarativeConfig }),
		// A whole document: newlines and tabs are its business.
		text("declarative_config_string", "", parseDocument, func(s *Settings) *string { return &s.DeclarativeConfigString }),

		field("trusted_ips", "", parseTrustedIPs, func(s *Settings) *[]netip.Prefix { return &s.TrustedIPs }, showPrefixes),
		text("real_ip_header", "X-Real-IP", parseHeaderName, func(s *Settings) *string { return &s.RealIPHeader }),
		boolean("real_ip_recursive", "off", func(s *Settings) *bool { return &s.RealIPRecursive }),
		headers("headers", "server_tokens, latency_tokens, X-Kong-Request-Id", ^HeaderSet(0),
			func(s *Settings) *HeaderSet { return &s.Headers }),
		headers("headers_upstream", "X-Kong-Request-Id", HeaderRequestID,
			func(s *Settings) *HeaderSet { return &s.HeadersUpstream }),
		text("error_default_type", "application/json",
			parseEnum("application/json", "text/html", "application/xml", "text/plain"),
			func(s *Settings) *string { return &s.ErrorDefaultType }),

		size("client_max_body_size", "0", nonNegative, func(s *Settings) *int64 { return &s.ClientMaxBodySize }),
		size("client_body_buffer_limit", "8m", positive, func(s *Settings) *int64 { return &s.ClientBodyBufferLimit }),
		size("upstream_response_buffer_limit", "32m", positive, func(s *Settings) *int64 { return &s.UpstreamResponseBufferLimit }),
		size("client_max_header_size", "32k", positive, func(s *Settings) *int64 { return &s.ClientMaxHeaderSize }),
		size("client_max_uri_size", "8k", positive, func(s *Settings) *int64 { return &s.ClientMaxURISize }),
		duration("client_header_timeout", "10s", positive, func(s *Settings) *time.Duration { return &s.ClientHeaderTimeout }),
		duration("client_body_timeout", "60s", positive, func(s *Settings) *time.Duration { return &s.ClientBodyTimeout }),
		duration("client_send_timeout", "60s", positive, func(s *Settings) *time.Duration { return &s.ClientSendTimeout }),
		duration("keepalive_timeout", "75s", positive, func(s *Settings) *time.Duration { return &s.KeepaliveTimeout }),
		integer("http2_max_concurrent_streams", "128", 1, maxCount, func(s *Settings) *int { return &s.HTTP2MaxConcurrentStreams }),
		integer("upstream_keepalive_pool_size", "512", 0, maxCount, func(s *Settings) *int { return &s.UpstreamKeepalivePoolSize }),
		duration("upstream_keepalive_idle_timeout", "60s", positive, func(s *Settings) *time.Duration { return &s.UpstreamKeepaliveIdleTimeout }),
		boolean("upstream_tls_verify", "on", func(s *Settings) *bool { return &s.UpstreamTLSVerify }),
		list("upstream_tls_trusted_certificate", "system", nonEmpty(listOf(parseCertSource)),
			func(s *Settings) *[]string { return &s.UpstreamTLSTrustedCertificate }),
		duration("drain_timeout", "30s", nonNegative, func(s *Settings) *time.Duration { return &s.DrainTimeout }),
		duration("drain_delay", "0s", nonNegative, func(s *Settings) *time.Duration { return &s.DrainDelay }),

		// From here down the numeric limits are positive (gateway.md §2.2).
		size("client_max_header_line", "8k", positive, func(s *Settings) *int64 { return &s.ClientMaxHeaderLine }),
		integer("max_query_args", "1000", 1, maxCount, func(s *Settings) *int { return &s.MaxQueryArgs }),
		duration("client_body_max_duration", "300s", positive, func(s *Settings) *time.Duration { return &s.ClientBodyMaxDuration }),
		integer("max_inflight_requests", "4096", 1, maxCount, func(s *Settings) *int { return &s.MaxInflightRequests }),
		list("redact_headers", "", parseHeaderNames, func(s *Settings) *[]string { return &s.RedactHeaders }),
		size("datakit_max_body_size", "10m", positive, func(s *Settings) *int64 { return &s.DatakitMaxBodySize }),
		duration("datakit_plan_timeout", "300s", positive, func(s *Settings) *time.Duration { return &s.DatakitPlanTimeout }),
		duration("datakit_jq_timeout", "1000ms", positive, func(s *Settings) *time.Duration { return &s.DatakitJqTimeout }),
		list("datakit_call_allow", "", listOf(checkDestination), func(s *Settings) *[]string { return &s.DatakitCallAllow }),
		list("datakit_call_deny", "", listOf(checkDestination), func(s *Settings) *[]string { return &s.DatakitCallDeny }),
		integer("datakit_jq_concurrency", strconv.Itoa(max(gomaxprocs, 1)), 1, maxCount,
			func(s *Settings) *int { return &s.DatakitJqConcurrency }),
		size("datakit_jq_max_value_bytes", "8m", positive, func(s *Settings) *int64 { return &s.DatakitJqMaxValueBytes }),
		integer("datakit_jq_max_array_index", "524288", 1, maxCount, func(s *Settings) *int { return &s.DatakitJqMaxArrayIndex }),
		size("datakit_jq_max_regex_bytes", "4k", positive, func(s *Settings) *int64 { return &s.DatakitJqMaxRegexBytes }),
		size("datakit_jq_max_output_bytes", "8m", positive, func(s *Settings) *int64 { return &s.DatakitJqMaxOutputBytes }),
		integer("datakit_jq_max_output_depth", "10000", 1, maxCount, func(s *Settings) *int { return &s.DatakitJqMaxOutputDepth }),
	}
}

// field makes an entry from a parser, the field it fills and how Public
// shows that field.
func field[T any](name, def string, parse func(string) (T, error), ptr func(*Settings) *T, show func(T) any) entry {
	return entry{
		name: name,
		def:  def,
		set: func(s *Settings, v string) error {
			x, err := parse(v)
			if err != nil {
				return err
			}
			*ptr(s) = x
			return nil
		},
		get: func(s *Settings) any { return show(*ptr(s)) },
	}
}

func text(name, def string, parse func(string) (string, error), ptr func(*Settings) *string) entry {
	return field(name, def, parse, ptr, func(v string) any {
		if v == "" {
			return nil // unset, as Kong shows it
		}
		return v
	})
}

func boolean(name, def string, ptr func(*Settings) *bool) entry {
	return field(name, def, parseBool, ptr, func(v bool) any { return v })
}

func secret(name string, parse func(string) (Secret, error), ptr func(*Settings) *Secret) entry {
	e := field(name, "", parse, ptr, func(v Secret) any { return v.IsSet() })
	e.secret = true
	return e
}

func list(name, def string, parse func(string) ([]string, error), ptr func(*Settings) *[]string) entry {
	return field(name, def, parse, ptr, func(v []string) any { return append([]string{}, v...) })
}

func listen(name, def string, rules listenRules, ptr func(*Settings) *[]Listen) entry {
	return field(name, def, parseListen(rules), ptr, func(v []Listen) any {
		out := make([]string, len(v))
		for i, l := range v {
			out[i] = l.String()
		}
		return out
	})
}

func headers(name, def string, allowed HeaderSet, ptr func(*Settings) *HeaderSet) entry {
	return field(name, def, parseHeaders(allowed), ptr, func(v HeaderSet) any { return v.Names() })
}

func duration(name, def string, positive bool, ptr func(*Settings) *time.Duration) entry {
	parse := parseDuration
	if positive {
		parse = mustBePositive(parseDuration)
	}
	return field(name, def, parse, ptr, func(v time.Duration) any { return v.String() })
}

func size(name, def string, positive bool, ptr func(*Settings) *int64) entry {
	parse := parseSize
	if positive {
		parse = mustBePositive(parseSize)
	}
	return field(name, def, parse, ptr, func(v int64) any { return v })
}

func integer(name, def string, lo, hi int, ptr func(*Settings) *int) entry {
	return field(name, def, func(v string) (int, error) { return parseInt(v, lo, hi) }, ptr,
		func(v int) any { return int64(v) })
}

// mustBePositive refuses zero: the limit cannot be switched off.
func mustBePositive[T int64 | time.Duration](parse func(string) (T, error)) func(string) (T, error) {
	return func(v string) (T, error) {
		x, err := parse(v)
		if err == nil && x <= 0 {
			return 0, fmt.Errorf("%s must be greater than 0 (limits can be raised, not disabled)", quote(v))
		}
		return x, err
	}
}

func lowerList(parse func(string) ([]string, error)) func(string) ([]string, error) {
	return func(v string) ([]string, error) {
		out, err := parse(v)
		for i := range out {
			out[i] = strings.ToLower(out[i])
		}
		return out, err
	}
}

// parseCertSource checks an upstream_tls_trusted_certificate entry:
// "system" or a file path.
func parseCertSource(v string) error {
	_, err := parseString(v)
	return err
}

func parseHeaderName(v string) (string, error) {
	if err := checkHeaderName(v); err != nil {
		return "", err
	}
	return v, nil
}

// parseDocument accepts any valid UTF-8 text.
func parseDocument(v string) (string, error) {
	if strings.ContainsRune(v, 0) {
		return "", fmt.Errorf("document contains a NUL byte")
	}
	return v, nil
}

func showPrefixes(v []netip.Prefix) any {
	out := make([]string, len(v))
	for i, p := range v {
		out[i] = p.String()
	}
	return out
}
