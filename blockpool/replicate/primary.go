package replicate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strata-storage/strata/blockpool"
)

// Member states, as `volume list` shows them (DRBD's names).
const (
	UpToDate     = "UpToDate"
	SyncTarget   = "SyncTarget"   // connected, being resynced; receives new writes
	Outdated     = "Outdated"     // disconnected; its copy misses writes
	SplitBrain   = "SplitBrain"   // its data diverged under a forced primary: left alone until discarded
	Inconsistent = "Inconsistent" // disconnected in the middle of a resync
	Unknown      = "Unknown"      // unreachable since this primary started
)

// Config describes a primary.
type Config struct {
	Name  string // the volume
	Self  string // node the primary runs on
	Links []Link // one per replica
	// Witnesses are the nodes among Links' whose replica is a diskless
	// tie-breaker (witness.go). A replica that says it is one is treated
	// as one whether listed or not.
	Witnesses []string
	// CallTimeout bounds one call to a replica; RetryInterval is how often
	// disconnected replicas are tried and connected ones pinged.
	CallTimeout, RetryInterval time.Duration
	// Force makes this primary without a quorum and over another's lease,
	// as drbdadm primary --force: writes then need only one up-to-date
	// replica. Its generations are marked forced, so that if the other
	// side also wrote, the split brain is detected when they meet.
	Force bool
	// Weak: a primary for background work (resync, scrub) that a client's
	// attach on another node may take over (see Mode).
	Weak bool
	// Observe, if set, is told of every read and write.
	Observe func(op string, bytes int, d time.Duration)
	Log     *slog.Logger
}

// MemberInfo is one replica as the primary sees it.
type MemberInfo struct {
	Node           string `json:"node"`
	State          string `json:"state"`
	SyncSource     bool   `json:"sync_source"`       // the replica a resync copies from
	OutOfSyncBytes int64  `json:"out_of_sync_bytes"` // what a resync of it still has to copy
	SyncedBytes    int64  `json:"synced_bytes"`      // copied by the running (or last) resync
	// SyncRate is the running resync's bytes per second since it started;
	// SyncETA the seconds left at that rate (both 0 when none runs).
	SyncRate float64 `json:"sync_rate_bytes_per_second,omitempty"`
	SyncETA  float64 `json:"sync_eta_seconds,omitempty"`
	// Diskless: a tie-breaker (witness.go); UpToDate means it holds the
	// current generation and counts toward the quorum.
	Diskless bool `json:"diskless,omitempty"`
}

// Stats are the primary's counters.
type Stats struct {
	ReadBytes, WrittenBytes int64
	RepairedBlocks          int64 // bad blocks rewritten from a good replica
	ResyncedBytes           int64 // copied by resyncs
	Resyncs                 int64 // resyncs completed
}

type member struct {
	link    Link
	witness atomic.Bool // a diskless tie-breaker: counted, never read or resynced (learnt at a ping)
	state   string
	source  bool
	syncing bool
	discard bool // resolve a split brain: full sync over its data
	oos     atomic.Int64
	synced  atomic.Int64
	// syncStart is when the running resync started (Unix ns; 0: none).
	syncStart atomic.Int64
}

func (m *member) connected() bool { return m.state == UpToDate || m.state == SyncTarget }

