package s3api

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// referenceHeaders are the request headers the S3 API reference lists for
// the operations Strata serves (PutObject, CopyObject, CreateMultipartUpload,
// UploadPart, UploadPartCopy, CompleteMultipartUpload, GetObject,
// HeadObject, DeleteObject(s), CreateBucket, ListObjects(V2) and the bucket
// subresources). Each must have a decision in requestHeaders.
var referenceHeaders = map[string][]string{
	"PutObject": {"Cache-Control", "Content-Disposition", "Content-Encoding", "Content-Language", "Content-Length", "Content-MD5", "Content-Type",
		"Expires", "If-Match", "If-None-Match", "x-amz-acl", "x-amz-sdk-checksum-algorithm", "x-amz-checksum-crc32", "x-amz-checksum-crc32c",
		"x-amz-checksum-crc64nvme", "x-amz-checksum-sha1", "x-amz-checksum-sha256", "x-amz-expected-bucket-owner", "x-amz-grant-full-control",
		"x-amz-grant-read", "x-amz-grant-read-acp", "x-amz-grant-write-acp", "x-amz-write-offset-bytes", "x-amz-object-lock-legal-hold",
		"x-amz-object-lock-mode", "x-amz-object-lock-retain-until-date", "x-amz-request-payer", "x-amz-server-side-encryption",
		"x-amz-server-side-encryption-aws-kms-key-id", "x-amz-server-side-encryption-bucket-key-enabled", "x-amz-server-side-encryption-context",
		"x-amz-server-side-encryption-customer-algorithm", "x-amz-server-side-encryption-customer-key", "x-amz-server-side-encryption-customer-key-MD5",
		"x-amz-storage-class", "x-amz-tagging", "x-amz-website-redirect-location"},
	"CopyObject": {"x-amz-copy-source", "x-amz-copy-source-if-match", "x-amz-copy-source-if-modified-since", "x-amz-copy-source-if-none-match",
		"x-amz-copy-source-if-unmodified-since", "x-amz-metadata-directive", "x-amz-tagging-directive", "x-amz-checksum-algorithm",
		"x-amz-copy-source-server-side-encryption-customer-algorithm", "x-amz-copy-source-server-side-encryption-customer-key",
		"x-amz-copy-source-server-side-encryption-customer-key-MD5", "x-amz-source-expected-bucket-owner", "If-Match", "If-None-Match"},
	"CreateMultipartUpload": {"x-amz-checksum-algorithm", "x-amz-checksum-type", "x-amz-storage-class", "x-amz-tagging", "x-amz-acl"},
	"UploadPart":            {"Content-Length", "Content-MD5", "x-amz-sdk-checksum-algorithm", "x-amz-checksum-crc32", "x-amz-request-payer", "x-amz-expected-bucket-owner"},
	"UploadPartCopy":        {"x-amz-copy-source", "x-amz-copy-source-range", "x-amz-copy-source-if-match", "x-amz-source-expected-bucket-owner"},
	"CompleteMultipartUpload": {"x-amz-checksum-crc32", "x-amz-checksum-crc64nvme", "x-amz-checksum-type", "x-amz-mp-object-size", "If-Match",
		"If-None-Match", "x-amz-server-side-encryption-customer-key"},
	"GetObject": {"If-Match", "If-Modified-Since", "If-None-Match", "If-Unmodified-Since", "Range", "x-amz-checksum-mode",
		"x-amz-server-side-encryption-customer-algorithm", "x-amz-request-payer", "x-amz-expected-bucket-owner"},
	"DeleteObject":  {"x-amz-mfa", "x-amz-bypass-governance-retention", "If-Match", "x-amz-if-match-last-modified-time", "x-amz-if-match-size"},
	"DeleteObjects": {"x-amz-mfa", "x-amz-bypass-governance-retention", "x-amz-sdk-checksum-algorithm", "Content-MD5"},
	"CreateBucket":  {"x-amz-acl", "x-amz-grant-full-control", "x-amz-grant-read", "x-amz-grant-read-acp", "x-amz-grant-write", "x-amz-grant-write-acp", "x-amz-bucket-object-lock-enabled", "x-amz-object-ownership"},
	"GetObjectAttributes": {"x-amz-object-attributes", "x-amz-max-parts", "x-amz-part-number-marker", "x-amz-expected-bucket-owner", "x-amz-request-payer",
		"x-amz-server-side-encryption-customer-algorithm"},
	"ListObjectsV2": {"x-amz-request-payer", "x-amz-expected-bucket-owner", "x-amz-optional-object-attributes"},
	"Signing":       {"Authorization", "x-amz-date", "x-amz-content-sha256", "x-amz-decoded-content-length", "x-amz-trailer", "x-amz-security-token", "Expect"},
}

