package conformance

import (
	"context"
	"crypto/tls"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/minio/minio-go/v7"

	"github.com/strata-storage/strata/node"
)

// Issue 17 must-show 2 (policies): a condition on the object's tags and
// one on the tags a request sets; an explicit Deny binds the owner and
// root, who can still replace the policy; aws:SecureTransport tells TLS
// from plain HTTP.
func TestBucketPolicyConditions(t *testing.T) {
	t.Parallel()
	srv := startNode(t, t.TempDir())
	ctx := context.Background()
	root := awsClient(srv, testSecret, true)
	bob, _ := userClient(t, srv, "bob")
	root.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("tagged")})
	for key, class := range map[string]string{"pub": "public", "sec": "secret"} {
		if _, err := root.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("tagged"), Key: aws.String(key), Body: strings.NewReader(key), Tagging: aws.String("class=" + class)}); err != nil {
			t.Fatal(err)
		}
	}
	put := func(doc string) {
		t.Helper()
		if _, err := root.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: aws.String("tagged"), Policy: aws.String(doc)}); err != nil {
			t.Fatalf("policy: %v\n%s", err, doc)
		}
	}
	put(`{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::tagged/*","Condition":{"StringEquals":{"s3:ExistingObjectTag/class":"public"}}},
		{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam:::user/bob"},"Action":"s3:PutObject","Resource":"arn:aws:s3:::tagged/bob/*",
		 "Condition":{"StringEquals":{"s3:RequestObjectTag/project":"apollo"},"ForAllValues:StringEquals":{"s3:RequestObjectTagKeys":["project","stage"]}}}]}`)
	for key, want := range map[string]int{"pub": 200, "sec": 403} {
		if status, _ := anonymous(t, "GET", "http://"+srv.s3+"/tagged/"+key, ""); status != want {
			t.Fatalf("anonymous GET of %s: %d, want %d", key, status, want)
		}
	}
	for _, c := range []struct {
		tags string
		ok   bool
	}{{"project=apollo", true}, {"project=apollo&stage=test", true}, {"project=gemini", false}, {"", false}, {"project=apollo&cost=1", false}} {
		_, err := bob.PutObject(ctx, "tagged", "bob/k", strings.NewReader("v"), 1, minio.PutObjectOptions{UserTags: queryTags(c.tags)})
		if (err == nil) != c.ok {
			t.Fatalf("bob's PUT with tags %q: %v, want allowed %v", c.tags, err, c.ok)
		}
	}

	// A Deny binds root and the owner, except on the policy itself.
	put(`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"s3:DeleteObject","Resource":"arn:aws:s3:::tagged/*"}]}`)
	if _, err := root.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("tagged"), Key: aws.String("pub")}); awsCode(err) != "AccessDenied" {
		t.Fatalf("root's delete under a Deny: %v", err)
	}
	put(`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":["arn:aws:s3:::tagged","arn:aws:s3:::tagged/*"]}]}`)
	if _, err := root.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("tagged"), Key: aws.String("pub")}); awsCode(err) != "AccessDenied" {
		t.Fatalf("root's read under a Deny of everything: %v", err)
	}
	if _, err := root.DeleteBucketPolicy(ctx, &s3.DeleteBucketPolicyInput{Bucket: aws.String("tagged")}); err != nil {
		t.Fatalf("the owner locked out of its own policy: %v", err)
	}
	if _, err := root.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("tagged"), Key: aws.String("pub")}); err != nil {
		t.Fatalf("delete once the policy is gone: %v", err)
	}

	// aws:SecureTransport: the same policy on a TLS node and a plain one.
	cert, key, pool := selfSigned(t)
	tlsNode := startNodeWith(t, t.TempDir(), func(c *node.Config) { c.TLSCert, c.TLSKey, c.NBDAddr = cert, key, "off" })
	secure := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String("https://" + tlsNode.s3), UsePathStyle: true,
		Credentials: awscreds.NewStaticCredentialsProvider(testUser, testSecret, ""),
		HTTPClient:  &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}})
	onlyTLS := `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":["arn:aws:s3:::BUCKET","arn:aws:s3:::BUCKET/*"],"Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}`
	for _, c := range []struct {
		name   string
		client *s3.Client
		ok     bool
	}{{"TLS", secure, true}, {"plain HTTP", root, false}} {
		b := "only-tls"
		if _, err := c.client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.client.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: aws.String(b), Policy: aws.String(strings.ReplaceAll(onlyTLS, "BUCKET", b))}); err != nil {
			t.Fatalf("%s: policy: %v", c.name, err)
		}
		_, err := c.client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(b), Key: aws.String("k"), Body: strings.NewReader("v")})
		if (err == nil) != c.ok {
			t.Fatalf("%s: PUT under an only-TLS policy: %v", c.name, err)
		}
		if !c.ok && awsCode(err) != "AccessDenied" {
			t.Fatalf("%s: %v", c.name, err)
		}
		if _, err := c.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(b)}); (err == nil) != c.ok {
			t.Fatalf("%s: LIST under an only-TLS policy: %v", c.name, err)
		}
	}
}

// queryTags reads "k=v&k2=v2".
func queryTags(s string) map[string]string {
	m := map[string]string{}
	for _, kv := range strings.Split(s, "&") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}
