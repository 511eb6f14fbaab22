package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gamepersist/gamepersist/internal/testkit/testdb"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestTickbenchJSON runs tickbench with small counts and checks its JSON: every documented
// key, one write statement per tick on the library path (when every tick changes
// something), one room query per player plus one update per change on the audit's
// pattern, and the derived ratios.
func TestTickbenchJSON(t *testing.T) {
	dbURL := testdb.URL(t)
	dir := t.TempDir()
	csvPath, chartPath := filepath.Join(dir, "ticks.csv"), filepath.Join(dir, "ticks.png")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	err := run(ctx, []string{"-players", "20,200", "-ticks", "8", "-json", "-database-url", dbURL,
		"-csv", csvPath, "-chart", chartPath}, &out, &errOut)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, errOut.String())
	}
	keys := []string{"players", "ticks", "library_p50_ms", "library_p99_ms", "floor_p50_ms",
		"seed_pattern_p50_ms", "statements_per_tick", "ratio_to_floor", "speedup_vs_seed_pattern"}
	sc := bufio.NewScanner(&out)
	lines := 0
	for sc.Scan() {
		lines++
		var m map[string]float64
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %d is not a JSON object of numbers: %v: %s", lines, err, sc.Text())
		}
		for _, k := range keys {
			if _, ok := m[k]; !ok {
				t.Errorf("line %d lacks key %q", lines, k)
			}
		}
		if m["ticks"] != 8 {
			t.Errorf("ticks = %v, want 8", m["ticks"])
		}
		// Library: one load per tick, at most one write, plus the one cold room load.
		if w := m["library_write_statements_per_tick"]; w <= 0 || w > 1 {
			t.Errorf("players %v: library write statements per tick = %v, want (0, 1]", m["players"], w)
		}
		if s := m["statements_per_tick"]; s > 2+1.0/8+1e-9 {
			t.Errorf("players %v: library statements per tick = %v, want ≤ 2 (+1 cold room load)", m["players"], s)
		}
		// The audit's pattern: a load, one room query per player, one update per change.
		if want := 1 + m["players"] + m["changes_per_tick"]; m["seed_pattern_statements_per_tick"] < want-0.05 || m["seed_pattern_statements_per_tick"] > want+0.05 {
			t.Errorf("players %v: seed pattern statements per tick = %v, want %v", m["players"], m["seed_pattern_statements_per_tick"], want)
		}
		if m["library_p50_ms"] <= 0 || m["ratio_to_floor"] <= 0 || m["speedup_vs_seed_pattern"] <= 0 {
			t.Errorf("players %v: non-positive timings %v", m["players"], m)
		}
	}
	if lines != 2 {
		t.Fatalf("got %d JSON lines, want 2:\n%s", lines, out.String())
	}
	csvData, err := os.ReadFile(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	// Header + 2 player counts × 3 paths × 8 ticks.
	if n := strings.Count(string(csvData), "\n"); n != 1+2*3*8 {
		t.Errorf("csv has %d lines, want %d", n, 1+2*3*8)
	}
	f, err := os.Open(chartPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("chart is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() < 400 || b.Dy() < 200 {
		t.Errorf("chart is %v, too small", b)
	}
}

func TestTickbenchFlags(t *testing.T) {
	var out, errOut bytes.Buffer
	for _, args := range [][]string{{"-players", "0"}, {"-players", "ten"}, {"-ticks", "0"}} {
		if err := run(context.Background(), args, &out, &errOut); err == nil {
			t.Errorf("run(%v) accepted bad flags", args)
		}
	}
}
