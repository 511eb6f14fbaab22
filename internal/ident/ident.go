// Package ident checks the names and texts that the stores put into SQL: identifiers (a
// schema, table or column, quoted with pgx.Identifier) and values that travel as text. It is
// shared by roomstore and flux so that both refuse the same names for the same reasons.
package ident

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxLength is PostgreSQL's longest identifier in bytes (NAMEDATALEN−1); it silently
// truncates longer ones, so two long names could collide.
const MaxLength = 63

// Problem returns what is wrong with value as an identifier or text of at most maxLen
// bytes — invalid UTF-8, a NUL byte (PostgreSQL text cannot hold one), too long — or ""
// (the reason does not repeat the value: the caller's error carries it),
// and whether the problem is the length. An empty value passes; the caller decides.
func Problem(value string, maxLen int) (why string, tooLong bool) {
	switch {
	case !utf8.ValidString(value):
		return "is not valid UTF-8", false
	case strings.IndexByte(value, 0) >= 0:
		return "contains a NUL byte", false
	case len(value) > maxLen:
		return fmt.Sprintf("is %d bytes, more than the limit of %d", len(value), maxLen), true
	}
	return "", false
}

// IdentifierProblem is Problem for an identifier (at most MaxLength bytes, not empty),
// with the reason a too-long name is refused.
func IdentifierProblem(value string) string {
	if value == "" {
		return "must not be empty"
	}
	why, tooLong := Problem(value, MaxLength)
	if tooLong {
		why += " (PostgreSQL's NAMEDATALEN−1: it truncates longer identifiers, so two names could collide)"
	}
	return why
}
