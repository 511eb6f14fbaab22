package main

import (
	"bufio"
	"context"
	"encoding/json"
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

// TestBinaryExitsZeroOnSignal builds the program, starts it on the embedded default (memory,
// in-process NATS), waits until it has ticked three times, sends SIGINT (then, in a second
// run, SIGTERM) and checks that it exits 0 with a summary showing nothing pending and every
// chat line handled.
func TestBinaryExitsZeroOnSignal(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "mudsim")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, goTool(t), "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, sig := range []os.Signal{os.Interrupt, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd := exec.CommandContext(ctx, bin, "-database-url", "", "-players", "60", "-rooms", "30",
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
