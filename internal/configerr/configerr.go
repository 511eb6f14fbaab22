// Package configerr is the one shape of a refused configuration value in this module:
// Error{Field, Value, Reason}. roomstore, flux and natsbridge each re-export it as their
// ConfigError (a type alias of Error instantiated with the package's own kind), so the
// fields and the text are the same everywhere while errors.Is still tells the packages
// apart: a flux *ConfigError matches flux.ErrInvalidConfig, never roomstore's.
package configerr

import (
	"fmt"
	"strconv"
	"unicode/utf8"
)

// Kind names a package's "invalid config" sentinel: a zero-size type whose Sentinel
// method returns it (roomstore.ErrInvalidConfig, flux.ErrInvalidConfig, …).
type Kind interface {
	Sentinel() error
}

// MaxValueLength is the most bytes of a refused value Error keeps in Value: a longer value
// is cut there and marked with its length, so a 5 KB name does not flood a log line.
const MaxValueLength = 64

// Mask is the Value of a refused secret (a password or token): its text is never kept.
const Mask = "xxxxx"

// Error is a configuration value a package refuses. Field names the setting (for
// example "RunnerConfig.MaxLag"), Value is the refused value as text (strings quoted, cut
// after MaxValueLength bytes, a secret masked; empty when the field is not one value, such
// as two fields that conflict) and Reason says what is wrong and what is accepted. It
// unwraps to K's sentinel (and to a cause, when one was given), so errors.Is(err,
// ErrInvalidConfig) holds in the package that made it. Constructing one costs a
// formatting of the value.
type Error[K Kind] struct {
	Field  string
	Value  string
	Reason string
	cause  error
}

// Error returns "<sentinel>: <Field> = <Value>: <Reason>" (without " = <Value>" when
// Value is empty).
func (e *Error[K]) Error() string {
	var k K
	s := k.Sentinel().Error() + ": " + e.Field
	if e.Value != "" {
		s += " = " + e.Value
	}
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	return s
}

// Unwrap returns K's sentinel and the cause, if any.
func (e *Error[K]) Unwrap() []error {
	var k K
	if e.cause != nil {
		return []error{k.Sentinel(), e.cause}
	}
	return []error{k.Sentinel()}
}

// New returns an *Error[K] for field holding value (formatted by Value) with reason.
func New[K Kind](field string, value any, reason string) *Error[K] {
	return &Error[K]{Field: field, Value: Value(value), Reason: reason}
}

// Newf is New with a formatted reason.
func Newf[K Kind](field string, value any, format string, args ...any) *Error[K] {
	return New[K](field, value, fmt.Sprintf(format, args...))
}

// Wrap is New with a cause that the error also unwraps to (for example a *RulesError),
// its text used as the reason when reason is empty.
func Wrap[K Kind](field string, value any, reason string, cause error) *Error[K] {
	if reason == "" && cause != nil {
		reason = cause.Error()
	}
	e := New[K](field, value, reason)
	e.cause = cause
	return e
}

// Secret returns an *Error[K] for a secret field: its Value is Mask whatever it held.
func Secret[K Kind](field, reason string) *Error[K] {
	return &Error[K]{Field: field, Value: Mask, Reason: reason}
}

// NoValue is a value for New that leaves Value empty (a refusal about several fields).
type NoValue struct{}

// Value returns v as Error keeps it: a string quoted (Go syntax, so invalid UTF-8 and
// control bytes are visible) and cut after MaxValueLength bytes with its full length; a
// fmt.Stringer or error by its text; anything else by fmt.Sprint; NoValue as "".
func Value(v any) string {
	switch x := v.(type) {
	case NoValue:
		return ""
	case string:
		return quoteCut(x)
	case []byte:
		return quoteCut(string(x))
	case error:
		return quoteCut(x.Error())
	case fmt.Stringer:
		return x.String()
	}
	return fmt.Sprint(v)
}

func quoteCut(s string) string {
	if len(s) <= MaxValueLength {
		return strconv.Quote(s)
	}
	cut := MaxValueLength
	for cut > MaxValueLength-utf8.UTFMax && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "… (" + strconv.Itoa(len(s)) + " bytes)"
}
