package cli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/strata-storage/strata/admin"
)

func nodeCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "node", Short: "Nodes of a running cluster"}
	c := newAdminClient(cmd)
	var output string
	list := &cobra.Command{
		Use:   "list",
		Short: "List nodes: state, zone, devices, capacity, last heartbeat",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var nodes []admin.NodeInfo
			if err := set(&nodes)(c.Nodes(cmd.Context())); err != nil {
				return err
			}
			return emit(cmd, output, nodes, func(w io.Writer) { printNodes(w, nodes, time.Now()) })
		},
	}
	outputFlag(list, &output, "table")
	var yes bool
	var removeOutput string
	remove := &cobra.Command{
		Use:   "remove NODE",
		Short: "Take a drained node that is down out of the cluster: its devices leave the ring, its member record goes",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.confirm(cmd, yes, fmt.Sprintf("Remove node %s from the cluster", args[0])); err != nil {
				return err
			}
			var ans admin.NodeRemoveAnswer
			if err := set(&ans)(c.RemoveNode(cmd.Context(), args[0])); err != nil {
				return err
			}
			return emit(cmd, removeOutput, ans, func(w io.Writer) {
				fmt.Fprintf(w, "node %s removed; devices %s left the ring (version %d)\n", ans.Node, strings.Join(ans.DevicesRemoved, ", "), ans.RingVersion)
			})
		},
	}
	yesFlag(remove, &yes)
	outputFlag(remove, &removeOutput, "table")
	cmd.AddCommand(list, nodeDrainCommand(c), remove)
	return cmd
}

func printNodes(w io.Writer, nodes []admin.NodeInfo, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tSTATE\tREGION\tZONE\tRPC\tS3\tDEVICES\tCAPACITY\tFREE\tLAST HEARTBEAT")
	for _, n := range nodes {
		var capacity, free int64
		for _, d := range n.Devices {
			capacity += d.CapacityBytes
			free += d.FreeBytes
		}
		ago := "never"
		if !n.Heartbeat.IsZero() {
			ago = now.Sub(n.Heartbeat).Round(time.Second).String() + " ago"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", n.Name, n.State, n.Region, n.Zone, n.RPCAddr, n.S3Addr, len(n.Devices), formatBytes(capacity), formatBytes(free), ago)
	}
	tw.Flush()
}

func clusterCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "cluster", Short: "Check and repair where a running cluster's shards are"}
	c := newAdminClient(cmd)
	var repair bool
	var output string
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Check that every object's shards are on the devices the ring names (and only there)",
		Long: `Walk the current record of every object in every bucket and compare the
devices that hold it with the devices the ring places it on. Missing: a
device of the placement lacks the agreed version; extra: a record where the
ring puts none. With --repair, missing shards are rebuilt from the others
and extra records are removed once the placement holds the object in full.
Every device must be reachable. Exits 1 if anything is missing or extra.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var rep admin.RepairReport
			if err := set(&rep)(c.Verify(cmd.Context(), repair)); err != nil {
				return err
			}
			emit(cmd, output, rep, func(w io.Writer) {
				fmt.Fprintf(w, "objects %d, missing %d, extra %d, unreadable %d, repaired %d\n", rep.Objects, rep.Missing, rep.Extra, rep.Unreadable, rep.Repaired)
				for _, p := range rep.Problems {
					fmt.Fprintln(w, "  "+p)
				}
			})
			if rep.Missing-rep.Repaired > 0 || rep.Unreadable > 0 || (rep.Extra > 0 && !repair) {
				return fmt.Errorf("verify found problems")
			}
			return nil
		},
	}
	verify.Flags().BoolVar(&repair, "repair", false, "rebuild missing shards and remove misplaced records")
	outputFlag(verify, &output, "table")
	var hintsOutput string
	hints := &cobra.Command{
		Use:   "hints",
		Short: "How many objects this node still has to repair on devices that were down",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			h, err := c.Hints(cmd.Context())
			if err != nil {
				return err
			}
			return emit(cmd, hintsOutput, h, func(w io.Writer) { fmt.Fprintf(w, "pending %d\n", h.Pending) })
		},
	}
	outputFlag(hints, &hintsOutput, "table")
	cmd.AddCommand(verify, hints)
	return cmd
}
