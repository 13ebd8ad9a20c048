package nodes

import (
	"container/list"
	"context"
	"errors"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Memory cache limits (spec §5.5, §8.1).
const (
	cacheMaxEntries    = 10000
	cacheMaxEntryBytes = 1 << 20
)

// errCacheStoresClosed is a Build of a cache node after CacheStores.Close.
var errCacheStoresClosed = errors.New("cache stores are closed")

// CacheStores holds the cache backends of a process: the memory dictionaries
// by name, shared by every cache node naming the same dictionary, and one
// Redis client per distinct Redis configuration, shared likewise. Create one
// per process with NewCacheStores, hand it to Register through Deps.Caches
// (plans compiled on reload keep their entries and connections) and Close it
// at shutdown. Safe for concurrent use.
type CacheStores struct {
	// now is the clock of memory entries' expiry; tests replace it.
	now func() time.Time

	mu     sync.Mutex
	memory map[string]*memoryStore
	redis  map[redisConfig]*redisStore
	closed bool
}

// NewCacheStores returns an empty set of cache stores.
func NewCacheStores() *CacheStores {
	return &CacheStores{now: time.Now, memory: map[string]*memoryStore{}, redis: map[redisConfig]*redisStore{}}
}

// Close closes the Redis clients. Cache nodes built earlier then fail with
// a backend error; building new ones fails.
func (s *CacheStores) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	var errs []error
	for _, r := range s.redis {
		errs = append(errs, r.client.Close())
	}
	clear(s.redis)
	return errors.Join(errs...)
}

// memoryDict returns the memory dictionary of that name, creating it.
func (s *CacheStores) memoryDict(name string) (*memoryStore, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errCacheStoresClosed
	}
	m := s.memory[name]
	if m == nil {
		m = newMemoryStore(cacheMaxEntries, s.now)
		s.memory[name] = m
	}
	return m, nil
}

// redisServer returns the client of that configuration, creating it. A new
// client dials lazily, so an unreachable server is a runtime backend error.
func (s *CacheStores) redisServer(c redisConfig) (*redisStore, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errCacheStoresClosed
	}
	r := s.redis[c]
	if r == nil {
		r = &redisStore{client: redis.NewClient(c.options())}
		s.redis[c] = r
	}
	return r, nil
}

// cacheBackend stores JSON texts under namespaced keys.
type cacheBackend interface {
	// get returns the stored text; ok is false on a miss.
	get(ctx context.Context, key string) (value []byte, ok bool, err error)
	// set stores value for ttl.
	set(ctx context.Context, key string, value []byte, ttl time.Duration) error
}

// memoryStore is an in-process LRU dictionary whose entries expire, checked
// on read. Safe for concurrent use.
type memoryStore struct {
	max int
	now func() time.Time

	mu      sync.Mutex
	lru     *list.List // of *memoryEntry, most recently used first
	entries map[string]*list.Element
}

type memoryEntry struct {
	key     string
	value   []byte // never modified once stored
	expires time.Time
}

var _ cacheBackend = (*memoryStore)(nil)

func newMemoryStore(maxEntries int, now func() time.Time) *memoryStore {
	return &memoryStore{max: maxEntries, now: now, lru: list.New(), entries: map[string]*list.Element{}}
}

func (m *memoryStore) get(_ context.Context, key string) ([]byte, bool, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	el := m.entries[key]
	if el == nil {
		return nil, false, nil
	}
	e := el.Value.(*memoryEntry)
	if !now.Before(e.expires) {
		m.lru.Remove(el)
		delete(m.entries, key)
		return nil, false, nil
	}
	m.lru.MoveToFront(el)
	return e.value, true, nil
}

func (m *memoryStore) set(_ context.Context, key string, value []byte, ttl time.Duration) error {
	expires := m.now().Add(ttl)
	m.mu.Lock()
	defer m.mu.Unlock()
	if el := m.entries[key]; el != nil {
		e := el.Value.(*memoryEntry)
		e.value, e.expires = value, expires
		m.lru.MoveToFront(el)
		return nil
	}
	m.entries[key] = m.lru.PushFront(&memoryEntry{key: key, value: value, expires: expires})
	for m.lru.Len() > m.max {
		oldest := m.lru.Back()
		m.lru.Remove(oldest)
		delete(m.entries, oldest.Value.(*memoryEntry).key)
	}
	return nil
}

// len is the number of entries held, expired ones included.
func (m *memoryStore) len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lru.Len()
}

// redisStore is a shared go-redis client; safe for concurrent use.
type redisStore struct {
	client *redis.Client
}

var _ cacheBackend = (*redisStore)(nil)

func (r *redisStore) get(ctx context.Context, key string) ([]byte, bool, error) {
	b, err := r.client.Get(ctx, key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return b, true, nil
}

// set writes `SET key value EX ttl`: ttl is whole seconds.
func (r *redisStore) set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	return r.client.Do(ctx, "SET", key, value, "EX", int64(ttl/time.Second)).Err()
}
