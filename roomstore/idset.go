package roomstore

import "sync"

// maxPooledSetLen bounds the sets kept for reuse: a set that grew past it (a call with a
// huge id list) is left to the garbage collector rather than kept for ever.
const maxPooledSetLen = 1 << 16

// idSets hands out empty sets of ids for one call and takes them back, so that removing
// duplicates from an id list allocates nothing in steady state. The zero value is ready.
// It is safe for concurrent use.
type idSets struct {
	pool sync.Pool // of map[string]struct{}, empty
}

// get returns an empty set with room for about n ids.
func (p *idSets) get(n int) map[string]struct{} {
	if s, ok := p.pool.Get().(map[string]struct{}); ok {
		return s
	}
	return make(map[string]struct{}, n)
}

// put empties s and keeps it for a later get.
func (p *idSets) put(s map[string]struct{}) {
	if len(s) > maxPooledSetLen {
		return
	}
	clear(s)
	p.pool.Put(s)
}

// addNew adds id to s and reports whether it was not there yet. It costs one map
// assignment.
func addNew(s map[string]struct{}, id string) bool {
	n := len(s)
	s[id] = struct{}{}
	return len(s) > n
}
