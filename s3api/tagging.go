package s3api

import (
	"encoding/xml"
	"net/http"
	"net/url"
	"strconv"

	"github.com/strata-storage/strata/objectstore"
)

// S3's tag limits.
const (
	maxObjectTags  = 10
	maxBucketTags  = 50
	maxTagKeyLen   = 128
	maxTagValueLen = 256
)

// tagSet is the Tagging document. Requests are parsed without a namespace
// (clients differ in whether they send S3's); responses carry it.
type tagSet struct {
	XMLName xml.Name
	Tags    []struct {
		Key   string `xml:"Key"`
		Value string `xml:"Value"`
	} `xml:"TagSet>Tag"`
}

func validateTags(tags []objectstore.Header, max int) error {
	if len(tags) > max {
		return apiErr("InvalidTag", "Object tags cannot be greater than "+strconv.Itoa(max))
	}
	seen := map[string]bool{}
	for _, t := range tags {
		if t.Name == "" || len(t.Name) > maxTagKeyLen {
			return apiErr("InvalidTag", "The TagKey you have provided is invalid")
		}
		if len(t.Value) > maxTagValueLen {
			return apiErr("InvalidTag", "The TagValue you have provided is invalid")
		}
		if seen[t.Name] {
			return apiErr("InvalidTag", "Cannot provide multiple Tags with the same key")
		}
		seen[t.Name] = true
	}
	return nil
}

// headerTags parses x-amz-tagging ("k1=v1&k2=v2").
func headerTags(r *http.Request) ([]objectstore.Header, error) {
	v := r.Header.Get("X-Amz-Tagging")
	if v == "" {
		return nil, nil
	}
	q, err := url.ParseQuery(v)
	if err != nil {
		return nil, apiErr("InvalidArgument", "The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query parameters without tag name duplicates.")
	}
	var tags []objectstore.Header
	for k, vs := range q {
		if len(vs) != 1 {
			return nil, apiErr("InvalidTag", "Cannot provide multiple Tags with the same key")
		}
		tags = append(tags, objectstore.Header{Name: k, Value: vs[0]})
	}
	return tags, validateTags(tags, maxObjectTags)
}

func readTagSet(r *http.Request, rc *reqContext, max int) ([]objectstore.Header, error) {
	body, err := readSmallBody(r, rc, 64<<10)
	if err != nil {
		return nil, err
	}
	return parseTagSet(body, max)
}

// parseTagSet reads a Tagging document.
func parseTagSet(body []byte, max int) ([]objectstore.Header, error) {
	var ts tagSet
	if err := decodeDocument(body, "Tagging", &ts); err != nil {
		return nil, apiErr("MalformedXML")
	}
	var tags []objectstore.Header
	for _, t := range ts.Tags {
		tags = append(tags, objectstore.Header{Name: t.Key, Value: t.Value})
	}
	return tags, validateTags(tags, max)
}

func writeTagSet(w http.ResponseWriter, tags []objectstore.Header) error {
	ts := tagSet{XMLName: xml.Name{Space: "http://s3.amazonaws.com/doc/2006-03-01/", Local: "Tagging"}}
	for _, t := range tags {
		ts.Tags = append(ts.Tags, struct {
			Key   string `xml:"Key"`
			Value string `xml:"Value"`
		}{t.Name, t.Value})
	}
	return writeXML(w, http.StatusOK, ts)
}

func (s *Server) putObjectTagging(w http.ResponseWriter, r *http.Request, rc *reqContext) error {
	tags, err := readTagSet(r, rc, maxObjectTags)
	if err != nil {
		return err
	}
	vid := r.URL.Query().Get("versionId")
	if err := s.store.SetTagsVersion(r.Context(), rc.bucket, rc.key, vid, tags); err != nil {
		return deleteMarkerError(w, err)
	}
	if vid != "" {
		s.setVersionHeader(w, r, rc.bucket, vid)
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) getObjectTagging(w http.ResponseWriter, r *http.Request, rc *reqContext) error {
	info, err := s.store.HeadObjectVersion(r.Context(), rc.bucket, rc.key, r.URL.Query().Get("versionId"))
	if err != nil {
		return deleteMarkerError(w, err)
	}
	s.setVersionHeader(w, r, rc.bucket, info.VersionID)
	return writeTagSet(w, info.Tags)
}

func (s *Server) deleteObjectTagging(w http.ResponseWriter, r *http.Request, rc *reqContext) error {
	vid := r.URL.Query().Get("versionId")
	if err := s.store.SetTagsVersion(r.Context(), rc.bucket, rc.key, vid, nil); err != nil {
		return deleteMarkerError(w, err)
	}
	if vid != "" {
		s.setVersionHeader(w, r, rc.bucket, vid)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) putBucketTagging(w http.ResponseWriter, r *http.Request, rc *reqContext) error {
	tags, err := readTagSet(r, rc, maxBucketTags)
	if err != nil {
		return err
	}
	if err := s.store.SetBucketTags(r.Context(), rc.bucket, tags); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) getBucketTagging(w http.ResponseWriter, r *http.Request, rc *reqContext) error {
	b, err := s.store.HeadBucket(r.Context(), rc.bucket)
	if err != nil {
		return err
	}
	if len(b.Tags) == 0 {
		return apiErr("NoSuchTagSet")
	}
	return writeTagSet(w, b.Tags)
}

func (s *Server) deleteBucketTagging(w http.ResponseWriter, r *http.Request, rc *reqContext) error {
	if err := s.store.SetBucketTags(r.Context(), rc.bucket, nil); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
