package conformance

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/cors"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"
)

// TestMinioGoFeatures drives the S3 features of issue 3 with minio-go, as
// the aws-sdk-go-v2 tests do with that SDK: conditional reads, versioning,
// checksums, server-side compose (UploadPartCopy), multi-delete, v1
// listing, CORS and an anonymous-read bucket policy.
func TestMinioGoFeatures(t *testing.T) {
	t.Parallel()
	srv := startNode(t, t.TempDir())
	ctx := context.Background()
	mc := minioClient(t, srv, testSecret)
	if err := mc.MakeBucket(ctx, "mgo", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	read := func(key string, opts minio.GetObjectOptions) (string, error) {
		o, err := mc.GetObject(ctx, "mgo", key, opts)
		if err != nil {
			return "", err
		}
		b, err := io.ReadAll(o)
		return string(b), err
	}
	// Checksums, sent by minio-go as a signed aws-chunked trailer
	// (STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER), and returned on request.
	tc, err := minio.New(srv.s3, &minio.Options{Creds: miniocreds.NewStaticV4(testUser, testSecret, ""), Region: "us-east-1", TrailingHeaders: true})
	if err != nil {
		t.Fatal(err)
	}
	info, err := tc.PutObject(ctx, "mgo", "sum", strings.NewReader("checked"), 7, minio.PutObjectOptions{Checksum: minio.ChecksumSHA256})
	if err != nil || info.ChecksumSHA256 == "" {
		t.Fatalf("put with SHA256: %v %+v", err, info)
	}
	st, err := mc.StatObject(ctx, "mgo", "sum", minio.StatObjectOptions{Checksum: true})
	if err != nil || st.ChecksumSHA256 != info.ChecksumSHA256 {
		t.Fatalf("stat with checksum: %v %q vs %q", err, st.ChecksumSHA256, info.ChecksumSHA256)
	}
	// Conditional reads.
	var o minio.GetObjectOptions
	o.SetMatchETag(st.ETag)
	if got, err := read("sum", o); err != nil || got != "checked" {
		t.Fatalf("If-Match hit: %v", err)
	}
	o = minio.GetObjectOptions{}
	o.SetMatchETag("nope")
	if _, err := read("sum", o); minioCode(err) != "PreconditionFailed" {
		t.Fatalf("If-Match miss: %v", err)
	}
	o = minio.GetObjectOptions{}
	o.SetModified(time.Now().Add(time.Hour))
	if _, err := read("sum", o); err == nil {
		t.Fatal("If-Modified-Since in the future returned the body")
	}
	// Versioning.
	if err := mc.EnableVersioning(ctx, "mgo"); err != nil {
		t.Fatal(err)
	}
	v1, _ := mc.PutObject(ctx, "mgo", "doc", strings.NewReader("one"), 3, minio.PutObjectOptions{})
	v2, _ := mc.PutObject(ctx, "mgo", "doc", strings.NewReader("two"), 3, minio.PutObjectOptions{})
	if v1.VersionID == "" || v1.VersionID == v2.VersionID {
		t.Fatalf("version ids %q %q", v1.VersionID, v2.VersionID)
	}
	if got, _ := read("doc", minio.GetObjectOptions{VersionID: v1.VersionID}); got != "one" {
		t.Fatalf("read v1: %q", got)
	}
	if err := mc.RemoveObject(ctx, "mgo", "doc", minio.RemoveObjectOptions{VersionID: v2.VersionID}); err != nil {
		t.Fatal(err)
	}
	if got, _ := read("doc", minio.GetObjectOptions{}); got != "one" {
		t.Fatalf("after removing v2: %q", got)
	}
	// Server-side compose from ranges of a source (UploadPartCopy).
	src := randBytes(11 << 20)
	mc.PutObject(ctx, "mgo", "src", bytes.NewReader(src), int64(len(src)), minio.PutObjectOptions{})
	a := minio.CopySrcOptions{Bucket: "mgo", Object: "src", MatchRange: true, Start: 0, End: 5<<20 - 1}
	b := minio.CopySrcOptions{Bucket: "mgo", Object: "src", MatchRange: true, Start: 6 << 20, End: 11<<20 - 1}
	if _, err := mc.ComposeObject(ctx, minio.CopyDestOptions{Bucket: "mgo", Object: "composed"}, a, b); err != nil {
		t.Fatal(err)
	}
	if got, _ := read("composed", minio.GetObjectOptions{}); got != string(src[:5<<20])+string(src[6<<20:11<<20]) {
		t.Fatal("composed object differs")
	}
	// Multi-delete of every version.
	ch := make(chan minio.ObjectInfo)
	go func() {
		defer close(ch)
		for o := range mc.ListObjects(ctx, "mgo", minio.ListObjectsOptions{WithVersions: true, Recursive: true}) {
			ch <- o
		}
	}()
	for e := range mc.RemoveObjects(ctx, "mgo", ch, minio.RemoveObjectsOptions{}) {
		t.Fatalf("remove %s: %v", e.ObjectName, e.Err)
	}
	n := 0
	for range mc.ListObjects(ctx, "mgo", minio.ListObjectsOptions{WithVersions: true, Recursive: true}) {
		n++
	}
	if n != 0 {
		t.Fatalf("%d versions left after multi-delete", n)
	}
	// v1 listing.
	mc.PutObject(ctx, "mgo", "pub/a.txt", strings.NewReader("public"), 6, minio.PutObjectOptions{})
	n = 0
	for o := range mc.ListObjects(ctx, "mgo", minio.ListObjectsOptions{UseV1: true, Prefix: "pub/"}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		n++
	}
	if n != 1 {
		t.Fatalf("v1 listing found %d", n)
	}
	// CORS.
	if err := mc.SetBucketCors(ctx, "mgo", cors.NewConfig([]cors.Rule{{AllowedOrigin: []string{"https://ui.example"}, AllowedMethod: []string{"GET"}}})); err != nil {
		t.Fatal(err)
	}
	if cfg, err := mc.GetBucketCors(ctx, "mgo"); err != nil || len(cfg.CORSRules) != 1 {
		t.Fatalf("GetBucketCors: %v", err)
	}
	// Anonymous read through a bucket policy.
	policy := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["*"]},"Action":["s3:GetObject"],"Resource":["arn:aws:s3:::mgo/pub/*"]}]}`
	if err := mc.SetBucketPolicy(ctx, "mgo", policy); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + srv.s3 + "/mgo/pub/a.txt")
	if err != nil || resp.StatusCode != 200 || readAllString(resp.Body) != "public" {
		t.Fatalf("anonymous read through the policy: %v %v", err, resp.StatusCode)
	}
}
