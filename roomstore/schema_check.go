package roomstore

import (
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
)

// ErrMissingSchema is wrapped by the errors of the Postgres store when the database lacks
// the table (or a column or schema) a statement uses: Migrate was not called (call it at
// start-up), or PostgresConfig.Table or Schema does not name the game's table. The
// database's *pgconn.PgError stays reachable with errors.As.
var ErrMissingSchema = errors.New("roomstore: the rooms table or a column is missing (call Postgres.Migrate at start-up, or fix PostgresConfig.Schema and Table)")

// schemaHint wraps err with ErrMissingSchema when the database refused a statement for a
// missing table (42P01), column (42703) or schema (3F000); any other error is returned as
// is.
func schemaHint(err error) error {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || errors.Is(err, ErrMissingSchema) {
		return err
	}
	switch pgErr.Code {
	case "42P01", "42703", "3F000":
		return fmt.Errorf("%w: %w", ErrMissingSchema, err)
	}
	return err
}
