package nodes

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/datakit-gateway/datakit/engine"
)

// fakeClock is a settable clock for memory expiry.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// newTestStores returns cache stores on a fake clock, closed after the test.
func newTestStores(t *testing.T) (*CacheStores, *fakeClock) {
	t.Helper()
	clock := &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	s := NewCacheStores()
	s.now = clock.now
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("CacheStores.Close() = %v", err)
		}
	})
	return s, clock
}

func memoryResource(dict string) *cacheResource {
	return &cacheResource{strategy: cacheMemory, strategyGiven: true, dictionary: dict}
}

// decodeCache decodes a cache node's attributes against res.
func decodeCache(stores *CacheStores, res *cacheResource, values map[string]any) (*engine.Decl, []error) {
	return engine.DecodeAttrs(testLoc, values, engine.KindFunc(func(a *engine.Attrs) *engine.Decl {
		return cacheDecl(Deps{Caches: stores}, a, res)
	}))
}

// buildCache decodes and builds a cache node of the plugin instance pluginID.
func buildCache(t *testing.T, stores *CacheStores, res *cacheResource, values map[string]any, pluginID string) *cacheNode {
	t.Helper()
	d, errs := decodeCache(stores, res, values)
	if len(errs) > 0 {
		t.Fatalf("Decode(%v) = %v, want no errors", values, errs)
	}
	n, err := d.Build(&engine.BuildInfo{Name: "N", PluginID: pluginID, InputFields: cacheInputs, InputConnected: true})
	if err != nil {
		t.Fatalf("Build = %v", err)
	}
	return n.(*cacheNode)
}

// cacheRun runs n with the inputs key, ttl, data and renders the outputs.
func cacheRun(env *engine.Env, n engine.Node, key, ttl, data any) (string, error) {
	outs, err := n.Run(context.Background(), env, []any{key, ttl, data})
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("hit=%v miss=%v stored=%v data=%s", outs[0], outs[1], outs[2], jsonText(outs[3])), nil
}

const (
	cacheMiss   = "hit=false miss=true stored=false data=null"
	cacheFailed = "hit=false miss=false stored=false"
)

func cacheHit(data string) string    { return "hit=true miss=false stored=false data=" + data }
func cacheStored(data string) string { return "hit=false miss=false stored=true data=" + data }

func TestCacheDecode(t *testing.T) {
	stores, _ := newTestStores(t)
	tests := []struct {
		name   string
		res    *cacheResource
		values map[string]any
		want   []string
	}{
		{"no resource", nil, map[string]any{},
			[]string{"type: cache nodes require resources.cache.strategy"}},
		{"no strategy", &cacheResource{dictionary: cacheDefaultDictionary}, map[string]any{"ttl": 5},
			[]string{"type: cache nodes require resources.cache.strategy"}},
		// An invalid strategy is reported once, by the resource.
		{"invalid strategy", &cacheResource{strategyGiven: true}, map[string]any{}, nil},
		{"ttl zero", memoryResource("d"), map[string]any{"ttl": 0}, []string{"ttl: must be at least 1, got 0"}},
		{"ttl fraction", memoryResource("d"), map[string]any{"ttl": 1.5}, []string{"ttl: expected integer, got number"}},
		{"ttl string", memoryResource("d"), map[string]any{"ttl": "5"}, []string{"ttl: expected integer, got string"}},
		{"bypass", memoryResource("d"), map[string]any{"bypass_on_error": "yes"}, []string{"bypass_on_error: expected boolean, got string"}},
		{"unknown", memoryResource("d"), map[string]any{"strategy": "memory"}, []string{"strategy: unknown field"}},
		{"valid", memoryResource("d"), map[string]any{"ttl": 5.0, "bypass_on_error": true}, nil},
		{"nulls", memoryResource("d"), map[string]any{"ttl": nil, "bypass_on_error": nil}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs := decodeCache(stores, tt.res, tt.values)
			if got := errStrings(errs); !slices.Equal(got, tt.want) {
				t.Errorf("Decode(%v) = %q, want %q", tt.values, got, tt.want)
			}
		})
	}
}

