package s3api

import (
	"net/http"
	"strings"
	"time"

	"github.com/strata-storage/strata/objectstore"
	"github.com/strata-storage/strata/s3api/sigv4"
)

// etagMatches reports whether an If-Match / If-None-Match list names etag
// ("*" names any existing object).
func etagMatches(list, etag string) bool {
	for _, e := range strings.Split(list, ",") {
		e = strings.TrimPrefix(strings.TrimSpace(e), "W/")
		if e == "*" || strings.Trim(e, `"`) == etag {
			return true
		}
	}
	return false
}

// readPreconditions evaluates the conditional headers of a GET or HEAD (or,
// with prefix "X-Amz-Copy-Source-", of a copy's source) as S3 does: If-Match
// before If-Unmodified-Since, If-None-Match before If-Modified-Since, dates
// at one-second resolution. It returns notModified for a 304; a failed
// precondition is a 412 error. A copy never answers 304: S3 reports every
// failed copy-source condition as 412.
func readPreconditions(h http.Header, prefix string, info objectstore.ObjectInfo) (notModified bool, err error) {
	mod := info.ModTime.Truncate(time.Second)
	failed := func(name string) error {
		return apiErr("PreconditionFailed", "At least one of the pre-conditions you specified did not hold: "+name)
	}
	if v := h.Get(prefix + "If-Match"); v != "" {
		if !etagMatches(v, info.ETag) {
			return false, failed(prefix + "If-Match")
		}
	} else if v := h.Get(prefix + "If-Unmodified-Since"); v != "" {
		if t, err := sigv4.ParseHTTPDate(v); err == nil && mod.After(t) {
			return false, failed(prefix + "If-Unmodified-Since")
		}
	}
	notModified = false
	if v := h.Get(prefix + "If-None-Match"); v != "" {
		notModified = etagMatches(v, info.ETag)
	} else if v := h.Get(prefix + "If-Modified-Since"); v != "" {
		if t, err := sigv4.ParseHTTPDate(v); err == nil && !mod.After(t) {
			notModified = true
		}
	}
	if notModified && prefix != "" {
		return false, failed(prefix + "If-None-Match/If-Modified-Since")
	}
	return notModified, nil
}

// writePrecondition turns If-None-Match / If-Match on a PUT or
// CompleteMultipartUpload into a check the object layer runs atomically
// with the commit. S3 accepts only "*" for If-None-Match on writes.
func writePrecondition(h http.Header) (func(*objectstore.ObjectInfo) error, error) {
	inm, im := h.Get("If-None-Match"), h.Get("If-Match")
	if inm == "" && im == "" {
		return nil, nil
	}
	if inm != "" && strings.TrimSpace(inm) != "*" {
		return nil, apiErr("NotImplemented", "If-None-Match on writes supports only '*'.")
	}
	return func(cur *objectstore.ObjectInfo) error {
		if inm != "" && cur != nil {
			return apiErr("PreconditionFailed", "At least one of the pre-conditions you specified did not hold: If-None-Match")
		}
		if im != "" {
			if cur == nil {
				return apiErr("NoSuchKey")
			}
			if !etagMatches(im, cur.ETag) {
				return apiErr("PreconditionFailed", "At least one of the pre-conditions you specified did not hold: If-Match")
			}
		}
		return nil
	}, nil
}
