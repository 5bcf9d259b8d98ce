package blockpool

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
)

func newChecked(t *testing.T, size int64) (*Checked, *MemVolume, *MemVolume) {
	t.Helper()
	data, sums := NewMemVolume(size), NewMemVolume(SumsSize(size))
	c, err := OpenChecked(data, sums)
	if err != nil {
		t.Fatal(err)
	}
	return c, data, sums
}

// Random unaligned writes, trims and reads against a shadow copy.
func TestCheckedMatchesShadow(t *testing.T) {
	const size = 16<<20 + 1000 // a short last block
	c, _, _ := newChecked(t, size)
	shadow := make([]byte, size)
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 600; i++ {
		off := r.Int64N(size)
		n := min(r.Int64N(3*CheckedBlock+100)+1, size-off)
		switch r.IntN(4) {
		case 0, 1:
			p := make([]byte, n)
			for j := range p {
				p[j] = byte(r.Uint32())
			}
			if _, err := c.WriteAt(p, off); err != nil {
				t.Fatal(err)
			}
			copy(shadow[off:], p)
		case 2:
			if r.IntN(5) == 0 {
				n = min(r.Int64N(64<<20), size-off) // sometimes huge
			}
			if err := c.Trim(off, n); err != nil {
				t.Fatal(err)
			}
			clear(shadow[off : off+n])
		case 3:
			p := make([]byte, n)
			if _, err := c.ReadAt(p, off); err != nil {
				t.Fatalf("read %d+%d: %v", off, n, err)
			}
			if !bytes.Equal(p, shadow[off:off+n]) {
				t.Fatalf("read %d+%d differs", off, n)
			}
		}
	}
	all := make([]byte, size)
	if _, err := c.ReadAt(all, 0); err != nil || !bytes.Equal(all, shadow) {
		t.Fatalf("final read: %v", err)
	}
	if _, err := c.ReadAt(make([]byte, 2), size-1); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("read past the end: %v", err)
	}
}

// A flipped bit in the data is found on read, in that block only.
func TestCheckedFindsBitRot(t *testing.T) {
	c, data, _ := newChecked(t, 1<<20)
	p := bytes.Repeat([]byte("strata"), 50000)
	c.WriteAt(p, 0)
	c.Sync()
	var one [1]byte
	data.ReadAt(one[:], 5*CheckedBlock+7)
	one[0] ^= 0x10
	data.WriteAt(one[:], 5*CheckedBlock+7)
	if _, err := c.ReadAt(make([]byte, 10), 5*CheckedBlock); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("read of the rotten block: %v", err)
	}
	if _, err := c.ReadAt(make([]byte, CheckedBlock), 4*CheckedBlock); err != nil {
		t.Fatalf("neighbour block: %v", err)
	}
	// A partial write into the rotten block must not launder it.
	if _, err := c.WriteAt([]byte("x"), 5*CheckedBlock); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("read-modify-write over rot: %v", err)
	}
	if c.Corruptions() != 2 {
		t.Fatalf("corruption counter %d", c.Corruptions())
	}
	// A whole-block overwrite replaces it.
	if _, err := c.WriteAt(make([]byte, CheckedBlock), 5*CheckedBlock); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadAt(make([]byte, CheckedBlock), 5*CheckedBlock); err != nil {
		t.Fatal(err)
	}
}

// A crash between data and sums reaching the disk leaves blocks whose data
// and sums disagree; the activity log makes recovery recompute them, so
// there is no false corruption, and flushed data is intact.
func TestCheckedTornWritesAfterCrash(t *testing.T) {
	c, data, sums := newChecked(t, 64<<20)
	flushed := bytes.Repeat([]byte{7}, 8<<20)
	c.WriteAt(flushed, 0)
	if err := c.Sync(); err != nil {
		t.Fatal(err)
	}
	// Unflushed writes in 3 extents, then the data volume alone reaches
	// the disk (sums lost): every one of those blocks is "torn".
	for _, off := range []int64{1 << 20, 20 << 20, 40<<20 + 5} {
		c.WriteAt(bytes.Repeat([]byte{9}, 300000), off)
	}
	data.Sync()
	data.Crash()
	sums.Crash()
	c2, err := OpenChecked(data, sums)
	if err != nil {
		t.Fatal(err)
	}
	all := make([]byte, 64<<20)
	if _, err := c2.ReadAt(all, 0); err != nil {
		t.Fatalf("false corruption after recovery: %v", err)
	}
	if !bytes.Equal(all[2<<20:8<<20], flushed[2<<20:8<<20]) {
		t.Fatal("flushed data lost")
	}
	// Without the log (a volume whose header was wiped) the same state
	// would read as corruption: the test above is not vacuous.
	c2.WriteAt(bytes.Repeat([]byte{1}, 4096), 30<<20)
	data.Sync()
	data.Crash()
	sums.Crash()
	sums.WriteAt(make([]byte, sumsHeader), 0)
	c3, err := OpenChecked(data, sums)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c3.ReadAt(make([]byte, 4096), 30<<20); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("torn block without the log: %v", err)
	}
}

