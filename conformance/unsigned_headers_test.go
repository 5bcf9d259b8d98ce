package conformance

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// addAfterSigning is a middleware that runs after the SDK's signer and adds
// a header the signature does not cover, as someone tampering with a
// request on its way would.
func addAfterSigning(name, value string) func(*s3.Options) {
	return func(o *s3.Options) {
		o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
			return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("AddUnsigned", func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
				if req, ok := in.Request.(*smithyhttp.Request); ok {
					req.Header.Set(name, value)
				}
				return next.HandleFinalize(ctx, in)
			}), middleware.After)
		})
	}
}

// Issue 16: an x-amz-* header that the signature does not cover is refused
// with AccessDenied, as S3 does, and has no effect: x-amz-acl added to a
// signed PUT (header signature or presigned URL) does not make anything
// public, and nothing is stored.
func TestUnsignedAmzHeadersAreRefused(t *testing.T) {
	t.Parallel()
	srv := startNode(t, t.TempDir())
	ctx := context.Background()
	c := awsClient(srv, testSecret, true)
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("tamper")}); err != nil {
		t.Fatal(err)
	}
	_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("tamper"), Key: aws.String("k"), Body: strings.NewReader("private data")},
		addAfterSigning("X-Amz-Acl", "public-read"))
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "AccessDenied" || !strings.Contains(ae.ErrorMessage(), "not signed") {
		t.Fatalf("PUT with x-amz-acl added after signing: %v", err)
	}
	if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("tamper"), Key: aws.String("k")}); err == nil {
		t.Fatal("the refused PUT stored its object")
	}
	// The same PUT signed with its header works: the refusal was about the
	// signature, not the header.
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("tamper"), Key: aws.String("signed"), Body: strings.NewReader("x")}); err != nil {
		t.Fatal(err)
	}

	// A presigned PUT with x-amz-acl added by whoever holds the URL.
	ps, err := s3.NewPresignClient(c).PresignPutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("tamper"), Key: aws.String("presigned")})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPut, ps.URL, strings.NewReader("uploaded"))
	for k, v := range ps.SignedHeader {
		req.Header[k] = v
	}
	req.Header.Set("X-Amz-Acl", "public-read")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body := readAllString(resp.Body)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "AccessDenied") || !strings.Contains(body, "x-amz-acl") {
		t.Fatalf("presigned PUT with an unsigned x-amz-acl: %d %s", resp.StatusCode, body)
	}
	if status, _ := anonymous(t, "GET", "http://"+srv.s3+"/tamper/presigned", ""); status != http.StatusForbidden {
		t.Fatalf("anonymous GET of the tampered upload: %d", status)
	}
	// Without the added header the presigned URL works.
	req, _ = http.NewRequest(http.MethodPut, ps.URL, strings.NewReader("uploaded"))
	for k, v := range ps.SignedHeader {
		req.Header[k] = v
	}
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if body := readAllString(resp.Body); resp.StatusCode != http.StatusOK {
		t.Fatalf("presigned PUT as signed: %d %s", resp.StatusCode, body)
	}
	if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("tamper"), Key: aws.String("presigned")}); err != nil {
		t.Fatal(err)
	}
}
