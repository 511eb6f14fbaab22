// Package testlog captures what a zerolog.Logger writes, for tests that check log lines:
// a Buffer safe for a logger writing from many goroutines while the test reads it.
package testlog

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"
)

// Buffer is an io.Writer that keeps everything written to it; safe for concurrent use.
// The zero value is ready. It grows without bound: for tests only.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p under the lock.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns a copy of everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Logger returns a zerolog.Logger writing JSON lines into b, at every level (narrow it
// with Level). Costs nothing until something is logged.
func (b *Buffer) Logger() zerolog.Logger { return zerolog.New(b) }

// Lines parses every non-empty line written so far as a JSON object, in order, failing t
// on a line that is not one. Costs a copy and a parse of the whole buffer.
func (b *Buffer) Lines(t testing.TB) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(b.String(), "\n") {
		if strings.TrimSpace(l) == "" {
			continue
		}
		m := map[string]any{}
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}
