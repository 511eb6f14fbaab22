package roomstore_test

import (
	"testing"

	"github.com/gamepersist/gamepersist/roomstore"
	"github.com/gamepersist/gamepersist/roomstore/roomstoretest"
)

func TestMemoryStoreConformance(t *testing.T) {
	t.Parallel()
	roomstoretest.Run(t, func(*testing.T) roomstore.RoomStore { return roomstore.NewMemoryStore() })
}
