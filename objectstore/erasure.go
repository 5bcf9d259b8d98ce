package objectstore

import (
	"bytes"
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/strata-storage/strata/objectstore/shard"
)

// shardLen is the length of each shard of a block of n bytes.
func shardLen(n, k int) int { return (n + k - 1) / k }

// blockJob carries one block through encoding and the k+m device writers.
// Each shard sits in recs[i] after shard.HeaderSize bytes of header room, so
// a writer sends header and data in one pwrite.
type blockJob struct {
	staging []byte
	n       int // bytes of staging in use
	recs    [][]byte
	backing []byte
	pending atomic.Int32
	pool    *sync.Pool
}

func (s *Store) getJob() *blockJob {
	if j, ok := s.jobs.Get().(*blockJob); ok {
		return j
	}
	k, m := s.ring.K, s.ring.M
	full := shardLen(s.cfg.BlockSize, k)
	j := &blockJob{staging: make([]byte, s.cfg.BlockSize), recs: make([][]byte, k+m), pool: &s.jobs}
	j.backing = make([]byte, (k+m)*(shard.HeaderSize+full))
	return j
}

func (j *blockJob) release() {
	if j.pending.Add(-1) == 0 {
		j.pool.Put(j)
	}
}

// layout splits staging[:n] into k+m record slices and encodes parity.
func (s *Store) layout(j *blockJob, n int) error {
	k, m := s.ring.K, s.ring.M
	l := shardLen(n, k)
	shards := make([][]byte, k+m)
	for i := 0; i < k+m; i++ {
		rec := j.backing[i*(shard.HeaderSize+l) : (i+1)*(shard.HeaderSize+l)]
		j.recs[i] = rec
		shards[i] = rec[shard.HeaderSize:]
		if i < k {
			lo, hi := min(i*l, n), min((i+1)*l, n)
			c := copy(shards[i], j.staging[lo:hi])
			clear(shards[i][c:])
		}
	}
	if m == 0 {
		return nil
	}
	return s.enc.Encode(shards)
}

// shardSet is the outcome of streaming a body onto k+m devices.
type shardSet struct {
	size  int64
	md5   []byte
	locs  []shard.Locator
	ok    []bool // device i holds its shard durably
	count int
}

