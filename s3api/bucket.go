package s3api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/strata-storage/strata/objectstore"
	"github.com/strata-storage/strata/s3api/sigv4"
)

type owner struct {
	ID          string `xml:"ID"`
	DisplayName string `xml:"DisplayName"`
}

func (s *Server) owner(rc *reqContext) owner {
	if rc != nil && !rc.root && rc.user != "" {
		return s.identity(rc.user)
	}
	return s.identity("")
}

// identity is user's Owner element ("" is root).
func (s *Server) identity(user string) owner {
	display := user
	if user == "" {
		display = s.cfg.OwnerID
	}
	id := s.cfg.Identity.CanonicalID(context.Background(), user)
	return owner{ID: id, DisplayName: display}
}

// bucketOwner is the owner of b as S3 reports it.
func (s *Server) bucketOwner(b objectstore.BucketInfo) owner { return s.identity(b.Owner) }

// ownerOf is the owner of bucket, which (with ACLs' object ownership at
// its default, bucket owner enforced) also owns its objects and uploads.
func (s *Server) ownerOf(r *http.Request, bucket string) owner {
	b, err := s.store.HeadBucket(r.Context(), bucket)
	if err != nil {
		return s.identity("")
	}
	return s.bucketOwner(b)
}

func (s *Server) listBuckets(w http.ResponseWriter, r *http.Request, rc *reqContext) error {
	type bucket struct {
		Name         string `xml:"Name"`
		CreationDate string `xml:"CreationDate"`
		BucketRegion string `xml:"BucketRegion"`
	}
	var out struct {
		XMLName xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListAllMyBucketsResult"`
		Owner   owner    `xml:"Owner"`
		Buckets []bucket `xml:"Buckets>Bucket"`
	}
	out.Owner = s.owner(rc)
	for _, b := range s.store.ListBuckets(r.Context()) {
		if !rc.root && b.Owner != rc.user {
			continue // a user lists its own buckets
		}
		out.Buckets = append(out.Buckets, bucket{b.Name, isoTime(b.Created), s.cfg.Region})
	}
	return writeXML(w, http.StatusOK, out)
}

func (s *Server) createBucket(w http.ResponseWriter, r *http.Request, rc *reqContext) error {
	if !objectstore.ValidBucketName(rc.bucket) {
		return apiErr("InvalidBucketName")
	}
	acl, err := s.requestACL(r, bucketACLs)
	if err != nil {
		return err
	}
	if strings.EqualFold(r.Header.Get("X-Amz-Bucket-Object-Lock-Enabled"), "true") {
		return apiErr("NotImplemented", "Object lock is not implemented.")
	}
	body, err := readSmallBody(r, rc, 64<<10)
	if err != nil {
		return err
	}
	location, err := parseLocation(body)
	if err != nil {
		return err
	}
	{
		if c := location; c != "" && c != s.cfg.Region && !(c == "US" && s.cfg.Region == "us-east-1") {
			return &APIError{Code: "IllegalLocationConstraintException", Status: 400,
				Message: "The " + c + " location constraint is incompatible for the region specific endpoint this request was sent to (" + s.cfg.Region + ")."}
		}
	}
	ownership := r.Header.Get("X-Amz-Object-Ownership")
	if ownership != "" {
		if err := checkOwnershipSetting(ownership); err != nil {
			return err
		}
		if ownership == "BucketOwnerEnforced" && acl != "" && acl != "private" && acl != "bucket-owner-full-control" {
			return apiErr("InvalidBucketAclWithObjectOwnership", "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting")
		}
	}
	owner := ""
	if !rc.root {
		owner = rc.user
	}
	if err := s.store.CreateBucketFor(r.Context(), rc.bucket, owner); err != nil {
		if !errors.Is(err, objectstore.ErrBucketExists) {
			return err
		}
		b, herr := s.store.HeadBucket(r.Context(), rc.bucket)
		switch {
		case herr != nil:
			return err
		case b.Owner != owner:
			return apiErr("BucketAlreadyExists")
		case s.cfg.Region != "us-east-1":
			return apiErr("BucketAlreadyOwnedByYou")
		}
		// us-east-1 answers 200 to its owner and resets the bucket's ACL to
		// what this request asks (private by default), as AWS does there.
		if err := s.setBucketACL(r, rc.bucket, acl); err != nil {
			return err
		}
		w.Header().Set("Location", "/"+rc.bucket)
		w.WriteHeader(http.StatusOK)
		return nil
	}
	if acl != "" && acl != "private" {
		if err := s.setBucketACL(r, rc.bucket, acl); err != nil {
			return err
		}
	}
	if ownership != "" {
		v, _ := json.Marshal(ownership)
		if err := s.store.SetBucketConfig(r.Context(), rc.bucket, ownershipKind, v); err != nil {
			return err
		}
	}
	w.Header().Set("Location", "/"+rc.bucket)
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) headBucket(w http.ResponseWriter, r *http.Request, rc *reqContext) error {
	if _, err := s.store.HeadBucket(r.Context(), rc.bucket); err != nil {
		return err
	}
	w.Header().Set("X-Amz-Bucket-Region", s.cfg.Region)
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) deleteBucket(w http.ResponseWriter, r *http.Request, rc *reqContext) error {
	if err := s.store.DeleteBucket(r.Context(), rc.bucket); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) getBucketLocation(w http.ResponseWriter, r *http.Request, rc *reqContext) error {
	if _, err := s.store.HeadBucket(r.Context(), rc.bucket); err != nil {
		return err
	}
	loc := s.cfg.Region
	if loc == "us-east-1" {
		loc = "" // S3 reports the classic region as an empty constraint
	}
	return writeXML(w, http.StatusOK, struct {
		XMLName xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ LocationConstraint"`
		Value   string   `xml:",chardata"`
	}{Value: loc})
}

