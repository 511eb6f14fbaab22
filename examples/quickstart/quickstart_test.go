package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gamepersist/gamepersist/internal/testdb"
	"github.com/gamepersist/gamepersist/roomstore"
)

// TestQuickstartOnPostgres runs the quickstart on its own schema and checks what it prints:
// the room read twice, and cache counters showing the second read was a hit (one miss, one
// load from PostgreSQL, one hit).
func TestQuickstartOnPostgres(t *testing.T) {
	t.Parallel()
	url, schema := testdb.NewSchema(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var out bytes.Buffer
	if err := run(ctx, url, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	want := `room temple "The Temple" env=sanctuary version=1
room temple "The Temple" env=sanctuary version=1
cache hits=1 misses=1 loads=1 hit_ratio=0.50
`
	if out.String() != want {
		t.Fatalf("output:\n%s\nwant:\n%s", out.String(), want)
	}

	// The room really is in the schema's table, and a second run bumps its version.
	store, err := roomstore.OpenPostgres(ctx, url, roomstore.PostgresConfig{Table: schema + ".rooms"})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	r, err := store.GetRoom(ctx, "temple")
	if err != nil || r.Name != "The Temple" || r.Exits.Len() != 1 {
		t.Fatalf("stored room = %+v, %v", r, err)
	}
	out.Reset()
	if err := run(ctx, url, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "version=2") {
		t.Fatalf("second run did not write a new version:\n%s", out.String())
	}
}

// TestQuickstartNoDatabase checks that an unreachable database is an error that says so
// and does not print the password.
func TestQuickstartNoDatabase(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out bytes.Buffer
	err := run(ctx, "postgres://nobody:s3cret-pw@127.0.0.1:1/x?connect_timeout=2", &out)
	if err == nil {
		t.Fatal("run succeeded without a database")
	}
	if !strings.Contains(err.Error(), "no database answered") || strings.Contains(err.Error(), "s3cret-pw") {
		t.Fatalf("error = %v", err)
	}
	if out.Len() != 0 {
		t.Fatalf("printed %q before failing", out.String())
	}
}
