package natsbridge_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportsNoDatabase: importing natsbridge links neither pgx nor ristretto nor
// roomstore (room-cache invalidation lives in natsbridge/roomsync), so a NATS-only user
// compiles no database driver. It runs `go list -deps` on the package.
func TestImportsNoDatabase(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", "github.com/gamepersist/gamepersist/natsbridge").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"github.com/jackc/", "github.com/dgraph-io/ristretto", "github.com/gamepersist/gamepersist/roomstore"} {
			if strings.HasPrefix(dep, banned) {
				t.Errorf("natsbridge depends on %s", dep)
			}
		}
	}
}
