package natsbridge

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"github.com/rs/zerolog"

	"github.com/gamepersist/gamepersist/internal/lifecycle"
)

// Tuning of the dead-letter publisher. They are fixed, not configurable: the bounds a
// caller chooses are Config.DeadLetterQueueLen and Config.DeadLetterTimeout.
const (
	// deadLetterBatch is the largest number of dead letters awaiting their
	// acknowledgement at once (jetstream's async publish window).
	deadLetterBatch = 256
	// deadLetterAckWait is how long one publish waits for the stream's acknowledgement
	// before it is retried (with the same Nats-Msg-Id, so a late ack cannot store it
	// twice).
	deadLetterAckWait = 2 * time.Second
	// deadLetterRetryBase and deadLetterRetryMax bound the pause between two rounds of
	// retries while JetStream does not acknowledge.
	deadLetterRetryBase = 50 * time.Millisecond
	deadLetterRetryMax  = time.Second
	// deadLetterDuplicateWindow is the dead-letter stream's duplicate window set by
	// EnsureDeadLetterStream (nats-server's default, made explicit).
	deadLetterDuplicateWindow = 2 * time.Minute
)

// pendingDL is a dead letter between the buffer and the stream's acknowledgement.
type pendingDL struct {
	msg      *nats.Msg
	subject  string // original subject, for logs
	deadline time.Time
	lastErr  error
	done     func(stored bool)
}

// deadLetterPublisher publishes dead letters to JetStream and counts one as
// dead-lettered only when the stream acknowledged it. Producers (the NATS callback for
// overflows, workers for failures) hand dead letters over without blocking to a
// bounded buffer; one goroutine owned by the Bridge publishes them in windows of up to
// deadLetterBatch asynchronous publishes, each with a unique Nats-Msg-Id, and retries
// the ones not acknowledged (JetStream unreachable, connection lost, ack lost) until
// Config.DeadLetterTimeout after they were buffered. A dead letter that finds the buffer
// full, runs out of time, or is still unacknowledged at Close is lost: counted in
// Stats.DeadLetterLost and logged, one line per batch, never silently.
type deadLetterPublisher struct {
	js       jetstream.JetStream // the Bridge's own: its async publisher state is the Bridge's
	prefix   string
	origin   string
	timeout  time.Duration
	log      zerolog.Logger
	counters *counters

	ch       chan deadLetter
	idPrefix string        // Nats-Msg-Id prefix, random per Bridge
	seq      atomic.Uint64 // Nats-Msg-Id sequence
	full     atomic.Uint64 // lost to a full buffer, not logged yet

	mu       sync.RWMutex // finished vs. put
	finished bool

	stop     chan struct{}   // closed: exit after publishing what is buffered (drain) …
	quit     chan struct{}   // … or closed: exit now, counting what is left as lost
	done     lifecycle.Group // run
	stopOnce sync.Once
	quitOnce sync.Once

	firstAsync time.Time // when run made its first async publish (zero: none yet); run's own
}

// asyncSettle is how long after its first async publish the publisher waits before
// CleanupPublisher. nats.go v1.55.0 starts a goroutine (resetPendingAcksOnReconnect) at the
// first async publish that reads the publisher's status channel only once it runs; a
// CleanupPublisher before that nils the channel and the goroutine blocks forever. Giving it
// this long to start costs Close nothing unless the first dead letter went out just before.
const asyncSettle = 100 * time.Millisecond

func newDeadLetterPublisher(nc *nats.Conn, cfg Config, c *counters) (*deadLetterPublisher, error) {
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(deadLetterBatch),
		jetstream.WithPublishAsyncTimeout(deadLetterAckWait))
	if err != nil {
		return nil, fmt.Errorf("natsbridge: jetstream context for dead letters: %w", err)
	}
	p := &deadLetterPublisher{
		js: js, prefix: cfg.DeadLetterPrefix, origin: cfg.Origin, timeout: cfg.DeadLetterTimeout,
		idPrefix: nuid.Next() + "-dl-",
		log:      cfg.Logger, counters: c,
		ch: make(chan deadLetter, cfg.DeadLetterQueueLen), stop: make(chan struct{}), quit: make(chan struct{}),
	}
	p.done.Go(p.run)
	return p, nil
}

