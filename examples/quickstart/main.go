// Command quickstart is the smallest complete use of gamepersist's room store: connect to
// PostgreSQL, create the table, write a room, read it twice through the cache (the second
// read is served from memory) and print the cache's counters.
//
//	go run ./examples/quickstart [-database-url postgres://...]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/gamepersist/gamepersist/roomstore"
)

func main() {
	url := os.Getenv("GAMEPERSIST_DATABASE_URL")
	if url == "" {
		url = "postgres://postgres@127.0.0.1:5432/postgres"
	}
	flag.StringVar(&url, "database-url", url, "PostgreSQL URL (default: $GAMEPERSIST_DATABASE_URL, else the local server)")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := run(ctx, url, os.Stdout); err != nil {
		// One line; errors name the host and port, never a password.
		fmt.Fprintln(os.Stderr, "quickstart:", strings.ReplaceAll(err.Error(), "\n", " "))
		os.Exit(1)
	}
}

// run does the whole quickstart on the database at url and prints to out.
func run(ctx context.Context, url string, out io.Writer) (err error) {
	// The store opens and owns a pool; Close releases it. Errors are joined, never lost.
	store, err := roomstore.OpenPostgres(ctx, url, roomstore.PostgresConfig{ApplicationName: "quickstart"})
	if err != nil {
		return fmt.Errorf("no database answered (set -database-url or GAMEPERSIST_DATABASE_URL): %w", err)
	}
	defer func() { err = errors.Join(err, store.Close()) }()
	if err := store.Migrate(ctx); err != nil { // idempotent: CREATE TABLE IF NOT EXISTS
		return err
	}

	// The read-through cache in front of the store; close it before the store (defers run LIFO).
	rooms, err := roomstore.NewCached(store, roomstore.CacheConfig{})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, rooms.Close()) }()

	temple := roomstore.Room{
		ID: "temple", Name: "The Temple", Environment: "sanctuary", Zone: "old_town",
		Exits: roomstore.NewExits(map[string]string{"north": "square"}),
	}
	if err := rooms.PutRoom(ctx, temple); err != nil { // one upsert; the version goes up by 1
		return err
	}
	for range 2 { // the first read loads from PostgreSQL, the second is a cache hit
		r, err := rooms.GetRoom(ctx, "temple")
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "room %s %q env=%s version=%d\n", r.ID, r.Name, r.Environment, r.Version)
	}
	s := rooms.Stats()
	fmt.Fprintf(out, "cache hits=%d misses=%d loads=%d hit_ratio=%.2f\n", s.Hits, s.Misses, s.Loads, s.HitRatio)
	return nil
}
