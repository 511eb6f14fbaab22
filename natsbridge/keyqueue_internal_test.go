package natsbridge

import (
	"slices"
	"testing"
)

// takeAll hands out ready keys until none is left, finishing each at once, and returns
// the items in the order a single worker would handle them.
func takeAll(q *keyedQueue[int]) []int {
	var out []int
	for q.readyLen() > 0 {
		kq, it := q.take()
		out = append(out, it)
		q.done(kq)
	}
	return out
}

// TestKeyedQueueRoundRobinKeepsKeyOrder: each key's items come out in push order, keys
// take turns (oldest ready key first), and an emptied key is forgotten.
func TestKeyedQueueRoundRobinKeepsKeyOrder(t *testing.T) {
	q := newKeyedQueue[int]()
	for i, key := range []string{"a", "a", "b", "a", "c", "b"} {
		q.makeReady(q.push(key, i))
	}
	if q.queued != 6 || q.keyCount() != 3 || q.readyLen() != 3 {
		t.Fatalf("queued %d, keys %d, ready %d; want 6, 3, 3", q.queued, q.keyCount(), q.readyLen())
	}
	// a0 b2 c4, then a1 b5, then a3.
	if got, want := takeAll(&q), []int{0, 2, 4, 1, 5, 3}; !slices.Equal(got, want) {
		t.Fatalf("handled %v, want %v", got, want)
	}
	if q.queued != 0 || q.keyCount() != 0 {
		t.Fatalf("after draining: queued %d, keys %d", q.queued, q.keyCount())
	}
}

// TestKeyedQueueOwnedKeyIsNotHandedOutTwice: while a worker owns a key, its further
// items wait (never two workers on one key); done puts the key back at the end.
func TestKeyedQueueOwnedKeyIsNotHandedOutTwice(t *testing.T) {
	q := newKeyedQueue[int]()
	q.makeReady(q.push("a", 1))
	kq, it := q.take()
	if it != 1 || !kq.owned {
		t.Fatalf("take = %d, owned %v", it, kq.owned)
	}
	if q.makeReady(q.push("a", 2)) || q.readyLen() != 0 {
		t.Fatal("an owned key was made ready")
	}
	q.makeReady(q.push("b", 3))
	q.done(kq)
	if got := takeAll(&q); !slices.Equal(got, []int{3, 2}) {
		t.Fatalf("handled %v, want [3 2]: b was ready before a came back", got)
	}
}

// TestKeyedQueueHoldAndFront: a held key is not handed out; the item that releases it
// goes in front of the key's later items, so the key keeps its order.
func TestKeyedQueueHoldAndFront(t *testing.T) {
	q := newKeyedQueue[int]()
	q.makeReady(q.push("a", 1))
	kq, _ := q.take()
	kq.held = 7 // item 1 went back to the server; 2 and 3 must wait for it
	q.push("a", 2)
	q.push("a", 3)
	q.done(kq)
	if q.readyLen() != 0 || q.get("a") != kq {
		t.Fatal("a held key was handed out or forgotten")
	}
	kq.held = 0
	q.pushFront(kq, 1)
	q.makeReady(kq)
	if got := takeAll(&q); !slices.Equal(got, []int{1, 2, 3}) {
		t.Fatalf("handled %v, want [1 2 3]", got)
	}
}

// TestKeyedQueueDrainAndReuse: drain empties one key in order; a forgotten key's small
// queue is reused, with no state of its former key.
func TestKeyedQueueDrainAndReuse(t *testing.T) {
	q := newKeyedQueue[int]()
	for i := range 3 {
		q.push("a", i)
	}
	kq := q.get("a")
	if got := q.drain(kq); !slices.Equal(got, []int{0, 1, 2}) || q.queued != 0 {
		t.Fatalf("drain = %v (queued %d)", got, q.queued)
	}
	kq.held, kq.current = 9, 9
	q.forget(kq)
	if q.get("a") != nil || len(q.free) != 1 {
		t.Fatal("forget kept the key or dropped a small queue")
	}
	nq := q.push("b", 5)
	if nq != kq || nq.key != "b" || nq.held != 0 || nq.current != 0 {
		t.Fatalf("reused queue %+v, want a clean queue for b", nq)
	}
	q.reset()
	if q.keyCount() != 0 || q.queued != 0 || q.readyLen() != 0 {
		t.Fatal("reset left items")
	}
}

// TestFifoPushFrontAfterPops: pushFront reuses the consumed front; all sees the items in
// order and may change them.
func TestFifoPushFrontAfterPops(t *testing.T) {
	var f fifo[int]
	for i := range 4 {
		f.push(i)
	}
	f.pop()
	f.pop()
	f.pushFront(1)
	f.pushFront(0)
	for p := range f.all {
		*p *= 10
	}
	var got []int
	for f.len() > 0 {
		got = append(got, f.pop())
	}
	if !slices.Equal(got, []int{0, 10, 20, 30}) {
		t.Fatalf("got %v", got)
	}
}
