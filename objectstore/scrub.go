package objectstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/strata-storage/strata/objectstore/shard"
	"github.com/strata-storage/strata/scrub"
)

// Scrubbing: a walk over one device's shard records that reads and
// verifies every block of every record. A current object's bad shard is
// rebuilt from the others (erasure decode) and rewritten at once; an object
// that cannot be rebuilt is reported by name.

// ScrubStats counts what a scrub walk saw: the records it read, and in
// the embedded scrub.Stats the block bytes verified, the records with a
// block that failed (Errors), those rebuilt from the other shards
// (Repaired), those that could not be (more than M shards bad) or are not
// (parts of unfinished uploads, which clients send again) (Unrecoverable,
// Damaged by name), and current-object records on a device the ring does
// not place them on (Misplaced) and of those the ones removed after the
// grace (Collected).
type ScrubStats struct {
	Records int64 `json:"records"`
	scrub.Stats
}

// Add sums o into st.
func (st *ScrubStats) Add(o ScrubStats) {
	st.Records += o.Records
	st.Stats.Add(o.Stats)
}

// ScrubOptions bound one scrub walk.
type ScrubOptions struct {
	From       []byte // first key (nil: the start)
	To         []byte // end, exclusive (nil: the end of the device)
	MaxRecords int    // stop after this many records (0: at the end)
	// Throttle is called before every block read with its size; it may
	// sleep (rate limit, foreground I/O first) or fail (the walk stops).
	Throttle func(ctx context.Context, n int) error
	// OrphanGrace: a misplaced record younger than this is left alone (a
	// rebalance or repair may still be moving it). Zero: DefaultOrphanGrace.
	OrphanGrace time.Duration
}

// DefaultOrphanGrace is how old a misplaced record must be to be collected.
const DefaultOrphanGrace = 24 * time.Hour

// ScrubDevice verifies the records of device d from opt.From. It returns
// the key to resume from (nil when the device is done).
func (s *Store) ScrubDevice(ctx context.Context, d Device, opt ScrubOptions) (ScrubStats, []byte, error) {
	var st ScrubStats
	it, err := d.Iter(ctx, opt.From, opt.To)
	if err != nil {
		return st, opt.From, fmt.Errorf("scrub %s: %w", d.Name(), err)
	}
	defer it.Close() // closing twice is harmless
	var buf []byte
	for ; it.Valid(); it.Next() {
		if err := ctx.Err(); err != nil {
			return st, bytes.Clone(it.Key()), err
		}
		if opt.MaxRecords > 0 && st.Records >= int64(opt.MaxRecords) {
			return st, bytes.Clone(it.Key()), nil
		}
		key := bytes.Clone(it.Key())
		rec, err := UnmarshalRecord(it.Value())
		if err != nil {
			continue // not an object record
		}
		st.Records++
		bad := false
		for pi := range rec.Parts {
			p := &rec.Parts[pi]
			if p.Missing {
				continue
			}
			for i := 0; i < p.Loc.Blocks() && !bad; i++ {
				n := shard.HeaderSize + p.Loc.DataLen(i)
				if opt.Throttle != nil {
					if err := opt.Throttle(ctx, n); err != nil {
						return st, key, err
					}
				}
				if cap(buf) < n {
					buf = make([]byte, n)
				}
				_, err := d.ReadBlock(ctx, &p.Loc, i, buf[:n])
				switch {
				case err == nil:
					st.Bytes += int64(n)
				case errors.Is(err, shard.ErrCorrupt) || errors.Is(err, shard.ErrMissing):
					bad = true
				default:
					return st, key, fmt.Errorf("scrub %s: %w", d.Name(), err)
				}
			}
		}
		if !bad {
			if key[0] == nsObject {
				if err := s.checkPlacement(ctx, d, key, it.Value(), rec, opt, &st); err != nil {
					return st, key, err
				}
			}
			continue
		}
		st.Errors++
		name := recordName(key, rec)
		req := healRequest{writeID: rec.WriteID, shards: []int{rec.ShardIndex}}
		switch key[0] {
		case nsObject:
			req.bucket, req.key, _ = strings.Cut(string(key[1:]), "\x00")
		case nsNoncurrent:
			parts := strings.SplitN(string(key[1:]), "\x00", 3)
			if len(parts) == 3 {
				req.bucket, req.key, req.version = parts[0], parts[1], parts[2]
			}
		}
		if req.bucket == "" {
			// A part of an unfinished upload: the client uploads it again.
			st.Unrecoverable++
			st.Damaged = appendName(st.Damaged, name+" (not rebuilt by scrub)")
			s.log.Error("scrub: damaged shard record", "device", d.Name(), "record", name)
			continue
		}
		n, err := s.healObject(ctx, req)
		switch {
		case err == nil && n > 0:
			st.Repaired++
		case err == nil:
			// Overwritten or deleted meanwhile: the bad record is gone.
		default:
			st.Unrecoverable++
			st.Damaged = appendName(st.Damaged, name)
			s.log.Error("scrub: object cannot be rebuilt", "device", d.Name(), "object", name, "err", err)
		}
	}
	// A pass that ended on an iteration error is not complete.
	if err := it.Close(); err != nil {
		return st, opt.From, fmt.Errorf("scrub %s: reading the records: %w", d.Name(), err)
	}
	return st, nil, nil
}

