package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gamepersist/gamepersist/internal/testkit/testdb"
	"github.com/gamepersist/gamepersist/internal/workload/tickload"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestTickbenchJSON runs tickbench with small counts and checks its JSON: every documented
// key, changes_match, one write statement per tick on the library path (when every tick
// changes something), one room query per player plus one update per change on the audit's
// pattern and 3 flushes on its literal variant, the audit's patterns on the first
// -seed-ticks ticks only, and the derived ratios; and the CSV and the chart it writes.
func TestTickbenchJSON(t *testing.T) {
	dbURL := testdb.URL(t)
	dir := t.TempDir()
	csvPath, chartPath := filepath.Join(dir, "ticks.csv"), filepath.Join(dir, "ticks.png")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	const ticks, seedTicks = 8, 5
	err := run(ctx, []string{"-players", "20,200", "-ticks", "8", "-seed-ticks", "5", "-json", "-database-url", dbURL,
		"-csv", csvPath, "-chart", chartPath}, &out, &errOut)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, errOut.String())
	}
	keys := []string{"players", "rooms", "ticks", "library_p50_ms", "library_p99_ms", "floor_p50_ms", "floor_p99_ms",
		"seed_pattern_p50_ms", "seed_pattern_p99_ms", "statements_per_tick", "library_write_statements_per_tick",
		"seed_pattern_statements_per_tick", "changes_per_tick", "ratio_to_floor", "speedup_vs_seed_pattern",
		"stall_p50_ms", "stall_p99_ms", "eval_p50_ms", "hand_p50_ms", "durable_lag_p99_ms",
		"seed_flush3_p50_ms", "seed_flush3_round_trips_per_tick", "library_p50_ms_seed_ticks", "seed_ticks"}
	sc := bufio.NewScanner(&out)
	lines := 0
	for sc.Scan() {
		lines++
		var raw map[string]any
		if err := json.Unmarshal(sc.Bytes(), &raw); err != nil {
			t.Fatalf("line %d is not a JSON object: %v: %s", lines, err, sc.Text())
		}
		if match, ok := raw["changes_match"].(bool); !ok || !match {
			t.Errorf("line %d: changes_match = %v, want true", lines, raw["changes_match"])
		}
		m := map[string]float64{}
		for k, v := range raw {
			if f, ok := v.(float64); ok {
				m[k] = f
			}
		}
		for _, k := range keys {
			if _, ok := m[k]; !ok {
				t.Errorf("line %d lacks numeric key %q", lines, k)
			}
		}
		if m["ticks"] != ticks || m["seed_ticks"] != seedTicks {
			t.Errorf("ticks = %v, seed_ticks = %v, want %d and %d", m["ticks"], m["seed_ticks"], ticks, seedTicks)
		}
		// Library: one load per tick, at most one write, plus the one cold room load.
		if w := m["library_write_statements_per_tick"]; w <= 0 || w > 1 {
			t.Errorf("players %v: library write statements per tick = %v, want (0, 1]", m["players"], w)
		}
		if s := m["statements_per_tick"]; s > 2+1.0/ticks+1e-9 {
			t.Errorf("players %v: library statements per tick = %v, want ≤ 2 (+1 cold room load)", m["players"], s)
		}
		// The audit's patterns: a load, one room query per player, then one update per
		// change, or at most 3 flushes. (changes_per_tick is over every tick, the
		// patterns' over their first 5, and a small world may change nothing on some
		// ticks, so the counts are bounded here; tickload's tests check them exactly, tick
		// by tick.)
		base := 1 + m["players"]
		if got := m["seed_pattern_statements_per_tick"]; got < base || got > base+m["players"] {
			t.Errorf("players %v: seed pattern statements per tick = %v, want in [%v, %v]", m["players"], got, base, base+m["players"])
		}
		if got := m["seed_flush3_round_trips_per_tick"]; got < base || got > base+3 {
			t.Errorf("players %v: 3-flush pattern round trips per tick = %v, want in [%v, %v]", m["players"], got, base, base+3)
		}
		for _, k := range []string{"library_p50_ms", "hand_p50_ms", "stall_p50_ms", "eval_p50_ms", "durable_lag_p99_ms",
			"ratio_to_floor", "speedup_vs_seed_pattern", "speedup_vs_seed_flush3", "library_p50_ms_seed_ticks"} {
			if m[k] <= 0 {
				t.Errorf("players %v: %s = %v, want > 0", m["players"], k, m[k])
			}
		}
	}
	if lines != 2 {
		t.Fatalf("got %d JSON lines, want 2:\n%s", lines, out.String())
	}
	csvData, err := os.ReadFile(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	// Header + 2 player counts × (5 paths × 8 ticks + 2 audit patterns × 5 ticks).
	if n, want := strings.Count(string(csvData), "\n"), 1+2*(5*ticks+2*seedTicks); n != want {
		t.Errorf("csv has %d lines, want %d", n, want)
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

// TestTickbenchCatchesAPerturbedChange runs tickbench with one path's changes perturbed
// in one field of one change on one tick — as a path that computes one change wrong would
// report them — and checks that it fails loudly naming that path and tick, while still
// printing its JSON with changes_match false.
func TestTickbenchCatchesAPerturbedChange(t *testing.T) {
	dbURL := testdb.URL(t)
	for _, c := range []struct {
		victim  tickload.Path
		perturb func(*tickload.ChangeKey)
	}{
		{tickload.Floor, func(k *tickload.ChangeKey) { k.New++ }},
		{tickload.SeedFlush3, func(k *tickload.ChangeKey) { k.Old-- }},
		{tickload.Step, func(k *tickload.ChangeKey) { k.PlayerID += "x" }},
	} {
		t.Run(string(c.victim), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			var out, errOut bytes.Buffer
			o, err := parseFlags([]string{"-players", "100", "-ticks", "4", "-seed-ticks", "4", "-json", "-database-url", dbURL}, &errOut)
			if err != nil {
				t.Fatal(err)
			}
			perturbed := 0
			o.tamper = func(tick int, p tickload.Path, s *tickload.Sample) {
				if p != c.victim || perturbed > 0 || len(s.Changed) == 0 {
					return
				}
				s.Changed = slices.Clone(s.Changed)
				c.perturb(&s.Changed[len(s.Changed)/2])
				s.Digest = s.Changed.Digest()
				perturbed = tick + 1
			}
			err = runOptions(ctx, o, &out, &errOut)
			if perturbed == 0 {
				t.Fatal("no tick of the victim had a change to perturb")
			}
			if err == nil || !strings.Contains(err.Error(), string(c.victim)+" vs library") {
				t.Fatalf("run = %v, want an error naming %s", err, c.victim)
			}
			if want := fmt.Sprintf("tick %d:", perturbed); !strings.Contains(errOut.String(), "CHANGES DIFFER") || !strings.Contains(errOut.String(), want) {
				t.Errorf("stderr does not report the mismatch of %s loudly:\n%s", want, errOut.String())
			}
			var m map[string]any
			if err := json.Unmarshal(out.Bytes(), &m); err != nil {
				t.Fatalf("JSON: %v: %s", err, out.String())
			}
			if m["changes_match"] != false {
				t.Errorf("changes_match = %v, want false", m["changes_match"])
			}
		})
	}
}

func TestTickbenchFlags(t *testing.T) {
	var out, errOut bytes.Buffer
	for _, args := range [][]string{{"-players", "0"}, {"-players", "ten"}, {"-ticks", "0"}, {"-seed-ticks", "-1"}} {
		if err := run(context.Background(), args, &out, &errOut); err == nil {
			t.Errorf("run(%v) accepted bad flags", args)
		}
	}
}
