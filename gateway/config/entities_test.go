package config

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// decoders by collection, for the rule table.
var decoders = map[string]func(map[string]any) *FieldErrors{
	"services":            func(m map[string]any) *FieldErrors { _, e := DecodeService(m); return e },
	"routes":              func(m map[string]any) *FieldErrors { _, e := DecodeRoute(m); return e },
	"consumers":           func(m map[string]any) *FieldErrors { _, e := DecodeConsumer(m); return e },
	"plugins":             func(m map[string]any) *FieldErrors { _, e := DecodePlugin(m, fakeSchemas{}); return e },
	"upstreams":           func(m map[string]any) *FieldErrors { _, e := DecodeUpstream(m); return e },
	"targets":             func(m map[string]any) *FieldErrors { _, e := DecodeTarget(m); return e },
	"certificates":        func(m map[string]any) *FieldErrors { _, e := DecodeCertificate(m); return e },
	"snis":                func(m map[string]any) *FieldErrors { _, e := DecodeSNI(m); return e },
	"keyauth_credentials": func(m map[string]any) *FieldErrors { _, e := DecodeKeyauthCredential(m); return e },
}

func mustParse(t testing.TB, s string) map[string]any {
	t.Helper()
	v, err := ParseDocument([]byte(s), DefaultLimits())
	if err != nil {
		t.Fatalf("ParseDocument(%q) = %v", s, err)
	}
	m, _ := v.(map[string]any)
	return m
}

func flatStrings(e *FieldErrors) []string {
	var out []string
	for _, f := range e.Flatten() {
		out = append(out, f.String())
	}
	return out
}

