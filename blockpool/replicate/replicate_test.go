package replicate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-storage/strata/blockpool"
)

// cutLink is a link whose network can be cut: every call fails while cut,
// as a call to a dead or partitioned node does.
type cutLink struct {
	LocalLink
	cut atomic.Bool
}

var errCut = errors.New("link cut")

func (l *cutLink) err() error {
	if l.cut.Load() {
		return errCut
	}
	return nil
}
func (l *cutLink) Hello(ctx context.Context, e uint64, p string) (Status, error) {
	if err := l.err(); err != nil {
		return Status{}, err
	}
	return l.LocalLink.Hello(ctx, e, p)
}
func (l *cutLink) Promote(ctx context.Context, e uint64, p string, f Mode) (Status, error) {
	if err := l.err(); err != nil {
		return Status{}, err
	}
	return l.LocalLink.Promote(ctx, e, p, f)
}
func (l *cutLink) Release(ctx context.Context, e uint64) error {
	return l.ifUp(func() error { return l.LocalLink.Release(ctx, e) })
}
func (l *cutLink) ifUp(fn func() error) error {
	if l.cut.Load() {
		return errCut
	}
	return fn()
}
func (l *cutLink) Write(ctx context.Context, e uint64, off int64, p []byte, a []string) error {
	return l.ifUp(func() error { return l.LocalLink.Write(ctx, e, off, p, a) })
}
func (l *cutLink) Trim(ctx context.Context, e uint64, off, n int64, a []string) error {
	return l.ifUp(func() error { return l.LocalLink.Trim(ctx, e, off, n, a) })
}
func (l *cutLink) Read(ctx context.Context, e uint64, off int64, p []byte) error {
	return l.ifUp(func() error { return l.LocalLink.Read(ctx, e, off, p) })
}
func (l *cutLink) Sync(ctx context.Context, e uint64) error {
	return l.ifUp(func() error { return l.LocalLink.Sync(ctx, e) })
}
func (l *cutLink) SetGen(ctx context.Context, e uint64, g GenChange) error {
	return l.ifUp(func() error { return l.LocalLink.SetGen(ctx, e, g) })
}
func (l *cutLink) Bitmap(ctx context.Context, e uint64, peer string) (Track, []uint64, bool, error) {
	if err := l.err(); err != nil {
		return Track{}, nil, false, err
	}
	return l.LocalLink.Bitmap(ctx, e, peer)
}
func (l *cutLink) MergeBitmap(ctx context.Context, e uint64, peer string, t Track, w []uint64) error {
	return l.ifUp(func() error { return l.LocalLink.MergeBitmap(ctx, e, peer, t, w) })
}
func (l *cutLink) DropBitmap(ctx context.Context, e uint64, peer string) error {
	return l.ifUp(func() error { return l.LocalLink.DropBitmap(ctx, e, peer) })
}

type rig struct {
	t     *testing.T
	dirs  []string
	reps  []*Replica
	links []*cutLink
	size  int64
}

const testLease = 300 * time.Millisecond

// newRig makes n replicas, n0 to n<n-1>; those whose indexes are among
// witnesses are diskless tie-breakers.
func newRig(t *testing.T, n int, size int64, witnesses ...int) *rig {
	r := &rig{t: t, size: size}
	base := t.TempDir()
	for i := range n {
		dir := filepath.Join(base, fmt.Sprintf("n%d", i))
		create := CreateReplica
		if slices.Contains(witnesses, i) {
			create = CreateWitness
		}
		rep, err := create(dir, fmt.Sprintf("n%d", i), size, testLease)
		if err != nil {
			t.Fatal(err)
		}
		r.dirs, r.reps = append(r.dirs, dir), append(r.reps, rep)
		r.links = append(r.links, &cutLink{LocalLink: LocalLink{rep}})
	}
	t.Cleanup(func() {
		for _, rep := range r.reps {
			rep.Close()
		}
	})
	return r
}

func (r *rig) open(self int) (*Primary, error) {
	var links []Link
	for _, l := range r.links {
		links = append(links, l)
	}
	return Open(context.Background(), Config{Name: "v", Self: fmt.Sprintf("n%d", self), Links: links, CallTimeout: 2 * time.Second, RetryInterval: 50 * time.Millisecond, Log: quiet})
}

