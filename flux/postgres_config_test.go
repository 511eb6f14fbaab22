package flux_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/gamepersist/gamepersist/flux"
	"github.com/gamepersist/gamepersist/internal/testkit/testdb"
)

// TestPostgresConfigRefused: every name that travels into SQL is checked when the store
// is made — PostgreSQL's 63-byte identifier limit (two longer names that share their
// first 63 bytes would name one table), valid UTF-8, no NUL — and so are the settings that
// only make sense together, each with an error naming the field.
func TestPostgresConfigRefused(t *testing.T) {
	t.Parallel()
	pool, _ := testdb.NewPool(t)
	long := strings.Repeat("x", 64)
	for name, c := range map[string]struct {
		cfg   flux.PostgresConfig
		field string
	}{
		"table of 64 bytes":        {flux.PostgresConfig{PlayersTable: long}, "PlayersTable"},
		"state table of 64 bytes":  {flux.PostgresConfig{StateTable: long}, "StateTable"},
		"index name past 63 bytes": {flux.PostgresConfig{PlayersTable: strings.Repeat("p", 50)}, "PlayersTable (index name)"},
		"schema with NUL":          {flux.PostgresConfig{Schema: "game\x00"}, "Schema"},
		"column not UTF-8":         {flux.PostgresConfig{LucidityColumn: "lcd\xff"}, "LucidityColumn"},
		"state schema too long":    {flux.PostgresConfig{StateSchema: long}, "StateSchema"},
		"scope column with NUL":    {flux.PostgresConfig{ScopeColumn: "srv\x00"}, "ScopeColumn"},
		"audit column too long":    {flux.PostgresConfig{Audit: true, AuditColumns: flux.AuditColumns{PlayerID: "p", Delta: long}}, "AuditColumns"},
		"audit columns without id": {flux.PostgresConfig{Audit: true, AuditColumns: flux.AuditColumns{Delta: "d"}}, "AuditColumns"},
		"audit reason with NUL":    {flux.PostgresConfig{AuditReason: "flux\x00"}, "AuditReason"},
		"tier entered not a tier":  {flux.PostgresConfig{TierEnteredColumn: "since", TierEntered: "Catatonic"}, "TierEntered"},
		"filter with NUL":          {flux.PostgresConfig{Filter: "true\x00"}, "Filter"},
		"player id type":           {flux.PostgresConfig{PlayerIDType: "text; DROP"}, "PlayerIDType"},
	} {
		_, err := flux.NewPostgresPlayers(pool, c.cfg)
		if !errors.Is(err, flux.ErrInvalidConfig) || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: %v; want ErrInvalidConfig naming %s", name, err, c.field)
		}
	}
	ok := flux.PostgresConfig{PlayersTable: strings.Repeat("p", 47), StateTable: strings.Repeat("s", 63)}
	if _, err := flux.NewPostgresPlayers(pool, ok); err != nil {
		t.Errorf("names within the limit refused: %v", err)
	}
}
