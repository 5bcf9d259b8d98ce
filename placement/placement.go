// Package placement is a node's control of where shards go: the ring in
// force and the one before it, its changes (made here, published to etcd
// in a cluster, followed from there by every node), the devices each ring
// names, and the rebalance jobs that move data onto a new ring: planned,
// stored before the ring they serve is published, run and checkpointed,
// taken over from an owner that died, rolled back. It serves the ring,
// cluster and rebalance operations of the admin API and the rebalance
// metrics.
//
// Ring edits are serialised by one mutex, held across the etcd calls a
// change makes; nothing on a request path takes it (the ring in force and
// the devices are read from atomic snapshots).
package placement

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-storage/strata/admin"
	"github.com/strata-storage/strata/blockpool/volumes"
	"github.com/strata-storage/strata/cluster"
	"github.com/strata-storage/strata/devices"
	"github.com/strata-storage/strata/metastore"
	"github.com/strata-storage/strata/objectstore"
	"github.com/strata-storage/strata/objectstore/shard/shardrpc"
	"github.com/strata-storage/strata/rebalancer"
	"github.com/strata-storage/strata/ring"
)

// Config is what the controller needs.
type Config struct {
	Node    string
	DataDir string // where a single node keeps its ring file
	// Etcd holds the cluster's ring (nil: a single node, ring on disk);
	// Peers reach the other nodes' devices.
	Etcd    *cluster.Etcd
	Peers   *cluster.Peers
	Devices *devices.Set
	// Jobs stores the rebalance job and its source rings.
	Jobs metastore.Store
	// The defaults of a rebalance job, and how long its owner may be down
	// before another node takes it over.
	RebalanceLimit       int64
	RebalanceConcurrency int
	RebalanceTakeover    time.Duration
	// Self describes this node (the member list of a single node).
	Self func() cluster.NodeInfo
	// Go runs a background worker the node waits for when it stops.
	Go func(func())
	// Record receives the placement repair that refills a rebuilt device.
	Record   func(context.Context, objectstore.RepairReport)
	Registry prometheus.Registerer
	Log      *slog.Logger
}

// Controller is a node's placement.
type Controller struct {
	cfg     Config
	log     *slog.Logger
	etcd    *cluster.Etcd
	peers   *cluster.Peers
	devs    *devices.Set
	store   *objectstore.Store
	volumes *volumes.Manager
	bgCtx   context.Context

	ringMu sync.Mutex // serialises ring edits
	ring   atomic.Pointer[ring.Ring]
	prev   atomic.Pointer[ring.Ring]
	rb     rebalanceState
}

// New makes a controller; Start puts a ring in force.
func New(cfg Config) *Controller {
	return &Controller{cfg: cfg, log: cfg.Log, etcd: cfg.Etcd, peers: cfg.Peers, devs: cfg.Devices, bgCtx: context.Background()}
}

// Start puts r in force over store, resumes or follows the rebalance job
// and, in a cluster, follows the ring in etcd, until ctx ends. vols, if
// set, is evacuated from nodes a drain or failure empties.
func (pl *Controller) Start(ctx context.Context, r *ring.Ring, store *objectstore.Store, vols *volumes.Manager) {
	pl.ringMu.Lock()
	pl.store, pl.volumes, pl.bgCtx = store, vols, ctx
	pl.ring.Store(r)
	pl.ringMu.Unlock()
	pl.startRebalancer(ctx)
	if pl.cfg.Registry != nil {
		pl.cfg.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "strata_devices_online", Help: "Devices of the ring whose shard store is open."}, func() float64 {
			c := 0
			for _, d := range pl.DevicesFor(pl.Current()) {
				if d != nil {
					c++
				}
			}
			return float64(c)
		}))
	}
	if pl.clustered() {
		pl.goBackground(func() { pl.followRing(ctx) })
	}
}

// Current is the ring in force (nil before Start).
func (pl *Controller) Current() *ring.Ring { return pl.ring.Load() }

// Previous is the ring before the last change (nil: none since start).
func (pl *Controller) Previous() *ring.Ring { return pl.prev.Load() }

func (pl *Controller) clustered() bool { return pl.etcd != nil }

func (pl *Controller) goBackground(f func()) { pl.cfg.Go(f) }

// DevicesFor lists the object layer's devices of a ring, nil where
// offline or on another node not (yet) reachable.
func (pl *Controller) DevicesFor(r *ring.Ring) []objectstore.Device {
	return pl.devs.ForRing(r, func(d ring.Device) objectstore.Device {
		if rd := pl.remoteDevice(d); rd != nil {
			return rd
		}
		return nil
	})
}

