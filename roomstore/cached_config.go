package roomstore

import (
	"math"
	"time"

	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/metric"
)

// Defaults for CacheConfig, applied by WithDefaults to zero fields.
const (
	// DefaultCacheMaxRooms bounds the rooms a Cached keeps: a large world fits whole.
	DefaultCacheMaxRooms = 100_000
	// DefaultCacheTTL is the safety net after which a cached room is reloaded even if no
	// invalidation arrived (a write made elsewhere whose invalidation was lost).
	DefaultCacheTTL = 5 * time.Minute
	// DefaultCacheNegativeTTL is how long a not-found id is remembered.
	DefaultCacheNegativeTTL = 5 * time.Second
	// DefaultCacheMaxNegative bounds the not-found ids remembered.
	DefaultCacheMaxNegative = 10_000
	// DefaultCacheLoadTimeout bounds one load from the inner store shared by concurrent
	// readers of a key (each reader still returns at its own deadline).
	DefaultCacheLoadTimeout = 10 * time.Second
	// DefaultCacheRefreshAhead is the fraction of a room's TTL after which a hit also
	// starts a background reload of it.
	DefaultCacheRefreshAhead = 0.75
	// DefaultCacheTTLJitter spreads each loaded room's TTL uniformly over ±10 %.
	DefaultCacheTTLJitter = 0.1
	// DefaultCacheMaxRefreshes bounds the background refreshes running at once.
	DefaultCacheMaxRefreshes = 4
	// MaxCacheRooms is the largest CacheConfig.MaxRooms accepted (16,777,216 rooms, about
	// 500 MB of admission counters allocated up front); a larger value is a *ConfigError,
	// not an out-of-memory crash in NewCached.
	MaxCacheRooms = 1 << 24
	// MaxCacheNegative is the largest CacheConfig.MaxNegative accepted (4,194,304 ids,
	// about 125 MB of admission counters allocated up front).
	MaxCacheNegative = 1 << 22
	// MaxCacheRefreshes is the largest CacheConfig.MaxRefreshes accepted (one goroutine
	// each).
	MaxCacheRefreshes = 1024
	// NoRefreshAhead, as CacheConfig.RefreshAhead, turns refresh-ahead off (0 means the
	// default there, as for every other field).
	NoRefreshAhead = -1
	// NoTTLJitter, as CacheConfig.TTLJitter, gives every room exactly TTL.
	NoTTLJitter = -1
)

// CacheConfig configures a Cached decorator. The zero value is valid: WithDefaults fills
// every zero field.
type CacheConfig struct {
	// MeterProvider, when not nil, receives the Cached's observable counters (the
	// MetricCache* constants, under MeterName), read from Stats once per collection: no
	// cost on the read path. nil means no metrics (a no-op provider); no global provider
	// is ever read. Close unregisters them.
	MeterProvider metric.MeterProvider
	// MaxRooms bounds the number of rooms cached (each room counts 1, whatever its size).
	// Default DefaultCacheMaxRooms, at most MaxCacheRooms. The admission counters cost
	// about 30 bytes per room of capacity, allocated up front.
	MaxRooms int64
	// TTL is how long a cached room is served before it is loaded again, jittered per
	// room by TTLJitter; refresh-ahead reloads rooms read regularly before it passes.
	// Default DefaultCacheTTL.
	TTL time.Duration
	// NegativeTTL is how long a not-found id is answered with ErrNotFound from memory.
	// Default DefaultCacheNegativeTTL. Writes through the decorator and Invalidate end it
	// at once.
	NegativeTTL time.Duration
	// MaxNegative bounds the number of not-found ids remembered. Default
	// DefaultCacheMaxNegative, at most MaxCacheNegative (about 30 bytes per id of capacity,
	// allocated up front).
	MaxNegative int64
	// LoadTimeout bounds a load from the inner store made on a miss. The load is shared by
	// every reader of that id and is not canceled when one of them gives up; it is
	// canceled by Close. Default DefaultCacheLoadTimeout.
	LoadTimeout time.Duration
	// RefreshAhead is the fraction of a room's TTL, in (0, 1), after which a hit serves
	// the cached room and also starts one background reload of it (refresh-ahead): rooms
	// read at least once every (1−RefreshAhead)×TTL×(1−TTLJitter) (67 s at the defaults,
	// less a refresh's duration) are never loaded on the reader's path after their first
	// load. Default
	// DefaultCacheRefreshAhead; NoRefreshAhead turns it off.
	RefreshAhead float64
	// TTLJitter spreads the TTL of each loaded room uniformly over TTL×(1±TTLJitter), in
	// (0, 0.5], so rooms loaded together do not expire (or go stale) together. Default
	// DefaultCacheTTLJitter; NoTTLJitter gives every room exactly TTL.
	TTLJitter float64
	// MaxRefreshes bounds the background refreshes running at once; each is one
	// goroutine and one inner GetRooms call for every stale room of one read. A stale hit
	// that finds the limit reached is served and counted in CacheStats.RefreshesSkipped;
	// a later hit retries. Default DefaultCacheMaxRefreshes, at most MaxCacheRefreshes.
	MaxRefreshes int
	// Clock returns the time from which room age (refresh-ahead and TTL) is measured.
	// nil means time.Now (its monotonic reading); tests and simulations pass their own.
	// The cache also drops rooms after their TTL of wall time, so with a slower clock the
	// wall clock expires them first. NegativeTTL is always wall time.
	Clock func() time.Time
	// Logger receives debug events (failed loads, dropped fills). The zero value, like
	// zerolog.Nop(), logs nothing.
	Logger zerolog.Logger
	// AfterWrite, if set, is called in the writer's goroutine after each write through the
	// Cached (and, with Version 0, after one whose outcome is unknown); it must not block.
	// roomsync.RoomInvalidator.Publish is meant for it.
	AfterWrite func(RoomChange)
}

