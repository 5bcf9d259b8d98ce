// Package sigv4 verifies AWS Signature Version 4 on S3 requests: the
// Authorization header, presigned query strings, and aws-chunked bodies
// (STREAMING-AWS4-HMAC-SHA256-PAYLOAD, its -TRAILER form, and
// STREAMING-UNSIGNED-PAYLOAD-TRAILER).
//
// Verification of a request happens in two steps: Verify checks the headers
// before any body is read; Body wraps the body so that every byte handed on
// has been checked by the time the reader returns io.EOF (chunk signatures,
// the payload SHA-256, the decoded length). A consumer must therefore treat
// data as valid only after EOF — the object layer commits nothing before.
package sigv4
