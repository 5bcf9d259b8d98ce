package conformance

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/minio/minio-go/v7"
)

func TestVersioningRoundTrip(t *testing.T) {
	t.Parallel()
	srv := startNode(t, t.TempDir())
	ctx := context.Background()
	c := awsClient(srv, testSecret, true)
	c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("vers")})
	get := func(key, vid string) (string, error) {
		in := &s3.GetObjectInput{Bucket: aws.String("vers"), Key: aws.String(key)}
		if vid != "" {
			in.VersionId = aws.String(vid)
		}
		out, err := c.GetObject(ctx, in)
		if err != nil {
			return "", err
		}
		return readAllString(out.Body), nil
	}
	// An object from before versioning is the null version.
	c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("vers"), Key: aws.String("doc"), Body: strings.NewReader("v0")})
	if _, err := c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String("vers"),
		VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled}}); err != nil {
		t.Fatal(err)
	}
	if v, _ := c.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: aws.String("vers")}); v.Status != types.BucketVersioningStatusEnabled {
		t.Fatalf("status %q", v.Status)
	}
	var ids []string
	for i := 1; i <= 3; i++ {
		body := bytes.Repeat([]byte(fmt.Sprint(i)), 200000*i) // streamed versions
		out, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("vers"), Key: aws.String("doc"), Body: bytes.NewReader(body)})
		if err != nil || aws.ToString(out.VersionId) == "" {
			t.Fatalf("versioned put %d: %v %q", i, err, aws.ToString(out.VersionId))
		}
		ids = append(ids, aws.ToString(out.VersionId))
	}
	for i, id := range ids {
		got, err := get("doc", id)
		if err != nil || len(got) != 200000*(i+1) || got[0] != byte('1'+i) {
			t.Fatalf("version %d by id: %v", i+1, err)
		}
	}
	if got, _ := get("doc", "null"); got != "v0" {
		t.Fatalf("null version: %q", got)
	}
	// Paged listing of versions, newest first.
	var listed []string
	p := s3.NewListObjectVersionsPaginator(c, &s3.ListObjectVersionsInput{Bucket: aws.String("vers"), MaxKeys: aws.Int32(2)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range page.Versions {
			listed = append(listed, fmt.Sprintf("%s:%v", aws.ToString(v.VersionId), aws.ToBool(v.IsLatest)))
		}
	}
	want := fmt.Sprintf("[%s:true %s:false %s:false null:false]", ids[2], ids[1], ids[0])
	if fmt.Sprint(listed) != want {
		t.Fatalf("versions %v, want %s", listed, want)
	}
	// Delete: a marker hides the object; reads say so.
	del, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("vers"), Key: aws.String("doc")})
	if err != nil || !aws.ToBool(del.DeleteMarker) || aws.ToString(del.VersionId) == "" {
		t.Fatalf("delete: %v %+v", err, del)
	}
	if _, err := get("doc", ""); awsCode(err) != "NoSuchKey" {
		t.Fatalf("GET after delete: %v", err)
	}
	if _, err := get("doc", aws.ToString(del.VersionId)); httpStatus(err) != 405 {
		t.Fatalf("GET of a delete marker by id: %v", err)
	}
	if l, _ := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("vers")}); len(l.Contents) != 0 {
		t.Fatal("deleted key listed")
	}
	lv, _ := c.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String("vers")})
	if len(lv.DeleteMarkers) != 1 || !aws.ToBool(lv.DeleteMarkers[0].IsLatest) || len(lv.Versions) != 4 {
		t.Fatalf("after delete: %d markers, %d versions", len(lv.DeleteMarkers), len(lv.Versions))
	}
	if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("vers")}); awsCode(err) != "BucketNotEmpty" {
		t.Fatalf("delete bucket with versions: %v", err)
	}
	// Undelete by removing the marker; restore an old version by copying it.
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("vers"), Key: aws.String("doc"), VersionId: del.VersionId}); err != nil {
		t.Fatal(err)
	}
	if got, _ := get("doc", ""); len(got) != 600000 {
		t.Fatal("marker removal did not bring the object back")
	}
	cp, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("vers"), Key: aws.String("doc"), CopySource: aws.String("vers/doc?versionId=" + ids[0])})
	if err != nil || aws.ToString(cp.CopySourceVersionId) != ids[0] {
		t.Fatalf("copy of an old version: %v", err)
	}
	if got, _ := get("doc", ""); len(got) != 200000 || got[0] != '1' {
		t.Fatal("restored version is not current")
	}
	// minio-go sees versions too.
	mc := minioClient(t, srv, testSecret)
	n := 0
	for o := range mc.ListObjects(ctx, "vers", minio.ListObjectsOptions{WithVersions: true, Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		n++
	}
	if n != 5 {
		t.Fatalf("minio-go lists %d versions, want 5", n)
	}
	// Remove every version with DeleteObjects, then the bucket.
	lv, _ = c.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String("vers")})
	var objs []types.ObjectIdentifier
	for _, v := range lv.Versions {
		objs = append(objs, types.ObjectIdentifier{Key: v.Key, VersionId: v.VersionId})
	}
	for _, m := range lv.DeleteMarkers {
		objs = append(objs, types.ObjectIdentifier{Key: m.Key, VersionId: m.VersionId})
	}
	dr, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String("vers"), Delete: &types.Delete{Objects: objs}})
	if err != nil || len(dr.Errors) != 0 || len(dr.Deleted) != len(objs) {
		t.Fatalf("delete all versions: %v %+v", err, dr)
	}
	if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("vers")}); err != nil {
		t.Fatalf("delete emptied bucket: %v", err)
	}
	// Suspended buckets write null versions.
	c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("susp")})
	c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String("susp"), VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusSuspended}})
	out, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("susp"), Key: aws.String("k"), Body: strings.NewReader("x")})
	if err != nil || aws.ToString(out.VersionId) != "null" {
		t.Fatalf("suspended put: %v %q", err, aws.ToString(out.VersionId))
	}
	if _, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("susp"), Key: aws.String("k"), VersionId: aws.String("0000000000000000ffffffffffffffff")}); awsCode(err) != "NoSuchVersion" {
		t.Fatalf("unknown version: %v", err)
	}
}

