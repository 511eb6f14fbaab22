package tickload_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gamepersist/gamepersist/flux"
	"github.com/gamepersist/gamepersist/internal/testkit/pgcount"
	"github.com/gamepersist/gamepersist/internal/testkit/testdb"
	"github.com/gamepersist/gamepersist/internal/workload/tickload"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var allPaths = []tickload.Path{tickload.Library, tickload.Floor, tickload.Hand, tickload.SeedPattern,
	tickload.SeedFlush3, tickload.Step, tickload.Evaluate}

// newWorkload sets up a workload of players players in a schema of its own.
func newWorkload(t *testing.T, ctx context.Context, players int) (*tickload.Workload, *pgcount.StatementCounter) {
	t.Helper()
	cs, _ := testdb.NewSchema(t)
	pool, counter, err := pgcount.NewPool(ctx, cs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	w, err := tickload.Setup(ctx, pool, counter, tickload.Config{Players: players, Rooms: max(10, players/4), Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := w.Close(); err != nil {
			t.Error(err)
		}
	})
	return w, counter
}

// TestPathsAgree runs a small workload and checks that every path computes the same
// changes by value (Compare over the digests, and the sorted change sets themselves), and
// that each issues the statements it is meant to: the library and the floor one write per
// tick, the seed pattern one query per player and one update per change, its 3-flush
// variant one query per player and min(3, changes) batches.
func TestPathsAgree(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const players = 200
	w, _ := newWorkload(t, ctx, players)
	totalChanges := 0
	for tick := range 12 {
		got := map[tickload.Path]tickload.Sample{}
		order := append(allPaths[tick%len(allPaths):], allPaths[:tick%len(allPaths)]...)
		for _, p := range order {
			s, err := w.Run(ctx, p)
			if err != nil {
				t.Fatalf("tick %d %s: %v", tick, p, err)
			}
			got[p] = s
		}
		if err := tickload.Compare(tickload.Library, got); err != nil {
			t.Fatalf("tick %d: %v", tick, err)
		}
		lib := got[tickload.Library]
		for p, s := range got {
			if s.Changes != lib.Changes || len(s.Changed) != s.Changes || tickload.FirstDifference(s.Changed, lib.Changed) != "" {
				t.Fatalf("tick %d: %s made %d changes (%d by value), library %d: %s", tick, p, s.Changes, len(s.Changed),
					lib.Changes, tickload.FirstDifference(s.Changed, lib.Changed))
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
		if want := int64(1 + players + lib.Changes); got[tickload.SeedPattern].Statements != want || got[tickload.SeedPattern].RoundTrips != want {
			t.Fatalf("tick %d: seed pattern issued %d statements (%d round trips), want %d", tick,
				got[tickload.SeedPattern].Statements, got[tickload.SeedPattern].RoundTrips, want)
		}
		f3 := got[tickload.SeedFlush3]
		if want := int64(1 + players + min(tickload.Flushes, lib.Changes)); f3.Statements != 1+players || f3.RoundTrips != want {
			t.Fatalf("tick %d: 3-flush pattern issued %d statements and %d round trips, want %d and %d", tick,
				f3.Statements, f3.RoundTrips, 1+players, want)
		}
		totalChanges += lib.Changes
		w.Next()
	}
	if totalChanges == 0 {
		t.Fatal("no tick changed anything: the workload measures nothing")
	}
}

// TestCompareCatchesAPerturbedChange takes one real tick of every path and checks that
// Compare catches one path whose changes differ from the library's in any one field of
// one change, or by one change more or less, and names that path; and that the order in
// which a path lists its changes does not matter.
func TestCompareCatchesAPerturbedChange(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	w, _ := newWorkload(t, ctx, 200)
	var got map[tickload.Path]tickload.Sample
	for tick := 0; ; tick++ {
		got = map[tickload.Path]tickload.Sample{}
		for _, p := range allPaths {
			s, err := w.Run(ctx, p)
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			got[p] = s
		}
		if len(got[tickload.Library].Changed) >= 2 {
			break
		}
		if tick == 20 {
			t.Fatal("20 ticks without two changes: nothing to perturb")
		}
		w.Next()
	}
	if err := tickload.Compare(tickload.Library, got); err != nil {
		t.Fatalf("unperturbed tick: %v", err)
	}
	lib := got[tickload.Library].Changed
	perturbations := map[string]func(tickload.ChangeSet) tickload.ChangeSet{
		"new lucidity +1": func(c tickload.ChangeSet) tickload.ChangeSet { c[1].New++; return c },
		"old lucidity -1": func(c tickload.ChangeSet) tickload.ChangeSet { c[0].Old--; return c },
		"other player":    func(c tickload.ChangeSet) tickload.ChangeSet { c[1].PlayerID += "x"; return c },
		"one dropped":     func(c tickload.ChangeSet) tickload.ChangeSet { return c[1:] },
		"one added": func(c tickload.ChangeSet) tickload.ChangeSet {
			return append(c, tickload.ChangeKey{PlayerID: "zz-extra", Old: 50, New: 49})
		},
		"old and new swapped": func(c tickload.ChangeSet) tickload.ChangeSet { c[0].Old, c[0].New = c[0].New, c[0].Old; return c },
	}
	for name, perturb := range perturbations {
		for _, victim := range []tickload.Path{tickload.Floor, tickload.SeedFlush3, tickload.Step} {
			tampered := make(map[tickload.Path]tickload.Sample, len(got))
			for p, s := range got {
				tampered[p] = s
			}
			s := tampered[victim]
			s.Changed = perturb(append(tickload.ChangeSet(nil), s.Changed...))
			s.Digest = s.Changed.Digest()
			tampered[victim] = s
			err := tickload.Compare(tickload.Library, tampered)
			if !errors.Is(err, tickload.ErrChangesDiffer) || !strings.Contains(err.Error(), string(victim)+" vs library") {
				t.Errorf("%s in %s: Compare = %v, want ErrChangesDiffer naming %s", name, victim, err, victim)
			}
			if tickload.FirstDifference(s.Changed, lib) == "" {
				t.Errorf("%s in %s: FirstDifference found none", name, victim)
			}
		}
	}
	// The same changes listed in another order are the same set.
	rev := make([]flux.Change, len(lib))
	for i, c := range lib {
		rev[len(lib)-1-i] = flux.Change{PlayerID: c.PlayerID, OldLucidity: c.Old, NewLucidity: c.New}
	}
	if d := tickload.NewChangeSet(rev).Digest(); d != got[tickload.Library].Digest {
		t.Errorf("reversed changes: digest %x, want %x", d, got[tickload.Library].Digest)
	}
}
