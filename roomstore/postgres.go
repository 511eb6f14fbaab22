package roomstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"github.com/gamepersist/gamepersist/internal/redact"
)

// Postgres is a RoomStore on PostgreSQL through pgx/v5. It is safe for concurrent use.
//
// Every method is one round trip at most: GetRoom, GetRooms and VisitRooms one query
// (GetRooms and VisitRooms split very long id lists into chunks sent together as one
// pgx.Batch), PutRoom one upsert that returns the new version, DeleteRoom one delete. Ids
// and rooms are validated before any I/O. Errors from pgx are wrapped with %w, so errors.As(err, **pgconn.PgError) still
// works, and a canceled or expired ctx yields errors.Is(err, context.Canceled /
// context.DeadlineExceeded).
//
// Build one with NewPostgres (on a pool the caller owns and closes) or OpenPostgres (which
// opens a pool and closes it in Close), then call Migrate once unless the game runs the
// schema (Schema) itself.
type Postgres struct {
	pool      *pgxpool.Pool
	ownsPool  bool
	cfg       PostgresConfig
	table     string // quoted identifier
	readOnly  bool
	selectSQL string
	upsertSQL string
	deleteSQL string
	log       zerolog.Logger
	password  string // of the pool's config, redacted from every error

	closed atomic.Bool
	stats  postgresCounters
	sets   idSets // scratch sets of ids for GetRooms and VisitRooms
}

var (
	_ RoomStore       = (*Postgres)(nil)
	_ VersionedPutter = (*Postgres)(nil)
	_ RoomVisitor     = (*Postgres)(nil)
)

// NewPostgres returns a store on pool, which the caller owns: Close never closes it. It
// does no I/O; call Migrate to create the table. An invalid cfg returns an error wrapping
// ErrInvalidConfig.
func NewPostgres(pool *pgxpool.Pool, cfg PostgresConfig) (*Postgres, error) {
	if pool == nil {
		return nil, fmt.Errorf("%w: nil pool", ErrInvalidConfig)
	}
	return newPostgres(pool, false, cfg)
}

func newPostgres(pool *pgxpool.Pool, owns bool, cfg PostgresConfig) (*Postgres, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	table, err := tableIdentifier(cfg.qualifiedTable())
	if err != nil {
		return nil, err
	}
	s := &Postgres{
		pool:     pool,
		ownsPool: owns,
		cfg:      cfg,
		table:    table,
		log:      cfg.Logger.With().Str("component", "roomstore.postgres").Str("table", cfg.qualifiedTable()).Logger(),
		password: pool.Config().ConnConfig.Password,
	}
	if cfg.SelectSQL != "" {
		s.readOnly = true
		s.selectSQL = cfg.SelectSQL
	} else {
		s.selectSQL = `SELECT id, name, description, plane, zone, sub_zone, environment, exits, attributes, version FROM ` +
			table + ` WHERE id = ANY($1)`
		s.upsertSQL = `INSERT INTO ` + table + ` AS r (id, name, description, plane, zone, sub_zone, environment, exits, attributes, version, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9::json, 1, now())
ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, description = EXCLUDED.description,
  plane = EXCLUDED.plane, zone = EXCLUDED.zone, sub_zone = EXCLUDED.sub_zone,
  environment = EXCLUDED.environment, exits = EXCLUDED.exits, attributes = EXCLUDED.attributes,
  version = r.version + 1, updated_at = now()
RETURNING version`
		s.deleteSQL = `DELETE FROM ` + table + ` WHERE id = $1`
	}
	return s, nil
}

// Config returns the store's configuration with defaults applied.
func (s *Postgres) Config() PostgresConfig { return s.cfg }

// Pool returns the pool the store uses (the caller's for NewPostgres, its own for
// OpenPostgres: do not close that one, call Close).
func (s *Postgres) Pool() *pgxpool.Pool { return s.pool }

// ReadOnly reports whether the store reads through a custom SelectSQL and so refuses writes
// with ErrReadOnly.
func (s *Postgres) ReadOnly() bool { return s.readOnly }

