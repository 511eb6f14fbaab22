package natsbridge

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/gamepersist/gamepersist/internal/redact"
)

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

// redact masks the credentials of every URL in s and every known secret (internal/redact).
func (r redactor) redact(s string) string { return redact.Text(s, r.secrets...) }

// urls lists raw server URLs, comma-separated, with credentials redacted.
func (r redactor) urls(raws []string) string {
	out := make([]string, len(raws))
	for i, raw := range raws {
		out[i] = r.redact(redact.URL(raw))
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

// errString is a constant-text error.
type errString string

func (e errString) Error() string { return string(e) }

// String returns c as %+v would print it, with every secret masked: Password and Token
// (when set) as redact.Mask, and the credentials of each URL. %v, %+v and %s use it, so a
// config logged or printed by mistake shows no secret. It costs a copy and a formatting.
func (c ConnectConfig) String() string {
	type plain ConnectConfig // no methods: no recursion
	return fmt.Sprintf("%+v", plain(c.masked()))
}

// GoString is String for %#v.
func (c ConnectConfig) GoString() string {
	type plain ConnectConfig
	return fmt.Sprintf("%#v", plain(c.masked()))
}

// masked returns a copy of c with its secrets masked (its URLs slice copied).
func (c ConnectConfig) masked() ConnectConfig {
	red := newRedactor(c)
	if c.Password != "" {
		c.Password = redact.Mask
	}
	if c.Token != "" {
		c.Token = redact.Mask
	}
	urls := make([]string, len(c.URLs))
	for i, raw := range c.URLs {
		urls[i] = red.redact(redact.URL(raw))
	}
	if c.URLs != nil {
		c.URLs = urls
	}
	return c
}