func (r *rig) mustOpen(self int) *Primary {
	p, err := r.open(self)
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { p.Close() })
	return p
}

// image reads replica i's whole volume, verified.
func (r *rig) image(i int) []byte {
	b := make([]byte, r.size)
	if _, err := r.reps[i].Volume().ReadAt(b, 0); err != nil {
		r.t.Fatalf("replica %d: %v", i, err)
	}
	return b
}

func (r *rig) waitState(p *Primary, node, state string) {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, m := range p.Members() {
			if m.Node == node && m.State == state {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.t.Fatalf("%s never became %s: %+v", node, state, p.Members())
}

func randBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func TestReplicatedWritesReachEveryReplica(t *testing.T) {
	r := newRig(t, 3, 16<<20)
	p := r.mustOpen(0)
	rng := rand.New(rand.NewPCG(1, 2))
	shadow := make([]byte, r.size)
	for range 200 {
		off := rng.Int64N(r.size - 70000)
		b := randBytes(rng, 1+rng.IntN(70000))
		if _, err := p.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
		copy(shadow[off:], b)
	}
	if err := p.Trim(4096, 1<<20); err != nil {
		t.Fatal(err)
	}
	clear(shadow[4096 : 4096+1<<20])
	if err := p.Sync(); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, r.size)
	if _, err := p.ReadAt(got, 0); err != nil || !bytes.Equal(got, shadow) {
		t.Fatalf("read back differs (err %v)", err)
	}
	for i := range r.reps {
		if !bytes.Equal(r.image(i), shadow) {
			t.Fatalf("replica %d differs", i)
		}
	}
	if _, err := p.WriteAt([]byte{1}, r.size); err == nil {
		t.Fatal("write beyond the end accepted")
	}
}

func TestOutdatedReplicaResyncsOnlyChangedRegions(t *testing.T) {
	r := newRig(t, 3, 64<<20)
	p := r.mustOpen(0)
	rng := rand.New(rand.NewPCG(3, 4))
	if _, err := p.WriteAt(randBytes(rng, 32<<20), 0); err != nil {
		t.Fatal(err)
	}
	r.links[2].cut.Store(true)
	// 3 MiB changed while n2 is away, in 12 writes of 256 KiB.
	var changed int64
	for i := range 12 {
		b := randBytes(rng, 256<<10)
		if _, err := p.WriteAt(b, int64(i)*(5<<20)); err != nil {
			t.Fatalf("write with one replica away: %v", err)
		}
		changed += int64(len(b))
	}
	if got := p.Members()[2].State; got != Outdated {
		t.Fatalf("n2 is %s, want Outdated", got)
	}
	if tr := r.reps[0].Status().Tracking["n2"]; tr.Blocks*BlockSize != changed {
		t.Fatalf("n0's bitmap for n2 marks %d bytes, %d changed", tr.Blocks*BlockSize, changed)
	}
	// n2 is behind by generation: a primary that could reach only n2
	// and n1... would take n1's newer copy.
	if r.reps[2].Status().Gen >= r.reps[0].Status().Gen {
		t.Fatalf("n2 generation %d not behind n0's %d", r.reps[2].Status().Gen, r.reps[0].Status().Gen)
	}
	r.links[2].cut.Store(false)
	r.waitState(p, "n2", UpToDate)
	st := p.Stats()
	if st.ResyncedBytes != changed {
		t.Fatalf("resynced %d bytes, %d changed", st.ResyncedBytes, changed)
	}
	a, b, c := r.image(0), r.image(1), r.image(2)
	if !bytes.Equal(a, b) || !bytes.Equal(a, c) {
		t.Fatal("replicas differ after resync")
	}
	if len(r.reps[0].Peers()) != 0 || len(r.reps[1].Peers()) != 0 {
		t.Fatalf("bitmaps left after resync: %v %v", r.reps[0].Peers(), r.reps[1].Peers())
	}
}

func TestWritesDuringResyncAreNotLost(t *testing.T) {
	r := newRig(t, 3, 64<<20)
	p := r.mustOpen(0)
	rng := rand.New(rand.NewPCG(5, 6))
	r.links[1].cut.Store(true)
	if _, err := p.WriteAt(randBytes(rng, 48<<20), 0); err != nil {
		t.Fatal(err)
	}
	r.links[1].cut.Store(false)
	// Writes race the resync over the same regions.
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		off := rng.Int64N(48<<20 - 8192)
		if _, err := p.WriteAt(randBytes(rng, 8192), off); err != nil {
			t.Fatal(err)
		}
		if i > 200 && p.Members()[1].State == UpToDate {
			break
		}
	}
	r.waitState(p, "n1", UpToDate)
	if !bytes.Equal(r.image(0), r.image(1)) || !bytes.Equal(r.image(0), r.image(2)) {
		t.Fatal("replicas differ after a resync raced by writes")
	}
}

