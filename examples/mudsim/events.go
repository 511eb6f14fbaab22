package main

import (
	"context"
	"fmt"

	"github.com/gamepersist/gamepersist/flux"
	"github.com/gamepersist/gamepersist/natsbridge"
	"github.com/nats-io/nats.go"
)

// LucidityChanged is the payload of the "lucidity_change" envelope published on
// events.lucidity_change.<player> for every change a tick makes.
type LucidityChanged struct {
	TickID      string  `json:"tick_id"`
	PlayerID    string  `json:"player_id"`
	RoomID      string  `json:"room_id"`
	OldLucidity int     `json:"old_lucidity"`
	NewLucidity int     `json:"new_lucidity"`
	OldTier     string  `json:"old_tier"`
	NewTier     string  `json:"new_tier"`
	Flux        float64 `json:"flux"`
}

// lucidityType is the envelope type of a lucidity change.
const lucidityType = "lucidity_change"

// publishChanges publishes one event per change of a tick. Publish only buffers (nats.go
// flushes in the background), so this costs an encode per change and no round trip.
func publishChanges(ctx context.Context, nc *nats.Conn, origin, tickID string, changes []flux.Change) (int, error) {
	for i, c := range changes {
		subject, err := natsbridge.LucidityChange(c.PlayerID)
		if err != nil {
			return i, err
		}
		env := natsbridge.NewEnvelope(lucidityType, LucidityChanged{
			TickID: tickID, PlayerID: c.PlayerID, RoomID: c.RoomID,
			OldLucidity: c.OldLucidity, NewLucidity: c.NewLucidity,
			OldTier: string(c.OldTier), NewTier: string(c.NewTier), Flux: c.Flux,
		})
		env.Sender, env.Origin = "flux", origin
		if err := natsbridge.Publish(ctx, nc, subject, env); err != nil {
			return i, fmt.Errorf("mudsim: publish lucidity change: %w", err)
		}
	}
	return len(changes), nil
}
