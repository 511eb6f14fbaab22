package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// result is one player count's measurement; its JSON keys are the documented -json output.
type result struct {
	Players              int     `json:"players"`
	Rooms                int     `json:"rooms"`
	Ticks                int     `json:"ticks"`
	LibraryP50Ms         float64 `json:"library_p50_ms"`
	LibraryP99Ms         float64 `json:"library_p99_ms"`
	FloorP50Ms           float64 `json:"floor_p50_ms"`
	FloorP99Ms           float64 `json:"floor_p99_ms"`
	SeedPatternP50Ms     float64 `json:"seed_pattern_p50_ms"`
	SeedPatternP99Ms     float64 `json:"seed_pattern_p99_ms"`
	StatementsPerTick    float64 `json:"statements_per_tick"`
	WritesPerTick        float64 `json:"library_write_statements_per_tick"`
	SeedStatementsPerTik float64 `json:"seed_pattern_statements_per_tick"`
	ChangesPerTick       float64 `json:"changes_per_tick"`
	RatioToFloor         float64 `json:"ratio_to_floor"`
	SpeedupVsSeedPattern float64 `json:"speedup_vs_seed_pattern"`

	// Per-tick durations, for -csv and -chart.
	library, floor, seed []time.Duration
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// percentile returns the p-th percentile (0..100) of ds by nearest rank.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func (r *result) summarize() {
	r.LibraryP50Ms = ms(percentile(r.library, 50))
	r.LibraryP99Ms = ms(percentile(r.library, 99))
	r.FloorP50Ms = ms(percentile(r.floor, 50))
	r.FloorP99Ms = ms(percentile(r.floor, 99))
	r.SeedPatternP50Ms = ms(percentile(r.seed, 50))
	r.SeedPatternP99Ms = ms(percentile(r.seed, 99))
	if r.FloorP50Ms > 0 {
		r.RatioToFloor = round(r.LibraryP50Ms/r.FloorP50Ms, 3)
	}
	if r.LibraryP50Ms > 0 && r.SeedPatternP50Ms > 0 {
		r.SpeedupVsSeedPattern = round(r.SeedPatternP50Ms/r.LibraryP50Ms, 1)
	}
	for _, p := range []*float64{&r.LibraryP50Ms, &r.LibraryP99Ms, &r.FloorP50Ms, &r.FloorP99Ms, &r.SeedPatternP50Ms, &r.SeedPatternP99Ms} {
		*p = round(*p, 3)
	}
}

func round(v float64, digits int) float64 {
	f := math.Pow(10, float64(digits))
	return math.Round(v*f) / f
}

func printTable(w io.Writer, rs []result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "players\tticks\tlibrary p50 ms\tlibrary p99 ms\tfloor p50 ms\tratio to floor\tseed-pattern p50 ms\tspeed-up\tstatements/tick (lib)\tstatements/tick (seed)\t")
	for _, r := range rs {
		fmt.Fprintf(tw, "%d\t%d\t%.3f\t%.3f\t%.3f\t%.2f×\t%.3f\t%.1f×\t%.1f\t%.1f\t\n",
			r.Players, r.Ticks, r.LibraryP50Ms, r.LibraryP99Ms, r.FloorP50Ms, r.RatioToFloor,
			r.SeedPatternP50Ms, r.SpeedupVsSeedPattern, r.StatementsPerTick, r.SeedStatementsPerTik)
	}
	return tw.Flush()
}

func writeJSON(w io.Writer, rs []result) error {
	enc := json.NewEncoder(w)
	for _, r := range rs {
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	return nil
}

// writeCSV writes one row per (players, path, tick) with the tick's duration in ms.
func writeCSV(path string, rs []result) (err error) {
	f, err := os.Create(path) //nolint:gosec // the path is the user's own -csv flag
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	cw := csv.NewWriter(f)
	if err := cw.Write([]string{"players", "path", "tick", "ms"}); err != nil {
		return err
	}
	for _, r := range rs {
		for _, s := range []struct {
			name string
			ds   []time.Duration
		}{{"library", r.library}, {"floor", r.floor}, {"seed_pattern", r.seed}} {
			for i, d := range s.ds {
				row := []string{strconv.Itoa(r.Players), s.name, strconv.Itoa(i + 1), strconv.FormatFloat(ms(d), 'f', 4, 64)}
				if err := cw.Write(row); err != nil {
					return err
				}
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

// auditTicks are the tick times the audit published for its MUD server (ms, ticks 1–4).
var auditTicks = []float64{3400, 6400, 15100, 17400}

// drawChart plots tick time over tick number, log scale: per player count, the library
// (solid) and the audit's pattern (dashed) in one colour, plus the four tick times the
// audit itself published, for scale.
func drawChart(path string, rs []result) error {
	p := plot.New()
	p.Title.Text = "flux tick time: gamepersist vs the audit's per-player pattern (same world, same database)"
	p.X.Label.Text = "tick"
	p.Y.Label.Text = "tick time, ms (log scale)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Legend.Top = true
	p.Legend.Left = false
	p.Legend.TextStyle.Font.Size = vg.Points(9)

	for i, r := range rs {
		c := plotutil.Color(i)
		for _, s := range []struct {
			label  string
			ds     []time.Duration
			dashes []vg.Length
		}{
			{fmt.Sprintf("library, %d players", r.Players), r.library, nil},
			{fmt.Sprintf("audit pattern, %d players", r.Players), r.seed, []vg.Length{vg.Points(6), vg.Points(3)}},
		} {
			if len(s.ds) == 0 {
				continue
			}
			l, err := plotter.NewLine(xys(s.ds))
			if err != nil {
				return err
			}
			l.Color, l.Dashes, l.Width = c, s.dashes, vg.Points(1.2)
			p.Add(l)
			p.Legend.Add(s.label, l)
		}
	}
	pts := make(plotter.XYs, len(auditTicks))
	for i, v := range auditTicks {
		pts[i].X, pts[i].Y = float64(i+1), v
	}
	audit, points, err := plotter.NewLinePoints(pts)
	if err != nil {
		return err
	}
	audit.Width = vg.Points(2)
	points.Shape = draw.CircleGlyph{}
	p.Add(audit, points)
	p.Legend.Add("the audit's published ticks (3.4 s → 17.4 s)", audit, points)

	// Head room above the data so the legend covers no line.
	p.Y.Max = math.Max(p.Y.Max, 1e6)
	p.Y.Min = math.Min(p.Y.Min, 0.05)
	return p.Save(11*vg.Inch, 6.5*vg.Inch, path)
}

func xys(ds []time.Duration) plotter.XYs {
	pts := make(plotter.XYs, len(ds))
	for i, d := range ds {
		pts[i].X = float64(i + 1)
		pts[i].Y = math.Max(ms(d), 0.001) // log scale needs > 0
	}
	return pts
}
