// Command strata is the Strata object store: `strata server` runs a node;
// the other subcommands are clients of a running node's admin API.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
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
	root.AddCommand(serverCommand(), ringCommand(), nodeCommand(), clusterCommand(), devCommand(), poolCommand(), volumeCommand(), snapshotCommand(), scrubCommand(), rebalanceCommand(), zoneCommand(), drillCommand(), userCommand(), keyCommand(), bucketCommand(), storageClassCommand(), claimCommand(), auditCommand(), &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Run:   func(cmd *cobra.Command, _ []string) { fmt.Fprintln(cmd.OutOrStdout(), "strata", version) },
	})
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "strata:", err)
		os.Exit(2)
	}
}
