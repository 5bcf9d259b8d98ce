package replicate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"
)

// run pings connected replicas (renewing the primary's lease, noticing a
// dead one) and tries disconnected ones, resyncing each that answers.
func (p *Primary) run() {
	defer p.wg.Done()
	t := time.NewTicker(p.cfg.RetryInterval)
	defer t.Stop()
	for {
		p.tick()
		select {
		case <-p.ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (p *Primary) tick() {
	if p.fenced.Load() {
		return
	}
	p.mu.Lock()
	all := append([]*member(nil), p.ms...)
	p.mu.Unlock()
	res := p.each(p.ctx, all, func(ctx context.Context, m *member) (Status, error) {
		return m.link.Hello(ctx, p.epoch.Load(), p.cfg.Self)
	})
	if p.ctx.Err() != nil {
		return // closing: a cancelled ping says nothing about the replica
	}
	var dead []*member
	var claimed uint64 // highest epoch a returning replica promised to a primary that is gone
	for i, m := range all {
		p.mu.Lock()
		if res[i].err == nil && res[i].st.Witness {
			m.witness.Store(true)
		}
		view := memberView{connected: m.connected(), syncing: m.syncing, split: m.state == SplitBrain}
		witness := m.witness.Load()
		p.mu.Unlock()
		r := res[i]
		switch judgeHello(p.epoch.Load(), p.cfg.Self, view, r.st, r.err) {
		case leasedElsewhere:
			// another primary is alive there; our writes tell whether it deposed us
		case claimedElsewhere:
			claimed = max(claimed, r.st.Epoch)
			if !witness && !view.split && Diverged(p.sourceStatus(res, all), r.st) {
				p.markSplit(m, r.st)
			}
		case lost:
			p.log.Warn("replica does not answer", "node", m.link.Node(), "err", r.err)
			dead = append(dead, m)
		case tracks:
			// An up-to-date replica's bitmaps say how far behind the
			// absent ones are.
			p.mu.Lock()
			for peer, tr := range r.st.Tracking {
				if pm := p.member(peer); pm != nil && !pm.syncing {
					pm.oos.Store(tr.Blocks * BlockSize)
				}
			}
			p.mu.Unlock()
		case resyncs:
			if p.ctx.Err() != nil {
				continue
			}
			if witness {
				if err := p.rejoin(m); err != nil && p.ctx.Err() == nil {
					p.log.Warn("tie-breaker not taken back", "node", m.link.Node(), "err", err)
				}
				continue
			}
			p.mu.Lock()
			m.syncing = true
			p.mu.Unlock()
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				if err := p.resync(m); err != nil && p.ctx.Err() == nil {
					p.log.Warn("resync stopped", "node", m.link.Node(), "err", err)
				}
				p.mu.Lock()
				m.syncing = false
				p.mu.Unlock()
			}()
		}
	}
	if len(dead) > 0 {
		p.drop(dead)
	}
	if claimed > 0 {
		if err := p.repromote(claimed); err != nil {
			p.log.Warn("cannot move to a newer epoch to take back a replica", "err", err)
		}
	}
}

// memberView is what the primary knows of a member before a ping.
type memberView struct{ connected, syncing, split bool }

// helloVerdict is what the primary does about a member after a ping.
type helloVerdict int

const (
	nothing          helloVerdict = iota
	leasedElsewhere               // another primary holds its lease there: wait
	claimedElsewhere              // it promised a newer (or another's) epoch: take it back
	lost                          // a connected member stopped answering: drop it
	tracks                        // connected: read how far behind the absent ones are
	resyncs                       // back and answering: resync it
)

// judgeHello decides about one member from its answer to a ping (st, err)
// at the primary's epoch: a pure function of what the primary knows.
func judgeHello(epoch uint64, self string, m memberView, st Status, err error) helloVerdict {
	if err == nil && !m.connected && (st.Epoch > epoch || st.Epoch == epoch && st.Primary != self) {
		if st.Leased {
			return leasedElsewhere
		}
		return claimedElsewhere
	}
	switch {
	case m.connected && err != nil:
		return lost
	case m.connected:
		return tracks
	case err == nil && !m.syncing && !m.split:
		return resyncs
	}
	return nothing
}

// sourceStatus is the status of an up-to-date member among res.
func (p *Primary) sourceStatus(res []result, all []*member) Status {
	src := p.source()
	for i, m := range all {
		if m == src && res[i].err == nil {
			return res[i].st
		}
	}
	return Status{}
}

func (p *Primary) member(node string) *member {
	for _, m := range p.ms {
		if m.link.Node() == node {
			return m
		}
	}
	return nil
}

// source picks an up-to-date replica to copy from (this node's first).
func (p *Primary) source() *member {
	order := p.readOrder()
	if len(order) == 0 {
		return nil
	}
	return order[0]
}

// resync brings m back: it becomes a sync target (receiving new writes),
// the regions the source's bitmap marks for it (everything, if the
// history is unknown) and the extents it recovered after a crash are copied, then it is
// consistent at the current generation and the bitmaps for it are dropped.
func (p *Primary) resync(m *member) error {
	ctx := p.ctx
	st, err := m.link.Promote(ctx, p.epoch.Load(), p.cfg.Self, p.mode())
	if err != nil {
		return err
	}
	p.mu.Lock()
	discard := m.discard
	p.mu.Unlock()
	if st.Size < p.size.Load() {
		// It missed a resize while away.
		if err := m.link.Resize(ctx, p.epoch.Load(), p.size.Load()); err != nil {
			return err
		}
	} else if st.Size != p.size.Load() {
		return fmt.Errorf("replica %s has size %d, volume %d", m.link.Node(), st.Size, p.size.Load())
	}
	src := p.source()
	if src == nil {
		return ErrNoUpToDate
	}
	node := m.link.Node()
	sst, err := src.link.Hello(ctx, p.epoch.Load(), p.cfg.Self)
	if err != nil {
		return err
	}
	if !discard && Diverged(sst, st) {
		p.markSplit(m, st)
		return fmt.Errorf("%s: split brain", node)
	}
	// What m wrote while others were away (a primary of its side that
	// lost its quorum) may be missing on the source: copied over too.
	var own []Extent
	for peer := range st.Tracking {
		ptr, pw, ok, err := m.link.Bitmap(ctx, p.epoch.Load(), peer)
		if err != nil {
			return err
		}
		if ok && ptr.Full {
			discard = true
		} else if ok {
			own = append(own, Runs(pw, min(st.Size, p.size.Load()), regionSize)...)
		}
	}
	// Drain writes so that none in flight still treats m as absent: from
	// here on m receives every write, and the bitmap read now holds every
	// earlier one.
	p.gate.Lock()
	p.bumpMu.Lock()
	tr, words, ok, err := src.link.Bitmap(ctx, p.epoch.Load(), node)
	if err == nil {
		err = m.link.SetGen(ctx, p.epoch.Load(), GenChange{Gen: p.gen, BeginSync: true})
	}
	if err == nil {
		p.mu.Lock()
		m.state, src.source = SyncTarget, true
		p.mu.Unlock()
	}
	p.bumpMu.Unlock()
	p.gate.Unlock()
	if err != nil {
		return err
	}
	defer func() {
		p.mu.Lock()
		src.source = false
		p.mu.Unlock()
	}()

	var todo []Extent
	full := discard || !ok || tr.Full || tr.Base != st.Gen
	if full {
		todo = []Extent{{0, p.size.Load()}}
	} else {
		todo = Runs(words, p.size.Load(), regionSize)
	}
	// After its own crash, m's recovered extents may hold writes the
	// others never got.
	todo = MergeExtents(append(append(todo, st.Recovered...), own...))
	var total int64
	for _, e := range todo {
		total += e.Len
	}
	m.oos.Store(total)
	m.synced.Store(0)
	p.log.Info("resync started", "node", node, "from", src.link.Node(), "bytes", total, "full", full)
	started := time.Now()
	m.syncStart.Store(started.UnixNano())
	defer m.syncStart.Store(0)

	buf := make([]byte, regionSize)
	for _, e := range todo {
		for off := e.Off; off < e.Off+e.Len; {
			n := min(regionSize-off%regionSize, e.Off+e.Len-off)
			if err := p.copyRegion(ctx, src, m, off, buf[:n]); err != nil {
				return err
			}
			off += n
			m.synced.Add(n)
			m.oos.Add(-n)
			p.resynced.Add(n)
		}
	}
	return p.finishResync(ctx, src, m, st, time.Since(started))
}

// copyRegion copies one range from src to the sync target under the
// region lock (a write to it waits; one after it reaches m directly).
func (p *Primary) copyRegion(ctx context.Context, src, m *member, off int64, buf []byte) error {
	p.gate.RLock()
	defer p.gate.RUnlock()
	unlock := p.lockRegions(off, int64(len(buf)))
	defer unlock()
	p.mu.Lock()
	state := m.state
	_, absent := p.viewLocked()
	p.mu.Unlock()
	if state != SyncTarget {
		return fmt.Errorf("%s left during resync", m.link.Node())
	}
	if err := p.call(ctx, func(ctx context.Context) error { return src.link.Read(ctx, p.epoch.Load(), off, buf) }); err != nil {
		if !errors.Is(err, ErrFenced) {
			go p.drop([]*member{src})
		}
		return fmt.Errorf("read %d from %s: %w", off, src.link.Node(), err)
	}
	var err error
	if isZero(buf) {
		err = p.call(ctx, func(ctx context.Context) error { return m.link.Trim(ctx, p.epoch.Load(), off, int64(len(buf)), absent) })
	} else {
		err = p.call(ctx, func(ctx context.Context) error { return m.link.Write(ctx, p.epoch.Load(), off, buf, absent) })
	}
	if err != nil {
		go p.drop([]*member{m})
		return fmt.Errorf("write %d to %s: %w", off, m.link.Node(), err)
	}
	return nil
}

var zeroRegion = make([]byte, regionSize)

func isZero(b []byte) bool { return bytes.Equal(b, zeroRegion[:len(b)]) }

// finishResync makes m consistent at the current generation: it inherits
// the source's bitmaps for replicas still absent, and the bitmaps kept
// for m are dropped.
func (p *Primary) finishResync(ctx context.Context, src, m *member, st Status, took time.Duration) error {
	node := m.link.Node()
	p.bumpMu.Lock()
	defer p.bumpMu.Unlock()
	p.mu.Lock()
	conn, absent := p.viewLocked()
	gen, still := p.gen, m.state == SyncTarget
	p.mu.Unlock()
	if !still {
		return fmt.Errorf("%s left during resync", node)
	}
	// m's own bitmaps described its old data; it now holds the source's.
	for peer := range st.Tracking {
		if err := m.link.DropBitmap(ctx, p.epoch.Load(), peer); err != nil {
			return err
		}
	}
	for _, peer := range absent {
		tr, words, ok, err := src.link.Bitmap(ctx, p.epoch.Load(), peer)
		if err == nil && ok {
			err = m.link.MergeBitmap(ctx, p.epoch.Load(), peer, tr, words)
		}
		if err != nil {
			return fmt.Errorf("hand over bitmap for %s: %w", peer, err)
		}
	}
	if err := m.link.Sync(ctx, p.epoch.Load()); err != nil {
		return err
	}
	sst, err := src.link.Hello(ctx, p.epoch.Load(), p.cfg.Self)
	if err != nil {
		return err
	}
	if err := m.link.SetGen(ctx, p.epoch.Load(), GenChange{Gen: gen, EndSync: true, History: sst.History, Forced: sst.Forced}); err != nil {
		return err
	}
	p.mu.Lock()
	m.state, m.discard = UpToDate, false
	p.mu.Unlock()
	for _, c := range conn {
		if c != m {
			if err := c.link.DropBitmap(ctx, p.epoch.Load(), node); err != nil {
				p.log.Warn("drop bitmap", "on", c.link.Node(), "for", node, "err", err)
			}
		}
	}
	p.resyncs.Add(1)
	p.log.Info("resync done", "node", node, "bytes", m.synced.Load(), "took", took.Round(time.Millisecond))
	return nil
}
