package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/strata-storage/strata/admin"
)

func scrubCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "scrub", Short: "Background verification of shards and volumes (bit rot found and repaired)"}
	c := newAdminClient(cmd)
	var device, volume, output string
	var all, watch bool
	target := func() string {
		switch {
		case device != "":
			return "device/" + device
		case volume != "":
			return "volume/" + volume
		}
		return ""
	}
	status := &cobra.Command{
		Use:   "status",
		Short: "Per device and volume: state, last full pass, progress, bytes verified, errors found/repaired/unrecoverable",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for {
				list, err := scrubStatus(cmd.Context(), c, all)
				if err != nil {
					return err
				}
				if err := emit(cmd, output, list, func(io.Writer) { printScrub(cmd, list) }); err != nil || !watch {
					return err
				}
				select {
				case <-cmd.Context().Done():
					return nil
				case <-time.After(2 * time.Second):
				}
				fmt.Fprintln(cmd.OutOrStdout())
			}
		},
	}
	outputFlag(status, &output, "table")
	status.Flags().BoolVarP(&watch, "watch", "w", false, "refresh every two seconds until interrupted")
	status.Flags().BoolVar(&all, "all", false, "every node of the cluster (targets shown as node:target)")
	action := func(use, short, path string) *cobra.Command {
		a := &cobra.Command{
			Use:   use,
			Short: short,
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				var list []admin.ScrubTargetStatus
				for _, p := range strings.Split(path, ",") {
					if err := set(&list)(c.ScrubControl(cmd.Context(), p, target())); err != nil {
						return err
					}
				}
				printScrub(cmd, list)
				return nil
			},
		}
		a.Flags().StringVar(&device, "device", "", "only this device (default: every device and volume of the node)")
		a.Flags().StringVar(&volume, "volume", "", "only this volume")
		return a
	}
	now := &cobra.Command{
		Use:   "now BUCKET/KEY | VOLUME",
		Short: "Check one object (every shard of its placement) or one volume (every replica) at once, repairing what fails",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			if bucket, key, ok := strings.Cut(args[0], "/"); ok {
				var st admin.ScrubStats
				if err := set(&st)(c.ScrubObject(cmd.Context(), bucket, key)); err != nil {
					return err
				}
				fmt.Fprintf(out, "%s: %d shard records, %s verified, %d bad, %d repaired, %d unrecoverable\n", args[0], st.Records, formatBytes(st.Bytes), st.Errors, st.Repaired, st.Unrecoverable)
				if st.Unrecoverable > 0 {
					return fmt.Errorf("%s is damaged: %d shard records could not be repaired", args[0], st.Unrecoverable)
				}
				return nil
			}
			var st admin.VerifyStats
			if err := set(&st)(c.ScrubVolume(cmd.Context(), args[0])); err != nil {
				return err
			}
			fmt.Fprintf(out, "volume %s: %s verified, %d bad blocks, %d repaired, %d differing copies rewritten, %d unrecoverable\n", args[0], formatBytes(st.Bytes), st.BadBlocks, st.Repaired, st.Mismatched, st.Unrecoverable)
			if st.Unrecoverable > 0 {
				return fmt.Errorf("volume %s is damaged: %d blocks could not be repaired", args[0], st.Unrecoverable)
			}
			return nil
		},
	}
	cmd.AddCommand(status,
		action("start", "Resume scrubbing and start a pass now", "resume,now"),
		action("pause", "Pause scrubbing (it resumes where it stopped)", "pause"),
		action("resume", "Resume paused scrubbing where it stopped, on its schedule", "resume"),
		now)
	return cmd
}

func printScrub(cmd *cobra.Command, list []admin.ScrubTargetStatus) {
	tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TARGET\tSTATE\tPROGRESS\tRATE\tETA\tLAST FULL PASS\tVERIFIED\tERRORS\tREPAIRED\tUNRECOVERABLE")
	for _, s := range list {
		last := "never"
		if s.LastFullPass != nil {
			last = time.Since(*s.LastFullPass).Round(time.Second).String() + " ago"
		}
		state := s.State
		if s.BehindSchedule {
			state += " (behind schedule)"
		}
		rate, eta := "-", "-"
		if s.State == "scrubbing" && s.Rate > 0 {
			rate, eta = formatBytes(int64(s.Rate))+"/s", formatSeconds(s.ETA)
		}
		fmt.Fprintf(tw, "%s\t%s\t%.0f%%\t%s\t%s\t%s\t%s\t%d\t%d\t%d\n", s.Target, state, 100*s.Progress, rate, eta, last, formatBytes(s.Total.Bytes), s.Total.Errors, s.Total.Repaired, s.Total.Unrecoverable)
		for _, d := range s.Total.Damaged {
			fmt.Fprintf(tw, "  damaged: %s\t\t\t\t\t\t\t\t\t\n", d)
		}
	}
	tw.Flush()
}

// scrubStatus is this node's scrub targets, or with all every up node's.
func scrubStatus(ctx context.Context, c *adminClient, all bool) ([]admin.ScrubTargetStatus, error) {
	var list []admin.ScrubTargetStatus
	if !all {
		if err := set(&list)(c.ScrubStatus(ctx)); err != nil {
			return nil, err
		}
	} else {
		// Every up node's targets, through each node's admin address.
		var nodes []admin.NodeInfo
		if err := set(&nodes)(c.Nodes(ctx)); err != nil {
			return nil, err
		}
		scheme, _, _ := strings.Cut(c.Server(), "://")
		for _, nd := range nodes {
			if nd.State != "up" || nd.AdminAddr == "" {
				continue
			}
			one, err := c.At(scheme + "://" + nd.AdminAddr)
			if err != nil {
				return nil, err
			}
			var part []admin.ScrubTargetStatus
			if err := set(&part)(one.ScrubStatus(ctx)); err != nil {
				return nil, fmt.Errorf("node %s: %w", nd.Name, err)
			}
			for i := range part {
				part[i].Target = nd.Name + ":" + part[i].Target
			}
			list = append(list, part...)
		}
	}
	return list, nil
}
