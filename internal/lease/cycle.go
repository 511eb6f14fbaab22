package lease

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

// statements are the Manager's SQL, rendered once for its schema.
type statements struct {
	heartbeat, sweepMembers, renew, liveMembers, release, releaseAll, leave, acquire string
}

// Durations travel as microseconds: $n * interval '1 microsecond'.
const perMicrosecond = " * interval '1 microsecond'"

func newStatements(t tableNames) statements {
	// lockMine locks this member's rows among ($2 shards, $3 epochs) in shard order. FOR NO
	// KEY UPDATE does not conflict with a writer's fence (FOR KEY SHARE): a renewal or a
	// release never waits for a write in flight.
	lockMine := func(extra string) string {
		return `SELECT l.shard FROM ` + t.Leases + ` l
  JOIN unnest($2::integer[], $3::bigint[]) AS h(shard, epoch) ON l.shard = h.shard AND l.epoch = h.epoch
  WHERE l.owner = $1` + extra + `
  ORDER BY l.shard FOR NO KEY UPDATE OF l`
	}
	return statements{
		// The member row is taken over only from the same incarnation or once expired.
		heartbeat: `INSERT INTO ` + t.Members + ` AS m (member_id, incarnation, shards, joined_at, expires_at)
VALUES ($1, $2, $3, now(), now() + $4` + perMicrosecond + `)
ON CONFLICT (member_id) DO UPDATE
SET incarnation = EXCLUDED.incarnation, shards = EXCLUDED.shards,
    joined_at = CASE WHEN m.incarnation = EXCLUDED.incarnation THEN m.joined_at ELSE now() END,
    expires_at = EXCLUDED.expires_at
WHERE m.incarnation = EXCLUDED.incarnation OR m.expires_at <= now()
RETURNING member_id`,
		sweepMembers: `DELETE FROM ` + t.Members + ` WHERE expires_at < now() - $1` + perMicrosecond,
		renew: `WITH mine AS (` + lockMine(" AND l.expires_at > now()") + `)
UPDATE ` + t.Leases + ` l SET expires_at = now() + $4` + perMicrosecond + `
FROM mine WHERE l.shard = mine.shard
RETURNING l.shard, l.epoch`,
		liveMembers: `SELECT member_id, shards FROM ` + t.Members + ` WHERE expires_at > now() ORDER BY joined_at, member_id`,
		release: `WITH mine AS (` + lockMine("") + `)
UPDATE ` + t.Leases + ` l SET owner = NULL, expires_at = now()
FROM mine WHERE l.shard = mine.shard`,
		// Only while this incarnation holds the member row: a Manager refused with
		// ErrMemberIDInUse must not release the other member's leases.
		releaseAll: `WITH mine AS (SELECT shard FROM ` + t.Leases + ` WHERE owner = $1
    AND EXISTS (SELECT 1 FROM ` + t.Members + ` WHERE member_id = $1 AND incarnation = $2)
    ORDER BY shard FOR NO KEY UPDATE)
UPDATE ` + t.Leases + ` l SET owner = NULL, expires_at = now()
FROM mine WHERE l.shard = mine.shard`,
		leave: `DELETE FROM ` + t.Members + ` WHERE member_id = $1 AND incarnation = $2`,
		// River's leader election, one row per shard: a free, released or expired shard is
		// taken, an existing row at epoch+1 and a missing one inserted at epoch 1; a live
		// lease is left alone. The existing rows are locked FOR UPDATE, in ascending order,
		// which is what waits for the writers holding the old epoch's fence (FOR KEY SHARE;
		// renewals and releases, FOR NO KEY UPDATE, do not wait for them); once locked, each
		// row is checked again, so a lease another member took meanwhile is skipped, as is a
		// row another member inserted first. Candidates start at $4, so members that
		// acquire together contend less.
		acquire: `-- lease: acquire
WITH candidates AS (
    SELECT g.s, x.shard IS NULL AS missing
    FROM generate_series(0, $3::integer - 1) AS g(s)
    LEFT JOIN ` + t.Leases + ` x ON x.shard = g.s
    WHERE x.shard IS NULL OR x.owner IS NULL OR x.expires_at <= now()
    ORDER BY (g.s + $4::integer) % $3::integer
    LIMIT $5
), locked AS (
    SELECT l.shard FROM ` + t.Leases + ` l JOIN candidates c ON c.s = l.shard
    WHERE l.owner IS NULL OR l.expires_at <= now()
    ORDER BY l.shard
    FOR UPDATE OF l
), taken AS (
    UPDATE ` + t.Leases + ` l
    SET owner = $1, epoch = l.epoch + 1, acquired_at = now(), expires_at = now() + $2` + perMicrosecond + `
    FROM locked WHERE l.shard = locked.shard AND (l.owner IS NULL OR l.expires_at <= now())
    RETURNING l.shard, l.epoch
), inserted AS (
    INSERT INTO ` + t.Leases + ` (shard, owner, epoch, acquired_at, expires_at)
    SELECT c.s, $1, 1, now(), now() + $2` + perMicrosecond + ` FROM candidates c WHERE c.missing ORDER BY c.s
    ON CONFLICT (shard) DO NOTHING
    RETURNING shard, epoch
)
SELECT shard, epoch FROM taken UNION ALL SELECT shard, epoch FROM inserted`,
	}
}

