package sigv4

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

type staticCreds map[string]string

func (s staticCreds) SecretKey(k string) (string, bool) { v, ok := s[k]; return v, ok }

// The example credentials and vectors of the AWS SigV4 documentation for S3.
var awsCreds = staticCreds{"AKIAIOSFODNN7EXAMPLE": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}
var awsTime = time.Date(2013, 5, 24, 0, 0, 0, 0, time.UTC)

func awsGetRequest(sig string) *http.Request {
	r := httptest.NewRequest("GET", "http://examplebucket.s3.amazonaws.com/test.txt", nil)
	r.Header.Set("Range", "bytes=0-9")
	r.Header.Set("X-Amz-Content-Sha256", EmptySHA256)
	r.Header.Set("X-Amz-Date", "20130524T000000Z")
	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature="+sig)
	return r
}

func code(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestHeaderSignature(t *testing.T) {
	good := "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
	cases := []struct {
		name   string
		mutate func(*http.Request)
		creds  staticCreds
		now    time.Time
		want   string
	}{
		{"AWS example", func(*http.Request) {}, awsCreds, awsTime, ""},
		{"tampered header", func(r *http.Request) { r.Header.Set("Range", "bytes=0-10") }, awsCreds, awsTime, "SignatureDoesNotMatch"},
		{"tampered path", func(r *http.Request) { r.URL.Path = "/test2.txt" }, awsCreds, awsTime, "SignatureDoesNotMatch"},
		{"extra query", func(r *http.Request) { r.URL.RawQuery = "acl" }, awsCreds, awsTime, "SignatureDoesNotMatch"},
		{"wrong secret", func(*http.Request) {}, staticCreds{"AKIAIOSFODNN7EXAMPLE": "other"}, awsTime, "SignatureDoesNotMatch"},
		{"unknown key", func(*http.Request) {}, staticCreds{}, awsTime, "InvalidAccessKeyId"},
		{"skewed clock", func(*http.Request) {}, awsCreds, awsTime.Add(16 * time.Minute), "RequestTimeTooSkewed"},
		{"v2 signature", func(r *http.Request) { r.Header.Set("Authorization", "AWS AKIA:abc") }, awsCreds, awsTime, "AccessDenied"},
		{"bad credential", func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "/s3/", "/ec2/", 1))
		}, awsCreds, awsTime, "AuthorizationHeaderMalformed"},
		{"no payload hash", func(r *http.Request) { r.Header.Del("X-Amz-Content-Sha256") }, awsCreds, awsTime, "InvalidRequest"},
		{"x-amz-acl added after signing", func(r *http.Request) { r.Header.Set("X-Amz-Acl", "public-read") }, awsCreds, awsTime, "AccessDenied"},
		{"user metadata added after signing", func(r *http.Request) { r.Header.Set("X-Amz-Meta-Owner", "eve") }, awsCreds, awsTime, "AccessDenied"},
		{"x-amzn-trace-id may go unsigned", func(r *http.Request) { r.Header.Set("X-Amzn-Trace-Id", "Root=1") }, awsCreds, awsTime, ""},
		{"other headers may go unsigned", func(r *http.Request) { r.Header.Set("User-Agent", "curl") }, awsCreds, awsTime, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := awsGetRequest(good)
			c.mutate(r)
			_, err := Verify(r, c.creds, c.now)
			if code(err) != c.want {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
	r := httptest.NewRequest("GET", "http://x/b/k", nil)
	if _, err := Verify(r, awsCreds, awsTime); !errors.Is(err, ErrNoAuth) {
		t.Fatalf("unsigned: %v", err)
	}
}

func TestPresigned(t *testing.T) {
	// AWS documentation example of a presigned GET.
	u := "http://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
	if _, err := Verify(httptest.NewRequest("GET", u, nil), awsCreds, awsTime.Add(time.Hour)); err != nil {
		t.Fatalf("AWS example: %v", err)
	}
	if _, err := Verify(httptest.NewRequest("GET", u, nil), awsCreds, awsTime.Add(25*time.Hour)); code(err) != "AccessDenied" {
		t.Fatalf("expired: %v", err)
	}
	if _, err := Verify(httptest.NewRequest("PUT", u, nil), awsCreds, awsTime.Add(time.Hour)); code(err) != "SignatureDoesNotMatch" {
		t.Fatalf("other method: %v", err)
	}
	withACL := httptest.NewRequest("GET", u, nil)
	withACL.Header.Set("X-Amz-Acl", "public-read")
	if _, err := Verify(withACL, awsCreds, awsTime.Add(time.Hour)); code(err) != "AccessDenied" || !strings.Contains(err.Error(), "x-amz-acl") {
		t.Fatalf("presigned with an unsigned x-amz-acl: %v", err)
	}
	withHash := httptest.NewRequest("GET", u, nil)
	withHash.Header.Set("X-Amz-Content-Sha256", UnsignedPayload)
	if _, err := Verify(withHash, awsCreds, awsTime.Add(time.Hour)); err != nil {
		t.Fatalf("presigned with x-amz-content-sha256: %v", err)
	}
	bad := strings.Replace(u, "X-Amz-Expires=86400", "X-Amz-Expires=999999", 1)
	if _, err := Verify(httptest.NewRequest("GET", bad, nil), awsCreds, awsTime); code(err) != "AuthorizationQueryParametersError" {
		t.Fatalf("too long expiry: %v", err)
	}
}

// awsChunkedRequest is the chunked upload example of the AWS documentation:
// 65536 + 1024 bytes of 'a' in two signed chunks.
func awsChunkedRequest(body []byte) *http.Request {
	r := httptest.NewRequest("PUT", "http://s3.amazonaws.com/examplebucket/chunkObject.txt", bytes.NewReader(body))
	r.Header.Set("X-Amz-Date", "20130524T000000Z")
	r.Header.Set("X-Amz-Storage-Class", "REDUCED_REDUNDANCY")
	r.Header.Set("Content-Encoding", "aws-chunked")
	r.Header.Set("X-Amz-Decoded-Content-Length", "66560")
	r.Header.Set("Content-Length", "66824")
	r.Header.Set("X-Amz-Content-Sha256", StreamingPayload)
	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9")
	return r
}

func awsChunkedBody(chunk1Sig string) []byte {
	var b bytes.Buffer
	b.WriteString("10000;chunk-signature=" + chunk1Sig + "\r\n")
	b.Write(bytes.Repeat([]byte("a"), 65536))
	b.WriteString("\r\n400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497\r\n")
	b.Write(bytes.Repeat([]byte("a"), 1024))
	b.WriteString("\r\n0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n\r\n")
	return b.Bytes()
}

func TestChunkedBody(t *testing.T) {
	good := "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"
	body := awsChunkedBody(good)
	r := awsChunkedRequest(body)
	a, err := Verify(r, awsCreds, awsTime)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(a.Body(r.Body, 66560, nil))
	if err != nil || len(got) != 66560 || !bytes.Equal(got, bytes.Repeat([]byte("a"), 66560)) {
		t.Fatalf("decode: %d bytes, %v", len(got), err)
	}
	// One flipped data byte fails the chunk signature.
	bad := append([]byte(nil), body...)
	bad[100] = 'b'
	_, err = io.ReadAll(a.Body(bytes.NewReader(bad), 66560, nil))
	if code(err) != "SignatureDoesNotMatch" {
		t.Fatalf("tampered chunk: %v", err)
	}
	// Truncated body.
	_, err = io.ReadAll(a.Body(bytes.NewReader(body[:66000]), 66560, nil))
	if code(err) != "IncompleteBody" {
		t.Fatalf("truncated: %v", err)
	}
	// Declared decoded length disagrees.
	_, err = io.ReadAll(a.Body(bytes.NewReader(body), 66561, nil))
	if code(err) != "IncompleteBody" {
		t.Fatalf("length mismatch: %v", err)
	}
}

func TestUnsignedTrailer(t *testing.T) {
	a := &Auth{PayloadHash: StreamingUnsignedTrail}
	body := "5\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n"
	var trailer http.Header
	got, err := io.ReadAll(a.Body(strings.NewReader(body), 11, func(h http.Header) error { trailer = h; return nil }))
	if err != nil || string(got) != "hello world" || trailer.Get("x-amz-checksum-crc32") != "DUoRhQ==" {
		t.Fatalf("got %q %v %v", got, trailer, err)
	}
	for _, bad := range []string{"5\r\nhello", "zz\r\nhello\r\n0\r\n\r\n", "5\r\nhello world\r\n0\r\n\r\n"} {
		if _, err := io.ReadAll(a.Body(strings.NewReader(bad), -1, nil)); code(err) != "IncompleteBody" {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestPayloadHash(t *testing.T) {
	a := &Auth{PayloadHash: sha256Hex("data")}
	if _, err := io.ReadAll(a.Body(strings.NewReader("data"), -1, nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(a.Body(strings.NewReader("dat4"), -1, nil)); code(err) != "XAmzContentSHA256Mismatch" {
		t.Fatalf("mismatch: %v", err)
	}
}

func FuzzChunkedBody(f *testing.F) {
	f.Add([]byte("5\r\nhello\r\n0\r\nx-amz-checksum-crc32:AAAA\r\n\r\n"))
	f.Add(awsChunkedBody("ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, mode := range []string{StreamingUnsignedTrail, StreamingPayload} {
			a := &Auth{PayloadHash: mode, signingKey: []byte("k")}
			io.ReadAll(io.LimitReader(a.Body(bytes.NewReader(b), -1, func(http.Header) error { return nil }), 1<<20))
		}
	})
}

// A signed trailer in the layout minio-go sends: LF-terminated trailer
// lines, a blank line, then the signature line. The signatures here are
// computed with the documented SigV4 chunk and trailer string-to-sign.
func TestSignedTrailer(t *testing.T) {
	key := SigningKey("secret", "20260101", "us-east-1", "s3")
	a := &Auth{PayloadHash: StreamingPayloadTrail, signingKey: key, date: "20260101T000000Z", scope: "20260101/us-east-1/s3/aws4_request", signature: "seed"}
	chunkSig := func(prev string, data []byte) string {
		return hmacHex(key, "AWS4-HMAC-SHA256-PAYLOAD\n"+a.date+"\n"+a.scope+"\n"+prev+"\n"+EmptySHA256+"\n"+sha256Hex(string(data)))
	}
	s1 := chunkSig("seed", []byte("hello"))
	s0 := chunkSig(s1, nil)
	trailerLines := "x-amz-checksum-crc32:DUoRhQ==\n"
	ts := hmacHex(key, "AWS4-HMAC-SHA256-TRAILER\n"+a.date+"\n"+a.scope+"\n"+s0+"\n"+sha256Hex(trailerLines))
	body := "5;chunk-signature=" + s1 + "\r\nhello\r\n0;chunk-signature=" + s0 + "\r\n" + trailerLines + "\r\nx-amz-trailer-signature:" + ts + "\r\n\r\n"
	var got http.Header
	data, err := io.ReadAll(a.Body(strings.NewReader(body), 5, func(h http.Header) error { got = h; return nil }))
	if err != nil || string(data) != "hello" || got.Get("x-amz-checksum-crc32") != "DUoRhQ==" {
		t.Fatalf("minio-go layout: %q %v %v", data, got, err)
	}
	// The same with CRLF trailer lines and no blank line also parses.
	body2 := "5;chunk-signature=" + s1 + "\r\nhello\r\n0;chunk-signature=" + s0 + "\r\nx-amz-checksum-crc32:DUoRhQ==\r\nx-amz-trailer-signature:" + ts + "\r\n\r\n"
	if _, err := io.ReadAll(a.Body(strings.NewReader(body2), 5, nil)); err != nil {
		t.Fatalf("CRLF layout: %v", err)
	}
	// A tampered trailer value fails the trailer signature.
	bad := strings.Replace(body, "DUoRhQ==", "AAAAAA==", 1)
	if _, err := io.ReadAll(a.Body(strings.NewReader(bad), 5, nil)); code(err) != "SignatureDoesNotMatch" {
		t.Fatalf("tampered trailer: %v", err)
	}
}

// FuzzVerify feeds fuzzed Authorization headers, dates and presigned
// query strings to the verifier: refusals are *Error or ErrNoAuth, and
// nothing panics.
func FuzzVerify(f *testing.F) {
	f.Add("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41", "20130524T000000Z", "")
	f.Add("", "", "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404")
	f.Add("AWS4-HMAC-SHA256 Credential=a/b/c/d/e,SignedHeaders=,Signature=", "x", "a=%zz")
	f.Fuzz(func(t *testing.T, auth, date, query string) {
		r := httptest.NewRequest("GET", "http://examplebucket.s3.amazonaws.com/test.txt", nil)
		r.URL.RawQuery = query
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		r.Header.Set("X-Amz-Date", date)
		r.Header.Set("X-Amz-Content-Sha256", EmptySHA256)
		_, err := Verify(r, awsCreds, awsTime)
		var e *Error
		if err != nil && !errors.As(err, &e) && !errors.Is(err, ErrNoAuth) {
			t.Fatalf("refusal of another kind: %v", err)
		}
	})
}
