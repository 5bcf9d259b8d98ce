package objectstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/zeebo/xxh3"

	"github.com/strata-storage/strata/objectstore/shard"
)

// Record is what one device knows of an object: the object's metadata (the
// same on every device) and its own shard of the data. Format:
// docs/format/object-record.md.
type Record struct {
	WriteID    [16]byte // random per write; records agree when equal
	K, M       int
	BlockSize  int
	ShardIndex int
	ModTime    time.Time
	Size       int64
	ETag       string   // without quotes
	Headers    []Header // Content-Type, Cache-Control, x-amz-meta-*, ...
	Parts      []Part   // at least one unless Inline
	Inline     []byte   // this device's shard of a small object
	HasInline  bool
	Tags       []Header // object tags (S3 tagging), in the order set
	// VersionID is the S3 version id; "" is the null version (every object
	// of a bucket that never had versioning).
	VersionID    string
	DeleteMarker bool // a versioned delete: no data, hides older versions

	contentMD5   []byte                          // expected body MD5 while writing; never stored
	precondition func(current *ObjectInfo) error // checked at commit; never stored
	bodyHeaders  func() []Header                 // headers known after the body
}

func (r *Record) addBodyHeaders() {
	if r.bodyHeaders != nil {
		r.Headers = append(append([]Header(nil), r.Headers...), r.bodyHeaders()...)
	}
}

// Header is one stored request header.
type Header struct{ Name, Value string }

// Part is one part of an object (a plain PUT has one) and this device's
// shard stream of it.
type Part struct {
	Number  int
	Size    int64
	ETag    string
	Missing bool // this device did not get its shard of the part
	Loc     shard.Locator
}

