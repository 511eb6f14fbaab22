package natsbridge

import (
	"errors"
	"net/url"
	"strings"
)

// redactedSecret replaces every credential in errors and log lines.
const redactedSecret = "xxxxx"

// redactor removes a ConnectConfig's secrets (password, token, credentials embedded in
// URLs) from text.
type redactor struct {
	secrets []string
}

func newRedactor(c ConnectConfig) redactor {
	var r redactor
	add := func(s string) {
		if s != "" {
			r.secrets = append(r.secrets, s)
		}
	}
	add(c.Password)
	add(c.Token)
	for _, raw := range c.URLs {
		if u, err := parseServerURL(raw); err == nil && u.User != nil {
			pw, hasPW := u.User.Password()
			if hasPW {
				add(pw)
			} else {
				add(u.User.Username()) // a lone user part is a token
			}
			add(u.User.String())
		}
	}
	return r
}

// redact rewrites every URL in s without credentials and masks every known secret.
func (r redactor) redact(s string) string {
	s = redactURLsIn(s)
	for _, secret := range r.secrets {
		s = strings.ReplaceAll(s, secret, redactedSecret)
	}
	return s
}

// urls lists raw server URLs, comma-separated, with credentials redacted.
func (r redactor) urls(raws []string) string {
	out := make([]string, len(raws))
	for i, raw := range raws {
		out[i] = r.redact(redactRawURL(raw))
	}
	return strings.Join(out, ",")
}

// parseServerURL parses a server URL as nats.go does, adding "nats://" when there is no
// scheme, and checks that it names a host.
func parseServerURL(raw string) (*url.URL, error) {
	s := strings.TrimSpace(raw)
	if !strings.Contains(s, "://") {
		s = "nats://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			return nil, ue.Err // url.Error repeats the URL, password included
		}
		return nil, err
	}
	switch strings.ToLower(u.Scheme) {
	case "nats", "tls", "ws", "wss":
	default:
		return nil, errString("scheme " + u.Scheme + " is not nats, tls, ws or wss")
	}
	if u.Hostname() == "" {
		return nil, errString("no host")
	}
	return u, nil
}

// redactRawURL returns one configured server URL with any user information replaced by
// redactedSecret. It works on strings that do not parse as URLs too: everything between
// the scheme (or the start, for a URL without one) and the last '@' is user information,
// since a password may hold an unescaped '/', '?', '#' or space that ends a URL's
// authority for a parser.
func redactRawURL(raw string) string {
	prefix, rest := "", raw
	if i := strings.Index(raw, "://"); i >= 0 {
		prefix, rest = raw[:i+3], raw[i+3:]
	}
	at := strings.LastIndexByte(rest, '@')
	if at < 0 {
		return raw
	}
	return prefix + redactedSecret + rest[at:]
}

// redactURLsIn masks the user-information part ("user:pass@", "token@") of every
// "scheme://…@host" in s: up to the last '@' before the next comma, quote or line end
// (not '/', '?' or '#', which an unescaped password may hold; a space only ends it when
// no '@' follows before the end of the line). Masking too much is the safe mistake.
func redactURLsIn(s string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, "://")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i+3])
		s = s[i+3:]
		end := strings.IndexAny(s, ",\"'\n")
		if end < 0 {
			end = len(s)
		}
		if at := strings.LastIndexByte(s[:end], '@'); at >= 0 {
			b.WriteString(redactedSecret)
			s = s[at:]
		}
	}
}

// errString is a constant-text error.
type errString string

func (e errString) Error() string { return string(e) }
