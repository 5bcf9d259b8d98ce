package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Algorithm and payload markers of SigV4.
const (
	Algorithm              = "AWS4-HMAC-SHA256"
	UnsignedPayload        = "UNSIGNED-PAYLOAD"
	StreamingPayload       = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	StreamingPayloadTrail  = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
	StreamingUnsignedTrail = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
	EmptySHA256            = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	timeFormat             = "20060102T150405Z"
	MaxSkew                = 15 * time.Minute
	MaxPresignExpiry       = 7 * 24 * time.Hour
)

// Error is a verification failure with the S3 error code it maps to.
type Error struct {
	Code    string
	Message string
}

// unknownKey answers a key that is not in the store or is disabled (its
// user's too): the same words for both, so that a caller cannot tell
// which keys exist, and words that do not send an operator looking for a
// key that is there but disabled.
const unknownKey = "the AWS access key id you provided does not exist in our records or is disabled"

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func fail(code, format string, args ...any) error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrNoAuth is returned for a request that carries no signature at all.
var ErrNoAuth = errors.New("sigv4: request is not signed")

// Credentials looks up the secret of an access key.
type Credentials interface {
	SecretKey(accessKey string) (secret string, ok bool)
}

// Auth is a verified request's identity and what its body must satisfy.
type Auth struct {
	AccessKey   string
	PayloadHash string // hex SHA-256, UnsignedPayload, or a streaming marker
	Presigned   bool
	SigV2       bool // signed with Signature Version 2

	signingKey []byte
	signature  string
	date       string // x-amz-date
	scope      string // date/region/service/aws4_request
}

// Verify checks the request's signature (header or presigned query) at time
// now. It does not read the body.
func Verify(r *http.Request, creds Credentials, now time.Time) (*Auth, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		return verifyHeader(r, h, creds, now)
	}
	q := r.URL.Query()
	if q.Get("X-Amz-Algorithm") != "" || q.Get("X-Amz-Signature") != "" {
		return verifyPresigned(r, q, creds, now)
	}
	if q.Get("AWSAccessKeyId") != "" {
		return nil, fail("AccessDenied", "Signature Version 2 is not supported; use Signature Version 4")
	}
	return nil, ErrNoAuth
}

type credential struct {
	accessKey, date, region, service string
}

func parseCredential(s string) (credential, error) {
	parts := strings.Split(s, "/")
	if len(parts) != 5 || parts[4] != "aws4_request" || parts[3] != "s3" || len(parts[1]) != 8 {
		return credential{}, fail("AuthorizationHeaderMalformed", "the credential %q is malformed; expected \"<key>/<YYYYMMDD>/<region>/s3/aws4_request\"", s)
	}
	return credential{accessKey: parts[0], date: parts[1], region: parts[2], service: parts[3]}, nil
}

func (c credential) scope() string {
	return c.date + "/" + c.region + "/" + c.service + "/aws4_request"
}

