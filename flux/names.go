package flux

import idents "github.com/gamepersist/gamepersist/internal/ident"

// MaxIdentifierLength is the longest table, column or schema name flux accepts, in bytes:
// PostgreSQL's NAMEDATALEN−1 (63). The server silently truncates longer identifiers, so two
// configured names that differ only after byte 63 would name the same table or column and
// fail late, in Migrate or the first statement, with a raw SQL error; flux refuses them
// when the configuration is validated instead.
const MaxIdentifierLength = idents.MaxLength

// ConfigError is the error of a configuration value flux refuses: Field names the field
// (for example "RunnerID" or "PostgresConfig.TierColumn") and Reason says what is wrong
// with its value and which limit it breaks. It wraps ErrInvalidConfig, so
// errors.Is(err, ErrInvalidConfig) holds; use errors.As to read the field.
type ConfigError struct {
	Field  string
	Reason string
}

// Error returns "flux: invalid config: <Field>: <Reason>".
func (e *ConfigError) Error() string {
	return ErrInvalidConfig.Error() + ": " + e.Field + ": " + e.Reason
}

// Unwrap returns ErrInvalidConfig.
func (e *ConfigError) Unwrap() error { return ErrInvalidConfig }

// checkIdentifier checks a name that flux quotes into SQL as an identifier (a schema, table
// or column): not empty, valid UTF-8, no NUL, at most MaxIdentifierLength bytes. It returns
// nil or a *ConfigError for field.
func checkIdentifier(field, value string) error {
	if why := idents.IdentifierProblem(value); why != "" {
		return &ConfigError{Field: field, Reason: why}
	}
	return nil
}

// checkOptionalIdentifier is checkIdentifier for a name that may be empty (an unset
// optional name such as a schema).
func checkOptionalIdentifier(field, value string) error {
	if value == "" {
		return nil
	}
	return checkIdentifier(field, value)
}

// checkText checks a string that travels into SQL as a value or into an id (for example a
// runner id inside tick ids): valid UTF-8, no NUL byte (PostgreSQL text cannot hold one)
// and at most maxLen bytes. An empty value passes; the caller decides whether empty is
// allowed. It returns nil or a *ConfigError for field.
func checkText(field, value string, maxLen int) error {
	if why, _ := idents.Problem(value, maxLen); why != "" {
		return &ConfigError{Field: field, Reason: why}
	}
	return nil
}
