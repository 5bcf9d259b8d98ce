package conformance

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/minio/minio-go/v7"
)

func randBytes(n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(uint64(n), 7))
	for i := 0; i+8 <= len(b); i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := len(b) &^ 7; i < len(b); i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

// awsCode extracts the S3 error code from an aws-sdk-go-v2 error.
func awsCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	if err == nil {
		return ""
	}
	return err.Error()
}

func minioCode(err error) string {
	if err == nil {
		return ""
	}
	return minio.ToErrorResponse(err).Code
}

func TestBucketLifecycle(t *testing.T) {
	t.Parallel()
	srv := startNode(t, t.TempDir())
	ctx := context.Background()
	c := awsClient(srv, testSecret, true)
	mc := minioClient(t, srv, testSecret)

	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("life")}); err != nil {
		t.Fatal(err)
	}
	if err := mc.MakeBucket(ctx, "life-minio", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	// In us-east-1 creating your own bucket again answers 200 and resets its
	// ACL to the request's.
	if _, err := c.PutBucketAcl(ctx, &s3.PutBucketAclInput{Bucket: aws.String("life"), ACL: types.BucketCannedACLPublicRead}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("life")}); err != nil {
		t.Fatalf("create twice: %v", err)
	}
	if acl, err := c.GetBucketAcl(ctx, &s3.GetBucketAclInput{Bucket: aws.String("life")}); err != nil || len(acl.Grants) != 1 {
		t.Fatalf("ACL after the second create: %+v %v", acl, err)
	}
	for _, bad := range []string{"Bad_Name", "ab", "-leading", "192.168.1.1", strings.Repeat("a", 64)} {
		if err := mc.MakeBucket(ctx, bad, minio.MakeBucketOptions{}); err == nil {
			t.Errorf("bucket %q was created", bad)
		}
	}
	hb, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("life")})
	if err != nil || aws.ToString(hb.BucketRegion) != "us-east-1" {
		t.Fatalf("head bucket: %v %v", err, hb)
	}
	if _, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("missing-bucket")}); err == nil {
		t.Fatal("head of missing bucket succeeded")
	}
	lb, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil || len(lb.Buckets) != 2 || aws.ToString(lb.Buckets[0].Name) != "life" {
		t.Fatalf("list buckets: %v %+v", err, lb)
	}
	loc, err := mc.GetBucketLocation(ctx, "life")
	if err != nil || loc != "us-east-1" {
		t.Fatalf("location: %q %v", loc, err)
	}
	if _, err := mc.PutObject(ctx, "life", "obj", bytes.NewReader([]byte("x")), 1, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("life")}); awsCode(err) != "BucketNotEmpty" {
		t.Fatalf("delete non-empty: %v", err)
	}
	if err := mc.RemoveObject(ctx, "life", "obj", minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("life")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("life")}); awsCode(err) != "NoSuchBucket" {
		t.Fatalf("delete twice: %v", err)
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("life"), Key: aws.String("k"), Body: strings.NewReader("x")}); awsCode(err) != "NoSuchBucket" {
		t.Fatalf("put into deleted bucket: %v", err)
	}
}

func TestObjectRoundTripBothSDKs(t *testing.T) {
	t.Parallel()
	srv := startNode(t, t.TempDir())
	ctx := context.Background()
	c := awsClient(srv, testSecret, true)
	mc := minioClient(t, srv, testSecret)
	mc.MakeBucket(ctx, "objs", minio.MakeBucketOptions{})
	sizes := []int{0, 1, 4 << 10, 128 << 10, 128<<10 + 1, 1 << 20, 1<<20 + 7, 3<<20 + 12345, 20 << 20}
	for _, size := range sizes {
		data := randBytes(size)
		sum := md5.Sum(data)
		// minio-go: streaming-signed PUT (multipart above its part size).
		key := fmt.Sprintf("minio/%d", size)
		info, err := mc.PutObject(ctx, "objs", key, bytes.NewReader(data), int64(size), minio.PutObjectOptions{ContentType: "application/x-test", PartSize: 5 << 20})
		if err != nil {
			t.Fatalf("minio put %d: %v", size, err)
		}
		if size < 5<<20 && info.ETag != fmt.Sprintf("%x", sum) {
			t.Fatalf("etag %s for size %d", info.ETag, size)
		}
		obj, err := mc.GetObject(ctx, "objs", key, minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(obj)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("minio get %d: %v (len %d)", size, err, len(got))
		}
		// aws-sdk-go-v2 with its default checksum behaviour.
		key = fmt.Sprintf("aws/%d", size)
		put, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("objs"), Key: aws.String(key), Body: bytes.NewReader(data), ContentLength: aws.Int64(int64(size))})
		if err != nil {
			t.Fatalf("aws put %d: %v", size, err)
		}
		if aws.ToString(put.ETag) != fmt.Sprintf("%q", fmt.Sprintf("%x", sum)) {
			t.Fatalf("aws etag %s", aws.ToString(put.ETag))
		}
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("objs"), Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		got, _ = io.ReadAll(out.Body)
		out.Body.Close()
		if !bytes.Equal(got, data) || aws.ToInt64(out.ContentLength) != int64(size) {
			t.Fatalf("aws get %d", size)
		}
		head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("objs"), Key: aws.String(key)})
		if err != nil || aws.ToInt64(head.ContentLength) != int64(size) || aws.ToString(head.ETag) != aws.ToString(put.ETag) {
			t.Fatalf("head %d: %v %+v", size, err, head)
		}
	}
	if _, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("objs"), Key: aws.String("nope")}); awsCode(err) != "NoSuchKey" {
		t.Fatalf("missing key: %v", err)
	}
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("objs"), Key: aws.String("aws/1")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("objs"), Key: aws.String("aws/1")}); err == nil {
		t.Fatal("deleted object still there")
	}
	// Deleting a missing key succeeds, as in S3.
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("objs"), Key: aws.String("never")}); err != nil {
		t.Fatal(err)
	}
}