func TestNoQuorumRefusesWritesWithoutApplyingThem(t *testing.T) {
	r := newRig(t, 3, 8<<20)
	p := r.mustOpen(0)
	if _, err := p.WriteAt(bytes.Repeat([]byte{7}, 4096), 0); err != nil {
		t.Fatal(err)
	}
	r.links[1].cut.Store(true)
	r.links[2].cut.Store(true)
	// The first write notices both are gone; it must not be acknowledged.
	if _, err := p.WriteAt(bytes.Repeat([]byte{8}, 4096), 0); !errors.Is(err, ErrNoQuorum) {
		t.Fatalf("write without quorum: %v", err)
	}
	if _, err := p.WriteAt(bytes.Repeat([]byte{9}, 4096), 8192); !errors.Is(err, ErrNoQuorum) {
		t.Fatalf("second write without quorum: %v", err)
	}
	if err := p.Sync(); !errors.Is(err, ErrNoQuorum) {
		t.Fatalf("flush without quorum: %v", err)
	}
	blk := make([]byte, 4096)
	r.reps[0].Volume().ReadAt(blk, 8192)
	if !bytes.Equal(blk, make([]byte, 4096)) {
		t.Fatal("a refused write was applied to the remaining replica")
	}
	// A primary on n1's side of the partition cannot form a quorum either.
	if _, err := Open(context.Background(), Config{Name: "v", Self: "n1", Links: []Link{r.links[1]}, CallTimeout: time.Second}); err == nil {
		t.Fatal("a primary opened with a minority")
	}
	r.links[1].cut.Store(false)
	r.waitState(p, "n1", UpToDate)
	if _, err := p.WriteAt(bytes.Repeat([]byte{10}, 4096), 0); err != nil {
		t.Fatalf("write after quorum came back: %v", err)
	}
}