func verifyHeader(r *http.Request, h string, creds Credentials, now time.Time) (*Auth, error) {
	rest, ok := strings.CutPrefix(h, Algorithm+" ")
	if !ok {
		if strings.HasPrefix(h, "AWS ") {
			return nil, fail("AccessDenied", "Signature Version 2 is not supported; use Signature Version 4")
		}
		return nil, fail("AuthorizationHeaderMalformed", "unsupported authorization type")
	}
	fields := map[string]string{}
	for _, f := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(f), "=")
		if !ok {
			return nil, fail("AuthorizationHeaderMalformed", "malformed field %q", f)
		}
		fields[k] = v
	}
	cred, err := parseCredential(fields["Credential"])
	if err != nil {
		return nil, err
	}
	signed, sig := fields["SignedHeaders"], fields["Signature"]
	if signed == "" || len(sig) != 64 {
		return nil, fail("AuthorizationHeaderMalformed", "missing SignedHeaders or Signature")
	}
	amzDate := r.Header.Get("X-Amz-Date")
	var t time.Time
	if amzDate != "" {
		t, err = time.Parse(timeFormat, amzDate)
	} else if d := r.Header.Get("Date"); d != "" {
		t, err = ParseHTTPDate(d)
		amzDate = t.UTC().Format(timeFormat)
	} else {
		return nil, fail("AccessDenied", "AWS authentication requires a valid Date or x-amz-date header")
	}
	if err != nil {
		return nil, fail("AccessDenied", "AWS authentication requires a valid Date or x-amz-date header")
	}
	if d := now.Sub(t); d > MaxSkew || d < -MaxSkew {
		return nil, fail("RequestTimeTooSkewed", "the difference between the request time and the server's time is too large")
	}
	if amzDate[:8] != cred.date {
		return nil, fail("SignatureDoesNotMatch", "credential date does not match x-amz-date")
	}
	payload := r.Header.Get("X-Amz-Content-Sha256")
	if payload == "" {
		// Required by S3 for header-signed requests; clients always send it.
		return nil, fail("InvalidRequest", "missing required header for this request: x-amz-content-sha256")
	}
	switch payload {
	case UnsignedPayload, StreamingPayload, StreamingPayloadTrail, StreamingUnsignedTrail:
	default:
		if len(payload) != 64 {
			return nil, fail("InvalidArgument", "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, a streaming marker or a hex SHA-256")
		}
		if _, err := hex.DecodeString(payload); err != nil {
			return nil, fail("InvalidArgument", "x-amz-content-sha256 is not hex")
		}
	}
	secret, ok := creds.SecretKey(cred.accessKey)
	if !ok {
		return nil, fail("InvalidAccessKeyId", unknownKey)
	}
	if err := allAmzSigned(r, strings.Split(signed, ";")); err != nil {
		return nil, err
	}
	canon, err := canonicalRequest(r, strings.Split(signed, ";"), payload, "")
	if err != nil {
		return nil, err
	}
	a := &Auth{AccessKey: cred.accessKey, PayloadHash: payload, date: amzDate, scope: cred.scope()}
	if err := a.check(secret, cred, canon, sig); err != nil {
		return nil, err
	}
	return a, nil
}

// check derives the signing key and compares the request's signature.
func (a *Auth) check(secret string, cred credential, canonical, sig string) error {
	a.signingKey = SigningKey(secret, cred.date, cred.region, cred.service)
	want := hmacHex(a.signingKey, stringToSign(a.date, a.scope, canonical))
	if !hmac.Equal([]byte(want), []byte(sig)) {
		return fail("SignatureDoesNotMatch", "the request signature we calculated does not match the signature you provided; check your key and signing method")
	}
	a.signature = sig
	return nil
}

func verifyPresigned(r *http.Request, q url.Values, creds Credentials, now time.Time) (*Auth, error) {
	if q.Get("X-Amz-Algorithm") != Algorithm {
		return nil, fail("AuthorizationQueryParametersError", "X-Amz-Algorithm must be %s", Algorithm)
	}
	cred, err := parseCredential(q.Get("X-Amz-Credential"))
	if err != nil {
		return nil, fail("AuthorizationQueryParametersError", "%v", err)
	}
	amzDate := q.Get("X-Amz-Date")
	t, err := time.Parse(timeFormat, amzDate)
	if err != nil || amzDate[:8] != cred.date {
		return nil, fail("AuthorizationQueryParametersError", "X-Amz-Date must be in ISO8601 basic format and match the credential date")
	}
	exp, err := strconv.Atoi(q.Get("X-Amz-Expires"))
	if err != nil || exp < 1 || time.Duration(exp)*time.Second > MaxPresignExpiry {
		return nil, fail("AuthorizationQueryParametersError", "X-Amz-Expires must be between 1 and 604800 seconds")
	}
	sig, signed := q.Get("X-Amz-Signature"), q.Get("X-Amz-SignedHeaders")
	if len(sig) != 64 || signed == "" {
		return nil, fail("AuthorizationQueryParametersError", "missing X-Amz-Signature or X-Amz-SignedHeaders")
	}
	if t.Sub(now) > MaxSkew {
		return nil, fail("AccessDenied", "request is not valid yet")
	}
	if now.After(t.Add(time.Duration(exp) * time.Second)) {
		return nil, fail("AccessDenied", "request has expired")
	}
	secret, ok := creds.SecretKey(cred.accessKey)
	if !ok {
		return nil, fail("InvalidAccessKeyId", unknownKey)
	}
	payload := q.Get("X-Amz-Content-Sha256")
	if payload == "" {
		payload = UnsignedPayload
	}
	if err := allAmzSigned(r, strings.Split(signed, ";")); err != nil {
		return nil, err
	}
	canon, err := canonicalRequest(r, strings.Split(signed, ";"), payload, "X-Amz-Signature")
	if err != nil {
		return nil, err
	}
	a := &Auth{AccessKey: cred.accessKey, PayloadHash: payload, Presigned: true, date: amzDate, scope: cred.scope()}
	if err := a.check(secret, cred, canon, sig); err != nil {
		return nil, err
	}
	return a, nil
}

