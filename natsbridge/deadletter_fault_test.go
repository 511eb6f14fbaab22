package natsbridge_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gamepersist/gamepersist/internal/testkit/faultproxy"
	"github.com/gamepersist/gamepersist/internal/testkit/testlog"
	"github.com/gamepersist/gamepersist/internal/testkit/testnats"
	"github.com/gamepersist/gamepersist/natsbridge"
)

// faultMessages is the figure: failing messages in flight through the fault.
const faultMessages = 8000

// faultFigures is what a dead-letter fault run measured.
type faultFigures struct {
	received, failed, overflowDL, stored, lost, errors uint64
}

// runDeadLetterFault publishes faultMessages messages on 64 keys to a Bridge (on
// bridgeNC) whose handler fails each after 1 ms, applies fault once cutAt messages
// have failed — while the rest still fail and are dead-lettered — and waits until every
// received message and every dead letter has its outcome. pubNC publishes and reads the
// stream; it is not affected by the fault.
func runDeadLetterFault(t *testing.T, pubNC, bridgeNC *nats.Conn, cfg natsbridge.Config, fault func()) faultFigures {
	t.Helper()
	return runDeadLetterFaultReplicas(t, pubNC, bridgeNC, cfg, 1, func(jetstream.JetStream) { fault() })
}

