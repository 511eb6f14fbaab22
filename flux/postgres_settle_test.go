package flux_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gamepersist/gamepersist/flux"
	"github.com/gamepersist/gamepersist/internal/testkit/faultproxy"
	"github.com/gamepersist/gamepersist/internal/testkit/testdb"
)

// TestApplyLeavesNoZombie: an Apply whose connection is cut while its statement waits in the
// server (here: for a row lock the test holds) must not commit after Apply returned its
// error — else the next tick's load misses a write that lands later, and a minute is lost
// or evaluated twice over. Apply settles an unknown outcome before returning: it
// terminates the cut connection's server process and waits until it is gone.
func TestApplyLeavesNoZombie(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := startStuckApply(t, "zombie-apply")
	direct, proxy, applied, tx := st.direct, st.proxy, st.applied, st.lock
	if err := proxy.CloseConnections(); err != nil {
		t.Fatal(err)
	}
	if err := <-applied; err == nil {
		t.Fatal("Apply through a cut connection returned nil")
	}
	if err := tx.Commit(ctx); err != nil { // the lock goes: a zombie statement would commit now
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	var tick int64
	if err := direct.QueryRow(ctx, `SELECT coalesce((SELECT tick FROM flux_state WHERE player_id = 'eld-1'), 0)`).Scan(&tick); err != nil {
		t.Fatal(err)
	}
	if tick != 0 {
		t.Fatalf("the Apply that returned an error committed afterwards (stored tick %d): a zombie write", tick)
	}
	if got := dbLucidity(t, direct)["eld-1"].Lucidity; got != 100 {
		t.Fatalf("eld-1 lucidity %d after a failed Apply, want 100", got)
	}
}

// stuckApply is an Apply through a fault proxy whose statement waits inside the server for
// a row lock the test holds: the set-up of the settle tests.
type stuckApply struct {
	direct  *pgxpool.Pool // the test's own connection, never faulted
	store   *flux.PostgresPlayers
	proxy   *faultproxy.Proxy
	lock    pgx.Tx     // holds eld-1's lucidity row
	applied chan error // Apply's result
}

// startStuckApply migrates a schema with the scenario players, holds eld-1's row, starts an
// Apply of one write for eld-1 through a proxy (application name app) and returns once
// that statement is waiting for the lock inside the server.
func startStuckApply(t *testing.T, app string) *stuckApply {
	t.Helper()
	ctx := context.Background()
	cs, _ := testdb.NewSchema(t)
	u, err := url.Parse(cs)
	if err != nil {
		t.Fatal(err)
	}
	direct, err := pgxpool.New(ctx, cs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(direct.Close)
	postgresPlayers(t, direct, flux.PostgresConfig{}) // migrates
	insertPlayers(t, direct, scenarioPlayers()...)
	proxy := faultproxy.Start(t, u.Host)
	viaProxy, err := testdb.WithParams(faultproxy.RewriteURL(cs, proxy.Addr()), map[string]string{"application_name": app})
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, viaProxy)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s := &stuckApply{direct: direct, store: postgresPlayers(t, pool, flux.PostgresConfig{}), proxy: proxy, applied: make(chan error, 1)}
	if s.lock, err = direct.Begin(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.lock.Rollback(ctx) })
	if _, err := s.lock.Exec(ctx, `SELECT 1 FROM flux_players WHERE id = 'eld-1' FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	go func() {
		actx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		_, err := s.store.Apply(actx, []flux.PlayerWrite{{PlayerID: "eld-1", Delta: -3, Ticks: 1, State: flux.TickState{Tick: 7, Writer: 42}}})
		s.applied <- err
	}()
	waitFor(t, func() bool {
		var n int
		_ = direct.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'`, app).Scan(&n)
		return n == 1
	})
	return s
}

// waitFor polls cond every 5 ms for up to 10 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestLoadWaitsForABrokenApplyToSettle: when the database cannot be reached to settle a
// broken Apply, LoadActive refuses (an error, the tick is skipped) rather than load a
// state the broken statement may still change; once the database answers it settles and
// loads the final outcome.
func TestLoadWaitsForABrokenApplyToSettle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := startStuckApply(t, "unsettled-apply")
	direct, store, proxy, applied, tx := st.direct, st.store, st.proxy, st.applied, st.lock
	proxy.Disable() // the network is cut: the statement waits on in the server, unreachable
	if err := <-applied; err == nil {
		t.Fatal("Apply through a cut network returned nil")
	}
	q := flux.ActiveQueryFor(flux.DefaultRules(), rtNight)
	if _, err := store.LoadActive(ctx, q, nil); err == nil {
		t.Fatal("LoadActive ran while a broken apply could still land")
	}
	if err := tx.Commit(ctx); err != nil { // the broken statement gets its lock and commits
		t.Fatal(err)
	}
	if err := proxy.Enable(); err != nil {
		t.Fatal(err)
	}
	players, err := store.LoadActive(ctx, q, nil)
	if err != nil {
		t.Fatalf("LoadActive once the database answers: %v", err)
	}
	var loaded flux.Player
	for _, p := range players {
		if p.ID == "eld-1" {
			loaded = p
		}
	}
	time.Sleep(300 * time.Millisecond) // nothing of the broken apply may land after the load
	var tick int64
	if err := direct.QueryRow(ctx, `SELECT coalesce((SELECT tick FROM flux_state WHERE player_id = 'eld-1'), 0)`).Scan(&tick); err != nil {
		t.Fatal(err)
	}
	if got := dbLucidity(t, direct)["eld-1"].Lucidity; tick != loaded.Flux.Tick || got != loaded.Lucidity {
		t.Fatalf("eld-1 loaded at tick %d lucidity %d, stored now tick %d lucidity %d: the broken apply landed after the load",
			loaded.Flux.Tick, loaded.Lucidity, tick, got)
	}
}
