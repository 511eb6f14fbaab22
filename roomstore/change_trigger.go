package roomstore

import (
	"embed"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/gamepersist/gamepersist/internal/ident"
	"github.com/gamepersist/gamepersist/internal/migrate"
)

// DefaultNotifyChannel is the channel a ChangeListener listens on by default; set
// PostgresConfig.NotifyChannel to it to have Migrate install the change trigger.
const DefaultNotifyChannel = "gamepersist_rooms"

// Limits of the change trigger's notices.
const (
	// MaxNotifyPayload is the largest payload, in bytes, of one notice the change trigger
	// sends: below the 8,000 bytes PostgreSQL's NOTIFY accepts by default.
	MaxNotifyPayload = 7900
	// MaxNotifyBatches is the most notices one statement's ids are split over; a statement
	// touching more ids than that holds sends the payload "*" (invalidate everything).
	MaxNotifyBatches = 16
	// NotifyAll is the payload that asks listeners to drop every cached room: sent for a
	// TRUNCATE and for a statement whose ids would need more than MaxNotifyBatches notices.
	NotifyAll = "*"
)

// changeNotifyFiles holds the change trigger's migrations, schema/notify/NNN_description.sql,
// text/template files (see changeNotifyData).
//
//go:embed schema/notify/*.sql
var changeNotifyFiles embed.FS

// changeNotifyData is what the change trigger's templates see: quoted identifiers and
// literals, and numbers.
type changeNotifyData struct {
	Table      string // quoted, optionally schema-qualified
	Function   string // quoted, qualified like Table
	Channel    string // a SQL string literal
	IDColumn   string // a SQL string literal
	MaxPayload int
	MaxNotices int
}

// changeNotifyFunction is the trigger function's name, created in the table's schema.
const changeNotifyFunction = "gamepersist_room_change_notify"

// changeNotifySteps renders the change trigger's steps for table ("table" or
// "schema.table"), whose column idColumn holds room ids, notifying on channel.
func changeNotifySteps(table, idColumn, channel string) ([]migrate.Step, error) {
	quoted, err := tableIdentifier(table)
	if err != nil {
		return nil, err
	}
	if why := ident.IdentifierProblem(idColumn); why != "" {
		return nil, &ConfigError{Field: "idColumn", Reason: why}
	}
	if err := validateChannel("channel", channel); err != nil {
		return nil, err
	}
	function := pgx.Identifier{changeNotifyFunction}.Sanitize()
	if schema, _, ok := strings.Cut(table, "."); ok {
		function = pgx.Identifier{schema, changeNotifyFunction}.Sanitize()
	}
	steps, err := migrate.Load(changeNotifyFiles, "schema/notify", changeNotifyData{
		Table:      quoted,
		Function:   function,
		Channel:    quoteLiteral(channel),
		IDColumn:   quoteLiteral(idColumn),
		MaxPayload: MaxNotifyPayload,
		MaxNotices: MaxNotifyBatches,
	})
	if err != nil {
		return nil, fmt.Errorf("roomstore: %w", err)
	}
	return steps, nil
}

// ChangeTriggerSQL returns the SQL that installs the change trigger on table ("table" or
// "schema.table"): after every INSERT, UPDATE, DELETE or TRUNCATE it sends, at commit,
// the ids found in column idColumn of the rows touched as notices on channel, which a
// ChangeListener turns into cache invalidations. It is for a game's own tables (a store
// with a SelectSQL: run it once for each table a room is read from, naming the column that
// holds the room's id, such as an exits table's from_room) and for games that run
// migrations with their own tool; PostgresConfig.NotifyChannel has Migrate install it on
// the store's table instead. The SQL can be run again (it replaces what it created). It
// does no I/O; invalid names return an error wrapping ErrInvalidConfig.
//
// Its cost on writers: one pass over the rows of each statement (statement-level triggers
// with transition tables) and one notice per MaxNotifyPayload bytes of ids, sent at commit.
// PostgreSQL serializes the commits of transactions that notify (a database-wide lock on
// its notification queue): right for room edits, wrong for a table written thousands of
// times a second. A listener that falls far behind fills that queue (8 GB by default) and
// then makes writers' commits fail; notices are never dropped silently.
func ChangeTriggerSQL(table, idColumn, channel string) (string, error) {
	steps, err := changeNotifySteps(table, idColumn, channel)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, s := range steps {
		b.WriteString(s.SQL)
		b.WriteString("\n")
	}
	return b.String(), nil
}

// changeNotifyMigration returns the component Migrate applies when
// PostgresConfig.NotifyChannel is set: the change trigger on the store's table, versioned
// apart from the table itself so that turning it on later is one more step.
func changeNotifyMigration(table, channel string) (migrate.Component, error) {
	steps, err := changeNotifySteps(table, "id", channel)
	if err != nil {
		return migrate.Component{}, err
	}
	schema, name, ok := strings.Cut(table, ".")
	if !ok {
		schema, name = "", table
	}
	return migrate.Component{Name: "roomstore " + name + " change notify", Schema: schema, Steps: steps}, nil
}

// validateChannel reports a channel name LISTEN cannot take as one identifier.
func validateChannel(field, channel string) error {
	if why := ident.IdentifierProblem(channel); why != "" {
		return &ConfigError{Field: field, Reason: why}
	}
	return nil
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
