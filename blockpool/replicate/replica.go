package replicate

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/strata-storage/strata/atomicfile"
	"github.com/strata-storage/strata/blockpool"
)

// Errors a replica answers with.
var (
	// ErrFenced: the request carries an epoch older than one this replica
	// has promised to a newer primary (or one it never promised).
	ErrFenced = errors.New("replicate: fenced: another primary has taken over this volume")
	// ErrPrimaryElsewhere: a promotion while another node's primary still
	// holds its lease.
	ErrPrimaryElsewhere = errors.New("replicate: volume is primary on another node")
	// ErrNoQuorum: fewer than a majority of replicas are reachable.
	ErrNoQuorum = errors.New("replicate: no quorum of replicas")
	// ErrNoUpToDate: the reachable replicas hold no copy known to be current.
	ErrNoUpToDate = errors.New("replicate: no up-to-date replica reachable")
)

// Track describes a replica's out-of-sync bitmap for one peer.
type Track struct {
	Base   uint64 // the peer's generation when tracking started
	Full   bool   // history unknown: the peer needs a full sync
	Blocks int64  // blocks marked
}

// Status is what a replica tells a primary about itself.
type Status struct {
	Node         string
	Size         int64
	Epoch        uint64 // highest primary epoch promised
	Primary      string // node of that primary ("" once released)
	Leased       bool   // that primary has been heard from within the lease
	Weak         bool   // that primary is a background one
	Gen          uint64 // generation of the data it holds consistently
	SyncGen      uint64 // while Inconsistent: the generation it is being brought to
	Inconsistent bool
	History      []uint64         // earlier generations of its data, oldest first
	Forced       bool             // written by a primary forced without quorum since its last resync
	Unsettled    []Extent         // where it may differ from a peer written by the same primary
	Recovered    []Extent         // extents recovered after its own unclean stop
	Tracking     map[string]Track // out-of-sync bitmaps it keeps, by peer node
	Corruptions  int64
	Witness      bool `json:",omitempty"` // a diskless tie-breaker: no data (witness.go)
}

// Newest is the newest generation the replica has seen.
func (s Status) Newest() uint64 { return max(s.Gen, s.SyncGen) }

// GenChange moves a replica's generation (see the package doc).
type GenChange struct {
	Gen uint64
	// Track: peers to keep bitmaps for from now on; a new bitmap starts at
	// Base (the generation the peers were last current at). Existing
	// bitmaps are kept, with their older base.
	Track []string
	Base  uint64
	// BeginSync makes the replica a sync target (Inconsistent); EndSync
	// makes it consistent at Gen, with the source's History (it now holds
	// the source's data) and its Forced mark.
	BeginSync, EndSync bool
	History            []uint64
	// Forced: the generation is a forced primary's.
	Forced bool
}

// state is a replica's persistent state.
type state struct {
	Epoch        uint64
	Primary      string
	Gen          uint64
	SyncGen      uint64
	Inconsistent bool
	Size         int64
	History      []uint64
	Forced       bool
	Weak         bool // the primary is a background one (see Mode)
	Witness      bool `json:",omitempty"` // a diskless tie-breaker (witness.go)
}

// historyMax bounds the generations a replica remembers.
const historyMax = 64

func remember(h []uint64, gens ...uint64) []uint64 {
	for _, g := range gens {
		seen := false
		for _, x := range h {
			seen = seen || x == g
		}
		if !seen && g != 0 {
			h = append(h, g)
		}
	}
	sort.Slice(h, func(i, j int) bool { return h[i] < h[j] })
	if len(h) > historyMax {
		h = h[len(h)-historyMax:]
	}
	return h
}

