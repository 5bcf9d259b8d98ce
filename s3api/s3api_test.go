package s3api

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/strata-storage/strata/objectstore"
)

func TestByteRange(t *testing.T) {
	cases := []struct {
		header        string
		size          int64
		off, length   int64
		partial       bool
		unsatisfiable bool
	}{
		{"", 100, 0, 100, false, false},
		{"bytes=0-9", 100, 0, 10, true, false},
		{"bytes=90-", 100, 90, 10, true, false},
		{"bytes=90-1000", 100, 90, 10, true, false},
		{"bytes=-10", 100, 90, 10, true, false},
		{"bytes=-1000", 100, 0, 100, true, false},
		{"bytes=100-", 100, 0, 0, false, true},
		{"bytes=100-200", 100, 0, 0, false, true},
		{"bytes=-0", 100, 0, 0, false, true},
		{"bytes=0-0", 0, 0, 0, false, true},
		{"bytes=-5", 0, 0, 0, false, true},
		{"bytes=5-3", 100, 0, 100, false, false},     // invalid: ignored
		{"bytes=0-1,5-6", 100, 0, 100, false, false}, // multiple ranges: ignored
		{"bytes=a-b", 100, 0, 100, false, false},
		{"items=0-1", 100, 0, 100, false, false},
		{"bytes=-", 100, 0, 100, false, false},
	}
	for _, c := range cases {
		off, length, partial, err := byteRange(c.header, c.size)
		if c.unsatisfiable {
			if err == nil || toAPIError(err).Code != "InvalidRange" {
				t.Errorf("%q/%d: got %v, want InvalidRange", c.header, c.size, err)
			}
			continue
		}
		if err != nil || off != c.off || length != c.length || partial != c.partial {
			t.Errorf("%q/%d: got %d,%d,%v,%v want %d,%d,%v", c.header, c.size, off, length, partial, err, c.off, c.length, c.partial)
		}
	}
}

func FuzzByteRange(f *testing.F) {
	for _, s := range []string{"bytes=0-9", "bytes=-5", "bytes=7-", "bytes=9-3"} {
		f.Add(s, int64(100))
	}
	f.Fuzz(func(t *testing.T, h string, size int64) {
		if size < 0 {
			return
		}
		off, length, _, err := byteRange(h, size)
		if err == nil && (off < 0 || length < 0 || off+length > size) {
			t.Fatalf("%q/%d: range %d+%d outside the object", h, size, off, length)
		}
	})
}

func TestHostBucket(t *testing.T) {
	s := &Server{cfg: Config{Domains: []string{"localhost", "s3.example.test"}}}
	for host, want := range map[string]string{
		"localhost:9000":         "",
		"photos.localhost:9000":  "photos",
		"a.b.localhost":          "a.b",
		"PHOTOS.LOCALHOST":       "photos",
		"photos.s3.example.test": "photos",
		"127.0.0.1:9000":         "",
		"photos.other.test":      "",
		"s3.example.test":        "",
	} {
		if got := s.hostBucket(host); got != want {
			t.Errorf("hostBucket(%q) = %q, want %q", host, got, want)
		}
	}
}

func TestObjectHeaders(t *testing.T) {
	r := httptest.NewRequest("PUT", "/b/k", nil)
	r.Header.Set("Content-Type", "text/plain")
	r.Header.Set("Content-Encoding", "aws-chunked, gzip")
	r.Header.Set("X-Amz-Meta-Color", "blue")
	r.Header.Set("X-Amz-Date", "ignored")
	hs, err := objectHeaders(r)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, h := range hs {
		got[h.Name] = h.Value
	}
	if len(got) != 3 || got["Content-Type"] != "text/plain" || got["Content-Encoding"] != "gzip" || got["x-amz-meta-color"] != "blue" {
		t.Fatalf("stored headers %v", got)
	}
	r.Header.Set("Content-Encoding", "aws-chunked")
	hs, _ = objectHeaders(r)
	for _, h := range hs {
		if h.Name == "Content-Encoding" {
			t.Fatal("aws-chunked alone must not be stored as the object's encoding")
		}
	}
	for i := 0; i < 30; i++ {
		r.Header.Set(fmt.Sprintf("X-Amz-Meta-K%d", i), string(make([]byte, 80)))
	}
	if _, err := objectHeaders(r); toAPIError(err).Code != "MetadataTooLarge" {
		t.Fatalf("2 KiB metadata limit: %v", err)
	}
}

