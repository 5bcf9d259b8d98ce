package crccombine

import (
	"hash/crc32"
	"math/rand/v2"
	"testing"

	"github.com/minio/crc64nvme"
)

// Combining the CRCs of pieces gives the CRC of their concatenation, for
// every S3 CRC and pieces from empty to several blocks long.
func TestCombineMatchesTheWhole(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	castagnoli := crc32.MakeTable(crc32.Castagnoli)
	algs := []struct {
		name string
		poly *Poly
		sum  func([]byte) uint64
	}{
		{"CRC32", New(CRC32, 32), func(b []byte) uint64 { return uint64(crc32.ChecksumIEEE(b)) }},
		{"CRC32C", New(CRC32C, 32), func(b []byte) uint64 { return uint64(crc32.Checksum(b, castagnoli)) }},
		{"CRC64NVME", New(CRC64NVME, 64), func(b []byte) uint64 { return crc64nvme.Checksum(b) }},
	}
	for _, alg := range algs {
		for trial := 0; trial < 40; trial++ {
			var whole []byte
			var crc uint64
			for piece := 0; piece < 1+rnd.IntN(5); piece++ {
				p := make([]byte, []int{0, 1, 7, 1000, 65536 + rnd.IntN(9999)}[rnd.IntN(5)])
				for i := range p {
					p[i] = byte(rnd.Uint32())
				}
				if piece == 0 {
					crc = alg.sum(p)
				} else {
					crc = alg.poly.Combine(crc, alg.sum(p), int64(len(p)))
				}
				whole = append(whole, p...)
			}
			if want := alg.sum(whole); crc != want {
				t.Fatalf("%s: combined %x, whole %x (%d bytes)", alg.name, crc, want, len(whole))
			}
		}
	}
}

func BenchmarkCombine(b *testing.B) {
	p := New(CRC64NVME, 64)
	for i := 0; i < b.N; i++ {
		p.Combine(0x1234, 0x5678, 5<<30)
	}
}