// Replica is one node's copy of a replicated volume: a checked volume (data
// and sums), its state file and the out-of-sync bitmaps it keeps for absent
// peers, in one directory.
type Replica struct {
	node, dir string
	lease     time.Duration
	witness   bool // diskless: only the state file (witness.go)

	mu       sync.Mutex
	st       state
	lastSeen time.Time // last request of the current primary
	now      func() time.Time

	// volMu: I/O holds it shared; resize and restore, which reopen the
	// volume, exclusively.
	volMu sync.RWMutex
	vol   *blockpool.Checked
	pool  *blockpool.FilePool

	bmMu sync.Mutex
	bms  map[string]*bitmap

	snaps *snapChain
}

const stateFile = "state.json"

// CreateReplica makes a new, empty replica of size bytes in dir. A new
// replica is consistent at generation 0 (all zeroes, as every peer's).
func CreateReplica(dir, node string, size int64, lease time.Duration) (*Replica, error) {
	if size <= 0 || size%BlockSize != 0 {
		return nil, fmt.Errorf("replicate: size %d is not a positive multiple of %d", size, BlockSize)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, fmt.Errorf("replica %s: %w", dir, err)
	}
	pool, err := blockpool.OpenFilePool(filepath.Base(dir), dir)
	if err != nil {
		return nil, err
	}
	for _, v := range []struct {
		name string
		size int64
	}{{"data", size}, {"sums", blockpool.SumsSize(size)}} {
		fv, err := pool.Create(v.name, v.size)
		if err != nil {
			return nil, err
		}
		fv.Close()
	}
	if err := writeState(dir, state{Size: size}); err != nil {
		return nil, err
	}
	return OpenReplica(dir, node, lease)
}

// OpenReplica opens the replica in dir.
func OpenReplica(dir, node string, lease time.Duration) (*Replica, error) {
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return nil, fmt.Errorf("replica %s: %w", dir, err)
	}
	r := &Replica{node: node, dir: dir, lease: lease, bms: map[string]*bitmap{}, now: time.Now}
	r.lastSeen = r.now()
	if err := json.Unmarshal(b, &r.st); err != nil {
		return nil, fmt.Errorf("replica %s: state: %w", dir, err)
	}
	if r.witness = r.st.Witness; r.witness {
		r.snaps = &snapChain{} // none, ever
		return r, nil
	}
	if r.pool, err = blockpool.OpenFilePool(filepath.Base(dir), dir); err != nil {
		return nil, err
	}
	if r.vol, err = r.openVolume(); err != nil {
		return nil, err
	}
	if r.snaps, err = openChain(filepath.Join(dir, "snapshots")); err != nil {
		r.vol.Close()
		return nil, fmt.Errorf("replica %s: %w", dir, err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		peer, ok := strings.CutPrefix(e.Name(), "bitmap-")
		if !ok {
			continue
		}
		bm, err := openBitmap(filepath.Join(dir, e.Name()), r.st.Size)
		if err != nil {
			r.Close()
			return nil, err
		}
		r.bms[peer] = bm
	}
	return r, nil
}

func (r *Replica) openVolume() (*blockpool.Checked, error) {
	data, err := r.pool.Open("data")
	if err != nil {
		return nil, err
	}
	sums, err := r.pool.Open("sums")
	if err != nil {
		data.Close()
		return nil, err
	}
	vol, err := blockpool.OpenChecked(data, sums)
	if err != nil {
		data.Close()
		sums.Close()
		return nil, fmt.Errorf("replica %s: %w", r.dir, err)
	}
	return vol, nil
}

func writeState(dir string, st state) error {
	b, _ := json.Marshal(st)
	err := atomicfile.Write(filepath.Join(dir, stateFile), b, 0o600)
	if err != nil {
		return fmt.Errorf("replica state: %w", err)
	}
	return nil
}

// Node is the node this replica lives on.
func (r *Replica) Node() string { return r.node }

// Size is the volume size.
func (r *Replica) Size() int64 {
	if r.witness {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.st.Size
	}
	r.volMu.RLock()
	defer r.volMu.RUnlock()
	return r.vol.Size()
}

// Volume is the checked volume underneath (for scrubs and tests); nil on
// a witness.
func (r *Replica) Volume() *blockpool.Checked {
	r.volMu.RLock()
	defer r.volMu.RUnlock()
	return r.vol
}