func TestRanges(t *testing.T) {
	t.Parallel()
	srv := startNode(t, t.TempDir())
	ctx := context.Background()
	c := awsClient(srv, testSecret, true)
	c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("rng")})
	data := randBytes(3<<20 + 333)
	for _, key := range []string{"big", "small"} {
		body := data
		if key == "small" {
			body = data[:5000]
		}
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("rng"), Key: aws.String(key), Body: bytes.NewReader(body)}); err != nil {
			t.Fatal(err)
		}
	}
	n := int64(len(data))
	cases := []struct {
		key, rng string
		from, to int64 // inclusive; from < 0 = whole object with 200
		errCode  string
	}{
		{"big", "bytes=0-0", 0, 0, ""},
		{"big", "bytes=100-200", 100, 200, ""},
		{"big", "bytes=1048570-1048580", 1048570, 1048580, ""}, // across a block boundary
		{"big", "bytes=3000000-", 3000000, n - 1, ""},
		{"big", "bytes=-10", n - 10, n - 1, ""},
		{"big", "bytes=5-999999999", 5, n - 1, ""},
		{"big", fmt.Sprintf("bytes=%d-", n), 0, 0, "InvalidRange"},
		{"small", "bytes=4990-", 4990, 4999, ""},
		{"small", "bytes=-100000", 0, 4999, ""},
		{"small", "bytes=9-3", -1, 0, ""}, // invalid: ignored, whole object
		{"small", "items=0-1", -1, 0, ""}, // not bytes: ignored
	}
	for _, tc := range cases {
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("rng"), Key: aws.String(tc.key), Range: aws.String(tc.rng)})
		if tc.errCode != "" {
			if awsCode(err) != tc.errCode {
				t.Fatalf("%s %s: got %v, want %s", tc.key, tc.rng, err, tc.errCode)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s %s: %v", tc.key, tc.rng, err)
		}
		got, _ := io.ReadAll(out.Body)
		out.Body.Close()
		src := data
		if tc.key == "small" {
			src = data[:5000]
		}
		want := src
		if tc.from >= 0 {
			want = src[tc.from : tc.to+1]
			if cr := aws.ToString(out.ContentRange); cr != fmt.Sprintf("bytes %d-%d/%d", tc.from, tc.to, len(src)) {
				t.Fatalf("%s %s: Content-Range %q", tc.key, tc.rng, cr)
			}
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s %s: %d bytes, want %d", tc.key, tc.rng, len(got), len(want))
		}
	}
}

func TestListingWithDelimitersAndPagination(t *testing.T) {
	t.Parallel()
	srv := startNode(t, t.TempDir())
	ctx := context.Background()
	c := awsClient(srv, testSecret, true)
	mc := minioClient(t, srv, testSecret)
	c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("lst")})
	var keys []string
	for _, dir := range []string{"alpha", "beta", "gamma/deep", "gamma/deeper"} {
		for i := 0; i < 700; i++ {
			keys = append(keys, fmt.Sprintf("%s/obj-%04d", dir, i))
		}
	}
	keys = append(keys, "top-1", "top-2", "zeta file with spaces+plus")
	sort.Strings(keys)
	var wg sync.WaitGroup
	work := make(chan string)
	errs := make(chan error, 16)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range work {
				if _, err := mc.PutObject(ctx, "lst", k, strings.NewReader(k), int64(len(k)), minio.PutObjectOptions{}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for _, k := range keys {
		work <- k
	}
	close(work)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	// ListObjectsV2 pages of 250 cover every key exactly once, in order.
	var got []string
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String("lst"), MaxKeys: aws.Int32(250)})
	pages := 0
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, o := range page.Contents {
			got = append(got, aws.ToString(o.Key))
			if aws.ToInt64(o.Size) != int64(len(aws.ToString(o.Key))) {
				t.Fatalf("size of %s: %d", aws.ToString(o.Key), aws.ToInt64(o.Size))
			}
		}
	}
	if strings.Join(got, "\n") != strings.Join(keys, "\n") || pages != (len(keys)+249)/250 {
		t.Fatalf("v2 pagination: %d keys in %d pages, want %d", len(got), pages, len(keys))
	}
	// Delimiter at the top level: prefixes and loose objects.
	out, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("lst"), Delimiter: aws.String("/")})
	if err != nil {
		t.Fatal(err)
	}
	var prefixes []string
	for _, cp := range out.CommonPrefixes {
		prefixes = append(prefixes, aws.ToString(cp.Prefix))
	}
	if fmt.Sprint(prefixes) != "[alpha/ beta/ gamma/]" || len(out.Contents) != 3 || aws.ToInt32(out.KeyCount) != 6 {
		t.Fatalf("delimiter: %v, %d objects", prefixes, len(out.Contents))
	}
	// Nested prefix with delimiter, paged one entry at a time (v1 markers).
	var entries []string
	marker := ""
	for {
		out, err := c.ListObjects(ctx, &s3.ListObjectsInput{Bucket: aws.String("lst"), Prefix: aws.String("gamma/"), Delimiter: aws.String("/"), MaxKeys: aws.Int32(1), Marker: aws.String(marker)})
		if err != nil {
			t.Fatal(err)
		}
		for _, cp := range out.CommonPrefixes {
			entries = append(entries, aws.ToString(cp.Prefix))
		}
		for _, o := range out.Contents {
			entries = append(entries, aws.ToString(o.Key))
		}
		if !aws.ToBool(out.IsTruncated) {
			break
		}
		marker = aws.ToString(out.NextMarker)
	}
	if fmt.Sprint(entries) != "[gamma/deep/ gamma/deeper/]" {
		t.Fatalf("v1 nested: %v", entries)
	}
	// minio-go's recursive listing (v2) with a prefix.
	n := 0
	for o := range mc.ListObjects(ctx, "lst", minio.ListObjectsOptions{Prefix: "beta/", Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		n++
	}
	if n != 700 {
		t.Fatalf("minio listing of beta/: %d", n)
	}
	// URL encoding of keys.
	enc, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("lst"), Prefix: aws.String("zeta"), EncodingType: types.EncodingTypeUrl})
	if err != nil || len(enc.Contents) != 1 || aws.ToString(enc.Contents[0].Key) != "zeta%20file%20with%20spaces%2Bplus" {
		t.Fatalf("encoding-type=url: %v %+v", err, enc)
	}
	if _, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("lst"), MaxKeys: aws.Int32(-1)}); awsCode(err) != "InvalidArgument" {
		t.Fatalf("negative max-keys: %v", err)
	}
}

