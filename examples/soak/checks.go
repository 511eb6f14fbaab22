package main

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/metrics"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/gamepersist/gamepersist/flux"
)

// dbPlayer is one player's final state in the database.
type dbPlayer struct {
	lucidity int
	tier     string
	state    flux.TickState
	hasState bool
}

// readPlayers reads every player's lucidity, tier and stored flux state.
func (r *soak) readPlayers(ctx context.Context) (map[string]dbPlayer, error) {
	q := `SELECT p.id, p.lucidity, p.tier, s.tick, s.residual, s.room_id, s.evaluations, s.last_delta
	      FROM ` + pgx.Identifier{r.e.schema, "flux_players"}.Sanitize() + ` p
	      LEFT JOIN ` + pgx.Identifier{r.e.schema, "flux_state"}.Sanitize() + ` s ON s.player_id = p.id`
	rows, err := r.e.admin.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("soak: read players: %w", err)
	}
	defer rows.Close()
	out := map[string]dbPlayer{}
	for rows.Next() {
		var id string
		var p dbPlayer
		var tick, evals, delta *int64
		var residual *float64
		var room *string
		if err := rows.Scan(&id, &p.lucidity, &p.tier, &tick, &residual, &room, &evals, &delta); err != nil {
			return nil, fmt.Errorf("soak: read players: %w", err)
		}
		if tick != nil {
			p.hasState = true
			p.state = flux.TickState{Tick: *tick, Carry: flux.Carry{Residual: *residual, RoomID: *room, Evaluations: int(*evals)}, LastDelta: int(*delta)}
		}
		out[id] = p
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("soak: read players: %w", err)
	}
	return out, nil
}

// flux comparison outcome: players behind or different (lost), ahead (doubled), and the
// first few differences for the log.
type fluxCheck struct {
	lost, doubled int
	examples      []string
}

// compareFlux compares every player's database state with the replay's. A player whose
// stored tick is later than the replay's, or who has more consecutive evaluations in the
// same room, got a minute twice (doubled); any other difference — an earlier tick, fewer
// evaluations, another lucidity, tier or residual — is a lost change.
func compareFlux(got map[string]dbPlayer, want map[string]flux.PlayerState) fluxCheck {
	var c fluxCheck
	ids := make([]string, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		w := want[id]
		g, ok := got[id]
		ws := w.Flux
		gs := g.state
		same := ok && g.lucidity == w.Lucidity && g.tier == string(w.Tier) && gs.Tick == ws.Tick &&
			gs.Carry == ws.Carry && gs.LastDelta == ws.LastDelta
		if same {
			continue
		}
		doubled := ok && (gs.Tick > ws.Tick || (gs.Carry.RoomID == ws.Carry.RoomID && gs.Carry.Evaluations > ws.Carry.Evaluations))
		if doubled {
			c.doubled++
		} else {
			c.lost++
		}
		if len(c.examples) < 5 {
			c.examples = append(c.examples, fmt.Sprintf("player %s: database lucidity %d %s %+v, replay %d %s %+v",
				id, g.lucidity, g.tier, gs, w.Lucidity, w.Tier, ws))
		}
	}
	return c
}

// heapSampler keeps the peak of the live heap, sampled through runtime/metrics.
type heapSampler struct {
	samples []metrics.Sample
	peak    uint64
}

// sample reads the heap now.
func (h *heapSampler) sample() {
	if h.samples == nil {
		h.samples = []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/unused:bytes"}}
	}
	metrics.Read(h.samples)
	var v uint64
	for _, s := range h.samples {
		if s.Value.Kind() == metrics.KindUint64 {
			v += s.Value.Uint64()
		}
	}
	h.peak = max(h.peak, v)
}

