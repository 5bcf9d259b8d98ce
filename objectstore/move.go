package objectstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/strata-storage/strata/objectstore/shard"
	"github.com/strata-storage/strata/ring"
)

// Moving shards between rings. While a rebalance runs, the ring in force
// (the target) places new writes, and older rings (sources) still place
// the records not moved yet. Reads look at a source's device for a slot
// whose target device lacks the record, so data is found under either.
// The rebalancer moves records one at a time: copy to the target device,
// verify the copy, commit it there, then remove the source; a record whose
// source is gone is rebuilt by erasure decoding instead.

// Placement is a ring with the devices serving its device list.
type Placement struct {
	Ring    *ring.Ring
	Devices []Device
}

// SetSources names the rings whose placement may still hold data (oldest
// first); nil when no rebalance is under way. They must have the ring's
// partition power and width.
func (s *Store) SetSources(src []Placement) error {
	cur := s.current.Load()
	l := &layout{ring: cur.ring, devices: cur.devices}
	for _, p := range src {
		if len(p.Devices) != len(p.Ring.Devices) {
			return fmt.Errorf("objectstore: %d devices for a source ring of %d", len(p.Devices), len(p.Ring.Devices))
		}
		if p.Ring.PartPower != cur.ring.PartPower || p.Ring.Width() != cur.ring.Width() || !p.Ring.Built() {
			return fmt.Errorf("objectstore: source ring v%d has another partition power or width", p.Ring.Version)
		}
		l.sources = append(l.sources, &layout{ring: p.Ring, devices: p.Devices})
	}
	s.current.Store(l)
	return nil
}

// Moving reports whether source rings are set (a rebalance is under way).
func (s *Store) Moving() bool { return len(s.current.Load().sources) > 0 }

// withSources fills, from the newest source ring first, the slots of set
// whose target device holds no record of key (or did not answer) with the
// record the source's device for that slot holds. It returns the devices
// to read each slot from (devs itself when nothing was filled).
func (s *Store) withSources(ctx context.Context, bucket, key string, rkey []byte, devs []Device, set recordSet) []Device {
	l := s.current.Load()
	if len(l.sources) == 0 {
		return devs
	}
	out := devs
	for si := len(l.sources) - 1; si >= 0; si-- {
		src := l.sources[si]
		slots := src.ring.Slots(src.ring.Partition(bucket, key))
		for i, d := range slots {
			if i >= len(devs) || set.recs[i] != nil || (set.answered[i] && set.raw[i] != nil) {
				continue
			}
			sd := src.devices[d]
			if sd == nil || sd == out[i] || !online(sd) {
				continue
			}
			r, raw, ok := s.readRecord(ctx, sd, rkey)
			if !ok || r == nil || r.ShardIndex != i {
				continue
			}
			if &out[0] == &devs[0] {
				out = append([]Device(nil), devs...)
			}
			out[i] = sd
			set.recs[i], set.raw[i], set.answered[i] = r, raw, true
		}
	}
	return out
}

// awaitingMove reports whether slot i of bucket/key is still to come from
// a source ring's device that cannot be read now (down, or failed): not
// damage for heal-on-read to repair, but a move or rebuild the rebalancer
// does.
func (s *Store) awaitingMove(bucket, key string, i int) bool {
	l := s.current.Load()
	if len(l.sources) == 0 {
		return false
	}
	tslots := l.ring.Slots(l.ring.Partition(bucket, key))
	if i >= len(tslots) {
		return false
	}
	tid := l.ring.Devices[tslots[i]].ID
	for _, src := range l.sources {
		d := src.ring.Slots(src.ring.Partition(bucket, key))[i]
		if src.ring.Devices[d].ID != tid && !online(src.devices[d]) {
			return true
		}
	}
	return false
}

// MoveOutcome is what moving one record did.
type MoveOutcome int

const (
	// MoveCopied: the record was copied, verified and its source removed.
	MoveCopied MoveOutcome = iota
	// MoveFound: the target already held it (a move interrupted after its
	// commit); the source was removed.
	MoveFound
	// MoveStale: the source held a version that is no longer the object's
	// (overwritten or deleted during the rebalance); it was removed.
	MoveStale
	// MoveRebuilt: the target's shard was rebuilt by erasure decoding.
	MoveRebuilt
	// MoveDeferred: not decidable now (a device did not answer, or the
	// record changed meanwhile); try again later.
	MoveDeferred
	// MoveLost: the shard cannot be moved or rebuilt (its source is gone
	// and it is a part of an unfinished upload, which clients resend).
	MoveLost
)