// Close closes the volume and bitmaps.
func (r *Replica) Close() error {
	if r.witness {
		return nil
	}
	r.volMu.Lock()
	defer r.volMu.Unlock()
	errs := []error{r.snaps.close(), r.vol.Close()}
	r.bmMu.Lock()
	for _, bm := range r.bms {
		errs = append(errs, bm.close())
	}
	r.bmMu.Unlock()
	return errors.Join(errs...)
}

// Status reports the replica's state.
func (r *Replica) Status() Status {
	r.mu.Lock()
	st := Status{Node: r.node, Size: r.st.Size, Epoch: r.st.Epoch, Primary: r.st.Primary, Gen: r.st.Gen, SyncGen: r.st.SyncGen, Inconsistent: r.st.Inconsistent,
		Leased: r.st.Primary != "" && r.leased(), History: append([]uint64(nil), r.st.History...), Forced: r.st.Forced, Weak: r.st.Weak, Witness: r.witness}
	r.mu.Unlock()
	if r.witness {
		return st
	}
	vol := r.Volume()
	st.Corruptions = vol.Corruptions()
	st.Unsettled = extents(vol.UnsettledExtents(), st.Size)
	st.Recovered = extents(vol.Recovered(), st.Size)
	r.bmMu.Lock()
	st.Tracking = map[string]Track{}
	for peer, bm := range r.bms {
		st.Tracking[peer] = Track{Base: bm.base, Full: bm.full, Blocks: bm.count()}
	}
	r.bmMu.Unlock()
	return st
}

func extents(idx []uint32, size int64) []Extent {
	var out []Extent
	for _, e := range idx {
		off := int64(e) * blockpool.ExtentSize
		if off < size {
			out = append(out, Extent{off, min(blockpool.ExtentSize, size-off)})
		}
	}
	return out
}

// SetClock replaces the clock the lease is judged by (time.Now): the seam
// tests use to pass a lease without waiting for it.
func (r *Replica) SetClock(now func() time.Time) {
	r.mu.Lock()
	r.now, r.lastSeen = now, now()
	r.mu.Unlock()
}

// leased says the current primary was heard from within the lease (mu
// held).
func (r *Replica) leased() bool { return r.now().Sub(r.lastSeen) < r.lease }

// Hello reports the status; from the current primary it also renews its
// lease.
func (r *Replica) Hello(epoch uint64, primary string) Status {
	r.mu.Lock()
	if epoch != 0 && epoch == r.st.Epoch && primary == r.st.Primary {
		r.lastSeen = r.now()
	}
	r.mu.Unlock()
	return r.Status()
}

// Promote promises epoch to primary: from now on only requests carrying it
// are served. It is refused for an epoch not newer than one promised before
// (unless it is the same primary again), and while another node's primary
// holds its lease.
func (r *Replica) Promote(epoch uint64, primary string, mode Mode) (Status, error) {
	r.mu.Lock()
	same := epoch == r.st.Epoch && primary == r.st.Primary
	switch {
	case !same && epoch <= r.st.Epoch:
		r.mu.Unlock()
		return Status{}, fmt.Errorf("%w (epoch %d, promised %d to %s)", ErrFenced, epoch, r.st.Epoch, r.st.Primary)
	case !same && !mode.Force && !r.st.Weak && r.st.Primary != "" && r.st.Primary != primary && r.leased():
		held := r.st.Primary
		r.mu.Unlock()
		return Status{}, fmt.Errorf("%w: %s", ErrPrimaryElsewhere, held)
	}
	if !same || r.st.Weak != mode.Weak {
		st := r.st
		st.Epoch, st.Primary, st.Weak = epoch, primary, mode.Weak
		if err := writeState(r.dir, st); err != nil {
			r.mu.Unlock()
			return Status{}, err
		}
		r.st = st
	}
	r.lastSeen = r.now()
	r.mu.Unlock()
	return r.Status(), nil
}

