package s3api

import (
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"hash"
	"hash/crc32"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/cespare/xxhash/v2"
	"github.com/minio/crc64nvme"
	"github.com/zeebo/xxh3"

	"github.com/strata-storage/strata/objectstore"
	"github.com/strata-storage/strata/s3api/crccombine"
)

// checksumAlgorithms are the x-amz-checksum-* algorithms of the S3 API;
// digests are sent big-endian (the xxHash canonical form), base64.
var checksumAlgorithms = map[string]func() hash.Hash{
	"crc32":     func() hash.Hash { return crc32.NewIEEE() },
	"crc32c":    func() hash.Hash { return crc32.New(crc32.MakeTable(crc32.Castagnoli)) },
	"crc64nvme": func() hash.Hash { return crc64nvme.New() },
	"sha1":      sha1.New,
	"sha256":    sha256.New,
	"sha512":    sha512.New,
	"md5":       md5.New,
	"xxhash64":  func() hash.Hash { return xxhash.New() },
	"xxhash3":   func() hash.Hash { return xxh3.New() },
	"xxhash128": func() hash.Hash { return xxh3.New128() },
}

// checksumReader verifies an x-amz-checksum-* value, sent as a header or as
// a trailer of an aws-chunked body, when the body reaches EOF.
type checksumReader struct {
	r    io.Reader
	alg  string
	h    hash.Hash
	want string // base64; empty until the trailer arrives
}

// newChecksumReader returns nil if the request declares no checksum.
func newChecksumReader(r *http.Request) (*checksumReader, error) {
	var found *checksumReader
	for alg, mk := range checksumAlgorithms {
		v := r.Header.Get("X-Amz-Checksum-" + alg)
		if v == "" {
			continue
		}
		if found != nil {
			return nil, apiErr("InvalidRequest", "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.")
		}
		found = &checksumReader{alg: alg, h: mk(), want: v}
	}
	if t := strings.ToLower(strings.TrimSpace(r.Header.Get("X-Amz-Trailer"))); t != "" {
		alg, ok := strings.CutPrefix(t, "x-amz-checksum-")
		mk := checksumAlgorithms[alg]
		if !ok || mk == nil {
			return nil, apiErr("InvalidRequest", "The value specified in the x-amz-trailer header is not supported")
		}
		if found != nil {
			return nil, apiErr("InvalidRequest", "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.")
		}
		found = &checksumReader{alg: alg, h: mk()}
	}
	if found != nil {
		if b, err := base64.StdEncoding.DecodeString(found.want); err != nil || found.want != "" && len(b) != found.h.Size() {
			return nil, apiErr("InvalidRequest", "Value for x-amz-checksum-"+found.alg+" header is invalid.")
		}
	}
	return found, nil
}

func (c *checksumReader) onTrailer(t http.Header) error {
	v := t.Get("x-amz-checksum-" + c.alg)
	b, err := base64.StdEncoding.DecodeString(v)
	if v == "" || err != nil || len(b) != c.h.Size() {
		return apiErr("InvalidRequest", "The trailer x-amz-checksum-"+c.alg+" is missing or invalid.")
	}
	c.want = v
	return nil
}

func (c *checksumReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.h.Write(p[:n])
	if err == io.EOF {
		if c.want == "" {
			return n, apiErr("InvalidRequest", "The x-amz-checksum-"+c.alg+" trailer was declared but not sent.")
		}
		if base64.StdEncoding.EncodeToString(c.h.Sum(nil)) != c.want {
			return n, apiErr("BadDigest", "The "+strings.ToUpper(c.alg)+" you specified did not match the calculated checksum.")
		}
	}
	return n, err
}

// stored returns the verified checksum as headers to keep with the object.
func (c *checksumReader) stored() []objectstore.Header {
	return []objectstore.Header{{Name: "x-amz-checksum-" + c.alg, Value: c.want}, {Name: "x-amz-checksum-type", Value: "FULL_OBJECT"}}
}

// isChecksumHeader reports whether a stored header is returned only with
// x-amz-checksum-mode: ENABLED.
func isChecksumHeader(name string) bool { return strings.HasPrefix(name, "x-amz-checksum-") }

