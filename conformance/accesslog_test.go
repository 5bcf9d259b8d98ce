package conformance

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

// Issue 19: --s3-access-log writes a line per request in the fields of
// AWS's server access log.
func TestS3AccessLog(t *testing.T) {
	t.Parallel()
	logFile := filepath.Join(t.TempDir(), "access.log")
	srv := startBinaryServer(t, t.TempDir(), "--s3-access-log", logFile)
	mc := minioClient(t, srv.server, testSecret)
	ctx := context.Background()
	if err := mc.MakeBucket(ctx, "logged", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("x"), 12345)
	if _, err := mc.PutObject(ctx, "logged", "dir/obj", bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(mustGet(t, mc, "logged", "dir/obj")); err != nil || len(got) != len(data) {
		t.Fatalf("GET: %d bytes, %v", len(got), err)
	}
	if _, err := mc.StatObject(ctx, "logged", "missing", minio.StatObjectOptions{}); err == nil {
		t.Fatal("stat of a missing object")
	}
	var lines []string
	eventually(t, 5*time.Second, "the access log", func() string {
		b, _ := os.ReadFile(logFile)
		lines = strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) < 4 {
			return string(b)
		}
		return ""
	})
	find := func(op, key string) []string {
		for _, l := range lines {
			f := strings.Fields(l)
			// bucket_owner bucket [time +zone] remote requester id op key …
			if len(f) > 9 && f[7] == op && f[8] == key {
				return f
			}
		}
		t.Fatalf("no %s %s line in\n%s", op, key, strings.Join(lines, "\n"))
		return nil
	}
	put := find("REST.PUT.OBJECT", "dir/obj")
	if put[1] != "logged" || put[5] != "root" || !strings.HasPrefix(put[2], "[") || put[12] != "200" {
		t.Fatalf("PUT line: %q", put)
	}
	get := find("REST.GET.OBJECT", "dir/obj")
	if get[12] != "200" || get[14] != "12345" {
		t.Fatalf("GET line (status, bytes sent): %q", get)
	}
	head := find("REST.HEAD.OBJECT", "missing")
	if head[12] != "404" || head[13] != "NoSuchKey" {
		t.Fatalf("HEAD of a missing key (status, error code): %q", head)
	}
	if !strings.Contains(strings.Join(put, " "), "SigV4") || !strings.Contains(strings.Join(put, " "), "AuthHeader") {
		t.Fatalf("PUT line lacks the signature version and auth type: %q", put)
	}
}