const (
	recordFormat     = 1
	flagInline       = 1
	flagTags         = 2
	flagVersion      = 4
	flagDeleteMarker = 8
	knownFlags       = flagInline | flagTags | flagVersion | flagDeleteMarker
	partMissing      = 1
	maxRecordSize    = 64 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var errBadRecord = errors.New("object record: corrupt or unknown format")

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// MarshalBinary encodes the record.
func (r *Record) MarshalBinary() []byte {
	b := make([]byte, 0, 128+len(r.Inline)+len(r.Parts)*32)
	b = append(b, recordFormat)
	var flags byte
	if r.HasInline {
		flags |= flagInline
	}
	if len(r.Tags) > 0 {
		flags |= flagTags
	}
	if r.VersionID != "" {
		flags |= flagVersion
	}
	if r.DeleteMarker {
		flags |= flagDeleteMarker
	}
	b = append(b, flags)
	b = append(b, r.WriteID[:]...)
	for _, v := range []int{r.K, r.M, r.BlockSize, r.ShardIndex} {
		b = binary.AppendUvarint(b, uint64(v))
	}
	b = binary.AppendVarint(b, r.ModTime.UnixNano())
	b = binary.AppendUvarint(b, uint64(r.Size))
	b = appendString(b, r.ETag)
	b = binary.AppendUvarint(b, uint64(len(r.Headers)))
	for _, h := range r.Headers {
		b = appendString(appendString(b, h.Name), h.Value)
	}
	if len(r.Tags) > 0 {
		b = binary.AppendUvarint(b, uint64(len(r.Tags)))
		for _, h := range r.Tags {
			b = appendString(appendString(b, h.Name), h.Value)
		}
	}
	if r.VersionID != "" {
		b = appendString(b, r.VersionID)
	}
	if r.HasInline {
		b = binary.AppendUvarint(b, uint64(len(r.Inline)))
		b = append(b, r.Inline...)
		b = binary.LittleEndian.AppendUint64(b, xxh3.Hash(r.Inline))
	} else {
		b = binary.AppendUvarint(b, uint64(len(r.Parts)))
		for _, p := range r.Parts {
			b = binary.AppendUvarint(b, uint64(p.Number))
			b = binary.AppendUvarint(b, uint64(p.Size))
			b = appendString(b, p.ETag)
			if p.Missing {
				b = append(b, partMissing)
			} else {
				b = append(b, 0)
				b = p.Loc.AppendBinary(b)
			}
		}
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// namesNoShards reports, from a record's flags alone, that it holds its
// data inline or is a delete marker, so it names no shard space. (A
// record that would not decode names none either.)
func namesNoShards(b []byte) bool {
	return len(b) >= 2 && b[0] == recordFormat && b[1]&(flagInline|flagDeleteMarker) != 0
}

type recordDecoder struct {
	b   []byte
	err error
}

func (d *recordDecoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *recordDecoder) bytes(n uint64) []byte {
	if d.err != nil || uint64(len(d.b)) < n {
		d.fail()
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *recordDecoder) str() string { return string(d.bytes(d.uvarint())) }
func (d *recordDecoder) fail() {
	if d.err == nil {
		d.err = errBadRecord
	}
	d.b = nil
}

// UnmarshalRecord decodes a record, verifying its checksum.
func UnmarshalRecord(b []byte) (*Record, error) {
	if len(b) < 2+16+4 || len(b) > maxRecordSize {
		return nil, errBadRecord
	}
	body := b[:len(b)-4]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(b[len(b)-4:]) {
		return nil, fmt.Errorf("%w: checksum", errBadRecord)
	}
	if body[0] != recordFormat || body[1]&^knownFlags != 0 {
		return nil, fmt.Errorf("%w: format %d flags %d", errBadRecord, body[0], body[1])
	}
	r := &Record{HasInline: body[1]&flagInline != 0, DeleteMarker: body[1]&flagDeleteMarker != 0}
	copy(r.WriteID[:], body[2:18])
	d := &recordDecoder{b: body[18:]}
	r.K, r.M, r.BlockSize, r.ShardIndex = int(d.uvarint()), int(d.uvarint()), int(d.uvarint()), int(d.uvarint())
	mod, n := binary.Varint(d.b)
	if n <= 0 {
		return nil, errBadRecord
	}
	d.b = d.b[n:]
	r.ModTime = time.Unix(0, mod).UTC()
	r.Size = int64(d.uvarint())
	r.ETag = d.str()
	nh := d.uvarint()
	if nh > 10000 {
		return nil, errBadRecord
	}
	for i := uint64(0); i < nh && d.err == nil; i++ {
		r.Headers = append(r.Headers, Header{Name: d.str(), Value: d.str()})
	}
	if body[1]&flagTags != 0 {
		nt := d.uvarint()
		if nt == 0 || nt > 50 {
			return nil, errBadRecord
		}
		for i := uint64(0); i < nt && d.err == nil; i++ {
			r.Tags = append(r.Tags, Header{Name: d.str(), Value: d.str()})
		}
	}
	if body[1]&flagVersion != 0 {
		if r.VersionID = d.str(); r.VersionID == "" || r.VersionID == "null" {
			return nil, errBadRecord
		}
	}
	if r.HasInline {
		r.Inline = append([]byte(nil), d.bytes(d.uvarint())...)
		sum := d.bytes(8)
		if d.err == nil && xxh3.Hash(r.Inline) != binary.LittleEndian.Uint64(sum) {
			return nil, fmt.Errorf("%w: inline data checksum", errBadRecord)
		}
	} else {
		np := d.uvarint()
		if np > 10000 {
			return nil, errBadRecord
		}
		for i := uint64(0); i < np && d.err == nil; i++ {
			p := Part{Number: int(d.uvarint()), Size: int64(d.uvarint()), ETag: d.str()}
			flag := d.bytes(1)
			if d.err != nil {
				break
			}
			if flag[0] == partMissing {
				p.Missing = true
			} else if flag[0] == 0 {
				loc, rest, err := shard.DecodeLocator(d.b)
				if err != nil {
					return nil, errBadRecord
				}
				p.Loc, d.b = loc, rest
			} else {
				return nil, errBadRecord
			}
			r.Parts = append(r.Parts, p)
		}
	}
	if d.err != nil || len(d.b) != 0 {
		return nil, errBadRecord
	}
	if r.DeleteMarker && (r.HasInline || len(r.Parts) > 0 || r.Size != 0) {
		return nil, fmt.Errorf("%w: delete marker with data", errBadRecord)
	}
	if r.K < 1 || r.M < 0 || r.K+r.M > 256 || r.ShardIndex >= r.K+r.M || r.BlockSize < 1 || r.Size < 0 {
		return nil, fmt.Errorf("%w: layout", errBadRecord)
	}
	return r, nil
}

// sameVersion reports whether two records describe the same write.
func (r *Record) sameVersion(o *Record) bool { return r.WriteID == o.WriteID }
