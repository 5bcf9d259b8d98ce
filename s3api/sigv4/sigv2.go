package sigv4

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Signature Version 2, which aws-cli v1's presign, s3cmd's signurl, libs3
// and old POST forms still use: an HMAC-SHA1 over the method, Content-MD5,
// Content-Type, the date (or a presigned URL's expiry), every x-amz-*
// header and the resource with its sub-resources. The body is not signed;
// Content-MD5, when sent, is signed and verified.

// v2SubResources are the query parameters V2 signs (the list S3 and the
// SDKs canonicalise); any other parameter is left out of the signature.
var v2SubResources = map[string]bool{
	"accelerate": true, "acl": true, "analytics": true, "cors": true, "delete": true, "encryption": true,
	"intelligent-tiering": true, "inventory": true, "legal-hold": true, "lifecycle": true, "location": true,
	"logging": true, "metrics": true, "notification": true, "object-lock": true, "ownershipControls": true,
	"partNumber": true, "policy": true, "policyStatus": true, "publicAccessBlock": true, "replication": true,
	"requestPayment": true, "restore": true, "retention": true, "select": true, "select-type": true,
	"tagging": true, "torrent": true, "uploadId": true, "uploads": true, "versionId": true, "versioning": true,
	"versions": true, "website": true, "attributes": true,
	"response-cache-control": true, "response-content-disposition": true, "response-content-encoding": true,
	"response-content-language": true, "response-content-type": true, "response-expires": true,
}

// VerifyAny checks a request signed with SigV4 or SigV2. hostBucket is the
// bucket the Host header names in virtual-hosted style ("" for path
// style): V2 signs "/bucket/key" whichever way the bucket was addressed.
func VerifyAny(r *http.Request, creds Credentials, now time.Time, hostBucket string) (*Auth, error) {
	h := r.Header.Get("Authorization")
	if strings.HasPrefix(h, "AWS ") {
		return verifyV2Header(r, strings.TrimPrefix(h, "AWS "), creds, now, hostBucket)
	}
	q := r.URL.Query()
	if h == "" && q.Get("X-Amz-Algorithm") == "" && q.Get("AWSAccessKeyId") != "" {
		return verifyV2Query(r, q, creds, now, hostBucket)
	}
	return Verify(r, creds, now)
}

func verifyV2Header(r *http.Request, cred string, creds Credentials, now time.Time, hostBucket string) (*Auth, error) {
	key, sig, ok := strings.Cut(cred, ":")
	if !ok || key == "" || sig == "" {
		return nil, fail("AuthorizationHeaderMalformed", "the V2 Authorization header must be 'AWS AccessKeyId:Signature'")
	}
	date := r.Header.Get("X-Amz-Date")
	dateLine := ""
	if date == "" {
		date = r.Header.Get("Date")
		dateLine = date
	}
	t, err := ParseHTTPDate(date)
	if err != nil {
		if t, err = time.Parse(timeFormat, date); err != nil {
			return nil, fail("AccessDenied", "AWS authentication requires a valid Date or x-amz-date header")
		}
	}
	if d := now.Sub(t); d > MaxSkew || d < -MaxSkew {
		return nil, fail("RequestTimeTooSkewed", "the difference between the request time and the current time is too large")
	}
	return checkV2(r, key, sig, dateLine, creds, hostBucket, false)
}

func verifyV2Query(r *http.Request, q url.Values, creds Credentials, now time.Time, hostBucket string) (*Auth, error) {
	key, sig, expires := q.Get("AWSAccessKeyId"), q.Get("Signature"), q.Get("Expires")
	exp, err := strconv.ParseInt(expires, 10, 64)
	if sig == "" || err != nil {
		return nil, fail("AccessDenied", "a V2 presigned URL needs AWSAccessKeyId, Expires (seconds since the epoch) and Signature")
	}
	if now.Unix() > exp {
		return nil, fail("AccessDenied", "Request has expired")
	}
	return checkV2(r, key, sig, expires, creds, hostBucket, true)
}