// Issue 17 must-show 2 (versions): minio-go sees each key's versions and
// delete markers together, newest first, so the first entry of a key is its
// latest; the order holds across pages of two.
func TestListObjectVersionsInterleavesMarkers(t *testing.T) {
	t.Parallel()
	srv := startNode(t, t.TempDir())
	ctx := context.Background()
	mc := minioClient(t, srv, testSecret)
	if err := mc.MakeBucket(ctx, "order", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := mc.EnableVersioning(ctx, "order"); err != nil {
		t.Fatal(err)
	}
	var want []string
	put := func(key, data string) {
		info, err := mc.PutObject(ctx, "order", key, strings.NewReader(data), int64(len(data)), minio.PutObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want = append([]string{key + ":v:" + info.VersionID}, want...)
	}
	del := func(key string) {
		c := awsClient(srv, testSecret, true)
		out, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("order"), Key: aws.String(key)})
		if err != nil || !aws.ToBool(out.DeleteMarker) {
			t.Fatalf("delete %s: %v", key, err)
		}
		want = append([]string{key + ":m:" + aws.ToString(out.VersionId)}, want...)
	}
	// k: v1, marker, v2, v3, marker. Newest first: m2 v3 v2 m1 v1.
	put("k", "1")
	del("k")
	put("k", "2")
	put("k", "3")
	del("k")
	wantK := want
	want = nil
	put("z", "only")
	wantAll := append(wantK, want...)

	for _, pageSize := range []int{0, 2} {
		var got []string
		latest := map[string]string{}
		for o := range mc.ListObjects(ctx, "order", minio.ListObjectsOptions{WithVersions: true, Recursive: true, MaxKeys: pageSize}) {
			if o.Err != nil {
				t.Fatal(o.Err)
			}
			kind := "v"
			if o.IsDeleteMarker {
				kind = "m"
			}
			got = append(got, o.Key+":"+kind+":"+o.VersionID)
			if o.IsLatest {
				if _, dup := latest[o.Key]; dup {
					t.Fatalf("two latest entries for %s", o.Key)
				}
				latest[o.Key] = kind + ":" + o.VersionID
			}
		}
		if strings.Join(got, " ") != strings.Join(wantAll, " ") {
			t.Fatalf("page size %d: versions\n got %v\nwant %v", pageSize, got, wantAll)
		}
		if latest["k"] != strings.TrimPrefix(wantK[0], "k:") {
			t.Fatalf("page size %d: latest of k is %s, want %s", pageSize, latest["k"], wantK[0])
		}
	}
}

