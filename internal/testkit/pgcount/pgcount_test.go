package pgcount_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"

	"github.com/gamepersist/gamepersist/internal/testkit/pgcount"
	"github.com/gamepersist/gamepersist/internal/testkit/testdb"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestCounts sends two statements and one batch of three and checks each is counted as
// the counter says: statements outside batches, batches once, round trips the sum.
func TestCounts(t *testing.T) {
	t.Parallel()
	pool, counter, _ := testdb.NewTracedPool(t)
	if n := counter.RoundTrips(); n != 0 {
		t.Fatalf("round trips after opening = %d, want 0 (the ping is not counted)", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for range 2 {
		if _, err := pool.Exec(ctx, "SELECT 1"); err != nil {
			t.Fatal(err)
		}
	}
	b := &pgx.Batch{}
	for range 3 {
		b.Queue("SELECT 1")
	}
	if err := pool.SendBatch(ctx, b).Close(); err != nil {
		t.Fatal(err)
	}
	if s, bt, rt := counter.Statements(), counter.Batches(), counter.RoundTrips(); s != 2 || bt != 1 || rt != 3 {
		t.Fatalf("statements %d, batches %d, round trips %d; want 2, 1, 3", s, bt, rt)
	}
}

func TestNewPoolBadURL(t *testing.T) {
	t.Parallel()
	pool, counter, err := pgcount.NewPool(context.Background(), "postgres://u:secret@[::1")
	if err == nil || pool != nil || counter != nil {
		t.Fatalf("NewPool on a bad URL = %v, %v, %v", pool, counter, err)
	}
	if got := err.Error(); got != "pgcount: database URL does not parse" {
		t.Fatalf("error = %q", got)
	}
}
