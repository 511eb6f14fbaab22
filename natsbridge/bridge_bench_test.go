package natsbridge_test

import (
	"context"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gamepersist/gamepersist/internal/testkit/testnats"
	"github.com/gamepersist/gamepersist/natsbridge"
)

// W4 (docs/ARCHITECTURE.md): publish→handler latency at a steady 10,000 msgs/s and maximum
// throughput, for the Bridge and for a raw nats.go subscription doing the same handler
// work, in the same run. Run:
//
//	go test -run '^$' -bench 'BenchmarkW4' -benchtime 1x ./natsbridge/
//
// The handler work is the same function in both paths: decode a small JSON envelope
// (what a Typed handler does) and fold its payload into a checksum.

const (
	w4Rooms      = 64              // distinct keys (rooms)
	w4Rate       = 10_000          // msgs/s for the latency runs
	w4Slice      = 1 * time.Second // length of one paced latency run
	w4LatRounds  = 5               // latency runs per path, raw and Bridge alternated
	w4Messages   = 30_000          // messages per throughput run
	w4Window     = 2_000           // max published-but-unhandled messages in a throughput run
	w4TputRounds = 5               // throughput runs per path, raw and Bridge alternated
)

type w4Payload struct {
	Room string `json:"room"`
	Seq  int    `json:"seq"`
	HP   int    `json:"hp"`
}

// w4Work is the handler work shared by the raw and the Bridge paths.
func w4Work(data []byte, sink *atomic.Int64) error {
	env, err := natsbridge.Decode[w4Payload](data, natsbridge.DecodeOptions{})
	if err != nil {
		return err
	}
	sink.Add(int64(env.Payload.Seq + env.Payload.HP))
	return nil
}

// w4Recorder counts handled messages and records publish→handled latencies.
type w4Recorder struct {
	handled   atomic.Int64
	sink      atomic.Int64
	latencies []time.Duration // preallocated; index = handled count
}

func (r *w4Recorder) done(h nats.Header) {
	n := r.handled.Add(1)
	if r.latencies == nil {
		return
	}
	if ns, err := strconv.ParseInt(h.Get(natsbridge.HeaderPublishedAt), 10, 64); err == nil && int(n) <= len(r.latencies) {
		r.latencies[n-1] = time.Since(time.Unix(0, ns))
	}
}

// w4Env is one server with a publisher and a subscriber connection, shared by every
// run of a benchmark so that the raw and the Bridge runs see the same setup.
type w4Env struct {
	pub, sub *nats.Conn
	payloads [][]byte
	runs     int
}

func newW4Env(b *testing.B) *w4Env {
	b.Helper()
	url := testnats.Start(b).ClientURL()
	conn := func() *nats.Conn {
		nc, err := nats.Connect(url)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(nc.Close)
		return nc
	}
	e := &w4Env{pub: conn(), sub: conn(), payloads: make([][]byte, w4Rooms)}
	for i := range e.payloads {
		data, err := natsbridge.Encode(natsbridge.NewEnvelope("hp", w4Payload{Room: "r" + strconv.Itoa(i), Seq: i, HP: 100}))
		if err != nil {
			b.Fatal(err)
		}
		e.payloads[i] = data
	}
	return e
}

