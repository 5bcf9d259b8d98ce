package ring

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"path/filepath"
	"testing"
)

func devices(zones, nodesPerZone, devsPerNode int) []Device {
	var out []Device
	id := uint32(0)
	for z := 0; z < zones; z++ {
		for n := 0; n < nodesPerZone; n++ {
			for d := 0; d < devsPerNode; d++ {
				out = append(out, Device{ID: id, Region: "r", Zone: fmt.Sprintf("z%d", z), Node: fmt.Sprintf("z%dn%d", z, n), Name: fmt.Sprintf("d%d", d), Weight: 1})
				id++
			}
		}
	}
	return out
}

func TestBuildPlacement(t *testing.T) {
	cases := []struct {
		name                     string
		zones, nodes, devs, k, m int
		maxPerZone, maxPerNode   int
	}{
		{"embedded 2+2 one node", 1, 1, 4, 2, 2, 4, 4},
		{"3 zones 4+2", 3, 2, 1, 4, 2, 2, 1},
		{"6 zones 4+2", 6, 1, 2, 4, 2, 1, 1},
		{"2 zones 2+1 many disks", 2, 2, 4, 2, 1, 2, 1},
		{"uneven zones", 2, 3, 1, 2, 2, 2, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			devs := devices(c.zones, c.nodes, c.devs)
			r, err := Build(devs, 8, c.k, c.m)
			if err != nil {
				t.Fatal(err)
			}
			perShardIndex := make([]map[uint16]int, r.Width())
			for i := range perShardIndex {
				perShardIndex[i] = map[uint16]int{}
			}
			for p := 0; p < r.Partitions(); p++ {
				slots := r.Slots(uint32(p))
				zone, node, dev := map[string]int{}, map[string]int{}, map[uint16]bool{}
				for i, s := range slots {
					if dev[s] {
						t.Fatalf("partition %d uses device %d twice", p, s)
					}
					dev[s] = true
					zone[devs[s].Zone]++
					node[devs[s].Node]++
					perShardIndex[i][s]++
				}
				for z, n := range zone {
					if n > c.maxPerZone {
						t.Fatalf("partition %d: %d shards in zone %s, want <= %d", p, n, z, c.maxPerZone)
					}
				}
				for nd, n := range node {
					if n > c.maxPerNode {
						t.Fatalf("partition %d: %d shards on node %s, want <= %d", p, n, nd, c.maxPerNode)
					}
				}
			}
			// Every device carries data shards (the ones reads use) in
			// proportion to its slots, give or take.
			for d := range devs {
				data, all := 0, 0
				for i, counts := range perShardIndex {
					all += counts[uint16(d)]
					if i < c.k {
						data += counts[uint16(d)]
					}
				}
				want := float64(all) * float64(c.k) / float64(c.k+c.m)
				if math.Abs(float64(data)-want) > 0.25*want+2 {
					t.Errorf("device %d: %d data shards of %d slots, want about %.0f", d, data, all, want)
				}
			}
		})
	}
}

func TestBuildRefusesImpossibleLayouts(t *testing.T) {
	for _, c := range []struct{ devs, k, m int }{{4, 3, 2}, {4, 0, 2}, {2, 2, 1}, {300, 200, 100}} {
		if _, err := Build(devices(1, 1, c.devs), 4, c.k, c.m); !errors.Is(err, ErrLayout) {
			t.Errorf("%d devices EC %d+%d: got %v, want ErrLayout", c.devs, c.k, c.m, err)
		}
	}
}

func TestPartitionStableAndSpread(t *testing.T) {
	r, _ := Build(devices(1, 1, 4), 8, 2, 2)
	if r.Partition("b", "k") != r.Partition("b", "k") {
		t.Fatal("partition not deterministic")
	}
	if r.Partition("b", "a/b") == r.Partition("b/a", "b") && r.Partition("x", "1") == r.Partition("x", "2") {
		t.Log("collision (possible but unlikely)")
	}
	hits := make([]int, r.Partitions())
	for i := 0; i < 100000; i++ {
		hits[r.Partition("bucket", fmt.Sprintf("key-%d", i))]++
	}
	for p, n := range hits {
		if n < 200 || n > 600 { // mean 390
			t.Fatalf("partition %d got %d of 100000 keys", p, n)
		}
	}
}

func TestRingFileRoundTripAndCorruption(t *testing.T) {
	r, _ := Build(devices(3, 2, 2), 10, 4, 2)
	path := filepath.Join(t.TempDir(), "ring")
	if err := r.Save(path); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.K != 4 || got.M != 2 || got.PartPower != 10 || len(got.Devices) != 12 || got.Devices[5] != r.Devices[5] {
		t.Fatalf("round trip: %+v", got)
	}
	for p := 0; p < r.Partitions(); p++ {
		for i, s := range r.Slots(uint32(p)) {
			if got.Slots(uint32(p))[i] != s {
				t.Fatalf("slot %d/%d differs", p, i)
			}
		}
	}
	b, _ := r.MarshalBinary()
	for _, off := range []int{0, 9, 20, len(b) / 2, len(b) - 1} {
		bad := append([]byte(nil), b...)
		bad[off] ^= 1
		if err := new(Ring).UnmarshalBinary(bad); !errors.Is(err, ErrCorrupt) {
			t.Errorf("flip at %d: got %v", off, err)
		}
	}
	if err := new(Ring).UnmarshalBinary(b[:30]); !errors.Is(err, ErrCorrupt) {
		t.Errorf("truncated: %v", err)
	}
}

func BenchmarkLookup(b *testing.B) {
	r, _ := Build(devices(3, 4, 4), 16, 4, 2)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_ = r.Slots(r.Partition("bucket", "some/object/key"))
	}
}

// FuzzRingFile feeds fuzzed ring files to the decoder: it refuses or
// accepts without panicking, and an accepted ring encodes and places.
func FuzzRingFile(f *testing.F) {
	r, err := Build(devices(3, 2, 1), 6, 4, 2)
	if err != nil {
		f.Fatal(err)
	}
	b, _ := r.MarshalBinary()
	f.Add(b[:len(b)-4], true)
	f.Add(b, false)
	f.Fuzz(func(t *testing.T, b []byte, seal bool) {
		if seal { // past the checksum, into the decoder
			b = binary.LittleEndian.AppendUint32(append([]byte(nil), b...), crc32.Checksum(b, castagnoli))
		}
		var got Ring
		if err := got.UnmarshalBinary(b); err != nil {
			return
		}
		if _, err := got.MarshalBinary(); err != nil {
			t.Fatalf("an accepted ring does not encode: %v", err)
		}
		if got.Built() {
			for _, slot := range got.Slots(got.Partition("bucket", "key")) {
				if int(slot) >= len(got.Devices) {
					t.Fatalf("an accepted ring places on device index %d of %d", slot, len(got.Devices))
				}
			}
		}
	})
}
