package node

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/strata-storage/strata/admin"
	"github.com/strata-storage/strata/blockpool"
	"github.com/strata-storage/strata/blockpool/blockserve"
	"github.com/strata-storage/strata/blockpool/volumes"
	"github.com/strata-storage/strata/claims/bind"
	"github.com/strata-storage/strata/cluster"
	"github.com/strata-storage/strata/devices"
	"github.com/strata-storage/strata/diskspace"
	"github.com/strata-storage/strata/health"
	"github.com/strata-storage/strata/iam"
	"github.com/strata-storage/strata/metastore"
	"github.com/strata-storage/strata/objectstore"
	"github.com/strata-storage/strata/placement"
	"github.com/strata-storage/strata/quota"
	"github.com/strata-storage/strata/ring"
	"github.com/strata-storage/strata/s3api"
	"github.com/strata-storage/strata/scrub/nodescrub"
	"github.com/strata-storage/strata/slowclient"
	"github.com/strata-storage/strata/users"
)

// Config is everything a node needs; cmd/strata fills it from flags.
type Config struct {
	DataDir     string
	S3Addr      string
	S3Advertise string // host:port clients are given (claims' BUCKET_HOST); default S3Addr
	S3AccessLog string // file the S3 server access log is appended to ("": none)
	AdminAddr   string
	Region      string
	Domains     []string
	EC          string // "K+M"; empty keeps the data dir's layout (2+2 when new)
	NodeName    string // this node's name in the ring
	Pools       int    // pools (and devices) of a new data dir
	ChunkVolume int64  // logical size of each chunk volume
	// MetadataCache is the block cache this node's databases (its own and
	// every device's) share: the records of small objects' GETs and HEADs
	// are served from it.
	MetadataCache int64
	PartPower     uint8
	BlockSize     int
	// StaleUploadAge: multipart uploads older than this are aborted.
	StaleUploadAge time.Duration
	Root           users.Credentials
	Logger         *slog.Logger

	// Cluster mode (Meta "etcd://host:port[,…]"); empty Meta is the
	// single-process embedded store.
	Meta          string
	Zone          string // this node's zone (rack) in the ring
	RPCAddr       string // inter-node RPC listen address
	AdvertiseRPC  string // RPC address given to others (default RPCAddr)
	ClusterSecret string // shared by every node; RPC without it is refused
	ClusterSize   int    // build the first ring when this many nodes are up
	HeartbeatTTL  time.Duration
	HintInterval  time.Duration // how often queued repairs for returned devices are tried
	RPCTimeouts   cluster.Timeouts
	// ClientLimits cut off clients that stall a request body or a
	// response, on the S3 and admin listeners.
	ClientLimits slowclient.Limits
	// TLS for every listener (S3, admin, RPC); TLSCA verifies peers.
	TLSCert, TLSKey, TLSCA string

	// SigV2 accepts S3 requests signed with Signature Version 2.
	SigV2 bool
	// NBDAddr serves block volumes over NBD ("" or "off": not served).
	NBDAddr string
	// DiskReserve is the free space writes leave on each filesystem.
	DiskReserve diskspace.Reserve
	// NBDInsecure serves NBD without TLS on a non-loopback address.
	NBDInsecure bool
	// NBDClientCA verifies NBD clients' certificates (default TLSCA).
	NBDClientCA string
	// NBDPSKFile holds TLS-PSK keys of NBD clients ("identity:hex-key"
	// lines, GnuTLS psktool's format); it makes TLS required on NBD, with
	// or without a certificate.
	NBDPSKFile string
	// VolumeLease: how long a volume primary that stopped answering keeps
	// others from taking over.
	VolumeLease time.Duration
	// VolumeKeeperInterval: how often a node looks for replicas to
	// resync on volumes no client has attached.
	VolumeKeeperInterval time.Duration
	// ScrubRate is the scrub's read rate per device or volume, bytes/s
	// (negative: no scrubbing); ScrubPeriod, how often a full pass starts.
	ScrubRate   int64
	ScrubPeriod time.Duration
	// RebalanceLimit (bytes/s, 0: none) and RebalanceConcurrency are the
	// defaults of a rebalance job.
	RebalanceLimit       int64
	RebalanceConcurrency int
	// RebalanceTakeover: how long the node running a rebalance may be
	// down before another takes the job over.
	RebalanceTakeover time.Duration
	// Halt, if set, lets the admin API stop this process at once (a
	// drill's rack failure, on test clusters).
	Halt func()
	// WrapVolume, if set, wraps each device's chunk volume (the fault
	// injection seam of in-process tests; see devices.Config).
	WrapVolume func(device string, v blockpool.Volume) blockpool.Volume
}

