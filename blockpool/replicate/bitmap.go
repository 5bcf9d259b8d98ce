package replicate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"math/bits"
	"os"
	"path/filepath"
	"sort"

	"golang.org/x/sys/unix"
)

// BlockSize is the unit of the out-of-sync bitmaps: one bit per 4 KiB
// block, as DRBD keeps it.
const BlockSize = 4096

const (
	bitmapHeader = 4096 // magic, base generation, full flag, crc; then the bits
	bitmapMagic  = "STRBMP01"
)

// bitmap is the persistent out-of-sync record one replica keeps for one
// absent peer: the blocks written since the peer was last known to be at
// generation base. full means "copy everything" (the history is unknown).
type bitmap struct {
	f    *os.File
	base uint64
	full bool
	bits []uint64
}

func bitmapWords(size int64) int { return int((blocksOf(size) + 63) / 64) }

func blocksOf(size int64) int64 { return (size + BlockSize - 1) / BlockSize }

// openBitmap opens the bitmap file at path, or reports fs.ErrNotExist.
func openBitmap(path string, size int64) (*bitmap, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	b := &bitmap{f: f, bits: make([]uint64, bitmapWords(size))}
	hdr := make([]byte, 32)
	if _, err := f.ReadAt(hdr, 0); err != nil {
		f.Close()
		return nil, fmt.Errorf("bitmap %s: %w", path, err)
	}
	if string(hdr[:8]) != bitmapMagic || crc32.ChecksumIEEE(hdr[:17]) != binary.LittleEndian.Uint32(hdr[17:]) {
		// A torn header: the bits cannot be trusted, so the peer gets
		// everything.
		b.full = true
		return b, b.writeHeader()
	}
	b.base, b.full = binary.LittleEndian.Uint64(hdr[8:]), hdr[16] == 1
	raw := make([]byte, 8*len(b.bits))
	if n, err := f.ReadAt(raw, bitmapHeader); err != nil && n < len(raw) {
		// A short file reads as zeroes beyond its end.
		clear(raw[n:])
	}
	for i := range b.bits {
		b.bits[i] = binary.LittleEndian.Uint64(raw[8*i:])
	}
	return b, nil
}

// createBitmap makes an empty bitmap tracking a peer from generation base.
func createBitmap(path string, size int64, base uint64, full bool) (*bitmap, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	b := &bitmap{f: f, base: base, full: full, bits: make([]uint64, bitmapWords(size))}
	if err := f.Truncate(bitmapHeader + int64(8*len(b.bits))); err != nil {
		f.Close()
		return nil, err
	}
	if err := b.writeHeader(); err != nil {
		f.Close()
		return nil, err
	}
	return b, syncParent(path)
}

func (b *bitmap) writeHeader() error {
	hdr := make([]byte, 21)
	copy(hdr, bitmapMagic)
	binary.LittleEndian.PutUint64(hdr[8:], b.base)
	if b.full {
		hdr[16] = 1
	}
	binary.LittleEndian.PutUint32(hdr[17:], crc32.ChecksumIEEE(hdr[:17]))
	if _, err := b.f.WriteAt(hdr, 0); err != nil {
		return err
	}
	return unix.Fdatasync(int(b.f.Fd()))
}

// mark sets the bits of [off, off+n) and persists the words that changed
// (fsync'd) before it returns; it reports whether anything was new.
func (b *bitmap) mark(off, n int64) (bool, error) {
	if n <= 0 || b.full {
		return false, nil
	}
	first, last := off/BlockSize, (off+n-1)/BlockSize
	w0, w1 := -1, -1
	for blk := first; blk <= last && int(blk/64) < len(b.bits); blk++ {
		w, m := blk/64, uint64(1)<<(blk%64)
		if b.bits[w]&m == 0 {
			b.bits[w] |= m
			if w0 < 0 {
				w0 = int(w)
			}
			w1 = int(w)
		}
	}
	if w0 < 0 {
		return false, nil
	}
	raw := make([]byte, 8*(w1-w0+1))
	for i := w0; i <= w1; i++ {
		binary.LittleEndian.PutUint64(raw[8*(i-w0):], b.bits[i])
	}
	if _, err := b.f.WriteAt(raw, bitmapHeader+int64(8*w0)); err != nil {
		return true, err
	}
	return true, unix.Fdatasync(int(b.f.Fd()))
}

// merge ORs other's bits (and fullness) into b and persists it.
func (b *bitmap) merge(words []uint64, full bool) error {
	for i := range min(len(words), len(b.bits)) {
		b.bits[i] |= words[i]
	}
	b.full = b.full || full
	return b.persistAll()
}

func (b *bitmap) persistAll() error {
	raw := make([]byte, 8*len(b.bits))
	for i, w := range b.bits {
		binary.LittleEndian.PutUint64(raw[8*i:], w)
	}
	if _, err := b.f.WriteAt(raw, bitmapHeader); err != nil {
		return err
	}
	return b.writeHeader()
}

// count is the number of blocks marked.
func (b *bitmap) count() int64 {
	var c int
	for _, w := range b.bits {
		c += bits.OnesCount64(w)
	}
	return int64(c)
}

func (b *bitmap) close() error { return b.f.Close() }

// resize follows the volume to size bytes: a shrink forgets the blocks cut
// off (in the file too), a grow adds clear ones.
func (b *bitmap) resize(size int64) error {
	bits := make([]uint64, bitmapWords(size))
	copy(bits, b.bits)
	if tail := blocksOf(size) % 64; tail != 0 {
		bits[len(bits)-1] &= 1<<tail - 1
	}
	b.bits = bits
	if err := b.f.Truncate(bitmapHeader + int64(8*len(bits))); err != nil {
		return err
	}
	if len(bits) > 0 {
		var raw [8]byte
		binary.LittleEndian.PutUint64(raw[:], bits[len(bits)-1])
		if _, err := b.f.WriteAt(raw[:], bitmapHeader+int64(8*(len(bits)-1))); err != nil {
			return err
		}
	}
	return unix.Fdatasync(int(b.f.Fd()))
}

// Extent is a byte range of a volume.
type Extent struct{ Off, Len int64 }

// Runs turns bitmap words into byte ranges of consecutive marked blocks,
// each at most maxLen long, clipped to size.
func Runs(words []uint64, size, maxLen int64) []Extent {
	var out []Extent
	n := blocksOf(size)
	for blk := int64(0); blk < n; {
		if words[blk/64] == 0 && blk%64 == 0 {
			blk += 64
			continue
		}
		if words[blk/64]&(1<<(blk%64)) == 0 {
			blk++
			continue
		}
		start := blk
		for blk < n && words[blk/64]&(1<<(blk%64)) != 0 && (blk-start+1)*BlockSize <= maxLen {
			blk++
		}
		off := start * BlockSize
		out = append(out, Extent{off, min(blk*BlockSize, size) - off})
	}
	return out
}

// MergeExtents sorts extents and joins those that touch or overlap.
func MergeExtents(in []Extent) []Extent {
	sort.Slice(in, func(i, j int) bool { return in[i].Off < in[j].Off })
	var out []Extent
	for _, e := range in {
		if e.Len <= 0 {
			continue
		}
		if k := len(out) - 1; k >= 0 && e.Off <= out[k].Off+out[k].Len {
			out[k].Len = max(out[k].Len, e.Off+e.Len-out[k].Off)
			continue
		}
		out = append(out, e)
	}
	return out
}

func syncParent(path string) error {
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
