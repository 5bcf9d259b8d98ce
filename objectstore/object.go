package objectstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/strata-storage/strata/objectstore/shard"
)

// ObjectInfo is what HEAD and listings return.
type ObjectInfo struct {
	Bucket, Key  string
	Size         int64
	ETag         string // without quotes
	ModTime      time.Time
	Headers      []Header
	Tags         []Header
	Parts        int
	PartSizes    []int64 // sizes of the parts, in order (one for a plain PUT)
	VersionID    string  // "" = the null version
	DeleteMarker bool
	IsLatest     bool // set by ListObjectVersions
}

func infoOf(bucket, key string, r *Record) ObjectInfo {
	info := ObjectInfo{Bucket: bucket, Key: key, Size: r.Size, ETag: r.ETag, ModTime: r.ModTime, Headers: r.Headers, Tags: r.Tags, Parts: len(r.Parts),
		VersionID: r.VersionID, DeleteMarker: r.DeleteMarker}
	for _, p := range r.Parts {
		info.PartSizes = append(info.PartSizes, p.Size)
	}
	if len(info.PartSizes) == 0 {
		info.PartSizes = []int64{r.Size}
	}
	return info
}

// PutOptions carry what a PUT stores besides the body.
type PutOptions struct {
	Headers []Header
	Tags    []Header
	// ContentMD5, if set, must equal the body's MD5 or nothing is stored.
	ContentMD5 []byte
	// Precondition, if set, is called with the object's current version
	// (nil if none) under the key's commit lock, just before the write
	// commits; an error aborts the write. It makes conditional writes
	// (If-None-Match: *, If-Match) atomic.
	Precondition func(current *ObjectInfo) error
	// BodyHeaders, if set, is called once the whole body has been read and
	// verified; its headers (a checksum sent as a trailer) are stored too.
	BodyHeaders func() []Header
}

func validKey(key string) error {
	// NUL would make the noncurrent-version key encoding ambiguous.
	if len(key) > MaxKeyLength {
		return ErrKeyTooLong
	}
	if key == "" || !utf8.ValidString(key) || strings.IndexByte(key, 0) >= 0 {
		return ErrInvalidKey
	}
	return nil
}

func newWriteID() (id [16]byte) {
	rand.Read(id[:])
	return id
}

// PutObject stores body (size bytes, or -1 if unknown) under bucket/key.
func (s *Store) PutObject(ctx context.Context, bucket, key string, body io.Reader, size int64, opts PutOptions) (ObjectInfo, error) {
	if _, err := s.HeadBucket(ctx, bucket); err != nil {
		return ObjectInfo{}, err
	}
	if err := validKey(key); err != nil {
		return ObjectInfo{}, err
	}
	if size > MaxPutSize {
		return ObjectInfo{}, ErrEntityTooLarge
	}
	devs := s.placement(bucket, key)
	k, m := s.ring.K, s.ring.M
	base := Record{WriteID: newWriteID(), K: k, M: m, BlockSize: s.cfg.BlockSize, ModTime: time.Now().UTC(), Headers: opts.Headers, Tags: opts.Tags,
		VersionID: s.versionFor(bucket)}
	base.contentMD5 = opts.ContentMD5
	base.precondition = opts.Precondition
	base.bodyHeaders = opts.BodyHeaders

	// Small bodies are read whole and inlined in the records.
	var small []byte
	if size >= 0 && size <= s.cfg.InlineLimit || size < 0 {
		limit := s.cfg.InlineLimit
		if size >= 0 {
			limit = size
		}
		small = make([]byte, limit+1)
		n, err := io.ReadFull(body, small)
		small = small[:n]
		switch {
		case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
			if size >= 0 && int64(n) < size {
				return ObjectInfo{}, ErrIncompleteBody
			}
		case err != nil:
			return ObjectInfo{}, err
		case size >= 0:
			// Read size+1 bytes of a body that claimed size: only an
			// unbounded reader does that.
			return ObjectInfo{}, ErrEntityTooLarge
		default:
			// Unknown size and more than the inline limit: stream it.
			return s.putStreaming(ctx, bucket, key, devs, base, small, body, -1)
		}
		return s.putInline(ctx, bucket, key, devs, base, small)
	}
	return s.putStreaming(ctx, bucket, key, devs, base, nil, body, size)
}

