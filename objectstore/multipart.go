package objectstore

import (
	"context"
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/strata-storage/strata/metastore"
	"github.com/strata-storage/strata/objectstore/shard"
)

// ErrInvalidPartNumber reports a part number outside 1..10000.
var ErrInvalidPartNumber = errors.New("part number must be between 1 and 10000")

// UploadInfo describes an in-progress multipart upload.
type UploadInfo struct {
	Key, UploadID string
	Initiated     time.Time
	Headers       []Header
}

// PartInfo describes an uploaded part.
type PartInfo struct {
	Number  int
	Size    int64
	ETag    string
	ModTime time.Time
	Headers []Header // e.g. the part's verified checksum
}

// CompletePart names a part in CompleteMultipartUpload.
type CompletePart struct {
	Number int
	ETag   string
}

// CompleteOptions tune CompleteUpload.
type CompleteOptions struct {
	// Precondition is checked atomically with the commit (see PutOptions).
	Precondition func(current *ObjectInfo) error
	// Finalize, if set, gets the upload's stored headers and the chosen
	// parts once they are validated, and returns the object's headers (a
	// composite checksum, say) or an error that aborts the completion.
	Finalize func(uploadHeaders []Header, parts []PartInfo) ([]Header, error)
}

func uploadKey(bucket, key, uploadID string) []byte {
	b := []byte{nsUpload}
	b = append(append(b, bucket...), 0)
	b = append(append(b, key...), 0)
	return append(b, uploadID...)
}

func partPrefix(uploadID string) []byte {
	return append(append([]byte{nsPart}, uploadID...), 0)
}

func partKey(uploadID string, n int) []byte {
	return binary.BigEndian.AppendUint32(partPrefix(uploadID), uint32(n))
}

func validUploadID(id string) bool {
	if len(id) != 32 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil
}

// CreateUpload starts a multipart upload.
func (s *Store) CreateUpload(ctx context.Context, bucket, key string, opts PutOptions) (string, error) {
	if _, err := s.HeadBucket(ctx, bucket); err != nil {
		return "", err
	}
	if err := validKey(key); err != nil {
		return "", err
	}
	id := newWriteID()
	uploadID := hex.EncodeToString(id[:])
	devs := s.placement(bucket, key)
	rec := Record{WriteID: id, K: s.ring.K, M: s.ring.M, BlockSize: s.cfg.BlockSize, ModTime: time.Now().UTC(), Headers: opts.Headers, Tags: opts.Tags}
	ukey := uploadKey(bucket, key, uploadID)
	n, err := commitAll(ctx, devs, func(i int, d Device) error {
		r := rec
		r.ShardIndex = i
		return d.Commit(ctx, shard.Op{Key: ukey, Value: r.MarshalBinary()})
	})
	if n < writeQuorum(s.ring.K, s.ring.M) {
		return "", fmt.Errorf("%w: upload record on %d devices: %v", quorumErr(err), n, err)
	}
	return uploadID, nil
}

func (s *Store) getUpload(ctx context.Context, bucket, key, uploadID string) ([]Device, *Record, error) {
	if _, err := s.HeadBucket(ctx, bucket); err != nil {
		return nil, nil, err
	}
	if !validUploadID(uploadID) || validKey(key) != nil {
		return nil, nil, ErrNoSuchUpload
	}
	devs := s.placement(bucket, key)
	recs := s.readRecords(ctx, devs, uploadKey(bucket, key, uploadID))
	i := quorumRecord(recs)
	if i < 0 {
		return nil, nil, ErrNoSuchUpload
	}
	return devs, recs[i], nil
}

// GetUpload describes an upload in progress.
func (s *Store) GetUpload(ctx context.Context, bucket, key, uploadID string) (UploadInfo, error) {
	_, rec, err := s.getUpload(ctx, bucket, key, uploadID)
	if err != nil {
		return UploadInfo{}, err
	}
	return UploadInfo{Key: key, UploadID: uploadID, Initiated: rec.ModTime, Headers: rec.Headers}, nil
}

