package volumes

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/strata-storage/strata/blockpool/replicate"
)

// Snapshot is a point-in-time copy of a volume, kept on its replica nodes.
type Snapshot struct {
	Name    string    `json:"name"`
	Size    int64     `json:"size"`
	Created time.Time `json:"created"`
	Nodes   []string  `json:"nodes"` // replicas that hold it
}

// swapper is a metadata store with compare-and-swap (etcd).
type swapper interface {
	Swap(ctx context.Context, key string, old, value []byte) (bool, error)
}

// updateRecord applies fn to a volume's record: with compare-and-swap
// where the store has it (a cluster's admins race), else under the
// manager's lock (one process).
func (m *Manager) updateRecord(ctx context.Context, name string, fn func(*Record) error) (Record, error) {
	m.recMu.Lock()
	defer m.recMu.Unlock()
	for attempt := 0; attempt < 10; attempt++ {
		old, err := m.cfg.Meta.Get(ctx, recordPrefix+name)
		if err != nil {
			if _, nf := m.record(ctx, name); errors.Is(nf, ErrNotFound) {
				return Record{}, nf
			}
			return Record{}, err
		}
		var rec Record
		if err := json.Unmarshal(old, &rec); err != nil {
			return Record{}, err
		}
		if err := fn(&rec); err != nil {
			return Record{}, err
		}
		b, _ := json.Marshal(rec)
		if bytes.Equal(b, old) {
			return rec, nil
		}
		if sw, ok := m.cfg.Meta.(swapper); ok {
			done, err := sw.Swap(ctx, recordPrefix+name, old, b)
			if err != nil {
				return Record{}, err
			}
			if !done {
				continue
			}
		} else if err := m.cfg.Meta.Put(ctx, recordPrefix+name, b); err != nil {
			return Record{}, err
		}
		return rec, nil
	}
	return Record{}, fmt.Errorf("volume %s: record changed under every attempt", name)
}

// ElsewhereError is a call that must run where the volume is primary:
// Node. The admin API forwards it there (blockserve); it is ErrInUse.
type ElsewhereError struct {
	Volume, Node string
	Err          error
}

func (e *ElsewhereError) Error() string {
	// The cause (the lease refusal, relayed) would only say it again.
	return fmt.Sprintf("%v: %s is primary on %s (its lease is held there)", ErrInUse, e.Volume, e.Node)
}

// Unwrap: ErrInUse, and the cause.
func (e *ElsewhereError) Unwrap() []error { return []error{ErrInUse, e.Err} }

// elsewhere names the node a volume is primary on, when another than this
// one holds it.
func (m *Manager) elsewhere(ctx context.Context, name string, cause error) error {
	rec, err := m.record(ctx, name)
	if err != nil {
		return err
	}
	if vi := m.info(ctx, rec); vi.Primary != "" && vi.Primary != m.cfg.Node {
		return &ElsewhereError{Volume: name, Node: vi.Primary, Err: cause}
	}
	return fmt.Errorf("%w: %v", ErrInUse, cause)
}

// withPrimary runs fn on the volume's primary on this node, attaching one
// for the call if none is. exclusiveUse refuses while an NBD client is
// attached here. A volume attached on another node is refused: the
// request belongs to that node.
func (m *Manager) withPrimary(ctx context.Context, name string, exclusiveUse bool, fn func(*replicate.Primary) error) error {
	m.mu.Lock()
	if a := m.primaries[name]; a != nil && exclusiveUse {
		m.mu.Unlock()
		return fmt.Errorf("%w: %s has NBD clients on %s; disconnect them first", ErrInUse, name, m.cfg.Node)
	}
	m.mu.Unlock()
	p, err := m.Attach(ctx, name)
	if errors.Is(err, replicate.ErrPrimaryElsewhere) {
		return m.elsewhere(ctx, name, err)
	}
	if err != nil {
		return err
	}
	defer m.Detach(name)
	return fn(p)
}