// subscribe subscribes the handler work for one run, raw or through a Bridge, on a
// subject prefix of its own; it returns the room subjects and a stop function.
func (e *w4Env) subscribe(b *testing.B, bridged bool, rec *w4Recorder) ([]string, func()) {
	b.Helper()
	e.runs++
	prefix := "w4." + strconv.Itoa(e.runs) + ".room."
	subjects := make([]string, w4Rooms)
	for i := range subjects {
		subjects[i] = prefix + "r" + strconv.Itoa(i)
	}
	if !bridged {
		s, err := e.sub.Subscribe(prefix+"*", func(m *nats.Msg) {
			if err := w4Work(m.Data, &rec.sink); err != nil {
				b.Error(err)
			}
			rec.done(m.Header)
		})
		if err != nil {
			b.Fatal(err)
		}
		if err := s.SetPendingLimits(-1, -1); err != nil {
			b.Fatal(err)
		}
		if err := e.sub.Flush(); err != nil {
			b.Fatal(err)
		}
		return subjects, func() { _ = s.Unsubscribe() }
	}
	br, err := natsbridge.New(e.sub, natsbridge.Config{QueueLen: 4 * w4Window, MaxQueuedPerKey: 4 * w4Window})
	if err != nil {
		b.Fatal(err)
	}
	if err := br.HandlePattern(prefix+"*", func(_ context.Context, m natsbridge.Msg) error {
		if err := w4Work(m.Data, &rec.sink); err != nil {
			return err
		}
		rec.done(m.Header)
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	if err := e.sub.Flush(); err != nil {
		b.Fatal(err)
	}
	return subjects, func() {
		if st := br.Stats(); st.Overflowed != 0 || st.Failed != 0 {
			b.Errorf("bridge stats: %+v", st)
		}
		if err := br.Close(); err != nil {
			b.Error(err)
		}
	}
}

func (e *w4Env) publish(b *testing.B, subjects []string, i int) {
	m := &nats.Msg{Subject: subjects[i%w4Rooms], Data: e.payloads[i%w4Rooms]}
	natsbridge.SetPublishedAt(m, time.Now())
	if err := e.pub.PublishMsg(m); err != nil {
		b.Fatal(err)
	}
}

func waitHandled(b *testing.B, rec *w4Recorder, total int) {
	deadline := time.Now().Add(30 * time.Second)
	for rec.handled.Load() < int64(total) {
		if time.Now().After(deadline) {
			b.Fatalf("handled %d of %d", rec.handled.Load(), total)
		}
		time.Sleep(50 * time.Microsecond)
	}
}

// latencyRun publishes at w4Rate for w4Slice (paced every millisecond) and returns the
// publish→handled latency of every message.
func (e *w4Env) latencyRun(b *testing.B, bridged bool) []time.Duration {
	total := int(w4Rate * w4Slice / time.Second)
	rec := &w4Recorder{latencies: make([]time.Duration, total)}
	subjects, stop := e.subscribe(b, bridged, rec)
	defer stop()
	start := time.Now()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for sent := 0; sent < total; {
		<-tick.C
		due := min(total, int(time.Since(start)*w4Rate/time.Second))
		for ; sent < due; sent++ {
			e.publish(b, subjects, sent)
		}
		if err := e.pub.Flush(); err != nil {
			b.Fatal(err)
		}
	}
	waitHandled(b, rec, total)
	return rec.latencies
}

// throughputRun publishes w4Messages as fast as the handler keeps up (at most w4Window
// outstanding) and returns handled messages per second.
func (e *w4Env) throughputRun(b *testing.B, bridged bool) float64 {
	rec := &w4Recorder{}
	subjects, stop := e.subscribe(b, bridged, rec)
	defer stop()
	start := time.Now()
	for sent := 0; sent < w4Messages; sent++ {
		for int64(sent)-rec.handled.Load() >= w4Window {
			time.Sleep(50 * time.Microsecond)
		}
		e.publish(b, subjects, sent)
	}
	if err := e.pub.Flush(); err != nil {
		b.Fatal(err)
	}
	waitHandled(b, rec, w4Messages)
	return w4Messages / time.Since(start).Seconds()
}

// BenchmarkW4Latency: p50/p99 publish→handled at a steady 10,000 msgs/s through the
// Bridge (p50_us, p99_us) and through a raw nats.go subscription doing the same work
// (raw_p50_us, raw_p99_us): w4LatRounds one-second runs of each, alternated; each
// metric is the median over the runs of that run's percentile, so one run hit by the
// shared machine's noise does not decide the result. p99_worst_us is the worst run's.
func BenchmarkW4Latency(b *testing.B) {
	e := newW4Env(b)
	var raw50, raw99, br50, br99 []float64
	pct := func(lat []time.Duration, p int) float64 {
		slices.Sort(lat)
		return float64(lat[len(lat)*p/100].Nanoseconds()) / 1e3
	}
	for range b.N {
		for range w4LatRounds {
			lat := e.latencyRun(b, false)
			raw50, raw99 = append(raw50, pct(lat, 50)), append(raw99, pct(lat, 99))
			lat = e.latencyRun(b, true)
			br50, br99 = append(br50, pct(lat, 50)), append(br99, pct(lat, 99))
		}
	}
	b.ReportMetric(medianOf(br50), "p50_us")
	b.ReportMetric(medianOf(br99), "p99_us")
	b.ReportMetric(slices.Max(br99), "p99_worst_us")
	b.ReportMetric(medianOf(raw50), "raw_p50_us")
	b.ReportMetric(medianOf(raw99), "raw_p99_us")
	b.ReportMetric(slices.Max(raw99), "raw_p99_worst_us")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkW4Throughput: maximum handled msgs/s through the Bridge (msgs/s) and a raw
// subscription (raw_msgs/s), w4TputRounds runs of each alternated; each value is the
// median run, ratio is the median of the per-round bridge/raw ratios.
func BenchmarkW4Throughput(b *testing.B) {
	e := newW4Env(b)
	var raw, bridge, ratio []float64
	for range b.N {
		for range w4TputRounds {
			r := e.throughputRun(b, false)
			br := e.throughputRun(b, true)
			raw, bridge, ratio = append(raw, r), append(bridge, br), append(ratio, br/r)
		}
	}
	b.ReportMetric(medianOf(raw), "raw_msgs/s")
	b.ReportMetric(medianOf(bridge), "msgs/s")
	b.ReportMetric(medianOf(ratio), "ratio")
	b.ReportMetric(0, "ns/op")
}

func medianOf(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}