// allAmzSigned refuses a request with an x-amz-* header its signature does
// not cover, as S3 does: such a header (x-amz-acl, x-amz-copy-source, ...)
// changes what the request means, so it could otherwise be added to a
// captured request. x-amz-content-sha256 is covered by the payload line of
// the canonical request and may go unsigned.
func allAmzSigned(r *http.Request, signedHeaders []string) error {
	var unsigned []string
	for name := range r.Header {
		lower := strings.ToLower(name)
		if !strings.HasPrefix(lower, "x-amz-") || lower == "x-amz-content-sha256" || slices.Contains(signedHeaders, lower) {
			continue
		}
		unsigned = append(unsigned, lower)
	}
	if len(unsigned) == 0 {
		return nil
	}
	sort.Strings(unsigned)
	return fail("AccessDenied", "There were headers present in the request which were not signed: %s", strings.Join(unsigned, ", "))
}

// SigningKey derives the SigV4 signing key.
func SigningKey(secret, date, region, service string) []byte {
	k := hmacSum([]byte("AWS4"+secret), date)
	k = hmacSum(k, region)
	k = hmacSum(k, service)
	return hmacSum(k, "aws4_request")
}

func hmacSum(key []byte, data string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(data))
	return h.Sum(nil)
}

func hmacHex(key []byte, data string) string { return hex.EncodeToString(hmacSum(key, data)) }

func sha256Hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func stringToSign(date, scope, canonical string) string {
	return Algorithm + "\n" + date + "\n" + scope + "\n" + sha256Hex(canonical)
}

// canonicalRequest builds the SigV4 canonical request. skipQuery names a
// query parameter left out (the signature itself, when presigned).
func canonicalRequest(r *http.Request, signedHeaders []string, payload, skipQuery string) (string, error) {
	var b strings.Builder
	b.WriteString(r.Method)
	b.WriteByte('\n')
	path := r.URL.Path
	if path == "" {
		path = "/"
	}
	b.WriteString(URIEncode(path, false))
	b.WriteByte('\n')
	b.WriteString(canonicalQuery(r.URL.RawQuery, skipQuery))
	b.WriteByte('\n')
	if !sort.StringsAreSorted(signedHeaders) {
		return "", fail("AuthorizationHeaderMalformed", "SignedHeaders must be sorted")
	}
	hasHost := false
	for _, name := range signedHeaders {
		if name != strings.ToLower(name) || name == "" {
			return "", fail("AuthorizationHeaderMalformed", "SignedHeaders must be lower case")
		}
		var values []string
		switch name {
		case "host":
			hasHost = true
			values = []string{r.Host}
		case "content-length":
			values = r.Header.Values("Content-Length")
			if len(values) == 0 && r.ContentLength >= 0 {
				values = []string{strconv.FormatInt(r.ContentLength, 10)}
			}
		case "transfer-encoding":
			values = r.TransferEncoding
		default:
			values = r.Header.Values(name)
		}
		b.WriteString(name)
		b.WriteByte(':')
		for i, v := range values {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strings.Join(strings.Fields(v), " "))
		}
		b.WriteByte('\n')
	}
	if !hasHost {
		return "", fail("AuthorizationHeaderMalformed", "the host header must be signed")
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(signedHeaders, ";"))
	b.WriteByte('\n')
	b.WriteString(payload)
	return b.String(), nil
}

