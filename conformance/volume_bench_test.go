package conformance

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
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
