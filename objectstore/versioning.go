package objectstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/strata-storage/strata/metastore"
	"github.com/strata-storage/strata/objectstore/shard"
)

// Versioning. On each device the current version of a key is its object
// record ('o' bucket 0 key); older versions live under
// 'n' bucket 0 key 0 version-id ("null" for the null version). A write in a
// versioned bucket moves the current record to its noncurrent key in the
// same atomic batch that writes the new one, so no version is ever lost
// between the two; a delete writes a delete marker the same way. Deleting a
// specific version removes its record (and frees its shards); deleting the
// current one promotes the newest noncurrent version.

const nsNoncurrent = 'n'

// Versioning errors.
var (
	ErrNoSuchVersion = errors.New("no such version")
)

// DeleteMarkerError is returned when the version asked for is a delete
// marker: a plain GET of a key whose current version is one (404), or a GET
// by version id of one (405).
type DeleteMarkerError struct {
	VersionID string
	ByVersion bool
}

func (e *DeleteMarkerError) Error() string { return "the version is a delete marker" }

// Unwrap lets errors.Is(err, ErrNoSuchKey) hold for the plain GET case.
func (e *DeleteMarkerError) Unwrap() error {
	if e.ByVersion {
		return nil
	}
	return ErrNoSuchKey
}

func noncurrentPrefix(bucket, key string) []byte {
	b := append([]byte{nsNoncurrent}, bucket...)
	b = append(b, 0)
	b = append(b, key...)
	return append(b, 0)
}

func noncurrentKey(bucket, key, versionID string) []byte {
	if versionID == "" {
		versionID = "null"
	}
	return append(noncurrentPrefix(bucket, key), versionID...)
}

// normVersion maps the API's version id to the record's ("null" -> "").
func normVersion(v string) string {
	if v == "null" {
		return ""
	}
	return v
}

// versionFor returns the version id a new write in bucket gets.
func (s *Store) versionFor(bucket string) string {
	if s.versioning(bucket) != "Enabled" {
		return ""
	}
	var b [16]byte
	rand.Read(b[:])
	// Time first, so ids of one key sort roughly by age when read as text.
	return fmt.Sprintf("%016x", uint64(time.Now().UnixNano())) + hex.EncodeToString(b[:8])
}

// validVersionID accepts what versionFor makes, and "null".
func validVersionID(v string) bool {
	if v == "null" {
		return true
	}
	if len(v) != 32 {
		return false
	}
	_, err := hex.DecodeString(v)
	return err == nil
}

// versionMoves returns, for device i, the ops that keep the replaced
// current record as a noncurrent version, and the records that a
// successful write frees, under the bucket's versioning mode.
type versionPlan struct {
	move    func(i int) []shard.Op // ops added to the commit
	undo    func(i int) []shard.Op // ops that reverse them
	toFree  []*Record              // per device, freed after quorum
	toFree2 []*Record              // a replaced noncurrent null version
}

func (s *Store) planVersions(ctx context.Context, bucket, key string, devs []Device, old []*Record, newRec *Record) versionPlan {
	mode := s.versioning(bucket)
	p := versionPlan{toFree: make([]*Record, len(devs)), toFree2: make([]*Record, len(devs))}
	if mode == "" {
		for i, r := range old {
			if r != nil && !r.sameVersion(newRec) {
				p.toFree[i] = r
			}
		}
		return p
	}
	var oldNull []*Record
	if mode == "Suspended" {
		oldNull = s.readRecords(ctx, devs, noncurrentKey(bucket, key, ""))
	}
	keep := func(r *Record) bool { return mode == "Enabled" || r.VersionID != "" }
	p.move = func(i int) []shard.Op {
		var ops []shard.Op
		if r := old[i]; r != nil && keep(r) {
			ops = append(ops, shard.Op{Key: noncurrentKey(bucket, key, r.VersionID), Value: r.MarshalBinary()})
		}
		if oldNull != nil && oldNull[i] != nil {
			ops = append(ops, shard.Op{Key: noncurrentKey(bucket, key, ""), Delete: true})
		}
		return ops
	}
	p.undo = func(i int) []shard.Op {
		var ops []shard.Op
		if r := old[i]; r != nil && keep(r) {
			ops = append(ops, shard.Op{Key: noncurrentKey(bucket, key, r.VersionID), Delete: true})
		}
		if oldNull != nil && oldNull[i] != nil {
			ops = append(ops, shard.Op{Key: noncurrentKey(bucket, key, ""), Value: oldNull[i].MarshalBinary()})
		}
		return ops
	}
	for i, r := range old {
		if r != nil && !keep(r) && !r.sameVersion(newRec) {
			p.toFree[i] = r // a null version replaced by the new null version
		}
		if oldNull != nil {
			p.toFree2[i] = oldNull[i]
		}
	}
	return p
}

