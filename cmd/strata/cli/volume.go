package cli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/strata-storage/strata/admin"
)

func poolCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "pool", Short: "Storage pools that block volumes are carved from"}
	c := newAdminClient(cmd)
	var output string
	list := &cobra.Command{
		Use:   "list",
		Short: "List each node's volume pool: capacity, free, provisioned, over-subscription",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var pools []admin.PoolInfo
			if err := set(&pools)(c.Pools(cmd.Context())); err != nil {
				return err
			}
			return emit(cmd, output, pools, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NODE\tPOOL\tDRIVER\tCAPACITY\tFREE\tPROVISIONED\tALLOCATED\tVOLUMES\tOVERSUB")
				for _, p := range pools {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%.2f\n", p.Node, p.Name, p.Driver, formatBytes(p.Capacity), formatBytes(p.Free), formatBytes(p.Provisioned), formatBytes(p.Allocated), p.Volumes, p.OverSub)
				}
				tw.Flush()
			})
		},
	}
	outputFlag(list, &output, "table")
	cmd.AddCommand(list)
	return cmd
}

func volumeCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "volume", Short: "Replicated block volumes, served over NBD"}
	c := newAdminClient(cmd)
	var delYes, discardYes bool
	var replicas int
	var nodes string
	create := &cobra.Command{
		Use:   "create NAME SIZE",
		Short: "Create a thin volume (SIZE like 10GiB or 512M) with --replicas copies in distinct zones",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			size, err := ParseSize(args[1])
			if err != nil {
				return err
			}
			req := admin.VolumeCreateRequest{Name: args[0], Size: size, Replicas: replicas}
			if nodes != "" {
				req.Nodes = strings.Split(nodes, ",")
				if !cmd.Flags().Changed("replicas") {
					req.Replicas = len(req.Nodes)
				}
			}
			var info admin.VolumeInfo
			if err := set(&info)(c.CreateVolume(cmd.Context(), req)); err != nil {
				return err
			}
			printVolumes(cmd.OutOrStdout(), []admin.VolumeInfo{info})
			for _, w := range info.Warnings {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: volume %s: %s\n", info.Name, w)
			}
			return nil
		},
	}
	create.Flags().IntVar(&replicas, "replicas", 1, "number of replicas (placed in distinct zones)")
	create.Flags().StringVar(&nodes, "nodes", "", "explicit placement: comma-separated node names")
	var output string
	list := &cobra.Command{
		Use:   "list [NAME]",
		Short: "List volumes with each replica's state (UpToDate, Outdated, SyncTarget, Inconsistent, Unknown)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var list []admin.VolumeInfo
			if len(args) == 1 {
				var one admin.VolumeInfo
				if err := set(&one)(c.Volume(cmd.Context(), args[0])); err != nil {
					return err
				}
				list = append(list, one)
			} else if err := set(&list)(c.Volumes(cmd.Context())); err != nil {
				return err
			}
			return emit(cmd, output, list, func(w io.Writer) { printVolumes(w, list) })
		},
	}
	outputFlag(list, &output, "table")
	del := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a volume and its replicas (refused while an NBD client is attached)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.confirm(cmd, delYes, fmt.Sprintf("Delete volume %s and every replica of it", args[0])); err != nil {
				return err
			}
			if err := c.DeleteVolume(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "volume %s deleted\n", args[0])
			return nil
		},
	}
	var allowShrink, shrinkYes bool
	resize := &cobra.Command{
		Use:   "resize NAME SIZE",
		Short: "Grow a volume online (NBD clients see the size on reconnect), or shrink it with --allow-shrink once no client is attached; every replica must be up to date",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			size, err := ParseSize(args[1])
			if err != nil {
				return err
			}
			if allowShrink {
				if err := c.confirm(cmd, shrinkYes, fmt.Sprintf("Resize volume %s to %d bytes; if that is smaller, the bytes past it are lost", args[0], size)); err != nil {
					return err
				}
			}
			var info admin.VolumeInfo
			if err := set(&info)(c.ResizeVolume(cmd.Context(), args[0], size, allowShrink)); err != nil {
				return err
			}
			printVolumes(cmd.OutOrStdout(), []admin.VolumeInfo{info})
			return nil
		},
	}
	var fromSnap string
	clone := &cobra.Command{
		Use:   "clone SOURCE NEW --snapshot SNAP",
		Short: "Create an independent, writable volume from a snapshot of SOURCE",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if fromSnap == "" {
				return fmt.Errorf("--snapshot is required (strata snapshot create %s NAME makes one)", args[0])
			}
			var info admin.VolumeInfo
			if err := set(&info)(c.CloneVolume(cmd.Context(), args[0], args[1], fromSnap)); err != nil {
				return err
			}
			printVolumes(cmd.OutOrStdout(), []admin.VolumeInfo{info})
			return nil
		},
	}
	clone.Flags().StringVar(&fromSnap, "snapshot", "", "snapshot of SOURCE to clone")
	var force bool
	primary := &cobra.Command{
		Use:   "primary NAME",
		Short: "Make the --server node the volume's primary until 'volume secondary' (--force: without a quorum; risks a split brain)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var info admin.VolumeInfo
			if err := set(&info)(c.Promote(cmd.Context(), args[0], force)); err != nil {
				return err
			}
			printVolumes(cmd.OutOrStdout(), []admin.VolumeInfo{info})
			return nil
		},
	}
	primary.Flags().BoolVar(&force, "force", false, "take over without a quorum of replicas and over another node's lease (last resort)")
	secondary := &cobra.Command{
		Use:   "secondary NAME",
		Short: "End 'volume primary' on the --server node",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.Demote(cmd.Context(), args[0])
		},
	}
	discard := &cobra.Command{
		Use:   "discard NAME NODE",
		Short: "Resolve a split brain: NODE's replica drops its diverged data for a full resync from the primary",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.confirm(cmd, discardYes, fmt.Sprintf("Discard the data of volume %s on node %s (its diverged writes are lost)", args[0], args[1])); err != nil {
				return err
			}
			if err := c.Discard(cmd.Context(), args[0], args[1]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s on %s: diverged data discarded, full resync started\n", args[0], args[1])
			return nil
		},
	}
	yesFlag(del, &delYes)
	yesFlag(discard, &discardYes)
	resize.Flags().BoolVar(&allowShrink, "allow-shrink", false, "allow a size below the current one (the data past it is lost; the volume's filesystem must already fit)")
	yesFlag(resize, &shrinkYes)
	cmd.AddCommand(create, list, del, resize, clone, primary, secondary, discard, volumeAccessCommand(c))
	return cmd
}

func snapshotCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "snapshot", Short: "Point-in-time snapshots of block volumes"}
	c := newAdminClient(cmd)
	var restoreYes, restoreShrink bool
	create := &cobra.Command{
		Use:   "create VOLUME NAME",
		Short: "Snapshot a volume (I/O is held for the copy; the snapshot is a point in time)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var s admin.Snapshot
			if err := set(&s)(c.CreateSnapshot(cmd.Context(), args[0], args[1])); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "snapshot %s of %s: %s on %s\n", s.Name, args[0], formatBytes(s.Size), strings.Join(s.Nodes, ","))
			return nil
		},
	}
	var output string
	list := &cobra.Command{
		Use:   "list VOLUME",
		Short: "List a volume's snapshots",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var snaps []admin.Snapshot
			if err := set(&snaps)(c.Snapshots(cmd.Context(), args[0])); err != nil {
				return err
			}
			return emit(cmd, output, snaps, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "SNAPSHOT\tSIZE\tCREATED\tNODES")
				for _, s := range snaps {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Name, formatBytes(s.Size), s.Created.Format("2006-01-02 15:04:05"), strings.Join(s.Nodes, ","))
				}
				tw.Flush()
			})
		},
	}
	outputFlag(list, &output, "table")
	restore := &cobra.Command{
		Use:   "restore VOLUME NAME",
		Short: "Roll a volume back to a snapshot (no NBD client may be attached)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.confirm(cmd, restoreYes, fmt.Sprintf("Roll volume %s back to snapshot %s (later writes are lost)", args[0], args[1])); err != nil {
				return err
			}
			if err := c.RestoreSnapshot(cmd.Context(), args[0], args[1], restoreShrink); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "volume %s restored to snapshot %s\n", args[0], args[1])
			return nil
		},
	}
	yesFlag(restore, &restoreYes)
	restore.Flags().BoolVar(&restoreShrink, "allow-shrink", false, "let a volume that grew since the snapshot shrink back to the snapshot's size")
	del := &cobra.Command{
		Use:   "delete VOLUME NAME",
		Short: "Delete a snapshot",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.DeleteSnapshot(cmd.Context(), args[0], args[1]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "snapshot %s of %s deleted\n", args[1], args[0])
			return nil
		},
	}
	cmd.AddCommand(create, list, restore, del)
	return cmd
}

