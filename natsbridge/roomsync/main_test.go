package roomsync_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's test run if any goroutine (a nats.go reader, a server
// route, a handler worker) outlives the tests.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
