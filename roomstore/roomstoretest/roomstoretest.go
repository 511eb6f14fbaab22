// Package roomstoretest is the conformance suite for roomstore.RoomStore. Every store in
// this module runs it, and so can a user's own implementation:
//
//	func TestMyStore(t *testing.T) {
//		roomstoretest.Run(t, func(t *testing.T) roomstore.RoomStore { return newMyStore(t) })
//	}
//
// The factory must return a new, empty store each time it is called; the suite closes it.
package roomstoretest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gamepersist/gamepersist/roomstore"
)

// Factory returns a new, empty store for one subtest.
type Factory func(t *testing.T) roomstore.RoomStore

// InvalidIDs are ids every store must reject with ErrInvalidID, keyed by what is wrong.
func InvalidIDs() map[string]string {
	return map[string]string{
		"empty":          "",
		"too long":       strings.Repeat("r", roomstore.MaxIDLength+1),
		"invalid utf-8":  "room-\xff\xfe",
		"control char":   "room\x07bell",
		"newline":        "room\nid",
		"nul":            "room\x00id",
		"del":            "room\x7f",
		"c1 control":     "room\u0085",
		"truncated utf8": "room-\xe2\x82",
	}
}

// AwkwardIDs are valid ids full of quote, SQL, wildcard and non-ASCII characters that must
// round-trip verbatim.
func AwkwardIDs() []string {
	return []string{
		`'; DROP TABLE rooms; --`,
		`"quoted" room`,
		`back\slash`,
		`100% _like_ %`,
		`$1 $2 ?`,
		`room with spaces`,
		`élan-vital-🜏`,
		strings.Repeat("x", roomstore.MaxIDLength),
		`{"json":true}`,
		`a.b.c.>.*`,
	}
}

// SampleRoom returns a room with every field set, for tests.
func SampleRoom(id string) roomstore.Room {
	return roomstore.Room{
		ID:          id,
		Name:        "The Room " + id,
		Description: "A room for testing.\nIt has two lines and a 'quote'.",
		Plane:       "earth",
		Zone:        "arkham",
		SubZone:     "sanitarium",
		Environment: "graveyard",
		Exits:       roomstore.NewExits(map[string]string{"north": "hall", "down": "cellar"}),
		Attributes:  roomstore.MustAttributes(map[string]any{"dark": true, "tags": []string{"a", "b"}, "depth": 3}),
	}
}

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func open(t *testing.T, f Factory) roomstore.RoomStore {
	t.Helper()
	s := f(t)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func mustPut(t *testing.T, s roomstore.RoomStore, r roomstore.Room) {
	t.Helper()
	if err := s.PutRoom(ctxT(t), r); err != nil {
		t.Fatalf("PutRoom(%q): %v", r.ID, err)
	}
}

// sameContent compares everything but the version.
func sameContent(a, b roomstore.Room) bool {
	a.Version, b.Version = 0, 0
	return a.Equal(b)
}

// Run runs the whole suite against stores made by f. Stores that implement
// roomstore.RoomVisitor are also checked to visit exactly the rooms GetRooms returns.
func Run(t *testing.T, f Factory) {
	t.Run("PutGetRoundTrip", func(t *testing.T) { testRoundTrip(t, f) })
	t.Run("NotFound", func(t *testing.T) { testNotFound(t, f) })
	t.Run("VersionBumps", func(t *testing.T) { testVersion(t, f) })
	t.Run("InvalidIDs", func(t *testing.T) { testInvalidIDs(t, f) })
	t.Run("AwkwardIDs", func(t *testing.T) { testAwkwardIDs(t, f) })
	t.Run("InvalidRoom", func(t *testing.T) { testInvalidRoom(t, f) })
	t.Run("GetRooms", func(t *testing.T) { testGetRooms(t, f) })
	t.Run("VisitRoomsMatchesGetRooms", func(t *testing.T) { testVisitRooms(t, f) })
	t.Run("Delete", func(t *testing.T) { testDelete(t, f) })
	t.Run("CopiesAreIndependent", func(t *testing.T) { testIndependentCopies(t, f) })
	t.Run("CanceledContext", func(t *testing.T) { testCanceled(t, f) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, f) })
	t.Run("Closed", func(t *testing.T) { testClosed(t, f) })
}

