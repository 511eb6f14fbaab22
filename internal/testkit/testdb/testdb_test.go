package testdb_test

import (
	"context"
	"testing"

	"go.uber.org/goleak"

	"github.com/gamepersist/gamepersist/internal/testkit/testdb"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestNewPoolUsesItsOwnSchema(t *testing.T) {
	t.Parallel()
	a, schemaA := testdb.NewPool(t)
	b, schemaB := testdb.NewPool(t)
	if schemaA == schemaB {
		t.Fatalf("two tests got the same schema %s", schemaA)
	}
	ctx := context.Background()
	if _, err := a.Exec(ctx, "CREATE TABLE probe (id int)"); err != nil {
		t.Fatal(err)
	}
	var got string
	if err := a.QueryRow(ctx, "SELECT current_schema()").Scan(&got); err != nil || got != schemaA {
		t.Fatalf("current_schema = %q, %v; want %s", got, err, schemaA)
	}
	// The other schema does not see the table.
	var n int
	if err := b.QueryRow(ctx, "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'probe'").Scan(&n); err != nil || n != 0 {
		t.Fatalf("schema %s sees %d probe tables (%v)", schemaB, n, err)
	}
}
