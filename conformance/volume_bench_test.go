package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-storage/strata/admin"
	"github.com/strata-storage/strata/blockpool"
)

// BenchmarkVolumes measures block volumes with Debian's fio (its nbd
// engine) against a raw file on the same disk, all in one run so the
// figures compare as ratios:
//
//	go test -run '^$' -bench BenchmarkVolumes -benchtime 1x ./conformance/
//
// Volumes live on a three-node, three-zone cluster on this machine; the
// primary is node1, so replicas=3 writes cross the RPC to two other
// processes.
func BenchmarkVolumes(b *testing.B) {
	fio := requireTool(b, "fio")
	c := startCluster(b, 3, 3, "2+1")
	n1 := c.nodes[0]
	// replicas=1 on node1 itself: the local path; replicas=3 adds two
	// remote ones.
	for _, v := range []struct{ name, placement string }{{"r1", "--nodes=node1"}, {"r3", "--replicas=3"}} {
		cmd := exec.Command(strataBinary(b), "volume", "create", v.name, "1GiB", v.placement, "--server", "http://"+n1.admin)
		cmd.Env = append(os.Environ(), "STRATA_ROOT_USER="+testUser, "STRATA_ROOT_PASSWORD="+testSecret)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%v: %s", err, out)
		}
	}
	raw := filepath.Join(b.TempDir(), "raw")
	jobs := []struct {
		name, rw, bs, depth string
	}{
		{"seqwrite-1M", "write", "1M", "4"},
		{"seqread-1M", "read", "1M", "4"},
		{"randwrite-4k", "randwrite", "4k", "16"},
		{"randread-4k", "randread", "4k", "16"},
	}
	targets := []struct {
		name string
		args []string
	}{
		{"raw-file", []string{"--ioengine=libaio", "--filename=" + raw}},
		{"replicas=1", []string{"--ioengine=nbd", "--uri=nbd://" + n1.nbd + "/r1"}},
		{"replicas=3", []string{"--ioengine=nbd", "--uri=nbd://" + n1.nbd + "/r3"}},
	}
	for _, tg := range targets {
		for _, j := range jobs {
			b.Run(tg.name+"/"+j.name, func(b *testing.B) {
				for range b.N {
					out := filepath.Join(b.TempDir(), "fio.json")
					args := append([]string{"--name=" + j.name, "--rw=" + j.rw, "--bs=" + j.bs, "--iodepth=" + j.depth,
						"--size=1G", "--runtime=8", "--time_based", "--end_fsync=1", "--output-format=json", "--output=" + out}, tg.args...)
					if msg, err := exec.Command(fio, args...).CombinedOutput(); err != nil {
						log := n1.proc.log()
						b.Fatalf("fio: %v: %.2000s\nnode1 log (end):\n%s", err, msg, log[max(0, len(log)-6000):])
					}
					var res struct {
						Jobs []struct {
							Read, Write struct {
								IOPS float64 `json:"iops"`
								BW   float64 `json:"bw"` // KiB/s
							}
						}
					}
					data, _ := os.ReadFile(out)
					if err := json.Unmarshal(data, &res); err != nil || len(res.Jobs) != 1 {
						b.Fatalf("fio output: %v %s", err, data)
					}
					st := res.Jobs[0].Write
					if j.rw == "read" || j.rw == "randread" {
						st = res.Jobs[0].Read
					}
					b.ReportMetric(st.BW*1024/1e6, "MB/s")
					b.ReportMetric(st.IOPS, "IOPS")
				}
			})
		}
	}
}

// BenchmarkSnapshotUnderFio takes snapshots of a full 1 GiB volume (three
// replicas) while fio writes 4 KiB blocks at random over NBD:
//
//	go test -run '^$' -bench BenchmarkSnapshotUnderFio -benchtime 1x ./conformance/
//
// It reports the mean and slowest snapshot and, for scale, what copying
// one replica's data file takes on this disk (what a full-copy snapshot
// costs at least), and fio's write IOPS with and without snapshots (the
// first write to a block after a snapshot copies it first).
func BenchmarkSnapshotUnderFio(b *testing.B) {
	fio := requireTool(b, "fio")
	c := startCluster(b, 3, 3, "2+1")
	n1 := c.nodes[0]
	cl, err := admin.New(admin.Options{Server: "http://" + n1.admin, AccessKey: testUser, SecretKey: testSecret})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, err := cl.CreateVolume(ctx, admin.VolumeCreateRequest{Name: "snap", Size: 1 << 30, Replicas: 3}); err != nil {
		b.Fatal(err)
	}
	uri := "--uri=nbd://" + n1.nbd + "/snap"
	fill := exec.Command(fio, "--name=fill", "--rw=write", "--bs=1M", "--iodepth=4", "--size=1G", "--end_fsync=1", "--ioengine=nbd", uri)
	if out, err := fill.CombinedOutput(); err != nil {
		b.Fatalf("fio fill: %v: %.2000s", err, out)
	}
	start := time.Now()
	copied := filepath.Join(b.TempDir(), "copy")
	if err := blockpool.CopySparse(copied, filepath.Join(n1.dir, "volumes", "snap", "data.vol")); err != nil {
		b.Fatal(err)
	}
	fullCopy := time.Since(start)
	os.Remove(copied)
	randwrite := func(out string) *exec.Cmd {
		return exec.Command(fio, "--name=load", "--rw=randwrite", "--bs=4k", "--iodepth=16", "--size=1G", "--runtime=12", "--time_based",
			"--output-format=json", "--output="+out, "--ioengine=nbd", uri)
	}
	writeIOPS := func(out string) float64 {
		var res struct {
			Jobs []struct{ Write struct{ IOPS float64 } }
		}
		data, _ := os.ReadFile(out)
		if err := json.Unmarshal(data, &res); err != nil || len(res.Jobs) != 1 {
			b.Fatalf("fio output: %v %s", err, data)
		}
		return res.Jobs[0].Write.IOPS
	}
	// The same load with no snapshot, for the copy-on-write's cost.
	base := filepath.Join(b.TempDir(), "base.json")
	if out, err := randwrite(base).CombinedOutput(); err != nil {
		b.Fatalf("fio: %v: %.2000s", err, out)
	}
	baseIOPS := writeIOPS(base)
	for i := range b.N {
		out := filepath.Join(b.TempDir(), "fio.json")
		load := randwrite(out)
		var msg strings.Builder
		load.Stdout, load.Stderr = &msg, &msg
		if err := load.Start(); err != nil {
			b.Fatal(err)
		}
		time.Sleep(3 * time.Second)
		var took []time.Duration
		for s := range 5 {
			t0 := time.Now()
			if _, err := cl.CreateSnapshot(ctx, "snap", fmt.Sprintf("b%d-%d", i, s)); err != nil {
				load.Process.Kill()
				load.Wait()
				b.Fatal(err)
			}
			took = append(took, time.Since(t0))
			time.Sleep(1500 * time.Millisecond)
		}
		if err := load.Wait(); err != nil {
			b.Fatalf("fio: %v: %.2000s", err, msg.String())
		}
		var sum, slowest time.Duration
		for _, d := range took {
			sum += d
			slowest = max(slowest, d)
		}
		b.ReportMetric((sum / time.Duration(len(took))).Seconds(), "snapshot-s")
		b.ReportMetric(slowest.Seconds(), "slowest-snapshot-s")
		b.ReportMetric(fullCopy.Seconds(), "full-copy-s")
		b.ReportMetric(baseIOPS, "fio-IOPS-no-snapshot")
		b.ReportMetric(writeIOPS(out), "fio-IOPS-with-snapshots")
	}
}
