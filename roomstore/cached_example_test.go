package roomstore_test

import (
	"context"
	"fmt"

	"github.com/gamepersist/gamepersist/roomstore"
)

// A Cached store in front of another store: the first read of a room is a miss that loads
// it, the second is a hit served from memory.
func ExampleNewCached() {
	ctx := context.Background()
	inner := roomstore.NewMemoryStore() // or the Postgres store
	defer inner.Close()                 // the caller owns inner: close it after the cache

	rooms, err := roomstore.NewCached(inner, roomstore.CacheConfig{MaxRooms: 10_000})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer rooms.Close()

	if err := inner.PutRoom(ctx, roomstore.Room{ID: "crypt", Name: "The Crypt"}); err != nil {
		fmt.Println(err)
		return
	}
	for range 2 {
		r, err := rooms.GetRoom(ctx, "crypt")
		if err != nil {
			fmt.Println(err)
			return
		}
		s := rooms.Stats()
		fmt.Printf("%s: hits=%d misses=%d loads=%d\n", r.Name, s.Hits, s.Misses, s.Loads)
	}
	// Output:
	// The Crypt: hits=0 misses=1 loads=1
	// The Crypt: hits=1 misses=1 loads=1
}