func TestErrorMapping(t *testing.T) {
	for err, want := range map[error]struct {
		code   string
		status int
	}{
		objectstore.ErrNoSuchBucket:                         {"NoSuchBucket", 404},
		fmt.Errorf("wrapped: %w", objectstore.ErrNoSuchKey): {"NoSuchKey", 404},
		objectstore.ErrBucketNotEmpty:                       {"BucketNotEmpty", 409},
		objectstore.ErrInvalidBucketName:                    {"InvalidBucketName", 400},
		objectstore.ErrWriteQuorum:                          {"ServiceUnavailable", 503},
		objectstore.ErrReadQuorum:                           {"ServiceUnavailable", 503},
		objectstore.ErrEntityTooLarge:                       {"EntityTooLarge", 400},
		objectstore.ErrIncompleteBody:                       {"IncompleteBody", 400},
		objectstore.ErrStorageFull:                          {"InsufficientStorage", 507},
		errors.New("disk on fire"):                          {"InternalError", 500},
	} {
		e := toAPIError(err)
		if e.Code != want.code || e.Status != want.status {
			t.Errorf("%v: got %s/%d, want %s/%d", err, e.Code, e.Status, want.code, want.status)
		}
	}
	for code, e := range errorTable {
		if e.Status < 300 || e.Message == "" {
			t.Errorf("%s: status %d message %q", code, e.Status, e.Message)
		}
	}
}

func TestReadPreconditions(t *testing.T) {
	mod := time.Date(2026, 5, 1, 12, 0, 0, 500, time.UTC)
	info := objectstore.ObjectInfo{ETag: "abc", ModTime: mod}
	before, same, after := mod.Add(-time.Hour).Format(http.TimeFormat), mod.Format(http.TimeFormat), mod.Add(time.Hour).Format(http.TimeFormat)
	cases := []struct {
		headers map[string]string
		want    string // "", "304" or an error code
	}{
		{map[string]string{}, ""},
		{map[string]string{"If-Match": `"abc"`}, ""},
		{map[string]string{"If-Match": `"x", "abc"`}, ""},
		{map[string]string{"If-Match": "*"}, ""},
		{map[string]string{"If-Match": `"x"`}, "PreconditionFailed"},
		{map[string]string{"If-Unmodified-Since": before}, "PreconditionFailed"},
		{map[string]string{"If-Unmodified-Since": same}, ""},
		{map[string]string{"If-Match": `"abc"`, "If-Unmodified-Since": before}, ""}, // If-Match wins
		{map[string]string{"If-None-Match": `"abc"`}, "304"},
		{map[string]string{"If-None-Match": `W/"abc"`}, "304"},
		{map[string]string{"If-None-Match": `"x"`}, ""},
		{map[string]string{"If-Modified-Since": same}, "304"},
		{map[string]string{"If-Modified-Since": after}, "304"},
		{map[string]string{"If-Modified-Since": before}, ""},
		{map[string]string{"If-None-Match": `"x"`, "If-Modified-Since": after}, ""}, // If-None-Match wins
		{map[string]string{"If-Modified-Since": "not a date"}, ""},
		{map[string]string{"If-Match": `"x"`, "If-None-Match": `"abc"`}, "PreconditionFailed"},
	}
	for _, c := range cases {
		h := http.Header{}
		for k, v := range c.headers {
			h.Set(k, v)
		}
		nm, err := readPreconditions(h, "", info)
		got := ""
		if err != nil {
			got = toAPIError(err).Code
		} else if nm {
			got = "304"
		}
		if got != c.want {
			t.Errorf("%v: got %q, want %q", c.headers, got, c.want)
		}
		// As copy-source conditions, a 304 becomes 412.
		ch := http.Header{}
		for k, v := range c.headers {
			ch.Set("X-Amz-Copy-Source-"+k, v)
		}
		_, err = readPreconditions(ch, "X-Amz-Copy-Source-", info)
		want := c.want
		if want == "304" {
			want = "PreconditionFailed"
		}
		if got := toAPIError(err).Code; err != nil && got != want || err == nil && want != "" {
			t.Errorf("copy-source %v: got %v, want %q", c.headers, err, want)
		}
	}
}

