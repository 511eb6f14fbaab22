// Command newest is built by .ci/newest.sh in a module of its own, outside this repository,
// after `go get -u` of every dependency: it shows that the library builds and works on the
// newest releases of what it wraps, not only on the versions go.mod pins. Against the
// local servers it opens the rooms store, migrates a throw-away schema, reads a room through
// the cache, connects to NATS with natsbridge.Connect (plaintext, as a game does in
// development), handles one durable message and closes everything.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gamepersist/gamepersist/natsbridge"
	"github.com/gamepersist/gamepersist/roomstore"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "newest:", err)
		os.Exit(1)
	}
	fmt.Println("newest: ok")
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func run(ctx context.Context) error {
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	if err := rooms(ctx, env("GAMEPERSIST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"), "newest_"+suffix); err != nil {
		return fmt.Errorf("rooms: %w", err)
	}
	if err := durable(ctx, env("GAMEPERSIST_NATS_URL", "nats://127.0.0.1:4222"), "NEWEST_"+suffix); err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	return nil
}

// rooms migrates a schema of its own, writes a room and reads it back through the cache.
func rooms(ctx context.Context, url, schema string) (err error) {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return err
	}
	defer pool.Close()
	defer func() {
		_, dropErr := pool.Exec(context.WithoutCancel(ctx), "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
		err = errors.Join(err, dropErr)
	}()
	store, err := roomstore.NewPostgres(pool, roomstore.PostgresConfig{Schema: schema})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, store.Close()) }()
	if err := store.Migrate(ctx); err != nil {
		return err
	}
	if err := store.PutRoom(ctx, roomstore.Room{ID: "r1", Name: "Gate"}); err != nil {
		return err
	}
	cache, err := roomstore.NewCached(store, roomstore.CacheConfig{})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, cache.Close()) }()
	room, err := cache.GetRoom(ctx, "r1")
	if err != nil {
		return err
	}
	if room.Name != "Gate" {
		return fmt.Errorf("read back room name %q, want %q", room.Name, "Gate")
	}
	return nil
}

// durable connects with natsbridge.Connect, handles one message through a durable
// consumer on a stream of its own, and drains.
func durable(ctx context.Context, url, stream string) (err error) {
	nc, err := natsbridge.Connect(ctx, natsbridge.ConnectConfig{URLs: []string{url}, Name: "newest"})
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	subject := "newest." + stream
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: stream, Subjects: []string{subject}}); err != nil {
		return err
	}
	defer func() { err = errors.Join(err, js.DeleteStream(context.WithoutCancel(ctx), stream)) }()

	b, err := natsbridge.New(nc, natsbridge.Config{})
	if err != nil {
		return err
	}
	got := make(chan string, 1)
	err = b.HandleDurable(ctx, natsbridge.Durable{Stream: stream, Consumer: "newest"},
		func(_ context.Context, m natsbridge.Msg) error {
			got <- string(m.Data)
			return nil
		})
	if err != nil {
		return errors.Join(err, b.Close())
	}
	if _, err := js.Publish(ctx, subject, []byte("trade")); err != nil {
		return errors.Join(err, b.Close())
	}
	select {
	case data := <-got:
		if data != "trade" {
			err = fmt.Errorf("handled %q, want %q", data, "trade")
		}
	case <-ctx.Done():
		err = fmt.Errorf("durable message not handled: %w", ctx.Err())
	}
	return errors.Join(err, b.Drain(ctx))
}
