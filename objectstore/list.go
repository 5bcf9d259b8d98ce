package objectstore

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/strata-storage/strata/metastore"
	"github.com/strata-storage/strata/objectstore/shard"
)

// ListOptions select a page of a bucket listing.
type ListOptions struct {
	Prefix    string
	Delimiter string
	After     string // list keys (and prefixes) strictly after this
	MaxKeys   int
}

// ListResult is one page of a listing.
type ListResult struct {
	Objects   []ObjectInfo
	Prefixes  []string
	Truncated bool
	// Next is the last key or prefix returned; the next page starts after it.
	Next string
}

// mergeIter walks the same key range on several devices in key order,
// yielding each key once with the records every device holds for it.
type mergeIter struct {
	its  []shard.RecordIter
	devs []int // ring device index of each iterator
	n    int   // width of the record slice handed out
}

func (s *Store) newMergeIter(ctx context.Context, lower, upper []byte) (*mergeIter, error) {
	devs := s.allDevices()
	m := &mergeIter{n: len(devs)}
	for i, d := range devs {
		if d == nil {
			continue
		}
		it, err := d.Iter(ctx, lower, upper)
		if err != nil {
			// An unreachable device is left out like an offline one: keys
			// still need a read quorum of agreeing records to be listed.
			s.log.Warn("listing without a device", "device", d.Name(), "err", err)
			s.metrics.shardFailures.WithLabelValues("list").Inc()
			continue
		}
		m.its = append(m.its, it)
		m.devs = append(m.devs, i)
	}
	return m, nil
}

// next returns the smallest key and the raw records at it (indexed by ring
// device), advancing past it; ok is false at the end.
func (m *mergeIter) next(recs [][]byte) (key []byte, ok bool) {
	var min []byte
	for _, it := range m.its {
		if it.Valid() && (min == nil || bytes.Compare(it.Key(), min) < 0) {
			min = it.Key()
		}
	}
	if min == nil {
		return nil, false
	}
	key = bytes.Clone(min)
	clear(recs)
	for j, it := range m.its {
		if it.Valid() && bytes.Equal(it.Key(), key) {
			recs[m.devs[j]] = bytes.Clone(it.Value())
			it.Next()
		}
	}
	return key, true
}

func (m *mergeIter) seek(k []byte) {
	for _, it := range m.its {
		it.SeekGE(k)
	}
}

// close releases the iterators and reports the first that ended its walk
// on an error. A device whose walk failed has dropped out of the merge
// from there on, as an offline one would: keys still need a read quorum of
// agreeing records, so what is listed is right, but the caller must know
// if it needs every record (repair).
func (m *mergeIter) close() error {
	var first error
	for j, it := range m.its {
		if err := it.Close(); err != nil && first == nil {
			first = fmt.Errorf("device %d: %w", m.devs[j], err)
		}
	}
	return first
}

// closeLogged closes a merge whose partial walks are tolerable, logging
// and counting them.
func (s *Store) closeLogged(m *mergeIter, what string) {
	if err := m.close(); err != nil {
		s.log.Warn("a device's records could not all be read; it was left out of the rest of the "+what, "err", err)
		s.metrics.shardFailures.WithLabelValues("list").Inc()
	}
}

// quorumOf decodes raw records and picks the agreed version.
func (s *Store) quorumOf(raw [][]byte) *Record {
	recs := make([]*Record, len(raw))
	for i, b := range raw {
		if b != nil {
			recs[i], _ = UnmarshalRecord(b)
		}
	}
	if i := quorumRecord(recs); i >= 0 {
		return recs[i]
	}
	return nil
}

// bucketIter merges the current-version records of a bucket's keys under
// prefix. It returns nil (and no error) when max leaves nothing to list.
func (s *Store) bucketIter(ctx context.Context, bucket, prefix string, max int) (*mergeIter, error) {
	if _, err := s.HeadBucket(ctx, bucket); err != nil {
		return nil, err
	}
	if max <= 0 {
		return nil, nil
	}
	lower := objectKey(bucket, prefix)
	return s.newMergeIter(ctx, lower, metastore.PrefixEnd(lower))
}

// ListObjects lists a bucket in key order. Only objects with a read quorum
// of agreeing records are listed, so every listed object can be read.
func (s *Store) ListObjects(ctx context.Context, bucket string, opts ListOptions) (*ListResult, error) {
	res := &ListResult{}
	it, err := s.bucketIter(ctx, bucket, opts.Prefix, opts.MaxKeys)
	if it == nil || err != nil {
		return res, err
	}
	defer s.closeLogged(it, "listing")
	base := objectKey(bucket, "")
	if opts.After != "" && opts.After >= opts.Prefix {
		it.seek(append(objectKey(bucket, opts.After), 0))
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
		rec := s.quorumOf(raw)
		if rec == nil || rec.DeleteMarker {
			continue
		}
		key := string(k[len(base):])
		entry, isPrefix := key, false
		if opts.Delimiter != "" {
			if i := strings.Index(key[len(opts.Prefix):], opts.Delimiter); i >= 0 {
				entry, isPrefix = key[:len(opts.Prefix)+i+len(opts.Delimiter)], true
			}
		}
		if opts.After != "" && entry <= opts.After {
			// A prefix that the previous page already returned.
			if isPrefix {
				it.seek(metastore.PrefixEnd(objectKey(bucket, entry)))
			}
			continue
		}
		if count == opts.MaxKeys {
			res.Truncated = true
			return res, nil
		}
		count++
		res.Next = entry
		if isPrefix {
			res.Prefixes = append(res.Prefixes, entry)
			it.seek(metastore.PrefixEnd(objectKey(bucket, entry)))
			continue
		}
		res.Objects = append(res.Objects, infoOf(bucket, key, rec))
	}
}
