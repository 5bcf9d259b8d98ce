package conformance

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

func TestCORS(t *testing.T) {
	t.Parallel()
	srv := startNode(t, t.TempDir())
	ctx := context.Background()
	c := awsClient(srv, testSecret, true)
	c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("web")})
	c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("web"), Key: aws.String("app.js"), Body: strings.NewReader("console.log(1)")})

	preflight := func(origin, method, headers string) *http.Response {
		req, _ := http.NewRequest("OPTIONS", "http://"+srv.s3+"/web/app.js", nil)
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		if method != "" {
			req.Header.Set("Access-Control-Request-Method", method)
		}
		if headers != "" {
			req.Header.Set("Access-Control-Request-Headers", headers)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		readAllString(resp.Body)
		return resp
	}
	// No configuration yet: preflights are refused.
	if resp := preflight("https://app.example", "GET", ""); resp.StatusCode != 403 {
		t.Fatalf("preflight without CORS config: %d", resp.StatusCode)
	}
	if _, err := c.GetBucketCors(ctx, &s3.GetBucketCorsInput{Bucket: aws.String("web")}); awsCode(err) != "NoSuchCORSConfiguration" {
		t.Fatalf("GetBucketCors without config: %v", err)
	}
	_, err := c.PutBucketCors(ctx, &s3.PutBucketCorsInput{Bucket: aws.String("web"), CORSConfiguration: &types.CORSConfiguration{CORSRules: []types.CORSRule{
		{AllowedOrigins: []string{"https://*.example"}, AllowedMethods: []string{"GET", "PUT"}, AllowedHeaders: []string{"x-amz-*", "content-type"}, ExposeHeaders: []string{"ETag"}, MaxAgeSeconds: aws.Int32(600)},
		{AllowedOrigins: []string{"*"}, AllowedMethods: []string{"HEAD"}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.GetBucketCors(ctx, &s3.GetBucketCorsInput{Bucket: aws.String("web")})
	if err != nil || len(got.CORSRules) != 2 || got.CORSRules[0].AllowedOrigins[0] != "https://*.example" || aws.ToInt32(got.CORSRules[0].MaxAgeSeconds) != 600 {
		t.Fatalf("GetBucketCors: %v %+v", err, got)
	}
	cases := []struct {
		origin, method, headers string
		status                  int
		allowOrigin             string
	}{
		{"https://app.example", "GET", "", 200, "https://app.example"},
		{"https://app.example", "PUT", "Content-Type, X-Amz-Date", 200, "https://app.example"},
		{"https://app.example", "PUT", "authorization-x", 403, ""},
		{"https://app.example", "DELETE", "", 403, ""},
		{"https://evil.test", "GET", "", 403, ""},
		{"https://anything.test", "HEAD", "", 200, "*"},
		{"", "GET", "", 400, ""},
		{"https://app.example", "", "", 400, ""},
	}
	for _, tc := range cases {
		resp := preflight(tc.origin, tc.method, tc.headers)
		if resp.StatusCode != tc.status || resp.Header.Get("Access-Control-Allow-Origin") != tc.allowOrigin {
			t.Errorf("preflight %+v: %d %q", tc, resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
		}
		if tc.status == 200 && tc.allowOrigin != "*" && resp.Header.Get("Access-Control-Max-Age") != "600" {
			t.Errorf("preflight %+v: Max-Age %q", tc, resp.Header.Get("Access-Control-Max-Age"))
		}
	}
	// The actual (signed) request from an allowed origin carries the headers.
	cli := newBenchClient(srv)
	req, _ := http.NewRequest("GET", cli.base+"/web/app.js", nil)
	req.Header.Set("Origin", "https://app.example")
	req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	cli.signer.SignHTTP(ctx, cli.creds, req, "UNSIGNED-PAYLOAD", "s3", "us-east-1", time.Now())
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" || resp.Header.Get("Access-Control-Expose-Headers") != "ETag" {
		t.Fatalf("actual request: %v %v %v", err, resp.StatusCode, resp.Header)
	}
	readAllString(resp.Body)
	// Invalid configurations are refused.
	_, err = c.PutBucketCors(ctx, &s3.PutBucketCorsInput{Bucket: aws.String("web"), CORSConfiguration: &types.CORSConfiguration{CORSRules: []types.CORSRule{
		{AllowedOrigins: []string{"*"}, AllowedMethods: []string{"PATCH"}}}}})
	if awsCode(err) != "InvalidRequest" {
		t.Fatalf("unsupported method in CORS rule: %v", err)
	}
	if _, err := c.DeleteBucketCors(ctx, &s3.DeleteBucketCorsInput{Bucket: aws.String("web")}); err != nil {
		t.Fatal(err)
	}
	if resp := preflight("https://app.example", "GET", ""); resp.StatusCode != 403 {
		t.Fatalf("preflight after DeleteBucketCors: %d", resp.StatusCode)
	}
}
