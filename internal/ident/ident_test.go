package ident_test

import (
	"strings"
	"testing"

	"github.com/gamepersist/gamepersist/internal/ident"
)

func TestIdentifierProblem(t *testing.T) {
	for value, bad := range map[string]bool{
		"rooms": false, `it's "odd"; DROP TABLE x`: false, strings.Repeat("a", 63): false,
		"": true, "a\x00b": true, "\xff": true, strings.Repeat("a", 64): true,
	} {
		if got := ident.IdentifierProblem(value); (got != "") != bad {
			t.Errorf("IdentifierProblem(%q) = %q, want a problem: %v", value, got, bad)
		}
	}
	if why, tooLong := ident.Problem(strings.Repeat("x", 11), 10); why == "" || !tooLong {
		t.Errorf("Problem of 11 bytes with limit 10 = %q, %v", why, tooLong)
	}
}