// DefaultConfig is the embedded default.
func DefaultConfig() Config {
	return Config{
		DataDir: "strata-data", S3Addr: "127.0.0.1:9000", AdminAddr: "127.0.0.1:9001",
		Region: "us-east-1", Domains: []string{"localhost"}, Pools: 4, ChunkVolume: 1 << 40, MetadataCache: 256 << 20,
		PartPower: 8, BlockSize: 1 << 20, StaleUploadAge: 7 * 24 * time.Hour, NodeName: "node1",
		Zone: "zone1", RPCAddr: "127.0.0.1:9002", NBDAddr: "127.0.0.1:10809", VolumeLease: 6 * time.Second, VolumeKeeperInterval: 5 * time.Second, ScrubRate: 64 << 20, ScrubPeriod: 7 * 24 * time.Hour, RebalanceLimit: 128 << 20, RebalanceConcurrency: 8, RebalanceTakeover: 30 * time.Second, HeartbeatTTL: 6 * time.Second, HintInterval: 2 * time.Second, RPCTimeouts: cluster.DefaultTimeouts(), ClientLimits: slowclient.DefaultLimits(), DiskReserve: diskspace.DefaultReserve(), SigV2: true,
	}
}

// Node is a running Strata process.
type Node struct {
	cfg Config
	log *slog.Logger
	db  *metastore.Mirrored // node metadata, copied into every device's database
	// devs are this node's devices; lookups read a snapshot.
	devs *devices.Set
	// place holds the ring in force, its changes and rebalancing.
	place *placement.Controller
	store *objectstore.Store
	// Ring is the ring the node started with (K and M never change).
	Ring     *ring.Ring
	Root     users.Credentials
	Registry *prometheus.Registry

	s3Srv, adminSrv, rpcSrv *http.Server
	accessLog               *os.File
	serving                 atomic.Bool // the S3 and admin listeners serve
	s3Ln, adminLn, rpcLn    net.Listener
	errc                    chan error

	// cluster mode
	etcd      *cluster.Etcd
	transport *cluster.Transport
	peers     *cluster.Peers
	locks     *cluster.KeyLocks
	bgCancel  context.CancelFunc
	bg        sync.WaitGroup
	started   time.Time
	// NewRoot is true when the root credentials were generated by this start.
	NewRoot bool

	iam    *iam.Store
	users  *users.Directory
	quota  *quota.Tracker
	claims *bind.Binder
	bgCtx  context.Context // ends with the node

	volumes *volumes.Manager
	blocks  *blockserve.Service
	s3      *s3api.Server
	scrub   *nodescrub.Scrubber
}

// Start opens (or creates) the data dir and starts serving.
func Start(cfg Config) (*Node, error) {
	d := DefaultConfig()
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.NodeName, cfg.DiskReserve, cfg.ClientLimits = cmp.Or(cfg.NodeName, d.NodeName), cmp.Or(cfg.DiskReserve, d.DiskReserve), cmp.Or(cfg.ClientLimits, d.ClientLimits)
	cfg.RPCTimeouts, cfg.HeartbeatTTL = cmp.Or(cfg.RPCTimeouts, d.RPCTimeouts), cmp.Or(max(cfg.HeartbeatTTL, 0), d.HeartbeatTTL)
	cfg.VolumeKeeperInterval = cmp.Or(max(cfg.VolumeKeeperInterval, 0), d.VolumeKeeperInterval)
	n := &Node{cfg: cfg, log: cfg.Logger, Registry: prometheus.NewRegistry(), errc: make(chan error, 3), started: time.Now().UTC()}
	n.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := n.privateDataDir(); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.bgCancel, n.bgCtx = cancel, ctx
	start := n.start
	if cfg.Meta != "" {
		start = n.startClustered
	}
	if err := start(ctx); err != nil {
		n.stopBackground()
		n.closeVolumes(context.Background())
		n.closeStorage()
		return nil, err
	}
	return n, nil
}

