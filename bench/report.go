package bench

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// line is a workload's figures on one line, for progress.
func (r Result) line() string {
	s := fmt.Sprintf("%-30s %3d clients  %9.1f ops/s  %9s  p50 %7.2f ms  p99 %7.2f ms  cpu %6.0f µs/op",
		r.Name, r.Clients, r.OpsSec, rateStr(r.Bps), r.P50ms, r.P99ms, r.CPUMicrosPerOp)
	if r.Ratio > 0 {
		s += fmt.Sprintf("  %.3f of limit", r.Ratio)
	}
	if r.Errors > 0 {
		s += fmt.Sprintf("  %d errors (%s)", r.Errors, r.FirstError)
	}
	return s
}

// Print writes the report as a table.
func (r *Report) Print(w io.Writer) {
	fmt.Fprintf(w, "EC %s on %d devices, %s per workload, started %s\n", r.EC, r.Pools, r.Duration, r.Started.Format("2006-01-02 15:04:05Z"))
	fmt.Fprintf(w, "limits: %s\n\n", r.Limits)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workload\tclients\tops/s\tMiB/s\tp50 ms\tp99 ms\tcpu s/GiB\tcpu µs/op\tlimit\tratio\terrors\t")
	for _, x := range r.Results {
		lim, gib := "", ""
		if x.Limit > 0 {
			if x.LimitUnit == "bytes/s" {
				lim = rateStr(x.Limit)
			} else {
				lim = fmt.Sprintf("%.0f/s", x.Limit)
			}
		}
		if x.CPUSecPerGiB > 0 && x.Bps > 1<<20 {
			gib = fmt.Sprintf("%.2f", x.CPUSecPerGiB)
		}
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.1f\t%.2f\t%.2f\t%s\t%.0f\t%s\t%.3f\t%d\t\n",
			x.Name, x.Clients, x.OpsSec, x.Bps/(1<<20), x.P50ms, x.P99ms, gib, x.CPUMicrosPerOp, lim, x.Ratio, x.Errors)
	}
	tw.Flush()
	if r.BytesPerObjectPerDevice > 0 {
		fmt.Fprintf(w, "\nspace: %.0f bytes per 1-byte object per device\n", r.BytesPerObjectPerDevice)
	}
	if r.StartObjects > 0 {
		fmt.Fprintf(w, "start: first GET served %.2f s after starting the server on %d objects\n", r.StartSeconds, r.StartObjects)
	}
	fmt.Fprintf(w, "server peak RSS: %.0f MiB\n", float64(r.PeakRSS)/(1<<20))
	for _, x := range r.Results {
		if x.Errors > 0 {
			fmt.Fprintf(w, "%s: %d errors, first: %s\n", x.Name, x.Errors, x.FirstError)
		}
	}
}
