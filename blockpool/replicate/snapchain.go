package replicate

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/strata-storage/strata/atomicfile"
	"github.com/strata-storage/strata/blockpool"
)

// A replica's snapshots are thin and copy-on-write. Taking one writes only
// its empty files, so it costs the same for any volume size and any load.
// The live volume stays where it is; before one of its blocks is first
// overwritten, trimmed or cut off by a shrink after the newest snapshot,
// the block's contents are copied into that snapshot's store and marked
// held there. A snapshot S reads block b from the first snapshot, from S
// on towards the newest, that holds it, and from the live volume when none
// does: a block nobody preserved has not changed since S was taken.
// Deleting a snapshot first gives the next older one the blocks it held
// and that one lacks, since that one's reads used to fall through to them.

// snap is one snapshot of a chain.
type snap struct {
	info SnapshotInfo
	dir  string
	vol  *blockpool.Checked // the preserved blocks, each at its own offset
	held *heldBits          // nil: a full copy (every block held)
	// deleting: its blocks are being handed to the older neighbour; it
	// takes no new copies but is still read through.
	deleting bool
	// pending: blocks copied into the store whose copies and bits are not
	// yet durable (the next flush makes them held).
	pending map[int64]bool
	dirty   bool // a pending copy wrote to the store (else a flush skips its sync)
}

func (s *snap) blocks() int64 { return blocksOf(s.info.Size) }

func (s *snap) has(b int64) bool {
	if b >= s.blocks() {
		return false
	}
	return s.held == nil || s.held.bits[b/64]&(1<<(b%64)) != 0
}

// snapChain is a replica's snapshots, oldest first.
type snapChain struct {
	root string // <replica>/snapshots

	mu    sync.Mutex // the list, every held and pending bit, and the copies made under them
	snaps []*snap
	// flushing: one writer is making the pending copies durable, with mu
	// released; flushed wakes those waiting for it.
	flushing bool
	flushed  *sync.Cond

	removeMu sync.Mutex // one deletion at a time: it hands blocks to its neighbour
}

const (
	heldFile   = "held.bits"
	heldMagic  = "STRHLD01"
	heldHeader = 4096
	// snapChunk is the blocks a deletion or restore handles per turn of
	// the chain's lock (4 MiB), so writes wait at most that long.
	snapChunk = 1024
)

// openChain loads the snapshots under root, removing what a crash left
// half built (.partial) or half deleted (.deleted).
func openChain(root string) (*snapChain, error) {
	c := &snapChain{root: root}
	c.flushed = sync.NewCond(&c.mu)
	entries, err := os.ReadDir(root)
	if err != nil && !isNotExist(err) {
		return nil, fmt.Errorf("snapshots: %w", err)
	}
	for _, e := range entries {
		dir := filepath.Join(root, e.Name())
		if strings.HasSuffix(e.Name(), ".partial") || strings.HasSuffix(e.Name(), ".deleted") {
			if err := os.RemoveAll(dir); err != nil {
				return nil, fmt.Errorf("snapshots: clean %s: %w", e.Name(), err)
			}
			continue
		}
		s, err := openSnap(dir)
		if err != nil {
			c.close()
			return nil, fmt.Errorf("snapshot %s: %w", e.Name(), err)
		}
		c.snaps = append(c.snaps, s)
	}
	sort.Slice(c.snaps, func(i, j int) bool {
		a, b := c.snaps[i].info, c.snaps[j].info
		if a.Seq != b.Seq {
			return a.Seq < b.Seq
		}
		if !a.Created.Equal(b.Created) {
			return a.Created.Before(b.Created)
		}
		return a.Name < b.Name
	})
	return c, nil
}

func openSnap(dir string) (*snap, error) {
	info, err := readSnapInfo(dir)
	if err != nil {
		return nil, err
	}
	s := &snap{info: info, dir: dir, pending: map[int64]bool{}}
	pool, err := blockpool.OpenFilePool(filepath.Base(dir), dir)
	if err != nil {
		return nil, err
	}
	data, err := pool.Open("data")
	if err != nil {
		return nil, err
	}
	sums, err := pool.Open("sums")
	if err != nil {
		data.Close()
		return nil, err
	}
	if s.vol, err = blockpool.OpenChecked(data, sums); err != nil {
		data.Close()
		sums.Close()
		return nil, err
	}
	if info.Thin {
		if s.held, err = openHeld(filepath.Join(dir, heldFile), info.Size); err != nil {
			s.vol.Close()
			return nil, err
		}
	}
	return s, nil
}

