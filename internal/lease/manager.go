package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/rs/zerolog"

	"github.com/gamepersist/gamepersist/internal/lifecycle"
)

// DB is what a Manager needs of the caller's database handle; *pgxpool.Pool satisfies it.
// The Manager never closes it.
type DB interface {
	Begin(ctx context.Context) (pgx.Tx, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// Manager is one member of a lease group: it heartbeats, holds a fair share of the shards
// under leases on PostgreSQL, renews them every RenewEvery and lets go of surplus (see
// doc.go for the protocol). Its methods are safe for concurrent use.
type Manager struct {
	db          DB
	cfg         Config
	incarnation string // random per Manager: tells this member row from another process's
	log         zerolog.Logger
	sql         statements

	changes chan struct{} // capacity 1: a pending "ownership changed" signal

	startMu sync.Mutex         // serializes Start with Close's stop of the loop
	started bool               // guarded by startMu: the loop runs (or ran)
	touched bool               // guarded by startMu: a cycle ran, so Close must release
	cancel  context.CancelFunc // guarded by startMu: stops the loop
	loop    lifecycle.Group    // the renewal loop, one goroutine
	down    lifecycle.Shutdown

	mu    sync.Mutex      // guards held and stats
	held  map[int]holding // written by the cycle (Start's, then the loop's) and Close; read by Owned
	stats Stats           // written by the cycle and Close; read by Stats
}

// holding is one lease this member believes it holds.
type holding struct {
	epoch    uint64
	deadline time.Time // local monotonic bound: the statement's send time + TTL
}

// New validates cfg (after WithDefaults; a missing MemberID is drawn) and returns a
// Manager that has done no I/O yet: call Migrate once, then Start or Run. It returns an
// error wrapping ErrInvalidConfig for a bad Config or a nil db.
func New(db DB, cfg Config) (*Manager, error) {
	if db == nil {
		return nil, &ConfigError{Field: "db", Reason: "must not be nil"}
	}
	cfg = cfg.WithDefaults()
	incarnation, err := randomHex(8)
	if err != nil {
		return nil, fmt.Errorf("lease: draw incarnation: %w", err)
	}
	if cfg.MemberID == "" {
		host, _ := os.Hostname() // best effort: the random suffix keeps ids unique
		suffix, err := randomHex(6)
		if err != nil {
			return nil, fmt.Errorf("lease: draw member id: %w", err)
		}
		cfg.MemberID = host + "-" + suffix
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Manager{
		db:          db,
		cfg:         cfg,
		incarnation: incarnation,
		log:         cfg.Logger.With().Str("component", "lease").Str("member_id", cfg.MemberID).Logger(),
		sql:         newStatements(namesIn(cfg.Schema)),
		changes:     make(chan struct{}, 1),
		held:        map[int]holding{},
	}, nil
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// MemberID returns this member's id, the value FenceSQL's member expression must carry.
func (m *Manager) MemberID() string { return m.cfg.MemberID }

// Shards returns the configured number of shards (ShardOf's second argument).
func (m *Manager) Shards() int { return m.cfg.Shards }

// FenceSQL returns FenceSQL for this Manager's schema (see the package function).
func (m *Manager) FenceSQL(shard, member, epoch string) string {
	return FenceSQL(m.cfg.Schema, shard, member, epoch)
}

// FencedShardsSQL returns FencedShardsSQL for this Manager's schema (see the package
// function).
func (m *Manager) FencedShardsSQL(member, shards, epochs string) string {
	return FencedShardsSQL(m.cfg.Schema, member, shards, epochs)
}

// Migrate creates the lease tables (and Config.Schema) when missing, or brings them to
// the latest version: each step once, under internal/migrate's advisory lock, however
// many processes call it at once. With nothing to do it costs one read and no DDL. It
// returns an error wrapping ErrInvalidConfig when no schema is set or found, and
// ErrClosed once Close has begun.
func (m *Manager) Migrate(ctx context.Context) error {
	if m.down.Begun() {
		return ErrClosed
	}
	return migrateTables(ctx, m.db, m.cfg.Schema)
}

// Start registers the member, runs the first renewal cycle in the caller's goroutine (so
// Owned already holds the free shards of its share when Start returns; shards that other
// members must first let go of follow within two renewal periods) and starts the renewal
// loop, one goroutine that Close stops. It costs one round trip, two when it takes
// shards, bounded by ctx and TTL. A second call returns nil and does nothing; a call once
// Close began returns ErrClosed. On error nothing runs; Close releases whatever the failed
// cycle took.
func (m *Manager) Start(ctx context.Context) error {
	m.startMu.Lock()
	defer m.startMu.Unlock()
	if m.down.Begun() {
		return ErrClosed
	}
	if m.started {
		return nil
	}
	m.touched = true
	cctx, cancel := context.WithTimeout(ctx, m.cfg.TTL)
	err := m.cycle(cctx)
	cancel()
	if err != nil {
		return fmt.Errorf("lease: start: %w", err)
	}
	loopCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	m.cancel = stop
	m.started = true
	m.loop.Go(func() { m.renewLoop(loopCtx) })
	m.log.Info().Int("shards", m.cfg.Shards).Dur("ttl", m.cfg.TTL).Msg("lease: member started")
	return nil
}

// Run starts the Manager (see Start) and blocks until ctx ends or Close is called; then
// it closes the Manager and returns Close's outcome. When Start fails, Run closes the
// Manager too (releasing whatever the failed cycle took) and returns both outcomes.
func (m *Manager) Run(ctx context.Context) error {
	if err := m.Start(ctx); err != nil {
		return errors.Join(err, m.Close())
	}
	select {
	case <-ctx.Done():
	case <-m.down.Done():
	}
	return m.Close()
}

// Close stops the renewal loop, then releases every lease this member holds and deletes
// its member row in one round trip bounded by CloseTimeout, so that the other members
// take the shards at their next cycle. Owned is empty from then on. The first call does
// the work and returns its error; later calls wait for it and return the same. The
// caller's pool is not closed.
func (m *Manager) Close() error {
	return m.down.Do(func() error {
		touched := m.stopLoop()
		m.setHeld(map[int]holding{})
		if !touched {
			return nil
		}
		ctx, cancel := context.WithTimeout(context.Background(), m.cfg.CloseTimeout)
		defer cancel()
		released, err := m.releaseAll(ctx)
		if err != nil {
			m.log.Error().Err(err).Msg("lease: release on close failed; the leases expire after the TTL")
			return fmt.Errorf("lease: close: release: %w", err)
		}
		m.mu.Lock()
		m.stats.Released += uint64(released)
		m.mu.Unlock()
		m.log.Info().Int("released", released).Msg("lease: member closed")
		return nil
	})
}

// stopLoop stops the renewal loop and waits for it; it reports whether a cycle ever ran.
func (m *Manager) stopLoop() bool {
	m.startMu.Lock()
	defer m.startMu.Unlock()
	if m.cancel != nil {
		m.cancel()
	}
	m.loop.Wait()
	return m.touched
}

func (m *Manager) renewLoop(ctx context.Context) {
	ticker := time.NewTicker(m.cfg.RenewEvery)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		cctx, cancel := context.WithTimeout(ctx, m.cfg.TTL)
		err := m.cycle(cctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			m.log.Warn().Err(err).Msg("lease: renewal cycle failed; retrying at the next period")
		}
	}
}

// Owned returns a snapshot of the shards this member holds, shard → epoch, leaving out
// any lease whose local deadline (the renewing statement's send time + TTL, never later
// than the database's expires_at) has passed. It allocates one map; it does no I/O.
func (m *Manager) Owned() map[int]uint64 {
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[int]uint64, len(m.held))
	for shard, h := range m.held {
		if now.Before(h.deadline) {
			out[shard] = h.epoch
		}
	}
	return out
}

// Changes returns a channel that receives a value after the owned set or an epoch
// changed. Signals coalesce (capacity 1): on receipt, call Owned. A lease that lapses
// because renewals failed is signalled at the next cycle; Owned drops it at once. The
// channel is never closed: select on it beside your own context.
func (m *Manager) Changes() <-chan struct{} { return m.changes }

// Stats returns a snapshot of the Manager's counters. It does no I/O.
func (m *Manager) Stats() Stats {
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.stats
	s.Owned = 0
	for _, h := range m.held {
		if now.Before(h.deadline) {
			s.Owned++
		}
	}
	return s
}

// setHeld replaces the held set and signals Changes when it differs from the last one.
func (m *Manager) setHeld(next map[int]holding) {
	m.mu.Lock()
	changed := len(next) != len(m.held)
	for shard, h := range next {
		if old, ok := m.held[shard]; !ok || old.epoch != h.epoch {
			changed = true
		}
	}
	m.held = next
	m.mu.Unlock()
	if changed {
		select {
		case m.changes <- struct{}{}:
		default:
		}
	}
}

// heldNow returns a copy of the held set without the leases past their local deadline,
// and how many it left out.
func (m *Manager) heldNow(now time.Time) (map[int]holding, int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := maps.Clone(m.held)
	maps.DeleteFunc(out, func(_ int, h holding) bool { return !now.Before(h.deadline) })
	return out, len(m.held) - len(out)
}
