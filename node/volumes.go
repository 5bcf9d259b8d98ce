package node

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-storage/strata/admin"
	"github.com/strata-storage/strata/blockpool/nbd"
	"github.com/strata-storage/strata/blockpool/replicate"
	"github.com/strata-storage/strata/blockpool/volumes"
	"github.com/strata-storage/strata/cluster"
	"github.com/strata-storage/strata/metastore"
	"github.com/strata-storage/strata/tlspsk"
)

// Block volumes: the node's volume pool and replicas, the NBD listener,
// the volume admin API and metrics.

// openVolumes opens the volume manager on meta and, unless disabled,
// the NBD listener.
func (n *Node) openVolumes(ctx context.Context, meta metastore.Store) error {
	var vc volumes.Cluster
	if n.clustered() {
		vc = nodeVolumes{n}
	}
	io := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "strata_volume_io_seconds", Help: "Latency of block-volume reads and writes served by this node's primaries.", Buckets: prometheus.ExponentialBuckets(50e-6, 2, 16)}, []string{"op"})
	bytes := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "strata_volume_io_bytes_total", Help: "Bytes read and written through this node's volume primaries."}, []string{"volume", "op"})
	n.Registry.MustRegister(io, bytes)
	mgr, err := volumes.Open(volumes.Config{
		Node: n.cfg.NodeName, Zone: n.cfg.Zone, Dir: filepath.Join(n.cfg.DataDir, "volumes"), Meta: meta, Cluster: vc,
		Lease: n.cfg.VolumeLease, Log: n.log,
		Observe: func(volume, op string, b int, d time.Duration) {
			io.WithLabelValues(op).Observe(d.Seconds())
			bytes.WithLabelValues(volume, op).Add(float64(b))
		},
	})
	if err != nil {
		return err
	}
	n.volumes = mgr
	n.Registry.MustRegister(volumeCollector{mgr})
	if err := mgr.Reconcile(ctx); err != nil {
		n.log.Warn("volume reconcile", "err", err)
	}
	n.goBackground(func() { mgr.RunKeeper(ctx, n.cfg.VolumeKeeperInterval) })
	if n.cfg.NBDAddr == "" || n.cfg.NBDAddr == "off" {
		return nil
	}
	opts, err := n.nbdOptions()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", n.cfg.NBDAddr)
	if err != nil {
		return fmt.Errorf("NBD listener: %w", err)
	}
	if opts.TLS == nil && opts.PSK == nil && !n.cfg.NBDInsecure && !isLoopback(ln.Addr()) {
		ln.Close()
		return fmt.Errorf("NBD listener %s: without TLS (--tls-cert or --nbd-psk-file) block volumes are served on loopback addresses only, since nobody can be told apart; give a certificate or keys, or --nbd-insecure to serve plaintext there anyway", ln.Addr())
	}
	n.nbdLn = ln
	opts.Access = mgr
	srv := nbd.NewServer(mgr, opts, n.log)
	n.nbdSrv = srv
	go func() {
		// The server itself, not the field: Close clears the field, maybe
		// before this goroutine runs.
		if err := srv.Serve(ln); err != nil {
			n.errc <- err
		}
	}()
	return nil
}

