// Package cli is the strata command line's admin side: every subcommand
// that talks to a running node, through the admin API's typed client
// (package admin) and nothing else. The program adds the commands that
// run a process (`strata server`, `strata dev`) and the offline ring-file
// editor.
package cli

import "github.com/spf13/cobra"

// Commands are the admin API's subcommands; files edits ring files for
// `strata ring` without --server.
func Commands(files RingFiles) []*cobra.Command {
	return []*cobra.Command{ringCommand(files), nodeCommand(), clusterCommand(), poolCommand(), volumeCommand(), snapshotCommand(), scrubCommand(), rebalanceCommand(), zoneCommand(), drillCommand(), userCommand(), keyCommand(), bucketCommand(), storageClassCommand(), claimCommand(), auditCommand()}
}
