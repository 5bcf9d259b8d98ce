package conformance

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

func anonymous(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, readAllString(resp.Body)
}

func TestCannedACLsAndAnonymousAccess(t *testing.T) {
	t.Parallel()
	srv := startNode(t, t.TempDir())
	ctx := context.Background()
	c := awsClient(srv, testSecret, true)
	base := "http://" + srv.s3
	c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("private")})
	c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("private"), Key: aws.String("secret"), Body: strings.NewReader("s3cr3t")})
	for _, path := range []string{"/private", "/private/secret", "/private?list-type=2", "/"} {
		if status, body := anonymous(t, "GET", base+path, ""); status != 403 || !strings.Contains(body, "AccessDenied") {
			t.Fatalf("anonymous GET %s on a private bucket: %d %s", path, status, body)
		}
	}
	// A public-read bucket can be listed; its objects are read only if they
	// are public-read themselves.
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("public"), ACL: types.BucketCannedACLPublicRead}); err != nil {
		t.Fatal(err)
	}
	c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("public"), Key: aws.String("open.txt"), Body: strings.NewReader("hello world"), ACL: types.ObjectCannedACLPublicRead})
	c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("public"), Key: aws.String("closed.txt"), Body: strings.NewReader("no")})
	if status, body := anonymous(t, "GET", base+"/public?list-type=2", ""); status != 200 || !strings.Contains(body, "<Key>open.txt</Key>") {
		t.Fatalf("anonymous list of a public-read bucket: %d %s", status, body)
	}
	if status, body := anonymous(t, "GET", base+"/public/open.txt", ""); status != 200 || body != "hello world" {
		t.Fatalf("anonymous GET of a public-read object: %d %s", status, body)
	}
	if status, _ := anonymous(t, "GET", base+"/public/closed.txt", ""); status != 403 {
		t.Fatalf("anonymous GET of a private object in a public bucket: %d", status)
	}
	if status, _ := anonymous(t, "PUT", base+"/public/new.txt", "x"); status != 403 {
		t.Fatalf("anonymous PUT to a public-read bucket: %d", status)
	}
	if status, _ := anonymous(t, "DELETE", base+"/public/open.txt", ""); status != 403 {
		t.Fatalf("anonymous DELETE on a public-read bucket: %d", status)
	}
	// PutObjectAcl opens (and closes) an object.
	c.PutObjectAcl(ctx, &s3.PutObjectAclInput{Bucket: aws.String("public"), Key: aws.String("closed.txt"), ACL: types.ObjectCannedACLPublicRead})
	if status, body := anonymous(t, "GET", base+"/public/closed.txt", ""); status != 200 || body != "no" {
		t.Fatalf("after PutObjectAcl public-read: %d %s", status, body)
	}
	c.PutObjectAcl(ctx, &s3.PutObjectAclInput{Bucket: aws.String("public"), Key: aws.String("closed.txt"), ACL: types.ObjectCannedACLPrivate})
	if status, _ := anonymous(t, "GET", base+"/public/closed.txt", ""); status != 403 {
		t.Fatalf("after PutObjectAcl private: %d", status)
	}
	// The ACLs are reported as grants.
	acl, err := c.GetBucketAcl(ctx, &s3.GetBucketAclInput{Bucket: aws.String("public")})
	if err != nil || len(acl.Grants) != 2 || acl.Grants[1].Grantee.Type != types.TypeGroup || acl.Grants[1].Permission != types.PermissionRead ||
		!strings.HasSuffix(aws.ToString(acl.Grants[1].Grantee.URI), "AllUsers") || aws.ToString(acl.Owner.DisplayName) != testUser || len(aws.ToString(acl.Owner.ID)) != 64 {
		t.Fatalf("GetBucketAcl: %v %+v", err, acl)
	}
	oacl, err := c.GetObjectAcl(ctx, &s3.GetObjectAclInput{Bucket: aws.String("public"), Key: aws.String("open.txt")})
	if err != nil || len(oacl.Grants) != 2 {
		t.Fatalf("GetObjectAcl: %v %+v", err, oacl)
	}
	if h, _ := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("public"), Key: aws.String("open.txt")}); h != nil && h.Metadata["acl"] != "" {
		t.Fatal("the stored ACL leaks as metadata")
	}
	// public-read-write lets anonymous callers write.
	c.PutBucketAcl(ctx, &s3.PutBucketAclInput{Bucket: aws.String("public"), ACL: types.BucketCannedACLPublicReadWrite})
	if status, body := anonymous(t, "PUT", base+"/public/dropbox.txt", "dropped"); status != 200 {
		t.Fatalf("anonymous PUT to a public-read-write bucket: %d %s", status, body)
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("public"), Key: aws.String("dropbox.txt")})
	if err != nil || readAllString(out.Body) != "dropped" {
		t.Fatalf("reading the anonymous upload: %v", err)
	}
	// A grant header to AllUsers works as public-read does.
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("public"), Key: aws.String("g"), Body: strings.NewReader("x"), GrantRead: aws.String("uri=" + "http://acs.amazonaws.com/groups/global/AllUsers")}); err != nil {
		t.Fatalf("x-amz-grant-read: %v", err)
	}
	if status, body := anonymous(t, "GET", base+"/public/g", ""); status != 200 || body != "x" {
		t.Fatalf("anonymous GET of an object granted to AllUsers: %d %s", status, body)
	}
	if _, err := c.PutBucketAcl(ctx, &s3.PutBucketAclInput{Bucket: aws.String("public"), ACL: "everyone-rw"}); awsCode(err) != "InvalidArgument" {
		t.Fatalf("unknown canned ACL: %v", err)
	}
}
