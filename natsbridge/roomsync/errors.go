package roomsync

import (
	"errors"
	"fmt"

	"github.com/rs/zerolog"

	"github.com/gamepersist/gamepersist/internal/configerr"
)

// Sentinel errors returned (wrapped with %w) by this package. Match them with errors.Is.
var (
	// ErrInvalidConfig reports an InvalidatorConfig (or an Attach call) refused before
	// any network round trip; a value out of range is a *ConfigError.
	ErrInvalidConfig = errors.New("roomsync: invalid config")
	// ErrClosed is returned by Attach on a closed RoomInvalidator.
	ErrClosed = errors.New("roomsync: closed")
)

// ConfigError reports a configuration value roomsync refuses: Field names the setting
// (e.g. "InvalidatorConfig.Instance"), Value the refused value and Reason what is wrong
// and the accepted range. It wraps ErrInvalidConfig; errors.As gives the fields. It has
// the shape of natsbridge's, roomstore's and flux's ConfigError.
type ConfigError = configerr.Error[invalidConfig]

// invalidConfig ties ConfigError to ErrInvalidConfig.
type invalidConfig struct{}

// Sentinel returns ErrInvalidConfig.
func (invalidConfig) Sentinel() error { return ErrInvalidConfig }

// intIn returns a *ConfigError unless lo <= v <= hi.
func intIn(field string, v, lo, hi int) error {
	if v >= lo && v <= hi {
		return nil
	}
	return configerr.Newf[invalidConfig](field, v, "want %d..%d", lo, hi)
}

// logErr adds err to ev as the "error" field, unless err is nil; an error with an empty
// message is named by its type, so that no log line carries "error":"".
func logErr(ev *zerolog.Event, err error) *zerolog.Event {
	if err == nil {
		return ev
	}
	text := err.Error()
	if text == "" {
		text = fmt.Sprintf("%T with an empty message", err)
	}
	return ev.Str("error", text)
}