// UploadPart stores one part.
// bodyHeaders, if set, is called once the body is read and verified; its
// headers (the part's checksum) are kept with the part.
func (s *Store) UploadPart(ctx context.Context, bucket, key, uploadID string, number int, body io.Reader, size int64, contentMD5 []byte, bodyHeaders func() []Header) (string, error) {
	if number < 1 || number > MaxPartNumber {
		return "", ErrInvalidPartNumber
	}
	devs, _, err := s.getUpload(ctx, bucket, key, uploadID)
	if err != nil {
		return "", err
	}
	if size > MaxPutSize {
		return "", ErrEntityTooLarge
	}
	set, err := s.writeShards(ctx, devs, nil, body, size, MaxPutSize, contentMD5)
	if err != nil {
		return "", err
	}
	etag := hex.EncodeToString(set.md5)
	base := Record{WriteID: newWriteID(), K: s.ring.K, M: s.ring.M, BlockSize: s.cfg.BlockSize, ModTime: time.Now().UTC(), Size: set.size, ETag: etag}
	if bodyHeaders != nil {
		base.Headers = bodyHeaders()
	}
	pkey := partKey(uploadID, number)
	mu, err := s.lockKey(ctx, uploadID, string(pkey))
	if err != nil {
		s.freeSet(devs, set)
		return "", err
	}
	old := s.readRecords(ctx, devs, pkey)
	recs := make([]*Record, len(devs))
	errs := commitEach(ctx, devs, func(i int, d Device) error {
		if !set.ok[i] {
			return shard.ErrMissing
		}
		r := base
		r.ShardIndex = i
		r.Parts = []Part{{Number: number, Size: set.size, ETag: etag, Loc: set.locs[i]}}
		recs[i] = &r
		return d.Commit(ctx, shard.Op{Key: pkey, Value: r.MarshalBinary()})
	})
	if n, cerr := countOK(errs); n < writeQuorum(s.ring.K, s.ring.M) {
		// Put back what each device had, so no part record names freed
		// shards; keep the shards where even that failed.
		for i, err := range errs {
			if err == nil {
				undo := shard.Op{Key: pkey, Delete: true}
				if old[i] != nil {
					undo = shard.Op{Key: pkey, Value: old[i].MarshalBinary()}
				}
				if devs[i].Commit(ctx, undo) != nil {
					set.ok[i] = false
				}
			}
		}
		mu()
		s.freeSet(devs, set)
		return "", fmt.Errorf("%w: part record on %d devices: %v", quorumErr(cerr), n, cerr)
	}
	mu()
	s.releaseOld(devs, old, recs)
	return etag, nil
}

// partRecords reads every part record of an upload on every device:
// result[partNumber][device].
func (s *Store) partRecords(ctx context.Context, devs []Device, uploadID string) map[int][]*Record {
	out := map[int][]*Record{}
	prefix := partPrefix(uploadID)
	for i, d := range devs {
		if d == nil {
			continue
		}
		it, err := d.Iter(ctx, prefix, metastore.PrefixEnd(prefix))
		if err != nil {
			continue
		}
		for ; it.Valid(); it.Next() {
			k := it.Key()
			if len(k) != len(prefix)+4 {
				continue
			}
			n := int(binary.BigEndian.Uint32(k[len(prefix):]))
			r, err := UnmarshalRecord(it.Value())
			if err != nil {
				continue
			}
			if out[n] == nil {
				out[n] = make([]*Record, len(devs))
			}
			out[n][i] = r
		}
		if err := it.Close(); err != nil {
			// A partial view of this device's parts is no view: it counts
			// as holding none, so nothing it may hold is freed or trusted.
			s.log.Warn("upload parts on a device could not all be read", "device", d.Name(), "upload", uploadID, "err", err)
			for _, recs := range out {
				recs[i] = nil
			}
		}
	}
	return out
}

