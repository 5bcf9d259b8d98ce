package objectstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/strata-storage/strata/objectstore/shard"
)

// Object is an open object version. Close releases it so that its shards
// may be freed if it was overwritten meanwhile.
type Object struct {
	Info ObjectInfo
	s    *Store
	devs []Device
	recs []*Record // agreeing records by shard index, nil elsewhere
	ref  *Record
	once sync.Once
	held bool

	badMu  sync.Mutex
	bad    map[int]bool // shard indexes that failed during this read
	noHeal bool         // the healer's own reads
}

func (s *Store) open(ctx context.Context, bucket, key string, hold bool) (*Object, error) {
	if _, err := s.HeadBucket(ctx, bucket); err != nil {
		return nil, err
	}
	if validKey(key) != nil {
		return nil, ErrNoSuchKey
	}
	devs := s.placement(bucket, key)
	okey := objectKey(bucket, key)
	var best int
	lock := func() {}
	unlock := func() {}
	if hold {
		// Take the reader reference under the key lock, so no commit can
		// free this version between choosing it and holding it.
		mu := s.keyLock(bucket, key)
		lock, unlock = mu.Lock, mu.Unlock
	}
	lock()
	set := s.readSet(ctx, devs, okey)
	devs = s.withSources(ctx, bucket, key, okey, devs, set)
	recs, answered := set.recs, set.answered
	best = quorumRecord(recs)
	if best >= 0 && hold {
		s.acquireReader(recs[best].WriteID)
	}
	unlock()
	if best < 0 {
		return nil, ErrNoSuchKey
	}
	ref := recs[best]
	if ref.DeleteMarker {
		if hold {
			s.releaseReader(ref.WriteID)
		}
		return nil, &DeleteMarkerError{VersionID: apiVersion(ref.VersionID)}
	}
	agreeing := make([]*Record, len(recs))
	for i, r := range recs {
		// A record is used only for the shard index it was written for.
		if r != nil && r.sameVersion(ref) && r.ShardIndex == i {
			agreeing[i] = r
		}
	}
	o := &Object{Info: infoOf(bucket, key, ref), s: s, devs: devs, recs: agreeing, ref: ref, held: hold}
	for i, r := range agreeing {
		if r == nil {
			if answered[i] && !s.awaitingMove(bucket, key, i) {
				o.noteBadShard(i) // missing, corrupt or stale record on this device
			}
			continue
		}
		for pi := range r.Parts {
			// Known lost without reading: the part never reached this
			// device, or its volume was replaced since.
			if p := &r.Parts[pi]; p.Missing || devs[i] != nil && !devs[i].Holds(&p.Loc) {
				o.noteBadShard(i)
				break
			}
		}
	}
	return o, nil
}

// GetObject opens an object for reading. The caller must Close it.
func (s *Store) GetObject(ctx context.Context, bucket, key string) (*Object, error) {
	return s.open(ctx, bucket, key, true)
}

// Close releases the object, queueing a repair if the read found damage.
func (o *Object) Close() {
	o.once.Do(func() {
		if !o.noHeal {
			o.queueHeal()
		}
		if o.held {
			o.s.releaseReader(o.ref.WriteID)
		}
	})
}

// Reader streams [off, off+length) of the object. Ready reports whether the
// first bytes could be read, so callers can fail before sending headers.
func (o *Object) Reader(ctx context.Context, off, length int64) *ObjectReader {
	ctx, cancel := context.WithCancel(ctx)
	r := &ObjectReader{s: o.s, ch: make(chan chunk, prefetchBlocks), free: make(chan []byte, prefetchBlocks+2), cancel: cancel, done: make(chan struct{})}
	for i := 0; i < prefetchBlocks+2; i++ {
		r.free <- nil
	}
	go r.produce(ctx, o, off, length)
	return r
}

type chunk struct {
	data []byte
	buf  []byte
	err  error
}

// ObjectReader is the io.ReadCloser of an object range.
type ObjectReader struct {
	s      *Store
	ch     chan chunk
	free   chan []byte
	cur    chunk
	pos    int
	cancel context.CancelFunc
	done   chan struct{}
	peeked bool
}