func testRoundTrip(t *testing.T, f Factory) {
	s := open(t, f)
	want := SampleRoom("rt-1")
	mustPut(t, s, want)
	got, err := s.GetRoom(ctxT(t), want.ID)
	if err != nil {
		t.Fatalf("GetRoom: %v", err)
	}
	if !sameContent(got, want) {
		t.Fatalf("GetRoom = %+v, want %+v", got, want)
	}
	if got.Version != 1 {
		t.Fatalf("first version = %d, want 1", got.Version)
	}
	var attrs struct {
		Dark  bool     `json:"dark"`
		Tags  []string `json:"tags"`
		Depth int      `json:"depth"`
	}
	if err := got.Attributes.Decode(&attrs); err != nil || !attrs.Dark || attrs.Depth != 3 || len(attrs.Tags) != 2 {
		t.Fatalf("attributes = %s (%v)", got.Attributes, err)
	}
	if to, ok := got.Exits.To("north"); !ok || to != "hall" {
		t.Fatalf("exit north = %q, %v", to, ok)
	}

	// A minimal room (zero exits and attributes) round-trips as well.
	bare := roomstore.Room{ID: "rt-bare"}
	mustPut(t, s, bare)
	got, err = s.GetRoom(ctxT(t), bare.ID)
	if err != nil || !sameContent(got, bare) {
		t.Fatalf("bare room = %+v, %v", got, err)
	}
}

func testNotFound(t *testing.T, f Factory) {
	s := open(t, f)
	_, err := s.GetRoom(ctxT(t), "nowhere")
	if !errors.Is(err, roomstore.ErrNotFound) {
		t.Fatalf("GetRoom(absent) error = %v, want ErrNotFound", err)
	}
	// Still not found the second time (a negative cache must not turn it into something else).
	_, err = s.GetRoom(ctxT(t), "nowhere")
	if !errors.Is(err, roomstore.ErrNotFound) {
		t.Fatalf("second GetRoom(absent) error = %v, want ErrNotFound", err)
	}
	// A room put after a miss is seen at once.
	mustPut(t, s, SampleRoom("nowhere"))
	if _, err := s.GetRoom(ctxT(t), "nowhere"); err != nil {
		t.Fatalf("GetRoom after put = %v", err)
	}
}