// readVersion reads, on every device, the record of one version: the
// current record if it is that version, else the noncurrent one.
func (s *Store) readVersion(ctx context.Context, devs []Device, bucket, key, vid string) []*Record {
	cur := s.readRecords(ctx, devs, objectKey(bucket, key))
	nc := s.readRecords(ctx, devs, noncurrentKey(bucket, key, vid))
	for i := range cur {
		if cur[i] == nil || cur[i].VersionID != vid {
			cur[i] = nc[i]
		}
	}
	return cur
}

// versionFromSources fills the slots of recs that lack version vid from
// the source rings of a rebalance under way (see withSources) and returns
// the devices to read each slot from.
func (s *Store) versionFromSources(ctx context.Context, bucket, key, vid string, devs []Device, recs []*Record) []Device {
	if !s.Moving() {
		return devs
	}
	out := append([]Device(nil), devs...)
	for _, rkey := range [][]byte{noncurrentKey(bucket, key, vid), objectKey(bucket, key)} {
		set := recordSet{recs: make([]*Record, len(recs)), raw: make([][]byte, len(recs)), answered: make([]bool, len(recs))}
		copy(set.recs, recs)
		got := s.withSources(ctx, bucket, key, rkey, devs, set)
		for i, r := range set.recs {
			if recs[i] == nil && r != nil && r.VersionID == vid {
				recs[i], out[i] = r, got[i]
			}
		}
	}
	return out
}

// DeleteResult says what a delete did in S3 terms.
type DeleteResult struct {
	VersionID    string // of the marker created, or of the version removed
	DeleteMarker bool   // a marker was created, or the version removed was one
}

// deleteMarker writes a delete marker as the current version.
func (s *Store) deleteMarker(ctx context.Context, bucket, key string) (DeleteResult, error) {
	devs := s.placement(bucket, key)
	base := Record{WriteID: newWriteID(), K: s.ring.K, M: s.ring.M, BlockSize: s.cfg.BlockSize, ModTime: time.Now().UTC(),
		VersionID: s.versionFor(bucket), DeleteMarker: true}
	recs := make([]*Record, len(devs))
	for i := range devs {
		r := base
		r.ShardIndex = i
		recs[i] = &r
	}
	if _, err := s.commitObject(ctx, bucket, key, devs, recs, commitPlan{}); err != nil {
		return DeleteResult{}, err
	}
	return DeleteResult{VersionID: base.VersionID, DeleteMarker: true}, nil
}

// deleteVersion permanently removes one version.
func (s *Store) deleteVersion(ctx context.Context, bucket, key, apiVid string) (DeleteResult, error) {
	if !validVersionID(apiVid) {
		return DeleteResult{}, ErrNoSuchVersion
	}
	vid := normVersion(apiVid)
	devs := s.placement(bucket, key)
	okey, nkey := objectKey(bucket, key), noncurrentKey(bucket, key, vid)
	mu, err := s.lockKey(ctx, bucket, key)
	if err != nil {
		return DeleteResult{}, err
	}
	cur := s.readRecords(ctx, devs, okey)
	nc := s.readRecords(ctx, devs, nkey)
	removed := make([]*Record, len(devs))
	res := DeleteResult{VersionID: apiVid}
	errs := commitEach(ctx, devs, func(i int, d Device) error {
		var ops []shard.Op
		if r := cur[i]; r != nil && r.VersionID == vid {
			removed[i] = r
			ops = append(ops, shard.Op{Key: okey, Delete: true})
			if next, err := s.newestNoncurrent(ctx, d, bucket, key, vid); err != nil {
				return err
			} else if next != nil {
				ops = append(ops, shard.Op{Key: okey, Value: next.MarshalBinary()}, shard.Op{Key: noncurrentKey(bucket, key, next.VersionID), Delete: true})
			}
		}
		if r := nc[i]; r != nil {
			removed[i] = r
			ops = append(ops, shard.Op{Key: nkey, Delete: true})
		}
		if len(ops) == 0 {
			return nil
		}
		return d.Commit(ctx, ops...)
	})
	mu()
	if n, err := countOK(errs); n < writeQuorum(s.ring.K, s.ring.M) {
		return DeleteResult{}, fmt.Errorf("%w: version delete on %d of %d devices: %v", ErrWriteQuorum, n, len(devs), err)
	}
	for i, r := range removed {
		if r != nil && errs[i] == nil {
			res.DeleteMarker = res.DeleteMarker || r.DeleteMarker
			dev, rec := devs[i], r
			s.freeLater(r.WriteID, func() { s.freeRecordShards(dev, rec) })
		}
	}
	return res, nil
}

