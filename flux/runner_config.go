package flux

import (
	"time"

	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/metric"
)

// Defaults of RunnerConfig.
const (
	DefaultRunnerID      = "flux"
	DefaultTickLength    = time.Minute
	DefaultLoadTimeout   = 5 * time.Second
	DefaultRoomsTimeout  = 5 * time.Second
	DefaultApplyTimeout  = 10 * time.Second
	DefaultCloseTimeout  = 15 * time.Second
	DefaultMaxWriteBatch = 10_000
	DefaultMaxLag        = 64
)

// Limits of RunnerConfig, refused by NewRunner beyond them.
const (
	// MaxRunnerIDLength and MaxScopeLength bound RunnerID and Scope in bytes.
	MaxRunnerIDLength = 255
	MaxScopeLength    = 255
	// MaxWriteBatchLimit bounds MaxWriteBatch: one statement's arrays stay well within
	// PostgreSQL's limits and a statement within seconds.
	MaxWriteBatchLimit = 1_000_000
	// MaxLagLimit bounds MaxLag.
	MaxLagLimit = 10_000
	// MaxTickLength bounds TickLength (a year): tick numbers of every game time from
	// MinGameTime to MaxGameTime stay far from overflowing.
	MaxTickLength = 366 * 24 * time.Hour
)

// RunnerConfig configures a Runner. The zero value, filled by WithDefaults, is usable, and
// safe with any number of Runners over the same players.
type RunnerConfig struct {
	// RunnerID names this runner (this game-server process) in its log lines
	// (DefaultRunnerID). Valid UTF-8, no NUL, at most MaxRunnerIDLength bytes.
	RunnerID string
	// Scope, when not empty, makes the Runner tick only the players its PlayerStore places
	// in that scope: the players this game server hosts (PostgresConfig.ScopeColumn,
	// Presence.Scope). Empty ticks every active player; several Runners may still do so
	// safely, each player getting one step per tick. Valid UTF-8, no NUL, at most
	// MaxScopeLength bytes. A weakness of scoped Step servers: a player moving to another
	// server whose first load ran before the old host's last write landed can lose that
	// minute (issue 18 measured 17 of 300 players with one Sync per move). Step now rebases
	// its own minutes onto a write of the same minute from the same state, which covers
	// the case where both hosts computed that minute alike; this has not been measured
	// again. Syncing the old host and then the new one at a hand-over should avoid it (not
	// measured either).
	Scope string
	// TickLength is the length of one tick in game time (DefaultTickLength, one game
	// minute as in FLUX.md): a tick's number is TickNumber(now, TickLength), and each
	// player gets at most one step per number, whichever Runner ticks it and however
	// often. Every Runner over the same players must use the same TickLength. At most
	// MaxTickLength.
	TickLength time.Duration
	// Rules are the flux rules (nil means DefaultRules()). The player store's tier and
	// bound settings should match them.
	Rules *Rules
	// Logger receives one structured line per failed tick or final flush, with the fields
	// component=flux.runner, runner_id and scope. The zero value, like zerolog.Nop(), logs
	// nothing (a zerolog.Logger without a writer is disabled).
	Logger zerolog.Logger
	// LoadTimeout, RoomsTimeout and ApplyTimeout bound each phase of a tick (within the
	// caller's ctx): DefaultLoadTimeout, DefaultRoomsTimeout, DefaultApplyTimeout.
	// ApplyTimeout bounds each apply statement.
	LoadTimeout  time.Duration
	RoomsTimeout time.Duration
	ApplyTimeout time.Duration
	// CloseTimeout bounds Close's final flush, tried again with backoff until it
	// succeeds or this ends (DefaultCloseTimeout, 15 s: longer than ApplyTimeout, so the
	// flush's own statement has its full time); Stop takes a ctx instead.
	CloseTimeout time.Duration
	// MaxWriteBatch is the most player writes one apply statement carries
	// (DefaultMaxWriteBatch); a backlog after an outage is written in statements of at
	// most this many players. Pending writes are summed per player, so a backlog never
	// holds more writes than players.
	MaxWriteBatch int
	// MaxLag bounds the non-blocking mode (Start, Step): when this many Step batches have
	// been handed over since the background writer last wrote everything it held (the
	// database is down or slower than the Steps), Step skips its tick with ErrLagging
	// (DefaultMaxLag) until a write succeeds. The worker holds the unwritten writes summed
	// per player; besides those, memory holds at most the batches it has not taken yet,
	// so never more than MaxLag Steps' writes.
	MaxLag int
	// Now gives the time of each tick in Run (game time); nil uses the ticker's time.
	Now func() time.Time
	// MeterProvider, when not nil, receives the Runner's instruments (the Metric*
	// constants, under MeterName): tick and phase durations as histograms (five Records
	// per Tick or Step), a statements counter (one Add per tick), and counters and gauges
	// observed from Stats at each collection. nil means no metrics (a no-op provider); no
	// global provider is ever read. Stop and Close unregister the observations.
	MeterProvider metric.MeterProvider
}