var moveOutcomeNames = [...]string{"copied", "found", "stale", "rebuilt", "deferred", "lost"}

func (o MoveOutcome) String() string { return moveOutcomeNames[o] }

// MoveOptions tune a move.
type MoveOptions struct {
	// Throttle is called with the size of every shard block before it is
	// written to the target; it may sleep (a bandwidth limit) or fail.
	Throttle func(ctx context.Context, n int) error
}

// DeviceRecord is one record found on a device, with the object that
// places it (bucket and key: the upload's for parts).
type DeviceRecord struct {
	Key, Raw       []byte
	Rec            *Record
	Bucket, Object string
}

// RecordScanner walks a device's records and names the object placing
// each; parts of uploads are placed by their upload, whose record comes
// first in key order.
type RecordScanner struct {
	uploads map[string][2]string
}

// NewRecordScanner returns a scanner; one per walk of a device.
func NewRecordScanner() *RecordScanner { return &RecordScanner{uploads: map[string][2]string{}} }

// Decode names the record at key. ok is false for what is not a shard
// record or cannot be placed (a part of an upload not seen).
func (sc *RecordScanner) Decode(key, raw []byte) (DeviceRecord, bool) {
	if len(key) == 0 {
		return DeviceRecord{}, false
	}
	rec, err := UnmarshalRecord(raw)
	if err != nil {
		return DeviceRecord{}, false
	}
	dr := DeviceRecord{Key: bytes.Clone(key), Raw: bytes.Clone(raw), Rec: rec}
	rest := string(key[1:])
	switch key[0] {
	case nsObject:
		dr.Bucket, dr.Object, _ = strings.Cut(rest, "\x00")
	case nsNoncurrent, nsUpload:
		parts := strings.SplitN(rest, "\x00", 3)
		if len(parts) != 3 {
			return DeviceRecord{}, false
		}
		dr.Bucket, dr.Object = parts[0], parts[1]
		if key[0] == nsUpload {
			sc.uploads[parts[2]] = [2]string{parts[0], parts[1]}
		}
	case nsPart:
		id, _, _ := strings.Cut(rest, "\x00")
		bk, ok := sc.uploads[id]
		if !ok {
			return DeviceRecord{}, false
		}
		dr.Bucket, dr.Object = bk[0], bk[1]
	default:
		return DeviceRecord{}, false
	}
	return dr, dr.Bucket != ""
}

// placementOf returns the target ring's devices for bucket/key, with a
// source's device for slots the target lacks, and the record set of rkey
// read from them.
func (s *Store) placementOf(ctx context.Context, bucket, key string, rkey []byte) ([]Device, []Device, recordSet) {
	place := s.placement(bucket, key)
	set := s.readSet(ctx, place, rkey)
	return place, s.withSources(ctx, bucket, key, rkey, place, set), set
}

// agreed reports whether dr is a record of the version of its key that
// the placement (with sources) agrees on. decided is false when that
// cannot be known now (a device did not answer and no version has a
// quorum).
func (s *Store) agreed(dr DeviceRecord, set recordSet) (ok, decided bool) {
	if q := quorumRecord(set.recs); q >= 0 {
		return set.recs[q].sameVersion(dr.Rec), true
	}
	n := 0
	for i, r := range set.recs {
		if !set.answered[i] {
			return false, false
		}
		if r != nil && r.sameVersion(dr.Rec) {
			n++
		}
	}
	// Every device answered and no version has K: records of this one
	// are leftovers of a delete or overwrite (at most M of them), unless
	// more than M remain, which is damage for an operator.
	return false, n <= s.ring.M
}

