package conformance

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

// These tests run the built strata binary as a separate process, so that
// restarts, lost disks and kill -9 are real.

type binaryServer struct {
	*server
	proc *process
	args []string
}

func startBinaryServer(t *testing.T, dataDir string, args ...string) *binaryServer {
	s3, admin := freeAddr(t), freeAddr(t)
	p := startBinary(t, dataDir, s3, admin, args...)
	return &binaryServer{server: &server{s3: s3, admin: admin, dataDir: dataDir}, proc: p, args: args}
}

func (b *binaryServer) restart(t *testing.T) {
	b.proc.stop(t)
	b.proc = startBinary(t, b.dataDir, b.s3, b.admin, b.args...)
}

// metric reads one sample from /metrics ("" labels = sum over all series).
func metric(t *testing.T, s *server, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + s.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body := readAllString(resp.Body)
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `(\{[^}]*\})? ([0-9.e+]+)$`)
	var sum float64
	for _, m := range re.FindAllStringSubmatch(body, -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		sum += v
	}
	return sum
}

type stored map[string][32]byte

func putObjects(t *testing.T, mc *minio.Client, bucket string, n int) stored {
	t.Helper()
	out := stored{}
	sizes := []int{100, 5000, 200 << 10, 1<<20 + 3, 4 << 20}
	for i := 0; i < n; i++ {
		data := randBytes(sizes[i%len(sizes)] + i)
		key := fmt.Sprintf("obj-%03d", i)
		if _, err := mc.PutObject(context.Background(), bucket, key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
		out[key] = sha256.Sum256(data)
	}
	return out
}

func verifyObjects(t *testing.T, mc *minio.Client, bucket string, want stored) {
	t.Helper()
	for key, sum := range want {
		obj, err := mc.GetObject(context.Background(), bucket, key, minio.GetObjectOptions{})
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		data, err := io.ReadAll(obj)
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		if sha256.Sum256(data) != sum {
			t.Fatalf("%s: content differs", key)
		}
	}
}

func TestBinaryRestartAndLostVolumes(t *testing.T) {
	t.Parallel()
	srv := startBinaryServer(t, t.TempDir())
	mc := minioClient(t, srv.server, testSecret)
	if err := mc.MakeBucket(context.Background(), "keep", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	want := putObjects(t, mc, "keep", 25)

	srv.restart(t)
	verifyObjects(t, mc, "keep", want)

	// Two of the four chunk volumes vanish while the server is down (EC 2+2).
	srv.proc.stop(t)
	for _, p := range []string{"pool1", "pool3"} {
		if err := os.Remove(filepath.Join(srv.dataDir, "pools", p, "chunk.vol")); err != nil {
			t.Fatal(err)
		}
	}
	srv.proc = startBinary(t, srv.dataDir, srv.s3, srv.admin)
	verifyObjects(t, mc, "keep", want)
	if n := metric(t, srv.server, "strata_object_degraded_reads_total"); n == 0 {
		t.Fatal("reads were not degraded after losing two volumes: the test proved nothing")
	}
	// Writes work again on the replaced volumes, and listing is complete.
	extra := putObjects(t, mc, "keep", 3)
	n := 0
	for o := range mc.ListObjects(context.Background(), "keep", minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		n++
	}
	if n != len(want) {
		t.Fatalf("listed %d objects, want %d", n, len(want))
	}
	verifyObjects(t, mc, "keep", extra)

	// Those reads queued repairs. Once they are done, the other two volumes
	// can go too: every object must still read from the rebuilt ones.
	deadline := time.Now().Add(60 * time.Second)
	for metric(t, srv.server, "strata_heal_pending") > 0 {
		if time.Now().After(deadline) {
			t.Fatal("heal did not finish within 60 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := metric(t, srv.server, "strata_heal_repaired_shards_total"); n < float64(len(want)) {
		t.Fatalf("only %v shards repaired for %d objects", n, len(want))
	}
	srv.proc.stop(t)
	for _, p := range []string{"pool0", "pool2"} {
		if err := os.Remove(filepath.Join(srv.dataDir, "pools", p, "chunk.vol")); err != nil {
			t.Fatal(err)
		}
	}
	srv.proc = startBinary(t, srv.dataDir, srv.s3, srv.admin)
	verifyObjects(t, mc, "keep", want)
	verifyObjects(t, mc, "keep", extra)
}

func TestBinaryBitRotIsDetectedAndReconstructed(t *testing.T) {
	t.Parallel()
	srv := startBinaryServer(t, t.TempDir())
	mc := minioClient(t, srv.server, testSecret)
	mc.MakeBucket(context.Background(), "rot", minio.MakeBucketOptions{})
	want := putObjects(t, mc, "rot", 20)
	srv.proc.stop(t)

	// Flip bytes all over the written part of one volume.
	path := filepath.Join(srv.dataDir, "pools", "pool2", "chunk.vol")
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	var st syscallStat
	allocated := allocatedBytes(t, path, &st)
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 400; i++ {
		off := 4096 + r.Int64N(max(allocated-4096, 1))
		b := make([]byte, 1)
		f.ReadAt(b, off)
		b[0] ^= 0x5a
		f.WriteAt(b, off)
	}
	f.Close()

	srv.proc = startBinary(t, srv.dataDir, srv.s3, srv.admin)
	verifyObjects(t, mc, "rot", want)
	if n := metric(t, srv.server, `strata_shard_checksum_errors_total`); n == 0 {
		t.Fatal("no checksum error counted after flipping 400 bytes")
	} else {
		t.Logf("strata_shard_checksum_errors_total = %v after 400 flipped bytes", n)
	}
}

// TestBinaryKill9DuringPuts: every PUT that got a 200 survives kill -9, and
// nothing listed is unreadable or torn.
func TestBinaryKill9DuringPuts(t *testing.T) {
	t.Parallel()
	srv := startBinaryServer(t, t.TempDir())
	mc := minioClient(t, srv.server, testSecret)
	mc.MakeBucket(context.Background(), "crash", minio.MakeBucketOptions{})

	var mu sync.Mutex
	acked := map[string][32]byte{}              // key -> content of the last acknowledged PUT
	attempted := map[string]map[[32]byte]bool{} // every content ever sent per key
	ctx, cancel := context.WithCancel(context.Background())
	sizes := []int{700, 90 << 10, 600 << 10, 2<<20 + 11}
	var wg sync.WaitGroup
	for w := 0; w < 6; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 9))
			for i := 0; i < 400 && ctx.Err() == nil; i++ {
				// Half the writes overwrite a few shared keys, to catch torn
				// overwrites; the rest create new keys.
				key := fmt.Sprintf("w%d-%04d", w, i)
				if i%2 == 1 {
					key = fmt.Sprintf("shared-%d", r.IntN(3))
				}
				data := make([]byte, sizes[r.IntN(len(sizes))])
				for j := range data {
					data[j] = byte(r.Uint32())
				}
				sum := sha256.Sum256(data)
				mu.Lock()
				if attempted[key] == nil {
					attempted[key] = map[[32]byte]bool{}
				}
				attempted[key][sum] = true
				mu.Unlock()
				_, err := mc.PutObject(ctx, "crash", key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{})
				if err == nil {
					mu.Lock()
					acked[key] = sum
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(2500 * time.Millisecond)
	srv.proc.kill() // SIGKILL, mid-stream
	cancel()
	wg.Wait()
	if len(acked) < 20 {
		t.Fatalf("only %d PUTs acknowledged before the kill; the test proved little", len(acked))
	}
	srv.proc = startBinary(t, srv.dataDir, srv.s3, srv.admin)

	read := func(key string) ([32]byte, error) {
		obj, err := mc.GetObject(context.Background(), "crash", key, minio.GetObjectOptions{})
		if err != nil {
			return [32]byte{}, err
		}
		data, err := io.ReadAll(obj)
		return sha256.Sum256(data), err
	}
	for key, sum := range acked {
		got, err := read(key)
		if err != nil {
			t.Fatalf("acknowledged %s unreadable after kill -9: %v", key, err)
		}
		if !attempted[key][got] {
			t.Fatalf("%s holds bytes nobody wrote", key)
		}
		if key[:6] != "shared" && got != sum {
			t.Fatalf("acknowledged %s changed after kill -9", key)
		}
	}
	listed := 0
	for o := range mc.ListObjects(context.Background(), "crash", minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		listed++
		got, err := read(o.Key)
		if err != nil {
			t.Fatalf("listed %s cannot be read: %v", o.Key, err)
		}
		if !attempted[o.Key][got] {
			t.Fatalf("listed %s is torn: its bytes match no PUT", o.Key)
		}
	}
	t.Logf("kill -9 after %d acknowledged keys; %d keys listed after restart, all readable and intact", len(acked), listed)
}