// Release ends the primary's lease: another node may promote at once. The
// volume is flushed and its activity log emptied: a clean hand-over leaves
// nothing for the next primary to settle.
func (r *Replica) Release(epoch uint64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if epoch != r.st.Epoch {
		return nil
	}
	if !r.witness {
		if err := r.Volume().Settle(); err != nil {
			return err
		}
	}
	st := r.st
	st.Primary = ""
	if err := writeState(r.dir, st); err != nil {
		return err
	}
	r.st = st
	return nil
}

// admit checks a request's epoch and renews the lease.
func (r *Replica) admit(epoch uint64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if epoch != r.st.Epoch || r.st.Primary == "" {
		return fmt.Errorf("%w (epoch %d, promised %d)", ErrFenced, epoch, r.st.Epoch)
	}
	r.lastSeen = r.now()
	return nil
}

// markAbsent records [off, off+n) as out of sync for every absent peer
// (durably, before the data changes).
func (r *Replica) markAbsent(off, n int64, absent []string) error {
	if len(absent) == 0 {
		return nil
	}
	r.bmMu.Lock()
	defer r.bmMu.Unlock()
	for _, peer := range absent {
		bm, err := r.bitmapLocked(peer, 0, true)
		if err != nil {
			return err
		}
		if _, err := bm.mark(off, n); err != nil {
			return fmt.Errorf("replica %s: bitmap for %s: %w", r.dir, peer, err)
		}
	}
	return nil
}

// bitmapLocked returns the bitmap for peer, creating it (empty, tracking
// from base; or full when the base is unknown) if missing.
func (r *Replica) bitmapLocked(peer string, base uint64, full bool) (*bitmap, error) {
	if bm := r.bms[peer]; bm != nil {
		return bm, nil
	}
	if !validPeer(peer) {
		return nil, fmt.Errorf("replicate: invalid peer name %q", peer)
	}
	bm, err := createBitmap(filepath.Join(r.dir, "bitmap-"+peer), r.st.Size, base, full)
	if err != nil {
		return nil, fmt.Errorf("replica %s: bitmap for %s: %w", r.dir, peer, err)
	}
	r.bms[peer] = bm
	return bm, nil
}

func validPeer(s string) bool {
	return s != "" && len(s) <= 128 && !strings.ContainsAny(s, "/\\\x00") && s != "." && s != ".."
}

// Write writes p at off, first marking it out of sync for the absent peers.
func (r *Replica) Write(epoch uint64, off int64, p []byte, absent []string) error {
	if err := r.admit(epoch); err != nil {
		return err
	}
	if r.witness {
		return r.noData("write")
	}
	if err := r.markAbsent(off, int64(len(p)), absent); err != nil {
		return err
	}
	r.volMu.RLock()
	defer r.volMu.RUnlock()
	if err := r.snaps.preserve(r.vol, off, int64(len(p))); err != nil {
		return err
	}
	_, err := r.vol.WriteAt(p, off)
	return err
}

// Trim discards [off, off+n), first marking it for the absent peers.
func (r *Replica) Trim(epoch uint64, off, n int64, absent []string) error {
	if err := r.admit(epoch); err != nil {
		return err
	}
	if r.witness {
		return r.noData("trim")
	}
	if err := r.markAbsent(off, n, absent); err != nil {
		return err
	}
	r.volMu.RLock()
	defer r.volMu.RUnlock()
	if err := r.snaps.preserve(r.vol, off, n); err != nil {
		return err
	}
	return r.vol.Trim(off, n)
}

// Read reads verified data.
func (r *Replica) Read(epoch uint64, off int64, p []byte) error {
	if err := r.admit(epoch); err != nil {
		return err
	}
	if r.witness {
		return r.noData("read")
	}
	r.volMu.RLock()
	defer r.volMu.RUnlock()
	_, err := r.vol.ReadAt(p, off)
	return err
}

