package roomsync_test

import (
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gamepersist/gamepersist/internal/testkit/testlog"
	"github.com/gamepersist/gamepersist/internal/testkit/testnats"
	"github.com/gamepersist/gamepersist/natsbridge"
	"github.com/gamepersist/gamepersist/natsbridge/roomsync"
	"github.com/gamepersist/gamepersist/roomstore"
)

// propagationLimit is the bound: a write on one node is seen by another node's
// next read within 100 ms.
const propagationLimit = 100 * time.Millisecond

// propagationTrials is how many writes checkPropagation times. On a loaded machine one
// write can miss propagationLimit because a goroutine was not scheduled for 100 ms;
// propagation that is slow by design (only through the TTL, or always late) misses it on
// every trial. The fastest trial must meet the bound, and every write must be seen.
const propagationTrials = 3

// propagationEventually bounds the wait for a change that must arrive: far above
// propagationLimit, so scheduling stalls do not fail the test, far below the cache TTL
// (roomstore.DefaultCacheTTL, 5 min), so a change arriving by TTL still does.
const propagationEventually = 10 * time.Second

// checkPropagation runs the cross-node scenario between a (writer) and b (reader), which
// share one database: b caches a room, a writes it, b's next read sees the new version
// (the fastest of propagationTrials writes within propagationLimit); then the same for a
// delete. a must ignore its own echoes.
func checkPropagation(t *testing.T, a, b *invNode) {
	t.Helper()
	ctx := invCtx(t)
	v, err := a.cached.PutRoomVersion(ctx, roomstore.Room{ID: "hall", Name: "Hall"})
	if err != nil || v != 1 {
		t.Fatalf("seed PutRoomVersion = %d, %v; want 1, nil", v, err)
	}
	// Let the seed's notice land before b caches the room, so it cannot be mistaken for
	// the notice of the write under test.
	if !invWaitUntil(5*time.Second, func() bool { return b.inv.Stats().Applied == 1 }) {
		t.Fatalf("seed notice not applied on b: %+v", b.inv.Stats())
	}

	fastest := time.Duration(1<<63 - 1)
	for trial := range propagationTrials {
		want := int64(trial + 2)
		b.readCached(t, "hall", want-1)
		name := "Hall " + strconv.Itoa(trial)
		v, err = a.cached.PutRoomVersion(ctx, roomstore.Room{ID: "hall", Name: name})
		if err != nil || v != want {
			t.Fatalf("PutRoomVersion = %d, %v; want %d, nil", v, err, want)
		}
		written := time.Now()
		var got roomstore.Room
		if !invWaitUntil(propagationEventually, func() bool { got = b.mustGet(t, "hall"); return got.Version == want }) {
			t.Fatalf("b still reads version %d (%q) %v after a's write; b invalidator %+v",
				got.Version, got.Name, time.Since(written), b.inv.Stats())
		}
		fastest = min(fastest, time.Since(written))
		if got.Name != name {
			t.Fatalf("b reads name %q, want %q", got.Name, name)
		}
		// The new version came from the invalidation, not from a TTL: the notice for it
		// was applied (the seed's plus one per trial).
		if n := b.inv.Stats().Applied; n != uint64(trial+2) {
			t.Fatalf("b applied %d notices after trial %d, want %d", n, trial, trial+2)
		}
	}
	t.Logf("fastest of %d writes seen by the other node after %v", propagationTrials, fastest)
	if fastest > propagationLimit {
		t.Fatalf("no write of %d was seen by the other node within %v (fastest %v)", propagationTrials, propagationLimit, fastest)
	}

	// Deletes propagate too.
	b.readCached(t, "hall", propagationTrials+1)
	if err := a.cached.DeleteRoom(ctx, "hall"); err != nil {
		t.Fatalf("DeleteRoom: %v", err)
	}
	deleted := time.Now()
	var gerr error
	if !invWaitUntil(propagationEventually, func() bool {
		_, gerr = b.cached.GetRoom(ctx, "hall")
		return errors.Is(gerr, roomstore.ErrNotFound)
	}) {
		t.Fatalf("b still reads the deleted room %v after the delete (last error %v); b invalidator %+v",
			time.Since(deleted), gerr, b.inv.Stats())
	}

	// a published one notice per write and ignored every echo: its cache was
	// invalidated once per write, by the write itself, never again by its own notice.
	const notices = propagationTrials + 2 // seed, trials, delete
	if !invWaitUntil(5*time.Second, func() bool { return a.inv.Stats().OwnEchoes == notices }) {
		t.Fatalf("a's own echoes: %+v, want %d", a.inv.Stats(), notices)
	}
	as := a.inv.Stats()
	if as.Published != notices || as.Applied != 0 || as.Malformed != 0 || as.PublishErrors != 0 || as.Dropped != 0 {
		t.Fatalf("a invalidator stats %+v: want %d published, 0 applied, no errors", as, notices)
	}
	if n := a.cached.Stats().Invalidations; n != notices {
		t.Fatalf("a's cache saw %d invalidations, want %d (one per local write, none from echoes)", n, notices)
	}
	bs := b.inv.Stats()
	if bs.Applied != notices || bs.OwnEchoes != 0 || bs.Published != 0 || bs.Malformed != 0 {
		t.Fatalf("b invalidator stats %+v: want %d applied, 0 echoes, 0 published", bs, notices)
	}
}