func TestReferenceHeadersAreDecided(t *testing.T) {
	for api, names := range referenceHeaders {
		for _, n := range names {
			if _, ok := requestHeaders[strings.ToLower(n)]; !ok {
				t.Errorf("%s: header %s of the S3 API reference has no decision in requestHeaders", api, n)
			}
		}
	}
	for name, rule := range requestHeaders {
		if name != strings.ToLower(name) {
			t.Errorf("%s: table keys are lower case", name)
		}
		if rule.why == "" || rule.use == refused && errorTable[rule.code].Status == 0 {
			t.Errorf("%s: rule %+v lacks a reason or a known error code", name, rule)
		}
	}
}

// responseHeaders are header names the package writes, or query fields of
// presigned URLs and form fields, that are no request decision.
var responseHeaders = map[string]bool{
	"x-amz-request-id": true, "x-amz-id-2": true, "x-amz-version-id": true, "x-amz-delete-marker": true, "x-amz-tagging-count": true,
	"x-amz-mp-parts-count": true, "x-amz-bucket-region": true, "x-amz-algorithm": true, "x-amz-credential": true, "x-amz-signature": true,
	"x-amz-signedheaders": true, "x-amz-expires": true, "x-amz-trailer-signature": true, "signature": true, // V2 query field
}

var headerLiteral = regexp.MustCompile(`(?i)^x-amz-[a-z0-9-]*[a-z0-9]$`)

// A header that code in s3api or sigv4 names cannot get in without a
// decision: every x-amz-* literal and every name given to Header.Get is in
// requestHeaders (or is one the server writes), and every honoured header
// is read somewhere.
func TestEveryHeaderTheCodeReadsIsDecided(t *testing.T) {
	used := map[string]string{}
	for _, dir := range []string{".", "sigv4"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			file, err := parser.ParseFile(token.NewFileSet(), f, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			ast.Inspect(file, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.CallExpr:
					if sel, ok := n.Fun.(*ast.SelectorExpr); ok && (sel.Sel.Name == "Get" || sel.Sel.Name == "Values") && len(n.Args) == 1 {
						if lit, ok := n.Args[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
							v, _ := strconv.Unquote(lit.Value)
							if v != "" && v[0] >= 'A' && v[0] <= 'Z' && http.CanonicalHeaderKey(v) == v || headerLiteral.MatchString(v) {
								used[strings.ToLower(v)] = f
							}
						}
					}
				case *ast.BasicLit:
					if v, err := strconv.Unquote(n.Value); err == nil && n.Kind == token.STRING && headerLiteral.MatchString(v) {
						used[strings.ToLower(v)] = f
					}
				}
				return true
			})
		}
	}
	for name, file := range used {
		if _, ok := requestHeaders[name]; !ok && !responseHeaders[name] {
			t.Errorf("%s names header %s, which requestHeaders does not decide", file, name)
		}
	}
	for name, rule := range requestHeaders {
		if rule.use != honoured {
			continue
		}
		if _, ok := used[name]; !ok && !strings.HasPrefix(name, "x-amz-checksum-") && !strings.HasPrefix(name, "x-amz-copy-source-if-") {
			if _, stored := map[string]bool{"content-type": true, "content-encoding": true, "content-disposition": true, "content-language": true,
				"cache-control": true, "expires": true, "content-length": true, "expect": true, "if-match": true, "if-none-match": true,
				"if-modified-since": true, "if-unmodified-since": true, "content-md5": true}[name]; !stored {
				t.Errorf("requestHeaders says %s is honoured, but no code here reads it", name)
			}
		}
	}
}

func TestCheckRequestHeaders(t *testing.T) {
	for _, c := range []struct {
		header, value, code string
	}{
		{"x-amz-server-side-encryption", "AES256", "NotImplemented"},
		{"x-amz-server-side-encryption-customer-key", "a2V5", "NotImplemented"},
		{"x-amz-object-lock-mode", "GOVERNANCE", "NotImplemented"},
		{"x-amz-object-lock-legal-hold", "ON", "NotImplemented"},
		{"x-amz-website-redirect-location", "/x", "NotImplemented"},
		{"x-amz-security-token", "tok", "InvalidToken"},
		{"x-amz-checksum-blake3", "AAAA", "InvalidRequest"},
		{"x-amz-checksum-xxhash3", "AAAAAAAAAAA=", ""},
		{"x-amz-checksum-algorithm", "BOGUS", "InvalidRequest"},
		{"x-amz-sdk-checksum-algorithm", "BLAKE3", "InvalidRequest"},
		{"x-amz-storage-class", "GLACIER", "InvalidStorageClass"},
		{"x-amz-storage-class", "standard", "InvalidStorageClass"},
		{"x-amz-storage-class", "STANDARD", ""},
		{"x-amz-checksum-algorithm", "crc64nvme", ""},
		{"x-amz-sdk-checksum-algorithm", "CRC32C", "InvalidRequest"}, // with no CRC32C sent
		{"x-amz-request-payer", "requester", ""},
		{"x-amz-meta-color", "red", ""},
		{"x-amz-sdk-invocation-id", "1", ""},
		{"amz-sdk-request", "attempt=1", ""},
		{"x-amz-user-agent", "aws-sdk-js", ""},
		{"x-amz-tagging", "a=b", ""},
	} {
		h := http.Header{}
		h.Set(c.header, c.value)
		err := checkRequestHeaders(h)
		if got := toAPIError(err); c.code == "" && err != nil || c.code != "" && (err == nil || got.Code != c.code) {
			t.Errorf("%s: %s: got %v, want %q", c.header, c.value, err, c.code)
		}
	}
}