// Primary is a replicated volume served by one node: every write goes to
// all connected replicas and is acknowledged when each of them has it and
// they are a majority (DRBD protocol C with quorum); reads come from an
// up-to-date replica and are verified, a bad block is rewritten from a good
// one. It implements the NBD export interface.
type Primary struct {
	cfg   Config
	log   *slog.Logger
	size  atomic.Int64
	epoch atomic.Uint64 // changes only with all I/O held (repromote)
	// q is the quorum: a majority of the members (1 when forced). It
	// changes when a member is added or removed (membership.go).
	q atomic.Int32

	// gate: I/O holds it shared; adding a replica back holds it
	// exclusively, so no write with the old absent list is in flight.
	gate   sync.RWMutex
	bumpMu sync.Mutex // serialises generation changes
	mu     sync.Mutex // members' states, gen
	gen    uint64
	ms     []*member
	fenced atomic.Bool
	weak   atomic.Bool

	regions [256]sync.Mutex // 1 MiB regions (striped): writes against resync copies

	readBytes, writtenBytes, repaired, resynced, resyncs atomic.Int64

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

const regionSize = 1 << 20

// Open makes this node the volume's primary: it needs a majority of the
// replicas, promises them a new epoch (fencing any older primary), finds
// the up-to-date copy and starts a new generation. Replicas that are
// behind are resynced in the background.
func Open(ctx context.Context, cfg Config) (*Primary, error) {
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = 10 * time.Second
	}
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	p := &Primary{cfg: cfg, log: cfg.Log.With("volume", cfg.Name)}
	p.setQuorum(len(cfg.Links))
	p.weak.Store(cfg.Weak)
	for _, l := range cfg.Links {
		m := &member{link: l, state: Unknown}
		m.witness.Store(slices.Contains(cfg.Witnesses, l.Node()))
		p.ms = append(p.ms, m)
	}
	hello := p.each(ctx, p.ms, func(ctx context.Context, m *member) (Status, error) { return m.link.Hello(ctx, 0, "") })
	var reach []*member
	var epoch uint64
	for i, m := range p.ms {
		if hello[i].err == nil {
			if hello[i].st.Witness {
				m.witness.Store(true)
			}
			reach = append(reach, m)
			epoch = max(epoch, hello[i].st.Epoch)
		}
	}
	if len(reach) < p.quorum() {
		return nil, fmt.Errorf("volume %s: %w: %d of %d reachable", cfg.Name, ErrNoQuorum, len(reach), len(p.ms))
	}
	p.epoch.Store(epoch + 1)
	prom := p.each(ctx, reach, func(ctx context.Context, m *member) (Status, error) {
		return m.link.Promote(ctx, p.epoch.Load(), cfg.Self, p.mode())
	})
	var ok []*member
	var sts []Status
	var refusal error
	for i, m := range reach {
		if prom[i].err != nil {
			refusal = prom[i].err
			continue
		}
		ok, sts = append(ok, m), append(sts, prom[i].st)
	}
	if len(ok) < p.quorum() {
		p.release(ok)
		if refusal == nil {
			refusal = ErrNoQuorum
		}
		return nil, fmt.Errorf("volume %s: %w", cfg.Name, refusal)
	}
	// The newest generation counts the witnesses' too: a witness that
	// took a generation the reachable data replicas missed proves a copy
	// newer than theirs is elsewhere, and none of them may serve.
	var newest uint64
	for _, st := range sts {
		newest = max(newest, st.Newest())
	}
	var current []*member
	var currentSt []Status
	var unsettled []Extent
	var src Status
	for i, m := range ok {
		if !m.witness.Load() && !sts[i].Inconsistent && sts[i].Gen == newest {
			src = sts[i]
		}
	}
	for i, m := range ok {
		switch {
		case m.witness.Load():
			m.state = UpToDate // it takes the new generation below
		case !sts[i].Inconsistent && sts[i].Gen == newest:
			current, currentSt = append(current, m), append(currentSt, sts[i])
			unsettled = append(unsettled, sts[i].Unsettled...)
		case sts[i].Inconsistent:
			m.state = Inconsistent
		case Diverged(src, sts[i]):
			m.state = SplitBrain
			p.log.Error("split brain: this replica's data diverged from the newest copy under a forced primary; it is left as it is until discarded", "node", m.link.Node(), "gen", sts[i].Gen, "newest", newest)
		default:
			m.state = Outdated
		}
	}
	if len(current) == 0 {
		p.release(ok)
		return nil, fmt.Errorf("volume %s: %w (newest generation %d is on no reachable consistent replica)", cfg.Name, ErrNoUpToDate, newest)
	}
	p.size.Store(currentSt[0].Size)
	for i, m := range current {
		m.state = UpToDate
		if currentSt[i].Size != p.size.Load() {
			p.release(ok)
			return nil, fmt.Errorf("volume %s: replicas disagree on size (%d and %d)", cfg.Name, currentSt[i].Size, p.size.Load())
		}
	}
	// Generations: the epoch in the top bits (newer primaries win), a
	// random part (two forced primaries of the same epoch differ), then a
	// counter.
	p.gen = max(p.epoch.Load()<<40|uint64(rand.Uint32()&0xffffff)<<16, newest+1)
	p.ctx, p.cancel = context.WithCancel(context.Background())
	// Writes that were in flight when the last primary stopped may have
	// reached some replicas and not others: make the up-to-date ones
	// agree there before serving.
	// So may writes one of them took while another was away (a primary
	// that lost its quorum): their bitmaps for each other name them.
	diverging, err := p.mutualBitmaps(ctx, current)
	if err != nil {
		p.release(ok)
		return nil, fmt.Errorf("volume %s: %w", cfg.Name, err)
	}
	if err := p.settle(ctx, current, MergeExtents(append(unsettled, diverging...))); err != nil {
		p.release(ok)
		return nil, fmt.Errorf("volume %s: %w", cfg.Name, err)
	}
	// The new generation, with bitmaps for every replica not current.
	p.mu.Lock()
	conn, absent := p.viewLocked()
	p.mu.Unlock()
	for _, a := range current {
		for _, b := range current {
			if a != b {
				a.link.DropBitmap(ctx, p.epoch.Load(), b.link.Node())
			}
		}
	}
	res := p.each(ctx, conn, func(ctx context.Context, m *member) (Status, error) {
		return Status{}, m.link.SetGen(ctx, p.epoch.Load(), GenChange{Gen: p.gen, Track: absent, Base: newest, Forced: cfg.Force})
	})
	var failed []*member
	for i, r := range res {
		if r.err != nil {
			failed = append(failed, conn[i])
		}
	}
	if len(failed) > 0 {
		p.drop(failed)
	}
	p.wg.Add(1)
	go p.run()
	p.log.Info("volume primary", "epoch", p.epoch.Load(), "gen", p.gen, "members", p.Members())
	return p, nil
}

