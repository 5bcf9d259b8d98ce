package volumes

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/strata-storage/strata/blockpool/replicate"
)

// Moving replicas off nodes that leave (drained, or in a failed zone), as
// LINSTOR's node evacuate does: a new replica is placed by the create
// rules (another zone where one is free, else another node) and added to
// the volume next to the leaving one; the primary that next opens the
// volume (a client's, or the keeper's when none is attached) resyncs it
// in full; once it is up to date at the newest generation the leaving
// replica is dropped from the record and deleted (a node that is down
// deletes its copy when it returns, see Reconcile).

// Evacuation is one replica being replaced.
type Evacuation struct {
	Volume string `json:"volume"`
	From   string `json:"from"`
	To     string `json:"to"`
}

// Evacuate starts replacing every replica on the leaving nodes. Volumes
// already being moved off them are left as they are.
func (m *Manager) Evacuate(ctx context.Context, leaving []string) ([]Evacuation, error) {
	recs, err := m.Records(ctx)
	if err != nil {
		return nil, err
	}
	all, err := m.nodes(ctx)
	if err != nil {
		return nil, err
	}
	var out []Evacuation
	var errs []error
	for _, rec := range recs {
		for _, from := range rec.Nodes {
			if !contains(leaving, from) || contains(rec.Leaving, from) {
				continue
			}
			to, err := m.replace(ctx, rec.Name, from, leaving, all)
			if err != nil {
				errs = append(errs, fmt.Errorf("volume %s: %w", rec.Name, err))
				continue
			}
			out = append(out, Evacuation{Volume: rec.Name, From: from, To: to})
			if rec, err = m.record(ctx, rec.Name); err != nil {
				errs = append(errs, err)
				break
			}
		}
	}
	return out, errors.Join(errs...)
}

// replace adds a new replica of name beside from and marks from leaving.
func (m *Manager) replace(ctx context.Context, name, from string, leaving []string, all []NodeInfo) (string, error) {
	rec, err := m.record(ctx, name)
	if err != nil {
		return "", err
	}
	to, err := pickReplacement(all, rec, leaving)
	if err != nil {
		return "", err
	}
	if err := m.createOn(ctx, to, name, rec.Size); err != nil {
		return "", fmt.Errorf("create the replacement on %s: %w", to, err)
	}
	_, err = m.updateRecord(ctx, name, func(r *Record) error {
		if !contains(r.Nodes, from) {
			return fmt.Errorf("%w: the replica on %s is gone meanwhile", ErrInvalid, from)
		}
		r.Nodes = append(r.Nodes, to)
		r.Leaving = append(r.Leaving, from)
		return nil
	})
	if err != nil {
		m.deleteOn(context.Background(), to, name)
		return "", err
	}
	m.log.Info("volume replica moving", "volume", name, "from", from, "to", to)
	return to, nil
}

// pickReplacement is an up node with a pool, not holding the volume and
// not leaving: in a zone none of the staying replicas is in if there is
// one, the most free space first.
func pickReplacement(all []NodeInfo, rec Record, leaving []string) (string, error) {
	zones := map[string]bool{}
	zoneOf := map[string]string{}
	for _, n := range all {
		zoneOf[n.Name] = n.Zone
	}
	for _, n := range rec.Nodes {
		if !contains(rec.Leaving, n) && !contains(leaving, n) {
			zones[zoneOf[n]] = true
		}
	}
	var cands []NodeInfo
	for _, n := range all {
		if n.Up && n.Pool != nil && n.Pool.Free >= rec.Size/64 && !contains(rec.Members(), n.Name) && !contains(leaving, n.Name) {
			cands = append(cands, n)
		}
	}
	sort.SliceStable(cands, func(i, j int) bool {
		a, b := cands[i], cands[j]
		if zones[a.Zone] != zones[b.Zone] {
			return !zones[a.Zone]
		}
		return a.Pool.Free > b.Pool.Free
	})
	if len(cands) == 0 {
		return "", fmt.Errorf("%w: no up node without a replica of %s is left", ErrPlacement, rec.Name)
	}
	return cands[0].Name, nil
}

// reconcileMembers brings a primary attached here to the record's
// replicas without detaching its clients: members no longer in the record
// go, leaving members that are disconnected go (so the quorum counts only
// replicas that can answer), and new replicas join (resynced in full).
func (m *Manager) reconcileMembers(rec Record, p *replicate.Primary) {
	members := p.MemberNodes()
	for _, n := range members {
		if !contains(rec.Members(), n) || contains(rec.Leaving, n) && !p.Connected(n) {
			p.RemoveMember(n)
		}
	}
	for _, n := range rec.Members() {
		if contains(members, n) || contains(rec.Leaving, n) {
			continue
		}
		if n == m.cfg.Node {
			if r := m.VolumeReplica(rec.Name); r != nil {
				p.AddMember(replicate.LocalLink{R: r})
			}
			continue
		}
		if m.cfg.Cluster != nil {
			p.AddMember(m.cfg.Cluster.Link(n, rec.Name))
		}
	}
}

// finishMoves drops leaving replicas of rec once every staying one is
// reachable and up to date at the newest generation. One node does it:
// the first staying node (by name) that answers.
func (m *Manager) finishMoves(ctx context.Context, rec Record) {
	sts := m.statuses(ctx, rec)
	var staying []string
	var newest uint64
	for i, n := range rec.Nodes {
		if sts[i].err == nil {
			newest = max(newest, sts[i].st.Newest())
		}
		if !contains(rec.Leaving, n) {
			staying = append(staying, n)
		}
	}
	sort.Strings(staying)
	finisher := ""
	for _, n := range staying {
		for i, s := range sts[:len(rec.Nodes)] {
			if rec.Nodes[i] == n && s.err == nil && finisher == "" {
				finisher = n
			}
		}
	}
	if finisher != m.cfg.Node {
		return
	}
	for i, n := range rec.Nodes {
		if contains(rec.Leaving, n) {
			continue
		}
		if s := sts[i]; s.err != nil || s.st.Inconsistent || s.st.Gen != newest || newest == 0 {
			return // a staying replica is not current yet
		}
	}
	leaving := rec.Leaving
	_, err := m.updateRecord(ctx, rec.Name, func(r *Record) error {
		var keep []string
		for _, n := range r.Nodes {
			if !contains(leaving, n) {
				keep = append(keep, n)
			}
		}
		r.Nodes, r.Leaving = keep, nil
		return nil
	})
	if err != nil {
		m.log.Warn("volume move: cannot update the record", "volume", rec.Name, "err", err)
		return
	}
	for _, n := range leaving {
		if err := m.deleteOn(ctx, n, rec.Name); err != nil {
			m.log.Info("volume move: the old replica is deleted when its node returns", "volume", rec.Name, "node", n, "err", err)
		}
	}
	m.log.Info("volume replica moved", "volume", rec.Name, "left", leaving, "nodes", staying)
}
