package blockpool

import (
	"encoding/binary"
	"hash/crc32"
	"testing"
)

// FuzzCheckedHeader opens a checksummed volume whose sums header (its
// activity log of extents in flight) is whatever the fuzzer wrote, sealed
// with a valid checksum half of the time: a header naming extents past the
// volume, or counts past the log, is an error, never a panic.
func FuzzCheckedHeader(f *testing.F) {
	f.Add([]byte(checkedMagic+"\x00\x00\x00\x00\x02\x00\x00\x00\x01\x00\x00\x00\x05\x00\x00\x00"), true)
	f.Add([]byte(checkedMagic), false)
	f.Fuzz(func(t *testing.T, hdr []byte, seal bool) {
		if len(hdr) > sumsHeader-4 {
			hdr = hdr[:sumsHeader-4]
		}
		data := NewMemVolume(64 << 10)
		sums := NewMemVolume(SumsSize(64 << 10))
		h := make([]byte, sumsHeader)
		copy(h, hdr)
		if seal && len(hdr) >= 16 {
			n := binary.LittleEndian.Uint32(h[12:]) % (alCapacity + 1)
			binary.LittleEndian.PutUint32(h[12:], n)
			binary.LittleEndian.PutUint32(h[16+4*n:], crc32.Checksum(h[:16+4*n], castagnoliTable))
		}
		sums.WriteAt(h, 0)
		if c, err := OpenChecked(data, sums); err == nil {
			buf := make([]byte, 4096)
			c.ReadAt(buf, 0)
			c.Close()
		}
	})
}
