package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/strata-storage/strata/bench"
	"github.com/strata-storage/strata/cmd/strata/cli"
)

func benchCommand() *cobra.Command {
	o := bench.Options{EC: "2+2", Pools: 4, ListKeys: 100_000}
	var jsonFile string
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure this machine's limits and a Strata server's S3 workloads against them",
		Long: `Start a Strata server on a data dir of its own (inside --dir, removed
afterwards), measure this machine's limits in the same run (fdatasync and
sequential write rates of --dir's disk; MD5, SHA-256, CRC32C and
Reed-Solomon per core; an HTTP round trip), then run PUT and GET of 1 MiB and
4 KiB objects at 1, 8 and 32 clients, HEAD, a mixed load (GET 45%, STAT 30%,
PUT 15%, DELETE 10%), DELETE, a 256 MiB multipart upload in 16 MiB parts and
full listings of --list-keys 1-byte objects, flat and delimited. Each figure
is printed next to the limit that bounds it, with p50/p99 latencies and the
server's CPU per GiB and per operation.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			bin, err := os.Executable()
			if err != nil {
				return err
			}
			o.Binary = bin
			if o.Duration <= 0 {
				return fmt.Errorf("--duration must be positive")
			}
			o.Progress = cmd.ErrOrStderr()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			rep, err := bench.Run(ctx, o)
			if rep != nil {
				rep.Print(cmd.OutOrStdout())
				if jsonFile != "" {
					f, ferr := os.Create(jsonFile)
					if ferr != nil {
						return ferr
					}
					defer f.Close()
					if ferr := rep.WriteJSON(f); ferr != nil {
						return ferr
					}
				}
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Dir, "dir", os.TempDir(), "directory on the disk to measure (the run's data dir is made inside it)")
	f.StringVar(&o.EC, "ec", o.EC, "erasure coding layout K+M")
	f.IntVar(&o.Pools, "pools", o.Pools, "devices (file-thin pools)")
	cli.DurationVar(f, &o.Duration, "duration", 5*time.Second, "how long each workload runs")
	f.IntVar(&o.ListKeys, "list-keys", o.ListKeys, "1-byte objects written for the listing and space figures (0 skips them)")
	f.IntVar(&o.StartObjects, "start-objects", 0, "at the end, write this many 1-byte objects, restart the server and time it to its first served GET")
	f.StringSliceVar(&o.Only, "only", nil, "run only the workloads whose names start with these (put-1MiB-8,get-4KiB,list)")
	f.StringVar(&o.Profile, "profile", "", "write the server's CPU profile of the run to this file (go tool pprof)")
	f.StringVar(&jsonFile, "json", "", "also write the report as JSON to this file")
	return cmd
}
