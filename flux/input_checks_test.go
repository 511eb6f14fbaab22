package flux_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gamepersist/gamepersist/flux"
	"github.com/gamepersist/gamepersist/internal/testkit/testdb"
)

// assertFluxConfigError fails unless err is a *flux.ConfigError for field that matches
// flux.ErrInvalidConfig.
func assertFluxConfigError(t *testing.T, name string, err error, field string) {
	t.Helper()
	var ce *flux.ConfigError
	if !errors.As(err, &ce) || ce.Field != field || !errors.Is(err, flux.ErrInvalidConfig) {
		t.Errorf("%s: err = %v, want a *flux.ConfigError for %s", name, err, field)
		return
	}
	if ce.Reason == "" {
		t.Errorf("%s: ConfigError %+v has no Reason", name, ce)
	}
}

// TestGameTimeOutOfRangeRefused: a game time before 1970, after 2262 or in tick 0 is an
// error at Tick, Start and Step — it used to tick nobody with no error (negative tick
// numbers read as already applied, UnixNano overflowing).
func TestGameTimeOutOfRangeRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bad := map[string]time.Time{
		"zero time":      {},
		"1900":           time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC),
		"1969":           time.Date(1969, 12, 31, 23, 0, 0, 0, time.UTC),
		"2300":           time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC),
		"tick 0 (epoch)": time.Unix(30, 0),
		"just past 2262": flux.MaxGameTime.Add(time.Nanosecond),
	}
	newRunner := func() (*flux.Runner, *flux.MemoryPlayers) {
		players := flux.NewMemoryPlayers(flux.DefaultRules())
		players.Put(flux.Player{ID: "p", RoomID: "eld", Lucidity: 50, LastActive: rtNight, CreatedAt: rtNight.Add(-48 * time.Hour)})
		r, err := flux.NewRunner(players, memoryRooms(t, room("eld", "eldritch")), flux.RunnerConfig{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = r.Close() })
		return r, players
	}
	blocking, _ := newRunner()
	started, _ := newRunner()
	if err := started.Start(rtNight); err != nil {
		t.Fatal(err)
	}
	for name, at := range bad {
		if _, err := blocking.Tick(ctx, at); !errors.Is(err, flux.ErrInvalidGameTime) {
			t.Errorf("Tick(%s) = %v, want ErrInvalidGameTime", name, err)
		}
		if _, err := started.Step(at); !errors.Is(err, flux.ErrInvalidGameTime) {
			t.Errorf("Step(%s) = %v, want ErrInvalidGameTime", name, err)
		}
		fresh, _ := newRunner()
		if err := fresh.Start(at); !errors.Is(err, flux.ErrInvalidGameTime) {
			t.Errorf("Start(%s) = %v, want ErrInvalidGameTime", name, err)
		}
	}
	// The bounds themselves (past tick 0) are accepted.
	if _, err := blocking.Tick(ctx, flux.MaxGameTime); err != nil {
		t.Errorf("Tick(MaxGameTime) = %v", err)
	}
	if _, err := blocking.Tick(ctx, rtNight); err != nil {
		t.Errorf("Tick(a night of today) = %v", err)
	}
}

// TestRunnerConfigRefusalsAreConfigErrors: every refused RunnerConfig field is a
// *ConfigError naming it (MaxLag -1 used to be a bare ErrInvalidConfig), and a TickLength
// beyond MaxTickLength (200 years: every game time in tick 0) is refused.
func TestRunnerConfigRefusalsAreConfigErrors(t *testing.T) {
	t.Parallel()
	players := flux.NewMemoryPlayers(flux.DefaultRules())
	rooms := memoryRooms(t)
	badRules := flux.DefaultRules()
	badRules.MaxLucidity = badRules.MinLucidity
	for field, cfg := range map[string]flux.RunnerConfig{
		"RunnerConfig.MaxLag":            {MaxLag: -1},
		"RunnerConfig.MaxWriteBatch":     {MaxWriteBatch: flux.MaxWriteBatchLimit + 1},
		"RunnerConfig.TickLength":        {TickLength: 200 * 365 * 24 * time.Hour},
		"RunnerConfig.ApplyTimeout":      {ApplyTimeout: -time.Second},
		"RunnerConfig.RunnerID":          {RunnerID: "a\x00"},
		"RunnerConfig.Rules.MinLucidity": {Rules: &badRules},
	} {
		_, err := flux.NewRunner(players, rooms, cfg)
		assertFluxConfigError(t, field, err, field)
	}
	_, err := flux.NewRunner(players, rooms, flux.RunnerConfig{Rules: &badRules})
	if !errors.Is(err, flux.ErrInvalidRules) {
		t.Errorf("bad Rules: %v does not match ErrInvalidRules", err)
	}
}

