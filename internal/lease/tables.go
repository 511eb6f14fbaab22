package lease

import (
	"context"
	"embed"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/gamepersist/gamepersist/internal/migrate"
)

// Table names, created in Config.Schema by Migrate.
const (
	// MembersTable holds one row per member: member_id, incarnation, shards, joined_at,
	// expires_at.
	MembersTable = "gamepersist_lease_members"
	// LeasesTable holds one row per shard ever held: shard, owner (NULL when free), epoch,
	// acquired_at, expires_at.
	LeasesTable = "gamepersist_leases"
	// componentName names the tables in the schema's migration version table.
	componentName = "lease"
)

// schemaFiles holds the lease tables' migrations, schema/NNN_description.sql, rendered
// with tableNames.
//
//go:embed schema/*.sql
var schemaFiles embed.FS

// tableNames are the quoted, optionally schema-qualified table names of one schema.
type tableNames struct {
	Members string
	Leases  string
}

func namesIn(schema string) tableNames {
	return tableNames{Members: qualify(schema, MembersTable), Leases: qualify(schema, LeasesTable)}
}

func qualify(schema, table string) string {
	if schema == "" {
		return pgx.Identifier{table}.Sanitize()
	}
	return pgx.Identifier{schema, table}.Sanitize()
}

// migrateTables creates the lease tables in schema (and the schema) when they are missing,
// or brings them to the latest version (see Manager.Migrate).
func migrateTables(ctx context.Context, db migrate.DB, schema string) error {
	steps, err := migrate.Load(schemaFiles, "schema", namesIn(schema))
	if err != nil {
		return fmt.Errorf("lease: migrate: %w", err)
	}
	_, err = migrate.Up(ctx, db, migrate.Component{Name: componentName, Schema: schema, Steps: steps})
	if errors.Is(err, migrate.ErrNoSchema) {
		return fmt.Errorf("lease: migrate: %w: set Schema: %w", ErrInvalidConfig, err)
	}
	if err != nil {
		return fmt.Errorf("lease: migrate: %w", err)
	}
	return nil
}
