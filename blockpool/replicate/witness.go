package replicate

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"
)

// A witness is a diskless replica, DRBD's quorum tie-breaker: a volume of
// two data replicas gets a third member on another node that holds no
// data, only the replica state (epoch promised, lease, generation). It
// counts toward the quorum, so either data replica with the witness is a
// majority and writes go on while the other is down; a primary that has
// lost both the witness and the other replica stops, as one of three
// would. Because it takes every generation change, a returning data
// replica that is behind cannot win a majority with it against the copy
// that went on without it (see Open).
//
// The primary never reads from a witness, never resyncs one and keeps no
// out-of-sync bitmap for it; it confirms its epoch on the witness with
// every write (a Sync, which carries no data), so a write is acknowledged
// only by a majority that still recognises this primary.

// ErrWitness: a data operation reached a diskless tie-breaker.
var ErrWitness = errors.New("replicate: a diskless tie-breaker holds no data")

// CreateWitness makes a new witness of a volume of size bytes in dir.
func CreateWitness(dir, node string, size int64, lease time.Duration) (*Replica, error) {
	if size <= 0 || size%BlockSize != 0 {
		return nil, fmt.Errorf("replicate: size %d is not a positive multiple of %d", size, BlockSize)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, fmt.Errorf("witness %s: %w", dir, err)
	}
	if err := writeState(dir, state{Size: size, Witness: true}); err != nil {
		return nil, err
	}
	return OpenReplica(dir, node, lease)
}

// Witness reports whether the replica is a diskless tie-breaker.
func (r *Replica) Witness() bool { return r.witness }

// noData refuses an operation on a witness's (absent) data.
func (r *Replica) noData(what string) error {
	return fmt.Errorf("%s on %s: %w", what, r.dir, ErrWitness)
}

// resizeWitness records a witness's new volume size (for its status).
func (r *Replica) resizeWitness(size int64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.st
	st.Size = size
	if err := writeState(r.dir, st); err != nil {
		return err
	}
	r.st = st
	return nil
}

// rejoin takes a returning witness back: promised this primary's epoch,
// it takes the current generation (with generation changes held, so it
// cannot miss one) and counts toward the quorum again. There is nothing
// to copy.
func (p *Primary) rejoin(m *member) error {
	ctx := p.ctx
	if _, err := m.link.Promote(ctx, p.epoch.Load(), p.cfg.Self, p.mode()); err != nil {
		return err
	}
	p.bumpMu.Lock()
	defer p.bumpMu.Unlock()
	p.mu.Lock()
	gen := p.gen
	p.mu.Unlock()
	if err := p.call(ctx, func(ctx context.Context) error {
		return m.link.SetGen(ctx, p.epoch.Load(), GenChange{Gen: gen})
	}); err != nil {
		return err
	}
	p.mu.Lock()
	m.state = UpToDate
	p.mu.Unlock()
	p.log.Info("tie-breaker back", "node", m.link.Node(), "gen", gen)
	return nil
}