// cycle is one renewal: heartbeat, renew the held leases, read the live members (one
// round trip, one implicit transaction), then give up surplus or take free shards up to
// the fair share (a second round trip when needed). It updates held and stats.
func (m *Manager) cycle(ctx context.Context) (err error) {
	began := time.Now()
	defer func() { m.recordCycle(began, err) }()

	held, lapsed := m.heldNow(began)
	shards, epochs := shardsAndEpochs(held)
	ttl := m.cfg.TTL.Microseconds()

	b := &pgx.Batch{}
	b.Queue(m.sql.heartbeat, m.cfg.MemberID, m.incarnation, m.cfg.Shards, ttl)
	b.Queue(m.sql.sweepMembers, ttl)
	b.Queue(m.sql.renew, m.cfg.MemberID, shards, epochs, ttl)
	b.Queue(m.sql.liveMembers)
	renewed, members, err := m.readRenewal(ctx, b)
	if err != nil {
		// Held leases stay until their local deadline: a later cycle may still renew them.
		return err
	}
	deadline := began.Add(m.cfg.TTL)
	next := make(map[int]holding, len(renewed))
	for shard, epoch := range renewed {
		next[shard] = holding{epoch: epoch, deadline: deadline}
	}
	lost := lapsed
	for shard := range held {
		if _, ok := next[shard]; !ok {
			lost++
		}
	}

	target, rank, mismatch := m.fairShare(members)
	var released int
	switch {
	case mismatch != nil:
		// Keep what was renewed, take nothing more.
		err = mismatch
	case len(next) > target:
		released, err = m.giveUp(ctx, next, len(next)-target)
	case len(next) < target:
		err = m.take(ctx, next, target-len(next), rank*m.cfg.Shards/len(members))
	}
	m.setHeld(next)
	m.mu.Lock()
	m.stats.Lost += uint64(lost)
	m.stats.Released += uint64(released)
	m.stats.Target = target
	m.stats.Members = len(members)
	m.mu.Unlock()
	return err
}

// member is one live row of the member table.
type member struct {
	id     string
	shards int
}

// readRenewal sends the renewal batch and reads the renewed leases and the live members.
func (m *Manager) readRenewal(ctx context.Context, b *pgx.Batch) (map[int]uint64, []member, error) {
	br := m.db.SendBatch(ctx, b)
	defer func() { _ = br.Close() }()
	var self string
	if err := br.QueryRow().Scan(&self); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, nil, fmt.Errorf("%w: %q", ErrMemberIDInUse, m.cfg.MemberID)
		}
		return nil, nil, fmt.Errorf("heartbeat: %w", err)
	}
	if _, err := br.Exec(); err != nil {
		return nil, nil, fmt.Errorf("sweep expired members: %w", err)
	}
	renewed, err := scanLeases(br)
	if err != nil {
		return nil, nil, fmt.Errorf("renew: %w", err)
	}
	rows, err := br.Query()
	if err != nil {
		return nil, nil, fmt.Errorf("live members: %w", err)
	}
	members, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (member, error) {
		var mb member
		err := r.Scan(&mb.id, &mb.shards)
		return mb, err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("live members: %w", err)
	}
	if err := br.Close(); err != nil {
		return nil, nil, fmt.Errorf("renewal: %w", err)
	}
	return renewed, members, nil
}

// scanLeases reads (shard, epoch) rows of one batch result.
func scanLeases(br pgx.BatchResults) (map[int]uint64, error) {
	rows, err := br.Query()
	if err != nil {
		return nil, err
	}
	return collectLeases(rows)
}

func collectLeases(rows pgx.Rows) (map[int]uint64, error) {
	defer rows.Close()
	out := map[int]uint64{}
	for rows.Next() {
		var (
			shard int
			epoch int64
		)
		if err := rows.Scan(&shard, &epoch); err != nil {
			return nil, err
		}
		out[shard] = uint64(epoch)
	}
	return out, rows.Err()
}

