package sigv4

import (
	"testing"
	"time"
)

func TestParseHTTPDate(t *testing.T) {
	want := time.Date(2026, 12, 3, 6, 30, 5, 0, time.UTC)
	for _, v := range []string{
		"Thu, 03 Dec 2026 06:30:05 GMT",   // IMF-fixdate
		"Thu, 03 Dec 2026 06:30:05 -0000", // botocore
		"Thu, 03 Dec 2026 06:30:05 +0000",
		"Thu, 03 Dec 2026 07:30:05 +0100",
		"Thu, 03 Dec 2026 06:30:05 UTC",
		"Thursday, 03-Dec-26 06:30:05 GMT", // RFC 850
		"Thu Dec  3 06:30:05 2026",         // asctime
		"Thu, 3 Dec 2026 06:30:05 GMT",
	} {
		got, err := ParseHTTPDate(v)
		if err != nil || !got.Equal(want) {
			t.Errorf("%q: %v %v, want %v", v, got, err, want)
		}
	}
	for _, v := range []string{"", "yesterday", "2026-12-03T06:30:05Z", "Thu, 03 Dec 2026 25:30:05 GMT"} {
		if _, err := ParseHTTPDate(v); err == nil {
			t.Errorf("%q parsed", v)
		}
	}
}
