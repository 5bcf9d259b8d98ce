package s3api

import (
	"encoding/json"
	"encoding/xml"
	"net/http"
	"strings"

	"github.com/strata-storage/strata/objectstore"
	"github.com/strata-storage/strata/s3api/policy"
)

// The ACL operations (the model is in aclmodel.go).

const (
	aclKind   = "acl"
	aclHeader = "x-amz-acl"
)

var (
	bucketACLs = map[string]bool{"private": true, "public-read": true, "public-read-write": true, "authenticated-read": true, "log-delivery-write": true}
	objectACLs = map[string]bool{"private": true, "public-read": true, "public-read-write": true, "authenticated-read": true,
		"aws-exec-read": true, "bucket-owner-read": true, "bucket-owner-full-control": true}
)

// bucketACL is a bucket's stored ACL ("private" if none).
func (s *Server) bucketACL(r *http.Request, bucket string) (string, error) {
	b, err := s.store.HeadBucket(r.Context(), bucket)
	if err != nil {
		return "", err
	}
	if v, ok := b.Config[aclKind]; ok {
		var stored string
		if json.Unmarshal(v, &stored) == nil {
			return stored, nil
		}
	}
	return "private", nil
}

// objectACL is an object's stored ACL ("private" if none).
func objectACL(info objectstore.ObjectInfo) string {
	for _, h := range info.Headers {
		if h.Name == aclHeader {
			return h.Value
		}
	}
	return "private"
}

func (s *Server) setBucketACL(r *http.Request, bucket, stored string) error {
	if stored == "" || stored == "private" {
		return s.store.SetBucketConfig(r.Context(), bucket, aclKind, nil)
	}
	v, _ := json.Marshal(stored)
	return s.store.SetBucketConfig(r.Context(), bucket, aclKind, v)
}

type grantee struct {
	XMLNS        string `xml:"xmlns:xsi,attr"`
	Type         string `xml:"xsi:type,attr"`
	ID           string `xml:"ID,omitempty"`
	DisplayName  string `xml:"DisplayName,omitempty"`
	EmailAddress string `xml:"EmailAddress,omitempty"`
	URI          string `xml:"URI,omitempty"`
}

type grant struct {
	Grantee    grantee `xml:"Grantee"`
	Permission string  `xml:"Permission"`
}

func (s *Server) writeACL(w http.ResponseWriter, r *http.Request, rc *reqContext, stored string) error {
	own := s.ownerOf(r, rc.bucket)
	if ownership, _ := s.bucketControls(r, rc.bucket); ownership == "BucketOwnerEnforced" {
		stored = "private" // ACLs are off: the owner has it all
	}
	var grants []grant
	for _, g := range expandACL(stored, own.ID) {
		ge := grantee{XMLNS: "http://www.w3.org/2001/XMLSchema-instance", Type: "Group", URI: g.URI}
		if g.ID != "" {
			ge = grantee{XMLNS: ge.XMLNS, Type: "CanonicalUser", ID: g.ID, DisplayName: s.displayNameOf(r, g.ID)}
		}
		grants = append(grants, grant{Grantee: ge, Permission: g.Perm})
	}
	return writeXML(w, http.StatusOK, struct {
		XMLName xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ AccessControlPolicy"`
		Owner   owner    `xml:"Owner"`
		Grants  []grant  `xml:"AccessControlList>Grant"`
	}{Owner: own, Grants: grants})
}

// displayNameOf is the user name of a canonical id ("" if unknown).
func (s *Server) displayNameOf(r *http.Request, id string) string {
	user, ok := s.cfg.Identity.UserByCanonicalID(r.Context(), id)
	if !ok {
		return ""
	}
	return s.identity(user).DisplayName
}

// aclDocument is an AccessControlPolicy a client sends.
type aclDocument struct {
	Owner struct {
		ID string `xml:"ID"`
	} `xml:"Owner"`
	Grants []struct {
		Grantee struct {
			Type         string `xml:"type,attr"`
			ID           string `xml:"ID"`
			EmailAddress string `xml:"EmailAddress"`
			URI          string `xml:"URI"`
		} `xml:"Grantee"`
		Permission string `xml:"Permission"`
	} `xml:"AccessControlList>Grant"`
}