// runDeadLetterFaultReplicas is runDeadLetterFault with a dead-letter stream of the
// given replica count; fault gets a JetStream context on pubNC.
func runDeadLetterFaultReplicas(t *testing.T, pubNC, bridgeNC *nats.Conn, cfg natsbridge.Config, replicas int, fault func(jetstream.JetStream)) faultFigures {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	js, err := jetstream.New(pubNC)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := natsbridge.EnsureDeadLetterStream(ctx, js, natsbridge.DeadLetterStreamConfig{Name: "DEADLETTERS", Replicas: replicas})
	if err != nil {
		t.Fatal(err)
	}
	b, err := natsbridge.New(bridgeNC, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	h := func(context.Context, natsbridge.Msg) error {
		time.Sleep(time.Millisecond)
		return errors.New("poison")
	}
	if err := b.HandlePattern("fault.*", h, natsbridge.Limits(natsbridge.HandlerLimits{QueueLen: faultMessages, MaxQueuedPerKey: faultMessages})); err != nil {
		t.Fatal(err)
	}
	flushConn(t, bridgeNC)
	for i := range faultMessages {
		if err := pubNC.Publish("fault."+strconv.Itoa(i%64), []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	flushConn(t, pubNC)
	cutAt := uint64(faultMessages / 8)
	eventually(t, "first failures", func() bool { return b.Stats().Failed >= cutAt })
	fault(js)
	queuedAfterFault := b.Stats().DeadLetterQueued
	settled := func() bool {
		s := b.Stats()
		return s.Queued == 0 && s.InFlight == 0 && s.DeadLetterQueued == 0 &&
			s.Received == s.Handled+s.Failed+s.Overflowed+s.Abandoned
	}
	deadline := time.Now().Add(90 * time.Second)
	for !settled() {
		if time.Now().After(deadline) {
			t.Fatalf("dead letters not settled: %+v", b.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := b.Drain(ctx); err != nil {
		t.Fatalf("Drain: %v", err)
	}
	s := b.Stats()
	var info *jetstream.StreamInfo
	eventuallyErr := func() error {
		var err error
		info, err = stream.Info(ctx)
		return err
	}
	eventually(t, "stream info", func() bool { return eventuallyErr() == nil })
	f := faultFigures{
		received: s.Received, failed: s.Failed, overflowDL: s.Overflowed - s.Dropped,
		stored: info.State.Msgs, lost: s.DeadLetterLost, errors: s.DeadLetterErrors,
	}
	t.Logf("received %d, failed %d, overflow dead letters %d, waiting right after the fault %d, dead-lettered (acked) %d, stored %d, lost %d, unacknowledged attempts %d",
		f.received, f.failed, f.overflowDL, queuedAfterFault, s.DeadLettered, f.stored, f.lost, f.errors)
	if f.failed < cutAt {
		t.Fatalf("only %d failures", f.failed)
	}
	if got, want := s.DeadLettered+f.lost, f.failed+f.overflowDL; got != want {
		t.Fatalf("dead-lettered %d + lost %d = %d, want every failed or overflowed message (%d)", s.DeadLettered, f.lost, got, want)
	}
	if f.stored != s.DeadLettered {
		t.Fatalf("stream stores %d dead letters, the Bridge counted %d acknowledged", f.stored, s.DeadLettered)
	}
	return f
}

// faultConn connects to url with a fast reconnect and no async-error printing.
func faultConn(t *testing.T, url string) *nats.Conn {
	t.Helper()
	return dialTest(t, url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond),
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
}

// TestDeadLettersSurviveNetworkCut cuts the Bridge's connection for 3 s while
// thousands of messages are failing: the dead letters wait in the buffer and are stored
// once the connection is back. Stored + lost == dead-lettered, and with the default
// buffer nothing is lost.
func TestDeadLettersSurviveNetworkCut(t *testing.T) {
	t.Parallel()
	srv := testnats.Start(t)
	proxy := faultproxy.Start(t, srv.Addr().String())
	pubNC := faultConn(t, srv.ClientURL())
	bridgeNC := faultConn(t, "nats://"+proxy.Addr())
	f := runDeadLetterFault(t, pubNC, bridgeNC, natsbridge.Config{}, func() {
		proxy.Disable()
		time.Sleep(3 * time.Second)
		if err := proxy.Enable(); err != nil {
			t.Fatal(err)
		}
	})
	if f.lost != 0 {
		t.Fatalf("%d dead letters lost with the default buffer", f.lost)
	}
}

// TestDeadLettersSurviveServerRestart restarts the server (file storage kept) while
// thousands of messages are failing.
func TestDeadLettersSurviveServerRestart(t *testing.T) {
	t.Parallel()
	srv := testnats.StartRestartable(t)
	pubNC := faultConn(t, srv.URL())
	bridgeNC := faultConn(t, srv.URL())
	f := runDeadLetterFault(t, pubNC, bridgeNC, natsbridge.Config{}, srv.Restart)
	if f.lost != 0 {
		t.Fatalf("%d dead letters lost with the default buffer", f.lost)
	}
}

// TestDeadLetterLossIsCountedAndLogged: with a dead-letter buffer far smaller than
// what fails during a 3 s cut, dead letters are lost — each counted, each batch logged
// as one error line — and stored + lost still equals dead-lettered.
func TestDeadLetterLossIsCountedAndLogged(t *testing.T) {
	t.Parallel()
	srv := testnats.Start(t)
	proxy := faultproxy.Start(t, srv.Addr().String())
	pubNC := faultConn(t, srv.ClientURL())
	bridgeNC := faultConn(t, "nats://"+proxy.Addr())
	var logs testlog.Buffer
	f := runDeadLetterFault(t, pubNC, bridgeNC, natsbridge.Config{DeadLetterQueueLen: 256, Logger: logs.Logger()}, func() {
		proxy.Disable()
		time.Sleep(3 * time.Second)
		if err := proxy.Enable(); err != nil {
			t.Fatal(err)
		}
	})
	if f.lost == 0 {
		t.Fatal("no dead letter lost with a 256-slot buffer through a 3 s cut")
	}
	var logged, lines uint64
	for _, e := range logs.Lines(t) {
		if e["message"] == "natsbridge: dead letters lost" {
			lines++
			n, _ := e["lost"].(float64)
			logged += uint64(n)
		}
	}
	if logged != f.lost {
		t.Fatalf("log lines report %d lost dead letters, Stats %d", logged, f.lost)
	}
	if lines >= f.lost {
		t.Fatalf("%d log lines for %d lost dead letters: want one per batch", lines, f.lost)
	}
}

// TestReplayDeletesOnlyConfirmed: Replay with Delete removes a dead letter only when its
// re-publication was acknowledged by a stream or confirmed delivered to a subscriber; a
// dead letter for a subject nobody listens to stays in the stream.
func TestReplayDeletesOnlyConfirmed(t *testing.T) {
	t.Parallel()
	nc := dialTest(t, testnats.Start(t).ClientURL())
	dl := ensureDeadLetterStream(t, nc)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "TRADES", Subjects: []string{"trade.>"}, Storage: jetstream.MemoryStorage}); err != nil {
		t.Fatal(err)
	}
	live, err := nc.SubscribeSync("live.r1")
	if err != nil {
		t.Fatal(err)
	}
	flushConn(t, nc)
	for _, subject := range []string{"nobody.r1", "live.r1", "trade.r1"} {
		m := &nats.Msg{Subject: "deadletter." + subject, Data: []byte(subject), Header: nats.Header{}}
		m.Header.Set(natsbridge.HeaderDeadLetterSubject, subject)
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	res, err := natsbridge.Replay(ctx, js, natsbridge.ReplayConfig{Stream: "DEADLETTERS", Delete: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Replayed != 2 || res.Deleted != 2 || res.Undelivered != 1 {
		t.Fatalf("Replay = %+v, want 2 replayed and deleted, 1 undelivered", res)
	}
	if m, err := live.NextMsg(5 * time.Second); err != nil || string(m.Data) != "live.r1" {
		t.Fatalf("live subscriber: %v, %v", m, err)
	}
	trades, err := js.Stream(ctx, "TRADES")
	if err != nil {
		t.Fatal(err)
	}
	if info, err := trades.Info(ctx); err != nil || info.State.Msgs != 1 {
		t.Fatalf("TRADES holds %v (%v), want the replayed message", info, err)
	}
	info, err := dl.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Fatalf("dead-letter stream keeps %d, want 1 (the undelivered one)", info.State.Msgs)
	}
	kept, err := dl.GetMsg(ctx, 1)
	if err != nil || kept.Header.Get(natsbridge.HeaderDeadLetterSubject) != "nobody.r1" {
		t.Fatalf("kept dead letter: %v, %v", kept, err)
	}
}

// BenchmarkDeadLetterThroughput measures how fast failing messages become acknowledged
// dead letters (file-storage stream, one in-process server): 8,000 failing messages per
// round, the time from the first publish until the stream acknowledged the last.
//
//	go test -run '^$' -bench BenchmarkDeadLetterThroughput -benchtime 3x ./natsbridge/
func BenchmarkDeadLetterThroughput(b *testing.B) {
	srv := testnats.Start(b)
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	ctx := context.Background()
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := natsbridge.EnsureDeadLetterStream(ctx, js, natsbridge.DeadLetterStreamConfig{Name: "DEADLETTERS"}); err != nil {
		b.Fatal(err)
	}
	var perSec []float64
	for i := 0; b.Loop(); i++ {
		br, err := natsbridge.New(nc, natsbridge.Config{})
		if err != nil {
			b.Fatal(err)
		}
		subject := "bench" + strconv.Itoa(i) + ".*"
		if err := br.HandlePattern(subject, func(context.Context, natsbridge.Msg) error { return errors.New("poison") },
			natsbridge.Limits(natsbridge.HandlerLimits{QueueLen: faultMessages, MaxQueuedPerKey: faultMessages})); err != nil {
			b.Fatal(err)
		}
		if err := nc.Flush(); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		for j := range faultMessages {
			if err := nc.Publish("bench"+strconv.Itoa(i)+"."+strconv.Itoa(j%64), []byte("x")); err != nil {
				b.Fatal(err)
			}
		}
		for br.Stats().DeadLettered+br.Stats().DeadLetterLost < faultMessages {
			time.Sleep(time.Millisecond)
		}
		perSec = append(perSec, faultMessages/time.Since(start).Seconds())
		if lost := br.Stats().DeadLetterLost; lost != 0 {
			b.Fatalf("%d dead letters lost", lost)
		}
		_ = br.Close()
	}
	b.ReportMetric(medianOf(perSec), "deadletters/s")
	b.ReportMetric(0, "ns/op")
}

// TestDeadLettersSurviveStreamLeaderLoss runs a three-node JetStream cluster with the
// dead-letter stream replicated three times and shuts down the node leading the stream
// while thousands of messages are failing: the dead letters are retried through the
// leader election and stored once each; none is lost.
func TestDeadLettersSurviveStreamLeaderLoss(t *testing.T) {
	t.Parallel()
	nodes := testnats.StartJetStreamCluster(t, 3)
	urls := make([]string, len(nodes))
	for i, n := range nodes {
		urls[i] = n.ClientURL()
	}
	all := strings.Join(urls, ",")
	pubNC := faultConn(t, all)
	bridgeNC := faultConn(t, all)
	f := runDeadLetterFaultReplicas(t, pubNC, bridgeNC, natsbridge.Config{}, 3, func(js jetstream.JetStream) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s, err := js.Stream(ctx, "DEADLETTERS")
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx)
		if err != nil || info.Cluster == nil {
			t.Fatalf("stream info: %v, %v", info, err)
		}
		for _, n := range nodes {
			if n.Name() == info.Cluster.Leader {
				n.Shutdown()
				n.WaitForShutdown()
				t.Logf("stream leader %s shut down", n.Name())
				return
			}
		}
		t.Fatalf("leader %q not found", info.Cluster.Leader)
	})
	if f.lost != 0 {
		t.Fatalf("%d dead letters lost through a leader loss", f.lost)
	}
}

// TestDeadLettersWithoutStreamAreCountedLost: with no stream on the dead-letter
// subjects nothing acknowledges them, so after DeadLetterTimeout every dead letter is
// counted lost and logged — none is counted as dead-lettered — and Close leaves nothing
// unaccounted.
func TestDeadLettersWithoutStreamAreCountedLost(t *testing.T) {
	t.Parallel()
	nc := dialTest(t, testnats.Start(t).ClientURL())
	var logs testlog.Buffer
	b, err := natsbridge.New(nc, natsbridge.Config{DeadLetterTimeout: 300 * time.Millisecond, Logger: logs.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Handle("nostream.r1", func(context.Context, natsbridge.Msg) error { return errors.New("poison") }); err != nil {
		t.Fatal(err)
	}
	flushConn(t, nc)
	const n = 10
	for i := range n {
		publishSeq(t, nc, "nostream.r1", i, nil)
	}
	flushConn(t, nc)
	eventually(t, "dead letters given up", func() bool { return b.Stats().DeadLetterLost == n })
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	st := b.Stats()
	if st.DeadLettered != 0 || st.Failed != n || st.DeadLetterQueued != 0 {
		t.Fatalf("stats %+v: want %d failed, all lost, none dead-lettered", st, n)
	}
	var logged float64
	for _, e := range logs.Lines(t) {
		if e["message"] == "natsbridge: dead letters lost" {
			logged += e["lost"].(float64)
		}
	}
	if logged != n {
		t.Fatalf("logged %v lost dead letters, want %d:\n%s", logged, n, logs.String())
	}
}
