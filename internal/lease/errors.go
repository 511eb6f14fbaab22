package lease

import "errors"

// Sentinel errors of the package, returned wrapped; match them with errors.Is.
var (
	// ErrInvalidConfig reports a Config that New refuses (a *ConfigError names the field).
	ErrInvalidConfig = errors.New("lease: invalid config")
	// ErrClosed is returned by Start and Run once Close has begun.
	ErrClosed = errors.New("lease: manager closed")
	// ErrMemberIDInUse reports that a live member with the same MemberID but another
	// incarnation (another process, or another Manager) holds the member row: two
	// processes must never share a member id.
	ErrMemberIDInUse = errors.New("lease: member id in use by another live member")
	// ErrShardCountMismatch reports a live member configured with another shard count:
	// every member of one lease schema must use the same Shards, or the same player would
	// map to different shards on different servers.
	ErrShardCountMismatch = errors.New("lease: live members disagree on the shard count")
)

// ConfigError is the error of a configuration value New refuses: Field names it (for
// example "Config.TTL") and Reason says what is wrong. It wraps ErrInvalidConfig.
type ConfigError struct {
	Field  string
	Reason string
}

// Error returns "lease: invalid config: <Field>: <Reason>".
func (e *ConfigError) Error() string {
	return ErrInvalidConfig.Error() + ": " + e.Field + ": " + e.Reason
}

// Unwrap returns ErrInvalidConfig.
func (e *ConfigError) Unwrap() error { return ErrInvalidConfig }