func TestMetadataRoundTrip(t *testing.T) {
	t.Parallel()
	srv := startNode(t, t.TempDir())
	ctx := context.Background()
	c := awsClient(srv, testSecret, true)
	c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("meta")})
	expires := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, size := range []int{10, 2 << 20} {
		key := fmt.Sprint("m", size)
		_, err := c.PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String("meta"), Key: aws.String(key), Body: bytes.NewReader(randBytes(size)),
			ContentType: aws.String("text/csv"), CacheControl: aws.String("max-age=60"), ContentDisposition: aws.String(`attachment; filename="a.csv"`),
			ContentEncoding: aws.String("gzip"), ContentLanguage: aws.String("de"), Expires: aws.Time(expires),
			Metadata: map[string]string{"color": "blue", "multi-word": "hello world"},
		})
		if err != nil {
			t.Fatal(err)
		}
		h, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("meta"), Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(h.ContentType) != "text/csv" || aws.ToString(h.CacheControl) != "max-age=60" || aws.ToString(h.ContentDisposition) != `attachment; filename="a.csv"` ||
			aws.ToString(h.ContentEncoding) != "gzip" || aws.ToString(h.ContentLanguage) != "de" || h.Metadata["color"] != "blue" || h.Metadata["multi-word"] != "hello world" {
			t.Fatalf("metadata of %s: %+v %v", key, h, h.Metadata)
		}
		if h.LastModified == nil || time.Since(*h.LastModified) > time.Minute {
			t.Fatalf("last modified %v", h.LastModified)
		}
		// Response header overrides.
		g, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("meta"), Key: aws.String(key), ResponseContentType: aws.String("x/override")})
		if err != nil || aws.ToString(g.ContentType) != "x/override" {
			t.Fatalf("override: %v", err)
		}
		g.Body.Close()
	}
	big := strings.Repeat("v", 2100)
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("meta"), Key: aws.String("toolarge"), Body: strings.NewReader("x"), Metadata: map[string]string{"big": big}}); awsCode(err) != "MetadataTooLarge" {
		t.Fatalf("metadata too large: %v", err)
	}
	// Copy keeps metadata (COPY) or replaces it (REPLACE).
	mc := minioClient(t, srv, testSecret)
	if _, err := mc.CopyObject(ctx, minio.CopyDestOptions{Bucket: "meta", Object: "copy"}, minio.CopySrcOptions{Bucket: "meta", Object: "m2097152"}); err != nil {
		t.Fatal(err)
	}
	st, err := mc.StatObject(ctx, "meta", "copy", minio.StatObjectOptions{})
	if err != nil || st.Size != 2<<20 || st.ContentType != "text/csv" || st.UserMetadata["Color"] != "blue" {
		t.Fatalf("copy: %v %+v", err, st)
	}
}