func (s *snap) close() error {
	err := s.vol.Close()
	if s.held != nil {
		err = errors.Join(err, s.held.f.Close())
	}
	return err
}

func (c *snapChain) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for _, s := range c.snaps {
		errs = append(errs, s.close())
	}
	c.snaps = nil
	return errors.Join(errs...)
}

func (c *snapChain) list() []SnapshotInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]SnapshotInfo, 0, len(c.snaps))
	for _, s := range c.snaps {
		out = append(out, s.info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// indexLocked is the position of the snapshot called name (-1: none).
func (c *snapChain) indexLocked(name string) int {
	for i, s := range c.snaps {
		if s.info.Name == name {
			return i
		}
	}
	return -1
}

func (c *snapChain) info(name string) (SnapshotInfo, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i := c.indexLocked(name); i >= 0 {
		return c.snaps[i].info, true
	}
	return SnapshotInfo{}, false
}

// add takes a snapshot of a volume of size bytes: three empty, sparse
// files and an info.json, built aside and renamed into place. The caller
// holds all I/O and has flushed the volume.
func (c *snapChain) add(name string, size int64, info SnapshotInfo) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.indexLocked(name) >= 0 {
		return fmt.Errorf("%w: %s", ErrSnapshotExists, name)
	}
	dir := filepath.Join(c.root, name)
	if _, err := os.Stat(dir); err == nil {
		return fmt.Errorf("%w: %s", ErrSnapshotExists, name)
	}
	for _, s := range c.snaps {
		info.Seq = max(info.Seq, s.info.Seq+1)
	}
	info.Name, info.Size, info.Thin = name, size, true
	if _, err := os.Stat(c.root); isNotExist(err) {
		if err := os.Mkdir(c.root, 0o700); err != nil {
			return fmt.Errorf("snapshot %s: %w", name, err)
		}
		if err := syncParent(c.root); err != nil {
			return fmt.Errorf("snapshot %s: %w", name, err)
		}
	}
	tmp := dir + ".partial"
	os.RemoveAll(tmp)
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return err
	}
	err := createSnapFiles(tmp, size, info)
	if err == nil {
		err = os.Rename(tmp, dir)
	}
	if err == nil {
		err = syncParent(dir)
	}
	if err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("snapshot %s: %w", name, err)
	}
	s, err := openSnap(dir)
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", name, err)
	}
	c.snaps = append(c.snaps, s)
	return nil
}

func createSnapFiles(dir string, size int64, info SnapshotInfo) error {
	pool, err := blockpool.OpenFilePool(filepath.Base(dir), dir)
	if err != nil {
		return err
	}
	for _, v := range []struct {
		name string
		size int64
	}{{"data", size}, {"sums", blockpool.SumsSize(size)}} {
		fv, err := pool.Create(v.name, v.size)
		if err != nil {
			return err
		}
		fv.Close()
	}
	hdr := make([]byte, heldHeader)
	copy(hdr, heldMagic)
	if err := atomicfile.Write(filepath.Join(dir, heldFile), hdr, 0o600); err != nil {
		return err
	}
	b, _ := json.Marshal(info)
	return atomicfile.Write(filepath.Join(dir, "info.json"), b, 0o600)
}

// targetLocked is the snapshot new copies go to: the newest one not being
// deleted (-1: none).
func (c *snapChain) targetLocked() int {
	for i := len(c.snaps) - 1; i >= 0; i-- {
		if !c.snaps[i].deleting {
			return i
		}
	}
	return -1
}