// put buffers dl without blocking. If the buffer is full (JetStream has been slow or
// unreachable for a while) or the publisher has finished, dl is lost: counted at once
// and logged by the publisher goroutine with the next batch.
func (p *deadLetterPublisher) put(dl deadLetter) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if !p.finished {
		select {
		case p.ch <- dl:
			p.counters.deadLetterQueued.Add(1)
			return
		default:
		}
	}
	p.counters.deadLetterLost.Add(1)
	p.full.Add(1)
	if dl.done != nil {
		dl.done(false)
	}
}

func (p *deadLetterPublisher) run() {
	// Unsubscribes jetstream's reply subscription and stops its status watcher: nothing
	// of the Bridge outlives Close on the caller's connection.
	defer func() {
		if !p.firstAsync.IsZero() {
			time.Sleep(asyncSettle - time.Since(p.firstAsync)) // ≤ 0: no wait
		}
		p.js.CleanupPublisher()
	}()
	var retry []*pendingDL
	wait := deadLetterRetryBase
	for {
		p.logFull()
		batch := retry
		if len(batch) == 0 {
			select {
			case <-p.quit:
				return
			case dl := <-p.ch:
				batch = append(batch, p.prepare(dl))
			case <-p.stop:
				select {
				case dl := <-p.ch:
					batch = append(batch, p.prepare(dl))
				default:
					return // drained: buffer empty, nothing awaiting an ack
				}
			}
		}
	fill:
		for len(batch) < deadLetterBatch {
			select {
			case dl := <-p.ch:
				batch = append(batch, p.prepare(dl))
			default:
				break fill
			}
		}
		failed, quit := p.publishBatch(batch)
		if quit {
			return
		}
		retry = p.expire(failed)
		if len(retry) == 0 {
			wait = deadLetterRetryBase
			continue
		}
		// JetStream did not acknowledge: pause before the next round so an outage is
		// not a busy loop, longer while it lasts.
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-p.quit:
			t.Stop()
			p.lose(retry, "closed before the stream acknowledged")
			return
		}
		wait = min(2*wait, deadLetterRetryMax)
	}
}

// prepare turns a buffered dead letter into the message published to the stream.
func (p *deadLetterPublisher) prepare(dl deadLetter) *pendingDL {
	h := make(nats.Header, len(dl.header)+10)
	for k, v := range dl.header {
		if isNATSHeader(k) {
			k = headerDeadLetterNATSPrefix + k
		}
		h[k] = v
	}
	h.Set(HeaderDeadLetterSubject, dl.subject)
	h.Set(HeaderDeadLetterReason, string(dl.reason))
	if dl.decodeReason != "" {
		h.Set(HeaderDeadLetterDecodeReason, string(dl.decodeReason))
	}
	h.Set(HeaderDeadLetterError, headerText(dl.errText))
	h.Set(HeaderDeadLetterAttempts, strconv.Itoa(dl.attempts))
	h.Set(HeaderDeadLetterHandler, dl.handler)
	h.Set(HeaderDeadLetterFirstSeen, dl.firstSeen.UTC().Format(time.RFC3339Nano))
	h.Set(HeaderDeadLetterOrigin, p.origin)
	// Unique per dead letter (a prefix drawn per Bridge, not Config.Origin, which a
	// restarted process may reuse): a retry after a lost acknowledgement is recognised
	// by the stream's duplicate window instead of being stored twice, and nothing else
	// can be taken for a duplicate.
	h.Set(jetstream.MsgIDHeader, p.idPrefix+strconv.FormatUint(p.seq.Add(1), 10))
	return &pendingDL{
		msg:      &nats.Msg{Subject: p.prefix + dl.subject, Data: dl.data, Header: h},
		subject:  dl.subject,
		deadline: time.Now().Add(p.timeout),
		done:     dl.done,
	}
}