// goroutinesSettled waits (up to 10 s, polling) until the goroutines are back to
// baseline and returns how many are left above it, and how many of those are the
// embedded fault proxy's (toxiproxy's own goroutines, stuck after some toxic removals:
// test machinery, not the library, so reported apart). When the library leaves any, their
// stacks go to the log.
func goroutinesSettled(baseline int, log zerolog.Logger) (left, proxy int) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		stacks := allStacks()
		proxy = 0
		for _, g := range stacks {
			if strings.Contains(g, "github.com/Shopify/toxiproxy") {
				proxy++
			}
		}
		left = len(stacks) - proxy - baseline
		if left <= 0 {
			return 0, proxy
		}
		if time.Now().After(deadline) {
			log.Error().Int("left", left).Str("stacks", strings.Join(stacks, "\n\n")).Msg("goroutines left after close")
			return left, proxy
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// allStacks returns the stack of every goroutine, one string each.
func allStacks() []string {
	buf := make([]byte, 1<<16)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Split(strings.TrimSpace(string(buf[:n])), "\n\n")
		}
		buf = make([]byte, 2*len(buf))
	}
}

// backendsAfterClose counts, on a connection of its own, the pg_stat_activity rows whose
// application_name starts with prefix (every pool of the soak), waiting up to 10 s for
// terminated backends to go.
func backendsAfterClose(raw, prefix string, prev error) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cc, err := pgx.ParseConfig(raw)
	if err != nil {
		return -1, errors.Join(prev, fmt.Errorf("soak: backends check: %s", redactErr(err)))
	}
	cc.RuntimeParams["application_name"] = "soak-check"
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return -1, errors.Join(prev, fmt.Errorf("soak: backends check: %s", redactErr(err)))
	}
	defer func() { _ = conn.Close(context.Background()) }()
	for {
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE starts_with(application_name, $1)`, prefix).Scan(&n); err != nil {
			return -1, errors.Join(prev, fmt.Errorf("soak: backends check: %w", err))
		}
		if n == 0 || ctx.Err() != nil {
			return n, prev
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// dropSchema drops the soak's schema on a connection of its own.
func dropSchema(raw, schema string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, raw)
	if err != nil {
		return fmt.Errorf("soak: drop schema: %s", redactErr(err))
	}
	defer func() { _ = conn.Close(context.Background()) }()
	if _, err := conn.Exec(ctx, `DROP SCHEMA `+pgx.Identifier{schema}.Sanitize()+` CASCADE`); err != nil {
		return fmt.Errorf("soak: drop schema: %w", err)
	}
	return nil
}

// closeServers closes every live server gracefully and every abandoned one without a
// flush, adding up their Bridges' final dead-letter counters.
func (r *soak) closeServers() error {
	var errs []error
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range r.servers {
		s := r.server(i)
		if s == nil {
			continue
		}
		if err := s.close(ctx, true); err != nil {
			errs = append(errs, err)
		}
		r.bridgeTotals(s)
		r.setServer(i, nil)
	}
	for _, s := range r.abandoned {
		_ = s.close(ctx, false) // a crashed server's leftovers: errors are expected
		r.bridgeTotals(s)
	}
	r.abandoned = nil
	return errors.Join(errs...)
}

// bridgeTotals adds s's final Bridge counters to the run's.
func (r *soak) bridgeTotals(s *gameServer) {
	if s.bridge == nil {
		return
	}
	st := s.bridge.Stats()
	r.dlStored += st.DeadLettered
	r.dlReportedLost += st.DeadLetterLost
	r.bridgeFailed += st.Failed
	r.bridgeOverflowed += st.Overflowed
	r.bridgeDropped += st.Dropped
}

// closeAll closes the servers and the NATS cluster (idempotent).
func (r *soak) closeAll() error {
	err := r.closeServers()
	if r.e != nil && r.e.nats != nil {
		err = errors.Join(err, r.e.nats.stop())
		r.e.nats = nil
	}
	return err
}

// deadLetterCheck reads the dead-letter stream on a connection of its own and returns
// how many published poison trades it does not hold.
func (r *soak) deadLetterCheck(ctx context.Context) (stored map[string][]deadLetter, missing int, err error) {
	nc, err := nats.Connect("nats://"+r.e.nats.clientAddr(0), nats.Name("soak-check"))
	if err != nil {
		return nil, 0, fmt.Errorf("soak: nats check: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, 0, fmt.Errorf("soak: jetstream: %w", err)
	}
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	want := r.e.events.poisonIDs()
	for {
		stored, err = readDeadLetters(cctx, js)
		if err != nil {
			return nil, 0, err
		}
		missing = 0
		for id := range want {
			if len(stored[id]) == 0 {
				missing++
			}
		}
		if missing == 0 || cctx.Err() != nil {
			return stored, missing, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
}
