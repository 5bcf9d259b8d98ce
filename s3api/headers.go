package s3api

import (
	"net/http"
	"sort"
	"strings"
)

// One place decides every request header of the S3 API reference (the
// object operations, multipart, copy and the bucket operations Strata
// serves): Strata honours it, accepts it because it asks for nothing
// Strata would do differently, or refuses the request. A refused header
// fails the request before anything is read or stored, so no request is
// answered 200 while quietly not doing what it asked. The table test fails
// when code in this package reads a header the table does not name.

type headerUse int

const (
	// honoured: the handlers act on the header.
	honoured headerUse = iota
	// accepted: it asks for nothing that would change Strata's answer.
	accepted
	// refused: the request fails with code (default NotImplemented).
	refused
)

type headerRule struct {
	use  headerUse
	code string // for refused
	why  string // what Strata does with it, for refused the error message
}

func honour(why string) headerRule { return headerRule{use: honoured, why: why} }
func accept(why string) headerRule { return headerRule{use: accepted, why: why} }
func refuse(code, msg string) headerRule {
	return headerRule{use: refused, code: code, why: msg}
}

const sseNotDone = "Server-side encryption is not implemented; the object would be stored unencrypted."

// requestHeaders are keyed by lower-case name.
var requestHeaders = map[string]headerRule{
	// Authentication and transfer.
	"authorization":                  honour("SigV4 (header) authentication"),
	"x-amz-date":                     honour("signing time (V4; signed as a header in V2)"),
	"date":                           honour("signing time without x-amz-date"),
	"x-amz-content-sha256":           honour("payload hash, or the aws-chunked streaming mode"),
	"x-amz-decoded-content-length":   honour("length of an aws-chunked body"),
	"x-amz-trailer":                  honour("trailing checksum of an aws-chunked body"),
	"x-amz-security-token":           refuse("InvalidToken", "Temporary credentials (session tokens) are not supported; sign with a user's access key."),
	"content-length":                 honour("body length"),
	"content-md5":                    honour("verified against the body"),
	"expect":                         honour("100-continue"),
	"range":                          honour("byte range of a GET"),
	"origin":                         honour("CORS"),
	"access-control-request-method":  honour("CORS preflight"),
	"access-control-request-headers": honour("CORS preflight"),

	// Stored with the object and returned on GET/HEAD.
	"content-type":        honour("stored"),
	"content-encoding":    honour("stored"),
	"content-disposition": honour("stored"),
	"content-language":    honour("stored"),
	"cache-control":       honour("stored"),
	"expires":             honour("stored"),
	"x-amz-tagging":       honour("object tags"),
	"x-amz-storage-class": honour("STANDARD only; others are refused with InvalidStorageClass"),

	// Conditions.
	"if-match":                                                    honour("reads; writes (atomic with the commit)"),
	"if-none-match":                                               honour("reads; writes ('*' only)"),
	"if-modified-since":                                           honour("reads"),
	"if-unmodified-since":                                         honour("reads"),
	"x-amz-copy-source-if-match":                                  honour("copy source condition"),
	"x-amz-copy-source-if-none-match":                             honour("copy source condition"),
	"x-amz-copy-source-if-modified-since":                         honour("copy source condition"),
	"x-amz-copy-source-if-unmodified-since":                       honour("copy source condition"),
	"x-amz-if-match-last-modified-time":                           refuse("NotImplemented", "Conditional deletes by x-amz-if-match-last-modified-time are not implemented."),
	"x-amz-if-match-size":                                         refuse("NotImplemented", "Conditional deletes by x-amz-if-match-size are not implemented."),
	"x-amz-expected-bucket-owner":                                 honour("403 AccessDenied unless it names the bucket's owner"),
	"x-amz-source-expected-bucket-owner":                          honour("403 AccessDenied unless it names the copy source bucket's owner"),
	"x-amz-copy-source":                                           honour("CopyObject, UploadPartCopy"),
	"x-amz-copy-source-range":                                     honour("UploadPartCopy"),
	"x-amz-metadata-directive":                                    honour("COPY or REPLACE"),
	"x-amz-tagging-directive":                                     honour("COPY or REPLACE"),
	"x-amz-copy-source-version-id":                                honour("response only; the source version is part of x-amz-copy-source"),
	"x-amz-mp-object-size":                                        honour("checked against the parts' total on Complete"),
	"x-amz-write-offset-bytes":                                    refuse("NotImplemented", "Appends (x-amz-write-offset-bytes) are not implemented."),
	"x-amz-bucket-object-lock-enabled":                            honour("true is refused: object lock is not implemented"),
	"x-amz-object-ownership":                                      honour("BucketOwnerEnforced or BucketOwnerPreferred; ObjectWriter is refused"),
	"x-amz-request-payer":                                         accept("no bucket here is Requester Pays; the requester is charged nothing either way"),
	"x-amz-bypass-governance-retention":                           accept("no object here is under retention, so there is nothing to bypass"),
	"x-amz-optional-object-attributes":                            accept("RestoreStatus: no object here is archived, so there is none to report"),
	"x-amz-checksum-mode":                                         honour("checksums in GET/HEAD responses"),
	"x-amz-object-attributes":                                     honour("GetObjectAttributes"),
	"x-amz-max-parts":                                             honour("GetObjectAttributes paging"),
	"x-amz-part-number-marker":                                    honour("GetObjectAttributes paging"),
	"x-amz-checksum-algorithm":                                    honour("the algorithm of an upload's checksums; unknown ones refused"),
	"x-amz-sdk-checksum-algorithm":                                honour("the algorithm of the x-amz-checksum-* header or trailer sent; unknown ones refused"),
	"x-amz-checksum-type":                                         honour("COMPOSITE; FULL_OBJECT for multipart is refused"),
	"x-amz-checksum-crc32":                                        honour("verified and stored"),
	"x-amz-checksum-crc32c":                                       honour("verified and stored"),
	"x-amz-checksum-crc64nvme":                                    honour("verified and stored"),
	"x-amz-checksum-sha1":                                         honour("verified and stored"),
	"x-amz-checksum-sha256":                                       honour("verified and stored"),
	"x-amz-checksum-sha512":                                       honour("verified and stored"),
	"x-amz-checksum-md5":                                          honour("verified and stored"),
	"x-amz-checksum-xxhash64":                                     honour("verified and stored"),
	"x-amz-checksum-xxhash3":                                      honour("verified and stored"),
	"x-amz-checksum-xxhash128":                                    honour("verified and stored"),
	"x-amz-acl":                                                   honour("canned ACLs"),
	"x-amz-grant-read":                                            honour("grants READ by id=, emailAddress= or uri="),
	"x-amz-grant-write":                                           honour("grants WRITE by id=, emailAddress= or uri="),
	"x-amz-grant-read-acp":                                        honour("grants READ_ACP by id=, emailAddress= or uri="),
	"x-amz-grant-write-acp":                                       honour("grants WRITE_ACP by id=, emailAddress= or uri="),
	"x-amz-grant-full-control":                                    honour("grants FULL_CONTROL by id=, emailAddress= or uri="),
	"x-amz-mfa":                                                   refuse("NotImplemented", "MFA delete is not implemented."),
	"x-amz-website-redirect-location":                             refuse("NotImplemented", "Website redirects are not implemented."),
	"x-amz-object-lock-mode":                                      refuse("NotImplemented", "Object lock is not implemented; the object would not be locked."),
	"x-amz-object-lock-retain-until-date":                         refuse("NotImplemented", "Object lock is not implemented; the object would not be retained."),
	"x-amz-object-lock-legal-hold":                                refuse("NotImplemented", "Object lock is not implemented; the object would not be held."),
	"x-amz-server-side-encryption":                                refuse("NotImplemented", sseNotDone),
	"x-amz-server-side-encryption-aws-kms-key-id":                 refuse("NotImplemented", sseNotDone),
	"x-amz-server-side-encryption-context":                        refuse("NotImplemented", sseNotDone),
	"x-amz-server-side-encryption-bucket-key-enabled":             refuse("NotImplemented", sseNotDone),
	"x-amz-server-side-encryption-customer-algorithm":             refuse("NotImplemented", sseNotDone),
	"x-amz-server-side-encryption-customer-key":                   refuse("NotImplemented", sseNotDone),
	"x-amz-server-side-encryption-customer-key-md5":               refuse("NotImplemented", sseNotDone),
	"x-amz-copy-source-server-side-encryption-customer-algorithm": refuse("NotImplemented", sseNotDone),
	"x-amz-copy-source-server-side-encryption-customer-key":       refuse("NotImplemented", sseNotDone),
	"x-amz-copy-source-server-side-encryption-customer-key-md5":   refuse("NotImplemented", sseNotDone),
}