// CreateSnapshot takes a snapshot on every up-to-date replica while the
// volume's I/O is held: a point in time, even during writes.
func (m *Manager) CreateSnapshot(ctx context.Context, volume, name string) (Snapshot, error) {
	if !ValidName(name) {
		return Snapshot{}, fmt.Errorf("%w: snapshot name %q", ErrInvalid, name)
	}
	rec, err := m.record(ctx, volume)
	if err != nil {
		return Snapshot{}, err
	}
	for _, s := range rec.Snapshots {
		if s.Name == name {
			return Snapshot{}, fmt.Errorf("%w: snapshot %s of %s", ErrExists, name, volume)
		}
	}
	snap := Snapshot{Name: name, Created: time.Now().UTC()}
	err = m.withPrimary(ctx, volume, false, func(p *replicate.Primary) error {
		snap.Size = p.Size()
		return p.Exclusive(false, func(ctx context.Context, epoch uint64, links []replicate.Link) error {
			for _, l := range links {
				if err := l.Snapshot(ctx, epoch, name); err != nil {
					return fmt.Errorf("snapshot on %s: %w", l.Node(), err)
				}
				snap.Nodes = append(snap.Nodes, l.Node())
			}
			return nil
		})
	})
	if err != nil {
		for _, node := range snap.Nodes {
			m.deleteSnapshotOn(context.Background(), node, volume, name)
		}
		return Snapshot{}, err
	}
	_, err = m.updateRecord(ctx, volume, func(r *Record) error {
		r.Snapshots = append(r.Snapshots, snap)
		return nil
	})
	return snap, err
}

func (m *Manager) deleteSnapshotOn(ctx context.Context, node, volume, name string) error {
	if node == m.cfg.Node {
		r := m.VolumeReplica(volume)
		if r == nil {
			return nil
		}
		return r.DeleteSnapshot(name)
	}
	if m.cfg.Cluster == nil {
		return ErrNodeDown
	}
	l, ok := m.cfg.Cluster.Link(node, volume).(interface {
		DeleteSnapshot(context.Context, string) error
	})
	if !ok {
		return ErrNodeDown
	}
	return l.DeleteSnapshot(ctx, name)
}

// snapshotOf finds a volume's record and one of its snapshots.
func (m *Manager) snapshotOf(ctx context.Context, volume, name string) (Record, Snapshot, error) {
	rec, err := m.record(ctx, volume)
	if err != nil {
		return Record{}, Snapshot{}, err
	}
	for _, s := range rec.Snapshots {
		if s.Name == name {
			return rec, s, nil
		}
	}
	return Record{}, Snapshot{}, fmt.Errorf("%w: %s of %s", ErrNoSnapshot, name, volume)
}

// DeleteSnapshot removes a snapshot from its nodes and the record.
func (m *Manager) DeleteSnapshot(ctx context.Context, volume, name string) error {
	_, snap, err := m.snapshotOf(ctx, volume, name)
	if err != nil {
		return err
	}
	for _, node := range snap.Nodes {
		if err := m.deleteSnapshotOn(ctx, node, volume, name); err != nil && !errors.Is(err, replicate.ErrNoSnapshot) {
			return fmt.Errorf("delete snapshot %s on %s: %w", name, node, err)
		}
	}
	_, err = m.updateRecord(ctx, volume, func(r *Record) error {
		kept := r.Snapshots[:0]
		for _, s := range r.Snapshots {
			if s.Name != name {
				kept = append(kept, s)
			}
		}
		r.Snapshots = kept
		return nil
	})
	return err
}

// RestoreSnapshot rolls the volume back to a snapshot on every replica,
// in place: the volume takes the snapshot's size again, shrinking only if
// allowShrink. The volume must not be in use, and every replica must be up
// to date and hold the snapshot (so that all end identical).
func (m *Manager) RestoreSnapshot(ctx context.Context, volume, name string, allowShrink bool) error {
	rec, snap, err := m.snapshotOf(ctx, volume, name)
	if err != nil {
		return err
	}
	for _, node := range rec.Nodes {
		if !contains(snap.Nodes, node) {
			return fmt.Errorf("%w: snapshot %s is not on %s (it was not up to date then)", ErrInvalid, name, node)
		}
	}
	if snap.Size < rec.Size && !allowShrink {
		return fmt.Errorf("%w: snapshot %s of %s is %d bytes and the volume now %d: restoring it shrinks the volume back, which needs allow-shrink (or clone the snapshot into a new volume)", ErrInvalid, name, volume, snap.Size, rec.Size)
	}
	err = m.withPrimary(ctx, volume, true, func(p *replicate.Primary) error { return p.Restore(name, snap.Size) })
	if err != nil {
		return err
	}
	if snap.Size != rec.Size {
		_, err = m.updateRecord(ctx, volume, func(r *Record) error {
			r.Size = snap.Size
			return nil
		})
	}
	return err
}

