package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"context"
	"github.com/strata-storage/strata/admin"
)

// rebalanceFlags are the job settings the start, drain and fail commands
// take.
type rebalanceFlags struct {
	limit              string
	concurrency        int
	ignoreMinPartHours bool
	wait               bool
}

func (f *rebalanceFlags) add(cmd *cobra.Command, withMinPartHours bool) {
	cmd.Flags().StringVar(&f.limit, "limit", "", "bandwidth limit, bytes per second (e.g. 50MiB; 0: none; default: the node's --rebalance-limit)")
	cmd.Flags().IntVar(&f.concurrency, "concurrency", 0, "devices walked at once (default: the node's --rebalance-concurrency)")
	cmd.Flags().BoolVar(&f.wait, "wait", false, "show progress until the rebalance is done")
	if withMinPartHours {
		cmd.Flags().BoolVar(&f.ignoreMinPartHours, "ignore-min-part-hours", false, "move partitions moved within min-part-hours too")
	}
}

func (f *rebalanceFlags) body() (admin.RebalanceRequest, error) {
	b := admin.RebalanceRequest{IgnoreMinPartHours: f.ignoreMinPartHours}
	if f.limit != "" {
		v, err := ParseRate(f.limit)
		if err != nil {
			return b, fmt.Errorf("--limit: %w", err)
		}
		b.Limit = &v
	}
	if f.concurrency != 0 {
		b.Concurrency = &f.concurrency
	}
	return b, nil
}

func rebalanceCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "rebalance", Short: "Move shards to the ring's placement: plan, start, pause, resume, cancel, status"}
	c := newAdminClient(cmd)
	var output string
	var jf rebalanceFlags
	plan := &cobra.Command{
		Use:   "plan",
		Short: "Show what a rebalance would move now (per device and per zone) and how long it takes at the limit; changes nothing",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			body, err := jf.body()
			if err != nil {
				return err
			}
			var sum admin.RebalanceSummary
			if err := set(&sum)(c.PlanRebalance(cmd.Context(), body)); err != nil {
				return err
			}
			return emit(cmd, output, sum, func(w io.Writer) { printPlan(w, sum) })
		},
	}
	outputFlag(plan, &output, "table")
	plan.Flags().StringVar(&jf.limit, "limit", "", "bandwidth limit for the time estimate (default: the node's)")
	plan.Flags().BoolVar(&jf.ignoreMinPartHours, "ignore-min-part-hours", false, "move partitions moved within min-part-hours too")
	start := &cobra.Command{
		Use:   "start",
		Short: "Rebalance the ring and move the data (throttled, resumable)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return startJob(cmd, c, &jf, c.StartRebalance)
		},
	}
	jf.add(start, true)
	state := func(use, short string) *cobra.Command {
		return &cobra.Command{
			Use:   use,
			Short: short,
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				var job admin.Job
				if err := set(&job)(c.RebalanceJobAction(cmd.Context(), use)); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "rebalance %s: %s\n", job.ID, job.State)
				return nil
			},
		}
	}
	var watch bool
	status := &cobra.Command{
		Use:   "status",
		Short: "Progress of the rebalance: bytes moved of planned, rate, ETA, records by outcome, per device",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if watch {
				return watchJob(cmd.Context(), cmd.OutOrStdout(), c)
			}
			var st admin.RebalanceStatusAnswer
			if err := set(&st)(c.RebalanceStatus(cmd.Context())); err != nil {
				return err
			}
			return emit(cmd, output, st, func(w io.Writer) { printStatus(w, st, true) })
		},
	}
	outputFlag(status, &output, "table")
	status.Flags().BoolVarP(&watch, "watch", "w", false, "refresh every second until the rebalance ends")
	var limitConc int
	limit := &cobra.Command{
		Use:   "limit RATE",
		Short: "Change the running rebalance's bandwidth limit (e.g. 20MiB; 0: none)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := ParseRate(args[0])
			if err != nil {
				return err
			}
			body := admin.RebalanceRequest{Limit: &v}
			if limitConc > 0 {
				body.Concurrency = &limitConc
			}
			var job admin.Job
			if err := set(&job)(c.SetRebalanceLimit(cmd.Context(), body)); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "rebalance %s: limit %s\n", job.ID, formatRate(job.Limit))
			return nil
		},
	}
	limit.Flags().IntVar(&limitConc, "concurrency", 0, "also change the concurrency (applies when the executor next starts)")
	cancel := state("cancel", "Stop the rebalance and move back what it moved (the ring returns to the one before it)")
	cmd.AddCommand(plan, start, state("pause", "Pause the rebalance (reads still find every record)"), state("resume", "Resume a paused rebalance"), cancel, status, limit)
	return cmd
}

