package blockpool

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"sort"
	"sync"
	"sync/atomic"
)

// Checked is a volume that keeps a CRC32C for every 4 KiB block in a
// second volume (the sums) and verifies it on every read.
//
// Torn writes: a write that was never flushed may, after a crash, leave a
// block whose data and sum disagree although nothing rotted. Like DRBD's
// activity log, the sums volume's header names the 4 MiB extents that may
// hold writes not yet flushed (written and synced before those writes
// start); on open after an unclean stop, only those extents have their sums
// recomputed from the data. Anything outside them that fails its sum is real
// corruption.
type Checked struct {
	data, sums Volume
	size       int64

	stripes [checkedStripes]sync.Mutex // blocks being read-modify-written or written

	alMu   sync.Mutex
	active map[uint32]int // extent -> writes in flight (present: in the log)
	logged []uint32       // extents in the persisted log
	// recovered are the extents the log named at an unclean open: the
	// places where this copy may differ from a replica's.
	recovered []uint32
	corrupts  atomic.Int64
}

const (
	CheckedBlock   = 4096
	checkedExtent  = 4 << 20
	checkedStripes = 256
	sumsHeader     = 64 << 10 // header, then one u32 per block
	alCapacity     = 4096     // extents the header can name
	alSoftMax      = 256      // beyond this the log is flushed and trimmed
	checkedMagic   = "STRCHK01"
)

var castagnoliTable = crc32.MakeTable(crc32.Castagnoli)

// ErrCorrupt is returned by a read whose data fails its block checksum.
var ErrCorrupt = errors.New("blockpool: block checksum mismatch")

// SumsSize is the size of the sums volume for a data volume of size bytes.
func SumsSize(size int64) int64 { return sumsHeader + 4*blocks(size) }

func blocks(size int64) int64 { return (size + CheckedBlock - 1) / CheckedBlock }

// OpenChecked checks data with sums (a zeroed sums volume is a new,
// never-written volume). After an unclean stop it recomputes the sums of
// the extents the activity log names.
func OpenChecked(data, sums Volume) (*Checked, error) {
	if sums.Size() < SumsSize(data.Size()) {
		return nil, fmt.Errorf("blockpool: sums volume of %d bytes for %d of data", sums.Size(), data.Size())
	}
	c := &Checked{data: data, sums: sums, size: data.Size(), active: map[uint32]int{}}
	hdr := make([]byte, sumsHeader)
	if _, err := sums.ReadAt(hdr, 0); err != nil {
		return nil, fmt.Errorf("read checksum header: %w", err)
	}
	switch {
	case isZeroes(hdr):
		// New: every block unwritten.
	case string(hdr[:8]) != checkedMagic:
		return nil, fmt.Errorf("%w: checksum header magic", ErrCorrupt)
	default:
		n := binary.LittleEndian.Uint32(hdr[12:])
		if n > alCapacity || crc32.Checksum(hdr[:16+4*n], castagnoliTable) != binary.LittleEndian.Uint32(hdr[16+4*n:]) {
			return nil, fmt.Errorf("%w: checksum header", ErrCorrupt)
		}
		if binary.LittleEndian.Uint32(hdr[8:]) == 0 { // not closed cleanly
			for i := uint32(0); i < n; i++ {
				ext := binary.LittleEndian.Uint32(hdr[16+4*i:])
				if err := c.resum(ext); err != nil {
					return nil, err
				}
				c.recovered = append(c.recovered, ext)
			}
			if err := c.flush(); err != nil {
				return nil, err
			}
		}
	}
	// From here on the volume is open: unclean until Close says otherwise.
	if err := c.writeHeader(false, nil); err != nil {
		return nil, err
	}
	return c, nil
}

var zeroBlock [CheckedBlock]byte

func isZeroes(b []byte) bool {
	for len(b) > 0 {
		n := min(len(b), CheckedBlock)
		if !bytes.Equal(b[:n], zeroBlock[:n]) {
			return false
		}
		b = b[n:]
	}
	return true
}

// resum recomputes the sums of one extent from its data (crash recovery).
func (c *Checked) resum(ext uint32) error {
	start := int64(ext) * checkedExtent
	if start >= c.size {
		return nil
	}
	n := min(int64(checkedExtent), c.size-start)
	buf := make([]byte, n)
	if _, err := c.data.ReadAt(buf, start); err != nil {
		return fmt.Errorf("recover extent %d: %w", ext, err)
	}
	sums := make([]byte, 4*blocks(n))
	for i := range blocks(n) {
		binary.LittleEndian.PutUint32(sums[4*i:], sumOf(buf[i*CheckedBlock:min((i+1)*CheckedBlock, n)]))
	}
	if _, err := c.sums.WriteAt(sums, sumsHeader+4*(start/CheckedBlock)); err != nil {
		return fmt.Errorf("recover extent %d: %w", ext, err)
	}
	return nil
}