func (r *ObjectReader) produce(ctx context.Context, o *Object, off, length int64) {
	defer close(r.done)
	defer close(r.ch)
	if length <= 0 {
		return
	}
	bs := int64(o.ref.BlockSize)
	bufs := make([][]byte, o.ref.K+o.ref.M)
	defer func() {
		for _, b := range bufs {
			o.s.putBuf(&o.s.shards, b, o.s.shardBufSize())
		}
	}()
	end := off + length
	send := func(c chunk) bool {
		select {
		case r.ch <- c:
			return true
		case <-ctx.Done():
			return false
		}
	}
	if o.ref.HasInline {
		var out []byte
		select {
		case out = <-r.free:
		case <-ctx.Done():
			return
		}
		data, out, err := o.readBlock(ctx, -1, 0, int(o.ref.Size), bufs, out)
		if err != nil {
			send(chunk{err: err})
			return
		}
		o.s.damaged.clear(o.ref.WriteID)
		send(chunk{data: data[off:end], buf: out})
		return
	}
	var partStart int64
	for pi, p := range o.ref.Parts {
		partEnd := partStart + p.Size
		if partEnd <= off || p.Size == 0 {
			partStart = partEnd
			continue
		}
		if partStart >= end {
			break
		}
		for b := max(off-partStart, 0) / bs; partStart+b*bs < min(end, partEnd); b++ {
			blockStart := partStart + b*bs
			n := int(min(bs, p.Size-b*bs))
			var out []byte
			select {
			case out = <-r.free:
			case <-ctx.Done():
				return
			}
			data, out, err := o.readBlock(ctx, pi, int(b), n, bufs, out)
			if err != nil {
				send(chunk{err: fmt.Errorf("%s/%s part %d block %d: %w", o.Info.Bucket, o.Info.Key, p.Number, b, err)})
				return
			}
			lo := max(off-blockStart, 0)
			hi := min(end-blockStart, int64(n))
			if off == 0 && end >= o.Info.Size && blockStart+int64(n) >= o.Info.Size {
				// The last block of a whole read: the version reads back
				// whole, so it is not damaged after all (a device it needed
				// came back). Said before the reader gets the last bytes,
				// so a HEAD after the GET agrees with it.
				o.s.damaged.clear(o.ref.WriteID)
			}
			if !send(chunk{data: data[lo:hi], buf: out}) {
				return
			}
		}
		partStart = partEnd
	}
	if off == 0 && end >= o.Info.Size {
		o.s.damaged.clear(o.ref.WriteID) // an object with no blocks
	}
}

// readBlock returns the n data bytes of block b of part pi (pi < 0: the
// inline block). It reads the data shards in parallel and parity only as
// needed: when a shard fails, or when the data shards have not all arrived
// within the hedge delay (a slow or frozen node), so one slow device costs
// a read at most that delay.
//
// ctx is the request's: when it ends, reads still in flight end too, and
// their failures count against no device. Reads still in flight once k
// shards are in are cancelled as readBlock returns.
func (o *Object) readBlock(ctx context.Context, pi, b, n int, bufs [][]byte, out []byte) ([]byte, []byte, error) {
	s := o.s
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	k, m := o.ref.K, o.ref.M
	if n == 0 {
		return out[:0], out, nil
	}
	l := shardLen(n, k)
	shards := make([][]byte, k+m)
	have, failed := 0, 0
	// usable reports whether shard i can be read at all, without I/O.
	usable := func(i int) bool {
		r := o.recs[i]
		if r == nil || o.devs[i] == nil {
			return false
		}
		if pi < 0 {
			if len(r.Inline) != l {
				o.noteBadShard(i)
				return false
			}
			return true
		}
		p := &r.Parts[pi]
		if p.Missing || b >= p.Loc.Blocks() || p.Loc.DataLen(b) != l {
			o.noteBadShard(i)
			return false
		}
		return true
	}
	type result struct {
		i    int
		data []byte
		lost bool // the shard is gone for good (checksum, missing), not just unreachable
	}
	lost := 0
	results := make(chan result, k+m)
	inFlight := make([]bool, k+m)
	outstanding, next := 0, 0
	launch := func() bool {
		for ; next < k+m; next++ {
			i := next
			if !usable(i) {
				failed++
				continue
			}
			next++
			if pi < 0 {
				results <- result{i, o.recs[i].Inline, false}
				outstanding++
				return true
			}
			if cap(bufs[i]) < shard.HeaderSize+l {
				bufs[i] = o.shardBuf(l)
			}
			loc, dev, buf := &o.recs[i].Parts[pi].Loc, o.devs[i], bufs[i]
			inFlight[i] = true
			outstanding++
			go func() {
				data, err := dev.ReadBlock(rctx, loc, b, buf)
				gone := errors.Is(err, shard.ErrCorrupt) || errors.Is(err, shard.ErrMissing)
				if err != nil && rctx.Err() != nil {
					// Not the device's fault: the read was called off.
					data, gone = nil, false
				} else if err != nil {
					if !errors.Is(err, shard.ErrMissing) {
						s.log.Debug("shard read failed; reconstructing", "bucket", o.Info.Bucket, "key", o.Info.Key, "err", err)
					}
					s.metrics.shardFailures.WithLabelValues("read").Inc()
					o.noteBadShard(i)
					data = nil
				}
				results <- result{i, data, gone}
			}()
			return true
		}
		return false
	}
	for outstanding < k && launch() {
	}
	var hedge <-chan time.Time
	if pi >= 0 && s.cfg.HedgeDelay > 0 {
		t := time.NewTimer(s.cfg.HedgeDelay)
		defer t.Stop()
		hedge = t.C
	}
	for have < k && outstanding > 0 {
		select {
		case r := <-results:
			outstanding--
			inFlight[r.i] = false
			if r.data == nil {
				failed++
				if r.lost {
					lost++
				}
				for have+outstanding < k && launch() {
				}
				continue
			}
			shards[r.i] = r.data
			have++
		case <-hedge:
			hedge = nil
			s.metrics.hedgedReads.Inc()
			for launch() {
			}
		}
	}
	for i, busy := range inFlight {
		if busy {
			// Still being read by a slow device: its buffer is not ours
			// to reuse; the next block gets a fresh one.
			bufs[i] = nil
		}
	}
	if have < k {
		if lost > m {
			// More shards failed their checksums (or are gone from devices
			// that answered) than parity covers: no retry will bring it back.
			err := fmt.Errorf("%w: %d of %d shards of block %d are corrupt or missing, %d are needed", ErrDamaged, lost, k+m, b, k)
			s.damaged.mark(o.ref.WriteID, err)
			return nil, out, err
		}
		return nil, out, fmt.Errorf("%w: %d of %d shards readable, need %d", ErrReadQuorum, have, k+m, k)
	}
	if failed > 0 {
		s.metrics.degradedReads.Inc()
	}
	if !allPresent(shards[:k]) {
		for i := 0; i < k; i++ {
			if shards[i] == nil {
				if cap(bufs[i]) < l {
					bufs[i] = o.shardBuf(l)
				}
				shards[i] = bufs[i][:0]
				s.metrics.reconstructions.Inc()
			}
		}
		if err := s.enc.ReconstructData(shards); err != nil {
			return nil, out, fmt.Errorf("reconstruct: %w", err)
		}
	}
	if cap(out) < n {
		switch {
		case n <= 64<<10:
			out = make([]byte, n) // small objects: no 1 MiB buffer
		case o.ref.BlockSize == s.cfg.BlockSize:
			out = s.getBuf(&s.blocks, s.cfg.BlockSize)
		default:
			out = make([]byte, max(o.ref.BlockSize, n))
		}
	}
	out = out[:n]
	for i := 0; i < k; i++ {
		lo := i * l
		if lo >= n {
			break
		}
		copy(out[lo:min(lo+l, n)], shards[i])
	}
	return out, out, nil
}