// KeyRing is the cluster's ring in etcd.
const KeyRing = "ring"

// followRing applies every new ring version published in etcd.
func (pl *Controller) followRing(ctx context.Context) {
	pl.etcd.Watch(ctx, KeyRing, func(key string, value []byte) {
		if key != KeyRing || value == nil {
			return
		}
		r, err := DecodeRing(value)
		if err != nil {
			pl.log.Error("unreadable ring in etcd", "err", err)
			return
		}
		pl.ringMu.Lock()
		defer pl.ringMu.Unlock()
		if cur := pl.ring.Load(); cur != nil && r.Version <= cur.Version {
			return
		}
		if err := pl.applyRing(r); err != nil {
			pl.log.Error("cannot apply the new ring", "version", r.Version, "err", err)
		}
	})
}

// publishRing stores next in etcd if the ring there is still cur.
func (pl *Controller) publishRing(ctx context.Context, cur, next *ring.Ring) error {
	old, err := cur.MarshalBinary()
	if err != nil {
		return err
	}
	b, err := next.MarshalBinary()
	if err != nil {
		return err
	}
	ok, err := pl.etcd.Swap(ctx, KeyRing, old, b)
	if err != nil {
		return err
	}
	if !ok {
		return &admin.Error{Status: 409, Code: "RingChanged", Message: "the cluster's ring changed meanwhile (another admin?); retry"}
	}
	return nil
}

// remoteDevices fills in the devices of other nodes.
func (pl *Controller) remoteDevice(d ring.Device) *shardrpc.RemoteDevice {
	if pl.peers == nil {
		return nil
	}
	p := pl.peers.Get(d.Node)
	if p == nil {
		return nil
	}
	return shardrpc.Device(p, d.ID, d.Name)
}

// Members lists the cluster's nodes (cluster mode only).
func (pl *Controller) Members(ctx context.Context) ([]cluster.NodeInfo, error) {
	if !pl.clustered() {
		info := pl.cfg.Self()
		info.State, info.Heartbeat = "up", time.Now().UTC()
		return []cluster.NodeInfo{info}, nil
	}
	return cluster.ListMembers(ctx, pl.etcd)
}

// RefreshDevices re-resolves the ring's devices after a new peer appeared.
func (pl *Controller) RefreshDevices() {
	pl.ringMu.Lock()
	defer pl.ringMu.Unlock()
	r := pl.ring.Load()
	if r == nil || pl.store == nil {
		return
	}
	if err := pl.store.SetRing(r, pl.DevicesFor(r)); err != nil {
		pl.log.Error("refresh devices", "err", err)
	}
	pl.rb.mu.Lock()
	started := pl.rb.started
	pl.rb.mu.Unlock()
	if started {
		// The source rings of a rebalance name the new peer's devices too.
		pl.goBackground(func() { pl.jobChanged(pl.bgCtx) })
	}
}

// applyRing switches to next (ringMu held): opens this node's new devices,
// then placement.
func (pl *Controller) applyRing(next *ring.Ring) error {
	cur := pl.ring.Load()
	for _, d := range next.Devices {
		if d.Node == pl.cfg.Node {
			if err := pl.devs.Open(d); err != nil {
				return fmt.Errorf("device %s: %w", d.Name, err)
			}
		}
	}
	if err := pl.store.SetRing(next, pl.DevicesFor(next)); err != nil {
		return err
	}
	pl.prev.Store(cur)
	pl.ring.Store(next)
	pl.log.Info("ring changed", "version", next.Version, "devices", len(next.Devices))
	return nil
}

// checkDeviceNode refuses a new device on a node that is not this one (or,
// in a cluster, not a member).
func (pl *Controller) checkDeviceNode(ctx context.Context, name string) (cluster.NodeInfo, error) {
	if name == pl.cfg.Node {
		return pl.cfg.Self(), nil
	}
	if !pl.clustered() {
		return cluster.NodeInfo{}, admin.BadRequest("device node %q: this node is %q and serves only its own devices", name, pl.cfg.Node)
	}
	members, err := cluster.ListMembers(ctx, pl.etcd)
	if err != nil {
		return cluster.NodeInfo{}, err
	}
	for _, m := range members {
		if m.Name == name {
			return m, nil
		}
	}
	return cluster.NodeInfo{}, admin.BadRequest("device node %q is not a member of the cluster", name)
}

