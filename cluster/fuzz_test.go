package cluster

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/strata-storage/strata/blockpool"
	"github.com/strata-storage/strata/metastore"
	"github.com/strata-storage/strata/objectstore/shard"
)

func FuzzDecodeOps(f *testing.F) {
	f.Add(encodeOps([]shard.Op{{Key: []byte("k"), Value: []byte("v")}, {Key: []byte("d"), Delete: true, Check: true}, {Key: []byte("c"), Value: []byte("x"), Check: true, Expect: []byte("y")}}))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		ops, err := decodeOps(b)
		if err != nil {
			return
		}
		again, err := decodeOps(encodeOps(ops))
		if err != nil || len(again) != len(ops) {
			t.Fatalf("re-encoded ops: %d vs %d, %v", len(again), len(ops), err)
		}
	})
}

// FuzzRPCRequest sends a signed request with a fuzzed path, volume
// parameters and body (whole or as a frame stream) to a real RPC handler:
// whatever arrives, the answer is an HTTP status, never a panic.
func FuzzRPCRequest(f *testing.F) {
	db, err := metastore.OpenPebble(f.TempDir(), quietLog)
	if err != nil {
		f.Fatal(err)
	}
	defer db.Close()
	st, _ := shard.Open(7, "disk0", blockpool.NewMemVolume(16<<20), db, nil, quietLog)
	h := NewServer("n2", "s3cret", oneDevice{7, st}, nil, quietLog)
	for _, p := range []string{"dev/7/commit", "dev/7/get", "dev/7/list", "dev/7/read", "dev/7/free", "dev/7/deleterange", "dev/7/stream", "vol/x/write", "health"} {
		f.Add(p, "", []byte("\x01\x00\x01k\x01v"), false)
	}
	f.Add("dev/7/stream", "", []byte("\x20\x00\x00\x00"), true)
	f.Fuzz(func(t *testing.T, path, vol string, body []byte, stream bool) {
		req := httptest.NewRequest(http.MethodPost, "/rpc/v1/x", bytes.NewReader(body))
		req.URL.Path = "/rpc/v1/" + path
		req.URL.RawPath = ""
		if vol != "" {
			req.Header.Set(volHeader, vol)
		}
		if stream {
			signStream(req, "s3cret", "n1")
		} else {
			signRequest(req, "s3cret", "n1", body)
		}
		h.ServeHTTP(httptest.NewRecorder(), req)
	})
}