// fairShare returns this member's target and its rank in join order: the target is
// Shards/len(members), plus one for the first Shards%len(members) ranks, so the targets
// of all live members add up to Shards exactly. It reports ErrShardCountMismatch when a
// live member disagrees on Shards.
func (m *Manager) fairShare(members []member) (target, rank int, err error) {
	for _, mb := range members {
		if mb.shards != m.cfg.Shards {
			return 0, 0, fmt.Errorf("%w: member %q has %d, this one %d", ErrShardCountMismatch, mb.id, mb.shards, m.cfg.Shards)
		}
	}
	rank = slices.IndexFunc(members, func(mb member) bool { return mb.id == m.cfg.MemberID })
	if rank < 0 { // cannot happen: the heartbeat is in the same transaction
		return 0, 0, nil
	}
	n := len(members)
	target = m.cfg.Shards / n
	if rank < m.cfg.Shards%n {
		target++
	}
	return target, rank, nil
}

// giveUp releases the count highest-numbered shards of next: they leave next (and so
// Owned) before the release is sent, so the caller stops using them first.
func (m *Manager) giveUp(ctx context.Context, next map[int]holding, count int) (int, error) {
	all := slices.Sorted(func(yield func(int) bool) {
		for s := range next {
			if !yield(s) {
				return
			}
		}
	})
	surplus := all[len(all)-count:]
	gone := make(map[int]holding, count)
	for _, s := range surplus {
		gone[s] = next[s]
		delete(next, s)
	}
	m.setHeld(maps.Clone(next))
	shards, epochs := shardsAndEpochs(gone)
	tag, err := m.db.Exec(ctx, m.sql.release, m.cfg.MemberID, shards, epochs)
	if err != nil {
		return 0, fmt.Errorf("release surplus: %w", err)
	}
	m.log.Debug().Ints32("shards", shards).Msg("lease: surplus released")
	return int(tag.RowsAffected()), nil
}

// take acquires up to want free or expired shards into next, looking from shard offset
// on (members start at different offsets, so that they contend less).
func (m *Manager) take(ctx context.Context, next map[int]holding, want, offset int) error {
	sent := time.Now()
	rows, err := m.db.Query(ctx, m.sql.acquire, m.cfg.MemberID, m.cfg.TTL.Microseconds(), m.cfg.Shards, offset, want)
	if err != nil {
		return fmt.Errorf("acquire: %w", err)
	}
	got, err := collectLeases(rows)
	if err != nil {
		return fmt.Errorf("acquire: %w", err)
	}
	deadline := sent.Add(m.cfg.TTL)
	for shard, epoch := range got {
		next[shard] = holding{epoch: epoch, deadline: deadline}
	}
	if len(got) > 0 {
		m.mu.Lock()
		m.stats.Acquired += uint64(len(got))
		m.mu.Unlock()
		m.log.Debug().Int("acquired", len(got)).Msg("lease: shards acquired")
	}
	return nil
}

// releaseAll releases every lease of this member and deletes its member row, in one
// implicit transaction; it returns the leases released.
func (m *Manager) releaseAll(ctx context.Context) (int, error) {
	b := &pgx.Batch{}
	b.Queue(m.sql.releaseAll, m.cfg.MemberID, m.incarnation)
	b.Queue(m.sql.leave, m.cfg.MemberID, m.incarnation)
	br := m.db.SendBatch(ctx, b)
	defer func() { _ = br.Close() }()
	tag, err := br.Exec()
	if err != nil {
		return 0, err
	}
	if _, err := br.Exec(); err != nil {
		return 0, err
	}
	return int(tag.RowsAffected()), br.Close()
}

func (m *Manager) recordCycle(began time.Time, err error) {
	d := time.Since(began)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		m.stats.CycleErrors++
		return
	}
	m.stats.Cycles++
	m.stats.LastCycle = d
	m.stats.MaxCycle = max(m.stats.MaxCycle, d)
}

// shardsAndEpochs returns held as two parallel arrays, shards ascending.
func shardsAndEpochs(held map[int]holding) ([]int32, []int64) {
	shards := make([]int32, 0, len(held))
	for s := range held {
		shards = append(shards, int32(s)) //nolint:gosec // shards < MaxShards
	}
	slices.Sort(shards)
	epochs := make([]int64, len(shards))
	for i, s := range shards {
		epochs[i] = int64(held[int(s)].epoch) //nolint:gosec // epochs come from a bigint column
	}
	return shards, epochs
}