// preserve copies the blocks of [off, off+n) that the newest snapshot does
// not hold yet into it, and returns once they are durably held, before the
// live volume changes them. Concurrent writers share the flushes: the
// copies are made under the chain's lock, and one of the writers makes all
// the pending ones durable at once while the others wait for it.
func (c *snapChain) preserve(live *blockpool.Checked, off, n int64) error {
	if n <= 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.targetLocked()
	if t < 0 {
		return nil
	}
	s := c.snaps[t]
	first, last := off/BlockSize, min((off+n-1)/BlockSize, s.blocks()-1)
	buf := make([]byte, BlockSize)
	waiting := false
	for b := first; b <= last; b++ {
		if s.has(b) {
			continue
		}
		waiting = true
		if s.pending[b] {
			continue // another writer's copy: wait for its flush
		}
		wrote, err := c.copyBlockLocked(t, b, live, s, buf)
		if err != nil {
			return fmt.Errorf("snapshot %s: preserve block %d: %w", s.info.Name, b, err)
		}
		s.dirty = s.dirty || wrote
		s.pending[b] = true
	}
	for waiting {
		waiting = false
		for b := first; b <= last; b++ {
			switch {
			case s.has(b):
			case s.pending[b]:
				waiting = true
			default:
				return fmt.Errorf("snapshot %s: block %d: its copy could not be made durable", s.info.Name, b)
			}
		}
		switch {
		case !waiting:
		case c.flushing:
			c.flushed.Wait()
		default:
			if err := c.flushLocked(s); err != nil {
				return err
			}
		}
	}
	return nil
}

// flushLocked makes s's pending copies durable and then their bits, with
// the chain's lock released meanwhile (copies go on; nothing else changes
// s's bits while flushing is set). On an error the copies are forgotten:
// their blocks are copied again by the next write.
func (c *snapChain) flushLocked(s *snap) error {
	c.flushing = true
	batch := make([]int64, 0, len(s.pending))
	for b := range s.pending {
		batch = append(batch, b)
	}
	words, lo := s.held.with(batch)
	dirty := s.dirty
	s.dirty = false
	c.mu.Unlock()
	var err error
	if dirty {
		err = s.vol.Sync()
	}
	if err == nil {
		err = s.held.persist(words, lo)
	}
	c.mu.Lock()
	if err == nil {
		copy(s.held.bits[lo:], words)
	}
	for _, b := range batch {
		delete(s.pending, b)
	}
	if err != nil && dirty {
		s.dirty = true // the copies' blocks are copied again; be safe
	}
	c.flushing = false
	c.flushed.Broadcast()
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", s.info.Name, err)
	}
	return nil
}

// quiesceLocked waits until no flush runs and s has nothing pending.
func (c *snapChain) quiesceLocked(s *snap) {
	for c.flushing || (s != nil && len(s.pending) > 0) {
		c.flushed.Wait()
	}
}

// preserveLocked is preserve for callers that hold all I/O (a restore):
// the copies are flushed at once.
func (c *snapChain) preserveLocked(live *blockpool.Checked, first, last int64) error {
	t := c.targetLocked()
	if t < 0 {
		return nil
	}
	s := c.snaps[t]
	c.quiesceLocked(s)
	var want []int64
	for b := max(first, 0); b <= min(last, s.blocks()-1); b++ {
		if !s.has(b) {
			want = append(want, b)
		}
	}
	err := s.holdDurably(want, func(b int64, buf []byte) (bool, error) { return c.copyBlockLocked(t, b, live, s, buf) })
	if err != nil {
		return fmt.Errorf("snapshot %s: preserve: %w", s.info.Name, err)
	}
	return nil
}

// holdDurably copies blocks into s's store (copy reports whether it wrote
// anything), flushes them, and then marks them held, durably: the copy is
// durable before its bit is (and, for a preserve, the bit before the live
// block changes).
func (s *snap) holdDurably(blocks []int64, copy func(b int64, buf []byte) (bool, error)) error {
	if len(blocks) == 0 {
		return nil
	}
	wrote := false
	buf := make([]byte, BlockSize)
	for _, b := range blocks {
		w, err := copy(b, buf)
		if err != nil {
			return fmt.Errorf("block %d: %w", b, err)
		}
		wrote = wrote || w
	}
	if wrote {
		if err := s.vol.Sync(); err != nil {
			return err
		}
	}
	return s.held.set(blocks)
}

// sourceLocked is the volume that holds block b as snapshot i sees it.
func (c *snapChain) sourceLocked(i int, b int64, live *blockpool.Checked) (*blockpool.Checked, error) {
	for _, s := range c.snaps[i:] {
		if s.has(b) {
			return s.vol, nil
		}
	}
	if live == nil || (b+1)*BlockSize > live.Size() {
		// A shrink preserves what it cuts off, so this cannot happen
		// unless the files were changed under the replica.
		return nil, fmt.Errorf("%w: block %d of snapshot %s is held nowhere", blockpool.ErrCorrupt, b, c.snaps[i].info.Name)
	}
	return live, nil
}

