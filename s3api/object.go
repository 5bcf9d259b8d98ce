package s3api

import (
	"encoding/base64"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/strata-storage/strata/objectstore"
	"github.com/strata-storage/strata/s3api/sigv4"
)

// internalHeaderPrefix marks headers Strata stores for itself; they are
// never sent to clients.
const internalHeaderPrefix = "x-strata-"

// Stored request headers besides x-amz-meta-*.
var storedHeaders = []string{"Content-Type", "Content-Encoding", "Content-Disposition", "Content-Language", "Cache-Control", "Expires"}

const (
	maxUserMetadata    = 2 << 10
	defaultContentType = "binary/octet-stream"
)

// objectHeaders collects what a PUT stores besides the body.
func objectHeaders(r *http.Request) ([]objectstore.Header, error) {
	var out []objectstore.Header
	for _, name := range storedHeaders {
		v := r.Header.Get(name)
		if name == "Content-Encoding" {
			// aws-chunked is transport framing, not the object's encoding.
			var keep []string
			for _, e := range strings.Split(v, ",") {
				if e = strings.TrimSpace(e); e != "" && !strings.EqualFold(e, "aws-chunked") {
					keep = append(keep, e)
				}
			}
			v = strings.Join(keep, ",")
		}
		if v != "" {
			out = append(out, objectstore.Header{Name: name, Value: v})
		}
	}
	size := 0
	for name, vs := range r.Header {
		if !strings.HasPrefix(name, "X-Amz-Meta-") {
			continue
		}
		v := strings.Join(vs, ",")
		size += len(name) - len("X-Amz-Meta-") + len(v)
		out = append(out, objectstore.Header{Name: strings.ToLower(name), Value: v})
	}
	if size > maxUserMetadata {
		return nil, apiErr("MetadataTooLarge")
	}
	return out, nil
}

// objectHeadersWithACL is objectHeaders plus the ACL the request sets
// (canned or by x-amz-grant-*) (stored with the object, never returned as a header).
func (s *Server) objectHeadersWithACL(r *http.Request) ([]objectstore.Header, error) {
	acl, err := s.requestACL(r, objectACLs)
	if err != nil {
		return nil, err
	}
	if err := s.checkACLSetting(r, reqCtx(r).bucket, acl); err != nil {
		return nil, err
	}
	headers, err := objectHeaders(r)
	if err != nil {
		return nil, err
	}
	if acl != "" && acl != "private" {
		headers = append(headers, objectstore.Header{Name: aclHeader, Value: acl})
	}
	return headers, nil
}

// putBody returns the verified body of a PUT or UploadPart, its size, the
// expected MD5 and the checksum being verified (nil if none was sent).
func (s *Server) putBody(r *http.Request, rc *reqContext) (io.Reader, int64, []byte, *checksumReader, error) {
	size := r.ContentLength
	decoded := int64(-1)
	switch rc.auth.PayloadHash {
	case sigv4.StreamingPayload, sigv4.StreamingPayloadTrail, sigv4.StreamingUnsignedTrail:
		v := r.Header.Get("X-Amz-Decoded-Content-Length")
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return nil, 0, nil, nil, apiErr("MissingContentLength", "You must provide the x-amz-decoded-content-length header with aws-chunked bodies.")
		}
		size, decoded = n, n
	default:
		if size < 0 {
			return nil, 0, nil, nil, apiErr("MissingContentLength")
		}
	}
	if size > objectstore.MaxPutSize {
		return nil, 0, nil, nil, apiErr("EntityTooLarge")
	}
	md, err := contentMD5(r)
	if err != nil {
		return nil, 0, nil, nil, err
	}
	cks, err := newChecksumReader(r)
	if err != nil {
		return nil, 0, nil, nil, err
	}
	var onTrailer func(http.Header) error
	if cks != nil {
		onTrailer = cks.onTrailer
	}
	body := rc.auth.Body(r.Body, decoded, onTrailer)
	if cks != nil {
		cks.r = body
		body = cks
	}
	return &countingReader{r: body, c: s.metrics.bytesIn}, size, md, cks, nil
}

type countingReader struct {
	r io.Reader
	c interface{ Add(float64) }
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.c.Add(float64(n))
	return n, err
}

