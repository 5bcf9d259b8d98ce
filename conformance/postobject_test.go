package conformance

import (
	"bytes"
	"context"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/minio/minio-go/v7"
)

// postForm sends a browser-style multipart/form-data upload.
func postForm(t *testing.T, url string, fields map[string]string, order []string, file []byte) (*http.Response, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, k := range order {
		mw.WriteField(k, fields[k])
	}
	fw, _ := mw.CreateFormFile("file", "photo.jpg")
	fw.Write(file)
	mw.Close()
	req, _ := http.NewRequest("POST", url, &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func TestPostObject(t *testing.T) {
	t.Parallel()
	srv := startNode(t, t.TempDir())
	ctx := context.Background()
	mc := minioClient(t, srv, testSecret)
	mc.MakeBucket(ctx, "uploads", minio.MakeBucketOptions{})

	policyFor := func(maxSize int64, expires time.Duration) (string, map[string]string) {
		p := minio.NewPostPolicy()
		p.SetBucket("uploads")
		p.SetKeyStartsWith("user/")
		p.SetContentType("image/jpeg")
		p.SetContentLengthRange(1, maxSize)
		p.SetExpires(time.Now().UTC().Add(expires))
		p.SetSuccessStatusAction("201")
		u, fd, err := mc.PresignedPostPolicy(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		return u.String(), fd
	}
	url, fd := policyFor(1<<20, time.Hour)
	fd["key"] = "user/${filename}"
	order := make([]string, 0, len(fd))
	for k := range fd {
		order = append(order, k)
	}
	photo := randBytes(300 << 10)
	resp, body := postForm(t, url, fd, order, photo)
	if resp.StatusCode != 201 || !strings.Contains(body, "<Key>user/photo.jpg</Key>") {
		t.Fatalf("signed POST: %d %s", resp.StatusCode, body)
	}
	// Location is the object's absolute URL, in the response and its header.
	if loc := "http://" + srv.s3 + "/uploads/user/photo.jpg"; resp.Header.Get("Location") != loc || !strings.Contains(body, "<Location>"+loc+"</Location>") {
		t.Fatalf("POST Location: header %q, body %s; want %s", resp.Header.Get("Location"), body, loc)
	}
	c := awsClient(srv, testSecret, true)
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("uploads"), Key: aws.String("user/photo.jpg")})
	if err != nil || readAllString(out.Body) != string(photo) || aws.ToString(out.ContentType) != "image/jpeg" {
		t.Fatalf("posted object: %v", err)
	}
	// Violations of the policy are refused and store nothing.
	bad := func(name string, mutate func(map[string]string), file []byte, code string) {
		f := map[string]string{}
		for k, v := range fd {
			f[k] = v
		}
		mutate(f)
		f["key"] = "user/" + name
		resp, body := postForm(t, url, f, order, file)
		if resp.StatusCode/100 == 2 || !strings.Contains(body, "<Code>"+code+"</Code>") {
			t.Errorf("%s: %d %s", name, resp.StatusCode, body)
		}
		if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("uploads"), Key: aws.String("user/" + name)}); err == nil {
			t.Errorf("%s: an object was stored", name)
		}
	}
	bad("too-big", func(map[string]string) {}, randBytes(1<<20+1), "EntityTooLarge")
	bad("empty", func(map[string]string) {}, nil, "EntityTooSmall")
	bad("wrong-type", func(f map[string]string) { f["Content-Type"] = "text/html" }, photo, "AccessDenied")
	bad("tampered-signature", func(f map[string]string) { f["x-amz-signature"] = strings.Repeat("0", 64) }, photo, "SignatureDoesNotMatch")
	// A key outside the allowed prefix.
	f := map[string]string{}
	for k, v := range fd {
		f[k] = v
	}
	f["key"] = "elsewhere/x"
	if resp, body := postForm(t, url, f, order, photo); resp.StatusCode != 403 {
		t.Errorf("key outside the policy prefix: %d %s", resp.StatusCode, body)
	}
	// An expired policy.
	expURL, expFD := policyFor(1<<20, -time.Minute)
	expFD["key"] = "user/late"
	if resp, body := postForm(t, expURL, expFD, order, photo); resp.StatusCode != 403 || !strings.Contains(body, "expired") {
		t.Errorf("expired policy: %d %s", resp.StatusCode, body)
	}
	// An unsigned form only works on a bucket that lets anyone write.
	unsigned := map[string]string{"key": "anon.txt"}
	if resp, _ := postForm(t, "http://"+srv.s3+"/uploads", unsigned, []string{"key"}, []byte("x")); resp.StatusCode != 403 {
		t.Fatalf("unsigned POST to a private bucket: %d", resp.StatusCode)
	}
}
