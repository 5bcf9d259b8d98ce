package objectstore

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-storage/strata/objectstore/shard"
)

// Heal-on-read: a read that finds a shard missing or failing verification
// on an online device queues the object; a background worker rebuilds the
// bad shard streams from the good ones and commits them, so redundancy
// returns without waiting for a scrub.

const healQueueSize = 4096

type healRequest struct {
	bucket, key string
	writeID     [16]byte
	shards      []int // shard indexes that failed
	// version: a noncurrent version to heal (its API id; "" = the
	// current version).
	version string
	// throttle, if set, is called before each rebuilt block is written.
	throttle func(ctx context.Context, n int) error
}

type healer struct {
	queue   chan healRequest
	ctx     context.Context // canceled by Close
	cancel  context.CancelFunc
	done    chan struct{}
	mu      sync.Mutex
	pending int

	queued, healed, failed, dropped prometheus.Counter
}

func newHealer(reg prometheus.Registerer) *healer {
	h := &healer{queue: make(chan healRequest, healQueueSize), done: make(chan struct{}),
		queued:  prometheus.NewCounter(prometheus.CounterOpts{Name: "strata_heal_queued_total", Help: "Objects queued for repair after a read found bad shards."}),
		healed:  prometheus.NewCounter(prometheus.CounterOpts{Name: "strata_heal_repaired_shards_total", Help: "Shard streams rebuilt and rewritten by heal-on-read."}),
		failed:  prometheus.NewCounter(prometheus.CounterOpts{Name: "strata_heal_failures_total", Help: "Heal attempts that could not complete."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "strata_heal_dropped_total", Help: "Heal requests dropped because the queue was full."}),
	}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	if reg != nil {
		reg.MustRegister(h.queued, h.healed, h.failed, h.dropped, prometheus.NewGaugeFunc(
			prometheus.GaugeOpts{Name: "strata_heal_pending", Help: "Objects waiting for or under repair."},
			func() float64 { return float64(h.pendingCount()) }))
	}
	return h
}

func (h *healer) pendingCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.pending
}

// enqueue never blocks a reader: a full queue drops the request (the next
// read of the object, or a scrub, finds the damage again).
func (h *healer) enqueue(req healRequest) {
	h.mu.Lock()
	h.pending++
	h.mu.Unlock()
	select {
	case h.queue <- req:
		h.queued.Inc()
	default:
		h.dropped.Inc()
		h.finish()
	}
}

func (h *healer) finish() {
	h.mu.Lock()
	h.pending--
	h.mu.Unlock()
}

func (s *Store) runHealer() {
	defer close(s.heal.done)
	for {
		select {
		case <-s.heal.ctx.Done():
			return
		case req := <-s.heal.queue:
			ctx, cancel := context.WithTimeout(s.heal.ctx, 10*time.Minute)
			n, err := s.healObject(ctx, req)
			cancel()
			if err != nil {
				s.heal.failed.Inc()
				s.log.Warn("heal failed", "bucket", req.bucket, "key", req.key, "err", err)
			} else if n > 0 {
				s.heal.healed.Add(float64(n))
				s.log.Info("healed object", "bucket", req.bucket, "key", req.key, "shards", n)
			}
			s.heal.finish()
		}
	}
}

// HealIdle reports whether no repair is queued or running.
func (s *Store) HealIdle() bool { return s.heal.pendingCount() == 0 }

// Close stops the background work of the store, abandoning a repair in
// progress (its new shard streams are freed; the damage is found again).
func (s *Store) Close() {
	s.heal.cancel()
	<-s.heal.done
	s.bg.Wait()
}

// noteBadShard records that shard i of an open object could not be used.
func (o *Object) noteBadShard(i int) {
	if !online(o.devs[i]) {
		return // an offline device cannot be repaired now (a hint or verify will)
	}
	o.badMu.Lock()
	if o.bad == nil {
		o.bad = map[int]bool{}
	}
	o.bad[i] = true
	o.badMu.Unlock()
}

// queueHeal hands the object's bad shards to the healer.
func (o *Object) queueHeal() {
	o.badMu.Lock()
	defer o.badMu.Unlock()
	if len(o.bad) == 0 || !o.held {
		return
	}
	req := healRequest{bucket: o.Info.Bucket, key: o.Info.Key, writeID: o.ref.WriteID}
	for i := range o.bad {
		req.shards = append(req.shards, i)
	}
	o.bad = nil
	o.s.heal.enqueue(req)
}