// newestNoncurrent returns a device's newest noncurrent version of a key
// other than skip (nil if none).
func (s *Store) newestNoncurrent(ctx context.Context, d Device, bucket, key, skip string) (*Record, error) {
	prefix := noncurrentPrefix(bucket, key)
	it, err := d.Iter(ctx, prefix, metastore.PrefixEnd(prefix))
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var best *Record
	for ; it.Valid(); it.Next() {
		r, err := UnmarshalRecord(it.Value())
		if err != nil || r.VersionID == skip {
			continue
		}
		if best == nil || r.ModTime.After(best.ModTime) || r.ModTime.Equal(best.ModTime) && r.VersionID > best.VersionID {
			best = r
		}
	}
	// A walk cut short may have missed the newest version.
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("device %s: noncurrent versions of %s/%s: %w", d.Name(), bucket, key, err)
	}
	return best, nil
}

// GetObjectVersion opens a version of an object ("" = the current one, as
// GetObject; "null" = the null version). The caller must Close it.
func (s *Store) GetObjectVersion(ctx context.Context, bucket, key, versionID string) (*Object, error) {
	if versionID == "" {
		return s.GetObject(ctx, bucket, key)
	}
	return s.openVersion(ctx, bucket, key, versionID, true)
}

// HeadObjectVersion returns a version's metadata.
func (s *Store) HeadObjectVersion(ctx context.Context, bucket, key, versionID string) (ObjectInfo, error) {
	if versionID == "" {
		return s.HeadObject(ctx, bucket, key)
	}
	o, err := s.openVersion(ctx, bucket, key, versionID, false)
	if err != nil {
		return ObjectInfo{}, err
	}
	if err := s.damaged.check(o.ref.WriteID); err != nil {
		return ObjectInfo{}, err
	}
	return o.Info, nil
}

func (s *Store) openVersion(ctx context.Context, bucket, key, apiVid string, hold bool) (*Object, error) {
	if _, err := s.HeadBucket(ctx, bucket); err != nil {
		return nil, err
	}
	if validKey(key) != nil || !validVersionID(apiVid) {
		return nil, ErrNoSuchVersion
	}
	vid := normVersion(apiVid)
	devs := s.placement(bucket, key)
	mu := s.keyLock(bucket, key)
	mu.Lock()
	recs := s.readVersion(ctx, devs, bucket, key, vid)
	devs = s.versionFromSources(ctx, bucket, key, vid, devs, recs)
	best := quorumRecord(recs)
	if best >= 0 && recs[best].VersionID == vid && hold && !recs[best].DeleteMarker {
		s.acquireReader(recs[best].WriteID)
	}
	mu.Unlock()
	if best < 0 || recs[best].VersionID != vid {
		return nil, ErrNoSuchVersion
	}
	ref := recs[best]
	if ref.DeleteMarker {
		return nil, &DeleteMarkerError{VersionID: apiVid, ByVersion: true}
	}
	agreeing := make([]*Record, len(recs))
	for i, r := range recs {
		if r != nil && r.sameVersion(ref) && r.ShardIndex == i {
			agreeing[i] = r
		}
	}
	// Heal works on current versions; a noncurrent read only reconstructs.
	return &Object{Info: infoOf(bucket, key, ref), s: s, devs: devs, recs: agreeing, ref: ref, held: hold, noHeal: true}, nil
}

