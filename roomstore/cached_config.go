package roomstore

import (
	"fmt"
	"time"

	"github.com/rs/zerolog"
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
)

// CacheConfig configures a Cached decorator. The zero value is valid: WithDefaults fills
// every zero field.
type CacheConfig struct {
	// MaxRooms bounds the number of rooms cached (each room counts 1, whatever its size).
	// Default DefaultCacheMaxRooms. The admission counters cost about 30 bytes per room of
	// capacity, allocated up front.
	MaxRooms int64
	// TTL is how long a cached room is served before it is loaded again. Default
	// DefaultCacheTTL.
	TTL time.Duration
	// NegativeTTL is how long a not-found id is answered with ErrNotFound from memory.
	// Default DefaultCacheNegativeTTL. Writes through the decorator and Invalidate end it
	// at once.
	NegativeTTL time.Duration
	// MaxNegative bounds the number of not-found ids remembered. Default
	// DefaultCacheMaxNegative.
	MaxNegative int64
	// LoadTimeout bounds a load from the inner store made on a miss. The load is shared by
	// every reader of that id and is not canceled when one of them gives up; it is
	// canceled by Close. Default DefaultCacheLoadTimeout.
	LoadTimeout time.Duration
	// Logger receives debug events (failed loads, dropped fills). The zero value, like
	// zerolog.Nop(), logs nothing.
	Logger zerolog.Logger
	// AfterWrite, if set, is called synchronously after a PutRoom, PutRoomVersion or
	// DeleteRoom through the decorator succeeded and the local cache was invalidated, in
	// the writer's goroutine. It must not block (hand the change to a channel or a
	// publisher that buffers): natsbridge uses it to tell other nodes to invalidate.
	// It is also called, with Version 0, after a write that failed in a way that may
	// still have been applied (a timeout or a lost reply), so other nodes reload the room
	// rather than keep what may be stale; not after a write refused before any I/O
	// (invalid id or room, ErrClosed, ErrReadOnly) or a delete of an absent room.
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
	return c
}

func (c CacheConfig) validate() error {
	switch {
	case c.MaxRooms < 0:
		return fmt.Errorf("%w: MaxRooms must be > 0, got %d", ErrInvalidConfig, c.MaxRooms)
	case c.TTL < 0:
		return fmt.Errorf("%w: TTL must be > 0, got %s", ErrInvalidConfig, c.TTL)
	case c.NegativeTTL < 0:
		return fmt.Errorf("%w: NegativeTTL must be > 0, got %s", ErrInvalidConfig, c.NegativeTTL)
	case c.MaxNegative < 0:
		return fmt.Errorf("%w: MaxNegative must be > 0, got %d", ErrInvalidConfig, c.MaxNegative)
	case c.LoadTimeout < 0:
		return fmt.Errorf("%w: LoadTimeout must be > 0, got %s", ErrInvalidConfig, c.LoadTimeout)
	}
	return nil
}
