package rebalancer

import "testing"

// The ETA comes from the rate measured, not from the limit, once the job
// has run long enough to have one (issue 19: "ETA 53s" at 17 KiB/s).
func TestETAFromTheMeasuredRate(t *testing.T) {
	job := &Job{Limit: 128 << 20, Plan: Summary{Bytes: 1 << 30}}
	moved := func(bytes int64, secs float64) *Progress {
		return &Progress{RunSeconds: secs, Units: []UnitStatus{{Stats: Stats{Bytes: bytes}}}}
	}
	cases := []struct {
		name string
		p    *Progress
		eta  float64
	}{
		{"nothing measured yet: the limit", moved(0, 0), float64(1<<30) / float64(128<<20)},
		{"too early to trust the rate: the limit", moved(1<<20, 1), float64(1<<30-1<<20) / float64(128<<20)},
		{"slow, well below the limit", moved(17<<10*60, 60), float64(1<<30-17<<10*60) / float64(17<<10)},
		{"done", &Progress{Done: true, RunSeconds: 60}, 0},
	}
	for _, tc := range cases {
		st := NewStatus(job, tc.p, true)
		if d := st.ETA - tc.eta; d > 0.001 || d < -0.001 {
			t.Errorf("%s: ETA %.1fs, want %.1fs (rate %.0f B/s)", tc.name, st.ETA, tc.eta, st.Rate)
		}
	}
}
