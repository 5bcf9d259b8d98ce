// Package volumes is a node's block-volume control plane: volume records in
// the metadata store, placement of replicas (like LINSTOR's auto-place),
// this node's replicas in its volume pool, and the primary that serves a
// volume over NBD while a client is attached here.
package volumes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/strata-storage/strata/blockpool"
	"github.com/strata-storage/strata/blockpool/nbd"
	"github.com/strata-storage/strata/blockpool/replicate"
	"github.com/strata-storage/strata/metastore"
)

// Errors of the volume API.
var (
	ErrExists     = errors.New("volume already exists")
	ErrNotFound   = errors.New("no such volume")
	ErrNoSnapshot = errors.New("no such snapshot")
	ErrInUse      = errors.New("volume is attached (primary)")
	ErrPlacement  = errors.New("cannot place the replicas")
	ErrInvalid    = errors.New("invalid volume request")
	ErrNodeDown   = errors.New("replica node unreachable")
)

// Record is a volume as the metadata store keeps it.
type Record struct {
	Name  string   `json:"name"`
	Size  int64    `json:"size"`
	Nodes []string `json:"nodes"` // replica placement
	// TieBreaker is the node of a 2-replica volume's diskless third
	// member (see replicate.CreateWitness), "" when none could be placed.
	TieBreaker string `json:"tie_breaker,omitempty"`
	// Leaving: replicas being replaced (see Evacuate); still in Nodes
	// until their replacements are up to date.
	Leaving []string  `json:"leaving,omitempty"`
	Created time.Time `json:"created"`
	// ClonedFrom is "volume@snapshot" for a clone.
	ClonedFrom string     `json:"cloned_from,omitempty"`
	Snapshots  []Snapshot `json:"snapshots,omitempty"`
	// Access names the NBD client identities (TLS certificate common
	// names or PSK identities, "*" for any authenticated client) that may
	// attach the volume.
	Access []string `json:"access,omitempty"`
}

// NodeInfo is what placement needs to know of a node.
type NodeInfo struct {
	Name string
	Zone string
	Up   bool
	Pool *PoolInfo
}

// PoolInfo is the node's volume pool as the admin API and heartbeats
// show it (blockpool.PoolInfo).
type PoolInfo = blockpool.PoolInfo

// Cluster is how the manager reaches other nodes (nil on a single node).
type Cluster interface {
	Nodes(ctx context.Context) ([]NodeInfo, error)
	Link(node, volume string) replicate.Link
	CreateReplica(ctx context.Context, node, volume string, size int64) error
	CreateWitness(ctx context.Context, node, volume string, size int64) error
	CloneReplica(ctx context.Context, node, volume, from, snapshot string) error
	DeleteReplica(ctx context.Context, node, volume string) error
}

// Config sets a manager up.
type Config struct {
	Node    string
	Zone    string
	Dir     string // the volume pool's directory
	Meta    metastore.Store
	Cluster Cluster
	Lease   time.Duration // a primary's lease on its replicas
	Log     *slog.Logger
	Observe func(volume, op string, bytes int, d time.Duration)
}

// Manager manages one node's volumes.
type Manager struct {
	cfg  Config
	log  *slog.Logger
	pool *blockpool.FilePool

	recMu     sync.Mutex
	mu        sync.Mutex
	replicas  map[string]*replicate.Replica
	primaries map[string]*attached
	closed    bool

	// views are what the keeper last saw of the volumes with a replica
	// here (Views): their replicas' states, attached or not.
	viewMu sync.Mutex
	views  map[string]VolumeInfo
}

type attached struct {
	p    *replicate.Primary
	refs int
	held bool // made primary by the operator (volume primary), not a client
}

const recordPrefix = "volumes/"

// Open opens the pool and this node's replicas.
func Open(cfg Config) (*Manager, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 6 * time.Second
	}
	pool, err := blockpool.OpenFilePool("volumes", cfg.Dir)
	if err != nil {
		return nil, err
	}
	m := &Manager{cfg: cfg, log: cfg.Log, pool: pool, replicas: map[string]*replicate.Replica{}, primaries: map[string]*attached{}}
	entries, err := os.ReadDir(cfg.Dir)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		r, err := replicate.OpenReplica(filepath.Join(cfg.Dir, e.Name()), cfg.Node, cfg.Lease)
		if err != nil {
			m.log.Error("volume replica cannot be opened; it is left out", "volume", e.Name(), "err", err)
			continue
		}
		m.replicas[e.Name()] = r
	}
	return m, nil
}

