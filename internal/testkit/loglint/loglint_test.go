package loglint_test

import (
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"

	"github.com/gamepersist/gamepersist/internal/testkit/loglint"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestModuleHasNoFormattedLogs enforces structured logging across the whole module.
func TestModuleHasNoFormattedLogs(t *testing.T) {
	t.Parallel()
	root := moduleRoot(t)
	findings, err := loglint.Check(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range findings {
		t.Errorf("%s", f)
	}
}

// TestFixtureIsCaught proves the lint finds each kind of formatted log call.
func TestFixtureIsCaught(t *testing.T) {
	t.Parallel()
	// The fixture is not a .go file, so no other tool (and no grep for Msgf in *.go) sees it.
	name := filepath.Join("testdata", "bad.go.txt")
	src, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	findings, err := loglint.CheckSource(name, src)
	if err != nil {
		t.Fatal(err)
	}
	wantLines := map[int]bool{12: true, 13: true, 14: true, 15: true}
	if len(findings) != len(wantLines) {
		t.Fatalf("got %d findings, want %d: %v", len(findings), len(wantLines), findings)
	}
	for _, f := range findings {
		if !wantLines[f.Pos.Line] {
			t.Errorf("unexpected finding %s", f)
		}
	}
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test's directory")
		}
		dir = parent
	}
}
