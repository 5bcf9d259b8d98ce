package conformance

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

func TestBucketPolicy(t *testing.T) {
	t.Parallel()
	srv := startNode(t, t.TempDir())
	ctx := context.Background()
	c := awsClient(srv, testSecret, true)
	base := "http://" + srv.s3
	c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("site")})
	for _, k := range []string{"index.html", "private/keys.txt", "public/a.txt"} {
		c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("site"), Key: aws.String(k), Body: strings.NewReader("content of " + k)})
	}
	if _, err := c.GetBucketPolicy(ctx, &s3.GetBucketPolicyInput{Bucket: aws.String("site")}); awsCode(err) != "NoSuchBucketPolicy" {
		t.Fatalf("no policy yet: %v", err)
	}
	if status, _ := anonymous(t, "GET", base+"/site/index.html", ""); status != 403 {
		t.Fatalf("anonymous read before the policy: %d", status)
	}
	doc := `{"Version":"2012-10-17","Statement":[
	  {"Sid":"Read","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::site/*"},
	  {"Sid":"ListPublic","Effect":"Allow","Principal":{"AWS":"*"},"Action":"s3:ListBucket","Resource":"arn:aws:s3:::site","Condition":{"StringLike":{"s3:prefix":"public/*"}}},
	  {"Sid":"HidePrivate","Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::site/private/*"}]}`
	if _, err := c.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: aws.String("site"), Policy: aws.String(doc)}); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetBucketPolicy(ctx, &s3.GetBucketPolicyInput{Bucket: aws.String("site")})
	var parsed map[string]any
	if err != nil || json.Unmarshal([]byte(aws.ToString(got.Policy)), &parsed) != nil || parsed["Version"] != "2012-10-17" {
		t.Fatalf("GetBucketPolicy: %v %q", err, aws.ToString(got.Policy))
	}
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/site/index.html", 200},
		{"HEAD", "/site/public/a.txt", 200},
		{"GET", "/site/private/keys.txt", 403}, // explicit deny wins
		{"GET", "/site?list-type=2&prefix=public/", 200},
		{"GET", "/site?list-type=2", 403}, // prefix condition not met
		{"PUT", "/site/new.txt", 403},
		{"DELETE", "/site/index.html", 403},
		{"GET", "/site?policy", 403},
	} {
		if status, body := anonymous(t, tc.method, base+tc.path, ""); status != tc.status {
			t.Errorf("anonymous %s %s: %d, want %d (%s)", tc.method, tc.path, status, tc.status, body)
		}
	}
	// An explicit Deny binds the owner too, as in AWS; what it does not
	// deny, the owner may do.
	if _, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("site"), Key: aws.String("private/keys.txt")}); awsCode(err) != "AccessDenied" {
		t.Fatalf("owner read of a denied path: %v", err)
	}
	if out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("site"), Key: aws.String("public/a.txt")}); err != nil {
		t.Fatalf("owner read of an allowed path: %v", err)
	} else {
		readAllString(out.Body)
	}
	// minio-go speaks the same API.
	mc := minioClient(t, srv, testSecret)
	if p, err := mc.GetBucketPolicy(ctx, "site"); err != nil || !strings.Contains(p, "HidePrivate") {
		t.Fatalf("minio-go GetBucketPolicy: %v", err)
	}
	// Malformed policies are refused and the old one stays.
	for _, bad := range []string{`{"Version":"2012-10-17"}`, `not json`,
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::other-bucket/*"}]}`} {
		if _, err := c.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: aws.String("site"), Policy: aws.String(bad)}); awsCode(err) != "MalformedPolicy" {
			t.Errorf("policy %q: %v", bad, err)
		}
	}
	if status, _ := anonymous(t, "GET", base+"/site/index.html", ""); status != 200 {
		t.Fatalf("a refused policy replaced the old one: %d", status)
	}
	if _, err := c.DeleteBucketPolicy(ctx, &s3.DeleteBucketPolicyInput{Bucket: aws.String("site")}); err != nil {
		t.Fatal(err)
	}
	if status, _ := anonymous(t, "GET", base+"/site/index.html", ""); status != 403 {
		t.Fatalf("anonymous read after DeleteBucketPolicy: %d", status)
	}
}