func TestMultipartUpload(t *testing.T) {
	t.Parallel()
	srv := startNode(t, t.TempDir())
	ctx := context.Background()
	c := awsClient(srv, testSecret, true)
	c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("mpart")})
	cr, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("mpart"), Key: aws.String("big"), ContentType: aws.String("video/mp4")})
	if err != nil {
		t.Fatal(err)
	}
	parts := [][]byte{randBytes(5 << 20), randBytes(6<<20 + 1), randBytes(1234)}
	var done []types.CompletedPart
	for i, p := range parts {
		up, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("mpart"), Key: aws.String("big"), UploadId: cr.UploadId, PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(p)})
		if err != nil {
			t.Fatal(err)
		}
		done = append(done, types.CompletedPart{ETag: up.ETag, PartNumber: aws.Int32(int32(i + 1))})
	}
	lp, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String("mpart"), Key: aws.String("big"), UploadId: cr.UploadId})
	if err != nil || len(lp.Parts) != 3 || aws.ToInt64(lp.Parts[1].Size) != 6<<20+1 {
		t.Fatalf("list parts: %v %+v", err, lp)
	}
	lu, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String("mpart")})
	if err != nil || len(lu.Uploads) != 1 || aws.ToString(lu.Uploads[0].UploadId) != aws.ToString(cr.UploadId) {
		t.Fatalf("list uploads: %v %+v", err, lu)
	}
	// A too-small middle part is refused; nothing is half-applied.
	bad := []types.CompletedPart{done[2], done[0]}
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("mpart"), Key: aws.String("big"), UploadId: cr.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: bad}}); awsCode(err) != "InvalidPartOrder" {
		t.Fatalf("unordered: %v", err)
	}
	small := []types.CompletedPart{done[0], done[2], {ETag: done[1].ETag, PartNumber: aws.Int32(4)}}
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("mpart"), Key: aws.String("big"), UploadId: cr.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: small}}); awsCode(err) != "InvalidPart" {
		t.Fatalf("missing part: %v", err)
	}
	comp, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("mpart"), Key: aws.String("big"), UploadId: cr.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}})
	if err != nil {
		t.Fatal(err)
	}
	var md5s []byte
	for _, p := range parts {
		s := md5.Sum(p)
		md5s = append(md5s, s[:]...)
	}
	if want := fmt.Sprintf("\"%x-3\"", md5.Sum(md5s)); aws.ToString(comp.ETag) != want {
		t.Fatalf("multipart etag %s, want %s", aws.ToString(comp.ETag), want)
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("mpart"), Key: aws.String("big")})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(out.Body)
	if !bytes.Equal(got, bytes.Join(parts, nil)) || aws.ToString(out.ContentType) != "video/mp4" {
		t.Fatal("completed object differs")
	}
	if _, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("mpart"), Key: aws.String("big"), UploadId: cr.UploadId, PartNumber: aws.Int32(1), Body: strings.NewReader("x")}); awsCode(err) != "NoSuchUpload" {
		t.Fatalf("part after complete: %v", err)
	}
	// Abort.
	ab, _ := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("mpart"), Key: aws.String("gone")})
	c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("mpart"), Key: aws.String("gone"), UploadId: ab.UploadId, PartNumber: aws.Int32(1), Body: strings.NewReader("data")})
	if _, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String("mpart"), Key: aws.String("gone"), UploadId: ab.UploadId}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String("mpart"), Key: aws.String("gone"), UploadId: ab.UploadId}); awsCode(err) != "NoSuchUpload" {
		t.Fatalf("aborted upload: %v", err)
	}
	// minio-go switches to multipart on its own for a large object.
	mc := minioClient(t, srv, testSecret)
	data := randBytes(18 << 20)
	if _, err := mc.PutObject(ctx, "mpart", "auto", bytes.NewReader(data), -1, minio.PutObjectOptions{PartSize: 5 << 20}); err != nil {
		t.Fatal(err)
	}
	obj, _ := mc.GetObject(ctx, "mpart", "auto", minio.GetObjectOptions{})
	if got, _ := io.ReadAll(obj); !bytes.Equal(got, data) {
		t.Fatal("minio multipart object differs")
	}
}

