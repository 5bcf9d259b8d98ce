package conformance

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/minio/minio-go/v7"
)

// TestSDKPayloadModes records, through a proxy, how each SDK signs its
// PUT bodies by default, and proves each mode round-trips. If an SDK
// upgrade changes its default, this test says so.
func TestSDKPayloadModes(t *testing.T) {
	t.Parallel()
	srv := startNode(t, t.TempDir())
	target, _ := url.Parse("http://" + srv.s3)
	var mu sync.Mutex
	modes := map[string]map[string]bool{} // user agent family -> payload modes
	proxy := httputil.NewSingleHostReverseProxy(target)
	inner := proxy.Director
	proxy.Director = func(r *http.Request) {
		host := r.Host
		inner(r)
		r.Host = host // the signature covers the Host the client used
		if r.Method == http.MethodPut {
			family := "aws-sdk-go-v2"
			if bytes.Contains([]byte(r.UserAgent()), []byte("MinIO")) {
				family = "minio-go"
			}
			mu.Lock()
			if modes[family] == nil {
				modes[family] = map[string]bool{}
			}
			mode := r.Header.Get("X-Amz-Content-Sha256")
			if len(mode) == 64 {
				mode = "<hex sha256>"
			}
			if t := r.Header.Get("X-Amz-Trailer"); t != "" {
				mode += " trailer=" + t
			}
			modes[family][mode] = true
			mu.Unlock()
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: proxy}
	go hs.Serve(ln)
	defer hs.Close()
	via := &server{s3: ln.Addr().String()}

	ctx := context.Background()
	c := awsClient(via, testSecret, true)
	mc := minioClient(t, via, testSecret)
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("modes")}); err != nil {
		t.Fatal(err)
	}
	data := randBytes(300 << 10)
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("modes"), Key: aws.String("a"), Body: bytes.NewReader(data)}); err != nil {
		t.Fatal(err)
	}
	// An unseekable body makes the Go SDK stream with aws-chunked.
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("modes"), Key: aws.String("b"), Body: struct{ *bytes.Reader }{bytes.NewReader(data)}, ContentLength: aws.Int64(int64(len(data)))}); err != nil {
		t.Fatalf("aws-sdk-go-v2 unseekable body: %v", err)
	}
	if _, err := mc.PutObject(ctx, "modes", "c", bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a", "b", "c"} {
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("modes"), Key: aws.String(k)})
		if err != nil || readAllString(out.Body) != string(data) {
			t.Fatalf("%s: %v", k, err)
		}
	}
	for family, ms := range modes {
		for m := range ms {
			t.Logf("%s PUT payload mode: %s", family, m)
		}
	}
	if !modes["minio-go"]["STREAMING-AWS4-HMAC-SHA256-PAYLOAD"] {
		t.Errorf("minio-go did not use signed aws-chunked streaming: %v", modes["minio-go"])
	}
	if len(modes["aws-sdk-go-v2"]) == 0 {
		t.Error("no aws-sdk-go-v2 PUT seen")
	}
}
