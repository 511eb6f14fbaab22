package flux_test

import (
	"context"
	"testing"
	"time"

	"github.com/gamepersist/gamepersist/flux"
	"github.com/gamepersist/gamepersist/internal/testkit/testdb"
)

// presenceStore is a player store under the presence test.
type presenceStore interface {
	flux.PlayerStore
	flux.PresenceUpdater
}

// TestUpdatePresence writes one batch of presences — two players moved, one of them
// twice (the last entry wins), one unknown player — to the memory store, the Postgres store
// on its default schema and on a game's own schema (uuid ids, quoted names, lucidity in
// another table): exactly the listed players move, lucidity is untouched, the count is the
// players updated, Postgres sends one statement (none for an empty batch), and the next
// LoadActive sees the moved players as active in their new rooms.
func TestUpdatePresence(t *testing.T) {
	t.Parallel()
	const (
		u1 = "6f1c28a4-1b7e-4c0e-9a7e-0d5c3f9b1a01"
		u2 = "6f1c28a4-1b7e-4c0e-9a7e-0d5c3f9b1a02"
		u3 = "6f1c28a4-1b7e-4c0e-9a7e-0d5c3f9b1a03"
		u4 = "6f1c28a4-1b7e-4c0e-9a7e-0d5c3f9b1a04"
	)
	idle := rtNight.Add(-time.Hour)
	born := rtNight.Add(-30 * 24 * time.Hour)
	// setup is the store, how to count its statements (nil without a database) and the
	// ids of its three players and of one it does not hold.
	type setup struct {
		store      presenceStore
		statements func() int64
		ids        [4]string // three held, one not
	}
	cases := map[string]func(t *testing.T) setup{
		"memory": func(t *testing.T) setup {
			ids := [4]string{"a", "b", "c", "nobody"}
			m := flux.NewMemoryPlayers(flux.DefaultRules())
			for i, l := range []int{70, -20, 5} {
				m.Put(flux.Player{ID: ids[i], RoomID: "grave", Lucidity: l, LastActive: idle, CreatedAt: born})
			}
			return setup{store: m, ids: ids}
		},
		"postgres": func(t *testing.T) setup {
			ids := [4]string{"a", "b", "c", "nobody"}
			pool, counter, _ := testdb.NewTracedPool(t)
			s := postgresPlayers(t, pool, flux.PostgresConfig{})
			for i, l := range []int{70, -20, 5} {
				insertPlayers(t, pool, flux.Player{ID: ids[i], RoomID: "grave", Lucidity: l, LastActive: idle, CreatedAt: born})
			}
			return setup{store: s, statements: counter.Statements, ids: ids}
		},
		"postgres game schema": func(t *testing.T) setup {
			ids := [4]string{u1, u2, u3, u4}
			pool, counter, _ := testdb.NewTracedPool(t)
			ctx := context.Background()
			if _, err := pool.Exec(ctx, gameSchema); err != nil {
				t.Fatal(err)
			}
			s := postgresPlayers(t, pool, gameConfig)
			rules := flux.DefaultRules()
			for i, l := range []int{70, -20, 5} {
				if _, err := pool.Exec(ctx, `INSERT INTO "Game Players" VALUES ($1, 'grave', $2, $3)`, ids[i], idle, born); err != nil {
					t.Fatal(err)
				}
				if _, err := pool.Exec(ctx, `INSERT INTO "lucidity""stats" VALUES ($1, $2, $3)`, ids[i], l, string(rules.Tier(l))); err != nil {
					t.Fatal(err)
				}
			}
			return setup{store: s, statements: counter.Statements, ids: ids}
		},
	}
	for name, open := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := open(t)
			a, b, c, nobody := s.ids[0], s.ids[1], s.ids[2], s.ids[3]
			t1, t2 := rtNight.Add(-time.Second), rtNight
			count := func() int64 {
				if s.statements == nil {
					return 0
				}
				return s.statements()
			}

			before := count()
			if n, err := s.store.UpdatePresence(ctx, nil); err != nil || n != 0 || count() != before {
				t.Fatalf("empty batch: %d, %v, %d statements", n, err, count()-before)
			}
			batch := []flux.Presence{
				{PlayerID: a, RoomID: "eld", LastActive: t1},
				{PlayerID: b, RoomID: "camp", LastActive: t1},
				{PlayerID: nobody, RoomID: "eld", LastActive: t2},
				{PlayerID: a, RoomID: "sanct", LastActive: t2},
			}
			n, err := s.store.UpdatePresence(ctx, batch)
			if err != nil {
				t.Fatal(err)
			}
			if n != 2 {
				t.Fatalf("updated %d players, want 2", n)
			}
			if s.statements != nil && count()-before != 1 {
				t.Fatalf("%d statements for one batch, want 1", count()-before)
			}

			// Everyone, as stored.
			all, err := s.store.LoadActive(ctx, flux.ActiveQuery{Now: t2, ActiveWithin: 24 * time.Hour}, nil)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]flux.Player{
				a: {ID: a, RoomID: "sanct", Lucidity: 70, LastActive: t2},
				b: {ID: b, RoomID: "camp", Lucidity: -20, LastActive: t1},
				c: {ID: c, RoomID: "grave", Lucidity: 5, LastActive: idle},
			}
			if len(all) != len(want) {
				t.Fatalf("stored players %+v", all)
			}
			for _, p := range all {
				w := want[p.ID]
				if p.RoomID != w.RoomID || p.Lucidity != w.Lucidity || !p.LastActive.Equal(w.LastActive) {
					t.Errorf("player %s: %s %d %v; want %s %d %v", p.ID, p.RoomID, p.Lucidity, p.LastActive, w.RoomID, w.Lucidity, w.LastActive)
				}
			}

			// The next tick's load: only the two that acted are active.
			active, err := s.store.LoadActive(ctx, flux.ActiveQueryFor(flux.DefaultRules(), t2), nil)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, p := range active {
				got[p.ID] = p.RoomID
			}
			if len(got) != 2 || got[a] != "sanct" || got[b] != "camp" {
				t.Fatalf("active after the presence write: %v", got)
			}
		})
	}
}