// mutualBitmaps collects what current members' bitmaps hold for each
// other.
func (p *Primary) mutualBitmaps(ctx context.Context, ms []*member) ([]Extent, error) {
	var out []Extent
	for _, a := range ms {
		for _, b := range ms {
			if a == b {
				continue
			}
			tr, words, ok, err := a.link.Bitmap(ctx, p.epoch.Load(), b.link.Node())
			if err != nil {
				return nil, err
			}
			if ok && tr.Full {
				return []Extent{{0, p.size.Load()}}, nil
			}
			if ok {
				out = append(out, Runs(words, p.size.Load(), regionSize)...)
			}
		}
	}
	return out, nil
}

// settle copies the extents from the first member to the others.
func (p *Primary) settle(ctx context.Context, ms []*member, ext []Extent) error {
	if len(ms) < 2 || len(ext) == 0 {
		return nil
	}
	buf := make([]byte, regionSize)
	for _, e := range ext {
		for off := e.Off; off < e.Off+e.Len; off += regionSize {
			n := min(regionSize, e.Off+e.Len-off)
			if err := p.call(ctx, func(ctx context.Context) error { return ms[0].link.Read(ctx, p.epoch.Load(), off, buf[:n]) }); err != nil {
				return fmt.Errorf("settle from %s: %w", ms[0].link.Node(), err)
			}
			for _, m := range ms[1:] {
				if err := p.call(ctx, func(ctx context.Context) error { return m.link.Write(ctx, p.epoch.Load(), off, buf[:n], nil) }); err != nil {
					return fmt.Errorf("settle %s: %w", m.link.Node(), err)
				}
			}
		}
	}
	return nil
}

type result struct {
	st  Status
	err error
}

// each calls fn for every member in parallel, each call bounded.
func (p *Primary) each(ctx context.Context, ms []*member, fn func(context.Context, *member) (Status, error)) []result {
	out := make([]result, len(ms))
	one := func(i int) {
		cctx, cancel := context.WithTimeout(ctx, p.cfg.CallTimeout)
		defer cancel()
		out[i].st, out[i].err = fn(cctx, ms[i])
	}
	// This node's replica is called on this goroutine, the others in
	// parallel: a handoff costs more than a local 4 KiB write.
	inline := len(ms) - 1
	for i, m := range ms {
		if m.link.Node() == p.cfg.Self {
			inline = i
		}
	}
	var wg sync.WaitGroup
	for i := range ms {
		if i != inline {
			wg.Add(1)
			go func() {
				defer wg.Done()
				one(i)
			}()
		}
	}
	if inline >= 0 {
		one(inline)
	}
	wg.Wait()
	return out
}

func (p *Primary) call(ctx context.Context, fn func(context.Context) error) error {
	cctx, cancel := context.WithTimeout(ctx, p.cfg.CallTimeout)
	defer cancel()
	return fn(cctx)
}

func (p *Primary) release(ms []*member) {
	p.each(context.Background(), ms, func(ctx context.Context, m *member) (Status, error) {
		return Status{}, m.link.Release(ctx, p.epoch.Load())
	})
}

