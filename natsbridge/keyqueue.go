package natsbridge

import "time"

// The per-key queue of one registration, as a plain data structure: it knows nothing
// of NATS, workers or locks (its owner holds one around every call), and has tests of
// its own (keyqueue_internal_test.go). pgxpool hands its pool to puddle the same way.

// keyQueue is the FIFO of one key; it exists while the key has buffered items or is
// owned by a worker.
type keyQueue[T any] struct {
	key     string
	msgs    fifo[T]
	owned   bool // a worker is handling one of this key's items
	inReady bool // the key is in keyedQueue.ready
	// held, when not 0, keeps the key from being handed out: a durable key waiting for
	// the redelivery of its nak'ed message (the stream sequence held), which goes to the
	// front, so the key keeps its order.
	held      uint64
	heldUntil time.Time   // when the held item is expected back
	holdTimer *time.Timer // releases the hold if the item never comes back
	current   uint64      // the id (durable: stream sequence) of the item a worker handles
}

func (q *keyQueue[T]) len() int { return q.msgs.len() }

// keyedQueue buffers items per key: each key's items in order, the keys that have
// items and no owner in a ready list, oldest first (round robin between keys). Every
// method costs O(1) amortised, except each and drain.
type keyedQueue[T any] struct {
	keys   map[string]*keyQueue[T]
	ready  fifo[*keyQueue[T]]
	free   []*keyQueue[T] // emptied key queues kept for reuse
	queued int            // items buffered over all keys
}

// Reuse of emptied key queues (they come and go with every burst on a key): at most
// keyQueueFreeMax of them, each with at most keyQueueReuseCap slots, are kept.
const (
	keyQueueFreeMax  = 64
	keyQueueReuseCap = 16
)

func newKeyedQueue[T any]() keyedQueue[T] {
	return keyedQueue[T]{keys: map[string]*keyQueue[T]{}}
}

// get returns key's queue, or nil when the key has nothing buffered and no owner.
func (q *keyedQueue[T]) get(key string) *keyQueue[T] { return q.keys[key] }

// keyCount is the number of keys with items or an owner.
func (q *keyedQueue[T]) keyCount() int { return len(q.keys) }

// readyLen is the number of keys waiting for a worker.
func (q *keyedQueue[T]) readyLen() int { return q.ready.len() }

// push appends it to key's queue (created if needed) and returns the queue. The key is
// not made ready: call makeReady.
func (q *keyedQueue[T]) push(key string, it T) *keyQueue[T] {
	kq := q.keys[key]
	if kq == nil {
		kq = q.newKey(key)
	}
	kq.msgs.push(it)
	q.queued++
	return kq
}

// pushFront puts it before every item of kq (a redelivery that must keep its place).
func (q *keyedQueue[T]) pushFront(kq *keyQueue[T], it T) {
	kq.msgs.pushFront(it)
	q.queued++
}

func (q *keyedQueue[T]) newKey(key string) *keyQueue[T] {
	var kq *keyQueue[T]
	if n := len(q.free); n > 0 {
		kq, q.free = q.free[n-1], q.free[:n-1]
		kq.key = key
	} else {
		kq = &keyQueue[T]{key: key}
	}
	q.keys[key] = kq
	return kq
}

// makeReady puts kq in the ready list if it has items, no owner and no hold; it reports
// whether it did.
func (q *keyedQueue[T]) makeReady(kq *keyQueue[T]) bool {
	if kq.owned || kq.inReady || kq.held != 0 || kq.len() == 0 {
		return false
	}
	kq.inReady = true
	q.ready.push(kq)
	return true
}

// take hands the oldest ready key to the caller: the key is owned until done, and its
// first item is returned. The ready list must not be empty.
func (q *keyedQueue[T]) take() (*keyQueue[T], T) {
	kq := q.ready.pop()
	kq.inReady = false
	kq.owned = true
	it := kq.msgs.pop()
	q.queued--
	return kq, it
}

// done ends the ownership take gave: a held key waits for its item, a key with more
// items goes to the end of the ready list, an empty one is forgotten.
func (q *keyedQueue[T]) done(kq *keyQueue[T]) {
	kq.owned = false
	switch {
	case kq.held != 0:
	case kq.len() > 0:
		kq.inReady = true
		q.ready.push(kq)
	default:
		q.forget(kq)
	}
}

// forget removes an empty, unowned key, keeping its queue for reuse when small.
func (q *keyedQueue[T]) forget(kq *keyQueue[T]) {
	delete(q.keys, kq.key)
	if len(q.free) < keyQueueFreeMax && cap(kq.msgs.items) <= keyQueueReuseCap {
		kq.key = ""
		kq.held, kq.heldUntil, kq.holdTimer, kq.current = 0, time.Time{}, nil, 0
		q.free = append(q.free, kq)
	}
}

// drain removes and returns every item of kq, in order.
func (q *keyedQueue[T]) drain(kq *keyQueue[T]) []T {
	out := make([]T, 0, kq.len())
	for kq.len() > 0 {
		out = append(out, kq.msgs.pop())
	}
	q.queued -= len(out)
	return out
}

// each calls f for every key with items or an owner, in no particular order.
func (q *keyedQueue[T]) each(f func(kq *keyQueue[T])) {
	for _, kq := range q.keys {
		f(kq)
	}
}

// reset forgets every key and item.
func (q *keyedQueue[T]) reset() {
	*q = newKeyedQueue[T]()
}

// fifo is a slice-backed queue that reuses its consumed front instead of reallocating:
// its capacity stays within twice its largest length.
type fifo[T any] struct {
	items []T // items[head:] are queued
	head  int
}

func (f *fifo[T]) len() int { return len(f.items) - f.head }

func (f *fifo[T]) push(it T) {
	if f.head > 0 && len(f.items) == cap(f.items) {
		n := copy(f.items, f.items[f.head:])
		clear(f.items[n:])
		f.items, f.head = f.items[:n], 0
	}
	f.items = append(f.items, it)
}

// pushFront puts it before every queued item.
func (f *fifo[T]) pushFront(it T) {
	if f.head > 0 {
		f.head--
		f.items[f.head] = it
		return
	}
	var zero T
	f.items = append(f.items, zero)
	copy(f.items[1:], f.items)
	f.items[0] = it
}

func (f *fifo[T]) pop() T {
	var zero T
	it := f.items[f.head]
	f.items[f.head] = zero
	f.head++
	if f.head == len(f.items) {
		f.items, f.head = f.items[:0], 0
	}
	return it
}

// all yields a pointer to every queued item, front first (the caller may change it).
func (f *fifo[T]) all(yield func(*T) bool) {
	for i := f.head; i < len(f.items); i++ {
		if !yield(&f.items[i]) {
			return
		}
	}
}
