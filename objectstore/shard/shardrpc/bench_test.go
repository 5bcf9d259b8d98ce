package shardrpc

import (
	"context"
	"testing"

	"github.com/strata-storage/strata/cluster"
	"github.com/strata-storage/strata/objectstore/shard"
)

// BenchmarkRemoteReadBlock: one 256 KiB shard block (a 1 MiB block of EC
// 4+2) read over loopback RPC and verified on arrival, against the same
// read from the local store.
func BenchmarkRemoteReadBlock(b *testing.B) {
	for _, remote := range []bool{false, true} {
		name := "local"
		if remote {
			name = "rpc"
		}
		b.Run(name, func(b *testing.B) {
			srv, local := rpcNodeTB(b)
			tr := cluster.NewTransport("n1", "s3cret", nil, cluster.DefaultTimeouts())
			defer tr.Close()
			var dev interface {
				ReadBlock(context.Context, *shard.Locator, int, []byte) ([]byte, error)
			} = local
			rd := Device(tr.NewPeer("n2", srv.Listener.Addr().String()), 7, "disk0")
			if remote {
				dev = rd
			}
			w := rd.NewWriter(context.Background(), 256<<10)
			if err := w.Append(make([]byte, shard.HeaderSize+256<<10)); err != nil {
				b.Fatal(err)
			}
			loc, err := w.Finish()
			if err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, shard.HeaderSize+256<<10)
			b.SetBytes(256 << 10)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := dev.ReadBlock(context.Background(), &loc, 0, buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