// connectedMembers returns the members that get writes.
func (p *Primary) connectedMembers() []*member {
	p.mu.Lock()
	defer p.mu.Unlock()
	conn, _ := p.viewLocked()
	return conn
}

// viewLocked returns the connected members and the nodes of the data
// replicas among the others (the absent ones that bitmaps are kept for).
func (p *Primary) viewLocked() (conn []*member, absent []string) {
	for _, m := range p.ms {
		if m.connected() {
			conn = append(conn, m)
		} else if !m.witness.Load() {
			absent = append(absent, m.link.Node())
		}
	}
	return conn, absent
}

// drop disconnects members after a failed call: the others move to a new
// generation (so the dropped ones are known to be behind) and keep
// out-of-sync bitmaps for them. It returns once that is durable.
func (p *Primary) drop(ms []*member) {
	for len(ms) > 0 {
		p.bumpMu.Lock()
		p.mu.Lock()
		going := map[*member]bool{}
		var dropped []string
		for _, m := range ms {
			if m.connected() && !going[m] {
				going[m] = true
				dropped = append(dropped, m.link.Node())
			}
		}
		if len(dropped) == 0 {
			p.mu.Unlock()
			p.bumpMu.Unlock()
			return
		}
		var survivors []*member
		var absent []string
		for _, m := range p.ms {
			if m.connected() && !going[m] {
				survivors = append(survivors, m)
			} else if !m.witness.Load() {
				absent = append(absent, m.link.Node())
			}
		}
		base, gen := p.gen, p.gen
		if len(survivors) >= p.quorum() {
			// Writes go on: the dropped replicas must be known to be
			// behind. Without a quorum nothing more is acknowledged, and
			// the generation stays (so no copy looks newer than it is).
			gen++
		}
		p.mu.Unlock()
		p.log.Warn("replica disconnected", "nodes", dropped, "gen", gen)
		// The survivors keep bitmaps for the dropped before any write
		// treats them as absent (a write that found no bitmap would have
		// to mark everything). Not the primary's context: a drop noticed
		// while closing must still be recorded.
		res := p.each(context.Background(), survivors, func(ctx context.Context, m *member) (Status, error) {
			return Status{}, m.link.SetGen(ctx, p.epoch.Load(), GenChange{Gen: gen, Track: absent, Base: base, Forced: p.cfg.Force})
		})
		p.mu.Lock()
		for m := range going {
			switch m.state {
			case UpToDate:
				m.state = Outdated
			case SyncTarget:
				m.state = Inconsistent
			}
			m.source = false
		}
		p.gen = gen
		p.mu.Unlock()
		p.bumpMu.Unlock()
		ms = nil
		for i, r := range res {
			if r.err != nil {
				ms = append(ms, survivors[i])
			}
		}
	}
}

func (p *Primary) bg() context.Context {
	if p.ctx != nil {
		return p.ctx
	}
	return context.Background()
}

// lockRegions takes the stripes of the 1 MiB regions of [off, off+n).
func (p *Primary) lockRegions(off, n int64) func() {
	if n <= 0 {
		return func() {}
	}
	seen := map[int]bool{}
	var idx []int
	for r := off / regionSize; r <= (off+n-1)/regionSize; r++ {
		i := int(r % int64(len(p.regions)))
		if !seen[i] {
			seen[i] = true
			idx = append(idx, i)
		}
		if len(idx) == len(p.regions) {
			break
		}
	}
	sort.Ints(idx)
	for _, i := range idx {
		p.regions[i].Lock()
	}
	return func() {
		for _, i := range idx {
			p.regions[i].Unlock()
		}
	}
}

func (p *Primary) mode() Mode { return Mode{Force: p.cfg.Force, Weak: p.weak.Load()} }

// Weak reports whether this is a background primary.
func (p *Primary) Weak() bool { return p.weak.Load() }

// Strengthen turns a background primary into a client's: its replicas
// stop yielding to an attach elsewhere.
func (p *Primary) Strengthen() error {
	if !p.weak.Load() {
		return nil
	}
	p.gate.Lock()
	defer p.gate.Unlock()
	conn := p.connectedMembers()
	ok := 0
	for _, r := range p.each(p.bg(), conn, func(ctx context.Context, m *member) (Status, error) {
		return m.link.Promote(ctx, p.epoch.Load(), p.cfg.Self, Mode{Force: p.cfg.Force})
	}) {
		if r.err == nil {
			ok++
		}
	}
	if ok < p.quorum() {
		return fmt.Errorf("volume %s: %w", p.cfg.Name, ErrNoQuorum)
	}
	p.weak.Store(false)
	return nil
}

