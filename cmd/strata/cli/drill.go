package cli

import (
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"context"
	"github.com/strata-storage/strata/admin"
)

// DrillReport is what `strata drill rack-failure` found.
type DrillReport struct {
	Zone             string               `json:"zone"`
	NodesStopped     []string             `json:"nodes_stopped"`
	Before           admin.ReadCheck      `json:"before"`
	During           admin.ReadCheck      `json:"during_outage"`
	After            admin.ReadCheck      `json:"after_rebuild"`
	RebuildSeconds   float64              `json:"seconds_to_full_redundancy"`
	BytesRebuilt     int64                `json:"bytes_rebuilt"`
	RecordsRebuilt   int64                `json:"records_rebuilt"`
	Verify           admin.RepairReport   `json:"verify"`
	FullRedundancy   bool                 `json:"full_redundancy"`
	RebalanceJob     string               `json:"rebalance_job"`
	RebalanceRecords admin.RebalanceStats `json:"rebalance_records"`
}

func drillCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "drill", Short: "Failure drills on a running test cluster"}
	c := newAdminClient(cmd)
	var output, limit string
	var timeout time.Duration
	var yes bool
	rack := &cobra.Command{
		Use:   "rack-failure ZONE",
		Short: "Stop a zone's nodes, check every object stays readable, rebuild redundancy elsewhere, report",
		Long: `Stop every node of ZONE at once (their admin API must allow it: nodes
started with --allow-halt, as strata dev cluster starts them), read every
object back in full through --server (which must be outside the zone),
declare the zone failed so its shards are rebuilt on the other zones, wait
for the rebuild, verify placement and read everything again. The report
gives the objects checked, those unreadable during the outage (0 whenever
the layout keeps K shards outside any one zone), the time to full
redundancy and the bytes rebuilt. The exit status is non-zero if anything
was unreadable or redundancy did not return.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.confirm(cmd, yes, fmt.Sprintf("Halt every node of zone %s, then fail the zone and rebuild its shards elsewhere", args[0])); err != nil {
				return err
			}
			rep, err := rackFailureDrill(cmd.Context(), cmd.ErrOrStderr(), c, args[0], limit, timeout)
			if err != nil {
				return err
			}
			emit(cmd, output, rep, func(w io.Writer) { printDrill(w, rep) })
			if rep.During.Unreadable > 0 || rep.After.Unreadable > 0 || !rep.FullRedundancy {
				return errDrillFailed
			}
			return nil
		},
	}
	outputFlag(rack, &output, "table")
	yesFlag(rack, &yes)
	rack.Flags().StringVar(&limit, "limit", "none", "bandwidth limit of the rebuild, e.g. 100MiB/s (none: no limit)")
	DurationVar(rack.Flags(), &timeout, "timeout", 30*time.Minute, "give up waiting for the rebuild after this long")
	cmd.AddCommand(rack)
	return cmd
}

func rackFailureDrill(ctx context.Context, log io.Writer, c *adminClient, zone, limit string, timeout time.Duration) (DrillReport, error) {
	rep := DrillReport{Zone: zone}
	var nodes []admin.NodeInfo
	if err := set(&nodes)(c.Nodes(ctx)); err != nil {
		return rep, err
	}
	u, err := url.Parse(c.Server())
	if err != nil {
		return rep, err
	}
	scheme := u.Scheme
	var victims []admin.NodeInfo
	for _, nd := range nodes {
		if nd.Zone != zone {
			continue
		}
		if nd.AdminAddr == u.Host {
			return rep, fmt.Errorf("--server %s is in zone %s: pick a node outside it", c.Server(), zone)
		}
		if nd.State == "up" {
			if nd.AdminAddr == "" {
				return rep, fmt.Errorf("node %s of zone %s has not published its admin address yet (still starting?); nothing was stopped", nd.Name, zone)
			}
			victims = append(victims, nd)
		}
	}
	if len(victims) == 0 {
		return rep, fmt.Errorf("zone %q has no node up", zone)
	}
	// Nothing is halted for a drill that cannot finish: failing the zone
	// must leave a device for every shard of an object.
	var ring admin.RingInfo
	if err := set(&ring)(c.Ring(ctx)); err != nil {
		return rep, err
	}
	outside := 0
	for _, d := range ring.Devices {
		if d.Zone != zone && d.State == admin.Active && d.Weight > 0 {
			outside++
		}
	}
	if width := ring.K + ring.M; outside < width {
		return rep, fmt.Errorf("zone %s cannot be failed here: %d active devices are outside it and EC %d+%d needs %d; "+
			"nothing was stopped (add devices or zones first: strata dev cluster --disks 2, or ring add-device)", zone, outside, ring.K, ring.M, width)
	}
	fmt.Fprintf(log, "reading every object before the failure…\n")
	if err := set(&rep.Before)(c.ReadCheck(ctx)); err != nil {
		return rep, err
	}
	for _, nd := range victims {
		one, err := c.At(scheme + "://" + nd.AdminAddr)
		if err != nil {
			return rep, err
		}
		var ack admin.HaltAnswer
		if err := set(&ack)(one.Halt(ctx)); err != nil {
			return rep, fmt.Errorf("stopping %s: %w", nd.Name, err)
		}
		rep.NodesStopped = append(rep.NodesStopped, nd.Name)
	}
	fmt.Fprintf(log, "stopped %s; waiting for the cluster to see them down…\n", strings.Join(rep.NodesStopped, ", "))
	for deadline := time.Now().Add(2 * time.Minute); ; {
		if err := set(&nodes)(c.Nodes(ctx)); err != nil {
			return rep, err
		}
		down := 0
		for _, nd := range nodes {
			if nd.Zone == zone && nd.State != "up" {
				down++
			}
		}
		if down >= len(victims) {
			break
		}
		if time.Now().After(deadline) {
			return rep, fmt.Errorf("zone %s's nodes still report up", zone)
		}
		time.Sleep(500 * time.Millisecond)
	}
	fmt.Fprintf(log, "reading every object with zone %s down…\n", zone)
	if err := set(&rep.During)(c.ReadCheck(ctx)); err != nil {
		return rep, err
	}
	var body admin.RebalanceRequest
	if limit != "" {
		v, err := ParseRate(limit)
		if err != nil {
			return rep, fmt.Errorf("--limit: %w", err)
		}
		body.Limit = &v
	}
	start := time.Now()
	var ans admin.RebalanceAnswer
	if err := set(&ans)(c.ZoneAction(ctx, zone, "fail", body)); err != nil {
		return rep, err
	}
	if ans.Job != nil {
		rep.RebalanceJob = ans.Job.ID
		fmt.Fprintf(log, "zone %s declared failed: rebuilding %d shards (rebalance %s)…\n", zone, ans.Job.Plan.Rebuilds, ans.Job.ID)
		for deadline := start.Add(timeout); ; {
			var st admin.RebalanceStatusAnswer
			if err := set(&st)(c.RebalanceStatus(ctx)); err != nil {
				return rep, err
			}
			if st.Job.ID != ans.Job.ID {
				return rep, fmt.Errorf("rebalance %s was replaced by %s", ans.Job.ID, st.Job.ID)
			}
			rep.RebalanceRecords = st.Totals
			if st.Progress != nil && st.Progress.Done || !st.Job.Active() {
				break
			}
			if time.Now().After(deadline) {
				return rep, fmt.Errorf("the rebuild did not finish within %s", timeout)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	rep.RebuildSeconds = time.Since(start).Seconds()
	rep.BytesRebuilt, rep.RecordsRebuilt = rep.RebalanceRecords.Bytes, rep.RebalanceRecords.Rebuilt
	if err := set(&rep.Verify)(c.Verify(ctx, false)); err != nil {
		return rep, err
	}
	rep.FullRedundancy = rep.Verify.Missing == 0 && rep.Verify.Unreadable == 0
	fmt.Fprintf(log, "reading every object after the rebuild…\n")
	if err := set(&rep.After)(c.ReadCheck(ctx)); err != nil {
		return rep, err
	}
	return rep, nil
}

func printDrill(out io.Writer, r DrillReport) {
	fmt.Fprintf(out, "rack-failure drill, zone %s (stopped %s)\n", r.Zone, strings.Join(r.NodesStopped, ", "))
	fmt.Fprintf(out, "  objects checked:          %d (%s) before, %d during the outage, %d after the rebuild\n", r.Before.Objects, formatBytes(r.Before.Bytes), r.During.Objects, r.After.Objects)
	fmt.Fprintf(out, "  unreadable:               %d during the outage, %d after the rebuild\n", r.During.Unreadable, r.After.Unreadable)
	fmt.Fprintf(out, "  time to full redundancy:  %s\n", (time.Duration(r.RebuildSeconds * float64(time.Second))).Round(time.Millisecond))
	fmt.Fprintf(out, "  bytes rebuilt:            %s (%d shard records rebuilt, %d lost)\n", formatBytes(r.BytesRebuilt), r.RecordsRebuilt, r.RebalanceRecords.Lost)
	fmt.Fprintf(out, "  verify:                   %d objects, %d shards missing, %d unreadable -> full redundancy: %v\n", r.Verify.Objects, r.Verify.Missing, r.Verify.Unreadable, r.FullRedundancy)
	for _, p := range append(append(r.During.Problems, r.After.Problems...), r.Verify.Problems...) {
		fmt.Fprintf(out, "  problem: %s\n", p)
	}
}
