// Package blockserve serves a node's block volumes: the volume manager
// on the metadata store, the NBD listener and its TLS (certificates or
// pre-shared keys), the volume and snapshot operations of the admin API,
// the volume metrics, and the cluster through which the manager reaches
// other nodes' replicas.
package blockserve

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-storage/strata/admin"
	"github.com/strata-storage/strata/blockpool/nbd"
	"github.com/strata-storage/strata/blockpool/replicate"
	"github.com/strata-storage/strata/blockpool/replicate/volrpc"
	"github.com/strata-storage/strata/blockpool/volumes"
	"github.com/strata-storage/strata/cluster"
	"github.com/strata-storage/strata/health"
	"github.com/strata-storage/strata/metastore"
	"github.com/strata-storage/strata/tlspsk"
)

// Config is what a node's block service needs.
type Config struct {
	Node, Zone string
	// Dir holds the volume pool.
	Dir  string
	Meta metastore.Store
	// Cluster reaches the other nodes (nil: a single node).
	Cluster volumes.Cluster
	// Forward is the admin client of another node, for the volume calls
	// that must run where a volume is primary (nil: none are forwarded).
	Forward func(ctx context.Context, node string) (*admin.Client, error)
	// Lease: how long a primary that stopped answering keeps others from
	// taking over.
	Lease time.Duration
	// NBDAddr serves NBD ("" or "off": not served).
	NBDAddr string
	// ServerTLS is the node's certificate (nil: none).
	ServerTLS *tls.Config
	// NBDClientCA (default TLSCA) verifies NBD clients' certificates;
	// NBDPSKFile holds their pre-shared keys; NBDInsecure serves
	// plaintext off loopback.
	NBDClientCA, TLSCA, NBDPSKFile string
	NBDInsecure                    bool
	// ServeError receives the NBD server's end (nil: ignored).
	ServeError func(error)
	Registry   prometheus.Registerer
	Log        *slog.Logger
}

// Service is a node's block volumes.
type Service struct {
	cfg       Config
	mgr       *volumes.Manager // set by Open, never changed
	nbdSrv    *nbd.Server
	nbdLn     net.Listener
	closeOnce sync.Once
}

// Open opens the volume manager on cfg.Meta, reconciles it and, unless
// disabled, starts the NBD listener. RunKeeper keeps replicas in sync.
func Open(ctx context.Context, cfg Config) (*Service, error) {
	s := &Service{cfg: cfg}
	io := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "strata_volume_io_seconds", Help: "Latency of block-volume reads and writes served by this node's primaries.", Buckets: prometheus.ExponentialBuckets(50e-6, 2, 16)}, []string{"op"})
	bytes := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "strata_volume_io_bytes_total", Help: "Bytes read and written through this node's volume primaries."}, []string{"volume", "op"})
	cfg.Registry.MustRegister(io, bytes)
	mgr, err := volumes.Open(volumes.Config{
		Node: cfg.Node, Zone: cfg.Zone, Dir: cfg.Dir, Meta: cfg.Meta, Cluster: cfg.Cluster,
		Lease: cfg.Lease, Log: cfg.Log,
		Observe: func(volume, op string, b int, d time.Duration) {
			io.WithLabelValues(op).Observe(d.Seconds())
			bytes.WithLabelValues(volume, op).Add(float64(b))
		},
	})
	if err != nil {
		return nil, err
	}
	s.mgr = mgr
	cfg.Registry.MustRegister(collector{mgr})
	if err := mgr.Reconcile(ctx); err != nil {
		cfg.Log.Warn("volume reconcile", "err", err)
	}
	if cfg.NBDAddr == "" || cfg.NBDAddr == "off" {
		return s, nil
	}
	if err := s.listen(); err != nil {
		mgr.Close()
		return nil, err
	}
	return s, nil
}

// RunKeeper resyncs replicas of volumes no client has attached, every
// interval, until ctx ends.
func (s *Service) RunKeeper(ctx context.Context, interval time.Duration) {
	s.mgr.RunKeeper(ctx, interval)
}

