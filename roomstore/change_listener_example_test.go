package roomstore_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/gamepersist/gamepersist/roomstore"
)

// ExampleNewChangeListener makes a server's room cache follow edits made in plain SQL:
// the store's Migrate installs the change trigger (NotifyChannel), and a ChangeListener on
// a connection of its own invalidates the cache. It needs a database (DATABASE_URL), so it
// has no Output and is compiled, not run, by go test.
func ExampleNewChangeListener() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	store, err := roomstore.OpenPostgres(ctx, os.Getenv("DATABASE_URL"), roomstore.PostgresConfig{
		NotifyChannel: roomstore.DefaultNotifyChannel, // opt in: Migrate installs the trigger
	})
	if err != nil {
		fmt.Println("database unavailable:", err)
		return
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		fmt.Println("migrate:", err)
		return
	}
	cache, err := roomstore.NewCached(store, roomstore.CacheConfig{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cache.Close()

	// One connection beyond the pool's, opened from its config.
	listener, err := roomstore.NewChangeListener(store.Pool().Config().ConnConfig, cache, roomstore.ChangeListenerConfig{})
	if err != nil {
		fmt.Println(err)
		return
	}
	done := make(chan error, 1)
	go func() { done <- listener.Run(ctx) }() // the game's goroutine; Run returns when ctx ends
	defer func() {
		cancel()
		if err := <-done; err != nil {
			fmt.Println("listener:", err)
		}
	}()

	// A designer's tool edits a room; every server's cache drops it within milliseconds.
	_, _ = store.Pool().Exec(ctx, `UPDATE rooms SET name = 'The Old Temple', version = version + 1 WHERE id = 'temple'`)
	for listener.Stats().Notices == 0 && ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
	room, _ := cache.GetRoom(ctx, "temple")
	fmt.Println(room.Name) // The Old Temple
}

// ExampleChangeTriggerSQL installs the change trigger on a game's own tables: each table a
// room is read from, with the column that holds the room's id.
func ExampleChangeTriggerSQL() {
	sql, err := roomstore.ChangeTriggerSQL("world.room_exits", "from_room", roomstore.DefaultNotifyChannel)
	if err != nil {
		fmt.Println(err)
		return
	}
	// Run it with the game's own migration tool, or: pool.Exec(ctx, sql, pgx.QueryExecModeSimpleProtocol)
	fmt.Println(strings.Contains(sql, `AFTER UPDATE ON "world"."room_exits"`))
	// Output: true
}
