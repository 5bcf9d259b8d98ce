package conformance

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

// BenchmarkScrub measures scrubbing on one node (4 devices, EC 2+2):
// the unthrottled scrub rate alone, then 1 MiB PUT and GET throughput with
// scrubbing paused and running (and the scrub rate meanwhile, as it
// yields), in one run so they compare as ratios:
//
//	go test -run '^$' -bench BenchmarkScrub -benchtime 1x ./conformance/
func BenchmarkScrub(b *testing.B) {
	ctx := context.Background()
	// Passes back to back, as fast as the runner lets them go.
	srv := startBinaryServer(&testing.T{}, b.TempDir(), "--scrub-rate", "100000MiB/s", "--scrub-period", "1ms")
	b.Cleanup(srv.proc.kill)
	mc := minioClient(b, srv.server, testSecret)
	if err := mc.MakeBucket(ctx, "bench", minio.MakeBucketOptions{}); err != nil {
		b.Fatal(err)
	}
	body := randBytes(1 << 20)
	for i := range 512 { // 512 MiB of objects: 1 GiB of shards over 4 devices
		if _, err := mc.PutObject(ctx, "bench", fmt.Sprint("seed-", i), bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	admin := "http://" + srv.admin
	cli := func(args ...string) {
		if out, err := strataCLI(&testing.T{}, append(args, "--server", admin)...); err != nil {
			b.Fatalf("%v: %s", err, out)
		}
	}
	scrubbed := func() float64 { return metric(&testing.T{}, srv.server, "strata_scrub_bytes_total") }
	b.Run("scrub-alone", func(b *testing.B) {
		cli("scrub", "start")
		for range b.N {
			before, start := scrubbed(), time.Now()
			time.Sleep(3 * time.Second)
			rate := (scrubbed() - before) / time.Since(start).Seconds()
			b.ReportMetric(rate/1e6, "scrub-MB/s-all-devices")
			b.ReportMetric(rate/4/1e6, "scrub-MB/s-per-device")
		}
		cli("scrub", "pause")
	})
	foreground := func(b *testing.B) {
		const window = 6 * time.Second
		var put, get int64
		for end := time.Now().Add(window); time.Now().Before(end); put++ {
			if _, err := mc.PutObject(ctx, "bench", fmt.Sprint("fg-", put%64), bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{}); err != nil {
				b.Fatal(err)
			}
		}
		for end := time.Now().Add(window); time.Now().Before(end); get++ {
			o, err := mc.GetObject(ctx, "bench", fmt.Sprint("seed-", get%512), minio.GetObjectOptions{})
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, o)
			o.Close()
		}
		b.ReportMetric(float64(put<<20)/window.Seconds()/1e6, "PUT-MB/s")
		b.ReportMetric(float64(get<<20)/window.Seconds()/1e6, "GET-MB/s")
	}
	b.Run("paused", func(b *testing.B) {
		cli("scrub", "pause")
		for range b.N {
			foreground(b)
		}
	})
	b.Run("scrub-running", func(b *testing.B) {
		cli("scrub", "start")
		for range b.N {
			before, start := scrubbed(), time.Now()
			foreground(b)
			b.ReportMetric((scrubbed()-before)/time.Since(start).Seconds()/1e6, "scrub-MB/s-all-devices")
		}
		cli("scrub", "pause")
	})
}
