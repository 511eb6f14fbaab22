package flux_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/gamepersist/gamepersist/internal/testkit/faultproxy"
)

func TestMain(m *testing.M) {
	// The fault proxy's own known leak is ignored; every goroutine of ours is checked.
	goleak.VerifyTestMain(m, faultproxy.KnownLeaks()...)
}
