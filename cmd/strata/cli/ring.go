package cli

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"context"
	"github.com/strata-storage/strata/admin"
)

// RingFiles edits ring files offline, for `strata ring` without --server.
// The program supplies it: the CLI itself speaks only the admin API.
type RingFiles interface {
	// Create writes a new, empty ring file (ec is K+M).
	Create(path string, partPower uint8, ec string, minPartHours uint16) (admin.RingInfo, error)
	Info(path string) (admin.RingInfo, error)
	// AddDevice adds d (id < 0: the next free id).
	AddDevice(path string, d admin.RingDevice, id int64) (admin.RingInfo, error)
	SetWeight(path string, id uint32, weight float64) (admin.RingInfo, error)
	SetState(path string, id uint32, s admin.RingState) (admin.RingInfo, error)
	RemoveDevice(path string, id uint32) (admin.RingInfo, error)
	// Rebalance rewrites the file; the bytes estimate is -1 unless
	// stored >= 0.
	Rebalance(path string, ignoreMinPartHours bool, stored int64) (admin.RebalanceAnswer, error)
	// Diff compares two ring files.
	Diff(oldPath, newPath string) (admin.RingDiffAnswer, error)
}

// ringTarget is where `strata ring` works: a ring file, or a running node's
// admin API.
type ringTarget struct {
	file  string
	files RingFiles
	adminClient
}

// info is the ring's description, from the node or the file.
func (t *ringTarget) info(ctx context.Context) (admin.RingInfo, error) {
	if t.Client != nil {
		return t.Ring(ctx)
	}
	return t.files.Info(t.file)
}

// show prints the ring after a change, wherever it was made.
func show(cmd *cobra.Command, info admin.RingInfo, err error) error {
	if err != nil {
		return err
	}
	printInfo(cmd.OutOrStdout(), info)
	return nil
}

