package shard

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/zeebo/xxh3"
)

// HeaderSize is the size of a block record header. Callers hand Append a
// buffer with this much headroom before the data so each record is written
// with a single pwrite and no copy.
const HeaderSize = 32

const (
	recordMagic    = 0x4B4C4253 // "SBLK" little endian
	recordVersion  = 1
	superMagic     = "STRVOL01"
	superblockSize = 4096
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Errors of the read path.
var (
	ErrCorrupt = errors.New("shard: checksum mismatch")
	ErrMissing = errors.New("shard: shard not on this device")
)

// recordHeader is the fixed header in front of every block record:
//
//	0  u32 magic "SBLK"
//	4  u8  version
//	5  u8  reserved (0)
//	6  u16 reserved (0)
//	8  u32 data length
//	12 u32 block index within the shard stream
//	16 u64 writer id (random per shard stream)
//	24 u32 low 32 bits of xxh3-64(data)... see below
//	28 u32 crc32c of bytes 0..27
//
// The data checksum is stored as the low 32 bits of xxh3-64 to keep the
// header at 32 bytes; 2^-32 miss probability per corrupted block, on top of
// the header crc.
type recordHeader struct {
	dataLen  uint32
	index    uint32
	writerID uint64
	dataSum  uint32
}

func dataSum(data []byte) uint32 { return uint32(xxh3.Hash(data)) }

func (h recordHeader) put(b []byte) {
	binary.LittleEndian.PutUint32(b[0:], recordMagic)
	b[4], b[5] = recordVersion, 0
	binary.LittleEndian.PutUint16(b[6:], 0)
	binary.LittleEndian.PutUint32(b[8:], h.dataLen)
	binary.LittleEndian.PutUint32(b[12:], h.index)
	binary.LittleEndian.PutUint64(b[16:], h.writerID)
	binary.LittleEndian.PutUint32(b[24:], h.dataSum)
	binary.LittleEndian.PutUint32(b[28:], crc32.Checksum(b[:28], castagnoli))
}

func parseHeader(b []byte) (recordHeader, error) {
	if binary.LittleEndian.Uint32(b[28:]) != crc32.Checksum(b[:28], castagnoli) {
		return recordHeader{}, fmt.Errorf("%w: record header", ErrCorrupt)
	}
	if binary.LittleEndian.Uint32(b[0:]) != recordMagic || b[4] != recordVersion {
		return recordHeader{}, fmt.Errorf("%w: record magic/version", ErrCorrupt)
	}
	return recordHeader{
		dataLen:  binary.LittleEndian.Uint32(b[8:]),
		index:    binary.LittleEndian.Uint32(b[12:]),
		writerID: binary.LittleEndian.Uint64(b[16:]),
		dataSum:  binary.LittleEndian.Uint32(b[24:]),
	}, nil
}

// Locator says where one shard stream lives on a device: the volume
// generation, the writer id, the data length of full blocks and of the last
// block, and the offset of every block record.
type Locator struct {
	Generation uint32
	WriterID   uint64
	BlockLen   uint32 // data bytes in every block but the last
	LastLen    uint32 // data bytes in the last block
	Offsets    []int64
}

// Blocks is the number of block records.
func (l *Locator) Blocks() int { return len(l.Offsets) }

// DataLen is the data length of block i.
func (l *Locator) DataLen(i int) int {
	if i == len(l.Offsets)-1 {
		return int(l.LastLen)
	}
	return int(l.BlockLen)
}

// Size is the total data length of the shard stream.
func (l *Locator) Size() int64 {
	if len(l.Offsets) == 0 {
		return 0
	}
	return int64(len(l.Offsets)-1)*int64(l.BlockLen) + int64(l.LastLen)
}

// AppendBinary encodes the locator: uvarint generation, u64 writer id,
// uvarint block length, last length and count, then every offset as a
// zigzag varint delta from where the previous record ended (0 when the
// records are contiguous, which they usually are).
func (l *Locator) AppendBinary(b []byte) []byte {
	b = binary.AppendUvarint(b, uint64(l.Generation))
	b = binary.LittleEndian.AppendUint64(b, l.WriterID)
	b = binary.AppendUvarint(b, uint64(l.BlockLen))
	b = binary.AppendUvarint(b, uint64(l.LastLen))
	b = binary.AppendUvarint(b, uint64(len(l.Offsets)))
	var next int64
	for i, off := range l.Offsets {
		b = binary.AppendVarint(b, off-next)
		next = off + HeaderSize + int64(l.DataLen(i))
	}
	return b
}

// DecodeLocator decodes a locator and returns the bytes after it.
func DecodeLocator(b []byte) (Locator, []byte, error) {
	var l Locator
	bad := fmt.Errorf("%w: locator encoding", ErrCorrupt)
	u := func() uint64 {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			b = nil
			return 0
		}
		b = b[n:]
		return v
	}
	gen := u()
	if len(b) < 8 {
		return l, nil, bad
	}
	l.Generation = uint32(gen)
	l.WriterID = binary.LittleEndian.Uint64(b)
	b = b[8:]
	l.BlockLen, l.LastLen = uint32(u()), uint32(u())
	n := u()
	if b == nil && n != 0 || n > 1<<32 {
		return l, nil, bad
	}
	l.Offsets = make([]int64, 0, min(n, 1<<16))
	var next int64
	for i := uint64(0); i < n; i++ {
		d, k := binary.Varint(b)
		if k <= 0 {
			return l, nil, bad
		}
		b = b[k:]
		off := next + d
		l.Offsets = append(l.Offsets, off)
		dataLen := l.BlockLen
		if i == n-1 {
			dataLen = l.LastLen
		}
		next = off + HeaderSize + int64(dataLen)
	}
	return l, b, nil
}
