package flux_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/gamepersist/gamepersist/flux"
	"github.com/gamepersist/gamepersist/internal/testkit/testdb"
)

// mudSchema is shaped like a real MUD's tables: players with uuid ids and a soft-delete
// flag, lucidity in a table of its own with the game's bookkeeping columns, and the game's
// own adjustment log.
const mudSchema = `
CREATE TABLE players (
    id         uuid PRIMARY KEY,
    name       text NOT NULL,
    room_id    text NOT NULL,
    last_seen  timestamptz NOT NULL,
    created_at timestamptz NOT NULL,
    is_deleted boolean NOT NULL DEFAULT false
);
CREATE TABLE player_lucidity (
    player_id            uuid PRIMARY KEY REFERENCES players (id),
    lucidity             integer NOT NULL,
    tier                 text NOT NULL,
    last_updated_at      timestamptz,
    catatonia_entered_at timestamptz
);
CREATE TABLE lucidity_adjustments (
    id         bigserial PRIMARY KEY,
    player_id  uuid NOT NULL,
    delta      integer NOT NULL,
    old_value  integer NOT NULL,
    new_value  integer NOT NULL,
    reason     text NOT NULL,
    created_at timestamptz NOT NULL
);`

// mudConfig maps flux onto mudSchema in schema game, with the library's own tables in
// schema lib.
func mudConfig(game, lib string) flux.PostgresConfig {
	return flux.PostgresConfig{
		Schema: game, StateSchema: lib,
		PlayersTable: "players", PlayerIDColumn: "id", PlayerIDType: "uuid", RoomColumn: "room_id",
		LastActiveColumn: "last_seen", CreatedAtColumn: "created_at",
		LucidityTable: "player_lucidity", LucidityPlayerIDColumn: "player_id", LucidityColumn: "lucidity", TierColumn: "tier",
		ExternalPlayerTables: true,
		Filter:               "NOT p.is_deleted",
		UpdatedAtColumn:      "last_updated_at",
		TierEnteredColumn:    "catatonia_entered_at", TierEntered: flux.TierCatatonic, ClearTierEntered: true,
		Audit: true, AuditTable: "lucidity_adjustments",
		AuditColumns: flux.AuditColumns{PlayerID: "player_id", Delta: "delta", OldLucidity: "old_value",
			NewLucidity: "new_value", Reason: "reason", At: "created_at"},
	}
}

