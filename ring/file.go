package ring

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/strata-storage/strata/atomicfile"
)

// File format: see docs/format/ring.md.
const (
	fileMagic   = "STRRING\x00"
	fileVersion = 2
	flagBuilt   = 1 // a slot table and move stamps follow the devices
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrCorrupt reports a ring file that does not match the format.
var ErrCorrupt = errors.New("ring: corrupt ring file")

// MarshalBinary encodes the ring in the ring file format (version 2).
func (r *Ring) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, 64+len(r.Devices)*64+len(r.table)*2+len(r.lastMove)*2)
	b = append(b, fileMagic...)
	b = binary.LittleEndian.AppendUint16(b, fileVersion)
	b = append(b, r.PartPower, byte(r.K-1), byte(r.M))
	b = binary.LittleEndian.AppendUint64(b, r.Version)
	flags := byte(0)
	if r.Built() {
		flags |= flagBuilt
	}
	b = append(b, flags)
	b = binary.LittleEndian.AppendUint16(b, r.MinPartHours)
	b = binary.LittleEndian.AppendUint64(b, uint64(r.Epoch.Unix()))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(r.Devices)))
	for _, d := range r.Devices {
		b = binary.LittleEndian.AppendUint32(b, d.ID)
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(d.Weight))
		b = append(b, byte(d.State))
		for _, s := range []string{d.Region, d.Zone, d.Node, d.Name} {
			if len(s) > math.MaxUint16 {
				return nil, fmt.Errorf("ring: device %d: name too long", d.ID)
			}
			b = binary.LittleEndian.AppendUint16(b, uint16(len(s)))
			b = append(b, s...)
		}
	}
	if r.Built() {
		b = appendU16s(b, r.table)
		b = appendU16s(b, r.lastMove)
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli)), nil
}

func appendU16s(b []byte, v []uint16) []byte {
	n := len(b)
	b = append(b, make([]byte, 2*len(v))...)
	for i, x := range v {
		binary.LittleEndian.PutUint16(b[n+2*i:], x)
	}
	return b
}

// UnmarshalBinary decodes a ring file (version 2, or version 1 as written
// before device states existed), rejecting anything the format page does
// not describe.
func (r *Ring) UnmarshalBinary(b []byte) error {
	if len(b) < len(fileMagic)+2+3+8+4+4 {
		return fmt.Errorf("%w: %d bytes is too short", ErrCorrupt, len(b))
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	if string(body[:8]) != fileMagic {
		return fmt.Errorf("%w: bad magic", ErrCorrupt)
	}
	version := binary.LittleEndian.Uint16(body[8:])
	if version != 1 && version != fileVersion {
		return fmt.Errorf("%w: unsupported version %d", ErrCorrupt, version)
	}
	d := decoder{b: body[10:]}
	out := Ring{PartPower: d.u8(), K: int(d.u8()) + 1, M: int(d.u8())}
	out.Version = d.u64()
	flags := byte(flagBuilt)
	if version >= 2 {
		flags = d.u8()
		out.MinPartHours = binary.LittleEndian.Uint16(d.take(2))
		out.Epoch = time.Unix(int64(d.u64()), 0).UTC()
	}
	n := d.u32()
	if out.PartPower > MaxPartPower || n > MaxDevices || flags&^flagBuilt != 0 || out.Width() > MaxShards || d.err != nil {
		return fmt.Errorf("%w: bad header", ErrCorrupt)
	}
	for i := uint32(0); i < n && d.err == nil; i++ {
		dev := Device{ID: d.u32(), Weight: math.Float64frombits(d.u64())}
		if version >= 2 {
			dev.State = State(d.u8())
			if dev.State > Removing {
				return fmt.Errorf("%w: device %d has unknown state %d", ErrCorrupt, dev.ID, dev.State)
			}
		}
		dev.Region, dev.Zone, dev.Node, dev.Name = d.str(), d.str(), d.str(), d.str()
		out.Devices = append(out.Devices, dev)
	}
	if d.err != nil {
		return fmt.Errorf("%w: device list", ErrCorrupt)
	}
	if flags&flagBuilt == 0 {
		if len(d.b) != 0 {
			return fmt.Errorf("%w: trailing bytes", ErrCorrupt)
		}
		*r = out
		return nil
	}
	slots := out.Partitions() * out.Width()
	stamps := 0
	if version >= 2 {
		stamps = out.Partitions()
	}
	if len(d.b) != (slots+stamps)*2 {
		return fmt.Errorf("%w: table size", ErrCorrupt)
	}
	out.table = make([]uint16, slots)
	nd := uint16(len(out.Devices))
	bad := false
	for i := range out.table {
		v := binary.LittleEndian.Uint16(d.b[i*2:])
		bad = bad || v >= nd
		out.table[i] = v
	}
	if bad {
		return fmt.Errorf("%w: a slot names a device that does not exist", ErrCorrupt)
	}
	out.lastMove = make([]uint16, out.Partitions())
	for i := 0; i < stamps; i++ {
		out.lastMove[i] = binary.LittleEndian.Uint16(d.b[(slots+i)*2:])
	}
	w := out.Width()
	for p := 0; p < out.Partitions(); p++ {
		row := out.table[p*w : (p+1)*w]
		for i := 1; i < len(row); i++ {
			for j := 0; j < i; j++ {
				if row[i] == row[j] {
					return fmt.Errorf("%w: partition %d names device %d twice", ErrCorrupt, p, row[i])
				}
			}
		}
	}
	*r = out
	return nil
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) take(n int) []byte {
	if d.err != nil || len(d.b) < n {
		d.err = ErrCorrupt
		return make([]byte, n)
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}
func (d *decoder) u8() uint8   { return d.take(1)[0] }
func (d *decoder) u32() uint32 { return binary.LittleEndian.Uint32(d.take(4)) }
func (d *decoder) u64() uint64 { return binary.LittleEndian.Uint64(d.take(8)) }
func (d *decoder) str() string { return string(d.take(int(binary.LittleEndian.Uint16(d.take(2))))) }

// Save writes the ring atomically (temp file, fsync, rename, fsync dir).
func (r *Ring) Save(path string) error {
	b, err := r.MarshalBinary()
	if err != nil {
		return err
	}
	if err := atomicfile.Write(path, b, 0o600); err != nil {
		return fmt.Errorf("ring: save: %w", err)
	}
	return nil
}

// Load reads a ring file.
func Load(path string) (*Ring, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ring: load: %w", err)
	}
	r := new(Ring)
	if err := r.UnmarshalBinary(b); err != nil {
		return nil, fmt.Errorf("ring: load %s: %w", filepath.Base(path), err)
	}
	return r, nil
}
