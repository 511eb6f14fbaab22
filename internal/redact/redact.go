// Package redact is the module's one place that hides secrets — passwords, tokens,
// credentials in URLs — from error texts, log lines and program output. roomstore,
// natsbridge and the examples use it; nothing else in the module masks a secret.
package redact

import (
	"reflect"
	"regexp"
	"strings"
)

// Mask replaces every secret.
const Mask = "xxxxx"

// kvPassword matches a password in a key=value connection string or a URL's query, in
// every form libpq and pgx accept: password=… and sslpassword=…, any case, spaces around
// '=', the value bare (up to a space or '&') or single-quoted with backslash escapes.
var kvPassword = regexp.MustCompile(`(?i)((?:^|[^a-z0-9_])(?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*'?|[^\s&'"]+)`)

// MinSecretLength is the shortest secret Text looks for by its value. Secrets are masked by
// where they stand (a URL's user information, a password=… pair), which needs no value;
// searching a value as well catches a driver that echoes it elsewhere, but a short one
// (a one-letter password) would also match ordinary words and garble every text, so
// shorter values are not searched.
const MinSecretLength = 6

// Text masks, by position, the user information of every URL in s (a password may hold
// any character, a comma or '@' too) and every password=… and sslpassword=… of a
// key=value connection string or URL query; then every one of secrets at least
// MinSecretLength bytes long wherever it occurs. It costs a scan of s, plus one per such
// secret.
func Text(s string, secrets ...string) string {
	s = URLsIn(s)
	s = kvPassword.ReplaceAllString(s, "${1}"+Mask)
	for _, secret := range secrets {
		if len(secret) >= MinSecretLength {
			s = strings.ReplaceAll(s, secret, Mask)
		}
	}
	return s
}

// URL returns one URL (or a string meant to be one) with its secret masked: the password
// of "user:password@" (the user name is kept), or the whole "token@" of a NATS URL (nats,
// tls, ws, wss: a lone user part there is a token). It works on strings that do not parse
// as URLs too: everything between the scheme (or the start) and the last '@' is user
// information, since a password may hold an unescaped '/', '?', '#', '@' or space.
func URL(raw string) string {
	prefix, rest := "", raw
	if i := strings.Index(raw, "://"); i >= 0 {
		prefix, rest = raw[:i+3], raw[i+3:]
	}
	at := strings.LastIndexByte(rest, '@')
	if at < 0 {
		return raw
	}
	return prefix + maskUserinfo(prefix, rest[:at]) + rest[at:]
}

// maskUserinfo masks the secret of the user information ui of a URL starting with prefix.
func maskUserinfo(prefix, ui string) string {
	if user, _, ok := strings.Cut(ui, ":"); ok {
		return user + ":" + Mask
	}
	switch strings.ToLower(strings.TrimSuffix(prefix, "://")) {
	case "nats", "tls", "ws", "wss", "":
		return Mask // a token
	}
	return ui // a user name alone is no secret
}

// URLsIn masks the secret of every "scheme://…@host" in s as URL does. A URL's user
// information ends at its last '@' before the URL ends: at a quote or line end, or where a
// comma starts the next URL of a list (",nats://…"); so a password may hold an unescaped
// comma, space, '@', '/', '?' or '#'. Masking too much is the safe mistake.
func URLsIn(s string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, "://")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		start := i
		for start > 0 && isSchemeByte(s[start-1]) {
			start--
		}
		prefix := s[start : i+3]
		b.WriteString(s[:i+3])
		s = s[i+3:]
		end := urlEnd(s)
		if at := strings.LastIndexByte(s[:end], '@'); at >= 0 {
			b.WriteString(maskUserinfo(prefix, s[:at]))
			s = s[at:]
		}
	}
}

// urlEnd returns where the URL that s continues (after its "://") ends: the first quote,
// backtick or line end, or the comma before the next "scheme://".
func urlEnd(s string) int {
	end := strings.IndexAny(s, "\r\n\"'`")
	if end < 0 {
		end = len(s)
	}
	if next := strings.Index(s[:end], "://"); next >= 0 {
		// s[:next] ends with the next URL's scheme: cut at the comma before it.
		if c := strings.LastIndexByte(s[:next], ','); c >= 0 {
			end = c
		}
	}
	return end
}

func isSchemeByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'
}

// Error returns err with its text masked by Text(err.Error(), secrets...), or nil for a
// nil err. The result keeps no secret in any field: its text is masked when it is made,
// and it unwraps (for errors.Is and errors.As) to the parts of err's chain that hold no
// connection config — a *pgconn.ConnectError, which carries the password in its Config,
// is replaced by its cause.
func Error(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	return &redacted{msg: Text(err.Error(), secrets...), causes: safeParts(err)}
}

type redacted struct {
	msg    string
	causes []error
}

func (e *redacted) Error() string   { return e.msg }
func (e *redacted) Unwrap() []error { return e.causes }

// safeParts returns the largest parts of err's chain that contain no *pgconn.ConnectError.
func safeParts(err error) []error {
	if err == nil {
		return nil
	}
	if !holdsConfig(err) {
		return []error{err}
	}
	var out []error
	switch u := err.(type) { //nolint:errorlint // walks the chain itself, one link at a time
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			out = append(out, safeParts(e)...)
		}
	case interface{ Unwrap() error }:
		// A *pgconn.ConnectError is left out here: only its cause is kept.
		out = append(out, safeParts(u.Unwrap())...)
	}
	return out
}

// pgconnPath is the import path of pgx's pgconn, whose *ConnectError holds the password
// in its Config.
const pgconnPath = "github.com/jackc/pgx/v5/pgconn"

// holdsConfig reports whether err's chain holds a *pgconn.ConnectError. The type is
// recognised by its package path and name rather than imported, so that a package using
// only Text and URL (natsbridge) does not link pgx. It walks the chain as errors.As does.
func holdsConfig(err error) bool {
	if err == nil {
		return false
	}
	if t := reflect.TypeOf(err); t.Kind() == reflect.Pointer && t.Elem().Name() == "ConnectError" && t.Elem().PkgPath() == pgconnPath {
		return true
	}
	switch u := err.(type) { //nolint:errorlint // walks the chain itself, one link at a time
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			if holdsConfig(e) {
				return true
			}
		}
	case interface{ Unwrap() error }:
		return holdsConfig(u.Unwrap())
	}
	return false
}

// URLFlag is a flag.Value for a URL that may hold a password (a -database-url flag): its
// String, which -h prints as the default, is masked by Text; URL is the value as given.
type URLFlag struct{ URL string }

// String returns the URL masked.
func (f *URLFlag) String() string {
	if f == nil {
		return ""
	}
	return Text(f.URL)
}

// Set sets the URL.
func (f *URLFlag) Set(v string) error { f.URL = v; return nil }

// ConnectConfigs returns err unchanged when its chain holds no *pgconn.ConnectError, and
// Error(err) otherwise: the connect error (whose Config holds the password) replaced by
// its cause, the text masked. Stores call it on every error they return, so that no
// errors.As reaches a password; it costs one errors.As on the error path.
func ConnectConfigs(err error) error {
	if err == nil || !holdsConfig(err) {
		return err
	}
	return Error(err)
}
