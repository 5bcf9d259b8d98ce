package cluster_test

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/strata-storage/strata/blockpool"
	"github.com/strata-storage/strata/blockpool/replicate"
	"github.com/strata-storage/strata/blockpool/replicate/volrpc"
	"github.com/strata-storage/strata/cluster"
	"github.com/strata-storage/strata/metastore"
	"github.com/strata-storage/strata/objectstore/shard"
	"github.com/strata-storage/strata/objectstore/shard/shardrpc"
)

type oneDevice struct{ st *shard.Store }

func (o oneDevice) LocalDevice(id uint32) *shard.Store {
	if id == 7 {
		return o.st
	}
	return nil
}
func (o oneDevice) LocalDeviceIDs() []uint32 { return []uint32{7} }

type noReplicas struct{}

func (noReplicas) VolumeReplica(string) *replicate.Replica             { return nil }
func (noReplicas) CreateLocal(name string, _ int64, _, _ string) error { return nil }
func (noReplicas) CreateWitnessLocal(name string, _ int64) error       { return nil }
func (noReplicas) DeleteLocal(string) error                            { return nil }

// FuzzRPCRequest sends a signed request with a fuzzed path, parameters
// and body (whole or as a frame stream) to a node's real RPC server with
// the shard and volume handlers registered: whatever arrives, the answer
// is an HTTP status, never a panic.
func FuzzRPCRequest(f *testing.F) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	db, err := metastore.OpenPebble(f.TempDir(), log)
	if err != nil {
		f.Fatal(err)
	}
	defer db.Close()
	st, _ := shard.Open(7, "disk0", blockpool.NewMemVolume(16<<20), db, nil, log)
	devices := oneDevice{st}
	h := cluster.NewServer("n2", "s3cret", shardrpc.Generations(devices), nil, log)
	shardrpc.Register(h, "n2", devices, nil)
	volrpc.Register(h, "n2", noReplicas{})
	for _, p := range []string{"dev/7/commit", "dev/7/get", "dev/7/list", "dev/7/read", "dev/7/free", "dev/7/deleterange", "dev/7/stream", "vol/x/write", "vol/x/create", "health"} {
		f.Add(p, "", []byte("\x01\x00\x01k\x01v"), false)
	}
	f.Add("dev/7/stream", "", []byte("\x20\x00\x00\x00"), true)
	f.Fuzz(func(t *testing.T, path, params string, body []byte, stream bool) {
		req := httptest.NewRequest(http.MethodPost, "/rpc/v1/x", bytes.NewReader(body))
		req.URL.Path = "/rpc/v1/" + path
		req.URL.RawPath = ""
		if params != "" {
			req.Header.Set(cluster.ParamsHeader, params)
		}
		if stream {
			cluster.SignStreamForTest(req, "s3cret", "n1")
		} else {
			cluster.SignRequestForTest(req, "s3cret", "n1", body)
		}
		h.ServeHTTP(httptest.NewRecorder(), req)
	})
}
