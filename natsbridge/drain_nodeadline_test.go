package natsbridge_test

import (
	"context"
	"testing"

	"github.com/gamepersist/gamepersist/internal/testkit/testnats"
	"github.com/gamepersist/gamepersist/natsbridge"
)

// TestDrainWithoutDeadline: Drain with a context that has no deadline finishes cleanly
// (it returned nats.go's "context requires a deadline" from its final flush).
func TestDrainWithoutDeadline(t *testing.T) {
	t.Parallel()
	nc := dialTest(t, testnats.Start(t).ClientURL())
	b, err := natsbridge.New(nc, natsbridge.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Handle("nodeadline.k", noopHandler); err != nil {
		t.Fatal(err)
	}
	publishSeq(t, nc, "nodeadline.k", 0, nil)
	flushConn(t, nc)
	eventually(t, "the message handled", func() bool { return b.Stats().Handled == 1 })
	if err := b.Drain(context.Background()); err != nil {
		t.Fatalf("Drain(context.Background()) = %v, want nil", err)
	}
}