// TestValidationRules has at least one case per rule and message of §3.
func TestValidationRules(t *testing.T) {
	cert, key := testCert(t, "a.test", false)
	cert2, key2 := testCert(t, "b.test", false)
	edCert, edKey := testCert(t, "c.test", true)
	pemJSON := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	const id = "aa93ac78-2b4d-59d0-9897-62a161ae6928"
	tests := []struct {
		name, kind, in string
		want           []string // flattened "path: message"; nil = valid
	}{
		// §3.1 common rules
		{"valid service", "services", `{"host":"a.test"}`, nil},
		{"id not uuid", "services", `{"host":"a.test","id":"123"}`, []string{"id: expected a valid UUID"}},
		{"id uuid ok", "services", `{"host":"a.test","id":"` + id + `"}`, nil},
		{"tag with comma", "services", `{"host":"a.test","tags":["ok","a,b"]}`, []string{"tags.2: invalid tag 'a,b': expected printable ascii (except `,` and `/`) or valid utf-8 sequences"}},
		{"tag with slash", "consumers", `{"username":"u","tags":["a/b"]}`, []string{"tags.1: invalid tag 'a/b': expected printable ascii (except `,` and `/`) or valid utf-8 sequences"}},
		{"tag utf8 ok", "consumers", `{"username":"u","tags":["café ok"]}`, nil},
		{"tags not a set", "services", `{"host":"a.test","tags":"x"}`, []string{"tags: expected a set"}},
		{"utf8_name", "services", `{"host":"a.test","name":"a b"}`, []string{"name: invalid value 'a b': the only accepted ascii characters are alphanumerics or ., -, _, and ~"}},
		{"utf8_name non-ascii ok", "services", `{"host":"a.test","name":"dienst-ä.~_"}`, nil},
		{"unknown field", "services", `{"host":"a.test","foo":1}`, []string{"foo: unknown field"}},
		{"expected a string", "services", `{"host":1}`, []string{"host: expected a string"}},
		{"empty string", "services", `{"host":"a.test","name":""}`, []string{"name: length must be at least 1"}},
		{"expected an integer", "services", `{"host":"a.test","port":"80"}`, []string{"port: expected an integer"}},
		{"fraction not an integer", "services", `{"host":"a.test","port":80.5}`, []string{"port: expected an integer"}},
		{"expected a boolean", "services", `{"host":"a.test","enabled":"yes"}`, []string{"enabled: expected a boolean"}},
		// §3.2 service
		{"host required", "services", `{}`, []string{"host: required field missing"}},
		{"host with port", "services", `{"host":"a.test:80"}`, []string{"host: must not have a port"}},
		{"host invalid", "services", `{"host":"a b"}`, []string{"host: invalid value: a b"}},
		{"host ipv6 ok", "services", `{"host":"::1"}`, nil},
		{"protocol", "services", `{"host":"a.test","protocol":"grpc"}`, []string{"protocol: expected one of: http, https"}},
		{"port range", "services", `{"host":"a.test","port":70000}`, []string{"port: value should be between 0 and 65535"}},
		{"path start", "services", `{"host":"a.test","path":"a"}`, []string{"path: should start with: /"}},
		{"path empty segment", "services", `{"host":"a.test","path":"/a//b"}`, []string{"path: must not have empty segments"}},
		{"path rfc3986", "services", `{"host":"a.test","path":"/a b"}`, []string{"path: invalid path: '/a b' (characters outside of the reserved list of RFC 3986 found)"}},
		{"path bad escape", "services", `{"host":"a.test","path":"/a%zz"}`, []string{"path: invalid url-encoded value: '%zz'"}},
		{"retries range", "services", `{"host":"a.test","retries":32768}`, []string{"retries: value should be between 0 and 32767"}},
		{"timeout range", "services", `{"host":"a.test","connect_timeout":0,"read_timeout":2147483647,"write_timeout":1}`, []string{"connect_timeout: value should be between 1 and 2147483646", "read_timeout: value should be between 1 and 2147483646"}},
		{"https-only fields on http", "services", `{"host":"a.test","client_certificate":{"id":"` + id + `"},"tls_verify":true,"tls_verify_depth":3}`, []string{"client_certificate: value must be null", "tls_verify: value must be null", "tls_verify_depth: value must be null"}},
		{"https-only fields on https", "services", `{"host":"a.test","protocol":"https","client_certificate":{"id":"` + id + `"},"tls_verify":false,"tls_verify_depth":64}`, nil},
		{"tls_verify_depth range", "services", `{"host":"a.test","protocol":"https","tls_verify_depth":65}`, []string{"tls_verify_depth: value should be between 0 and 64"}},
		{"ca_certificates", "services", `{"host":"a.test","ca_certificates":["x"]}`, []string{"ca_certificates: value must be null"}},
		{"url empty", "services", `{"url":""}`, []string{"url: length must be at least 1"}},
		{"url host-less", "services", `{"url":"http:///x"}`, []string{"host: required field missing"}},
		{"url bad scheme", "services", `{"url":"ftp://a.test"}`, []string{"protocol: expected one of: http, https"}},
		{"fk by name", "routes", `{"paths":["/"],"service":{"name":"billing"}}`, nil},
		{"fk unknown key", "routes", `{"paths":["/"],"service":{"username":"x"}}`, []string{"service.username: unknown field"}},
		{"fk bad id", "routes", `{"paths":["/"],"service":{"id":"x"}}`, []string{"service.id: expected a valid UUID"}},
		// §3.3 route
		{"route valid regex", "routes", `{"paths":["~/v(?<n>\\d+)/x$","/a/b/"]}`, nil},
		{"protocols empty", "routes", `{"paths":["/"],"protocols":[]}`, []string{"protocols: length must be at least 1"}},
		{"protocols value", "routes", `{"paths":["/"],"protocols":["tcp"]}`, []string{"protocols.1: expected one of: http, https"}},
		{"methods upper", "routes", `{"methods":["get"]}`, []string{"methods.1: invalid value: get"}},
		{"hosts wildcard middle", "routes", `{"hosts":["a.*.com"]}`, []string{"hosts.1: invalid wildcard: must be placed at leftmost or rightmost label"}},
		{"hosts two wildcards", "routes", `{"hosts":["*.a.*"]}`, []string{"hosts.1: invalid wildcard: must have at most one wildcard"}},
		{"hosts ok", "routes", `{"hosts":["*.a.com","a.*","x.test:8000","10.0.0.1"]}`, nil},
		{"hosts bad port", "routes", `{"hosts":["x.test:99999"]}`, []string{"hosts.1: invalid port number"}},
		{"path start", "routes", `{"paths":["x"]}`, []string{"paths.1: should start with: / (fixed path) or ~/ (regex path)"}},
		{"path empty segments", "routes", `{"paths":["/a","/a//b"]}`, []string{"paths.2: must not have empty segments"}},
		{"path non-normalized", "routes", `{"paths":["/a/../b%7e"]}`, []string{"paths.1: non-normalized path, consider use '/b~' instead"}},
		{"path reserved stays encoded", "routes", `{"paths":["/a%2Fb"]}`, nil},
		{"path lower hex", "routes", `{"paths":["/a%2fb"]}`, []string{"paths.1: non-normalized path, consider use '/a%2Fb' instead"}},
		{"path bad regex", "routes", "{\"paths\":[\"~/a(?=b)\"]}", []string{"paths.1: invalid regex: '/a(?=b)' (invalid or unsupported Perl syntax: `(?=`)"}},
		{"headers host", "routes", `{"headers":{"Host":["a"]},"paths":["/"]}`, []string{"headers: cannot contain 'host' header, which must be specified in the 'hosts' attribute"}},
		{"headers name", "routes", `{"headers":{"x y":["a"]}}`, []string{"headers.x y: bad header name 'x y', allowed characters are A-Z, a-z, 0-9, '_', and '-'"}},
		{"headers values", "routes", `{"headers":{"x":"a"}}`, []string{"headers.x: expected an array"}},
		{"headers not map", "routes", `{"headers":["a"],"paths":["/"]}`, []string{"headers: expected a record"}},
		{"headers ok", "routes", `{"headers":{"x-env":["prod","~*^st"]}}`, nil},
		{"snis need https", "routes", `{"protocols":["http"],"paths":["/"],"snis":["a.test"]}`, []string{"snis: 'snis' can only be set when 'protocols' is 'https'"}},
		{"snis only with https", "routes", `{"protocols":["https"],"snis":["*.a.test"]}`, nil},
		{"snis invalid", "routes", `{"protocols":["https"],"snis":["10.0.0.1"]}`, []string{"snis.1: must not be an IP"}},
		{"sources", "routes", `{"paths":["/"],"sources":[{"ip":"1.1.1.1"}],"destinations":[]}`, []string{"destinations: value must be null", "sources: value must be null"}},
		{"redirect code", "routes", `{"paths":["/"],"https_redirect_status_code":300}`, []string{"https_redirect_status_code: expected one of: 426, 301, 302, 307, 308"}},
		{"path_handling", "routes", `{"paths":["/"],"path_handling":"v2"}`, []string{"path_handling: expected one of: v0, v1"}},
		{"entity http", "routes", `{"protocols":["http"]}`, []string{"must set one of 'methods', 'hosts', 'headers', 'paths' when 'protocols' is 'http'"}},
		{"entity https", "routes", `{}`, []string{"must set one of 'methods', 'hosts', 'headers', 'paths', 'snis' when 'protocols' is 'https'"}},
		{"expression unknown", "routes", `{"paths":["/"],"expression":"x","priority":1}`, []string{"expression: unknown field", "priority: unknown field"}},
		// §3.4 consumer
		{"consumer none", "consumers", `{"tags":["a"]}`, []string{"at least one of these fields must be non-empty: 'custom_id', 'username'"}},
		{"consumer custom_id", "consumers", `{"custom_id":"c1"}`, nil},
		// §3.5 plugin
		{"plugin name required", "plugins", `{}`, []string{"name: required field missing"}},
		{"plugin not enabled", "plugins", `{"name":"rate-limiting"}`, []string{"name: plugin 'rate-limiting' not enabled; add it to the 'plugins' configuration property"}},
		{"plugin scope forbidden", "plugins", `{"name":"key-auth","consumer":"alice"}`, []string{"consumer: value must be null"}},
		{"plugin config record", "plugins", `{"name":"prometheus","config":[1]}`, []string{"config: expected a record"}},
		{"plugin config field errors", "plugins", `{"name":"key-auth","config":{"key_names":["ok","a b"]}}`, []string{"config.key_names.2: bad header name 'a b', allowed characters are A-Z, a-z, 0-9, '_', and '-'"}},
		{"plugin datakit messages", "plugins", `{"name":"datakit","config":{"nodes":[{"type":"jq"},{}]}}`, []string{"config: nodes[1]: name: required", "config: nodes[2]: name: required", "config: nodes[2]: type: required"}},
		{"plugin protocols", "plugins", `{"name":"prometheus","protocols":["ws"]}`, []string{"protocols.1: expected one of: grpc, grpcs, http, https"}},
		{"plugin instance_name", "plugins", `{"name":"prometheus","instance_name":"a/b"}`, []string{"instance_name: invalid value 'a/b': the only accepted ascii characters are alphanumerics or ., -, _, and ~"}},
		{"plugin kong-only fields", "plugins", `{"name":"prometheus","consumer_group":null,"ordering":{},"partials":[]}`, []string{"consumer_group: unknown field", "ordering: unknown field", "partials: unknown field"}},
		// §3.6 upstream
		{"upstream name required", "upstreams", `{}`, []string{"name: required field missing"}},
		{"upstream name ip", "upstreams", `{"name":"10.0.0.1"}`, []string{"name: Invalid name ('10.0.0.1'); no ip addresses allowed"}},
		{"upstream name port", "upstreams", `{"name":"a.test:80"}`, []string{"name: Invalid name ('a.test:80'); no port allowed"}},
		{"upstream name invalid", "upstreams", `{"name":"a b"}`, []string{"name: Invalid name ('a b'); must be a valid hostname"}},
		{"algorithm", "upstreams", `{"name":"u","algorithm":"random"}`, []string{"algorithm: expected one of: consistent-hashing, least-connections, round-robin"}},
		{"hash_on", "upstreams", `{"name":"u","hash_on":"body"}`, []string{"hash_on: expected one of: none, consumer, ip, header, cookie, path, query_arg, uri_capture"}},
		{"hash_on header needs name", "upstreams", `{"name":"u","hash_on":"header"}`, []string{"hash_on_header: required field missing"}},
		{"hash_fallback header needs name", "upstreams", `{"name":"u","hash_on":"ip","hash_fallback":"header"}`, []string{"hash_fallback_header: required field missing"}},
		{"cookie needs name", "upstreams", `{"name":"u","hash_on":"cookie"}`, []string{"hash_on_cookie: required field missing"}},
		{"query_arg needs name", "upstreams", `{"name":"u","hash_on":"query_arg","hash_fallback":"uri_capture"}`, []string{"hash_fallback_uri_capture: required field missing", "hash_on_query_arg: required field missing"}},
		{"query_arg empty", "upstreams", `{"name":"u","hash_on":"query_arg","hash_on_query_arg":""}`, []string{"hash_on_query_arg: length must be at least 1"}},
		{"fallback with none", "upstreams", `{"name":"u","hash_fallback":"ip"}`, []string{"hash_fallback: expected one of: none"}},
		{"fallback with cookie", "upstreams", `{"name":"u","hash_on":"cookie","hash_on_cookie":"c","hash_fallback":"ip"}`, []string{"hash_fallback: expected one of: none"}},
		{"fallback equals hash_on", "upstreams", `{"name":"u","hash_on":"ip","hash_fallback":"ip"}`, []string{"hash_fallback: expected one of: none, consumer, header, cookie, path, query_arg, uri_capture"}},
		{"distinct headers", "upstreams", `{"name":"u","hash_on":"header","hash_on_header":"x","hash_fallback":"header","hash_fallback_header":"x"}`, []string{"values of these fields must be distinct: 'hash_on_header', 'hash_fallback_header'"}},
		{"header name", "upstreams", `{"name":"u","hash_on":"header","hash_on_header":"a b"}`, []string{"hash_on_header: bad header name 'a b', allowed characters are A-Z, a-z, 0-9, '_', and '-'"}},
		{"slots", "upstreams", `{"name":"u","slots":5}`, []string{"slots: value should be between 10 and 65536"}},
		{"host_header", "upstreams", `{"name":"u","host_header":"a.test:99999"}`, []string{"host_header: invalid port number"}},
		{"use_srv_name", "upstreams", `{"name":"u","use_srv_name":true}`, []string{"use_srv_name: value must be false"}},
		{"healthchecks zero", "upstreams", `{"name":"u","healthchecks":{"threshold":1,"active":{"healthy":{"interval":5},"unhealthy":{"tcp_failures":0,"http_failures":2}},"passive":{"healthy":{"successes":1},"unhealthy":{"timeouts":3}}}}`,
			[]string{"healthchecks.active.healthy.interval: health checks are not supported; set it to 0", "healthchecks.active.unhealthy.http_failures: health checks are not supported; set it to 0", "healthchecks.passive.healthy.successes: health checks are not supported; set it to 0", "healthchecks.passive.unhealthy.timeouts: health checks are not supported; set it to 0", "healthchecks.threshold: health checks are not supported; set it to 0"}},
		{"healthchecks unknown", "upstreams", `{"name":"u","healthchecks":{"active":{"foo":1,"type":"udp"}}}`, []string{"healthchecks.active.foo: unknown field", "healthchecks.active.type: expected one of: tcp, http, https, grpc, grpcs"}},
		{"healthchecks kong defaults ok", "upstreams", `{"name":"u","healthchecks":{"active":{"concurrency":10,"healthy":{"http_statuses":[200,302],"interval":0,"successes":0},"http_path":"/","https_verify_certificate":true,"timeout":1,"type":"http","unhealthy":{"http_failures":0,"http_statuses":[429],"interval":0,"tcp_failures":0,"timeouts":0}},"passive":{"type":"http"},"threshold":0}}`, nil},
		// §3.7 target
		{"target required", "targets", `{"upstream":"u"}`, []string{"target: required field missing"}},
		{"target invalid", "targets", `{"upstream":"u","target":"a b:80"}`, []string{"target: Invalid target ('a b:80'); not a valid hostname or ip address"}},
		{"target port", "targets", `{"upstream":"u","target":"a.test:700000"}`, []string{"target: Invalid target ('a.test:700000'); not a valid hostname or ip address"}},
		{"target weight", "targets", `{"upstream":"u","target":"a.test","weight":65536}`, []string{"weight: value should be between 0 and 65535"}},
		{"target upstream required", "targets", `{"target":"a.test"}`, []string{"upstream: required field missing"}},
		// §3.8 certificate and SNI
		{"cert valid", "certificates", `{"cert":` + pemJSON(cert) + `,"key":` + pemJSON(key) + `,"cert_alt":` + pemJSON(edCert) + `,"key_alt":` + pemJSON(edKey) + `}`, nil},
		{"cert required", "certificates", `{}`, []string{"cert: required field missing", "key: required field missing"}},
		{"cert invalid", "certificates", `{"cert":"x","key":` + pemJSON(key) + `}`, []string{"cert: invalid certificate: expected a PEM CERTIFICATE block"}},
		{"key invalid", "certificates", `{"cert":` + pemJSON(cert) + `,"key":"x"}`, []string{"key: invalid key: expected a PEM private key block"}},
		{"cert mismatch", "certificates", `{"cert":` + pemJSON(cert) + `,"key":` + pemJSON(key2) + `}`, []string{"certificate does not match key"}},
		{"cert_alt alone", "certificates", `{"cert":` + pemJSON(cert) + `,"key":` + pemJSON(key) + `,"cert_alt":` + pemJSON(cert2) + `}`, []string{"all or none of these fields must be set: 'cert_alt', 'key_alt'"}},
		{"cert_alt mismatch", "certificates", `{"cert":` + pemJSON(cert) + `,"key":` + pemJSON(key) + `,"cert_alt":` + pemJSON(edCert) + `,"key_alt":` + pemJSON(key2) + `}`, []string{"alternative certificate does not match key"}},
		{"cert_alt same type", "certificates", `{"cert":` + pemJSON(cert) + `,"key":` + pemJSON(key) + `,"cert_alt":` + pemJSON(cert2) + `,"key_alt":` + pemJSON(key2) + `}`, []string{"certificate and alternative certificate need to have different type (e.g. RSA and ECDSA), the provided certificates were both of the same type"}},
		{"cert snis duplicated", "certificates", `{"cert":` + pemJSON(cert) + `,"key":` + pemJSON(key) + `,"snis":["a.test","a.test"]}`, []string{"snis: a.test is duplicated"}},
		{"sni ip", "snis", `{"name":"10.0.0.1","certificate":"` + id + `"}`, []string{"name: must not be an IP"}},
		{"sni port", "snis", `{"name":"a.test:443","certificate":"` + id + `"}`, []string{"name: must not have a port"}},
		{"sni wildcard", "snis", `{"name":"a.*.test","certificate":"` + id + `"}`, []string{"name: invalid wildcard: must be placed at leftmost or rightmost label"}},
		{"sni certificate required", "snis", `{"name":"*.a.test"}`, []string{"certificate: required field missing"}},
		// §3.10 key-auth credential
		{"keyauth consumer required", "keyauth_credentials", `{"key":"k"}`, []string{"consumer: required field missing"}},
		{"keyauth no updated_at, ttl", "keyauth_credentials", `{"consumer":"alice","ttl":5,"updated_at":1}`, []string{"ttl: unknown field", "updated_at: unknown field"}},
	}
	for _, tc := range tests {
		t.Run(tc.kind+"/"+tc.name, func(t *testing.T) {
			got := flatStrings(decoders[tc.kind](mustParse(t, tc.in)))
			if !slices.Equal(got, tc.want) {
				t.Errorf("Decode %s(%s) errors =\n  %q\nwant\n  %q", tc.kind, tc.in, got, tc.want)
			}
		})
	}
}

