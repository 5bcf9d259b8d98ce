package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/client/v3"

	"github.com/strata-storage/strata/blockpool"
	"github.com/strata-storage/strata/metastore"
)

// Membership keys: members/<name> holds a node's NodeInfo (kept after it
// stops, so a down node is still listed); alive/<name> is written with a
// lease the node keeps alive, so it vanishes TTL after the node stops
// heartbeating.
const (
	membersPrefix = "members/"
	alivePrefix   = "alive/"
)

// DeviceInfo is one local device as a node reports it.
type DeviceInfo struct {
	Name          string `json:"name"`
	CapacityBytes int64  `json:"capacity_bytes"`
	FreeBytes     int64  `json:"free_bytes"`
	// UsedBytes is the shard data the device holds (its ring id: ID).
	UsedBytes int64  `json:"used_bytes"`
	ID        uint32 `json:"id"`
}

// NodeInfo is a member of the cluster.
type NodeInfo struct {
	Name      string       `json:"name"`
	Region    string       `json:"region"`
	Zone      string       `json:"zone"`
	RPCAddr   string       `json:"rpc_addr"`
	S3Addr    string       `json:"s3_addr"`
	AdminAddr string       `json:"admin_addr"`
	Devices   []DeviceInfo `json:"devices"`
	// RingVersion is the ring version the node places by.
	RingVersion uint64 `json:"ring_version"`
	// VolumePool is the node's block-volume pool.
	VolumePool *blockpool.PoolInfo `json:"volume_pool,omitempty"`
	Started    time.Time           `json:"started"`
	Heartbeat  time.Time           `json:"last_heartbeat"`
	// State is "up" while the heartbeat lease lives, else "down" (filled
	// in by ListMembers).
	State string `json:"state,omitempty"`
}

// Member keeps this node registered and heartbeating.
type Member struct {
	meta *Etcd
	ttl  time.Duration
	info func() NodeInfo
	log  *slog.Logger
	// joined is the lease Join's alive key is under; Run carries it on,
	// so a stop before Run's first beat still revokes it.
	joined clientv3.LeaseID
	// now asks Run for a beat at once (Publish).
	now chan struct{}
}

// NewMember registers through meta; info is called at every heartbeat
// (capacity changes). ttl is how long after the last heartbeat the node
// counts as down.
func NewMember(meta *Etcd, ttl time.Duration, info func() NodeInfo, log *slog.Logger) *Member {
	return &Member{meta: meta, ttl: ttl, info: info, log: log, now: make(chan struct{}, 1)}
}

// Publish makes Run beat at once, so what the node's info gained (its
// listeners' addresses, once they are open) is known before the next
// regular beat.
func (m *Member) Publish() {
	select {
	case m.now <- struct{}{}:
	default:
	}
}

// Join registers the node once (so its address is known before the first
// beat completes) and fails if the name is held by a live node elsewhere.
func (m *Member) Join(ctx context.Context) error {
	info := m.info()
	if v, err := m.meta.Get(ctx, alivePrefix+info.Name); err == nil {
		var other NodeInfo
		if json.Unmarshal(v, &other) == nil && other.RPCAddr != info.RPCAddr {
			return fmt.Errorf("node name %q is in use by a live node at %s", info.Name, other.RPCAddr)
		}
	}
	id, err := m.beat(ctx, 0)
	if err == nil {
		m.joined = id
	}
	return err
}

// beat writes the member record and the alive key under lease (granting a
// new lease when id is 0 or has expired).
func (m *Member) beat(ctx context.Context, id clientv3.LeaseID) (clientv3.LeaseID, error) {
	c := m.meta.c
	if id != 0 {
		if _, err := c.KeepAliveOnce(ctx, id); err != nil {
			if ctx.Err() != nil {
				// Stopping: keep the lease, so Run can revoke it and
				// the node is down at once.
				return id, err
			}
			id = 0
		}
	}
	if id == 0 {
		secs := int64((m.ttl + time.Second - 1) / time.Second)
		l, err := c.Grant(ctx, max(secs, 2))
		if err != nil {
			return 0, fmt.Errorf("heartbeat lease: %w", err)
		}
		id = l.ID
	}
	info := m.info()
	info.Heartbeat = time.Now().UTC()
	v, _ := json.Marshal(info)
	if _, err := c.Txn(ctx).Then(
		clientv3.OpPut(m.meta.prefix+membersPrefix+info.Name, string(v)),
		clientv3.OpPut(m.meta.prefix+alivePrefix+info.Name, string(v), clientv3.WithLease(id)),
	).Commit(); err != nil {
		return id, fmt.Errorf("heartbeat: %w", err)
	}
	return id, nil
}

// Run heartbeats every ttl/3 until ctx ends, then revokes the lease so the
// node is marked down at once on a clean stop.
func (m *Member) Run(ctx context.Context) {
	id := m.joined
	for {
		bctx, cancel := context.WithTimeout(ctx, m.ttl/2)
		nid, err := m.beat(bctx, id)
		cancel()
		if err != nil && ctx.Err() == nil {
			m.log.Warn("heartbeat failed", "err", err)
		}
		id = nid
		select {
		case <-ctx.Done():
			if id != 0 {
				rctx, cancel := context.WithTimeout(context.Background(), time.Second)
				m.meta.c.Revoke(rctx, id)
				cancel()
			}
			return
		case <-time.After(m.ttl / 3):
		case <-m.now:
		}
	}
}

