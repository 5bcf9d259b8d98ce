package conformance

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	tmtypes "github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/minio/crc64nvme"

	"github.com/strata-storage/strata/s3api/sigv4"
)

func TestChecksumsStoredAndReturned(t *testing.T) {
	t.Parallel()
	srv := startNode(t, t.TempDir())
	ctx := context.Background()
	c := awsClient(srv, testSecret, true)
	c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("sums")})
	data := randBytes(700 << 10)
	for _, alg := range []types.ChecksumAlgorithm{types.ChecksumAlgorithmCrc32, types.ChecksumAlgorithmCrc32c, types.ChecksumAlgorithmSha1, types.ChecksumAlgorithmSha256, types.ChecksumAlgorithmCrc64nvme, types.ChecksumAlgorithmSha512} {
		key := "obj-" + string(alg)
		put, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("sums"), Key: aws.String(key), Body: bytes.NewReader(data), ChecksumAlgorithm: alg})
		if err != nil {
			t.Fatalf("%s put: %v", alg, err)
		}
		sent := map[types.ChecksumAlgorithm]*string{types.ChecksumAlgorithmCrc32: put.ChecksumCRC32, types.ChecksumAlgorithmCrc32c: put.ChecksumCRC32C,
			types.ChecksumAlgorithmSha1: put.ChecksumSHA1, types.ChecksumAlgorithmSha256: put.ChecksumSHA256, types.ChecksumAlgorithmCrc64nvme: put.ChecksumCRC64NVME, types.ChecksumAlgorithmSha512: put.ChecksumSHA512}[alg]
		// The SDK validates the returned checksum against the body itself.
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("sums"), Key: aws.String(key), ChecksumMode: types.ChecksumModeEnabled})
		if err != nil {
			t.Fatalf("%s get: %v", alg, err)
		}
		got := readAllString(out.Body)
		returned := map[types.ChecksumAlgorithm]*string{types.ChecksumAlgorithmCrc32: out.ChecksumCRC32, types.ChecksumAlgorithmCrc32c: out.ChecksumCRC32C,
			types.ChecksumAlgorithmSha1: out.ChecksumSHA1, types.ChecksumAlgorithmSha256: out.ChecksumSHA256, types.ChecksumAlgorithmCrc64nvme: out.ChecksumCRC64NVME, types.ChecksumAlgorithmSha512: out.ChecksumSHA512}[alg]
		if got != string(data) || aws.ToString(returned) == "" || (sent != nil && aws.ToString(sent) != "" && aws.ToString(returned) != aws.ToString(sent)) {
			t.Fatalf("%s: returned checksum %q (sent %q)", alg, aws.ToString(returned), aws.ToString(sent))
		}
		// Not for ranges, and not unless asked for.
		rng, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("sums"), Key: aws.String(key), ChecksumMode: types.ChecksumModeEnabled, Range: aws.String("bytes=0-99")})
		if err != nil {
			t.Fatalf("%s ranged get with checksum mode: %v", alg, err)
		}
		readAllString(rng.Body)
		h, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("sums"), Key: aws.String(key)})
		if err != nil || h.ChecksumCRC32 != nil || h.ChecksumSHA256 != nil || h.ChecksumCRC32C != nil {
			t.Fatalf("%s: checksum returned without checksum mode: %v", alg, err)
		}
	}

	// A checksum that does not match the body is refused and nothing stored.
	cli := newBenchClient(srv)
	req, _ := http.NewRequest("PUT", cli.base+"/sums/bad", strings.NewReader("hello"))
	req.Header.Set("X-Amz-Checksum-Crc32", base64.StdEncoding.EncodeToString([]byte{1, 2, 3, 4}))
	req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	cli.signer.SignHTTP(ctx, cli.creds, req, "UNSIGNED-PAYLOAD", "s3", "us-east-1", time.Now())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if body := readAllString(resp.Body); resp.StatusCode != 400 || !strings.Contains(body, "<Code>BadDigest</Code>") {
		t.Fatalf("wrong crc32: %d %s", resp.StatusCode, body)
	}
	if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("sums"), Key: aws.String("bad")}); err == nil {
		t.Fatal("object with a wrong checksum was stored")
	}

	// The unsigned-payload trailer form current SDKs use over TLS.
	for _, tc := range []struct {
		name    string
		trailer string
		status  int
	}{
		{"good", base64crc32("hello world"), 200},
		{"bad", base64crc32("something else"), 400},
	} {
		body := "5\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:" + tc.trailer + "\r\n\r\n"
		req, _ := http.NewRequest("PUT", cli.base+"/sums/trailer-"+tc.name, strings.NewReader(body))
		req.Header.Set("X-Amz-Content-Sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
		req.Header.Set("X-Amz-Trailer", "x-amz-checksum-crc32")
		req.Header.Set("X-Amz-Decoded-Content-Length", "11")
		req.Header.Set("Content-Encoding", "aws-chunked")
		cli.signer.SignHTTP(ctx, cli.creds, req, "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "s3", "us-east-1", time.Now())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		msg := readAllString(resp.Body)
		if resp.StatusCode != tc.status {
			t.Fatalf("trailer %s: %d %s", tc.name, resp.StatusCode, msg)
		}
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("sums"), Key: aws.String("trailer-good"), ChecksumMode: types.ChecksumModeEnabled})
	if err != nil {
		t.Fatal(err)
	}
	if got := readAllString(out.Body); got != "hello world" || aws.ToString(out.ChecksumCRC32) != base64crc32("hello world") || aws.ToString(out.ContentEncoding) != "" {
		t.Fatalf("trailer object: %q crc %q encoding %q", got, aws.ToString(out.ChecksumCRC32), aws.ToString(out.ContentEncoding))
	}
}