type listEntry struct {
	Key          string `xml:"Key"`
	LastModified string `xml:"LastModified"`
	ETag         string `xml:"ETag"`
	Size         int64  `xml:"Size"`
	StorageClass string `xml:"StorageClass"`
	Owner        *owner `xml:"Owner,omitempty"`
}

type commonPrefix struct {
	Prefix string `xml:"Prefix"`
}

func maxKeysParam(r *http.Request, name string, def int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, apiErr("InvalidArgument", "Provided "+name+" not an integer or within integer range")
	}
	return min(n, 1000), nil
}

func encodingParam(r *http.Request) (func(string) string, string, error) {
	switch et := r.URL.Query().Get("encoding-type"); et {
	case "":
		return func(s string) string { return s }, "", nil
	case "url":
		return func(s string) string { return sigv4.URIEncode(s, false) }, "url", nil
	default:
		return nil, "", apiErr("InvalidArgument", "Invalid Encoding Method specified in Request")
	}
}

func (s *Server) list(r *http.Request, rc *reqContext, after string) (*objectstore.ListResult, int, error) {
	q := r.URL.Query()
	maxKeys, err := maxKeysParam(r, "max-keys", 1000)
	if err != nil {
		return nil, 0, err
	}
	res, err := s.store.ListObjects(r.Context(), rc.bucket, objectstore.ListOptions{
		Prefix: q.Get("prefix"), Delimiter: q.Get("delimiter"), After: after, MaxKeys: maxKeys,
	})
	return res, maxKeys, err
}

func (s *Server) entries(res *objectstore.ListResult, enc func(string) string, own *owner) ([]listEntry, []commonPrefix) {
	var out []listEntry
	for _, o := range res.Objects {
		out = append(out, listEntry{Key: enc(o.Key), LastModified: isoTime(o.ModTime), ETag: `"` + o.ETag + `"`, Size: o.Size, StorageClass: "STANDARD", Owner: own})
	}
	var prefixes []commonPrefix
	for _, p := range res.Prefixes {
		prefixes = append(prefixes, commonPrefix{enc(p)})
	}
	return out, prefixes
}

