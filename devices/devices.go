// Package devices is this node's share of the ring: for each of its ring
// devices a pool, a chunk volume, a metadata database and the shard store
// over them. It opens them (a device that cannot open stays offline with
// the reason), takes one offline when its records turn out unreadable,
// rebuilds an offline one empty, and closes them all.
//
// Readers (the shard RPC on every request, health, metrics, scrub,
// placement) take an immutable snapshot published after each change:
// a lookup never waits for a ring edit, and so never for etcd.
package devices

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-storage/strata/blockpool"
	"github.com/strata-storage/strata/cluster"
	"github.com/strata-storage/strata/diskspace"
	"github.com/strata-storage/strata/metastore"
	"github.com/strata-storage/strata/objectstore"
	"github.com/strata-storage/strata/objectstore/shard"
	"github.com/strata-storage/strata/ring"
)

// Config is what the set needs.
type Config struct {
	DataDir string
	// Node is this node's name in the ring: its devices are these.
	Node        string
	ChunkVolume int64
	Reserve     diskspace.Reserve
	// Meta is the node's metadata, mirrored onto every device's database.
	Meta     *metastore.Mirrored
	Registry prometheus.Registerer
	Log      *slog.Logger
	// WrapVolume, if set, stands between each device's chunk volume and
	// its shard store: the seam a test injects volume faults at (a
	// blockpool.FaultVolume), as pebble's errorfs does for files.
	WrapVolume func(device string, v blockpool.Volume) blockpool.Volume
}

// Device is what a reader sees of one local device.
type Device struct {
	ID   uint32
	Name string
	// Store is nil while the device is offline; Fault says why.
	Store *shard.Store
	Fault string
	// Space guards the device's filesystem (nil: not examinable).
	Space *diskspace.Guard
	// Pool is the device's pool (its capacity and free space).
	Pool *blockpool.FilePool
}

// local is one device and what it holds open.
type local struct {
	name  string
	pool  *blockpool.FilePool
	vol   blockpool.Volume
	db    *pebble.DB
	store *shard.Store
	fault string
	space *diskspace.Guard
}

// Set is this node's devices.
type Set struct {
	cfg   Config
	met   *shard.Metrics
	space spaceGuards

	mu   sync.Mutex // serialises changes
	devs map[uint32]*local
	snap atomic.Pointer[map[uint32]Device]
}

// New makes an empty set.
func New(cfg Config) *Set {
	s := &Set{cfg: cfg, devs: map[uint32]*local{}, met: shard.NewMetrics(cfg.Registry)}
	s.publish()
	return s
}

// cache is the block cache the node's databases share (nil without a
// node database: each device database has its own).
func (s *Set) cache() *pebble.Cache {
	if s.cfg.Meta == nil {
		return nil
	}
	return s.cfg.Meta.Cache()
}

// publish makes the devices as they are now what readers see (mu held,
// or before anyone shares the set).
func (s *Set) publish() {
	m := make(map[uint32]Device, len(s.devs))
	for id, l := range s.devs {
		m[id] = Device{ID: id, Name: l.name, Store: l.store, Fault: l.fault, Space: l.space, Pool: l.pool}
	}
	s.snap.Store(&m)
}

// Snapshot is every local device, as of the last change (none before the
// set is made: a nil set is empty).
func (s *Set) Snapshot() map[uint32]Device {
	if s == nil {
		return nil
	}
	return *s.snap.Load()
}

// Get is one local device (ok false: not this node's).
func (s *Set) Get(id uint32) (Device, bool) {
	d, ok := s.Snapshot()[id]
	return d, ok
}

// LocalDevice is a local device's shard store (nil: offline or not
// local). With LocalDeviceIDs it makes the set the shard RPC's
// shardrpc.LocalDevices; both read the snapshot, so an RPC never waits
// for a ring edit.
func (s *Set) LocalDevice(id uint32) *shard.Store { return s.Snapshot()[id].Store }

