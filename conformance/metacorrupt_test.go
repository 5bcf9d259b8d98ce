package conformance

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

// Must-show 4 of issue 16: metadata that survives corruption. Each device
// keeps its records in its own database and a copy of the node's; the
// node's own database is the one that remains.
//
//   - One device's database corrupt: the node starts with that device
//     offline (the reason in /healthz), serves every object and takes
//     writes; `strata ring rebuild-device` starts it anew and refills it.
//   - The node's database corrupt: it is rebuilt from a device's copy at
//     start; buckets, users and objects are all there.
//   - Proof the rebuilt device was refilled: with two other devices' data
//     gone, every object reads back from the rebuilt one and the last.
//
// No panic at any point.
func TestDamagedMetadataIsSurvivedAndRebuilt(t *testing.T) {
	t.Parallel()
	srv := startBinaryServer(t, t.TempDir())
	mc := minioClient(t, srv.server, testSecret)
	ctx := context.Background()
	admin := "http://" + srv.admin
	if err := mc.MakeBucket(ctx, "meta", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	want := putObjects(t, mc, "meta", 30)
	for k, v := range putSmallObjects(t, mc, "meta", 400) {
		want[k] = v
	}
	mustCLI(t, "user", "create", "--server", admin, "alice")
	var logs strings.Builder
	stop := func() {
		srv.proc.stop(t)
		logs.WriteString(srv.proc.log())
	}

	// 1. One device's database: flipped bytes in its table files.
	stop()
	flipTables(t, filepath.Join(srv.dataDir, "pools", "pool1", "meta"))
	srv.proc = startBinary(t, srv.dataDir, srv.s3, srv.admin)
	verifyObjects(t, mc, "meta", want)
	if h := healthz(t, srv.server); !strings.Contains(h, `"name":"node1/pool1","online":false`) || !strings.Contains(h, "unreadable") {
		t.Fatalf("/healthz with pool1's database corrupt: %s", h)
	}
	if err := mc.MakeBucket(ctx, "during", minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("bucket create with one device offline: %v", err)
	}
	during := putObjects(t, mc, "during", 10)

	// A device that is online is not rebuilt.
	if out, err := strataCLI(t, "ring", "rebuild-device", "--server", admin, "0"); err == nil || !strings.Contains(out, "DeviceOnline") {
		t.Fatalf("rebuild of an online device: %v\n%s", err, out)
	}
	out := mustCLI(t, "ring", "rebuild-device", "--server", admin, "1")
	if !strings.Contains(out, "device pool1 rebuilt empty") || !strings.Contains(out, "meta.damaged-") {
		t.Fatalf("rebuild-device:\n%s", out)
	}
	waitFor(t, 2*time.Minute, "the rebuilt device to be refilled", func() bool {
		return strings.Contains(srv.proc.log(), "rebuilt device refilled")
	})
	if h := healthz(t, srv.server); strings.Contains(h, `"online":false`) {
		t.Fatalf("/healthz after the rebuild: %s", h)
	}
	verifyObjects(t, mc, "during", during)

	// 2. The node's database: flipped bytes in its table files.
	stop()
	flipTables(t, filepath.Join(srv.dataDir, "meta"))
	srv.proc = startBinary(t, srv.dataDir, srv.s3, srv.admin)
	buckets, err := mc.ListBuckets(ctx)
	if err != nil || len(buckets) != 2 {
		t.Fatalf("buckets after the node's database was rebuilt: %v %v\n%s", buckets, err, srv.proc.log())
	}
	if out := mustCLI(t, "user", "list", "--server", admin); !strings.Contains(out, "alice") {
		t.Fatalf("users after the node's database was rebuilt:\n%s", out)
	}
	verifyObjects(t, mc, "meta", want)
	if !strings.Contains(srv.proc.log(), "rebuilt from a device's copy") {
		t.Fatalf("the rebuild of the node's database was not reported:\n%s", srv.proc.log())
	}

	// 3. pool0's and pool2's records gone: only the rebuilt pool1 and
	// pool3 remain, enough for 2+2 to read everything.
	stop()
	for _, p := range []string{"pool0", "pool2"} {
		if err := os.RemoveAll(filepath.Join(srv.dataDir, "pools", p, "meta")); err != nil {
			t.Fatal(err)
		}
	}
	srv.proc = startBinary(t, srv.dataDir, srv.s3, srv.admin)
	verifyObjects(t, mc, "meta", want)
	verifyObjects(t, mc, "during", during)
	stop()
	if strings.Contains(logs.String(), "panic") {
		t.Fatalf("the node panicked:\n%s", logs.String())
	}
	t.Logf("%d objects served through a corrupt device database, its rebuild, a corrupt node database and two devices lost", len(want)+len(during))
}

// putSmallObjects stores n objects small enough to live in their records.
func putSmallObjects(t *testing.T, mc *minio.Client, bucket string, n int) stored {
	t.Helper()
	out := stored{}
	for i := 0; i < n; i++ {
		data := randBytes(300 + i)
		key := fmt.Sprintf("small-%04d", i)
		if _, err := mc.PutObject(context.Background(), bucket, key, strings.NewReader(string(data)), int64(len(data)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
		out[key] = sha256.Sum256(data)
	}
	return out
}

// flipTables corrupts every table file of a pebble database throughout
// its middle half, where its data blocks are.
func flipTables(t *testing.T, dir string) {
	t.Helper()
	tables, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
	if len(tables) == 0 {
		t.Fatalf("%s holds no table file (a clean stop flushes the database)", dir)
	}
	for _, p := range tables {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for at := len(b) / 4; at < len(b)*3/4; at += 509 {
			b[at] ^= 0x5a
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// waitFor polls cond every 200ms until it holds, failing after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