// publishBatch publishes batch asynchronously and waits for every acknowledgement (each
// wait is bounded by deadLetterAckWait). It returns the dead letters not acknowledged,
// or quit true if Close came first (then everything unacknowledged was counted lost).
func (p *deadLetterPublisher) publishBatch(batch []*pendingDL) (failed []*pendingDL, quit bool) {
	futures := make([]jetstream.PubAckFuture, len(batch))
	for i, d := range batch {
		if p.firstAsync.IsZero() {
			p.firstAsync = time.Now()
		}
		f, err := p.js.PublishMsgAsync(d.msg)
		if err != nil {
			d.lastErr = err
			continue
		}
		futures[i] = f
	}
	for i, d := range batch {
		f := futures[i]
		if f == nil {
			failed = append(failed, d)
			continue
		}
		select {
		case <-f.Ok():
			p.counters.deadLettered.Add(1)
			p.counters.deadLetterQueued.Add(-1)
			if d.done != nil {
				d.done(true)
			}
		case err := <-f.Err():
			d.lastErr = err
			failed = append(failed, d)
		case <-p.quit:
			// Some of these may still be stored: the stream acknowledged after Close.
			p.lose(append(failed, batch[i:]...), "closed before the stream acknowledged")
			return nil, true
		}
	}
	if len(failed) > 0 {
		p.counters.deadLetterErrors.Add(uint64(len(failed)))
	}
	return failed, false
}

// expire counts the dead letters whose time ran out as lost and returns the others.
func (p *deadLetterPublisher) expire(failed []*pendingDL) []*pendingDL {
	now := time.Now()
	keep := failed[:0]
	var gone []*pendingDL
	for _, d := range failed {
		if now.Before(d.deadline) {
			keep = append(keep, d)
		} else {
			gone = append(gone, d)
		}
	}
	if len(gone) > 0 {
		p.lose(gone, "not acknowledged within DeadLetterTimeout")
	}
	return keep
}

// lose counts dead letters that will not be stored and logs them as one line.
func (p *deadLetterPublisher) lose(ds []*pendingDL, why string) {
	if len(ds) == 0 {
		return
	}
	p.counters.deadLetterLost.Add(uint64(len(ds)))
	p.counters.deadLetterQueued.Add(-int64(len(ds)))
	for _, d := range ds {
		if d.done != nil {
			d.done(false)
		}
	}
	ev := p.log.Error().Int("lost", len(ds)).Str("cause", why).Str("first_subject", ds[0].subject)
	if err := ds[len(ds)-1].lastErr; err != nil {
		ev = logErr(ev, err)
	}
	ev.Msg("natsbridge: dead letters lost")
}

// logFull logs, as one line, the dead letters lost to a full buffer since the last call.
func (p *deadLetterPublisher) logFull() {
	if n := p.full.Swap(0); n > 0 {
		p.log.Error().Uint64("lost", n).Str("cause", "dead-letter buffer full").
			Msg("natsbridge: dead letters lost")
	}
}

// finish stops the goroutine once every buffered dead letter is acknowledged or lost (or
// at once if abandon, counting the rest as lost) and waits for it. After finish, put
// counts every dead letter as lost.
func (p *deadLetterPublisher) finish(abandon bool) {
	p.stopOnce.Do(func() { close(p.stop) })
	if abandon {
		p.quitOnce.Do(func() { close(p.quit) })
	}
	p.done.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.finished {
		return
	}
	p.finished = true
	var n int64
	for {
		select {
		case dl := <-p.ch:
			n++
			if dl.done != nil {
				dl.done(false)
			}
			continue
		default:
		}
		break
	}
	if n > 0 {
		p.counters.deadLetterLost.Add(uint64(n))
		p.counters.deadLetterQueued.Add(-n)
		p.full.Add(uint64(n))
	}
	p.logFull()
}

// headerText makes s a single-line header value of at most maxErrorHeader bytes.
func headerText(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, s)
	if len(s) > maxErrorHeader {
		s = strings.ToValidUTF8(s[:maxErrorHeader], "")
	}
	return s
}
