package redact_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gamepersist/gamepersist/internal/redact"
)

const secret = "s3cr3t-p4ss"

func TestTextMasksURLsKeyValuesAndSecrets(t *testing.T) {
	for _, in := range []string{
		"postgres://game:" + secret + "@db:5432/world",
		"nats://game:" + secret + "@n1:4222,nats://" + secret + "@n2:4222",
		"host=db user=game password=" + secret + " dbname=world",
		"host=db password='" + secret + " with space' dbname=world",
		"token " + secret + " refused",
		"tls://u:p/a?s#" + secret + "@host",
	} {
		got := redact.Text(in, secret)
		if strings.Contains(got, secret) || !strings.Contains(got, redact.Mask) {
			t.Errorf("Text(%q) = %q", in, got)
		}
	}
	for in, want := range map[string]string{
		"postgres://u:" + secret + "@h/db":          "postgres://u:" + redact.Mask + "@h/db",
		"postgres://postgres@h/db":                  "postgres://postgres@h/db",
		"nats://" + secret + "@n1:4222":             "nats://" + redact.Mask + "@n1:4222",
		"n1:4222":                                   "n1:4222",
		"postgresql://mud:hun@ter2@db/game?ssl=off": "postgresql://mud:" + redact.Mask + "@db/game?ssl=off",
	} {
		if got := redact.URL(in); got != want {
			t.Errorf("URL(%q) = %q, want %q", in, got, want)
		}
		if got := redact.Text(in); got != want {
			t.Errorf("Text(%q) = %q, want %q", in, got, want)
		}
	}
	if got := redact.Text("db/game?user=mud&password=" + secret + "&x=1"); got != "db/game?user=mud&password="+redact.Mask+"&x=1" {
		t.Errorf("Text of a query = %q", got)
	}
	if got := redact.Text("no secret here: postgres://h/db"); got != "no secret here: postgres://h/db" {
		t.Errorf("Text changed a clean string: %q", got)
	}
}

// TestErrorKeepsNoSecret: a real pgx connect error carries the password in its Config; the
// redacted error shows it in no text and no field (%v, %+v, %#v), and still matches the
// causes a caller matches (the context's deadline).
func TestErrorKeepsNoSecret(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := pgx.Connect(ctx, "postgres://game:"+secret+"@127.0.0.1:1/world?connect_timeout=1")
	if err == nil {
		t.Fatal("connected to port 1")
	}
	wrapped := fmt.Errorf("open: %w: %w", context.DeadlineExceeded, err)
	red := redact.Error(wrapped, secret)
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		if s := fmt.Sprintf(verb, red); strings.Contains(s, secret) {
			t.Errorf("%s shows the secret: %s", verb, s)
		}
	}
	for e := range walk(red) {
		if s := fmt.Sprintf("%#v", e); strings.Contains(s, secret) {
			t.Errorf("a wrapped error shows the secret: %s", s)
		}
	}
	if !errors.Is(red, context.DeadlineExceeded) {
		t.Error("the redacted error no longer matches context.DeadlineExceeded")
	}
	if redact.Error(nil) != nil {
		t.Error("Error(nil) != nil")
	}
}

// walk yields every error of err's chain.
func walk(err error) func(func(error) bool) {
	return func(yield func(error) bool) {
		var rec func(error) bool
		rec = func(e error) bool {
			if e == nil {
				return true
			}
			if !yield(e) {
				return false
			}
			switch u := e.(type) { //nolint:errorlint // walks the chain itself, one link at a time
			case interface{ Unwrap() []error }:
				for _, x := range u.Unwrap() {
					if !rec(x) {
						return false
					}
				}
			case interface{ Unwrap() error }:
				return rec(u.Unwrap())
			}
			return true
		}
		rec(err)
	}
}

func TestURLFlagPrintsNoSecret(t *testing.T) {
	f := &redact.URLFlag{URL: "postgres://game:" + secret + "@db/world"}
	if s := f.String(); strings.Contains(s, secret) {
		t.Fatalf("String = %q", s)
	}
	if err := f.Set("postgres://h/db"); err != nil || f.URL != "postgres://h/db" {
		t.Fatalf("Set: %v, URL %q", err, f.URL)
	}
	if (*redact.URLFlag)(nil).String() != "" {
		t.Fatal("nil URLFlag String not empty")
	}
}
