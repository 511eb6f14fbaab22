package roomstore

import (
	"errors"

	"github.com/gamepersist/gamepersist/internal/configerr"
)

// Sentinel errors returned (wrapped) by every RoomStore implementation in this module.
// Match them with errors.Is.
var (
	// ErrNotFound reports that no room has the requested id.
	ErrNotFound = errors.New("roomstore: room not found")
	// ErrInvalidID reports an id that no store accepts: empty, longer than MaxIDLength
	// bytes, not valid UTF-8, or containing a control character (NUL included). It is
	// returned before any round trip to a database.
	ErrInvalidID = errors.New("roomstore: invalid room id")
	// ErrInvalidRoom reports a room that cannot be stored, such as an exit with an empty
	// direction or an invalid target id.
	ErrInvalidRoom = errors.New("roomstore: invalid room")
	// ErrClosed is returned by every call made after Close.
	ErrClosed = errors.New("roomstore: store closed")
	// ErrInvalidConfig reports a configuration rejected at construction.
	ErrInvalidConfig = errors.New("roomstore: invalid config")
	// ErrReadOnly is returned by PutRoom, DeleteRoom and Migrate of a Postgres store that
	// reads through a custom PostgresConfig.SelectSQL: the game owns that schema and
	// writes it itself.
	ErrReadOnly = errors.New("roomstore: store is read-only")
)

// ConfigError is the error of a configuration value roomstore refuses: Field names the
// field (for example "CacheConfig.TTL" or "PostgresConfig.Table"), Value the refused value
// (quoted, cut after 64 bytes) and Reason what is wrong and what is accepted. It wraps
// ErrInvalidConfig; use errors.As to read the fields. flux and natsbridge have the same
// shape, each matching its own ErrInvalidConfig.
type ConfigError = configerr.Error[invalidConfig]

// invalidConfig ties ConfigError to ErrInvalidConfig.
type invalidConfig struct{}

// Sentinel returns ErrInvalidConfig.
func (invalidConfig) Sentinel() error { return ErrInvalidConfig }

// configError returns a *ConfigError for field holding value.
func configError(field string, value any, reason string) error {
	return configerr.New[invalidConfig](field, value, reason)
}

// configErrorf is configError with a formatted reason.
func configErrorf(field string, value any, format string, args ...any) error {
	return configerr.Newf[invalidConfig](field, value, format, args...)
}
