package settings

import (
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const testNodeID = "00000000-0000-4000-8000-000000000001"

// testEnvironment makes defaults independent of the machine.
func testEnvironment() environment {
	return environment{gomaxprocs: 4, newNodeID: func() (string, error) { return testNodeID, nil }}
}

// loadT loads without searching the default paths unless the test asks.
func loadT(t *testing.T, opts LoadOptions) (*Settings, error) {
	t.Helper()
	if opts.SearchPaths == nil {
		opts.SearchPaths = []string{}
	}
	return load(opts, testEnvironment())
}

func writeConf(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "datakit.conf")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadDefaults(t *testing.T) {
	got, err := loadT(t, LoadOptions{})
	if err != nil {
		t.Fatalf("Load() error: %v", err)
	}
	want := &Settings{
		LogLevel:                      slog.LevelInfo,
		LogFormat:                     "text",
		AccessLog:                     true,
		NodeID:                        testNodeID,
		Plugins:                       []string{"datakit", "key-auth", "prometheus"},
		ProxyListen:                   []Listen{{Host: "0.0.0.0", Port: 8000}, {Host: "0.0.0.0", Port: 8443, SSL: true, HTTP2: true}},
		AdminListen:                   []Listen{{Host: "127.0.0.1", Port: 8001}},
		StatusListen:                  []Listen{{Host: "127.0.0.1", Port: 8007}},
		AdminMaxBodySize:              10 << 20,
		Database:                      "sqlite",
		SQLitePath:                    "./datakit.db",
		PGHost:                        "127.0.0.1",
		PGPort:                        5432,
		PGUser:                        "datakit",
		PGDatabase:                    "datakit",
		PGSSLVerify:                   true,
		PGTimeout:                     5 * time.Second,
		PGMaxConnections:              10,
		DBUpdateFrequency:             time.Second,
		DBUpdateDebounce:              100 * time.Millisecond,
		DBStartupTimeout:              30 * time.Second,
		RealIPHeader:                  "X-Real-IP",
		Headers:                       ServerTokens | LatencyTokens | HeaderRequestID,
		HeadersUpstream:               HeaderRequestID,
		ErrorDefaultType:              "application/json",
		ClientBodyBufferLimit:         8 << 20,
		UpstreamResponseBufferLimit:   32 << 20,
		ClientMaxHeaderSize:           32 << 10,
		ClientMaxURISize:              8 << 10,
		ClientHeaderTimeout:           10 * time.Second,
		ClientBodyTimeout:             60 * time.Second,
		ClientSendTimeout:             60 * time.Second,
		KeepaliveTimeout:              75 * time.Second,
		HTTP2MaxConcurrentStreams:     128,
		UpstreamKeepalivePoolSize:     512,
		UpstreamKeepaliveIdleTimeout:  60 * time.Second,
		UpstreamTLSVerify:             true,
		UpstreamTLSTrustedCertificate: []string{"system"},
		DrainTimeout:                  30 * time.Second,
		ClientMaxHeaderLine:           8 << 10,
		MaxQueryArgs:                  1000,
		ClientBodyMaxDuration:         300 * time.Second,
		MaxInflightRequests:           4096,
		DatakitMaxBodySize:            10 << 20,
		DatakitPlanTimeout:            300 * time.Second,
		DatakitJqTimeout:              time.Second,
		DatakitJqConcurrency:          4,
		DatakitJqMaxValueBytes:        8 << 20,
		DatakitJqMaxArrayIndex:        524288,
		DatakitJqMaxRegexBytes:        4 << 10,
		DatakitJqMaxOutputBytes:       8 << 20,
		DatakitJqMaxOutputDepth:       10000,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Load() =\n%+v\nwant\n%+v", got, want)
	}

	d := Default()
	if _, err := parseNodeID(d.NodeID); err != nil || d.NodeID[14] != '4' {
		t.Errorf("Default().NodeID = %q, want a version 4 UUID", d.NodeID)
	}
	if d.DatakitJqConcurrency < 1 {
		t.Errorf("Default().DatakitJqConcurrency = %d, want GOMAXPROCS", d.DatakitJqConcurrency)
	}
	d.NodeID, d.DatakitJqConcurrency = testNodeID, 4
	if !reflect.DeepEqual(d, want) {
		t.Errorf("Default() =\n%+v\nwant\n%+v", d, want)
	}
	if a, b := Default().NodeID, Default().NodeID; a == b {
		t.Errorf("Default().NodeID = %q twice, want a new UUID per start", a)
	}
}

func TestLoadPrecedence(t *testing.T) {
	conf := writeConf(t, "log_level = debug\npg_port = 1001\npg_user = from-file\nlog_format = json\n")
	for _, tc := range []struct {
		name      string
		env       []string
		overrides []string
		want      map[string]any
	}{
		{"file over default", nil, nil,
			map[string]any{"log_level": "debug", "pg_port": int64(1001), "pg_user": "from-file", "pg_host": "127.0.0.1"}},
		{"environment over file",
			[]string{"DATAKIT_LOG_LEVEL=warn", "DATAKIT_PG_PORT=1002", "DATAKIT_PG_HOST=db.internal"}, nil,
			map[string]any{"log_level": "warn", "pg_port": int64(1002), "pg_user": "from-file", "pg_host": "db.internal"}},
		{"overrides over environment",
			[]string{"DATAKIT_LOG_LEVEL=warn", "DATAKIT_PG_PORT=1002"}, []string{"log_level=error", "pg_user = cli "},
			map[string]any{"log_level": "error", "pg_port": int64(1002), "pg_user": "cli"}},
		{"later override wins", nil, []string{"pg_port=1", "pg_port=2"},
			map[string]any{"pg_port": int64(2)}},
		{"empty values leave the earlier source",
			[]string{"DATAKIT_LOG_LEVEL=", "DATAKIT_PG_PORT=  "}, []string{"log_format="},
			map[string]any{"log_level": "debug", "pg_port": int64(1001), "log_format": "json"}},
		{"first of duplicate environment variables",
			[]string{"DATAKIT_PG_PORT=1003", "DATAKIT_PG_PORT=1004"}, nil,
			map[string]any{"pg_port": int64(1003)}},
		{"other DATAKIT_ variables and other spellings are ignored",
			[]string{"DATAKIT_FOO=1", "DATAKIT_TEST_REQUIRE_SERVICES=1", "datakit_log_level=error",
				"DATAKIT_log_level=error", "DATAKIT_=x", "DATAKIT_PG_PORT", "LOG_LEVEL=error"}, nil,
			map[string]any{"log_level": "debug", "pg_port": int64(1001)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := loadT(t, LoadOptions{ConfPath: conf, Env: tc.env, Overrides: tc.overrides})
			if err != nil {
				t.Fatalf("Load() error: %v", err)
			}
			for name, want := range tc.want {
				if got, _ := s.Lookup(name); !reflect.DeepEqual(got, want) {
					t.Errorf("Lookup(%q) = %#v, want %#v", name, got, want)
				}
			}
		})
	}
}

func TestLoadEmptyFileValueIsUnset(t *testing.T) {
	s, err := loadT(t, LoadOptions{ConfPath: writeConf(t, "log_format =\nsqlite_path = # later\n")})
	if err != nil {
		t.Fatalf("Load() error: %v", err)
	}
	if s.LogFormat != "text" || s.SQLitePath != "./datakit.db" {
		t.Errorf("Load() LogFormat, SQLitePath = %q, %q; want the defaults", s.LogFormat, s.SQLitePath)
	}
}

func TestLoadFileLookup(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	flag := write("flag.conf", "pg_user = flag")
	env := write("env.conf", "pg_user = env")
	first := write("first.conf", "pg_user = first")
	second := write("second.conf", "pg_user = second")
	missing := filepath.Join(dir, "missing.conf")

	for _, tc := range []struct {
		name     string
		opts     LoadOptions
		wantUser string
		wantPath string
		wantErr  string
	}{
		{"--conf first", LoadOptions{ConfPath: flag, Env: []string{"DATAKIT_CONF=" + env}, SearchPaths: []string{first}},
			"flag", flag, ""},
		{"then DATAKIT_CONF", LoadOptions{Env: []string{"DATAKIT_CONF=" + env}, SearchPaths: []string{first}},
			"env", env, ""},
		{"then the first search path that exists", LoadOptions{SearchPaths: []string{missing, first, second}},
			"first", first, ""},
		{"none: defaults", LoadOptions{SearchPaths: []string{missing}}, "datakit", "", ""},
		{"empty DATAKIT_CONF is unset", LoadOptions{Env: []string{"DATAKIT_CONF="}, SearchPaths: []string{second}},
			"second", second, ""},
		{"missing --conf", LoadOptions{ConfPath: missing}, "", "",
			"--conf: open " + missing + ": no such file or directory"},
		{"missing DATAKIT_CONF", LoadOptions{Env: []string{"DATAKIT_CONF=" + missing}}, "", "",
			"DATAKIT_CONF: open " + missing + ": no such file or directory"},
		{"directory", LoadOptions{ConfPath: dir}, "", "", "--conf: read " + dir},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := loadT(t, tc.opts)
			if tc.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
					t.Fatalf("Load() error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load() error: %v", err)
			}
			if s.PGUser != tc.wantUser || s.ConfPath != tc.wantPath {
				t.Errorf("Load() PGUser, ConfPath = %q, %q; want %q, %q", s.PGUser, s.ConfPath, tc.wantUser, tc.wantPath)
			}
		})
	}
}

