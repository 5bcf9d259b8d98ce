package s3api

import (
	"encoding/json"
	"encoding/xml"
	"net/http"

	"github.com/strata-storage/strata/s3api/policy"
)

// Object Ownership controls and Block Public Access, per bucket.
//
// Everything in a bucket is its owner's already, so the ownership settings
// that fit are BucketOwnerPreferred (the default here: ACLs work) and
// BucketOwnerEnforced (ACLs off: requests that set an ACL other than
// private or bucket-owner-full-control get AccessControlListNotSupported,
// grants are ignored, ACL reads show the owner only). ObjectWriter, where
// the writer owns an object, is refused with 501.
//
// A PublicAccessBlock's four switches: BlockPublicAcls refuses requests
// that set a public ACL (a grant to AllUsers or AuthenticatedUsers);
// IgnorePublicAcls makes such grants count for nothing; BlockPublicPolicy
// refuses a public bucket policy; RestrictPublicBuckets lets a public
// policy allow only the bucket's owner. Without a configuration none
// applies (as in RGW and MinIO; AWS turns them all on for new buckets).

const (
	ownershipKind = "ownership"
	pabKind       = "publicAccessBlock"
)

type publicAccessBlock struct {
	XMLName               xml.Name `xml:"PublicAccessBlockConfiguration" json:"-"`
	BlockPublicAcls       bool     `xml:"BlockPublicAcls" json:"block_public_acls"`
	IgnorePublicAcls      bool     `xml:"IgnorePublicAcls" json:"ignore_public_acls"`
	BlockPublicPolicy     bool     `xml:"BlockPublicPolicy" json:"block_public_policy"`
	RestrictPublicBuckets bool     `xml:"RestrictPublicBuckets" json:"restrict_public_buckets"`
}

var ownershipSettings = map[string]bool{"BucketOwnerEnforced": true, "BucketOwnerPreferred": true, "ObjectWriter": true}

// checkOwnershipSetting refuses what is not offered.
func checkOwnershipSetting(v string) error {
	switch {
	case !ownershipSettings[v]:
		return apiErr("InvalidArgument", "Invalid object ownership "+v)
	case v == "ObjectWriter":
		return apiErr("NotImplemented", "ObjectWriter ownership is not implemented: a bucket's owner owns everything in it (BucketOwnerPreferred or BucketOwnerEnforced).")
	}
	return nil
}

// bucketControls are a bucket's ownership setting and public access block.
func (s *Server) bucketControls(r *http.Request, bucket string) (ownership string, pab publicAccessBlock) {
	b, err := s.store.HeadBucket(r.Context(), bucket)
	if err != nil {
		return "", pab
	}
	if v, ok := b.Config[ownershipKind]; ok {
		json.Unmarshal(v, &ownership)
	}
	if v, ok := b.Config[pabKind]; ok {
		json.Unmarshal(v, &pab)
	}
	return ownership, pab
}

// isPublicACL reports whether a stored ACL grants anything to AllUsers or
// AuthenticatedUsers.
func isPublicACL(stored string) bool {
	for _, g := range expandACL(stored, "") {
		if g.URI == groupAllUsers || g.URI == groupAuthenticated {
			return true
		}
	}
	return false
}

// checkACLSetting refuses setting ACL stored on bucket when the bucket's
// controls forbid it.
func (s *Server) checkACLSetting(r *http.Request, bucket, stored string) error {
	if stored == "" {
		return nil
	}
	ownership, pab := s.bucketControls(r, bucket)
	if ownership == "BucketOwnerEnforced" && stored != "private" && stored != "bucket-owner-full-control" {
		return &APIError{Code: "AccessControlListNotSupported", Status: 400, Message: "The bucket does not allow ACLs"}
	}
	if pab.BlockPublicAcls && isPublicACL(stored) {
		return apiErr("AccessDenied", "Access Denied: the bucket's public access block refuses public ACLs.")
	}
	return nil
}