// Size is the volume size.
func (p *Primary) Size() int64 { return p.size.Load() }

// Epoch is this primary's epoch.
func (p *Primary) Epoch() uint64 { return p.epoch.Load() }

func (p *Primary) check(off, n int64) error {
	if p.fenced.Load() {
		return ErrFenced
	}
	if off < 0 || n < 0 || off+n > p.size.Load() {
		return fmt.Errorf("%w: offset %d length %d size %d", blockpool.ErrOutOfRange, off, n, p.size.Load())
	}
	return nil
}

// WriteAt writes to every connected replica.
func (p *Primary) WriteAt(b []byte, off int64) (int, error) {
	start := time.Now()
	err := p.mutate(off, int64(len(b)), func(ctx context.Context, m *member, absent []string) error {
		return m.link.Write(ctx, p.epoch.Load(), off, b, absent)
	})
	if err != nil {
		return 0, err
	}
	p.writtenBytes.Add(int64(len(b)))
	if p.cfg.Observe != nil {
		p.cfg.Observe("write", len(b), time.Since(start))
	}
	return len(b), nil
}

// Trim discards a range on every connected replica.
func (p *Primary) Trim(off, n int64) error {
	return p.mutate(off, n, func(ctx context.Context, m *member, absent []string) error {
		return m.link.Trim(ctx, p.epoch.Load(), off, n, absent)
	})
}

// mutate applies a change to the connected replicas; a replica that fails
// is dropped (the change is marked out of sync for it on the others) and
// the change is acknowledged only if a majority, one of them up to date,
// has it.
func (p *Primary) mutate(off, n int64, fn func(context.Context, *member, []string) error) error {
	if err := p.check(off, n); err != nil {
		return err
	}
	p.gate.RLock()
	defer p.gate.RUnlock()
	unlock := p.lockRegions(off, n)
	defer unlock()
	p.mu.Lock()
	conn, absent := p.viewLocked()
	p.mu.Unlock()
	if len(conn) < p.quorum() {
		return fmt.Errorf("volume %s: write refused: %w (%d of %d replicas connected)", p.cfg.Name, ErrNoQuorum, len(conn), len(p.ms))
	}
	var fenced error
	for attempt := 0; ; attempt++ {
		res := p.each(p.bg(), conn, func(ctx context.Context, m *member) (Status, error) {
			if m.witness.Load() {
				// No data: it confirms it still counts for this epoch.
				return Status{}, m.link.Sync(ctx, p.epoch.Load())
			}
			return Status{}, fn(ctx, m, absent)
		})
		var failed, good []*member
		for i, r := range res {
			if r.err != nil {
				if errors.Is(r.err, ErrFenced) {
					fenced = r.err
				}
				p.log.Warn("replica write failed", "node", conn[i].link.Node(), "err", r.err)
				failed = append(failed, conn[i])
			} else {
				good = append(good, conn[i])
			}
		}
		if len(failed) == 0 {
			if p.quorate(good) {
				return nil
			}
			break
		}
		p.drop(failed)
		if len(good) == 0 || attempt == 2 {
			break
		}
		// Again on the survivors, now with the dropped replicas absent,
		// so that their bitmaps hold this change (even when too few are
		// left to acknowledge it: it reached them, the others must get
		// it or its overwrite when they return).
		p.mu.Lock()
		conn, absent = nil, nil
		c, a := p.viewLocked()
		for _, m := range c {
			for _, g := range good {
				if m == g {
					conn = append(conn, m)
				}
			}
		}
		absent = a
		p.mu.Unlock()
	}
	if fenced != nil {
		return p.fencedOut(fenced)
	}
	return fmt.Errorf("volume %s: write failed: %w", p.cfg.Name, ErrNoQuorum)
}

func (p *Primary) quorate(good []*member) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	up := 0
	for _, m := range good {
		if m.state == UpToDate && !m.witness.Load() {
			up++
		}
	}
	return up > 0 && len(good) >= p.quorum()
}