func sumOf(b []byte) uint32 { return crc32.Checksum(b, castagnoliTable) }

// writeHeader persists the clean flag and the activity log (fsync'd).
func (c *Checked) writeHeader(clean bool, log []uint32) error {
	hdr := make([]byte, 16+4*len(log)+4)
	copy(hdr, checkedMagic)
	if clean {
		binary.LittleEndian.PutUint32(hdr[8:], 1)
	}
	binary.LittleEndian.PutUint32(hdr[12:], uint32(len(log)))
	for i, e := range log {
		binary.LittleEndian.PutUint32(hdr[16+4*i:], e)
	}
	binary.LittleEndian.PutUint32(hdr[16+4*len(log):], crc32.Checksum(hdr[:16+4*len(log)], castagnoliTable))
	if _, err := c.sums.WriteAt(hdr, 0); err != nil {
		return fmt.Errorf("write checksum header: %w", err)
	}
	if err := c.sums.Sync(); err != nil {
		return fmt.Errorf("write checksum header: %w", err)
	}
	return nil
}

// Size is the data size.
func (c *Checked) Size() int64 { return c.size }

// UnsettledExtents lists the 4 MiB extents (by index) that may hold writes
// not yet flushed, or that held such writes when an unclean stop was
// recovered: where two replicas written by the same primary can differ.
func (c *Checked) UnsettledExtents() []uint32 {
	c.alMu.Lock()
	defer c.alMu.Unlock()
	seen := map[uint32]bool{}
	var out []uint32
	for _, e := range append(append([]uint32(nil), c.recovered...), c.logged...) {
		if !seen[e] {
			seen[e] = true
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Recovered lists the extents resummed at an unclean open (until
// ForgetRecovered).
func (c *Checked) Recovered() []uint32 {
	c.alMu.Lock()
	defer c.alMu.Unlock()
	return append([]uint32(nil), c.recovered...)
}

// ForgetRecovered is called once the recovered extents have been made to
// agree with a replica's.
func (c *Checked) ForgetRecovered() {
	c.alMu.Lock()
	c.recovered = nil
	c.alMu.Unlock()
}

// Settle flushes and trims the activity log to the extents with writes in
// flight, so UnsettledExtents names only places that may really differ.
func (c *Checked) Settle() error {
	c.alMu.Lock()
	defer c.alMu.Unlock()
	if err := c.flush(); err != nil {
		return err
	}
	log := c.inFlightLocked()
	if err := c.writeHeader(false, log); err != nil {
		return err
	}
	c.logged = log
	return nil
}

// ExtentSize is the size of an activity-log extent.
const ExtentSize = checkedExtent

// Corruptions counts reads that failed their checksum.
func (c *Checked) Corruptions() int64 { return c.corrupts.Load() }

// lockBlocks takes the stripes of blocks [first, last] in order.
func (c *Checked) lockBlocks(first, last int64) func() {
	var idx []int
	if last-first+1 >= checkedStripes {
		idx = make([]int, checkedStripes)
		for i := range idx {
			idx[i] = i
		}
	} else {
		seen := map[int]bool{}
		for b := first; b <= last; b++ {
			if i := int(b % checkedStripes); !seen[i] {
				seen[i] = true
				idx = append(idx, i)
			}
		}
		sort.Ints(idx)
	}
	for _, i := range idx {
		c.stripes[i].Lock()
	}
	return func() {
		for _, i := range idx {
			c.stripes[i].Unlock()
		}
	}
}

// ReadAt reads and verifies every block the range touches.
func (c *Checked) ReadAt(p []byte, off int64) (int, error) {
	if err := checkRange(off, int64(len(p)), c.size); err != nil {
		return 0, err
	}
	if len(p) == 0 {
		return 0, nil
	}
	first, last := off/CheckedBlock, (off+int64(len(p))-1)/CheckedBlock
	unlock := c.lockBlocks(first, last)
	defer unlock()
	if c.aligned(off, int64(len(p))) {
		// Whole blocks: read and verify in place.
		if _, err := c.readBlocks(first, last, p); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	buf, err := c.readBlocks(first, last, nil)
	if err != nil {
		return 0, err
	}
	return copy(p, buf[off-first*CheckedBlock:]), nil
}

// aligned reports whether [off, off+n) is made of whole blocks.
func (c *Checked) aligned(off, n int64) bool {
	return off%CheckedBlock == 0 && (n%CheckedBlock == 0 || off+n == c.size)
}

// readBlocks returns the verified data of blocks [first, last], read into
// buf if it is given (it must be exactly their size).
func (c *Checked) readBlocks(first, last int64, buf []byte) ([]byte, error) {
	start := first * CheckedBlock
	end := min((last+1)*CheckedBlock, c.size)
	if buf == nil {
		buf = make([]byte, end-start)
	}
	if _, err := c.data.ReadAt(buf, start); err != nil {
		return nil, err
	}
	sums := make([]byte, 4*(last-first+1))
	if _, err := c.sums.ReadAt(sums, sumsHeader+4*first); err != nil {
		return nil, err
	}
	for b := first; b <= last; b++ {
		blk := buf[(b-first)*CheckedBlock : min((b-first+1)*CheckedBlock, end-start)]
		want := binary.LittleEndian.Uint32(sums[4*(b-first):])
		if got := sumOf(blk); got != want && !(want == 0 && isZeroes(blk)) {
			c.corrupts.Add(1)
			return nil, fmt.Errorf("%w: block %d (offset %d)", ErrCorrupt, b, b*CheckedBlock)
		}
	}
	return buf, nil
}

// ReadRaw reads block b and its stored sum without verifying them: for
// copying a block that fails its sum so that the copy fails it too.
func (c *Checked) ReadRaw(b int64, buf []byte) (sum uint32, err error) {
	if err := checkRange(b*CheckedBlock, int64(len(buf)), c.size); err != nil {
		return 0, err
	}
	unlock := c.lockBlocks(b, b)
	defer unlock()
	if _, err := c.data.ReadAt(buf, b*CheckedBlock); err != nil {
		return 0, err
	}
	var raw [4]byte
	if _, err := c.sums.ReadAt(raw[:], sumsHeader+4*b); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(raw[:]), nil
}

// WriteRaw writes block b with the given sum, as ReadRaw read them.
func (c *Checked) WriteRaw(b int64, data []byte, sum uint32) error {
	if err := checkRange(b*CheckedBlock, int64(len(data)), c.size); err != nil {
		return err
	}
	release, err := c.guard(b, b)
	if err != nil {
		return err
	}
	defer release()
	if _, err := c.data.WriteAt(data, b*CheckedBlock); err != nil {
		return err
	}
	var raw [4]byte
	binary.LittleEndian.PutUint32(raw[:], sum)
	_, err = c.sums.WriteAt(raw[:], sumsHeader+4*b)
	return err
}

// WriteAt writes p at off; partial blocks at the edges are read, verified,
// merged and rewritten whole.
func (c *Checked) WriteAt(p []byte, off int64) (int, error) {
	if err := checkRange(off, int64(len(p)), c.size); err != nil {
		return 0, err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if c.aligned(off, int64(len(p))) {
		return len(p), c.write(off, int64(len(p)), p, nil)
	}
	return len(p), c.write(off, int64(len(p)), nil, func(buf []byte, at int64) { copy(buf[at:], p) })
}

// write writes whole blocks: whole (if given, exactly the blocks of
// [off, off+n)), or the blocks read back and changed by fill.
func (c *Checked) write(off, n int64, whole []byte, fill func(buf []byte, at int64)) error {
	first, last := off/CheckedBlock, (off+n-1)/CheckedBlock
	release, err := c.guard(first, last)
	if err != nil {
		return err
	}
	defer release()
	start := first * CheckedBlock
	end := min((last+1)*CheckedBlock, c.size)
	buf := whole
	if buf == nil {
		// Read-modify-write of the edge blocks (the middle is overwritten
		// anyway, but one verified read keeps this simple).
		if buf, err = c.readBlocks(first, last, nil); err != nil {
			return err
		}
		fill(buf, off-start)
	}
	sums := make([]byte, 4*(last-first+1))
	for b := first; b <= last; b++ {
		blk := buf[(b-first)*CheckedBlock : min((b-first+1)*CheckedBlock, end-start)]
		binary.LittleEndian.PutUint32(sums[4*(b-first):], sumOf(blk))
	}
	if _, err := c.data.WriteAt(buf, start); err != nil {
		return err
	}
	if _, err := c.sums.WriteAt(sums, sumsHeader+4*first); err != nil {
		return err
	}
	return nil
}

// guard enters blocks [first, last] in the activity log and locks them
// for a change; release undoes both.
func (c *Checked) guard(first, last int64) (release func(), err error) {
	done, err := c.enterLog(first, last)
	if err != nil {
		return nil, err
	}
	unlock := c.lockBlocks(first, last)
	return func() { unlock(); done() }, nil
}

// enterLog makes sure the extents of blocks [first, last] are in the
// persisted activity log before their data changes; done marks the write
// finished.
func (c *Checked) enterLog(first, last int64) (func(), error) {
	e0, e1 := uint32(first*CheckedBlock/checkedExtent), uint32(last*CheckedBlock/checkedExtent)
	c.alMu.Lock()
	defer c.alMu.Unlock()
	var missing []uint32
	for e := e0; e <= e1; e++ {
		if _, ok := c.active[e]; !ok {
			missing = append(missing, e)
		}
	}
	if len(missing) > 0 {
		log := c.logged
		if len(log)+len(missing) > alSoftMax {
			// Flush: every completed write is durable, so only extents
			// with writes in flight must stay in the log.
			if err := c.flush(); err != nil {
				return nil, err
			}
			log = c.inFlightLocked()
		}
		log = append(append([]uint32(nil), log...), missing...)
		if len(log) > alCapacity {
			return nil, fmt.Errorf("blockpool: %d extents with writes in flight", len(log))
		}
		if err := c.writeHeader(false, log); err != nil {
			return nil, err
		}
		c.logged = log
	}
	for e := e0; e <= e1; e++ {
		c.active[e]++
	}
	return func() {
		c.alMu.Lock()
		for e := e0; e <= e1; e++ {
			c.active[e]--
		}
		c.alMu.Unlock()
	}, nil
}

// inFlightLocked lists the extents with writes in flight and forgets the
// others (alMu held; everything completed has been flushed).
func (c *Checked) inFlightLocked() []uint32 {
	var log []uint32
	for e, n := range c.active {
		if n > 0 {
			log = append(log, e)
		} else {
			delete(c.active, e)
		}
	}
	return log
}

func (c *Checked) flush() error {
	if err := c.data.Sync(); err != nil {
		return err
	}
	return c.sums.Sync()
}

// Sync makes every completed write durable, data and sums, and drops the
// extents without writes in flight from the activity log: after a crash
// only writes since the last Sync need recovering (and, for a replica,
// copying from a peer).
func (c *Checked) Sync() error {
	c.alMu.Lock()
	settled := 0
	for _, e := range c.logged {
		if c.active[e] == 0 {
			settled++
		}
	}
	c.alMu.Unlock()
	if settled == 0 {
		return c.flush()
	}
	return c.Settle()
}

// Trim discards whole blocks (they read as zeroes, sum "unwritten") and
// zeroes the partial ones at the edges.
func (c *Checked) Trim(off, length int64) error {
	if err := checkRange(off, length, c.size); err != nil {
		return err
	}
	if length == 0 {
		return nil
	}
	end := off + length
	whole0 := (off + CheckedBlock - 1) / CheckedBlock * CheckedBlock
	whole1 := end / CheckedBlock * CheckedBlock
	if end == c.size {
		whole1 = end
	}
	if whole0 >= whole1 {
		return c.write(off, length, nil, func(buf []byte, at int64) { clear(buf[at : at+length]) })
	}
	if off < whole0 {
		if err := c.write(off, whole0-off, nil, func(buf []byte, at int64) { clear(buf[at : at+whole0-off]) }); err != nil {
			return err
		}
	}
	if whole1 < end {
		if err := c.write(whole1, end-whole1, nil, func(buf []byte, at int64) { clear(buf[at : at+end-whole1]) }); err != nil {
			return err
		}
	}
	// Whole blocks, a bounded chunk at a time (the log and the zeroed sums
	// stay small however large the range).
	const chunk = 64 * checkedExtent
	for at := whole0; at < whole1; at += chunk {
		if err := c.trimBlocks(at, min(at+chunk, whole1)); err != nil {
			return err
		}
	}
	return nil
}

// trimBlocks discards the whole blocks of [start, end).
func (c *Checked) trimBlocks(start, end int64) error {
	first, last := start/CheckedBlock, (end-1)/CheckedBlock
	release, err := c.guard(first, last)
	if err != nil {
		return err
	}
	defer release()
	if err := c.data.Trim(start, end-start); err != nil {
		return err
	}
	_, err = c.sums.WriteAt(make([]byte, 4*(last-first+1)), sumsHeader+4*first)
	return err
}

// Close flushes and marks the volume cleanly closed, then closes both.
func (c *Checked) Close() error {
	err := c.flush()
	if err == nil {
		err = c.writeHeader(true, nil)
	}
	return errors.Join(err, c.data.Close(), c.sums.Close())
}
