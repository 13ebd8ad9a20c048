package datakit_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// This file holds hardening catalogue case T31 (hardening.md §3.2): cache
// keys, errors and Redis faults, with the Redis server on 127.0.0.1:6379
// behind an in-test TCP proxy.

const testRedisAddr = "127.0.0.1:6379"

// redisPluginIDs checks that Redis answers and returns n plugin ids unique
// to this run; their cache entries are deleted afterwards. Without a server
// the test is skipped, or fails under DATAKIT_TEST_REQUIRE_SERVICES=1.
func redisPluginIDs(t *testing.T, n int) []string {
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
	ids := make([]string, n)
	for i := range ids {
		ids[i] = uuid()
	}
	t.Cleanup(func() {
		defer c.Close()
		for _, id := range ids {
			keys, err := c.Keys(ctx, "datakit:"+id+":*").Result()
			if err != nil {
				t.Errorf("KEYS: %v", err)
				return
			}
			if len(keys) > 0 {
				if err := c.Del(ctx, keys...).Err(); err != nil {
					t.Errorf("DEL: %v", err)
				}
			}
		}
	})
	return ids
}

// uuid is a random version 4 UUID.
func uuid() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// cachedToken is the token-caching graph of a plugin with that id: the key
// holds every identity input (client id and tenant); on a miss the token
// service is called and its answer stored.
func cachedToken(id, resource, tokenURL, setAttrs string) string {
	return `          - name: datakit
            id: ` + id + `
            config:
              debug: true
              resources: {cache: ` + resource + `}
              nodes:
                - {name: KEY, type: jq, input: request.headers, jq: '"token:" + .["X-Client-Id"] + ":" + .["X-Tenant"]'}
                - {name: GET, type: cache, inputs: {key: KEY}}
                - {name: BRANCH, type: branch, input: GET.miss, then: [TOKEN, SET, EXIT_MISS], else: [EXIT_HIT]}
                - {name: TOKEN, type: call, url: ` + tokenURL + `, inputs: {headers: request.headers}}
                - {name: SET, type: cache, inputs: {key: KEY, data: TOKEN.body}` + setAttrs + `}
                - {name: EXIT_MISS, type: exit, inputs: {body: TOKEN.body}}
                - {name: EXIT_HIT, type: exit, inputs: {body: GET.data}}
`
}

// oneRoute serves one plugin on /.
func oneRoute(upstream, plugin string) string {
	return `_format_version: "3.0"
services:
  - name: api
    url: ` + upstream + `
    routes:
      - name: r
        paths: ["/"]
        plugins:
` + plugin
}