func (s *Store) putInline(ctx context.Context, bucket, key string, devs []Device, base Record, data []byte) (ObjectInfo, error) {
	sum := md5Of(data)
	if base.contentMD5 != nil && !bytes.Equal(sum, base.contentMD5) {
		return ObjectInfo{}, ErrBadDigest
	}
	shards, err := s.encodeInline(data)
	if err != nil {
		return ObjectInfo{}, err
	}
	base.Size = int64(len(data))
	base.ETag = hex.EncodeToString(sum)
	base.addBodyHeaders()
	base.HasInline = true
	recs := make([]*Record, len(devs))
	for i := range devs {
		r := base
		r.ShardIndex, r.Inline = i, shards[i]
		recs[i] = &r
	}
	if _, err := s.commitObject(ctx, bucket, key, devs, recs, commitPlan{}); err != nil {
		return ObjectInfo{}, err
	}
	return infoOf(bucket, key, &base), nil
}

func (s *Store) putStreaming(ctx context.Context, bucket, key string, devs []Device, base Record, prefix []byte, body io.Reader, size int64) (ObjectInfo, error) {
	set, err := s.writeShards(ctx, devs, prefix, body, size, MaxPutSize, base.contentMD5)
	if err != nil {
		return ObjectInfo{}, err
	}
	base.Size = set.size
	base.ETag = hex.EncodeToString(set.md5)
	base.addBodyHeaders()
	recs := make([]*Record, len(devs))
	for i := range devs {
		if !set.ok[i] {
			continue
		}
		r := base
		r.ShardIndex = i
		r.Parts = []Part{{Number: 1, Size: set.size, ETag: base.ETag, Loc: set.locs[i]}}
		recs[i] = &r
	}
	if stuck, err := s.commitObject(ctx, bucket, key, devs, recs, commitPlan{}); err != nil {
		for i, ok := range set.ok {
			if ok && (stuck == nil || !stuck[i]) {
				devs[i].Free(context.WithoutCancel(ctx), set.locs[i]) // cleanup is not called off with the request
			}
		}
		return ObjectInfo{}, err
	}
	return infoOf(bucket, key, &base), nil
}

// commitPlan adds, per device, ops committed atomically with the object
// record (multipart completion deletes its upload and parts), and the ops
// that restore them if the write does not reach quorum.
type commitPlan struct {
	extra func(i int) []shard.Op
	undo  func(i int) []shard.Op
}