// Resize changes a volume's size online (every replica must be up to
// date); a smaller size needs allowShrink.
func (m *Manager) Resize(ctx context.Context, volume string, size int64, allowShrink bool) (Record, error) {
	rec, err := m.record(ctx, volume)
	if err != nil {
		return Record{}, err
	}
	size = (size + replicate.BlockSize - 1) / replicate.BlockSize * replicate.BlockSize
	switch {
	case size == rec.Size:
		return rec, nil
	case size <= 0 || size > MaxSize:
		return Record{}, fmt.Errorf("%w: size %d", ErrInvalid, size)
	case size < rec.Size && !allowShrink:
		return Record{}, fmt.Errorf("%w: %s is %d bytes; shrinking it to %d loses the bytes past that and needs allow-shrink", ErrInvalid, volume, rec.Size, size)
	}
	// A grow is seen by NBD clients when they reconnect; a shrink under
	// one would cut its filesystem off, so it waits for them to leave.
	shrink := size < rec.Size
	if err := m.withPrimary(ctx, volume, shrink, func(p *replicate.Primary) error { return p.Resize(size) }); err != nil {
		return Record{}, err
	}
	return m.updateRecord(ctx, volume, func(r *Record) error {
		r.Size = size
		return nil
	})
}

// Clone makes a new, independent volume from a snapshot, on the nodes that
// hold it.
func (m *Manager) Clone(ctx context.Context, volume, snapshot, name string) (Record, error) {
	if !ValidName(name) {
		return Record{}, fmt.Errorf("%w: name %q", ErrInvalid, name)
	}
	_, snap, err := m.snapshotOf(ctx, volume, snapshot)
	if err != nil {
		return Record{}, err
	}
	all, err := m.nodes(ctx)
	if err != nil {
		return Record{}, err
	}
	rec := Record{Name: name, Size: snap.Size, Nodes: snap.Nodes, TieBreaker: pickTieBreaker(all, snap.Nodes), Created: time.Now().UTC(), ClonedFrom: volume + "@" + snapshot}
	b, _ := json.Marshal(rec)
	ok, err := m.cfg.Meta.PutIfAbsent(ctx, recordPrefix+name, b)
	if err != nil {
		return Record{}, err
	}
	if !ok {
		return Record{}, fmt.Errorf("%w: %s", ErrExists, name)
	}
	var made []string
	for _, node := range rec.Nodes {
		var err error
		if node == m.cfg.Node {
			err = m.CreateLocal(name, 0, volume, snapshot)
		} else if m.cfg.Cluster != nil {
			err = m.cfg.Cluster.CloneReplica(ctx, node, name, volume, snapshot)
		} else {
			err = ErrNodeDown
		}
		if err != nil {
			for _, n := range made {
				m.deleteOn(context.Background(), n, name)
			}
			m.cfg.Meta.Delete(context.Background(), recordPrefix+name)
			return Record{}, fmt.Errorf("clone %s on %s: %w", name, node, err)
		}
		made = append(made, node)
	}
	rec = m.addTieBreaker(ctx, rec)
	m.log.Info("volume cloned", "volume", name, "from", rec.ClonedFrom, "nodes", rec.Nodes, "tie_breaker", rec.TieBreaker)
	return rec, nil
}

// cloneReplica creates a new replica from a snapshot of another volume's
// replica on this node.
func (m *Manager) cloneReplica(name, from, snapshot string) (*replicate.Replica, error) {
	src := m.VolumeReplica(from)
	if src == nil {
		return nil, fmt.Errorf("%w: no replica of %s here", ErrNotFound, from)
	}
	return replicate.CloneReplica(filepath.Join(m.cfg.Dir, name), m.cfg.Node, m.cfg.Lease, src, snapshot)
}

// VerifyStep checks n bytes of a volume from off on every up-to-date
// replica, through a primary on this node (one is attached for the call if
// none is; a volume attached on another node is verified there). It
// returns where the next step starts (-1: the end).
func (m *Manager) VerifyStep(ctx context.Context, name string, off, n int64, throttle func(context.Context, int) error) (replicate.VerifyStats, int64, error) {
	var st replicate.VerifyStats
	next := int64(-1)
	p, err := m.attachBackground(ctx, name)
	if err != nil {
		return st, -1, err
	}
	defer m.Detach(name)
	size := p.Size()
	if off >= size {
		return st, -1, nil
	}
	n = min(n, size-off)
	st, err = p.Verify(ctx, off, n, throttle)
	if off+n < size {
		next = off + n
	}
	return st, next, err
}