func TestNewPrimaryFencesTheOld(t *testing.T) {
	r := newRig(t, 3, 8<<20)
	p1, err := r.open(0)
	if err != nil {
		t.Fatal(err)
	}
	defer p1.Close()
	if _, err := r.open(1); !errors.Is(err, ErrPrimaryElsewhere) {
		t.Fatalf("second primary while the first is alive: %v", err)
	}
	if _, err := p1.WriteAt(bytes.Repeat([]byte{1}, 4096), 0); err != nil {
		t.Fatal(err)
	}
	// A partition: p1's node (n0) on one side, n1 and n2 on the other.
	// p1 reaches only its own replica; the other side's new primary
	// reaches n1 and n2, once p1's lease on them has run out.
	r.links[1].cut.Store(true)
	r.links[2].cut.Store(true)
	side := func(i int, cut bool) *cutLink {
		l := &cutLink{LocalLink: LocalLink{r.reps[i]}}
		l.cut.Store(cut)
		return l
	}
	other := []Link{side(0, true), side(1, false), side(2, false)}
	var p2 *Primary
	deadline := time.Now().Add(5 * time.Second)
	for {
		p2, err = Open(context.Background(), Config{Name: "v", Self: "n1", Links: other, CallTimeout: time.Second, RetryInterval: time.Hour, Log: quiet})
		if err == nil || !errors.Is(err, ErrPrimaryElsewhere) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	// The old primary, alone with its own replica, cannot write.
	if _, err := p1.WriteAt(bytes.Repeat([]byte{2}, 4096), 0); err == nil {
		t.Fatal("the partitioned old primary accepted a write")
	}
	// The partition heals: n1 and n2 hold the newer epoch; p1 never
	// writes again (fenced, or without a quorum it could take back).
	r.links[1].cut.Store(false)
	r.links[2].cut.Store(false)
	for end := time.Now().Add(time.Second); time.Now().Before(end); {
		if _, err := p1.WriteAt(bytes.Repeat([]byte{3}, 4096), 0); err == nil {
			t.Fatal("the old primary wrote after a newer one took over")
		} else if !errors.Is(err, ErrFenced) && !errors.Is(err, ErrNoQuorum) {
			t.Fatalf("old primary: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := p2.WriteAt(bytes.Repeat([]byte{4}, 4096), 8192); err != nil {
		t.Fatalf("the new primary lost its replicas to the old one: %v", err)
	}
	got := make([]byte, 4096)
	if _, err := p2.ReadAt(got, 0); err != nil || got[0] != 1 {
		t.Fatalf("new primary reads %v, %v", got[0], err)
	}
}

func TestBitRotIsRepairedFromAGoodReplica(t *testing.T) {
	r := newRig(t, 3, 8<<20)
	p := r.mustOpen(0)
	want := randBytes(rand.New(rand.NewPCG(7, 8)), 64<<10)
	if _, err := p.WriteAt(want, 1<<20); err != nil {
		t.Fatal(err)
	}
	p.Sync()
	r.rotAndRepair(p, want)
}

// rotAndRepair flips bytes of block 5 of want (written at 1 MiB) in n0's
// data file (the replica read first), reads want back through p, and
// checks the one bad block was rewritten from a good replica.
func (r *rig) rotAndRepair(p *Primary, want []byte) {
	t := r.t
	t.Helper()
	f, err := os.OpenFile(filepath.Join(r.dirs[0], "data.vol"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte{0xde, 0xad}, 1<<20+5*4096+10)
	f.Close()
	got := make([]byte, len(want))
	if _, err := p.ReadAt(got, 1<<20); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read over rot: %v", err)
	}
	if n := p.Stats().RepairedBlocks; n != 1 {
		t.Fatalf("repaired %d blocks, want 1", n)
	}
	if !bytes.Equal(r.image(0)[1<<20:1<<20+len(want)], want) {
		t.Fatal("bad block not rewritten")
	}
}

// A block that rots under a snapshot is still repaired from a good
// replica: the snapshot keeps the rotten copy raw (a read of it there
// fails, as it would have), the replica stays up to date, and the other
// replicas' snapshots keep the good block.
func TestBitRotUnderASnapshotIsRepaired(t *testing.T) {
	r := newRig(t, 3, 8<<20)
	p := r.mustOpen(0)
	want := randBytes(rand.New(rand.NewPCG(7, 9)), 64<<10)
	if _, err := p.WriteAt(want, 1<<20); err != nil {
		t.Fatal(err)
	}
	if err := p.Exclusive(true, func(ctx context.Context, epoch uint64, links []Link) error {
		for _, l := range links {
			if err := l.Snapshot(ctx, epoch, "s"); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	r.rotAndRepair(p, want)
	for _, m := range p.Members() {
		if m.State != UpToDate {
			t.Fatalf("after the repair: %+v", p.Members())
		}
	}
	blk := make([]byte, BlockSize)
	if err := r.reps[0].ReadSnapshot("s", blk, 1<<20+5*4096); !errors.Is(err, blockpool.ErrCorrupt) {
		t.Fatalf("the rotten block in n0's snapshot reads: %v", err)
	}
	if err := r.reps[1].ReadSnapshot("s", blk, 1<<20+5*4096); err != nil || !bytes.Equal(blk, want[5*4096:6*4096]) {
		t.Fatalf("n1's snapshot: %v", err)
	}
	if err := r.reps[0].ReadSnapshot("s", blk, 1<<20+4*4096); err != nil || !bytes.Equal(blk, want[4*4096:5*4096]) {
		t.Fatalf("a sound block of n0's snapshot: %v", err)
	}
}

func TestPrimaryCrashThenAnotherNodeTakesOver(t *testing.T) {
	r := newRig(t, 3, 8<<20)
	p1, err := r.open(0)
	if err != nil {
		t.Fatal(err)
	}
	want := randBytes(rand.New(rand.NewPCG(9, 9)), 1<<20)
	p1.WriteAt(want, 0)
	p1.Sync()
	// A crash: no release; p1 stops renewing its lease.
	p1.cancel()
	p1.wg.Wait()
	var p2 *Primary
	deadline := time.Now().Add(5 * time.Second)
	for {
		if p2, err = r.open(2); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	got := make([]byte, len(want))
	if _, err := p2.ReadAt(got, 0); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("data after takeover: %v", err)
	}
	if p2.Epoch() <= p1.Epoch() {
		t.Fatalf("epoch %d not after %d", p2.Epoch(), p1.Epoch())
	}
}

var quiet = slog.New(slog.DiscardHandler)

func TestClosingLeavesEveryReplicaCurrent(t *testing.T) {
	r := newRig(t, 3, 8<<20)
	for round := range 20 {
		p, err := r.open(round % 3)
		if err != nil {
			t.Fatal(err)
		}
		p.WriteAt(bytes.Repeat([]byte{byte(round)}, 4096), 0)
		time.Sleep(time.Duration(round%4) * 20 * time.Millisecond) // pings in flight
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		g := r.reps[0].Status().Gen
		for i, rep := range r.reps {
			if st := rep.Status(); st.Gen != g || st.Inconsistent || len(rep.Peers()) != 0 || st.Primary != "" {
				t.Fatalf("round %d: replica %d after a clean close: %+v (bitmaps for %v)", round, i, st, rep.Peers())
			}
		}
	}
}

// crash stops a primary without releasing its replicas.
func crash(p *Primary) {
	p.cancel()
	p.wg.Wait()
}

func TestIsolatedPrimarysUnacknowledgedWriteIsSettled(t *testing.T) {
	r := newRig(t, 3, 8<<20)
	p1, err := r.open(0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p1.WriteAt(bytes.Repeat([]byte{1}, 8192), 0); err != nil {
		t.Fatal(err)
	}
	p1.Sync()
	r.links[1].cut.Store(true)
	r.links[2].cut.Store(true)
	// Reaches n0's copy only; not acknowledged.
	if _, err := p1.WriteAt(bytes.Repeat([]byte{2}, 8192), 0); !errors.Is(err, ErrNoQuorum) {
		t.Fatalf("isolated write: %v", err)
	}
	p1.Sync() // settles n0's activity log: only its bitmaps remember
	crash(p1)
	r.links[1].cut.Store(false)
	r.links[2].cut.Store(false)
	if g0, g1 := r.reps[0].Status().Gen, r.reps[1].Status().Gen; g0 != g1 {
		t.Fatalf("a primary without quorum moved the generation: %d vs %d", g0, g1)
	}
	time.Sleep(2 * testLease)
	p2 := r.mustOpen(1)
	for i := range r.reps {
		if st := p2.Members()[i].State; st != UpToDate {
			t.Fatalf("n%d is %s", i, st)
		}
	}
	if !bytes.Equal(r.image(0), r.image(1)) || !bytes.Equal(r.image(0), r.image(2)) {
		t.Fatal("replicas differ where an isolated primary wrote")
	}
}

func TestForcedPrimariesOnBothSidesAreASplitBrain(t *testing.T) {
	r := newRig(t, 3, 8<<20)
	side := func(i int, cut bool) *cutLink {
		l := &cutLink{LocalLink: LocalLink{r.reps[i]}}
		l.cut.Store(cut)
		return l
	}
	// n0 alone: its operator forces it primary and writes.
	pa, err := Open(context.Background(), Config{Name: "v", Self: "n0", Force: true, Links: []Link{side(0, false), side(1, true), side(2, true)}, CallTimeout: time.Second, RetryInterval: time.Hour, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pa.WriteAt(bytes.Repeat([]byte{0xaa}, 4096), 0); err != nil {
		t.Fatalf("forced primary write: %v", err)
	}
	// The majority side writes too.
	pb, err := Open(context.Background(), Config{Name: "v", Self: "n1", Links: []Link{side(0, true), side(1, false), side(2, false)}, CallTimeout: time.Second, RetryInterval: time.Hour, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pb.WriteAt(bytes.Repeat([]byte{0xbb}, 4096), 4096); err != nil {
		t.Fatal(err)
	}
	pa.Close()
	pb.Close()
	// The sides meet: the split brain is found and reported, and the
	// diverged copies are left alone.
	p := r.mustOpen(1)
	time.Sleep(200 * time.Millisecond) // ticks that must not resync a split copy
	var split []string
	for _, m := range p.Members() {
		if m.State == SplitBrain {
			split = append(split, m.Node)
		}
	}
	if len(split) == 0 {
		t.Fatalf("no split brain found: %+v", p.Members())
	}
	blk := make([]byte, 4096)
	if split[0] == "n0" {
		r.reps[0].Volume().ReadAt(blk, 0)
		if blk[0] != 0xaa {
			t.Fatal("the forced side's data was overwritten before anyone decided")
		}
	} else {
		r.reps[1].Volume().ReadAt(blk, 4096)
		if blk[0] != 0xbb {
			t.Fatal("the majority side's data was overwritten before anyone decided")
		}
	}
	// The operator discards the split copies: they are resynced in full.
	for _, n := range split {
		if err := p.Discard(n); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []string{"n0", "n1", "n2"} {
		r.waitState(p, n, UpToDate)
	}
	if !bytes.Equal(r.image(0), r.image(1)) || !bytes.Equal(r.image(0), r.image(2)) {
		t.Fatal("replicas differ after the split brain was resolved")
	}
	if err := p.Discard("n0"); err == nil {
		t.Fatal("discard of a replica that is not split")
	}
}

func TestVerifyRepairsRotAndDivergence(t *testing.T) {
	r := newRig(t, 3, 8<<20)
	p := r.mustOpen(0)
	if _, err := p.WriteAt(randBytes(rand.New(rand.NewPCG(5, 5)), 8<<20), 0); err != nil {
		t.Fatal(err)
	}
	p.Sync()
	flip := func(i int, off int64) {
		f, err := os.OpenFile(filepath.Join(r.dirs[i], "data.vol"), os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 1)
		f.ReadAt(b, off)
		b[0] ^= 0x5a
		f.WriteAt(b, off)
		f.Close()
	}
	flip(1, 100)
	flip(1, 5<<20+7)
	flip(2, 3<<20+4095)
	// n2's copy of one block differs though its checksum holds.
	r.reps[2].Volume().WriteAt(bytes.Repeat([]byte{9}, 4096), 6<<20)
	st, err := p.Verify(context.Background(), 0, 8<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.BadBlocks != 3 || st.Repaired != 3 || st.Mismatched != 1 || st.Unrecoverable != 0 || st.Bytes != 3*(8<<20) {
		t.Fatalf("verify: %+v", st)
	}
	if !bytes.Equal(r.image(0), r.image(1)) || !bytes.Equal(r.image(0), r.image(2)) {
		t.Fatal("replicas differ after verify")
	}
	if st, _ := p.Verify(context.Background(), 0, 8<<20, nil); st.BadBlocks != 0 || st.Mismatched != 0 {
		t.Fatalf("second verify: %+v", st)
	}
	// A block bad everywhere is reported, not invented.
	for i := range 3 {
		flip(i, 7<<20)
	}
	if st, _ := p.Verify(context.Background(), 7<<20, 4096, nil); st.Unrecoverable != 1 {
		t.Fatalf("block bad on every replica: %+v", st)
	}
}

func TestBackgroundPrimaryYieldsToAClient(t *testing.T) {
	r := newRig(t, 3, 8<<20)
	links := []Link{r.links[0], r.links[1], r.links[2]}
	bg, err := Open(context.Background(), Config{Name: "v", Self: "n0", Weak: true, Links: links, CallTimeout: time.Second, RetryInterval: 50 * time.Millisecond, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer bg.Close()
	// A client on n1 does not wait for the background primary's lease.
	client := r.mustOpen(1)
	if _, err := client.WriteAt(bytes.Repeat([]byte{1}, 4096), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := bg.WriteAt(bytes.Repeat([]byte{2}, 4096), 0); err == nil {
		t.Fatal("the background primary still writes after a client took over")
	}
	client.Close()
	// Strengthened, a background primary holds like a client's.
	bg2, err := Open(context.Background(), Config{Name: "v", Self: "n2", Weak: true, Links: links, CallTimeout: time.Second, RetryInterval: 50 * time.Millisecond, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer bg2.Close()
	if err := bg2.Strengthen(); err != nil || bg2.Weak() {
		t.Fatalf("strengthen: %v", err)
	}
	if _, err := r.open(0); !errors.Is(err, ErrPrimaryElsewhere) {
		t.Fatalf("attach over a strengthened primary: %v", err)
	}
}
