package objectstore

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/strata-storage/strata/objectstore/shard"
)

// Repair of what down devices missed. A write that commits without some of
// its devices (offline, unreachable, failing) records a hint for the key in
// the node's local store before it is acknowledged; RunHints retries every
// hinted key until each device of its placement holds the agreed version.
// Verify walks every object and compares where its records are with where
// the ring says they belong; with repair it also fixes what it finds.

func online(d Device) bool { return d != nil && d.Online() }

func hintKey(bucket, key string) string { return bucket + "\x00" + key }

// hint queues bucket/key for repair; it is durable before the write that
// needed it is acknowledged.
func (s *Store) hint(ctx context.Context, bucket, key string) {
	if s.cfg.Hints == nil {
		return
	}
	if err := s.cfg.Hints.Put(context.WithoutCancel(ctx), hintKey(bucket, key), []byte(time.Now().UTC().Format(time.RFC3339))); err != nil {
		s.log.Error("could not record a repair hint", "bucket", bucket, "key", key, "err", err)
		return
	}
	s.metrics.hints.WithLabelValues("queued").Inc()
}

// PendingHints counts the keys waiting for repair.
func (s *Store) PendingHints(ctx context.Context) (int, error) {
	if s.cfg.Hints == nil {
		return 0, nil
	}
	kvs, err := s.cfg.Hints.List(ctx, "")
	return len(kvs), err
}

// RunHints replays hints every interval until ctx ends.
func (s *Store) RunHints(ctx context.Context, interval time.Duration) {
	if s.cfg.Hints == nil || interval <= 0 {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
		s.ReplayHints(ctx)
	}
}

// ReplayHints tries every hinted key once and returns how many are done.
func (s *Store) ReplayHints(ctx context.Context) int {
	kvs, err := s.cfg.Hints.List(ctx, "")
	if err != nil {
		s.log.Warn("list repair hints", "err", err)
		return 0
	}
	done := 0
	for _, kv := range kvs {
		if ctx.Err() != nil {
			break
		}
		bucket, key, ok := strings.Cut(kv.Key, "\x00")
		if !ok {
			s.cfg.Hints.Delete(ctx, kv.Key)
			continue
		}
		rep, err := s.RepairObject(ctx, bucket, key)
		if err != nil {
			s.log.Debug("repair hint not done", "bucket", bucket, "key", key, "err", err)
			continue
		}
		if rep.Offline > 0 {
			continue // a device is still away: keep the hint
		}
		if err := s.cfg.Hints.Delete(ctx, kv.Key); err == nil {
			done++
			s.metrics.hints.WithLabelValues("replayed").Inc()
		}
	}
	return done
}

// RepairReport counts the shard records of one object or of a whole walk.
type RepairReport struct {
	Objects  int `json:"objects"`
	Missing  int `json:"missing"`  // placement slots without the agreed record
	Extra    int `json:"extra"`    // records where the ring puts none, or of no agreed version
	Offline  int `json:"offline"`  // missing slots on devices that cannot be reached now
	Repaired int `json:"repaired"` // records rewritten or removed by repair
	// Unreadable objects have records but no read quorum.
	Unreadable int      `json:"unreadable"`
	Problems   []string `json:"problems,omitempty"` // the first few, for the operator
}

func (r *RepairReport) add(o RepairReport) {
	r.Objects += o.Objects
	r.Missing += o.Missing
	r.Extra += o.Extra
	r.Offline += o.Offline
	r.Repaired += o.Repaired
	r.Unreadable += o.Unreadable
	for _, p := range o.Problems {
		if len(r.Problems) < 20 {
			r.Problems = append(r.Problems, p)
		}
	}
}

// badSlots returns the shard indexes whose device lacks a usable record of
// ref.
func badSlots(devs []Device, recs []*Record, ref *Record) []int {
	var bad []int
	for i, r := range recs {
		ok := r != nil && r.sameVersion(ref) && r.ShardIndex == i
		for pi := 0; ok && pi < len(r.Parts); pi++ {
			p := &r.Parts[pi]
			ok = !p.Missing && (devs[i] == nil || devs[i].Holds(&p.Loc))
		}
		if !ok {
			bad = append(bad, i)
		}
	}
	return bad
}

