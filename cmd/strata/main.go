// Command strata is the Strata object store: `strata server` runs a node
// and `strata dev` a development cluster; every other subcommand (package
// cli) is a client of a running node's admin API, except that `strata
// ring` without --server edits a ring file here (ringfile.go).
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/strata-storage/strata/cmd/strata/cli"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	root := &cobra.Command{
		Use:           "strata",
		Short:         "Strata: S3-compatible object storage on erasure-coded, scrubbed volumes",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(cli.Commands(ringFiles{})...)
	root.AddCommand(serverCommand(), devCommand(), benchCommand(), &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Run:   func(cmd *cobra.Command, _ []string) { fmt.Fprintln(cmd.OutOrStdout(), "strata", version) },
	})
	cli.Prepare(root)
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "strata:", err)
		os.Exit(cli.ExitCode(err))
	}
}