// TestDeltaBeyondMaxRefusedAlike: both stores refuse AddLucidity and Apply deltas beyond
// ±MaxDelta with a *DeltaError and change nothing; MemoryPlayers used to overflow
// (math.MaxInt gave −100), PostgresPlayers to fail with an untyped encode error, and Apply
// with 2^32+5 added 5 in PostgreSQL (truncated to int32). MaxDelta itself saturates.
func TestDeltaBeyondMaxRefusedAlike(t *testing.T) {
	t.Parallel()
	player := flux.Player{ID: "p", RoomID: "eld", Lucidity: 50, LastActive: rtNight, CreatedAt: rtNight.Add(-48 * time.Hour)}
	type store interface {
		flux.PlayerStore
		flux.LucidityWriter
	}
	stores := map[string]func(t *testing.T) (store, func() int){
		"memory": func(t *testing.T) (store, func() int) {
			m := flux.NewMemoryPlayers(flux.DefaultRules())
			m.Put(player)
			return m, func() int {
				ps, err := m.LoadActive(context.Background(), flux.ActiveQuery{Now: rtNight, ActiveWithin: time.Hour}, nil)
				if err != nil || len(ps) != 1 {
					t.Fatalf("load: %v %v", ps, err)
				}
				return ps[0].Lucidity
			}
		},
		"postgres": func(t *testing.T) (store, func() int) {
			pool, _ := testdb.NewPool(t)
			s := postgresPlayers(t, pool, flux.PostgresConfig{})
			insertPlayers(t, pool, player)
			return s, func() int { return dbLucidity(t, pool)["p"].Lucidity }
		},
	}
	for name, mk := range stores {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s, lucidity := mk(t)
			for _, d := range []int{math.MaxInt, math.MinInt, flux.MaxDelta + 1, -flux.MaxDelta - 1, 1<<32 + 5} {
				_, err := s.AddLucidity(ctx, "p", d)
				var de *flux.DeltaError
				if !errors.As(err, &de) || de.Delta != d || de.PlayerID != "p" || !errors.Is(err, flux.ErrInvalidDelta) {
					t.Errorf("AddLucidity(%d) = %v, want a *DeltaError", d, err)
				}
				res, err := s.Apply(ctx, []flux.PlayerWrite{{PlayerID: "p", State: flux.TickState{Tick: 9, Writer: 1}, Delta: d, Ticks: 1}})
				if !errors.As(err, &de) || de.Delta != d || res.Written != 0 {
					t.Errorf("Apply(delta %d) = %+v, %v, want a *DeltaError and nothing written", d, res, err)
				}
			}
			if got := lucidity(); got != 50 {
				t.Fatalf("lucidity after refused deltas = %d, want 50 (unchanged)", got)
			}
			if got, err := s.AddLucidity(ctx, "p", flux.MaxDelta); err != nil || got != flux.DefaultRules().MaxLucidity {
				t.Errorf("AddLucidity(MaxDelta) = %d, %v, want the upper bound", got, err)
			}
			if got, err := s.AddLucidity(ctx, "p", -flux.MaxDelta); err != nil || got != flux.DefaultRules().MinLucidity {
				t.Errorf("AddLucidity(-MaxDelta) = %d, %v, want the lower bound", got, err)
			}
		})
	}
}