// ListMembers returns every node that ever joined, with its state.
func ListMembers(ctx context.Context, meta *Etcd) ([]NodeInfo, error) {
	members, err := meta.List(ctx, membersPrefix)
	if err != nil {
		return nil, err
	}
	alive, err := meta.List(ctx, alivePrefix)
	if err != nil {
		return nil, err
	}
	up := map[string]bool{}
	for _, kv := range alive {
		up[strings.TrimPrefix(kv.Key, alivePrefix)] = true
	}
	out := make([]NodeInfo, 0, len(members))
	for _, kv := range members {
		var n NodeInfo
		if err := json.Unmarshal(kv.Value, &n); err != nil {
			return nil, fmt.Errorf("member %s: %w", kv.Key, err)
		}
		n.State = "down"
		if up[n.Name] {
			n.State = "up"
		}
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// RemoveMember deletes the record of member name, which must have no
// heartbeat.
func RemoveMember(ctx context.Context, meta *Etcd, name string) error {
	if _, err := meta.Get(ctx, alivePrefix+name); err == nil {
		return fmt.Errorf("node %s has a current heartbeat", name)
	} else if !errors.Is(err, metastore.ErrNotFound) {
		return err
	}
	return meta.Delete(ctx, membersPrefix+name)
}

// AdminAddr is the admin address member name published.
func AdminAddr(ctx context.Context, meta *Etcd, name string) (string, error) {
	members, err := ListMembers(ctx, meta)
	if err != nil {
		return "", err
	}
	for _, m := range members {
		if m.Name == name {
			if m.AdminAddr == "" {
				return "", fmt.Errorf("node %s has not published its admin address", name)
			}
			return m.AdminAddr, nil
		}
	}
	return "", fmt.Errorf("node %s is not a member of the cluster", name)
}

// FirstUp is the name of the first member, by name, with a current
// heartbeat: the one node that does what one node of the cluster must
// (checking placement for the whole store). "" when none is up.
func FirstUp(ctx context.Context, meta *Etcd) (string, error) {
	members, err := ListMembers(ctx, meta)
	if err != nil {
		return "", err
	}
	first := ""
	for _, m := range members {
		if m.State == "up" && (first == "" || m.Name < first) {
			first = m.Name
		}
	}
	return first, nil
}

// Peers is this node's view of the others: a client per member, kept in
// step with membership (addresses and heartbeats) by Follow.
type Peers struct {
	t   *Transport
	mu  sync.Mutex
	all map[string]*Peer
}

// NewPeers returns an empty view.
func NewPeers(t *Transport) *Peers { return &Peers{t: t, all: map[string]*Peer{}} }

// Get returns the peer of a node name, or nil if it never joined.
func (ps *Peers) Get(name string) *Peer {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.all[name]
}

// All returns every known peer.
func (ps *Peers) All() []*Peer {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	out := make([]*Peer, 0, len(ps.all))
	for _, p := range ps.all {
		out = append(out, p)
	}
	return out
}

// Follow tracks members and heartbeats until ctx ends, probing each peer
// in the background; changed (if not nil) is called when a peer appears.
func (ps *Peers) Follow(ctx context.Context, meta *Etcd, self string, changed func()) {
	alive := make(chan struct{})
	defer func() { <-alive }() // both watches end with ctx
	go func() {
		defer close(alive)
		ps.followAlive(ctx, meta)
	}()
	ps.followMembers(ctx, meta, self, changed)
}

func (ps *Peers) followAlive(ctx context.Context, meta *Etcd) {
	meta.Watch(ctx, alivePrefix, func(key string, value []byte) {
		name := strings.TrimPrefix(key, alivePrefix)
		if p := ps.Get(name); p != nil {
			p.SetAlive(value != nil)
			if value != nil {
				go p.Probe(ctx)
			}
		}
	})
}

func (ps *Peers) followMembers(ctx context.Context, meta *Etcd, self string, changed func()) {
	meta.Watch(ctx, membersPrefix, func(key string, value []byte) {
		if value == nil {
			return
		}
		var n NodeInfo
		if err := json.Unmarshal(value, &n); err != nil || n.Name == self || n.RPCAddr == "" {
			return
		}
		ps.mu.Lock()
		p := ps.all[n.Name]
		isNew := p == nil
		if isNew {
			p = ps.t.NewPeer(n.Name, n.RPCAddr)
			ps.all[n.Name] = p
		}
		ps.mu.Unlock()
		if !isNew {
			if p.Addr() != n.RPCAddr {
				p.SetAddr(n.RPCAddr)
			}
			return
		}
		go p.RunProbes(ctx)
		if changed != nil {
			changed()
		}
	})
}

// Load creates a peer for every member now registered (and starts its
// probes), so a starting node can reach the others before Follow runs.
func (ps *Peers) Load(ctx context.Context, meta *Etcd, self string) error {
	members, err := ListMembers(ctx, meta)
	if err != nil {
		return err
	}
	for _, n := range members {
		if n.Name == self || n.RPCAddr == "" {
			continue
		}
		ps.mu.Lock()
		p := ps.all[n.Name]
		if p == nil {
			p = ps.t.NewPeer(n.Name, n.RPCAddr)
			p.SetAlive(n.State == "up")
			ps.all[n.Name] = p
			go p.RunProbes(ctx)
		}
		ps.mu.Unlock()
	}
	return nil
}
