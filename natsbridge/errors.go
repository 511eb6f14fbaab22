package natsbridge

import (
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/gamepersist/gamepersist/internal/configerr"
)

// Sentinel errors returned (wrapped with %w) by this package. Match them with errors.Is.
var (
	// ErrInvalidConfig reports a configuration rejected eagerly, before any network
	// round trip (the same name and meaning as roomstore's and flux's): a ConnectConfig
	// with conflicting credentials, a certificate without its key, an unreadable CA
	// file, a value out of range (a *ConfigError), and the like.
	ErrInvalidConfig = errors.New("natsbridge: invalid config")
	// ErrInvalidSubject reports a subject or subject token that the builder refuses
	// because it would change the subject's meaning (a '.', '*' or '>' inside a token),
	// is empty, contains whitespace, control characters or invalid UTF-8, or makes the
	// subject longer than MaxSubjectLength bytes.
	ErrInvalidSubject = errors.New("natsbridge: invalid subject")
	// ErrDecode is matched (errors.Is) by every *DecodeError returned by Decode.
	ErrDecode = errors.New("natsbridge: cannot decode envelope")
	// ErrEncode reports an envelope that cannot be encoded or published: a missing
	// id, type or timestamp, or a payload that encoding/json rejects.
	ErrEncode = errors.New("natsbridge: cannot encode envelope")
	// ErrConnect reports a failure to establish a NATS connection. The wrapped error
	// names the server addresses with credentials redacted.
	ErrConnect = errors.New("natsbridge: cannot connect")
	// ErrClosed is returned by every call made on a closed Bridge (and by calls that
	// were waiting when it closed). It is also context.Cause of a handler's context
	// that Close cancelled.
	ErrClosed = errors.New("natsbridge: closed")
	// ErrHandlerTimeout is matched by context.Cause of a handler attempt's context
	// once its deadline (Config.HandlerTimeout) passed; the cause also matches
	// context.DeadlineExceeded.
	ErrHandlerTimeout = errors.New("natsbridge: handler timeout")
)

// ConfigError reports a configuration value natsbridge refuses: Field names the setting
// (e.g. "Config.Concurrency" or "Durable.Consumer"), Value the refused value
// (quoted, cut after 64 bytes, a secret masked) and Reason what is wrong and the accepted
// range (e.g. "want 1..4096"). It wraps ErrInvalidConfig; errors.As gives the fields.
// roomstore and flux have the same shape, each matching its own ErrInvalidConfig.
type ConfigError = configerr.Error[invalidConfig]

// invalidConfig ties ConfigError to ErrInvalidConfig.
type invalidConfig struct{}

// Sentinel returns ErrInvalidConfig.
func (invalidConfig) Sentinel() error { return ErrInvalidConfig }

// configError returns a *ConfigError for field holding value.
func configError(field string, value any, reason string) *ConfigError {
	return configerr.New[invalidConfig](field, value, reason)
}

// configErrorf is configError with a formatted reason.
func configErrorf(field string, value any, format string, args ...any) *ConfigError {
	return configerr.Newf[invalidConfig](field, value, format, args...)
}

// intIn returns a *ConfigError unless lo <= v <= hi.
func intIn(field string, v, lo, hi int) error {
	if v >= lo && v <= hi {
		return nil
	}
	return configErrorf(field, v, "want %d..%d", lo, hi)
}

// durationIn returns a *ConfigError unless 0 < d <= hi.
func durationIn(field string, d, hi time.Duration) error {
	if d > 0 && d <= hi {
		return nil
	}
	return configErrorf(field, d, "want (0, %s]", hi)
}

// errText is the text of err for a log field: text, or, when the error's message is
// empty, its type, so that no log line carries "error":"".
func errText(text string, err error) string {
	if text != "" {
		return text
	}
	return fmt.Sprintf("%T with an empty message", err)
}

// logErr adds err to ev as the "error" field, unless err is nil.
func logErr(ev *zerolog.Event, err error) *zerolog.Event {
	if err == nil {
		return ev
	}
	return ev.Str("error", errText(err.Error(), err))
}