func printVolumes(w io.Writer, list []admin.VolumeInfo) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VOLUME\tSIZE\tNODE\tROLE\tSTATE\tOUT OF SYNC\tSYNCED")
	for _, v := range list {
		for i, r := range v.Replicas {
			name, size := "", ""
			if i == 0 {
				name, size = v.Name, formatBytes(v.Size)
			}
			role := "Secondary"
			switch {
			case r.Primary && r.Diskless:
				role = "Primary (Diskless)"
			case r.Primary:
				role = "Primary"
			case r.Diskless:
				role = "TieBreaker" // DRBD's name for a diskless quorum member
			}
			state := r.State
			if r.SyncSource {
				state += " (SyncSource)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", name, size, r.Node, role, state, formatBytes(r.OutOfSyncBytes), formatBytes(r.SyncedBytes))
		}
	}
	tw.Flush()
}

// volumeAccessCommand manages which NBD clients (TLS certificate common
// names) may attach a volume.
func volumeAccessCommand(c *adminClient) *cobra.Command {
	cmd := &cobra.Command{Use: "access", Short: "Which NBD clients (TLS certificate common names, or * for any) may attach a volume"}
	var output string
	show := func(cmd *cobra.Command, a admin.VolumeAccess) error {
		return emit(cmd, output, a, func(w io.Writer) {
			if len(a.Access) == 0 {
				fmt.Fprintf(w, "volume %s: no NBD client may attach it over TLS\n", a.Volume)
				return
			}
			fmt.Fprintf(w, "volume %s: %s\n", a.Volume, strings.Join(a.Access, ", "))
		})
	}
	change := func(verb, short string) *cobra.Command {
		return &cobra.Command{
			Use:   verb + " VOLUME IDENTITY...",
			Short: short,
			Args:  cobra.MinimumNArgs(2),
			RunE: func(cmd *cobra.Command, args []string) error {
				var grant, revoke []string
				if verb == "grant" {
					grant = args[1:]
				} else {
					revoke = args[1:]
				}
				a, err := c.SetVolumeAccess(cmd.Context(), args[0], grant, revoke)
				if err != nil {
					return err
				}
				return show(cmd, a)
			},
		}
	}
	list := &cobra.Command{
		Use:   "show VOLUME",
		Short: "Show the NBD clients that may attach VOLUME",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var a admin.VolumeAccess
			if err := set(&a)(c.VolumeAccess(cmd.Context(), args[0])); err != nil {
				return err
			}
			return show(cmd, a)
		},
	}
	outputFlag(list, &output, "table")
	cmd.AddCommand(change("grant", "Let NBD clients (certificate common names, or *) attach VOLUME"),
		change("revoke", "Take back NBD clients' right to attach VOLUME"), list)
	return cmd
}