func base64crc32(s string) string {
	v := crc32.ChecksumIEEE([]byte(s))
	return base64.StdEncoding.EncodeToString([]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func TestMultipartCompositeChecksum(t *testing.T) {
	t.Parallel()
	srv := startNode(t, t.TempDir())
	ctx := context.Background()
	c := awsClient(srv, testSecret, true)
	c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("comp")})
	cr, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("comp"), Key: aws.String("k"), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32})
	if err != nil {
		t.Fatal(err)
	}
	parts := [][]byte{randBytes(5 << 20), randBytes(777)}
	var done []types.CompletedPart
	var raw []byte
	for i, p := range parts {
		up, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("comp"), Key: aws.String("k"), UploadId: cr.UploadId, PartNumber: aws.Int32(int32(i + 1)),
			Body: bytes.NewReader(p), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32})
		if err != nil {
			t.Fatal(err)
		}
		want := base64crc32(string(p))
		if aws.ToString(up.ChecksumCRC32) != want {
			t.Fatalf("part %d checksum echoed %q, want %q", i+1, aws.ToString(up.ChecksumCRC32), want)
		}
		b, _ := base64.StdEncoding.DecodeString(want)
		raw = append(raw, b...)
		done = append(done, types.CompletedPart{ETag: up.ETag, PartNumber: aws.Int32(int32(i + 1)), ChecksumCRC32: up.ChecksumCRC32})
	}
	lp, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String("comp"), Key: aws.String("k"), UploadId: cr.UploadId})
	if err != nil || aws.ToString(lp.Parts[1].ChecksumCRC32) != base64crc32(string(parts[1])) {
		t.Fatalf("ListParts checksums: %v", err)
	}
	// A wrong per-part checksum in Complete is refused.
	bad := append([]types.CompletedPart(nil), done...)
	bad[1].ChecksumCRC32 = aws.String(base64crc32("other"))
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("comp"), Key: aws.String("k"), UploadId: cr.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: bad}}); awsCode(err) != "InvalidPart" {
		t.Fatalf("wrong part checksum: %v", err)
	}
	comp, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("comp"), Key: aws.String("k"), UploadId: cr.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}})
	if err != nil {
		t.Fatal(err)
	}
	v := crc32.ChecksumIEEE(raw)
	want := base64.StdEncoding.EncodeToString([]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}) + "-2"
	if aws.ToString(comp.ChecksumCRC32) != want || comp.ChecksumType != types.ChecksumTypeComposite {
		t.Fatalf("composite %q (%s), want %q", aws.ToString(comp.ChecksumCRC32), comp.ChecksumType, want)
	}
	h, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("comp"), Key: aws.String("k"), ChecksumMode: types.ChecksumModeEnabled})
	if err != nil || aws.ToString(h.ChecksumCRC32) != want {
		t.Fatalf("HEAD composite: %v %q", err, aws.ToString(h.ChecksumCRC32))
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("comp"), Key: aws.String("k"), ChecksumMode: types.ChecksumModeEnabled})
	if err != nil || readAllString(out.Body) != string(parts[0])+string(parts[1]) {
		t.Fatalf("GET with checksum mode on a composite: %v", err)
	}
	// CRC64NVME is full-object only, SHA256 composite only, as in S3.
	for _, bad := range []*s3.CreateMultipartUploadInput{
		{Bucket: aws.String("comp"), Key: aws.String("f"), ChecksumAlgorithm: types.ChecksumAlgorithmCrc64nvme, ChecksumType: types.ChecksumTypeComposite},
		{Bucket: aws.String("comp"), Key: aws.String("f"), ChecksumAlgorithm: types.ChecksumAlgorithmSha256, ChecksumType: types.ChecksumTypeFullObject},
	} {
		if _, err := c.CreateMultipartUpload(ctx, bad); awsCode(err) != "InvalidRequest" {
			t.Fatalf("%s %s multipart: %v", bad.ChecksumAlgorithm, bad.ChecksumType, err)
		}
	}
}