func TestServiceURL(t *testing.T) {
	str := func(s string) *string { return &s }
	tests := []struct {
		in       string
		protocol string
		host     string
		port     int
		path     *string
	}{
		{`{"url":"http://svc.test:443"}`, "http", "svc.test", 443, nil},
		{`{"url":"svc.test:443"}`, "https", "svc.test", 443, nil},
		{`{"url":"https://svc.test/p/a%20b?q=1"}`, "https", "svc.test", 443, str("/p/a%20b")},
		{`{"url":"http://svc.test"}`, "http", "svc.test", 80, nil},
		{`{"url":"svc.test/x"}`, "http", "svc.test", 80, str("/x")},
		{`{"url":"http://svc.test:8080/x","port":9000,"path":null}`, "http", "svc.test", 9000, nil},
		{`{"url":"http://[::1]:8080"}`, "http", "::1", 8080, nil},
	}
	for _, tc := range tests {
		s, errs := DecodeService(mustParse(t, tc.in))
		if !errs.Empty() {
			t.Errorf("DecodeService(%s) = %v", tc.in, errs)
			continue
		}
		if s.Protocol != tc.protocol || s.Host != tc.host || s.Port != tc.port || !reflect.DeepEqual(s.Path, tc.path) {
			t.Errorf("DecodeService(%s) = %s %s %d %v, want %s %s %d %v", tc.in, s.Protocol, s.Host, s.Port, deref(s.Path), tc.protocol, tc.host, tc.port, deref(tc.path))
		}
	}
}

