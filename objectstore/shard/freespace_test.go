package shard

import (
	"math/rand/v2"
	"testing"
)

func TestFreeSpace(t *testing.T) {
	var f freeSpace
	for _, e := range []extent{{100, 10}, {120, 10}, {110, 10}, {200, 50}} {
		if !f.add(e.off, e.len) {
			t.Fatalf("add %v refused", e)
		}
	}
	if len(f.exts) != 2 || f.exts[0] != (extent{100, 30}) || f.bytes != 80 {
		t.Fatalf("not coalesced: %+v", f.exts)
	}
	for _, e := range []extent{{105, 1}, {95, 10}, {129, 5}, {240, 20}} {
		if f.add(e.off, e.len) {
			t.Fatalf("overlapping add %v accepted", e)
		}
	}
	if off, ok := f.take(40); !ok || off != 200 {
		t.Fatalf("first fit of 40: %d %v", off, ok)
	}
	if off, ok := f.take(30); !ok || off != 100 {
		t.Fatalf("exact fit of 30: %d %v", off, ok)
	}
	if _, ok := f.take(11); ok {
		t.Fatal("took more than is free")
	}
}

// A random model check: the set never hands out a byte twice and never
// loses one.
func TestFreeSpaceModel(t *testing.T) {
	const size = 1 << 12
	var f freeSpace
	free := make([]bool, size)
	f.add(0, size)
	for i := range free {
		free[i] = true
	}
	r := rand.New(rand.NewPCG(3, 4))
	var held []extent
	for step := 0; step < 20000; step++ {
		if r.IntN(2) == 0 || len(held) == 0 {
			n := int64(r.IntN(64) + 1)
			off, ok := f.take(n)
			if !ok {
				continue
			}
			for b := off; b < off+n; b++ {
				if !free[b] {
					t.Fatalf("byte %d handed out twice", b)
				}
				free[b] = false
			}
			held = append(held, extent{off, n})
		} else {
			i := r.IntN(len(held))
			e := held[i]
			held = append(held[:i], held[i+1:]...)
			if !f.add(e.off, e.len) {
				t.Fatalf("free of held %v refused", e)
			}
			for b := e.off; b < e.end(); b++ {
				free[b] = true
			}
		}
		var want int64
		for _, fr := range free {
			if fr {
				want++
			}
		}
		if f.bytes != want {
			t.Fatalf("step %d: set says %d free, model %d", step, f.bytes, want)
		}
	}
}
