package conformance

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Issue 17 must-show 3 (first part): what the SDK asks for and Strata does
// not do is refused with AWS's error, and leaves nothing behind: no object,
// no upload, no bucket. What Strata honours with the same headers still
// works.
func TestRefusedRequestsLeaveNothingBehind(t *testing.T) {
	t.Parallel()
	srv := startNode(t, t.TempDir())
	ctx := context.Background()
	c := awsClient(srv, testSecret, true)
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("refusals")}); err != nil {
		t.Fatal(err)
	}
	key32 := aws.String(strings.Repeat("k", 32))
	put := func(key string, edit func(*s3.PutObjectInput)) error {
		in := &s3.PutObjectInput{Bucket: aws.String("refusals"), Key: aws.String(key), Body: bytes.NewReader([]byte("data"))}
		edit(in)
		_, err := c.PutObject(ctx, in)
		return err
	}
	for _, r := range []struct {
		name, code string
		edit       func(*s3.PutObjectInput)
	}{
		{"SSE-S3", "NotImplemented", func(in *s3.PutObjectInput) { in.ServerSideEncryption = types.ServerSideEncryptionAes256 }},
		{"SSE-KMS", "NotImplemented", func(in *s3.PutObjectInput) {
			in.ServerSideEncryption, in.SSEKMSKeyId = types.ServerSideEncryptionAwsKms, aws.String("key-1")
		}},
		{"SSE-C", "NotImplemented", func(in *s3.PutObjectInput) {
			in.SSECustomerAlgorithm, in.SSECustomerKey = aws.String("AES256"), key32
		}},
		{"object lock", "NotImplemented", func(in *s3.PutObjectInput) {
			in.ObjectLockMode, in.ObjectLockLegalHoldStatus = types.ObjectLockModeGovernance, types.ObjectLockLegalHoldStatusOn
		}},
		{"website redirect", "NotImplemented", func(in *s3.PutObjectInput) { in.WebsiteRedirectLocation = aws.String("/elsewhere") }},
		{"grant to an unknown id", "InvalidArgument", func(in *s3.PutObjectInput) { in.GrantRead = aws.String(`id="abc"`) }},
		{"GLACIER", "InvalidStorageClass", func(in *s3.PutObjectInput) { in.StorageClass = types.StorageClassGlacier }},
		{"another owner expected", "AccessDenied", func(in *s3.PutObjectInput) { in.ExpectedBucketOwner = aws.String("111122223333") }},
	} {
		key := "refused-" + strings.ReplaceAll(r.name, " ", "-")
		if err := put(key, r.edit); awsCode(err) != r.code {
			t.Errorf("PutObject with %s: %v, want %s", r.name, err, r.code)
		}
		if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("refusals"), Key: aws.String(key)}); awsCode(err) != "NotFound" {
			t.Errorf("PutObject with %s was refused but left an object (%v)", r.name, err)
		}
	}
	// What is honoured goes through.
	if err := put("standard", func(in *s3.PutObjectInput) {
		in.StorageClass, in.ExpectedBucketOwner, in.RequestPayer = types.StorageClassStandard, aws.String(testUser), types.RequestPayerRequester
	}); err != nil {
		t.Fatalf("PutObject with STANDARD, the right expected owner and request-payer: %v", err)
	}

	// Multipart, copy and reads refuse encryption the same way.
	if _, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("refusals"), Key: aws.String("mp"), ServerSideEncryption: types.ServerSideEncryptionAes256}); awsCode(err) != "NotImplemented" {
		t.Errorf("CreateMultipartUpload with SSE: %v", err)
	}
	if _, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("refusals"), Key: aws.String("copy"), CopySource: aws.String("refusals/standard"), SSECustomerAlgorithm: aws.String("AES256"), SSECustomerKey: key32}); awsCode(err) != "NotImplemented" {
		t.Errorf("CopyObject with SSE-C: %v", err)
	}
	if _, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("refusals"), Key: aws.String("copy"), CopySource: aws.String("refusals/standard"), ExpectedSourceBucketOwner: aws.String("111122223333")}); awsCode(err) != "AccessDenied" {
		t.Errorf("CopyObject with another source owner expected: %v", err)
	}
	if _, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("refusals"), Key: aws.String("standard"), SSECustomerAlgorithm: aws.String("AES256"), SSECustomerKey: key32}); awsCode(err) != "NotImplemented" {
		t.Errorf("GetObject with SSE-C: %v", err)
	}
	uploads, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String("refusals")})
	if err != nil || len(uploads.Uploads) != 0 {
		t.Errorf("uploads left behind: %v %v", uploads, err)
	}
	list, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("refusals")})
	if err != nil || len(list.Contents) != 1 || aws.ToString(list.Contents[0].Key) != "standard" {
		t.Fatalf("objects after the refusals: %v %v", list, err)
	}

	// A bucket whose objects would be their writers' is not created.
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("owned"), ObjectOwnership: types.ObjectOwnershipObjectWriter}); awsCode(err) != "NotImplemented" {
		t.Errorf("CreateBucket with ObjectWriter ownership: %v", err)
	}
	if _, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("owned")}); awsCode(err) != "NotFound" {
		t.Errorf("the refused bucket exists: %v", err)
	}
	// SELECT is 501, not 405.
	_, err = c.SelectObjectContent(ctx, &s3.SelectObjectContentInput{Bucket: aws.String("refusals"), Key: aws.String("standard"), Expression: aws.String("select * from s3object"),
		ExpressionType: types.ExpressionTypeSql, InputSerialization: &types.InputSerialization{CSV: &types.CSVInput{}}, OutputSerialization: &types.OutputSerialization{CSV: &types.CSVOutput{}}})
	if awsCode(err) != "NotImplemented" {
		t.Errorf("SelectObjectContent: %v", err)
	}
}
