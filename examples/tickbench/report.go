package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"image/color"
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
	"gonum.org/v1/plot/vg/vgimg"
)

// result is one player count's measurement; its JSON keys are the documented -json output.
// The blocking paths (library, hand-written, in-memory floor), the non-blocking Step and
// the evaluation run on all Ticks; the audit's two patterns on the first SeedTicks, and
// every figure comparing them with the library (library_p50_ms_seed_ticks, the
// speed-ups) is taken over those same ticks.
type result struct {
	Players              int     `json:"players"`
	Rooms                int     `json:"rooms"`
	Ticks                int     `json:"ticks"`
	LibraryP50Ms         float64 `json:"library_p50_ms"`
	LibraryP99Ms         float64 `json:"library_p99_ms"`
	FloorP50Ms           float64 `json:"floor_p50_ms"` // the in-memory floor
	FloorP99Ms           float64 `json:"floor_p99_ms"`
	SeedPatternP50Ms     float64 `json:"seed_pattern_p50_ms"`
	SeedPatternP99Ms     float64 `json:"seed_pattern_p99_ms"`
	StatementsPerTick    float64 `json:"statements_per_tick"`
	WritesPerTick        float64 `json:"library_write_statements_per_tick"`
	SeedStatementsPerTik float64 `json:"seed_pattern_statements_per_tick"`
	ChangesPerTick       float64 `json:"changes_per_tick"`
	RatioToFloor         float64 `json:"ratio_to_floor"`          // library ÷ in-memory floor, p50
	SpeedupVsSeedPattern float64 `json:"speedup_vs_seed_pattern"` // over the SeedTicks ticks

	HandP50Ms               float64 `json:"hand_p50_ms"`
	HandP99Ms               float64 `json:"hand_p99_ms"`
	RatioToHand             float64 `json:"ratio_to_hand"` // library ÷ hand-written, p50
	StallP50Ms              float64 `json:"stall_p50_ms"`
	StallP99Ms              float64 `json:"stall_p99_ms"`
	EvalP50Ms               float64 `json:"eval_p50_ms"`
	StallToEval             float64 `json:"stall_to_eval"` // stall p50 ÷ eval p50
	DurableLagP50Ms         float64 `json:"durable_lag_p50_ms"`
	DurableLagP99Ms         float64 `json:"durable_lag_p99_ms"`
	SeedTicks               int     `json:"seed_ticks"`
	LibraryP50MsSeedTicks   float64 `json:"library_p50_ms_seed_ticks"`
	Flush3P50Ms             float64 `json:"seed_flush3_p50_ms"`
	Flush3P99Ms             float64 `json:"seed_flush3_p99_ms"`
	Flush3RoundTripsPerTick float64 `json:"seed_flush3_round_trips_per_tick"`
	SpeedupVsFlush3         float64 `json:"speedup_vs_seed_flush3"` // over the SeedTicks ticks
	ChangesMatch            bool    `json:"changes_match"`

	// Per-tick durations, for -csv and -chart.
	library, floor, hand, stall, eval, seed, flush3 []time.Duration
	// The comparison of the paths' changes: ticks compared, ticks that differed, the
	// first differences.
	comparedTicks, mismatchedTicks int
	mismatches                     []string
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

// ratio is a/b rounded to digits, 0 when either is 0.
func ratio(a, b float64, digits int) float64 {
	if a <= 0 || b <= 0 {
		return 0
	}
	return round(a/b, digits)
}

func (r *result) summarize() {
	p := func(ds []time.Duration, q float64) float64 { return round(ms(percentile(ds, q)), 3) }
	r.LibraryP50Ms, r.LibraryP99Ms = p(r.library, 50), p(r.library, 99)
	r.FloorP50Ms, r.FloorP99Ms = p(r.floor, 50), p(r.floor, 99)
	r.HandP50Ms, r.HandP99Ms = p(r.hand, 50), p(r.hand, 99)
	r.StallP50Ms, r.StallP99Ms = p(r.stall, 50), p(r.stall, 99)
	r.EvalP50Ms = p(r.eval, 50)
	r.SeedPatternP50Ms, r.SeedPatternP99Ms = p(r.seed, 50), p(r.seed, 99)
	r.Flush3P50Ms, r.Flush3P99Ms = p(r.flush3, 50), p(r.flush3, 99)
	r.LibraryP50MsSeedTicks = p(r.library[:min(len(r.library), r.SeedTicks)], 50)

	r.RatioToFloor = ratio(r.LibraryP50Ms, r.FloorP50Ms, 3)
	r.RatioToHand = ratio(r.LibraryP50Ms, r.HandP50Ms, 3)
	r.StallToEval = ratio(r.StallP50Ms, r.EvalP50Ms, 2)
	r.SpeedupVsSeedPattern = ratio(r.SeedPatternP50Ms, r.LibraryP50MsSeedTicks, 1)
	r.SpeedupVsFlush3 = ratio(r.Flush3P50Ms, r.LibraryP50MsSeedTicks, 1)
}

func round(v float64, digits int) float64 {
	f := math.Pow(10, float64(digits))
	return math.Round(v*f) / f
}

// printTable prints three tables: the blocking tick and its floors (every tick), the
// non-blocking mode (every tick), and the audit's patterns against the library over the
// ticks they ran on; then whether the paths' changes matched.
func printTable(w io.Writer, rs []result) error {
	section := func(title, header string, row func(tw io.Writer, r result)) error {
		fmt.Fprintf(w, "\n%s\n", title)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, header)
		for _, r := range rs {
			row(tw, r)
		}
		return tw.Flush()
	}
	err := section("blocking tick (Runner.Tick) and its floors, every tick",
		"players\tticks\tlibrary p50 / p99 ms\thand-written p50 ms\tlibrary ÷ hand\tin-memory floor p50 ms\tlibrary ÷ floor\tstatements/tick\t",
		func(tw io.Writer, r result) {
			fmt.Fprintf(tw, "%d\t%d\t%.3f / %.3f\t%.3f\t%.2f×\t%.3f\t%.2f×\t%.2f\t\n",
				r.Players, r.Ticks, r.LibraryP50Ms, r.LibraryP99Ms, r.HandP50Ms, r.RatioToHand, r.FloorP50Ms, r.RatioToFloor, r.StatementsPerTick)
		})
	if err != nil {
		return err
	}
	err = section("non-blocking tick (Runner.Start, Step), every tick",
		"players\tstall p50 / p99 ms\tevaluation p50 ms\tstall ÷ evaluation\tdurable lag p50 / p99 ms\t",
		func(tw io.Writer, r result) {
			fmt.Fprintf(tw, "%d\t%.3f / %.3f\t%.3f\t%.2f×\t%.1f / %.1f\t\n",
				r.Players, r.StallP50Ms, r.StallP99Ms, r.EvalP50Ms, r.StallToEval, r.DurableLagP50Ms, r.DurableLagP99Ms)
		})
	if err != nil {
		return err
	}
	err = section("the audit's patterns, first -seed-ticks ticks only; the library's p50 and the speed-ups over those same ticks",
		"players\tticks\tlibrary p50 ms\trooms/player + 3 flushes p50 ms\tspeed-up\tround trips/tick\trooms/player + UPDATE/change p50 ms\tspeed-up\tround trips/tick\t",
		func(tw io.Writer, r result) {
			fmt.Fprintf(tw, "%d\t%d\t%.3f\t%.3f\t%.1f×\t%.1f\t%.3f\t%.1f×\t%.1f\t\n",
				r.Players, min(r.SeedTicks, r.Ticks), r.LibraryP50MsSeedTicks, r.Flush3P50Ms, r.SpeedupVsFlush3, r.Flush3RoundTripsPerTick,
				r.SeedPatternP50Ms, r.SpeedupVsSeedPattern, r.SeedStatementsPerTik)
		})
	if err != nil {
		return err
	}
	fmt.Fprintln(w)
	for _, r := range rs {
		if r.ChangesMatch {
			fmt.Fprintf(w, "%d players: every path made the same changes (player, old and new lucidity) on each of %d ticks\n", r.Players, r.comparedTicks)
		} else {
			fmt.Fprintf(w, "%d players: CHANGES DIFFER on %d of %d ticks\n", r.Players, r.mismatchedTicks, r.comparedTicks)
		}
	}
	return nil
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
		}{{"library", r.library}, {"hand", r.hand}, {"floor", r.floor}, {"stall", r.stall}, {"evaluate", r.eval},
			{"seed_pattern", r.seed}, {"seed_flush3", r.flush3}} {
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
// They are quoted figures from another machine, not measurements of this run: the chart
// marks them as such.
var auditTicks = []float64{3400, 6400, 15100, 17400}

// publishedLabel is the legend entry of the audit's published tick times.
const publishedLabel = "the audit's server, ticks 1-4: published, not measured"

// Chart layout: size, and the y range's margin around the data (a factor, log scale).
const (
	chartWidth, chartHeight = 11 * vg.Inch, 6.5 * vg.Inch
	yMargin                 = 1.5
)

// chart is the tick-time chart before it is drawn: the plot (axes and series, its own
// legend left empty so that nothing is drawn over the data) and the legend drawn in a
// column of its own right of the plot. Labels lists the legend's entries in order.
type chart struct {
	plot   *plot.Plot
	legend plot.Legend
	labels []string
	// plotters are what was added to the plot, in order.
	plotters []plot.Plotter
	// dataMin and dataMax bound every value drawn (ms), the published figures included.
	dataMin, dataMax float64
}

// newChart builds the chart of tick time over tick number, log scale: per player count
// one colour, with the library's blocking tick (solid), its floor — the hand-written tick
// — (dotted), the non-blocking mode's caller-side stall (dot-dash), and the audit's two
// patterns (dashed: short dashes for per-player rooms + 3 flushes, long for per-player
// rooms + one UPDATE per change); the audit's own published tick times as labelled hollow
// markers without a line (quoted figures). The y range is fitted to the data, a factor
// yMargin either side.
func newChart(rs []result) (*chart, error) {
	c := &chart{plot: plot.New(), legend: plot.NewLegend(), dataMin: math.Inf(1), dataMax: math.Inf(-1)}
	p := c.plot
	p.Title.Text = "flux tick time: the library, its floor and the audit's patterns (one world, one database, the same changes)"
	p.Title.TextStyle.Font.Size = vg.Points(10)
	p.X.Label.Text = "tick"
	p.Y.Label.Text = "tick time, ms (log scale)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.TickerFunc(logTicks)
	p.X.Tick.Marker = plot.TickerFunc(tickNumbers)
	p.Add(plotter.NewGrid())
	draws := func(ps ...plot.Plotter) {
		p.Add(ps...)
		c.plotters = append(c.plotters, ps...)
	}
	c.legend.Top, c.legend.Left = true, true
	c.legend.TextStyle.Font.Size = vg.Points(9)
	c.legend.Padding = vg.Points(3)

	add := func(label string, thumbs ...plot.Thumbnailer) {
		c.legend.Add(label, thumbs...)
		c.labels = append(c.labels, label)
	}
	for i, r := range rs {
		col := plotutil.Color(i)
		for _, s := range []struct {
			label  string
			ds     []time.Duration
			dashes []vg.Length
		}{
			{fmt.Sprintf("library (blocking Tick), %d players", r.Players), r.library, nil},
			{fmt.Sprintf("floor: hand-written tick, %d players", r.Players), r.hand, []vg.Length{vg.Points(1), vg.Points(2)}},
			{fmt.Sprintf("non-blocking Step: caller's stall, %d players", r.Players), r.stall, []vg.Length{vg.Points(6), vg.Points(2), vg.Points(1), vg.Points(2)}},
			{fmt.Sprintf("audit: rooms per player + 3 flushes, %d players", r.Players), r.flush3, []vg.Length{vg.Points(3), vg.Points(3)}},
			{fmt.Sprintf("audit: rooms per player + UPDATE per change, %d players", r.Players), r.seed, []vg.Length{vg.Points(9), vg.Points(3)}},
		} {
			if len(s.ds) == 0 {
				continue
			}
			pts := xys(s.ds)
			c.fit(pts)
			l, err := plotter.NewLine(pts)
			if err != nil {
				return nil, err
			}
			l.Color, l.Dashes, l.Width = col, s.dashes, vg.Points(1.2)
			draws(l)
			add(s.label, l)
		}
	}

	pts := make(plotter.XYs, len(auditTicks))
	labels := make([]string, len(auditTicks))
	for i, v := range auditTicks {
		pts[i].X, pts[i].Y = float64(i+1), v
		labels[i] = strconv.FormatFloat(v/1000, 'f', 1, 64) + " s (published)"
	}
	c.fit(pts)
	published, err := plotter.NewScatter(pts)
	if err != nil {
		return nil, err
	}
	published.Shape = draw.BoxGlyph{}
	published.Color = color.Black
	published.Radius = vg.Points(4)
	ring, err := plotter.NewScatter(pts) // a hollow marker: a white box inside the black one
	if err != nil {
		return nil, err
	}
	ring.Shape, ring.Color, ring.Radius = draw.BoxGlyph{}, color.White, vg.Points(2.5)
	// Each figure labelled right of its marker, alternately below and above it, so that
	// neighbouring figures' labels do not overlap.
	var quoted []plot.Plotter
	for parity, dy := range []vg.Length{-vg.Points(11), vg.Points(4)} {
		var l plotter.XYLabels
		for i := parity; i < len(pts); i += 2 {
			l.XYs, l.Labels = append(l.XYs, pts[i]), append(l.Labels, labels[i])
		}
		q, err := plotter.NewLabels(l)
		if err != nil {
			return nil, err
		}
		for i := range q.TextStyle {
			q.TextStyle[i].Font.Size = vg.Points(8)
			q.TextStyle[i].Color = color.Gray{Y: 0x40}
		}
		q.Offset = vg.Point{X: vg.Points(7), Y: dy}
		quoted = append(quoted, q)
	}
	draws(published, ring)
	draws(quoted...)
	add(publishedLabel, published, ring)

	p.Y.Min, p.Y.Max = c.dataMin/yMargin, c.dataMax*yMargin
	// Room right of the last published figure for its label, however few ticks ran.
	p.X.Min, p.X.Max = 0, math.Max(p.X.Max, float64(len(auditTicks))+1.5)
	return c, nil
}

// fit widens the data bounds to pts.
func (c *chart) fit(pts plotter.XYs) {
	for _, pt := range pts {
		c.dataMin, c.dataMax = math.Min(c.dataMin, pt.Y), math.Max(c.dataMax, pt.Y)
	}
}

// layout splits the canvas into the plot's area and, right of it, the legend's column,
// as wide as the legend's longest entry.
func (c *chart) layout(dc draw.Canvas) (plotArea, legendArea draw.Canvas) {
	gap := vg.Points(12)
	width := c.legend.Rectangle(dc).Size().X + gap
	plotArea = draw.Crop(dc, 0, -width, 0, 0)
	legendArea = draw.Crop(dc, dc.Size().X-width+gap, -vg.Points(4), 0, -vg.Points(24))
	return plotArea, legendArea
}

// draw draws the plot and its legend column on dc.
func (c *chart) draw(dc draw.Canvas) {
	plotArea, legendArea := c.layout(dc)
	c.plot.Draw(plotArea)
	c.legend.Draw(legendArea)
}

// drawChart draws the chart of rs (newChart) to a PNG file at path.
func drawChart(path string, rs []result) (err error) {
	c, err := newChart(rs)
	if err != nil {
		return err
	}
	img := vgimg.New(chartWidth, chartHeight)
	dc := draw.New(img)
	dc.SetColor(color.White)
	dc.Fill(dc.Path())
	c.draw(dc)
	f, err := os.Create(path) //nolint:gosec // the path is the user's own -chart flag
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	_, err = vgimg.PngCanvas{Canvas: img}.WriteTo(f)
	return err
}

// logTicks marks 1, 2 and 5 times each power of ten within [lo, hi] (labelled), and the
// other integer multiples unlabelled, so that a range narrower than a decade still has
// labelled ticks.
func logTicks(lo, hi float64) []plot.Tick {
	var ticks []plot.Tick
	if lo <= 0 || hi <= lo {
		return ticks
	}
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
		base := math.Pow(10, e)
		for m := 1; m <= 9; m++ {
			v := float64(m) * base
			if v < lo || v > hi {
				continue
			}
			t := plot.Tick{Value: v}
			if m == 1 || m == 2 || m == 5 {
				t.Label = strconv.FormatFloat(v, 'g', -1, 64)
			}
			ticks = append(ticks, t)
		}
	}
	return ticks
}

// tickNumbers marks whole tick numbers within [lo, hi], every 1, 2 or 5 × 10^k ticks so
// that about ten are labelled.
func tickNumbers(lo, hi float64) []plot.Tick {
	var ticks []plot.Tick
	if hi <= lo {
		return ticks
	}
	// The steps 1, 2, 5, 10, 20, 50, …: the first with at most ten ticks in the range.
	nth := func(k int) float64 { return []float64{1, 2, 5}[k%3] * math.Pow(10, float64(k/3)) }
	k := 0
	for (hi-lo)/nth(k) > 10 {
		k++
	}
	step := nth(k)
	for v := math.Ceil(lo/step) * step; v <= hi; v += step {
		ticks = append(ticks, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', 0, 64)})
	}
	return ticks
}

func xys(ds []time.Duration) plotter.XYs {
	pts := make(plotter.XYs, len(ds))
	for i, d := range ds {
		pts[i].X = float64(i + 1)
		pts[i].Y = math.Max(ms(d), 0.001) // log scale needs > 0
	}
	return pts
}