func TestRoomInvalidatorTwoNodesOneServer(t *testing.T) {
	t.Parallel()
	url := testnats.Start(t).ClientURL()
	stores := invSharedStores(t, 2)
	a := newInvNode(t, stores[0], invDial(t, url), roomstore.CacheConfig{}, roomsync.InvalidatorConfig{Instance: "node-a"})
	b := newInvNode(t, stores[1], invDial(t, url), roomstore.CacheConfig{}, roomsync.InvalidatorConfig{Instance: "node-b"})
	checkPropagation(t, a, b)
}

func TestRoomInvalidatorThreeNodeCluster(t *testing.T) {
	t.Parallel()
	servers := testnats.StartCluster(t, 3)
	stores := invSharedStores(t, 2)
	// b on the third server first, and wait until the first server knows of its
	// subscription (a's own one would satisfy the check later).
	b := newInvNode(t, stores[1], invDial(t, servers[2].ClientURL()), roomstore.CacheConfig{}, roomsync.InvalidatorConfig{Instance: "node-b"})
	testnats.WaitForInterest(t, servers[0], "cache.rooms.invalidate")
	a := newInvNode(t, stores[0], invDial(t, servers[0].ClientURL()), roomstore.CacheConfig{}, roomsync.InvalidatorConfig{Instance: "node-a"})
	if a.nc.ConnectedServerName() == b.nc.ConnectedServerName() {
		t.Fatalf("a and b are on the same server %q", a.nc.ConnectedServerName())
	}
	checkPropagation(t, a, b)
}