func (s *Server) listObjectsV1(w http.ResponseWriter, r *http.Request, rc *reqContext) error {
	enc, encType, err := encodingParam(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	res, maxKeys, err := s.list(r, rc, q.Get("marker"))
	if err != nil {
		return err
	}
	own := s.ownerOf(r, rc.bucket)
	contents, prefixes := s.entries(res, enc, &own)
	out := struct {
		XMLName        xml.Name       `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListBucketResult"`
		Name           string         `xml:"Name"`
		Prefix         string         `xml:"Prefix"`
		Marker         string         `xml:"Marker"`
		NextMarker     string         `xml:"NextMarker,omitempty"`
		MaxKeys        int            `xml:"MaxKeys"`
		Delimiter      string         `xml:"Delimiter,omitempty"`
		IsTruncated    bool           `xml:"IsTruncated"`
		EncodingType   string         `xml:"EncodingType,omitempty"`
		Contents       []listEntry    `xml:"Contents"`
		CommonPrefixes []commonPrefix `xml:"CommonPrefixes"`
	}{Name: rc.bucket, Prefix: enc(q.Get("prefix")), Marker: enc(q.Get("marker")), MaxKeys: maxKeys,
		Delimiter: enc(q.Get("delimiter")), IsTruncated: res.Truncated, EncodingType: encType, Contents: contents, CommonPrefixes: prefixes}
	if res.Truncated && q.Get("delimiter") != "" {
		out.NextMarker = enc(res.Next)
	}
	return writeXML(w, http.StatusOK, out)
}

func (s *Server) listObjectsV2(w http.ResponseWriter, r *http.Request, rc *reqContext) error {
	enc, encType, err := encodingParam(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	after := q.Get("start-after")
	token := q.Get("continuation-token")
	if q.Has("continuation-token") {
		b, err := base64.RawURLEncoding.DecodeString(token)
		if err != nil || token == "" {
			return apiErr("InvalidArgument", "The continuation token provided is incorrect")
		}
		after = string(b)
	}
	res, maxKeys, err := s.list(r, rc, after)
	if err != nil {
		return err
	}
	var own *owner
	if q.Get("fetch-owner") == "true" {
		o := s.ownerOf(r, rc.bucket)
		own = &o
	}
	contents, prefixes := s.entries(res, enc, own)
	out := struct {
		XMLName               xml.Name       `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListBucketResult"`
		Name                  string         `xml:"Name"`
		Prefix                string         `xml:"Prefix"`
		StartAfter            string         `xml:"StartAfter,omitempty"`
		ContinuationToken     string         `xml:"ContinuationToken,omitempty"`
		NextContinuationToken string         `xml:"NextContinuationToken,omitempty"`
		KeyCount              int            `xml:"KeyCount"`
		MaxKeys               int            `xml:"MaxKeys"`
		Delimiter             string         `xml:"Delimiter,omitempty"`
		IsTruncated           bool           `xml:"IsTruncated"`
		EncodingType          string         `xml:"EncodingType,omitempty"`
		Contents              []listEntry    `xml:"Contents"`
		CommonPrefixes        []commonPrefix `xml:"CommonPrefixes"`
	}{Name: rc.bucket, Prefix: enc(q.Get("prefix")), StartAfter: enc(q.Get("start-after")), ContinuationToken: token,
		KeyCount: len(contents) + len(prefixes), MaxKeys: maxKeys, Delimiter: enc(q.Get("delimiter")),
		IsTruncated: res.Truncated, EncodingType: encType, Contents: contents, CommonPrefixes: prefixes}
	if res.Truncated {
		out.NextContinuationToken = base64.RawURLEncoding.EncodeToString([]byte(res.Next))
	}
	return writeXML(w, http.StatusOK, out)
}

// readSmallBody reads a request body meant to hold an XML document,
// verified against the signature.
func readSmallBody(r *http.Request, rc *reqContext, limit int64) ([]byte, error) {
	// A declared x-amz-checksum-* (header or trailer) is verified here as
	// on a PUT: SDKs send one with DeleteObjects, tagging and ACL bodies.
	cks, err := newChecksumReader(r)
	if err != nil {
		return nil, err
	}
	var onTrailer func(http.Header) error
	if cks != nil {
		onTrailer = cks.onTrailer
	}
	var body io.Reader = rc.auth.Body(r.Body, -1, onTrailer)
	if cks != nil {
		cks.r, body = body, cks
	}
	b, err := io.ReadAll(io.LimitReader(body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, apiErr("MalformedXML", "The request body is too large.")
	}
	if err := checkContentMD5(r, b); err != nil {
		return nil, err
	}
	return b, nil
}
