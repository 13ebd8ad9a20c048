package nodes

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/datakit-gateway/datakit/engine"
)

// Cache node defaults and limits (spec §7.7, hardening §2.9).
const (
	cacheDefaultTTL = 300 * time.Second
	// cacheMaxTTL caps a TTL so that it stays a valid duration and Redis
	// expiry (about 68 years; larger values are clamped).
	cacheMaxTTL = math.MaxInt32 * time.Second
)

// The cache node's fields (spec §3.3), in order.
var (
	cacheInputs = []engine.Field{
		{Name: "key", Type: engine.TypeString},
		{Name: "ttl", Type: engine.TypeNumber},
		{Name: "data", Type: engine.TypeAny},
	}
	cacheOutputs = []engine.Field{
		{Name: "hit", Type: engine.TypeBoolean},
		{Name: "miss", Type: engine.TypeBoolean},
		{Name: "stored", Type: engine.TypeBoolean},
		{Name: "data", Type: engine.TypeAny},
	}
)

// Positions of the inputs in Run's in slice (the fixed inputs, in order).
const (
	cacheInKey = iota
	cacheInTTL
	cacheInData
)

// errCacheKey is a GET or SET without a usable key.
var errCacheKey = errors.New("cache key is required")

// cacheKind returns the cache node type (spec §7.7): GET or SET of a JSON
// value in the store of resources.cache. Redis nodes run concurrently.
func cacheKind(deps Deps) engine.Kind {
	return engine.KindFunc(func(a *engine.Attrs) *engine.Decl {
		res, _ := a.Resource("cache").(*cacheResource)
		return cacheDecl(deps, a, res)
	})
}

// cacheDecl decodes a cache node's attributes given the decoded
// resources.cache (nil when absent).
func cacheDecl(deps Deps, a *engine.Attrs, res *cacheResource) *engine.Decl {
	if res == nil || !res.strategyGiven {
		a.Errorf("type", "cache nodes require resources.cache.strategy")
	}
	ttl := a.Int("ttl", 0, 1, math.MaxInt64) // seconds; 0: unset
	bypass := a.Bool("bypass_on_error", false)
	d := &engine.Decl{
		IO:      engine.KeyInput | engine.KeyInputs | engine.KeyOutput | engine.KeyOutputs,
		Inputs:  slices.Clone(cacheInputs), // the engine owns what it is given
		Outputs: slices.Clone(cacheOutputs),
		Async:   res != nil && res.strategy == cacheRedis, // network I/O
	}
	d.Build = func(b *engine.BuildInfo) (engine.Node, error) {
		if res == nil || res.strategy == "" {
			// Unreachable: Decode recorded an error, so nothing is built.
			return nil, errors.New("resources.cache.strategy is not set")
		}
		n := &cacheNode{
			name:   b.Name,
			prefix: "datakit:" + b.PluginID + ":",
			ttl:    cacheDefaultTTL,
			bypass: bypass,
		}
		n.metrics = nodeMetrics(b)
		if ttl > 0 {
			n.ttl = time.Duration(min(ttl, int64(cacheMaxTTL/time.Second))) * time.Second
		}
		var err error
		if res.strategy == cacheRedis && !deps.Offline {
			n.store, err = deps.Caches.redisServer(res.redis)
		} else {
			n.store, err = deps.Caches.memoryDict(res.dictionary)
		}
		if err != nil {
			return nil, err
		}
		return n, nil
	}
	return d
}

// cacheNode is a compiled cache node; immutable and safe for concurrent use.
type cacheNode struct {
	name   string
	prefix string        // "datakit:<plugin id>:"
	ttl    time.Duration // the attribute, else the default
	bypass bool
	store  cacheBackend
	// metrics count GETs (nil: not recorded); a bypassed backend error
	// answers, and so counts, as a miss.
	metrics Metrics
}

var _ engine.Node = (*cacheNode)(nil)

// Run stores the data input (SET) or looks the key up (GET) and returns
// hit, miss, stored and data.
func (n *cacheNode) Run(ctx context.Context, env *engine.Env, in []any) ([]any, error) {
	input := func(i int) any {
		if i < len(in) {
			return in[i]
		}
		return nil
	}
	key, _ := input(cacheInKey).(string)
	if key == "" {
		return nil, errCacheKey
	}
	key = n.storeKey(key)
	if data := input(cacheInData); data != nil {
		ttl, err := n.ttlFor(input(cacheInTTL))
		if err != nil {
			return nil, err
		}
		stored := true
		if err := n.set(ctx, key, data, ttl); err != nil {
			if err := n.backendError(env, err); err != nil {
				return nil, err
			}
			stored = false
		}
		return []any{false, false, stored, data}, nil
	}
	data, hit, err := n.get(ctx, key)
	if err != nil {
		if err := n.backendError(env, err); err != nil {
			return nil, err
		}
	}
	if n.metrics != nil {
		result := "miss"
		if hit {
			result = "hit"
		}
		n.metrics.CacheLookup(n.name, result)
	}
	return []any{hit, !hit, false, data}, nil
}

// storeKey namespaces a key per plugin instance; hashing bounds its length
// and keeps request data out of the store's key space.
func (n *cacheNode) storeKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return n.prefix + hex.EncodeToString(sum[:])
}

// ttlFor is the TTL of a SET: the ttl input (a number ≥ 1, fractions
// truncated), else the attribute, else 300 s.
func (n *cacheNode) ttlFor(v any) (time.Duration, error) {
	if v == nil {
		return n.ttl, nil
	}
	var secs float64
	switch x := v.(type) {
	case int:
		secs = float64(x)
	case int64:
		secs = float64(x)
	case float64:
		secs = x
	}
	if !(secs >= 1) { // non-numbers too, though the engine's type check keeps them out
		b, _ := engine.EncodeJSON(v)
		return 0, fmt.Errorf("invalid ttl: %s", b)
	}
	if secs >= float64(cacheMaxTTL/time.Second) {
		return cacheMaxTTL, nil
	}
	return time.Duration(math.Trunc(secs)) * time.Second, nil
}

func (n *cacheNode) set(ctx context.Context, key string, data any, ttl time.Duration) error {
	b, err := engine.EncodeJSON(data)
	if err != nil {
		return err
	}
	if len(b) > cacheMaxEntryBytes {
		return fmt.Errorf("entry of %d bytes exceeds the limit of %d bytes", len(b), cacheMaxEntryBytes)
	}
	return n.store.set(ctx, key, b, ttl)
}

func (n *cacheNode) get(ctx context.Context, key string) (any, bool, error) {
	b, ok, err := n.store.get(ctx, key)
	if err != nil || !ok {
		return nil, false, err
	}
	v, err := engine.DecodeJSON(b)
	if err != nil {
		return nil, false, fmt.Errorf("invalid cached value: %w", err)
	}
	return v, true, nil
}

// backendError fails the node with `cache backend error: …`, or with
// bypass_on_error logs it as a warning and returns nil (spec §7.7).
func (n *cacheNode) backendError(env *engine.Env, err error) error {
	err = fmt.Errorf("cache backend error: %w", err)
	if !n.bypass {
		return err
	}
	env.Logger.Warn("datakit cache backend error bypassed", "node", n.name, "error", err.Error())
	return nil
}
