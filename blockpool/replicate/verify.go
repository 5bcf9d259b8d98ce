package replicate

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/strata-storage/strata/blockpool"
)

// Online verification (DRBD's verify, Strata's volume scrub): every
// up-to-date replica's copy of a range is read and checked against its
// block checksums; a block that fails is rewritten from a replica where it
// is good, and copies that are each intact but differ are made the
// primary's source copy again.

// VerifyStats counts one verification.
type VerifyStats struct {
	Bytes         int64 `json:"bytes"`         // bytes read and checked, over all replicas
	BadBlocks     int64 `json:"bad_blocks"`    // blocks that failed their checksum on some replica
	Repaired      int64 `json:"repaired"`      // of those, rewritten from a good copy
	Unrecoverable int64 `json:"unrecoverable"` // bad on every up-to-date replica
	Mismatched    int64 `json:"mismatched"`    // intact blocks that differed between replicas (rewritten)
}

// Add sums o into st.
func (st *VerifyStats) Add(o VerifyStats) {
	st.Bytes += o.Bytes
	st.BadBlocks += o.BadBlocks
	st.Repaired += o.Repaired
	st.Unrecoverable += o.Unrecoverable
	st.Mismatched += o.Mismatched
}

// Verify checks [off, off+n) on every up-to-date replica, a region at a
// time (writes to that region wait). throttle, if set, is called before
// each region's reads with the bytes about to be read.
func (p *Primary) Verify(ctx context.Context, off, n int64, throttle func(context.Context, int) error) (VerifyStats, error) {
	var st VerifyStats
	if err := p.check(off, n); err != nil {
		return st, err
	}
	for at := off; at < off+n; {
		l := min(regionSize-at%regionSize, off+n-at)
		one, err := p.verifyRegion(ctx, at, l, throttle)
		st.Add(one)
		if err != nil {
			return st, err
		}
		at += l
	}
	return st, nil
}

func (p *Primary) verifyRegion(ctx context.Context, off, n int64, throttle func(context.Context, int) error) (VerifyStats, error) {
	var st VerifyStats
	ms := p.readOrder()
	if len(ms) == 0 {
		return st, ErrNoUpToDate
	}
	if throttle != nil {
		if err := throttle(ctx, int(n)*len(ms)); err != nil {
			return st, err
		}
	}
	p.gate.RLock()
	defer p.gate.RUnlock()
	unlock := p.lockRegions(off, n)
	defer unlock()
	copies := make([][]byte, len(ms))
	corrupt := make([]bool, len(ms))
	for i, m := range ms {
		buf := make([]byte, n)
		err := p.call(ctx, func(ctx context.Context) error { return m.link.Read(ctx, p.epoch.Load(), off, buf) })
		switch {
		case err == nil:
			copies[i] = buf
			st.Bytes += n
		case errors.Is(err, blockpool.ErrCorrupt):
			corrupt[i] = true
			st.Bytes += n
		default:
			go p.drop([]*member{m})
			return st, fmt.Errorf("verify %d on %s: %w", off, m.link.Node(), err)
		}
	}
	// Block by block: find a good copy, rewrite the others where they are
	// bad or differ.
	blk := make([]byte, BlockSize)
	for at := off; at < off+n; at += BlockSize {
		l := min(BlockSize, off+n-at)
		var good []byte
		var bad []int
		for i, m := range ms {
			if copies[i] != nil {
				if good == nil {
					good = copies[i][at-off : at-off+l]
				}
				continue
			}
			// The region failed on m: which of its blocks?
			err := p.call(ctx, func(ctx context.Context) error { return m.link.Read(ctx, p.epoch.Load(), at, blk[:l]) })
			switch {
			case err == nil:
				if good == nil {
					good = append([]byte(nil), blk[:l]...)
				}
			case errors.Is(err, blockpool.ErrCorrupt):
				bad = append(bad, i)
			default:
				return st, err
			}
		}
		if len(bad) > 0 {
			st.BadBlocks++
		}
		if good == nil {
			st.Unrecoverable++
			p.log.Error("volume block bad on every replica", "offset", at)
			continue
		}
		var fix []int
		fix = append(fix, bad...)
		for i := range ms {
			if copies[i] != nil && !bytes.Equal(copies[i][at-off:at-off+l], good) {
				st.Mismatched++
				fix = append(fix, i)
			}
		}
		for _, i := range fix {
			m := ms[i]
			if err := p.call(ctx, func(ctx context.Context) error { return m.link.Write(ctx, p.epoch.Load(), at, good, nil) }); err != nil {
				go p.drop([]*member{m})
				return st, fmt.Errorf("rewrite %d on %s: %w", at, m.link.Node(), err)
			}
		}
		if len(bad) > 0 {
			st.Repaired++
			p.repaired.Add(1)
		}
	}
	return st, nil
}
