package ring

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// bigCluster is 1,000 devices: 10 racks of 10 nodes of 10 disks, mixed
// weights.
func bigCluster() []Device {
	rng := rand.New(rand.NewPCG(1, 2))
	var devs []Device
	for rack := 0; rack < 10; rack++ {
		for node := 0; node < 10; node++ {
			for d := 0; d < 10; d++ {
				w := float64(4 + rng.IntN(3)*4) // 4, 8 or 12 TB disks
				devs = append(devs, Device{ID: uint32(len(devs)), Region: fmt.Sprintf("r%d", rack%2), Zone: fmt.Sprintf("rack%d", rack),
					Node: fmt.Sprintf("rack%d-node%d", rack, node), Name: fmt.Sprintf("sd%c", 'a'+d), Weight: w})
			}
		}
	}
	return devs
}

// BenchmarkBuildAndRebalance builds a 2^18-partition EC 8+4 ring over 1,000
// devices, then adds a node of ten disks and rebalances.
func BenchmarkBuildAndRebalance(b *testing.B) {
	devs := bigCluster()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		r, err := Build(devs, 18, 8, 4)
		if err != nil {
			b.Fatal(err)
		}
		built := time.Since(start)
		for d := 0; d < 10; d++ {
			r, _ = r.AddDevice(Device{ID: r.NextID(), Region: "r0", Zone: "rack0", Node: "rack0-node10", Name: fmt.Sprintf("sd%c", 'a'+d), Weight: 8})
		}
		r2, res, err := r.Rebalance(RebalanceOptions{})
		if err != nil {
			b.Fatal(err)
		}
		total := time.Since(start)
		rep := r2.Dispersion()
		b.ReportMetric(built.Seconds(), "build-s")
		b.ReportMetric((total - built).Seconds(), "rebalance-s")
		b.ReportMetric(float64(res.Moved), "moved-slots")
		b.ReportMetric(100*rep.WorstDeviation, "worst-dev-%")
	}
}

// BenchmarkLoad1M decodes a 2^20-partition EC 8+4 ring file.
func BenchmarkLoad1M(b *testing.B) {
	r, err := Build(bigCluster(), 20, 8, 4)
	if err != nil {
		b.Fatal(err)
	}
	raw, _ := r.MarshalBinary()
	b.SetBytes(int64(len(raw)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := new(Ring).UnmarshalBinary(raw); err != nil {
			b.Fatal(err)
		}
	}
}
