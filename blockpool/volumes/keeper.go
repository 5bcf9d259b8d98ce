package volumes

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/strata-storage/strata/blockpool/replicate"
)

// Keeping replicas in sync while no client is attached: DRBD resyncs a
// returning secondary whether or not the resource is primary anywhere.
// Here a resync needs a primary, so for every volume one node (the first
// of its replica nodes that answers, in name order) attaches it for the
// time a resync takes, when some reachable replica is behind and no other
// node holds it. A client attaching on that node meanwhile shares the
// primary; one on another node waits for the resync (it is told where the
// volume is primary).

// RunKeeper checks this node's volumes every interval until ctx ends.
func (m *Manager) RunKeeper(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		recs, err := m.Records(ctx)
		if err != nil {
			continue
		}
		m.observe(ctx, recs)
		for _, rec := range recs {
			if ctx.Err() != nil {
				return
			}
			if p := m.Primary(rec.Name); p != nil {
				m.reconcileMembers(rec, p)
			}
			if len(rec.Leaving) > 0 {
				m.finishMoves(ctx, rec)
			}
			if r := m.VolumeReplica(rec.Name); r != nil && !r.Witness() && m.Primary(rec.Name) == nil && m.shouldKeep(ctx, rec) {
				m.keep(ctx, rec.Name)
			}
		}
	}
}

// shouldKeep: this node is the volume's keeper (the first data replica's
// node, by name, that answers), no primary is anywhere, and a reachable
// replica (or the tie-breaker) is behind.
func (m *Manager) shouldKeep(ctx context.Context, rec Record) bool {
	sts := m.statuses(ctx, rec)
	nodes := append([]string(nil), rec.Nodes...)
	sort.Strings(nodes)
	var newest uint64
	for _, s := range sts {
		if s.err != nil {
			continue
		}
		if s.st.Leased {
			return false
		}
		newest = max(newest, s.st.Newest())
	}
	keeper := ""
	for _, n := range nodes {
		for i, s := range sts[:len(rec.Nodes)] {
			if rec.Nodes[i] == n && s.err == nil && keeper == "" {
				keeper = n
			}
		}
	}
	if keeper != m.cfg.Node {
		return false
	}
	for _, s := range sts {
		if s.err == nil && (s.st.Inconsistent || s.st.Gen < newest) {
			return true
		}
	}
	return false
}

// keep attaches the volume until every reachable replica is up to date
// (bounded), then detaches.
func (m *Manager) keep(ctx context.Context, name string) {
	p, err := m.attachBackground(ctx, name)
	if err != nil {
		m.log.Debug("keeper: cannot attach for a resync", "volume", name, "err", err)
		return
	}
	defer m.Detach(name)
	m.log.Info("keeper: resyncing a volume no client has attached", "volume", name)
	// The primary's first pings start the resyncs of the replicas that
	// answer; it is done when none is a sync target any more.
	start := time.Now()
	for time.Since(start) < 30*time.Minute && ctx.Err() == nil {
		select {
		case <-ctx.Done():
			return
		case <-time.After(500 * time.Millisecond):
		}
		syncing := false
		for _, mi := range p.Members() {
			if mi.State == replicate.SyncTarget {
				syncing = true
			}
		}
		if !syncing && time.Since(start) > 3*time.Second {
			return
		}
	}
}

// observe records the replica states of every volume with a replica on
// this node (asked in parallel), so its metrics and health tell of a
// replica that is down whether or not a client is attached anywhere.
func (m *Manager) observe(ctx context.Context, recs []Record) {
	views := map[string]VolumeInfo{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, rec := range recs {
		if m.VolumeReplica(rec.Name) == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			vi := m.info(ctx, rec)
			mu.Lock()
			views[rec.Name] = vi
			mu.Unlock()
		}()
	}
	wg.Wait()
	m.viewMu.Lock()
	m.views = views
	m.viewMu.Unlock()
}

// Views are the volumes with a replica on this node as the keeper last saw
// them (every keeper interval).
func (m *Manager) Views() map[string]VolumeInfo {
	m.viewMu.Lock()
	defer m.viewMu.Unlock()
	out := make(map[string]VolumeInfo, len(m.views))
	for k, v := range m.views {
		out[k] = v
	}
	return out
}