func checkV2(r *http.Request, key, sig, dateLine string, creds Credentials, hostBucket string, presigned bool) (*Auth, error) {
	secret, ok := creds.SecretKey(key)
	if !ok {
		return nil, fail("InvalidAccessKeyId", unknownKey)
	}
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(stringToSignV2(r, dateLine, hostBucket)))
	want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	if !hmac.Equal([]byte(want), []byte(sig)) {
		return nil, fail("SignatureDoesNotMatch", "the request signature we calculated does not match the signature you provided; check your key and signing method")
	}
	return &Auth{AccessKey: key, PayloadHash: UnsignedPayload, Presigned: presigned, SigV2: true}, nil
}

// stringToSignV2 is Verb, Content-MD5, Content-Type, the date line, the
// canonical x-amz-* headers and the canonical resource.
func stringToSignV2(r *http.Request, dateLine, hostBucket string) string {
	var b strings.Builder
	b.WriteString(r.Method + "\n")
	b.WriteString(r.Header.Get("Content-Md5") + "\n")
	b.WriteString(r.Header.Get("Content-Type") + "\n")
	b.WriteString(dateLine + "\n")
	var names []string
	for name := range r.Header {
		if lower := strings.ToLower(name); strings.HasPrefix(lower, "x-amz-") {
			names = append(names, lower)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		var vals []string
		for _, v := range r.Header.Values(name) {
			vals = append(vals, strings.Join(strings.Fields(v), " "))
		}
		b.WriteString(name + ":" + strings.Join(vals, ",") + "\n")
	}
	b.WriteString(canonicalResourceV2(r, hostBucket))
	return b.String()
}

// canonicalResourceV2 is "/bucket" (in virtual-hosted style) and the path
// as sent, then the signed sub-resources sorted by name, values decoded.
func canonicalResourceV2(r *http.Request, hostBucket string) string {
	path := r.URL.EscapedPath()
	if u := r.RequestURI; strings.HasPrefix(u, "/") {
		path, _, _ = strings.Cut(u, "?")
	}
	if hostBucket != "" {
		path = "/" + hostBucket + path
	}
	if strings.Count(path, "/") == 1 && len(path) > 1 {
		path += "/" // a bucket is signed as "/bucket/" however it was addressed
	}
	type kv struct{ k, v string }
	var subs []kv
	for _, pair := range strings.Split(r.URL.RawQuery, "&") {
		k, v, hasValue := strings.Cut(pair, "=")
		if k, err := url.QueryUnescape(k); err != nil || !v2SubResources[k] {
			continue
		}
		if dv, err := url.QueryUnescape(v); err == nil {
			v = dv
		}
		if hasValue {
			subs = append(subs, kv{k, "=" + v})
		} else {
			subs = append(subs, kv{k, ""})
		}
	}
	sort.SliceStable(subs, func(i, j int) bool { return subs[i].k < subs[j].k })
	for i, s := range subs {
		if i == 0 {
			path += "?"
		} else {
			path += "&"
		}
		path += s.k + s.v
	}
	return path
}

// VerifyPOSTPolicyV2 checks a form signed with V2: signature is the
// base64 HMAC-SHA1 of the base64 policy under the secret of AWSAccessKeyId.
func VerifyPOSTPolicyV2(fields map[string]string, creds Credentials) (*Auth, error) {
	key, sig, pol := fields["awsaccesskeyid"], fields["signature"], fields["policy"]
	if key == "" || sig == "" || pol == "" {
		return nil, fail("AccessDenied", "a V2-signed POST needs AWSAccessKeyId, policy and signature fields")
	}
	secret, ok := creds.SecretKey(key)
	if !ok {
		return nil, fail("InvalidAccessKeyId", unknownKey)
	}
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(pol))
	if !hmac.Equal([]byte(base64.StdEncoding.EncodeToString(mac.Sum(nil))), []byte(sig)) {
		return nil, fail("SignatureDoesNotMatch", "the request signature we calculated does not match the signature you provided")
	}
	return &Auth{AccessKey: key, PayloadHash: UnsignedPayload, SigV2: true}, nil
}