// Issue 17 item 4: tags and ACLs of a noncurrent version, by versionId,
// without touching the current one.
func TestTagsAndACLsOfNoncurrentVersions(t *testing.T) {
	t.Parallel()
	srv := startNode(t, t.TempDir())
	ctx := context.Background()
	c := awsClient(srv, testSecret, true)
	c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("old-versions")})
	c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String("old-versions"),
		VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled}})
	var ids []string
	for _, body := range []string{"one", "two"} {
		out, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("old-versions"), Key: aws.String("k"), Body: strings.NewReader(body)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, aws.ToString(out.VersionId))
	}
	old := aws.String(ids[0])
	if _, err := c.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{Bucket: aws.String("old-versions"), Key: aws.String("k"), VersionId: old,
		Tagging: &types.Tagging{TagSet: []types.Tag{{Key: aws.String("era"), Value: aws.String("first")}}}}); err != nil {
		t.Fatalf("tagging the old version: %v", err)
	}
	if got, err := c.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: aws.String("old-versions"), Key: aws.String("k"), VersionId: old}); err != nil || len(got.TagSet) != 1 || aws.ToString(got.VersionId) != ids[0] {
		t.Fatalf("the old version's tags: %+v %v", got, err)
	}
	if got, err := c.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: aws.String("old-versions"), Key: aws.String("k")}); err != nil || len(got.TagSet) != 0 {
		t.Fatalf("the current version's tags: %+v %v", got, err)
	}
	if _, err := c.PutObjectAcl(ctx, &s3.PutObjectAclInput{Bucket: aws.String("old-versions"), Key: aws.String("k"), VersionId: old, ACL: types.ObjectCannedACLPublicRead}); err != nil {
		t.Fatalf("ACL of the old version: %v", err)
	}
	base := "http://" + srv.s3 + "/old-versions/k"
	if status, body := anonymous(t, "GET", base+"?versionId="+ids[0], ""); status != 200 || body != "one" {
		t.Fatalf("anonymous read of the public old version: %d %s", status, body)
	}
	if status, _ := anonymous(t, "GET", base, ""); status != 403 {
		t.Fatalf("anonymous read of the private current version: %d", status)
	}
	if acl, err := c.GetObjectAcl(ctx, &s3.GetObjectAclInput{Bucket: aws.String("old-versions"), Key: aws.String("k"), VersionId: old}); err != nil || len(acl.Grants) != 2 {
		t.Fatalf("the old version's ACL: %+v %v", acl, err)
	}
	if _, err := c.DeleteObjectTagging(ctx, &s3.DeleteObjectTaggingInput{Bucket: aws.String("old-versions"), Key: aws.String("k"), VersionId: old}); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: aws.String("old-versions"), Key: aws.String("k"), VersionId: old}); len(got.TagSet) != 0 {
		t.Fatal("the old version's tags survived DeleteObjectTagging")
	}
	if _, err := c.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{Bucket: aws.String("old-versions"), Key: aws.String("k"), VersionId: aws.String("nosuchversion0000000000000000000"),
		Tagging: &types.Tagging{TagSet: []types.Tag{}}}); awsCode(err) != "NoSuchVersion" && awsCode(err) != "InvalidArgument" {
		t.Fatalf("tagging a version that does not exist: %v", err)
	}
}
