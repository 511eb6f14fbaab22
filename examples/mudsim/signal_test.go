package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gamepersist/gamepersist/internal/testkit/testdb"
)

// goTool finds the go command that runs this test.
func goTool(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	p := filepath.Join(runtime.GOROOT(), "bin", "go") //nolint:staticcheck // fallback when go is not on PATH
	if _, err := os.Stat(p); err != nil {
		t.Skip("no go command to build the binary with")
	}
	return p
}

// TestBinaryExitPaths builds the program once and checks each way it ends, as a user
// sees it: its exit status, stdout and stderr.
func TestBinaryExitPaths(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "mudsim")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel) // after the parallel subtests, not when this function returns
	build := exec.CommandContext(ctx, goTool(t), "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Run("finite run", func(t *testing.T) { t.Parallel(); finiteRunExitsZero(ctx, t, bin) })
	t.Run("signals", func(t *testing.T) { t.Parallel(); signalExitsZero(ctx, t, bin) })
	t.Run("refused database", func(t *testing.T) {
		t.Parallel()
		// The local server answers, but refuses the database name: exit 1 and one line.
		u := withDatabase(t, testdb.URL(t), "mudsim_no_such_database", "")
		failsWithOneLine(ctx, t, bin, 1, "3D000", "-database-url", u)
	})
	t.Run("unparsable url", func(t *testing.T) {
		t.Parallel()
		failsWithOneLine(ctx, t, bin, 2, "database URL", "-database-url", "postgres://mud:hunter2@%zz")
	})
	t.Run("nothing listens", func(t *testing.T) {
		t.Parallel()
		// A port where nothing listens: the in-memory stores, and the run ends well.
		out, errOut, code := runBinary(ctx, t, bin, "-database-url", "postgres://mud:hunter2@127.0.0.1:1/x",
			"-duration", "300ms", "-tick", "50ms", "-players", "40", "-rooms", "20")
		if code != 0 || !strings.Contains(out, "mudsim summary: backend=memory ") || strings.Contains(errOut, "hunter2") ||
			!strings.Contains(errOut, "nothing listens at the database address") {
			t.Fatalf("exit %d\nstdout: %s\nstderr:\n%s", code, out, errOut)
		}
	})
}

// runBinary runs bin with args to the end and returns its stdout, stderr and exit code.
func runBinary(ctx context.Context, t *testing.T, bin string, args ...string) (string, string, int) {
	t.Helper()
	var stdout, stderr strings.Builder
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()
}

// finiteRunExitsZero: with -duration (the default is DefaultDuration, checked in
// TestFlags) the program ends on its own, exits 0 and prints the summary; no signal.
func finiteRunExitsZero(ctx context.Context, t *testing.T, bin string) {
	start := time.Now()
	out, errOut, code := runBinary(ctx, t, bin, "-database-url", "", "-duration", "400ms", "-tick", "50ms",
		"-players", "60", "-rooms", "30", "-game-start", "23:00")
	if code != 0 || !strings.HasPrefix(out, "mudsim summary: backend=memory ") || !strings.Contains(out, "tick_errors=0") {
		t.Fatalf("exit %d\nstdout: %s\nstderr:\n%s", code, out, errOut)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("a 400ms run took %v", d)
	}
}

// failsWithOneLine runs bin with args and wants exit status code, nothing on stdout and
// exactly one plain line on stderr holding want, with no NATS server started.
func failsWithOneLine(ctx context.Context, t *testing.T, bin string, code int, want string, args ...string) {
	t.Helper()
	out, errOut, got := runBinary(ctx, t, bin, args...)
	lines := strings.Split(strings.TrimRight(errOut, "\n"), "\n")
	if got != code || out != "" || len(lines) != 1 || !strings.HasPrefix(lines[0], "mudsim: ") ||
		!strings.Contains(lines[0], want) || strings.Contains(errOut, "hunter2") || strings.Contains(errOut, "nats") {
		t.Fatalf("exit %d (want %d)\nstdout: %s\nstderr:\n%s", got, code, out, errOut)
	}
}

// signalExitsZero starts the program with no time limit on the embedded default (memory,
// in-process NATS), waits until it has ticked three times, sends SIGINT (then, in a second
// run, SIGTERM) and checks that it exits 0 with a summary showing nothing pending and every
// chat line handled.
func signalExitsZero(ctx context.Context, t *testing.T, bin string) {
	for _, sig := range []os.Signal{os.Interrupt, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd := exec.CommandContext(ctx, bin, "-database-url", "", "-duration", "0", "-players", "60", "-rooms", "30",
				"-tick", "50ms", "-game-start", "23:00", "-seed", "3")
			stderr, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stdout strings.Builder
			cmd.Stdout = &stdout
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			lines := bufio.NewScanner(stderr)
			var logged []string
			for lines.Scan() {
				logged = append(logged, lines.Text())
				var m struct {
					Message string
					Tick    int
				}
				if json.Unmarshal(lines.Bytes(), &m) == nil && m.Message == "tick" && m.Tick >= 3 {
					break
				}
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			for lines.Scan() { // read the rest so the program never blocks on a full pipe
				logged = append(logged, lines.Text())
			}
			err = cmd.Wait()
			if err != nil || cmd.ProcessState.ExitCode() != 0 {
				t.Fatalf("exit: %v (code %d)\nstdout: %s\nstderr:\n%s", err, cmd.ProcessState.ExitCode(),
					stdout.String(), strings.Join(logged, "\n"))
			}
			sum := stdout.String()
			m := regexp.MustCompile(`ticks=(\d+) .*chat_sent=(\d+) chat_handled=(\d+) chat_lost=0 dead_letters=0 `).FindStringSubmatch(sum)
			if m == nil || !strings.Contains(sum, "tick_errors=0") || !strings.Contains(sum, "pending_players=0") {
				t.Fatalf("summary = %q", sum)
			}
			if ticks, _ := strconv.Atoi(m[1]); ticks < 3 || m[2] != m[3] {
				t.Fatalf("summary = %q: want ticks >= 3 and every chat line handled", sum)
			}
		})
	}
}