// Manager is the volume manager.
func (s *Service) Manager() *volumes.Manager { return s.mgr }

// InFlight is how many NBD requests are being served.
func (s *Service) InFlight() int64 {
	if s.nbdSrv == nil {
		return 0
	}
	return s.nbdSrv.InFlight()
}

func (s *Service) listen() error {
	opts, err := s.nbdOptions()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", s.cfg.NBDAddr)
	if err != nil {
		return fmt.Errorf("NBD listener: %w", err)
	}
	if err := mayServe(ln.Addr(), opts, s.cfg.NBDInsecure); err != nil {
		ln.Close()
		return err
	}
	s.nbdLn = ln
	opts.Access = s.mgr
	srv := nbd.NewServer(s.mgr, opts, s.cfg.Log)
	s.nbdSrv = srv
	go func() {
		if err := srv.Serve(ln); err != nil && s.cfg.ServeError != nil {
			s.cfg.ServeError(err)
		}
	}()
	return nil
}

// nbdOptions is the NBD server's TLS: with a certificate, every client must
// use STARTTLS and present a certificate that --nbd-client-ca (else
// --tls-ca) signed; with --nbd-psk-file, clients may instead prove a
// pre-shared key. The certificate's common name or the PSK identity is
// what `strata volume access` grants.
func (s *Service) nbdOptions() (nbd.Options, error) {
	server := s.cfg.ServerTLS
	var opts nbd.Options
	if s.cfg.NBDPSKFile != "" {
		kf, err := tlspsk.OpenKeyFile(s.cfg.NBDPSKFile)
		if err != nil {
			return nbd.Options{}, err
		}
		opts.PSK = func(identity string) ([]byte, bool) {
			k, ok := kf.Lookup(identity)
			if err := kf.Err(); err != nil {
				s.cfg.Log.Warn("NBD PSK file changed but could not be read; the keys last read stay in use", "err", err)
			}
			return k, ok
		}
	}
	if s.cfg.NBDInsecure && (server != nil || opts.PSK != nil) {
		return nbd.Options{}, errors.New("--nbd-insecure serves plaintext NBD, but this node has a certificate or PSK keys and requires TLS: drop one of them")
	}
	if server == nil {
		if s.cfg.NBDClientCA != "" {
			return nbd.Options{}, errors.New("--nbd-client-ca needs --tls-cert and --tls-key: without a certificate NBD has no TLS to check clients with")
		}
		return opts, nil
	}
	caFile := s.cfg.NBDClientCA
	if caFile == "" {
		caFile = s.cfg.TLSCA
	}
	if caFile == "" {
		if opts.PSK != nil {
			// Nothing to check certificates against: PSK clients only.
			return opts, nil
		}
		return nbd.Options{}, errors.New("NBD over TLS needs the CA of its clients' certificates (--nbd-client-ca or --tls-ca) or their pre-shared keys (--nbd-psk-file)")
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nbd.Options{}, fmt.Errorf("NBD client CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nbd.Options{}, fmt.Errorf("NBD client CA %s: no certificates", caFile)
	}
	conf := server.Clone()
	conf.ClientAuth, conf.ClientCAs = tls.RequireAndVerifyClientCert, pool
	opts.TLS = conf
	return opts, nil
}

// mayServe refuses plaintext NBD off loopback addresses (unless insecure
// is asked for): without TLS nobody can be told apart.
func mayServe(a net.Addr, opts nbd.Options, insecure bool) error {
	if opts.TLS == nil && opts.PSK == nil && !insecure && !isLoopback(a) {
		return fmt.Errorf("NBD listener %s: without TLS (--tls-cert or --nbd-psk-file) block volumes are served on loopback addresses only, since nobody can be told apart; give a certificate or keys, or --nbd-insecure to serve plaintext there anyway", a)
	}
	return nil
}

func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// NBDAddr is the bound NBD address ("" when not served).
func (s *Service) NBDAddr() string {
	if s.nbdLn == nil {
		return ""
	}
	return s.nbdLn.Addr().String()
}

// Close stops NBD (waiting for requests in flight up to ctx) and closes
// the manager.
// The fields stay as they are (workers may still read them while the node
// stops); only the first Close acts.
func (s *Service) Close(ctx context.Context) error {
	var err error
	s.closeOnce.Do(func() {
		var errs []error
		if s.nbdSrv != nil {
			errs = append(errs, s.nbdSrv.Close(ctx))
		}
		errs = append(errs, s.mgr.Close())
		err = errors.Join(errs...)
	})
	return err
}

// Cluster lets the volume manager reach the other members: their list
// in etcd, their replicas through peers.
func Cluster(etcd *cluster.Etcd, peers *cluster.Peers) volumes.Cluster {
	return nodeVolumes{etcd: etcd, peers: peers}
}

type nodeVolumes struct {
	etcd  *cluster.Etcd
	peers *cluster.Peers
}

func (v nodeVolumes) Nodes(ctx context.Context) ([]volumes.NodeInfo, error) {
	members, err := cluster.ListMembers(ctx, v.etcd)
	if err != nil {
		return nil, err
	}
	out := make([]volumes.NodeInfo, 0, len(members))
	for _, m := range members {
		out = append(out, volumes.NodeInfo{Name: m.Name, Zone: m.Zone, Up: m.State == "up", Pool: m.VolumePool})
	}
	return out, nil
}

func (v nodeVolumes) peer(node string) (*cluster.Peer, error) {
	if p := v.peers.Get(node); p != nil {
		return p, nil
	}
	return nil, fmt.Errorf("%w: %s is not a known member", volumes.ErrNodeDown, node)
}

func (v nodeVolumes) Link(node, volume string) replicate.Link {
	p, err := v.peer(node)
	if err != nil {
		return deadLink{node, err}
	}
	return volrpc.Link(p, volume)
}

func (v nodeVolumes) CreateReplica(ctx context.Context, node, volume string, size int64) error {
	p, err := v.peer(node)
	if err != nil {
		return err
	}
	return volrpc.CreateReplica(ctx, p, volume, size)
}

func (v nodeVolumes) CreateWitness(ctx context.Context, node, volume string, size int64) error {
	p, err := v.peer(node)
	if err != nil {
		return err
	}
	return volrpc.CreateWitness(ctx, p, volume, size)
}

func (v nodeVolumes) CloneReplica(ctx context.Context, node, volume, from, snapshot string) error {
	p, err := v.peer(node)
	if err != nil {
		return err
	}
	return volrpc.CloneReplica(ctx, p, volume, from, snapshot)
}

func (v nodeVolumes) DeleteReplica(ctx context.Context, node, volume string) error {
	p, err := v.peer(node)
	if err != nil {
		return err
	}
	return volrpc.DeleteReplica(ctx, p, volume)
}

// deadLink stands for a replica on a node this one does not know (yet):
// every call fails, as to a node that is down.
type deadLink struct {
	node string
	err  error
}

func (d deadLink) Node() string { return d.node }
func (d deadLink) Hello(context.Context, uint64, string) (replicate.Status, error) {
	return replicate.Status{}, d.err
}
func (d deadLink) Promote(context.Context, uint64, string, replicate.Mode) (replicate.Status, error) {
	return replicate.Status{}, d.err
}
func (d deadLink) Release(context.Context, uint64) error                        { return d.err }
func (d deadLink) Write(context.Context, uint64, int64, []byte, []string) error { return d.err }
func (d deadLink) Trim(context.Context, uint64, int64, int64, []string) error   { return d.err }
func (d deadLink) Read(context.Context, uint64, int64, []byte) error            { return d.err }
func (d deadLink) Sync(context.Context, uint64) error                           { return d.err }
func (d deadLink) SetGen(context.Context, uint64, replicate.GenChange) error    { return d.err }
func (d deadLink) DropBitmap(context.Context, uint64, string) error             { return d.err }
func (d deadLink) Snapshot(context.Context, uint64, string) error               { return d.err }
func (d deadLink) Restore(context.Context, uint64, string) error                { return d.err }
func (d deadLink) Resize(context.Context, uint64, int64) error                  { return d.err }
func (d deadLink) MergeBitmap(context.Context, uint64, string, replicate.Track, []uint64) error {
	return d.err
}
func (d deadLink) Bitmap(context.Context, uint64, string) (replicate.Track, []uint64, bool, error) {
	return replicate.Track{}, nil, false, d.err
}

// collector exports the pool and the attached primaries' state.
type collector struct{ m *volumes.Manager }

var (
	descPoolCapacity = prometheus.NewDesc("strata_volume_pool_capacity_bytes", "Capacity of the filesystem under the volume pool.", nil, nil)
	descPoolFree     = prometheus.NewDesc("strata_volume_pool_free_bytes", "Free bytes under the volume pool.", nil, nil)
	descPoolProv     = prometheus.NewDesc("strata_volume_pool_provisioned_bytes", "Sum of the sizes of the replicas in the volume pool (thin).", nil, nil)
	descPoolAlloc    = prometheus.NewDesc("strata_volume_pool_allocated_bytes", "Bytes the replicas in the volume pool really use.", nil, nil)
	descOutOfSync    = prometheus.NewDesc("strata_volume_out_of_sync_bytes", "Bytes a replica misses (to be resynced), as the volume's primary on this node sees it.", []string{"volume", "node"}, nil)
	descSynced       = prometheus.NewDesc("strata_volume_resync_progress_bytes", "Bytes copied by the running or last resync of a replica.", []string{"volume", "node"}, nil)
	descUpToDate     = prometheus.NewDesc("strata_volume_replica_up_to_date", "1 if the replica is UpToDate.", []string{"volume", "node"}, nil)
	descRepaired     = prometheus.NewDesc("strata_volume_repaired_blocks_total", "Bad blocks rewritten from a good replica.", []string{"volume"}, nil)
	descSplitBrain   = prometheus.NewDesc("strata_volume_split_brain", "1 if the replica's data diverged under a forced primary (resolve with strata volume discard).", []string{"volume", "node"}, nil)
	descResynced     = prometheus.NewDesc("strata_volume_resynced_bytes_total", "Bytes copied by resyncs.", []string{"volume"}, nil)
	descSyncRate     = prometheus.NewDesc("strata_volume_resync_rate_bytes_per_second", "Bytes per second of a replica's running resync since it started, as the volume's primary on this node sees it.", []string{"volume", "node"}, nil)
	descSyncETA      = prometheus.NewDesc("strata_volume_resync_eta_seconds", "Seconds left of a replica's running resync at its rate so far.", []string{"volume", "node"}, nil)
	descDegraded     = prometheus.NewDesc("strata_volumes_degraded", "Volumes with a replica on this node of which some replica is not UpToDate.", nil, nil)
	descNoQuorum     = prometheus.NewDesc("strata_volumes_without_quorum", "Volumes with a replica on this node of which fewer than a majority of replicas are UpToDate (writes stop).", nil, nil)
)

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPoolCapacity, descPoolFree, descPoolProv, descPoolAlloc, descOutOfSync, descSynced, descUpToDate, descRepaired, descResynced, descSplitBrain, descDegraded, descNoQuorum, descSyncRate, descSyncETA} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	pi := c.m.Pool()
	ch <- prometheus.MustNewConstMetric(descPoolCapacity, prometheus.GaugeValue, float64(pi.Capacity))
	ch <- prometheus.MustNewConstMetric(descPoolFree, prometheus.GaugeValue, float64(pi.Free))
	ch <- prometheus.MustNewConstMetric(descPoolProv, prometheus.GaugeValue, float64(pi.Provisioned))
	ch <- prometheus.MustNewConstMetric(descPoolAlloc, prometheus.GaugeValue, float64(pi.Allocated))
	attached := c.m.Attached()
	// Volumes not attached here: their replicas as the keeper last saw
	// them, so a replica that is down shows whether or not a client is
	// attached anywhere.
	degraded, noQuorum := 0, 0
	for name, vi := range c.m.Views() {
		upToDate := 0
		for _, ri := range vi.Replicas {
			if ri.State == replicate.UpToDate {
				upToDate++
			}
		}
		if upToDate < len(vi.Replicas) {
			degraded++
		}
		if upToDate < len(vi.Replicas)/2+1 {
			noQuorum++
		}
		if _, ok := attached[name]; ok {
			continue
		}
		for _, ri := range vi.Replicas {
			replicaMetrics(ch, name, ri.Node, ri.State, ri.OutOfSyncBytes)
		}
	}
	ch <- prometheus.MustNewConstMetric(descDegraded, prometheus.GaugeValue, float64(degraded))
	ch <- prometheus.MustNewConstMetric(descNoQuorum, prometheus.GaugeValue, float64(noQuorum))
	for name, p := range attached {
		st := p.Stats()
		ch <- prometheus.MustNewConstMetric(descRepaired, prometheus.CounterValue, float64(st.RepairedBlocks), name)
		ch <- prometheus.MustNewConstMetric(descResynced, prometheus.CounterValue, float64(st.ResyncedBytes), name)
		for _, mi := range p.Members() {
			replicaMetrics(ch, name, mi.Node, mi.State, mi.OutOfSyncBytes)
			ch <- prometheus.MustNewConstMetric(descSynced, prometheus.GaugeValue, float64(mi.SyncedBytes), name, mi.Node)
			if mi.SyncRate > 0 {
				ch <- prometheus.MustNewConstMetric(descSyncRate, prometheus.GaugeValue, mi.SyncRate, name, mi.Node)
				ch <- prometheus.MustNewConstMetric(descSyncETA, prometheus.GaugeValue, mi.SyncETA, name, mi.Node)
			}
		}
	}
}

