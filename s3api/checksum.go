package s3api

import (
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"hash/crc32"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/minio/crc64nvme"

	"github.com/strata-storage/strata/objectstore"
)

// checksumAlgorithms are the x-amz-checksum-* algorithms S3 accepts.
var checksumAlgorithms = map[string]func() hash.Hash{
	"crc32":     func() hash.Hash { return crc32.NewIEEE() },
	"crc32c":    func() hash.Hash { return crc32.New(crc32.MakeTable(crc32.Castagnoli)) },
	"crc64nvme": func() hash.Hash { return crc64nvme.New() },
	"sha1":      sha1.New,
	"sha256":    sha256.New,
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
// keeps each part's verified checksum; completing it yields a COMPOSITE
// checksum: the algorithm applied to the concatenated binary part
// checksums, base64, then "-" and the part count.

const uploadChecksumHeader = "x-amz-checksum-algorithm"

// uploadChecksumAlgorithm reads CreateMultipartUpload's algorithm ("" if
// none). Only composite checksums are implemented.
func uploadChecksumAlgorithm(r *http.Request) (string, error) {
	alg := strings.ToLower(r.Header.Get("X-Amz-Checksum-Algorithm"))
	typ := strings.ToUpper(r.Header.Get("X-Amz-Checksum-Type"))
	if alg == "" {
		if typ != "" {
			return "", apiErr("InvalidRequest", "x-amz-checksum-type requires x-amz-checksum-algorithm.")
		}
		return "", nil
	}
	if checksumAlgorithms[alg] == nil {
		return "", apiErr("InvalidRequest", "Checksum algorithm provided is unsupported.")
	}
	if typ == "FULL_OBJECT" || alg == "crc64nvme" {
		return "", apiErr("NotImplemented", "Full-object checksums of multipart uploads are not implemented; use a composite checksum (CRC32, CRC32C, SHA1, SHA256).")
	}
	if typ != "" && typ != "COMPOSITE" {
		return "", apiErr("InvalidRequest", "Value for x-amz-checksum-type is invalid.")
	}
	return alg, nil
}

// compositeChecksum finishes a multipart upload's checksum. want holds the
// per-part checksums the client listed in Complete (by algorithm name), to
// be checked against what the parts were verified with.
func compositeChecksum(uploadHeaders []objectstore.Header, parts []objectstore.PartInfo, want []map[string]string) ([]objectstore.Header, error) {
	var alg string
	var headers []objectstore.Header
	for _, h := range uploadHeaders {
		switch {
		case h.Name == uploadChecksumHeader:
			alg = h.Value
		case strings.HasPrefix(h.Name, internalHeaderPrefix):
			// The upload's own bookkeeping, not the object's.
		default:
			headers = append(headers, h)
		}
	}
	if alg == "" {
		return headers, nil
	}
	hash := checksumAlgorithms[alg]()
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
		if w := want[j][alg]; w != "" && w != got {
			return nil, apiErr("InvalidPart", "The "+alg+" checksum of part "+strconv.Itoa(p.Number)+" does not match.")
		}
		raw, _ := base64.StdEncoding.DecodeString(got)
		hash.Write(raw)
	}
	value := base64.StdEncoding.EncodeToString(hash.Sum(nil)) + "-" + strconv.Itoa(len(parts))
	return append(headers, objectstore.Header{Name: "x-amz-checksum-" + alg, Value: value}, objectstore.Header{Name: "x-amz-checksum-type", Value: "COMPOSITE"}), nil
}

// xmlChecksums are the checksum elements of parts and completed uploads.
type xmlChecksums struct {
	CRC32  string `xml:"ChecksumCRC32,omitempty"`
	CRC32C string `xml:"ChecksumCRC32C,omitempty"`
	SHA1   string `xml:"ChecksumSHA1,omitempty"`
	SHA256 string `xml:"ChecksumSHA256,omitempty"`
}

// fill copies stored x-amz-checksum-* headers into the XML fields.
func (x *xmlChecksums) fill(headers []objectstore.Header) {
	for _, h := range headers {
		switch h.Name {
		case "x-amz-checksum-crc32":
			x.CRC32 = h.Value
		case "x-amz-checksum-crc32c":
			x.CRC32C = h.Value
		case "x-amz-checksum-sha1":
			x.SHA1 = h.Value
		case "x-amz-checksum-sha256":
			x.SHA256 = h.Value
		}
	}
}