func (s *Server) putObject(w http.ResponseWriter, r *http.Request, rc *reqContext) error {
	if r.Header.Get("X-Amz-Copy-Source") != "" {
		return s.copyObject(w, r, rc)
	}
	if err := checkKey(rc.key); err != nil {
		return err
	}
	cond, err := writePrecondition(r.Header)
	if err != nil {
		return err
	}
	headers, err := s.objectHeadersWithACL(r)
	if err != nil {
		return err
	}
	body, size, md, cks, err := s.putBody(r, rc)
	if err != nil {
		return err
	}
	tags, err := headerTags(r)
	if err != nil {
		return err
	}
	opts := objectstore.PutOptions{Headers: headers, Tags: tags, ContentMD5: md, Precondition: cond}
	if cks != nil {
		opts.BodyHeaders = cks.stored
	}
	if err := s.admit(r, rc.bucket, size, 1); err != nil {
		return err
	}
	info, err := s.store.PutObject(r.Context(), rc.bucket, rc.key, body, size, opts)
	if err != nil {
		return err
	}
	s.setVersionHeader(w, r, rc.bucket, info.VersionID)
	if cks != nil {
		// S3 echoes the checksum it verified.
		w.Header().Set("X-Amz-Checksum-"+strings.ToUpper(cks.alg), cks.want)
		w.Header().Set("X-Amz-Checksum-Type", "FULL_OBJECT")
	}
	w.Header().Set("ETag", `"`+info.ETag+`"`)
	w.WriteHeader(http.StatusOK)
	return nil
}

func checkKey(key string) error {
	if len(key) > objectstore.MaxKeyLength {
		return apiErr("KeyTooLongError")
	}
	return nil
}

// byteRange resolves a Range header against an object size. ok is false if
// the header is absent or, as S3 does, ignored because it cannot be parsed.
func byteRange(h string, size int64) (off, length int64, ok bool, err error) {
	spec, found := strings.CutPrefix(strings.TrimSpace(h), "bytes=")
	if h == "" || !found || strings.Contains(spec, ",") {
		return 0, size, false, nil
	}
	first, last, found := strings.Cut(spec, "-")
	if !found {
		return 0, size, false, nil
	}
	unsatisfiable := apiErr("InvalidRange")
	if first == "" {
		n, err := strconv.ParseInt(last, 10, 64)
		if err != nil || n < 0 {
			return 0, size, false, nil
		}
		if n == 0 || size == 0 {
			return 0, 0, false, unsatisfiable
		}
		n = min(n, size)
		return size - n, n, true, nil
	}
	a, err := strconv.ParseInt(first, 10, 64)
	if err != nil || a < 0 {
		return 0, size, false, nil
	}
	b := size - 1
	if last != "" {
		if b, err = strconv.ParseInt(last, 10, 64); err != nil || b < a {
			return 0, size, false, nil
		}
		b = min(b, size-1)
	}
	if a >= size {
		return 0, 0, false, unsatisfiable
	}
	return a, b - a + 1, true, nil
}

// partRange resolves ?partNumber=N to the byte range of part N. A plain
// (single-part) object has one part, served whole with 200.
func partRange(r *http.Request, pn string, info objectstore.ObjectInfo) (off, length int64, partial bool, err error) {
	if r.Header.Get("Range") != "" {
		return 0, 0, false, apiErr("InvalidRequest", "Cannot specify both Range header and partNumber query parameter")
	}
	n, err := strconv.Atoi(pn)
	if err != nil || n < 1 || n > objectstore.MaxPartNumber {
		return 0, 0, false, apiErr("InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive")
	}
	if n > len(info.PartSizes) {
		return 0, 0, false, apiErr("InvalidPartNumber")
	}
	for _, size := range info.PartSizes[:n-1] {
		off += size
	}
	multipart := strings.Contains(info.ETag, "-")
	return off, info.PartSizes[n-1], multipart, nil
}

// writeObjectHeaders sets the headers GET and HEAD share. Stored checksums
// are returned when asked for (x-amz-checksum-mode: ENABLED) and only for
// the whole object: they do not describe a range.
func writeObjectHeaders(w http.ResponseWriter, r *http.Request, info objectstore.ObjectInfo, partial bool) {
	h := w.Header()
	h.Set("ETag", `"`+info.ETag+`"`)
	h.Set("Last-Modified", info.ModTime.UTC().Format(http.TimeFormat))
	h.Set("Accept-Ranges", "bytes")
	h.Set("Content-Type", defaultContentType)
	if len(info.Tags) > 0 {
		h.Set("X-Amz-Tagging-Count", strconv.Itoa(len(info.Tags)))
	}
	if r.URL.Query().Has("partNumber") && strings.Contains(info.ETag, "-") {
		h.Set("X-Amz-Mp-Parts-Count", strconv.Itoa(len(info.PartSizes)))
	}
	withChecksums := strings.EqualFold(r.Header.Get("X-Amz-Checksum-Mode"), "ENABLED") && !partial
	for _, m := range info.Headers {
		if isChecksumHeader(m.Name) && !withChecksums || m.Name == aclHeader || strings.HasPrefix(m.Name, internalHeaderPrefix) {
			continue
		}
		if strings.HasPrefix(m.Name, "x-amz-meta-") {
			// As stored, in lower case, as S3 sends them: SDKs hand the
			// names on as they arrive, and code reads ['color'].
			h[m.Name] = []string{m.Value}
			continue
		}
		h.Set(m.Name, m.Value)
	}
	q := r.URL.Query()
	for param, header := range map[string]string{
		"response-content-type": "Content-Type", "response-content-language": "Content-Language",
		"response-expires": "Expires", "response-cache-control": "Cache-Control",
		"response-content-disposition": "Content-Disposition", "response-content-encoding": "Content-Encoding",
	} {
		if v := q.Get(param); v != "" {
			h.Set(header, v)
		}
	}
}

