package s3api

import (
	"encoding/xml"
	"net/http"
	"strings"

	"github.com/strata-storage/strata/objectstore"
	"github.com/strata-storage/strata/s3api/policy"
)

// Canned ACLs. A bucket's ACL is kept in its configuration, an object's in
// its record (header x-amz-acl, never returned as a header). They decide
// what unsigned (anonymous) requests may do: a public-read bucket may be
// listed, a public-read-write bucket also written, a public-read object
// read. Grants by explicit grantee (x-amz-grant-*, ACL documents) are not
// implemented and answered 501.

const (
	aclKind   = "acl"
	aclHeader = "x-amz-acl"
)

var (
	bucketACLs = map[string]bool{"private": true, "public-read": true, "public-read-write": true, "authenticated-read": true}
	objectACLs = map[string]bool{"private": true, "public-read": true, "public-read-write": true, "authenticated-read": true,
		"aws-exec-read": true, "bucket-owner-read": true, "bucket-owner-full-control": true}
)

// requestACL returns the canned ACL a request sets ("" if none).
func requestACL(r *http.Request, allowed map[string]bool) (string, error) {
	for name := range r.Header {
		if strings.HasPrefix(name, "X-Amz-Grant-") {
			return "", apiErr("NotImplemented", "Grants by grantee (x-amz-grant-*) are not implemented; use a canned ACL.")
		}
	}
	acl := r.Header.Get("X-Amz-Acl")
	if acl != "" && !allowed[acl] {
		return "", apiErr("InvalidArgument", "The canned ACL "+acl+" is not valid.")
	}
	return acl, nil
}

func (s *Server) bucketACL(r *http.Request, bucket string) (string, error) {
	b, err := s.store.HeadBucket(r.Context(), bucket)
	if err != nil {
		return "", err
	}
	if v, ok := b.Config[aclKind]; ok {
		return strings.Trim(string(v), `"`), nil
	}
	return "private", nil
}

func objectACL(info objectstore.ObjectInfo) string {
	for _, h := range info.Headers {
		if h.Name == aclHeader {
			return h.Value
		}
	}
	return "private"
}

func (s *Server) setBucketACL(r *http.Request, bucket, acl string) error {
	if acl == "" || acl == "private" {
		return s.store.SetBucketConfig(r.Context(), bucket, aclKind, nil)
	}
	return s.store.SetBucketConfig(r.Context(), bucket, aclKind, []byte(`"`+acl+`"`))
}

type grantee struct {
	XMLNS       string `xml:"xmlns:xsi,attr"`
	Type        string `xml:"xsi:type,attr"`
	ID          string `xml:"ID,omitempty"`
	DisplayName string `xml:"DisplayName,omitempty"`
	URI         string `xml:"URI,omitempty"`
}

type grant struct {
	Grantee    grantee `xml:"Grantee"`
	Permission string  `xml:"Permission"`
}

const allUsers = "http://acs.amazonaws.com/groups/global/AllUsers"

func (s *Server) writeACL(w http.ResponseWriter, r *http.Request, rc *reqContext, acl string) error {
	own := s.ownerOf(r, rc.bucket)
	grants := []grant{{Grantee: grantee{XMLNS: "http://www.w3.org/2001/XMLSchema-instance", Type: "CanonicalUser", ID: own.ID, DisplayName: own.DisplayName}, Permission: "FULL_CONTROL"}}
	group := func(perm string) grant {
		return grant{Grantee: grantee{XMLNS: "http://www.w3.org/2001/XMLSchema-instance", Type: "Group", URI: allUsers}, Permission: perm}
	}
	switch acl {
	case "public-read":
		grants = append(grants, group("READ"))
	case "public-read-write":
		grants = append(grants, group("READ"), group("WRITE"))
	}
	return writeXML(w, http.StatusOK, struct {
		XMLName xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ AccessControlPolicy"`
		Owner   owner    `xml:"Owner"`
		Grants  []grant  `xml:"AccessControlList>Grant"`
	}{Owner: own, Grants: grants})
}

// putACLRequest takes the canned ACL of a PutBucketAcl/PutObjectAcl; an
// ACL document in the body is not implemented.
func putACLRequest(r *http.Request, allowed map[string]bool) (string, error) {
	acl, err := requestACL(r, allowed)
	if err != nil {
		return "", err
	}
	if acl == "" {
		if r.ContentLength > 0 {
			return "", apiErr("NotImplemented", "ACL documents are not implemented; set a canned ACL with x-amz-acl.")
		}
		return "", apiErr("MissingSecurityHeader", "Your request was missing a required header: x-amz-acl")
	}
	return acl, nil
}