// putACLRequest reads the ACL of a PutBucketAcl/PutObjectAcl: a canned
// x-amz-acl, x-amz-grant-* headers or an AccessControlPolicy document,
// exactly one of them. owner is the resource owner's canonical id.
func (s *Server) putACLRequest(r *http.Request, rc *reqContext, allowed map[string]bool, owner string) (string, error) {
	stored, err := s.requestACL(r, allowed)
	if err != nil {
		return "", err
	}
	body, err := readSmallBody(r, rc, 64<<10)
	if err != nil {
		return "", err
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		if stored == "" {
			return "", apiErr("MissingSecurityHeader", "Your request was missing a required header: x-amz-acl")
		}
		return stored, nil
	}
	if stored != "" {
		return "", &APIError{Code: "UnexpectedContent", Status: 400, Message: "This request does not support content when an ACL is given in headers."}
	}
	var doc aclDocument
	if err := decodeDocument(body, "AccessControlPolicy", &doc); err != nil {
		return "", apiErr("MalformedACLError", "The XML you provided was not well-formed or did not validate against our published schema.")
	}
	if doc.Owner.ID != "" && doc.Owner.ID != owner {
		return "", apiErr("AccessDenied", "The Owner in the ACL is not the owner of the resource.")
	}
	if len(doc.Grants) > maxGrants {
		return "", apiErr("MalformedACLError", "An ACL may have at most 100 grants.")
	}
	var grants []aclGrant
	for _, g := range doc.Grants {
		if !aclPermissions[g.Permission] {
			return "", apiErr("MalformedACLError", "Invalid permission "+g.Permission)
		}
		kind, value := "", ""
		switch g.Grantee.Type {
		case "CanonicalUser":
			kind, value = "id", g.Grantee.ID
		case "AmazonCustomerByEmail":
			kind, value = "emailAddress", g.Grantee.EmailAddress
		case "Group":
			kind, value = "uri", g.Grantee.URI
		default:
			return "", apiErr("MalformedACLError", "Invalid grantee type "+g.Grantee.Type)
		}
		ag, err := s.resolveGrantee(r.Context(), kind, value)
		if err != nil {
			return "", err
		}
		ag.Perm = g.Permission
		grants = append(grants, ag)
	}
	return storeGrants(grants), nil
}

func (s *Server) getBucketAcl(w http.ResponseWriter, r *http.Request, rc *reqContext) error {
	acl, err := s.bucketACL(r, rc.bucket)
	if err != nil {
		return err
	}
	return s.writeACL(w, r, rc, acl)
}

func (s *Server) putBucketAcl(w http.ResponseWriter, r *http.Request, rc *reqContext) error {
	b, err := s.store.HeadBucket(r.Context(), rc.bucket)
	if err != nil {
		return err
	}
	acl, err := s.putACLRequest(r, rc, bucketACLs, s.bucketOwner(b).ID)
	if err != nil {
		return err
	}
	if err := s.checkACLSetting(r, rc.bucket, acl); err != nil {
		return err
	}
	if err := s.setBucketACL(r, rc.bucket, acl); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) getObjectAcl(w http.ResponseWriter, r *http.Request, rc *reqContext) error {
	info, err := s.store.HeadObjectVersion(r.Context(), rc.bucket, rc.key, r.URL.Query().Get("versionId"))
	if err != nil {
		return deleteMarkerError(w, err)
	}
	s.setVersionHeader(w, r, rc.bucket, info.VersionID)
	return s.writeACL(w, r, rc, objectACL(info))
}

func (s *Server) putObjectAcl(w http.ResponseWriter, r *http.Request, rc *reqContext) error {
	vid := r.URL.Query().Get("versionId")
	if _, err := s.store.HeadObjectVersion(r.Context(), rc.bucket, rc.key, vid); err != nil {
		return deleteMarkerError(w, err)
	}
	acl, err := s.putACLRequest(r, rc, objectACLs, s.ownerOf(r, rc.bucket).ID)
	if err != nil {
		return err
	}
	if err := s.checkACLSetting(r, rc.bucket, acl); err != nil {
		return err
	}
	if acl == "private" {
		acl = ""
	}
	if err := s.store.SetHeaderVersion(r.Context(), rc.bucket, rc.key, vid, aclHeader, acl); err != nil {
		return deleteMarkerError(w, err)
	}
	if vid != "" {
		s.setVersionHeader(w, r, rc.bucket, vid)
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// authorizeAnonymous decides what an unsigned request may do: the bucket
// policy first (an explicit Deny refuses, an Allow grants), then the ACLs
// of the bucket and object it names (grants to AllUsers).
func (s *Server) authorizeAnonymous(r *http.Request, rc *reqContext) error {
	denied := apiErr("AccessDenied")
	if rc.bucket == "" {
		return denied
	}
	if _, err := s.store.HeadBucket(r.Context(), rc.bucket); err != nil {
		return err
	}
	switch d, err := s.policyDecision(r, rc); {
	case err != nil:
		return err
	case d == policy.Denied:
		return denied
	case d == policy.Allowed:
		return nil
	}
	if r.Header.Get("X-Amz-Copy-Source") != "" {
		return denied // a copy reads another object: not for anonymous callers
	}
	if s.aclAllows(r, rc, rc.api) {
		return nil
	}
	return denied // nor are they told which keys exist
}

// authorizeUser lets a signed request of a user other than root through
// to its own buckets, and to others' as far as their bucket policies or
// ACLs allow; an explicit Deny in a policy binds the owner too. A copy needs
// read access to its source as well.
func (s *Server) authorizeUser(r *http.Request, rc *reqContext) error {
	if rc.api == "CreateBucket" && !s.cfg.Identity.MayCreateBucket(r.Context(), rc.user) {
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
	if up := s.cfg.Identity.UserPolicy(r.Context(), rc.user); up != nil {
		if req, ok := s.policyRequest(r, rc); ok {
			ud = up.Evaluate(req)
		}
	}
	switch {
	case d == policy.Denied && b.Owner == rc.user && policyAPIs[rc.api] && ud != policy.Denied:
		return nil // the owner cannot lock itself out of its policy
	case d == policy.Denied || ud == policy.Denied:
		return apiErr("AccessDenied")
	case b.Owner == rc.user || d == policy.Allowed || ud == policy.Allowed:
		return nil
	case s.aclAllows(r, rc, rc.api):
		return nil
	}
	return apiErr("AccessDenied")
}