// RepairObject brings every device of an object's placement to the agreed
// version of its current record: shards are rebuilt onto devices that lack
// them. Devices that cannot be reached are counted as Offline.
func (s *Store) RepairObject(ctx context.Context, bucket, key string) (RepairReport, error) {
	rep := RepairReport{Objects: 1}
	devs := s.placement(bucket, key)
	okey := objectKey(bucket, key)
	set := s.readSet(ctx, devs, okey)
	recs := set.recs
	q := quorumRecord(recs)
	if q < 0 {
		for i, r := range recs {
			if r != nil {
				rep.Extra++
			}
			if !set.answered[i] {
				rep.Offline++ // it may hold a leftover: not done yet
			}
		}
		if rep.Extra == 0 || rep.Offline > 0 {
			return rep, nil
		}
		n, err := s.dropLeftovers(ctx, bucket, key, devs)
		rep.Repaired += n
		if n < rep.Extra {
			rep.Unreadable = 1
		}
		return rep, err
	}
	ref := recs[q]
	var targets []int
	for _, i := range badSlots(devs, recs, ref) {
		rep.Missing++
		if !online(devs[i]) || !set.answered[i] {
			rep.Offline++
			continue
		}
		targets = append(targets, i)
	}
	if len(targets) == 0 {
		return rep, nil
	}
	if ref.DeleteMarker {
		n, err := s.copyMarker(ctx, bucket, key, devs, ref, targets)
		rep.Repaired += n
		return rep, err
	}
	n, err := s.healObject(ctx, healRequest{bucket: bucket, key: key, writeID: ref.WriteID, shards: targets})
	rep.Repaired += n
	if err == nil && n < len(targets) {
		err = fmt.Errorf("%s/%s: repaired %d of %d shards", bucket, key, n, len(targets))
	}
	return rep, err
}

// dropLeftovers removes the records of a key that has no read quorum when
// they can only be leftovers: every device of the placement answered, and
// no version is held by more than M of them. A delete (or an overwrite)
// that a down device missed leaves at most M such records, since it was
// acknowledged on K; an object that lost data has more than M and is
// left alone for an operator. The key's write lock is held, so no write
// in progress is mistaken for a leftover.
func (s *Store) dropLeftovers(ctx context.Context, bucket, key string, devs []Device) (int, error) {
	unlock, err := s.lockKey(ctx, bucket, key)
	if err != nil {
		return 0, err
	}
	defer unlock()
	okey := objectKey(bucket, key)
	set := s.readSet(ctx, devs, okey)
	count := map[[16]byte]int{}
	for i, d := range devs {
		if d == nil || !set.answered[i] || (set.raw[i] != nil && set.recs[i] == nil) {
			return 0, nil // a device did not answer, or holds a corrupt record
		}
		if r := set.recs[i]; r != nil {
			count[r.WriteID]++
			if count[r.WriteID] > s.ring.M {
				return 0, nil
			}
		}
	}
	dropped := 0
	for i, r := range set.recs {
		if r == nil {
			continue
		}
		if err := devs[i].Commit(ctx, s.putIf(okey, nil, set.raw[i])); err != nil {
			return dropped, err
		}
		dev, rec := devs[i], r
		s.freeLater(r.WriteID, func() { s.freeRecordShards(dev, rec) })
		dropped++
	}
	return dropped, nil
}

