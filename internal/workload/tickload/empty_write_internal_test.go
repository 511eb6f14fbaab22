package tickload

import (
	"context"
	"testing"
	"time"

	"github.com/gamepersist/gamepersist/flux"
	"github.com/gamepersist/gamepersist/internal/testkit/pgcount"
	"github.com/gamepersist/gamepersist/internal/testkit/testdb"
)

// TestApplySkipsAnEmptyWrite: the floor and the hand-written tick send no statement when
// no player is to be written, as the Runner does; with players to write they send one.
func TestApplySkipsAnEmptyWrite(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cs, _ := testdb.NewSchema(t)
	pool, counter, err := pgcount.NewPool(ctx, cs)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	w, err := Setup(ctx, pool, counter, Config{Players: 20, Rooms: 10, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := w.Close(); err != nil {
			t.Error(err)
		}
	}()
	now := w.Now()
	before := counter.Statements()
	if err := w.apply(ctx, w.floorStore, "floor", nil, flux.Result{}, w.floorLedger, now); err != nil {
		t.Fatal(err)
	}
	if n := counter.Statements() - before; n != 0 {
		t.Errorf("an empty write sent %d statements, want 0", n)
	}
	before = counter.Statements()
	if err := w.apply(ctx, w.floorStore, "floor", w.floorPlayers, flux.Result{}, w.floorLedger, now); err != nil {
		t.Fatal(err)
	}
	if n := counter.Statements() - before; n != 1 {
		t.Errorf("a write of %d players sent %d statements, want 1", len(w.floorPlayers), n)
	}
}