// Sync makes completed writes durable. On a witness it only confirms the
// epoch (and renews the lease): how a primary checks, with each write,
// that the witness still counts for it.
func (r *Replica) Sync(epoch uint64) error {
	if err := r.admit(epoch); err != nil {
		return err
	}
	if r.witness {
		return nil
	}
	r.volMu.RLock()
	defer r.volMu.RUnlock()
	return r.vol.Sync()
}

// SetGen applies a generation change (durably).
func (r *Replica) SetGen(epoch uint64, g GenChange) error {
	if err := r.admit(epoch); err != nil {
		return err
	}
	if r.witness && (g.BeginSync || g.EndSync) {
		return r.noData("resync")
	}
	r.bmMu.Lock()
	for _, peer := range g.Track {
		if r.witness {
			break // it keeps no bitmaps: nothing to bring back
		}
		if peer == r.node {
			continue
		}
		if _, err := r.bitmapLocked(peer, g.Base, false); err != nil {
			r.bmMu.Unlock()
			return err
		}
	}
	r.bmMu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.st
	switch {
	case g.EndSync:
		vol := r.Volume()
		if err := vol.Sync(); err != nil {
			return err
		}
		st.History = remember(append([]uint64(nil), st.History...), append(append([]uint64(nil), g.History...), st.Gen)...)
		st.Gen, st.SyncGen, st.Inconsistent, st.Forced = g.Gen, 0, false, g.Forced
		defer vol.ForgetRecovered()
	case g.BeginSync:
		st.SyncGen, st.Inconsistent = g.Gen, true
	case st.Inconsistent:
		st.SyncGen = g.Gen
	case g.Gen != st.Gen:
		st.History = remember(append([]uint64(nil), st.History...), st.Gen)
		st.Gen = g.Gen
		st.Forced = st.Forced || g.Forced
	}
	if err := writeState(r.dir, st); err != nil {
		return err
	}
	r.st = st
	return nil
}

// Bitmap returns the bitmap kept for peer (ok false: none).
func (r *Replica) Bitmap(epoch uint64, peer string) (Track, []uint64, bool, error) {
	if err := r.admit(epoch); err != nil {
		return Track{}, nil, false, err
	}
	r.bmMu.Lock()
	defer r.bmMu.Unlock()
	bm := r.bms[peer]
	if bm == nil {
		return Track{}, nil, false, nil
	}
	return Track{Base: bm.base, Full: bm.full, Blocks: bm.count()}, append([]uint64(nil), bm.bits...), true, nil
}

// MergeBitmap ORs a peer's bitmap from another replica into this one's.
func (r *Replica) MergeBitmap(epoch uint64, peer string, t Track, words []uint64) error {
	if err := r.admit(epoch); err != nil {
		return err
	}
	if r.witness {
		return r.noData("bitmap merge")
	}
	if peer == r.node {
		return nil
	}
	r.bmMu.Lock()
	defer r.bmMu.Unlock()
	bm, err := r.bitmapLocked(peer, t.Base, t.Full)
	if err != nil {
		return err
	}
	if bm.base != t.Base {
		// Two histories of the peer: only a full sync is safe.
		bm.full = true
	}
	return bm.merge(words, t.Full)
}

// DropBitmap forgets the bitmap for peer (it is in sync again).
func (r *Replica) DropBitmap(epoch uint64, peer string) error {
	if err := r.admit(epoch); err != nil {
		return err
	}
	r.bmMu.Lock()
	defer r.bmMu.Unlock()
	bm := r.bms[peer]
	if bm == nil {
		return nil
	}
	delete(r.bms, peer)
	bm.close()
	if err := os.Remove(filepath.Join(r.dir, "bitmap-"+peer)); err != nil && !isNotExist(err) {
		return err
	}
	return syncParent(filepath.Join(r.dir, "x"))
}

// Peers lists the peers this replica keeps bitmaps for, sorted.
func (r *Replica) Peers() []string {
	r.bmMu.Lock()
	defer r.bmMu.Unlock()
	var out []string
	for p := range r.bms {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}
