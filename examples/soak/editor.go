package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gamepersist/gamepersist/roomstore"
)

// sqlStaleBound is the bound on a stale read of a room rewritten in plain SQL: the change
// notice's delivery or, when a server's listener lost its connection, the detection of
// that gap (within 2×listenerHealthCheck) and the full invalidation that follows, and
// while the listener cannot listen again (backing off up to 5 s, or connecting), its
// emptying of the cache once per listenerHealthCheck. Without the listeners only the
// caches' refresh-ahead and TTL would end such staleness (measured: up to 7.5 s with
// cacheTTL 10 s), so this check fails.
const sqlStaleBound = 5 * time.Second

// listenerHealthCheck is the servers' ChangeListenerConfig.HealthCheck: a listening
// connection silenced by a fault is found out within twice this.
const listenerHealthCheck = time.Second

// editInSQL reports whether the world editor writes minute k's room rewrites in plain SQL,
// as a designer's own tool would (odd minutes), rather than through a server's cache:
// then no server's cache and no NATS notice knows of the write, and only the change
// trigger and each server's roomstore.ChangeListener can make the caches follow it.
func editInSQL(k int) bool { return k%2 == 1 }

// rewriteRoomInSQL writes room's editable fields with one UPDATE on the admin pool (never
// faulted) and returns the version it stored. A retry after a lost reply may bump the
// version twice; awaitFresh waits for that version or later, so that is harmless.
func (r *soak) rewriteRoomInSQL(ctx context.Context, room roomstore.Room) (int64, error) {
	var version int64
	err := retry(ctx, 30*time.Second, func(ctx context.Context) error {
		return r.e.admin.QueryRow(ctx, `UPDATE `+pgx.Identifier{r.e.schema, roomstore.DefaultTable}.Sanitize()+`
SET name = $2, description = $3, plane = $4, zone = $5, sub_zone = $6, environment = $7,
    version = version + 1, updated_at = now()
WHERE id = $1 RETURNING version`,
			room.ID, room.Name, room.Description, room.Plane, room.Zone, room.SubZone, room.Environment).Scan(&version)
	})
	if err != nil {
		return 0, fmt.Errorf("soak: room rewrite in SQL: %w", err)
	}
	r.sqlRewrites++
	return version, nil
}
