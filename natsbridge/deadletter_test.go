package natsbridge_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gamepersist/gamepersist/internal/testkit/testnats"
	"github.com/gamepersist/gamepersist/natsbridge"
)

type move struct {
	Seq  int    `json:"seq"`
	Mode string `json:"mode"`
}

func envelopeJSON(t *testing.T, mode string, seq int) []byte {
	t.Helper()
	data, err := natsbridge.Encode(natsbridge.NewEnvelope("move", move{Seq: seq, Mode: mode}))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestPoisonMessagesEndOnDeadLetterSubject sends, on one key, every kind of poison
// message between good ones: each lands on the dead-letter subject with its reason,
// original payload and headers, and the handler keeps serving the good ones, in order.
func TestPoisonMessagesEndOnDeadLetterSubject(t *testing.T) {
	t.Parallel()
	b, nc := startBridge(t, natsbridge.Config{MaxAttempts: 3, BackoffBase: time.Millisecond, BackoffMax: 2 * time.Millisecond})
	dls := subscribeDeadLetters(t, nc)

	var good []int
	var goodCount atomic.Int32
	h := natsbridge.Typed(func(_ context.Context, env natsbridge.Envelope[move], _ natsbridge.Msg) error {
		switch env.Payload.Mode {
		case "fail":
			return errors.New("rule violated")
		case "transient":
			return natsbridge.Retryable(errors.New("database busy"))
		case "panic":
			panic("boom")
		}
		good = append(good, env.Payload.Seq)
		goodCount.Add(1)
		return nil
	}, natsbridge.DecodeOptions{MaxBytes: 512})
	if err := b.Handle("game.move.r1", h, natsbridge.Name("moves")); err != nil {
		t.Fatal(err)
	}
	flushConn(t, nc)

	cases := []struct {
		data         []byte
		reason       natsbridge.DeadLetterReason
		decodeReason natsbridge.DecodeReason
		attempts     string
	}{
		{[]byte(`{"id":`), natsbridge.DeadLetterDecodeError, natsbridge.ReasonMalformed, "1"},
		{[]byte(`{"id":"x","timestamp":"2026-01-01T00:00:00Z","type":"move","payload":{"seq":1,"pad":"` + strings.Repeat("x", 600) + `"}}`), natsbridge.DeadLetterDecodeError, natsbridge.ReasonOversize, "1"},
		{[]byte(`{"id":"x","timestamp":"2026-01-01T00:00:00Z","type":"move","payload":{"seq":1,"cheat":true}}`), natsbridge.DeadLetterDecodeError, natsbridge.ReasonUnknownField, "1"},
		{envelopeJSON(t, "fail", 0), natsbridge.DeadLetterHandlerError, "", "1"},
		{envelopeJSON(t, "transient", 0), natsbridge.DeadLetterHandlerError, "", "3"},
		{envelopeJSON(t, "panic", 0), natsbridge.DeadLetterPanic, "", "1"},
	}
	for i, c := range cases {
		publishSeq(t, nc, "game.move.r1", i, c.data)
		publishSeq(t, nc, "game.move.r1", 100+i, envelopeJSON(t, "ok", i))
	}
	flushConn(t, nc)

	for i, c := range cases {
		m := nextDeadLetter(t, dls)
		h := m.Header
		if m.Subject != "deadletter.game.move.r1" || string(m.Data) != string(c.data) {
			t.Fatalf("case %d: dead letter on %q with data %q", i, m.Subject, m.Data)
		}
		checks := map[string]string{
			natsbridge.HeaderDeadLetterReason:       string(c.reason),
			natsbridge.HeaderDeadLetterDecodeReason: string(c.decodeReason),
			natsbridge.HeaderDeadLetterAttempts:     c.attempts,
			natsbridge.HeaderDeadLetterSubject:      "game.move.r1",
			natsbridge.HeaderDeadLetterHandler:      "moves",
			"seq":                                   h.Get("seq"),
		}
		for k, want := range checks {
			if got := h.Get(k); got != want {
				t.Errorf("case %d: header %s = %q, want %q", i, k, got, want)
			}
		}
		if h.Get("seq") != strconv.Itoa(i) {
			t.Errorf("case %d: original header seq = %q", i, h.Get("seq"))
		}
		if h.Get(natsbridge.HeaderDeadLetterError) == "" {
			t.Errorf("case %d: no error header", i)
		}
		if _, err := time.Parse(time.RFC3339Nano, h.Get(natsbridge.HeaderDeadLetterFirstSeen)); err != nil {
			t.Errorf("case %d: first-seen header: %v", i, err)
		}
	}
	eventually(t, "good messages handled", func() bool { return int(goodCount.Load()) == len(cases) })
	for i, seq := range good {
		if seq != i {
			t.Fatalf("good messages out of order: %v", good)
		}
	}
	eventually(t, "dead letters and successes counted", func() bool {
		st := b.Stats()
		return st.DeadLettered == uint64(len(cases)) && st.Handled == uint64(len(cases))
	})
	st := b.Stats()
	if st.Failed != 6 || st.DecodeErrors != 3 || st.Panics != 1 || st.Retried != 2 || st.Handled != 6 {
		t.Errorf("stats = %+v", st)
	}
	if st.LatencyP50 <= 0 || st.LatencyP99 < st.LatencyP50 {
		t.Errorf("latency p50 %v p99 %v", st.LatencyP50, st.LatencyP99)
	}
}

// TestReplayDeadLetters: a message fails and is kept in the dead-letter stream; the
// handler is fixed; Replay sends it back to its original subject and the handler gets it
// (with its original headers); Delete empties the stream.
func TestReplayDeadLetters(t *testing.T) {
	t.Parallel()
	b, nc := startBridge(t, natsbridge.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := natsbridge.EnsureDeadLetterStream(ctx, js, natsbridge.DeadLetterStreamConfig{Name: "DEADLETTERS", Memory: true})
	if err != nil {
		t.Fatal(err)
	}
	// Idempotent: a second call updates the same stream.
	if _, err := natsbridge.EnsureDeadLetterStream(ctx, js, natsbridge.DeadLetterStreamConfig{Name: "DEADLETTERS", Memory: true, MaxAge: time.Hour}); err != nil {
		t.Fatal(err)
	}

	var fixed atomic.Bool
	got := make(chan natsbridge.Msg, 4)
	h := func(_ context.Context, m natsbridge.Msg) error {
		if !fixed.Load() {
			return errors.New("bug in handler")
		}
		got <- m
		return nil
	}
	if err := b.Handle("shop.buy.r9", h); err != nil {
		t.Fatal(err)
	}
	if err := b.Handle("shop.sell.r9", func(context.Context, natsbridge.Msg) error { return errors.New("other") }); err != nil {
		t.Fatal(err)
	}
	flushConn(t, nc)
	publishSeq(t, nc, "shop.buy.r9", 7, []byte("sword"))
	publishSeq(t, nc, "shop.sell.r9", 8, []byte("shield"))
	flushConn(t, nc)
	eventually(t, "dead letters kept in the stream", func() bool {
		info, err := stream.Info(ctx)
		return err == nil && info.State.Msgs == 2
	})

	fixed.Store(true)
	res, err := natsbridge.Replay(ctx, js, natsbridge.ReplayConfig{Stream: "DEADLETTERS", Filter: "deadletter.shop.buy.>", Delete: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Replayed != 1 || res.Skipped != 0 {
		t.Fatalf("Replay = %+v, want 1 replayed", res)
	}
	select {
	case m := <-got:
		if string(m.Data) != "sword" || m.Header.Get("seq") != "7" || !strings.HasPrefix(m.Header.Get(natsbridge.HeaderReplayOf), "DEADLETTERS:") {
			t.Fatalf("replayed message %q headers %v", m.Data, m.Header)
		}
		if m.Header.Get(natsbridge.HeaderDeadLetterReason) != "" {
			t.Fatalf("dead-letter headers left on the replayed message: %v", m.Header)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the fixed handler did not get the replayed message")
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Fatalf("stream keeps %d messages, want 1 (the unfiltered one)", info.State.Msgs)
	}
	eventually(t, "replayed message counted", func() bool { return b.Stats().Handled == 1 })
	if st := b.Stats(); st.Handled != 1 || st.Failed != 2 {
		t.Errorf("stats = %+v", st)
	}
}

// TestEnsureDeadLetterStreamRejectsBadConfig covers the validation errors.
func TestEnsureDeadLetterStreamRejectsBadConfig(t *testing.T) {
	t.Parallel()
	nc := dialTest(t, testnats.Start(t).ClientURL())
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, cfg := range []natsbridge.DeadLetterStreamConfig{
		{},
		{Name: "a.b"},
		{Name: "DL", Prefix: "dead"},
		{Name: "DL", Prefix: "dead.*."},
		{Name: "DL", MaxMsgs: -1},
	} {
		if _, err := natsbridge.EnsureDeadLetterStream(ctx, js, cfg); !errors.Is(err, natsbridge.ErrInvalidConfig) {
			t.Errorf("%+v: err = %v, want ErrInvalidConfig", cfg, err)
		}
	}
	if _, err := natsbridge.Replay(ctx, js, natsbridge.ReplayConfig{}); !errors.Is(err, natsbridge.ErrInvalidConfig) {
		t.Errorf("Replay without stream: %v", err)
	}
	if _, err := natsbridge.Replay(ctx, js, natsbridge.ReplayConfig{Stream: "NOPE"}); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("Replay of a missing stream: %v", err)
	}
}

// TestReplayedMessageFailingAgainIsKept: a message published with PublishWithMsgID
// (so it carries JetStream's Nats-Msg-Id) fails, is replayed with Delete and fails
// again. Its second dead letter must be kept in the stream: a dead letter that kept the
// original Nats-Msg-Id was dropped by the stream as a duplicate of the first (and the
// first was deleted by Replay), so the message vanished. Replay still gives the handler
// the original Nats-Msg-Id.
func TestReplayedMessageFailingAgainIsKept(t *testing.T) {
	t.Parallel()
	b, nc := startBridge(t, natsbridge.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := natsbridge.EnsureDeadLetterStream(ctx, js, natsbridge.DeadLetterStreamConfig{Name: "DEADLETTERS", Memory: true})
	if err != nil {
		t.Fatal(err)
	}
	msgIDs := make(chan string, 4)
	if err := b.Handle("shop.buy.r1", func(_ context.Context, m natsbridge.Msg) error {
		msgIDs <- m.Header.Get(natsbridge.HeaderMsgID)
		return errors.New("still broken")
	}); err != nil {
		t.Fatal(err)
	}
	flushConn(t, nc)
	env := natsbridge.NewEnvelope("buy", move{Seq: 1})
	if err := natsbridge.PublishWithMsgID(ctx, nc, "shop.buy.r1", env); err != nil {
		t.Fatal(err)
	}
	eventually(t, "first dead letter kept", func() bool {
		info, err := stream.Info(ctx)
		return err == nil && info.State.Msgs == 1
	})
	first, err := stream.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	for k := range first.Header {
		if k == jetstream.MsgIDHeader && strings.Contains(first.Header.Get(k), "-dl-") {
			continue // the dead letter's own id (stored once despite retries), not the original's
		}
		if strings.HasPrefix(strings.ToLower(k), "nats-") {
			t.Errorf("dead letter carries JetStream control header %s: %v", k, first.Header)
		}
	}

	res, err := natsbridge.Replay(ctx, js, natsbridge.ReplayConfig{Stream: "DEADLETTERS", Delete: true})
	if err != nil || res.Replayed != 1 {
		t.Fatalf("Replay = %+v, %v", res, err)
	}
	for i := range 2 {
		select {
		case id := <-msgIDs:
			if id != env.ID {
				t.Errorf("attempt %d: handler saw Nats-Msg-Id %q, want %q", i, id, env.ID)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("handler call %d missing", i)
		}
	}
	eventually(t, "second dead letter published", func() bool { return b.Stats().DeadLettered == 2 })
	flushConn(t, nc)
	eventually(t, "second dead letter kept in the stream", func() bool {
		info, err := stream.Info(ctx)
		return err == nil && info.State.Msgs == 1 && info.State.LastSeq == 2
	})
	second, err := stream.GetMsg(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if second.Header.Get(natsbridge.HeaderReplayOf) != "DEADLETTERS:1" || string(second.Data) != string(first.Data) {
		t.Errorf("second dead letter: headers %v data %q", second.Header, second.Data)
	}
}

// TestReplayRestampsPublishTime: a dead letter replayed an hour after its first publish
// is a new delivery; the Bridge's latency must not count the hour it spent in the
// stream (the replay kept the old HeaderPublishedAt, so LatencyP99 read an hour).
func TestReplayRestampsPublishTime(t *testing.T) {
	t.Parallel()
	b, nc := startBridge(t, natsbridge.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := natsbridge.EnsureDeadLetterStream(ctx, js, natsbridge.DeadLetterStreamConfig{Name: "DEADLETTERS", Memory: true})
	if err != nil {
		t.Fatal(err)
	}
	var fixed atomic.Bool
	if err := b.Handle("shop.buy.r2", func(context.Context, natsbridge.Msg) error {
		if !fixed.Load() {
			return errors.New("not yet")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	flushConn(t, nc)
	m := &nats.Msg{Subject: "shop.buy.r2", Data: []byte("sword")}
	natsbridge.SetPublishedAt(m, time.Now().Add(-time.Hour))
	if err := nc.PublishMsg(m); err != nil {
		t.Fatal(err)
	}
	eventually(t, "dead letter kept", func() bool {
		info, err := stream.Info(ctx)
		return err == nil && info.State.Msgs == 1
	})
	fixed.Store(true)
	if res, err := natsbridge.Replay(ctx, js, natsbridge.ReplayConfig{Stream: "DEADLETTERS"}); err != nil || res.Replayed != 1 {
		t.Fatalf("Replay = %+v, %v", res, err)
	}
	eventually(t, "replayed message handled", func() bool { return b.Stats().Handled == 1 })
	if p99 := b.Stats().LatencyP99; p99 > time.Minute {
		t.Fatalf("LatencyP99 = %v after a replay: the time in the dead-letter stream was counted", p99)
	}
}

// TestDeadLettersOfARestartedProcessAreStored: two Bridges in a row with the same
// Config.Origin (a process restarted within the stream's duplicate window) each store
// their dead letters; none is taken for a duplicate of the other's.
func TestDeadLettersOfARestartedProcessAreStored(t *testing.T) {
	t.Parallel()
	nc := dialTest(t, testnats.Start(t).ClientURL())
	stream := ensureDeadLetterStream(t, nc)
	for run := range 2 {
		b, err := natsbridge.New(nc, natsbridge.Config{Origin: "game-1"})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Handle("restart.r1", func(context.Context, natsbridge.Msg) error { return errors.New("poison") }); err != nil {
			t.Fatal(err)
		}
		flushConn(t, nc)
		for i := range 3 {
			publishSeq(t, nc, "restart.r1", i, nil)
		}
		flushConn(t, nc)
		eventually(t, "dead letters acknowledged", func() bool { return b.Stats().DeadLettered == 3 })
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		info, err := stream.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if want := uint64(3 * (run + 1)); info.State.Msgs != want {
			t.Fatalf("run %d: the stream stores %d dead letters, want %d", run, info.State.Msgs, want)
		}
	}
}
