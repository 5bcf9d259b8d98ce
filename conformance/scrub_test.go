package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"golang.org/x/sys/unix"

	"github.com/strata-storage/strata/scrub"
)

// flipInData flips n random bytes inside the allocated extents of a sparse
// file (past its first MiB, where the shard store keeps its superblock).
func flipInData(t *testing.T, path string, n int, rng *rand.Rand) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type ext struct{ off, len int64 }
	var exts []ext
	var total int64
	st, _ := f.Stat()
	for off := int64(1 << 20); off < st.Size(); {
		data, err := unix.Seek(int(f.Fd()), off, unix.SEEK_DATA)
		if err != nil {
			break
		}
		hole, _ := unix.Seek(int(f.Fd()), data, unix.SEEK_HOLE)
		exts = append(exts, ext{data, hole - data})
		total += hole - data
		off = hole
	}
	if total == 0 {
		t.Fatalf("%s holds no data", path)
	}
	for range n {
		at := rng.Int64N(total)
		for _, e := range exts {
			if at < e.len {
				b := make([]byte, 1)
				f.ReadAt(b, e.off+at)
				b[0] ^= byte(1 + rng.IntN(255))
				f.WriteAt(b, e.off+at)
				break
			}
			at -= e.len
		}
	}
}

func scrubStatus(t *testing.T, admin string) []scrub.Status {
	t.Helper()
	var list []scrub.Status
	if err := json.Unmarshal([]byte(mustCLI(t, "scrub", "status", "-o", "json", "--server", "http://"+admin)), &list); err != nil {
		t.Fatal(err)
	}
	return list
}