func TestPresignedURLs(t *testing.T) {
	t.Parallel()
	srv := startNode(t, t.TempDir())
	ctx := context.Background()
	mc := minioClient(t, srv, testSecret)
	mc.MakeBucket(ctx, "pre", minio.MakeBucketOptions{})
	putURL, err := mc.PresignedPutObject(ctx, "pre", "up", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	body := randBytes(300 << 10)
	req, _ := http.NewRequest("PUT", putURL.String(), bytes.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("presigned PUT: %v %v", err, resp.Status)
	}
	resp.Body.Close()
	getURL, _ := mc.PresignedGetObject(ctx, "pre", "up", time.Minute, url.Values{})
	resp, err = http.Get(getURL.String())
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("presigned GET: %v", err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(got, body) {
		t.Fatal("presigned GET returned other bytes")
	}
	// Tampering with the URL breaks the signature.
	bad := strings.Replace(getURL.String(), "/up?", "/up2?", 1)
	resp, _ = http.Get(bad)
	if resp.StatusCode != 403 || !strings.Contains(readAllString(resp.Body), "<Code>SignatureDoesNotMatch</Code>") {
		t.Fatalf("tampered presigned URL: %d", resp.StatusCode)
	}
	// A presigned URL for another method does not work either.
	req, _ = http.NewRequest("DELETE", getURL.String(), nil)
	resp, _ = http.DefaultClient.Do(req)
	if resp.StatusCode != 403 {
		t.Fatalf("presigned GET used for DELETE: %d", resp.StatusCode)
	}
}

func readAllString(r io.ReadCloser) string {
	defer r.Close()
	b, _ := io.ReadAll(r)
	return string(b)
}

func TestAuthenticationFailures(t *testing.T) {
	t.Parallel()
	srv := startNode(t, t.TempDir())
	ctx := context.Background()
	good := awsClient(srv, testSecret, true)
	good.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("auth")})

	if _, err := awsClient(srv, "wrong-secret", true).ListBuckets(ctx, &s3.ListBucketsInput{}); awsCode(err) != "SignatureDoesNotMatch" {
		t.Fatalf("aws wrong secret: %v", err)
	}
	if _, err := minioClient(t, srv, "wrong-secret").ListBuckets(ctx); minioCode(err) != "SignatureDoesNotMatch" {
		t.Fatalf("minio wrong secret: %v", err)
	}
	// A PUT with a wrong secret stores nothing.
	if _, err := minioClient(t, srv, "wrong-secret").PutObject(ctx, "auth", "k", strings.NewReader("x"), 1, minio.PutObjectOptions{}); minioCode(err) != "SignatureDoesNotMatch" {
		t.Fatalf("minio put wrong secret: %v", err)
	}
	if _, err := good.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("auth"), Key: aws.String("k")}); err == nil {
		t.Fatal("object stored by a badly signed request")
	}
	other := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://" + srv.s3), UsePathStyle: true,
		Credentials: aws.NewCredentialsCache(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "NOSUCHKEY", SecretAccessKey: "x"}, nil
		}))})
	if _, err := other.ListBuckets(ctx, &s3.ListBucketsInput{}); awsCode(err) != "InvalidAccessKeyId" {
		t.Fatalf("unknown key: %v", err)
	}
	// Unsigned requests are refused with S3 XML.
	for _, path := range []string{"/", "/auth", "/auth/k"} {
		resp, err := http.Get("http://" + srv.s3 + path)
		if err != nil {
			t.Fatal(err)
		}
		body := readAllString(resp.Body)
		if resp.StatusCode != 403 || !strings.Contains(body, "<Code>AccessDenied</Code>") || resp.Header.Get("Content-Type") != "application/xml" {
			t.Fatalf("anonymous GET %s: %d %s", path, resp.StatusCode, body)
		}
	}
	// A body that does not match its signed payload hash is refused.
	mc := minioClient(t, srv, testSecret)
	_ = mc
	md := md5.Sum([]byte("other"))
	_, err := good.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("auth"), Key: aws.String("md5"), Body: strings.NewReader("data"), ContentMD5: aws.String(base64.StdEncoding.EncodeToString(md[:]))})
	if awsCode(err) != "BadDigest" {
		t.Fatalf("bad Content-MD5: %v", err)
	}
	if _, err := good.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("auth"), Key: aws.String("md5")}); err == nil {
		t.Fatal("object with bad Content-MD5 was stored")
	}
}

func TestVirtualHostedStyle(t *testing.T) {
	t.Parallel()
	srv := startNode(t, t.TempDir())
	ctx := context.Background()
	_, port, _ := net.SplitHostPort(srv.s3)
	// Resolve every *.localhost name to the server, as DNS would.
	dialer := &net.Dialer{}
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return dialer.DialContext(ctx, network, srv.s3)
	}}}
	c := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://localhost:" + port), HTTPClient: hc,
		Credentials: awsClient(srv, testSecret, false).Options().Credentials})
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("vhost")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("vhost"), Key: aws.String("dir/a b"), Body: strings.NewReader("hello")}); err != nil {
		t.Fatal(err)
	}
	// The same object is visible path-style.
	out, err := awsClient(srv, testSecret, true).GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("vhost"), Key: aws.String("dir/a b")})
	if err != nil || readAllString(out.Body) != "hello" {
		t.Fatalf("path-style read of a virtual-hosted write: %v", err)
	}
	l, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("vhost")})
	if err != nil || len(l.Contents) != 1 {
		t.Fatalf("virtual-hosted list: %v", err)
	}
}

func TestDeleteObjectsAndNotImplemented(t *testing.T) {
	t.Parallel()
	srv := startNode(t, t.TempDir())
	ctx := context.Background()
	c := awsClient(srv, testSecret, true)
	c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("multi")})
	var ids []types.ObjectIdentifier
	for i := 0; i < 10; i++ {
		k := fmt.Sprint("k", i)
		c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("multi"), Key: aws.String(k), Body: strings.NewReader(k)})
		ids = append(ids, types.ObjectIdentifier{Key: aws.String(k)})
	}
	ids = append(ids, types.ObjectIdentifier{Key: aws.String("never-existed")})
	out, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String("multi"), Delete: &types.Delete{Objects: ids}})
	if err != nil || len(out.Deleted) != 11 || len(out.Errors) != 0 {
		t.Fatalf("delete objects: %v %+v", err, out)
	}
	l, _ := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("multi")})
	if len(l.Contents) != 0 {
		t.Fatalf("%d objects left", len(l.Contents))
	}
	// Unimplemented features answer 501, never a fake success.
	if _, err := c.PutBucketLifecycleConfiguration(ctx, &s3.PutBucketLifecycleConfigurationInput{Bucket: aws.String("multi"), LifecycleConfiguration: &types.BucketLifecycleConfiguration{Rules: []types.LifecycleRule{{Status: types.ExpirationStatusEnabled, Filter: &types.LifecycleRuleFilter{Prefix: aws.String("")}, Expiration: &types.LifecycleExpiration{Days: aws.Int32(1)}}}}}); awsCode(err) != "NotImplemented" {
		t.Fatalf("PutBucketLifecycleConfiguration: %v", err)
	}
	v, err := c.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: aws.String("multi")})
	if err != nil || v.Status != "" {
		t.Fatalf("GetBucketVersioning: %v %+v", err, v)
	}
}

