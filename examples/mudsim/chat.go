package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/gamepersist/gamepersist/internal/workload/worldgen"
	"github.com/gamepersist/gamepersist/natsbridge"
	"github.com/gamepersist/gamepersist/roomstore"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
)

// ChatLine is the payload of a "chat.say" envelope on chat.say.room.<room>.
type ChatLine struct {
	Text string `json:"text"`
}

// chatType is the envelope type of a chat line.
const chatType = "chat.say"

// errEmptyChat rejects a chat line without text or sender (dead-lettered, not retried).
var errEmptyChat = errors.New("mudsim: empty chat line")

// chatHandler is the server side of chat: it runs on the Bridge's workers, in order per
// room, never on NATS's delivery goroutine. It checks the room through the cached room
// store (a memory hit in steady state) and does no other I/O.
func chatHandler(rooms roomstore.RoomStore, log zerolog.Logger) natsbridge.Handler {
	return natsbridge.Typed(func(ctx context.Context, env natsbridge.Envelope[ChatLine], msg natsbridge.Msg) error {
		if env.Sender == "" || env.Payload.Text == "" {
			return errEmptyChat
		}
		roomID := natsbridge.LastToken(msg.Subject)
		if _, err := rooms.GetRoom(ctx, roomID); err != nil {
			if errors.Is(err, roomstore.ErrNotFound) || errors.Is(err, roomstore.ErrInvalidID) {
				return err // a room that does not exist: dead-letter it
			}
			return natsbridge.Retryable(err) // a store hiccup: try again
		}
		log.Debug().Str("room", roomID).Str("player", env.Sender).Int("bytes", len(env.Payload.Text)).Msg("chat said")
		return nil
	}, natsbridge.DecodeOptions{})
}

// chatLines are what the simulated clients say.
var chatLines = []string{
	"Did anyone else hear that?", "The walls are breathing again.", "Has anyone seen the lantern?",
	"I think we should go back.", "Who keeps whistling?", "The stars are wrong tonight.",
}

// clients simulates players' clients saying things in their rooms, on their own NATS
// connection.
type clients struct {
	nc   *nats.Conn
	rng  *rand.Rand
	sent uint64
}

// say publishes n chat lines from random players, each on its room's chat subject.
func (c *clients) say(ctx context.Context, world *worldgen.World, n int) error {
	if len(world.Players) == 0 {
		return nil
	}
	for range n {
		p := world.Players[c.rng.IntN(len(world.Players))]
		subject, err := natsbridge.ChatSay(p.RoomID)
		if err != nil {
			return err
		}
		env := natsbridge.NewEnvelope(chatType, ChatLine{Text: chatLines[c.rng.IntN(len(chatLines))]})
		env.Sender = p.ID
		if err := natsbridge.Publish(ctx, c.nc, subject, env); err != nil {
			return fmt.Errorf("mudsim: chat: %w", err)
		}
		c.sent++
	}
	return nil
}
