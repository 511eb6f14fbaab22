package tickload_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gamepersist/gamepersist/internal/testkit/pgcount"
	"github.com/gamepersist/gamepersist/internal/testkit/testdb"
	"github.com/gamepersist/gamepersist/internal/workload/tickload"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestPathsAgree runs a small workload and checks that every path computes the same
// changes, and that each issues the statements it is meant to: the library and the floor
// one write per tick, the seed pattern one query per player and one update per change.
func TestPathsAgree(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cs, _ := testdb.NewSchema(t)
	pool, counter, err := pgcount.NewPool(ctx, cs)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	const players = 200
	w, err := tickload.Setup(ctx, pool, counter, tickload.Config{Players: players, Rooms: 50, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := w.Close(); err != nil {
			t.Error(err)
		}
	}()
	totalChanges := 0
	for tick := range 12 {
		got := map[tickload.Path]tickload.Sample{}
		for _, p := range []tickload.Path{tickload.Library, tickload.Floor, tickload.Hand, tickload.SeedPattern, tickload.Step, tickload.Evaluate} {
			s, err := w.Run(ctx, p)
			if err != nil {
				t.Fatalf("tick %d %s: %v", tick, p, err)
			}
			got[p] = s
		}
		lib := got[tickload.Library]
		for p, s := range got {
			if s.Changes != lib.Changes {
				t.Fatalf("tick %d: %s made %d changes, library %d", tick, p, s.Changes, lib.Changes)
			}
		}
		if lib.Report.Counts.Evaluated != players {
			t.Fatalf("tick %d: library evaluated %d players, want %d", tick, lib.Report.Counts.Evaluated, players)
		}
		wantPlayers := int64(2) // the load, the one write (every evaluated player's tick state)
		wantLib := wantPlayers
		if tick == 0 {
			wantLib++ // the cold cache loads every room, in one query; none after that
		}
		if lib.Statements != wantLib || lib.Report.Statements != int(wantPlayers) {
			t.Fatalf("tick %d: library issued %d statements (report %d), want %d", tick, lib.Statements, lib.Report.Statements, wantLib)
		}
		if got[tickload.Floor].Statements != 1 || got[tickload.Hand].Statements != 2 {
			t.Fatalf("tick %d: floor %d, hand %d statements; want 1 and 2", tick, got[tickload.Floor].Statements, got[tickload.Hand].Statements)
		}
		if want := int64(1 + players + lib.Changes); got[tickload.SeedPattern].Statements != want {
			t.Fatalf("tick %d: seed pattern issued %d statements, want %d", tick, got[tickload.SeedPattern].Statements, want)
		}
		totalChanges += lib.Changes
		w.Next()
	}
	if totalChanges == 0 {
		t.Fatal("no tick changed anything: the workload measures nothing")
	}
}