func TestCacheDecl(t *testing.T) {
	stores, _ := newTestStores(t)
	for _, tt := range []struct {
		res   *cacheResource
		async bool
	}{
		{memoryResource("d"), false},
		{&cacheResource{strategy: cacheRedis, strategyGiven: true}, true},
	} {
		d, errs := decodeCache(stores, tt.res, nil)
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		if d.Async != tt.async {
			t.Errorf("%s: Async = %v, want %v", tt.res.strategy, d.Async, tt.async)
		}
		if d.IO != engine.KeyInput|engine.KeyInputs|engine.KeyOutput|engine.KeyOutputs {
			t.Errorf("IO = %v, want all four keys", d.IO)
		}
		if !reflect.DeepEqual(d.Inputs, cacheInputs) || !reflect.DeepEqual(d.Outputs, cacheOutputs) {
			t.Errorf("fields = %v -> %v", d.Inputs, d.Outputs)
		}
	}
	if fmt.Sprint(cacheInputs) != "[{key string} {ttl number} {data any}]" ||
		fmt.Sprint(cacheOutputs) != "[{hit boolean} {miss boolean} {stored boolean} {data any}]" {
		t.Errorf("fields = %v -> %v, want spec §3.3", cacheInputs, cacheOutputs)
	}
}

func TestCacheMemoryGetSet(t *testing.T) {
	stores, clock := newTestStores(t)
	n := buildCache(t, stores, memoryResource("d"), map[string]any{"ttl": 200}, "p1")
	env := testEnv(nil)
	steps := []struct {
		advance   time.Duration
		key       any
		ttl, data any
		want      string
	}{
		{0, "k", nil, nil, cacheMiss},
		{0, "k", nil, map[string]any{"a": []any{1, "x", nil}, "b": 1.5}, cacheStored(`{"a":[1,"x",null],"b":1.5}`)},
		{0, "k", nil, nil, cacheHit(`{"a":[1,"x",null],"b":1.5}`)},
		{0, "other", nil, nil, cacheMiss},
		// The attribute's TTL: 200 s.
		{199 * time.Second, "k", nil, nil, cacheHit(`{"a":[1,"x",null],"b":1.5}`)},
		{time.Second, "k", nil, nil, cacheMiss},
		// The ttl input overrides it, fractions truncated.
		{0, "k", 10.9, "v", cacheStored(`"v"`)},
		{9 * time.Second, "k", nil, nil, cacheHit(`"v"`)},
		{time.Second, "k", nil, nil, cacheMiss},
		// Overwrite; false and 0 are data too (only null is GET).
		{0, "k", nil, false, cacheStored(`false`)},
		{0, "k", nil, 0, cacheStored(`0`)},
		{0, "k", nil, nil, cacheHit(`0`)},
	}
	for i, s := range steps {
		clock.advance(s.advance)
		got, err := cacheRun(env, n, s.key, s.ttl, s.data)
		if err != nil || got != s.want {
			t.Fatalf("step %d: Run(%v, %v, %v) = %q, %v; want %q", i, s.key, s.ttl, s.data, got, err, s.want)
		}
	}
}

// A hit returns a fresh value each time: a consumer changing it cannot
// change the entry.
func TestCacheMemoryHitIsACopy(t *testing.T) {
	stores, _ := newTestStores(t)
	n := buildCache(t, stores, memoryResource("d"), nil, "p")
	env := testEnv(nil)
	data := map[string]any{"a": 1}
	if _, err := cacheRun(env, n, "k", nil, data); err != nil {
		t.Fatal(err)
	}
	data["a"] = 2
	outs, err := n.Run(context.Background(), env, []any{"k", nil, nil})
	if err != nil {
		t.Fatal(err)
	}
	outs[3].(map[string]any)["a"] = 3
	if got, _ := cacheRun(env, n, "k", nil, nil); got != cacheHit(`{"a":1}`) {
		t.Errorf("Run = %q, want %q", got, cacheHit(`{"a":1}`))
	}
}

func TestCacheDefaultTTL(t *testing.T) {
	stores, clock := newTestStores(t)
	n := buildCache(t, stores, memoryResource("d"), nil, "p")
	env := testEnv(nil)
	if _, err := cacheRun(env, n, "k", nil, "v"); err != nil {
		t.Fatal(err)
	}
	clock.advance(300*time.Second - time.Nanosecond)
	if got, _ := cacheRun(env, n, "k", nil, nil); got != cacheHit(`"v"`) {
		t.Errorf("just before 300 s: %q", got)
	}
	clock.advance(time.Nanosecond)
	if got, _ := cacheRun(env, n, "k", nil, nil); got != cacheMiss {
		t.Errorf("at 300 s: %q, want a miss", got)
	}
}

