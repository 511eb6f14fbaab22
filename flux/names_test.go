package flux

import (
	"errors"
	"strings"
	"testing"
)

// TestCheckIdentifier: names PostgreSQL would truncate (more than 63 bytes, counted in
// bytes, not runes), invalid UTF-8 and NUL are refused with a *ConfigError naming the
// field and wrapping ErrInvalidConfig; 63 bytes, multi-byte runes ending exactly at byte 63
// and any other quoted-identifier character are accepted.
func TestCheckIdentifier(t *testing.T) {
	t.Parallel()
	const field = "PostgresConfig.TierColumn"
	cases := []struct {
		name  string
		value string
		ok    bool
		why   string // part of the reason when refused
	}{
		{"plain", "tier", true, ""},
		{"exactly 63 bytes", strings.Repeat("a", 63), true, ""},
		{"64 bytes", strings.Repeat("a", 64), false, "64 bytes"},
		{"63 bytes ending in a 2-byte rune", strings.Repeat("a", 61) + "é", true, ""},
		{"64 bytes ending in a 2-byte rune", strings.Repeat("a", 62) + "é", false, "64 bytes"},
		{"63 bytes of 3-byte runes", strings.Repeat("€", 21), true, ""},
		{"22 runes, 66 bytes", strings.Repeat("€", 22), false, "66 bytes"},
		{"quotes, spaces, dots", `a "b".c d; DROP`, true, ""},
		{"empty", "", false, "empty"},
		{"invalid UTF-8", "tier\xff", false, "UTF-8"},
		{"truncated multi-byte rune", strings.Repeat("a", 62) + "\xc3", false, "UTF-8"},
		{"NUL", "ti\x00er", false, "NUL"},
	}
	for _, c := range cases {
		err := checkIdentifier(field, c.value)
		if c.ok {
			if err != nil {
				t.Errorf("%s: checkIdentifier(%q) = %v, want nil", c.name, c.value, err)
			}
			continue
		}
		assertConfigError(t, c.name, err, field, c.why)
	}
	// 64 bytes: the reason says why the limit exists.
	if err := checkIdentifier(field, strings.Repeat("a", 64)); err == nil || !strings.Contains(err.Error(), "63") ||
		!strings.Contains(err.Error(), "truncates") {
		t.Errorf("64-byte name: error %v does not give the 63-byte limit and its reason", err)
	}
	// The optional form accepts empty and otherwise checks the same.
	if err := checkOptionalIdentifier("PostgresConfig.Schema", ""); err != nil {
		t.Errorf("checkOptionalIdentifier(\"\") = %v, want nil", err)
	}
	assertConfigError(t, "optional 64 bytes", checkOptionalIdentifier("PostgresConfig.Schema", strings.Repeat("s", 64)),
		"PostgresConfig.Schema", "64 bytes")
	assertConfigError(t, "optional NUL", checkOptionalIdentifier("PostgresConfig.Schema", "\x00"),
		"PostgresConfig.Schema", "NUL")
}

// TestCheckText: a runner id or other text is refused when it is invalid UTF-8, holds a
// NUL or is longer than the limit in bytes; empty and exactly-the-limit values pass.
func TestCheckText(t *testing.T) {
	t.Parallel()
	const field = "RunnerID"
	cases := []struct {
		name  string
		value string
		max   int
		ok    bool
		why   string
	}{
		{"plain", "srv-eu-1", 64, true, ""},
		{"empty", "", 64, true, ""},
		{"exactly the limit", strings.Repeat("x", 10), 10, true, ""},
		{"one byte over", strings.Repeat("x", 11), 10, false, "11 bytes"},
		{"multi-byte at the limit", "xxxxxxxx" + "é", 10, true, ""},
		{"multi-byte over the limit", "xxxxxxxxx" + "é", 10, false, "11 bytes"},
		{"NUL", "srv\x00", 64, false, "NUL"},
		{"invalid UTF-8", "srv\xc0\xaf", 64, false, "UTF-8"},
	}
	for _, c := range cases {
		err := checkText(field, c.value, c.max)
		if c.ok {
			if err != nil {
				t.Errorf("%s: checkText(%q, %d) = %v, want nil", c.name, c.value, c.max, err)
			}
			continue
		}
		assertConfigError(t, c.name, err, field, c.why)
	}
}

// TestConfigErrorUnwraps: a ConfigError is ErrInvalidConfig, also when wrapped again.
func TestConfigErrorUnwraps(t *testing.T) {
	t.Parallel()
	err := error(&ConfigError{Field: "RunnerID", Reason: "contains a NUL byte"})
	if got, want := err.Error(), "flux: invalid config: RunnerID: contains a NUL byte"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	wrapped := errors.Join(errors.New("NewRunner"), err)
	var ce *ConfigError
	if !errors.Is(wrapped, ErrInvalidConfig) || !errors.As(wrapped, &ce) || ce.Field != "RunnerID" {
		t.Errorf("wrapped ConfigError: Is ErrInvalidConfig %v, As %v (%+v)",
			errors.Is(wrapped, ErrInvalidConfig), errors.As(wrapped, &ce), ce)
	}
	if errors.Is(err, ErrInvalidRules) {
		t.Error("a ConfigError is ErrInvalidRules")
	}
}

func assertConfigError(t *testing.T, name string, err error, field, why string) {
	t.Helper()
	var ce *ConfigError
	switch {
	case err == nil:
		t.Errorf("%s: accepted, want a ConfigError", name)
	case !errors.Is(err, ErrInvalidConfig):
		t.Errorf("%s: %v does not wrap ErrInvalidConfig", name, err)
	case !errors.As(err, &ce):
		t.Errorf("%s: %v is not a *ConfigError", name, err)
	case ce.Field != field:
		t.Errorf("%s: Field %q, want %q", name, ce.Field, field)
	case !strings.Contains(ce.Reason, why):
		t.Errorf("%s: Reason %q does not mention %q", name, ce.Reason, why)
	case !strings.Contains(err.Error(), field):
		t.Errorf("%s: message %q does not name the field", name, err)
	}
}