func testVersion(t *testing.T, f Factory) {
	s := open(t, f)
	r := SampleRoom("v-1")
	r.Version = 42 // ignored by the store
	for want := int64(1); want <= 3; want++ {
		r.Name = fmt.Sprint("name ", want)
		mustPut(t, s, r)
		got, err := s.GetRoom(ctxT(t), r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Version != want || got.Name != r.Name {
			t.Fatalf("after put %d: version %d name %q", want, got.Version, got.Name)
		}
	}
	if vp, ok := s.(roomstore.VersionedPutter); ok {
		v, err := vp.PutRoomVersion(ctxT(t), r)
		if err != nil || v != 4 {
			t.Fatalf("PutRoomVersion = %d, %v; want 4", v, err)
		}
	}
}

func testInvalidIDs(t *testing.T, f Factory) {
	s := open(t, f)
	ctx := ctxT(t)
	for name, id := range InvalidIDs() {
		if _, err := s.GetRoom(ctx, id); !errors.Is(err, roomstore.ErrInvalidID) {
			t.Errorf("%s: GetRoom error = %v, want ErrInvalidID", name, err)
		}
		if _, err := s.GetRooms(ctx, []string{"ok", id}); !errors.Is(err, roomstore.ErrInvalidID) {
			t.Errorf("%s: GetRooms error = %v, want ErrInvalidID", name, err)
		}
		if err := s.PutRoom(ctx, roomstore.Room{ID: id}); !errors.Is(err, roomstore.ErrInvalidID) {
			t.Errorf("%s: PutRoom error = %v, want ErrInvalidID", name, err)
		}
		if err := s.DeleteRoom(ctx, id); !errors.Is(err, roomstore.ErrInvalidID) {
			t.Errorf("%s: DeleteRoom error = %v, want ErrInvalidID", name, err)
		}
	}
}

func testAwkwardIDs(t *testing.T, f Factory) {
	s := open(t, f)
	ids := AwkwardIDs()
	for _, id := range ids {
		mustPut(t, s, SampleRoom(id))
	}
	for _, id := range ids {
		got, err := s.GetRoom(ctxT(t), id)
		if err != nil {
			t.Fatalf("GetRoom(%q): %v", id, err)
		}
		if got.ID != id || !sameContent(got, SampleRoom(id)) {
			t.Fatalf("GetRoom(%q) = %+v", id, got)
		}
	}
	got, err := s.GetRooms(ctxT(t), ids)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(ids) {
		t.Fatalf("GetRooms returned %d rooms, want %d", len(got), len(ids))
	}
	// The LIKE-looking id must not match anything else.
	if _, err := s.GetRoom(ctxT(t), "100% _like_ X"); !errors.Is(err, roomstore.ErrNotFound) {
		t.Fatalf("wildcard id matched: %v", err)
	}
}

func testInvalidRoom(t *testing.T, f Factory) {
	s := open(t, f)
	bad := []roomstore.Room{
		{ID: "r", Exits: roomstore.NewExits(map[string]string{"": "x"})},
		{ID: "r", Exits: roomstore.NewExits(map[string]string{"north": ""})},
		{ID: "r", Exits: roomstore.NewExits(map[string]string{"north": "bad\x00id"})},
	}
	for i, r := range bad {
		err := s.PutRoom(ctxT(t), r)
		if !errors.Is(err, roomstore.ErrInvalidRoom) && !errors.Is(err, roomstore.ErrInvalidID) {
			t.Errorf("bad room %d: PutRoom error = %v, want ErrInvalidRoom", i, err)
		}
	}
	if _, err := s.GetRoom(ctxT(t), "r"); !errors.Is(err, roomstore.ErrNotFound) {
		t.Fatalf("an invalid room was stored: %v", err)
	}
}

func testGetRooms(t *testing.T, f Factory) {
	s := open(t, f)
	ctx := ctxT(t)
	const n = 1200 // more than one chunk for stores that chunk large lists
	ids := make([]string, 0, n)
	for i := range n {
		id := fmt.Sprintf("gr-%04d", i)
		ids = append(ids, id)
		if i%2 == 0 {
			mustPut(t, s, SampleRoom(id))
		}
	}
	got, err := s.GetRooms(ctx, append(ids, ids[:10]...)) // duplicates allowed
	if err != nil {
		t.Fatalf("GetRooms: %v", err)
	}
	if len(got) != n/2 {
		t.Fatalf("GetRooms returned %d rooms, want %d", len(got), n/2)
	}
	for i, id := range ids {
		r, ok := got[id]
		if ok != (i%2 == 0) {
			t.Fatalf("room %s present=%v", id, ok)
		}
		if ok && (!sameContent(r, SampleRoom(id)) || r.Version != 1) {
			t.Fatalf("room %s = %+v", id, r)
		}
	}
	// Asking again (warm, for caching stores) gives the same answer.
	again, err := s.GetRooms(ctx, ids)
	if err != nil || len(again) != n/2 {
		t.Fatalf("second GetRooms = %d rooms, %v", len(again), err)
	}
	empty, err := s.GetRooms(ctx, nil)
	if err != nil || len(empty) != 0 {
		t.Fatalf("GetRooms(nil) = %v, %v", empty, err)
	}
}

func testDelete(t *testing.T, f Factory) {
	s := open(t, f)
	ctx := ctxT(t)
	mustPut(t, s, SampleRoom("d-1"))
	if _, err := s.GetRoom(ctx, "d-1"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRoom(ctx, "d-1"); err != nil {
		t.Fatalf("DeleteRoom: %v", err)
	}
	if _, err := s.GetRoom(ctx, "d-1"); !errors.Is(err, roomstore.ErrNotFound) {
		t.Fatalf("GetRoom after delete = %v, want ErrNotFound", err)
	}
	if got, err := s.GetRooms(ctx, []string{"d-1"}); err != nil || len(got) != 0 {
		t.Fatalf("GetRooms after delete = %v, %v", got, err)
	}
	if err := s.DeleteRoom(ctx, "d-1"); !errors.Is(err, roomstore.ErrNotFound) {
		t.Fatalf("second DeleteRoom = %v, want ErrNotFound", err)
	}
	// Re-creating starts the version again at 1.
	mustPut(t, s, SampleRoom("d-1"))
	if r, err := s.GetRoom(ctx, "d-1"); err != nil || r.Version != 1 {
		t.Fatalf("re-created room = %+v, %v", r, err)
	}
}

func testIndependentCopies(t *testing.T, f Factory) {
	s := open(t, f)
	ctx := ctxT(t)
	exits := map[string]string{"north": "n"}
	r := roomstore.Room{ID: "c-1", Name: "orig", Exits: roomstore.NewExits(exits)}
	mustPut(t, s, r)
	exits["north"] = "changed" // the caller's map is not the stored one
	exits["south"] = "added"

	a, err := s.GetRoom(ctx, "c-1")
	if err != nil {
		t.Fatal(err)
	}
	a.Name = "mutated"
	m := a.Exits.Map()
	m["north"] = "mutated"
	a.Exits = roomstore.NewExits(m)

	b, err := s.GetRoom(ctx, "c-1")
	if err != nil {
		t.Fatal(err)
	}
	if b.Name != "orig" || b.Exits.Len() != 1 {
		t.Fatalf("a reader's change leaked into the store: %+v", b)
	}
	if to, _ := b.Exits.To("north"); to != "n" {
		t.Fatalf("exit north = %q, want n", to)
	}
	bulk, err := s.GetRooms(ctx, []string{"c-1"})
	if err != nil {
		t.Fatal(err)
	}
	c := bulk["c-1"]
	c.Name = "bulk-mutated"
	if again, _ := s.GetRoom(ctx, "c-1"); again.Name != "orig" {
		t.Fatalf("a GetRooms reader's change leaked: %+v", again)
	}
}

func testCanceled(t *testing.T, f Factory) {
	s := open(t, f)
	mustPut(t, s, SampleRoom("x-1"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// Reads of a cached room may succeed; anything that has to wait must not.
	if _, err := s.GetRoom(ctx, "x-uncached"); err == nil || errors.Is(err, roomstore.ErrNotFound) {
		t.Fatalf("GetRoom with canceled ctx = %v, want a context error", err)
	} else if !errors.Is(err, context.Canceled) {
		t.Fatalf("GetRoom with canceled ctx = %v, want errors.Is(err, context.Canceled)", err)
	}
	if err := s.PutRoom(ctx, SampleRoom("x-2")); !errors.Is(err, context.Canceled) {
		t.Fatalf("PutRoom with canceled ctx = %v", err)
	}
	if _, err := s.GetRoom(context.Background(), "x-2"); !errors.Is(err, roomstore.ErrNotFound) {
		t.Fatalf("a canceled PutRoom was applied: %v", err)
	}
}

func testConcurrent(t *testing.T, f Factory) {
	s := open(t, f)
	ctx := ctxT(t)
	const rooms, workers, rounds = 20, 8, 40
	for i := range rooms {
		mustPut(t, s, SampleRoom(fmt.Sprint("cc-", i)))
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				id := fmt.Sprint("cc-", (w+i)%rooms)
				switch i % 4 {
				case 0:
					r := SampleRoom(id)
					r.Name = fmt.Sprint("w", w, "i", i)
					if err := s.PutRoom(ctx, r); err != nil {
						errs <- err
						return
					}
				case 1:
					if _, err := s.GetRooms(ctx, []string{id, "cc-0", "cc-missing"}); err != nil {
						errs <- err
						return
					}
				default:
					if _, err := s.GetRoom(ctx, id); err != nil {
						errs <- err
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent use: %v", err)
	}
	// Every put bumped a version exactly once: the versions add up to the number of puts.
	got, err := s.GetRooms(ctx, func() []string {
		ids := make([]string, rooms)
		for i := range ids {
			ids[i] = fmt.Sprint("cc-", i)
		}
		return ids
	}())
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, r := range got {
		total += r.Version
	}
	if want := int64(rooms + workers*rounds/4); total != want {
		t.Fatalf("sum of versions = %d, want %d (lost or doubled writes)", total, want)
	}
}

func testClosed(t *testing.T, f Factory) {
	s := f(t)
	ctx := ctxT(t)
	mustPut(t, s, SampleRoom("z-1"))
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil && !errors.Is(err, roomstore.ErrClosed) {
		t.Fatalf("second Close = %v, want nil or ErrClosed", err)
	}
	if _, err := s.GetRoom(ctx, "z-1"); !errors.Is(err, roomstore.ErrClosed) {
		t.Fatalf("GetRoom after Close = %v, want ErrClosed", err)
	}
	if _, err := s.GetRooms(ctx, []string{"z-1"}); !errors.Is(err, roomstore.ErrClosed) {
		t.Fatalf("GetRooms after Close = %v, want ErrClosed", err)
	}
	if err := s.PutRoom(ctx, SampleRoom("z-2")); !errors.Is(err, roomstore.ErrClosed) {
		t.Fatalf("PutRoom after Close = %v, want ErrClosed", err)
	}
	if err := s.DeleteRoom(ctx, "z-1"); !errors.Is(err, roomstore.ErrClosed) {
		t.Fatalf("DeleteRoom after Close = %v, want ErrClosed", err)
	}
}

// visitAll collects what VisitRooms hands to fn, failing t if a room is visited twice.
func visitAll(t *testing.T, v roomstore.RoomVisitor, ctx context.Context, ids []string) (map[string]roomstore.Room, error) {
	t.Helper()
	got := make(map[string]roomstore.Room)
	var twice []string
	err := v.VisitRooms(ctx, ids, func(r roomstore.Room) {
		if _, dup := got[r.ID]; dup {
			twice = append(twice, r.ID)
		}
		got[r.ID] = r
	})
	if len(twice) > 0 {
		t.Errorf("VisitRooms visited %q more than once", twice)
	}
	return got, err
}

// sameVisit checks that VisitRooms and GetRooms of ids give the same rooms (content and
// version) and that there are want of them.
func sameVisit(t *testing.T, s roomstore.RoomStore, what string, ids []string, want int) {
	t.Helper()
	ctx := ctxT(t)
	v := s.(roomstore.RoomVisitor)
	// Twice, in both orders: a caching store answers the second time from memory.
	for round := range 2 {
		var visited, fetched map[string]roomstore.Room
		var verr, gerr error
		if round == 0 {
			visited, verr = visitAll(t, v, ctx, ids)
			fetched, gerr = s.GetRooms(ctx, ids)
		} else {
			fetched, gerr = s.GetRooms(ctx, ids)
			visited, verr = visitAll(t, v, ctx, ids)
		}
		if verr != nil || gerr != nil {
			t.Fatalf("%s, round %d: VisitRooms error %v, GetRooms error %v", what, round, verr, gerr)
		}
		if len(visited) != want || len(fetched) != want {
			t.Fatalf("%s, round %d: VisitRooms gave %d rooms, GetRooms %d, want %d",
				what, round, len(visited), len(fetched), want)
		}
		for id, r := range fetched {
			vr, ok := visited[id]
			if !ok {
				t.Fatalf("%s, round %d: GetRooms has %q, VisitRooms does not", what, round, id)
			}
			if !vr.Equal(r) {
				t.Fatalf("%s, round %d: room %q: VisitRooms %+v, GetRooms %+v", what, round, id, vr, r)
			}
		}
	}
}

// testVisitRooms checks a RoomVisitor against GetRooms of the same store: present, absent
// and duplicate ids, awkward ids, lists longer than a chunk, a rewritten room, invalid ids,
// a canceled ctx and a closed store.
func testVisitRooms(t *testing.T, f Factory) {
	s := open(t, f)
	if _, ok := s.(roomstore.RoomVisitor); !ok {
		t.Skip("the store does not implement roomstore.RoomVisitor")
	}
	v := s.(roomstore.RoomVisitor)
	const n = 1200 // more than one chunk for stores that chunk large lists
	ids := make([]string, 0, n)
	for i := range n {
		id := fmt.Sprintf("vr-%04d", i)
		ids = append(ids, id)
		if i%2 == 0 {
			mustPut(t, s, SampleRoom(id))
		}
	}
	awkward := AwkwardIDs()
	for _, id := range awkward {
		mustPut(t, s, SampleRoom(id))
	}

	sameVisit(t, s, "empty list", nil, 0)
	sameVisit(t, s, "only absent ids", []string{"vr-0001", "vr-0003", "vr-nowhere"}, 0)
	sameVisit(t, s, "present, absent and duplicates", []string{"vr-0000", "vr-0001", "vr-0000", "vr-0002", "vr-0001", "vr-0000"}, 2)
	sameVisit(t, s, "awkward ids", append(slices.Clone(awkward), awkward[0], "100% _like_ X"), len(awkward))
	all := append(slices.Clone(ids), ids[:10]...) // duplicates in different chunks
	all = append(all, ids[n-10:]...)
	sameVisit(t, s, "long list with duplicates", all, n/2)

	// A rewritten room (version 2) and a deleted one are seen the same way by both.
	r := SampleRoom("vr-0000")
	r.Name = "rewritten"
	mustPut(t, s, r)
	if err := s.DeleteRoom(ctxT(t), "vr-0002"); err != nil {
		t.Fatal(err)
	}
	sameVisit(t, s, "after a write and a delete", ids[:10], 4)
	if got, _ := visitAll(t, v, ctxT(t), []string{"vr-0000"}); got["vr-0000"].Name != "rewritten" || got["vr-0000"].Version != 2 {
		t.Fatalf("VisitRooms after a write = %+v, want the rewritten room at version 2", got["vr-0000"])
	}

	// Invalid ids fail the whole call as GetRooms does, after a valid (and cached) id too.
	for name, id := range InvalidIDs() {
		_, gerr := s.GetRooms(ctxT(t), []string{"vr-0000", id})
		_, verr := visitAll(t, v, ctxT(t), []string{"vr-0000", id})
		if !errors.Is(verr, roomstore.ErrInvalidID) || !errors.Is(gerr, roomstore.ErrInvalidID) {
			t.Errorf("%s: VisitRooms error %v, GetRooms error %v, want ErrInvalidID from both", name, verr, gerr)
		}
	}

	// A canceled ctx fails a read that has to wait, as GetRooms does.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := visitAll(t, v, ctx, []string{"vr-uncached-1", "vr-uncached-2"}); !errors.Is(err, context.Canceled) {
		t.Errorf("VisitRooms with a canceled ctx = %v, want errors.Is(err, context.Canceled)", err)
	}

	// After Close: ErrClosed, and fn is never called.
	closed := f(t)
	mustPut(t, closed, SampleRoom("vr-z"))
	if _, err := closed.GetRooms(ctxT(t), []string{"vr-z"}); err != nil {
		t.Fatal(err)
	}
	if err := closed.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	calls := 0
	err := closed.(roomstore.RoomVisitor).VisitRooms(ctxT(t), []string{"vr-z"}, func(roomstore.Room) { calls++ })
	if !errors.Is(err, roomstore.ErrClosed) || calls != 0 {
		t.Fatalf("VisitRooms after Close = %v with %d rooms visited, want ErrClosed and none", err, calls)
	}
}
