// Package conformance holds S3 behaviour tests that drive a real Strata
// server over HTTP with real clients: the minio-go and aws-sdk-go-v2 SDKs,
// the aws CLI, and the strata binary itself for crash and disk-loss tests.
// It uses nothing internal beyond starting a node.
package conformance