func appendName(list []string, name string) []string {
	if len(list) < scrub.MaxDamaged {
		list = append(list, name)
	}
	return list
}

// recordName names a record for an operator: bucket/key, with the version
// or upload it belongs to.
func recordName(key []byte, rec *Record) string {
	rest := string(key[1:])
	switch key[0] {
	case nsObject:
		return strings.Replace(rest, "\x00", "/", 1)
	case nsNoncurrent:
		parts := strings.SplitN(rest, "\x00", 3)
		if len(parts) == 3 {
			return parts[0] + "/" + parts[1] + " (version " + parts[2] + ")"
		}
	case nsUpload:
		parts := strings.SplitN(rest, "\x00", 3)
		if len(parts) == 3 {
			return parts[0] + "/" + parts[1] + " (upload " + parts[2] + ")"
		}
	case nsPart:
		id, _, _ := strings.Cut(rest, "\x00")
		return "part of upload " + id
	}
	return fmt.Sprintf("%q", key)
}

// ScrubObject verifies the current record of bucket/key on every device of
// its placement here and rebuilds bad shards.
func (s *Store) ScrubObject(ctx context.Context, bucket, key string) (ScrubStats, error) {
	var total ScrubStats
	okey := objectKey(bucket, key)
	upper := append(bytes.Clone(okey), 0)
	seen := false
	for _, d := range s.placement(bucket, key) {
		if d == nil || !online(d) {
			continue
		}
		st, _, err := s.ScrubDevice(ctx, d, ScrubOptions{From: okey, To: upper})
		if err != nil {
			return total, err
		}
		seen = seen || st.Records > 0
		total.Add(st)
	}
	if !seen {
		return total, ErrNoSuchKey
	}
	return total, nil
}

// checkPlacement counts a current-object record that the ring does not
// place on d, and collects it once it is older than the grace and the
// object has a read quorum in its placement without it.
func (s *Store) checkPlacement(ctx context.Context, d Device, key, raw []byte, rec *Record, opt ScrubOptions, st *ScrubStats) error {
	l := s.current.Load()
	di := -1
	for i, dev := range l.devices {
		if dev == d {
			di = i
		}
	}
	if di < 0 {
		return nil
	}
	bucket, objKey, _ := strings.Cut(string(key[1:]), "\x00")
	for _, slot := range l.ring.Slots(l.ring.Partition(bucket, objKey)) {
		if int(slot) == di {
			return nil
		}
	}
	st.Misplaced++
	if len(l.sources) > 0 {
		return nil // a rebalance is under way: it moves or drops this record
	}
	grace := opt.OrphanGrace
	if grace == 0 {
		grace = DefaultOrphanGrace
	}
	if time.Since(rec.ModTime) < grace {
		return nil
	}
	unlock, err := s.lockKey(ctx, bucket, objKey)
	if err != nil {
		return err
	}
	defer unlock()
	if quorumRecord(s.readSet(ctx, s.placement(bucket, objKey), key).recs) < 0 {
		s.log.Warn("scrub: misplaced record kept: its object has no quorum where the ring places it", "device", d.Name(), "object", bucket+"/"+objKey)
		return nil
	}
	raw = bytes.Clone(raw)
	if err := d.Commit(ctx, s.putIf(key, nil, raw)); err != nil {
		if errors.Is(err, shard.ErrConflict) {
			return nil // changed meanwhile
		}
		return err
	}
	s.freeLater(rec.WriteID, func() { s.freeRecordShards(d, rec) })
	st.Collected++
	return nil
}