// TestScopeWithoutScopeColumnRefused: a Runner with a Scope over a PostgresPlayers without
// ScopeColumn is refused by NewRunner (it used to evaluate every player and write none,
// silently), as is LoadActive asked for a scope by any other caller.
func TestScopeWithoutScopeColumnRefused(t *testing.T) {
	t.Parallel()
	pool, _ := testdb.NewPool(t)
	rooms := memoryRooms(t)
	plain := postgresPlayers(t, pool, flux.PostgresConfig{})
	_, err := flux.NewRunner(plain, rooms, flux.RunnerConfig{Scope: "s1"})
	assertFluxConfigError(t, "Scope without ScopeColumn", err, "RunnerConfig.Scope")
	// A game's wrapper embedding the store is refused too.
	wrapped := struct{ *flux.PostgresPlayers }{plain}
	_, err = flux.NewRunner(wrapped, rooms, flux.RunnerConfig{Scope: "s1"})
	assertFluxConfigError(t, "wrapped store", err, "RunnerConfig.Scope")
	_, err = plain.LoadActive(context.Background(), flux.ActiveQuery{Now: rtNight, ActiveWithin: time.Hour, Scope: "s1"}, nil)
	assertFluxConfigError(t, "LoadActive with a Scope", err, "PostgresConfig.ScopeColumn")

	scoped, err := flux.NewPostgresPlayers(pool, flux.PostgresConfig{ScopeColumn: "server"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := flux.NewRunner(scoped, rooms, flux.RunnerConfig{Scope: "s1"})
	if err != nil {
		t.Fatalf("Scope with ScopeColumn refused: %v", err)
	}
	_ = r.Close()
	r, err = flux.NewRunner(plain, rooms, flux.RunnerConfig{})
	if err != nil {
		t.Fatalf("no Scope refused: %v", err)
	}
	_ = r.Close()
}

// TestPostgresConfigRefusedUpFront: configurations that used to be accepted and then fail
// with raw SQL errors are *ConfigErrors at NewPostgresPlayers; a 50-byte players table
// of the game's own (ExternalPlayerTables) is accepted — it used to be refused because of an
// index name flux never creates there.
func TestPostgresConfigRefusedUpFront(t *testing.T) {
	t.Parallel()
	pool, _ := testdb.NewPool(t)
	for name, c := range map[string]struct {
		cfg   flux.PostgresConfig
		field string
	}{
		"Filter invalid UTF-8":    {flux.PostgresConfig{Filter: "p.name <> '\xff'"}, "PostgresConfig.Filter"},
		"Filter NUL":              {flux.PostgresConfig{Filter: "true\x00"}, "PostgresConfig.Filter"},
		"audit column twice":      {flux.PostgresConfig{Audit: true, AuditTable: "log", AuditColumns: flux.AuditColumns{PlayerID: "who", Tick: "n", Ticks: "n"}}, "PostgresConfig.AuditColumns"},
		"state table = players":   {flux.PostgresConfig{StateTable: "flux_players"}, "PostgresConfig.StateTable"},
		"state table = lucidity":  {flux.PostgresConfig{LucidityTable: "luc", StateTable: "luc"}, "PostgresConfig.StateTable"},
		"audit table = state":     {flux.PostgresConfig{Audit: true, AuditTable: "flux_state"}, "PostgresConfig.AuditTable"},
		"own 50-byte table index": {flux.PostgresConfig{PlayersTable: strings.Repeat("p", 50)}, "PostgresConfig.PlayersTable (index name)"},
		"MaxLucidity":             {flux.PostgresConfig{Rules: &flux.Rules{}}, "PostgresConfig.Rules.MinLucidity"},
	} {
		_, err := flux.NewPostgresPlayers(pool, c.cfg)
		assertFluxConfigError(t, name, err, c.field)
	}
	long := strings.Repeat("p", 50)
	if _, err := pool.Exec(context.Background(), `CREATE TABLE `+long+` (id text PRIMARY KEY, room_id text, lucidity int, tier text, last_active timestamptz, created_at timestamptz)`); err != nil {
		t.Fatal(err)
	}
	s, err := flux.NewPostgresPlayers(pool, flux.PostgresConfig{PlayersTable: long, ExternalPlayerTables: true})
	if err != nil {
		t.Fatalf("50-byte external players table refused: %v", err)
	}
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatalf("Migrate with a 50-byte external players table: %v", err)
	}
}

// TestStoreErrorsKeepNoPassword: an error of PostgresPlayers over an unreachable database
// does not let errors.As reach the *pgconn.ConnectError (its Config holds the password)
// and does not print the password; it used to, while roomstore's errors did not.
func TestStoreErrorsKeepNoPassword(t *testing.T) {
	t.Parallel()
	const secret = "flux-s3cr3t-pw"
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, "postgres://game:"+secret+"@127.0.0.1:1/world?connect_timeout=1")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	s, err := flux.NewPostgresPlayers(pool, flux.PostgresConfig{})
	if err != nil {
		t.Fatal(err)
	}
	errs := map[string]error{}
	_, errs["LoadActive"] = s.LoadActive(ctx, flux.ActiveQuery{Now: rtNight, ActiveWithin: time.Hour}, nil)
	_, errs["Apply"] = s.Apply(ctx, []flux.PlayerWrite{{PlayerID: "p", State: flux.TickState{Tick: 1, Writer: 1}}})
	_, errs["AddLucidity"] = s.AddLucidity(ctx, "p", 1)
	_, errs["UpdatePresence"] = s.UpdatePresence(ctx, []flux.Presence{{PlayerID: "p", RoomID: "r", LastActive: rtNight}})
	errs["Migrate"] = s.Migrate(ctx)
	for name, err := range errs {
		if err == nil {
			t.Errorf("%s: nil error against port 1", name)
			continue
		}
		var ce *pgconn.ConnectError
		if errors.As(err, &ce) {
			t.Errorf("%s: errors.As reaches the *pgconn.ConnectError (password %q in its Config)", name, ce.Config.Password)
		}
		for _, verb := range []string{"%v", "%+v", "%#v"} {
			if strings.Contains(fmt.Sprintf(verb, err), secret) {
				t.Errorf("%s: %s prints the password", name, verb)
			}
		}
	}
}
