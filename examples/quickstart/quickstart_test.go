package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gamepersist/gamepersist/internal/testkit/testdb"
)

// TestQuickstartOnPostgres runs the quickstart on its own schema and an in-process NATS
// server and checks what it prints: one player evaluated and changed (eldritch at night,
// 100 → 99), the change received from NATS, and a cold room cache. A second run of the
// same game minute changes nothing: the player was already ticked this minute.
func TestQuickstartOnPostgres(t *testing.T) {
	t.Parallel()
	url, _ := testdb.NewSchema(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := withNATS("", func(nats string) error { return run(ctx, url, nats, &out) }); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range []string{": 1 player evaluated, 0 already ticked, 1 changed, 2 statements\n",
		"published on events.lucidity_change.p1: p1 lucidity 100 -> 99 (lucid)\n", "room cache hits=0 misses=1 loads=1\n"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("output lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if err := withNATS("", func(nats string) error { return run(ctx, url, nats, &out) }); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), ": 1 player evaluated, 1 already ticked, 0 changed, 1 statements") || strings.Contains(out.String(), "published") {
		t.Fatalf("the same game minute run again changed something:\n%s", out.String())
	}
}

// TestQuickstartNoDatabase checks that an unreachable database is an error that says so
// and does not print the password.
func TestQuickstartNoDatabase(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out bytes.Buffer
	err := run(ctx, "postgres://nobody:s3cret-pw@127.0.0.1:1/x?connect_timeout=2", "nats://127.0.0.1:1", &out)
	if err == nil {
		t.Fatal("run succeeded without a database")
	}
	if !strings.Contains(err.Error(), "no database answered") || strings.Contains(err.Error(), "s3cret-pw") {
		t.Fatalf("error = %v", err)
	}
	if out.Len() != 0 {
		t.Fatalf("printed %q before failing", out.String())
	}
}

// TestREADMEQuickstartIsThisProgram: the README's quickstart block is, line for line, the
// part of run between the quickstart markers (one tab less indented), so the README's
// code is code this package compiles and the test above runs.
func TestREADMEQuickstartIsThisProgram(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(src)
	begin := strings.Index(s, "// quickstart:begin\n")
	end := strings.Index(s, "\t// quickstart:end")
	if begin < 0 || end < begin {
		t.Fatal("main.go lacks the quickstart markers")
	}
	var want strings.Builder
	for _, line := range strings.SplitAfter(s[begin+len("// quickstart:begin\n"):end], "\n") {
		want.WriteString(strings.TrimPrefix(line, "\t"))
	}
	r := string(readme)
	start := strings.Index(r, "## Quickstart")
	if start < 0 {
		t.Fatal("README has no Quickstart section")
	}
	open := strings.Index(r[start:], "```go\n")
	if open < 0 {
		t.Fatal("README's Quickstart has no go block")
	}
	body := r[start+open+len("```go\n"):]
	body = body[:strings.Index(body, "```\n")]
	if body != want.String() {
		t.Fatalf("README's quickstart differs from examples/quickstart/main.go:\n--- README\n%s--- main.go\n%s", body, want.String())
	}
}
