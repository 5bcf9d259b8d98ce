// Package s3api is the S3 HTTP front end: routing (path-style and
// virtual-hosted-style), SigV4 and SigV2 authentication, ACLs and bucket
// policies, request parsing, XML responses and the mapping of every
// failure to S3's error code and status.
//
// It owns the S3 semantics of requests and nothing below them: objects are
// stored and read through objectstore. Requests it does not implement are
// answered 501 NotImplemented, never with a canned success: every request
// header of the S3 API reference has a decision in headers.go (honoured,
// accepted as changing nothing, or refused before anything is stored).
//
// Guarantees: no request has an effect its signer (or, for anonymous
// callers, an ACL or policy) did not allow; a PUT body is handed to
// the object layer through verifiers (payload SHA-256 or chunk signatures,
// Content-MD5, x-amz-checksum-*) that fail the read before EOF if the body
// is not what the client signed or declared, so a bad body is never stored.
package s3api
