package s3api

import (
	"encoding/xml"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/strata-storage/strata/objectstore"
)

func (s *Server) createMultipartUpload(w http.ResponseWriter, r *http.Request, rc *reqContext) error {
	if err := checkKey(rc.key); err != nil {
		return err
	}
	headers, err := s.objectHeadersWithACL(r)
	if err != nil {
		return err
	}
	alg, typ, err := uploadChecksumAlgorithm(r)
	if err != nil {
		return err
	}
	if alg != "" {
		headers = append(headers, objectstore.Header{Name: uploadChecksumHeader, Value: alg}, objectstore.Header{Name: uploadChecksumTypeHeader, Value: typ})
		w.Header().Set("X-Amz-Checksum-Algorithm", strings.ToUpper(alg))
		w.Header().Set("X-Amz-Checksum-Type", typ)
	}
	tags, err := headerTags(r)
	if err != nil {
		return err
	}
	headers = append(headers, objectstore.Header{Name: initiatorHeader, Value: initiatorValue(rc)})
	id, err := s.store.CreateUpload(r.Context(), rc.bucket, rc.key, objectstore.PutOptions{Headers: headers, Tags: tags})
	if err != nil {
		return err
	}
	return writeXML(w, http.StatusOK, struct {
		XMLName  xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ InitiateMultipartUploadResult"`
		Bucket   string   `xml:"Bucket"`
		Key      string   `xml:"Key"`
		UploadID string   `xml:"UploadId"`
	}{Bucket: rc.bucket, Key: rc.key, UploadID: id})
}

func partNumber(r *http.Request) (int, error) {
	n, err := strconv.Atoi(r.URL.Query().Get("partNumber"))
	if err != nil || n < 1 || n > objectstore.MaxPartNumber {
		return 0, apiErr("InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive.")
	}
	return n, nil
}

func (s *Server) uploadPart(w http.ResponseWriter, r *http.Request, rc *reqContext) error {
	n, err := partNumber(r)
	if err != nil {
		return err
	}
	if r.Header.Get("X-Amz-Copy-Source") != "" {
		rc.api = "UploadPartCopy"
		return s.uploadPartCopy(w, r, rc, n)
	}
	body, size, md, cks, err := s.putBody(r, rc)
	if err != nil {
		return err
	}
	var bodyHeaders func() []objectstore.Header
	if cks != nil {
		bodyHeaders = func() []objectstore.Header { return cks.stored()[:1] }
	}
	if err := s.admit(r, rc.bucket, size, 0); err != nil {
		return err
	}
	etag, err := s.store.UploadPart(r.Context(), rc.bucket, rc.key, r.URL.Query().Get("uploadId"), n, body, size, md, bodyHeaders)
	if err != nil {
		return err
	}
	if cks != nil {
		w.Header().Set("X-Amz-Checksum-"+strings.ToUpper(cks.alg), cks.want)
	}
	w.Header().Set("ETag", `"`+etag+`"`)
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) completeMultipartUpload(w http.ResponseWriter, r *http.Request, rc *reqContext) error {
	cond, err := writePrecondition(r.Header)
	if err != nil {
		return err
	}
	// The parts' bytes were admitted as they came; the object counts now.
	if err := s.admit(r, rc.bucket, 0, 1); err != nil {
		return err
	}
	body, err := readSmallBody(r, rc, 4<<20)
	if err != nil {
		return err
	}
	req, err := parseCompleteRequest(body)
	if err != nil {
		return err
	}
	parts := make([]objectstore.CompletePart, len(req.Parts))
	listed := make([]map[string]string, len(req.Parts))
	for i, p := range req.Parts {
		parts[i] = objectstore.CompletePart{Number: p.PartNumber, ETag: strings.TrimSpace(p.ETag)}
		listed[i] = map[string]string{}
		for alg, v := range p.byAlgorithm() {
			listed[i][alg] = *v
		}
	}
	whole := map[string]string{}
	for alg := range checksumAlgorithms {
		whole[alg] = r.Header.Get("X-Amz-Checksum-" + alg)
	}
	wantSize := int64(-1)
	if v := r.Header.Get("X-Amz-Mp-Object-Size"); v != "" {
		if wantSize, err = strconv.ParseInt(v, 10, 64); err != nil || wantSize < 0 {
			return apiErr("InvalidArgument", "x-amz-mp-object-size must be a non-negative integer.")
		}
	}
	finalize := func(up []objectstore.Header, chosen []objectstore.PartInfo) ([]objectstore.Header, error) {
		if wantSize >= 0 {
			var size int64
			for _, p := range chosen {
				size += p.Size
			}
			if size != wantSize {
				return nil, apiErr("InvalidRequest", "The provided 'x-amz-mp-object-size' header value "+strconv.FormatInt(wantSize, 10)+" does not match what was computed: "+strconv.FormatInt(size, 10))
			}
		}
		return completeChecksum(up, chosen, listed, whole)
	}
	info, err := s.store.CompleteUpload(r.Context(), rc.bucket, rc.key, r.URL.Query().Get("uploadId"), parts,
		objectstore.CompleteOptions{Precondition: cond, Finalize: finalize})
	if err != nil {
		return err
	}
	s.setVersionHeader(w, r, rc.bucket, info.VersionID)
	out := struct {
		XMLName  xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ CompleteMultipartUploadResult"`
		Location string   `xml:"Location"`
		Bucket   string   `xml:"Bucket"`
		Key      string   `xml:"Key"`
		ETag     string   `xml:"ETag"`
		xmlChecksums
		ChecksumType string `xml:"ChecksumType,omitempty"`
	}{Location: "/" + rc.bucket + "/" + rc.key, Bucket: rc.bucket, Key: rc.key, ETag: `"` + info.ETag + `"`}
	out.fill(info.Headers)
	for _, h := range info.Headers {
		if h.Name == "x-amz-checksum-type" {
			out.ChecksumType = h.Value
		}
	}
	return writeXML(w, http.StatusOK, out)
}

