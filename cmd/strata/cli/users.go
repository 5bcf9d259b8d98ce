package cli

import (
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/strata-storage/strata/admin"
)

func userCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "user", Short: "Users: each owns buckets and holds access keys"}
	c := newAdminClient(cmd)
	var output string
	var isAdmin, revoke bool
	var email string
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a user (then: strata key create NAME)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var u admin.User
			if err := set(&u)(c.CreateUser(cmd.Context(), admin.UserCreateRequest{Name: args[0], Admin: isAdmin, Email: email})); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "user %s created\n", u.Name)
			return nil
		},
	}
	create.Flags().BoolVar(&isAdmin, "admin", false, "the user may call the admin API (these commands), as root")
	create.Flags().StringVar(&email, "email", "", "the user's email address, which S3 ACL grants by emailAddress name")
	adminCmd := &cobra.Command{
		Use:   "admin NAME [--revoke]",
		Short: "Let a user call the admin API (or, with --revoke, no longer)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var u admin.User
			if err := set(&u)(c.SetAdmin(cmd.Context(), args[0], !revoke)); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "user %s: admin %v\n", u.Name, u.Admin)
			return nil
		},
	}
	adminCmd.Flags().BoolVar(&revoke, "revoke", false, "take the admin right away")
	list := &cobra.Command{
		Use:   "list",
		Short: "List users",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var users []admin.User
			if err := set(&users)(c.Users(cmd.Context())); err != nil {
				return err
			}
			return emit(cmd, output, users, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "USER\tSTATE\tADMIN\tQUOTA\tPOLICY\tCREATED\tCANONICAL ID")
				for _, u := range users {
					fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%v\t%s\t%s\n", u.Name, enabled(u.Disabled), u.Admin, formatQuota(u.Quota), len(u.Policy) > 0, u.Created.Format(time.RFC3339), u.CanonicalID)
				}
				tw.Flush()
			})
		},
	}
	outputFlag(list, &output, "table")
	toggle := func(use, short string) *cobra.Command {
		return &cobra.Command{
			Use:   use + " NAME",
			Short: short,
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				var u admin.User
				if err := set(&u)(c.SetUserDisabled(cmd.Context(), args[0], use == "disable")); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "user %s %s\n", u.Name, enabled(u.Disabled))
				return nil
			},
		}
	}
	del := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a user and its keys (refused while it owns buckets)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.DeleteUser(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "user %s deleted\n", args[0])
			return nil
		},
	}
	var policyFile string
	var detach bool
	pol := &cobra.Command{
		Use:   "policy NAME -f POLICY.json | --detach",
		Short: "Attach an IAM-style policy to a user (the bucket policy language, no Principal), or detach it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var u admin.User
			if detach {
				if err := set(&u)(c.ClearUserPolicy(cmd.Context(), args[0])); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "user %s: policy detached\n", u.Name)
				return nil
			}
			if policyFile == "" {
				return fmt.Errorf("give -f POLICY.json or --detach")
			}
			doc, err := os.ReadFile(policyFile)
			if err != nil {
				return err
			}
			if err := set(&u)(c.SetUserPolicy(cmd.Context(), args[0], doc)); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "user %s: policy attached\n", u.Name)
			return nil
		},
	}
	pol.Flags().StringVarP(&policyFile, "filename", "f", "", "the policy document (JSON)")
	pol.Flags().BoolVar(&detach, "detach", false, "detach the user's policy")
	cmd.AddCommand(create, list, toggle("disable", "Disable a user: none of its keys signs"), toggle("enable", "Enable a user again"), del, userQuotaCommand(c), pol, adminCmd)
	return cmd
}

func enabled(disabled bool) string {
	if disabled {
		return "disabled"
	}
	return "enabled"
}

func keyCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "key", Short: "Access keys of users"}
	c := newAdminClient(cmd)
	var output string
	create := &cobra.Command{
		Use:   "create USER",
		Short: "Create an access key; its secret is shown this once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var k admin.NewKey
			if err := set(&k)(c.CreateKey(cmd.Context(), args[0])); err != nil {
				return err
			}
			return emit(cmd, output, k, func(w io.Writer) {
				fmt.Fprintf(w, "AWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\n", k.AccessKey, k.SecretKey)
			})
		},
	}
	outputFlag(create, &output, "env")
	var listOut string
	list := &cobra.Command{
		Use:   "list [USER]",
		Short: "List access keys (of one user, or all)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var keys []admin.Key
			var err error
			if len(args) == 1 {
				keys, err = c.UserKeys(cmd.Context(), args[0])
			} else {
				keys, err = c.Keys(cmd.Context())
			}
			if err != nil {
				return err
			}
			return emit(cmd, listOut, keys, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ACCESS KEY\tUSER\tSTATE\tCREATED")
				for _, k := range keys {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.AccessKey, k.User, enabled(k.Disabled), k.Created.Format(time.RFC3339))
				}
				tw.Flush()
			})
		},
	}
	outputFlag(list, &listOut, "table")
	toggle := func(use, short string) *cobra.Command {
		return &cobra.Command{
			Use:   use + " ACCESS_KEY",
			Short: short,
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				var k admin.Key
				if err := set(&k)(c.SetKeyDisabled(cmd.Context(), args[0], use == "disable")); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "key %s %s\n", k.AccessKey, enabled(k.Disabled))
				return nil
			},
		}
	}
	del := &cobra.Command{
		Use:   "delete ACCESS_KEY",
		Short: "Delete an access key",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.DeleteKey(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "key %s deleted\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(create, list, toggle("disable", "Disable a key"), toggle("enable", "Enable a key again"), del)
	return cmd
}

func auditCommand() *cobra.Command {
	var c *adminClient
	var limit int
	var output string
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "The admin actions taken (who, from where, what, how it ended), oldest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var list []admin.AuditEntry
			if err := set(&list)(c.Audit(cmd.Context(), limit)); err != nil {
				return err
			}
			return emit(cmd, output, list, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "TIME\tNODE\tPRINCIPAL\tREMOTE\tREQUEST\tSTATUS")
				for _, e := range list {
					status := fmt.Sprint(e.Status)
					if e.Code != "" {
						status += " " + e.Code
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s %s\t%s\n", e.Time.Format(time.RFC3339), e.Node, e.Principal, e.Remote, e.Method, e.Path, status)
				}
				tw.Flush()
			})
		},
	}
	c = newAdminClient(cmd)
	cmd.Flags().IntVar(&limit, "limit", 100, "the newest this many")
	outputFlag(cmd, &output, "table")
	return cmd
}