func (s *Server) getBucketAcl(w http.ResponseWriter, r *http.Request, rc *reqContext) error {
	acl, err := s.bucketACL(r, rc.bucket)
	if err != nil {
		return err
	}
	return s.writeACL(w, r, rc, acl)
}

func (s *Server) putBucketAcl(w http.ResponseWriter, r *http.Request, rc *reqContext) error {
	acl, err := putACLRequest(r, bucketACLs)
	if err != nil {
		return err
	}
	if err := s.setBucketACL(r, rc.bucket, acl); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) getObjectAcl(w http.ResponseWriter, r *http.Request, rc *reqContext) error {
	info, err := s.store.HeadObject(r.Context(), rc.bucket, rc.key)
	if err != nil {
		return err
	}
	return s.writeACL(w, r, rc, objectACL(info))
}

func (s *Server) putObjectAcl(w http.ResponseWriter, r *http.Request, rc *reqContext) error {
	acl, err := putACLRequest(r, objectACLs)
	if err != nil {
		return err
	}
	if acl == "private" {
		acl = ""
	}
	if err := s.store.SetHeader(r.Context(), rc.bucket, rc.key, aclHeader, acl); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// authorizeAnonymous decides what an unsigned request may do: the bucket
// policy first (an explicit Deny refuses, an Allow grants), then the canned
// ACLs of the bucket and object it names.
func (s *Server) authorizeAnonymous(r *http.Request, rc *reqContext) error {
	denied := apiErr("AccessDenied")
	if rc.bucket == "" {
		return denied
	}
	switch d, err := s.policyDecision(r, rc); {
	case err != nil:
		return err
	case d == policy.Denied:
		return denied
	case d == policy.Allowed:
		return nil
	}
	bucketACL, err := s.bucketACL(r, rc.bucket)
	if err != nil {
		return err
	}
	switch rc.api {
	case "ListObjects", "ListObjectsV2", "HeadBucket", "GetBucketLocation":
		if bucketACL == "public-read" || bucketACL == "public-read-write" {
			return nil
		}
	case "PutObject", "DeleteObject", "DeleteObjects", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload", "AbortMultipartUpload":
		if bucketACL == "public-read-write" && r.Header.Get("X-Amz-Copy-Source") == "" {
			return nil
		}
	case "GetObject", "HeadObject", "GetObjectAttributes":
		info, err := s.store.HeadObject(r.Context(), rc.bucket, rc.key)
		if err != nil {
			return denied // do not tell anonymous callers which keys exist
		}
		if acl := objectACL(info); acl == "public-read" || acl == "public-read-write" {
			return nil
		}
	}
	return denied
}

// authorizeUser lets a signed request of a user other than root through
// to its own buckets, and to others' as far as their bucket policies
// allow; an explicit Deny in a policy binds the owner too. A copy needs
// read access to its source as well.
func (s *Server) authorizeUser(r *http.Request, rc *reqContext) error {
	if rc.api == "CreateBucket" && s.cfg.MayCreateBucket != nil && !s.cfg.MayCreateBucket(r.Context(), rc.user) {
		return apiErr("TooManyBuckets")
	}
	if rc.bucket == "" || rc.api == "CreateBucket" {
		return nil // ListBuckets shows the user's own; a new bucket is theirs
	}
	if err := s.userMayUse(r, rc); err != nil {
		return err
	}
	if src := r.Header.Get("X-Amz-Copy-Source"); src != "" {
		bucket, key, _, err := copySource(src)
		if err != nil {
			return nil // the handler answers the malformed header
		}
		read := &reqContext{api: "GetObject", bucket: bucket, key: key, user: rc.user}
		return s.userMayUse(r, read)
	}
	return nil
}

func (s *Server) userMayUse(r *http.Request, rc *reqContext) error {
	b, err := s.store.HeadBucket(r.Context(), rc.bucket)
	if err != nil {
		return nil // no such bucket: the handler says so
	}
	d, err := s.policyDecision(r, rc)
	if err != nil {
		return err
	}
	// The user's own (IAM-style) policy is weighed with the bucket's:
	// a Deny in either wins, then ownership or an Allow in either.
	ud := policy.Undecided
	if s.cfg.UserPolicy != nil {
		if up := s.cfg.UserPolicy(r.Context(), rc.user); up != nil {
			if req, ok := policyRequest(r, rc); ok {
				ud = up.Evaluate(req)
			}
		}
	}
	switch {
	case d == policy.Denied || ud == policy.Denied:
		return apiErr("AccessDenied")
	case b.Owner == rc.user || d == policy.Allowed || ud == policy.Allowed:
		return nil
	}
	return apiErr("AccessDenied")
}