// MoveRecord moves the record dr of shard index i from device src (which
// holds it) to dst, the target ring's device for that slot.
func (s *Store) MoveRecord(ctx context.Context, dr DeviceRecord, i int, src, dst Device, opt MoveOptions) (MoveOutcome, int64, error) {
	if dr.Rec.ShardIndex != i {
		return MoveDeferred, 0, fmt.Errorf("record %s on %s is shard %d, not %d", recordName(dr.Key, dr.Rec), src.Name(), dr.Rec.ShardIndex, i)
	}
	if !online(dst) {
		return MoveDeferred, 0, fmt.Errorf("device %s: %w", dst.Name(), shard.ErrOffline)
	}
	place, _, set := s.placementOf(ctx, dr.Bucket, dr.Object, dr.Key)
	if i >= len(place) || place[i] != dst {
		return MoveDeferred, 0, fmt.Errorf("device %s is not slot %d of %s in the ring in force", dst.Name(), i, recordName(dr.Key, dr.Rec))
	}
	// The target's own record (set may hold the source's in its slot).
	have, _, ok := s.readRecord(ctx, dst, dr.Key)
	if !ok {
		return MoveDeferred, 0, fmt.Errorf("device %s did not answer", dst.Name())
	}
	if have != nil && have.sameVersion(dr.Rec) && have.ShardIndex == i && holdsAll(dst, have) {
		if err := s.verifyRecord(ctx, dst, have); err != nil {
			return MoveDeferred, 0, err
		}
		return s.dropSource(ctx, dr, src, MoveFound)
	}
	if ok, decided := s.agreed(dr, set); !decided {
		return MoveDeferred, 0, nil
	} else if !ok {
		return s.dropSource(ctx, dr, src, MoveStale)
	}
	copied, n, err := s.copyRecord(ctx, dr.Rec, src, dst, opt)
	if err != nil {
		return MoveDeferred, 0, err
	}
	if err := s.verifyRecord(ctx, dst, copied); err != nil {
		s.freeRecordShards(dst, copied)
		return MoveDeferred, 0, fmt.Errorf("copy of %s failed verification: %w", recordName(dr.Key, dr.Rec), err)
	}
	unlock, err := s.lockKey(ctx, dr.Bucket, dr.Object)
	if err != nil {
		s.freeRecordShards(dst, copied)
		return MoveDeferred, 0, err
	}
	defer unlock()
	_, _, now := s.placementOf(ctx, dr.Bucket, dr.Object, dr.Key)
	old, oldRaw, answered := s.readRecord(ctx, dst, dr.Key)
	if ok, decided := s.agreed(dr, now); !ok || !decided || !answered {
		s.freeRecordShards(dst, copied)
		return MoveDeferred, 0, nil // overwritten or deleted meanwhile: decide again
	}
	err = dst.Commit(ctx, shard.Op{Key: dr.Key, Value: copied.MarshalBinary(), Check: true, Expect: oldRaw})
	if err != nil {
		s.freeRecordShards(dst, copied)
		if errors.Is(err, shard.ErrConflict) {
			return MoveDeferred, 0, nil
		}
		return MoveDeferred, 0, err
	}
	if old != nil {
		s.freeLater(old.WriteID, func() { s.freeRecordShards(dst, old) })
	}
	out, _, err := s.dropSourceLocked(ctx, dr, src, MoveCopied)
	return out, n, err
}

func holdsAll(d Device, r *Record) bool {
	for pi := range r.Parts {
		if p := &r.Parts[pi]; !p.Missing && !d.Holds(&p.Loc) {
			return false
		}
	}
	return true
}

// copyRecord copies the shard streams of rec from src to dst and returns
// the record naming the copies, and the bytes written.
func (s *Store) copyRecord(ctx context.Context, rec *Record, src, dst Device, opt MoveOptions) (*Record, int64, error) {
	out := *rec
	out.Parts = append([]Part(nil), rec.Parts...)
	var n int64
	if rec.HasInline {
		if opt.Throttle != nil {
			if err := opt.Throttle(ctx, len(rec.Inline)); err != nil {
				return nil, 0, err
			}
		}
		return &out, int64(len(rec.Inline)), nil
	}
	buf := s.getBuf(&s.shards, s.shardBufSize())
	defer s.putBuf(&s.shards, buf, s.shardBufSize())
	done := 0
	fail := func(err error) (*Record, int64, error) {
		for _, p := range out.Parts[:done] {
			if !p.Missing {
				dst.Free(context.WithoutCancel(ctx), p.Loc)
			}
		}
		return nil, 0, err
	}
	for pi := range out.Parts {
		p := &out.Parts[pi]
		if p.Missing {
			done++
			continue
		}
		if !src.Holds(&p.Loc) {
			return fail(fmt.Errorf("device %s: %w (its volume was replaced)", src.Name(), shard.ErrMissing))
		}
		w := dst.NewWriter(ctx, p.Loc.Size())
		for b := 0; b < p.Loc.Blocks(); b++ {
			size := shard.HeaderSize + p.Loc.DataLen(b)
			if cap(buf) < size {
				buf = make([]byte, size)
			}
			if opt.Throttle != nil {
				if err := opt.Throttle(ctx, size-shard.HeaderSize); err != nil {
					w.Abort()
					return fail(err)
				}
			}
			if _, err := src.ReadBlock(ctx, &p.Loc, b, buf[:size]); err != nil {
				w.Abort()
				return fail(fmt.Errorf("read %s: %w", src.Name(), err))
			}
			if err := w.Append(buf[:size]); err != nil {
				w.Abort()
				return fail(fmt.Errorf("write %s: %w", dst.Name(), err))
			}
			n += int64(size - shard.HeaderSize)
		}
		loc, err := w.Finish()
		if err != nil {
			w.Abort()
			return fail(fmt.Errorf("write %s: %w", dst.Name(), err))
		}
		p.Loc = loc
		done++
	}
	return &out, n, nil
}

