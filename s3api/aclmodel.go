package s3api

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
)

// ACLs as S3 has them: a list of grants of READ, WRITE, READ_ACP,
// WRITE_ACP or FULL_CONTROL to canonical users or to the groups AllUsers,
// AuthenticatedUsers and LogDelivery. A bucket's ACL is kept in its
// configuration, an object's in its record (header x-amz-acl, never sent
// to clients), either as a canned name, expanded when read, or as
// "grants:" and the grants in JSON. Everything in a bucket is its owner's
// (object ownership as "bucket owner preferred"): the owner always has
// full control, and grants give others more.

const (
	groupAllUsers      = "http://acs.amazonaws.com/groups/global/AllUsers"
	groupAuthenticated = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
	groupLogDelivery   = "http://acs.amazonaws.com/groups/s3/LogDelivery"
	grantsPrefix       = "grants:"
	maxGrants          = 100
)

var aclGroups = map[string]bool{groupAllUsers: true, groupAuthenticated: true, groupLogDelivery: true}

var aclPermissions = map[string]bool{"READ": true, "WRITE": true, "READ_ACP": true, "WRITE_ACP": true, "FULL_CONTROL": true}

// aclGrant is one grant: to a canonical user (ID) or a group (URI).
type aclGrant struct {
	ID   string `json:"id,omitempty"`
	URI  string `json:"uri,omitempty"`
	Perm string `json:"perm"`
}

// grantHeaders map x-amz-grant-* to permissions.
var grantHeaders = map[string]string{
	"X-Amz-Grant-Read": "READ", "X-Amz-Grant-Write": "WRITE", "X-Amz-Grant-Read-Acp": "READ_ACP",
	"X-Amz-Grant-Write-Acp": "WRITE_ACP", "X-Amz-Grant-Full-Control": "FULL_CONTROL",
}

// expandACL turns a stored ACL into grants; owner is the canonical id of
// the resource's owner.
func expandACL(stored, owner string) []aclGrant {
	if js, ok := strings.CutPrefix(stored, grantsPrefix); ok {
		var g []aclGrant
		json.Unmarshal([]byte(js), &g)
		return g
	}
	g := []aclGrant{{ID: owner, Perm: "FULL_CONTROL"}}
	switch stored {
	case "public-read":
		g = append(g, aclGrant{URI: groupAllUsers, Perm: "READ"})
	case "public-read-write":
		g = append(g, aclGrant{URI: groupAllUsers, Perm: "READ"}, aclGrant{URI: groupAllUsers, Perm: "WRITE"})
	case "authenticated-read":
		g = append(g, aclGrant{URI: groupAuthenticated, Perm: "READ"})
	case "aws-exec-read":
		// Read by the EC2 service, which Strata has none of.
	case "log-delivery-write":
		g = append(g, aclGrant{URI: groupLogDelivery, Perm: "WRITE"}, aclGrant{URI: groupLogDelivery, Perm: "READ_ACP"})
	}
	// bucket-owner-read and bucket-owner-full-control: the bucket owner
	// owns the object already.
	return g
}

func storeGrants(g []aclGrant) string {
	b, _ := json.Marshal(g)
	return grantsPrefix + string(b)
}

// grantsAllow reports whether grants give one of the caller's grantees
// (its canonical id, and the groups it is in) perm.
func grantsAllow(grants []aclGrant, callerID string, authenticated bool, perm string) bool {
	for _, g := range grants {
		if g.Perm != perm && g.Perm != "FULL_CONTROL" {
			continue
		}
		switch {
		case g.URI == groupAllUsers,
			g.URI == groupAuthenticated && authenticated,
			g.ID != "" && g.ID == callerID && authenticated:
			return true
		}
	}
	return false
}

// requestACL reads the ACL a request sets: a canned x-amz-acl, or
// x-amz-grant-* headers ("" if neither; both is an error). The result is
// in stored form.
func (s *Server) requestACL(r *http.Request, allowed map[string]bool) (string, error) {
	acl := r.Header.Get("X-Amz-Acl")
	var grants []aclGrant
	for header, perm := range grantHeaders {
		for _, v := range r.Header.Values(header) {
			g, err := s.parseGrantHeader(r.Context(), v, perm)
			if err != nil {
				return "", err
			}
			grants = append(grants, g...)
		}
	}
	switch {
	case acl != "" && len(grants) > 0:
		return "", apiErr("InvalidRequest", "Specifying both Canned ACLs and Header Grants is not allowed")
	case len(grants) > maxGrants:
		return "", apiErr("InvalidArgument", "An ACL may have at most 100 grants.")
	case len(grants) > 0:
		return storeGrants(grants), nil
	case acl != "" && !allowed[acl]:
		return "", apiErr("InvalidArgument", "The canned ACL "+acl+" is not valid.")
	}
	return acl, nil
}