func (s *Server) abortMultipartUpload(w http.ResponseWriter, r *http.Request, rc *reqContext) error {
	if err := s.store.AbortUpload(r.Context(), rc.bucket, rc.key, r.URL.Query().Get("uploadId")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listParts(w http.ResponseWriter, r *http.Request, rc *reqContext) error {
	q := r.URL.Query()
	maxParts, err := maxKeysParam(r, "max-parts", 1000)
	if err != nil {
		return err
	}
	marker := 0
	if v := q.Get("part-number-marker"); v != "" {
		if marker, err = strconv.Atoi(v); err != nil || marker < 0 {
			return apiErr("InvalidArgument", "Provided part-number-marker not an integer or within integer range")
		}
	}
	uploadID := q.Get("uploadId")
	parts, truncated, err := s.store.ListParts(r.Context(), rc.bucket, rc.key, uploadID, marker, maxParts)
	if err != nil {
		return err
	}
	info, err := s.store.GetUpload(r.Context(), rc.bucket, rc.key, uploadID)
	if err != nil {
		return err
	}
	type part struct {
		PartNumber   int    `xml:"PartNumber"`
		LastModified string `xml:"LastModified"`
		ETag         string `xml:"ETag"`
		Size         int64  `xml:"Size"`
		xmlChecksums
	}
	out := struct {
		XMLName              xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListPartsResult"`
		Bucket               string   `xml:"Bucket"`
		Key                  string   `xml:"Key"`
		UploadID             string   `xml:"UploadId"`
		Initiator            owner    `xml:"Initiator"`
		Owner                owner    `xml:"Owner"`
		StorageClass         string   `xml:"StorageClass"`
		PartNumberMarker     int      `xml:"PartNumberMarker"`
		NextPartNumberMarker int      `xml:"NextPartNumberMarker"`
		MaxParts             int      `xml:"MaxParts"`
		IsTruncated          bool     `xml:"IsTruncated"`
		Parts                []part   `xml:"Part"`
	}{Bucket: rc.bucket, Key: rc.key, UploadID: uploadID, Initiator: s.initiator(info.Headers), Owner: s.ownerOf(r, rc.bucket), StorageClass: "STANDARD",
		PartNumberMarker: marker, MaxParts: maxParts, IsTruncated: truncated}
	for _, p := range parts {
		pp := part{PartNumber: p.Number, LastModified: isoTime(p.ModTime), ETag: `"` + p.ETag + `"`, Size: p.Size}
		pp.fill(p.Headers)
		out.Parts = append(out.Parts, pp)
		out.NextPartNumberMarker = p.Number
	}
	return writeXML(w, http.StatusOK, out)
}

// listMultipartUploads lists a bucket's in-progress uploads in key (then
// upload id) order, with prefix, delimiter, key/upload-id markers and
// max-uploads.
// initiatorHeader records who created an upload (a user name, or
// rootInitiator); like every x-strata- header it is never sent to clients
// and is not kept with the completed object.
const (
	initiatorHeader = "x-strata-initiator"
	rootInitiator   = ":root"
)

func initiatorValue(rc *reqContext) string {
	if rc.root || rc.user == "" {
		return rootInitiator
	}
	return rc.user
}

// initiator is the Initiator element of an upload with these headers.
func (s *Server) initiator(headers []objectstore.Header) owner {
	for _, h := range headers {
		if h.Name == initiatorHeader && h.Value != rootInitiator {
			return s.identity(h.Value)
		}
	}
	return s.identity("")
}

func (s *Server) listMultipartUploads(w http.ResponseWriter, r *http.Request, rc *reqContext) error {
	q := r.URL.Query()
	maxUploads, err := maxKeysParam(r, "max-uploads", 1000)
	if err != nil {
		return err
	}
	prefix, delimiter := q.Get("prefix"), q.Get("delimiter")
	keyMarker, idMarker := q.Get("key-marker"), q.Get("upload-id-marker")
	enc, encType, err := encodingParam(r)
	if err != nil {
		return err
	}
	all, err := s.store.ListUploads(r.Context(), rc.bucket, 1<<30)
	if err != nil {
		return err
	}
	type upload struct {
		Key          string `xml:"Key"`
		UploadID     string `xml:"UploadId"`
		Initiator    owner  `xml:"Initiator"`
		Owner        owner  `xml:"Owner"`
		StorageClass string `xml:"StorageClass"`
		Initiated    string `xml:"Initiated"`
	}
	out := struct {
		XMLName            xml.Name       `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListMultipartUploadsResult"`
		Bucket             string         `xml:"Bucket"`
		KeyMarker          string         `xml:"KeyMarker"`
		UploadIDMarker     string         `xml:"UploadIdMarker"`
		NextKeyMarker      string         `xml:"NextKeyMarker,omitempty"`
		NextUploadIDMarker string         `xml:"NextUploadIdMarker,omitempty"`
		Prefix             string         `xml:"Prefix"`
		Delimiter          string         `xml:"Delimiter,omitempty"`
		EncodingType       string         `xml:"EncodingType,omitempty"`
		MaxUploads         int            `xml:"MaxUploads"`
		IsTruncated        bool           `xml:"IsTruncated"`
		Uploads            []upload       `xml:"Upload"`
		CommonPrefixes     []commonPrefix `xml:"CommonPrefixes"`
	}{Bucket: rc.bucket, KeyMarker: enc(keyMarker), UploadIDMarker: idMarker, Prefix: enc(prefix), Delimiter: enc(delimiter), EncodingType: encType, MaxUploads: maxUploads}
	count := 0
	lastPrefix := ""
	bucketOwner := s.ownerOf(r, rc.bucket)
	for _, u := range all {
		if !strings.HasPrefix(u.Key, prefix) {
			continue
		}
		// Past the markers: later keys, or later ids of the marker key.
		if keyMarker != "" && (u.Key < keyMarker || u.Key == keyMarker && (idMarker == "" || u.UploadID <= idMarker)) {
			continue
		}
		if delimiter != "" {
			if i := strings.Index(u.Key[len(prefix):], delimiter); i >= 0 {
				cp := u.Key[:len(prefix)+i+len(delimiter)]
				if cp == lastPrefix || cp <= keyMarker {
					continue
				}
				if count == maxUploads {
					out.IsTruncated = true
					break
				}
				lastPrefix = cp
				out.CommonPrefixes = append(out.CommonPrefixes, commonPrefix{enc(cp)})
				out.NextKeyMarker, out.NextUploadIDMarker = enc(cp), ""
				count++
				continue
			}
		}
		if count == maxUploads {
			out.IsTruncated = true
			break
		}
		out.Uploads = append(out.Uploads, upload{enc(u.Key), u.UploadID, s.initiator(u.Headers), bucketOwner, "STANDARD", isoTime(u.Initiated)})
		out.NextKeyMarker, out.NextUploadIDMarker = enc(u.Key), u.UploadID
		count++
	}
	if !out.IsTruncated {
		out.NextKeyMarker, out.NextUploadIDMarker = "", ""
	}
	return writeXML(w, http.StatusOK, out)
}

// copySourceRange parses x-amz-copy-source-range ("bytes=first-last", both
// required and inside the source, as S3 demands).
func copySourceRange(h string, size int64) (off, length int64, err error) {
	if h == "" {
		return 0, size, nil
	}
	bad := apiErr("InvalidArgument", "Range specified is not valid for source object of size: "+strconv.FormatInt(size, 10))
	spec, ok := strings.CutPrefix(h, "bytes=")
	first, last, ok2 := strings.Cut(spec, "-")
	a, err1 := strconv.ParseInt(first, 10, 64)
	b, err2 := strconv.ParseInt(last, 10, 64)
	if !ok || !ok2 || err1 != nil || err2 != nil || a < 0 || b < a || b >= size {
		return 0, 0, bad
	}
	return a, b - a + 1, nil
}

// uploadPartCopy streams a range of an existing object into a part.
func (s *Server) uploadPartCopy(w http.ResponseWriter, r *http.Request, rc *reqContext, n int) error {
	srcBucket, srcKey, srcVersion, err := copySource(r.Header.Get("X-Amz-Copy-Source"))
	if err != nil {
		return err
	}
	src, err := s.openCopySource(w, r, srcBucket, srcKey, srcVersion)
	if err != nil {
		return err
	}
	defer src.Close()
	off, length, err := copySourceRange(r.Header.Get("X-Amz-Copy-Source-Range"), src.Info.Size)
	if err != nil {
		return err
	}
	if length > objectstore.MaxPutSize {
		return apiErr("InvalidRequest", "The specified copy range is larger than the maximum part size of 5368709120 bytes.")
	}
	rd := src.Reader(r.Context(), off, length)
	defer rd.Close()
	etag, err := s.store.UploadPart(r.Context(), rc.bucket, rc.key, r.URL.Query().Get("uploadId"), n, rd, length, nil, nil)
	if err != nil {
		return err
	}
	return writeXML(w, http.StatusOK, struct {
		XMLName      xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ CopyPartResult"`
		LastModified string   `xml:"LastModified"`
		ETag         string   `xml:"ETag"`
	}{LastModified: isoTime(time.Now()), ETag: `"` + etag + `"`})
}