// verifyRecord reads back every block rec names on d.
func (s *Store) verifyRecord(ctx context.Context, d Device, rec *Record) error {
	buf := s.getBuf(&s.shards, s.shardBufSize())
	defer s.putBuf(&s.shards, buf, s.shardBufSize())
	for pi := range rec.Parts {
		p := &rec.Parts[pi]
		if p.Missing {
			continue
		}
		for b := 0; b < p.Loc.Blocks(); b++ {
			if err := ctx.Err(); err != nil {
				return err
			}
			size := shard.HeaderSize + p.Loc.DataLen(b)
			if cap(buf) < size {
				buf = make([]byte, size)
			}
			if _, err := d.ReadBlock(ctx, &p.Loc, b, buf[:size]); err != nil {
				return fmt.Errorf("verify %s: %w", d.Name(), err)
			}
		}
	}
	return nil
}

// dropSource removes dr from src (if it is still what was read) under the
// key's lock.
func (s *Store) dropSource(ctx context.Context, dr DeviceRecord, src Device, out MoveOutcome) (MoveOutcome, int64, error) {
	unlock, err := s.lockKey(ctx, dr.Bucket, dr.Object)
	if err != nil {
		return MoveDeferred, 0, err
	}
	defer unlock()
	return s.dropSourceLocked(ctx, dr, src, out)
}

func (s *Store) dropSourceLocked(ctx context.Context, dr DeviceRecord, src Device, out MoveOutcome) (MoveOutcome, int64, error) {
	if !online(src) {
		return out, 0, nil // a dead source: nothing to remove
	}
	err := src.Commit(ctx, shard.Op{Key: dr.Key, Delete: true, Check: true, Expect: dr.Raw})
	if errors.Is(err, shard.ErrConflict) {
		return MoveDeferred, 0, nil // it changed: look again next pass
	}
	if err != nil {
		return MoveDeferred, 0, fmt.Errorf("remove the source on %s: %w", src.Name(), err)
	}
	rec := dr.Rec
	s.freeLater(rec.WriteID, func() { s.freeRecordShards(src, rec) })
	return out, 0, nil
}

// RebuildRecord rebuilds, by erasure decoding, the shards of the object
// version dr belongs to (dr is any surviving shard's record) whose target
// devices lack them; shards lists the slots to rebuild.
func (s *Store) RebuildRecord(ctx context.Context, dr DeviceRecord, shards []int, opt MoveOptions) (MoveOutcome, int64, error) {
	place, _, set := s.placementOf(ctx, dr.Bucket, dr.Object, dr.Key)
	var need []int
	for _, i := range shards {
		if i < 0 || i >= len(place) || place[i] == nil {
			continue
		}
		r, _, ok := s.readRecord(ctx, place[i], dr.Key)
		if !ok || !online(place[i]) {
			return MoveDeferred, 0, fmt.Errorf("device %s did not answer", deviceName(place[i]))
		}
		if r != nil && r.sameVersion(dr.Rec) && r.ShardIndex == i && holdsAll(place[i], r) {
			continue
		}
		need = append(need, i)
	}
	if len(need) == 0 {
		return MoveFound, 0, nil
	}
	if ok, decided := s.agreed(dr, set); !decided {
		return MoveDeferred, 0, nil
	} else if !ok {
		return MoveStale, 0, nil // the surviving record is stale itself
	}
	req := healRequest{bucket: dr.Bucket, key: dr.Object, writeID: dr.Rec.WriteID, shards: need, throttle: opt.Throttle}
	switch dr.Key[0] {
	case nsObject:
	case nsNoncurrent:
		req.version = dr.Rec.VersionID
		if req.version == "" {
			req.version = "null"
		}
	default:
		return MoveLost, 0, nil // uploads in progress are not rebuilt; clients resend parts
	}
	n, err := s.healObject(ctx, req)
	if err != nil {
		return MoveDeferred, 0, err
	}
	if n < len(need) {
		return MoveDeferred, 0, nil
	}
	var bytes int64
	if dr.Rec.HasInline {
		bytes = int64(len(dr.Rec.Inline))
	}
	for _, p := range dr.Rec.Parts {
		bytes += p.Loc.Size()
	}
	return MoveRebuilt, bytes * int64(n), nil
}

func deviceName(d Device) string {
	if d == nil {
		return "(none)"
	}
	return d.Name()
}