// healObject rewrites the requested shards of one object version and
// returns how many it repaired.
func (s *Store) healObject(ctx context.Context, req healRequest) (int, error) {
	recKey := objectKey(req.bucket, req.key)
	var o *Object
	var err error
	if req.version != "" {
		o, err = s.openVersion(ctx, req.bucket, req.key, req.version, true)
		recKey = noncurrentKey(req.bucket, req.key, normVersion(req.version))
	} else {
		o, err = s.open(ctx, req.bucket, req.key, true)
	}
	if err != nil {
		return 0, nil // deleted meanwhile: nothing to heal
	}
	defer o.Close()
	o.noHeal = true
	if o.ref.WriteID != req.writeID {
		return 0, nil // overwritten meanwhile
	}
	if o.ref.K != s.ring.K || o.ref.M != s.ring.M || o.ref.BlockSize != s.cfg.BlockSize {
		return 0, fmt.Errorf("object layout %d+%d/%d differs from the store's; not healed here", o.ref.K, o.ref.M, o.ref.BlockSize)
	}
	var targets []int
	place := s.placement(req.bucket, req.key)
	for _, i := range req.shards {
		// A slot read from a source ring's device (a rebalance under way)
		// is the rebalancer's to move, not heal's to rewrite.
		if i >= 0 && i < len(o.devs) && o.devs[i] != nil && o.devs[i] == place[i] {
			targets = append(targets, i)
		}
	}
	if len(targets) == 0 {
		return 0, nil
	}
	recs := make(map[int]*Record, len(targets))
	for _, i := range targets {
		r := *o.ref
		r.ShardIndex = i
		r.Inline, r.Parts = nil, nil
		recs[i] = &r
	}
	if o.ref.HasInline {
		data, _, err := o.readBlock(ctx, -1, 0, int(o.ref.Size), make([][]byte, o.ref.K+o.ref.M), nil)
		if err != nil {
			return 0, err
		}
		shards, err := s.encodeInline(data)
		if err != nil {
			return 0, err
		}
		for _, i := range targets {
			recs[i].Inline = shards[i]
		}
	} else if err := s.rebuildStreams(ctx, o, targets, recs, req.throttle); err != nil {
		return 0, err
	}
	// Every block decoded: whatever was lost before is back.
	s.damaged.clear(o.ref.WriteID)
	return s.commitHealed(ctx, o, recs, recKey)
}

// rebuildStreams decodes every block and appends the target shards to new
// shard streams, filling recs[i].Parts.
func (s *Store) rebuildStreams(ctx context.Context, o *Object, targets []int, recs map[int]*Record, throttle func(context.Context, int) error) error {
	bufs := make([][]byte, o.ref.K+o.ref.M)
	out := s.getBuf(&s.blocks, s.cfg.BlockSize)
	defer s.putBuf(&s.blocks, out, s.cfg.BlockSize)
	writers := map[int]shard.StreamWriter{}
	defer func() {
		for _, w := range writers {
			w.Abort()
		}
	}()
	for pi, p := range o.ref.Parts {
		for _, i := range targets {
			writers[i] = o.devs[i].NewWriter(ctx, int64(shardLen(int(min(p.Size, int64(s.cfg.BlockSize))), o.ref.K))*((p.Size+int64(s.cfg.BlockSize)-1)/int64(s.cfg.BlockSize)))
		}
		blocks := max((p.Size+int64(s.cfg.BlockSize)-1)/int64(s.cfg.BlockSize), 1)
		for b := int64(0); b < blocks; b++ {
			if err := ctx.Err(); err != nil {
				return err
			}
			n := int(min(int64(s.cfg.BlockSize), p.Size-b*int64(s.cfg.BlockSize)))
			data, _, err := o.readBlock(ctx, pi, int(b), n, bufs, out)
			if err != nil {
				return err
			}
			if throttle != nil {
				if err := throttle(ctx, shardLen(n, o.ref.K)*len(targets)); err != nil {
					return err
				}
			}
			j := s.getJob()
			copy(j.staging, data)
			if err := s.layout(j, n); err != nil {
				s.jobs.Put(j)
				return err
			}
			for _, i := range targets {
				if err := writers[i].Append(j.recs[i]); err != nil {
					s.jobs.Put(j)
					return err
				}
			}
			s.jobs.Put(j)
		}
		for _, i := range targets {
			loc, err := writers[i].Finish()
			if err != nil {
				return err
			}
			delete(writers, i)
			recs[i].Parts = append(recs[i].Parts, Part{Number: p.Number, Size: p.Size, ETag: p.ETag, Loc: loc})
		}
	}
	for _, pb := range bufs {
		s.putBuf(&s.shards, pb, s.shardBufSize())
	}
	return nil
}

// commitHealed writes the rebuilt records if the object is still the same
// version, then frees what they replace.
func (s *Store) commitHealed(ctx context.Context, o *Object, recs map[int]*Record, okey []byte) (int, error) {
	mu, err := s.lockKey(ctx, o.Info.Bucket, o.Info.Key)
	if err != nil {
		for i, r := range recs {
			s.freeRecordShards(o.devs[i], r)
		}
		return 0, err
	}
	set := s.readSet(ctx, o.devs, okey)
	cur := set.recs
	if q := quorumRecord(cur); q < 0 || !cur[q].sameVersion(o.ref) {
		mu()
		for i, r := range recs {
			s.freeRecordShards(o.devs[i], r)
		}
		return 0, nil // overwritten or deleted while we rebuilt
	}
	healed := 0
	var firstErr error
	for i, r := range recs {
		if err := o.devs[i].Commit(ctx, s.putIf(okey, r.MarshalBinary(), set.raw[i])); err != nil {
			s.freeRecordShards(o.devs[i], r)
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		healed++
		if old := cur[i]; old != nil {
			dev := o.devs[i]
			s.freeLater(old.WriteID, func() { s.freeRecordShards(dev, old) })
		}
	}
	mu()
	return healed, firstErr
}