func (s *Server) getBucketOwnershipControls(w http.ResponseWriter, r *http.Request, rc *reqContext) error {
	ownership, _ := s.bucketControls(r, rc.bucket)
	if _, err := s.store.HeadBucket(r.Context(), rc.bucket); err != nil {
		return err
	}
	if ownership == "" {
		return &APIError{Code: "OwnershipControlsNotFoundError", Status: 404, Message: "The bucket ownership controls were not found"}
	}
	return writeXML(w, http.StatusOK, ownershipControls{XMLName: xml.Name{Space: "http://s3.amazonaws.com/doc/2006-03-01/", Local: "OwnershipControls"}, Rules: []ownershipRule{{ownership}}})
}

type ownershipRule struct {
	ObjectOwnership string `xml:"ObjectOwnership"`
}

type ownershipControls struct {
	XMLName xml.Name
	Rules   []ownershipRule `xml:"Rule"`
}

func (s *Server) putBucketOwnershipControls(w http.ResponseWriter, r *http.Request, rc *reqContext) error {
	if _, err := s.store.HeadBucket(r.Context(), rc.bucket); err != nil {
		return err
	}
	body, err := readSmallBody(r, rc, 64<<10)
	if err != nil {
		return err
	}
	var doc ownershipControls
	if err := decodeDocument(body, "OwnershipControls", &doc); err != nil || len(doc.Rules) != 1 {
		return apiErr("MalformedXML")
	}
	if err := checkOwnershipSetting(doc.Rules[0].ObjectOwnership); err != nil {
		return err
	}
	v, _ := json.Marshal(doc.Rules[0].ObjectOwnership)
	if err := s.store.SetBucketConfig(r.Context(), rc.bucket, ownershipKind, v); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) deleteBucketOwnershipControls(w http.ResponseWriter, r *http.Request, rc *reqContext) error {
	return s.deleteBucketConfig(w, r, rc.bucket, ownershipKind)
}

func (s *Server) getPublicAccessBlock(w http.ResponseWriter, r *http.Request, rc *reqContext) error {
	b, err := s.store.HeadBucket(r.Context(), rc.bucket)
	if err != nil {
		return err
	}
	if _, ok := b.Config[pabKind]; !ok {
		return &APIError{Code: "NoSuchPublicAccessBlockConfiguration", Status: 404, Message: "The public access block configuration was not found"}
	}
	_, pab := s.bucketControls(r, rc.bucket)
	pab.XMLName = xml.Name{Space: "http://s3.amazonaws.com/doc/2006-03-01/", Local: "PublicAccessBlockConfiguration"}
	return writeXML(w, http.StatusOK, pab)
}

func (s *Server) putPublicAccessBlock(w http.ResponseWriter, r *http.Request, rc *reqContext) error {
	if _, err := s.store.HeadBucket(r.Context(), rc.bucket); err != nil {
		return err
	}
	body, err := readSmallBody(r, rc, 64<<10)
	if err != nil {
		return err
	}
	var pab publicAccessBlock
	if err := decodeDocument(body, "PublicAccessBlockConfiguration", &pab); err != nil {
		return apiErr("MalformedXML")
	}
	v, _ := json.Marshal(pab)
	if err := s.store.SetBucketConfig(r.Context(), rc.bucket, pabKind, v); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) deletePublicAccessBlock(w http.ResponseWriter, r *http.Request, rc *reqContext) error {
	return s.deleteBucketConfig(w, r, rc.bucket, pabKind)
}

// getBucketPolicyStatus says whether the bucket's policy is public.
func (s *Server) getBucketPolicyStatus(w http.ResponseWriter, r *http.Request, rc *reqContext) error {
	doc, err := s.storedPolicy(r, rc.bucket)
	if err != nil {
		return err
	}
	p, err := policy.Parse(doc, rc.bucket)
	if err != nil {
		return err
	}
	return writeXML(w, http.StatusOK, struct {
		XMLName  xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ PolicyStatus"`
		IsPublic bool     `xml:"IsPublic"`
	}{IsPublic: p.IsPublic()})
}