// With NATS down, writes still succeed at once, the lost notices are counted, and the
// other node serves the old room until its TTL passes, then the new one.
func TestRoomInvalidatorNATSDownFallsBackToTTL(t *testing.T) {
	t.Parallel()
	const ttl = 500 * time.Millisecond
	srv := testnats.Start(t)
	stores := invSharedStores(t, 2)
	// No reconnect buffer on a: while disconnected nats.go refuses publishes at once
	// (with the default 8 MiB buffer they would wait for the reconnect instead).
	a := newInvNode(t, stores[0], invDial(t, srv.ClientURL(), nats.ReconnectBufSize(-1)),
		roomstore.CacheConfig{}, roomsync.InvalidatorConfig{Instance: "node-a"})
	b := newInvNode(t, stores[1], invDial(t, srv.ClientURL()),
		roomstore.CacheConfig{TTL: ttl, RefreshAhead: roomstore.NoRefreshAhead, TTLJitter: roomstore.NoTTLJitter}, roomsync.InvalidatorConfig{Instance: "node-b"})
	ctx := invCtx(t)
	if err := a.cached.PutRoom(ctx, roomstore.Room{ID: "gate", Name: "Gate"}); err != nil {
		t.Fatalf("seed: %v", err)
	}
	if !invWaitUntil(5*time.Second, func() bool { return b.inv.Stats().Applied == 1 }) {
		t.Fatalf("seed notice not applied on b: %+v", b.inv.Stats())
	}

	srv.Shutdown()
	srv.WaitForShutdown()
	if !invWaitUntil(5*time.Second, func() bool { return !a.nc.IsConnected() && !b.nc.IsConnected() }) {
		t.Fatal("clients did not notice the server going away")
	}

	filled := time.Now()
	b.readCached(t, "gate", 1)
	start := time.Now()
	v, err := a.cached.PutRoomVersion(ctx, roomstore.Room{ID: "gate", Name: "Open Gate"})
	if err != nil || v != 2 {
		t.Fatalf("write with NATS down: PutRoomVersion = %d, %v; want 2, nil", v, err)
	}
	t.Logf("write with NATS down took %v", time.Since(start))
	if !invWaitUntil(5*time.Second, func() bool { return a.inv.Stats().PublishErrors == 1 }) {
		t.Fatalf("publish error not counted: %+v", a.inv.Stats())
	}
	if time.Since(filled) < ttl/2 {
		// Well within the TTL nothing else can refresh b's copy: it is stale.
		if got := b.mustGet(t, "gate"); got.Version != 1 {
			t.Fatalf("b read version %d within its TTL with NATS down, want the cached 1", got.Version)
		}
	}
	var got roomstore.Room
	if !invWaitUntil(ttl+5*time.Second, func() bool { got = b.mustGet(t, "gate"); return got.Version == 2 }) {
		t.Fatalf("b never saw version 2 after its TTL (last %d)", got.Version)
	}
	if elapsed := time.Since(filled); elapsed < ttl {
		t.Fatalf("b saw the change after %v, before its TTL of %v: something other than the TTL refreshed it", elapsed, ttl)
	}
	if s := b.inv.Stats(); s.Received != 1 || s.Applied != 1 {
		t.Fatalf("b received notices while NATS was down: %+v", s)
	}
	if s := a.inv.Stats(); s.Published != 1 || s.PublishErrors != 1 {
		t.Fatalf("a stats %+v: want 1 published (the seed), 1 publish error", s)
	}
}

