package flux

import (
	"fmt"
	"time"

	"github.com/rs/zerolog"
)

// Defaults of RunnerConfig.
const (
	DefaultRunnerID        = "flux"
	DefaultLoadTimeout     = 5 * time.Second
	DefaultRoomsTimeout    = 5 * time.Second
	DefaultApplyTimeout    = 10 * time.Second
	DefaultMaxPendingTicks = 1000
	DefaultCloseTimeout    = 5 * time.Second
)

// RunnerConfig configures a Runner. The zero value, filled by WithDefaults, is usable.
type RunnerConfig struct {
	// RunnerID names this runner (this game-server process) in every tick id, so that
	// several processes can apply ticks to one database (DefaultRunnerID). Tick ids are
	// "<RunnerID>:<nonce drawn at NewRunner>:<sequence>", so a restarted process never
	// reuses an id.
	RunnerID string
	// Rules are the flux rules (nil means DefaultRules()). The player store's tier and
	// bound settings should match them.
	Rules *Rules
	// Logger receives one structured line per failed tick or final flush, with the fields
	// component=flux.runner and runner_id. The zero value, like zerolog.Nop(), logs
	// nothing (a zerolog.Logger without a writer is disabled).
	Logger zerolog.Logger
	// LoadTimeout, RoomsTimeout and ApplyTimeout bound each phase of a tick (within the
	// caller's ctx): DefaultLoadTimeout, DefaultRoomsTimeout, DefaultApplyTimeout.
	LoadTimeout  time.Duration
	RoomsTimeout time.Duration
	ApplyTimeout time.Duration
	// CloseTimeout bounds Close's final flush (DefaultCloseTimeout, 5 s); Stop takes a
	// ctx instead.
	CloseTimeout time.Duration
	// MaxPendingTicks bounds how many failed ticks are kept for retry. When reached, a
	// Tick only retries the apply and evaluates nothing (that tick is lost as game time,
	// no change is lost) and returns ErrTooManyPending (DefaultMaxPendingTicks).
	MaxPendingTicks int
	// Ledger is the carry-over state to start from (for example restored at start-up);
	// nil starts empty. The Runner owns it afterwards (see Runner.Ledger).
	Ledger Ledger
	// Now gives the time of each tick in Run (game time); nil uses the ticker's time.
	Now func() time.Time
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
	if c.MaxPendingTicks == 0 {
		c.MaxPendingTicks = DefaultMaxPendingTicks
	}
	if c.Ledger == nil {
		c.Ledger = make(Ledger)
	}
	return c
}

func (c RunnerConfig) validate() error {
	if c.LoadTimeout < 0 || c.RoomsTimeout < 0 || c.ApplyTimeout < 0 || c.CloseTimeout < 0 {
		return fmt.Errorf("%w: timeouts must be positive", ErrInvalidConfig)
	}
	if c.MaxPendingTicks < 1 {
		return fmt.Errorf("%w: MaxPendingTicks %d must be at least 1", ErrInvalidConfig, c.MaxPendingTicks)
	}
	if err := c.Rules.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return nil
}