func TestLoadDefaultSearchPaths(t *testing.T) {
	if got, want := DefaultSearchPaths(), []string{"./datakit.conf", "/etc/datakit/datakit.conf"}; !reflect.DeepEqual(got, want) {
		t.Errorf("DefaultSearchPaths() = %q, want %q", got, want)
	}
	// ./datakit.conf is found relative to the working directory and named
	// as the spec's messages name it.
	t.Chdir(t.TempDir())
	if err := os.WriteFile("datakit.conf", []byte("\n\n\nfoo = 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := load(LoadOptions{SearchPaths: []string{"./datakit.conf"}}, testEnvironment())
	if got, want := errString(err), "unknown setting 'foo' (datakit.conf line 4)"; got != want {
		t.Errorf("Load() error = %q, want %q", got, want)
	}
}

func TestLoadTooLarge(t *testing.T) {
	path := writeConf(t, strings.Repeat("# padding\n", maxConfBytes/10+1))
	if _, err := loadT(t, LoadOptions{ConfPath: path}); err == nil || !strings.Contains(err.Error(), "is larger than") {
		t.Errorf("Load() error = %v, want a size error", err)
	}
}

// TestLoadErrors checks every kind of message, in full, one line each.
func TestLoadErrors(t *testing.T) {
	for _, tc := range []struct {
		name      string
		file      string
		env       []string
		overrides []string
		want      []string
	}{
		{"unknown setting in the file",
			"# a comment\n\n\n\n\n\n\n\n\n\nlog_level = info\nfoo = 1\n", nil, nil,
			[]string{"unknown setting 'foo' (datakit.conf line 12)"}},
		{"unknown setting with an empty value", "foo =", nil, nil,
			[]string{"unknown setting 'foo' (datakit.conf line 1)"}},
		{"unknown setting, odd name", "Log_Level = debug\nx y = 1", nil, nil,
			[]string{"unknown setting 'Log_Level' (datakit.conf line 1)", `unknown setting '"x y"' (datakit.conf line 2)`}},
		{"unknown override", "", nil, []string{"foo=1"},
			[]string{"unknown setting 'foo' (command line)"}},
		{"override without =", "", nil, []string{"log_level"},
			[]string{"expected name=value (command line)"}},
		{"malformed line", "log_level debug", nil, nil,
			[]string{"expected 'name = value' (datakit.conf line 1)"}},
		{"enum", "log_level = verbose", nil, nil,
			[]string{`invalid value for log_level (datakit.conf line 1): "verbose" is not one of debug, info, warn, error`}},
		{"enums", "", []string{"DATAKIT_LOG_FORMAT=xml", "DATAKIT_DATABASE=mysql", "DATAKIT_ERROR_DEFAULT_TYPE=text/xml"}, nil,
			[]string{
				`invalid value for log_format (environment DATAKIT_LOG_FORMAT): "xml" is not one of text, json`,
				`invalid value for database (environment DATAKIT_DATABASE): "mysql" is not one of sqlite, postgres, off`,
				`invalid value for error_default_type (environment DATAKIT_ERROR_DEFAULT_TYPE): "text/xml" is not one of application/json, text/html, application/xml, text/plain`,
			}},
		{"bool", "", nil, []string{"access_log=maybe"},
			[]string{`invalid value for access_log (command line): "maybe" is not a boolean (on/off, true/false, yes/no, 1/0)`}},
		{"port", "", []string{"DATAKIT_PG_PORT=0"}, nil,
			[]string{`invalid value for pg_port (environment DATAKIT_PG_PORT): "0" is out of range 1–65535`}},
		{"positive limits", "client_max_header_line = 0\nclient_body_max_duration = 0s\ndatakit_jq_max_regex_bytes = 0\nmax_inflight_requests = -1\n", nil, nil,
			[]string{
				`invalid value for client_max_header_line (datakit.conf line 1): "0" must be greater than 0 (limits can be raised, not disabled)`,
				`invalid value for client_body_max_duration (datakit.conf line 2): "0s" must be greater than 0 (limits can be raised, not disabled)`,
				`invalid value for max_inflight_requests (datakit.conf line 4): "-1" is out of range 1–2147483647`,
				`invalid value for datakit_jq_max_regex_bytes (datakit.conf line 3): "0" must be greater than 0 (limits can be raised, not disabled)`,
			}},
		{"listen", "proxy_listen = 0.0.0.0:8000 http2", nil, nil,
			[]string{`invalid value for proxy_listen (datakit.conf line 1): "0.0.0.0:8000 http2": http2 requires ssl (no cleartext HTTP/2)`}},
		{"trusted_ips", "", nil, []string{"trusted_ips=10.0.0.0/8, bogus"},
			[]string{`invalid value for trusted_ips (command line): "bogus" is not an IP address or CIDR`}},
		{"short admin_token", "admin_token = tooshort", nil, nil,
			[]string{"invalid value for admin_token (datakit.conf line 1): must be at least 16 characters"}},
		{"every error at once, file problems first",
			"nope = 1\nlog_level = loud\npg_port = x\n", []string{"DATAKIT_DRAIN_DELAY=soon"}, []string{"zzz=1"},
			[]string{
				"unknown setting 'nope' (datakit.conf line 1)",
				"unknown setting 'zzz' (command line)",
				`invalid value for log_level (datakit.conf line 2): "loud" is not one of debug, info, warn, error`,
				`invalid value for pg_port (datakit.conf line 3): "x" is not an integer`,
				`invalid value for drain_delay (environment DATAKIT_DRAIN_DELAY): "soon" is not a duration (Go syntax such as 500ms or 1m30s, or a number of seconds)`,
			}},
		{"a value overridden later is not checked", "log_level = loud", nil, []string{"log_level=debug"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := LoadOptions{Env: tc.env, Overrides: tc.overrides}
			if tc.file != "" {
				opts.ConfPath = writeConf(t, tc.file)
				// Name the file as the spec's examples do.
				t.Chdir(filepath.Dir(opts.ConfPath))
				opts.ConfPath = "./datakit.conf"
			}
			s, err := loadT(t, opts)
			if got, want := errString(err), strings.Join(tc.want, "\n"); got != want {
				t.Errorf("Load() error =\n%s\nwant\n%s", got, want)
			}
			if (err != nil) != (s == nil) {
				t.Errorf("Load() = %v, %v; want settings or an error", s, err)
			}
		})
	}
}

func TestLoadStartupRules(t *testing.T) {
	const token = "0123456789abcdef"
	for _, tc := range []struct {
		name      string
		overrides []string
		want      []string
	}{
		{"remote admin without token", []string{"admin_listen=0.0.0.0:8001"},
			[]string{"admin_listen 0.0.0.0:8001 is not a loopback address: set admin_token, or admin_allow_remote_without_token = on to accept the risk"}},
		{"remote admin IPv6 without token", []string{"admin_listen=[::]:8001 ssl", "admin_ssl_cert=c.pem", "admin_ssl_cert_key=k.pem"},
			[]string{"admin_listen [::]:8001 is not a loopback address: set admin_token, or admin_allow_remote_without_token = on to accept the risk"}},
		{"only the remote entry", []string{"admin_listen=127.0.0.1:8001, 10.0.0.5:8001, localhost:8002, [::1]:8003"},
			[]string{"admin_listen 10.0.0.5:8001 is not a loopback address: set admin_token, or admin_allow_remote_without_token = on to accept the risk"}},
		{"host name is not loopback", []string{"admin_listen=admin.example.com:8001"},
			[]string{"admin_listen admin.example.com:8001 is not a loopback address: set admin_token, or admin_allow_remote_without_token = on to accept the risk"}},
		{"remote admin with token", []string{"admin_listen=0.0.0.0:8001", "admin_token=" + token}, nil},
		{"remote admin accepting the risk", []string{"admin_listen=0.0.0.0:8001", "admin_allow_remote_without_token=on"}, nil},
		{"loopback admin", []string{"admin_listen=127.0.0.5:9001, [::1]:9001, localhost:9002"}, nil},
		{"admin off", []string{"admin_listen=off"}, nil},
		{"declarative_config with sqlite", []string{"declarative_config=kong.yml"},
			[]string{"declarative_config requires database = off; use 'datakit config import' to load a file into the database"}},
		{"declarative_config with postgres", []string{"database=postgres", "declarative_config=kong.yml"},
			[]string{"declarative_config requires database = off; use 'datakit config import' to load a file into the database"}},
		{"declarative_config_string with a database", []string{"declarative_config_string={\"_format_version\":\"3.0\"}"},
			[]string{"declarative_config_string requires database = off; use 'datakit config import' to load a file into the database"}},
		{"declarative_config DB-less", []string{"database=off", "declarative_config=kong.yml", "declarative_config_string=x: 1"}, nil},
		{"certificate without key", []string{"ssl_cert=cert.pem", "admin_ssl_cert_key=k.pem"},
			[]string{"ssl_cert requires ssl_cert_key", "admin_ssl_cert_key requires admin_ssl_cert"}},
		{"admin ssl without certificate", []string{"admin_listen=127.0.0.1:8444 ssl"},
			[]string{"admin_listen 127.0.0.1:8444 ssl requires admin_ssl_cert and admin_ssl_cert_key"}},
		{"admin ssl with certificate", []string{"admin_listen=127.0.0.1:8444 ssl", "admin_ssl_cert=c.pem", "admin_ssl_cert_key=k.pem"}, nil},
		{"status on admin's address", []string{"status_listen=127.0.0.1:8001"},
			[]string{"status_listen 127.0.0.1:8001: address already used by admin_listen 127.0.0.1:8001"}},
		{"twice in one listener", []string{"proxy_listen=0.0.0.0:8000, 0.0.0.0:8000 http2 ssl"},
			[]string{"proxy_listen 0.0.0.0:8000: address already used by proxy_listen 0.0.0.0:8000"}},
		{"port 0 is always free", []string{"proxy_listen=127.0.0.1:0", "admin_listen=127.0.0.1:0", "status_listen=127.0.0.1:0"}, nil},
		{"status ssl", []string{"status_listen=127.0.0.1:8007 ssl"},
			[]string{`invalid value for status_listen (command line): "127.0.0.1:8007 ssl": ssl is not supported on this listener`}},
		{"rules wait for valid values", []string{"admin_listen=0.0.0.0:8001", "admin_token=short"},
			[]string{"invalid value for admin_token (command line): must be at least 16 characters"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadT(t, LoadOptions{Overrides: tc.overrides})
			if got, want := errString(err), strings.Join(tc.want, "\n"); got != want {
				t.Errorf("Load(%q) error =\n%s\nwant\n%s", tc.overrides, got, want)
			}
		})
	}
}

func TestLoadTypedValues(t *testing.T) {
	s, err := loadT(t, LoadOptions{
		ConfPath: writeConf(t, `
trusted_ips = 10.0.0.0/8, 192.0.2.1, ::1
headers = server_tokens, X-Kong-Upstream-Status
headers_upstream = off
plugins = key-auth, datakit
proxy_listen = off
client_max_body_size = 1g
keepalive_timeout = 90
datakit_jq_timeout = 250ms
datakit_jq_concurrency = 3
datakit_jq_max_value_bytes = 16m
redact_headers = x-secret, X-Other
datakit_call_allow = 10.0.0.0/8, api.internal:443, *.corp.example
log_level = DEBUG
node_id = 6F1C9C2E-2B51-4E5B-9A34-0C7B3F1D2E4A
`),
	})
	if err != nil {
		t.Fatalf("Load() error: %v", err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.1/32"), netip.MustParsePrefix("::1/128")}
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"TrustedIPs", s.TrustedIPs, want},
		{"Headers", s.Headers, ServerTokens | HeaderUpstreamStatus},
		{"HeadersUpstream", s.HeadersUpstream, HeaderSet(0)},
		{"Plugins", s.Plugins, []string{"key-auth", "datakit"}},
		{"ProxyListen", s.ProxyListen, []Listen{}},
		{"ClientMaxBodySize", s.ClientMaxBodySize, int64(1 << 30)},
		{"KeepaliveTimeout", s.KeepaliveTimeout, 90 * time.Second},
		{"DatakitJqTimeout", s.DatakitJqTimeout, 250 * time.Millisecond},
		{"DatakitJqConcurrency", s.DatakitJqConcurrency, 3},
		{"DatakitJqMaxValueBytes", s.DatakitJqMaxValueBytes, int64(16 << 20)},
		{"RedactHeaders", s.RedactHeaders, []string{"X-Secret", "X-Other"}},
		{"DatakitCallAllow", s.DatakitCallAllow, []string{"10.0.0.0/8", "api.internal:443", "*.corp.example"}},
		{"LogLevel", s.LogLevel, slog.LevelDebug},
		{"NodeID", s.NodeID, "6f1c9c2e-2b51-4e5b-9a34-0c7b3f1d2e4a"},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.name, c.got, c.want)
		}
	}
}

