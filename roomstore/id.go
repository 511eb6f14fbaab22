package roomstore

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// MaxIDLength is the longest room id, in bytes, that a store accepts.
const MaxIDLength = 255

// ValidateID reports whether id is acceptable as a room id. It returns nil or an error
// wrapping ErrInvalidID that says what is wrong. It costs one pass over the id and does no
// I/O; every store calls it before touching its backend.
//
// Any printable UTF-8 text is valid, quotes, SQL and shell metacharacters included: stores
// pass ids as parameters, never as text spliced into a statement.
func ValidateID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty", ErrInvalidID)
	}
	if len(id) > MaxIDLength {
		return fmt.Errorf("%w: %d bytes, longer than %d", ErrInvalidID, len(id), MaxIDLength)
	}
	for i, r := range id {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(id[i:]); size <= 1 {
				return fmt.Errorf("%w: invalid UTF-8 at byte %d", ErrInvalidID, i)
			}
		}
		if unicode.IsControl(r) {
			return fmt.Errorf("%w: control character %U at byte %d", ErrInvalidID, r, i)
		}
	}
	return nil
}

// validateIDs validates every id of a batch and returns the first failure.
func validateIDs(ids []string) error {
	for _, id := range ids {
		if err := ValidateID(id); err != nil {
			return err
		}
	}
	return nil
}
