package roomsync_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gamepersist/gamepersist/internal/testkit/testnats"
	"github.com/gamepersist/gamepersist/natsbridge/roomsync"
	"github.com/gamepersist/gamepersist/roomstore"
)

// assertConfigError fails unless err is a *roomsync.ConfigError for field matching
// roomsync.ErrInvalidConfig.
func assertConfigError(t *testing.T, name string, err error, field string) {
	t.Helper()
	var ce *roomsync.ConfigError
	if !errors.As(err, &ce) || ce.Field != field || !errors.Is(err, roomsync.ErrInvalidConfig) {
		t.Errorf("%s: err = %v, want a *roomsync.ConfigError for %s", name, err, field)
		return
	}
	if ce.Reason == "" {
		t.Errorf("%s: %+v has no Reason", name, ce)
	}
}

// TestInvalidatorInstanceBounded: an Instance past MaxInstanceLength (5 KB) or with a
// control character is refused; one of MaxInstanceLength bytes, with a room id of
// roomstore.MaxIDLength bytes — both of characters JSON escapes, six bytes each — still
// reaches the other process, not dropped as malformed (a 5 KB Instance used to be
// accepted and every notice it sent dropped).
func TestInvalidatorInstanceBounded(t *testing.T) {
	t.Parallel()
	url := testnats.Start(t).ClientURL()
	nc := invDial(t, url)
	for name, inst := range map[string]string{
		"5 KB":    strings.Repeat("i", 5<<10),
		"256 B":   strings.Repeat("i", roomsync.MaxInstanceLength+1),
		"NUL":     "node\x00a",
		"invalid": "node\xff",
	} {
		inv, err := roomsync.NewRoomInvalidator(nc, roomsync.InvalidatorConfig{Instance: inst})
		if inv != nil {
			_ = inv.Close()
		}
		assertConfigError(t, name, err, "InvalidatorConfig.Instance")
	}
	// A receiver limit below the largest valid notice would drop valid notices too.
	inv, err := roomsync.NewRoomInvalidator(nc, roomsync.InvalidatorConfig{MaxNoticeBytes: 1000})
	if inv != nil {
		_ = inv.Close()
	}
	assertConfigError(t, "MaxNoticeBytes 1000", err, "InvalidatorConfig.MaxNoticeBytes")
	sender, err := roomsync.NewRoomInvalidator(nc, roomsync.InvalidatorConfig{Instance: strings.Repeat("<", roomsync.MaxInstanceLength)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sender.Close() })
	receiver, err := roomsync.NewRoomInvalidator(invDial(t, url), roomsync.InvalidatorConfig{Instance: "receiver"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = receiver.Close() })
	target := &invRecordingTarget{}
	if err := receiver.Attach(invCtx(t), target); err != nil {
		t.Fatal(err)
	}
	id := strings.Repeat("<", roomstore.MaxIDLength)
	sender.Publish(roomstore.RoomChange{ID: id, Version: 1 << 62})
	if !invWaitUntil(10*time.Second, func() bool { return len(target.got()) > 0 || receiver.Stats().Malformed > 0 }) {
		t.Fatal("the notice never arrived")
	}
	if got := target.got(); len(got) != 1 || got[0] != id || receiver.Stats().Malformed != 0 {
		t.Fatalf("received %d ids, malformed %d: the largest valid notice was dropped", len(got), receiver.Stats().Malformed)
	}
}