// copyMarker writes a delete marker's record to devices that lack it.
func (s *Store) copyMarker(ctx context.Context, bucket, key string, devs []Device, ref *Record, targets []int) (int, error) {
	okey := objectKey(bucket, key)
	mu, err := s.lockKey(ctx, bucket, key)
	if err != nil {
		return 0, err
	}
	defer mu()
	set := s.readSet(ctx, devs, okey)
	cur := set.recs
	if q := quorumRecord(cur); q < 0 || !cur[q].sameVersion(ref) {
		return 0, nil // changed meanwhile
	}
	n := 0
	for _, i := range targets {
		r := *ref
		r.ShardIndex = i
		if err := devs[i].Commit(ctx, s.putIf(okey, r.MarshalBinary(), set.raw[i])); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// Verify walks the current record of every object in every bucket and
// checks that each device the ring names holds it and no other device
// does. With repair it rebuilds what is missing and removes records that
// the ring places elsewhere once the placement holds the object in full.
// Every device must be reachable.
func (s *Store) Verify(ctx context.Context, repair bool) (RepairReport, error) {
	return s.verify(ctx, repair, true)
}

// VerifyPlacement is Verify that rebuilds what is missing but leaves
// records off the placement to the device scrub, which collects them only
// after a grace period (a rebalance may still be moving them).
func (s *Store) VerifyPlacement(ctx context.Context) (RepairReport, error) {
	return s.verify(ctx, true, false)
}

func (s *Store) verify(ctx context.Context, repair, dropExtra bool) (RepairReport, error) {
	var total RepairReport
	l := s.current.Load()
	if repair && len(l.sources) > 0 {
		return total, ErrMoving
	}
	counts := l.ring.SlotCounts()
	for i, d := range l.devices {
		// A device the ring gives no slots (failed and emptied, say) may
		// be gone; every other one must answer.
		if (d == nil || !online(d)) && counts[i] > 0 {
			return total, fmt.Errorf("device %s: %w; verify needs every device", l.ring.Devices[i].Name, shard.ErrOffline)
		}
	}
	for _, b := range s.ListBuckets(ctx) {
		rep, err := s.verifyBucket(ctx, l, b.Name, repair, dropExtra)
		total.add(rep)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

func (s *Store) verifyBucket(ctx context.Context, l *layout, bucket string, repair, dropExtra bool) (RepairReport, error) {
	var rep RepairReport
	lower := objectKey(bucket, "")
	upper := append(bytes.Clone(lower[:len(lower)-1]), 1)
	m := &mergeIter{n: len(l.devices)}
	for i, d := range l.devices {
		if d == nil || !online(d) {
			continue // holds no slots (checked by verify)
		}
		it, err := d.Iter(ctx, lower, upper)
		if err != nil {
			m.close() // the error of opening is the one to report
			return rep, fmt.Errorf("device %s: %w", d.Name(), err)
		}
		m.its = append(m.its, it)
		m.devs = append(m.devs, i)
	}
	defer m.close()
	raw := make([][]byte, len(l.devices))
	for {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		k, ok := m.next(raw)
		if !ok {
			break
		}
		key := string(k[len(lower):])
		one := s.verifyKey(l, bucket, key, raw)
		if repair && (one.Missing > 0 || dropExtra && one.Extra > 0) {
			found := one
			if !dropExtra {
				found.Extra = 0
			}
			fixed, err := s.repairKey(ctx, l, bucket, key, raw, found)
			one.Repaired = fixed
			if err != nil {
				one.Problems = append(one.Problems, fmt.Sprintf("%s/%s: repair: %v", bucket, key, err))
			}
		}
		rep.add(one)
	}
	for _, it := range m.its {
		if err := it.Close(); err != nil {
			return rep, fmt.Errorf("listing records: %w", err)
		}
	}
	m.its = nil
	return rep, nil
}

// verifyKey judges one key from the records every device holds for it
// (raw, indexed by ring device).
func (s *Store) verifyKey(l *layout, bucket, key string, raw [][]byte) RepairReport {
	rep := RepairReport{Objects: 1}
	slots := l.ring.Slots(l.ring.Partition(bucket, key))
	recs := make([]*Record, len(raw))
	for i, b := range raw {
		if b != nil {
			recs[i], _ = UnmarshalRecord(b)
		}
	}
	placed := make([]*Record, len(slots))
	devs := make([]Device, len(slots))
	inPlacement := map[int]bool{}
	for i, d := range slots {
		placed[i], devs[i] = recs[d], l.devices[d]
		inPlacement[int(d)] = true
	}
	q := quorumRecord(placed)
	if q < 0 {
		for _, r := range recs {
			if r != nil {
				rep.Extra++
			}
		}
		rep.Unreadable = 1
		rep.Problems = append(rep.Problems, fmt.Sprintf("%s/%s: %d records, no read quorum in its placement", bucket, key, rep.Extra))
		return rep
	}
	if bad := badSlots(devs, placed, placed[q]); len(bad) > 0 {
		rep.Missing += len(bad)
		rep.Problems = append(rep.Problems, fmt.Sprintf("%s/%s: shards %v missing", bucket, key, bad))
	}
	for d, r := range recs {
		if r != nil && !inPlacement[d] {
			rep.Extra++
			dev := l.ring.Devices[d]
			rep.Problems = append(rep.Problems, fmt.Sprintf("%s/%s: record on %s/%s, which the ring does not place it on", bucket, key, dev.Node, dev.Name))
		}
	}
	return rep
}

// repairKey rebuilds missing shards, then drops records off the placement.
func (s *Store) repairKey(ctx context.Context, l *layout, bucket, key string, raw [][]byte, found RepairReport) (int, error) {
	fixed := 0
	if found.Missing > 0 || found.Unreadable > 0 {
		rep, err := s.RepairObject(ctx, bucket, key)
		fixed += rep.Repaired
		if err != nil || rep.Missing != rep.Repaired {
			return fixed, err
		}
	}
	if found.Extra == 0 || found.Unreadable > 0 {
		return fixed, nil // never drop the only copies of an unreadable object
	}
	slots := l.ring.Slots(l.ring.Partition(bucket, key))
	inPlacement := map[int]bool{}
	for _, d := range slots {
		inPlacement[int(d)] = true
	}
	okey := objectKey(bucket, key)
	unlock, err := s.lockKey(ctx, bucket, key)
	if err != nil {
		return fixed, err
	}
	defer unlock()
	for d, b := range raw {
		if b == nil || inPlacement[d] {
			continue
		}
		dev := l.devices[d]
		if err := dev.Commit(ctx, s.putIf(okey, nil, b)); err != nil {
			return fixed, err
		}
		if r, err := UnmarshalRecord(b); err == nil {
			s.freeLater(r.WriteID, func() { s.freeRecordShards(dev, r) })
		}
		fixed++
	}
	return fixed, nil
}