// readAsOfLocked reads block b as snapshot i sees it.
func (c *snapChain) readAsOfLocked(i int, b int64, live *blockpool.Checked, buf []byte) error {
	src, err := c.sourceLocked(i, b, live)
	if err != nil {
		return err
	}
	_, err = src.ReadAt(buf, b*BlockSize)
	return err
}

// copyBlockLocked copies block b as snapshot i sees it into dst's store
// and reports whether it wrote anything: a block of zeroes is held without
// being stored (a hole reads as zeroes), and a block that fails its sum is
// copied raw, so the snapshot fails it too rather than hold garbage under
// a fresh sum (and the write that replaces it, a repair's say, goes on).
func (c *snapChain) copyBlockLocked(i int, b int64, live *blockpool.Checked, dst *snap, buf []byte) (bool, error) {
	src, err := c.sourceLocked(i, b, live)
	if err != nil {
		return false, err
	}
	_, err = src.ReadAt(buf, b*BlockSize)
	if errors.Is(err, blockpool.ErrCorrupt) {
		sum, err := src.ReadRaw(b, buf)
		if err != nil {
			return false, err
		}
		return true, dst.vol.WriteRaw(b, buf, sum)
	}
	if err != nil || allZero(buf) {
		return false, err
	}
	_, err = dst.vol.WriteAt(buf, b*BlockSize)
	return true, err
}

// read reads [off, off+len(p)) of the snapshot called name (whole blocks).
func (c *snapChain) read(name string, live *blockpool.Checked, p []byte, off int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := c.indexLocked(name)
	if i < 0 {
		return fmt.Errorf("%w: %s", ErrNoSnapshot, name)
	}
	for at := int64(0); at < int64(len(p)); at += BlockSize {
		if err := c.readAsOfLocked(i, (off+at)/BlockSize, live, p[at:at+BlockSize]); err != nil {
			return err
		}
	}
	return nil
}

// rollback makes live (already resized to the snapshot's size) hold the
// snapshot called name again: every block some snapshot from it onwards
// holds is written back, the newer snapshots preserving what it replaces.
// The caller holds all I/O.
func (c *snapChain) rollback(name string, live *blockpool.Checked) error {
	buf := make([]byte, snapChunk*BlockSize)
	c.mu.Lock()
	i := c.indexLocked(name)
	if i < 0 {
		c.mu.Unlock()
		return fmt.Errorf("%w: %s", ErrNoSnapshot, name)
	}
	total := c.snaps[i].blocks()
	c.mu.Unlock()
	for first := int64(0); first < total; first += snapChunk {
		if err := c.rollbackChunk(name, live, first, min(first+snapChunk, total), buf); err != nil {
			return err
		}
	}
	return live.Sync()
}

func (c *snapChain) rollbackChunk(name string, live *blockpool.Checked, first, end int64, buf []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := c.indexLocked(name)
	if i < 0 {
		return fmt.Errorf("%w: %s", ErrNoSnapshot, name)
	}
	changed := func(b int64) bool {
		for _, s := range c.snaps[i:] {
			if s.has(b) {
				return true
			}
		}
		return false
	}
	for b := first; b < end; {
		if !changed(b) {
			b++
			continue
		}
		run := b
		for run < end && changed(run) {
			run++
		}
		// Read the run as of the snapshot before preserving it for the
		// newer ones (which may read it from the same stores).
		p := buf[:(run-b)*BlockSize]
		for x := b; x < run; x++ {
			if err := c.readAsOfLocked(i, x, live, p[(x-b)*BlockSize:(x-b+1)*BlockSize]); err != nil {
				return err
			}
		}
		if err := c.preserveLocked(live, b, run-1); err != nil {
			return err
		}
		if allZero(p) {
			if err := live.Trim(b*BlockSize, int64(len(p))); err != nil {
				return err
			}
		} else if _, err := live.WriteAt(p, b*BlockSize); err != nil {
			return err
		}
		b = run
	}
	return nil
}