// A clean close needs no recovery, and everything survives reopening.
func TestCheckedCleanReopen(t *testing.T) {
	c, data, sums := newChecked(t, 8<<20)
	p := bytes.Repeat([]byte("abc"), 100000)
	c.WriteAt(p, 12345)
	c.Trim(100000, 100)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	data.Crash() // reopen the in-memory volumes
	sums.Crash()
	c2, err := OpenChecked(data, sums)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(p))
	if _, err := c2.ReadAt(got, 12345); err != nil {
		t.Fatal(err)
	}
	want := append([]byte(nil), p...)
	clear(want[100000-12345 : 100000-12345+100])
	if !bytes.Equal(got, want) {
		t.Fatal("content after a clean reopen")
	}
	if _, err := OpenChecked(data, NewMemVolume(100)); err == nil {
		t.Fatal("a sums volume too small was accepted")
	}
}

// BenchmarkChecked: 4 KiB and 1 MiB reads and writes through the checksum
// layer against the same file-thin volume without it (page cache, no
// fsync), so the ratio is the cost of checksums and the activity log.
func BenchmarkChecked(b *testing.B) {
	for _, size := range []int{4 << 10, 1 << 20} {
		for _, checked := range []bool{false, true} {
			name := "raw"
			if checked {
				name = "checked"
			}
			pool, err := OpenFilePool("p", b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			const volSize = 256 << 20
			data, _ := pool.Create("v", volSize)
			var vol Volume = data
			if checked {
				sums, _ := pool.Create("s", SumsSize(volSize))
				c, err := OpenChecked(data, sums)
				if err != nil {
					b.Fatal(err)
				}
				vol = c
			}
			p := make([]byte, size)
			for i := range p {
				p[i] = byte(i)
			}
			b.Run("write/"+name+"/"+sizeName(size), func(b *testing.B) {
				b.SetBytes(int64(size))
				for i := 0; i < b.N; i++ {
					if _, err := vol.WriteAt(p, int64(i*size)%volSize); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("read/"+name+"/"+sizeName(size), func(b *testing.B) {
				b.SetBytes(int64(size))
				for i := 0; i < b.N; i++ {
					if _, err := vol.ReadAt(p, int64(i*size)%volSize); err != nil {
						b.Fatal(err)
					}
				}
			})
			vol.Close()
		}
	}
}

func sizeName(n int) string {
	if n >= 1<<20 {
		return "1MiB"
	}
	return "4KiB"
}

// A raw copy keeps a block's verdict: a rotten block copied raw fails its
// sum in the copy too, a sound one reads back.
func TestRawCopyKeepsTheVerdict(t *testing.T) {
	src, data, _ := newChecked(t, 1<<20)
	dst, _, _ := newChecked(t, 1<<20)
	want := bytes.Repeat([]byte{0x5a}, 2*CheckedBlock)
	if _, err := src.WriteAt(want, 0); err != nil {
		t.Fatal(err)
	}
	data.WriteAt([]byte{0xff}, CheckedBlock+7) // rot in block 1
	buf := make([]byte, CheckedBlock)
	for b := int64(0); b < 2; b++ {
		sum, err := src.ReadRaw(b, buf)
		if err != nil {
			t.Fatal(err)
		}
		if err := dst.WriteRaw(b, buf, sum); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := dst.ReadAt(buf, 0); err != nil || !bytes.Equal(buf, want[:CheckedBlock]) {
		t.Fatalf("sound block copied raw: %v", err)
	}
	if _, err := dst.ReadAt(buf, CheckedBlock); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("rotten block copied raw reads: %v", err)
	}
}
