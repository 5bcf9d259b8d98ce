package s3api

import (
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/strata-storage/strata/objectstore"
	"github.com/strata-storage/strata/s3api/sigv4"
)

// POST Object: browser form uploads (multipart/form-data) authorized by a
// signed POST policy, or unsigned where the bucket lets anonymous callers
// write. Form fields come before the file; the file streams straight into
// the object store.

const maxPostFields = 20 << 10

func policyFailed(msg string) error {
	return apiErr("AccessDenied", "Invalid according to Policy: "+msg)
}

// postPolicy is a decoded POST policy document.
type postPolicy struct {
	Expiration string            `json:"expiration"`
	Conditions []json.RawMessage `json:"conditions"`
}

// checkPostPolicy verifies expiration and conditions against the form,
// and returns the allowed content length range (max -1: none given).
func checkPostPolicy(b64 string, fields map[string]string, now time.Time) (minLen, maxLen int64, err error) {
	doc, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return 0, 0, apiErr("InvalidPolicyDocument", "Invalid Policy: Invalid base64 encoding.")
	}
	var p postPolicy
	if err := json.Unmarshal(doc, &p); err != nil {
		return 0, 0, apiErr("InvalidPolicyDocument", "Invalid Policy: Invalid JSON.")
	}
	exp, err := time.Parse(time.RFC3339, p.Expiration)
	if err != nil {
		return 0, 0, apiErr("InvalidPolicyDocument", "Invalid Policy: Invalid 'expiration' value.")
	}
	if now.After(exp) {
		return 0, 0, policyFailed("Policy expired.")
	}
	covered := map[string]bool{}
	minLen, maxLen = 0, -1
	for _, raw := range p.Conditions {
		var exact map[string]string
		if json.Unmarshal(raw, &exact) == nil {
			for k, v := range exact {
				k = strings.ToLower(strings.TrimPrefix(k, "$"))
				covered[k] = true
				if fields[k] != v {
					return 0, 0, policyFailed(fmt.Sprintf("Policy Condition failed: [\"eq\", \"$%s\", %q]", k, v))
				}
			}
			continue
		}
		var list []any
		if err := json.Unmarshal(raw, &list); err != nil || len(list) != 3 {
			return 0, 0, apiErr("InvalidPolicyDocument", "Invalid Policy: Invalid Condition.")
		}
		op, _ := list[0].(string)
		switch strings.ToLower(op) {
		case "content-length-range":
			lo, ok1 := list[1].(float64)
			hi, ok2 := list[2].(float64)
			if !ok1 || !ok2 || lo < 0 || hi < lo {
				return 0, 0, apiErr("InvalidPolicyDocument", "Invalid Policy: Invalid content-length-range.")
			}
			minLen, maxLen = int64(lo), int64(hi)
		case "eq", "starts-with":
			name, _ := list[1].(string)
			want, ok := list[2].(string)
			if !strings.HasPrefix(name, "$") || !ok {
				return 0, 0, apiErr("InvalidPolicyDocument", "Invalid Policy: Invalid Condition.")
			}
			k := strings.ToLower(name[1:])
			covered[k] = true
			got := fields[k]
			if op == "eq" && got != want || op == "starts-with" && !strings.HasPrefix(got, want) {
				return 0, 0, policyFailed(fmt.Sprintf("Policy Condition failed: [%q, %q, %q]", op, name, want))
			}
		default:
			return 0, 0, apiErr("InvalidPolicyDocument", "Invalid Policy: Unknown condition "+op)
		}
	}
	for k := range fields {
		switch {
		case k == "policy" || k == "x-amz-signature" || k == "signature" || k == "awsaccesskeyid" || k == "file" || k == "bucket" || strings.HasPrefix(k, "x-ignore-"):
		case !covered[k]:
			return 0, 0, policyFailed("Extra input fields: " + k)
		}
	}
	return minLen, maxLen, nil
}

// rangeReader enforces a POST policy's content-length-range while streaming.
type rangeReader struct {
	r        io.Reader
	n        int64
	min, max int64
}

func (l *rangeReader) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	l.n += int64(n)
	if l.max >= 0 && l.n > l.max {
		return n, apiErr("EntityTooLarge", "Your proposed upload exceeds the maximum allowed size")
	}
	if err == io.EOF && l.n < l.min {
		return n, apiErr("EntityTooSmall", "Your proposed upload is smaller than the minimum allowed size")
	}
	return n, err
}

// objectURL is the absolute URL of an object as the client addressed the
// bucket (virtual-hosted or path style), for POST Object's Location.
func objectURL(r *http.Request, bucket, key string) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	path := "/" + bucket + "/" + sigv4.URIEncode(key, false)
	if strings.HasPrefix(r.Host, bucket+".") {
		path = "/" + sigv4.URIEncode(key, false)
	}
	return scheme + "://" + r.Host + path
}

// postFormAuthFields are the x-amz-* fields of a signed form.
var postFormAuthFields = map[string]bool{"x-amz-algorithm": true, "x-amz-credential": true, "x-amz-date": true, "x-amz-signature": true}

// checkFormFields holds a form's x-amz-* fields to the header table: a
// refused one fails the upload as its header would, and one that a PUT
// honours but this form handler does not act on is refused too, so that
// no field is silently dropped.
func checkFormFields(fields map[string]string) error {
	h := http.Header{}
	for k, v := range fields {
		if !strings.HasPrefix(k, "x-amz-") || postFormAuthFields[k] || strings.HasPrefix(k, "x-amz-meta-") {
			continue
		}
		h.Set(k, v)
	}
	if err := checkRequestHeaders(h); err != nil {
		return err
	}
	for k := range h {
		if name := strings.ToLower(k); name != "x-amz-storage-class" {
			return apiErr("NotImplemented", "The form field "+name+" is not supported in POST uploads.")
		}
	}
	return nil
}

