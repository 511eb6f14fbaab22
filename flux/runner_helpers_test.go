package flux_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/gamepersist/gamepersist/flux"
	"github.com/gamepersist/gamepersist/roomstore"
	"github.com/jackc/pgx/v5/pgxpool"
)

// rtNight is the runner tests' start time: 22:00 is night under the default rules.
var rtNight = time.Date(2026, 5, 1, 22, 0, 0, 0, time.UTC)

// putRooms stores rooms in a new memory store closed at the end of t.
func memoryRooms(t testing.TB, rooms ...roomstore.Room) *roomstore.MemoryStore {
	t.Helper()
	s := roomstore.NewMemoryStore()
	t.Cleanup(func() { _ = s.Close() })
	for _, r := range rooms {
		if err := s.PutRoom(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func room(id, env string) roomstore.Room {
	return roomstore.Room{ID: id, Name: id, Plane: "material", Zone: "town", SubZone: "old_town", Environment: env}
}

// postgresPlayers returns a migrated default-schema store on pool.
func postgresPlayers(t testing.TB, pool *pgxpool.Pool, cfg flux.PostgresConfig) *flux.PostgresPlayers {
	t.Helper()
	s, err := flux.NewPostgresPlayers(pool, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

// insertPlayers writes players to the default player table.
func insertPlayers(t testing.TB, pool *pgxpool.Pool, players ...flux.Player) {
	t.Helper()
	rules := flux.DefaultRules()
	for _, p := range players {
		_, err := pool.Exec(context.Background(),
			`INSERT INTO flux_players (id, room_id, lucidity, tier, last_active, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
			p.ID, p.RoomID, p.Lucidity, string(rules.Tier(p.Lucidity)), p.LastActive, p.CreatedAt)
		if err != nil {
			t.Fatal(err)
		}
	}
}

// dbLucidity reads lucidity and tier of every player of the default table.
func dbLucidity(t testing.TB, pool *pgxpool.Pool) map[string]flux.PlayerState {
	t.Helper()
	return queryStates(t, pool, `SELECT id, room_id, lucidity, tier FROM flux_players`)
}

// queryStates runs sql, which selects id, room, lucidity and tier (as text), and returns
// the rows by id.
func queryStates(t testing.TB, pool *pgxpool.Pool, sql string) map[string]flux.PlayerState {
	t.Helper()
	rows, err := pool.Query(context.Background(), sql)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]flux.PlayerState{}
	for rows.Next() {
		var s flux.PlayerState
		var tier string
		if err := rows.Scan(&s.ID, &s.RoomID, &s.Lucidity, &tier); err != nil {
			t.Fatal(err)
		}
		s.Tier = flux.Tier(tier)
		out[s.ID] = s
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// flakyStore wraps a PlayerStore: Apply fails while failApply > 0 (decremented per call),
// and with lostReply the apply is done but an error returned, as when the reply is lost.
// loadDelay delays every LoadActive; applyDelay every Apply (cut short by ctx).
type flakyStore struct {
	flux.PlayerStore
	mu         sync.Mutex
	failApply  int
	lostReply  bool
	loadDelay  time.Duration
	applyDelay time.Duration
	applies    int
	loads      int
}

var errInjected = errors.New("injected apply failure")

func (f *flakyStore) setLoadDelay(d time.Duration) { f.mu.Lock(); f.loadDelay = d; f.mu.Unlock() }

func (f *flakyStore) setApplyDelay(d time.Duration) { f.mu.Lock(); f.applyDelay = d; f.mu.Unlock() }

func (f *flakyStore) setFailApply(n int) { f.mu.Lock(); f.failApply = n; f.mu.Unlock() }

func (f *flakyStore) applyCount() int { f.mu.Lock(); defer f.mu.Unlock(); return f.applies }

func (f *flakyStore) loadCount() int { f.mu.Lock(); defer f.mu.Unlock(); return f.loads }

func (f *flakyStore) LoadActive(ctx context.Context, q flux.ActiveQuery, dst []flux.Player) ([]flux.Player, error) {
	f.mu.Lock()
	f.loads++
	d := f.loadDelay
	f.mu.Unlock()
	if err := sleepCtx(ctx, d); err != nil {
		return dst[:0], err
	}
	return f.PlayerStore.LoadActive(ctx, q, dst)
}

// sleepCtx waits d or until ctx ends (then returns ctx's error).
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

func (f *flakyStore) Apply(ctx context.Context, ticks []flux.PlayerWrite) (flux.ApplyResult, error) {
	f.mu.Lock()
	f.applies++
	fail := f.failApply > 0
	if fail {
		f.failApply--
	}
	lost := f.lostReply
	delay := f.applyDelay
	f.mu.Unlock()
	if err := sleepCtx(ctx, delay); err != nil {
		return flux.ApplyResult{}, err
	}
	if !fail {
		return f.PlayerStore.Apply(ctx, ticks)
	}
	if lost {
		if _, err := f.PlayerStore.Apply(ctx, ticks); err != nil {
			return flux.ApplyResult{}, err
		}
	}
	return flux.ApplyResult{}, errInjected
}
