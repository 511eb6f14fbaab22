package natsbridge

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestHistogramBuckets: every value falls in a bucket whose upper bound is at or above
// it and at most 12.5 % above the bucket's lower end; buckets are monotonic.
func TestHistogramBuckets(t *testing.T) {
	t.Parallel()
	values := []uint64{0, 1, 7, 8, 9, 15, 16, 17, 1000, 1 << 20, 123456789, 1<<40 + 5, 1<<63 - 1}
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		values = append(values, rnd.Uint64N(1<<uint(rnd.IntN(63)+1)))
	}
	for _, v := range values {
		i := bucketOf(v)
		if i < 0 || i >= histogramBuckets {
			t.Fatalf("bucketOf(%d) = %d out of range", v, i)
		}
		up := bucketUpper(i)
		if up < v {
			t.Fatalf("bucketUpper(bucketOf(%d)) = %d below the value", v, up)
		}
		if i > 0 && bucketUpper(i-1) >= v {
			t.Fatalf("value %d also fits bucket %d (upper %d)", v, i-1, bucketUpper(i-1))
		}
		if v >= histogramSubBuckets && float64(up-v) > 0.125*float64(v) {
			t.Fatalf("bucket of %d too wide: upper %d", v, up)
		}
	}
}

func TestHistogramQuantiles(t *testing.T) {
	t.Parallel()
	var h histogram
	if q := h.quantiles(0.5); q[0] != 0 {
		t.Fatalf("empty histogram p50 = %v", q[0])
	}
	for i := 1; i <= 1000; i++ {
		h.observe(time.Duration(i) * time.Microsecond)
	}
	q := h.quantiles(0.5, 0.99, 1)
	check := func(name string, got, want time.Duration) {
		if got < want || float64(got) > 1.125*float64(want) {
			t.Errorf("%s = %v, want within [%v, +12.5%%]", name, got, want)
		}
	}
	check("p50", q[0], 500*time.Microsecond)
	check("p99", q[1], 990*time.Microsecond)
	check("max", q[2], 1000*time.Microsecond)
	h.observe(-time.Second) // clock step: counted as zero, never a panic
}

func TestBackoffGrowsAndCaps(t *testing.T) {
	t.Parallel()
	b := newBackoff(10*time.Millisecond, 70*time.Millisecond, 0.2)
	for range 100 {
		for next, want := range map[int]time.Duration{2: 10 * time.Millisecond, 3: 20 * time.Millisecond, 4: 40 * time.Millisecond, 5: 70 * time.Millisecond, 40: 70 * time.Millisecond} {
			got := b.wait(next)
			if got < want*8/10 || got > want*12/10 {
				t.Fatalf("wait(%d) = %v, want %v ± 20 %%", next, got, want)
			}
		}
	}
}
