package nodes

import (
	"crypto/tls"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/datakit-gateway/datakit/engine"
)

// decodeResource decodes values as resources.cache.
func decodeResource(values map[string]any) (*cacheResource, []string) {
	var res *cacheResource
	_, errs := engine.DecodeAttrs("resources", values, engine.KindFunc(func(a *engine.Attrs) *engine.Decl {
		res = decodeCacheResource(a).(*cacheResource)
		return &engine.Decl{}
	}))
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return res, msgs
}

func TestCacheResourceDefaults(t *testing.T) {
	res, errs := decodeResource(map[string]any{"strategy": "memory"})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	want := &cacheResource{
		strategy: cacheMemory, strategyGiven: true, dictionary: "kong_db_cache",
		redis: redisConfig{
			host: "127.0.0.1", port: 6379, sslVerify: true,
			connectTimeout: 2 * time.Second, sendTimeout: 2 * time.Second, readTimeout: 2 * time.Second,
			poolSize: 256,
		},
	}
	if !reflect.DeepEqual(res, want) {
		t.Errorf("decode = %+v, want %+v", res, want)
	}
	if res, _ := decodeResource(map[string]any{}); res.strategyGiven || res.strategy != "" {
		t.Errorf("no strategy: %+v", res)
	}
}

func TestCacheResourceAllFields(t *testing.T) {
	res, errs := decodeResource(map[string]any{
		"strategy": "redis",
		"memory":   map[string]any{"dictionary_name": "my_dict"},
		"redis": map[string]any{
			"host": "redis.internal", "port": 6380, "database": 3, "username": "u", "password": "p",
			"ssl": true, "ssl_verify": false, "server_name": "redis.example",
			"connect_timeout": 100, "send_timeout": 200, "read_timeout": 0,
			"keepalive_pool_size": 8, "keepalive_backlog": 16,
			"connection_is_proxied": false, "cluster_max_redirections": 5.0,
			"sentinel_master": nil, "sentinel_role": nil, "sentinel_nodes": nil, "sentinel_username": nil,
			"sentinel_password": nil, "cluster_nodes": nil, "cloud_authentication": nil,
		},
	})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	want := &cacheResource{
		strategy: cacheRedis, strategyGiven: true, dictionary: "my_dict",
		redis: redisConfig{
			host: "redis.internal", port: 6380, database: 3, username: "u", password: "p",
			ssl: true, sslVerify: false, serverName: "redis.example",
			connectTimeout: 100 * time.Millisecond, sendTimeout: 200 * time.Millisecond,
			readTimeout: 2 * time.Second, // 0: the default
			poolSize:    8,
		},
	}
	if !reflect.DeepEqual(res, want) {
		t.Errorf("decode = %+v, want %+v", res, want)
	}

	o := res.redis.options()
	if o.Addr != "redis.internal:6380" || o.DB != 3 || o.Username != "u" || o.Password != "p" ||
		o.DialTimeout != 100*time.Millisecond || o.WriteTimeout != 200*time.Millisecond || o.ReadTimeout != 2*time.Second ||
		o.PoolSize != 8 || o.MaxActiveConns != 8 || o.PoolTimeout != 2*time.Second || o.MaxRetries != 1 ||
		o.DialerRetries != 1 || !o.ContextTimeoutEnabled || o.Protocol != 2 {
		t.Errorf("options = %+v", o)
	}
	if o.TLSConfig == nil || o.TLSConfig.ServerName != "redis.example" || !o.TLSConfig.InsecureSkipVerify || o.TLSConfig.MinVersion != tls.VersionTLS12 {
		t.Errorf("TLS = %+v, want server name redis.example, no verification", o.TLSConfig)
	}

	// ssl without server_name verifies the host; no ssl, no TLS.
	c := redisConfig{host: "h", port: 1, ssl: true, sslVerify: true}
	if tc := c.options().TLSConfig; tc == nil || tc.ServerName != "h" || tc.InsecureSkipVerify {
		t.Errorf("TLS = %+v, want server name h, verified", tc)
	}
	c.ssl = false
	if tc := c.options().TLSConfig; tc != nil {
		t.Errorf("TLS = %+v without ssl", tc)
	}
	if addr := (redisConfig{host: "::1", port: 6379}).addr(); addr != "[::1]:6379" {
		t.Errorf("addr = %s", addr)
	}
}

func TestCacheResourceErrors(t *testing.T) {
	tests := []struct {
		name   string
		values map[string]any
		want   []string
	}{
		{"strategy", map[string]any{"strategy": "disk"},
			[]string{`resources: strategy: must be one of: memory, redis; got "disk"`}},
		{"memory", map[string]any{"memory": map[string]any{"dictionary_name": "", "size": 1}},
			[]string{"resources: memory.dictionary_name: length must be between 1 and 255, got 0", "resources: memory.size: unknown field"}},
		{"redis shape", map[string]any{"redis": "localhost"},
			[]string{"resources: redis: expected object, got string"}},
		{"redis ranges", map[string]any{"redis": map[string]any{
			"port": 70000, "database": -1, "connect_timeout": -1, "read_timeout": 2147483647,
			"keepalive_pool_size": 0, "keepalive_backlog": -1, "ssl": "yes", "host": "",
		}}, []string{
			"resources: redis.host: length must be between 1 and 255, got 0",
			"resources: redis.port: must be between 0 and 65535, got 70000",
			"resources: redis.database: must be between 0 and 2147483647, got -1",
			"resources: redis.ssl: expected boolean, got string",
			"resources: redis.connect_timeout: must be between 0 and 2147483646, got -1",
			"resources: redis.read_timeout: must be between 0 and 2147483646, got 2147483647",
			"resources: redis.keepalive_pool_size: must be between 1 and 2147483646, got 0",
			"resources: redis.keepalive_backlog: must be between 0 and 2147483646, got -1",
		}},
		{"not neutral", map[string]any{"redis": map[string]any{
			"connection_is_proxied": true, "cluster_max_redirections": 6,
			"sentinel_master": "m", "sentinel_role": "master", "sentinel_nodes": []any{},
			"sentinel_username": "u", "sentinel_password": "p", "cluster_nodes": []any{map[string]any{"ip": "x"}},
			"cloud_authentication": map[string]any{},
		}}, []string{
			"resources: redis.connection_is_proxied: not supported",
			"resources: redis.cluster_max_redirections: not supported",
			"resources: redis.sentinel_master: not supported",
			"resources: redis.sentinel_role: not supported",
			"resources: redis.sentinel_nodes: not supported",
			"resources: redis.sentinel_username: not supported",
			"resources: redis.sentinel_password: not supported",
			"resources: redis.cluster_nodes: not supported",
			"resources: redis.cloud_authentication: not supported",
		}},
		{"not neutral types", map[string]any{"redis": map[string]any{
			"connection_is_proxied": "false", "cluster_max_redirections": "5",
		}}, []string{
			"resources: redis.connection_is_proxied: not supported",
			"resources: redis.cluster_max_redirections: not supported",
		}},
		{"unknown", map[string]any{"redis": map[string]any{"timeout": 1, "sentinel": nil}, "other": 1},
			[]string{"resources: other: unknown field", "resources: redis.sentinel: unknown field", "resources: redis.timeout: unknown field"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, got := decodeResource(tt.values); !slices.Equal(got, tt.want) {
				t.Errorf("errors =\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}