// A subscription made while the connection is down is kept and works after the server
// comes back.
func TestRoomInvalidatorAttachWhileReconnecting(t *testing.T) {
	t.Parallel()
	srv := testnats.StartRestartable(t)
	nc := invDial(t, srv.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	inv, err := roomsync.NewRoomInvalidator(nc, roomsync.InvalidatorConfig{Instance: "late"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = inv.Close() })
	srv.Stop()
	if !invWaitUntil(5*time.Second, func() bool { return !nc.IsConnected() }) {
		t.Fatal("client did not notice the server going away")
	}
	target := &invRecordingTarget{}
	start := time.Now()
	if err := inv.Attach(invCtx(t), target); err != nil {
		t.Fatalf("Attach while reconnecting: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Attach while reconnecting waited %v", d)
	}
	srv.Restart()
	if !invWaitUntil(10*time.Second, nc.IsConnected) {
		t.Fatal("client did not reconnect")
	}
	other := invDial(t, srv.URL())
	pub, err := roomsync.NewRoomInvalidator(other, roomsync.InvalidatorConfig{Instance: "writer"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close() })
	testnats.WaitForInterest(t, srv.Server(), "cache.rooms.invalidate")
	pub.Publish(roomstore.RoomChange{ID: "tower", Version: 4})
	if !invWaitUntil(5*time.Second, func() bool { return len(target.got()) == 1 }) {
		t.Fatalf("notice not applied after reconnect: %+v", inv.Stats())
	}
	if got := target.got(); got[0] != "tower" {
		t.Fatalf("invalidated %v, want [tower]", got)
	}
	if s := inv.Stats(); s.Reconnects != 1 || s.FullInvalidations != 1 || target.allCount() != 1 {
		t.Fatalf("after the reconnect: stats %+v, InvalidateAll calls %d; want 1 and 1", s, target.allCount())
	}
}

// After a reconnect, a target that can drop everything is emptied (the outage's notices
// are lost): a recording target and a real *roomstore.Cached alike.
func TestRoomInvalidatorReconnectInvalidatesAll(t *testing.T) {
	t.Parallel()
	srv := testnats.StartRestartable(t)
	opts := []nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(20 * time.Millisecond)}
	full := &invRecordingTarget{}
	withFull, err := roomsync.NewRoomInvalidator(invDial(t, srv.URL(), opts...), roomsync.InvalidatorConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = withFull.Close() })
	if err := withFull.Attach(invCtx(t), full); err != nil {
		t.Fatal(err)
	}
	plainNode := newInvNode(t, roomstore.NewMemoryStore(), invDial(t, srv.URL(), opts...),
		roomstore.CacheConfig{}, roomsync.InvalidatorConfig{})

	srv.Restart()
	if !invWaitUntil(10*time.Second, func() bool {
		return withFull.Stats().Reconnects == 1 && plainNode.inv.Stats().Reconnects == 1
	}) {
		t.Fatalf("reconnects not seen: %+v / %+v", withFull.Stats(), plainNode.inv.Stats())
	}
	if s := withFull.Stats(); s.FullInvalidations != 1 || full.allCount() != 1 {
		t.Fatalf("full target: stats %+v, InvalidateAll calls %d; want 1", s, full.allCount())
	}
	if !invWaitUntil(5*time.Second, func() bool { return plainNode.inv.Stats().FullInvalidations == 1 }) {
		t.Fatalf("*roomstore.Cached was not emptied after the reconnect: %+v", plainNode.inv.Stats())
	}
	if n := plainNode.cached.Stats().Invalidations; n != 1 {
		t.Fatalf("cache invalidations after the reconnect = %d, want 1 (InvalidateAll)", n)
	}
	if err := withFull.Close(); err != nil {
		t.Fatal(err)
	}
	srv.Restart()
	if !invWaitUntil(10*time.Second, func() bool { return plainNode.inv.Stats().Reconnects == 2 }) {
		t.Fatalf("second reconnect not seen: %+v", plainNode.inv.Stats())
	}
	if s := withFull.Stats(); s.Reconnects != 1 || full.allCount() != 1 {
		t.Fatalf("closed invalidator still watches reconnects: %+v", s)
	}
}

// Every notice handed to Publish is accounted for exactly once (published, refused by
// nats.go, or dropped), even with a tiny queue and Close racing the writers.
func TestRoomInvalidatorPublishAccounting(t *testing.T) {
	t.Parallel()
	nc := invDial(t, testnats.Start(t).ClientURL())
	inv, err := roomsync.NewRoomInvalidator(nc, roomsync.InvalidatorConfig{QueueLen: 1})
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 4, 2000
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				inv.Publish(roomstore.RoomChange{ID: "r" + strconv.Itoa(w), Version: int64(i)})
			}
		})
	}
	time.Sleep(time.Millisecond)
	if err := inv.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	s := inv.Stats()
	if total := s.Published + s.PublishErrors + s.Dropped; total != writers*each {
		t.Fatalf("stats %+v account for %d notices, want %d", s, total, writers*each)
	}
	if s.Queued != 0 {
		t.Fatalf("%d notices left queued after Close", s.Queued)
	}
	if s.Dropped == 0 {
		t.Logf("no drop with a queue of 1 (the publisher kept up): %+v", s)
	}
}