// checkRequestHeaders refuses a request that carries a header Strata does
// not honour, an x-amz-checksum-* of an unknown algorithm, or a storage
// class other than STANDARD. x-amz-meta-* is user metadata; headers outside
// the reference, such as those SDKs send for themselves (amz-sdk-request,
// x-amz-user-agent), are ignored as AWS ignores them.
func checkRequestHeaders(h http.Header) error {
	names := make([]string, 0, len(h))
	for name := range h {
		names = append(names, strings.ToLower(name))
	}
	sort.Strings(names) // the same header reported first every time
	for _, name := range names {
		if rule, ok := requestHeaders[name]; ok {
			if rule.use == refused {
				return apiErr(rule.code, rule.why)
			}
			continue
		}
		if strings.HasPrefix(name, "x-amz-checksum-") {
			return apiErr("InvalidRequest", "The "+name+" header names an unknown checksum algorithm; use CRC32, CRC32C, CRC64NVME, SHA1, SHA256, SHA512, MD5, XXHASH64, XXHASH3 or XXHASH128.")
		}
	}
	for _, name := range []string{"X-Amz-Checksum-Algorithm", "X-Amz-Sdk-Checksum-Algorithm"} {
		if v := h.Get(name); v != "" && checksumAlgorithms[strings.ToLower(v)] == nil {
			return apiErr("InvalidRequest", "Checksum algorithm provided is unsupported. Please try again with any of the valid types: [CRC32, CRC32C, CRC64NVME, SHA1, SHA256, SHA512, MD5, XXHASH64, XXHASH3, XXHASH128]")
		}
	}
	// The algorithm an SDK says it used must be that of the checksum it
	// sent, as a header or a trailer; else nothing would be verified.
	if v := strings.ToLower(h.Get("X-Amz-Sdk-Checksum-Algorithm")); v != "" {
		trailer := strings.ToLower(strings.TrimSpace(h.Get("X-Amz-Trailer")))
		if h.Get("X-Amz-Checksum-"+v) == "" && trailer != "x-amz-checksum-"+v {
			return apiErr("InvalidRequest", "x-amz-sdk-checksum-algorithm is "+strings.ToUpper(v)+" but no x-amz-checksum-"+v+" header or trailer was sent.")
		}
	}
	if v := h.Get("X-Amz-Storage-Class"); v != "" && v != "STANDARD" {
		return apiErr("InvalidStorageClass", "The storage class you specified is not valid: Strata stores every object as STANDARD.")
	}
	return nil
}
