package flux_test

import (
	"context"
	"testing"
	"time"

	"github.com/gamepersist/gamepersist/flux"
	"github.com/gamepersist/gamepersist/internal/workload/worldgen"
	"github.com/gamepersist/gamepersist/roomstore"
)

// BenchmarkRoomsPhase takes apart the Runner's rooms phase of a W1 tick (10,000 active
// players over 2,000 rooms, warm roomstore.Cached over a MemoryStore), one step per
// sub-benchmark: collecting the distinct room ids, the one Cached.GetRooms call, and the
// copy into the RoomInfo map; "map-lookups" is 2,000 look-ups in a plain Go map of the same
// rooms, the least any in-memory read could cost; "get-rooms+room-infos" is the rooms phase
// over GetRooms (what the Runner does with a RoomStore that is not a RoomVisitor),
// "cached-visit-rooms" the one Cached.VisitRooms call alone and "visit-rooms+room-infos"
// the rooms phase over VisitRooms (what the Runner does with a Cached);
// "runner-tick-memory" is a whole Runner tick over MemoryPlayers and the same cache (no
// database), for its allocations.
func BenchmarkRoomsPhase(b *testing.B) {
	ctx := context.Background()
	now := time.Date(2026, 6, 1, 23, 0, 0, 0, time.UTC)
	w := worldgen.New(worldgen.Config{Rooms: w1Rooms, Players: w1Players, Seed: 1, Now: now})
	rules := flux.DefaultRules()
	mem := roomstore.NewMemoryStore()
	b.Cleanup(func() { _ = mem.Close() })
	if err := w.PutRooms(ctx, mem); err != nil {
		b.Fatal(err)
	}
	cached, err := roomstore.NewCached(mem, roomstore.CacheConfig{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cached.Close() })
	ids := flux.ActiveRoomIDs(rules, w.Players, now, nil)
	for range 3 { // warm: ristretto admits on its own goroutine
		if _, err := cached.GetRooms(ctx, ids); err != nil {
			b.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	rooms, err := cached.GetRooms(ctx, ids)
	if err != nil || len(rooms) != len(ids) {
		b.Fatalf("%d of %d rooms: %v", len(rooms), len(ids), err)
	}
	b.Run("active-room-ids", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ids = flux.ActiveRoomIDs(rules, w.Players, now, ids[:0])
		}
	})
	b.Run("cached-get-rooms", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := cached.GetRooms(ctx, ids); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(ids)), "ns/room")
	})
	b.Run("map-lookups", func(b *testing.B) {
		b.ReportAllocs()
		n := 0
		for b.Loop() {
			for _, id := range ids {
				if _, ok := rooms[id]; ok {
					n++
				}
			}
		}
		if n == 0 {
			b.Fatal("no room found")
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(ids)), "ns/room")
	})
	b.Run("room-infos", func(b *testing.B) {
		b.ReportAllocs()
		var infos map[string]flux.RoomInfo
		for b.Loop() {
			infos = flux.RoomInfos(rooms, infos)
		}
	})
	b.Run("get-rooms+room-infos", func(b *testing.B) {
		b.ReportAllocs()
		var infos map[string]flux.RoomInfo
		for b.Loop() {
			got, err := cached.GetRooms(ctx, ids)
			if err != nil {
				b.Fatal(err)
			}
			infos = flux.RoomInfos(got, infos)
		}
		if len(infos) != len(ids) {
			b.Fatalf("%d room infos, want %d", len(infos), len(ids))
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(ids)), "ns/room")
	})
	b.Run("cached-visit-rooms", func(b *testing.B) {
		b.ReportAllocs()
		n := 0
		count := func(roomstore.Room) { n++ }
		for b.Loop() {
			if err := cached.VisitRooms(ctx, ids, count); err != nil {
				b.Fatal(err)
			}
		}
		if n != b.N*len(ids) {
			b.Fatalf("visited %d rooms, want %d", n, b.N*len(ids))
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(ids)), "ns/room")
	})
	b.Run("visit-rooms+room-infos", func(b *testing.B) {
		b.ReportAllocs()
		infos := make(map[string]flux.RoomInfo, len(ids))
		add := func(r roomstore.Room) { infos[r.ID] = flux.RoomInfoOf(r) }
		for b.Loop() {
			clear(infos)
			if err := cached.VisitRooms(ctx, ids, add); err != nil {
				b.Fatal(err)
			}
		}
		if len(infos) != len(ids) {
			b.Fatalf("%d room infos, want %d", len(infos), len(ids))
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(ids)), "ns/room")
	})
	b.Run("runner-tick-memory", func(b *testing.B) {
		players := flux.NewMemoryPlayers(rules)
		players.Put(w.Players...)
		r, err := flux.NewRunner(players, cached, flux.RunnerConfig{Rules: &rules})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = r.Close() })
		var rooms time.Duration
		b.ReportAllocs()
		for b.Loop() {
			rep, err := r.Tick(ctx, now)
			if err != nil {
				b.Fatal(err)
			}
			rooms += rep.Rooms
		}
		b.ReportMetric(float64(rooms.Microseconds())/1000/float64(b.N), "rooms-ms")
	})
}
