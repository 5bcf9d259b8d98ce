package cluster

import "net/http"

// For the external tests in this directory (package cluster_test), which
// drive the real components' handlers with hand-made requests.

// SignRequestForTest signs r, whose whole body is body, as node.
func SignRequestForTest(r *http.Request, secret, node string, body []byte) {
	signRequest(r, secret, node, body)
}

// SignStreamForTest signs r as a frame stream (its frames then fail their
// MACs, which is what a fuzzer's bytes do anyway).
func SignStreamForTest(r *http.Request, secret, node string) { signStream(r, secret, node) }
