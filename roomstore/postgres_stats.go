package roomstore

import "sync/atomic"

// PostgresStats is a snapshot of a Postgres store's counters and of its pool.
type PostgresStats struct {
	// RoundTrips counts statements sent (a chunked GetRooms batch counts once).
	RoundTrips int64
	// RoomsRead counts rooms returned by reads.
	RoomsRead int64
	// Writes counts successful puts and deletes.
	Writes int64
	// Errors counts round trips that failed (not-found results are not errors).
	Errors int64
	// TotalConns, IdleConns and AcquiredConns are the pool's connections: all, idle, and
	// in use. MaxConns is the pool's limit. For NewPostgres they describe the caller's
	// pool, shared with whatever else uses it.
	TotalConns    int32
	IdleConns     int32
	AcquiredConns int32
	MaxConns      int32
}

type postgresCounters struct {
	roundTrips, roomsRead, writes, errors atomic.Int64
}

// Stats returns a snapshot of the store's counters and its pool's connections. It costs a
// few atomic loads and the pool's own snapshot (one short lock); it works after Close.
func (s *Postgres) Stats() PostgresStats {
	ps := s.pool.Stat()
	return PostgresStats{
		RoundTrips:    s.stats.roundTrips.Load(),
		RoomsRead:     s.stats.roomsRead.Load(),
		Writes:        s.stats.writes.Load(),
		Errors:        s.stats.errors.Load(),
		TotalConns:    ps.TotalConns(),
		IdleConns:     ps.IdleConns(),
		AcquiredConns: ps.AcquiredConns(),
		MaxConns:      ps.MaxConns(),
	}
}
