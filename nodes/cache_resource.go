package nodes

import (
	"crypto/tls"
	"math"
	"net"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/datakit-gateway/datakit/engine"
)

// Cache strategies (spec §8.1).
const (
	cacheMemory = "memory"
	cacheRedis  = "redis"
)

// Defaults and limits of resources.cache (spec §8.1, hardening §2.9).
const (
	cacheDefaultDictionary = "kong_db_cache"
	redisDefaultTimeout    = 2000 // ms, Kong's
	redisMaxTimeout        = 2147483646
	redisDefaultPoolSize   = 256
	redisPoolTimeout       = 2 * time.Second
	redisMaxRetries        = 1
)

// cacheResource is the decoded `resources.cache` (spec §8.1).
type cacheResource struct {
	// strategy is memory or redis; "" when absent or invalid.
	strategy string
	// strategyGiven reports that the key was present (an invalid value is
	// reported by the resource, not again by every cache node).
	strategyGiven bool
	dictionary    string
	redis         redisConfig
}

// redisConfig is one Redis server configuration. It is comparable: cache
// nodes with equal configurations share one client (CacheStores).
type redisConfig struct {
	host       string
	port       int
	database   int
	username   string
	password   string
	ssl        bool
	sslVerify  bool
	serverName string
	// connectTimeout, sendTimeout and readTimeout bound dialing, each write
	// and each read.
	connectTimeout, sendTimeout, readTimeout time.Duration
	poolSize                                 int
}

// redisNeutral are Kong's Redis fields this single-server client does not
// implement, accepted only with the value that means "not used" (spec §8.1).
var redisNeutral = []struct {
	name    string
	neutral func(v any) bool
}{
	{"connection_is_proxied", func(v any) bool { return v == false }},
	{"cluster_max_redirections", func(v any) bool { n, ok := engine.AsInt(v); return ok && n == 5 }},
	{"sentinel_master", nil},
	{"sentinel_role", nil},
	{"sentinel_nodes", nil},
	{"sentinel_username", nil},
	{"sentinel_password", nil},
	{"cluster_nodes", nil},
	{"cloud_authentication", nil},
}

// decodeCacheResource decodes `resources.cache`. Whether a strategy is
// required depends on the nodes, so the cache node type checks that.
func decodeCacheResource(a *engine.Attrs) any {
	r := &cacheResource{dictionary: cacheDefaultDictionary}
	r.strategyGiven = a.Has("strategy")
	r.strategy = a.OneOf("strategy", "", cacheMemory, cacheRedis)
	if m, ok := a.Sub("memory"); ok {
		r.dictionary = m.String("dictionary_name", cacheDefaultDictionary, 1, 255)
	}
	rs, _ := a.Sub("redis") // nil when absent: the defaults
	r.redis = decodeRedis(rs)
	return r
}

// decodeRedis decodes `resources.cache.redis`; nil gives the defaults.
func decodeRedis(a *engine.Attrs) redisConfig {
	c := redisConfig{
		host: "127.0.0.1", port: 6379, sslVerify: true,
		connectTimeout: redisDefaultTimeout * time.Millisecond,
		sendTimeout:    redisDefaultTimeout * time.Millisecond,
		readTimeout:    redisDefaultTimeout * time.Millisecond,
		poolSize:       redisDefaultPoolSize,
	}
	if a == nil {
		return c
	}
	c.host = a.String("host", c.host, 1, 255)
	c.port = int(a.Int("port", 6379, 0, 65535))
	c.database = int(a.Int("database", 0, 0, math.MaxInt32))
	c.username = a.String("username", "", 0, 4096)
	c.password = a.String("password", "", 0, 4096)
	c.ssl = a.Bool("ssl", false)
	c.sslVerify = a.Bool("ssl_verify", true)
	c.serverName = a.String("server_name", "", 1, 255)
	timeout := func(name string) time.Duration {
		ms := a.Int(name, redisDefaultTimeout, 0, redisMaxTimeout)
		if ms == 0 {
			// As with nginx cosockets, 0 means the default, never "unbounded".
			ms = redisDefaultTimeout
		}
		return time.Duration(ms) * time.Millisecond
	}
	c.connectTimeout = timeout("connect_timeout")
	c.sendTimeout = timeout("send_timeout")
	c.readTimeout = timeout("read_timeout")
	c.poolSize = int(a.Int("keepalive_pool_size", redisDefaultPoolSize, 1, 2147483646))
	a.Int("keepalive_backlog", 0, 0, 2147483646) // accepted for Kong compatibility; no effect
	for _, f := range redisNeutral {
		v, ok := a.Raw(f.name)
		if ok && (f.neutral == nil || !f.neutral(v)) {
			a.Errorf(f.name, "not supported")
		}
	}
	return c
}

// addr is the server's host:port.
func (c redisConfig) addr() string { return net.JoinHostPort(c.host, strconv.Itoa(c.port)) }

// options configures the go-redis client deliberately (hardening §2.9): the
// configured timeouts, a pool of keepalive_pool_size connections waited for
// at most 2 s, one retry, a single dial attempt per connection, RESP2 like
// Kong's client, and none of go-redis's optional background machinery.
func (c redisConfig) options() *redis.Options {
	o := &redis.Options{
		Addr:                  c.addr(),
		Username:              c.username,
		Password:              c.password,
		DB:                    c.database,
		Protocol:              2,
		DialTimeout:           c.connectTimeout,
		DialerRetries:         1,
		WriteTimeout:          c.sendTimeout,
		ReadTimeout:           c.readTimeout,
		ContextTimeoutEnabled: true,
		PoolSize:              c.poolSize,
		MaxActiveConns:        c.poolSize,
		PoolTimeout:           redisPoolTimeout,
		MaxRetries:            redisMaxRetries,
		PipelinePoolSize:      -1,
		DisableIdentity:       true,
		MaintNotificationsConfig: &maintnotifications.Config{
			Mode: maintnotifications.ModeDisabled,
		},
	}
	if c.ssl {
		name := c.serverName
		if name == "" {
			name = c.host
		}
		o.TLSConfig = &tls.Config{
			MinVersion:         tls.VersionTLS12,
			ServerName:         name,
			InsecureSkipVerify: !c.sslVerify, // #nosec G402 -- the operator's ssl_verify: false
		}
	}
	return o
}