// Reconcile removes local replicas of volumes that were deleted (or moved
// off this node) while it was away.
func (m *Manager) Reconcile(ctx context.Context) error {
	m.mu.Lock()
	names := make([]string, 0, len(m.replicas))
	for n := range m.replicas {
		names = append(names, n)
	}
	m.mu.Unlock()
	for _, name := range names {
		rec, err := m.record(ctx, name)
		if errors.Is(err, ErrNotFound) || err == nil && !slices.Contains(rec.Members(), m.cfg.Node) {
			m.log.Info("removing the replica of a volume deleted while this node was away", "volume", name)
			if err := m.DeleteLocal(name); err != nil {
				return err
			}
		} else if err != nil {
			return err
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Close detaches every primary and closes the replicas.
func (m *Manager) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	var errs []error
	for name, a := range m.primaries {
		errs = append(errs, a.p.Close())
		delete(m.primaries, name)
	}
	for name, r := range m.replicas {
		errs = append(errs, r.Close())
		delete(m.replicas, name)
	}
	return errors.Join(errs...)
}

func (m *Manager) record(ctx context.Context, name string) (Record, error) {
	b, err := m.cfg.Meta.Get(ctx, recordPrefix+name)
	if errors.Is(err, metastore.ErrNotFound) {
		return Record{}, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	if err != nil {
		return Record{}, err
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return Record{}, fmt.Errorf("volume record %s: %w", name, err)
	}
	return r, nil
}

// Records lists every volume record, by name.
func (m *Manager) Records(ctx context.Context) ([]Record, error) {
	kvs, err := m.cfg.Meta.List(ctx, recordPrefix)
	if err != nil {
		return nil, err
	}
	out := make([]Record, 0, len(kvs))
	for _, kv := range kvs {
		var r Record
		if err := json.Unmarshal(kv.Value, &r); err != nil {
			return nil, fmt.Errorf("volume record %s: %w", kv.Key, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// ValidName reports whether name can name a volume (and an NBD export).
func ValidName(name string) bool {
	if name == "" || len(name) > 63 || name[0] == '-' || name[0] == '.' {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// MaxSize bounds a volume (the bitmaps and sums stay reasonable).
const MaxSize = 64 << 40

// CreateRequest asks for a volume.
type CreateRequest struct {
	Name     string   `json:"name"`
	Size     int64    `json:"size"`
	Replicas int      `json:"replicas"`
	Nodes    []string `json:"nodes,omitempty"` // explicit placement
}

// Create places and creates a volume: the record first (so the name is
// taken), then a replica on each node; if one fails, the others and the
// record are removed again.
func (m *Manager) Create(ctx context.Context, req CreateRequest) (Record, error) {
	if !ValidName(req.Name) {
		return Record{}, fmt.Errorf("%w: name %q: use 1-63 of a-z 0-9 - _ .", ErrInvalid, req.Name)
	}
	if req.Size <= 0 || req.Size > MaxSize {
		return Record{}, fmt.Errorf("%w: size %d", ErrInvalid, req.Size)
	}
	size := (req.Size + replicate.BlockSize - 1) / replicate.BlockSize * replicate.BlockSize
	if req.Replicas == 0 {
		req.Replicas = max(1, len(req.Nodes))
	}
	if req.Replicas < 1 || req.Replicas > 7 || len(req.Nodes) > 0 && len(req.Nodes) != req.Replicas {
		return Record{}, fmt.Errorf("%w: %d replicas on %d named nodes", ErrInvalid, req.Replicas, len(req.Nodes))
	}
	all, err := m.nodes(ctx)
	if err != nil {
		return Record{}, err
	}
	nodes, err := pickNodes(all, req)
	if err != nil {
		return Record{}, err
	}
	rec := Record{Name: req.Name, Size: size, Nodes: nodes, TieBreaker: pickTieBreaker(all, nodes), Created: time.Now().UTC()}
	b, _ := json.Marshal(rec)
	ok, err := m.cfg.Meta.PutIfAbsent(ctx, recordPrefix+req.Name, b)
	if err != nil {
		return Record{}, err
	}
	if !ok {
		return Record{}, fmt.Errorf("%w: %s", ErrExists, req.Name)
	}
	var made []string
	for _, node := range rec.Nodes {
		if err := m.createOn(ctx, node, req.Name, size); err != nil {
			for _, n := range made {
				m.deleteOn(context.Background(), n, req.Name)
			}
			m.cfg.Meta.Delete(context.Background(), recordPrefix+req.Name)
			return Record{}, fmt.Errorf("create replica of %s on %s: %w", req.Name, node, err)
		}
		made = append(made, node)
	}
	rec = m.addTieBreaker(ctx, rec)
	m.log.Info("volume created", "volume", req.Name, "size", size, "nodes", nodes, "tie_breaker", rec.TieBreaker)
	return rec, nil
}

// addTieBreaker creates the record's tie-breaker once its replicas exist;
// if that fails (its node just went down), the volume goes on without one
// and says so in its warnings.
func (m *Manager) addTieBreaker(ctx context.Context, rec Record) Record {
	if rec.TieBreaker == "" {
		return rec
	}
	err := m.createWitnessOn(ctx, rec.TieBreaker, rec.Name, rec.Size)
	if err == nil {
		return rec
	}
	m.log.Warn("volume created without its tie-breaker", "volume", rec.Name, "node", rec.TieBreaker, "err", err)
	updated, uerr := m.updateRecord(ctx, rec.Name, func(r *Record) error {
		r.TieBreaker = ""
		return nil
	})
	if uerr != nil {
		// The record names a tie-breaker that does not exist: it counts
		// as a member that is down, as if its node had died.
		m.log.Warn("volume record keeps a tie-breaker that was not created", "volume", rec.Name, "err", uerr)
		return rec
	}
	return updated
}

// Members are the nodes of the volume's replicas, its tie-breaker last.
func (r Record) Members() []string {
	if r.TieBreaker == "" {
		return r.Nodes
	}
	return append(append([]string(nil), r.Nodes...), r.TieBreaker)
}

// pickTieBreaker places a 2-replica volume's diskless tie-breaker: an up
// node with a volume pool that holds neither replica, in a zone of its own
// if there is one (so losing a zone loses at most one of the three), else
// any; "" when no node is left. It needs no space to speak of.
func pickTieBreaker(all []NodeInfo, nodes []string) string {
	if len(nodes) != 2 {
		return ""
	}
	zones := map[string]bool{}
	for _, n := range all {
		if slices.Contains(nodes, n.Name) {
			zones[n.Zone] = true
		}
	}
	best := ""
	for _, n := range all {
		if !n.Up || n.Pool == nil || slices.Contains(nodes, n.Name) {
			continue
		}
		if !zones[n.Zone] {
			return n.Name
		}
		if best == "" {
			best = n.Name
		}
	}
	return best
}

func (m *Manager) createWitnessOn(ctx context.Context, node, name string, size int64) error {
	if node == m.cfg.Node {
		return m.CreateWitnessLocal(name, size)
	}
	return m.cfg.Cluster.CreateWitness(ctx, node, name, size)
}

func (m *Manager) createOn(ctx context.Context, node, name string, size int64) error {
	if node == m.cfg.Node {
		return m.CreateLocal(name, size, "", "")
	}
	return m.cfg.Cluster.CreateReplica(ctx, node, name, size)
}

func (m *Manager) deleteOn(ctx context.Context, node, name string) error {
	if node == m.cfg.Node {
		return m.DeleteLocal(name)
	}
	return m.cfg.Cluster.DeleteReplica(ctx, node, name)
}

// pickNodes picks the replica nodes: the named ones (each must be up), or
// N up nodes in distinct zones, those with the most free pool space first.
func pickNodes(all []NodeInfo, req CreateRequest) ([]string, error) {
	byName := map[string]NodeInfo{}
	for _, n := range all {
		byName[n.Name] = n
	}
	if len(req.Nodes) > 0 {
		seen := map[string]bool{}
		for _, name := range req.Nodes {
			n, ok := byName[name]
			switch {
			case seen[name]:
				return nil, fmt.Errorf("%w: node %s named twice", ErrInvalid, name)
			case !ok || n.Pool == nil:
				return nil, fmt.Errorf("%w: no node %s with a volume pool", ErrPlacement, name)
			case !n.Up:
				return nil, fmt.Errorf("%w: node %s is down", ErrPlacement, name)
			}
			seen[name] = true
		}
		return req.Nodes, nil
	}
	var cands []NodeInfo
	for _, n := range all {
		if n.Up && n.Pool != nil && n.Pool.Free >= req.Size/64 {
			cands = append(cands, n)
		}
	}
	sort.SliceStable(cands, func(i, j int) bool { return cands[i].Pool.Free > cands[j].Pool.Free })
	var out []string
	zones := map[string]bool{}
	for _, n := range cands {
		if len(out) < req.Replicas && !zones[n.Zone] {
			zones[n.Zone] = true
			out = append(out, n.Name)
		}
	}
	if len(out) < req.Replicas {
		return nil, fmt.Errorf("%w: %d replicas need %d up nodes in distinct zones; %d found", ErrPlacement, req.Replicas, req.Replicas, len(out))
	}
	return out, nil
}

func (m *Manager) nodes(ctx context.Context) ([]NodeInfo, error) {
	if m.cfg.Cluster == nil {
		pi := m.Pool()
		return []NodeInfo{{Name: m.cfg.Node, Zone: m.cfg.Zone, Up: true, Pool: &pi}}, nil
	}
	return m.cfg.Cluster.Nodes(ctx)
}

// CreateLocal creates this node's replica of a volume: empty, or (from
// set) a copy of a snapshot of another volume's replica here.
func (m *Manager) CreateLocal(name string, size int64, from, snapshot string) error {
	if !ValidName(name) {
		return fmt.Errorf("%w: name %q", ErrInvalid, name)
	}
	return m.addLocal(name, func(dir string) (*replicate.Replica, error) {
		if from != "" {
			return m.cloneReplica(name, from, snapshot)
		}
		return replicate.CreateReplica(dir, m.cfg.Node, size, m.cfg.Lease)
	})
}

// CreateWitnessLocal creates this node's diskless tie-breaker of a volume.
func (m *Manager) CreateWitnessLocal(name string, size int64) error {
	if !ValidName(name) {
		return fmt.Errorf("%w: name %q", ErrInvalid, name)
	}
	return m.addLocal(name, func(dir string) (*replicate.Replica, error) {
		return replicate.CreateWitness(dir, m.cfg.Node, size, m.cfg.Lease)
	})
}

// addLocal makes a replica of a volume here with create (given its
// directory) unless there is one.
func (m *Manager) addLocal(name string, create func(dir string) (*replicate.Replica, error)) error {
	m.mu.Lock()
	if m.replicas[name] != nil {
		m.mu.Unlock()
		return fmt.Errorf("%w: replica of %s on %s", ErrExists, name, m.cfg.Node)
	}
	m.mu.Unlock()
	r, err := create(filepath.Join(m.cfg.Dir, name))
	if err != nil {
		os.RemoveAll(filepath.Join(m.cfg.Dir, name))
		return err
	}
	m.mu.Lock()
	m.replicas[name] = r
	m.mu.Unlock()
	return nil
}

// DeleteLocal removes this node's replica of a volume (refused while it is
// primary here).
func (m *Manager) DeleteLocal(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.primaries[name] != nil {
		return fmt.Errorf("%w: %s on %s", ErrInUse, name, m.cfg.Node)
	}
	r := m.replicas[name]
	if r == nil {
		return nil
	}
	delete(m.replicas, name)
	r.Close()
	if err := os.RemoveAll(filepath.Join(m.cfg.Dir, name)); err != nil {
		return fmt.Errorf("delete replica of %s: %w", name, err)
	}
	return nil
}

// VolumeReplica is this node's replica of a volume (nil: none).
func (m *Manager) VolumeReplica(name string) *replicate.Replica {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.replicas[name]
}

// Delete removes a volume everywhere. It is refused while the volume is
// attached anywhere; a replica node that is down keeps its copy until it
// returns and reconciles.
func (m *Manager) Delete(ctx context.Context, name string) error {
	rec, err := m.record(ctx, name)
	if err != nil {
		return err
	}
	for _, st := range m.statuses(ctx, rec) {
		if st.err == nil && st.st.Leased {
			return fmt.Errorf("%w: %s is primary on %s; disconnect its NBD clients first", ErrInUse, name, st.st.Primary)
		}
	}
	if err := m.cfg.Meta.Delete(ctx, recordPrefix+name); err != nil {
		return err
	}
	for _, node := range rec.Members() {
		if err := m.deleteOn(ctx, node, name); err != nil {
			m.log.Warn("replica not deleted now; its node removes it when it returns", "volume", name, "node", node, "err", err)
		}
	}
	m.log.Info("volume deleted", "volume", name)
	return nil
}

// Pool reports this node's volume pool.
func (m *Manager) Pool() PoolInfo {
	total, free, _ := m.pool.Capacity()
	pi := PoolInfo{Node: m.cfg.Node, Name: "volumes", Driver: "file-thin", Capacity: int64(total), Free: int64(free)}
	m.mu.Lock()
	for name, r := range m.replicas {
		if r.Witness() {
			continue // a state file: no space provisioned
		}
		pi.Volumes++
		pi.Provisioned += r.Size()
		pi.Allocated += allocated(filepath.Join(m.cfg.Dir, name))
	}
	m.mu.Unlock()
	if pi.Capacity > 0 {
		pi.OverSub = float64(pi.Provisioned) / float64(pi.Capacity)
	}
	return pi
}

func allocated(dir string) int64 {
	p, err := blockpool.OpenFilePool("", dir)
	if err != nil {
		return 0
	}
	vs, _ := p.List()
	var n int64
	for _, v := range vs {
		n += v.Allocated
	}
	return n
}

// Pools reports every node's volume pool.
func (m *Manager) Pools(ctx context.Context) ([]PoolInfo, error) {
	all, err := m.nodes(ctx)
	if err != nil {
		return nil, err
	}
	var out []PoolInfo
	for _, n := range all {
		if n.Pool != nil {
			out = append(out, *n.Pool)
		}
	}
	return out, nil
}

// Export is the NBD export of a volume: the size from its record; I/O
// attaches a primary on this node.
func (m *Manager) Export(name string) (nbd.Export, bool) {
	rec, err := m.record(context.Background(), name)
	if err != nil {
		return nil, false
	}
	return &export{m: m, rec: rec}, true
}

// Names lists the volumes for NBD_OPT_LIST.
func (m *Manager) Names() []string {
	recs, _ := m.Records(context.Background())
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.Name
	}
	return out
}

type export struct {
	m   *Manager
	rec Record
}

func (e *export) Size() int64                             { return e.rec.Size }
func (e *export) ReadAt(p []byte, off int64) (int, error) { return 0, errNotAttached }
func (e *export) WriteAt(p []byte, off int64) (int, error) {
	return 0, errNotAttached
}
func (e *export) Sync() error                  { return errNotAttached }
func (e *export) Trim(off, length int64) error { return errNotAttached }

var errNotAttached = errors.New("volume not attached")

// Attach makes this node the volume's primary (or shares the primary of
// another connection here).
func (e *export) Attach() (nbd.Export, func(), error) {
	p, err := e.m.Attach(context.Background(), e.rec.Name)
	if err != nil {
		return nil, nil, err
	}
	var once sync.Once
	return p, func() { once.Do(func() { e.m.Detach(e.rec.Name) }) }, nil
}

// Attach opens (or shares) the primary of a volume on this node.
func (m *Manager) Attach(ctx context.Context, name string) (*replicate.Primary, error) {
	return m.attach(ctx, name, false, false)
}

// attachBackground attaches for background work (resync, scrub): a weak
// primary, which a client's attach on another node takes over.
func (m *Manager) attachBackground(ctx context.Context, name string) (*replicate.Primary, error) {
	return m.attach(ctx, name, false, true)
}

func (m *Manager) attach(ctx context.Context, name string, force, weak bool) (*replicate.Primary, error) {
	rec, err := m.record(ctx, name)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, fmt.Errorf("volume %s: the node is shutting down", name)
	}
	if a := m.primaries[name]; a != nil {
		if !weak && a.p.Weak() {
			// A client joins a background primary: it must hold.
			if err := a.p.Strengthen(); err != nil {
				return nil, err
			}
		}
		a.refs++
		return a.p, nil
	}
	var links []replicate.Link
	for _, node := range rec.Members() {
		if node == m.cfg.Node {
			r := m.replicas[name]
			if r == nil {
				return nil, fmt.Errorf("volume %s: the replica on this node is missing", name)
			}
			links = append(links, replicate.LocalLink{R: r})
			continue
		}
		if m.cfg.Cluster == nil {
			return nil, fmt.Errorf("volume %s: replica on %s but this node is not in a cluster", name, node)
		}
		links = append(links, m.cfg.Cluster.Link(node, name))
	}
	var observe func(string, int, time.Duration)
	if m.cfg.Observe != nil {
		observe = func(op string, n int, d time.Duration) { m.cfg.Observe(name, op, n, d) }
	}
	var witnesses []string
	if rec.TieBreaker != "" {
		witnesses = []string{rec.TieBreaker}
	}
	p, err := replicate.Open(ctx, replicate.Config{Name: name, Self: m.cfg.Node, Links: links, Witnesses: witnesses, Log: m.log, Observe: observe, Force: force, Weak: weak})
	if err != nil {
		return nil, err
	}
	m.primaries[name] = &attached{p: p, refs: 1}
	return p, nil
}

// Promote makes this node the volume's primary until Demote, whether or
// not clients are attached. force, the operator's last resort when a
// majority of replicas is gone for good, works without a quorum and over
// another node's lease; if the other side also writes, the split brain is
// reported when they meet (see Discard).
func (m *Manager) Promote(ctx context.Context, name string, force bool) error {
	m.mu.Lock()
	a := m.primaries[name]
	m.mu.Unlock()
	if a != nil && force {
		return fmt.Errorf("%w: %s is already primary here", ErrInUse, name)
	}
	if _, err := m.attach(ctx, name, force, false); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	a = m.primaries[name]
	switch {
	case a == nil:
		return fmt.Errorf("volume %s: primary closed meanwhile", name)
	case !a.held:
		a.held = true
	default:
		a.refs-- // already held: one reference is enough
	}
	return nil
}

// Demote ends a Promote; the primary closes once no client is attached.
func (m *Manager) Demote(name string) error {
	m.mu.Lock()
	a := m.primaries[name]
	if a == nil || !a.held {
		m.mu.Unlock()
		return fmt.Errorf("%w: %s is not held primary on %s", ErrInvalid, name, m.cfg.Node)
	}
	a.held = false
	m.mu.Unlock()
	m.Detach(name)
	return nil
}

// Discard resolves a split brain: the replica on node gives up its
// diverged data for a full resync from the primary here.
func (m *Manager) Discard(ctx context.Context, name, node string) error {
	p := m.Primary(name)
	if p == nil {
		if err := m.elsewhere(ctx, name, replicate.ErrPrimaryElsewhere); errors.As(err, new(*ElsewhereError)) {
			return err
		}
		return fmt.Errorf("%w: %s is not primary on %s; make it primary here first (volume primary)", ErrInvalid, name, m.cfg.Node)
	}
	if err := p.Discard(node); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return nil
}

// Detach drops one reference to the primary; the last closes it (the
// replicas are flushed and released).
func (m *Manager) Detach(name string) {
	m.mu.Lock()
	a := m.primaries[name]
	if a == nil {
		m.mu.Unlock()
		return
	}
	a.refs--
	if a.refs > 0 {
		m.mu.Unlock()
		return
	}
	delete(m.primaries, name)
	m.mu.Unlock()
	if err := a.p.Close(); err != nil {
		m.log.Warn("volume detach", "volume", name, "err", err)
	}
}

// Attached lists the primaries attached on this node, by volume.
func (m *Manager) Attached() map[string]*replicate.Primary {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]*replicate.Primary, len(m.primaries))
	for name, a := range m.primaries {
		out[name] = a.p
	}
	return out
}

// Primary is the volume's primary on this node, if attached here.
func (m *Manager) Primary(name string) *replicate.Primary {
	m.mu.Lock()
	defer m.mu.Unlock()
	if a := m.primaries[name]; a != nil {
		return a.p
	}
	return nil
}
