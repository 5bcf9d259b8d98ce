package s3api

import (
	"encoding/xml"
	"net/http"
	"strconv"
	"strings"
)

// GetObjectAttributes answers with the attributes the request names in
// x-amz-object-attributes (ETag, Checksum, ObjectParts, StorageClass,
// ObjectSize), without the body. ObjectParts lists the part numbers and
// sizes of a multipart object, pageable with x-amz-max-parts and
// x-amz-part-number-marker; parts' own checksums are not kept once an
// upload completes, so parts carry none.
func (s *Server) getObjectAttributes(w http.ResponseWriter, r *http.Request, rc *reqContext) error {
	want := map[string]bool{}
	for _, a := range strings.Split(strings.Join(r.Header.Values("X-Amz-Object-Attributes"), ","), ",") {
		switch a = strings.TrimSpace(a); a {
		case "":
		case "ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize":
			want[a] = true
		default:
			return apiErr("InvalidArgument", "Invalid attribute name specified: "+a)
		}
	}
	if len(want) == 0 {
		return apiErr("InvalidArgument", "The x-amz-object-attributes header specifying the attributes to be retrieved is either missing or empty")
	}
	maxParts, marker := 1000, 0
	if v := r.Header.Get("X-Amz-Max-Parts"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return apiErr("InvalidArgument", "x-amz-max-parts must be a non-negative integer")
		}
		maxParts = min(n, 1000)
	}
	if v := r.Header.Get("X-Amz-Part-Number-Marker"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return apiErr("InvalidArgument", "x-amz-part-number-marker must be a non-negative integer")
		}
		marker = n
	}
	info, err := s.store.HeadObjectVersion(r.Context(), rc.bucket, rc.key, r.URL.Query().Get("versionId"))
	if err != nil {
		return deleteMarkerError(w, err)
	}
	s.setVersionHeader(w, r, rc.bucket, info.VersionID)
	w.Header().Set("Last-Modified", info.ModTime.UTC().Format(http.TimeFormat))

	type checksum struct {
		xmlChecksums
		ChecksumType string `xml:"ChecksumType,omitempty"`
	}
	type part struct {
		PartNumber int   `xml:"PartNumber"`
		Size       int64 `xml:"Size"`
	}
	type objectParts struct {
		TotalPartsCount      int    `xml:"PartsCount"` // TotalPartsCount in the SDKs
		PartNumberMarker     int    `xml:"PartNumberMarker"`
		NextPartNumberMarker int    `xml:"NextPartNumberMarker"`
		MaxParts             int    `xml:"MaxParts"`
		IsTruncated          bool   `xml:"IsTruncated"`
		Parts                []part `xml:"Part"`
	}
	out := struct {
		XMLName      xml.Name     `xml:"http://s3.amazonaws.com/doc/2006-03-01/ GetObjectAttributesResponse"`
		ETag         string       `xml:"ETag,omitempty"`
		Checksum     *checksum    `xml:"Checksum,omitempty"`
		ObjectParts  *objectParts `xml:"ObjectParts,omitempty"`
		StorageClass string       `xml:"StorageClass,omitempty"`
		ObjectSize   *int64       `xml:"ObjectSize,omitempty"`
	}{}
	if want["ETag"] {
		out.ETag = info.ETag // unquoted, as S3 gives it here
	}
	if want["Checksum"] {
		var c checksum
		c.fill(info.Headers)
		for _, h := range info.Headers {
			if h.Name == "x-amz-checksum-type" {
				c.ChecksumType = h.Value
			}
		}
		if c.ChecksumType != "" {
			out.Checksum = &c
		}
	}
	if want["ObjectParts"] && strings.Contains(info.ETag, "-") {
		op := &objectParts{TotalPartsCount: len(info.PartSizes), PartNumberMarker: marker, MaxParts: maxParts}
		for i, size := range info.PartSizes {
			n := i + 1
			if n <= marker {
				continue
			}
			if len(op.Parts) == maxParts {
				op.IsTruncated = true
				break
			}
			op.Parts = append(op.Parts, part{PartNumber: n, Size: size})
			op.NextPartNumberMarker = n
		}
		out.ObjectParts = op
	}
	if want["StorageClass"] {
		out.StorageClass = "STANDARD"
	}
	if want["ObjectSize"] {
		size := info.Size
		out.ObjectSize = &size
	}
	return writeXML(w, http.StatusOK, out)
}
