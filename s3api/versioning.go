package s3api

import (
	"encoding/xml"
	"errors"
	"net/http"

	"github.com/strata-storage/strata/objectstore"
)

// apiVersionID is how S3 spells a record's version id ("" is "null").
func apiVersionID(v string) string {
	if v == "" {
		return "null"
	}
	return v
}

// setVersionHeader reports the version a request produced or read, in
// buckets that have (or had) versioning.
func (s *Server) setVersionHeader(w http.ResponseWriter, r *http.Request, bucket, versionID string) {
	if b, err := s.store.HeadBucket(r.Context(), bucket); err == nil && b.Versioning != "" {
		w.Header().Set("X-Amz-Version-Id", apiVersionID(versionID))
	}
}

// deleteMarkerError answers a read that met a delete marker: 404 NoSuchKey
// for the current version, 405 for a marker asked for by version id, both
// with x-amz-delete-marker.
func deleteMarkerError(w http.ResponseWriter, err error) error {
	var dm *objectstore.DeleteMarkerError
	if !errors.As(err, &dm) {
		return err
	}
	w.Header().Set("X-Amz-Delete-Marker", "true")
	w.Header().Set("X-Amz-Version-Id", dm.VersionID)
	if dm.ByVersion {
		return apiErr("MethodNotAllowed", "The specified method is not allowed against this resource.")
	}
	return apiErr("NoSuchKey")
}

func (s *Server) putBucketVersioning(w http.ResponseWriter, r *http.Request, rc *reqContext) error {
	if _, err := s.store.HeadBucket(r.Context(), rc.bucket); err != nil {
		return err
	}
	body, err := readSmallBody(r, rc, 64<<10)
	if err != nil {
		return err
	}
	var conf struct {
		XMLName   xml.Name
		Status    string `xml:"Status"`
		MfaDelete string `xml:"MfaDelete"`
	}
	if err := decodeDocument(body, "VersioningConfiguration", &conf); err != nil {
		return apiErr("MalformedXML")
	}
	if conf.MfaDelete == "Enabled" {
		return apiErr("NotImplemented", "MFA delete is not implemented.")
	}
	if conf.Status != "Enabled" && conf.Status != "Suspended" {
		return apiErr("MalformedXML", "Versioning status must be Enabled or Suspended.")
	}
	if err := s.store.SetBucketVersioning(r.Context(), rc.bucket, conf.Status); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) getBucketVersioning(w http.ResponseWriter, r *http.Request, rc *reqContext) error {
	b, err := s.store.HeadBucket(r.Context(), rc.bucket)
	if err != nil {
		return err
	}
	return writeXML(w, http.StatusOK, struct {
		XMLName xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ VersioningConfiguration"`
		Status  string   `xml:"Status,omitempty"`
	}{Status: b.Versioning})
}

func (s *Server) listObjectVersions(w http.ResponseWriter, r *http.Request, rc *reqContext) error {
	enc, encType, err := encodingParam(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	maxKeys, err := maxKeysParam(r, "max-keys", 1000)
	if err != nil {
		return err
	}
	if q.Get("version-id-marker") != "" && q.Get("key-marker") == "" {
		return apiErr("InvalidArgument", "A version-id marker cannot be specified without a key marker.")
	}
	res, err := s.store.ListObjectVersions(r.Context(), rc.bucket, objectstore.VersionListOptions{
		Prefix: q.Get("prefix"), Delimiter: q.Get("delimiter"), KeyMarker: q.Get("key-marker"),
		VersionIDMarker: q.Get("version-id-marker"), MaxKeys: maxKeys,
	})
	if err != nil {
		return err
	}
	type version struct {
		XMLName      xml.Name // Version or DeleteMarker
		Key          string   `xml:"Key"`
		VersionID    string   `xml:"VersionId"`
		IsLatest     bool     `xml:"IsLatest"`
		LastModified string   `xml:"LastModified"`
		ETag         string   `xml:"ETag,omitempty"`
		Size         *int64   `xml:"Size,omitempty"`
		StorageClass string   `xml:"StorageClass,omitempty"`
		Owner        owner    `xml:"Owner"`
	}
	out := struct {
		XMLName             xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListVersionsResult"`
		Name                string   `xml:"Name"`
		Prefix              string   `xml:"Prefix"`
		KeyMarker           string   `xml:"KeyMarker"`
		VersionIDMarker     string   `xml:"VersionIdMarker"`
		NextKeyMarker       string   `xml:"NextKeyMarker,omitempty"`
		NextVersionIDMarker string   `xml:"NextVersionIdMarker,omitempty"`
		MaxKeys             int      `xml:"MaxKeys"`
		Delimiter           string   `xml:"Delimiter,omitempty"`
		IsTruncated         bool     `xml:"IsTruncated"`
		EncodingType        string   `xml:"EncodingType,omitempty"`
		// Versions and delete markers in one list, each key's newest first,
		// as S3 interleaves them: clients take the first entry of a key as
		// its latest.
		Entries        []version
		CommonPrefixes []commonPrefix `xml:"CommonPrefixes"`
	}{Name: rc.bucket, Prefix: enc(q.Get("prefix")), KeyMarker: enc(q.Get("key-marker")), VersionIDMarker: q.Get("version-id-marker"),
		MaxKeys: maxKeys, Delimiter: enc(q.Get("delimiter")), IsTruncated: res.Truncated, EncodingType: encType}
	if res.Truncated {
		out.NextKeyMarker, out.NextVersionIDMarker = enc(res.NextKeyMarker), res.NextVersionIDMarker
	}
	own := s.ownerOf(r, rc.bucket)
	for _, v := range res.Versions {
		e := version{XMLName: xml.Name{Local: "DeleteMarker"}, Key: enc(v.Key), VersionID: apiVersionID(v.VersionID), IsLatest: v.IsLatest, LastModified: isoTime(v.ModTime), Owner: own}
		if !v.DeleteMarker {
			size := v.Size
			e.XMLName.Local, e.ETag, e.Size, e.StorageClass = "Version", `"`+v.ETag+`"`, &size, "STANDARD"
		}
		out.Entries = append(out.Entries, e)
	}
	for _, p := range res.Prefixes {
		out.CommonPrefixes = append(out.CommonPrefixes, commonPrefix{enc(p)})
	}
	return writeXML(w, http.StatusOK, out)
}