// Issue 17 must-show 2 (checksums): aws-sdk-go-v2's transfer manager
// uploads in parts with a FULL_OBJECT CRC64NVME (and CRC32C) checksum;
// Strata combines the parts' CRCs into the whole object's, checks the
// client's, and GET returns the CRC of the data; a wrong full-object value
// is refused with BadDigest.
func TestMultipartFullObjectChecksum(t *testing.T) {
	t.Parallel()
	srv := startNode(t, t.TempDir())
	ctx := context.Background()
	c := awsClient(srv, testSecret, true)
	c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("full")})
	data := randBytes(21<<20 + 12345) // three parts of 8 MiB and a short one
	tm := transfermanager.New(c, func(o *transfermanager.Options) { o.PartSizeBytes, o.MultipartUploadThreshold = 8<<20, 8<<20 })
	for _, alg := range []tmtypes.ChecksumAlgorithm{tmtypes.ChecksumAlgorithm("CRC64NVME"), tmtypes.ChecksumAlgorithm("CRC32C")} {
		key := "obj-" + string(alg)
		up, err := tm.UploadObject(ctx, &transfermanager.UploadObjectInput{Bucket: aws.String("full"), Key: aws.String(key), Body: bytes.NewReader(data),
			ChecksumAlgorithm: alg, ChecksumType: tmtypes.ChecksumTypeFullObject})
		if err != nil {
			t.Fatalf("%s upload: %v", alg, err)
		}
		var want string
		if alg == tmtypes.ChecksumAlgorithm("CRC64NVME") {
			v := crc64nvme.Checksum(data)
			want = base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint64(nil, v))
		} else {
			v := crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli))
			want = base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, v))
		}
		got := map[tmtypes.ChecksumAlgorithm]*string{tmtypes.ChecksumAlgorithm("CRC64NVME"): up.ChecksumCRC64NVME, tmtypes.ChecksumAlgorithm("CRC32C"): up.ChecksumCRC32C}[alg]
		if aws.ToString(got) != want || up.ChecksumType != tmtypes.ChecksumTypeFullObject || !strings.HasSuffix(aws.ToString(up.ETag), `-3"`) {
			t.Fatalf("%s: completed with %q (%s, etag %s), want %q", alg, aws.ToString(got), up.ChecksumType, aws.ToString(up.ETag), want)
		}
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("full"), Key: aws.String(key), ChecksumMode: types.ChecksumModeEnabled})
		if err != nil {
			t.Fatal(err)
		}
		// The SDK validates the full-object CRC of what it reads.
		if body := readAllString(out.Body); body != string(data) || out.ChecksumType != types.ChecksumTypeFullObject {
			t.Fatalf("%s: GET %d bytes, type %s", alg, len(body), out.ChecksumType)
		}
	}

	// GetObjectAttributes: ETag, checksum, parts (paged), class and size.
	attrs := []types.ObjectAttributes{types.ObjectAttributesEtag, types.ObjectAttributesChecksum, types.ObjectAttributesObjectParts, types.ObjectAttributesStorageClass, types.ObjectAttributesObjectSize}
	head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("full"), Key: aws.String("obj-CRC64NVME")})
	if err != nil {
		t.Fatal(err)
	}
	var seen []int32
	marker := ""
	for page := 0; page < 3; page++ {
		in := &s3.GetObjectAttributesInput{Bucket: aws.String("full"), Key: aws.String("obj-CRC64NVME"), ObjectAttributes: attrs, MaxParts: aws.Int32(2)}
		if marker != "" {
			in.PartNumberMarker = aws.String(marker)
		}
		at, err := c.GetObjectAttributes(ctx, in)
		if err != nil {
			t.Fatalf("GetObjectAttributes: %v", err)
		}
		if `"`+aws.ToString(at.ETag)+`"` != aws.ToString(head.ETag) || aws.ToInt64(at.ObjectSize) != int64(len(data)) || at.StorageClass != types.StorageClassStandard ||
			at.Checksum == nil || at.Checksum.ChecksumType != types.ChecksumTypeFullObject || aws.ToString(at.Checksum.ChecksumCRC64NVME) == "" ||
			at.ObjectParts == nil || aws.ToInt32(at.ObjectParts.TotalPartsCount) != 3 {
			t.Fatalf("attributes: etag %q head %q size %d class %s checksum %+v parts %+v", aws.ToString(at.ETag), aws.ToString(head.ETag), aws.ToInt64(at.ObjectSize), at.StorageClass, at.Checksum, at.ObjectParts)
		}
		for _, p := range at.ObjectParts.Parts {
			seen = append(seen, aws.ToInt32(p.PartNumber))
		}
		if !aws.ToBool(at.ObjectParts.IsTruncated) {
			break
		}
		marker = fmt.Sprint(aws.ToString(at.ObjectParts.NextPartNumberMarker))
	}
	if fmt.Sprint(seen) != "[1 2 3]" {
		t.Fatalf("parts over pages: %v", seen)
	}
	if _, err := c.GetObjectAttributes(ctx, &s3.GetObjectAttributesInput{Bucket: aws.String("full"), Key: aws.String("missing"), ObjectAttributes: attrs}); awsCode(err) != "NoSuchKey" {
		t.Fatalf("attributes of a missing key: %v", err)
	}

	// CopyObject computes the copy's checksum from the data: with the
	// algorithm asked for, else the source's.
	cp, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("full"), Key: aws.String("copy-sha256"), CopySource: aws.String("full/obj-CRC64NVME"), ChecksumAlgorithm: types.ChecksumAlgorithmSha256})
	sha := sha256.Sum256(data)
	if err != nil || aws.ToString(cp.CopyObjectResult.ChecksumSHA256) != base64.StdEncoding.EncodeToString(sha[:]) {
		t.Fatalf("copy with SHA256: %+v %v", cp, err)
	}
	for key, alg := range map[string]types.ChecksumAlgorithm{"copy-sha256": types.ChecksumAlgorithmSha256, "copy-same": types.ChecksumAlgorithmCrc64nvme} {
		if key == "copy-same" {
			if _, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("full"), Key: aws.String(key), CopySource: aws.String("full/obj-CRC64NVME")}); err != nil {
				t.Fatal(err)
			}
		}
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("full"), Key: aws.String(key), ChecksumMode: types.ChecksumModeEnabled})
		if err != nil {
			t.Fatal(err)
		}
		got := map[types.ChecksumAlgorithm]*string{types.ChecksumAlgorithmSha256: out.ChecksumSHA256, types.ChecksumAlgorithmCrc64nvme: out.ChecksumCRC64NVME}[alg]
		if body := readAllString(out.Body); body != string(data) || aws.ToString(got) == "" { // the SDK checked the value against the body
			t.Fatalf("%s: %s checksum %q", key, alg, aws.ToString(got))
		}
	}

	// By hand: a wrong full-object CRC64NVME on Complete is refused.
	cr, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("full"), Key: aws.String("bad"), ChecksumAlgorithm: types.ChecksumAlgorithmCrc64nvme})
	if err != nil || cr.ChecksumType != types.ChecksumTypeFullObject {
		t.Fatalf("create: %v %s", err, cr.ChecksumType)
	}
	var parts []types.CompletedPart
	for i, p := range [][]byte{data[:5<<20], data[5<<20 : 6<<20]} {
		up, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("full"), Key: aws.String("bad"), UploadId: cr.UploadId, PartNumber: aws.Int32(int32(i + 1)),
			Body: bytes.NewReader(p), ChecksumAlgorithm: types.ChecksumAlgorithmCrc64nvme})
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, types.CompletedPart{ETag: up.ETag, PartNumber: aws.Int32(int32(i + 1)), ChecksumCRC64NVME: up.ChecksumCRC64NVME})
	}
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("full"), Key: aws.String("bad"), UploadId: cr.UploadId,
		MpuObjectSize: aws.Int64(6<<20 + 1), MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}}); awsCode(err) != "InvalidRequest" {
		t.Fatalf("a wrong x-amz-mp-object-size: %v", err)
	}
	wrong := base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint64(nil, crc64nvme.Checksum(data[:6<<20])^1))
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("full"), Key: aws.String("bad"), UploadId: cr.UploadId,
		ChecksumCRC64NVME: aws.String(wrong), ChecksumType: types.ChecksumTypeFullObject, MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}}); awsCode(err) != "BadDigest" {
		t.Fatalf("a wrong full-object checksum: %v", err)
	}
	if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("full"), Key: aws.String("bad")}); awsCode(err) != "NotFound" {
		t.Fatalf("the refused upload completed: %v", err)
	}
}