// zeros is an endless body that is never meant to be read far.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestEntityTooLargeIsRefusedBeforeTheBody(t *testing.T) {
	t.Parallel()
	srv := startNode(t, t.TempDir())
	c := newBenchClient(srv)
	if _, err := c.do("PUT", "/huge", nil); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("PUT", c.base+"/huge/k", io.LimitReader(zeros{}, 6<<30))
	req.ContentLength = 6 << 30
	req.Header.Set("Expect", "100-continue")
	req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	if err := c.signer.SignHTTP(context.Background(), c.creds, req, "UNSIGNED-PAYLOAD", "s3", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{ExpectContinueTimeout: 5 * time.Second}}
	start := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body := readAllString(resp.Body)
	if resp.StatusCode != 400 || !strings.Contains(body, "<Code>EntityTooLarge</Code>") {
		t.Fatalf("6 GiB PUT: %d %s", resp.StatusCode, body)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("refusal took %v: the body was read", time.Since(start))
	}
}

func TestUploadPartCopy(t *testing.T) {
	t.Parallel()
	srv := startNode(t, t.TempDir())
	ctx := context.Background()
	c := awsClient(srv, testSecret, true)
	c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("upc")})
	src := randBytes(12<<20 + 777)
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("upc"), Key: aws.String("src"), Body: bytes.NewReader(src)}); err != nil {
		t.Fatal(err)
	}
	cr, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("upc"), Key: aws.String("dst")})
	if err != nil {
		t.Fatal(err)
	}
	// Two copied ranges and one uploaded part: [5 MiB of src][6 MiB of src][tail].
	ranges := [][2]int{{0, 5<<20 - 1}, {5 << 20, 11<<20 - 1}}
	var done []types.CompletedPart
	for i, rg := range ranges {
		out, err := c.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: aws.String("upc"), Key: aws.String("dst"), UploadId: cr.UploadId,
			PartNumber: aws.Int32(int32(i + 1)), CopySource: aws.String("upc/src"), CopySourceRange: aws.String(fmt.Sprintf("bytes=%d-%d", rg[0], rg[1]))})
		if err != nil {
			t.Fatalf("part copy %d: %v", i+1, err)
		}
		done = append(done, types.CompletedPart{ETag: out.CopyPartResult.ETag, PartNumber: aws.Int32(int32(i + 1))})
	}
	up, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("upc"), Key: aws.String("dst"), UploadId: cr.UploadId, PartNumber: aws.Int32(3), Body: strings.NewReader("tail")})
	if err != nil {
		t.Fatal(err)
	}
	done = append(done, types.CompletedPart{ETag: up.ETag, PartNumber: aws.Int32(3)})
	for _, bad := range []string{"bytes=0-", fmt.Sprintf("bytes=0-%d", len(src)), "bytes=5-3", "items=0-1"} {
		_, err := c.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: aws.String("upc"), Key: aws.String("dst"), UploadId: cr.UploadId,
			PartNumber: aws.Int32(9), CopySource: aws.String("upc/src"), CopySourceRange: aws.String(bad)})
		if awsCode(err) != "InvalidArgument" {
			t.Errorf("copy range %q: %v", bad, err)
		}
	}
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("upc"), Key: aws.String("dst"), UploadId: cr.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}}); err != nil {
		t.Fatal(err)
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("upc"), Key: aws.String("dst")})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(out.Body)
	want := append(append([]byte(nil), src[:11<<20]...), "tail"...)
	if !bytes.Equal(got, want) {
		t.Fatalf("assembled object differs (%d bytes, want %d)", len(got), len(want))
	}
}

// TestExpectContinueOnEmptyBody: a PUT with no body that asks for
// "100 Continue" gets it, and the connection serves the next request at
// once (botocore stalled a whole read timeout here before).
func TestExpectContinueOnEmptyBody(t *testing.T) {
	t.Parallel()
	srv := startNode(t, t.TempDir())
	cli := newBenchClient(srv)
	if _, err := cli.do("PUT", "/expect", nil); err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", srv.s3)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	for i, size := range []int{0, 1, 0, 3} {
		req, _ := http.NewRequest("PUT", cli.base+fmt.Sprintf("/expect/k%d", i), bytes.NewReader(make([]byte, size)))
		req.Header.Set("Expect", "100-continue")
		req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
		cli.signer.SignHTTP(context.Background(), cli.creds, req, "UNSIGNED-PAYLOAD", "s3", "us-east-1", time.Now())
		if err := req.Write(conn); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if resp.StatusCode == http.StatusContinue {
			resp, err = http.ReadResponse(br, req)
			if err != nil {
				t.Fatalf("request %d after 100: %v", i, err)
			}
		} else if size == 0 {
			t.Fatalf("request %d with an empty body: got %d before any 100 Continue", i, resp.StatusCode)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
	}
}

