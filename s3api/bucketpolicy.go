package s3api

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/strata-storage/strata/s3api/policy"
)

const policyKind = "policy"

// policyActions maps S3 operations to the policy actions that govern them.
var policyActions = map[string]string{
	"GetObject": "s3:GetObject", "HeadObject": "s3:GetObject",
	"PutObject": "s3:PutObject", "CreateMultipartUpload": "s3:PutObject", "UploadPart": "s3:PutObject", "CompleteMultipartUpload": "s3:PutObject",
	"AbortMultipartUpload": "s3:AbortMultipartUpload", "ListParts": "s3:ListMultipartUploadParts",
	"DeleteObject": "s3:DeleteObject", "DeleteObjects": "s3:DeleteObject",
	"ListObjects": "s3:ListBucket", "ListObjectsV2": "s3:ListBucket", "HeadBucket": "s3:ListBucket",
	"ListMultipartUploads": "s3:ListBucketMultipartUploads", "GetBucketLocation": "s3:GetBucketLocation",
	"GetObjectTagging": "s3:GetObjectTagging", "PutObjectTagging": "s3:PutObjectTagging", "DeleteObjectTagging": "s3:DeleteObjectTagging",
	"GetObjectAcl": "s3:GetObjectAcl", "GetObjectAttributes": "s3:GetObjectAttributes",
}

func (s *Server) putBucketPolicy(w http.ResponseWriter, r *http.Request, rc *reqContext) error {
	if _, err := s.store.HeadBucket(r.Context(), rc.bucket); err != nil {
		return err
	}
	body := rc.auth.Body(r.Body, -1, nil)
	doc, err := io.ReadAll(io.LimitReader(body, 20<<10+1))
	if err != nil {
		return err
	}
	if len(doc) > 20<<10 {
		return apiErr("PolicyTooLarge", "Policies must be at most 20 KB.")
	}
	if err := checkContentMD5(r, doc); err != nil {
		return err
	}
	if _, err := policy.Parse(doc, rc.bucket); err != nil {
		return apiErr("MalformedPolicy", strings.TrimPrefix(err.Error(), "malformed policy: "))
	}
	if err := s.store.SetBucketConfig(r.Context(), rc.bucket, policyKind, doc); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) getBucketPolicy(w http.ResponseWriter, r *http.Request, rc *reqContext) error {
	b, err := s.store.HeadBucket(r.Context(), rc.bucket)
	if err != nil {
		return err
	}
	doc, ok := b.Config[policyKind]
	if !ok {
		return apiErr("NoSuchBucketPolicy")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(doc)
	return nil
}

func (s *Server) deleteBucketPolicy(w http.ResponseWriter, r *http.Request, rc *reqContext) error {
	if err := s.store.SetBucketConfig(r.Context(), rc.bucket, policyKind, nil); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// policyDecision evaluates a bucket's policy for a request (anonymous,
// or of a user other than root).
func (s *Server) policyDecision(r *http.Request, rc *reqContext) (policy.Decision, error) {
	b, err := s.store.HeadBucket(r.Context(), rc.bucket)
	if err != nil {
		return policy.Undecided, err
	}
	doc, ok := b.Config[policyKind]
	req, known := policyRequest(r, rc)
	if !ok || !known {
		return policy.Undecided, nil
	}
	p, err := policy.Parse(doc, rc.bucket)
	if err != nil {
		return policy.Undecided, errors.Join(errors.New("stored bucket policy no longer parses"), err)
	}
	return p.Evaluate(req), nil
}

// policyRequest is what policies are evaluated against: the action,
// resource and condition keys of a request. known is false for requests
// no policy action names.
func policyRequest(r *http.Request, rc *reqContext) (policy.Request, bool) {
	action := policyActions[rc.api]
	if action == "" {
		return policy.Request{}, false
	}
	resource := "arn:aws:s3:::" + rc.bucket
	if rc.key != "" {
		resource += "/" + rc.key
	} else if action == "s3:DeleteObject" {
		resource += "/*"
	}
	q := r.URL.Query()
	ctx := map[string]string{
		"aws:securetransport": "false",
		"aws:useragent":       r.UserAgent(),
		"aws:referer":         r.Referer(),
	}
	if r.TLS != nil {
		ctx["aws:securetransport"] = "true"
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		ctx["aws:sourceip"] = host
	}
	if action == "s3:ListBucket" {
		ctx["s3:prefix"], ctx["s3:delimiter"] = q.Get("prefix"), q.Get("delimiter")
		if v := q.Get("max-keys"); v != "" {
			ctx["s3:max-keys"] = v
		}
	}
	principal := ""
	if !rc.anonymous {
		principal = rc.user
	}
	return policy.Request{Principal: principal, Action: action, Resource: resource, Context: ctx}, true
}
