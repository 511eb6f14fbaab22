package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gamepersist/gamepersist/natsbridge"
)

// tradePayload is the body of a durable trade event.
type tradePayload struct {
	TradeID string `json:"trade_id"`
	Player  string `json:"player"`
	Poison  bool   `json:"poison"`
}

// errPoison is the handler's refusal of a poison trade: not retryable, so the Bridge
// dead-letters it at once.
var errPoison = errors.New("soak: poison trade refused")

// errCrashed is what a killed server's handler returns: a crashed process handles
// nothing, and the message goes back to the server.
var errCrashed = errors.New("soak: game server crashed")

// events records the durable trades: which were published (acknowledged by the
// stream), which were handled and how often, and which poison ones were seen.
type events struct {
	mu        sync.Mutex
	published map[string]bool // id → poison, acknowledged by the stream
	failed    int             // publishes never acknowledged (the publisher knows: not a loss)
	handled   map[string]int  // id → handler successes
	poisonRx  map[string]int  // poison ids refused by a handler
}

// newEvents returns an empty recorder.
func newEvents() *events {
	return &events{published: map[string]bool{}, handled: map[string]int{}, poisonRx: map[string]int{}}
}

// handler is server s's durable trade handler: idempotent by trade id (a redelivery is
// counted, its effect applied once).
func (e *events) handler(s *gameServer) natsbridge.Handler {
	return func(_ context.Context, m natsbridge.Msg) error {
		if s.dead.Load() {
			return natsbridge.Retryable(errCrashed)
		}
		env, err := natsbridge.Decode[tradePayload](m.Data, natsbridge.DecodeOptions{})
		if err != nil {
			return fmt.Errorf("soak: trade: %w", err)
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		if env.Payload.Poison {
			e.poisonRx[env.Payload.TradeID]++
			return errPoison
		}
		e.handled[env.Payload.TradeID]++
		return nil
	}
}

// publish publishes t through js until the stream acknowledges it or ctx ends; the
// message id makes a retry after a lost acknowledgement stored once.
func (e *events) publish(ctx context.Context, js func() jetstream.JetStream, t trade) {
	env := natsbridge.NewEnvelope("trade", tradePayload{TradeID: t.ID, Player: t.Player, Poison: t.Poison})
	env.ID = t.ID
	data, err := natsbridge.Encode(env)
	if err == nil {
		for ctx.Err() == nil {
			j := js()
			if j == nil {
				break
			}
			pctx, cancel := context.WithTimeout(ctx, time.Second)
			_, err = j.Publish(pctx, tradeSubjectRoot+"."+t.Player, data, jetstream.WithMsgID(t.ID))
			cancel()
			if err == nil {
				e.mu.Lock()
				e.published[t.ID] = t.Poison
				e.mu.Unlock()
				return
			}
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	e.mu.Lock()
	e.failed++
	e.mu.Unlock()
}

// eventCounts is the end state of the durable events.
type eventCounts struct {
	Published, PublishFailed, Poison int
	Handled, Duplicates, Lost        int
	LostIDs                          []string // the first few lost trade ids
}

// counts compares what was published with what was handled.
func (e *events) counts() eventCounts {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := eventCounts{Published: len(e.published), PublishFailed: e.failed}
	for id, poison := range e.published {
		if poison {
			c.Poison++
			continue
		}
		n := e.handled[id]
		switch {
		case n == 0:
			c.Lost++
			if len(c.LostIDs) < 5 {
				c.LostIDs = append(c.LostIDs, id)
			}
		case n > 1:
			c.Duplicates += n - 1
		}
		if n > 0 {
			c.Handled++
		}
	}
	return c
}

// outstanding is the number of published, non-poison trades not handled yet.
func (e *events) outstanding() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for id, poison := range e.published {
		if !poison && e.handled[id] == 0 {
			n++
		}
	}
	return n
}

// poisonIDs returns the published poison trade ids.
func (e *events) poisonIDs() map[string]bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[string]bool{}
	for id, poison := range e.published {
		if poison {
			out[id] = true
		}
	}
	return out
}

// publisher publishes trades handed to it on its own goroutine, so a NATS outage
// never holds the game loop. run owns the goroutine: close in, then wait on done.
type publisher struct {
	in   chan trade
	done chan struct{}
}

// startPublisher starts the publisher goroutine; pick returns the JetStream context of
// a live server for a trade (nil: none alive, the trade's publish fails).
func startPublisher(ctx context.Context, e *events, pick func(t trade) jetstream.JetStream) *publisher {
	p := &publisher{in: make(chan trade, 4096), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for t := range p.in {
			pctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			e.publish(pctx, func() jetstream.JetStream { return pick(t) }, t)
			cancel()
		}
	}()
	return p
}

// stop closes the intake and waits for the publisher to finish what it holds.
func (p *publisher) stop() {
	close(p.in)
	<-p.done
}

// deadLetter is one stored dead letter: the trade it carries and why it failed.
type deadLetter struct {
	TradeID  string `json:"trade_id"`
	Poison   bool   `json:"poison"`
	Reason   string `json:"reason"`
	Error    string `json:"error"`
	Attempts string `json:"attempts"`
	Origin   string `json:"origin"`
}

// readDeadLetters reads every dead letter stored in the dead-letter stream and returns
// them by the trade id they carry.
func readDeadLetters(ctx context.Context, js jetstream.JetStream) (map[string][]deadLetter, error) {
	out := map[string][]deadLetter{}
	st, err := js.Stream(ctx, deadLetterStream)
	if err != nil {
		return nil, fmt.Errorf("soak: dead-letter stream: %w", err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("soak: dead-letter stream info: %w", err)
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("soak: dead letter %d: %w", seq, err)
		}
		env, err := natsbridge.Decode[tradePayload](m.Data, natsbridge.DecodeOptions{})
		if err != nil {
			return nil, fmt.Errorf("soak: dead letter %d: %w", seq, err)
		}
		out[env.Payload.TradeID] = append(out[env.Payload.TradeID], deadLetter{
			TradeID: env.Payload.TradeID, Poison: env.Payload.Poison,
			Reason: m.Header.Get(natsbridge.HeaderDeadLetterReason), Error: m.Header.Get(natsbridge.HeaderDeadLetterError),
			Attempts: m.Header.Get(natsbridge.HeaderDeadLetterAttempts), Origin: m.Header.Get(natsbridge.HeaderDeadLetterOrigin),
		})
	}
	return out, nil
}