// x-amz-sdk-checksum-algorithm names the checksum actually sent.
func TestSDKChecksumAlgorithmMustMatchWhatIsSent(t *testing.T) {
	for _, c := range []struct {
		h    map[string]string
		code string
	}{
		{map[string]string{"X-Amz-Sdk-Checksum-Algorithm": "CRC32", "X-Amz-Checksum-Crc32": "AAAAAA=="}, ""},
		{map[string]string{"X-Amz-Sdk-Checksum-Algorithm": "CRC64NVME", "X-Amz-Trailer": "x-amz-checksum-crc64nvme"}, ""},
		{map[string]string{"X-Amz-Sdk-Checksum-Algorithm": "SHA256", "X-Amz-Checksum-Crc32": "AAAAAA=="}, "InvalidRequest"},
		{map[string]string{"X-Amz-Sdk-Checksum-Algorithm": "CRC32"}, "InvalidRequest"},
	} {
		h := http.Header{}
		for k, v := range c.h {
			h.Set(k, v)
		}
		err := checkRequestHeaders(h)
		if got := toAPIError(err); c.code == "" && err != nil || c.code != "" && (err == nil || got.Code != c.code) {
			t.Errorf("%v: %v, want %q", c.h, err, c.code)
		}
	}
}

func TestFormFieldsFollowTheHeaderTable(t *testing.T) {
	for _, c := range []struct {
		field, value, code string
	}{
		{"x-amz-server-side-encryption", "AES256", "NotImplemented"},
		{"x-amz-checksum-sha256", "AAAA", "NotImplemented"}, // honoured on PUT, not yet in forms
		{"x-amz-storage-class", "GLACIER", "InvalidStorageClass"},
		{"x-amz-storage-class", "STANDARD", ""},
		{"x-amz-credential", "AKIA/20260101/us-east-1/s3/aws4_request", ""},
		{"x-amz-meta-a", "b", ""},
	} {
		err := checkFormFields(map[string]string{c.field: c.value, "key": "k"})
		if got := toAPIError(err); c.code == "" && err != nil || c.code != "" && (err == nil || got.Code != c.code) {
			t.Errorf("%s: %s: got %v, want %q", c.field, c.value, err, c.code)
		}
	}
}

// The digests go out in canonical (big-endian) form: the empty input's
// xxHash values are the reference ones.
func TestChecksumDigestsAreCanonical(t *testing.T) {
	for alg, want := range map[string]string{
		"xxhash64":  "ef46db3751d8e999",
		"xxhash3":   "2d06800538d394c2",
		"xxhash128": "99aa06d3014798d86001c324468d497f",
		"md5":       "d41d8cd98f00b204e9800998ecf8427e",
		"crc32":     "00000000",
	} {
		if got := fmt.Sprintf("%x", checksumAlgorithms[alg]().Sum(nil)); got != want {
			t.Errorf("%s of nothing: %s, want %s", alg, got, want)
		}
	}
}

// Response headers go out as S3 spells them: x-amz-* in lower case, the
// rest canonical.
func TestResponseHeadersAreSpelledAsS3Does(t *testing.T) {
	rec := httptest.NewRecorder()
	w := &statusWriter{ResponseWriter: rec, status: 200}
	w.Header().Set("X-Amz-Request-Id", "1")
	w.Header().Set("X-Amz-Checksum-Crc32", "AAAAAA==")
	w.Header().Set("Access-Control-Allow-Origin", "*")
	w.Header().Set("ETag", `"x"`)
	w.Write([]byte("body"))
	got := fmt.Sprint(rec.Result().Header)
	for _, want := range []string{"x-amz-request-id:[1]", "x-amz-checksum-crc32:[AAAAAA==]", "Access-Control-Allow-Origin:[*]", `Etag:["x"]`} {
		if !strings.Contains(got, want) {
			t.Errorf("headers %s lack %s", got, want)
		}
	}
}