// GetRoom implements RoomStore: one query.
func (s *Postgres) GetRoom(ctx context.Context, id string) (Room, error) {
	if err := ValidateID(id); err != nil {
		return Room{}, err
	}
	if err := s.ready(ctx, "get room"); err != nil {
		return Room{}, err
	}
	var (
		room  Room
		found bool
	)
	err := s.query(ctx, []string{id}, func(r Room) {
		if r.ID == id {
			room, found = r, true
		}
	})
	if err != nil {
		return Room{}, s.fail(ctx, "get room", err)
	}
	if !found {
		return Room{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	return room, nil
}

// GetRooms implements RoomStore: one round trip whatever len(ids). Up to BatchChunk ids
// go in one query; more are split into chunks of BatchChunk sent together in one
// pgx.Batch. Ids that name no room are absent from the map.
func (s *Postgres) GetRooms(ctx context.Context, ids []string) (map[string]Room, error) {
	out := make(map[string]Room, len(ids))
	if err := s.visit(ctx, "get rooms", ids, func(r Room) { out[r.ID] = r }); err != nil {
		return nil, err
	}
	return out, nil
}

// VisitRooms implements RoomVisitor: GetRooms' one round trip, each row handed to fn as
// it is scanned instead of being put in a map. fn runs while the query holds a pooled
// connection, so it must not call the store.
func (s *Postgres) VisitRooms(ctx context.Context, ids []string, fn func(Room)) error {
	return s.visit(ctx, "visit rooms", ids, fn)
}

// visit is GetRooms and VisitRooms: one round trip, fn called once per room asked for.
func (s *Postgres) visit(ctx context.Context, op string, ids []string, fn func(Room)) error {
	if err := validateIDs(ids); err != nil {
		return err
	}
	if err := s.ready(ctx, op); err != nil {
		return err
	}
	if len(ids) == 0 {
		return nil
	}
	each := fn
	if s.cfg.SelectSQL != "" || len(ids) > s.cfg.BatchChunk {
		// A game's own query may return rows it was not asked for, or one room twice; the
		// default one cannot, but chunks of a list with duplicates can each return a room.
		// Pass on the first row of each id asked for, and nothing else.
		pending := s.sets.get(len(ids))
		defer s.sets.put(pending)
		for _, id := range ids {
			pending[id] = struct{}{}
		}
		each = func(r Room) {
			if _, ok := pending[r.ID]; ok {
				delete(pending, r.ID)
				fn(r)
			}
		}
	}
	if err := s.query(ctx, ids, each); err != nil {
		return s.fail(ctx, op, err)
	}
	return nil
}

// query runs the select for ids, chunked into one batch when needed, and calls each for
// every row.
func (s *Postgres) query(ctx context.Context, ids []string, each func(Room)) error {
	chunk := s.cfg.BatchChunk
	s.stats.roundTrips.Add(1)
	if len(ids) <= chunk {
		rows, err := s.pool.Query(ctx, s.selectSQL, ids)
		if err != nil {
			return err
		}
		return s.scanRows(rows, each)
	}
	batch := &pgx.Batch{}
	for start := 0; start < len(ids); start += chunk {
		batch.Queue(s.selectSQL, ids[start:min(start+chunk, len(ids))])
	}
	results := s.pool.SendBatch(ctx, batch)
	for range batch.Len() {
		rows, err := results.Query()
		if err != nil {
			_ = results.Close()
			return err
		}
		if err := s.scanRows(rows, each); err != nil {
			_ = results.Close()
			return err
		}
	}
	return results.Close()
}

func (s *Postgres) scanRows(rows pgx.Rows, each func(Room)) error {
	defer rows.Close()
	var (
		id                                                   string
		name, description, plane, zone, subZone, environment pgtype.Text
		exits, attributes                                    []byte
		version                                              pgtype.Int8
	)
	n := 0
	for rows.Next() {
		if err := rows.Scan(&id, &name, &description, &plane, &zone, &subZone, &environment,
			&exits, &attributes, &version); err != nil {
			return fmt.Errorf("scan room: %w", err)
		}
		r := Room{
			ID: id, Name: name.String, Description: description.String, Plane: plane.String,
			Zone: zone.String, SubZone: subZone.String, Environment: environment.String,
			Version: version.Int64,
		}
		if len(exits) > 0 {
			var m map[string]string
			if err := json.Unmarshal(exits, &m); err != nil {
				return fmt.Errorf("room %q: decode exits: %w", id, err)
			}
			r.Exits = NewExits(m)
		}
		attrs, err := AttributesFromJSON(attributes)
		if err != nil {
			return fmt.Errorf("room %q: %w", id, err)
		}
		r.Attributes = attrs
		each(r)
		n++
	}
	s.stats.roomsRead.Add(int64(n))
	return rows.Err()
}

// PutRoom implements RoomStore: one upsert statement.
func (s *Postgres) PutRoom(ctx context.Context, room Room) error {
	_, err := s.PutRoomVersion(ctx, room)
	return err
}

// PutRoomVersion implements VersionedPutter: one upsert statement that sets the version to
// the previous one + 1 (1 for a new room) and returns it.
func (s *Postgres) PutRoomVersion(ctx context.Context, room Room) (int64, error) {
	if err := room.Validate(); err != nil {
		return 0, err
	}
	if err := s.ready(ctx, "put room"); err != nil {
		return 0, err
	}
	if s.readOnly {
		return 0, fmt.Errorf("roomstore: put room %q: %w", room.ID, ErrReadOnly)
	}
	exits, err := json.Marshal(room.Exits.Map())
	if err != nil {
		return 0, fmt.Errorf("roomstore: put room %q: encode exits: %w", room.ID, err)
	}
	var attrs *string
	if !room.Attributes.IsZero() {
		a := room.Attributes.String()
		attrs = &a
	}
	s.stats.roundTrips.Add(1)
	var version int64
	err = s.pool.QueryRow(ctx, s.upsertSQL, room.ID, room.Name, room.Description, room.Plane,
		room.Zone, room.SubZone, room.Environment, string(exits), attrs).Scan(&version)
	if err != nil {
		return 0, s.fail(ctx, "put room", err)
	}
	s.stats.writes.Add(1)
	return version, nil
}

// DeleteRoom implements RoomStore: one delete statement; ErrNotFound if no row went.
func (s *Postgres) DeleteRoom(ctx context.Context, id string) error {
	if err := ValidateID(id); err != nil {
		return err
	}
	if err := s.ready(ctx, "delete room"); err != nil {
		return err
	}
	if s.readOnly {
		return fmt.Errorf("roomstore: delete room %q: %w", id, ErrReadOnly)
	}
	s.stats.roundTrips.Add(1)
	tag, err := s.pool.Exec(ctx, s.deleteSQL, id)
	if err != nil {
		return s.fail(ctx, "delete room", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	s.stats.writes.Add(1)
	return nil
}

// Close implements RoomStore. A store from OpenPostgres closes its pool, waiting for
// in-flight calls to release their connections; a store from NewPostgres leaves the
// caller's pool open. Every call after Close returns ErrClosed. Close is idempotent: the
// second and later calls return nil.
func (s *Postgres) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	if s.ownsPool {
		s.pool.Close()
	}
	s.log.Debug().Msg("roomstore: postgres store closed")
	return nil
}

// ready checks, before any I/O, that the store is open and ctx is not done.
func (s *Postgres) ready(ctx context.Context, op string) error {
	if s.closed.Load() {
		return fmt.Errorf("roomstore: %s: %w", op, ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("roomstore: %s: %w", op, err)
	}
	return nil
}

// fail counts and wraps an error of a round trip, with the pool's password redacted from
// its text. A call that raced with Close reports ErrClosed; one whose ctx ended reports the
// ctx error even if pgx did not wrap it.
func (s *Postgres) fail(ctx context.Context, op string, err error) error {
	s.stats.errors.Add(1)
	if s.closed.Load() {
		return redact.Error(fmt.Errorf("roomstore: %s: %w: %w", op, ErrClosed, err), s.password)
	}
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return redact.Error(fmt.Errorf("roomstore: %s: %w: %w", op, cerr, err), s.password)
	}
	if op != "migrate" { // a failed migration step is not a missing migration
		err = schemaHint(err)
	}
	err = redact.Error(fmt.Errorf("roomstore: %s: %w", op, err), s.password)
	s.log.Debug().Err(err).Str("op", op).Msg("roomstore: postgres call failed")
	return err
}