// Ready waits for the first chunk and returns its error, if any.
func (r *ObjectReader) Ready() error {
	if !r.peeked {
		r.peeked = true
		c, ok := <-r.ch
		if !ok {
			return nil
		}
		r.cur, r.pos = c, 0
	}
	return r.cur.err
}

func (r *ObjectReader) Read(p []byte) (int, error) {
	for r.cur.err == nil && r.pos >= len(r.cur.data) {
		if r.cur.buf != nil {
			r.free <- r.cur.buf
			r.cur.buf = nil
		}
		c, ok := <-r.ch
		if !ok {
			return 0, io.EOF
		}
		r.peeked = true
		r.cur, r.pos = c, 0
	}
	if r.cur.err != nil {
		return 0, r.cur.err
	}
	n := copy(p, r.cur.data[r.pos:])
	r.pos += n
	return n, nil
}

// WriteTo streams to w without an intermediate copy.
func (r *ObjectReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if r.cur.err != nil {
			return total, r.cur.err
		}
		if r.pos < len(r.cur.data) {
			n, err := w.Write(r.cur.data[r.pos:])
			total += int64(n)
			r.pos += n
			if err != nil {
				return total, err
			}
		}
		if r.cur.buf != nil {
			r.free <- r.cur.buf
			r.cur.buf = nil
		}
		c, ok := <-r.ch
		if !ok {
			return total, nil
		}
		r.peeked = true
		r.cur, r.pos = c, 0
	}
}

// Close stops the producer and recycles the block buffers.
func (r *ObjectReader) Close() error {
	r.cancel()
	for c := range r.ch {
		r.s.putBuf(&r.s.blocks, c.buf, r.s.cfg.BlockSize)
	}
	<-r.done
	r.s.putBuf(&r.s.blocks, r.cur.buf, r.s.cfg.BlockSize)
	r.cur.buf = nil
	for {
		select {
		case b := <-r.free:
			r.s.putBuf(&r.s.blocks, b, r.s.cfg.BlockSize)
		default:
			return nil
		}
	}
}

// shardBuf returns a buffer for a shard record with l data bytes.
func (o *Object) shardBuf(l int) []byte {
	s := o.s
	if o.ref.BlockSize == s.cfg.BlockSize && o.ref.K == s.ring.K && shard.HeaderSize+l <= s.shardBufSize() {
		return s.getBuf(&s.shards, s.shardBufSize())
	}
	return make([]byte, shard.HeaderSize+shardLen(o.ref.BlockSize, o.ref.K))
}

func (s *Store) shardBufSize() int { return shard.HeaderSize + shardLen(s.cfg.BlockSize, s.ring.K) }

func (s *Store) getBuf(p *sync.Pool, size int) []byte {
	if b, ok := p.Get().(*[]byte); ok {
		return *b
	}
	return make([]byte, size)
}

// putBuf recycles b if it has the pool's size.
func (s *Store) putBuf(p *sync.Pool, b []byte, size int) {
	if cap(b) == size {
		b = b[:size]
		p.Put(&b)
	}
}

func allPresent(shards [][]byte) bool {
	for _, sh := range shards {
		if sh == nil {
			return false
		}
	}
	return true
}
