package objectstore

import (
	"encoding/binary"
	"hash/crc32"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/strata-storage/strata/objectstore/shard"
)

func TestRecordRoundTrip(t *testing.T) {
	recs := []*Record{
		{WriteID: [16]byte{1, 2}, K: 2, M: 2, BlockSize: 1 << 20, ShardIndex: 3, ModTime: time.Unix(1700000000, 123).UTC(), Size: 5,
			ETag: "abc", Headers: []Header{{"Content-Type", "text/plain"}, {"X-Amz-Meta-A", "b"}}, HasInline: true, Inline: []byte("xyz"),
			Tags: []Header{{"team", "storage"}, {"env", ""}}},
		{WriteID: [16]byte{9}, K: 4, M: 2, BlockSize: 1 << 20, ShardIndex: 1, ModTime: time.Unix(1, 0).UTC(), Size: 3 << 20, ETag: "e-2",
			Parts: []Part{{Number: 1, Size: 2 << 20, ETag: "p1", Loc: shard.Locator{Generation: 1, WriterID: 5, BlockLen: 10, LastLen: 10, Offsets: []int64{4096, 4138}}},
				{Number: 2, Size: 1 << 20, ETag: "p2", Missing: true}}, VersionID: "v123"},
		{WriteID: [16]byte{7}, K: 2, M: 1, BlockSize: 1, ModTime: time.Unix(5, 0).UTC(), VersionID: "abc", DeleteMarker: true},
	}
	for _, r := range recs {
		b := r.MarshalBinary()
		got, err := UnmarshalRecord(b)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, r) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, r)
		}
		for i := range b {
			bad := append([]byte(nil), b...)
			bad[i] ^= 0x10
			if _, err := UnmarshalRecord(bad); err == nil {
				t.Fatalf("flip at byte %d accepted", i)
			}
		}
	}
}

func FuzzUnmarshalRecord(f *testing.F) {
	f.Add((&Record{K: 2, M: 2, BlockSize: 1, ETag: "x", HasInline: true, Inline: []byte("a")}).MarshalBinary())
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := UnmarshalRecord(b)
		if err == nil {
			if _, err := UnmarshalRecord(r.MarshalBinary()); err != nil {
				t.Fatalf("re-encode of accepted record fails: %v", err)
			}
		}
	})
}

func TestValidBucketName(t *testing.T) {
	for name, want := range map[string]bool{
		"abc": true, "my-bucket.example": true, "a1b2c3": true, "0bucket": true, strings.Repeat("a", 63): true,
		"ab": false, strings.Repeat("a", 64): false, "Upper": false, "under_score": false, "-lead": false, "trail-": false,
		"two..dots": false, "192.168.1.1": false, "xn--punycode": false, "sthree-x": false, "b-s3alias": false, "b--ol-s3": false,
		"has space": false, "": false, "foo-.bar": false, "foo.-bar": false, "a-b.c-d": true, "10.0.0.300": true,
	} {
		if got := ValidBucketName(name); got != want {
			t.Errorf("ValidBucketName(%q) = %v, want %v", name, got, want)
		}
	}
}

// FuzzRecordPastChecksum seals whatever the fuzzer makes with a valid
// CRC32C, so the decoder behind the checksum is what gets fuzzed: it must
// refuse or accept without panicking, and what it accepts re-encodes.
func FuzzRecordPastChecksum(f *testing.F) {
	for _, r := range []*Record{
		{K: 2, M: 2, BlockSize: 1 << 20, ETag: "x", HasInline: true, Inline: []byte("a")},
		{K: 4, M: 2, BlockSize: 1 << 20, Size: 5 << 20, ETag: "y", VersionID: "v1", Tags: []Header{{"k", "v"}}, Headers: []Header{{"Content-Type", "a/b"}}},
		{DeleteMarker: true, VersionID: "v2"},
	} {
		b := r.MarshalBinary()
		f.Add(b[:len(b)-4])
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		sealed := binary.LittleEndian.AppendUint32(append([]byte(nil), body...), crc32.Checksum(body, castagnoli))
		r, err := UnmarshalRecord(sealed)
		if err != nil {
			return
		}
		if _, err := UnmarshalRecord(r.MarshalBinary()); err != nil {
			t.Fatalf("re-encode of an accepted record fails: %v", err)
		}
	})
}

// The start-time walk skips records by their flags alone: that must never
// skip one whose decode names shard space.
func TestNamesNoShardsAgreesWithTheDecode(t *testing.T) {
	loc := shard.Locator{Generation: 1, WriterID: 5, BlockLen: 10, LastLen: 10, Offsets: []int64{4096}}
	for _, r := range []*Record{
		{K: 2, M: 2, BlockSize: 1, ETag: "x", HasInline: true, Inline: []byte("a")},
		{K: 2, M: 2, BlockSize: 1, VersionID: "v", DeleteMarker: true},
		{K: 2, M: 2, BlockSize: 1 << 20, Size: 10, Parts: []Part{{Number: 1, Size: 10, Loc: loc}}},
		{K: 2, M: 2, BlockSize: 1 << 20, Size: 10, Tags: []Header{{"a", "b"}}, VersionID: "v2", Parts: []Part{{Number: 1, Size: 10, Loc: loc}}},
		{K: 2, M: 2, BlockSize: 1 << 20},
	} {
		b := r.MarshalBinary()
		got, err := UnmarshalRecord(b)
		if err != nil {
			t.Fatal(err)
		}
		if namesNoShards(b) && len(got.Parts) > 0 {
			t.Errorf("%+v: skipped, but it names %d parts", r, len(got.Parts))
		}
		if !namesNoShards(b) && (r.HasInline || r.DeleteMarker) {
			t.Errorf("%+v: holds no shards but is decoded", r)
		}
	}
}
