// Package s3api is the S3 HTTP front end: routing (path-style and
// virtual-hosted-style), SigV4 authentication, request parsing, XML
// responses and the mapping of every failure to S3's error code and status.
//
// It owns the S3 semantics of requests and nothing below them: objects are
// stored and read through objectstore. Requests it does not implement are
// answered 501 NotImplemented, never with a canned success.
//
// Guarantees: no request is served unauthenticated; a PUT body is handed to
// the object layer through verifiers (payload SHA-256 or chunk signatures,
// Content-MD5, x-amz-checksum-*) that fail the read before EOF if the body
// is not what the client signed or declared, so a bad body is never stored.
package s3api
