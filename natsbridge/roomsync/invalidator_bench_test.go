package roomsync_test

import (
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/gamepersist/gamepersist/internal/testkit/testnats"
	"github.com/gamepersist/gamepersist/natsbridge"
	"github.com/gamepersist/gamepersist/natsbridge/roomsync"
	"github.com/gamepersist/gamepersist/roomstore"
)

// BenchmarkRoomInvalidatorPublish measures what the AfterWrite hook costs the writer's
// goroutine, against what a synchronous hook would cost (encode the envelope and call
// nats.go's Publish in the writer's goroutine), in the same run.
//
//   - hook: RoomInvalidator.Publish, paced so the queue never overflows (dropped/op
//     reports it if it does).
//   - sync_publish: Encode + nats.Conn.Publish of the same notice.
func BenchmarkRoomInvalidatorPublish(b *testing.B) {
	url := testnats.Start(b).ClientURL()
	change := roomstore.RoomChange{ID: "room-000123", Version: 42}

	b.Run("hook", func(b *testing.B) {
		nc := invDial(b, url)
		inv, err := roomsync.NewRoomInvalidator(nc, roomsync.InvalidatorConfig{Instance: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		defer func() { _ = inv.Close() }()
		var hookTime time.Duration
		n := 0
		b.ReportAllocs()
		for b.Loop() {
			start := time.Now()
			inv.Publish(change)
			hookTime += time.Since(start)
			n++
			// Pace: a game writes rooms far below the publisher's rate; keep the queue
			// from filling so the number is the hook's cost, not a drop's.
			if n%1024 == 0 {
				for inv.Stats().Queued > 0 {
					time.Sleep(10 * time.Microsecond)
				}
			}
		}
		s := inv.Stats()
		b.ReportMetric(float64(hookTime.Nanoseconds())/float64(n), "hook-ns/write")
		b.ReportMetric(float64(s.Dropped)/float64(n), "dropped/op")
	})

	b.Run("sync_publish", func(b *testing.B) {
		nc := invDial(b, url)
		b.ReportAllocs()
		for b.Loop() {
			env := natsbridge.NewEnvelope("roomstore.invalidate",
				roomsync.RoomInvalidation{RoomID: change.ID, Version: change.Version})
			env.Origin = "bench"
			data, err := natsbridge.Encode(env)
			if err != nil {
				b.Fatal(err)
			}
			if err := nc.Publish("cache.rooms.invalidate", data); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		_ = nc.Flush()
	})
}

// signalTarget reports each invalidation on a channel.
type signalTarget chan struct{}

func (s signalTarget) Invalidate(...string) { s <- struct{}{} }

// BenchmarkRoomInvalidationPropagation measures the time from a write's AfterWrite hook
// on node A to the Invalidate call on node B, one notice at a time, on one server and
// across a three-node cluster (A on the first node, B on the third). Reports p50/p99.
func BenchmarkRoomInvalidationPropagation(b *testing.B) {
	b.Run("one_server", func(b *testing.B) {
		url := testnats.Start(b).ClientURL()
		benchPropagation(b, url, url, nil)
	})
	b.Run("cluster_3", func(b *testing.B) {
		servers := testnats.StartCluster(b, 3)
		benchPropagation(b, servers[0].ClientURL(), servers[2].ClientURL(), servers[0])
	})
}

func benchPropagation(b *testing.B, urlA, urlB string, interestOn *server.Server) {
	b.Helper()
	invA, err := roomsync.NewRoomInvalidator(invDial(b, urlA), roomsync.InvalidatorConfig{Instance: "a"})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = invA.Close() }()
	invB, err := roomsync.NewRoomInvalidator(invDial(b, urlB), roomsync.InvalidatorConfig{Instance: "b"})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = invB.Close() }()
	got := make(signalTarget, 1)
	if err := invB.Attach(invCtx(b), got); err != nil {
		b.Fatal(err)
	}
	if interestOn != nil {
		testnats.WaitForInterest(b, interestOn, "cache.rooms.invalidate")
	}
	change := roomstore.RoomChange{ID: "room-000123", Version: 1}
	var lat []time.Duration
	for b.Loop() {
		start := time.Now()
		invA.Publish(change)
		select {
		case <-got:
		case <-time.After(5 * time.Second):
			b.Fatalf("notice not delivered: A %+v B %+v", invA.Stats(), invB.Stats())
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-µs")
}
