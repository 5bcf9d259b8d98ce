package volumes

import (
	"context"
	"sync"
	"time"

	"github.com/strata-storage/strata/blockpool/replicate"
)

// ReplicaInfo is one replica in a volume listing (as `linstor resource
// list` shows resources).
type ReplicaInfo struct {
	Node  string `json:"node"`
	State string `json:"state"` // UpToDate Outdated SyncTarget Inconsistent SplitBrain Unknown
	// Diskless: the volume's tie-breaker; UpToDate means it holds the
	// current generation (it counts toward the quorum, it has no data).
	Diskless       bool    `json:"diskless,omitempty"`
	Primary        bool    `json:"primary,omitempty"`
	SyncSource     bool    `json:"sync_source,omitempty"`
	OutOfSyncBytes int64   `json:"out_of_sync_bytes"`
	SyncedBytes    int64   `json:"synced_bytes,omitempty"`
	SyncRate       float64 `json:"sync_rate_bytes_per_second,omitempty"` // of a running resync
	SyncETA        float64 `json:"sync_eta_seconds,omitempty"`
	Corruptions    int64   `json:"corruptions,omitempty"`
	Error          string  `json:"error,omitempty"`
}

// VolumeInfo is a volume with its replicas' states.
type VolumeInfo struct {
	Record
	Primary  string           `json:"primary,omitempty"` // node it is attached on
	Replicas []ReplicaInfo    `json:"replicas"`
	Stats    *replicate.Stats `json:"stats,omitempty"` // of the primary, when it is on this node
	// Warnings name what the volume's layout cannot survive.
	Warnings []string `json:"warnings,omitempty"`
}

// layoutWarnings says what a volume's placement cannot survive.
func layoutWarnings(rec Record) []string {
	if len(rec.Nodes) == 2 && rec.TieBreaker == "" {
		// A majority of two is both; a tie-breaker is placed when a
		// third node has a volume pool (pickTieBreaker).
		return []string{"2 replicas and no tie-breaker (no third node with a volume pool to place one on): writes stop while either replica is down (the quorum of 2 is 2); add a node or use 3 replicas where writes must go on"}
	}
	return nil
}

type replicaStatus struct {
	st  replicate.Status
	err error
}

// statuses asks every replica of a volume (rec.Members: the tie-breaker
// last) for its status, in parallel.
func (m *Manager) statuses(ctx context.Context, rec Record) []replicaStatus {
	out := make([]replicaStatus, len(rec.Members()))
	var wg sync.WaitGroup
	for i, node := range rec.Members() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			var link replicate.Link
			if node == m.cfg.Node {
				r := m.VolumeReplica(rec.Name)
				if r == nil {
					out[i].err = ErrNodeDown
					return
				}
				link = replicate.LocalLink{R: r}
			} else if m.cfg.Cluster != nil {
				link = m.cfg.Cluster.Link(node, rec.Name)
			} else {
				out[i].err = ErrNodeDown
				return
			}
			out[i].st, out[i].err = link.Hello(ctx, 0, "")
		}()
	}
	wg.Wait()
	return out
}

// Info reports a volume and its replicas. The primary's own view is exact
// when it runs on this node; otherwise states are derived from what each
// replica reports (its generation against the newest one seen).
func (m *Manager) Info(ctx context.Context, name string) (VolumeInfo, error) {
	rec, err := m.record(ctx, name)
	if err != nil {
		return VolumeInfo{}, err
	}
	return m.info(ctx, rec), nil
}

func (m *Manager) info(ctx context.Context, rec Record) VolumeInfo {
	vi := VolumeInfo{Record: rec, Warnings: layoutWarnings(rec)}
	sts := m.statuses(ctx, rec)
	var newest uint64
	var newestSt replicate.Status
	for _, s := range sts {
		if s.err == nil {
			if !s.st.Inconsistent && s.st.Gen >= newestSt.Gen {
				newestSt = s.st
			}
			newest = max(newest, s.st.Newest())
			if s.st.Leased {
				vi.Primary = s.st.Primary
			}
		}
	}
	if p := m.Primary(rec.Name); p != nil {
		vi.Primary = m.cfg.Node
		st := p.Stats()
		vi.Stats = &st
		for i, mi := range p.Members() {
			ri := ReplicaInfo{Node: mi.Node, State: mi.State, Diskless: mi.Diskless, SyncSource: mi.SyncSource, OutOfSyncBytes: mi.OutOfSyncBytes, SyncedBytes: mi.SyncedBytes,
				SyncRate: mi.SyncRate, SyncETA: mi.SyncETA, Primary: mi.Node == m.cfg.Node}
			if i >= len(sts) {
				// a member the record no longer has (being removed)
			} else if sts[i].err == nil {
				ri.Corruptions = sts[i].st.Corruptions
			} else {
				ri.Error = sts[i].err.Error()
			}
			vi.Replicas = append(vi.Replicas, ri)
		}
		return vi
	}
	for i, node := range rec.Members() {
		ri := ReplicaInfo{Node: node, Primary: node == vi.Primary, Diskless: node == rec.TieBreaker}
		s := sts[i]
		switch {
		case s.err != nil:
			ri.State, ri.Error = replicate.Unknown, s.err.Error()
		case s.st.Inconsistent && s.st.SyncGen == newest && vi.Primary != "":
			ri.State = replicate.SyncTarget
		case s.st.Inconsistent:
			ri.State = replicate.Inconsistent
		case s.st.Gen == newest:
			ri.State = replicate.UpToDate
		case replicate.Diverged(newestSt, s.st):
			ri.State = replicate.SplitBrain
		default:
			ri.State = replicate.Outdated
		}
		if s.err == nil {
			ri.Corruptions = s.st.Corruptions
		}
		// What the others' bitmaps hold for it.
		for _, o := range sts {
			if o.err == nil {
				if tr, ok := o.st.Tracking[node]; ok {
					n := tr.Blocks * replicate.BlockSize
					if tr.Full {
						n = rec.Size
					}
					ri.OutOfSyncBytes = max(ri.OutOfSyncBytes, n)
				}
			}
		}
		vi.Replicas = append(vi.Replicas, ri)
	}
	return vi
}

// List reports every volume.
func (m *Manager) List(ctx context.Context) ([]VolumeInfo, error) {
	recs, err := m.Records(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]VolumeInfo, len(recs))
	var wg sync.WaitGroup
	for i, rec := range recs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = m.info(ctx, rec)
		}()
	}
	wg.Wait()
	return out, nil
}