// contentMD5 parses the Content-MD5 header (nil if absent).
func contentMD5(r *http.Request) ([]byte, error) {
	v, ok := r.Header["Content-Md5"]
	if !ok {
		return nil, nil
	}
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v[0]))
	if err != nil || len(b) != md5.Size {
		return nil, apiErr("InvalidDigest")
	}
	return b, nil
}

// checkContentMD5 verifies Content-MD5 over a body read whole.
func checkContentMD5(r *http.Request, body []byte) error {
	want, err := contentMD5(r)
	if err != nil || want == nil {
		return err
	}
	got := md5.Sum(body)
	if !bytes.Equal(got[:], want) {
		return apiErr("BadDigest")
	}
	return nil
}

// Multipart checksums. An upload created with x-amz-checksum-algorithm
// keeps each part's verified checksum. Completing it yields either a
// COMPOSITE checksum (the algorithm over the concatenated binary part
// checksums, base64, then "-" and the part count) or, for the CRCs, a
// FULL_OBJECT one: the CRC of the whole object, combined from the parts'
// CRCs and sizes without reading the data again (crccombine). CRC64NVME
// is full-object only; SHA1 and SHA256 composite only, as in S3.

const (
	uploadChecksumHeader = "x-amz-checksum-algorithm"
	// uploadChecksumTypeHeader keeps the type an upload was created with.
	uploadChecksumTypeHeader = "x-strata-checksum-type"
)

var crcPolys = map[string]*crccombine.Poly{
	"crc32":     crccombine.New(crccombine.CRC32, 32),
	"crc32c":    crccombine.New(crccombine.CRC32C, 32),
	"crc64nvme": crccombine.New(crccombine.CRC64NVME, 64),
}

// uploadChecksumAlgorithm reads CreateMultipartUpload's algorithm and
// type ("" if none).
func uploadChecksumAlgorithm(r *http.Request) (alg, typ string, err error) {
	alg = strings.ToLower(r.Header.Get("X-Amz-Checksum-Algorithm"))
	typ = strings.ToUpper(r.Header.Get("X-Amz-Checksum-Type"))
	if alg == "" {
		if typ != "" {
			return "", "", apiErr("InvalidRequest", "x-amz-checksum-type requires x-amz-checksum-algorithm.")
		}
		return "", "", nil
	}
	if checksumAlgorithms[alg] == nil {
		return "", "", apiErr("InvalidRequest", "Checksum algorithm provided is unsupported.")
	}
	switch {
	case typ == "" && alg == "crc64nvme":
		typ = "FULL_OBJECT"
	case typ == "":
		typ = "COMPOSITE"
	case typ != "COMPOSITE" && typ != "FULL_OBJECT":
		return "", "", apiErr("InvalidRequest", "Value for x-amz-checksum-type is invalid.")
	case typ == "FULL_OBJECT" && crcPolys[alg] == nil:
		return "", "", apiErr("InvalidRequest", "The FULL_OBJECT checksum type is not supported with the "+strings.ToUpper(alg)+" algorithm; use CRC32, CRC32C or CRC64NVME.")
	case typ == "COMPOSITE" && alg == "crc64nvme":
		return "", "", apiErr("InvalidRequest", "The COMPOSITE checksum type is not supported with the CRC64NVME algorithm; use FULL_OBJECT.")
	}
	return alg, typ, nil
}

