package roomstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/gamepersist/gamepersist/roomstore"
)

// ExampleOpenPostgres opens a store that owns its pool, creates its table and reads rooms
// in one round trip. It needs a database (DATABASE_URL), so it has no Output and is
// compiled, not run, by go test.
func ExampleOpenPostgres() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	store, err := roomstore.OpenPostgres(ctx, os.Getenv("DATABASE_URL"), roomstore.PostgresConfig{
		Table:           "game.rooms",
		ApplicationName: "my-mud",
	})
	if err != nil {
		// The error names host and port, never the password.
		fmt.Println("database unavailable:", err)
		return
	}
	defer store.Close()

	if err := store.Migrate(ctx); err != nil {
		fmt.Println("migrate:", err)
		return
	}
	if err := store.PutRoom(ctx, roomstore.Room{ID: "temple", Name: "The Temple",
		Exits: roomstore.NewExits(map[string]string{"north": "square"})}); err != nil {
		fmt.Println("put:", err)
		return
	}
	rooms, err := store.GetRooms(ctx, []string{"temple", "square"}) // one round trip
	if err != nil {
		fmt.Println("get:", err)
		return
	}
	fmt.Println(len(rooms), rooms["temple"].Version)

	if _, err := store.GetRoom(ctx, "square"); errors.Is(err, roomstore.ErrNotFound) {
		fmt.Println("no square yet")
	}
}

// ExampleNewPostgres_readOnlySelect points a store at a game's own multi-table schema.
func ExampleNewPostgres_readOnlySelect() {
	cfg := roomstore.PostgresConfig{
		SelectSQL: `SELECT r.id, r.title, r.body, z.plane, z.name, sz.name, r.env,
       (SELECT jsonb_object_agg(e.direction, e.target) FROM room_exits e WHERE e.room_id = r.id),
       r.flags, r.rev
FROM world_rooms r
LEFT JOIN sub_zones sz ON sz.id = r.sub_zone_id
LEFT JOIN zones z ON z.id = sz.zone_id
WHERE r.id = ANY($1)`,
	}
	// With a pool the game owns: store, err := roomstore.NewPostgres(pool, cfg)
	fmt.Println(cfg.WithDefaults().Table, cfg.WithDefaults().BatchChunk)
	// Output: rooms 5000
}