// remove deletes the snapshot called name, first handing the blocks it
// holds to its older neighbour where that one lacks them.
func (c *snapChain) remove(name string) error {
	c.removeMu.Lock()
	defer c.removeMu.Unlock()
	c.mu.Lock()
	i := c.indexLocked(name)
	if i < 0 {
		c.mu.Unlock()
		return fmt.Errorf("%w: %s", ErrNoSnapshot, name)
	}
	s := c.snaps[i]
	s.deleting = true
	// Writers' copies into it, if it was the newest, settle first: from
	// here on they go to its older neighbour.
	c.quiesceLocked(s)
	c.mu.Unlock()
	for first := int64(0); first < s.blocks(); first += snapChunk {
		if err := c.handDown(s, first, min(first+snapChunk, s.blocks())); err != nil {
			c.mu.Lock()
			s.deleting = false
			c.mu.Unlock()
			return fmt.Errorf("delete snapshot %s: %w", name, err)
		}
	}
	c.mu.Lock()
	c.snaps = append(c.snaps[:c.indexOf(s)], c.snaps[c.indexOf(s)+1:]...)
	c.mu.Unlock()
	gone := s.dir + ".deleted"
	err := errors.Join(s.close(), os.Rename(s.dir, gone))
	if err == nil {
		err = syncParent(s.dir)
	}
	if err != nil {
		return fmt.Errorf("delete snapshot %s: %w", name, err)
	}
	return os.RemoveAll(gone)
}

func (c *snapChain) indexOf(s *snap) int {
	for i, x := range c.snaps {
		if x == s {
			return i
		}
	}
	return -1
}

// handDown copies blocks [first, end) that s holds and its older
// neighbour lacks into that neighbour.
func (c *snapChain) handDown(s *snap, first, end int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := c.indexOf(s)
	if i <= 0 {
		return nil // the oldest: nobody reads through it
	}
	o := c.snaps[i-1]
	if o.held == nil {
		return nil // a full copy lacks nothing
	}
	c.quiesceLocked(o)
	var moved []int64
	for b := first; b < min(end, o.blocks()); b++ {
		if s.has(b) && !o.has(b) {
			moved = append(moved, b)
		}
	}
	return o.holdDurably(moved, func(b int64, buf []byte) (bool, error) { return c.copyBlockLocked(i, b, nil, o, buf) })
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// heldBits is a thin snapshot's held.bits: one bit per block it holds.
type heldBits struct {
	f    *os.File
	bits []uint64
}

func openHeld(path string, size int64) (*heldBits, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	h := &heldBits{f: f, bits: make([]uint64, bitmapWords(size))}
	raw := make([]byte, heldHeader+8*len(h.bits))
	n, err := f.ReadAt(raw, 0)
	if n < len(heldMagic) || string(raw[:len(heldMagic)]) != heldMagic {
		f.Close()
		return nil, fmt.Errorf("%s: not a held-blocks file (%v)", path, err)
	}
	// A short file reads as zeroes past its end: nothing held there.
	for i := range h.bits {
		h.bits[i] = binary.LittleEndian.Uint64(raw[heldHeader+8*i:])
	}
	return h, nil
}

// with is the words lo.. of the bits with blocks added (not applied).
func (h *heldBits) with(blocks []int64) (words []uint64, lo int) {
	lo, hi := len(h.bits), -1
	for _, b := range blocks {
		w := int(b / 64)
		lo, hi = min(lo, w), max(hi, w)
	}
	if hi < 0 {
		return nil, 0
	}
	words = append([]uint64(nil), h.bits[lo:hi+1]...)
	for _, b := range blocks {
		words[int(b/64)-lo] |= 1 << (b % 64)
	}
	return words, lo
}

// persist writes words at word lo and flushes them.
func (h *heldBits) persist(words []uint64, lo int) error {
	if len(words) == 0 {
		return nil
	}
	raw := make([]byte, 8*len(words))
	for i, w := range words {
		binary.LittleEndian.PutUint64(raw[8*i:], w)
	}
	if _, err := h.f.WriteAt(raw, heldHeader+8*int64(lo)); err != nil {
		return fmt.Errorf("held blocks: %w", err)
	}
	if err := h.f.Sync(); err != nil {
		return fmt.Errorf("held blocks: %w", err)
	}
	return nil
}

// set marks blocks held, durably; on an error none is.
func (h *heldBits) set(blocks []int64) error {
	words, lo := h.with(blocks)
	if err := h.persist(words, lo); err != nil {
		return err
	}
	copy(h.bits[lo:], words)
	return nil
}