func TestGetByPartNumber(t *testing.T) {
	t.Parallel()
	srv := startNode(t, t.TempDir())
	ctx := context.Background()
	c := awsClient(srv, testSecret, true)
	c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("parts")})
	cr, _ := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("parts"), Key: aws.String("mp")})
	parts := [][]byte{randBytes(5 << 20), randBytes(5<<20 + 3), randBytes(100)}
	var done []types.CompletedPart
	for i, p := range parts {
		up, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("parts"), Key: aws.String("mp"), UploadId: cr.UploadId, PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(p)})
		if err != nil {
			t.Fatal(err)
		}
		done = append(done, types.CompletedPart{ETag: up.ETag, PartNumber: aws.Int32(int32(i + 1))})
	}
	c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("parts"), Key: aws.String("mp"), UploadId: cr.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}})
	total := int64(len(parts[0]) + len(parts[1]) + len(parts[2]))
	var off int64
	for i, p := range parts {
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("parts"), Key: aws.String("mp"), PartNumber: aws.Int32(int32(i + 1))})
		if err != nil {
			t.Fatalf("part %d: %v", i+1, err)
		}
		got, _ := io.ReadAll(out.Body)
		wantRange := fmt.Sprintf("bytes %d-%d/%d", off, off+int64(len(p))-1, total)
		if !bytes.Equal(got, p) || aws.ToInt32(out.PartsCount) != 3 || aws.ToString(out.ContentRange) != wantRange {
			t.Fatalf("part %d: %d bytes, parts count %d, range %q", i+1, len(got), aws.ToInt32(out.PartsCount), aws.ToString(out.ContentRange))
		}
		h, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("parts"), Key: aws.String("mp"), PartNumber: aws.Int32(int32(i + 1))})
		if err != nil || aws.ToInt64(h.ContentLength) != int64(len(p)) {
			t.Fatalf("HEAD part %d: %v", i+1, err)
		}
		off += int64(len(p))
	}
	if _, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("parts"), Key: aws.String("mp"), PartNumber: aws.Int32(4)}); awsCode(err) != "InvalidPartNumber" {
		t.Fatalf("part 4 of 3: %v", err)
	}
	// A plain object is one part.
	c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("parts"), Key: aws.String("plain"), Body: strings.NewReader("whole")})
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("parts"), Key: aws.String("plain"), PartNumber: aws.Int32(1)})
	if err != nil || readAllString(out.Body) != "whole" {
		t.Fatalf("part 1 of a plain object: %v", err)
	}
	if _, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("parts"), Key: aws.String("plain"), PartNumber: aws.Int32(1), Range: aws.String("bytes=0-1")}); awsCode(err) != "InvalidRequest" {
		t.Fatalf("partNumber with Range: %v", err)
	}
}

func TestListMultipartUploadsPaging(t *testing.T) {
	t.Parallel()
	srv := startNode(t, t.TempDir())
	ctx := context.Background()
	c := awsClient(srv, testSecret, true)
	c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("ups")})
	var want []string
	for _, k := range []string{"a/1", "a/2", "b", "b", "c/x/1", "d"} {
		cr, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("ups"), Key: aws.String(k)})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, k+" "+aws.ToString(cr.UploadId))
	}
	sort.Strings(want)
	// Page through two at a time with the paginator.
	var got []string
	p := s3.NewListMultipartUploadsPaginator(c, &s3.ListMultipartUploadsInput{Bucket: aws.String("ups"), MaxUploads: aws.Int32(2)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range page.Uploads {
			got = append(got, aws.ToString(u.Key)+" "+aws.ToString(u.UploadId))
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("paged uploads:\n got %v\nwant %v", got, want)
	}
	// Delimiter folds keys into prefixes.
	out, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String("ups"), Delimiter: aws.String("/")})
	if err != nil {
		t.Fatal(err)
	}
	var prefixes, keys []string
	for _, cp := range out.CommonPrefixes {
		prefixes = append(prefixes, aws.ToString(cp.Prefix))
	}
	for _, u := range out.Uploads {
		keys = append(keys, aws.ToString(u.Key))
	}
	if fmt.Sprint(prefixes) != "[a/ c/]" || fmt.Sprint(keys) != "[b b d]" {
		t.Fatalf("delimiter: prefixes %v keys %v", prefixes, keys)
	}
}

// TestS3Limits: the limits real S3 enforces, each with S3's error.
func TestS3Limits(t *testing.T) {
	t.Parallel()
	srv := startNode(t, t.TempDir())
	ctx := context.Background()
	c := awsClient(srv, testSecret, true)
	c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("limits")})
	// Key length: 1024 bytes is fine, 1025 is not.
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("limits"), Key: aws.String(strings.Repeat("k", 1024)), Body: strings.NewReader("x")}); err != nil {
		t.Fatalf("1024-byte key: %v", err)
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("limits"), Key: aws.String(strings.Repeat("k", 1025)), Body: strings.NewReader("x")}); awsCode(err) != "KeyTooLongError" {
		t.Fatalf("1025-byte key: %v", err)
	}
	// User metadata: 2 KiB.
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("limits"), Key: aws.String("m"), Body: strings.NewReader("x"), Metadata: map[string]string{"a": strings.Repeat("v", 2048)}}); awsCode(err) != "MetadataTooLarge" {
		t.Fatalf("2 KiB+ metadata: %v", err)
	}
	// Part numbers: 1..10000.
	cr, _ := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("limits"), Key: aws.String("mp")})
	for _, n := range []int32{0, 10001} {
		if _, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("limits"), Key: aws.String("mp"), UploadId: cr.UploadId, PartNumber: aws.Int32(n), Body: strings.NewReader("x")}); awsCode(err) != "InvalidArgument" {
			t.Errorf("part number %d: %v", n, err)
		}
	}
	if _, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("limits"), Key: aws.String("mp"), UploadId: cr.UploadId, PartNumber: aws.Int32(10000), Body: strings.NewReader("x")}); err != nil {
		t.Fatalf("part number 10000: %v", err)
	}
	// Parts before the last must be 5 MiB.
	small, _ := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("limits"), Key: aws.String("mp"), UploadId: cr.UploadId, PartNumber: aws.Int32(1), Body: strings.NewReader("tiny")})
	last, _ := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("limits"), Key: aws.String("mp"), UploadId: cr.UploadId, PartNumber: aws.Int32(2), Body: strings.NewReader("end")})
	_, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("limits"), Key: aws.String("mp"), UploadId: cr.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{ETag: small.ETag, PartNumber: aws.Int32(1)}, {ETag: last.ETag, PartNumber: aws.Int32(2)}}}})
	if awsCode(err) != "EntityTooSmall" {
		t.Fatalf("small middle part: %v", err)
	}
	// Bucket names (the full rule table is in objectstore's tests).
	for _, name := range []string{"ab", "UPPER", "under_score", "-dash", "a..b", "192.168.5.4", strings.Repeat("x", 64)} {
		if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); awsCode(err) != "InvalidBucketName" {
			t.Errorf("bucket %q: %v", name, err)
		}
	}
}

