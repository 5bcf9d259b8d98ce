package replicate

import (
	"context"
	"time"
)

// Changing a running primary's replicas: a replacement joins while the
// replica it replaces leaves (a drained node, a failed zone), with no
// client detaching. A new member starts absent; the next tick finds it
// answering and resyncs it in full, since no bitmap holds its history.
// The quorum is a majority of the members at every moment, so a dead
// member is removed before its replacement is added (else the quorum
// would count it), and a live one after its replacement is in sync.

func (p *Primary) quorum() int { return int(p.q.Load()) }

func (p *Primary) setQuorum(members int) {
	if p.cfg.Force {
		p.q.Store(1)
		return
	}
	p.q.Store(int32(members/2 + 1))
}

// MemberNodes lists the nodes of the primary's replicas.
func (p *Primary) MemberNodes() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, 0, len(p.ms))
	for _, m := range p.ms {
		out = append(out, m.link.Node())
	}
	return out
}

// Connected reports whether node's replica receives writes.
func (p *Primary) Connected(node string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := p.member(node)
	return m != nil && m.connected()
}

// AddMember adds a replica; it is resynced in full once it answers.
func (p *Primary) AddMember(l Link) {
	p.bumpMu.Lock()
	defer p.bumpMu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.member(l.Node()) != nil {
		return
	}
	p.ms = append(p.ms, &member{link: l, state: Unknown})
	p.setQuorum(len(p.ms))
	p.log.Info("replica added", "node", l.Node(), "members", len(p.ms))
}

// RemoveMember stops replicating to node's replica (with no write in
// flight to it) and releases it.
func (p *Primary) RemoveMember(node string) {
	p.gate.Lock()
	p.bumpMu.Lock()
	p.mu.Lock()
	var gone *member
	kept := p.ms[:0:0]
	for _, m := range p.ms {
		if m.link.Node() == node {
			gone = m
			continue
		}
		kept = append(kept, m)
	}
	if gone != nil {
		p.ms = kept
		p.setQuorum(len(p.ms))
	}
	p.mu.Unlock()
	p.bumpMu.Unlock()
	p.gate.Unlock()
	if gone == nil {
		return
	}
	p.log.Info("replica removed", "node", node, "members", len(kept))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	gone.link.Release(ctx, p.epoch.Load())
}
