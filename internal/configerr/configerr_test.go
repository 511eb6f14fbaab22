package configerr_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gamepersist/gamepersist/internal/configerr"
)

var (
	errA = errors.New("a: invalid config")
	errB = errors.New("b: invalid config")
)

type kindA struct{}

func (kindA) Sentinel() error { return errA }

type kindB struct{}

func (kindB) Sentinel() error { return errB }

func TestErrorShapeAndKinds(t *testing.T) {
	err := error(configerr.New[kindA]("Config.MaxLag", -1, "must be within 1..10000"))
	if got, want := err.Error(), "a: invalid config: Config.MaxLag = -1: must be within 1..10000"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(err, errA) || errors.Is(err, errB) {
		t.Error("kind A error does not match only errA")
	}
	var b *configerr.Error[kindB]
	if errors.As(err, &b) {
		t.Error("a kind A error is a kind B error")
	}
	// A literal (as a caller may build one) unwraps to its kind too.
	lit := error(&configerr.Error[kindB]{Field: "F", Reason: "r"})
	if !errors.Is(lit, errB) || lit.Error() != "b: invalid config: F: r" {
		t.Errorf("literal: %q", lit)
	}
}

func TestValueFormsAndCuts(t *testing.T) {
	for v, want := range map[any]string{
		"x":                 `"x"`,
		"a\x00b":            `"a\x00b"`,
		"\xff":              `"\xff"`,
		3 * time.Second:     "3s",
		int64(1) << 40:      "1099511627776",
		configerr.NoValue{}: "",
	} {
		if got := configerr.Value(v); got != want {
			t.Errorf("Value(%#v) = %q, want %q", v, got, want)
		}
	}
	long := strings.Repeat("é", 3000)
	got := configerr.Value(long)
	if len(got) > configerr.MaxValueLength+40 || !strings.Contains(got, "(6000 bytes)") {
		t.Errorf("a 6000-byte value is kept as %q", got)
	}
}

func TestSecretAndWrap(t *testing.T) {
	s := configerr.Secret[kindA]("ConnectConfig.Password", "set without User")
	if s.Value != configerr.Mask || strings.Contains(s.Error(), "hunter2") {
		t.Errorf("Secret = %+v", s)
	}
	cause := errors.New("flux: invalid rules: MaxLucidity: too big")
	w := configerr.Wrap[kindA]("RunnerConfig.Rules", configerr.NoValue{}, "", cause)
	if !errors.Is(w, errA) || !errors.Is(w, cause) || !strings.Contains(w.Error(), "too big") {
		t.Errorf("Wrap = %v", w)
	}
}
