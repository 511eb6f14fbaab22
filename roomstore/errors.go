package roomstore

import "errors"

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
// field (for example "CacheConfig.TTL" or "PostgresConfig.Table") and Reason says what is
// wrong with it. It wraps ErrInvalidConfig; use errors.As to read the field.
type ConfigError struct {
	Field  string
	Reason string
}

// Error returns "roomstore: invalid config: <Field>: <Reason>".
func (e *ConfigError) Error() string {
	return ErrInvalidConfig.Error() + ": " + e.Field + ": " + e.Reason
}

// Unwrap returns ErrInvalidConfig.
func (e *ConfigError) Unwrap() error { return ErrInvalidConfig }