// commitObject writes recs[i] (where non-nil) on device i under the key's
// commit lock and requires a write quorum. Short of quorum it puts back
// what each device held, so a failed write changes nothing; stuck marks
// devices where even that failed and the new record may remain (their new
// shards must not be freed). On success it frees the replaced versions'
// shards.
func (s *Store) commitObject(ctx context.Context, bucket, key string, devs []Device, recs []*Record, plan commitPlan) (stuck []bool, err error) {
	okey := objectKey(bucket, key)
	mu, err := s.lockKey(ctx, bucket, key)
	if err != nil {
		return nil, err
	}
	set := s.readSet(ctx, devs, okey)
	old := set.recs
	if cond := firstRecord(recs).precondition; cond != nil {
		var cur *ObjectInfo
		if q := quorumRecord(old); q >= 0 && !old[q].DeleteMarker {
			info := infoOf(bucket, key, old[q])
			cur = &info
		}
		if err := cond(cur); err != nil {
			mu()
			return nil, err
		}
	}
	vp := s.planVersions(ctx, bucket, key, devs, old, firstRecord(recs))
	newRaw := make([][]byte, len(devs))
	errs := commitEach(ctx, devs, func(i int, d Device) error {
		if recs[i] == nil {
			return fmt.Errorf("no shard for device %s", d.Name())
		}
		// Conditional on what this device held when we looked: a gateway
		// racing on the same key makes one of the two writes fail here
		// instead of leaving the devices split between both versions.
		newRaw[i] = recs[i].MarshalBinary()
		ops := []shard.Op{s.putIf(okey, newRaw[i], set.raw[i])}
		if vp.move != nil {
			ops = append(ops, vp.move(i)...)
		}
		if plan.extra != nil {
			ops = append(ops, plan.extra(i)...)
		}
		return d.Commit(ctx, ops...)
	})
	n, first := countOK(errs)
	k, m := s.ring.K, s.ring.M
	if n < writeQuorum(k, m) {
		stuck = make([]bool, len(devs))
		for i, err := range errs {
			if err != nil {
				continue // nothing was written there
			}
			undo := []shard.Op{s.putIf(okey, set.raw[i], newRaw[i])}
			if vp.undo != nil {
				undo = append(undo, vp.undo(i)...)
			}
			if plan.undo != nil {
				undo = append(undo, plan.undo(i)...)
			}
			// A rollback puts back what was there: it may use the reserve.
			if err := devs[i].Commit(shard.UseReserve(ctx), undo...); errors.Is(err, shard.ErrConflict) {
				continue // another write replaced ours there: nothing of ours remains
			} else if err != nil {
				stuck[i] = true
				s.log.Error("could not roll back a write short of quorum", "bucket", bucket, "key", key, "device", devs[i].Name(), "err", err)
			}
		}
		mu()
		if anyFull(errs) {
			return stuck, fmt.Errorf("%w: %d of %d records committed: %v", ErrStorageFull, n, len(devs), first)
		}
		return stuck, fmt.Errorf("%w: %d of %d records committed: %v", ErrWriteQuorum, n, len(devs), first)
	}
	mu()
	if n < len(devs) {
		s.hint(ctx, bucket, key)
	}
	for i := range devs {
		for _, r := range []*Record{vp.toFree[i], vp.toFree2[i]} {
			if r != nil && devs[i] != nil && (recs[i] == nil || !recs[i].sameVersion(r)) {
				dev, rec := devs[i], r
				s.freeLater(r.WriteID, func() { s.freeRecordShards(dev, rec) })
			}
		}
	}
	return nil, nil
}

func firstRecord(recs []*Record) *Record {
	for _, r := range recs {
		if r != nil {
			return r
		}
	}
	return &Record{}
}

// releaseOld frees shards of replaced records, on devices whose record was
// replaced by a different version.
func (s *Store) releaseOld(devs []Device, old, cur []*Record) {
	for i, r := range old {
		if r == nil || devs[i] == nil || (cur != nil && cur[i] != nil && cur[i].sameVersion(r)) {
			continue
		}
		dev, rec := devs[i], r
		s.freeLater(r.WriteID, func() { s.freeRecordShards(dev, rec) })
	}
}

// SetTags replaces the tags of the current version of an object (nil
// removes them). Data, ETag and modification time are unchanged.
func (s *Store) SetTags(ctx context.Context, bucket, key string, tags []Header) error {
	return s.SetTagsVersion(ctx, bucket, key, "", tags)
}

// SetTagsVersion replaces the tags of one version ("" is the current).
func (s *Store) SetTagsVersion(ctx context.Context, bucket, key, versionID string, tags []Header) error {
	return s.updateMetaVersion(ctx, bucket, key, versionID, func(r *Record) { r.Tags = tags })
}

// SetHeader sets (or, with an empty value, removes) one stored header of
// the current version of an object, such as its canned ACL.
func (s *Store) SetHeader(ctx context.Context, bucket, key, name, value string) error {
	return s.SetHeaderVersion(ctx, bucket, key, "", name, value)
}

// SetHeaderVersion is SetHeader for one version ("" is the current).
func (s *Store) SetHeaderVersion(ctx context.Context, bucket, key, versionID, name, value string) error {
	return s.updateMetaVersion(ctx, bucket, key, versionID, func(r *Record) {
		var hs []Header
		for _, h := range r.Headers {
			if h.Name != name {
				hs = append(hs, h)
			}
		}
		if value != "" {
			hs = append(hs, Header{Name: name, Value: value})
		}
		r.Headers = hs
	})
}