// tokenService answers {"token": "tok-<client>-<tenant>"} from the request's
// identity headers.
func tokenService(t *testing.T) *fake {
	return newFake(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"token":"tok-%s-%s"}`, r.Header.Get("X-Client-Id"), r.Header.Get("X-Tenant"))
	})
}

func identity(client, tenant string) http.Header {
	return http.Header{"X-Client-Id": {client}, "X-Tenant": {tenant}}
}

func redisResource(port int, extra string) string {
	return fmt.Sprintf(`{strategy: redis, redis: {host: 127.0.0.1, port: %d%s}}`, port, extra)
}

// TestT31CacheKeysAndRedisFaults: cached tokens never cross identities;
// entries expire; failures are not cached; oversized entries and Redis
// faults are cache backend errors (or misses with bypass_on_error), and
// the cache recovers without a restart; plugin instances never share.
func TestT31CacheKeysAndRedisFaults(t *testing.T) {
	noLeaks(t)
	ids := redisPluginIDs(t, 8)
	upstream := newFake(t, nil)
	proxy := newTCPProxy(t, testRedisAddr)
	strategies := []struct{ name, resource string }{
		{"memory", `{strategy: memory}`},
		{"redis", redisResource(proxy.port(), "")},
	}

	for i, s := range strategies {
		t.Run(s.name+"/two identities, 1000 requests", func(t *testing.T) {
			token := tokenService(t)
			gw := serveGateway(t, oneRoute(upstream.URL(), cachedToken(ids[i], s.resource, token.URL(), "")), gatewayOptions{})
			// The identities differ in one field of the key only.
			alice, bob := identity("c1", "t1"), identity("c1", "t2")
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
			defer client.CloseIdleConnections()
			var wg sync.WaitGroup
			requests := make(chan int)
			var mu sync.Mutex
			var wrong []string
			for range 32 {
				wg.Go(func() {
					for n := range requests {
						h, want := alice, `{"token":"tok-c1-t1"}`
						if n%2 == 1 {
							h, want = bob, `{"token":"tok-c1-t2"}`
						}
						req, _ := http.NewRequest(http.MethodGet, gw.URL+"/", nil)
						req.Header = h.Clone()
						resp, err := client.Do(req)
						if err != nil {
							mu.Lock()
							wrong = append(wrong, err.Error())
							mu.Unlock()
							continue
						}
						body, _ := io.ReadAll(resp.Body)
						resp.Body.Close()
						if resp.StatusCode != 200 || string(body) != want {
							mu.Lock()
							wrong = append(wrong, fmt.Sprintf("request %d: %d %s, want %s", n, resp.StatusCode, body, want))
							mu.Unlock()
						}
					}
				})
			}
			for n := range 1000 {
				requests <- n
			}
			close(requests)
			wg.Wait()
			if len(wrong) > 0 {
				t.Errorf("%d of 1000 responses wrong, e.g. %s", len(wrong), wrong[0])
			}
			// Without coalescing, concurrent first requests may each fetch;
			// the cache must still have served most of them.
			if n := token.count(); n < 2 || n > 100 {
				t.Errorf("token service called %d times for 1000 requests of two identities", n)
			}
		})
	}

	t.Run("entries expire", func(t *testing.T) {
		token := tokenService(t)
		gw := serveGateway(t, oneRoute(upstream.URL(), cachedToken(ids[2], redisResource(proxy.port(), ""), token.URL(), ", ttl: 1")), gatewayOptions{})
		get(t, gw.URL+"/", identity("c", "t"))
		get(t, gw.URL+"/", identity("c", "t"))
		if n := token.count(); n != 1 {
			t.Fatalf("token fetched %d times before expiry, want 1", n)
		}
		time.Sleep(1100 * time.Millisecond) // the 1 s TTL
		get(t, gw.URL+"/", identity("c", "t"))
		if n := token.count(); n != 2 {
			t.Errorf("token fetched %d times after expiry, want 2", n)
		}
	})

	t.Run("a failing token call is not cached", func(t *testing.T) {
		var failed bool
		token := newFake(t, func(w http.ResponseWriter, r *http.Request) {
			if !failed {
				failed = true // one request at a time: no lock needed
				w.WriteHeader(500)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"token":"good"}`)
		})
		gw := serveGateway(t, oneRoute(upstream.URL(), cachedToken(ids[3], redisResource(proxy.port(), ""), token.URL(), "")), gatewayOptions{})
		if resp, body := get(t, gw.URL+"/", identity("c", "t")); resp.StatusCode != 500 || errorOf(t, body) != "non-2XX response code: 500" {
			t.Fatalf("first request = %d %s, want the token call's failure", resp.StatusCode, body)
		}
		if resp, body := get(t, gw.URL+"/", identity("c", "t")); resp.StatusCode != 200 || body != `{"token":"good"}` || token.count() != 2 {
			t.Errorf("second request = %d %s after %d token calls, want a fresh fetch", resp.StatusCode, body, token.count())
		}
	})

	t.Run("a 2 MiB value", func(t *testing.T) {
		big := `{"token":"` + strings.Repeat("x", 2<<20) + `"}`
		token := newFake(t, answer(200, "application/json", big))
		for j, bypass := range []string{"", ", bypass_on_error: true"} {
			gw := serveGateway(t, oneRoute(upstream.URL(), cachedToken(ids[4+j], redisResource(proxy.port(), ""), token.URL(), bypass)), gatewayOptions{})
			resp, body := get(t, gw.URL+"/", identity("c", "t"))
			if bypass == "" {
				if f := failureOf(t, body); resp.StatusCode != 500 || f.Node.Name != "SET" ||
					f.Error != "cache backend error: entry of 2097164 bytes exceeds the limit of 1048576 bytes" {
					t.Errorf("without bypass: %d %.300s, want a cache backend error at SET", resp.StatusCode, body)
				}
				continue
			}
			if resp.StatusCode != 200 || body != big {
				t.Errorf("with bypass: %d %.100s, want the token", resp.StatusCode, body)
			}
		}
	})

	t.Run("Redis faults and recovery", func(t *testing.T) {
		token := tokenService(t)
		strict := serveGateway(t, oneRoute(upstream.URL(), cachedToken(ids[6], redisResource(proxy.port(), ""), token.URL(), "")), gatewayOptions{})
		lenient := serveGateway(t, oneRoute(upstream.URL(), `          - name: datakit
            id: `+ids[7]+`
            config:
              debug: true
              resources: {cache: `+redisResource(proxy.port(), "")+`}
              nodes:
                - {name: GET, type: cache, bypass_on_error: true, inputs: {key: request.query.key}}
                - {name: SET, type: cache, bypass_on_error: true, inputs: {key: request.query.key, data: request.query.value}}
                - {name: EXIT, type: exit, inputs: {body: GET}}
`), gatewayOptions{})
		if resp, body := get(t, strict.URL+"/", identity("c", "t")); resp.StatusCode != 200 {
			t.Fatalf("with Redis up: %d %s", resp.StatusCode, body)
		}
		for _, fault := range []struct {
			name string
			mode int32
		}{{"black hole", proxyBlackHole}, {"down", proxyDown}} {
			proxy.set(fault.mode)
			resp, body, d := timed(t, strict.URL+"/", identity("c", "t"))
			t.Logf("%s: %v: %s", fault.name, d, body)
			// Spec: within 2 s (the 2000 ms timeouts); +1 s margin.
			if f := failureOf(t, body); resp.StatusCode != 500 || f.Node.Name != "GET" || !strings.HasPrefix(f.Error, "cache backend error: ") || d > 3*time.Second {
				t.Errorf("%s: %d %s after %v, want a cache backend error at GET within 2 s", fault.name, resp.StatusCode, body, d)
			}
			resp, body, d = timed(t, lenient.URL+"/?key=k", nil)
			if resp.StatusCode != 200 || body != `{"data":null,"hit":false,"miss":true,"stored":false}` || d > 3*time.Second {
				t.Errorf("%s with bypass_on_error: %d %s after %v, want a miss within 2 s", fault.name, resp.StatusCode, body, d)
			}
		}
		proxy.set(proxyForward)
		if resp, body := get(t, strict.URL+"/", identity("c", "t")); resp.StatusCode != 200 || body != `{"token":"tok-c-t"}` {
			t.Errorf("after recovery: %d %s", resp.StatusCode, body)
		}
		if resp, body := get(t, lenient.URL+"/?key=k&value=v", nil); resp.StatusCode != 200 {
			t.Errorf("after recovery, set: %d %s", resp.StatusCode, body)
		}
		if _, body := get(t, lenient.URL+"/?key=k", nil); body != `{"data":"v","hit":true,"miss":false,"stored":false}` {
			t.Errorf("after recovery, get: %s", body)
		}
	})

	t.Run("two plugin instances never share entries", func(t *testing.T) {
		for _, s := range strategies {
			a, b := uuid(), uuid()
			if s.name == "redis" {
				ids := redisPluginIDs(t, 2)
				a, b = ids[0], ids[1]
			}
			instance := func(route, id string) string {
				return `      - name: ` + route + `
        paths: ["/` + route + `"]
        plugins:
          - name: datakit
            id: ` + id + `
            config:
              resources: {cache: ` + s.resource + `}
              nodes:
                - {name: C, type: cache, inputs: {key: request.query.key, data: request.query.value}}
                - {name: EXIT, type: exit, inputs: {body: C}}
`
			}
			gw := serveGateway(t, `_format_version: "3.0"
services:
  - name: api
    url: `+upstream.URL()+`
    routes:
`+instance("a", a)+instance("b", b), gatewayOptions{})
			get(t, gw.URL+"/a?key=shared&value=from-a", nil)
			_, fromA := get(t, gw.URL+"/a?key=shared", nil)
			_, fromB := get(t, gw.URL+"/b?key=shared", nil)
			var hitA, hitB struct{ Hit bool }
			_ = json.Unmarshal([]byte(fromA), &hitA)
			_ = json.Unmarshal([]byte(fromB), &hitB)
			if !hitA.Hit || hitB.Hit {
				t.Errorf("%s: instance a %s, instance b %s; want a hit in a only", s.name, fromA, fromB)
			}
		}
	})
}
