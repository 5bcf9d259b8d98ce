package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/strata-storage/strata/cmd/strata/cli"
	"github.com/strata-storage/strata/logging"
	"github.com/strata-storage/strata/node"
	"github.com/strata-storage/strata/ring"
	"github.com/strata-storage/strata/users"
)

func serverCommand() *cobra.Command {
	cfg := node.DefaultConfig()
	var domains, logLevel, logFormat, secretFile, scrubRate, configFile, cpuProfile string
	var allowHalt, printConfig bool
	var logRepeat time.Duration
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run a Strata node (S3 gateway, storage node and controller in one process)",
		Long: `Run a Strata node. With no flags this is the embedded default: data in
./strata-data on four file-thin pools, erasure coding 2+2, S3 on
127.0.0.1:9000, metrics and health on 127.0.0.1:9001.

Root credentials come from STRATA_ROOT_USER and STRATA_ROOT_PASSWORD, or are
generated on first start, stored (mode 0600) in the data dir and printed once.

Every flag can also be set as $STRATA_<FLAG> (STRATA_DATA_DIR=/srv/strata)
or in a --config YAML file (data-dir: /srv/strata); a flag wins over the
environment, which wins over the file. --print-config shows what is in force.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applySettings(cmd.Flags(), configFile); err != nil {
				return err
			}
			if printConfig {
				return printSettings(cmd.OutOrStdout(), cmd.Flags())
			}
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level: %w", err)
			}
			logger, err := logging.New(os.Stderr, logging.Options{Format: logFormat, Level: level, Repeat: logRepeat})
			if err != nil {
				return fmt.Errorf("--log-format: %w", err)
			}
			cfg.Logger = logger
			cfg.Domains = nil
			for _, d := range strings.Split(domains, ",") {
				if d = strings.TrimSpace(d); d != "" {
					cfg.Domains = append(cfg.Domains, d)
				}
			}
			if cfg.S3Advertise != "" {
				if _, port, err := net.SplitHostPort(cfg.S3Advertise); err != nil || port == "" {
					return fmt.Errorf("--s3-advertise %q: want host:port", cfg.S3Advertise)
				}
			}
			if cfg.MetadataCache < minMetadataCache {
				return fmt.Errorf("--metadata-cache %d bytes: the metadata databases' cache takes at least %d MiB", cfg.MetadataCache, minMetadataCache>>20)
			}
			if cfg.ChunkVolume < minChunkVolume {
				return fmt.Errorf("--chunk-volume-size %d bytes: a chunk volume holds at least %d MiB", cfg.ChunkVolume, minChunkVolume>>20)
			}
			if cfg.EC != "" {
				if _, _, err := ring.ParseEC(cfg.EC); err != nil {
					return err
				}
			}
			cfg.Root = users.Credentials{AccessKey: os.Getenv("STRATA_ROOT_USER"), SecretKey: os.Getenv("STRATA_ROOT_PASSWORD")}
			cfg.ClusterSecret = os.Getenv("STRATA_CLUSTER_SECRET")
			if secretFile != "" {
				b, err := os.ReadFile(secretFile)
				if err != nil {
					return fmt.Errorf("--cluster-secret-file: %w", err)
				}
				cfg.ClusterSecret = strings.TrimSpace(string(b))
			}
			switch strings.ToLower(scrubRate) {
			case "off", "none", "-1", "false": // YAML reads a bare off as false
				cfg.ScrubRate = -1
			default:
				var err error
				if cfg.ScrubRate, err = cli.ParseRate(scrubRate); err != nil || cfg.ScrubRate == 0 {
					return fmt.Errorf("--scrub-rate %q: want a rate such as 64MiB/s, or off", scrubRate)
				}
			}
			if cfg.DiskReserve.Percent < 0 || cfg.DiskReserve.Percent >= 50 {
				return fmt.Errorf("--disk-reserve must be a percentage from 0 to 50")
			}
			if cfg.ClientLimits.Idle <= 0 {
				return fmt.Errorf("--client-timeout must be positive")
			}
			if allowHalt {
				// A drill's rack failure: gone at once, like a pulled plug
				// (acknowledged writes are already durable).
				cfg.Halt = func() { os.Exit(137) }
			}
			if cpuProfile != "" {
				f, err := os.Create(cpuProfile)
				if err != nil {
					return fmt.Errorf("--cpu-profile: %w", err)
				}
				if err := pprof.StartCPUProfile(f); err != nil {
					f.Close()
					return fmt.Errorf("--cpu-profile: %w", err)
				}
				defer func() { pprof.StopCPUProfile(); f.Close() }()
			}
			return runServer(cmd, cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "data directory")
	f.StringVar(&cfg.S3Addr, "s3-addr", cfg.S3Addr, "S3 API listen address")
	f.StringVar(&cfg.S3AccessLog, "s3-access-log", "", "append an S3 server access log line (AWS's fields) per request to this file")
	f.StringVar(&cfg.S3Advertise, "s3-advertise", "", "host:port clients reach S3 at, given to bucket claims as BUCKET_HOST (default --s3-addr, or the first --domain when it listens on every interface)")
	f.StringVar(&cfg.AdminAddr, "admin-addr", cfg.AdminAddr, "admin, /metrics and /healthz listen address")
	f.StringVar(&cfg.NodeName, "node-name", cfg.NodeName, "this node's name in the ring")
	f.StringVar(&cfg.NodeName, "node-id", cfg.NodeName, "same as --node-name")
	f.StringVar(&cfg.EC, "ec", "", "erasure coding layout K+M of a new data dir (default 2+2)")
	f.IntVar(&cfg.Pools, "pools", cfg.Pools, "file-thin pools (devices) of a new data dir")
	cli.SizeVar(f, &cfg.ChunkVolume, "chunk-volume-size", "1TiB", "logical (thin) size of each pool's chunk volume (e.g. 1TiB, 500GB)")
	cli.SizeVar(f, &cfg.MetadataCache, "metadata-cache", "256MiB", "block cache shared by this node's metadata databases (small objects' GETs and HEADs are served from it)")
	f.StringVar(&cfg.Region, "region", cfg.Region, "region reported to clients")
	f.StringVar(&domains, "domain", strings.Join(cfg.Domains, ","), "comma-separated domains for virtual-hosted-style requests (<bucket>.<domain>)")
	cli.DurationVar(f, &cfg.StaleUploadAge, "stale-upload-age", cfg.StaleUploadAge, "abort multipart uploads initiated longer ago than this (0 keeps them)")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&logFormat, "log-format", "text", "text or json (one object a line)")
	cli.DurationVar(f, &logRepeat, "log-repeat", 10*time.Second, "a warning repeated within this window is written once, the next one saying how many it stands for (0: every one)")
	f.StringVar(&configFile, "config", "", "YAML file of settings (the flags' names as keys); flags and $STRATA_<FLAG> override it")
	f.BoolVar(&printConfig, "print-config", false, "print the settings in force as a --config file and exit")
	f.StringVar(&cfg.Meta, "meta", "", "cluster metadata store, etcd://host:2379[,host:2379…][/prefix]; empty runs a single node on its own pebble store")
	f.StringVar(&cfg.Zone, "zone", cfg.Zone, "this node's zone (rack), a failure domain of the ring")
	f.StringVar(&cfg.RPCAddr, "rpc-addr", cfg.RPCAddr, "inter-node RPC listen address (cluster mode)")
	f.StringVar(&cfg.AdvertiseRPC, "advertise-rpc", "", "RPC address other nodes use (default --rpc-addr)")
	f.IntVar(&cfg.ClusterSize, "cluster-size", 0, "build the cluster's first ring once this many nodes have joined")
	f.StringVar(&secretFile, "cluster-secret-file", "", "file holding the cluster secret (default: $STRATA_CLUSTER_SECRET)")
	cli.DurationVar(f, &cfg.HeartbeatTTL, "heartbeat-ttl", cfg.HeartbeatTTL, "a node is down this long after its last heartbeat")
	f.StringVar(&cfg.NBDAddr, "nbd-addr", cfg.NBDAddr, "NBD listen address for block volumes (\"off\" disables); without TLS, loopback only")
	f.BoolVar(&cfg.NBDInsecure, "nbd-insecure", false, "serve NBD without TLS on a non-loopback address (anyone who reaches it can attach any volume)")
	f.StringVar(&cfg.NBDClientCA, "nbd-client-ca", "", "CA (PEM) that signs NBD clients' certificates (default --tls-ca)")
	f.StringVar(&cfg.NBDPSKFile, "nbd-psk-file", "", "TLS-PSK keys of NBD clients, one identity:hex-key a line (psktool's format; mode 0600; re-read when it changes); requires TLS on NBD, with or without --tls-cert")
	cli.DurationVar(f, &cfg.VolumeLease, "volume-lease", cfg.VolumeLease, "a volume's primary that stops answering blocks a takeover this long")
	f.StringVar(&scrubRate, "scrub-rate", "64MiB/s", "background scrub read rate per device or volume (off: no scrubbing)")
	cli.DurationVar(f, &cfg.ScrubPeriod, "scrub-period", cfg.ScrubPeriod, "start a full scrub pass of every device and volume at least this often")
	cli.RateVar(f, &cfg.RebalanceLimit, "rebalance-limit", "128MiB/s", "default bandwidth limit of a rebalance (none: no limit)")
	f.IntVar(&cfg.RebalanceConcurrency, "rebalance-concurrency", cfg.RebalanceConcurrency, "default number of devices a rebalance walks at once")
	cli.DurationVar(f, &cfg.RebalanceTakeover, "rebalance-takeover", cfg.RebalanceTakeover, "another node takes over a rebalance whose node has been down this long")
	f.BoolVar(&cfg.SigV2, "sigv2", cfg.SigV2, "accept S3 requests signed with Signature Version 2 (aws-cli v1 presign, s3cmd signurl, old POST forms); --sigv2=false refuses them")
	f.Float64Var(&cfg.DiskReserve.Percent, "disk-reserve", cfg.DiskReserve.Percent, "percent of each filesystem kept free: writes get 507 below it, deletes go on")
	cli.SizeVar(f, &cfg.DiskReserve.Min, "disk-reserve-min", "64MiB", "least free space kept on each filesystem, whatever --disk-reserve says")
	cli.DurationVar(f, &cfg.ClientLimits.Idle, "client-timeout", cfg.ClientLimits.Idle, "longest a client may stall sending a request body or taking a response (S3 and admin); also the grace before --min-body-rate applies")
	cli.RateVar(f, &cfg.ClientLimits.MinRate, "min-body-rate", "1KiB/s", "rate a request body must average after --client-timeout (none: no floor)")
	f.BoolVar(&allowHalt, "allow-halt", false, "let the admin API stop this process at once (for failure drills on test clusters)")
	f.StringVar(&cpuProfile, "cpu-profile", "", "write a CPU profile of the process's run to this file when it stops (go tool pprof)")
	f.StringVar(&cfg.TLSCert, "tls-cert", "", "TLS certificate (PEM) for every listener: S3, admin and RPC")
	f.StringVar(&cfg.TLSKey, "tls-key", "", "TLS private key (PEM)")
	f.StringVar(&cfg.TLSCA, "tls-ca", "", "CA (PEM) that signs other nodes' certificates (RPC client)")
	return cmd
}

// minMetadataCache is the least block cache the metadata databases are
// given (pebble's own default).
const minMetadataCache = 8 << 20

// minChunkVolume is the least a chunk volume may hold: a few blocks of
// every size an object is cut into.
const minChunkVolume = 16 << 20

func runServer(cmd *cobra.Command, cfg node.Config) error {
	n, err := node.Start(cfg)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "Strata %s: EC %d+%d on %d devices, data in %s\n", version, n.Ring.K, n.Ring.M, len(n.Ring.Devices), cfg.DataDir)
	scheme := "http"
	if cfg.TLSCert != "" {
		scheme = "https"
	}
	fmt.Fprintf(out, "S3 API:  %s://%s\nAdmin:   %s://%s/metrics, %s://%s/healthz\n", scheme, n.S3Addr(), scheme, n.AdminAddr(), scheme, n.AdminAddr())
	if a := n.NBDAddr(); a != "" {
		nbdScheme := "nbd"
		if cfg.TLSCert != "" || cfg.NBDPSKFile != "" {
			nbdScheme = "nbds"
		}
		fmt.Fprintf(out, "NBD:     %s://%s (block volumes: strata volume create NAME SIZE)\n", nbdScheme, a)
	}
	if cfg.Meta != "" {
		fmt.Fprintf(out, "Cluster: node %s in zone %s, RPC %s, metadata %s\n", cfg.NodeName, cfg.Zone, n.RPCAddr(), cfg.Meta)
	}
	if n.NewRoot {
		where := cfg.DataDir + "/root-credentials.json"
		if cfg.Meta != "" {
			where = "the cluster metadata store"
		}
		fmt.Fprintf(out, "\nGenerated root credentials (shown once; stored in %s):\n  AWS_ACCESS_KEY_ID=%s\n  AWS_SECRET_ACCESS_KEY=%s\n\n", where, n.Root.AccessKey, n.Root.SecretKey)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	var runErr error
	select {
	case s := <-sig:
		cfg.Logger.Info("shutting down", "signal", s.String())
	case runErr = <-n.Err():
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.Close(ctx); err != nil && runErr == nil {
		runErr = err
	}
	return runErr
}