func TestCacheTTLInput(t *testing.T) {
	n := &cacheNode{ttl: 42 * time.Second}
	tests := []struct {
		in   any
		want time.Duration
		err  string
	}{
		{nil, 42 * time.Second, ""},
		{1, time.Second, ""},
		{100, 100 * time.Second, ""},
		{int64(7), 7 * time.Second, ""},
		{1.0, time.Second, ""},
		{2.999, 2 * time.Second, ""},
		{1e300, cacheMaxTTL, ""},
		{0, 0, "invalid ttl: 0"},
		{-5, 0, "invalid ttl: -5"},
		{0.5, 0, "invalid ttl: 0.5"},
		{-1.5, 0, "invalid ttl: -1.5"},
		{"10", 0, `invalid ttl: "10"`},
		{true, 0, "invalid ttl: true"},
	}
	for _, tt := range tests {
		got, err := n.ttlFor(tt.in)
		if got != tt.want || errText(err) != tt.err {
			t.Errorf("ttlFor(%#v) = %v, %q; want %v, %q", tt.in, got, errText(err), tt.want, tt.err)
		}
	}
	stores, _ := newTestStores(t)
	if got := buildCache(t, stores, memoryResource("d"), map[string]any{"ttl": int64(1) << 62}, "p").ttl; got != cacheMaxTTL {
		t.Errorf("ttl attribute 2^62 = %v, want %v", got, cacheMaxTTL)
	}
}

func TestCacheInvalidTTLFailsTheNode(t *testing.T) {
	stores, _ := newTestStores(t)
	// Not a backend error: bypass_on_error does not apply.
	n := buildCache(t, stores, memoryResource("d"), map[string]any{"bypass_on_error": true}, "p")
	if _, err := cacheRun(testEnv(nil), n, "k", 0.25, "v"); errText(err) != "invalid ttl: 0.25" {
		t.Errorf("Run = %v, want invalid ttl: 0.25", err)
	}
	if got, _ := cacheRun(testEnv(nil), n, "k", nil, nil); got != cacheMiss {
		t.Errorf("after an invalid ttl: %q, want nothing stored", got)
	}
}

func TestCacheKeyRequired(t *testing.T) {
	stores, _ := newTestStores(t)
	n := buildCache(t, stores, memoryResource("d"), map[string]any{"bypass_on_error": true}, "p")
	for _, key := range []any{nil, ""} {
		for _, data := range []any{nil, "v"} {
			if _, err := cacheRun(testEnv(nil), n, key, nil, data); errText(err) != "cache key is required" {
				t.Errorf("Run(key %#v, data %#v) = %v, want cache key is required", key, data, err)
			}
		}
	}
}

func TestCacheKeysAreNamespaced(t *testing.T) {
	stores, _ := newTestStores(t)
	a := buildCache(t, stores, memoryResource("shared"), nil, "plugin-a")
	a2 := buildCache(t, stores, memoryResource("shared"), nil, "plugin-a") // another plan of the same instance
	b := buildCache(t, stores, memoryResource("shared"), nil, "plugin-b")
	other := buildCache(t, stores, memoryResource("other"), nil, "plugin-a")
	env := testEnv(nil)
	if _, err := cacheRun(env, a, "k", nil, "from a"); err != nil {
		t.Fatal(err)
	}
	for name, tt := range map[string]struct {
		n    *cacheNode
		want string
	}{
		"same instance, same dictionary": {a2, cacheHit(`"from a"`)},
		"another instance":               {b, cacheMiss},
		"another dictionary":             {other, cacheMiss},
	} {
		if got, _ := cacheRun(env, tt.n, "k", nil, nil); got != tt.want {
			t.Errorf("%s: %q, want %q", name, got, tt.want)
		}
	}
	// datakit:<plugin id>:<sha256 of key, lower-case hex>, holding JSON text.
	sum := sha256.Sum256([]byte("k"))
	key := "datakit:plugin-a:" + hex.EncodeToString(sum[:])
	m, _ := stores.memoryDict("shared")
	v, ok, _ := m.get(context.Background(), key)
	if !ok || string(v) != `"from a"` {
		t.Errorf("entry %s = %q, %v; want \"from a\"", key, v, ok)
	}
	if m.len() != 1 {
		t.Errorf("dictionary holds %d entries, want 1", m.len())
	}
}

