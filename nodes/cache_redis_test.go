package nodes

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

const testRedisAddr = "127.0.0.1:6379"

// redisForTest returns a client of the Redis server on 127.0.0.1:6379 and a
// plugin id unique to this test run; the cache entries of that plugin id are
// deleted afterwards. Without a server the test is skipped, or fails under
// DATAKIT_TEST_REQUIRE_SERVICES=1.
func redisForTest(t *testing.T) (*redis.Client, string) {
	t.Helper()
	c := redis.NewClient(&redis.Options{
		Addr: testRedisAddr, Protocol: 2, DialTimeout: time.Second, MaxRetries: -1,
		DisableIdentity: true, PipelinePoolSize: -1,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	})
	ctx := context.Background()
	if err := c.Ping(ctx).Err(); err != nil {
		_ = c.Close()
		if os.Getenv("DATAKIT_TEST_REQUIRE_SERVICES") == "1" {
			t.Fatalf("Redis at %s: %v", testRedisAddr, err)
		}
		t.Skipf("Redis at %s: %v", testRedisAddr, err)
	}
	pluginID := "test-" + strings.ReplaceAll(t.Name(), "/", "-") + "-" + rand.Text()[:10]
	t.Cleanup(func() {
		var keys []string
		iter := c.Scan(ctx, 0, "datakit:"+pluginID+":*", 100).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if err := iter.Err(); err != nil {
			t.Errorf("SCAN: %v", err)
		}
		if len(keys) > 0 {
			if err := c.Del(ctx, keys...).Err(); err != nil {
				t.Errorf("DEL: %v", err)
			}
		}
		_ = c.Close()
	})
	return c, pluginID
}

// redisResource is resources.cache for the test server with the defaults
// and the given redis attributes.
func redisResource(t *testing.T, redisAttrs map[string]any) *cacheResource {
	t.Helper()
	values := map[string]any{"strategy": "redis"}
	if redisAttrs != nil {
		values["redis"] = redisAttrs
	}
	res, errs := decodeResource(values)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	return res
}

func storeKeyFor(pluginID, key string) string {
	sum := sha256.Sum256([]byte(key))
	return "datakit:" + pluginID + ":" + hex.EncodeToString(sum[:])
}