func ringCommand(files RingFiles) *cobra.Command {
	t := &ringTarget{files: files}
	cmd := &cobra.Command{
		Use:   "ring",
		Short: "Build and change rings: offline on a ring file, or on a running node with --server",
		Long: `Build and change the ring that places every shard.

Each command goes to a running node's admin API (--server, as for every
command), signed with the root credentials; the node switches placement
when the ring changes. With --ring FILE the same commands read and rewrite
that ring file instead, offline.

Device edits take effect at the next rebalance. A rebalance moves at most M
slots of any partition, and leaves partitions moved in the last
min-part-hours alone (failed devices excepted), so data stays readable
while it moves.`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&t.file, "ring", "", "work offline on this ring file instead of a running node")
	t.adminClient.flags(pf)
	cmd.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		if cmd.HasSubCommands() {
			return nil // a group only shows its help
		}
		if t.file == "" {
			return t.connect()
		}
		if cmd.Flags().Changed("server") {
			return usageErrorf("--ring (a file, offline) and --server (a running node): one or the other")
		}
		return nil // offline, on the file
	}

	var partPower uint8
	var ec string
	var minPartHours uint16
	create := &cobra.Command{
		Use:   "create",
		Short: "Create an empty ring file",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if t.Client != nil {
				return usageErrorf("a running node already has its ring; create works on files (--ring FILE)")
			}
			if _, err := os.Stat(t.file); err == nil {
				return fmt.Errorf("%s exists; not overwriting it", t.file)
			}
			info, err := t.files.Create(t.file, partPower, ec, minPartHours)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "created %s: %d partitions, EC %d+%d, min-part-hours %d\n", t.file, 1<<info.PartPower, info.K, info.M, info.MinPartHours)
			return nil
		},
	}
	create.Flags().Uint8Var(&partPower, "part-power", 16, "log2 of the partition count")
	create.Flags().StringVar(&ec, "ec", "4+2", "erasure coding K+M")
	create.Flags().Uint16Var(&minPartHours, "min-part-hours", 1, "hours before a moved partition may move again")

	var dev admin.RingDevice
	var id int64
	add := &cobra.Command{
		Use:   "add-device",
		Short: "Add a device (weight in any unit, e.g. TB)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d := dev
			if t.Client != nil {
				if id >= 0 {
					d.ID = uint32(id)
				}
				info, err := t.AddDevice(cmd.Context(), d)
				return show(cmd, info, err)
			}
			if d.Region == "" {
				d.Region = "region1"
			}
			if d.Zone == "" {
				d.Zone = "zone1"
			}
			info, err := t.files.AddDevice(t.file, d, id)
			return show(cmd, info, err)
		},
	}
	af := add.Flags()
	af.StringVar(&dev.Region, "region", "", "the device's region (default: its node's; offline region1)")
	af.StringVar(&dev.Zone, "zone", "", "zone (rack) (default: the node's; offline zone1)")
	af.StringVar(&dev.Node, "node", "", "node (required offline; defaults to the node itself with --server)")
	af.StringVar(&dev.Name, "name", "", "device name (the pool's name on its node)")
	af.Float64Var(&dev.Weight, "weight", 1, "weight")
	af.Int64Var(&id, "id", -1, "device id (default: the next free one)")

	setWeight := &cobra.Command{
		Use:   "set-weight ID WEIGHT",
		Short: "Change a device's weight",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID(args[0])
			if err != nil {
				return err
			}
			w, err := strconv.ParseFloat(args[1], 64)
			if err != nil {
				return fmt.Errorf("weight %q is not a number", args[1])
			}
			if t.Client != nil {
				info, err := t.SetWeight(cmd.Context(), id, w)
				return show(cmd, info, err)
			}
			info, err := t.files.SetWeight(t.file, id, w)
			return show(cmd, info, err)
		},
	}
	stateCmd := func(use, short string, state admin.RingState) *cobra.Command {
		return &cobra.Command{
			Use: use + " ID", Short: short, Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				id, err := parseID(args[0])
				if err != nil {
					return err
				}
				if t.Client != nil {
					info, err := t.SetState(cmd.Context(), id, state)
					return show(cmd, info, err)
				}
				info, err := t.files.SetState(t.file, id, state)
				return show(cmd, info, err)
			},
		}
	}
	remove := &cobra.Command{
		Use:   "remove-device ID",
		Short: "Remove a device: at once if it holds no slots, else it drains and leaves with its last slot",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID(args[0])
			if err != nil {
				return err
			}
			if t.Client != nil {
				info, err := t.RemoveDevice(cmd.Context(), id)
				return show(cmd, info, err)
			}
			info, err := t.files.RemoveDevice(t.file, id)
			return show(cmd, info, err)
		},
	}

	var ignoreMPH bool
	var stored string
	rebalance := &cobra.Command{
		Use:   "rebalance",
		Short: "Place slots for the current devices and weights, moving as few as possible",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			if t.Client != nil {
				ans, err := t.RebalanceRing(cmd.Context(), ignoreMPH)
				if err != nil {
					return err
				}
				printRebalance(out, ans.Version, ans.Result, ans.BytesEstimate, true)
				return nil
			}
			var storedBytes int64 = -1
			if stored != "" {
				b, err := ParseSize(stored)
				if err != nil {
					return fmt.Errorf("--stored: %w", err)
				}
				storedBytes = b
			}
			ans, err := t.files.Rebalance(t.file, ignoreMPH, storedBytes)
			if err != nil {
				return err
			}
			printRebalance(out, ans.Version, ans.Result, ans.BytesEstimate, ans.BytesEstimate >= 0)
			return nil
		},
	}
	rebalance.Flags().BoolVar(&ignoreMPH, "ignore-min-part-hours", false, "let recently moved partitions move again (still at most M slots each)")
	rebalance.Flags().StringVar(&stored, "stored", "", "bytes stored in the cluster, for the bytes estimate offline (e.g. 40T)")

	var showOutput string
	show := &cobra.Command{
		Use: "show", Short: "Show the ring's devices, slots and targets", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			info, err := t.info(cmd.Context())
			if err != nil {
				return err
			}
			return emit(cmd, showOutput, info, func(w io.Writer) { printInfo(w, info) })
		},
	}
	outputFlag(show, &showOutput, "table")
	var dispOutput string
	dispersion := &cobra.Command{
		Use: "dispersion", Short: "How partitions spread over zones and nodes, and what losing one costs", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			info, err := t.info(cmd.Context())
			if err != nil {
				return err
			}
			return emit(cmd, dispOutput, info.Report, func(w io.Writer) { printDispersion(w, info.Report) })
		},
	}
	outputFlag(dispersion, &dispOutput, "table")
	var diffOutput string
	diff := &cobra.Command{
		Use:   "diff [OLD NEW]",
		Short: "Compare two ring files slot by slot (with --server: the node's previous and current ring)",
		Args:  cobra.RangeArgs(0, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var d admin.RingDiffAnswer
			var err error
			switch {
			case len(args) == 2:
				d, err = t.files.Diff(args[0], args[1])
			case t.Client != nil && len(args) == 0:
				d, err = t.RingDiff(cmd.Context())
			default:
				return usageErrorf("give OLD and NEW ring files, or nothing for the node's previous and current ring")
			}
			if err != nil {
				return err
			}
			return emit(cmd, diffOutput, d, func(w io.Writer) {
				fmt.Fprintf(w, "version %d -> %d\n", d.From, d.To)
				printDiff(w, d.Diff)
			})
		},
	}
	outputFlag(diff, &diffOutput, "table")
	var rebuildOutput string
	rebuild := &cobra.Command{
		Use:   "rebuild-device ID",
		Short: "Start an offline device anew (damaged metadata): its database is kept aside and its shards refilled from the others",
		Long: `Rebuild a device that is offline because its metadata database is damaged
(or its chunk volume belongs to another database). The damaged database is
moved aside (pools/NAME/meta.damaged-TIME), the device starts empty with a
new volume generation, and a placement repair rewrites its records and
shards from the other devices in the background; the log and
'strata scrub status' report when it is done. Needs --server.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID(args[0])
			if err != nil {
				return err
			}
			if t.Client == nil {
				return errors.New("rebuild-device works on a running node: give --server")
			}
			ans, err := t.RebuildDevice(cmd.Context(), id)
			if err != nil {
				return err
			}
			return emit(cmd, rebuildOutput, ans, func(w io.Writer) {
				fmt.Fprintf(w, "device %s rebuilt empty (generation %d); %s\n", ans.Device, ans.Generation, ans.Refill)
				if ans.Kept != "" {
					fmt.Fprintf(w, "damaged database kept at %s\n", ans.Kept)
				}
			})
		},
	}
	outputFlag(rebuild, &rebuildOutput, "text")
	cmd.AddCommand(create, add, setWeight, remove, rebuild,
		stateCmd("drain", "Drain a device: its slots move away over the next rebalances", admin.Draining),
		stateCmd("fail", "Declare a device failed: the next rebalance moves all its slots", admin.Failed),
		stateCmd("activate", "Make a draining or failed device active again", admin.Active),
		rebalance, show, dispersion, diff)
	return cmd
}

func parseID(s string) (uint32, error) {
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("device id %q is not a number", s)
	}
	return uint32(v), nil
}

func printInfo(w io.Writer, info admin.RingInfo) {
	state := "built"
	if !info.Built {
		state = "not built yet: run rebalance"
	}
	fmt.Fprintf(w, "ring version %d: %d partitions (part power %d), EC %d+%d, min-part-hours %d, %s\n",
		info.Version, 1<<info.PartPower, info.PartPower, info.K, info.M, info.MinPartHours, state)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tREGION\tZONE\tNODE\tNAME\tWEIGHT\tSTATE\tSLOTS\tTARGET\tDEVIATION")
	for i, d := range info.Devices {
		b := info.Report.Balance[i]
		dev := "-"
		if !math.IsInf(b.Deviation, 0) && (b.Target > 0 || b.Slots > 0) {
			dev = fmt.Sprintf("%+.2f%%", 100*b.Deviation)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%g\t%s\t%d\t%d\t%s\n", d.ID, d.Region, d.Zone, d.Node, d.Name, d.Weight, d.State, b.Slots, b.Target, dev)
	}
	tw.Flush()
	if info.Built {
		fmt.Fprintf(w, "worst deviation from target: %.2f%%\n", 100*info.Report.WorstDeviation)
	}
}

func printDispersion(w io.Writer, rep admin.DispersionReport) {
	fmt.Fprintf(w, "%d partitions of %d slots (M=%d)\n", rep.Partitions, rep.Width, rep.M)
	fmt.Fprintf(w, "limits per partition: region %d, zone %d, node %d\n", rep.RegionLimit, rep.ZoneLimit, rep.NodeLimit)
	fmt.Fprintf(w, "worst partition: %d shards in one region, %d in one zone, %d on one node; %d partitions over a limit\n",
		rep.MaxPerRegion, rep.MaxPerZone, rep.MaxPerNode, rep.OverLimit)
	for c, n := range rep.ZoneHistogram {
		if n > 0 {
			fmt.Fprintf(w, "  %d partitions have at most %d shards in one zone\n", n, c)
		}
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "IF THIS FAILS\tDEVICES\tPARTITIONS\tAT RISK (=M)\tUNREADABLE (>M)")
	for _, z := range rep.Zones {
		fmt.Fprintf(tw, "zone %s/%s\t%d\t%d\t%d\t%d\n", z.Region, z.Zone, z.Devices, z.Partitions, z.AtRisk, z.Lost)
	}
	for _, n := range rep.Nodes {
		fmt.Fprintf(tw, "node %s\t%d\t%d\t%d\t%d\n", n.Node, n.Devices, n.Partitions, n.AtRisk, n.Lost)
	}
	tw.Flush()
}

func printRebalance(w io.Writer, version uint64, res admin.RingRebalanceResult, bytes int64, haveBytes bool) {
	fmt.Fprintf(w, "ring version %d: moved %d of %d slots in %d partitions (at most %d in one)",
		version, res.Moved, res.Slots, res.PartitionsMoved, res.MaxPerPartition)
	if haveBytes {
		fmt.Fprintf(w, ", about %s to move\n", formatBytes(bytes))
	} else {
		fmt.Fprintln(w, "; pass --stored for a bytes estimate")
	}
	if res.Held > 0 {
		fmt.Fprintf(w, "%d slots held back (M per partition per rebalance, or min-part-hours); rebalance again later\n", res.Held)
	}
	for _, d := range res.Removed {
		fmt.Fprintf(w, "device %d (%s/%s) left the ring\n", d.ID, d.Node, d.Name)
	}
	printDiff(w, res.Diff)
}

func printDiff(w io.Writer, d admin.RingDiff) {
	fmt.Fprintf(w, "%d slots moved, %d partitions touched, at most %d slots of one partition\n", d.Moved, d.PartitionsMoved, d.MaxPerPartition)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNODE\tNAME\tBEFORE\tAFTER\tIN\tOUT")
	for _, dd := range d.Devices {
		if dd.In == 0 && dd.Out == 0 && dd.Before == dd.After {
			continue
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\t%d\t%d\n", dd.ID, dd.Node, dd.Name, dd.Before, dd.After, dd.In, dd.Out)
	}
	tw.Flush()
}

func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for v := n / unit; v >= unit; v /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
