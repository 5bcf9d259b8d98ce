package shardrpc

import (
	"testing"

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