func TestCacheRedisGetSet(t *testing.T) {
	c, pid := redisForTest(t)
	stores, _ := newTestStores(t)
	n := buildCache(t, stores, redisResource(t, nil), map[string]any{"ttl": 200}, pid)
	env := testEnv(nil)
	ctx := context.Background()
	key := storeKeyFor(pid, "my key")

	if got, err := cacheRun(env, n, "my key", nil, nil); err != nil || got != cacheMiss {
		t.Fatalf("GET = %q, %v; want a miss", got, err)
	}
	data := map[string]any{"b": []any{1, 2.5, "<&>"}, "a": nil}
	if got, err := cacheRun(env, n, "my key", 100.7, data); err != nil || got != cacheStored(`{"a":null,"b":[1,2.5,"<&>"]}`) {
		t.Fatalf("SET = %q, %v", got, err)
	}
	// SET key value EX ttl: JSON text, 100 s (fraction truncated).
	if v, err := c.Get(ctx, key).Result(); err != nil || v != `{"a":null,"b":[1,2.5,"<&>"]}` {
		t.Errorf("GET %s = %q, %v", key, v, err)
	}
	if ttl, err := c.TTL(ctx, key).Result(); err != nil || ttl > 100*time.Second || ttl < 98*time.Second {
		t.Errorf("TTL = %v, %v; want 100 s", ttl, err)
	}
	if got, err := cacheRun(env, n, "my key", nil, nil); err != nil || got != cacheHit(`{"a":null,"b":[1,2.5,"<&>"]}`) {
		t.Errorf("GET = %q, %v; want a hit", got, err)
	}

	// Without the ttl input: the attribute, else 300 s.
	if _, err := cacheRun(env, n, "my key", nil, "v2"); err != nil {
		t.Fatal(err)
	}
	if ttl := c.TTL(ctx, key).Val(); ttl > 200*time.Second || ttl < 198*time.Second {
		t.Errorf("TTL = %v, want the attribute's 200 s", ttl)
	}
	def := buildCache(t, stores, redisResource(t, nil), nil, pid)
	if _, err := cacheRun(env, def, "other", nil, 1); err != nil {
		t.Fatal(err)
	}
	if ttl := c.TTL(ctx, storeKeyFor(pid, "other")).Val(); ttl > 300*time.Second || ttl < 298*time.Second {
		t.Errorf("TTL = %v, want the default 300 s", ttl)
	}

	// Entries of another plugin instance are never seen.
	other := buildCache(t, stores, redisResource(t, nil), nil, pid+"-other")
	if got, _ := cacheRun(env, other, "my key", nil, nil); got != cacheMiss {
		t.Errorf("another instance: %q, want a miss", got)
	}

	// Expiry is the server's.
	if _, err := cacheRun(env, n, "short", 1, "x"); err != nil {
		t.Fatal(err)
	}
	if err := c.PExpire(ctx, storeKeyFor(pid, "short"), time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for c.Exists(ctx, storeKeyFor(pid, "short")).Val() == 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got, _ := cacheRun(env, n, "short", nil, nil); got != cacheMiss {
		t.Errorf("expired entry: %q, want a miss", got)
	}
}

func TestCacheRedisDatabase(t *testing.T) {
	c, pid := redisForTest(t)
	stores, _ := newTestStores(t)
	n := buildCache(t, stores, redisResource(t, map[string]any{"database": 1}), nil, pid)
	if _, err := cacheRun(testEnv(nil), n, "k", nil, "in db 1"); err != nil {
		t.Fatal(err)
	}
	db1 := redis.NewClient(&redis.Options{Addr: testRedisAddr, DB: 1, Protocol: 2, DisableIdentity: true, PipelinePoolSize: -1})
	defer db1.Close()
	key := storeKeyFor(pid, "k")
	defer db1.Del(context.Background(), key)
	if v := db1.Get(context.Background(), key).Val(); v != `"in db 1"` {
		t.Errorf("database 1 holds %q", v)
	}
	if c.Exists(context.Background(), key).Val() != 0 {
		t.Errorf("entry written to database 0")
	}
}

func TestCacheRedisClientsShared(t *testing.T) {
	stores, _ := newTestStores(t)
	a := buildCache(t, stores, redisResource(t, nil), nil, "a")
	b := buildCache(t, stores, redisResource(t, map[string]any{"host": "127.0.0.1", "port": 6379}), map[string]any{"ttl": 5}, "b")
	c := buildCache(t, stores, redisResource(t, map[string]any{"database": 2}), nil, "a")
	if a.store != b.store {
		t.Errorf("equal configurations got two clients")
	}
	if a.store == c.store {
		t.Errorf("different databases share a client")
	}
	if len(stores.redis) != 2 {
		t.Errorf("%d clients, want 2", len(stores.redis))
	}
}

func TestCacheRedisUndecodableEntry(t *testing.T) {
	c, pid := redisForTest(t)
	stores, _ := newTestStores(t)
	n := buildCache(t, stores, redisResource(t, nil), nil, pid)
	if err := c.Set(context.Background(), storeKeyFor(pid, "k"), "not json", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := cacheRun(testEnv(nil), n, "k", nil, nil); !strings.HasPrefix(errText(err), "cache backend error: invalid cached value: ") {
		t.Errorf("Run = %v, want a backend error", err)
	}
}

func TestCacheRedisOversizedEntry(t *testing.T) {
	c, pid := redisForTest(t)
	stores, _ := newTestStores(t)
	n := buildCache(t, stores, redisResource(t, nil), nil, pid)
	big := strings.Repeat("x", 2<<20)
	_, err := cacheRun(testEnv(nil), n, "k", nil, big)
	if want := "cache backend error: entry of 2097154 bytes exceeds the limit of 1048576 bytes"; errText(err) != want {
		t.Errorf("Run = %v, want %s", err, want)
	}
	if c.Exists(context.Background(), storeKeyFor(pid, "k")).Val() != 0 {
		t.Errorf("the oversized entry was written")
	}
}

// closedPort returns a local port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	return port
}

func TestCacheRedisDown(t *testing.T) {
	stores, _ := newTestStores(t)
	res := redisResource(t, map[string]any{"port": closedPort(t)})
	n := buildCache(t, stores, res, nil, "p")
	env := testEnv(nil)
	start := time.Now()
	for _, data := range []any{nil, "v"} {
		_, err := cacheRun(env, n, "k", nil, data)
		if msg := errText(err); !strings.HasPrefix(msg, "cache backend error: ") || !strings.Contains(msg, "connection refused") {
			t.Errorf("Run(data %v) = %v, want cache backend error: …connection refused", data, err)
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("two operations took %v, want well under the timeouts", d)
	}

	bypass := buildCache(t, stores, res, map[string]any{"bypass_on_error": true}, "p")
	if got, err := cacheRun(env, bypass, "k", nil, nil); err != nil || got != cacheMiss {
		t.Errorf("bypass GET = %q, %v; want a miss", got, err)
	}
	if got, err := cacheRun(env, bypass, "k", nil, "v"); err != nil || got != cacheFailed+` data="v"` {
		t.Errorf("bypass SET = %q, %v; want stored=false", got, err)
	}
}

// A server that accepts but never answers: the read timeout bounds the
// operation (one retry included).
func TestCacheRedisReadTimeout(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	})
	defer func() {
		_ = l.Close()
		wg.Wait()
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	stores, _ := newTestStores(t)
	port := l.Addr().(*net.TCPAddr).Port
	n := buildCache(t, stores, redisResource(t, map[string]any{"port": port, "read_timeout": 100, "send_timeout": 100}), nil, "p")
	start := time.Now()
	_, err = cacheRun(testEnv(nil), n, "k", nil, nil)
	if msg := errText(err); !strings.HasPrefix(msg, "cache backend error: ") || !strings.Contains(msg, "timeout") {
		t.Errorf("Run = %v, want cache backend error: …timeout", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v with a 100 ms read timeout", d)
	}
	// Close the clients before the fake server's connections.
	if err := stores.Close(); err != nil {
		t.Error(err)
	}
}

// A canceled request stops waiting for Redis.
func TestCacheRedisCanceled(t *testing.T) {
	_, pid := redisForTest(t)
	stores, _ := newTestStores(t)
	n := buildCache(t, stores, redisResource(t, nil), nil, pid)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := n.Run(ctx, testEnv(nil), []any{"k", nil, nil}); !strings.Contains(errText(err), "context canceled") {
		t.Errorf("Run = %v, want context canceled", err)
	}
}

func TestCacheRedisConcurrent(t *testing.T) {
	_, pid := redisForTest(t)
	stores, _ := newTestStores(t)
	n := buildCache(t, stores, redisResource(t, map[string]any{"keepalive_pool_size": 4}), nil, pid)
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Go(func() {
			key := fmt.Sprint(i % 8)
			for range 20 {
				if _, err := cacheRun(testEnv(nil), n, key, nil, i); err != nil {
					t.Error(err)
					return
				}
				if _, err := cacheRun(testEnv(nil), n, key, nil, nil); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}
