package flux_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// pureFiles are the files of the pure tick (FLUX.md): same inputs, same outputs. They take
// time as a value and never read a clock, draw randomness or do I/O.
var pureFiles = []string{
	"active.go", "evaluate.go", "ledger.go", "names.go", "profile.go", "roominfo.go",
	"rules.go", "tier.go", "types.go",
}

// ioFiles are the rest: the stores, the Runner and their configuration.
var ioFiles = []string{
	"doc.go", "input_checks.go", "lucidity_write.go", "players.go", "players_memory.go", "postgres.go",
	"postgres_config.go", "postgres_presence.go", "postgres_schema_check.go", "postgres_upsert.go", "presence.go",
	"retry.go", "runner.go", "runner_config.go", "runner_metrics.go", "runner_stats.go",
	"runner_step.go", "runner_close.go", "runner_step_held.go",
}

// impureImports may not be imported by a pure file.
var impureImports = []string{
	"context", "crypto/rand", "database/sql", "io", "log", "math/rand", "math/rand/v2", "net",
	"net/http", "os", "os/exec", "sync", "sync/atomic", "syscall", "unsafe",
}

// clockCalls are the time functions that read a clock or wait on one.
var clockCalls = []string{"Now", "Since", "Until", "Sleep", "After", "AfterFunc", "Tick", "NewTimer", "NewTicker"}

// TestPureFilesStayPure fails when a pure flux file imports I/O, synchronisation or
// randomness (or any module outside the standard library but roomstore's types, internal/ident and internal/configerr), or
// reads a clock; and when a new file is in neither list, so that every file is classified.
func TestPureFilesStayPure(t *testing.T) {
	t.Parallel()
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		if !slices.Contains(pureFiles, name) && !slices.Contains(ioFiles, name) {
			t.Errorf("%s is neither in pureFiles nor in ioFiles: classify it", name)
		}
	}
	fset := token.NewFileSet()
	for _, name := range pureFiles {
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		timeName := ""
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			switch {
			case slices.Contains(impureImports, path):
				t.Errorf("%s imports %s: a pure file does no I/O, no synchronisation, no randomness", name, path)
			case strings.Contains(path, ".") && path != "github.com/gamepersist/gamepersist/roomstore" &&
				path != "github.com/gamepersist/gamepersist/internal/ident" &&
				path != "github.com/gamepersist/gamepersist/internal/configerr":
				t.Errorf("%s imports %s: a pure file uses the standard library and roomstore's types only", name, path)
			case path == "time":
				timeName = "time"
				if imp.Name != nil {
					timeName = imp.Name.Name
				}
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if id, ok := sel.X.(*ast.Ident); ok && timeName != "" && id.Name == timeName && slices.Contains(clockCalls, sel.Sel.Name) {
				t.Errorf("%s: time.%s at %s reads or waits on a clock: take the time as a value", name, sel.Sel.Name, fset.Position(sel.Pos()))
			}
			if id, ok := sel.X.(*ast.Ident); ok && id.Name == "roomstore" && !isTypeUse(sel.Sel.Name) {
				t.Errorf("%s: roomstore.%s at %s: a pure file uses roomstore's types only", name, sel.Sel.Name, fset.Position(sel.Pos()))
			}
			return true
		})
	}
}

// isTypeUse reports whether a roomstore identifier is a type or a pure helper a pure file may use.
func isTypeUse(name string) bool {
	return name == "Room"
}
