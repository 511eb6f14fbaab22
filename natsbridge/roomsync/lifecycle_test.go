package roomsync_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gamepersist/gamepersist/internal/testkit/testnats"
	"github.com/gamepersist/gamepersist/natsbridge/roomsync"
	"github.com/gamepersist/gamepersist/roomstore"
)

func flushConn(t *testing.T, nc *nats.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := nc.FlushWithContext(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
}

// TestInvalidatorLifecycleContract checks each clause of the lifecycle contract (module
// doc.go, "# Lifecycle") for the RoomInvalidator (it has no Run and no Drain).
func TestInvalidatorLifecycleContract(t *testing.T) {
	t.Parallel()
	url := testnats.Start(t).ClientURL()
	nc := invDial(t, url)
	inv, err := roomsync.NewRoomInvalidator(nc, roomsync.InvalidatorConfig{Instance: "life"})
	if err != nil {
		t.Fatal(err)
	}
	target := &invBlockingTarget{entered: make(chan struct{}), release: make(chan struct{})}
	if err := inv.Attach(invCtx(t), target); err != nil {
		t.Fatal(err)
	}
	other, err := roomsync.NewRoomInvalidator(invDial(t, url), roomsync.InvalidatorConfig{Instance: "other"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = other.Close() })
	other.Publish(roomstore.RoomChange{ID: "r1"})
	<-target.entered // a notice callback is running and blocks Close

	inv.Publish(roomstore.RoomChange{ID: "queued"}) // handed to nats.go by the publisher before Close returns
	closes := make(chan error, 3)
	for range 3 {
		go func() { closes <- inv.Close() }()
	}
	select {
	case err := <-closes:
		t.Fatalf("Close returned (%v) while a notice callback was running", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(target.release)
	for range 3 {
		if err := <-closes; err != nil {
			t.Errorf("Close = %v, want nil from every call", err)
		}
	}
	// Every goroutine stopped: the publisher handed over what was queued.
	if s := inv.Stats(); s.Published != 1 || s.Queued != 0 {
		t.Errorf("after Close: %+v, want the queued notice published", s)
	}
	if err := inv.Close(); err != nil {
		t.Errorf("Close after Close = %v, want the first's nil", err)
	}
	if err := inv.Attach(invCtx(t), target); !errors.Is(err, roomsync.ErrClosed) {
		t.Errorf("Attach after Close = %v, want ErrClosed", err)
	}
	inv.Publish(roomstore.RoomChange{ID: "late"})
	if s := inv.Stats(); s.Dropped != 1 {
		t.Errorf("Publish after Close not dropped: %+v", s)
	}
	if nc.IsClosed() {
		t.Error("Close closed the caller's connection")
	}
}