// updateMeta rewrites the records of an object's current version in place,
// with the same write id, so no shard is freed and readers keep reading.
func (s *Store) updateMeta(ctx context.Context, bucket, key string, update func(*Record)) error {
	return s.updateMetaVersion(ctx, bucket, key, "", update)
}

// updateMetaVersion is updateMeta for one version, current or noncurrent
// ("" is the current version).
func (s *Store) updateMetaVersion(ctx context.Context, bucket, key, apiVid string, update func(*Record)) error {
	if _, err := s.HeadBucket(ctx, bucket); err != nil {
		return err
	}
	if validKey(key) != nil {
		return ErrNoSuchKey
	}
	if apiVid != "" && !validVersionID(apiVid) {
		return ErrNoSuchVersion
	}
	devs := s.placement(bucket, key)
	mu, err := s.lockKey(ctx, bucket, key)
	if err != nil {
		return err
	}
	defer mu()
	keys := [][]byte{objectKey(bucket, key)}
	if apiVid != "" {
		keys = append(keys, noncurrentKey(bucket, key, normVersion(apiVid)))
	}
	for _, k := range keys {
		set := s.readSet(ctx, devs, k)
		recs := set.recs
		q := quorumRecord(recs)
		if q < 0 || apiVid != "" && recs[q].VersionID != normVersion(apiVid) {
			continue
		}
		if recs[q].DeleteMarker {
			if apiVid != "" {
				return &DeleteMarkerError{VersionID: apiVid, ByVersion: true}
			}
			return ErrNoSuchKey
		}
		ref := recs[q]
		n, err := commitAll(ctx, devs, func(i int, d Device) error {
			if recs[i] == nil || !recs[i].sameVersion(ref) {
				return fmt.Errorf("device %s holds no record of this version", d.Name())
			}
			r := *recs[i]
			update(&r)
			return d.Commit(ctx, s.putIf(k, r.MarshalBinary(), set.raw[i]))
		})
		if n < writeQuorum(s.ring.K, s.ring.M) {
			return fmt.Errorf("%w: metadata updated on %d of %d devices: %v", quorumErr(err), n, len(devs), err)
		}
		if n < len(devs) {
			s.hint(ctx, bucket, key)
		}
		return nil
	}
	if apiVid != "" {
		return ErrNoSuchVersion
	}
	return ErrNoSuchKey
}

// HeadObject returns an object's metadata.
func (s *Store) HeadObject(ctx context.Context, bucket, key string) (ObjectInfo, error) {
	o, err := s.open(ctx, bucket, key, false)
	if err != nil {
		return ObjectInfo{}, err
	}
	if err := s.damaged.check(o.ref.WriteID); err != nil {
		return ObjectInfo{}, err
	}
	return o.Info, nil
}

// deleteUnversioned removes an object of a bucket that never had
// versioning.
func (s *Store) deleteUnversioned(ctx context.Context, bucket, key string) error {
	devs := s.placement(bucket, key)
	okey := objectKey(bucket, key)
	mu, err := s.lockKey(ctx, bucket, key)
	if err != nil {
		return err
	}
	set := s.readSet(ctx, devs, okey)
	old := set.recs
	n, err := commitAll(ctx, devs, func(i int, d Device) error {
		if set.raw[i] == nil && set.answered[i] {
			return nil
		}
		return d.Commit(ctx, s.putIf(okey, nil, set.raw[i]))
	})
	mu()
	if n < writeQuorum(s.ring.K, s.ring.M) {
		return fmt.Errorf("%w: delete on %d of %d devices: %v", ErrWriteQuorum, n, len(devs), err)
	}
	if n < len(devs) {
		s.hint(ctx, bucket, key)
	}
	s.releaseOld(devs, old, nil)
	return nil
}

// anyFull reports whether a device refused for want of space.
func anyFull(errs []error) bool {
	for _, err := range errs {
		if errors.Is(err, shard.ErrFull) {
			return true
		}
	}
	return false
}

// quorumErr is the error of a write short of quorum whose first refusal
// was err: ErrStorageFull if the devices are out of space (a retry will
// not help), else ErrWriteQuorum.
func quorumErr(err error) error {
	if errors.Is(err, shard.ErrFull) {
		return ErrStorageFull
	}
	return ErrWriteQuorum
}