// startJob posts a call that changes the ring and prints (or follows) the
// job it started.
func startJob(cmd *cobra.Command, c *adminClient, jf *rebalanceFlags, call func(context.Context, admin.RebalanceRequest) (admin.RebalanceAnswer, error)) error {
	body, err := jf.body()
	if err != nil {
		return err
	}
	ans, err := call(cmd.Context(), body)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "ring v%d: %d slots moved over %d partitions", ans.Version, ans.Result.Moved, ans.Result.PartitionsMoved)
	if ans.Result.Held > 0 {
		fmt.Fprintf(out, "; %d held back by the per-partition limit or min-part-hours (start again when this one is done)", ans.Result.Held)
	}
	fmt.Fprintln(out)
	for _, m := range ans.VolumeMoves {
		fmt.Fprintf(out, "volume %s: replica on %s moves to %s (synced in full before the old one is dropped)\n", m.Volume, m.From, m.To)
	}
	if ans.VolumeErrors != "" {
		fmt.Fprintf(out, "volumes not moved: %s\n", ans.VolumeErrors)
	}
	if ans.Job == nil {
		fmt.Fprintln(out, "no data to move")
		return nil
	}
	fmt.Fprintf(out, "rebalance %s started on %s: %d moves (%d rebuilds), about %s", ans.Job.ID, ans.Job.Owner, ans.Job.Plan.Moves, ans.Job.Plan.Rebuilds, formatBytes(ans.Job.Plan.Bytes))
	if ans.Job.Limit > 0 {
		fmt.Fprintf(out, " at %s", formatRate(ans.Job.Limit))
	}
	fmt.Fprintln(out)
	if jf.wait {
		return watchJob(cmd.Context(), out, c)
	}
	return nil
}

// watchJob prints the progress line every second until the job ends.
func watchJob(ctx context.Context, out io.Writer, c *adminClient) error {
	for {
		var st admin.RebalanceStatusAnswer
		if err := set(&st)(c.RebalanceStatus(ctx)); err != nil {
			return err
		}
		printStatus(out, st, false)
		if !st.Job.Active() || st.Progress != nil && st.Progress.Done {
			if st.Totals.Lost > 0 {
				return fmt.Errorf("%d shard records could not be moved or rebuilt", st.Totals.Lost)
			}
			return nil
		}
		time.Sleep(time.Second)
	}
}

func progressBar(ratio float64, width int) string {
	n := int(ratio*float64(width) + 0.5)
	n = min(max(n, 0), width)
	return "[" + strings.Repeat("#", n) + strings.Repeat("-", width-n) + "]"
}

func formatRate(v int64) string {
	if v <= 0 {
		return "none"
	}
	return formatBytes(v) + "/s"
}

func formatSeconds(s float64) string {
	return (time.Duration(s) * time.Second).Round(time.Second).String()
}

