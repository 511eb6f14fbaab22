package roomstore

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"strings"

	"github.com/gamepersist/gamepersist/internal/migrate"
)

// schemaFiles holds the rooms table's migrations, schema/NNN_description.sql, text/template
// files whose {{.Table}} is the quoted, optionally schema-qualified table name.
//
//go:embed schema/*.sql
var schemaFiles embed.FS

// schemaData is what the schema templates see.
type schemaData struct {
	Table string // quoted, optionally schema-qualified
}

// migration returns the component Migrate applies for table ("table" or "schema.table").
func migration(table string) (migrate.Component, error) {
	ident, err := tableIdentifier(table)
	if err != nil {
		return migrate.Component{}, err
	}
	schema, name, ok := strings.Cut(table, ".")
	if !ok {
		schema, name = "", table
	}
	steps, err := migrate.Load(schemaFiles, "schema", schemaData{Table: ident})
	if err != nil {
		return migrate.Component{}, fmt.Errorf("roomstore: %w", err)
	}
	return migrate.Component{Name: "roomstore " + name, Schema: schema, Steps: steps, Baseline: name}, nil
}

// Schema returns the SQL of every migration step for table ("table" or "schema.table",
// quoted safely; the schema is created when it does not exist), for games that run
// migrations with their own tool. It records no version, so do not mix it with Migrate on
// one table. An invalid table name returns an error wrapping ErrInvalidConfig.
func Schema(table string) (string, error) {
	c, err := migration(table)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if c.Schema != "" {
		b.WriteString(migrate.CreateSchemaSQL(c.Schema) + ";\n")
	}
	for _, s := range c.Steps {
		b.WriteString(s.SQL)
		b.WriteString("\n")
	}
	return b.String(), nil
}

// Migrate brings the store's table to the latest schema version, creating its schema if
// missing: each embedded step not yet recorded in the schema's gamepersist_migrations table
// runs once, in its own transaction under an advisory lock, however many processes migrate
// at once; a table from a release before versioning is recorded as version 1, untouched.
// With PostgresConfig.NotifyChannel set it also installs the change trigger (a
// component of its own in the version table; see ChangeTriggerSQL). A table it creates
// next to an existing one with a similar name (a misspelled Table) is logged at warn with
// both names. With nothing to do it costs two reads and no DDL. It returns ErrReadOnly with a
// SelectSQL, ErrInvalidConfig when no schema is set or found, or the failed step's error.
func (s *Postgres) Migrate(ctx context.Context) error {
	if err := s.ready(ctx, "migrate"); err != nil {
		return err
	}
	if s.readOnly {
		return fmt.Errorf("roomstore: migrate: %w", ErrReadOnly)
	}
	c, err := migration(s.cfg.qualifiedTable())
	if err != nil {
		return err
	}
	comps := []migrate.Component{c}
	if s.cfg.NotifyChannel != "" {
		n, err := changeNotifyMigration(s.cfg.qualifiedTable(), s.cfg.NotifyChannel)
		if err != nil {
			return err
		}
		comps = append(comps, n)
	}
	s.stats.roundTrips.Add(1)
	res, err := migrate.Up(ctx, s.pool, comps...)
	if errors.Is(err, migrate.ErrNoSchema) {
		return fmt.Errorf("roomstore: migrate: %w: set Schema: %w", ErrInvalidConfig, err)
	}
	if err != nil {
		return s.fail(ctx, "migrate", err)
	}
	for _, l := range res.Lookalikes {
		s.log.Warn().Str("schema", l.Schema).Str("created", l.Created).Str("existing", l.Existing).
			Msg("roomstore: Migrate created a new rooms table whose name looks like a typo of an existing table: check PostgresConfig.Table")
	}
	s.log.Info().Int("applied", res.Applied).Int("baselined", res.Baselined).Msg("roomstore: schema migrated")
	return nil
}