func (s *Server) postObject(w http.ResponseWriter, r *http.Request, rc *reqContext) error {
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "multipart/form-data" {
		return apiErr("NotImplemented", "POST to a bucket is only supported as a multipart/form-data upload.")
	}
	mr, err := r.MultipartReader()
	if err != nil {
		return apiErr("MalformedPOSTRequest", "The body of your POST request is not well-formed multipart/form-data.")
	}
	fields := map[string]string{"bucket": rc.bucket}
	size := 0
	var file io.Reader
	var filename string
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return apiErr("MalformedPOSTRequest", "The body of your POST request is not well-formed multipart/form-data.")
		}
		name := strings.ToLower(part.FormName())
		if name == "file" {
			file, filename = part, part.FileName()
			break
		}
		v, err := io.ReadAll(io.LimitReader(part, maxPostFields+1))
		size += len(v)
		if err != nil || size > maxPostFields {
			return apiErr("MaxPostPreDataLengthExceeded", "Your POST request fields preceding the upload file were too large.")
		}
		fields[name] = string(v)
	}
	if file == nil {
		return apiErr("InvalidArgument", "POST requires exactly one file upload per request.")
	}
	key := strings.ReplaceAll(fields["key"], "${filename}", filename)
	if key == "" {
		return apiErr("InvalidArgument", "Bucket POST must contain a field named 'key'.")
	}
	if err := checkKey(key); err != nil {
		return err
	}
	rc.key = key
	minLen, maxLen := int64(0), int64(-1)
	if fields["policy"] != "" || fields["x-amz-signature"] != "" || fields["signature"] != "" {
		var auth *sigv4.Auth
		switch {
		case fields["x-amz-algorithm"] == "" && fields["awsaccesskeyid"] != "" && s.cfg.SigV2:
			auth, err = sigv4.VerifyPOSTPolicyV2(fields, s.cfg.Identity)
		case fields["x-amz-algorithm"] == "" && fields["awsaccesskeyid"] != "":
			err = apiErr("AccessDenied", "Signature Version 2 is turned off on this server; sign the form with Signature Version 4.")
		default:
			auth, err = sigv4.VerifyPOSTPolicy(fields, s.cfg.Identity, s.cfg.Now())
		}
		if err != nil {
			return err
		}
		// The form's signer, not the anonymous caller, is who writes.
		rc.anonymous, rc.root = false, true
		rc.user, rc.root = s.cfg.Identity.Principal(auth.AccessKey)
		if !rc.root {
			rc.api = "PutObject"
			err := s.authorizeUser(r, rc)
			rc.api = "PostObject"
			if err != nil {
				return err
			}
		}
		if minLen, maxLen, err = checkPostPolicy(fields["policy"], fields, s.cfg.Now()); err != nil {
			return err
		}
	} else {
		// An unsigned form is an anonymous PutObject.
		rc.api = "PutObject"
		if err := s.authorizeAnonymous(r, rc); err != nil {
			return err
		}
		rc.api = "PostObject"
	}
	if err := checkFormFields(fields); err != nil {
		return err
	}
	var tags []objectstore.Header
	if v := fields["tagging"]; v != "" {
		if tags, err = parseTagSet([]byte(v), maxObjectTags); err != nil {
			return err
		}
	}
	var headers []objectstore.Header
	for _, name := range storedHeaders {
		if v := fields[strings.ToLower(name)]; v != "" {
			headers = append(headers, objectstore.Header{Name: name, Value: v})
		}
	}
	for k, v := range fields {
		if strings.HasPrefix(k, "x-amz-meta-") {
			headers = append(headers, objectstore.Header{Name: k, Value: v})
		}
	}
	if acl := fields["acl"]; acl != "" && acl != "private" {
		if !objectACLs[acl] {
			return apiErr("InvalidArgument", "The canned ACL "+acl+" is not valid.")
		}
		if err := s.checkACLSetting(r, rc.bucket, acl); err != nil {
			return err
		}
		headers = append(headers, objectstore.Header{Name: aclHeader, Value: acl})
	}
	body := &rangeReader{r: &countingReader{r: file, c: s.metrics.bytesIn}, min: minLen, max: maxLen}
	info, err := s.store.PutObject(r.Context(), rc.bucket, key, body, -1, objectstore.PutOptions{Headers: headers, Tags: tags})
	if err != nil {
		return err
	}
	etag := `"` + info.ETag + `"`
	w.Header().Set("ETag", etag)
	location := objectURL(r, rc.bucket, key)
	w.Header().Set("Location", location)
	if redirect := fields["success_action_redirect"]; redirect != "" {
		if u, err := url.Parse(redirect); err == nil && (u.Scheme == "http" || u.Scheme == "https") {
			q := u.Query()
			q.Set("bucket", rc.bucket)
			q.Set("key", key)
			q.Set("etag", etag)
			u.RawQuery = q.Encode()
			http.Redirect(w, r, u.String(), http.StatusSeeOther)
			return nil
		}
	}
	switch status, _ := strconv.Atoi(fields["success_action_status"]); status {
	case 200:
		w.WriteHeader(http.StatusOK)
	case 201:
		return writeXML(w, http.StatusCreated, struct {
			XMLName  xml.Name `xml:"PostResponse"`
			Location string   `xml:"Location"`
			Bucket   string   `xml:"Bucket"`
			Key      string   `xml:"Key"`
			ETag     string   `xml:"ETag"`
		}{Location: location, Bucket: rc.bucket, Key: key, ETag: etag})
	default:
		w.WriteHeader(http.StatusNoContent)
	}
	return nil
}