// scrubPass starts a pass of every target and waits until all are done,
// returning the finished passes' figures by target.
func scrubPass(t *testing.T, admin string) map[string]scrub.Stats {
	t.Helper()
	asked := time.Now()
	mustCLI(t, "scrub", "start", "--server", "http://"+admin)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		list := scrubStatus(t, admin)
		done := map[string]scrub.Stats{}
		for _, s := range list {
			if s.State == "idle" && s.LastFullPass != nil && s.LastFullPass.After(asked) {
				done[s.Target] = s.LastPass
			}
		}
		if len(done) == len(list) && len(list) > 0 {
			return done
		}
		if time.Now().After(deadline) {
			t.Fatalf("scrub pass did not finish: %+v", list)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestScrubRepairsRotOnADevice(t *testing.T) {
	t.Parallel()
	srv := startBinaryServer(t, t.TempDir(), "--scrub-rate", "512MiB/s", "--scrub-period", "1h")
	mc := minioClient(t, srv.server, testSecret)
	ctx := context.Background()
	if err := mc.MakeBucket(ctx, "data", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	want := putObjects(t, mc, "data", 200)
	// Rot in one of the four devices (EC 2+2: every object stays
	// recoverable), in the space its records use.
	flipInData(t, filepath.Join(srv.dataDir, "pools", "pool0", "chunk.vol"), 300, rand.New(rand.NewPCG(1, 1)))

	first := scrubPass(t, srv.admin)
	var total scrub.Stats
	if st, ok := first["placement"]; !ok || st.Errors != 0 {
		t.Fatalf("placement check: %+v (ran: %v)", st, ok)
	}
	for name, st := range first {
		if name == "placement" {
			continue
		}
		if !strings.HasPrefix(name, "device/") {
			t.Fatalf("unexpected target %s", name)
		}
		total.Errors += st.Errors
		total.Repaired += st.Repaired
		total.Unrecoverable += st.Unrecoverable
		total.Bytes += st.Bytes
	}
	t.Logf("first pass: %d bad shard records found, %d repaired, %d unrecoverable, %d MiB verified", total.Errors, total.Repaired, total.Unrecoverable, total.Bytes>>20)
	if total.Errors == 0 || total.Repaired != total.Errors || total.Unrecoverable != 0 {
		t.Fatalf("first pass: %+v", total)
	}
	if first["device/pool0"].Errors != total.Errors {
		t.Fatalf("errors found on devices that were not damaged: %+v", first)
	}
	// The second pass, before any read could heal anything, finds none.
	for name, st := range scrubPass(t, srv.admin) {
		if st.Errors != 0 {
			t.Fatalf("second pass on %s: %+v", name, st)
		}
	}
	verifyObjects(t, mc, "data", want)
	if v := metric(t, srv.server, "strata_scrub_repaired_total"); v != float64(total.Repaired) {
		t.Fatalf("strata_scrub_repaired_total %v, %d repaired", v, total.Repaired)
	}
	out := mustCLI(t, "scrub", "now", "data/obj-002", "--server", "http://"+srv.admin)
	if !strings.Contains(out, "4 shard records") || !strings.Contains(out, "0 bad") {
		t.Fatalf("scrub now of an object: %s", out)
	}
	if out, err := strataCLI(t, "scrub", "now", "data/nope", "--server", "http://"+srv.admin); err == nil || !strings.Contains(out, "NoSuchKey") {
		t.Fatalf("scrub now of a missing object: %v %s", err, out)
	}
	// Pause holds, and survives a restart.
	mustCLI(t, "scrub", "pause", "--device", "pool1", "--server", "http://"+srv.admin)
	srv.restart(t)
	for _, s := range scrubStatus(t, srv.admin) {
		if (s.Target == "device/pool1") != (s.State == "paused") {
			t.Fatalf("after pause and restart: %s is %s", s.Target, s.State)
		}
	}
}

// Issue 16: an object with more rotten shards than parity covers is data
// loss, and is reported as such: GET says the object is damaged (500, not
// "503 retry"), `scrub now` exits non-zero, and the finding shows in
// `scrub status` and the metrics.
func TestUnrecoverableRotIsReportedAsDataLoss(t *testing.T) {
	t.Parallel()
	srv := startBinaryServer(t, t.TempDir(), "--scrub-rate", "512MiB/s", "--scrub-period", "1h")
	mc := minioClient(t, srv.server, testSecret)
	ctx := context.Background()
	if err := mc.MakeBucket(ctx, "lost", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	// Objects before it, so that it lies past the first MiB that
	// flipInData leaves alone.
	data := bytes.Repeat([]byte("precious"), 40000)
	for i := 0; i < 20; i++ {
		key := fmt.Sprintf("before-%02d", i)
		if i == 19 {
			key = "obj"
		}
		if _, err := mc.PutObject(ctx, "lost", key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	rng := rand.New(rand.NewPCG(7, 7))
	for _, pool := range []string{"pool0", "pool1", "pool2"} { // 3 of 4 shards in EC 2+2
		flipInData(t, filepath.Join(srv.dataDir, "pools", pool, "chunk.vol"), 5000, rng)
	}
	_, err := io.ReadAll(mustGet(t, mc, "lost", "obj"))
	if r := minio.ToErrorResponse(err); r.StatusCode != http.StatusInternalServerError || !strings.Contains(r.Message, "damaged") {
		t.Fatalf("GET of an object with 3 of 4 shards rotten: %v (%d %s)", err, r.StatusCode, r.Code)
	}
	out, err := strataCLI(t, "scrub", "now", "lost/obj", "--server", "http://"+srv.admin)
	if err == nil || !strings.Contains(out, "damaged") {
		t.Fatalf("scrub now of a damaged object exited 0 or said nothing: %v\n%s", err, out)
	}
	var found *scrub.Status
	for _, s := range scrubStatus(t, srv.admin) {
		if s.Target == scrub.OnDemand {
			found = &s
		}
	}
	if found == nil || found.Total.Unrecoverable == 0 || len(found.Total.Damaged) == 0 || found.Total.Damaged[0] != "lost/obj" {
		t.Fatalf("scrub status after the check: %+v", found)
	}
	if v := metric(t, srv.server, "strata_scrub_unrecoverable_total"); v < 1 {
		t.Fatalf("strata_scrub_unrecoverable_total %v", v)
	}
	if out := mustCLI(t, "scrub", "status", "--server", "http://"+srv.admin); !strings.Contains(out, scrub.OnDemand) {
		t.Fatalf("scrub status lacks the on-demand check:\n%s", out)
	}
}