// writeShards streams body (size bytes, or -1 if unknown, at most limit)
// as erasure-coded shard streams onto devs. prefix is body data already
// read. Writers that fail drop out; the set is usable if count >= quorum.
func (s *Store) writeShards(ctx context.Context, devs []Device, prefix []byte, body io.Reader, size, limit int64, wantMD5 []byte) (*shardSet, error) {
	k, m := s.ring.K, s.ring.M
	w := k + m
	type devWriter struct {
		w    shard.StreamWriter
		ch   chan *blockJob
		err  error
		done chan struct{}
	}
	hint := int64(-1)
	if size >= 0 {
		hint = int64(shardLen(int(min(size, int64(s.cfg.BlockSize))), k)) * ((size + int64(s.cfg.BlockSize) - 1) / int64(s.cfg.BlockSize))
	}
	writers := make([]*devWriter, w)
	for i, d := range devs {
		if d == nil {
			continue
		}
		dw := &devWriter{w: d.NewWriter(ctx, hint), ch: make(chan *blockJob, prefetchBlocks), done: make(chan struct{})}
		writers[i] = dw
		go func(i int) {
			defer close(dw.done)
			for j := range dw.ch {
				if dw.err == nil {
					dw.err = dw.w.Append(j.recs[i])
				}
				j.release()
			}
		}(i)
	}
	abort := func() {
		for _, dw := range writers {
			if dw != nil {
				dw.w.Abort()
			}
		}
	}
	closeAll := func() {
		for _, dw := range writers {
			if dw != nil {
				close(dw.ch)
				<-dw.done
			}
		}
	}

	// MD5 (for the ETag) runs in its own stage, so that it overlaps the
	// shard writes and fsyncs instead of preceding them.
	md := md5.New()
	hashCh := make(chan *blockJob, prefetchBlocks)
	hashDone := make(chan struct{})
	go func() {
		defer close(hashDone)
		for j := range hashCh {
			md.Write(j.staging[:j.n])
			j.release()
		}
	}()
	src := io.MultiReader(&prefixReader{b: prefix}, body)
	var total int64
	var readErr error
	for readErr == nil {
		want := s.cfg.BlockSize
		if size >= 0 {
			want = int(min(int64(want), size-total))
			if want == 0 && total > 0 {
				break
			}
		}
		if err := ctx.Err(); err != nil {
			readErr = err
			break
		}
		j := s.getJob()
		n, err := io.ReadFull(src, j.staging[:want])
		eof := errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
		total += int64(n)
		switch {
		case err != nil && !eof:
			readErr = err
		case eof && size >= 0 && total < size:
			readErr = ErrIncompleteBody
		case total > limit:
			readErr = ErrEntityTooLarge
		case n == 0 && total > 0: // unknown size that ended on a block boundary
			s.jobs.Put(j)
			eof = true
		}
		if readErr != nil {
			s.jobs.Put(j)
			break
		}
		if n == 0 && total > 0 {
			break
		}
		if err := s.layout(j, n); err != nil {
			s.jobs.Put(j)
			readErr = fmt.Errorf("erasure encode: %w", err)
			break
		}
		j.n = n
		j.pending.Store(int32(w) + 2) // one per writer, the hasher, this loop
		hashCh <- j
		for _, dw := range writers {
			if dw == nil {
				j.release()
			} else {
				dw.ch <- j
			}
		}
		j.release()
		if eof || (size >= 0 && total == size) {
			break
		}
	}
	closeAll()
	close(hashCh)
	<-hashDone
	if readErr == nil && size >= 0 {
		// The body must end here; reading to EOF also lets the verifiers
		// wrapped around it (signatures, checksums) have their say.
		var one [1]byte
		if n, err := io.ReadFull(src, one[:]); n > 0 {
			readErr = ErrIncompleteBody
		} else if !errors.Is(err, io.EOF) {
			readErr = err
		}
	}
	var sum []byte
	if readErr == nil {
		sum = md.Sum(nil)
		if wantMD5 != nil && !bytes.Equal(sum, wantMD5) {
			readErr = ErrBadDigest
		}
	}
	if readErr != nil {
		abort()
		return nil, readErr
	}
	set := &shardSet{size: total, md5: sum, locs: make([]shard.Locator, w), ok: make([]bool, w)}
	var wg sync.WaitGroup
	for i, dw := range writers {
		if dw == nil {
			continue
		}
		if dw.err != nil {
			s.metrics.shardFailures.WithLabelValues("write").Inc()
			s.log.Warn("shard write failed", "device", devs[i].Name(), "err", dw.err)
			dw.w.Abort()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			loc, err := dw.w.Finish()
			if err != nil {
				s.metrics.shardFailures.WithLabelValues("sync").Inc()
				s.log.Warn("shard sync failed", "device", devs[i].Name(), "err", err)
				return
			}
			set.locs[i], set.ok[i] = loc, true
		}()
	}
	wg.Wait()
	for _, ok := range set.ok {
		if ok {
			set.count++
		}
	}
	if set.count < writeQuorum(k, m) {
		s.freeSet(devs, set)
		for _, dw := range writers {
			if dw != nil && errors.Is(dw.err, shard.ErrFull) {
				return nil, ErrStorageFull
			}
		}
		return nil, fmt.Errorf("%w: %d of %d shard streams durable", ErrWriteQuorum, set.count, w)
	}
	return set, nil
}

func (s *Store) freeSet(devs []Device, set *shardSet) {
	for i, ok := range set.ok {
		if ok {
			devs[i].Free(context.Background(), set.locs[i])
		}
	}
}

type prefixReader struct{ b []byte }

func (p *prefixReader) Read(b []byte) (int, error) {
	if len(p.b) == 0 {
		return 0, io.EOF
	}
	n := copy(b, p.b)
	p.b = p.b[n:]
	return n, nil
}

// encodeInline erasure-codes a small body and returns each device's shard.
func (s *Store) encodeInline(data []byte) ([][]byte, error) {
	k, m := s.ring.K, s.ring.M
	l := shardLen(len(data), k)
	buf := make([]byte, (k+m)*l)
	shards := make([][]byte, k+m)
	for i := range shards {
		shards[i] = buf[i*l : (i+1)*l : (i+1)*l]
	}
	for i := 0; i < k; i++ {
		copy(shards[i], data[min(i*l, len(data)):min((i+1)*l, len(data))])
	}
	if m > 0 && l > 0 {
		if err := s.enc.Encode(shards); err != nil {
			return nil, fmt.Errorf("erasure encode: %w", err)
		}
	}
	return shards, nil
}

func md5Of(b []byte) []byte { h := md5.Sum(b); return h[:] }