// completeChecksum finishes a multipart upload's checksum. listed holds
// the per-part checksums the client gave in Complete (by algorithm name),
// to be checked against what the parts were verified with; whole is the
// full-object checksum the client sent with Complete (x-amz-checksum-*),
// if any.
func completeChecksum(uploadHeaders []objectstore.Header, parts []objectstore.PartInfo, listed []map[string]string, whole map[string]string) ([]objectstore.Header, error) {
	var alg, typ string
	var headers []objectstore.Header
	for _, h := range uploadHeaders {
		switch {
		case h.Name == uploadChecksumHeader:
			alg = h.Value
		case h.Name == uploadChecksumTypeHeader:
			typ = h.Value
		case strings.HasPrefix(h.Name, internalHeaderPrefix):
			// The upload's own bookkeeping, not the object's.
		default:
			headers = append(headers, h)
		}
	}
	if alg == "" {
		for a, v := range whole {
			if v != "" {
				return nil, apiErr("InvalidRequest", "The upload was created without a checksum algorithm; x-amz-checksum-"+a+" cannot be checked.")
			}
		}
		return headers, nil
	}
	if typ == "" {
		typ = "COMPOSITE" // uploads created before types were kept
	}
	sums := make([][]byte, len(parts))
	for j, p := range parts {
		var got string
		for _, h := range p.Headers {
			if h.Name == "x-amz-checksum-"+alg {
				got = h.Value
			}
		}
		if got == "" {
			return nil, apiErr("InvalidRequest", "The upload was created using a "+alg+" checksum. The complete request must include the checksum for each part. It was missing for part "+strconv.Itoa(p.Number)+" in the request.")
		}
		if w := listed[j][alg]; w != "" && w != got {
			return nil, apiErr("InvalidPart", "The "+alg+" checksum of part "+strconv.Itoa(p.Number)+" does not match.")
		}
		sums[j], _ = base64.StdEncoding.DecodeString(got)
	}
	var value string
	if typ == "FULL_OBJECT" {
		poly := crcPolys[alg]
		var crc uint64
		for j, p := range parts {
			c := beUint(sums[j])
			if j == 0 {
				crc = c
			} else {
				crc = poly.Combine(crc, c, p.Size)
			}
		}
		out := make([]byte, len(sums[0]))
		for i := range out {
			out[i] = byte(crc >> (8 * (len(out) - 1 - i)))
		}
		value = base64.StdEncoding.EncodeToString(out)
	} else {
		hash := checksumAlgorithms[alg]()
		for _, s := range sums {
			hash.Write(s)
		}
		value = base64.StdEncoding.EncodeToString(hash.Sum(nil)) + "-" + strconv.Itoa(len(parts))
	}
	for a, v := range whole {
		switch {
		case v == "":
		case a != alg:
			return nil, apiErr("InvalidRequest", "The upload was created using the "+alg+" checksum algorithm; x-amz-checksum-"+a+" was sent with Complete.")
		case v != value:
			return nil, apiErr("BadDigest", "The "+typ+" "+alg+" checksum you specified did not match the one calculated from the parts.")
		}
	}
	return append(headers, objectstore.Header{Name: "x-amz-checksum-" + alg, Value: value}, objectstore.Header{Name: "x-amz-checksum-type", Value: typ}), nil
}

// beUint reads a big-endian CRC.
func beUint(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

// xmlChecksums are the checksum elements of parts and completed uploads.
type xmlChecksums struct {
	CRC32     string `xml:"ChecksumCRC32,omitempty"`
	CRC32C    string `xml:"ChecksumCRC32C,omitempty"`
	CRC64NVME string `xml:"ChecksumCRC64NVME,omitempty"`
	SHA1      string `xml:"ChecksumSHA1,omitempty"`
	SHA256    string `xml:"ChecksumSHA256,omitempty"`
	SHA512    string `xml:"ChecksumSHA512,omitempty"`
	MD5       string `xml:"ChecksumMD5,omitempty"`
	XXHASH64  string `xml:"ChecksumXXHASH64,omitempty"`
	XXHASH3   string `xml:"ChecksumXXHASH3,omitempty"`
	XXHASH128 string `xml:"ChecksumXXHASH128,omitempty"`
}

// byAlgorithm maps algorithm names to the fields.
func (x *xmlChecksums) byAlgorithm() map[string]*string {
	return map[string]*string{"crc32": &x.CRC32, "crc32c": &x.CRC32C, "crc64nvme": &x.CRC64NVME, "sha1": &x.SHA1, "sha256": &x.SHA256,
		"sha512": &x.SHA512, "md5": &x.MD5, "xxhash64": &x.XXHASH64, "xxhash3": &x.XXHASH3, "xxhash128": &x.XXHASH128}
}

// fill copies stored x-amz-checksum-* headers into the XML fields.
func (x *xmlChecksums) fill(headers []objectstore.Header) {
	fields := x.byAlgorithm()
	for _, h := range headers {
		if alg, ok := strings.CutPrefix(h.Name, "x-amz-checksum-"); ok && fields[alg] != nil {
			*fields[alg] = h.Value
		}
	}
}