func TestWritePrecondition(t *testing.T) {
	existing := &objectstore.ObjectInfo{ETag: "abc"}
	cases := []struct {
		inm, im string
		cur     *objectstore.ObjectInfo
		want    string
	}{
		{"*", "", nil, ""},
		{"*", "", existing, "PreconditionFailed"},
		{"", `"abc"`, existing, ""},
		{"", `"other"`, existing, "PreconditionFailed"},
		{"", `"abc"`, nil, "NoSuchKey"},
	}
	for _, c := range cases {
		h := http.Header{}
		if c.inm != "" {
			h.Set("If-None-Match", c.inm)
		}
		if c.im != "" {
			h.Set("If-Match", c.im)
		}
		cond, err := writePrecondition(h)
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		if err := cond(c.cur); err != nil {
			got = toAPIError(err).Code
		}
		if got != c.want {
			t.Errorf("%+v: got %q, want %q", c, got, c.want)
		}
	}
	h := http.Header{}
	h.Set("If-None-Match", `"abc"`)
	if _, err := writePrecondition(h); toAPIError(err).Code != "NotImplemented" {
		t.Errorf("If-None-Match with an ETag on a write: %v", err)
	}
}

func TestCheckPostPolicy(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	enc := func(doc string) string { return base64.StdEncoding.EncodeToString([]byte(doc)) }
	fields := map[string]string{"bucket": "b", "key": "user/a.jpg", "content-type": "image/jpeg", "x-amz-date": "d", "x-ignore-me": "x", "policy": "p", "x-amz-signature": "s"}
	const exp = `"expiration":"2026-11-23T13:00:00Z"`
	cases := []struct {
		name, doc, want string
		min, max        int64
	}{
		{"all covered", `{` + exp + `,"conditions":[{"bucket":"b"},["starts-with","$key","user/"],["eq","$Content-Type","image/jpeg"],{"x-amz-date":"d"},["content-length-range",1,100]]}`, "", 1, 100},
		{"expired", `{"expiration":"2026-11-23T11:00:00Z","conditions":[]}`, "AccessDenied", 0, 0},
		{"field not covered", `{` + exp + `,"conditions":[{"bucket":"b"},["starts-with","$key",""],{"x-amz-date":"d"}]}`, "AccessDenied", 0, 0},
		{"prefix mismatch", `{` + exp + `,"conditions":[["starts-with","$key","admin/"],["eq","$content-type","image/jpeg"],{"x-amz-date":"d"}]}`, "AccessDenied", 0, 0},
		{"eq mismatch", `{` + exp + `,"conditions":[["starts-with","$key",""],["eq","$content-type","text/html"],{"x-amz-date":"d"}]}`, "AccessDenied", 0, 0},
		{"unknown operator", `{` + exp + `,"conditions":[["ends-with","$key","jpg"]]}`, "InvalidPolicyDocument", 0, 0},
		{"bad range", `{` + exp + `,"conditions":[["content-length-range",10,1]]}`, "InvalidPolicyDocument", 0, 0},
		{"bad expiration", `{"expiration":"tomorrow","conditions":[]}`, "InvalidPolicyDocument", 0, 0},
		{"not json", `{`, "InvalidPolicyDocument", 0, 0},
	}
	for _, c := range cases {
		lo, hi, err := checkPostPolicy(enc(c.doc), fields, now)
		got := ""
		if err != nil {
			got = toAPIError(err).Code
		}
		if got != c.want || (c.want == "" && (lo != c.min || hi != c.max)) {
			t.Errorf("%s: got %q (%d-%d), want %q", c.name, got, lo, hi, c.want)
		}
	}
	if _, _, err := checkPostPolicy("%%%", fields, now); toAPIError(err).Code != "InvalidPolicyDocument" {
		t.Errorf("bad base64: %v", err)
	}
}

// FuzzPostPolicy feeds fuzzed POST policies (base64 JSON: expiration and
// conditions) and form fields to the policy check: nothing panics, and an
// accepted policy's length range is well formed.
func FuzzPostPolicy(f *testing.F) {
	pol := `{"expiration":"2030-01-01T00:00:00Z","conditions":[{"bucket":"b"},["starts-with","$key","up/"],["content-length-range",1,1048576],{"x-amz-algorithm":"AWS4-HMAC-SHA256"}]}`
	f.Add(base64.StdEncoding.EncodeToString([]byte(pol)), "b", "up/x")
	f.Add(base64.StdEncoding.EncodeToString([]byte(`{"expiration":"x","conditions":[["eq"],[1,2,3],{"a":1}]}`)), "", "")
	f.Fuzz(func(t *testing.T, b64, bucket, key string) {
		fields := map[string]string{"bucket": bucket, "key": key, "x-amz-algorithm": "AWS4-HMAC-SHA256"}
		minLen, maxLen, err := checkPostPolicy(b64, fields, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
		if err == nil && maxLen >= 0 && minLen > maxLen {
			t.Fatalf("accepted a length range %d..%d", minLen, maxLen)
		}
	})
}
