package natsbridge

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxSubjectLength is the longest subject, in bytes, the builder produces or accepts.
const MaxSubjectLength = 255

// The wildcard tokens, accepted only by Pattern and ValidatePattern.
const (
	// WildcardToken matches exactly one token.
	WildcardToken = "*"
	// TailWildcardToken matches one or more trailing tokens; it must be last.
	TailWildcardToken = ">"
)

// Subject joins tokens with '.' into a literal subject, e.g.
// Subject("chat", "say", "room", roomID) → "chat.say.room.<roomID>". Each token must be
// non-empty valid UTF-8 without '.', '*', '>', whitespace, control or invisible format
// characters, so that a value taken from a player (a room id, a name) can never add a
// token or become a wildcard; the result must be at most MaxSubjectLength bytes. The
// error wraps ErrInvalidSubject and says which token is wrong and why. Cost: one
// allocation for the result.
func Subject(tokens ...string) (string, error) {
	return join(tokens, false)
}

// Pattern is Subject for subscriptions: a token may also be WildcardToken ("*", one
// token), and the last token may be TailWildcardToken (">", the rest). It is the only
// way this package builds a subject with wildcards.
func Pattern(tokens ...string) (string, error) {
	return join(tokens, true)
}

// ValidateSubject checks a complete literal subject (no wildcards) by the rules of
// Subject. Publishing helpers call it before every publish.
func ValidateSubject(subject string) error {
	_, err := join(splitSubject(subject), false)
	return err
}

// ValidatePattern checks a complete subscription subject by the rules of Pattern.
func ValidatePattern(pattern string) error {
	_, err := join(splitSubject(pattern), true)
	return err
}

// ValidateToken checks one literal token by the rules of Subject.
func ValidateToken(token string) error {
	if reason := tokenProblem(token); reason != "" {
		return fmt.Errorf("%w: token %q %s", ErrInvalidSubject, token, reason)
	}
	return nil
}

// LastToken returns the part of subject after its last '.', or subject itself when it
// has no '.'. The Bridge uses it as the default ordering key ("chat.say.room.r1" → "r1").
func LastToken(subject string) string {
	return subject[strings.LastIndexByte(subject, '.')+1:]
}

// ChatSay is the subject of chat said in a room: "chat.say.room.<roomID>".
func ChatSay(roomID string) (string, error) { return Subject("chat", "say", "room", roomID) }

// LucidityChange is the subject of a player's lucidity change:
// "events.lucidity_change.<playerID>".
func LucidityChange(playerID string) (string, error) {
	return Subject("events", "lucidity_change", playerID)
}

func splitSubject(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ".")
}

func join(tokens []string, wildcards bool) (string, error) {
	if len(tokens) == 0 {
		return "", fmt.Errorf("%w: no tokens", ErrInvalidSubject)
	}
	n := len(tokens) - 1
	for i, tok := range tokens {
		n += len(tok)
		if wildcards && tok == WildcardToken {
			continue
		}
		if wildcards && tok == TailWildcardToken {
			if i != len(tokens)-1 {
				return "", fmt.Errorf("%w: token %d %q: '>' must be the last token", ErrInvalidSubject, i, tok)
			}
			continue
		}
		if reason := tokenProblem(tok); reason != "" {
			return "", fmt.Errorf("%w: token %d %q %s", ErrInvalidSubject, i, tok, reason)
		}
	}
	if n > MaxSubjectLength {
		return "", fmt.Errorf("%w: %d bytes is longer than %d", ErrInvalidSubject, n, MaxSubjectLength)
	}
	return strings.Join(tokens, "."), nil
}

// tokenProblem returns why tok is not a valid literal token, or "" when it is.
func tokenProblem(tok string) string {
	if tok == "" {
		return "is empty"
	}
	if !utf8.ValidString(tok) {
		return "is not valid UTF-8"
	}
	for _, r := range tok {
		switch {
		case r == '.':
			return "contains '.' (would split the token)"
		case r == '*' || r == '>':
			return "contains a wildcard character ('*' or '>'); use Pattern for subscriptions"
		case unicode.IsSpace(r):
			return "contains whitespace"
		case unicode.IsControl(r):
			return "contains a control character"
		case unicode.Is(unicode.Cf, r):
			return "contains an invisible format character"
		}
	}
	return ""
}
