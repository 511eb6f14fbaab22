// Package cache is the module's one in-process cache: a small typed wrapper over
// github.com/dgraph-io/ristretto/v2. It is the only package that imports ristretto, so the
// cache library can change in this one file.
//
// What the wrapper adds to ristretto:
//
//   - Capacity counts entries: every entry costs 1 and ristretto's internal per-item cost
//     is ignored, so MaxItems is a number of entries, not of bytes.
//   - Store makes a value visible to the next Get in steady state: ristretto buffers new
//     entries and may drop them under contention; Store retries a dropped set once and
//     waits until the buffer is applied.
//   - Close is safe to call concurrently with every other method and idempotent; after it
//     the cache holds nothing, Get misses and Set does nothing. ristretto's own Close is
//     not safe against concurrent use (it closes the channels Get and Set send on).
//   - Metrics survive Clear and Close.
package cache

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/dgraph-io/ristretto/v2"
)

// ErrInvalidConfig reports a configuration rejected by New.
var ErrInvalidConfig = errors.New("cache: invalid config")

// Key is the set of key types the cache accepts.
type Key interface {
	~string | ~uint64 | ~int64 | ~int | ~uint32 | ~int32
}

// DefaultBufferItems is the size of ristretto's per-stripe read buffers; 64 is the value
// ristretto recommends for nearly every use.
const DefaultBufferItems = 64

// countersPerItem is how many admission counters ristretto keeps per entry of capacity
// (ristretto recommends 10; each costs about 3 bytes).
const countersPerItem = 10

// Config configures a Cache. The zero value is invalid: MaxItems is required.
type Config struct {
	// MaxItems bounds the number of entries. Required, > 0. Memory for the admission
	// counters is about 30 bytes per item of capacity, allocated up front.
	MaxItems int64
	// TTL is the lifetime of an entry set with Set or Store; 0 means entries never expire.
	// Must not be negative. ristretto measures it on the wall clock (time.Now), which
	// cannot be replaced: a caller that needs a simulated clock keeps the load time in the
	// value and treats this TTL as the hard expiry.
	TTL time.Duration
}

func (c Config) validate() error {
	if c.MaxItems <= 0 {
		return fmt.Errorf("%w: MaxItems must be > 0, got %d", ErrInvalidConfig, c.MaxItems)
	}
	if c.TTL < 0 {
		return fmt.Errorf("%w: TTL must not be negative, got %s", ErrInvalidConfig, c.TTL)
	}
	return nil
}

// Metrics is a snapshot of a cache's counters since New (Clear does not reset them).
type Metrics struct {
	// Hits and Misses count Get calls that found / did not find a live entry.
	Hits, Misses uint64
	// KeysAdded counts new entries admitted; KeysUpdated counts sets of an existing key.
	KeysAdded, KeysUpdated uint64
	// KeysEvicted counts entries removed to make room or because their TTL passed.
	KeysEvicted uint64
	// SetsDropped counts sets lost because ristretto's set buffer was full;
	// SetsRejected counts new entries the admission policy refused.
	SetsDropped, SetsRejected uint64
}

// HitRatio returns Hits / (Hits + Misses), or 0 before the first Get.
func (m Metrics) HitRatio() float64 {
	if m.Hits+m.Misses == 0 {
		return 0
	}
	return float64(m.Hits) / float64(m.Hits+m.Misses)
}

func (m Metrics) plus(o Metrics) Metrics {
	return Metrics{
		Hits: m.Hits + o.Hits, Misses: m.Misses + o.Misses,
		KeysAdded: m.KeysAdded + o.KeysAdded, KeysUpdated: m.KeysUpdated + o.KeysUpdated,
		KeysEvicted: m.KeysEvicted + o.KeysEvicted,
		SetsDropped: m.SetsDropped + o.SetsDropped, SetsRejected: m.SetsRejected + o.SetsRejected,
	}
}

// Cache is a bounded, concurrent map from K to V with TinyLFU admission, sampled-LFU
// eviction and per-entry TTL. It is safe for concurrent use. It runs two goroutines
// (ristretto's) from New until Close, which stops them.
//
// Values are stored and returned by value: store immutable values or values whose sharing
// is safe.
type Cache[K Key, V any] struct {
	ttl time.Duration

	// mu guards rc against Close (and Clear): every operation holds it shared, Close and
	// Clear hold it exclusively. rc is nil once closed.
	mu sync.RWMutex
	rc *ristretto.Cache[K, V]
	// base accumulates the metrics of before each Clear and Close (ristretto resets its own).
	base Metrics
}