func canonicalQuery(raw, skip string) string {
	if raw == "" {
		return ""
	}
	type kv struct{ k, v string }
	var kvs []kv
	for _, part := range strings.Split(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		k, _ = url.QueryUnescape(k)
		v, _ = url.QueryUnescape(v)
		if k == skip {
			continue
		}
		kvs = append(kvs, kv{URIEncode(k, true), URIEncode(v, true)})
	}
	sort.Slice(kvs, func(i, j int) bool {
		if kvs[i].k != kvs[j].k {
			return kvs[i].k < kvs[j].k
		}
		return kvs[i].v < kvs[j].v
	})
	var b strings.Builder
	for i, e := range kvs {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(e.k)
		b.WriteByte('=')
		b.WriteString(e.v)
	}
	return b.String()
}

// URIEncode percent-encodes every byte except the unreserved characters
// (and '/' unless encodeSlash), as SigV4 specifies.
func URIEncode(s string, encodeSlash bool) string {
	const hexdigits = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' || c == '/' && !encodeSlash {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexdigits[c>>4])
		b.WriteByte(hexdigits[c&15])
	}
	return b.String()
}

// VerifyPOSTPolicy checks the signature of a browser POST upload: the form
// carries a base64 policy document and an HMAC of it made with the SigV4
// signing key of the named credential. It returns the identity; checking
// the policy's expiration and conditions is the caller's.
func VerifyPOSTPolicy(fields map[string]string, creds Credentials, now time.Time) (*Auth, error) {
	if fields["x-amz-algorithm"] != Algorithm {
		return nil, fail("InvalidArgument", "x-amz-algorithm must be %s", Algorithm)
	}
	cred, err := parseCredential(fields["x-amz-credential"])
	if err != nil {
		return nil, fail("InvalidArgument", "invalid x-amz-credential")
	}
	amzDate := fields["x-amz-date"]
	if _, err := time.Parse(timeFormat, amzDate); err != nil || amzDate[:8] != cred.date {
		return nil, fail("InvalidArgument", "x-amz-date must be in ISO8601 basic format and match the credential date")
	}
	sig, pol := fields["x-amz-signature"], fields["policy"]
	if len(sig) != 64 || pol == "" {
		return nil, fail("AccessDenied", "a signed POST needs policy and x-amz-signature fields")
	}
	secret, ok := creds.SecretKey(cred.accessKey)
	if !ok {
		return nil, fail("InvalidAccessKeyId", unknownKey)
	}
	key := SigningKey(secret, cred.date, cred.region, cred.service)
	if !hmac.Equal([]byte(hmacHex(key, pol)), []byte(sig)) {
		return nil, fail("SignatureDoesNotMatch", "the request signature we calculated does not match the signature you provided")
	}
	return &Auth{AccessKey: cred.accessKey, PayloadHash: UnsignedPayload, date: amzDate, scope: cred.scope(), signingKey: key, signature: sig}, nil
}

// Sign signs a request with SigV4 header authentication (service s3) for
// the given body, as Strata's own clients (the CLI's admin calls) do.
func Sign(r *http.Request, accessKey, secret, region string, body []byte, now time.Time) error {
	sum := sha256.Sum256(body)
	payload := hex.EncodeToString(sum[:])
	date := now.UTC().Format(timeFormat)
	r.Header.Set("X-Amz-Date", date)
	r.Header.Set("X-Amz-Content-Sha256", payload)
	if r.Host == "" {
		r.Host = r.URL.Host
	}
	signed := []string{"host"}
	for name := range r.Header {
		if lower := strings.ToLower(name); strings.HasPrefix(lower, "x-amz-") {
			signed = append(signed, lower)
		}
	}
	sort.Strings(signed)
	canon, err := canonicalRequest(r, signed, payload, "")
	if err != nil {
		return err
	}
	cred := credential{accessKey: accessKey, date: date[:8], region: region, service: "s3"}
	key := SigningKey(secret, cred.date, region, "s3")
	sig := hmacHex(key, stringToSign(date, cred.scope(), canon))
	r.Header.Set("Authorization", Algorithm+" Credential="+accessKey+"/"+cred.scope()+", SignedHeaders="+strings.Join(signed, ";")+", Signature="+sig)
	return nil
}
