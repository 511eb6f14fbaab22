package roomstore_test

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gamepersist/gamepersist/internal/testkit/testdb"
	"github.com/gamepersist/gamepersist/roomstore"
	"github.com/gamepersist/gamepersist/roomstore/roomstoretest"
)

// BenchmarkChangeListenerCommitToInvalidation measures, for three caches each with its
// own ChangeListener, the time from an UPDATE in plain SQL to the moment the last of the
// three caches has dropped the room. p50/p99 "from send" start before the statement is
// sent (they include its round trip and commit); "after ack" start when the commit was
// acknowledged to the writer (0 when a listener was faster than the writer's reply).
func BenchmarkChangeListenerCommitToInvalidation(b *testing.B) {
	cs, _ := testdb.NewSchema(b)
	channel := uniqueName("gp_chan_")
	const nodes = 3
	invalidated := make(chan string, 1024)
	for range nodes {
		newHookedNotifyNode(b, cs, channel, roomstore.ChangeListenerConfig{}, func(ids []string) {
			for _, id := range ids {
				invalidated <- id
			}
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	pool, err := pgxpool.New(ctx, cs)
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	writer := migratedStore(b, pool, roomstore.PostgresConfig{})
	const rooms = 100
	for i := range rooms {
		if err := writer.PutRoom(ctx, roomstoretest.SampleRoom("r"+strconv.Itoa(i))); err != nil {
			b.Fatal(err)
		}
	}
	for got := 0; got < rooms*nodes; got++ { // the seeding's notices
		<-invalidated
	}
	fromSend := make([]time.Duration, 0, b.N)
	afterAck := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		id := "r" + strconv.Itoa(i%rooms)
		start := time.Now()
		if _, err := pool.Exec(ctx, `UPDATE rooms SET version = version + 1 WHERE id = $1`, id); err != nil {
			b.Fatal(err)
		}
		acked := time.Now()
		for seen := 0; seen < nodes; {
			select {
			case got := <-invalidated:
				if got == id {
					seen++
				}
			case <-ctx.Done():
				b.Fatal("no invalidation")
			}
		}
		end := time.Now()
		fromSend = append(fromSend, end.Sub(start))
		afterAck = append(afterAck, max(0, end.Sub(acked)))
	}
	b.StopTimer()
	report := func(d []time.Duration, unit string) {
		slices.Sort(d)
		b.ReportMetric(float64(d[len(d)/2].Microseconds())/1000, "p50-"+unit)
		b.ReportMetric(float64(d[len(d)*99/100].Microseconds())/1000, "p99-"+unit)
	}
	report(fromSend, "ms-from-send")
	report(afterAck, "ms-after-ack")
}