// LocalDeviceIDs are the local devices' ring ids, in order.
func (s *Set) LocalDeviceIDs() []uint32 {
	m := s.Snapshot()
	out := make([]uint32, 0, len(m))
	for id := range m {
		out = append(out, id)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// ForRing lists the object layer's devices of r: the local ones that are
// online, remote(d) for the other nodes' (nil where there is none).
func (s *Set) ForRing(r *ring.Ring, remote func(ring.Device) objectstore.Device) []objectstore.Device {
	m := s.Snapshot()
	out := make([]objectstore.Device, len(r.Devices))
	for i, d := range r.Devices {
		if l, ok := m[d.ID]; ok && l.Store != nil {
			out[i] = l.Store
		} else if d.Node != s.cfg.Node && remote != nil {
			if rd := remote(d); rd != nil {
				out[i] = rd
			}
		}
	}
	return out
}

// Open opens (creating if need be) the pool and chunk volume of a device
// of this node. A missing volume (a replaced disk) is created empty; its
// shards are rebuilt from the others on read. A device that cannot be
// opened is left offline; only a pool that cannot be made is an error.
func (s *Set) Open(d ring.Device) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.publish()
	return s.open(d)
}

func (s *Set) open(d ring.Device) error {
	if s.devs[d.ID] != nil {
		return nil
	}
	pool, err := blockpool.OpenFilePool(d.Name, filepath.Join(s.cfg.DataDir, "pools", d.Name))
	if err != nil {
		return err
	}
	l := &local{name: d.Name, pool: pool}
	s.devs[d.ID] = l
	fv, err := pool.Open("chunk")
	if errors.Is(err, blockpool.ErrNoSuchVolume) {
		fv, err = pool.Create("chunk", s.cfg.ChunkVolume)
	}
	if err != nil {
		s.offline(l, "cannot open its chunk volume", err)
		return nil
	}
	var vol blockpool.Volume = fv
	if s.cfg.WrapVolume != nil {
		vol = s.cfg.WrapVolume(d.Name, vol)
	}
	db, err := s.openDB(d, pool)
	if err != nil {
		vol.Close()
		s.offline(l, "its metadata database is unreadable", err)
		return nil
	}
	st, err := shard.Open(d.ID, d.Name, vol, db, s.met, s.cfg.Log)
	if err != nil {
		vol.Close()
		db.Close()
		s.offline(l, "its shard store does not open", err)
		return nil
	}
	if err := s.cfg.Meta.AddMirror(d.Name, db); err != nil {
		s.cfg.Log.Error("device holds no up-to-date copy of the node's metadata yet", "device", d.Name, "err", err)
	}
	guard := s.GuardFor(pool.Dir())
	st.SetSpace(guard, guard) // the device's records live beside its shards
	l.db, l.vol, l.store, l.space = db, vol, st, guard
	s.registerDevice(d.Name, pool, guard)
	return nil
}

// dbDir is where a pool keeps its device's database.
func dbDir(pool *blockpool.FilePool) string { return filepath.Join(pool.Dir(), "meta") }

// openDB opens a device's database, moving its records there from the
// node's database on the first start after an upgrade.
func (s *Set) openDB(d ring.Device, pool *blockpool.FilePool) (*pebble.DB, error) {
	db, err := metastore.OpenPebbleWith(dbDir(pool), s.cfg.Log, s.cache())
	if err != nil {
		return nil, err
	}
	if err := shard.MoveRecords(s.cfg.Meta.Primary(), db, d.ID); err != nil {
		db.Close()
		return nil, fmt.Errorf("move the device's records out of the node's database: %w", err)
	}
	return db, nil
}

func (s *Set) offline(l *local, why string, err error) {
	l.fault = fmt.Sprintf("%s: %v", why, err)
	s.cfg.Log.Error("device offline: "+why, "device", l.name, "err", err)
}

// Unreadable takes a device offline whose records could not all be read
// when the object store started.
func (s *Set) Unreadable(name string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.publish()
	for _, l := range s.devs {
		if l.name != name || l.store == nil {
			continue
		}
		s.cfg.Meta.RemoveMirror(name)
		if cerr := l.close(); cerr != nil {
			s.cfg.Log.Warn("closing an unreadable device", "device", name, "err", cerr)
		}
		l.fault = fmt.Sprintf("its records are unreadable: %v", err)
	}
}

// close closes a device's store, volume and database; it is offline after.
func (l *local) close() error {
	var errs []error
	l.store = nil
	if l.vol != nil {
		errs = append(errs, l.vol.Close())
		l.vol = nil
	}
	if l.db != nil {
		errs = append(errs, metastore.CloseFlushed(l.db))
		l.db = nil
	}
	return errors.Join(errs...)
}

// Close closes every device.
func (s *Set) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.publish()
	var errs []error
	for _, l := range s.devs {
		errs = append(errs, l.close())
	}
	s.devs = map[uint32]*local{}
	return errors.Join(errs...)
}

func (s *Set) registerDevice(name string, pool *blockpool.FilePool, g *diskspace.Guard) {
	if s.cfg.Registry == nil {
		return
	}
	// Register, not MustRegister: a device re-added under a name it had
	// before keeps the series (and must not panic the request).
	_ = s.cfg.Registry.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "strata_pool_free_bytes", Help: "Free bytes of the filesystem under a pool.", ConstLabels: prometheus.Labels{"pool": name}}, func() float64 {
		_, f, _ := pool.Capacity()
		return float64(f)
	}))
	if g == nil {
		return
	}
	_ = s.cfg.Registry.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "strata_device_full", Help: "1 while the device's filesystem is down to its reserve and writes to it are refused.",
		ConstLabels: prometheus.Labels{"device": name},
	}, func() float64 {
		if g.Full() {
			return 1
		}
		return 0
	}))
}

// Infos describes the node's pools disk0 … disk<pools-1> for its
// heartbeat: each one's ring device (if open) and its capacity, free and
// used space.
func (s *Set) Infos(pools int) []cluster.DeviceInfo {
	local := s.Snapshot()
	out := make([]cluster.DeviceInfo, 0, pools)
	for i := 0; i < pools; i++ {
		di := cluster.DeviceInfo{Name: fmt.Sprintf("disk%d", i)}
		for id, ld := range local {
			if ld.Name == di.Name {
				total, free, _ := ld.Pool.Capacity()
				di.CapacityBytes, di.FreeBytes, di.ID = int64(total), int64(free), id
				if ld.Store != nil {
					di.UsedBytes = ld.Store.Used()
				}
			}
		}
		out = append(out, di)
	}
	return out
}
