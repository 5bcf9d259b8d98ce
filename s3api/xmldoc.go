package s3api

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strings"

	"github.com/strata-storage/strata/objectstore"
)

// Request documents (XML bodies) are parsed strictly: the root element
// must be the one the operation takes (a CompleteMultipartUpload body is
// not a Delete body), nothing but whitespace and comments may follow it,
// and any failure is MalformedXML.

var errWrongRoot = errors.New("s3api: wrong root element")

// decodeDocument unmarshals body into v, whose root element must be root.
func decodeDocument(body []byte, root string, v any) error {
	d := xml.NewDecoder(bytes.NewReader(body))
	for {
		tok, err := d.Token()
		if err != nil {
			return err
		}
		if se, ok := tok.(xml.StartElement); ok {
			if se.Name.Local != root {
				return errWrongRoot
			}
			if err := d.DecodeElement(v, &se); err != nil {
				return err
			}
			break
		}
	}
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return errors.New("s3api: text after the document")
			}
		case xml.Comment, xml.ProcInst:
		default:
			return errors.New("s3api: content after the document")
		}
	}
}

// completeRequest is the body of CompleteMultipartUpload.
type completeRequest struct {
	Parts []struct {
		PartNumber int    `xml:"PartNumber"`
		ETag       string `xml:"ETag"`
		xmlChecksums
	} `xml:"Part"`
}

func parseCompleteRequest(body []byte) (completeRequest, error) {
	var req completeRequest
	if err := decodeDocument(body, "CompleteMultipartUpload", &req); err != nil || len(req.Parts) == 0 || len(req.Parts) > objectstore.MaxPartNumber {
		return completeRequest{}, apiErr("MalformedXML")
	}
	return req, nil
}

// deleteRequest is the body of DeleteObjects.
type deleteRequest struct {
	Quiet   bool `xml:"Quiet"`
	Objects []struct {
		Key       string `xml:"Key"`
		VersionID string `xml:"VersionId"`
	} `xml:"Object"`
}

func parseDeleteRequest(body []byte) (deleteRequest, error) {
	var req deleteRequest
	if err := decodeDocument(body, "Delete", &req); err != nil || len(req.Objects) == 0 || len(req.Objects) > 1000 {
		return deleteRequest{}, apiErr("MalformedXML")
	}
	return req, nil
}

// parseLocation reads CreateBucketConfiguration (an empty body is none).
func parseLocation(body []byte) (string, error) {
	if len(strings.TrimSpace(string(body))) == 0 {
		return "", nil
	}
	var conf struct {
		LocationConstraint string `xml:"LocationConstraint"`
	}
	if err := decodeDocument(body, "CreateBucketConfiguration", &conf); err != nil {
		return "", apiErr("MalformedXML")
	}
	return conf.LocationConstraint, nil
}
