package main

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/gamepersist/gamepersist/natsbridge"
)

// chatPerServer is how many chat lines the players of each server say per game minute.
const chatPerServer = 5

// chatLine is one line a player says in a room, through the server hosting it.
type chatLine struct {
	Room   string
	Player string
	Server int
}

// chatPayload is the body of a chat envelope.
type chatPayload struct {
	Player string `json:"player"`
	Text   string `json:"text"`
}

// chat counts the chat lines: at most once by design (NATS core), so a line said while a
// node or a connection is down may be lost; the figures are load and a health signal,
// not a loss check.
type chat struct {
	sent, handled atomic.Int64
}

// handler is a server's chat handler (one queue group over all servers: each line is
// handled by one of them).
func (c *chat) handler() natsbridge.Handler {
	return func(_ context.Context, m natsbridge.Msg) error {
		if _, err := natsbridge.Decode[chatPayload](m.Data, natsbridge.DecodeOptions{}); err != nil {
			return err
		}
		c.handled.Add(1)
		return nil
	}
}

// say publishes the minute's chat lines, each through its server's connection (the next
// live one when it is down). Publishing never waits for the server: nats.go buffers
// while it reconnects.
func (r *soak) say(ctx context.Context, lines []chatLine) {
	for _, l := range lines {
		s := r.liveFor(l.Server)
		if s == nil {
			continue
		}
		subject, err := natsbridge.ChatSay(l.Room)
		if err != nil {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		err = natsbridge.Publish(pctx, s.nc, subject, natsbridge.NewEnvelope("chat.say", chatPayload{Player: l.Player, Text: "hello"}))
		cancel()
		if err == nil {
			r.e.chat.sent.Add(1)
		}
	}
}

// liveFor returns server i when alive, else the next live one, else nil.
func (r *soak) liveFor(i int) *gameServer {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := len(r.servers)
	for k := range n {
		if s := r.servers[(i+k)%n]; s != nil {
			return s
		}
	}
	return nil
}