// ListParts lists the parts of an upload after partMarker, at most max.
func (s *Store) ListParts(ctx context.Context, bucket, key, uploadID string, partMarker, max int) ([]PartInfo, bool, error) {
	devs, _, err := s.getUpload(ctx, bucket, key, uploadID)
	if err != nil {
		return nil, false, err
	}
	all := s.partRecords(ctx, devs, uploadID)
	var out []PartInfo
	for n := partMarker + 1; n <= MaxPartNumber; n++ {
		recs, ok := all[n]
		if !ok {
			continue
		}
		i := quorumRecord(recs)
		if i < 0 {
			continue
		}
		if len(out) == max {
			return out, true, nil
		}
		out = append(out, partInfo(n, recs[i]))
	}
	return out, false, nil
}

// CompleteUpload assembles the listed parts into the object. The parts'
// shard streams become the object's; nothing is copied.
func partInfo(n int, r *Record) PartInfo {
	return PartInfo{Number: n, Size: r.Size, ETag: r.ETag, ModTime: r.ModTime, Headers: r.Headers}
}

func (s *Store) CompleteUpload(ctx context.Context, bucket, key, uploadID string, parts []CompletePart, opts CompleteOptions) (ObjectInfo, error) {
	devs, up, err := s.getUpload(ctx, bucket, key, uploadID)
	if err != nil {
		return ObjectInfo{}, err
	}
	all := s.partRecords(ctx, devs, uploadID)
	chosen := make([]*Record, len(parts))
	md := md5.New()
	var size int64
	for j, p := range parts {
		if j > 0 && p.Number <= parts[j-1].Number {
			return ObjectInfo{}, ErrInvalidPartOrder
		}
		recs := all[p.Number]
		i := quorumRecord(recs)
		if i < 0 || strings.Trim(p.ETag, `"`) != recs[i].ETag {
			return ObjectInfo{}, fmt.Errorf("%w: part %d", ErrInvalidPart, p.Number)
		}
		chosen[j] = recs[i]
	}
	// Sizes are checked once every part is known to exist, as S3 does.
	for j, r := range chosen {
		if j < len(parts)-1 && r.Size < MinPartSize {
			return ObjectInfo{}, fmt.Errorf("%w: part %d is %d bytes", ErrEntityTooSmall, parts[j].Number, r.Size)
		}
		sum, _ := hex.DecodeString(r.ETag)
		md.Write(sum)
		size += r.Size
	}
	if size > MaxObjectSize {
		return ObjectInfo{}, ErrEntityTooLarge
	}
	headers := up.Headers
	if opts.Finalize != nil {
		infos := make([]PartInfo, len(parts))
		for j, r := range chosen {
			infos[j] = partInfo(parts[j].Number, r)
		}
		if headers, err = opts.Finalize(up.Headers, infos); err != nil {
			return ObjectInfo{}, err
		}
	}
	base := Record{WriteID: newWriteID(), K: up.K, M: up.M, BlockSize: s.cfg.BlockSize, ModTime: time.Now().UTC(),
		Size: size, ETag: fmt.Sprintf("%s-%d", hex.EncodeToString(md.Sum(nil)), len(parts)), Headers: headers, Tags: up.Tags, precondition: opts.Precondition, VersionID: s.versionFor(bucket)}
	recs := make([]*Record, len(devs))
	for i := range devs {
		r := base
		r.ShardIndex = i
		r.Parts = make([]Part, len(parts))
		for j, p := range parts {
			pr := all[p.Number][i]
			r.Parts[j] = Part{Number: p.Number, Size: chosen[j].Size, ETag: chosen[j].ETag}
			if pr != nil && pr.sameVersion(chosen[j]) && pr.ShardIndex == i && len(pr.Parts) == 1 {
				r.Parts[j].Loc = pr.Parts[0].Loc
			} else {
				r.Parts[j].Missing = true
			}
		}
		recs[i] = &r
	}
	ukey := uploadKey(bucket, key, uploadID)
	upRecs := s.readRecords(ctx, devs, ukey)
	plan := commitPlan{
		// The upload and its part records go with the commit...
		extra: func(i int) []shard.Op {
			ops := []shard.Op{{Key: ukey, Delete: true}}
			for n, prs := range all {
				if prs[i] != nil {
					ops = append(ops, shard.Op{Key: partKey(uploadID, n), Delete: true})
				}
			}
			return ops
		},
		// ...and come back if it fails, so the upload can be completed later.
		undo: func(i int) []shard.Op {
			var ops []shard.Op
			if upRecs[i] != nil {
				ops = append(ops, shard.Op{Key: ukey, Value: upRecs[i].MarshalBinary()})
			}
			for n, prs := range all {
				if prs[i] != nil {
					ops = append(ops, shard.Op{Key: partKey(uploadID, n), Value: prs[i].MarshalBinary()})
				}
			}
			return ops
		},
	}
	if _, err := s.commitObject(ctx, bucket, key, devs, recs, plan); err != nil {
		return ObjectInfo{}, err
	}
	// Parts uploaded but not listed are garbage now.
	used := map[int]bool{}
	for _, p := range parts {
		used[p.Number] = true
	}
	for n, prs := range all {
		for i, r := range prs {
			if r != nil && devs[i] != nil && (!used[n] || !r.sameVersion(chosen[indexOf(parts, n)])) {
				s.freeRecordShards(devs[i], r)
			}
		}
	}
	return infoOf(bucket, key, &base), nil
}

