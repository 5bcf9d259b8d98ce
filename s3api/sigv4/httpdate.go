package sigv4

import (
	"net/http"
	"time"
)

// httpDateForms are the date forms HTTP allows (RFC 7231 7.1.1.1: IMF-fixdate,
// the obsolete RFC 850 and asctime forms) and the RFC 1123 forms with a
// numeric zone that clients write (botocore: "-0000").
var httpDateForms = []string{
	http.TimeFormat,
	time.RFC1123Z,
	time.RFC1123,
	time.RFC850,
	"Monday, 02-Jan-06 15:04:05 -0700",
	time.ANSIC,
	"Mon, 2 Jan 2006 15:04:05 GMT",
	"Mon, 2 Jan 2006 15:04:05 -0700",
}

// ParseHTTPDate reads a Date (or If-Modified-Since) header in any of the
// forms HTTP clients send.
func ParseHTTPDate(v string) (time.Time, error) {
	var first error
	for _, f := range httpDateForms {
		t, err := time.Parse(f, v)
		if err == nil {
			return t, nil
		}
		if first == nil {
			first = err
		}
	}
	return time.Time{}, first
}
