package lease

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rs/zerolog"
)

// Defaults applied by WithDefaults to zero fields, and the bounds validate enforces.
const (
	// DefaultShards is the number of shards the player-id space is cut into: enough for a
	// fair share among a few dozen servers, few enough that a renewal is one small statement.
	DefaultShards = 64
	// MaxShards bounds Shards.
	MaxShards = 65536
	// DefaultTTL is how long a lease and a member heartbeat live without renewal: the
	// bound after which a killed member's shards move.
	DefaultTTL = 10 * time.Second
	// MinTTL bounds TTL from below: a renewal must fit in a third of it.
	MinTTL = 50 * time.Millisecond
	// MaxTTL bounds TTL from above.
	MaxTTL = time.Hour
	// DefaultCloseTimeout bounds the release Close sends.
	DefaultCloseTimeout = 5 * time.Second
	// MaxMemberIDLength bounds MemberID, in bytes.
	MaxMemberIDLength = 200
	// maxSchemaLength is PostgreSQL's identifier limit (NAMEDATALEN-1).
	maxSchemaLength = 63
)

// Config configures a Manager. The zero value is valid: WithDefaults fills every zero
// field, and New draws a MemberID when none is given.
type Config struct {
	// MemberID names this member in the member and lease tables; it must be unique among
	// the live members (a second live Manager with the same id fails to start with
	// ErrMemberIDInUse). Default: the host name, a dash and 12 random hex digits, drawn by
	// New. At most MaxMemberIDLength bytes of valid UTF-8 without NUL.
	MemberID string
	// Schema holds the lease tables (created by Migrate if missing). Empty: the pool's
	// search_path, with table names left unqualified.
	Schema string
	// Shards is the number of shards of the player-id space (ShardOf). Every member of one
	// Schema must use the same value. Default DefaultShards; at most MaxShards.
	Shards int
	// TTL is the life of a lease and of a heartbeat: a killed member's shards move within
	// TTL + RenewEvery. Default DefaultTTL; within [MinTTL, MaxTTL].
	TTL time.Duration
	// RenewEvery is the cadence of the renewal cycle (heartbeat, renew, rebalance).
	// Default TTL/3; at most TTL/2, so that one failed renewal is retried before expiry.
	RenewEvery time.Duration
	// CloseTimeout bounds the release statement Close sends. Default DefaultCloseTimeout.
	CloseTimeout time.Duration
	// Logger receives one structured line per failed cycle and per change of ownership
	// (debug). The zero value, like zerolog.Nop(), logs nothing.
	Logger zerolog.Logger
}

// WithDefaults returns c with every zero field set to its default (MemberID excepted:
// New draws it). It does no I/O.
func (c Config) WithDefaults() Config {
	if c.Shards == 0 {
		c.Shards = DefaultShards
	}
	if c.TTL == 0 {
		c.TTL = DefaultTTL
	}
	if c.RenewEvery == 0 {
		c.RenewEvery = c.TTL / 3
	}
	if c.CloseTimeout == 0 {
		c.CloseTimeout = DefaultCloseTimeout
	}
	return c
}

// validate reports the first invalid field of a defaulted Config as a *ConfigError.
func (c Config) validate() error {
	switch {
	case c.MemberID == "":
		return &ConfigError{Field: "Config.MemberID", Reason: "must not be empty"}
	case len(c.MemberID) > MaxMemberIDLength:
		return &ConfigError{Field: "Config.MemberID", Reason: fmt.Sprintf("longer than %d bytes", MaxMemberIDLength)}
	case !utf8.ValidString(c.MemberID) || strings.ContainsRune(c.MemberID, 0):
		return &ConfigError{Field: "Config.MemberID", Reason: "must be valid UTF-8 without NUL"}
	case len(c.Schema) > maxSchemaLength:
		return &ConfigError{Field: "Config.Schema", Reason: fmt.Sprintf("longer than %d bytes", maxSchemaLength)}
	case !utf8.ValidString(c.Schema) || strings.ContainsRune(c.Schema, 0):
		return &ConfigError{Field: "Config.Schema", Reason: "must be valid UTF-8 without NUL"}
	case c.Shards < 1 || c.Shards > MaxShards:
		return &ConfigError{Field: "Config.Shards", Reason: fmt.Sprintf("must be in [1, %d] (0: the default), got %d", MaxShards, c.Shards)}
	case c.TTL < MinTTL || c.TTL > MaxTTL:
		return &ConfigError{Field: "Config.TTL", Reason: fmt.Sprintf("must be in [%s, %s] (0: the default), got %s", MinTTL, MaxTTL, c.TTL)}
	case c.RenewEvery <= 0 || c.RenewEvery > c.TTL/2:
		return &ConfigError{Field: "Config.RenewEvery", Reason: fmt.Sprintf("must be in (0, TTL/2 = %s] (0: TTL/3), got %s", c.TTL/2, c.RenewEvery)}
	case c.CloseTimeout < 0:
		return &ConfigError{Field: "Config.CloseTimeout", Reason: fmt.Sprintf("must not be negative (0: the default), got %s", c.CloseTimeout)}
	}
	return nil
}