func TestDefaults(t *testing.T) {
	s, _ := DecodeService(mustParse(t, `{"host":"a.test"}`))
	if s.Protocol != "http" || s.Port != 80 || s.Retries != 5 || s.ConnectTimeout != 60000 || s.ReadTimeout != 60000 || s.WriteTimeout != 60000 || !s.Enabled || s.Path != nil {
		t.Errorf("service defaults = %+v", s)
	}
	r, _ := DecodeRoute(mustParse(t, `{"paths":["/"],"methods":["GET","GET"]}`))
	if !slices.Equal(r.Protocols, []string{"http", "https"}) || r.HTTPSRedirectStatusCode != 426 || !r.StripPath ||
		r.PathHandling != "v0" || r.PreserveHost || !r.RequestBuffering || !r.ResponseBuffering || r.RegexPriority != 0 {
		t.Errorf("route defaults = %+v", r)
	}
	if !slices.Equal(r.Methods, []string{"GET"}) {
		t.Errorf("methods set = %v, want duplicates dropped", r.Methods)
	}
	p, _ := DecodePlugin(mustParse(t, `{"name":"key-auth"}`), fakeSchemas{})
	if !slices.Equal(p.Protocols, []string{"grpc", "grpcs", "http", "https"}) || !p.Enabled || p.Config["hide_credentials"] != false {
		t.Errorf("plugin defaults = %+v", p)
	}
	u, _ := DecodeUpstream(mustParse(t, `{"name":"u"}`))
	if u.Algorithm != "round-robin" || u.HashOn != "none" || u.HashFallback != "none" || u.Slots != 10000 || u.HashOnCookiePath != "/" ||
		u.Healthchecks.Active.Concurrency != 10 || u.Healthchecks.Passive.Type != "http" {
		t.Errorf("upstream defaults = %+v", u)
	}
	tg, _ := DecodeTarget(mustParse(t, `{"upstream":"u","target":"a.test"}`))
	if tg.Target != "a.test:8000" || tg.Weight != 100 {
		t.Errorf("target defaults = %+v", tg)
	}
	tg, _ = DecodeTarget(mustParse(t, `{"upstream":"u","target":"::1"}`))
	if tg.Target != "[::1]:8000" {
		t.Errorf("target ::1 = %q, want [::1]:8000", tg.Target)
	}
}

