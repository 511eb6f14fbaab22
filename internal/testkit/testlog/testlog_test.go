package testlog_test

import (
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/gamepersist/gamepersist/internal/testkit/testlog"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestConcurrentLines logs from several goroutines (under -race) and checks every line
// comes back whole, parsed, with its fields.
func TestConcurrentLines(t *testing.T) {
	t.Parallel()
	var buf testlog.Buffer
	if got := buf.Lines(t); len(got) != 0 {
		t.Fatalf("empty buffer has lines %v", got)
	}
	log := buf.Logger()
	const writers, each = 4, 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				log.Warn().Int("writer", w).Int("i", i).Msg("test line")
			}
		})
	}
	wg.Wait()
	lines := buf.Lines(t)
	if len(lines) != writers*each {
		t.Fatalf("%d lines, want %d", len(lines), writers*each)
	}
	seen := map[[2]float64]bool{}
	for _, l := range lines {
		if l["level"] != "warn" || l["message"] != "test line" {
			t.Fatalf("line %v", l)
		}
		seen[[2]float64{l["writer"].(float64), l["i"].(float64)}] = true
	}
	if len(seen) != writers*each {
		t.Fatalf("%d distinct lines, want %d", len(seen), writers*each)
	}
	if n := strings.Count(buf.String(), "\n"); n != writers*each {
		t.Fatalf("String has %d lines, want %d", n, writers*each)
	}
}