// TestGameSchema runs four night ticks on mudSchema: a soft-deleted player is never loaded
// nor ticked; a player entering catatonia gets catatonia_entered_at stamped once, and a
// catatonic one rising out of it gets it cleared; last_updated_at moves exactly when the
// lucidity does; every change lands in the game's own adjustment log; and the library's
// own table lives in a schema of its own.
func TestGameSchema(t *testing.T) {
	t.Parallel()
	pool, schema := testdb.NewPool(t)
	ctx := context.Background()
	game, lib := schema+"_mud", schema+"_flux" // the game's schema, the library's
	t.Cleanup(func() {
		if _, err := pool.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+game+", "+lib+" CASCADE"); err != nil {
			t.Error(err)
		}
	})
	if _, err := pool.Exec(ctx, "CREATE SCHEMA "+game+"; SET search_path = "+game+"; "+mudSchema+"; RESET search_path"); err != nil {
		t.Fatal(err)
	}
	const (
		deleted = "00000000-0000-4000-8000-000000000001" // eldritch, soft-deleted
		brink   = "00000000-0000-4000-8000-000000000002" // eldritch, lucidity 1
		riser   = "00000000-0000-4000-8000-000000000003" // sanctuary, catatonic at 0
	)
	longAgo := rtNight.Add(-30 * 24 * time.Hour)
	for _, p := range []struct {
		id, room string
		lcd      int
		tier     string
		del      bool
		entered  any
	}{
		{deleted, "eld", 50, "uneasy", true, nil},
		{brink, "grave", 1, "deranged", false, nil},
		{riser, "sanct", 0, "catatonic", false, longAgo},
	} {
		if _, err := pool.Exec(ctx, `INSERT INTO `+game+`.players VALUES ($1::uuid, $1::text, $2, $3, $4, $5)`,
			p.id, p.room, rtNight, longAgo, p.del); err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Exec(ctx, `INSERT INTO `+game+`.player_lucidity VALUES ($1, $2, $3, NULL, $4)`,
			p.id, p.lcd, p.tier, p.entered); err != nil {
			t.Fatal(err)
		}
	}
	rooms := scenarioRooms()
	rooms[0] = room("grave", "eldritch") // −1.5 a tick at night
	store := postgresPlayers(t, pool, mudConfig(game, lib))
	r := newRunner(t, store, memoryRooms(t, rooms...), flux.RunnerConfig{})

	type row struct {
		lucidity         int
		tier             string
		updated, entered pgtype.Timestamptz
	}
	read := func(id string) row {
		var x row
		if err := pool.QueryRow(ctx, `SELECT lucidity, tier, last_updated_at, catatonia_entered_at
			FROM `+game+`.player_lucidity WHERE player_id = $1`, id).Scan(&x.lucidity, &x.tier, &x.updated, &x.entered); err != nil {
			t.Fatal(err)
		}
		return x
	}
	// brink, alone in −1.5: 1 → 0 (catatonic) → −2 → −3 → −5. riser, alone in the
	// sanctuary at night (+0.3): 0, 0, 0, then +1 at the 4th tick (deranged).
	wantBrink := []int{0, -2, -3, -5}
	var firstEntered pgtype.Timestamptz
	for k := range 4 {
		rep, err := r.Tick(ctx, rtNight.Add(time.Duration(k)*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if rep.Counts.Seen != 2 {
			t.Fatalf("tick %d loaded %d players, want 2 (the soft-deleted one is not loaded)", k+1, rep.Counts.Seen)
		}
		b, ri := read(brink), read(riser)
		if b.lucidity != wantBrink[k] || !b.updated.Valid || !b.entered.Valid {
			t.Fatalf("tick %d: brink %+v, want %d with last_updated_at and catatonia_entered_at set", k+1, b, wantBrink[k])
		}
		if k == 0 {
			firstEntered = b.entered
		} else if !b.entered.Time.Equal(firstEntered.Time) {
			t.Fatalf("tick %d: catatonia_entered_at moved from %v to %v while the player stayed catatonic",
				k+1, firstEntered.Time, b.entered.Time)
		}
		switch {
		case k < 3 && (ri.lucidity != 0 || ri.updated.Valid || !ri.entered.Time.Equal(longAgo)):
			t.Fatalf("tick %d: riser %+v, want untouched at 0", k+1, ri)
		case k == 3 && (ri.lucidity != 1 || ri.tier != "deranged" || !ri.updated.Valid || ri.entered.Valid):
			t.Fatalf("tick 4: riser %+v, want 1, deranged, updated, catatonia_entered_at cleared", ri)
		}
	}
	if d := read(deleted); d.lucidity != 50 || d.updated.Valid {
		t.Fatalf("the soft-deleted player was ticked: %+v", d)
	}

	var audits, brinkSum, stateRows, inGameSchema int
	var reason string
	if err := pool.QueryRow(ctx, `SELECT count(*), coalesce(sum(delta) FILTER (WHERE player_id = $1), 0), min(reason)
		FROM `+game+`.lucidity_adjustments`, brink).Scan(&audits, &brinkSum, &reason); err != nil {
		t.Fatal(err)
	}
	if audits != 5 || brinkSum != -6 || reason != "passive_flux" {
		t.Fatalf("adjustment log: %d rows, brink's deltas sum to %d, reason %q; want 5, −6, passive_flux", audits, brinkSum, reason)
	}
	var oldV, newV int
	if err := pool.QueryRow(ctx, `SELECT old_value, new_value FROM `+game+`.lucidity_adjustments WHERE player_id = $1`, riser).
		Scan(&oldV, &newV); err != nil || oldV != 0 || newV != 1 {
		t.Fatalf("riser's adjustment %d → %d (%v), want 0 → 1", oldV, newV, err)
	}
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM `+lib+`.flux_state`).Scan(&stateRows); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM information_schema.tables WHERE table_schema = $1`, game).Scan(&inGameSchema); err != nil {
		t.Fatal(err)
	}
	if stateRows != 2 || inGameSchema != 3 {
		t.Fatalf("%d flux state rows in the library's schema (want 2: the soft-deleted player has none), %d tables in the game's schema (want the game's 3)",
			stateRows, inGameSchema)
	}
}