func (n *Node) start(ctx context.Context) (err error) {
	cfg := n.cfg
	if n.Root, n.NewRoot, err = users.RootCredentials(cfg.DataDir, cfg.Root); err != nil {
		return err
	}
	if err := n.openRing(); err != nil {
		return err
	}
	n.openMeta()
	if err := n.openDevices(); err != nil {
		return err
	}
	if err := n.db.Check(); err != nil {
		return err
	}
	if err := n.openVolumes(ctx, metastore.NewPebble(n.db, "v/")); err != nil {
		return err
	}
	if err := n.openStore(ctx, n.objectConfig(), metastore.NewPebble(n.db, "m/")); err != nil {
		return err
	}
	if err := n.serve(ctx); err != nil {
		return err
	}
	if n.NewRoot {
		if err := users.StoreRoot(cfg.DataDir, n.Root); err != nil {
			n.s3Srv.Close()
			n.adminSrv.Close()
			return err
		}
	}
	return nil
}

// objectConfig is the object store's configuration on this node.
func (n *Node) objectConfig() objectstore.Config {
	ocfg := objectstore.DefaultConfig()
	ocfg.BlockSize, ocfg.Logger, ocfg.Registry = n.cfg.BlockSize, n.log, n.Registry
	ocfg.StaleUploadAge = n.cfg.StaleUploadAge
	ocfg.DeviceUnreadable = n.devs.Unreadable
	return ocfg
}

// openStore opens the object store over the ring's devices and puts the
// ring in force.
func (n *Node) openStore(ctx context.Context, ocfg objectstore.Config, meta metastore.Store) (err error) {
	if n.store, err = objectstore.New(ocfg, n.Ring, n.place.DevicesFor(n.Ring), meta); err != nil {
		return err
	}
	n.place.Start(ctx, n.Ring, n.store, n.volumes)
	return nil
}

// serve builds the S3 API over the store, starts scrubbing and the
// listeners.
func (n *Node) serve(ctx context.Context) error {
	cfg := n.cfg
	if err := n.openIAM(); err != nil {
		return err
	}
	n.quota = quota.New(n.store, n.iam, n.log)
	n.goBackground(func() { n.quota.Run(ctx) })
	n.claims = bind.New(bind.Config{
		Claims: n.claimMeta("claims"), Classes: n.claimMeta("storageclasses"), IAM: n.iam, Store: n.store,
		Rescan: func(ctx context.Context) { n.quota.Scan(ctx, false) }, Endpoint: func() (string, int) { return bind.Endpoint(cmp.Or(cfg.S3Advertise, n.S3Addr()), cfg.Domains) },
		Region: cfg.Region, K: n.Ring.K, M: n.Ring.M, ParseEC: ring.ParseEC,
	})
	var accessLog *s3api.AccessLog
	if cfg.S3AccessLog != "" {
		f, err := os.OpenFile(cfg.S3AccessLog, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("S3 access log: %w", err)
		}
		n.accessLog, accessLog = f, s3api.NewAccessLog(f)
	}
	n.s3 = s3api.New(s3api.Config{Region: cfg.Region, OwnerID: n.Root.AccessKey, Domains: cfg.Domains, Identity: n.users, Quota: n.quota, SigV2: cfg.SigV2, AccessLog: accessLog, Logger: n.log, Registry: n.Registry}, n.store)
	n.startScrub(ctx)
	return n.listen(n.s3)
}

// openRing loads the data dir's ring, or builds one for a new data dir.
func (n *Node) openRing() (err error) {
	n.Ring, err = placement.OpenLocal(n.cfg.DataDir, n.layout())
	return err
}

// layout is how this node builds a first ring.
func (n *Node) layout() placement.Layout {
	return placement.Layout{EC: n.cfg.EC, PartPower: n.cfg.PartPower, Region: n.cfg.Region, Node: n.cfg.NodeName, Pools: n.cfg.Pools}
}

// openMeta opens the node's database and its (still empty) device set,
// which the RPC serves from the start.
func (n *Node) openMeta() {
	n.db = metastore.OpenMirrored(filepath.Join(n.cfg.DataDir, "meta"), n.log, n.cfg.MetadataCache)
	n.devs = devices.New(devices.Config{DataDir: n.cfg.DataDir, Node: n.cfg.NodeName, ChunkVolume: n.cfg.ChunkVolume, Reserve: n.cfg.DiskReserve, Meta: n.db, Registry: n.Registry, Log: n.log, WrapVolume: n.cfg.WrapVolume})
}