func TestPublicAndLookup(t *testing.T) {
	s, err := loadT(t, LoadOptions{Overrides: []string{"trusted_ips=10.0.0.0/8", "ssl_cert=c.pem", "ssl_cert_key=k.pem"}})
	if err != nil {
		t.Fatalf("Load() error: %v", err)
	}
	pub := s.Public()
	names := Names()
	if len(pub) != len(names) {
		t.Errorf("Public() has %d settings, Names() %d", len(pub), len(names))
	}
	for _, n := range names {
		if _, ok := pub[n]; !ok {
			t.Errorf("Public() lacks %q", n)
		}
	}
	for _, c := range []struct {
		name string
		want any
	}{
		{"log_level", "info"},
		{"access_log", true},
		{"pg_port", int64(5432)},
		{"client_max_header_size", int64(32768)},
		{"keepalive_timeout", "1m15s"},
		{"datakit_jq_timeout", "1s"},
		{"proxy_listen", []string{"0.0.0.0:8000", "0.0.0.0:8443 http2 ssl"}},
		{"headers", []string{"Server", "Via", "X-Kong-Proxy-Latency", "X-Kong-Upstream-Latency", "X-Kong-Response-Latency", "X-Kong-Admin-Latency", "X-Kong-Request-Id"}},
		{"headers_upstream", []string{"X-Kong-Request-Id"}},
		{"trusted_ips", []string{"10.0.0.0/8"}},
		{"redact_headers", []string{}},
		{"ssl_cert", "c.pem"},
		{"admin_ssl_cert", nil},
		{"admin_token", nil},
		{"pg_password", nil},
		{"node_id", testNodeID},
	} {
		if got := pub[c.name]; !reflect.DeepEqual(got, c.want) {
			t.Errorf("Public()[%q] = %#v, want %#v", c.name, got, c.want)
		}
		if got, ok := s.Lookup(c.name); !ok || !reflect.DeepEqual(got, c.want) {
			t.Errorf("Lookup(%q) = %#v, %v; want %#v, true", c.name, got, ok, c.want)
		}
	}
	if v, ok := s.Lookup("router_flavor"); ok || v != nil {
		t.Errorf("Lookup(router_flavor) = %v, %v; want nil, false", v, ok)
	}
	// Values are copies: changing them changes nothing.
	pub["proxy_listen"].([]string)[0] = "changed"
	pub["plugins"].([]string)[0] = "changed"
	if s.ProxyListen[0].Host != "0.0.0.0" || s.Plugins[0] != "datakit" {
		t.Errorf("Public() shares slices with the settings")
	}
}

func TestNamesAndIsSecret(t *testing.T) {
	names := Names()
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			t.Errorf("Names() has %q twice", n)
		}
		seen[n] = true
		if n != strings.ToLower(n) || strings.ContainsAny(n, " -") {
			t.Errorf("Names() has %q, want lower_snake_case", n)
		}
		if got, want := IsSecret(n), n == "admin_token" || n == "pg_password"; got != want {
			t.Errorf("IsSecret(%q) = %v, want %v", n, got, want)
		}
	}
	if len(names) != 72 {
		t.Errorf("len(Names()) = %d, want the 72 settings of gateway.md §2.2", len(names))
	}
	if IsSecret("nope") {
		t.Errorf("IsSecret(nope) = true")
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