func TestRoomInvalidatorMalformedNotices(t *testing.T) {
	t.Parallel()
	url := testnats.Start(t).ClientURL()
	var logs testlog.Buffer
	nc := invDial(t, url)
	inv, err := roomsync.NewRoomInvalidator(nc, roomsync.InvalidatorConfig{
		Instance: "me", MaxNoticeBytes: 4 << 10, Logger: logs.Logger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = inv.Close() })
	target := &invRecordingTarget{}
	if err := inv.Attach(invCtx(t), target); err != nil {
		t.Fatal(err)
	}

	encode := func(typ, origin, room string) []byte {
		env := natsbridge.NewEnvelope(typ, roomsync.RoomInvalidation{RoomID: room, Version: 3})
		env.Origin = origin
		data, err := natsbridge.Encode(env)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	valid := string(encode("roomstore.invalidate", "other", "x"))
	notices := []struct {
		data   []byte
		reason string // "" for a valid notice
	}{
		{[]byte("not json"), "malformed"},
		{[]byte(`{"id":"1","timestamp":"2026-01-02T03:04:05Z","type":"roomstore.invalidate"}`), "missing_field"},
		{[]byte(strings.Replace(valid, `"room_id"`, `"room":"x","room_id"`, 1)), "unknown_field"},
		{[]byte(strings.Replace(valid, `"room_id":"x"`, `"room_id":"`+strings.Repeat("y", 5000)+`"`, 1)), "oversize"},
		{encode("chat.say", "other", "x"), "wrong_type"},
		{encode("roomstore.invalidate", "other", ""), "invalid_room_id"},
		{encode("roomstore.invalidate", "me", "mine"), ""},
		{encode("roomstore.invalidate", "other", "theirs"), ""},
	}
	pub := invDial(t, url)
	for _, n := range notices {
		if err := pub.Publish("cache.rooms.invalidate", n.data); err != nil {
			t.Fatal(err)
		}
	}
	// Received is counted when a notice arrives, its outcome when the callback is done.
	if !invWaitUntil(5*time.Second, func() bool {
		s := inv.Stats()
		return s.Received == uint64(len(notices)) && s.Malformed+s.OwnEchoes+s.Applied == s.Received
	}) {
		t.Fatalf("received %+v, want %d notices", inv.Stats(), len(notices))
	}
	s := inv.Stats()
	if s.Malformed != 6 || s.OwnEchoes != 1 || s.Applied != 1 {
		t.Fatalf("stats %+v: want 6 malformed, 1 own echo, 1 applied", s)
	}
	if got := target.got(); len(got) != 1 || got[0] != "theirs" {
		t.Fatalf("invalidated %v, want [theirs]: the handler must keep serving after bad notices", got)
	}
	out := logs.String()
	for _, n := range notices {
		if n.reason != "" && !strings.Contains(out, `"reason":"`+n.reason+`"`) {
			t.Errorf("no log line with reason %q in:\n%s", n.reason, out)
		}
	}
	if c := strings.Count(out, `"message":"natsbridge: malformed invalidation notice ignored"`); c != 6 {
		t.Errorf("%d malformed-notice log lines, want 6:\n%s", c, out)
	}
	if strings.Contains(out, strings.Repeat("y", 50)) {
		t.Error("a log line quotes the notice's content")
	}
}

func TestRoomInvalidatorCloseIsIdempotentAndLeavesConnOpen(t *testing.T) {
	t.Parallel()
	url := testnats.Start(t).ClientURL()
	nc := invDial(t, url)
	inv, err := roomsync.NewRoomInvalidator(nc, roomsync.InvalidatorConfig{Instance: "closing"})
	if err != nil {
		t.Fatal(err)
	}
	target := &invRecordingTarget{}
	if err := inv.Attach(invCtx(t), target); err != nil {
		t.Fatal(err)
	}
	inv.Publish(roomstore.RoomChange{ID: "before"}) // queued before Close: still sent
	if err := inv.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := inv.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if nc.IsClosed() || !nc.IsConnected() {
		t.Fatal("Close closed the caller's connection")
	}
	if s := inv.Stats(); s.Published != 1 {
		t.Fatalf("notice queued before Close not published: %+v", s)
	}
	if err := inv.Attach(invCtx(t), target); !errors.Is(err, roomsync.ErrClosed) {
		t.Fatalf("Attach after Close = %v, want ErrClosed", err)
	}
	inv.Publish(roomstore.RoomChange{ID: "after"})
	if s := inv.Stats(); s.Dropped != 1 || s.Published != 1 {
		t.Fatalf("Publish after Close: %+v, want 1 dropped", s)
	}

	// The subscription is gone: a notice that a live subscriber receives is not applied.
	control, err := nc.SubscribeSync("cache.rooms.invalidate")
	if err != nil {
		t.Fatal(err)
	}
	other := invDial(t, url)
	pub, err := roomsync.NewRoomInvalidator(other, roomsync.InvalidatorConfig{Instance: "other"})
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	pub.Publish(roomstore.RoomChange{ID: "late"})
	if _, err := control.NextMsg(5 * time.Second); err != nil {
		t.Fatalf("control subscriber: %v", err)
	}
	if err := pub.Close(); err != nil {
		t.Fatal(err)
	}
	if got := target.got(); len(got) != 0 {
		t.Fatalf("closed invalidator applied %v", got)
	}
	// At most its own "before" notice, if it came back before Close.
	if s := inv.Stats(); s.Received > 1 || s.Applied != 0 {
		t.Fatalf("closed invalidator stats %+v", s)
	}
	// The connection is still usable by its owner.
	if err := nc.Publish("still.open", []byte("x")); err != nil {
		t.Fatalf("connection unusable after Close: %v", err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatalf("connection unusable after Close: %v", err)
	}
}

func TestRoomInvalidatorConfig(t *testing.T) {
	t.Parallel()
	if _, err := roomsync.NewRoomInvalidator(nil, roomsync.InvalidatorConfig{}); !errors.Is(err, roomsync.ErrInvalidConfig) {
		t.Fatalf("nil conn: %v, want ErrInvalidConfig", err)
	}
	nc := invDial(t, testnats.Start(t).ClientURL())
	bad := []roomsync.InvalidatorConfig{
		{Subject: "cache.rooms.*"},
		{Subject: "cache..rooms"},
		{QueueLen: -1},
		{MaxNoticeBytes: -1},
		{SubPendingMsgs: -1},
		{SubPendingBytes: -1},
	}
	for _, cfg := range bad {
		if inv, err := roomsync.NewRoomInvalidator(nc, cfg); !errors.Is(err, roomsync.ErrInvalidConfig) {
			if inv != nil {
				_ = inv.Close()
			}
			t.Errorf("config %+v: %v, want ErrInvalidConfig", cfg, err)
		}
	}
	if _, err := roomsync.NewRoomInvalidator(nc, roomsync.InvalidatorConfig{Subject: "a.>"}); !errors.Is(err, natsbridge.ErrInvalidSubject) {
		t.Errorf("wildcard subject: %v, want ErrInvalidSubject in the chain", err)
	}

	d := roomsync.InvalidatorConfig{}.WithDefaults()
	if d.Subject != "cache.rooms.invalidate" || d.Instance == "" || d.QueueLen != 4096 {
		t.Fatalf("defaults %+v", d)
	}
	if d2 := (roomsync.InvalidatorConfig{}).WithDefaults(); d2.Instance == d.Instance {
		t.Fatalf("two default instances share the id %q", d.Instance)
	}

	inv, err := roomsync.NewRoomInvalidator(nc, roomsync.InvalidatorConfig{Subject: "game.cache.rooms"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = inv.Close() })
	if inv.Subject() != "game.cache.rooms" || inv.Instance() == "" {
		t.Fatalf("Subject %q Instance %q", inv.Subject(), inv.Instance())
	}
	if err := inv.Attach(invCtx(t), nil); !errors.Is(err, roomsync.ErrInvalidConfig) {
		t.Fatalf("Attach(nil): %v, want ErrInvalidConfig", err)
	}
	if err := inv.Attach(invCtx(t), &invRecordingTarget{}); err != nil {
		t.Fatal(err)
	}
	if err := inv.Attach(invCtx(t), &invRecordingTarget{}); !errors.Is(err, roomsync.ErrInvalidConfig) {
		t.Fatalf("second Attach: %v, want ErrInvalidConfig", err)
	}
}

// invBlockingTarget is an invRecordingTarget whose first Invalidate blocks until
// release is closed, so the invalidator's subscription falls behind.
type invBlockingTarget struct {
	invRecordingTarget
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

func (b *invBlockingTarget) Invalidate(ids ...string) {
	b.once.Do(func() {
		close(b.entered)
		<-b.release
	})
	b.invRecordingTarget.Invalidate(ids...)
}

// Notices nats.go drops because the subscription is a slow consumer are lost, so the
// invalidator empties the whole target: when the episode starts and when it ends.
func TestRoomInvalidatorSlowConsumerInvalidatesAll(t *testing.T) {
	t.Parallel()
	url := testnats.Start(t).ClientURL()
	target := &invBlockingTarget{entered: make(chan struct{}), release: make(chan struct{})}
	quiet := nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}) // the drop is expected
	recv, err := roomsync.NewRoomInvalidator(invDial(t, url, quiet), roomsync.InvalidatorConfig{SubPendingMsgs: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = recv.Close() })
	if err := recv.Attach(invCtx(t), target); err != nil {
		t.Fatal(err)
	}
	sendNC := invDial(t, url)
	send, err := roomsync.NewRoomInvalidator(sendNC, roomsync.InvalidatorConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = send.Close() })

	send.Publish(roomstore.RoomChange{ID: "first"})
	<-target.entered // the callback is stuck: the next notices pile up in nats.go
	const burst = 50
	for i := range burst {
		send.Publish(roomstore.RoomChange{ID: "r" + strconv.Itoa(i)})
	}
	if !invWaitUntil(10*time.Second, func() bool { return send.Stats().Published == burst+1 }) {
		t.Fatalf("sender: %+v", send.Stats())
	}
	flushConn(t, sendNC)
	if !invWaitUntil(10*time.Second, func() bool { return recv.Stats().SlowConsumer > 0 }) {
		t.Fatalf("no slow-consumer drop: %+v", recv.Stats())
	}
	if !invWaitUntil(10*time.Second, func() bool { return target.allCount() == 1 }) {
		t.Fatalf("InvalidateAll not called at the start of the episode: %d calls, %+v", target.allCount(), recv.Stats())
	}
	close(target.release)
	// More notices after the backlog: once nats.go accepts one, the episode ends.
	// Episodes may start and end more than once while the backlog drains; each start
	// and each end empties the target, and the last event is an end.
	if !invWaitUntil(10*time.Second, func() bool {
		s := recv.Stats()
		if s.SlowConsumerEvents >= 2 && s.SlowConsumerEvents%2 == 0 && target.allCount() == int(s.SlowConsumerEvents) {
			return true
		}
		send.Publish(roomstore.RoomChange{ID: "after"})
		time.Sleep(20 * time.Millisecond)
		return false
	}) {
		t.Fatalf("InvalidateAll not called at the end of the episode: %d calls, %+v", target.allCount(), recv.Stats())
	}
	s := recv.Stats()
	if s.FullInvalidations != s.SlowConsumerEvents || s.Reconnects != 0 {
		t.Fatalf("stats %+v: want one full invalidation per slow-consumer event, 0 reconnects", s)
	}
	if got, sent := s.Applied+s.SlowConsumer, send.Stats().Published; got > sent {
		t.Fatalf("applied %d + dropped %d exceeds the %d notices sent", s.Applied, s.SlowConsumer, sent)
	}
}