// Sync flushes every connected replica.
func (p *Primary) Sync() error {
	if p.fenced.Load() {
		return ErrFenced
	}
	p.gate.RLock()
	defer p.gate.RUnlock()
	conn := p.connectedMembers()
	if len(conn) < p.quorum() {
		return fmt.Errorf("volume %s: flush refused: %w", p.cfg.Name, ErrNoQuorum)
	}
	res := p.each(p.bg(), conn, func(ctx context.Context, m *member) (Status, error) {
		return Status{}, m.link.Sync(ctx, p.epoch.Load())
	})
	var failed, good []*member
	var fenced error
	for i, r := range res {
		if r.err != nil {
			if errors.Is(r.err, ErrFenced) {
				fenced = r.err
			}
			failed = append(failed, conn[i])
		} else {
			good = append(good, conn[i])
		}
	}
	if len(failed) > 0 {
		p.drop(failed)
	}
	if !p.quorate(good) && fenced != nil {
		return p.fencedOut(fenced)
	}
	if !p.quorate(good) {
		return fmt.Errorf("volume %s: flush failed: %w", p.cfg.Name, ErrNoQuorum)
	}
	return nil
}

// ReadAt reads from an up-to-date replica (this node's first). A replica
// whose copy fails its checksums is repaired from the one that answers.
func (p *Primary) ReadAt(b []byte, off int64) (int, error) {
	if err := p.check(off, int64(len(b))); err != nil {
		return 0, err
	}
	start := time.Now()
	p.gate.RLock()
	defer p.gate.RUnlock()
	var bad []*member
	var lastErr error
	for _, m := range p.readOrder() {
		err := p.call(p.bg(), func(ctx context.Context) error { return m.link.Read(ctx, p.epoch.Load(), off, b) })
		switch {
		case err == nil:
			for _, badm := range bad {
				p.repair(badm, m, off, int64(len(b)))
			}
			p.readBytes.Add(int64(len(b)))
			if p.cfg.Observe != nil {
				p.cfg.Observe("read", len(b), time.Since(start))
			}
			return len(b), nil
		case errors.Is(err, blockpool.ErrCorrupt):
			bad = append(bad, m)
		default:
			p.drop([]*member{m})
		}
		lastErr = err
	}
	if lastErr == nil {
		lastErr = ErrNoUpToDate
	}
	return 0, fmt.Errorf("volume %s: read at %d: %w", p.cfg.Name, off, lastErr)
}

func (p *Primary) readOrder() []*member {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*member
	for _, m := range p.ms {
		if m.state == UpToDate && !m.witness.Load() {
			if m.link.Node() == p.cfg.Self {
				out = append([]*member{m}, out...)
			} else {
				out = append(out, m)
			}
		}
	}
	return out
}

// repair finds the blocks of [off, off+n) that fail on bad and rewrites
// them from good, under the region lock so no write races the copy.
func (p *Primary) repair(bad, good *member, off, n int64) {
	unlock := p.lockRegions(off, n)
	defer unlock()
	buf := make([]byte, BlockSize)
	for at := off / BlockSize * BlockSize; at < off+n; at += BlockSize {
		l := min(BlockSize, p.size.Load()-at)
		err := p.call(p.bg(), func(ctx context.Context) error { return bad.link.Read(ctx, p.epoch.Load(), at, buf[:l]) })
		if !errors.Is(err, blockpool.ErrCorrupt) {
			continue
		}
		if err := p.call(p.bg(), func(ctx context.Context) error { return good.link.Read(ctx, p.epoch.Load(), at, buf[:l]) }); err != nil {
			p.log.Warn("repair: good copy unreadable", "offset", at, "err", err)
			return
		}
		if err := p.call(p.bg(), func(ctx context.Context) error { return bad.link.Write(ctx, p.epoch.Load(), at, buf[:l], nil) }); err != nil {
			p.log.Warn("repair: rewrite failed", "node", bad.link.Node(), "offset", at, "err", err)
			p.drop([]*member{bad})
			return
		}
		p.repaired.Add(1)
		p.log.Warn("bad block rewritten from a good replica", "node", bad.link.Node(), "offset", at, "from", good.link.Node())
	}
}

// ErrDegraded: an operation that needs every replica up to date found one
// that is not.
var ErrDegraded = errors.New("replicate: not every replica is up to date")

