package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gamepersist/gamepersist/flux"
	"github.com/gamepersist/gamepersist/internal/testkit/testdb"
)

// TestBinaryStopsOnSignals builds the program and checks main's part, as a user sees it:
// SIGINT (Ctrl-C) and SIGTERM, sent once the program's flux writes reach the database,
// end it with exit status 0 and its summary line; without a database it exits with
// status 1 and one line on stderr that does not show the password.
func TestBinaryStopsOnSignals(t *testing.T) {
	t.Parallel()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		goCmd = filepath.Join(runtime.GOROOT(), "bin", "go") //nolint:staticcheck // fallback when go is not on PATH
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel) // after the parallel subtests
	bin := filepath.Join(t.TempDir(), "quickstart")
	if out, err := exec.CommandContext(ctx, goCmd, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			url, _ := testdb.NewSchema(t)
			var stdout, stderr strings.Builder
			cmd := exec.CommandContext(ctx, bin)
			cmd.Env = append(os.Environ(), "GAMEPERSIST_DATABASE_URL="+url)
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			first := flux.TickNumber(time.Now(), 600*time.Millisecond)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			if err := waitForTick(ctx, url, first+2, done); err != nil {
				_ = cmd.Process.Kill()
				t.Logf("killed: %v", <-done)
				t.Fatalf("%v\nstderr: %s", err, stderr.String())
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			if err := <-done; err != nil {
				t.Fatalf("after %v: %v\nstdout: %s\nstderr: %s", sig, err, stdout.String(), stderr.String())
			}
			if p := parsePlayed(t, stdout.String()); p.steps == 0 || stderr.Len() != 0 {
				t.Fatalf("after %v: %+v, stderr %q", sig, p, stderr.String())
			}
		})
	}
	t.Run("no database", func(t *testing.T) {
		t.Parallel()
		var stdout, stderr strings.Builder
		cmd := exec.CommandContext(ctx, bin)
		cmd.Env = append(os.Environ(), "GAMEPERSIST_DATABASE_URL=postgres://nobody:s3cret-pw@127.0.0.1:1/x?connect_timeout=2")
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 1 {
			t.Fatalf("exit: %v, want status 1", err)
		}
		line := stderr.String()
		if stdout.Len() != 0 || strings.Count(line, "\n") != 1 || !strings.HasPrefix(line, "quickstart: no database answered") ||
			strings.Contains(line, "s3cret-pw") {
			t.Fatalf("stdout %q, stderr %q", stdout.String(), line)
		}
	})
}