func indexOf(parts []CompletePart, n int) int {
	for j, p := range parts {
		if p.Number == n {
			return j
		}
	}
	return 0
}

// AbortUpload discards an upload and its parts.
func (s *Store) AbortUpload(ctx context.Context, bucket, key, uploadID string) error {
	ctx = shard.UseReserve(ctx)
	devs, _, err := s.getUpload(ctx, bucket, key, uploadID)
	if err != nil {
		return err
	}
	all := s.partRecords(ctx, devs, uploadID)
	ukey := uploadKey(bucket, key, uploadID)
	n, cerr := commitAll(ctx, devs, func(i int, d Device) error {
		ops := []shard.Op{{Key: ukey, Delete: true}}
		for n, prs := range all {
			if prs[i] != nil {
				ops = append(ops, shard.Op{Key: partKey(uploadID, n), Delete: true})
			}
		}
		return d.Commit(ctx, ops...)
	})
	if n < writeQuorum(s.ring.K, s.ring.M) {
		return fmt.Errorf("%w: abort on %d devices: %v", ErrWriteQuorum, n, cerr)
	}
	for _, prs := range all {
		for i, r := range prs {
			if r != nil && devs[i] != nil {
				s.freeRecordShards(devs[i], r)
			}
		}
	}
	return nil
}

// ListUploads lists in-progress uploads of a bucket whose key starts with
// prefix, at most max.
func (s *Store) ListUploads(ctx context.Context, bucket string, max int) ([]UploadInfo, error) {
	if _, err := s.HeadBucket(ctx, bucket); err != nil {
		return nil, err
	}
	lower := append(append([]byte{nsUpload}, bucket...), 0)
	it, err := s.newMergeIter(ctx, lower, metastore.PrefixEnd(lower))
	if err != nil {
		return nil, err
	}
	defer s.closeLogged(it, "upload listing")
	raw := make([][]byte, it.n)
	var out []UploadInfo
	for len(out) < max {
		k, ok := it.next(raw)
		if !ok {
			break
		}
		rec := s.quorumOf(raw)
		if rec == nil {
			continue
		}
		rest := string(k[len(lower):])
		sep := strings.LastIndexByte(rest, 0)
		if sep < 0 {
			continue
		}
		out = append(out, UploadInfo{Key: rest[:sep], UploadID: rest[sep+1:], Initiated: rec.ModTime, Headers: rec.Headers})
	}
	return out, nil
}