// A checksum sent with a small request body (tagging, ACL, DeleteObjects
// documents) is verified as on a PUT: a wrong one is BadDigest and changes
// nothing.
func TestChecksumsOfSmallBodiesAreVerified(t *testing.T) {
	t.Parallel()
	srv := startNode(t, t.TempDir())
	ctx := context.Background()
	c := awsClient(srv, testSecret, true)
	c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("small-sums")})
	c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("small-sums"), Key: aws.String("k"), Body: strings.NewReader("v")})
	doc := []byte(`<Tagging><TagSet><Tag><Key>a</Key><Value>b</Value></Tag></TagSet></Tagging>`)
	send := func(sum string) int {
		req, _ := http.NewRequest("PUT", "http://"+srv.s3+"/small-sums/k?tagging", bytes.NewReader(doc))
		req.Header.Set("X-Amz-Checksum-Crc32", sum)
		req.Header.Set("X-Amz-Sdk-Checksum-Algorithm", "CRC32")
		if err := sigv4.Sign(req, testUser, testSecret, "us-east-1", doc, time.Now()); err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if status := send(base64crc32("something else")); status != 400 {
		t.Fatalf("tagging with a wrong CRC32: %d", status)
	}
	if got, _ := c.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: aws.String("small-sums"), Key: aws.String("k")}); len(got.TagSet) != 0 {
		t.Fatal("a body that failed its checksum was applied")
	}
	if status := send(base64crc32(string(doc))); status != 200 {
		t.Fatalf("tagging with the right CRC32: %d", status)
	}
	// The SDK's own DeleteObjects (it sends a checksum of the document).
	if _, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String("small-sums"), Delete: &types.Delete{Objects: []types.ObjectIdentifier{{Key: aws.String("k")}}}}); err != nil {
		t.Fatalf("DeleteObjects: %v", err)
	}
}
