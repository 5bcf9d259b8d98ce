package replicate

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkWrite4K: random 4 KiB writes through a primary with one local
// replica, against the checked volume underneath and a raw file on the same
// disk (ratios in one run; the machine is shared).
func BenchmarkWrite4K(b *testing.B) {
	const size = 256 << 20
	buf := make([]byte, 4096)
	rng := rand.New(rand.NewPCG(1, 1))
	for i := range buf {
		buf[i] = byte(rng.Uint32())
	}
	b.Run("raw-file", func(b *testing.B) {
		f, err := os.Create(filepath.Join(b.TempDir(), "raw"))
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		f.Truncate(size)
		b.SetBytes(4096)
		for i := 0; b.Loop(); i++ {
			f.WriteAt(buf, rng.Int64N(size/4096)*4096)
		}
	})
	b.Run("checked", func(b *testing.B) {
		r, err := CreateReplica(filepath.Join(b.TempDir(), "c"), "n0", size, time.Second)
		if err != nil {
			b.Fatal(err)
		}
		defer r.Close()
		b.SetBytes(4096)
		for b.Loop() {
			r.Volume().WriteAt(buf, rng.Int64N(size/4096)*4096)
		}
	})
	b.Run("primary-1-replica", func(b *testing.B) {
		r, err := CreateReplica(filepath.Join(b.TempDir(), "p"), "n0", size, time.Second)
		if err != nil {
			b.Fatal(err)
		}
		defer r.Close()
		p, err := Open(context.Background(), Config{Name: "v", Self: "n0", Links: []Link{LocalLink{r}}, Log: quiet})
		if err != nil {
			b.Fatal(err)
		}
		defer p.Close()
		b.SetBytes(4096)
		for b.Loop() {
			if _, err := p.WriteAt(buf, rng.Int64N(size/4096)*4096); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkWriteAfterSnapshot: random 4 KiB writes from 16 writers at
// once to a replica whose every block is new to its snapshot (each write
// copies a block first), against the same writes with no snapshot.
func BenchmarkWriteAfterSnapshot(b *testing.B) {
	const size = 1 << 30
	for _, snapshot := range []bool{false, true} {
		name := "no-snapshot"
		if snapshot {
			name = "after-snapshot"
		}
		b.Run(name, func(b *testing.B) {
			r, err := CreateReplica(filepath.Join(b.TempDir(), "r"), "n0", size, time.Minute)
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			if _, err := r.Promote(1, "p", Mode{}); err != nil {
				b.Fatal(err)
			}
			if snapshot {
				if err := r.Snapshot(1, "s"); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(4096)
			b.SetParallelism(8) // 16 writers on 2 cores
			b.RunParallel(func(pb *testing.PB) {
				rng := rand.New(rand.NewPCG(rand.Uint64(), 1))
				buf := make([]byte, 4096)
				for i := range buf {
					buf[i] = byte(1 + rng.IntN(255))
				}
				for pb.Next() {
					if err := r.Write(1, rng.Int64N(size/4096)*4096, buf, nil); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
