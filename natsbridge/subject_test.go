package natsbridge_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/gamepersist/gamepersist/natsbridge"
)

func TestNamedSubjects(t *testing.T) {
	t.Parallel()
	cases := []struct {
		build func(string) (string, error)
		want  string
	}{
		{natsbridge.ChatSay, "chat.say.room.r1"},
		{natsbridge.LucidityChange, "events.lucidity_change.r1"},
	}
	for _, tc := range cases {
		got, err := tc.build("r1")
		if err != nil || got != tc.want {
			t.Errorf("got %q, %v; want %q", got, err, tc.want)
		}
		if natsbridge.LastToken(got) != "r1" {
			t.Errorf("LastToken(%q) = %q", got, natsbridge.LastToken(got))
		}
		// A hostile id must not add a token or become a wildcard.
		for _, bad := range []string{"", "r1.admin", "*", ">", "r 1", "r1\n", "a\x00b", "\xff", "r\u200b1"} {
			if s, err := tc.build(bad); !errors.Is(err, natsbridge.ErrInvalidSubject) {
				t.Errorf("id %q gave %q, %v; want ErrInvalidSubject", bad, s, err)
			}
		}
	}
}

func TestSubjectRejectsBadTokens(t *testing.T) {
	t.Parallel()
	cases := []struct {
		token, why string
	}{
		{"", "empty"},
		{"a.b", "'.'"},
		{"*", "wildcard"},
		{">", "wildcard"},
		{"a*", "wildcard"},
		{"a>", "wildcard"},
		{"a b", "whitespace"},
		{"a\tb", "whitespace"},
		{"a\u00a0b", "whitespace"},
		{"a\x7fb", "control"},
		{"a\x01b", "control"},
		{"a\u202eb", "format"},
		{"\xc3\x28", "UTF-8"},
	}
	for _, tc := range cases {
		_, err := natsbridge.Subject("chat", "say", "room", tc.token)
		if !errors.Is(err, natsbridge.ErrInvalidSubject) {
			t.Errorf("token %q: got %v, want ErrInvalidSubject", tc.token, err)
			continue
		}
		if !strings.Contains(err.Error(), "token 3") || !strings.Contains(err.Error(), tc.why) {
			t.Errorf("token %q: error %q does not say which token (3) and why (%s)", tc.token, err, tc.why)
		}
		if err := natsbridge.ValidateToken(tc.token); !errors.Is(err, natsbridge.ErrInvalidSubject) {
			t.Errorf("ValidateToken(%q) = %v", tc.token, err)
		}
	}
	if _, err := natsbridge.Subject(); !errors.Is(err, natsbridge.ErrInvalidSubject) {
		t.Errorf("no tokens: %v", err)
	}
	// Length: exactly MaxSubjectLength is fine, one more is not.
	long := strings.Repeat("x", natsbridge.MaxSubjectLength-len("chat."))
	if s, err := natsbridge.Subject("chat", long); err != nil || len(s) != natsbridge.MaxSubjectLength {
		t.Errorf("255 bytes: %d, %v", len(s), err)
	}
	if _, err := natsbridge.Subject("chat", long+"x"); !errors.Is(err, natsbridge.ErrInvalidSubject) || !strings.Contains(err.Error(), "256") {
		t.Errorf("256 bytes: %v", err)
	}
	// Unicode letters are fine.
	if s, err := natsbridge.Subject("chat", "say", "room", "höhle-7"); err != nil || s != "chat.say.room.höhle-7" {
		t.Errorf("unicode: %q %v", s, err)
	}
}

func TestPattern(t *testing.T) {
	t.Parallel()
	good := map[string][]string{
		"chat.say.room.*":  {"chat", "say", "room", "*"},
		"events.>":         {"events", ">"},
		"*.say.*.r1":       {"*", "say", "*", "r1"},
		">":                {">"},
		"events.game_tick": {"events", "game_tick"},
	}
	for want, toks := range good {
		got, err := natsbridge.Pattern(toks...)
		if err != nil || got != want {
			t.Errorf("Pattern(%q) = %q, %v", toks, got, err)
		}
		if err := natsbridge.ValidatePattern(want); err != nil {
			t.Errorf("ValidatePattern(%q) = %v", want, err)
		}
	}
	for _, bad := range []string{"events.>.x", "chat.a*", "chat..x", "", "chat.", ".chat", "a b"} {
		if err := natsbridge.ValidatePattern(bad); !errors.Is(err, natsbridge.ErrInvalidSubject) {
			t.Errorf("ValidatePattern(%q) = %v", bad, err)
		}
	}
	for _, bad := range []string{"chat.say.room.*", "events.>", "chat..x", "", "chat.", "chat.a b"} {
		if err := natsbridge.ValidateSubject(bad); !errors.Is(err, natsbridge.ErrInvalidSubject) {
			t.Errorf("ValidateSubject(%q) = %v", bad, err)
		}
	}
}

func TestLastToken(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"chat.say.room.r1": "r1", "events.game_tick": "game_tick", "solo": "solo", "a.": ""} {
		if got := natsbridge.LastToken(in); got != want {
			t.Errorf("LastToken(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzSubject checks that Subject accepts exactly the tokens that keep a subject's
// meaning, and that an accepted subject splits back into the same tokens.
func FuzzSubject(f *testing.F) {
	for _, s := range []string{"r1", "a.b", "*", ">", "a b", "\x00", "\xff", "höhle", "a\u200bb", ""} {
		f.Add("chat", s)
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		s, err := natsbridge.Subject(a, b)
		if err != nil {
			if !errors.Is(err, natsbridge.ErrInvalidSubject) {
				t.Fatalf("error %v does not wrap ErrInvalidSubject", err)
			}
			return
		}
		if len(s) > natsbridge.MaxSubjectLength || !utf8.ValidString(s) {
			t.Fatalf("accepted %q", s)
		}
		toks := strings.Split(s, ".")
		if len(toks) != 2 || toks[0] != a || toks[1] != b {
			t.Fatalf("Subject(%q, %q) = %q splits differently", a, b, s)
		}
		for _, r := range s {
			if r == '*' || r == '>' || unicode.IsSpace(r) || unicode.IsControl(r) {
				t.Fatalf("accepted %q with %q", s, r)
			}
		}
		if natsbridge.ValidateSubject(s) != nil || natsbridge.LastToken(s) != b {
			t.Fatalf("accepted %q fails ValidateSubject/LastToken", s)
		}
	})
}

func ExampleSubject() {
	s, err := natsbridge.ChatSay("tavern-3")
	fmt.Println(s, err)

	// A player-supplied id cannot add a token or become a wildcard.
	_, err = natsbridge.ChatSay("tavern.>")
	fmt.Println(errors.Is(err, natsbridge.ErrInvalidSubject))
	fmt.Println(err)

	// Wildcards only through Pattern.
	p, err := natsbridge.Pattern("chat", "say", "room", natsbridge.WildcardToken)
	fmt.Println(p, err)
	fmt.Println(natsbridge.LastToken(s))
	// Output:
	// chat.say.room.tavern-3 <nil>
	// true
	// natsbridge: invalid subject: token 3 "tavern.>" contains '.' (would split the token)
	// chat.say.room.* <nil>
	// tavern-3
}