// New returns a cache configured by cfg, or an error wrapping ErrInvalidConfig. It starts
// ristretto's goroutines; call Close to stop them.
func New[K Key, V any](cfg Config) (*Cache[K, V], error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	rc, err := ristretto.NewCache(&ristretto.Config[K, V]{
		NumCounters:        cfg.MaxItems * countersPerItem,
		MaxCost:            cfg.MaxItems,
		BufferItems:        DefaultBufferItems,
		Metrics:            true,
		IgnoreInternalCost: true,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return &Cache[K, V]{ttl: cfg.TTL, rc: rc}, nil
}

// Get returns the live entry for key. It costs two hashes of the key, a shared lock of
// one of 256 shards and no allocation.
func (c *Cache[K, V]) Get(key K) (V, bool) {
	c.mu.RLock()
	if c.rc == nil {
		c.mu.RUnlock()
		var zero V
		return zero, false
	}
	v, ok := c.rc.Get(key)
	c.mu.RUnlock()
	return v, ok
}

// Set adds or replaces key with the configured TTL. It returns false when the set was
// dropped (the buffer was full) or the cache is closed. A new key is applied
// asynchronously: it may not be visible to Get until Wait returns, and the admission
// policy may still refuse it. An existing key is replaced at once.
func (c *Cache[K, V]) Set(key K, value V) bool {
	return c.SetWithTTL(key, value, c.ttl)
}

// SetWithTTL is Set with an explicit TTL; ttl 0 means no expiry, a negative ttl sets
// nothing.
func (c *Cache[K, V]) SetWithTTL(key K, value V, ttl time.Duration) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.rc == nil {
		return false
	}
	return c.rc.SetWithTTL(key, value, 1, ttl)
}

// Store sets key with the configured TTL and makes it visible: a dropped set is retried
// once after the buffer drains, then Store waits until the buffer is applied. It returns
// whether the entry is in the cache afterwards (the admission policy may refuse a new
// key when the cache is full). It costs one round trip to ristretto's goroutine.
func (c *Cache[K, V]) Store(key K, value V) bool {
	return c.StoreWithTTL(key, value, c.ttl)
}

// StoreWithTTL is Store with an explicit TTL.
func (c *Cache[K, V]) StoreWithTTL(key K, value V, ttl time.Duration) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.rc == nil {
		return false
	}
	if !c.rc.SetWithTTL(key, value, 1, ttl) {
		c.rc.Wait()
		c.rc.SetWithTTL(key, value, 1, ttl)
	}
	c.rc.Wait()
	_, ok := c.rc.GetTTL(key) // no metrics, no admission bookkeeping
	return ok
}

// Contains reports whether key has a live entry, without counting a hit or a miss and
// without informing the admission policy.
func (c *Cache[K, V]) Contains(key K) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.rc == nil {
		return false
	}
	_, ok := c.rc.GetTTL(key)
	return ok
}

// Del removes key at once. A buffered Set of key made before Del is discarded too.
func (c *Cache[K, V]) Del(key K) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.rc != nil {
		c.rc.Del(key)
	}
}

// Wait blocks until every Set made before it has been applied (or dropped by the
// admission policy). It costs one round trip to ristretto's goroutine.
func (c *Cache[K, V]) Wait() {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.rc != nil {
		c.rc.Wait()
	}
}

// Clear removes every entry. It excludes every other call while it runs.
func (c *Cache[K, V]) Clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rc == nil {
		return
	}
	c.base = c.base.plus(snapshot(c.rc.Metrics))
	c.rc.Clear()
}

// Close drops every entry and stops the cache's goroutines before returning. It is
// idempotent and safe to call concurrently with other methods; it always returns nil.
// After Close, Get misses, Set and Store return false and the other calls do nothing.
func (c *Cache[K, V]) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rc == nil {
		return nil
	}
	c.base = c.base.plus(snapshot(c.rc.Metrics))
	c.rc.Close()
	c.rc = nil
	return nil
}

// Metrics returns the counters since New. It sums ristretto's striped counters: a few
// hundred atomic loads.
func (c *Cache[K, V]) Metrics() Metrics {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.rc == nil {
		return c.base
	}
	return c.base.plus(snapshot(c.rc.Metrics))
}

func snapshot(m *ristretto.Metrics) Metrics {
	return Metrics{
		Hits:         m.Hits(),
		Misses:       m.Misses(),
		KeysAdded:    m.KeysAdded(),
		KeysUpdated:  m.KeysUpdated(),
		KeysEvicted:  m.KeysEvicted(),
		SetsDropped:  m.SetsDropped(),
		SetsRejected: m.SetsRejected(),
	}
}
