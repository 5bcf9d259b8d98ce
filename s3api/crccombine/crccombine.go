// Package crccombine joins the CRCs of consecutive pieces of data into the
// CRC of the whole without reading the data again: what a multipart
// upload's FULL_OBJECT checksum needs, from the checksums of its parts.
//
// It works for the reflected CRCs with all-ones initial value and final
// xor that S3 uses (CRC-32, CRC-32C, CRC-64/NVME), for which
// crc(A||B) = crc(A)·x^(8|B|) mod P  xor  crc(B); the product is computed
// in GF(2)[x] modulo P in the CRCs' bit-reflected representation.
package crccombine

// The reflected polynomials.
const (
	CRC32     = 0xedb88320         // IEEE
	CRC32C    = 0x82f63b78         // Castagnoli
	CRC64NVME = 0x9a6c9329ac4bc9b5 // CRC-64/NVME
)

// A Poly is a reflected CRC polynomial of width 32 or 64.
type Poly struct {
	p   uint64
	top uint64     // x^0 in the reflected representation
	x2n [64]uint64 // x^(2^k) mod P
}

// New prepares poly (reflected) of width bits (32 or 64).
func New(poly uint64, width int) *Poly {
	c := &Poly{p: poly, top: 1 << (width - 1)}
	// x^1 is the bit after the top one; square it up.
	p := c.top >> 1
	c.x2n[0] = p
	for k := 1; k < 64; k++ {
		p = c.mul(p, p)
		c.x2n[k] = p
	}
	return c
}

// mul is a·b mod P.
func (c *Poly) mul(a, b uint64) uint64 {
	var prod uint64
	for m := c.top; m != 0; m >>= 1 {
		if a&m != 0 {
			prod ^= b
		}
		if b&1 != 0 {
			b = b>>1 ^ c.p
		} else {
			b >>= 1
		}
	}
	return prod
}

// xPow8n is x^(8n) mod P.
func (c *Poly) xPow8n(n uint64) uint64 {
	r := c.top // x^0
	for k := 3; n != 0; k, n = k+1, n>>1 {
		if n&1 != 0 {
			r = c.mul(c.x2n[k%64], r)
		}
	}
	return r
}

// Combine is the CRC of A||B from crcA, crcB and the length of B.
func (c *Poly) Combine(crcA, crcB uint64, lenB int64) uint64 {
	return c.mul(c.xPow8n(uint64(lenB)), crcA) ^ crcB
}