func printStatus(out io.Writer, st admin.RebalanceStatusAnswer, detail bool) {
	j, t := st.Job, st.Totals
	if j == nil {
		fmt.Fprintln(out, "no rebalance")
		return
	}
	state := string(j.State)
	if st.Progress != nil && st.Progress.Done {
		state = "done"
	}
	fmt.Fprintf(out, "rebalance %s %-9s %s %5.1f%%  %s of %s  %s/s (limit %s)  ETA %s  records: %d copied, %d found in place, %d stale, %d rebuilt, %d deferred, %d lost\n",
		j.ID, state, progressBar(st.Ratio, 30), 100*st.Ratio, formatBytes(t.Bytes), formatBytes(j.Plan.Bytes),
		formatBytes(int64(st.Rate)), formatRate(j.Limit), formatSeconds(st.ETA), t.Copied, t.Found, t.Stale, t.Rebuilt, t.Deferred, t.Lost)
	if !detail || st.Progress == nil {
		return
	}
	fmt.Fprintf(out, "owner %s, ring v%v -> v%d, created %s, running %s, restarts %d\n", j.Owner, j.Sources, j.Target,
		j.Created.Format(time.RFC3339), formatSeconds(st.Progress.RunSeconds), st.Progress.Restarts)
	if j.RollsBack != "" {
		fmt.Fprintf(out, "rolls back rebalance %s\n", j.RollsBack)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "UNIT\tDEVICE\tMOVES\tPLANNED\tMOVED\tRECORDS\tPASS\tSTATE\tLAST ERROR")
	for _, u := range st.Progress.Units {
		s := "walking"
		if u.Done {
			s = "done"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%d\t%d\t%s\t%s\n", u.Kind, u.DeviceName, u.Moves, formatBytes(u.PlannedBytes), formatBytes(u.Bytes), u.Records, u.Pass, s, u.LastError)
	}
	tw.Flush()
}

func printPlan(out io.Writer, s admin.RebalanceSummary) {
	fmt.Fprintf(out, "ring v%v -> v%d: %d moves (%d rebuilds from survivors; the ring's minimum is %d), about %s in %d device walks\n",
		s.FromVersion, s.ToVersion, s.Moves, s.Rebuilds, s.Minimum, formatBytes(s.Bytes), s.Units)
	if s.LimitBytes > 0 {
		fmt.Fprintf(out, "at %s/s: about %s\n", formatBytes(s.LimitBytes), formatSeconds(s.Seconds))
	}
	for _, t := range []struct {
		title string
		rows  []admin.DomainLoad
	}{{"DEVICE", s.Devices}, {"ZONE", s.Zones}} {
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "\n%s\tMOVES OUT\tBYTES OUT\tMOVES IN\tBYTES IN\tREBUILDS IN\n", t.title)
		for _, d := range t.rows {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\t%d\n", d.Name, d.MovesOut, formatBytes(d.BytesOut), d.MovesIn, formatBytes(d.BytesIn), d.Rebuilds)
		}
		tw.Flush()
	}
}

func zoneCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "zone", Short: "Failure domains (racks): drain one, or declare one failed"}
	c := newAdminClient(cmd)
	var jf rebalanceFlags
	drain := &cobra.Command{
		Use:   "drain ZONE",
		Short: "Move every shard off a zone's devices (they stay in the ring, empty)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return startJob(cmd, c, &jf, func(ctx context.Context, req admin.RebalanceRequest) (admin.RebalanceAnswer, error) {
				return c.ZoneAction(ctx, args[0], "drain", req)
			})
		},
	}
	jf.add(drain, false)
	var ff rebalanceFlags
	var failYes bool
	fail := &cobra.Command{
		Use:   "fail ZONE",
		Short: "Declare a zone dead: its shards are rebuilt elsewhere from the survivors",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.confirm(cmd, failYes, fmt.Sprintf("Declare zone %s failed: its devices get no shards and what they held is rebuilt elsewhere", args[0])); err != nil {
				return err
			}
			return startJob(cmd, c, &ff, func(ctx context.Context, req admin.RebalanceRequest) (admin.RebalanceAnswer, error) {
				return c.ZoneAction(ctx, args[0], "fail", req)
			})
		},
	}
	ff.add(fail, false)
	yesFlag(fail, &failYes)
	var af rebalanceFlags
	activate := &cobra.Command{
		Use:   "activate ZONE",
		Short: "Take a drained or failed zone back: its devices are active again and the rebalance moves shards back",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return startJob(cmd, c, &af, func(ctx context.Context, req admin.RebalanceRequest) (admin.RebalanceAnswer, error) {
				return c.ZoneAction(ctx, args[0], "activate", req)
			})
		},
	}
	af.add(activate, false)
	cmd.AddCommand(drain, fail, activate)
	return cmd
}

func nodeDrainCommand(c *adminClient) *cobra.Command {
	var jf rebalanceFlags
	drain := &cobra.Command{
		Use:   "drain NODE",
		Short: "Move every shard off a node's devices, to retire it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return startJob(cmd, c, &jf, func(ctx context.Context, req admin.RebalanceRequest) (admin.RebalanceAnswer, error) {
				return c.DrainNode(ctx, args[0], req)
			})
		},
	}
	jf.add(drain, false)
	return drain
}

var errDrillFailed = errors.New("drill failed")
