package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A short run of the whole harness against the real binary: every
// workload runs without errors, every figure it prints has a limit, and
// the listing counts what was written.
func TestAShortRunMeasuresEveryWorkload(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server")
	}
	bin := filepath.Join(t.TempDir(), "strata")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/strata").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var progress bytes.Buffer
	rep, err := Run(ctx, Options{Binary: bin, Dir: t.TempDir(), EC: "2+2", Pools: 4, Duration: 150 * time.Millisecond, ListKeys: 2500, Progress: &progress})
	if err != nil {
		t.Fatalf("run: %v\n%s", err, progress.String())
	}
	l := rep.Limits
	for name, v := range map[string]float64{"fdatasync": l.FdatasyncsSec, "seq write": l.SeqWriteBps, "md5": l.MD5Bps, "sha256": l.SHA256Bps, "crc32c": l.CRC32CBps, "xxh3": l.XXH3Bps, "rs": l.RSEncodeBps,
		"http 4KiB": l.HTTP4KiBGetSec, "http get": l.HTTP1MiBGetBps, "http put": l.HTTP1MiBPutBps} {
		if v <= 0 {
			t.Errorf("limit %s not measured: %v", name, v)
		}
	}
	want := Workloads()
	got := map[string]Result{}
	for _, r := range rep.Results {
		got[r.Name] = r
	}
	for _, name := range want {
		r, ok := got[name]
		switch {
		case !ok:
			t.Errorf("%s: not run", name)
		case r.Ops == 0 || r.Errors > 0:
			t.Errorf("%s: %d ops, %d errors (%s)", name, r.Ops, r.Errors, r.FirstError)
		case r.P50ms <= 0 || r.P99ms < r.P50ms:
			t.Errorf("%s: latencies p50 %v p99 %v", name, r.P50ms, r.P99ms)
		case !strings.HasPrefix(name, "list") && (r.Limit <= 0 || r.Ratio <= 0):
			t.Errorf("%s: no limit or ratio (%v, %v)", name, r.Limit, r.Ratio)
		}
	}
	if n := got["list-flat"].Ops; n != 2500 {
		t.Errorf("flat listing: %d keys, want 2500", n)
	}
	if n := got["list-delimited"].Ops; n != 2500+2 {
		t.Errorf("delimited listing: %d entries, want 2500 keys and 2 prefixes", n)
	}
	// 2,500 objects may still fit in the databases' preallocated logs, so
	// only a large run's space figure says something (TestDiskUsage).
	if rep.BytesPerObjectPerDevice < 0 || rep.PeakRSS <= 0 {
		t.Errorf("space %v per object per device, peak RSS %d", rep.BytesPerObjectPerDevice, rep.PeakRSS)
	}
	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back.Results) != len(rep.Results) {
		t.Fatalf("JSON does not read back: %v", err)
	}
	var table bytes.Buffer
	rep.Print(&table)
	if !strings.Contains(table.String(), "put-1MiB-8") || !strings.Contains(table.String(), "limits:") {
		t.Errorf("table lacks rows:\n%s", table.String())
	}
}

// --only selects by prefix and loads what the selected workloads read.
func TestOnlySelectsByPrefix(t *testing.T) {
	o := Options{Only: []string{"get-4KiB", "list"}}
	b := &bencher{o: o}
	for name, want := range map[string]bool{"get-4KiB-8": true, "get-1MiB-8": false, "list-flat": true, "put-4KiB-8": false} {
		if o.wants(name) != want {
			t.Errorf("wants(%s) = %v", name, !want)
		}
	}
	if !b.needsKeys(sizes[1]) || b.needsKeys(sizes[0]) {
		t.Errorf("get-4KiB needs the 4 KiB objects and not the 1 MiB ones")
	}
	// A name that selects nothing is refused before anything starts.
	_, err := Run(context.Background(), Options{EC: "2+2", Pools: 4, Only: []string{"put-1MB"}, Dir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "names no workload") {
		t.Fatalf("--only put-1MB: %v", err)
	}
}

// Space is counted in allocated blocks: a sparse file's hole is free.
func TestDiskUsage(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a"), make([]byte, 64<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir, "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(1 << 30)
	f.WriteAt([]byte("x"), 512<<20)
	f.Sync()
	f.Close()
	got, err := diskUsage(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got < 64<<10 || got > 1<<20 {
		t.Fatalf("usage %d bytes: want 64 KiB of data and one block of the sparse file", got)
	}
}
