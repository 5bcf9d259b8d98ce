package cli

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/strata-storage/strata/admin"
)

// quotaFlags are --max-size and --max-objects (0 clears a bound).
type quotaFlags struct {
	size    int64
	objects int64
}

func (f *quotaFlags) add(cmd *cobra.Command) {
	SizeVar(cmd.Flags(), &f.size, "max-size", "0", "most bytes held (e.g. 10GiB or 500GB; 0: no bound)")
	cmd.Flags().Int64Var(&f.objects, "max-objects", 0, "most objects held (0: no bound)")
}

func (f *quotaFlags) quota() (admin.Quota, error) {
	if f.objects < 0 {
		return admin.Quota{}, usageErrorf("--max-objects %d: want 0 (no bound) or more", f.objects)
	}
	return admin.Quota{MaxBytes: f.size, MaxObjects: f.objects}, nil
}

func formatQuota(q admin.Quota) string {
	if !q.Set() {
		return "-"
	}
	size, objects := "-", "-"
	if q.MaxBytes > 0 {
		size = formatBytes(q.MaxBytes)
	}
	if q.MaxObjects > 0 {
		objects = fmt.Sprint(q.MaxObjects)
	}
	return size + " / " + objects + " objects"
}

func bucketCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "bucket", Short: "Buckets: owners, usage and quotas"}
	c := newAdminClient(cmd)
	var output string
	list := &cobra.Command{
		Use:   "list",
		Short: "List buckets with owner, usage (counted now) and quotas",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var list []admin.BucketListing
			if err := set(&list)(c.Buckets(cmd.Context())); err != nil {
				return err
			}
			return emit(cmd, output, list, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "BUCKET\tOWNER\tOBJECTS\tSIZE\tQUOTA\tOWNER QUOTA")
				for _, b := range list {
					owner := b.Owner
					if owner == "" {
						owner = "(root)"
					}
					fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", b.Name, owner, b.Usage.Objects, formatBytes(b.Usage.Bytes), formatQuota(b.Quota), formatQuota(b.OwnerQuota))
				}
				tw.Flush()
			})
		},
	}
	outputFlag(list, &output, "table")
	var qf quotaFlags
	quota := &cobra.Command{
		Use:   "quota BUCKET",
		Short: "Bound what a bucket holds; writes past it get QuotaExceeded",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q, err := qf.quota()
			if err != nil {
				return err
			}
			var b admin.BucketListing
			if err := set(&b)(c.SetBucketQuota(cmd.Context(), args[0], q)); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "bucket %s: quota %s, holding %d objects, %s\n", b.Name, formatQuota(b.Quota), b.Usage.Objects, formatBytes(b.Usage.Bytes))
			return nil
		},
	}
	qf.add(quota)
	cmd.AddCommand(list, quota)
	return cmd
}

func userQuotaCommand(c *adminClient) *cobra.Command {
	var qf quotaFlags
	quota := &cobra.Command{
		Use:   "quota NAME",
		Short: "Bound what all of a user's buckets hold together",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q, err := qf.quota()
			if err != nil {
				return err
			}
			var u admin.User
			if err := set(&u)(c.SetUserQuota(cmd.Context(), args[0], q)); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "user %s: quota %s\n", u.Name, formatQuota(u.Quota))
			return nil
		},
	}
	qf.add(quota)
	return quota
}
