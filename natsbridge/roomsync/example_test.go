package roomsync_test

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/gamepersist/gamepersist/natsbridge/roomsync"
	"github.com/gamepersist/gamepersist/roomstore"
)

// exampleNode is one game-server process of the example: a cache over the shared store,
// kept coherent by a RoomInvalidator.
type exampleNode struct {
	nc     *nats.Conn
	inv    *roomsync.RoomInvalidator
	cached *roomstore.Cached
}

// startExampleNode wires one process in the documented order: invalidator, cache with
// AfterWrite = inv.Publish, Attach.
func startExampleNode(ctx context.Context, url string, db roomstore.RoomStore, instance string) (*exampleNode, error) {
	nc, err := nats.Connect(url)
	if err != nil {
		return nil, err
	}
	inv, err := roomsync.NewRoomInvalidator(nc, roomsync.InvalidatorConfig{Instance: instance})
	if err != nil {
		nc.Close()
		return nil, err
	}
	cached, err := roomstore.NewCached(db, roomstore.CacheConfig{
		AfterWrite: inv.Publish, // tell the other processes after each write
		TTL:        time.Minute, // the safety net while NATS is down
	})
	if err != nil {
		_ = inv.Close()
		nc.Close()
		return nil, err
	}
	if err := inv.Attach(ctx, cached); err != nil {
		_ = cached.Close()
		_ = inv.Close()
		nc.Close()
		return nil, err
	}
	return &exampleNode{nc: nc, inv: inv, cached: cached}, nil
}

// Close shuts the node down in order: the invalidator, the cache, then the connection
// (which the node opened, so it closes it).
func (n *exampleNode) Close() {
	_ = n.inv.Close()
	_ = n.cached.Close()
	n.nc.Close()
}

// Two processes share one room database (a MemoryStore stands in for PostgreSQL) and
// one NATS server. A write on a invalidates b's cached copy, so b's next read loads the
// new version.
func ExampleNewRoomInvalidator() {
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	srv.Start()
	defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
	if !srv.ReadyForConnections(10 * time.Second) {
		fmt.Println("server not ready")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	db := roomstore.NewMemoryStore()
	defer func() { _ = db.Close() }()
	if err := db.PutRoom(ctx, roomstore.Room{ID: "crypt", Name: "The Crypt"}); err != nil {
		fmt.Println(err)
		return
	}
	a, err := startExampleNode(ctx, srv.ClientURL(), db, "node-a")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer a.Close()
	b, err := startExampleNode(ctx, srv.ClientURL(), db, "node-b")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()

	r, _ := b.cached.GetRoom(ctx, "crypt") // b caches version 1
	fmt.Println("b reads", r.Name, r.Version)

	v, err := a.cached.PutRoomVersion(ctx, roomstore.Room{ID: "crypt", Name: "The Flooded Crypt"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("a wrote version", v)

	// The notice arrives within a millisecond or so; wait for it here only to make the
	// output deterministic.
	for b.inv.Stats().Applied == 0 && ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
	r, _ = b.cached.GetRoom(ctx, "crypt")
	fmt.Println("b reads", r.Name, r.Version)
	fmt.Println("a ignored its own echo:", waitOwnEcho(ctx, a.inv))
	// Output:
	// b reads The Crypt 1
	// a wrote version 2
	// b reads The Flooded Crypt 2
	// a ignored its own echo: true
}

func waitOwnEcho(ctx context.Context, inv *roomsync.RoomInvalidator) bool {
	for ctx.Err() == nil {
		if s := inv.Stats(); s.OwnEchoes == 1 {
			return s.Applied == 0
		}
		time.Sleep(time.Millisecond)
	}
	return false
}
