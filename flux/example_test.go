package flux_test

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gamepersist/gamepersist/flux"
	"github.com/gamepersist/gamepersist/roomstore"
)

// A lucid player lingers in a graveyard at night: −0.8 lucidity per tick, applied one
// whole point at a time while the fraction is carried in the ledger.
func ExampleEvaluator_Evaluate() {
	ev, err := flux.NewEvaluator(flux.DefaultRules())
	if err != nil {
		fmt.Println(err)
		return
	}
	rooms := map[string]flux.RoomInfo{
		"crypt": {ID: "crypt", Plane: "material", Zone: "old_town", Environment: "graveyard"},
	}
	start := time.Date(2026, 3, 14, 23, 0, 0, 0, time.UTC)
	players := []flux.Player{{ID: "ada", RoomID: "crypt", Lucidity: 71, CreatedAt: start.AddDate(0, -1, 0)}}
	ledger := flux.Ledger{}

	for tick := 1; tick <= 4; tick++ {
		now := start.Add(time.Duration(tick) * time.Minute)
		players[0].LastActive = now
		res := ev.Evaluate(players, rooms, now, ledger)
		for _, c := range res.Changes {
			fmt.Printf("tick %d: %s %d → %d (%s → %s), flux %.1f\n",
				tick, c.PlayerID, c.OldLucidity, c.NewLucidity, c.OldTier, c.NewTier, c.Flux)
			players[0].Lucidity = c.NewLucidity
		}
		fmt.Printf("tick %d: residual %.1f after %d evaluations in %s\n",
			tick, ledger["ada"].Residual, ledger["ada"].Evaluations, ledger["ada"].RoomID)
	}
	// Output:
	// tick 1: residual -0.8 after 1 evaluations in crypt
	// tick 2: ada 71 → 70 (lucid → lucid), flux -0.8
	// tick 2: residual -0.6 after 2 evaluations in crypt
	// tick 3: ada 70 → 69 (lucid → uneasy), flux -0.8
	// tick 3: residual -0.4 after 3 evaluations in crypt
	// tick 4: ada 69 → 68 (uneasy → uneasy), flux -0.8
	// tick 4: residual -0.2 after 4 evaluations in crypt
}

// One Runner tick over in-memory stores: the game writes where its players are, the
// Runner loads the active ones, reads their rooms with one GetRooms, evaluates and applies
// the changes with one (idempotent) apply. At 23:00 the eldritch crypt costs 1.5 lucidity a
// tick; bo gets +0.1 back for ada, a lucid companion, while ada's fractured companion
// neither helps nor harms. The sanctuary heals, but cy is already at the maximum; dee has
// been idle for an hour, so is neither evaluated nor anyone's companion.
func ExampleRunner_Tick() {
	ctx := context.Background()
	rules := flux.DefaultRules()
	now := time.Date(2026, 3, 14, 23, 0, 0, 0, time.UTC)

	rooms := roomstore.NewMemoryStore()
	defer func() { _ = rooms.Close() }()
	for _, r := range []roomstore.Room{
		{ID: "crypt", Name: "Crypt", Plane: "material", Zone: "old_town", SubZone: "crypts", Environment: "eldritch"},
		{ID: "chapel", Name: "Chapel", Plane: "material", Zone: "old_town", SubZone: "chapel", Environment: "sanctuary"},
	} {
		if err := rooms.PutRoom(ctx, r); err != nil {
			fmt.Println(err)
			return
		}
	}

	players := flux.NewMemoryPlayers(rules)
	born := now.AddDate(0, -1, 0)
	players.Put(
		flux.Player{ID: "ada", RoomID: "chapel", Lucidity: 70, CreatedAt: born},
		flux.Player{ID: "bo", RoomID: "crypt", Lucidity: 20, CreatedAt: born},
		flux.Player{ID: "cy", RoomID: "chapel", Lucidity: 100, CreatedAt: born},
		flux.Player{ID: "dee", RoomID: "crypt", Lucidity: 50, LastActive: now.Add(-time.Hour), CreatedAt: born},
	)
	// The game's own write of this tick's moves and actions (one statement on Postgres).
	if _, err := players.UpdatePresence(ctx, []flux.Presence{
		{PlayerID: "ada", RoomID: "crypt", LastActive: now},
		{PlayerID: "bo", RoomID: "crypt", LastActive: now},
		{PlayerID: "cy", RoomID: "chapel", LastActive: now},
	}); err != nil {
		fmt.Println(err)
		return
	}

	runner, err := flux.NewRunner(players, rooms, flux.RunnerConfig{RunnerID: "example", Rules: &rules})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = runner.Close() }() // the final flush of anything pending

	rep, err := runner.Tick(ctx, now)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, c := range rep.Changes {
		fmt.Printf("%s in %s: %d → %d (%s → %s), flux %.1f\n",
			c.PlayerID, c.RoomID, c.OldLucidity, c.NewLucidity, c.OldTier, c.NewTier, c.Flux)
	}
	fmt.Printf("active %d, changed %d, statements %d, room reads %d, pending %d\n",
		rep.Counts.Active, rep.Counts.Changed, rep.Statements, rep.RoomReads, rep.PendingPlayers)
	ada, _ := players.Get("ada")
	fmt.Printf("stored: ada %d %s\n", ada.Lucidity, ada.Tier)
	// Output:
	// ada in crypt: 70 → 69 (lucid → uneasy), flux -1.5
	// bo in crypt: 20 → 19 (fractured → deranged), flux -1.4
	// active 3, changed 2, statements 2, room reads 1, pending 0
	// stored: ada 69 uneasy
}

// A game server's Runner on PostgreSQL, pointed at the game's own tables, with rooms read
// through the cache, ticking every second in the caller's goroutine until ctx ends.
func ExamplePostgresPlayers() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pool.Close() // the caller's pool: no store closes it

	rules := flux.DefaultRules()
	players, err := flux.NewPostgresPlayers(pool, flux.PostgresConfig{
		Schema: "game", PlayersTable: "characters", PlayerIDColumn: "character_id", PlayerIDType: "uuid",
		LucidityTable: "character_stats", LucidityPlayerIDColumn: "character_id",
		ExternalPlayerTables: true, // Migrate creates only flux's applied-ticks table
		Rules:                &rules,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := players.Migrate(ctx); err != nil {
		fmt.Println(err)
		return
	}
	roomsPG, err := roomstore.NewPostgres(pool, roomstore.PostgresConfig{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = roomsPG.Close() }()
	rooms, err := roomstore.NewCached(roomsPG, roomstore.CacheConfig{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = rooms.Close() }()

	runner, err := flux.NewRunner(players, rooms, flux.RunnerConfig{RunnerID: "shard-1", Rules: &rules})
	if err != nil {
		fmt.Println(err)
		return
	}
	// Elsewhere in the game loop, once per tick: the players that moved or acted.
	//	players.UpdatePresence(ctx, []flux.Presence{{PlayerID: id, RoomID: room, LastActive: now}})
	if err := runner.Run(ctx, time.Second); err != nil {
		fmt.Println(err)
	}
	if err := runner.Close(); err != nil { // final flush within RunnerConfig.CloseTimeout
		fmt.Println(err)
	}
}
