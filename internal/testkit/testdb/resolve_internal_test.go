package testdb

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// A database address that refuses connections at once.
const deadURL = "postgres://postgres:secret@127.0.0.1:1/postgres?sslmode=disable&connect_timeout=2"

func TestResolutionOrder(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	noDocker := func() bool { return false }
	mustNotStart := func(context.Context) (string, error) {
		t.Error("a container was started although an earlier step answered")
		return "", errors.New("unexpected")
	}

	// 1. The environment variable wins, unchecked.
	if u, why := resolveWith(ctx, resolver{envURL: "postgres://from-env/x", defaultURL: deadURL, dockerAvailable: noDocker, startContainer: mustNotStart}); u != "postgres://from-env/x" || why != "" {
		t.Fatalf("env: %q, %q", u, why)
	}
	// 3. The default does not answer and a Docker engine does: the container's URL.
	started := 0
	withDocker := resolver{defaultURL: deadURL, dockerAvailable: func() bool { return true },
		startContainer: func(context.Context) (string, error) { started++; return "postgres://container/x", nil }}
	if u, why := resolveWith(ctx, withDocker); u != "postgres://container/x" || why != "" || started != 1 {
		t.Fatalf("container: %q, %q, started %d", u, why, started)
	}
	// 4. Nothing answers: no URL, and one line saying how to get a database.
	u, why := resolveWith(ctx, resolver{defaultURL: deadURL, dockerAvailable: noDocker, startContainer: mustNotStart})
	if u != "" || !strings.Contains(why, EnvURL) || strings.Contains(why, "\n") {
		t.Fatalf("nothing: %q, %q", u, why)
	}
	// A failing container start is reported, also on one line.
	failing := withDocker
	failing.startContainer = func(context.Context) (string, error) { return "", errors.New("pull refused") }
	if u, why := resolveWith(ctx, failing); u != "" || !strings.Contains(why, "pull refused") {
		t.Fatalf("failed container: %q, %q", u, why)
	}
}

// TestDockerAvailableHere documents this machine: no Docker engine, so the testcontainers
// step is skipped without a wait.
func TestDockerAvailableHere(t *testing.T) {
	t.Setenv("DOCKER_HOST", "tcp://127.0.0.1:1")
	start := time.Now()
	if dockerAvailable() {
		t.Fatal("a refused DOCKER_HOST counted as an engine")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("the check took %v", d)
	}
}
