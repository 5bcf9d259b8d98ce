package s3api

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

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
	"GetObjectAcl": "s3:GetObjectAcl", "GetObjectAttributes": "s3:GetObjectAttributes", "PutObjectAcl": "s3:PutObjectAcl",
	"ListObjectVersions": "s3:ListBucketVersions", "DeleteBucket": "s3:DeleteBucket",
	"GetBucketAcl": "s3:GetBucketAcl", "PutBucketAcl": "s3:PutBucketAcl",
	"GetBucketPolicy": "s3:GetBucketPolicy", "PutBucketPolicy": "s3:PutBucketPolicy", "DeleteBucketPolicy": "s3:DeleteBucketPolicy",
	"GetBucketVersioning": "s3:GetBucketVersioning", "PutBucketVersioning": "s3:PutBucketVersioning",
	"GetBucketCors": "s3:GetBucketCORS", "PutBucketCors": "s3:PutBucketCORS", "DeleteBucketCors": "s3:PutBucketCORS",
	"GetBucketTagging": "s3:GetBucketTagging", "PutBucketTagging": "s3:PutBucketTagging", "DeleteBucketTagging": "s3:PutBucketTagging",
	"PostObject":                 "s3:PutObject",
	"GetBucketOwnershipControls": "s3:GetBucketOwnershipControls", "PutBucketOwnershipControls": "s3:PutBucketOwnershipControls",
	"DeleteBucketOwnershipControls": "s3:PutBucketOwnershipControls",
	"GetPublicAccessBlock":          "s3:GetBucketPublicAccessBlock", "PutPublicAccessBlock": "s3:PutBucketPublicAccessBlock",
	"DeletePublicAccessBlock": "s3:PutBucketPublicAccessBlock", "GetBucketPolicyStatus": "s3:GetBucketPolicyStatus",
}

// policyAPIs are the operations on the policy itself: a bucket's owner may
// always use them, whatever the policy denies, so it cannot lock itself
// out (AWS's rule).
var policyAPIs = map[string]bool{"GetBucketPolicy": true, "PutBucketPolicy": true, "DeleteBucketPolicy": true}

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
	p, err := policy.Parse(doc, rc.bucket)
	if err != nil {
		return apiErr("MalformedPolicy", strings.TrimPrefix(err.Error(), "malformed policy: "))
	}
	if _, pab := s.bucketControls(r, rc.bucket); pab.BlockPublicPolicy && p.IsPublic() {
		return apiErr("AccessDenied", "Access Denied: the bucket's public access block refuses public policies.")
	}
	if err := s.store.SetBucketConfig(r.Context(), rc.bucket, policyKind, doc); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// storedPolicy is a bucket's policy document (NoSuchBucketPolicy if none).
func (s *Server) storedPolicy(r *http.Request, bucket string) ([]byte, error) {
	b, err := s.store.HeadBucket(r.Context(), bucket)
	if err != nil {
		return nil, err
	}
	doc, ok := b.Config[policyKind]
	if !ok {
		return nil, apiErr("NoSuchBucketPolicy")
	}
	return doc, nil
}

func (s *Server) getBucketPolicy(w http.ResponseWriter, r *http.Request, rc *reqContext) error {
	doc, err := s.storedPolicy(r, rc.bucket)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(doc)
	return nil
}

func (s *Server) deleteBucketPolicy(w http.ResponseWriter, r *http.Request, rc *reqContext) error {
	return s.deleteBucketConfig(w, r, rc.bucket, policyKind)
}