// DeleteObject removes an object the way the bucket's versioning says:
// without versionID, unversioned buckets lose the object and versioned
// ones get a delete marker; with one, that version is removed for good.
// Deleting what does not exist succeeds, as in S3.
func (s *Store) DeleteObject(ctx context.Context, bucket, key, versionID string) (DeleteResult, error) {
	ctx = shard.UseReserve(ctx) // a delete frees space, so it works on a full disk
	if _, err := s.HeadBucket(ctx, bucket); err != nil {
		return DeleteResult{}, err
	}
	if err := validKey(key); err != nil {
		return DeleteResult{}, ErrNoSuchKey
	}
	switch {
	case versionID != "":
		return s.deleteVersion(ctx, bucket, key, versionID)
	case s.versioning(bucket) != "":
		return s.deleteMarker(ctx, bucket, key)
	default:
		return DeleteResult{}, s.deleteUnversioned(ctx, bucket, key)
	}
}

// VersionListOptions select a page of ListObjectVersions.
type VersionListOptions struct {
	Prefix, Delimiter          string
	KeyMarker, VersionIDMarker string
	MaxKeys                    int
}

// VersionListResult is one page of versions.
type VersionListResult struct {
	Versions                           []ObjectInfo // newest first per key; delete markers included
	Prefixes                           []string
	Truncated                          bool
	NextKeyMarker, NextVersionIDMarker string
}

// ListObjectVersions lists every version of every key, keys in order and
// each key's versions newest first.
func (s *Store) ListObjectVersions(ctx context.Context, bucket string, opts VersionListOptions) (*VersionListResult, error) {
	res := &VersionListResult{}
	it, err := s.bucketIter(ctx, bucket, opts.Prefix, opts.MaxKeys)
	if it == nil || err != nil {
		return res, err
	}
	defer s.closeLogged(it, "version listing")
	base := objectKey(bucket, "")
	if opts.KeyMarker != "" && opts.KeyMarker >= opts.Prefix {
		start := objectKey(bucket, opts.KeyMarker)
		if opts.VersionIDMarker == "" {
			start = append(start, 0) // after the marker key
		}
		it.seek(start)
	}
	raw := make([][]byte, it.n)
	count := 0
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		k, ok := it.next(raw)
		if !ok {
			return res, nil
		}
		cur := s.quorumOf(raw)
		if cur == nil {
			continue
		}
		key := string(k[len(base):])
		if opts.Delimiter != "" {
			if i := strings.Index(key[len(opts.Prefix):], opts.Delimiter); i >= 0 {
				cp := key[:len(opts.Prefix)+i+len(opts.Delimiter)]
				it.seek(metastore.PrefixEnd(objectKey(bucket, cp)))
				if cp <= opts.KeyMarker {
					continue
				}
				if count == opts.MaxKeys {
					res.Truncated = true
					return res, nil
				}
				res.Prefixes = append(res.Prefixes, cp)
				res.NextKeyMarker, res.NextVersionIDMarker = cp, ""
				count++
				continue
			}
		}
		versions, err := s.keyVersions(ctx, bucket, key, cur)
		if err != nil {
			return nil, err
		}
		if key == opts.KeyMarker && opts.VersionIDMarker != "" {
			for j, v := range versions {
				if apiVersion(v.VersionID) == opts.VersionIDMarker {
					versions = versions[j+1:]
					break
				}
			}
		}
		for _, v := range versions {
			if count == opts.MaxKeys {
				res.Truncated = true
				return res, nil
			}
			res.Versions = append(res.Versions, v)
			res.NextKeyMarker, res.NextVersionIDMarker = key, apiVersion(v.VersionID)
			count++
		}
	}
}

// keyVersions returns a key's versions, current first, then noncurrent
// newest first.
func (s *Store) keyVersions(ctx context.Context, bucket, key string, cur *Record) ([]ObjectInfo, error) {
	latest := infoOf(bucket, key, cur)
	latest.IsLatest = true
	out := []ObjectInfo{latest}
	prefix := noncurrentPrefix(bucket, key)
	it, err := s.newMergeIter(ctx, prefix, metastore.PrefixEnd(prefix))
	if err != nil {
		return nil, err
	}
	defer s.closeLogged(it, "version listing")
	raw := make([][]byte, it.n)
	var older []ObjectInfo
	for {
		k, ok := it.next(raw)
		if !ok {
			break
		}
		_ = k
		if r := s.quorumOf(raw); r != nil && !r.sameVersion(cur) {
			older = append(older, infoOf(bucket, key, r))
		}
	}
	sort.SliceStable(older, func(a, b int) bool { return older[a].ModTime.After(older[b].ModTime) })
	return append(out, older...), nil
}

// apiVersion maps a record's version id to the API's ("" -> "null").
func apiVersion(v string) string {
	if v == "" {
		return "null"
	}
	return v
}