func TestListingParamsCopyAcrossBucketsQuietDelete(t *testing.T) {
	t.Parallel()
	srv := startNode(t, t.TempDir())
	ctx := context.Background()
	c := awsClient(srv, testSecret, true)
	c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("src-bkt")})
	c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("dst-bkt")})
	for _, k := range []string{"a", "b", "c", "d"} {
		c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("src-bkt"), Key: aws.String(k), Body: strings.NewReader("body-" + k), ContentType: aws.String("text/x-" + k)})
	}
	// start-after and fetch-owner.
	out, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("src-bkt"), StartAfter: aws.String("b"), FetchOwner: aws.Bool(true)})
	if err != nil || len(out.Contents) != 2 || aws.ToString(out.Contents[0].Key) != "c" || out.Contents[0].Owner == nil || aws.ToString(out.Contents[0].Owner.DisplayName) != testUser || len(aws.ToString(out.Contents[0].Owner.ID)) != 64 {
		t.Fatalf("start-after/fetch-owner: %v %+v", err, out)
	}
	if out, _ := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("src-bkt")}); out.Contents[0].Owner != nil {
		t.Fatal("owner returned without fetch-owner")
	}
	// Copy across buckets keeps data and metadata.
	if _, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("dst-bkt"), Key: aws.String("copied"), CopySource: aws.String("src-bkt/c")}); err != nil {
		t.Fatal(err)
	}
	g, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("dst-bkt"), Key: aws.String("copied")})
	if err != nil || readAllString(g.Body) != "body-c" || aws.ToString(g.ContentType) != "text/x-c" {
		t.Fatalf("cross-bucket copy: %v", err)
	}
	if _, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("dst-bkt"), Key: aws.String("x"), CopySource: aws.String("src-bkt/missing")}); awsCode(err) != "NoSuchKey" {
		t.Fatalf("copy of a missing source: %v", err)
	}
	if _, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("src-bkt"), Key: aws.String("a"), CopySource: aws.String("src-bkt/a")}); awsCode(err) != "InvalidRequest" {
		t.Fatalf("copy onto itself without REPLACE: %v", err)
	}
	// Quiet multi-delete reports only errors.
	dr, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String("src-bkt"), Delete: &types.Delete{Quiet: aws.Bool(true),
		Objects: []types.ObjectIdentifier{{Key: aws.String("a")}, {Key: aws.String("b")}, {Key: aws.String("no-such")}}}})
	if err != nil || len(dr.Deleted) != 0 || len(dr.Errors) != 0 {
		t.Fatalf("quiet delete: %v %+v", err, dr)
	}
	if l, _ := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("src-bkt")}); len(l.Contents) != 2 {
		t.Fatalf("%d objects after quiet delete of 2 of 4", len(l.Contents))
	}
	// HEAD by version id in a versioned bucket.
	c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String("dst-bkt"), VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled}})
	p1, _ := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("dst-bkt"), Key: aws.String("v"), Body: strings.NewReader("12345")})
	c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("dst-bkt"), Key: aws.String("v"), Body: strings.NewReader("1")})
	h, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("dst-bkt"), Key: aws.String("v"), VersionId: p1.VersionId})
	if err != nil || aws.ToInt64(h.ContentLength) != 5 || aws.ToString(h.VersionId) != aws.ToString(p1.VersionId) {
		t.Fatalf("HEAD by version: %v %+v", err, h)
	}
}

// encoding-type=url on ListMultipartUploads: keys, which may hold
// characters XML cannot carry, come back URL-encoded.
func TestListMultipartUploadsURLEncoding(t *testing.T) {
	t.Parallel()
	srv := startNode(t, t.TempDir())
	ctx := context.Background()
	c := awsClient(srv, testSecret, true)
	c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("enc-ups")})
	key := "dir with space/\x01ctl+plus"
	if _, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("enc-ups"), Key: aws.String(key)}); err != nil {
		t.Fatal(err)
	}
	raw, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String("enc-ups"), EncodingType: types.EncodingTypeUrl})
	if err != nil || len(raw.Uploads) != 1 || raw.EncodingType != types.EncodingTypeUrl {
		t.Fatalf("list with encoding-type=url: %+v %v", raw, err)
	}
	if got := aws.ToString(raw.Uploads[0].Key); got != "dir%20with%20space/%01ctl%2Bplus" {
		t.Fatalf("encoded key %q", got)
	}
	if _, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String("enc-ups"), EncodingType: "base64"}); awsCode(err) != "InvalidArgument" {
		t.Fatalf("encoding-type=base64: %v", err)
	}
}