func TestMemoryStoreLRU(t *testing.T) {
	clock := &fakeClock{}
	m := newMemoryStore(3, clock.now)
	ctx := context.Background()
	set := func(k string) {
		if err := m.set(ctx, k, []byte(`"`+k+`"`), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	has := func(k string) bool {
		_, ok, _ := m.get(ctx, k)
		return ok
	}
	set("a")
	set("b")
	set("c")
	has("a") // a is now the most recently used
	set("d") // evicts b
	for k, want := range map[string]bool{"a": true, "b": false, "c": true, "d": true} {
		if has(k) != want {
			t.Errorf("has(%s) = %v, want %v", k, !want, want)
		}
	}
	set("c") // an update refreshes, no eviction
	if m.len() != 3 {
		t.Errorf("len = %d, want 3", m.len())
	}
	set("e") // evicts the least recently used
	if m.len() != 3 || !has("e") || !has("c") {
		t.Errorf("len = %d, want 3", m.len())
	}
	// Expired entries are removed when read.
	clock.advance(time.Minute)
	if has("e") || m.len() != 2 {
		t.Errorf("expired entry read as present, or kept (len %d)", m.len())
	}
}

func TestMemoryDictionaryHoldsTenThousandEntries(t *testing.T) {
	stores, _ := newTestStores(t)
	n := buildCache(t, stores, memoryResource("d"), nil, "p")
	env := testEnv(nil)
	for i := range cacheMaxEntries + 1 {
		if _, err := cacheRun(env, n, fmt.Sprint(i), nil, i); err != nil {
			t.Fatal(err)
		}
	}
	m, _ := stores.memoryDict("d")
	if m.len() != cacheMaxEntries {
		t.Errorf("len = %d, want %d", m.len(), cacheMaxEntries)
	}
	if got, _ := cacheRun(env, n, "0", nil, nil); got != cacheMiss {
		t.Errorf("oldest entry: %q, want evicted", got)
	}
	if got, _ := cacheRun(env, n, "1", nil, nil); got != cacheHit("1") {
		t.Errorf("second entry: %q, want kept", got)
	}
}

func TestCacheEntrySizeLimit(t *testing.T) {
	stores, _ := newTestStores(t)
	fits := strings.Repeat("x", cacheMaxEntryBytes-2) // with its quotes: exactly 1 MiB
	over := fits + "x"
	n := buildCache(t, stores, memoryResource("d"), nil, "p")
	env := testEnv(nil)
	if got, err := cacheRun(env, n, "fits", nil, fits); err != nil || !strings.HasPrefix(got, "hit=false miss=false stored=true") {
		t.Errorf("1 MiB entry: %q, %v; want stored", got, err)
	}
	_, err := cacheRun(env, n, "over", nil, over)
	want := "cache backend error: entry of 1048577 bytes exceeds the limit of 1048576 bytes"
	if errText(err) != want {
		t.Errorf("over 1 MiB: %v, want %s", err, want)
	}

	var logs bytes.Buffer
	bypass := buildCache(t, stores, memoryResource("d"), map[string]any{"bypass_on_error": true}, "p")
	env = &engine.Env{Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	got, err := cacheRun(env, bypass, "over", nil, over)
	if err != nil || got != cacheFailed+` data="`+over+`"` {
		t.Errorf("bypass: %.80q…, %v; want stored=false", got, err)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), want) || !strings.Contains(logs.String(), "node=N") {
		t.Errorf("log = %q, want a warning naming the node and the error", logs.String())
	}
	if got, _ := cacheRun(env, bypass, "over", nil, nil); got != cacheMiss {
		t.Errorf("oversized entry was stored: %q", got[:40])
	}
}

func TestCacheUndecodableEntry(t *testing.T) {
	stores, _ := newTestStores(t)
	n := buildCache(t, stores, memoryResource("d"), nil, "p")
	m, _ := stores.memoryDict("d")
	if err := m.set(context.Background(), n.storeKey("k"), []byte(`{"a":`), time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := cacheRun(testEnv(nil), n, "k", nil, nil); !strings.HasPrefix(errText(err), "cache backend error: invalid cached value: ") {
		t.Errorf("Run = %v, want a backend error", err)
	}
	n.bypass = true
	if got, err := cacheRun(testEnv(nil), n, "k", nil, nil); err != nil || got != cacheMiss {
		t.Errorf("bypass: %q, %v; want a miss", got, err)
	}
}

func TestCacheConcurrentRuns(t *testing.T) {
	stores, _ := newTestStores(t)
	n := buildCache(t, stores, memoryResource("d"), nil, "p")
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			for j := range 200 {
				key := fmt.Sprint(j % 20)
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

func TestCacheStoresAfterClose(t *testing.T) {
	s := NewCacheStores()
	d, errs := decodeCache(s, memoryResource("d"), nil)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Build(&engine.BuildInfo{Name: "N", PluginID: "p"}); err != errCacheStoresClosed {
		t.Errorf("Build after Close = %v, want %v", err, errCacheStoresClosed)
	}
}