// deleteBucketConfig removes one kind of a bucket's configuration: 204.
func (s *Server) deleteBucketConfig(w http.ResponseWriter, r *http.Request, bucket, kind string) error {
	if err := s.store.SetBucketConfig(r.Context(), bucket, kind, nil); err != nil {
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
	if !ok {
		// No policy: nothing to build a request for (that costs a read
		// of the object's record for its tags).
		return policy.Undecided, nil
	}
	req, known := s.policyRequest(r, rc)
	if !known {
		return policy.Undecided, nil
	}
	p, err := policy.Parse(doc, rc.bucket)
	if err != nil {
		return policy.Undecided, errors.Join(errors.New("stored bucket policy no longer parses"), err)
	}
	d := p.Evaluate(req)
	if d == policy.Allowed && (rc.anonymous || b.Owner != rc.user) {
		// RestrictPublicBuckets: a public policy allows only the owner.
		if _, pab := s.bucketControls(r, rc.bucket); pab.RestrictPublicBuckets && p.IsPublic() {
			return policy.Undecided, nil
		}
	}
	return d, nil
}

// policyRequest is what policies are evaluated against: the action,
// resource and condition keys of a request. known is false for requests
// no policy action names.
func (s *Server) policyRequest(r *http.Request, rc *reqContext) (policy.Request, bool) {
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
	now := s.cfg.Now().UTC()
	ctx := map[string][]string{
		"aws:securetransport": {"false"},
		"aws:currenttime":     {now.Format(time.RFC3339)},
		"aws:epochtime":       {strconv.FormatInt(now.Unix(), 10)},
	}
	set := func(key, v string) {
		if v != "" {
			ctx[key] = []string{v}
		}
	}
	set("aws:useragent", r.UserAgent())
	set("aws:referer", r.Referer())
	if r.TLS != nil {
		ctx["aws:securetransport"] = []string{"true"}
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		set("aws:sourceip", host)
	}
	principal, canonical := "", ""
	switch {
	case rc.anonymous:
		set("aws:principaltype", "Anonymous")
	case rc.root || rc.user == "":
		canonical = s.identity("").ID
		set("aws:principaltype", "Account")
		set("aws:userid", canonical)
	default:
		principal, canonical = rc.user, s.identity(rc.user).ID
		set("aws:principaltype", "User")
		set("aws:username", rc.user)
		set("aws:userid", canonical)
	}
	if rc.auth != nil && !rc.anonymous {
		if rc.auth.SigV2 {
			set("s3:signatureversion", "AWS")
		} else {
			set("s3:signatureversion", "AWS4-HMAC-SHA256")
		}
		switch {
		case rc.api == "PostObject":
			set("s3:authtype", "POST")
		case rc.auth.Presigned:
			set("s3:authtype", "REST-QUERY-STRING")
		default:
			set("s3:authtype", "REST-HEADER")
		}
	}
	if action == "s3:ListBucket" {
		ctx["s3:prefix"], ctx["s3:delimiter"] = []string{q.Get("prefix")}, []string{q.Get("delimiter")}
		set("s3:max-keys", q.Get("max-keys"))
	}
	set("s3:versionid", q.Get("versionId"))
	for _, h := range []string{"x-amz-acl", "x-amz-copy-source", "x-amz-metadata-directive", "x-amz-server-side-encryption",
		"x-amz-server-side-encryption-aws-kms-key-id", "x-amz-storage-class", "x-amz-grant-read", "x-amz-grant-write",
		"x-amz-grant-read-acp", "x-amz-grant-write-acp", "x-amz-grant-full-control"} {
		set("s3:"+h, r.Header.Get(h))
	}
	// Tags the request sets (x-amz-tagging) and tags the object has.
	if v := r.Header.Get("X-Amz-Tagging"); v != "" {
		if tags, err := url.ParseQuery(v); err == nil {
			for k, vs := range tags {
				ctx["s3:requestobjecttag/"+strings.ToLower(k)] = vs
				ctx["s3:requestobjecttagkeys"] = append(ctx["s3:requestobjecttagkeys"], k)
			}
		}
	}
	if rc.key != "" && existingTagActions[action] {
		if info, err := s.store.HeadObject(r.Context(), rc.bucket, rc.key); err == nil {
			for _, t := range info.Tags {
				ctx["s3:existingobjecttag/"+strings.ToLower(t.Name)] = []string{t.Value}
			}
		}
	}
	return policy.Request{Principal: principal, CanonicalID: canonical, Action: action, Resource: resource, Context: ctx}, true
}

// existingTagActions are those whose policies may test the object's
// current tags (s3:ExistingObjectTag/<key>).
var existingTagActions = map[string]bool{
	"s3:GetObject": true, "s3:GetObjectAcl": true, "s3:PutObjectAcl": true, "s3:GetObjectTagging": true,
	"s3:PutObjectTagging": true, "s3:DeleteObjectTagging": true, "s3:GetObjectAttributes": true,
}