// RoomChange describes one successful write made through a Cached decorator.
type RoomChange struct {
	// ID is the room written.
	ID string
	// Version is the version the write stored, or 0 when unknown (a delete, or an inner
	// store that does not implement VersionedPutter).
	Version int64
	// Deleted is true for DeleteRoom.
	Deleted bool
}

// WithDefaults returns c with every zero field set to its default.
func (c CacheConfig) WithDefaults() CacheConfig {
	if c.MaxRooms == 0 {
		c.MaxRooms = DefaultCacheMaxRooms
	}
	if c.TTL == 0 {
		c.TTL = DefaultCacheTTL
	}
	if c.NegativeTTL == 0 {
		c.NegativeTTL = DefaultCacheNegativeTTL
	}
	if c.MaxNegative == 0 {
		c.MaxNegative = DefaultCacheMaxNegative
	}
	if c.LoadTimeout == 0 {
		c.LoadTimeout = DefaultCacheLoadTimeout
	}
	if c.RefreshAhead == 0 {
		c.RefreshAhead = DefaultCacheRefreshAhead
	}
	if c.TTLJitter == 0 {
		c.TTLJitter = DefaultCacheTTLJitter
	}
	if c.MaxRefreshes == 0 {
		c.MaxRefreshes = DefaultCacheMaxRefreshes
	}
	return c
}

func (c CacheConfig) validate() error {
	switch {
	case c.MaxRooms < 0:
		return configError("CacheConfig.MaxRooms", c.MaxRooms, "must not be negative (0: the default)")
	case c.TTL < 0:
		return configError("CacheConfig.TTL", c.TTL, "must not be negative (0: the default)")
	case c.NegativeTTL < 0:
		return configError("CacheConfig.NegativeTTL", c.NegativeTTL, "must not be negative (0: the default)")
	case c.MaxNegative < 0:
		return configError("CacheConfig.MaxNegative", c.MaxNegative, "must not be negative (0: the default)")
	case c.LoadTimeout < 0:
		return configError("CacheConfig.LoadTimeout", c.LoadTimeout, "must not be negative (0: the default)")
	case c.RefreshAhead != NoRefreshAhead && !(c.RefreshAhead > 0 && c.RefreshAhead < 1):
		return configError("CacheConfig.RefreshAhead", c.RefreshAhead, "must be in (0, 1) or NoRefreshAhead")
	case c.TTLJitter != NoTTLJitter && !(c.TTLJitter > 0 && c.TTLJitter <= 0.5):
		return configError("CacheConfig.TTLJitter", c.TTLJitter, "must be in (0, 0.5] or NoTTLJitter")
	case c.MaxRefreshes < 0:
		return configError("CacheConfig.MaxRefreshes", c.MaxRefreshes, "must not be negative (0: the default)")
	case c.MaxRooms > MaxCacheRooms:
		return configErrorf("CacheConfig.MaxRooms", c.MaxRooms, "more than MaxCacheRooms (%d)", MaxCacheRooms)
	case c.MaxNegative > MaxCacheNegative:
		return configErrorf("CacheConfig.MaxNegative", c.MaxNegative, "more than MaxCacheNegative (%d)", MaxCacheNegative)
	case c.MaxRefreshes > MaxCacheRefreshes:
		return configErrorf("CacheConfig.MaxRefreshes", c.MaxRefreshes, "more than MaxCacheRefreshes (%d)", MaxCacheRefreshes)
	case c.TTL > math.MaxInt64/2:
		return configError("CacheConfig.TTL", c.TTL, "too long")
	}
	return nil
}