// parseGrantHeader reads `id="..."`, `emailAddress="..."` and `uri="..."`
// grantees, comma-separated.
func (s *Server) parseGrantHeader(ctx context.Context, v, perm string) ([]aclGrant, error) {
	var out []aclGrant
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		k, val, ok := strings.Cut(item, "=")
		if !ok {
			return nil, apiErr("InvalidArgument", "Invalid grantee "+item+": use id=, emailAddress= or uri=.")
		}
		g, err := s.resolveGrantee(ctx, strings.TrimSpace(k), strings.Trim(strings.TrimSpace(val), `"`))
		if err != nil {
			return nil, err
		}
		g.Perm = perm
		out = append(out, g)
	}
	return out, nil
}

// resolveGrantee checks a grantee and names it as grants keep it: users by
// canonical id (an email is looked up once, as S3 does), groups by URI.
func (s *Server) resolveGrantee(ctx context.Context, kind, value string) (aclGrant, error) {
	switch strings.ToLower(kind) {
	case "id":
		if _, ok := s.cfg.Identity.UserByCanonicalID(ctx, value); !ok {
			return aclGrant{}, apiErr("InvalidArgument", "Invalid id")
		}
		return aclGrant{ID: value}, nil
	case "emailaddress":
		if user, ok := s.cfg.Identity.UserByEmail(ctx, value); ok {
			return aclGrant{ID: s.identity(user).ID}, nil
		}
		return aclGrant{}, &APIError{Code: "UnresolvableGrantByEmailAddress", Status: 400, Message: "The email address you provided does not match any account on record."}
	case "uri":
		if !aclGroups[value] {
			return aclGrant{}, apiErr("InvalidArgument", "Invalid group uri")
		}
		return aclGrant{URI: value}, nil
	}
	return aclGrant{}, apiErr("InvalidArgument", "Invalid grantee type "+kind)
}

// aclNeeds says which permission, on the bucket or on the object, an
// operation needs when an ACL is to allow it ("" if no ACL can).
func aclNeeds(api string) (onObject bool, perm string) {
	switch api {
	case "ListObjects", "ListObjectsV2", "ListObjectVersions", "ListMultipartUploads", "ListParts", "HeadBucket", "GetBucketLocation":
		return false, "READ"
	case "PutObject", "DeleteObject", "DeleteObjects", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload", "AbortMultipartUpload":
		return false, "WRITE"
	case "GetBucketAcl":
		return false, "READ_ACP"
	case "PutBucketAcl":
		return false, "WRITE_ACP"
	case "GetObject", "HeadObject", "GetObjectAttributes":
		return true, "READ"
	case "GetObjectAcl":
		return true, "READ_ACP"
	case "PutObjectAcl":
		return true, "WRITE_ACP"
	}
	return false, ""
}

// aclAllows reports whether the ACLs of the bucket (and object) the
// request names let the caller do the operation rc.api.
func (s *Server) aclAllows(r *http.Request, rc *reqContext, api string) bool {
	onObject, perm := aclNeeds(api)
	if perm == "" {
		return false
	}
	b, err := s.store.HeadBucket(r.Context(), rc.bucket)
	if err != nil {
		return false
	}
	ownership, pab := s.bucketControls(r, rc.bucket)
	if ownership == "BucketOwnerEnforced" {
		return false // ACLs are off
	}
	owner := s.bucketOwner(b).ID
	callerID, authenticated := "", !rc.anonymous
	if authenticated {
		callerID = s.owner(rc).ID
	}
	grants := func(stored string) []aclGrant {
		g := expandACL(stored, owner)
		if pab.IgnorePublicAcls {
			kept := g[:0]
			for _, x := range g {
				if x.URI != groupAllUsers && x.URI != groupAuthenticated {
					kept = append(kept, x)
				}
			}
			g = kept
		}
		return g
	}
	if !onObject {
		stored, _ := s.bucketACL(r, rc.bucket)
		return grantsAllow(grants(stored), callerID, authenticated, perm)
	}
	info, err := s.store.HeadObjectVersion(r.Context(), rc.bucket, rc.key, r.URL.Query().Get("versionId"))
	if err != nil {
		return false
	}
	return grantsAllow(grants(objectACL(info)), callerID, authenticated, perm)
}
