package conformance

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

func httpStatus(err error) int {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func TestConditionalReads(t *testing.T) {
	t.Parallel()
	srv := startNode(t, t.TempDir())
	ctx := context.Background()
	c := awsClient(srv, testSecret, true)
	c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("cond")})
	put, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("cond"), Key: aws.String("k"), Body: strings.NewReader("hello")})
	if err != nil {
		t.Fatal(err)
	}
	etag := aws.ToString(put.ETag)
	past, future := time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	cases := []struct {
		name   string
		in     s3.GetObjectInput
		status int // 200, 304 or 412
	}{
		{"If-Match hit", s3.GetObjectInput{IfMatch: aws.String(etag)}, 200},
		{"If-Match miss", s3.GetObjectInput{IfMatch: aws.String(`"nope"`)}, 412},
		{"If-None-Match hit", s3.GetObjectInput{IfNoneMatch: aws.String(etag)}, 304},
		{"If-None-Match miss", s3.GetObjectInput{IfNoneMatch: aws.String(`"nope"`)}, 200},
		{"If-Modified-Since past", s3.GetObjectInput{IfModifiedSince: aws.Time(past)}, 200},
		{"If-Modified-Since future", s3.GetObjectInput{IfModifiedSince: aws.Time(future)}, 304},
		{"If-Unmodified-Since past", s3.GetObjectInput{IfUnmodifiedSince: aws.Time(past)}, 412},
		{"If-Unmodified-Since future", s3.GetObjectInput{IfUnmodifiedSince: aws.Time(future)}, 200},
		{"If-Match wins over If-Unmodified-Since", s3.GetObjectInput{IfMatch: aws.String(etag), IfUnmodifiedSince: aws.Time(past)}, 200},
	}
	for _, tc := range cases {
		in := tc.in
		in.Bucket, in.Key = aws.String("cond"), aws.String("k")
		out, err := c.GetObject(ctx, &in)
		status := 200
		if err != nil {
			status = httpStatus(err)
		} else if got := readAllString(out.Body); got != "hello" {
			t.Fatalf("%s: body %q", tc.name, got)
		}
		if status != tc.status {
			t.Errorf("GET %s: status %d (%v), want %d", tc.name, status, err, tc.status)
		}
		// HEAD answers the same.
		hin := s3.HeadObjectInput{Bucket: in.Bucket, Key: in.Key, IfMatch: in.IfMatch, IfNoneMatch: in.IfNoneMatch, IfModifiedSince: in.IfModifiedSince, IfUnmodifiedSince: in.IfUnmodifiedSince}
		_, err = c.HeadObject(ctx, &hin)
		status = 200
		if err != nil {
			status = httpStatus(err)
		}
		if status != tc.status {
			t.Errorf("HEAD %s: status %d, want %d", tc.name, status, tc.status)
		}
	}
	// Copy-source conditions.
	_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("cond"), Key: aws.String("copy"), CopySource: aws.String("cond/k"), CopySourceIfMatch: aws.String(`"nope"`)})
	if awsCode(err) != "PreconditionFailed" {
		t.Fatalf("copy with failing If-Match: %v", err)
	}
	if _, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("cond"), Key: aws.String("copy"), CopySource: aws.String("cond/k"), CopySourceIfMatch: aws.String(etag), CopySourceIfModifiedSince: aws.Time(past)}); err != nil {
		t.Fatalf("copy with holding conditions: %v", err)
	}
}

func TestConditionalWrites(t *testing.T) {
	t.Parallel()
	srv := startNode(t, t.TempDir())
	ctx := context.Background()
	c := awsClient(srv, testSecret, true)
	c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("condw")})
	put := func(key, body string, inm, im *string) (string, error) {
		out, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("condw"), Key: aws.String(key), Body: strings.NewReader(body), IfNoneMatch: inm, IfMatch: im})
		if err != nil {
			return "", err
		}
		return aws.ToString(out.ETag), nil
	}
	e1, err := put("k", "v1", aws.String("*"), nil)
	if err != nil {
		t.Fatalf("create-only PUT of a new key: %v", err)
	}
	if _, err := put("k", "v2", aws.String("*"), nil); awsCode(err) != "PreconditionFailed" {
		t.Fatalf("create-only PUT of an existing key: %v", err)
	}
	if _, err := put("k", "v2", nil, aws.String(`"nope"`)); awsCode(err) != "PreconditionFailed" {
		t.Fatalf("If-Match miss: %v", err)
	}
	if _, err := put("k", "v2", nil, aws.String(e1)); err != nil {
		t.Fatalf("If-Match hit: %v", err)
	}
	if _, err := put("missing", "x", nil, aws.String(e1)); awsCode(err) != "NoSuchKey" {
		t.Fatalf("If-Match on a missing key: %v", err)
	}
	out, _ := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("condw"), Key: aws.String("k")})
	if got := readAllString(out.Body); got != "v2" {
		t.Fatalf("content %q after conditional writes", got)
	}
	// A large (streamed) body refused by its precondition leaves nothing behind.
	big := bytes.Repeat([]byte("z"), 3<<20)
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("condw"), Key: aws.String("k"), Body: bytes.NewReader(big), IfNoneMatch: aws.String("*")}); awsCode(err) != "PreconditionFailed" {
		t.Fatalf("large create-only PUT: %v", err)
	}
	// Racing create-only PUTs: exactly one wins.
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := put("race", "x", aws.String("*"), nil); err == nil {
				wins.Add(1)
			} else if awsCode(err) != "PreconditionFailed" {
				t.Errorf("racing PUT: %v", err)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d create-only PUTs of one key succeeded", wins.Load())
	}
	// Conditional CompleteMultipartUpload.
	cr, _ := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("condw"), Key: aws.String("k")})
	up, _ := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("condw"), Key: aws.String("k"), UploadId: cr.UploadId, PartNumber: aws.Int32(1), Body: strings.NewReader("part")})
	parts := &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{ETag: up.ETag, PartNumber: aws.Int32(1)}}}
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("condw"), Key: aws.String("k"), UploadId: cr.UploadId, MultipartUpload: parts, IfNoneMatch: aws.String("*")}); awsCode(err) != "PreconditionFailed" {
		t.Fatalf("create-only complete over an existing key: %v", err)
	}
	// The upload survives a failed precondition and can still complete.
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("condw"), Key: aws.String("k"), UploadId: cr.UploadId, MultipartUpload: parts}); err != nil {
		t.Fatalf("complete after a failed precondition: %v", err)
	}
}