// replicaMetrics are one replica's state gauges.
func replicaMetrics(ch chan<- prometheus.Metric, volume, node, state string, outOfSync int64) {
	is := func(s string) float64 {
		if state == s {
			return 1
		}
		return 0
	}
	ch <- prometheus.MustNewConstMetric(descOutOfSync, prometheus.GaugeValue, float64(outOfSync), volume, node)
	ch <- prometheus.MustNewConstMetric(descUpToDate, prometheus.GaugeValue, is(replicate.UpToDate), volume, node)
	ch <- prometheus.MustNewConstMetric(descSplitBrain, prometheus.GaugeValue, is(replicate.SplitBrain), volume, node)
}

// HealthSource is the block volumes' part of /healthz, from the keeper's
// last look at every volume with a replica here: a volume with fewer than
// a majority of its replicas UpToDate is critical (its writes stop), one
// with any replica behind or unreachable is degraded.
func (s *Service) HealthSource(context.Context) ([]health.Reason, map[string]any) {
	var reasons []health.Reason
	views := s.mgr.Views()
	names := make([]string, 0, len(views))
	for name := range views {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		vi := views[name]
		upToDate := 0
		var behind []string
		for _, ri := range vi.Replicas {
			if ri.State == replicate.UpToDate {
				upToDate++
				continue
			}
			why := ri.State
			if ri.Error != "" {
				why += ": " + ri.Error
			}
			behind = append(behind, ri.Node+" ("+why+")")
		}
		switch need := len(vi.Replicas)/2 + 1; {
		case upToDate < need:
			reasons = append(reasons, health.Reason{Severity: health.Critical, Component: "volumes",
				Message: fmt.Sprintf("volume %s: %d of %d replicas UpToDate, below its quorum of %d (writes stop); %s", name, upToDate, len(vi.Replicas), need, strings.Join(behind, ", "))})
		case len(behind) > 0:
			reasons = append(reasons, health.Reason{Severity: health.Degraded, Component: "volumes",
				Message: fmt.Sprintf("volume %s: %d of %d replicas UpToDate; %s", name, upToDate, len(vi.Replicas), strings.Join(behind, ", "))})
		}
	}
	return reasons, nil
}

