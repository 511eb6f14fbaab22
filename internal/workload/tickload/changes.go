package tickload

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"

	"github.com/gamepersist/gamepersist/flux"
)

// ChangeKey is one lucidity change as the paths are compared on: the player, the
// lucidity before and after the tick.
type ChangeKey struct {
	PlayerID string
	Old, New int
}

// ChangeSet is one tick's changes of one path, sorted by player id (the paths hold
// their players in different orders).
type ChangeSet []ChangeKey

// NewChangeSet copies cs into a sorted ChangeSet: O(n log n), outside any measured time.
func NewChangeSet(cs []flux.Change) ChangeSet {
	s := make(ChangeSet, len(cs))
	for i, c := range cs {
		s[i] = ChangeKey{PlayerID: c.PlayerID, Old: c.OldLucidity, New: c.NewLucidity}
	}
	slices.SortFunc(s, func(a, b ChangeKey) int {
		return cmp.Or(strings.Compare(a.PlayerID, b.PlayerID), cmp.Compare(a.Old, b.Old), cmp.Compare(a.New, b.New))
	})
	return s
}

// Digest is a 64-bit FNV-1a hash of every (player id, old, new) of s in order: equal
// sets have equal digests; O(len(s)).
func (s ChangeSet) Digest() uint64 {
	h := fnv.New64a()
	var buf [8]byte
	for _, c := range s {
		binary.LittleEndian.PutUint64(buf[:], uint64(len(c.PlayerID)))
		_, _ = h.Write(buf[:])
		_, _ = h.Write([]byte(c.PlayerID))
		binary.LittleEndian.PutUint64(buf[:], uint64(int64(c.Old)))
		_, _ = h.Write(buf[:])
		binary.LittleEndian.PutUint64(buf[:], uint64(int64(c.New)))
		_, _ = h.Write(buf[:])
	}
	return h.Sum64()
}

// FirstDifference describes the first change where a and b differ ("" when they are
// equal), for an error message.
func FirstDifference(a, b ChangeSet) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return fmt.Sprintf("change %d: %+v vs %+v", i, a[i], b[i])
		}
	}
	switch {
	case len(a) > len(b):
		return fmt.Sprintf("%d changes vs %d, first extra %+v", len(a), len(b), a[len(b)])
	case len(b) > len(a):
		return fmt.Sprintf("%d changes vs %d, first extra %+v", len(a), len(b), b[len(a)])
	}
	return ""
}

// ErrChangesDiffer is wrapped by Compare's error when two paths' changes of a tick differ.
var ErrChangesDiffer = errors.New("tickload: paths made different changes")

// Compare checks every sample of one tick against base's by digest (and, on a mismatch,
// names the first differing change). It returns nil when all agree, else an error
// wrapping ErrChangesDiffer naming each path that differs. O(paths).
func Compare(base Path, got map[Path]Sample) error {
	ref, ok := got[base]
	if !ok {
		return fmt.Errorf("tickload: compare: no sample of %s", base)
	}
	var errs []error
	paths := make([]Path, 0, len(got))
	for p := range got {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for _, p := range paths {
		s := got[p]
		if p == base || s.Digest == ref.Digest {
			continue
		}
		errs = append(errs, fmt.Errorf("%w: %s vs %s: digest %016x vs %016x, %s",
			ErrChangesDiffer, p, base, s.Digest, ref.Digest, FirstDifference(s.Changed, ref.Changed)))
	}
	return errors.Join(errs...)
}
