package s3api

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The server access log: one line per request in the fields and order of
// AWS's S3 server access log, space separated, "-" for a field that does
// not apply. Where Strata differs: the bucket owner is "-" (not looked up
// per request), the requester is the signer's user name (root for the
// root user, "-" for anonymous), the object size is given for uploads
// only (from their Content-Length), the operation is REST.<METHOD>.<the
// resource: OBJECT, BUCKET, SERVICE, or the sub-resource asked for, such
// as ACL or TAGGING>, and host id is the request id.

// AccessLog writes access-log lines to w, one Write per line.
type AccessLog struct {
	mu sync.Mutex
	w  io.Writer
}

// NewAccessLog logs to w.
func NewAccessLog(w io.Writer) *AccessLog { return &AccessLog{w: w} }

// subResources name an operation's resource when the query asks for one.
var subResources = []string{"acl", "tagging", "versioning", "versions", "uploads", "uploadId", "policy", "cors", "location",
	"ownershipControls", "publicAccessBlock", "object-lock", "retention", "legal-hold", "lifecycle", "encryption", "attributes", "delete", "restore"}

func operation(r *http.Request, rc *reqContext) string {
	res := "SERVICE"
	switch {
	case rc.key != "":
		res = "OBJECT"
	case rc.bucket != "":
		res = "BUCKET"
	}
	q := r.URL.Query()
	for _, sub := range subResources {
		if q.Has(sub) {
			res = strings.ToUpper(strings.ReplaceAll(sub, "-", ""))
			break
		}
	}
	return "REST." + r.Method + "." + res
}

func field(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func quoted(s string) string {
	if s == "" {
		return "-"
	}
	return strconv.Quote(s)
}

// entry writes the line of one request.
func (l *AccessLog) entry(r *http.Request, rc *reqContext, status int, sent int64, start time.Time, firstByte time.Duration) {
	remote, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		remote = r.RemoteAddr
	}
	requester := "-"
	switch {
	case rc.root:
		requester = "root"
	case rc.user != "":
		requester = rc.user
	}
	sigVersion, authType := "-", "-"
	if rc.auth != nil {
		sigVersion, authType = "SigV4", "AuthHeader"
		if rc.auth.SigV2 {
			sigVersion = "SigV2"
		}
		if rc.auth.Presigned {
			authType = "QueryString"
		}
	}
	cipher, tlsVersion := "-", "-"
	if r.TLS != nil {
		cipher, tlsVersion = tls.CipherSuiteName(r.TLS.CipherSuite), tlsVersionName(r.TLS.Version)
	}
	errCode := "-"
	if status >= 300 {
		errCode = field(rc.code)
	}
	objectSize := "-"
	if rc.key != "" && r.ContentLength > 0 {
		objectSize = strconv.FormatInt(r.ContentLength, 10)
	}
	bytesSent := "-"
	if sent > 0 {
		bytesSent = strconv.FormatInt(sent, 10)
	}
	line := fmt.Sprintf("- %s [%s] %s %s %s %s %s %s %d %s %s %s %d %d %s %s - %s %s %s %s %s %s - -\n",
		field(rc.bucket), start.UTC().Format("02/Jan/2006:15:04:05 -0700"), field(remote), requester, rc.id,
		operation(r, rc), field(rc.key), quoted(r.Method+" "+r.URL.RequestURI()+" "+r.Proto), status, errCode, bytesSent, objectSize,
		time.Since(start).Milliseconds(), firstByte.Milliseconds(), quoted(r.Referer()), quoted(r.UserAgent()),
		rc.id, sigVersion, cipher, authType, field(r.Host), tlsVersion)
	l.mu.Lock()
	l.w.Write([]byte(line))
	l.mu.Unlock()
}

func tlsVersionName(v uint16) string {
	switch v {
	case tls.VersionTLS12:
		return "TLSv1.2"
	case tls.VersionTLS13:
		return "TLSv1.3"
	}
	return "TLSv" + strconv.Itoa(int(v))
}
