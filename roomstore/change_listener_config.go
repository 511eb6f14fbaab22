package roomstore

import (
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/metric"
)

// Defaults of ChangeListenerConfig, applied by WithDefaults to zero fields.
const (
	// DefaultListenerMinBackoff is the first wait before reconnecting after the listener's
	// connection failed.
	DefaultListenerMinBackoff = 100 * time.Millisecond
	// DefaultListenerMaxBackoff caps the wait between reconnection attempts (it doubles
	// from MinBackoff, with jitter).
	DefaultListenerMaxBackoff = 5 * time.Second
	// DefaultListenerHealthCheck is how long the listener waits for a notice before it
	// checks, with one round trip, that its connection is still alive, and the period at
	// which it empties its target while not listening.
	DefaultListenerHealthCheck = 10 * time.Second
	// DefaultListenerConnectTimeout bounds one attempt to connect and LISTEN.
	DefaultListenerConnectTimeout = 10 * time.Second
)

// ChangeListenerConfig configures a ChangeListener. The zero value is valid: WithDefaults
// fills every zero field.
type ChangeListenerConfig struct {
	// Channel is the notification channel to LISTEN on: the PostgresConfig.NotifyChannel
	// (or ChangeTriggerSQL channel) the change trigger sends on. Default
	// DefaultNotifyChannel.
	Channel string
	// MinBackoff and MaxBackoff bound the wait before each reconnection attempt: it
	// starts at MinBackoff, doubles after each failed attempt, and after each connection
	// lost less than MaxBackoff after it began listening, up to MaxBackoff; it is jittered
	// (±25 %). Defaults DefaultListenerMinBackoff and DefaultListenerMaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// HealthCheck is the longest quiet period after which the listener sends one empty
	// statement to check that its connection still works, and the bound on that check: a
	// connection that died without a word (a network partition) is noticed, and the
	// target emptied, within 2×HealthCheck. It is also the period at which the target is
	// emptied while the listener is not listening (connecting, backing off), so it bounds
	// how long an edit made then is served stale. Default DefaultListenerHealthCheck.
	HealthCheck time.Duration
	// ConnectTimeout bounds one attempt to connect and LISTEN (the connection's own
	// ConnectTimeout, when shorter, still applies), so that a database that swallows
	// packets delays the next attempt instead of stopping the listener for good. Default
	// DefaultListenerConnectTimeout.
	ConnectTimeout time.Duration
	// MeterProvider, when not nil, receives the listener's observable counters (the
	// MetricListener* constants, under MeterName), read from Stats once per collection.
	// nil means no metrics. Close unregisters them.
	MeterProvider metric.MeterProvider
	// Logger receives connection losses, reconnections and malformed notices. The zero
	// value, like zerolog.Nop(), logs nothing.
	Logger zerolog.Logger
}

// WithDefaults returns c with every zero field set to its default.
func (c ChangeListenerConfig) WithDefaults() ChangeListenerConfig {
	if c.Channel == "" {
		c.Channel = DefaultNotifyChannel
	}
	if c.MinBackoff == 0 {
		c.MinBackoff = DefaultListenerMinBackoff
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = DefaultListenerMaxBackoff
	}
	if c.HealthCheck == 0 {
		c.HealthCheck = DefaultListenerHealthCheck
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultListenerConnectTimeout
	}
	return c
}

func (c ChangeListenerConfig) validate() error {
	if err := validateChannel("ChangeListenerConfig.Channel", c.Channel); err != nil {
		return err
	}
	switch {
	case c.MinBackoff < 0:
		return &ConfigError{Field: "ChangeListenerConfig.MinBackoff", Reason: fmt.Sprintf("must not be negative (0: the default), got %s", c.MinBackoff)}
	case c.MaxBackoff < c.MinBackoff:
		return &ConfigError{Field: "ChangeListenerConfig.MaxBackoff", Reason: fmt.Sprintf("%s is below MinBackoff %s", c.MaxBackoff, c.MinBackoff)}
	case c.HealthCheck < 0:
		return &ConfigError{Field: "ChangeListenerConfig.HealthCheck", Reason: fmt.Sprintf("must not be negative (0: the default), got %s", c.HealthCheck)}
	case c.ConnectTimeout < 0:
		return &ConfigError{Field: "ChangeListenerConfig.ConnectTimeout", Reason: fmt.Sprintf("must not be negative (0: the default), got %s", c.ConnectTimeout)}
	}
	return nil
}
