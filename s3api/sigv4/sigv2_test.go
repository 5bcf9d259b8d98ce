package sigv4

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

type oneKey struct{ key, secret string }

func (o oneKey) SecretKey(k string) (string, bool) { return o.secret, k == o.key }

var exampleKey = oneKey{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}

// The Signature Version 2 examples of the S3 developer guide (REST
// authentication), each signed for the virtual-hosted bucket johnsmith.
func TestSigV2ReferenceExamples(t *testing.T) {
	for _, c := range []struct {
		name, method, target, date, contentType, auth, hostBucket string
	}{
		{"object GET", "GET", "/photos/puppy.jpg", "Tue, 27 Mar 2007 19:36:42 +0000", "", "AWS AKIAIOSFODNN7EXAMPLE:bWq2s1WEIj+Ydj0vQ697zp+IXMU=", "johnsmith"},
		{"object PUT", "PUT", "/photos/puppy.jpg", "Tue, 27 Mar 2007 21:15:45 +0000", "image/jpeg", "AWS AKIAIOSFODNN7EXAMPLE:MyyxeRY7whkBe+bq8fHCL/2kKUg=", "johnsmith"},
		{"list (query not signed)", "GET", "/?prefix=photos&max-keys=50&marker=puppy", "Tue, 27 Mar 2007 19:42:41 +0000", "", "AWS AKIAIOSFODNN7EXAMPLE:htDYFYduRNen8P9ZfE/s9SuKy0U=", "johnsmith"},
		{"ACL sub-resource", "GET", "/?acl", "Tue, 27 Mar 2007 19:44:46 +0000", "", "AWS AKIAIOSFODNN7EXAMPLE:c2WLPFtWHVgbEmeEG93a4cG37dM=", "johnsmith"},
		{"path style", "GET", "/awsexamplebucket1/photos/puppy.jpg", "Tue, 27 Mar 2007 19:36:42 +0000", "", "AWS AKIAIOSFODNN7EXAMPLE:qgk2+6Sv9/oM7G3qLEjTH1a1l1g=", ""},
	} {
		r := httptest.NewRequest(c.method, c.target, nil)
		r.Header.Set("Date", c.date)
		if c.contentType != "" {
			r.Header.Set("Content-Type", c.contentType)
		}
		r.Header.Set("Authorization", c.auth)
		now, _ := ParseHTTPDate(c.date)
		a, err := VerifyAny(r, exampleKey, now.Add(time.Minute), c.hostBucket)
		if err != nil || a.AccessKey != exampleKey.key || !a.SigV2 {
			t.Errorf("%s: %+v %v", c.name, a, err)
		}
		// Any change to what is signed breaks it.
		r.Header.Set("X-Amz-Acl", "public-read")
		if _, err := VerifyAny(r, exampleKey, now, c.hostBucket); err == nil {
			t.Errorf("%s: an added x-amz-acl still verifies", c.name)
		}
		r.Header.Del("X-Amz-Acl")
		if _, err := VerifyAny(r, exampleKey, now.Add(time.Hour), c.hostBucket); err == nil {
			t.Errorf("%s: verified an hour late", c.name)
		}
	}
}

func TestSigV2Presigned(t *testing.T) {
	target := "/photos/puppy.jpg?AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Signature=NpgCjnDzrM%2BWFzoENXmpNDUsSn8%3D&Expires=1175139620"
	r := httptest.NewRequest("GET", target, nil)
	before := time.Unix(1175139620, 0).Add(-time.Minute)
	if a, err := VerifyAny(r, exampleKey, before, "johnsmith"); err != nil || !a.Presigned || !a.SigV2 {
		t.Fatalf("the guide's presigned URL: %+v %v", a, err)
	}
	if _, err := VerifyAny(r, exampleKey, before.Add(2*time.Minute), "johnsmith"); err == nil {
		t.Fatal("an expired V2 URL verified")
	}
	if _, err := VerifyAny(httptest.NewRequest("DELETE", target, nil), exampleKey, before, "johnsmith"); err == nil {
		t.Fatal("the URL verified for another method")
	}
	if _, err := VerifyAny(httptest.NewRequest("GET", "/photos/kitten.jpg?AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Signature=NpgCjnDzrM%2BWFzoENXmpNDUsSn8%3D&Expires=1175139620", nil), exampleKey, before, "johnsmith"); err == nil {
		t.Fatal("the URL verified for another key")
	}
	// Verify (SigV4 only, the admin API's) refuses it.
	if _, err := Verify(r, exampleKey, before); err == nil {
		t.Fatal("Verify took a V2 signature")
	}
}

func TestCanonicalResourceV2(t *testing.T) {
	for _, c := range []struct{ target, bucket, want string }{
		{"/b/k?uploadId=x%2By&partNumber=3&max-parts=5", "", "/b/k?partNumber=3&uploadId=x+y"},
		{"/k%20space?versionId=v1&response-content-type=text%2Fplain", "b", "/b/k%20space?response-content-type=text/plain&versionId=v1"},
		{"/?versioning", "b", "/b/?versioning"},
		{"/b?delete=", "", "/b/?delete="},
		{"/", "", "/"},
	} {
		r, _ := http.NewRequest("GET", "http://h"+c.target, nil)
		r.RequestURI = c.target
		if got := canonicalResourceV2(r, c.bucket); got != c.want {
			t.Errorf("%s: %q, want %q", c.target, got, c.want)
		}
	}
}

// V2 header and query parsing and canonicalisation, fed anything: a
// refusal is an *Error, never a panic, and nothing verifies without the
// secret.
func FuzzVerifyV2(f *testing.F) {
	f.Add("AWS AKIAIOSFODNN7EXAMPLE:bWq2s1WEIj+Ydj0vQ697zp+IXMU=", "Tue, 27 Mar 2007 19:36:42 +0000", "", "/photos/puppy.jpg")
	f.Add("", "", "AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Signature=NpgCjnDzrM%2BWFzoENXmpNDUsSn8%3D&Expires=1175139620", "/photos/puppy.jpg")
	f.Add("AWS :", "x", "acl&uploadId=%zz&versionId", "/b")
	f.Fuzz(func(t *testing.T, auth, date, query, path string) {
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " ?#\x00\r\n") {
			return
		}
		r, err := http.NewRequest("PUT", "http://johnsmith.s3.amazonaws.com"+path, nil)
		if err != nil {
			return
		}
		r.RequestURI = path
		r.URL.RawQuery = query
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		r.Header.Set("Date", date)
		r.Header.Set("X-Amz-Meta-Fuzz", date)
		now, _ := ParseHTTPDate("Tue, 27 Mar 2007 19:36:42 +0000")
		_, err = VerifyAny(r, exampleKey, now, "johnsmith")
		var e *Error
		if err == nil {
			t.Fatal("a fuzzed request verified")
		}
		if !errors.As(err, &e) && !errors.Is(err, ErrNoAuth) {
			t.Fatalf("refusal of another kind: %v", err)
		}
	})
}
