package main

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any test leaves a goroutine behind: every run/simulate
// call here must stop everything it started (NATS server and connections, Bridge workers,
// cache, pool).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
