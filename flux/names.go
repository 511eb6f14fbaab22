package flux

import (
	"errors"

	"github.com/gamepersist/gamepersist/internal/configerr"
	idents "github.com/gamepersist/gamepersist/internal/ident"
)

// MaxIdentifierLength is the longest table, column or schema name flux accepts, in bytes:
// PostgreSQL's NAMEDATALEN−1 (63). The server silently truncates longer identifiers, so two
// configured names that differ only after byte 63 would name the same table or column and
// fail late, in Migrate or the first statement, with a raw SQL error; flux refuses them
// when the configuration is validated instead.
const MaxIdentifierLength = idents.MaxLength

// ConfigError is the error of a configuration value flux refuses: Field names the field
// (for example "RunnerConfig.MaxLag" or "PostgresConfig.TierColumn"), Value the refused
// value (quoted, cut after 64 bytes) and Reason what is wrong with it and which limit it
// breaks. It wraps ErrInvalidConfig, so errors.Is(err, ErrInvalidConfig) holds; use
// errors.As to read the fields. roomstore and natsbridge have the same shape, each
// matching its own ErrInvalidConfig.
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

// rulesConfigError returns a *ConfigError for the Rules of a config (field), which also
// matches ErrInvalidRules and, through errors.As, the *RulesError naming the rule.
func rulesConfigError(field string, err error) error {
	var re *RulesError
	if errors.As(err, &re) {
		return configerr.Wrap[invalidConfig](field+"."+re.Field, configerr.NoValue{}, re.Reason, err)
	}
	return configerr.Wrap[invalidConfig](field, configerr.NoValue{}, "", err)
}

// checkIdentifier checks a name that flux quotes into SQL as an identifier (a schema, table
// or column): not empty, valid UTF-8, no NUL, at most MaxIdentifierLength bytes. It returns
// nil or a *ConfigError for field.
func checkIdentifier(field, value string) error {
	if why := idents.IdentifierProblem(value); why != "" {
		return configError(field, value, why)
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
		return configError(field, value, why)
	}
	return nil
}
