package main

import (
	"fmt"

	"github.com/gamepersist/gamepersist/internal/redact"
)

// String returns c as %+v would print it with every password masked (internal/redact),
// so a Config printed or logged by mistake shows none. %v, %+v and %s use it.
func (c Config) String() string {
	type plain Config // no methods: no recursion
	return fmt.Sprintf("%+v", plain(c.masked()))
}

// GoString is String for %#v.
func (c Config) GoString() string {
	type plain Config
	return fmt.Sprintf("%#v", plain(c.masked()))
}

// masked returns c with the passwords of its URLs masked.
func (c Config) masked() Config {
	c.DatabaseURL = redact.Text(c.DatabaseURL)
	c.NATSURL = redact.Text(c.NATSURL)
	return c
}