// TestUpstreamSideEffects pins Kong's input side effects between algorithm
// and hash_on (§3.6).
func TestUpstreamSideEffects(t *testing.T) {
	tests := []struct{ in, algorithm, hashOn string }{
		{`{"name":"u","hash_on":"consumer"}`, "consistent-hashing", "consumer"},
		{`{"name":"u","algorithm":"consistent-hashing"}`, "round-robin", "none"},
		{`{"name":"u","algorithm":"least-connections","hash_on":"ip"}`, "least-connections", "none"},
	}
	for _, tc := range tests {
		u, errs := DecodeUpstream(mustParse(t, tc.in))
		if !errs.Empty() || u.Algorithm != tc.algorithm || u.HashOn != tc.hashOn {
			t.Errorf("DecodeUpstream(%s) = %s/%s %v, want %s/%s", tc.in, u.Algorithm, u.HashOn, errs, tc.algorithm, tc.hashOn)
		}
	}
}

// TestJSONOutput checks §3.1: every field present, unset as null, keys in
// alphabetical order.
func TestJSONOutput(t *testing.T) {
	for _, v := range []any{Service{}, Route{}, Consumer{}, Plugin{}, Upstream{}, Target{}, Certificate{}, SNI{}, KeyauthCredential{}, Healthchecks{}} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		keys := topKeys(t, b)
		if !slices.IsSorted(keys) {
			t.Errorf("%T keys not sorted: %v", v, keys)
		}
		if n := reflect.TypeOf(v).NumField(); len(keys) != n {
			t.Errorf("%T renders %d keys, has %d fields", v, len(keys), n)
		}
	}
	s, _ := DecodeService(mustParse(t, `{"host":"a.test","name":"billing"}`))
	b, _ := json.Marshal(s)
	want := `{"ca_certificates":null,"client_certificate":null,"connect_timeout":60000,"created_at":0,"enabled":true,"host":"a.test","id":"","name":"billing","path":null,"port":80,"protocol":"http","read_timeout":60000,"retries":5,"tags":null,"tls_verify":null,"tls_verify_depth":null,"updated_at":0,"write_timeout":60000}`
	if string(b) != want {
		t.Errorf("json.Marshal(service) =\n%s\nwant\n%s", b, want)
	}
	r := Route{Service: &ForeignKey{ID: "x", Key: "billing"}}
	if b, _ := json.Marshal(r); !strings.Contains(string(b), `"service":{"id":"x"}`) {
		t.Errorf("foreign key renders %s", b)
	}
}

func topKeys(t *testing.T, b []byte) []string {
	dec := json.NewDecoder(bytes.NewReader(b))
	var keys []string
	depth := 0
	expectKey := false
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		switch v := tok.(type) {
		case json.Delim:
			if v == '{' || v == '[' {
				depth++
			} else {
				depth--
			}
			expectKey = depth == 1
			continue
		case string:
			if depth == 1 && expectKey {
				keys = append(keys, v)
				expectKey = false
				continue
			}
		}
		expectKey = depth == 1
	}
	return keys
}

func TestGenerateKey(t *testing.T) {
	k, err := GenerateKey(nil)
	if err != nil || len(k) != 32 || strings.Trim(k, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") != "" {
		t.Errorf("GenerateKey() = %q, %v", k, err)
	}
}