// WithDefaults returns c with every zero field set to its default.
func (c RunnerConfig) WithDefaults() RunnerConfig {
	if c.RunnerID == "" {
		c.RunnerID = DefaultRunnerID
	}
	if c.Rules == nil {
		r := DefaultRules()
		c.Rules = &r
	}
	if c.TickLength == 0 {
		c.TickLength = DefaultTickLength
	}
	if c.LoadTimeout == 0 {
		c.LoadTimeout = DefaultLoadTimeout
	}
	if c.RoomsTimeout == 0 {
		c.RoomsTimeout = DefaultRoomsTimeout
	}
	if c.ApplyTimeout == 0 {
		c.ApplyTimeout = DefaultApplyTimeout
	}
	if c.CloseTimeout == 0 {
		c.CloseTimeout = DefaultCloseTimeout
	}
	if c.MaxWriteBatch == 0 {
		c.MaxWriteBatch = DefaultMaxWriteBatch
	}
	if c.MaxLag == 0 {
		c.MaxLag = DefaultMaxLag
	}
	return c
}

func (c RunnerConfig) validate() error {
	if err := checkText("RunnerConfig.RunnerID", c.RunnerID, MaxRunnerIDLength); err != nil {
		return err
	}
	if err := checkText("RunnerConfig.Scope", c.Scope, MaxScopeLength); err != nil {
		return err
	}
	for _, d := range [...]struct {
		field string
		v     time.Duration
	}{
		{"RunnerConfig.TickLength", c.TickLength}, {"RunnerConfig.LoadTimeout", c.LoadTimeout},
		{"RunnerConfig.RoomsTimeout", c.RoomsTimeout}, {"RunnerConfig.ApplyTimeout", c.ApplyTimeout},
		{"RunnerConfig.CloseTimeout", c.CloseTimeout},
	} {
		if d.v < 0 {
			return configError(d.field, d.v, "must be positive (0: the default)")
		}
	}
	if c.TickLength > MaxTickLength {
		return configErrorf("RunnerConfig.TickLength", c.TickLength, "more than MaxTickLength (%s)", MaxTickLength)
	}
	if c.MaxWriteBatch < 1 || c.MaxWriteBatch > MaxWriteBatchLimit {
		return configErrorf("RunnerConfig.MaxWriteBatch", c.MaxWriteBatch, "must be within 1..%d", MaxWriteBatchLimit)
	}
	if c.MaxLag < 1 || c.MaxLag > MaxLagLimit {
		return configErrorf("RunnerConfig.MaxLag", c.MaxLag, "must be within 1..%d", MaxLagLimit)
	}
	if err := c.Rules.Validate(); err != nil {
		return rulesConfigError("RunnerConfig.Rules", err)
	}
	return nil
}