// ringHandlers serve the ring, cluster and node operations.
func (pl *Controller) ringHandlers() map[admin.Op]admin.Handler {
	devID := func(r *admin.Request) (uint32, error) {
		id, err := strconv.ParseUint(r.PathValue("id"), 10, 32)
		if err != nil {
			return 0, admin.BadRequest("device id %q is not a number", r.PathValue("id"))
		}
		return uint32(id), nil
	}
	onDevice := func(f func(w http.ResponseWriter, r *admin.Request, id uint32) error) admin.Handler {
		return func(w http.ResponseWriter, r *admin.Request) error {
			id, err := devID(r)
			if err != nil {
				return err
			}
			return f(w, r, id)
		}
	}
	return map[admin.Op]admin.Handler{
		admin.RingGet: func(w http.ResponseWriter, r *admin.Request) error {
			return admin.WriteJSON(w, pl.Current().Info())
		},
		admin.RingFile: func(w http.ResponseWriter, r *admin.Request) error {
			rg := pl.Current()
			if r.URL.Query().Get("previous") != "" {
				if rg = pl.prev.Load(); rg == nil {
					return &admin.Error{Status: http.StatusNotFound, Code: admin.CodeNoPreviousRing, Message: "the ring has not changed since this node started"}
				}
			}
			b, err := rg.MarshalBinary()
			if err != nil {
				return err
			}
			w.Header().Set("Content-Type", "application/octet-stream")
			_, err = w.Write(b)
			return err
		},
		admin.RingDiffGet: func(w http.ResponseWriter, r *admin.Request) error {
			prev, cur := pl.prev.Load(), pl.Current()
			if prev == nil {
				return &admin.Error{Status: http.StatusNotFound, Code: admin.CodeNoPreviousRing, Message: "the ring has not changed since this node started"}
			}
			return admin.WriteJSON(w, admin.RingDiffAnswer{From: prev.Version, To: cur.Version, Diff: ring.DiffRings(prev, cur)})
		},
		admin.RingAddDevice: func(w http.ResponseWriter, r *admin.Request) error {
			var d ring.Device
			if err := r.Decode(&d, false); err != nil {
				return err
			}
			if d.Node == "" {
				d.Node = pl.cfg.Node
			}
			node, err := pl.checkDeviceNode(r.Context(), d.Node)
			if err != nil {
				return err
			}
			// A device is where its node is unless the request says
			// otherwise.
			if d.Region == "" {
				d.Region = node.Region
			}
			if d.Zone == "" {
				d.Zone = node.Zone
			}
			return pl.editRing(w, func(rg *ring.Ring) (*ring.Ring, error) {
				if d.ID == 0 {
					if _, taken := rg.Index(0); taken {
						d.ID = rg.NextID()
					}
				}
				return rg.AddDevice(d)
			})
		},
		admin.RingRemove: onDevice(func(w http.ResponseWriter, r *admin.Request, id uint32) error {
			return pl.editRing(w, func(rg *ring.Ring) (*ring.Ring, error) { return rg.RemoveDevice(id) })
		}),
		admin.RingSetWeight: onDevice(func(w http.ResponseWriter, r *admin.Request, id uint32) error {
			var req admin.WeightRequest
			if err := r.Decode(&req, false); err != nil {
				return err
			}
			if req.Weight == nil {
				return admin.BadRequest("missing Weight")
			}
			return pl.editRing(w, func(rg *ring.Ring) (*ring.Ring, error) { return rg.SetWeight(id, *req.Weight) })
		}),
		admin.RingRebuild: onDevice(func(w http.ResponseWriter, r *admin.Request, id uint32) error {
			ans, err := pl.rebuildDevice(id)
			if err != nil {
				return err
			}
			return admin.WriteJSON(w, ans)
		}),
		admin.RingSetState: onDevice(func(w http.ResponseWriter, r *admin.Request, id uint32) error {
			var req admin.StateRequest
			if err := r.Decode(&req, false); err != nil {
				return err
			}
			if req.State == nil || *req.State == ring.Removing {
				return admin.BadRequest("State must be active, draining or failed (remove a device with DELETE)")
			}
			return pl.editRing(w, func(rg *ring.Ring) (*ring.Ring, error) { return rg.SetState(id, *req.State) })
		}),
		admin.RingRebalance: func(w http.ResponseWriter, r *admin.Request) error {
			var req admin.RingRebalanceRequest
			if err := r.Decode(&req, true); err != nil {
				return err
			}
			var ans admin.RebalanceAnswer
			var job *rebalancer.Job
			err := pl.changeRing(func(rg *ring.Ring) (*ring.Ring, error) {
				return pl.rebalanceRing(rg, req.IgnoreMinPartHours, &ans)
			}, jobOptions{}, &job)
			ans.Job = job
			if err != nil {
				return err
			}
			return admin.WriteJSON(w, ans)
		},
		admin.NodesList: func(w http.ResponseWriter, r *admin.Request) error {
			members, err := pl.Members(r.Context())
			if err != nil {
				return err
			}
			return admin.WriteJSON(w, members)
		},
		admin.ClusterVerify: func(w http.ResponseWriter, r *admin.Request) error {
			var req admin.VerifyRequest
			if err := r.Decode(&req, true); err != nil {
				return err
			}
			rep, err := pl.store.Verify(r.Context(), req.Repair)
			if errors.Is(err, objectstore.ErrMoving) {
				return &admin.Error{Status: http.StatusConflict, Code: admin.CodeRebalanceRunning, Message: "a rebalance is moving records: verify without --repair, or wait for it (strata rebalance status)"}
			}
			if err != nil {
				return &admin.Error{Status: http.StatusServiceUnavailable, Code: "VerifyIncomplete", Message: err.Error()}
			}
			return admin.WriteJSON(w, rep)
		},
		admin.ClusterCheck: func(w http.ResponseWriter, r *admin.Request) error {
			rc, err := pl.store.CheckReadable(r.Context(), 8)
			if err != nil {
				return err
			}
			return admin.WriteJSON(w, rc)
		},
		admin.ClusterHints: func(w http.ResponseWriter, r *admin.Request) error {
			pending, err := pl.store.PendingHints(r.Context())
			if err != nil {
				return err
			}
			return admin.WriteJSON(w, admin.Hints{Pending: pending})
		},
	}
}

