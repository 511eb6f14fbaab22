package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// fakeResults are two player counts with made-up tick times (no database): the slowest
// measured tick is the audit pattern's 900 ms, the fastest the stall's 0.05 ms.
func fakeResults() []result {
	ticks := func(msv ...float64) []time.Duration {
		ds := make([]time.Duration, len(msv))
		for i, v := range msv {
			ds[i] = time.Duration(v * float64(time.Millisecond))
		}
		return ds
	}
	return []result{
		{Players: 10, library: ticks(0.5, 0.4, 0.45), hand: ticks(0.45, 0.4, 0.4), floor: ticks(0.2, 0.25, 0.3),
			stall: ticks(0.05, 0.06, 0.05), seed: ticks(3, 2.5, 2.8), flush3: ticks(2, 2.1, 2)},
		{Players: 1000, library: ticks(9, 8, 8.5), hand: ticks(8, 8, 8), floor: ticks(7, 7.5, 7),
			stall: ticks(0.5, 0.6, 0.5), seed: ticks(900, 850, 880), flush3: ticks(300, 310)},
	}
}

// TestChart checks what the chart's values say: the legend sits right of the data area
// (the plot's own legend, drawn over the data, is empty), every series and the floor have
// their entry, the audit's figures are marked as published rather than measured, and the
// y range is fitted to the data (within a factor of 2 of its largest and smallest value,
// the published figures included), with labelled ticks. (TestTickbenchJSON draws a real
// run's chart to a PNG.)
func TestChart(t *testing.T) {
	t.Parallel()
	rs := fakeResults()
	c, err := newChart(rs)
	if err != nil {
		t.Fatal(err)
	}

	dc := draw.New(vgimg.New(chartWidth, chartHeight))
	plotArea, legendArea := c.layout(dc)
	data := c.plot.DataCanvas(plotArea)
	legend := c.legend.Rectangle(legendArea)
	if legend.Min.X < data.Max.X || legend.Max.X > dc.Max.X || legend.Size().X <= 0 {
		t.Errorf("legend %v is not right of the data area %v within the canvas %v", legend, data.Rectangle, dc.Rectangle)
	}
	if r := c.plot.Legend.Rectangle(plotArea); r.Size().X != 0 || r.Size().Y != 0 {
		t.Errorf("the plot's own legend (drawn over the data) has entries: %v", r)
	}

	var want []string
	for _, n := range []int{10, 1000} {
		for _, f := range []string{"library (blocking Tick), %d players", "floor: hand-written tick, %d players",
			"non-blocking Step: caller's stall, %d players", "audit: rooms per player + 3 flushes, %d players",
			"audit: rooms per player + UPDATE per change, %d players"} {
			want = append(want, fmt.Sprintf(f, n))
		}
	}
	for _, want := range append(want, publishedLabel) {
		if !slices.Contains(c.labels, want) {
			t.Errorf("legend lacks %q: %q", want, c.labels)
		}
	}
	if !strings.Contains(publishedLabel, "published, not measured") {
		t.Errorf("published label %q", publishedLabel)
	}
	// The published figures are markers with a "published" label each, not a line like
	// the measurements.
	var lines, scatters int
	var quoted []string
	for _, pl := range c.plotters {
		switch v := pl.(type) {
		case *plotter.Line:
			lines++
		case *plotter.Scatter:
			scatters++
		case *plotter.Labels:
			quoted = append(quoted, v.Labels...)
		}
	}
	if lines != 10 || scatters == 0 || len(quoted) != len(auditTicks) || !strings.Contains(quoted[len(quoted)-1], "17.4 s (published)") {
		t.Errorf("%d lines, %d scatters, labels %q: want 10 measured lines and the published figures as labelled markers",
			lines, scatters, quoted)
	}

	dataMax := slices.Max(auditTicks) // 17,400 ms: above every measured tick here
	dataMin := 0.05
	if y := c.plot.Y; y.Max < dataMax || y.Max > 2*dataMax || y.Min > dataMin || y.Min < dataMin/2 {
		t.Errorf("y range [%v, %v], want within a factor of 2 of the data's [%v, %v]", y.Min, y.Max, dataMin, dataMax)
	}
	labelled := 0
	for _, tk := range c.plot.Y.Tick.Marker.Ticks(c.plot.Y.Min, c.plot.Y.Max) {
		if tk.Label != "" {
			labelled++
		}
	}
	if labelled < 3 {
		t.Errorf("%d labelled y ticks", labelled)
	}
	// A narrow range (less than a decade) still has labelled ticks.
	if n := len(slices.DeleteFunc(logTicks(3, 8), func(tk plot.Tick) bool { return tk.Label == "" })); n != 1 {
		t.Errorf("logTicks(3, 8) has %d labelled ticks, want 1 (5)", n)
	}
}

// TestTickNumbers: whole tick numbers, about ten labelled, whatever the range.
func TestTickNumbers(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		lo, hi float64
		want   []float64
	}{
		{0, 5.5, []float64{0, 1, 2, 3, 4, 5}},
		{0, 20, []float64{0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20}},
		{0, 600, []float64{0, 100, 200, 300, 400, 500, 600}},
	} {
		var got []float64
		for _, tk := range tickNumbers(c.lo, c.hi) {
			got = append(got, tk.Value)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("tickNumbers(%v, %v) = %v, want %v", c.lo, c.hi, got, c.want)
		}
	}
}
