package flux_test

import (
	"context"
	"testing"

	"github.com/gamepersist/gamepersist/flux"
)

// TestApplySameTickTwiceInOneCall: a tick id listed twice in one Apply (a caller's own
// retry appended to a batch that still holds the first attempt) is applied once, by both
// stores alike — the first occurrence counts, as MemoryPlayers documents.
func TestApplySameTickTwiceInOneCall(t *testing.T) {
	t.Parallel()
	for name, mk := range backends(t, scenarioPlayers()...) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := mk(t)
			tick := flux.TickChanges{TickID: "dup:1", Changes: []flux.Change{
				{PlayerID: "grave-1", OldLucidity: 100, NewLucidity: 90},
			}}
			res, err := b.store.Apply(context.Background(), []flux.TickChanges{tick, tick})
			if err != nil || res.TicksApplied != 1 || res.PlayersUpdated != 1 {
				t.Fatalf("apply: %+v %v; want 1 tick, 1 player", res, err)
			}
			checkLucidity(t, b.lucidity(), map[string]int{"grave-1": 90})
		})
	}
}