func (pl *Controller) editRing(w http.ResponseWriter, edit func(*ring.Ring) (*ring.Ring, error)) error {
	var info ring.Info
	err := pl.changeRing(func(rg *ring.Ring) (*ring.Ring, error) {
		next, err := edit(rg)
		if err == nil {
			info = next.Info()
		}
		return next, err
	}, jobOptions{}, nil)
	if err != nil {
		return err
	}
	return admin.WriteJSON(w, info)
}

// changeRing applies a ring change. The rebalance job the change needs
// (moves from the old placement, or a job already running) is stored
// first (prepareJob); then, on one node: save the ring file (the old one
// kept as ring.prev) and switch placement; in a cluster: publish the ring
// in etcd (if nobody changed it meanwhile) and switch; every other node
// switches when it sees it. A failure before the switch leaves the old
// ring and job in force. The job (if any) is returned in jobOut and
// started here.
func (pl *Controller) changeRing(change func(*ring.Ring) (*ring.Ring, error), opt jobOptions, jobOut **rebalancer.Job) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	job, err := pl.changeRingLocked(ctx, change, opt)
	if err != nil {
		return err
	}
	if jobOut != nil {
		*jobOut = job
	}
	if job != nil {
		pl.jobChanged(context.WithoutCancel(pl.bgCtx))
	}
	return nil
}

func (pl *Controller) changeRingLocked(ctx context.Context, change func(*ring.Ring) (*ring.Ring, error), opt jobOptions) (*rebalancer.Job, error) {
	pl.ringMu.Lock()
	defer pl.ringMu.Unlock()
	cur := pl.ring.Load()
	next, err := change(cur)
	if err != nil {
		return nil, err
	}
	job, undo, err := pl.prepareJob(ctx, cur, next, opt)
	if err != nil {
		return nil, err
	}
	if err := pl.switchRing(ctx, cur, next); err != nil {
		undo()
		return nil, err
	}
	return job, nil
}

// switchRing makes next the ring in force (ringMu held).
func (pl *Controller) switchRing(ctx context.Context, cur, next *ring.Ring) error {
	if pl.clustered() {
		if err := pl.publishRing(ctx, cur, next); err != nil {
			return err
		}
		return pl.applyRing(next)
	}
	for _, d := range next.Devices {
		if d.Node == pl.cfg.Node {
			if err := pl.devs.Open(d); err != nil {
				return fmt.Errorf("device %s: %w", d.Name, err)
			}
		}
	}
	if err := cur.Save(filepath.Join(pl.cfg.DataDir, "ring.prev")); err != nil {
		return err
	}
	if err := next.Save(filepath.Join(pl.cfg.DataDir, "ring")); err != nil {
		return err
	}
	return pl.applyRing(next)
}

// DecodeRing reads a ring as etcd holds it.
func DecodeRing(b []byte) (*ring.Ring, error) {
	r := &ring.Ring{}
	if err := r.UnmarshalBinary(b); err != nil {
		return nil, err
	}
	return r, nil
}