// forwardable runs h, and when the call must run where the volume is
// primary (volumes.ElsewhereError) sends it to that node and answers with
// its answer: an operator may send a volume call to any node.
func (s *Service) forwardable(h admin.Handler) admin.Handler {
	return func(w http.ResponseWriter, r *admin.Request) error {
		err := h(w, r)
		var ee *volumes.ElsewhereError
		if err == nil || !errors.As(err, &ee) || s.cfg.Forward == nil || r.Header.Get(admin.ForwardedHeader) != "" {
			return err
		}
		cl, ferr := s.cfg.Forward(r.Context(), ee.Node)
		if ferr == nil {
			var ans admin.Answer
			if ans, ferr = cl.Forward(r.Context(), r, s.cfg.Node); ferr == nil {
				if ans.ContentType != "" {
					w.Header().Set("Content-Type", ans.ContentType)
				}
				w.Header().Set("X-Strata-Served-By", ee.Node)
				w.WriteHeader(ans.Status)
				w.Write(ans.Body)
				return nil
			}
		}
		s.cfg.Log.Warn("could not forward a volume call to its primary's node", "volume", ee.Volume, "node", ee.Node, "err", ferr)
		return err
	}
}

// Handlers serve the volume and snapshot operations.
func (s *Service) Handlers() map[admin.Op]admin.Handler {
	mgr := s.mgr
	info := func(w http.ResponseWriter, ctx context.Context, name string, status int) error {
		v, err := mgr.Info(ctx, name)
		if err != nil {
			return Error(err)
		}
		return admin.WriteJSONStatus(w, status, v)
	}
	return map[admin.Op]admin.Handler{
		admin.PoolsList: func(w http.ResponseWriter, r *admin.Request) error {
			pools, err := mgr.Pools(r.Context())
			if err != nil {
				return err
			}
			return admin.WriteJSON(w, pools)
		},
		admin.VolumesList: func(w http.ResponseWriter, r *admin.Request) error {
			list, err := mgr.List(r.Context())
			if err != nil {
				return err
			}
			return admin.WriteJSON(w, list)
		},
		admin.VolumeCreate: func(w http.ResponseWriter, r *admin.Request) error {
			var req volumes.CreateRequest
			if err := r.Decode(&req, false); err != nil {
				return err
			}
			rec, err := mgr.Create(r.Context(), req)
			if err != nil {
				return Error(err)
			}
			return info(w, r.Context(), rec.Name, http.StatusCreated)
		},
		admin.VolumeGet: func(w http.ResponseWriter, r *admin.Request) error {
			return info(w, r.Context(), r.PathValue("name"), http.StatusOK)
		},
		admin.VolumeDelete: func(w http.ResponseWriter, r *admin.Request) error {
			if err := mgr.Delete(r.Context(), r.PathValue("name")); err != nil {
				return Error(err)
			}
			return admin.NoContent(w)
		},
		admin.VolumeAccessGet: func(w http.ResponseWriter, r *admin.Request) error {
			name := r.PathValue("name")
			v, err := mgr.Info(r.Context(), name)
			if err != nil {
				return Error(err)
			}
			return admin.WriteJSON(w, admin.VolumeAccess{Volume: name, Access: nonNil(v.Access)})
		},
		admin.VolumeAccessSet: func(w http.ResponseWriter, r *admin.Request) error {
			var req admin.AccessRequest
			if err := r.Decode(&req, false); err != nil {
				return err
			}
			name := r.PathValue("name")
			rec, err := mgr.SetAccess(r.Context(), name, req.Grant, req.Revoke)
			if err != nil {
				return Error(err)
			}
			return admin.WriteJSON(w, admin.VolumeAccess{Volume: name, Access: nonNil(rec.Access)})
		},
		admin.VolumeResize: s.forwardable(func(w http.ResponseWriter, r *admin.Request) error {
			var req admin.ResizeRequest
			if err := r.Decode(&req, false); err != nil {
				return err
			}
			if _, err := mgr.Resize(r.Context(), r.PathValue("name"), req.Size, req.AllowShrink); err != nil {
				return Error(err)
			}
			return info(w, r.Context(), r.PathValue("name"), http.StatusOK)
		}),
		admin.VolumeClone: func(w http.ResponseWriter, r *admin.Request) error {
			var req admin.CloneRequest
			if err := r.Decode(&req, false); err != nil {
				return err
			}
			if _, err := mgr.Clone(r.Context(), r.PathValue("name"), req.Snapshot, req.Name); err != nil {
				return Error(err)
			}
			return info(w, r.Context(), req.Name, http.StatusCreated)
		},
		admin.VolumePromote: func(w http.ResponseWriter, r *admin.Request) error {
			var req admin.PromoteRequest
			if err := r.Decode(&req, true); err != nil {
				return err
			}
			if err := mgr.Promote(r.Context(), r.PathValue("name"), req.Force); err != nil {
				return Error(err)
			}
			return info(w, r.Context(), r.PathValue("name"), http.StatusOK)
		},
		admin.VolumeDemote: func(w http.ResponseWriter, r *admin.Request) error {
			if err := mgr.Demote(r.PathValue("name")); err != nil {
				return Error(err)
			}
			return admin.NoContent(w)
		},
		admin.VolumeDiscard: s.forwardable(func(w http.ResponseWriter, r *admin.Request) error {
			if err := mgr.Discard(r.Context(), r.PathValue("name"), r.PathValue("node")); err != nil {
				return Error(err)
			}
			return admin.NoContent(w)
		}),
		admin.SnapshotsList: func(w http.ResponseWriter, r *admin.Request) error {
			v, err := mgr.Info(r.Context(), r.PathValue("name"))
			if err != nil {
				return Error(err)
			}
			if v.Snapshots == nil {
				v.Snapshots = []volumes.Snapshot{}
			}
			return admin.WriteJSON(w, v.Snapshots)
		},
		admin.SnapshotCreate: s.forwardable(func(w http.ResponseWriter, r *admin.Request) error {
			var req admin.NameRequest
			if err := r.Decode(&req, false); err != nil {
				return err
			}
			snap, err := mgr.CreateSnapshot(r.Context(), r.PathValue("name"), req.Name)
			if err != nil {
				return Error(err)
			}
			return admin.WriteJSONStatus(w, http.StatusCreated, snap)
		}),
		admin.SnapshotDelete: func(w http.ResponseWriter, r *admin.Request) error {
			if err := mgr.DeleteSnapshot(r.Context(), r.PathValue("name"), r.PathValue("snapshot")); err != nil {
				return Error(err)
			}
			return admin.NoContent(w)
		},
		admin.SnapshotRestore: s.forwardable(func(w http.ResponseWriter, r *admin.Request) error {
			var req admin.RestoreRequest
			if err := r.Decode(&req, true); err != nil {
				return err
			}
			if err := mgr.RestoreSnapshot(r.Context(), r.PathValue("name"), r.PathValue("snapshot"), req.AllowShrink); err != nil {
				return Error(err)
			}
			return admin.NoContent(w)
		}),
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Error maps the volume layer's errors to the admin API's.
func Error(err error) error {
	for _, e := range []struct {
		err    error
		status int
		code   string
	}{
		{volumes.ErrInvalid, http.StatusBadRequest, "InvalidArgument"},
		{volumes.ErrBadIdentity, http.StatusBadRequest, "InvalidArgument"},
		{volumes.ErrExists, http.StatusConflict, "VolumeExists"},
		{volumes.ErrNotFound, http.StatusNotFound, "NoSuchVolume"},
		{volumes.ErrNoSnapshot, http.StatusNotFound, "NoSuchSnapshot"},
		{replicate.ErrNoSnapshot, http.StatusNotFound, "NoSuchSnapshot"},
		{volumes.ErrInUse, http.StatusConflict, "VolumeInUse"},
		{volumes.ErrPlacement, http.StatusConflict, "PlacementFailed"},
		{replicate.ErrNoQuorum, http.StatusServiceUnavailable, "NoQuorum"},
		{replicate.ErrDegraded, http.StatusConflict, "VolumeDegraded"},
		{replicate.ErrPrimaryElsewhere, http.StatusConflict, "VolumeInUse"},
	} {
		if errors.Is(err, e.err) {
			return &admin.Error{Status: e.status, Code: e.code, Message: err.Error(), Cause: err}
		}
	}
	return err
}