// openDevices opens this node's devices of the ring.
func (n *Node) openDevices() error {
	n.place = placement.New(placement.Config{
		Node: n.cfg.NodeName, DataDir: n.cfg.DataDir, Etcd: n.etcd, Peers: n.peers, Devices: n.devs, Jobs: n.claimMeta("rebalance"),
		RebalanceLimit: n.cfg.RebalanceLimit, RebalanceConcurrency: n.cfg.RebalanceConcurrency, RebalanceTakeover: n.cfg.RebalanceTakeover,
		Self: n.nodeInfo, Go: n.goBackground, Record: n.recordPlacement, Registry: n.Registry, Log: n.log,
	})
	for _, d := range n.Ring.Devices {
		if d.Node != n.cfg.NodeName {
			if !n.clustered() {
				n.log.Warn("ring device belongs to another node; this node serves only its own", "device", d.Name, "node", d.Node)
			}
			continue
		}
		if err := n.devs.Open(d); err != nil {
			return err
		}
	}
	return nil
}

// CurrentRing is the ring in force.
func (n *Node) CurrentRing() *ring.Ring { return n.place.Current() }

func (n *Node) listen(s3 http.Handler) (err error) {
	serverTLS, _, _, err := n.tlsConfigs()
	if err != nil {
		return err
	}
	if n.s3Ln, err = listen(n.cfg.S3Addr, serverTLS); err != nil {
		return fmt.Errorf("S3 listener: %w", err)
	}
	if n.adminLn, err = listen(n.cfg.AdminAddr, serverTLS); err != nil {
		n.s3Ln.Close()
		return fmt.Errorf("admin listener: %w", err)
	}
	n.s3Srv = &http.Server{Handler: slowclient.Handler(s3, n.cfg.ClientLimits), ReadHeaderTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
	api, err := n.adminAPI()
	if err != nil {
		n.s3Ln.Close()
		n.adminLn.Close()
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(n.Registry, promhttp.HandlerOpts{}))
	n.healthChecks().Register(mux)
	mux.Handle(admin.Prefix, api)
	n.adminSrv = &http.Server{Handler: slowclient.Handler(mux, n.cfg.ClientLimits), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	go func() { n.errc <- n.s3Srv.Serve(n.s3Ln) }()
	go func() { n.errc <- n.adminSrv.Serve(n.adminLn) }()
	n.serving.Store(true)
	return nil
}

// healthChecks are /livez, /readyz and /healthz (package health) over the
// components that report.
func (n *Node) healthChecks() *health.Checker {
	hc := health.New(3 * time.Second)
	hc.AddSource("placement", n.place.HealthSource)
	if n.blocks != nil {
		hc.AddSource("volumes", n.blocks.HealthSource)
	}
	hc.AddReadiness("ring", n.place.Ready)
	hc.AddReadiness("listeners", func(context.Context) error {
		if !n.serving.Load() {
			return errors.New("the S3 and admin listeners are not serving yet")
		}
		return nil
	})
	if n.clustered() {
		hc.AddReadiness("metadata", n.etcd.Ready)
	}
	return hc
}

// listen opens a TCP listener, with TLS if conf is set.
func listen(addr string, conf *tls.Config) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil || conf == nil {
		return ln, err
	}
	return tls.NewListener(ln, conf), nil
}

// S3Addr and AdminAddr are the bound listen addresses.
func (n *Node) S3Addr() string    { return n.s3Ln.Addr().String() }
func (n *Node) AdminAddr() string { return n.adminLn.Addr().String() }

// Store is the node's object layer.
func (n *Node) Store() *objectstore.Store { return n.store }

// Err reports a listener that stopped unexpectedly.
func (n *Node) Err() <-chan error { return n.errc }

// Close stops the listeners (waiting up to the context's deadline for
// requests in flight) and closes storage.
func (n *Node) Close(ctx context.Context) error {
	var errs []error
	for _, srv := range []*http.Server{n.s3Srv, n.adminSrv, n.rpcSrv} {
		if srv != nil {
			if err := srv.Shutdown(ctx); err != nil {
				srv.Close()
				errs = append(errs, err)
			}
		}
	}
	if n.accessLog != nil {
		errs = append(errs, n.accessLog.Close())
	}
	errs = append(errs, n.closeVolumes(ctx))
	if n.store != nil {
		n.store.Close()
	}
	n.stopBackground()
	errs = append(errs, n.closeStorage())
	return errors.Join(errs...)
}

func (n *Node) closeStorage() error {
	var errs []error
	if n.db != nil {
		errs = append(errs, n.db.Close())
		n.db = nil
	}
	if n.devs != nil {
		errs = append(errs, n.devs.Close())
	}
	if n.etcd != nil {
		errs = append(errs, n.etcd.Close())
		n.etcd = nil
	}
	return errors.Join(errs...)
}

// RPCAddr is the bound inter-node RPC address (cluster mode).
func (n *Node) RPCAddr() string {
	if n.rpcLn == nil {
		return ""
	}
	return n.rpcLn.Addr().String()
}