// nbdOptions is the NBD server's TLS: with a certificate, every client must
// use STARTTLS and present a certificate that --nbd-client-ca (else
// --tls-ca) signed; with --nbd-psk-file, clients may instead prove a
// pre-shared key. The certificate's common name or the PSK identity is
// what `strata volume access` grants.
func (n *Node) nbdOptions() (nbd.Options, error) {
	server, _, _, err := n.tlsConfigs()
	if err != nil {
		return nbd.Options{}, err
	}
	var opts nbd.Options
	if n.cfg.NBDPSKFile != "" {
		kf, err := tlspsk.OpenKeyFile(n.cfg.NBDPSKFile)
		if err != nil {
			return nbd.Options{}, err
		}
		opts.PSK = func(identity string) ([]byte, bool) {
			k, ok := kf.Lookup(identity)
			if err := kf.Err(); err != nil {
				n.log.Warn("NBD PSK file changed but could not be read; the keys last read stay in use", "err", err)
			}
			return k, ok
		}
	}
	if n.cfg.NBDInsecure && (server != nil || opts.PSK != nil) {
		return nbd.Options{}, errors.New("--nbd-insecure serves plaintext NBD, but this node has a certificate or PSK keys and requires TLS: drop one of them")
	}
	if server == nil {
		if n.cfg.NBDClientCA != "" {
			return nbd.Options{}, errors.New("--nbd-client-ca needs --tls-cert and --tls-key: without a certificate NBD has no TLS to check clients with")
		}
		return opts, nil
	}
	caFile := n.cfg.NBDClientCA
	if caFile == "" {
		caFile = n.cfg.TLSCA
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

func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// NBDAddr is the bound NBD address ("" when disabled).
func (n *Node) NBDAddr() string {
	if n.nbdLn == nil {
		return ""
	}
	return n.nbdLn.Addr().String()
}

// Volumes is the node's volume manager.
func (n *Node) Volumes() *volumes.Manager { return n.volumes }

func (n *Node) closeVolumes(ctx context.Context) error {
	var errs []error
	if n.nbdSrv != nil {
		errs = append(errs, n.nbdSrv.Close(ctx))
		n.nbdSrv = nil
	}
	if n.volumes != nil {
		errs = append(errs, n.volumes.Close())
		n.volumes = nil
	}
	return errors.Join(errs...)
}

// nodeVolumes lets the volume manager reach the cluster.
type nodeVolumes struct{ n *Node }

func (v nodeVolumes) Nodes(ctx context.Context) ([]volumes.NodeInfo, error) {
	members, err := cluster.ListMembers(ctx, v.n.etcd)
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
	if p := v.n.peers.Get(node); p != nil {
		return p, nil
	}
	return nil, fmt.Errorf("%w: %s is not a known member", volumes.ErrNodeDown, node)
}

func (v nodeVolumes) Link(node, volume string) replicate.Link {
	p, err := v.peer(node)
	if err != nil {
		return deadLink{node, err}
	}
	return p.VolumeLink(volume)
}

func (v nodeVolumes) CreateReplica(ctx context.Context, node, volume string, size int64) error {
	p, err := v.peer(node)
	if err != nil {
		return err
	}
	return p.CreateReplica(ctx, volume, size)
}

func (v nodeVolumes) CloneReplica(ctx context.Context, node, volume, from, snapshot string) error {
	p, err := v.peer(node)
	if err != nil {
		return err
	}
	return p.CloneReplica(ctx, volume, from, snapshot)
}

func (v nodeVolumes) DeleteReplica(ctx context.Context, node, volume string) error {
	p, err := v.peer(node)
	if err != nil {
		return err
	}
	return p.DeleteReplica(ctx, volume)
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

// volumeCollector exports the pool and the attached primaries' state.
type volumeCollector struct{ m *volumes.Manager }

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
)

func (c volumeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPoolCapacity, descPoolFree, descPoolProv, descPoolAlloc, descOutOfSync, descSynced, descUpToDate, descRepaired, descResynced, descSplitBrain} {
		ch <- d
	}
}

func (c volumeCollector) Collect(ch chan<- prometheus.Metric) {
	pi := c.m.Pool()
	ch <- prometheus.MustNewConstMetric(descPoolCapacity, prometheus.GaugeValue, float64(pi.Capacity))
	ch <- prometheus.MustNewConstMetric(descPoolFree, prometheus.GaugeValue, float64(pi.Free))
	ch <- prometheus.MustNewConstMetric(descPoolProv, prometheus.GaugeValue, float64(pi.Provisioned))
	ch <- prometheus.MustNewConstMetric(descPoolAlloc, prometheus.GaugeValue, float64(pi.Allocated))
	for name, p := range c.m.Attached() {
		st := p.Stats()
		ch <- prometheus.MustNewConstMetric(descRepaired, prometheus.CounterValue, float64(st.RepairedBlocks), name)
		ch <- prometheus.MustNewConstMetric(descResynced, prometheus.CounterValue, float64(st.ResyncedBytes), name)
		for _, mi := range p.Members() {
			up := 0.0
			if mi.State == replicate.UpToDate {
				up = 1
			}
			ch <- prometheus.MustNewConstMetric(descOutOfSync, prometheus.GaugeValue, float64(mi.OutOfSyncBytes), name, mi.Node)
			ch <- prometheus.MustNewConstMetric(descSynced, prometheus.GaugeValue, float64(mi.SyncedBytes), name, mi.Node)
			ch <- prometheus.MustNewConstMetric(descUpToDate, prometheus.GaugeValue, up, name, mi.Node)
			split := 0.0
			if mi.State == replicate.SplitBrain {
				split = 1
			}
			ch <- prometheus.MustNewConstMetric(descSplitBrain, prometheus.GaugeValue, split, name, mi.Node)
		}
	}
}

// volumeHandlers serve the volume and snapshot operations.
func (n *Node) volumeHandlers() map[admin.Op]admin.Handler {
	mgr := n.volumes
	info := func(w http.ResponseWriter, ctx context.Context, name string, status int) error {
		v, err := mgr.Info(ctx, name)
		if err != nil {
			return volumeError(err)
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
				return volumeError(err)
			}
			return info(w, r.Context(), rec.Name, http.StatusCreated)
		},
		admin.VolumeGet: func(w http.ResponseWriter, r *admin.Request) error {
			return info(w, r.Context(), r.PathValue("name"), http.StatusOK)
		},
		admin.VolumeDelete: func(w http.ResponseWriter, r *admin.Request) error {
			if err := mgr.Delete(r.Context(), r.PathValue("name")); err != nil {
				return volumeError(err)
			}
			return admin.NoContent(w)
		},
		admin.VolumeAccessGet: func(w http.ResponseWriter, r *admin.Request) error {
			name := r.PathValue("name")
			v, err := mgr.Info(r.Context(), name)
			if err != nil {
				return volumeError(err)
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
				return volumeError(err)
			}
			return admin.WriteJSON(w, admin.VolumeAccess{Volume: name, Access: nonNil(rec.Access)})
		},
		admin.VolumeResize: func(w http.ResponseWriter, r *admin.Request) error {
			var req admin.ResizeRequest
			if err := r.Decode(&req, false); err != nil {
				return err
			}
			if _, err := mgr.Resize(r.Context(), r.PathValue("name"), req.Size); err != nil {
				return volumeError(err)
			}
			return info(w, r.Context(), r.PathValue("name"), http.StatusOK)
		},
		admin.VolumeClone: func(w http.ResponseWriter, r *admin.Request) error {
			var req admin.CloneRequest
			if err := r.Decode(&req, false); err != nil {
				return err
			}
			if _, err := mgr.Clone(r.Context(), r.PathValue("name"), req.Snapshot, req.Name); err != nil {
				return volumeError(err)
			}
			return info(w, r.Context(), req.Name, http.StatusCreated)
		},
		admin.VolumePromote: func(w http.ResponseWriter, r *admin.Request) error {
			var req admin.PromoteRequest
			if err := r.Decode(&req, true); err != nil {
				return err
			}
			if err := mgr.Promote(r.Context(), r.PathValue("name"), req.Force); err != nil {
				return volumeError(err)
			}
			return info(w, r.Context(), r.PathValue("name"), http.StatusOK)
		},
		admin.VolumeDemote: func(w http.ResponseWriter, r *admin.Request) error {
			if err := mgr.Demote(r.PathValue("name")); err != nil {
				return volumeError(err)
			}
			return admin.NoContent(w)
		},
		admin.VolumeDiscard: func(w http.ResponseWriter, r *admin.Request) error {
			if err := mgr.Discard(r.PathValue("name"), r.PathValue("node")); err != nil {
				return volumeError(err)
			}
			return admin.NoContent(w)
		},
		admin.SnapshotsList: func(w http.ResponseWriter, r *admin.Request) error {
			v, err := mgr.Info(r.Context(), r.PathValue("name"))
			if err != nil {
				return volumeError(err)
			}
			if v.Snapshots == nil {
				v.Snapshots = []volumes.Snapshot{}
			}
			return admin.WriteJSON(w, v.Snapshots)
		},
		admin.SnapshotCreate: func(w http.ResponseWriter, r *admin.Request) error {
			var req admin.NameRequest
			if err := r.Decode(&req, false); err != nil {
				return err
			}
			snap, err := mgr.CreateSnapshot(r.Context(), r.PathValue("name"), req.Name)
			if err != nil {
				return volumeError(err)
			}
			return admin.WriteJSONStatus(w, http.StatusCreated, snap)
		},
		admin.SnapshotDelete: func(w http.ResponseWriter, r *admin.Request) error {
			if err := mgr.DeleteSnapshot(r.Context(), r.PathValue("name"), r.PathValue("snapshot")); err != nil {
				return volumeError(err)
			}
			return admin.NoContent(w)
		},
		admin.SnapshotRestore: func(w http.ResponseWriter, r *admin.Request) error {
			if err := mgr.RestoreSnapshot(r.Context(), r.PathValue("name"), r.PathValue("snapshot")); err != nil {
				return volumeError(err)
			}
			return admin.NoContent(w)
		},
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func volumeError(err error) error {
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
			return &admin.Error{Status: e.status, Code: e.code, Message: err.Error()}
		}
	}
	return err
}
