package conformance

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/tags"
)

func tagMap(ts []types.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range ts {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

func TestTagging(t *testing.T) {
	t.Parallel()
	srv := startNode(t, t.TempDir())
	ctx := context.Background()
	c := awsClient(srv, testSecret, true)
	c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("tags")})
	data := randBytes(300 << 10)
	// Tags set with the PUT.
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("tags"), Key: aws.String("k"), Body: bytes.NewReader(data), Tagging: aws.String("team=storage&env=prod%20eu")}); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: aws.String("tags"), Key: aws.String("k")})
	if err != nil || fmt.Sprint(tagMap(got.TagSet)) != "map[env:prod eu team:storage]" {
		t.Fatalf("tags from PUT: %v %v", err, tagMap(got.TagSet))
	}
	h, _ := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("tags"), Key: aws.String("k")})
	g, _ := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("tags"), Key: aws.String("k")})
	readAllString(g.Body)
	if aws.ToInt32(g.TagCount) != 2 {
		t.Fatalf("x-amz-tagging-count %d", aws.ToInt32(g.TagCount))
	}
	// Replace them: data, ETag and Last-Modified stay.
	if _, err := c.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{Bucket: aws.String("tags"), Key: aws.String("k"),
		Tagging: &types.Tagging{TagSet: []types.Tag{{Key: aws.String("a"), Value: aws.String("1")}}}}); err != nil {
		t.Fatal(err)
	}
	h2, _ := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("tags"), Key: aws.String("k")})
	if aws.ToString(h2.ETag) != aws.ToString(h.ETag) || !h2.LastModified.Equal(*h.LastModified) {
		t.Fatal("tagging changed the object's ETag or Last-Modified")
	}
	g, _ = c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("tags"), Key: aws.String("k")})
	if readAllString(g.Body) != string(data) {
		t.Fatal("tagging changed the data")
	}
	// minio-go sees the same.
	mc := minioClient(t, srv, testSecret)
	mt, err := mc.GetObjectTagging(ctx, "tags", "k", minio.GetObjectTaggingOptions{})
	if err != nil || mt.ToMap()["a"] != "1" || len(mt.ToMap()) != 1 {
		t.Fatalf("minio-go tags: %v %v", err, mt)
	}
	// A copy keeps tags, or replaces them.
	c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("tags"), Key: aws.String("copy"), CopySource: aws.String("tags/k")})
	if got, _ := c.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: aws.String("tags"), Key: aws.String("copy")}); tagMap(got.TagSet)["a"] != "1" {
		t.Fatal("copy lost the tags")
	}
	c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("tags"), Key: aws.String("copy2"), CopySource: aws.String("tags/k"), TaggingDirective: types.TaggingDirectiveReplace, Tagging: aws.String("b=2")})
	if got, _ := c.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: aws.String("tags"), Key: aws.String("copy2")}); fmt.Sprint(tagMap(got.TagSet)) != "map[b:2]" {
		t.Fatalf("copy with REPLACE: %v", tagMap(got.TagSet))
	}
	// Multipart uploads carry tags to the object.
	cr, _ := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("tags"), Key: aws.String("mp"), Tagging: aws.String("mp=yes")})
	up, _ := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("tags"), Key: aws.String("mp"), UploadId: cr.UploadId, PartNumber: aws.Int32(1), Body: strings.NewReader("x")})
	c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("tags"), Key: aws.String("mp"), UploadId: cr.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{ETag: up.ETag, PartNumber: aws.Int32(1)}}}})
	if got, _ := c.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: aws.String("tags"), Key: aws.String("mp")}); tagMap(got.TagSet)["mp"] != "yes" {
		t.Fatalf("multipart tags: %v", tagMap(got.TagSet))
	}
	// Delete.
	if _, err := c.DeleteObjectTagging(ctx, &s3.DeleteObjectTaggingInput{Bucket: aws.String("tags"), Key: aws.String("k")}); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: aws.String("tags"), Key: aws.String("k")}); len(got.TagSet) != 0 {
		t.Fatalf("tags after delete: %v", tagMap(got.TagSet))
	}
	// Limits and errors.
	var eleven []types.Tag
	for i := 0; i < 11; i++ {
		eleven = append(eleven, types.Tag{Key: aws.String(fmt.Sprint("k", i)), Value: aws.String("v")})
	}
	for name, set := range map[string][]types.Tag{
		"11 tags":       eleven,
		"long key":      {{Key: aws.String(strings.Repeat("k", 129)), Value: aws.String("v")}},
		"long value":    {{Key: aws.String("k"), Value: aws.String(strings.Repeat("v", 257))}},
		"duplicate key": {{Key: aws.String("k"), Value: aws.String("1")}, {Key: aws.String("k"), Value: aws.String("2")}},
	} {
		_, err := c.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{Bucket: aws.String("tags"), Key: aws.String("k"), Tagging: &types.Tagging{TagSet: set}})
		if awsCode(err) != "InvalidTag" {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := c.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{Bucket: aws.String("tags"), Key: aws.String("missing"), Tagging: &types.Tagging{TagSet: []types.Tag{{Key: aws.String("a"), Value: aws.String("b")}}}}); awsCode(err) != "NoSuchKey" {
		t.Fatalf("tagging a missing key: %v", err)
	}
	// Bucket tagging.
	if _, err := c.GetBucketTagging(ctx, &s3.GetBucketTaggingInput{Bucket: aws.String("tags")}); awsCode(err) != "NoSuchTagSet" {
		t.Fatalf("untagged bucket: %v", err)
	}
	bt, _ := tags.NewTags(map[string]string{"cost-center": "42", "owner": "storage"}, false)
	if err := mc.SetBucketTagging(ctx, "tags", bt); err != nil {
		t.Fatal(err)
	}
	gb, err := c.GetBucketTagging(ctx, &s3.GetBucketTaggingInput{Bucket: aws.String("tags")})
	keys := []string{}
	for k := range tagMap(gb.TagSet) {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if err != nil || fmt.Sprint(keys) != "[cost-center owner]" {
		t.Fatalf("bucket tags: %v %v", err, keys)
	}
	if err := mc.RemoveBucketTagging(ctx, "tags"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetBucketTagging(ctx, &s3.GetBucketTaggingInput{Bucket: aws.String("tags")}); awsCode(err) != "NoSuchTagSet" {
		t.Fatalf("bucket tags after delete: %v", err)
	}
}
