package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gamepersist/gamepersist/flux"
	"github.com/gamepersist/gamepersist/internal/testkit/testdb"
)

// played is what one run of the quickstart printed.
type played struct{ steps, skipped, changes, trades int }

// parsePlayed reads the summary line run prints once everything is closed.
func parsePlayed(t *testing.T, out string) played {
	t.Helper()
	var p played
	if _, err := fmt.Sscanf(out, "%d flux steps (%d skipped), %d lucidity changes, %d trades applied\n",
		&p.steps, &p.skipped, &p.changes, &p.trades); err != nil {
		t.Fatalf("summary line: %v in %q", err, out)
	}
	return p
}

// TestQuickstartPlaysUntilCancelled runs the program on its own schema and cancels it,
// as Ctrl-C or SIGTERM cancel it in main, once the database shows ten flux ticks written
// after it started (so its third step, and the trade published there, are well behind
// it). It checks that the program did the work — steps that changed lucidity (eldritch and
// graveyard drain, the sanctuary heals), a trade that came through the durable stream and
// was applied with AddLucidity — and shut down without error; goleak in TestMain checks
// that nothing it started is left.
func TestQuickstartPlaysUntilCancelled(t *testing.T) {
	t.Parallel()
	url, _ := testdb.NewSchema(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	first := flux.TickNumber(time.Now(), 600*time.Millisecond)
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, url, time.Hour, &out) }()
	if err := waitForTick(ctx, url, first+10, done); err != nil {
		cancel()
		t.Fatalf("%v\n%s", err, out.String())
	}
	cancel() // what a signal does
	if err := <-done; err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	p := parsePlayed(t, out.String())
	if p.steps < 1 || p.changes == 0 || p.trades == 0 {
		t.Fatalf("ten ticks were written, but: %+v", p)
	}
}

// waitForTick polls the schema of url until a flux write of tick want or later has
// committed, run ended (its error, or an error saying it ended early), or ctx ended.
func waitForTick(ctx context.Context, url string, want int64, done <-chan error) error {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return err
	}
	defer pool.Close()
	poll := time.NewTicker(100 * time.Millisecond)
	defer poll.Stop()
	for {
		var got int64
		// flux_state exists once run migrated; until then the query fails and we wait.
		if err := pool.QueryRow(ctx, "SELECT coalesce(max(tick), 0) FROM flux_state").Scan(&got); err == nil && got >= want {
			return nil
		}
		select {
		case err := <-done:
			return fmt.Errorf("run ended before tick %d was written: %w", want, err)
		case <-ctx.Done():
			return fmt.Errorf("tick %d not written: %w", want, ctx.Err())
		case <-poll.C:
		}
	}
}

// TestQuickstartStopsByItself: with no signal, the program stops after playFor, shuts
// down without error and prints its summary.
func TestQuickstartStopsByItself(t *testing.T) {
	t.Parallel()
	url, _ := testdb.NewSchema(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, url, 2*time.Second, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	if ctx.Err() != nil {
		t.Fatal("run returned only when the test's deadline passed")
	}
	parsePlayed(t, out.String())
}

// TestQuickstartNoDatabase checks that an unreachable database is an error that says so,
// does not print the password, and prints no summary.
func TestQuickstartNoDatabase(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out bytes.Buffer
	err := run(ctx, "postgres://nobody:s3cret-pw@127.0.0.1:1/x?connect_timeout=2", time.Second, &out)
	if err == nil {
		t.Fatal("run succeeded without a database")
	}
	if !strings.Contains(err.Error(), "no database answered") || strings.Contains(err.Error(), "s3cret-pw") {
		t.Fatalf("error = %v", err)
	}
	if out.Len() != 0 {
		t.Fatalf("printed %q on failure", out.String())
	}
}

// TestREADMEProgramIsThisProgram: the README's program is main.go, byte for byte, and
// main.go is the package's only source file, so the README's block compiles on its own
// and is the program the tests above run.
func TestREADMEProgramIsThisProgram(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	block, err := readmeProgram(string(readme))
	if err != nil {
		t.Fatal(err)
	}
	if block != string(src) {
		t.Fatalf("README's program differs from examples/quickstart/main.go:\n%s", firstDifference(block, string(src)))
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if f != "main.go" && !strings.HasSuffix(f, "_test.go") {
			t.Errorf("%s: the README's program must be one file; move %s's code into main.go", f, f)
		}
	}
}

// readmeProgram returns the README's program: the first ```go block that holds a
// package clause.
func readmeProgram(readme string) (string, error) {
	for rest := readme; ; {
		i := strings.Index(rest, "```go\n")
		if i < 0 {
			return "", fmt.Errorf("README has no go block with %q", "package main")
		}
		body := rest[i+len("```go\n"):]
		j := strings.Index(body, "\n```\n")
		if j < 0 {
			return "", fmt.Errorf("README's go block is not closed")
		}
		if block := body[:j+1]; strings.HasPrefix(block, "package main\n") || strings.Contains(block, "\npackage main\n") {
			return block, nil
		}
		rest = body[j+1:]
	}
}

// firstDifference shows the first line where a and b differ.
func firstDifference(a, b string) string {
	la, lb := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range max(len(la), len(lb)) {
		var x, y string
		if i < len(la) {
			x = la[i]
		}
		if i < len(lb) {
			y = lb[i]
		}
		if x != y {
			return fmt.Sprintf("line %d:\nREADME:  %q\nmain.go: %q", i+1, x, y)
		}
	}
	return "(equal)"
}

// TestFirstDifferenceNamesTheLine keeps the diagnostic honest: it names the first line
// that differs.
func TestFirstDifferenceNamesTheLine(t *testing.T) {
	t.Parallel()
	if got := firstDifference("a\nb\nc\n", "a\nB\nc\n"); !strings.HasPrefix(got, "line 2:") {
		t.Fatalf("firstDifference = %q", got)
	}
	if _, err := readmeProgram("# x\n```go\nfmt.Println()\n```\n"); err == nil {
		t.Fatal("a block without a package clause was taken for the program")
	}
	got, err := readmeProgram("# x\n```go\nx := 1\n```\n\n```go\n// Command x.\npackage main\n\nfunc main() {}\n```\n")
	if err != nil || got != "// Command x.\npackage main\n\nfunc main() {}\n" {
		t.Fatalf("readmeProgram = %q, %v", got, err)
	}
}
