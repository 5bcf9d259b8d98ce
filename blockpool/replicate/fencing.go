package replicate

import (
	"context"
	"fmt"
)

// Fencing and split brain: epochs keep an old primary from writing; a
// forced primary can still make two sides diverge, which is found by
// comparing generation histories and resolved by the operator.

// Diverged reports a split brain between two consistent copies: neither
// generation is in the other's history and a forced primary wrote one of
// them. (Without forcing, generations only move on with a quorum, so one
// copy is always the other's ancestor.)
func Diverged(a, b Status) bool {
	if a.Inconsistent || b.Inconsistent || a.Gen == b.Gen || !(a.Forced || b.Forced) {
		return false
	}
	has := func(h []uint64, g uint64) bool {
		for _, x := range h {
			if x == g {
				return true
			}
		}
		return false
	}
	return !has(a.History, b.Gen) && !has(b.History, a.Gen)
}

// fencedOut records that writes lost their quorum to replicas promised
// to a newer primary: this one is deposed, and its I/O fails from now on.
func (p *Primary) fencedOut(err error) error {
	if !p.fenced.Swap(true) {
		p.log.Error("this primary has been fenced by a newer one; I/O now fails", "err", err)
	}
	return fmt.Errorf("volume %s: %w", p.cfg.Name, ErrFenced)
}

// Discard resolves a split brain on node: its diverged data is thrown
// away and replaced by a full resync from an up-to-date replica.
func (p *Primary) Discard(node string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := p.member(node)
	if m == nil {
		return fmt.Errorf("volume %s: no replica on %s", p.cfg.Name, node)
	}
	if m.state != SplitBrain {
		return fmt.Errorf("volume %s: the replica on %s is %s, not in split brain", p.cfg.Name, node, m.state)
	}
	m.state, m.discard = Outdated, true
	return nil
}

func (p *Primary) markSplit(m *member, st Status) {
	p.mu.Lock()
	m.state = SplitBrain
	p.mu.Unlock()
	p.log.Error("split brain: this replica's data diverged from the primary's under a forced primary; it is left as it is until discarded", "node", m.link.Node(), "gen", st.Gen)
}

// repromote moves this primary to an epoch above seen, with all I/O held:
// a replica that promised the current epoch (or a newer one) to a primary
// that is gone, a forced one, can then be taken back.
func (p *Primary) repromote(seen uint64) error {
	p.gate.Lock()
	defer p.gate.Unlock()
	p.bumpMu.Lock()
	conn := p.connectedMembers()
	next := max(p.epoch.Load(), seen) + 1
	res := p.each(p.bg(), conn, func(ctx context.Context, m *member) (Status, error) {
		return m.link.Promote(ctx, next, p.cfg.Self, p.mode())
	})
	var failed []*member
	for i, r := range res {
		if r.err != nil {
			failed = append(failed, conn[i])
		}
	}
	ok := len(conn)-len(failed) >= p.quorum()
	if ok {
		p.epoch.Store(next)
	}
	p.bumpMu.Unlock()
	if len(failed) > 0 {
		p.drop(failed)
	}
	if !ok {
		return fmt.Errorf("epoch %d: %w", next, ErrNoQuorum)
	}
	p.log.Info("primary moved to a newer epoch", "epoch", next)
	return nil
}
