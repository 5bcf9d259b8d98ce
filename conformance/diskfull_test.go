package conformance

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

// smallFS mounts a tmpfs of size bytes for the test (root only).
func smallFS(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "strata-test", dir).CombinedOutput()
	if err != nil {
		msg := fmt.Sprintf("cannot mount a small filesystem (needs root): %v %s", err, out)
		if os.Getenv("STRATA_REQUIRE_TOOLS") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

// Must-show 3 of issue 16: on a small filesystem, PUTs fill it until they
// get 507 InsufficientStorage; GET, LIST and DELETE keep working, a DELETE
// frees space and PUTs work again; a restart while full serves reads and
// says in /healthz and /metrics that the disk is full. No panic, and the
// log stays short.
func TestFullDiskRefusesWritesAndKeepsServing(t *testing.T) {
	t.Parallel()
	fs := smallFS(t, "256m")
	srv := startBinaryServer(t, fs+"/data")
	mc := minioClient(t, srv.server, testSecret)
	ctx := context.Background()
	if err := mc.MakeBucket(ctx, "fill", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	stored := map[string][]byte{}
	// fill PUTs objects of 1 MiB, then 64 KiB, then 500 bytes (inlined in
	// the records) until each size is refused.
	fill := func(prefix string) {
		t.Helper()
		for _, size := range []int{1 << 20, 64 << 10, 500} {
			for i := 0; ; i++ {
				if i == 5000 {
					t.Fatalf("5000 objects of %d bytes fit on a full filesystem", size)
				}
				key := fmt.Sprintf("%s-%d-%04d", prefix, size, i)
				data := bytes.Repeat([]byte{byte(i)}, size)
				_, err := mc.PutObject(ctx, "fill", key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{})
				if err == nil {
					stored[key] = data
					continue
				}
				if r := minio.ToErrorResponse(err); r.StatusCode != http.StatusInsufficientStorage || r.Code != "InsufficientStorage" {
					t.Fatalf("PUT %s on a filling disk: %v (%d %s)\n%s", key, err, r.StatusCode, r.Code, srv.proc.log())
				}
				break
			}
		}
	}
	fill("a")
	t.Logf("the disk took %d objects before PUT answered 507", len(stored))
	// A small (inline) object is refused too, and so is a multipart upload.
	if _, err := mc.PutObject(ctx, "fill", "tiny", strings.NewReader("x"), 1, minio.PutObjectOptions{}); minio.ToErrorResponse(err).Code != "InsufficientStorage" {
		t.Fatalf("small PUT on a full disk: %v", err)
	}
	core := minio.Core{Client: mc}
	if _, err := core.NewMultipartUpload(ctx, "fill", "mp", minio.PutObjectOptions{}); minio.ToErrorResponse(err).Code != "InsufficientStorage" {
		t.Fatalf("CreateMultipartUpload on a full disk: %v", err)
	}
	readAll := func(when string) {
		t.Helper()
		n := 0
		for obj := range mc.ListObjects(ctx, "fill", minio.ListObjectsOptions{}) {
			if obj.Err != nil {
				t.Fatalf("%s: list: %v", when, obj.Err)
			}
			n++
		}
		if n != len(stored) {
			t.Fatalf("%s: listed %d objects, stored %d", when, n, len(stored))
		}
		for key, data := range stored {
			got, err := io.ReadAll(mustGet(t, mc, "fill", key))
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("%s: GET %s: %d bytes, %v", when, key, len(got), err)
			}
		}
	}
	readAll("full")
	if h := healthz(t, srv.server); !strings.Contains(h, "disk space") {
		t.Fatalf("/healthz on a full disk: %s", h)
	}
	if v := metric(t, srv.server, "strata_device_full"); v < 1 {
		t.Fatalf("strata_device_full on a full disk: %v", v)
	}
	// Deleting frees space: PUTs work again. The deleted objects are 20 of
	// the 1 MiB ones (deleting small, inlined ones frees next to nothing).
	deleted := 0
	for key, data := range stored {
		if deleted == 20 {
			break
		}
		if len(data) != 1<<20 {
			continue
		}
		if err := mc.RemoveObject(ctx, "fill", key, minio.RemoveObjectOptions{}); err != nil {
			t.Fatalf("DELETE on a full disk: %v", err)
		}
		delete(stored, key)
		deleted++
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		data := bytes.Repeat([]byte("b"), 1<<20)
		_, err := mc.PutObject(ctx, "fill", "after-delete", bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{})
		if err == nil {
			stored["after-delete"] = data
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("PUT after deleting 20 MiB: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Full again, then a restart while full.
	fill("b")
	srv.restart(t)
	readAll("after a restart while full")
	// The restart may have given back some space (the metadata log is
	// flushed and dropped at start): fill what is left, refused again.
	fill("c")
	readAll("full again after the restart")
	log := srv.proc.log()
	if strings.Contains(log, "panic") || strings.Contains(log, "fatal") {
		t.Fatalf("the node panicked:\n%s", log)
	}
	if lines := strings.Count(log, "\n"); lines > 100 {
		t.Fatalf("%d log lines for a full disk:\n%s", lines, log)
	}
}

func healthz(t *testing.T, s *server) string {
	t.Helper()
	resp, err := http.Get("http://" + s.admin + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	return readAllString(resp.Body)
}
