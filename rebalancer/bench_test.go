package rebalancer

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/strata-storage/strata/metastore"
	"github.com/strata-storage/strata/objectstore"
	"github.com/strata-storage/strata/ring"
)

// BenchmarkMoveVsPut moves the records a new zone takes, unthrottled, and
// reports the shard bytes moved per second next to the rate at which the
// same objects were written (put-MB/s), so the two compare as a ratio in
// one run: a move reads one shard, writes it, reads it back and commits
// twice; a put encodes and writes K+M shards.
func BenchmarkMoveVsPut(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		f, from := newFixture(b)
		ctx := context.Background()
		const n = 200
		data := make([]byte, 256<<10)
		for i := range data {
			data[i] = byte(i*7 + i>>9)
		}
		start := time.Now()
		for i := 0; i < n; i++ {
			if _, err := f.store.PutObject(ctx, "bkt", fmt.Sprint("k", i), bytes.NewReader(data), int64(len(data)), objectstore.PutOptions{}); err != nil {
				b.Fatal(err)
			}
		}
		putRate := float64(n*len(data)) / time.Since(start).Seconds()
		to := addZoneAndRebalance(b, from)
		if err := f.store.SetRing(to, f.placement(b, to)); err != nil {
			b.Fatal(err)
		}
		if err := f.store.SetSources([]objectstore.Placement{{Ring: from, Devices: f.placement(b, from)}}); err != nil {
			b.Fatal(err)
		}
		plan, err := NewPlan([]*ring.Ring{from}, to, map[uint32]int64{}, Dead(to))
		if err != nil {
			b.Fatal(err)
		}
		jobs := &Jobs{Meta: metastore.NewPebble(f.db, "rb/")}
		job := &Job{ID: "bench", State: Running, Target: to.Version, Sources: []uint64{from.Version}, Concurrency: 8}
		jobs.SaveJob(ctx, job)
		ex := &Executor{Store: f.store, Jobs: jobs, Log: f.log}
		b.StartTimer()
		start = time.Now()
		if err := ex.Run(ctx, job, nil, plan, []*ring.Ring{from}, to); err != nil {
			b.Fatal(err)
		}
		secs := time.Since(start).Seconds()
		b.StopTimer()
		_, p, _ := jobs.Load(ctx)
		b.ReportMetric(float64(p.Totals().Bytes)/secs/1e6, "moved-MB/s")
		b.ReportMetric(putRate/1e6, "put-MB/s")
		b.ReportMetric(float64(p.Totals().Copied)/secs, "records/s")
		b.StartTimer()
	}
}
