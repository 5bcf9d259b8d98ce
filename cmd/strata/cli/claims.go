package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/strata-storage/strata/admin"
)

func storageClassCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "storageclass", Short: "Storage classes that bucket claims name: reclaim policy and layout"}
	c := newAdminClient(cmd)
	var reclaim, ec, output string
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a storage class (--reclaim Delete or Retain)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var sc admin.StorageClass
			if err := set(&sc)(c.CreateStorageClass(cmd.Context(), admin.StorageClass{Name: args[0], Reclaim: reclaim, EC: ec})); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "storage class %s: reclaim %s\n", sc.Name, sc.Reclaim)
			return nil
		},
	}
	create.Flags().StringVar(&reclaim, "reclaim", "Delete", "Delete (bucket, objects and user go with the claim) or Retain (the bucket stays, the keys go)")
	create.Flags().StringVar(&ec, "ec", "", "erasure layout K+M (must be the store's; default: the store's)")
	list := &cobra.Command{
		Use:   "list",
		Short: "List storage classes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var list []admin.StorageClass
			if err := set(&list)(c.StorageClasses(cmd.Context())); err != nil {
				return err
			}
			return emit(cmd, output, list, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "CLASS\tRECLAIM\tEC")
				for _, sc := range list {
					fmt.Fprintf(tw, "%s\t%s\t%s\n", sc.Name, sc.Reclaim, sc.EC)
				}
				tw.Flush()
			})
		},
	}
	outputFlag(list, &output, "table")
	del := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a storage class no claim uses",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.DeleteStorageClass(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "storage class %s deleted\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(create, list, del)
	return cmd
}

func readClaim(file string) (admin.Claim, error) {
	var doc []byte
	var err error
	if file == "-" {
		doc, err = io.ReadAll(os.Stdin)
	} else {
		doc, err = os.ReadFile(file)
	}
	if err != nil {
		return admin.Claim{}, err
	}
	return admin.ParseClaim(doc)
}

func claimCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "claim", Short: "ObjectBucketClaims: a bucket and keys for an application"}
	c := newAdminClient(cmd)
	var file, output string
	var env bool
	apply := &cobra.Command{
		Use:   "apply -f CLAIM.yaml",
		Short: "Bind a claim: create its bucket and a user whose keys reach it alone; print the ConfigMap and Secret (again on re-apply)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := readClaim(file)
			if err != nil {
				return err
			}
			var ans admin.ClaimAnswer
			if err := set(&ans)(c.ApplyClaim(cmd.Context(), cl)); err != nil {
				return err
			}
			if env {
				fmt.Fprint(cmd.OutOrStdout(), ans.Grant.Env())
				return nil
			}
			y, err := ans.Grant.YAML()
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(y)
			return err
		},
	}
	apply.Flags().StringVarP(&file, "filename", "f", "", "the claim (YAML or JSON; - for stdin)")
	apply.MarkFlagRequired("filename")
	apply.Flags().BoolVar(&env, "env", false, "print KEY=value lines instead of Kubernetes YAML")
	list := &cobra.Command{
		Use:   "list",
		Short: "List bound claims",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var recs []admin.ClaimRecord
			if err := set(&recs)(c.Claims(cmd.Context())); err != nil {
				return err
			}
			return emit(cmd, output, recs, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "CLAIM\tBUCKET\tUSER\tCLASS\tRECLAIM")
				for _, r := range recs {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Claim.ID(), r.Bucket, r.User, r.StorageClass.Name, r.StorageClass.Reclaim)
				}
				tw.Flush()
			})
		},
	}
	outputFlag(list, &output, "table")
	var delFile string
	del := &cobra.Command{
		Use:   "delete NAMESPACE/NAME | -f CLAIM.yaml",
		Short: "Delete a claim: its storage class's reclaim policy says what happens to the bucket",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var id string
			switch {
			case delFile != "":
				cl, err := readClaim(delFile)
				if err != nil {
					return err
				}
				id = cl.ID()
			case len(args) == 1 && strings.Count(args[0], "/") == 1:
				id = args[0]
			default:
				return fmt.Errorf("name the claim as NAMESPACE/NAME or give -f CLAIM.yaml")
			}
			ns, name, _ := strings.Cut(id, "/")
			var rec admin.ClaimRecord
			if err := set(&rec)(c.DeleteClaim(cmd.Context(), ns, name)); err != nil {
				return err
			}
			what := "bucket " + rec.Bucket + " and its objects deleted"
			if rec.StorageClass.Reclaim == "Retain" {
				what = "bucket " + rec.Bucket + " kept, keys revoked"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "claim %s deleted: %s\n", id, what)
			return nil
		},
	}
	del.Flags().StringVarP(&delFile, "filename", "f", "", "the claim (YAML or JSON)")
	cmd.AddCommand(apply, list, del)
	return cmd
}
