package roomstore

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Attributes is a room's free-form, JSON-shaped data (flags, tags, game-specific values),
// held as immutable compact JSON text so that a Room stays safe to share by value. The zero
// value means no attributes and encodes as null.
type Attributes struct {
	raw string
}

// NewAttributes encodes v (anything encoding/json accepts) as attributes.
func NewAttributes(v any) (Attributes, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return Attributes{}, fmt.Errorf("roomstore: encode attributes: %w", err)
	}
	return AttributesFromJSON(b)
}

// MustAttributes is NewAttributes for literals in tests and examples; it panics on error.
func MustAttributes(v any) Attributes {
	a, err := NewAttributes(v)
	if err != nil {
		panic(err)
	}
	return a
}

// AttributesFromJSON validates and compacts raw JSON text into attributes. The bytes are
// copied. Empty input or the literal null yields the zero value.
func AttributesFromJSON(raw []byte) (Attributes, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return Attributes{}, nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return Attributes{}, fmt.Errorf("%w: attributes are not valid JSON: %w", ErrInvalidRoom, err)
	}
	if buf.String() == "null" {
		return Attributes{}, nil
	}
	return Attributes{raw: buf.String()}, nil
}

// IsZero reports whether there are no attributes.
func (a Attributes) IsZero() bool { return a.raw == "" }

// JSON returns a new copy of the compact JSON text ("null" for the zero value).
func (a Attributes) JSON() []byte {
	if a.raw == "" {
		return []byte("null")
	}
	return []byte(a.raw)
}

// String returns the compact JSON text.
func (a Attributes) String() string {
	if a.raw == "" {
		return "null"
	}
	return a.raw
}

// Decode unmarshals the attributes into v, as json.Unmarshal does.
func (a Attributes) Decode(v any) error {
	if err := json.Unmarshal(a.JSON(), v); err != nil {
		return fmt.Errorf("roomstore: decode attributes: %w", err)
	}
	return nil
}

// MarshalJSON returns the attributes as they are.
func (a Attributes) MarshalJSON() ([]byte, error) { return a.JSON(), nil }

// UnmarshalJSON stores a copy of b after validating it.
func (a *Attributes) UnmarshalJSON(b []byte) error {
	v, err := AttributesFromJSON(b)
	if err != nil {
		return err
	}
	*a = v
	return nil
}
