package conformance

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
)

// Part of must-show 4 of issue 16: a corrupt block in the metadata
// database (here among one device's shard records) is an error the node
// survives: it starts, says what it could not read, and serves every
// object from the other shards; it never panics.
func TestCorruptMetadataBlockIsSurvived(t *testing.T) {
	t.Parallel()
	srv := startBinaryServer(t, t.TempDir())
	mc := minioClient(t, srv.server, testSecret)
	ctx := context.Background()
	if err := mc.MakeBucket(ctx, "meta", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	// Enough small objects (inlined in the records) that the database
	// writes a table file, not only its log.
	const n = 3000
	for i := 0; i < n; i++ {
		body := bytes.Repeat([]byte{byte(i)}, 900)
		if _, err := mc.PutObject(ctx, "meta", fmt.Sprintf("k%05d", i), bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	srv.proc.stop(t)
	tables, _ := filepath.Glob(filepath.Join(srv.dataDir, "meta", "*.sst"))
	if len(tables) == 0 {
		t.Fatal("the metadata database wrote no table file")
	}
	// Table files hold keys in order: device 0's records, then device
	// 1's...; bucket metadata sorts after them. Five flipped bytes a
	// quarter to half way in land among the first devices' records.
	b, err := os.ReadFile(tables[0])
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	for i := 0; i < 5; i++ {
		at := len(b)/4 + rng.IntN(len(b)/4)
		b[at] ^= 0x5a
	}
	if err := os.WriteFile(tables[0], b, 0o600); err != nil {
		t.Fatal(err)
	}
	srv.proc = startBinary(t, srv.dataDir, srv.s3, srv.admin)
	for i := 0; i < n; i++ {
		want := bytes.Repeat([]byte{byte(i)}, 900)
		got, err := io.ReadAll(mustGet(t, mc, "meta", fmt.Sprintf("k%05d", i)))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("k%05d after the corruption: %d bytes, %v\n%s", i, len(got), err, srv.proc.log())
		}
	}
	log := srv.proc.log()
	if strings.Contains(log, "panic") {
		t.Fatalf("the node panicked:\n%s", log)
	}
	if !strings.Contains(log, "corrupt") {
		t.Fatalf("the corruption was not reported:\n%s", log)
	}
	t.Logf("%d objects read back after 5 bytes flipped in %s", n, filepath.Base(tables[0]))
}
