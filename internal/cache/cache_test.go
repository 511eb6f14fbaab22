package cache_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gamepersist/gamepersist/internal/cache"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func newCache[V any](t *testing.T, cfg cache.Config) *cache.Cache[string, V] {
	t.Helper()
	c, err := cache.New[string, V](cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestInvalidConfig(t *testing.T) {
	t.Parallel()
	for _, cfg := range []cache.Config{{}, {MaxItems: -1}, {MaxItems: 10, TTL: -time.Second}} {
		c, err := cache.New[string, int](cfg)
		if !errors.Is(err, cache.ErrInvalidConfig) || c != nil {
			t.Errorf("New(%+v) = %v, %v; want ErrInvalidConfig", cfg, c, err)
		}
	}
}

// A stored value is visible to the very next Get, for every key, even when many are stored
// back to back (ristretto buffers new keys).
func TestStoreIsVisibleAtOnce(t *testing.T) {
	t.Parallel()
	c := newCache[int](t, cache.Config{MaxItems: 10_000})
	for i := range 2_000 {
		k := fmt.Sprint("k", i)
		if !c.Store(k, i) {
			t.Fatalf("Store(%s) = false", k)
		}
		if v, ok := c.Get(k); !ok || v != i {
			t.Fatalf("Get(%s) right after Store = %d, %v", k, v, ok)
		}
	}
	m := c.Metrics()
	if m.Hits != 2_000 || m.Misses != 0 || m.KeysAdded != 2_000 {
		t.Fatalf("metrics = %+v", m)
	}
}

// Set then Wait makes a key visible; Del removes it at once, including a buffered Set.
func TestSetWaitDel(t *testing.T) {
	t.Parallel()
	c := newCache[string](t, cache.Config{MaxItems: 100})
	c.Set("a", "1")
	c.Wait()
	if v, ok := c.Get("a"); !ok || v != "1" {
		t.Fatalf("Get after Set+Wait = %q, %v", v, ok)
	}
	c.Set("a", "2") // an existing key is replaced at once
	if v, _ := c.Get("a"); v != "2" {
		t.Fatalf("Get after update = %q", v)
	}
	c.Del("a")
	if _, ok := c.Get("a"); ok {
		t.Fatal("Get after Del hit")
	}
	c.Set("b", "buffered")
	c.Del("b")
	c.Wait()
	if c.Contains("b") {
		t.Fatal("a Set buffered before Del survived it")
	}
	if m := c.Metrics(); m.Misses != 1 || m.Hits != 2 {
		t.Fatalf("metrics = %+v (Contains must not count)", m)
	}
}

// MaxItems counts entries (internal cost ignored): a cache of 100 holds 100 small values,
// and never much more than that.
func TestCapacityCountsEntries(t *testing.T) {
	t.Parallel()
	c := newCache[int](t, cache.Config{MaxItems: 100})
	for i := range 100 {
		if !c.Store(fmt.Sprint(i), i) {
			t.Fatalf("Store %d refused below capacity", i)
		}
	}
	for i := 100; i < 1_000; i++ {
		c.Store(fmt.Sprint(i), i)
	}
	n := 0
	for i := range 1_000 {
		if c.Contains(fmt.Sprint(i)) {
			n++
		}
	}
	if n < 90 || n > 100 {
		t.Fatalf("%d entries live with MaxItems 100", n)
	}
	if m := c.Metrics(); m.KeysEvicted+m.SetsRejected < 900 {
		t.Fatalf("metrics = %+v, want ~900 evicted or rejected", m)
	}
}

func TestTTLExpiry(t *testing.T) {
	t.Parallel()
	c := newCache[int](t, cache.Config{MaxItems: 100, TTL: 50 * time.Millisecond})
	c.Store("short", 1)
	c.StoreWithTTL("long", 2, time.Hour)
	if _, ok := c.Get("short"); !ok {
		t.Fatal("short entry missing before its TTL")
	}
	deadline := time.Now().Add(5 * time.Second)
	for c.Contains("short") {
		if time.Now().After(deadline) {
			t.Fatal("entry still live long after its TTL")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if v, ok := c.Get("long"); !ok || v != 2 {
		t.Fatalf("long entry = %d, %v", v, ok)
	}
	// An expired key can be stored again and is visible at once.
	if !c.Store("short", 3) {
		t.Fatal("re-Store after expiry failed")
	}
	if v, ok := c.Get("short"); !ok || v != 3 {
		t.Fatalf("re-stored entry = %d, %v", v, ok)
	}
}

func TestClearKeepsMetrics(t *testing.T) {
	t.Parallel()
	c := newCache[int](t, cache.Config{MaxItems: 100})
	c.Store("a", 1)
	c.Get("a")
	c.Clear()
	if c.Contains("a") {
		t.Fatal("entry survived Clear")
	}
	c.Get("a")
	if m := c.Metrics(); m.Hits != 1 || m.Misses != 1 {
		t.Fatalf("metrics after Clear = %+v", m)
	}
	if !c.Store("a", 2) {
		t.Fatal("Store after Clear failed")
	}
}

// Close stops ristretto's goroutines (goleak checks the whole package at exit and here),
// is idempotent, is safe against concurrent use, and leaves a cache that does nothing.
func TestCloseConcurrentAndIdempotent(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	c, err := cache.New[string, int](cache.Config{MaxItems: 1_000})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := fmt.Sprint(w, "-", i%50)
				c.Set(k, i)
				c.Get(k)
				if i%7 == 0 {
					c.Del(k)
				}
				if i%13 == 0 {
					c.Store(k, i)
				}
			}
		})
	}
	time.Sleep(20 * time.Millisecond)
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	close(stop)
	wg.Wait()
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if c.Set("x", 1) || c.Store("x", 1) || c.Contains("x") {
		t.Fatal("a closed cache accepted a value")
	}
	if _, ok := c.Get("x"); ok {
		t.Fatal("a closed cache returned a value")
	}
	c.Del("x")
	c.Wait()
	c.Clear()
	if m := c.Metrics(); m.Hits+m.Misses == 0 {
		t.Fatalf("metrics lost at Close: %+v", m)
	}
}

func TestHitRatio(t *testing.T) {
	t.Parallel()
	if r := (cache.Metrics{}).HitRatio(); r != 0 {
		t.Fatalf("empty ratio = %v", r)
	}
	if r := (cache.Metrics{Hits: 3, Misses: 1}).HitRatio(); r != 0.75 {
		t.Fatalf("ratio = %v", r)
	}
}
