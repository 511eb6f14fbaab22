package redact_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

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
	// ConnectConfigs recognises the connect error (by its type's path, without linking
	// pgconn into the package) and leaves an error without one untouched.
	var ce *pgconn.ConnectError
	if stripped := redact.ConnectConfigs(wrapped); errors.As(stripped, &ce) || !errors.Is(stripped, context.DeadlineExceeded) {
		t.Errorf("ConnectConfigs = %#v, want the connect error replaced by its cause", stripped)
	}
	if plain := fmt.Errorf("x: %w", context.Canceled); redact.ConnectConfigs(plain) != plain { //nolint:errorlint // the same value, not a match
		t.Error("ConnectConfigs changed an error without a connect error")
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

// TestTextMasksEveryLibpqAndPgxForm: every way libpq and pgx take a password is masked by
// where it stands — a URL password holding an unescaped comma (alone and in a list),
// sslpassword in a URL query and in key=value form, password in a query, quoted values
// with escapes and spaces, any case, spaces around '='.
func TestTextMasksEveryLibpqAndPgxForm(t *testing.T) {
	const pw = "Pa,ss@w0rd"
	for in, want := range map[string]string{
		"postgres://game:" + pw + "@db:5432/world":                       "postgres://game:" + redact.Mask + "@db:5432/world",
		"open postgres://game:" + pw + "@db/world: refused":              "open postgres://game:" + redact.Mask + "@db/world: refused",
		"nats://a:" + pw + "@n1:4222,nats://b:" + pw + "@n2:4222":        "nats://a:" + redact.Mask + "@n1:4222,nats://b:" + redact.Mask + "@n2:4222",
		"postgres://db/world?sslmode=verify-full&sslpassword=k3y,pw&x=1": "postgres://db/world?sslmode=verify-full&sslpassword=" + redact.Mask + "&x=1",
		"postgres://db/world?user=game&password=s3cr3t":                  "postgres://db/world?user=game&password=" + redact.Mask,
		"host=db sslpassword=k3y dbname=w":                               "host=db sslpassword=" + redact.Mask + " dbname=w",
		`host=db password='it\'s a secret' dbname=w`:                     "host=db password=" + redact.Mask + " dbname=w",
		"host=db PASSWORD = s3cr3t dbname=w":                             "host=db PASSWORD = " + redact.Mask + " dbname=w",
		"user=game sslPassword='k 3 y'":                                  "user=game sslPassword=" + redact.Mask,
	} {
		if got := redact.Text(in); got != want {
			t.Errorf("Text(%q)\n = %q\nwant %q", in, got, want)
		}
	}
	// A word that merely ends in "password" with no '=' is left alone.
	if got := redact.Text("wrong password for user game"); got != "wrong password for user game" {
		t.Errorf("Text changed a plain sentence: %q", got)
	}
}

// TestShortSecretDoesNotGarble: a one-letter (or any short) password is masked where it
// stands and does not replace every occurrence of the letter in the rest of the text.
func TestShortSecretDoesNotGarble(t *testing.T) {
	in := "connect to postgres://game:a@db/world: dial tcp 10.0.0.1:5432: connection refused"
	want := "connect to postgres://game:" + redact.Mask + "@db/world: dial tcp 10.0.0.1:5432: connection refused"
	if got := redact.Text(in, "a"); got != want {
		t.Errorf("Text with secret \"a\"\n = %q\nwant %q", got, want)
	}
	if got := redact.Text("connection refused", "e"); got != "connection refused" {
		t.Errorf("a one-letter secret garbled the text: %q", got)
	}
	// A long secret is still found wherever a driver echoes it.
	if got := redact.Text("auth failed for token s3cr3t-t0ken", "s3cr3t-t0ken"); strings.Contains(got, "s3cr3t-t0ken") {
		t.Errorf("long secret kept: %q", got)
	}
}