func (s *Server) getObject(w http.ResponseWriter, r *http.Request, rc *reqContext) error {
	return s.serveObject(w, r, rc, true)
}

func (s *Server) headObject(w http.ResponseWriter, r *http.Request, rc *reqContext) error {
	return s.serveObject(w, r, rc, false)
}

func (s *Server) serveObject(w http.ResponseWriter, r *http.Request, rc *reqContext, withBody bool) error {
	obj, err := s.store.GetObjectVersion(r.Context(), rc.bucket, rc.key, r.URL.Query().Get("versionId"))
	if err != nil {
		return deleteMarkerError(w, err)
	}
	defer obj.Close()
	s.setVersionHeader(w, r, rc.bucket, obj.Info.VersionID)
	notModified, err := readPreconditions(r.Header, "", obj.Info)
	if err != nil {
		return err
	}
	if notModified {
		rc.code = "NotModified"
		h := w.Header()
		h.Set("ETag", `"`+obj.Info.ETag+`"`)
		h.Set("Last-Modified", obj.Info.ModTime.UTC().Format(http.TimeFormat))
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	off, length, partial, err := byteRange(r.Header.Get("Range"), obj.Info.Size)
	if err != nil {
		w.Header().Set("Content-Range", "bytes */"+strconv.FormatInt(obj.Info.Size, 10))
		return err
	}
	if pn := r.URL.Query().Get("partNumber"); pn != "" {
		if off, length, partial, err = partRange(r, pn, obj.Info); err != nil {
			return err
		}
	}
	status := http.StatusOK
	if partial {
		status = http.StatusPartialContent
		w.Header().Set("Content-Range", "bytes "+strconv.FormatInt(off, 10)+"-"+strconv.FormatInt(off+length-1, 10)+"/"+strconv.FormatInt(obj.Info.Size, 10))
	}
	if !withBody {
		writeObjectHeaders(w, r, obj.Info, partial)
		w.Header().Set("Content-Length", strconv.FormatInt(length, 10))
		w.WriteHeader(status)
		return nil
	}
	rd := obj.Reader(r.Context(), off, length)
	defer rd.Close()
	// Fail with a proper error while no header has been sent yet.
	if err := rd.Ready(); err != nil {
		return err
	}
	writeObjectHeaders(w, r, obj.Info, partial)
	w.Header().Set("Content-Length", strconv.FormatInt(length, 10))
	w.WriteHeader(status)
	n, err := io.Copy(w, rd)
	s.metrics.bytesOut.Add(float64(n))
	if err != nil && n < length {
		// Headers are gone; all we can do is cut the connection short so
		// the client sees a truncated body rather than wrong bytes.
		s.log.Warn("GET aborted", "bucket", rc.bucket, "key", rc.key, "sent", n, "of", length, "err", err)
		panic(http.ErrAbortHandler)
	}
	return nil
}

func (s *Server) deleteObject(w http.ResponseWriter, r *http.Request, rc *reqContext) error {
	q := r.URL.Query()
	if q.Has("versionId") && q.Get("versionId") == "" {
		return apiErr("InvalidArgument", "Version id cannot be the empty string")
	}
	res, err := s.deleteCounted(r, rc.bucket, rc.key, q.Get("versionId"))
	if err != nil {
		return err
	}
	if res.DeleteMarker {
		w.Header().Set("X-Amz-Delete-Marker", "true")
	}
	if q.Has("versionId") || res.DeleteMarker {
		w.Header().Set("X-Amz-Version-Id", apiVersionID(res.VersionID))
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) deleteObjects(w http.ResponseWriter, r *http.Request, rc *reqContext) error {
	if _, err := s.store.HeadBucket(r.Context(), rc.bucket); err != nil {
		return err
	}
	body, err := readSmallBody(r, rc, 2<<20)
	if err != nil {
		return err
	}
	req, err := parseDeleteRequest(body)
	if err != nil {
		return err
	}
	type deleted struct {
		Key                   string `xml:"Key"`
		VersionID             string `xml:"VersionId,omitempty"`
		DeleteMarker          bool   `xml:"DeleteMarker,omitempty"`
		DeleteMarkerVersionID string `xml:"DeleteMarkerVersionId,omitempty"`
	}
	type failed struct {
		Key     string `xml:"Key"`
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}
	var out struct {
		XMLName xml.Name  `xml:"http://s3.amazonaws.com/doc/2006-03-01/ DeleteResult"`
		Deleted []deleted `xml:"Deleted"`
		Errors  []failed  `xml:"Error"`
	}
	for _, o := range req.Objects {
		var err error
		var res objectstore.DeleteResult
		if o.Key == "" || len(o.Key) > objectstore.MaxKeyLength {
			err = apiErr("InvalidArgument", "Invalid object key")
		} else {
			res, err = s.deleteCounted(r, rc.bucket, o.Key, o.VersionID)
		}
		if err != nil {
			e := toAPIError(err)
			out.Errors = append(out.Errors, failed{o.Key, e.Code, e.Message})
			continue
		}
		if req.Quiet {
			continue
		}
		d := deleted{Key: o.Key, VersionID: o.VersionID, DeleteMarker: res.DeleteMarker}
		if o.VersionID == "" && res.DeleteMarker {
			d.DeleteMarkerVersionID = apiVersionID(res.VersionID)
		}
		out.Deleted = append(out.Deleted, d)
	}
	return writeXML(w, http.StatusOK, out)
}

// copySource parses x-amz-copy-source ("[/]bucket/key[?versionId=...]").
func copySource(v string) (bucket, key, versionID string, err error) {
	v, query, _ := strings.Cut(v, "?")
	if query != "" {
		q, _ := url.ParseQuery(query)
		versionID = q.Get("versionId")
	}
	v, err = url.PathUnescape(v)
	if err != nil {
		return "", "", "", apiErr("InvalidArgument", "Invalid copy source encoding")
	}
	bucket, key, ok := strings.Cut(strings.TrimPrefix(v, "/"), "/")
	if !ok || bucket == "" || key == "" {
		return "", "", "", apiErr("InvalidArgument", "Copy Source must mention the source bucket and key: sourcebucket/sourcekey")
	}
	return bucket, key, versionID, nil
}

// openCopySource opens the source of a copy (a given version, if named)
// and checks its x-amz-copy-source-if-* conditions. The caller closes it.
func (s *Server) openCopySource(w http.ResponseWriter, r *http.Request, bucket, key, versionID string) (*objectstore.Object, error) {
	src, err := s.store.GetObjectVersion(r.Context(), bucket, key, versionID)
	if err != nil {
		var dm *objectstore.DeleteMarkerError
		if errors.As(err, &dm) {
			return nil, apiErr("InvalidRequest", "The source of a copy request may not specifically refer to a delete marker by version id.")
		}
		return nil, err
	}
	if versionID != "" {
		w.Header().Set("X-Amz-Copy-Source-Version-Id", versionID)
	}
	if _, err := readPreconditions(r.Header, "X-Amz-Copy-Source-", src.Info); err != nil {
		src.Close()
		return nil, err
	}
	return src, nil
}

// copyObject streams the source into a new object; no body buffering.
func (s *Server) copyObject(w http.ResponseWriter, r *http.Request, rc *reqContext) error {
	if r.Header.Get("X-Amz-Copy-Source-Range") != "" {
		return apiErr("InvalidArgument", "Range specified is not valid for source object; x-amz-copy-source-range applies to UploadPartCopy only.")
	}
	srcBucket, srcKey, srcVersion, err := copySource(r.Header.Get("X-Amz-Copy-Source"))
	if err != nil {
		return err
	}
	if err := checkKey(rc.key); err != nil {
		return err
	}
	directive := r.Header.Get("X-Amz-Metadata-Directive")
	if directive != "" && directive != "COPY" && directive != "REPLACE" {
		return apiErr("InvalidArgument", "Unknown metadata directive.")
	}
	if srcBucket == rc.bucket && srcKey == rc.key && srcVersion == "" && directive != "REPLACE" {
		return apiErr("InvalidRequest", "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.")
	}
	cond, err := writePrecondition(r.Header)
	if err != nil {
		return err
	}
	src, err := s.openCopySource(w, r, srcBucket, srcKey, srcVersion)
	if err != nil {
		return err
	}
	defer src.Close()
	if src.Info.Size > objectstore.MaxPutSize {
		return apiErr("InvalidRequest", "The specified copy source is larger than the maximum allowable size for a copy source: 5368709120")
	}
	if err := s.admit(r, rc.bucket, src.Info.Size, 1); err != nil {
		return err
	}
	acl, err := s.requestACL(r, objectACLs)
	if err != nil {
		return err
	}
	if err := s.checkACLSetting(r, rc.bucket, acl); err != nil {
		return err
	}
	var headers []objectstore.Header
	if directive == "REPLACE" {
		if headers, err = objectHeaders(r); err != nil {
			return err
		}
	} else {
		for _, h := range src.Info.Headers {
			if h.Name != aclHeader { // a copy gets its own ACL, as in S3
				headers = append(headers, h)
			}
		}
	}
	if acl != "" && acl != "private" {
		headers = append(headers, objectstore.Header{Name: aclHeader, Value: acl})
	}
	tags := src.Info.Tags
	switch r.Header.Get("X-Amz-Tagging-Directive") {
	case "", "COPY":
	case "REPLACE":
		if tags, err = headerTags(r); err != nil {
			return err
		}
	default:
		return apiErr("InvalidArgument", "Unknown tagging directive.")
	}
	rd := src.Reader(r.Context(), 0, src.Info.Size)
	defer rd.Close()
	// The copy's checksum is computed from the data as it is copied: with
	// the algorithm the request names, else the source's (a source's
	// COMPOSITE multipart value says nothing about a one-part copy).
	alg := strings.ToLower(r.Header.Get("X-Amz-Checksum-Algorithm"))
	kept := headers[:0:0]
	for _, h := range headers {
		if a, ok := strings.CutPrefix(h.Name, "x-amz-checksum-"); ok {
			if alg == "" && checksumAlgorithms[a] != nil {
				alg = a
			}
			continue
		}
		kept = append(kept, h)
	}
	headers = kept
	var body io.Reader = rd
	var bodyHeaders func() []objectstore.Header
	if alg != "" {
		h := checksumAlgorithms[alg]()
		body = io.TeeReader(rd, h)
		bodyHeaders = func() []objectstore.Header {
			return []objectstore.Header{{Name: "x-amz-checksum-" + alg, Value: base64.StdEncoding.EncodeToString(h.Sum(nil))}, {Name: "x-amz-checksum-type", Value: "FULL_OBJECT"}}
		}
	}
	info, err := s.store.PutObject(r.Context(), rc.bucket, rc.key, body, src.Info.Size, objectstore.PutOptions{Headers: headers, Tags: tags, Precondition: cond, BodyHeaders: bodyHeaders})
	if err != nil {
		return err
	}
	s.setVersionHeader(w, r, rc.bucket, info.VersionID)
	out := struct {
		XMLName      xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ CopyObjectResult"`
		LastModified string   `xml:"LastModified"`
		ETag         string   `xml:"ETag"`
		xmlChecksums
		ChecksumType string `xml:"ChecksumType,omitempty"`
	}{LastModified: isoTime(info.ModTime), ETag: `"` + info.ETag + `"`}
	if bodyHeaders != nil {
		hs := bodyHeaders()
		out.fill(hs)
		out.ChecksumType = "FULL_OBJECT"
	}
	return writeXML(w, http.StatusOK, out)
}

// deleteCounted deletes an object and tells the quota hook what data the
// bucket lost: the version removed (a delete that only adds a marker
// removes none).
func (s *Server) deleteCounted(r *http.Request, bucket, key, versionID string) (objectstore.DeleteResult, error) {
	if s.cfg.Quota == nil || !s.cfg.Quota.Tracked(r.Context(), bucket) {
		return s.store.DeleteObject(r.Context(), bucket, key, versionID)
	}
	var gone objectstore.ObjectInfo
	var herr error
	if versionID != "" {
		gone, herr = s.store.HeadObjectVersion(r.Context(), bucket, key, versionID)
	} else {
		gone, herr = s.store.HeadObject(r.Context(), bucket, key)
	}
	res, err := s.store.DeleteObject(r.Context(), bucket, key, versionID)
	if err == nil && herr == nil && !gone.DeleteMarker && (versionID != "" || !res.DeleteMarker) {
		s.cfg.Quota.Release(r.Context(), bucket, gone.Size, 1)
	}
	return res, err
}