// Exclusive runs fn with all I/O held and every connected replica flushed:
// fn gets the epoch and the links of the up-to-date data replicas. With
// needAll, it refuses unless every data replica is up to date.
func (p *Primary) Exclusive(needAll bool, fn func(ctx context.Context, epoch uint64, upToDate []Link) error) error {
	if p.fenced.Load() {
		return ErrFenced
	}
	p.gate.Lock()
	defer p.gate.Unlock()
	p.mu.Lock()
	var links []Link
	data := 0
	for _, m := range p.ms {
		if !m.witness.Load() {
			data++
		}
		if m.state == UpToDate && !m.witness.Load() {
			links = append(links, m.link)
		}
	}
	conn, _ := p.viewLocked()
	p.mu.Unlock()
	if needAll && len(links) != data {
		return fmt.Errorf("volume %s: %w (%d of %d)", p.cfg.Name, ErrDegraded, len(links), data)
	}
	if len(conn) < p.quorum() {
		return fmt.Errorf("volume %s: %w", p.cfg.Name, ErrNoQuorum)
	}
	for _, r := range p.each(p.bg(), conn, func(ctx context.Context, m *member) (Status, error) {
		return Status{}, m.link.Sync(ctx, p.epoch.Load())
	}) {
		if r.err != nil {
			return fmt.Errorf("volume %s: flush before an exclusive operation: %w", p.cfg.Name, r.err)
		}
	}
	ctx, cancel := context.WithTimeout(p.bg(), 10*time.Minute)
	defer cancel()
	return fn(ctx, p.epoch.Load(), links)
}

// Restore rolls every replica (all must be up to date) back to the
// snapshot called name, of size bytes.
func (p *Primary) Restore(name string, size int64) error {
	return p.resizing("restore", size, func(ctx context.Context, epoch uint64, l Link) error { return l.Restore(ctx, epoch, name) })
}

// Resize grows or shrinks the volume on every replica (all must be up to
// date).
func (p *Primary) Resize(size int64) error {
	return p.resizing("resize", size, func(ctx context.Context, epoch uint64, l Link) error { return l.Resize(ctx, epoch, size) })
}

// resizing runs fn on every replica with all I/O held (all must be up to
// date); the volume is size bytes afterwards.
func (p *Primary) resizing(what string, size int64, fn func(context.Context, uint64, Link) error) error {
	return p.Exclusive(true, func(ctx context.Context, epoch uint64, links []Link) error {
		for _, l := range links {
			if err := fn(ctx, epoch, l); err != nil {
				return fmt.Errorf("%s on %s: %w", what, l.Node(), err)
			}
		}
		p.size.Store(size)
		return nil
	})
}

// Members reports each replica's state.
func (p *Primary) Members() []MemberInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]MemberInfo, len(p.ms))
	for i, m := range p.ms {
		out[i] = MemberInfo{Node: m.link.Node(), State: m.state, SyncSource: m.source, OutOfSyncBytes: m.oos.Load(), SyncedBytes: m.synced.Load(), Diskless: m.witness.Load()}
		if start := m.syncStart.Load(); start != 0 {
			out[i].SyncRate, out[i].SyncETA = syncRate(out[i].SyncedBytes, out[i].OutOfSyncBytes, time.Since(time.Unix(0, start)))
		}
	}
	return out
}

// syncRate is a resync's rate after elapsed with done bytes copied, and
// the seconds left for the left bytes at it.
func syncRate(done, left int64, elapsed time.Duration) (rate, eta float64) {
	if elapsed <= 0 || done <= 0 {
		return 0, 0
	}
	rate = float64(done) / elapsed.Seconds()
	return rate, float64(max(left, 0)) / rate
}

// Stats reports the counters.
func (p *Primary) Stats() Stats {
	return Stats{ReadBytes: p.readBytes.Load(), WrittenBytes: p.writtenBytes.Load(), RepairedBlocks: p.repaired.Load(), ResyncedBytes: p.resynced.Load(), Resyncs: p.resyncs.Load()}
}

// Close stops the primary: replicas are flushed and released, so another
// node may become primary at once.
func (p *Primary) Close() error {
	p.cancel()
	p.wg.Wait()
	p.gate.Lock()
	defer p.gate.Unlock()
	conn := p.connectedMembers()
	var errs []error
	for _, r := range p.each(context.Background(), conn, func(ctx context.Context, m *member) (Status, error) {
		if err := m.link.Sync(ctx, p.epoch.Load()); err != nil {
			return Status{}, err
		}
		return Status{}, m.link.Release(ctx, p.epoch.Load())
	}) {
		errs = append(errs, r.err)
	}
	return errors.Join(errs...)
}
