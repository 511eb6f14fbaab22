package roomstore

import (
	"encoding/json"
	"fmt"
	"iter"
	"maps"
	"slices"
)

// Exits is the immutable set of a room's exits: direction → target room id. The zero value
// has no exits. Because no method changes it, a Room can be copied by value and shared between
// goroutines and cache readers without copying its exits.
type Exits struct {
	// sorted by dir; never mutated after construction.
	list []exit
}

type exit struct {
	dir, to string
}

// NewExits builds Exits from a map. The map is copied; later changes to it have no effect.
// It costs one allocation and a sort of the directions.
func NewExits(m map[string]string) Exits {
	if len(m) == 0 {
		return Exits{}
	}
	list := make([]exit, 0, len(m))
	for _, dir := range slices.Sorted(maps.Keys(m)) {
		list = append(list, exit{dir: dir, to: m[dir]})
	}
	return Exits{list: list}
}

// To returns the room id the exit in direction dir leads to.
func (e Exits) To(dir string) (string, bool) {
	i, ok := slices.BinarySearchFunc(e.list, dir, func(x exit, d string) int {
		switch {
		case x.dir < d:
			return -1
		case x.dir > d:
			return 1
		}
		return 0
	})
	if !ok {
		return "", false
	}
	return e.list[i].to, true
}

// Len returns the number of exits.
func (e Exits) Len() int { return len(e.list) }

// All iterates over the exits in direction order.
func (e Exits) All() iter.Seq2[string, string] {
	return func(yield func(string, string) bool) {
		for _, x := range e.list {
			if !yield(x.dir, x.to) {
				return
			}
		}
	}
}

// Map returns a new map of the exits that the caller may change freely.
func (e Exits) Map() map[string]string {
	m := make(map[string]string, len(e.list))
	for _, x := range e.list {
		m[x.dir] = x.to
	}
	return m
}

// Equal reports whether e and o hold the same exits.
func (e Exits) Equal(o Exits) bool {
	return slices.Equal(e.list, o.list)
}

// validate checks every direction and target.
func (e Exits) validate() error {
	for _, x := range e.list {
		if x.dir == "" {
			return fmt.Errorf("%w: exit with an empty direction", ErrInvalidRoom)
		}
		if err := ValidateID(x.to); err != nil {
			return fmt.Errorf("%w: exit %q: %w", ErrInvalidRoom, x.dir, err)
		}
	}
	return nil
}

// MarshalJSON encodes the exits as a JSON object.
func (e Exits) MarshalJSON() ([]byte, error) {
	return json.Marshal(e.Map())
}

// UnmarshalJSON decodes a JSON object of direction → room id.
func (e *Exits) UnmarshalJSON(b []byte) error {
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("roomstore: decode exits: %w", err)
	}
	*e = NewExits(m)
	return nil
}
