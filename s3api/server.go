package s3api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-storage/strata/objectstore"
	"github.com/strata-storage/strata/s3api/policy"
	"github.com/strata-storage/strata/s3api/sigv4"
)

// Config configures the S3 front end.
type Config struct {
	Region string
	// OwnerID is the root user's display name in listings and ACLs.
	OwnerID string
	// Domains enable virtual-hosted-style requests: a Host of
	// "<bucket>.<domain>" addresses that bucket.
	Domains []string
	// Identity says who signed a request and what users may do (nil:
	// nobody's signature is accepted).
	Identity Identity
	// Quota admits writes against quotas (nil: no quotas).
	Quota QuotaGate
	// SigV2 accepts Signature Version 2 (header, presigned URLs, POST
	// forms) besides SigV4.
	SigV2    bool
	Logger   *slog.Logger
	Registry prometheus.Registerer
	Now      func() time.Time // for tests; time.Now by default
	// AccessLog, if set, gets a server access log line per request.
	AccessLog *AccessLog
}

// Server serves the S3 API over an object store.
type Server struct {
	cfg     Config
	store   *objectstore.Store
	log     *slog.Logger
	router  *mux.Router
	metrics *serverMetrics
	active  atomic.Int64 // requests being served (background work yields to them)
}

// InFlight is the number of S3 requests being served.
func (s *Server) InFlight() int64 { return s.active.Load() }

type serverMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inflight prometheus.Gauge
	bytesIn  prometheus.Counter
	bytesOut prometheus.Counter
}

// New returns the S3 server.
func New(cfg Config, store *objectstore.Store) *Server {
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Identity == nil {
		cfg.Identity = nobody{}
	}
	s := &Server{cfg: cfg, store: store, log: cfg.Logger}
	s.metrics = &serverMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "strata_s3_requests_total", Help: "S3 requests by API and response code."}, []string{"api", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "strata_s3_request_duration_seconds", Help: "S3 request latency by API.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, []string{"api"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{Name: "strata_s3_inflight_requests", Help: "S3 requests being served."}),
		bytesIn:  prometheus.NewCounter(prometheus.CounterOpts{Name: "strata_s3_received_bytes_total", Help: "Object bytes received in PUT bodies."}),
		bytesOut: prometheus.NewCounter(prometheus.CounterOpts{Name: "strata_s3_sent_bytes_total", Help: "Object bytes sent in GET bodies."}),
	}
	if cfg.Registry != nil {
		cfg.Registry.MustRegister(s.metrics.requests, s.metrics.duration, s.metrics.inflight, s.metrics.bytesIn, s.metrics.bytesOut)
	}
	s.router = s.routes()
	return s
}

type ctxKey struct{}

// reqContext is what the middleware learns about a request.
type reqContext struct {
	id          string
	api         string
	code        string
	bucket, key string
	auth        *sigv4.Auth
	anonymous   bool
	user        string // of a signed request ("" for the root user)
	root        bool
}

func reqCtx(r *http.Request) *reqContext {
	rc, _ := r.Context().Value(ctxKey{}).(*reqContext)
	return rc
}

func newRequestID() string {
	var b [8]byte
	rand.Read(b[:])
	return strings.ToUpper(hex.EncodeToString(b[:]))
}

// ServeHTTP authenticates, rewrites virtual-hosted requests to path style
// and dispatches.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rc := &reqContext{id: newRequestID(), api: "unknown"}
	r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, rc))
	w.Header().Set("X-Amz-Request-Id", rc.id)
	w.Header().Set("X-Amz-Id-2", rc.id)
	w.Header().Set("Server", "Strata")
	if r.ContentLength == 0 && strings.EqualFold(r.Header.Get("Expect"), "100-continue") {
		// net/http sends 100 Continue only when a non-empty body is read.
		// Clients that asked for it on an empty body (botocore does) can
		// otherwise lose track of the connection and stall the next
		// request until their read timeout.
		w.WriteHeader(http.StatusContinue)
	}
	s.metrics.inflight.Inc()
	s.active.Add(1)
	sw := &statusWriter{ResponseWriter: w, status: 200, start: start}
	defer func() {
		s.metrics.inflight.Dec()
		s.active.Add(-1)
		code := rc.code
		if code == "" {
			code = http.StatusText(sw.status)
		}
		s.metrics.requests.WithLabelValues(rc.api, code).Inc()
		s.metrics.duration.WithLabelValues(rc.api).Observe(time.Since(start).Seconds())
		if s.cfg.AccessLog != nil {
			s.cfg.AccessLog.entry(r, rc, sw.status, sw.sent, start, sw.firstByte)
		}
	}()

	if r.Method == http.MethodOptions {
		// CORS preflight: browsers send it without credentials.
		rc.api = "PreflightCORS"
		bucket := s.hostBucket(r.Host)
		if bucket == "" {
			bucket, _, _ = strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		}
		rc.bucket = bucket
		if err := s.preflight(sw, r, bucket); err != nil {
			s.writeError(sw, r, err)
		}
		return
	}
	var auth *sigv4.Auth
	var err error
	if s.cfg.SigV2 {
		auth, err = sigv4.VerifyAny(r, s.cfg.Identity, s.cfg.Now(), s.hostBucket(r.Host))
	} else {
		auth, err = sigv4.Verify(r, s.cfg.Identity, s.cfg.Now())
	}
	switch {
	case errors.Is(err, sigv4.ErrNoAuth):
		// Anonymous: allowed only as far as canned ACLs say (checked per
		// operation in wrap); the body is taken unsigned.
		rc.auth, rc.anonymous = &sigv4.Auth{PayloadHash: sigv4.UnsignedPayload}, true
	case err != nil:
		rc.api = "auth"
		s.writeError(sw, r, err)
		return
	default:
		rc.auth = auth
		rc.root = true
		rc.user, rc.root = s.cfg.Identity.Principal(auth.AccessKey)
	}
	if bucket := s.hostBucket(r.Host); bucket != "" {
		r.URL.Path = "/" + bucket + r.URL.Path
		r.URL.RawPath = ""
	}
	if r.Header.Get("Origin") != "" {
		bucket, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		s.corsActual(sw, r, bucket)
	}
	s.router.ServeHTTP(sw, r)
}

// hostBucket returns the bucket of a virtual-hosted-style Host, or "".
func (s *Server) hostBucket(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(host)
	for _, d := range s.cfg.Domains {
		if b, ok := strings.CutSuffix(host, "."+d); ok && b != "" {
			return b
		}
	}
	return ""
}

type statusWriter struct {
	http.ResponseWriter
	status    int
	wrote     bool
	sent      int64
	start     time.Time
	firstByte time.Duration // from start to the status line
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
		w.firstByte = time.Since(w.start)
		amzLowercase(w.ResponseWriter.Header())
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(p)
	w.sent += int64(n)
	return n, err
}

// amzLowercase spells x-amz-* response headers in lower case, as S3 sends
// them (x-amz-request-id, x-amz-version-id, x-amz-checksum-crc32, ...);
// Go would send them canonicalised. The Access-Control-* and standard
// headers keep their usual spelling, which is S3's too.
func amzLowercase(h http.Header) {
	for k, v := range h {
		if strings.HasPrefix(k, "X-Amz-") {
			delete(h, k)
			h[strings.ToLower(k)] = v
		}
	}
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// handler is an S3 operation: it returns an error to be sent as S3 XML, or
// nil once it has written its response.
type handler func(w http.ResponseWriter, r *http.Request, rc *reqContext) error

// versionedAPIs take a versionId query parameter.
var versionedAPIs = map[string]bool{"GetObject": true, "HeadObject": true, "DeleteObject": true, "GetObjectAttributes": true,
	"GetObjectAcl": true, "PutObjectAcl": true, "GetObjectTagging": true, "PutObjectTagging": true, "DeleteObjectTagging": true}

// notImplemented lists subresources Strata does not serve yet; a request
// naming one gets 501 rather than a success that did nothing.
var notImplemented = []string{
	"lifecycle", "website", "logging",
	"notification", "replication", "encryption", "object-lock", "accelerate", "requestPayment",
	"intelligent-tiering", "analytics", "metrics",
	"inventory", "retention", "legal-hold", "torrent", "restore",
	"select", "select-type", "rename", "session",
}

// isAuthParam reports whether a query parameter belongs to a presigned
// URL's signature (V4 or V2) rather than to the request.
func isAuthParam(k string) bool {
	return strings.HasPrefix(strings.ToLower(k), "x-amz-") || k == "AWSAccessKeyId" || k == "Signature" || k == "Expires"
}

// refuseNotImplemented answers a request naming a subresource of
// notImplemented.
func (s *Server) refuseNotImplemented(r *http.Request) error {
	q := r.URL.Query()
	for _, sub := range notImplemented {
		if q.Has(sub) {
			reqCtx(r).api = "NotImplemented:" + sub
			return apiErr("NotImplemented", "Strata does not implement the '"+sub+"' subresource yet.")
		}
	}
	return nil
}

func (s *Server) routes() *mux.Router {
	r := mux.NewRouter().SkipClean(true).UseEncodedPath()
	add := func(method, path, api string, h handler, queries ...string) {
		route := r.Methods(method).Path(path)
		if len(queries) > 0 {
			route = route.Queries(queries...)
		}
		route.HandlerFunc(s.wrap(api, h))
	}
	const obj = "/{bucket}/{object:.+}"
	const bkt = "/{bucket}"
	for _, p := range []string{bkt, bkt + "/"} {
		add("GET", p, "GetBucketPolicy", s.getBucketPolicy, "policy", "")
		add("PUT", p, "PutBucketPolicy", s.putBucketPolicy, "policy", "")
		add("DELETE", p, "DeleteBucketPolicy", s.deleteBucketPolicy, "policy", "")
		add("GET", p, "GetBucketOwnershipControls", s.getBucketOwnershipControls, "ownershipControls", "")
		add("PUT", p, "PutBucketOwnershipControls", s.putBucketOwnershipControls, "ownershipControls", "")
		add("DELETE", p, "DeleteBucketOwnershipControls", s.deleteBucketOwnershipControls, "ownershipControls", "")
		add("GET", p, "GetPublicAccessBlock", s.getPublicAccessBlock, "publicAccessBlock", "")
		add("PUT", p, "PutPublicAccessBlock", s.putPublicAccessBlock, "publicAccessBlock", "")
		add("DELETE", p, "DeletePublicAccessBlock", s.deletePublicAccessBlock, "publicAccessBlock", "")
		add("GET", p, "GetBucketPolicyStatus", s.getBucketPolicyStatus, "policyStatus", "")
		add("GET", p, "GetBucketAcl", s.getBucketAcl, "acl", "")
		add("PUT", p, "PutBucketAcl", s.putBucketAcl, "acl", "")
		add("GET", p, "GetBucketCors", s.getBucketCors, "cors", "")
		add("PUT", p, "PutBucketCors", s.putBucketCors, "cors", "")
		add("DELETE", p, "DeleteBucketCors", s.deleteBucketCors, "cors", "")
		add("GET", p, "GetBucketTagging", s.getBucketTagging, "tagging", "")
		add("PUT", p, "PutBucketTagging", s.putBucketTagging, "tagging", "")
		add("DELETE", p, "DeleteBucketTagging", s.deleteBucketTagging, "tagging", "")
		add("GET", p, "GetBucketLocation", s.getBucketLocation, "location", "")
		add("GET", p, "ListMultipartUploads", s.listMultipartUploads, "uploads", "")
		add("GET", p, "GetBucketVersioning", s.getBucketVersioning, "versioning", "")
		add("PUT", p, "PutBucketVersioning", s.putBucketVersioning, "versioning", "")
		add("GET", p, "ListObjectVersions", s.listObjectVersions, "versions", "")
		add("GET", p, "ListObjectsV2", s.listObjectsV2, "list-type", "2")
		add("GET", p, "ListObjects", s.listObjectsV1)
		add("HEAD", p, "HeadBucket", s.headBucket)
		add("PUT", p, "CreateBucket", s.createBucket)
		add("DELETE", p, "DeleteBucket", s.deleteBucket)
		add("POST", p, "DeleteObjects", s.deleteObjects, "delete", "")
		add("POST", p, "PostObject", s.postObject)
	}
	add("GET", obj, "GetObjectAcl", s.getObjectAcl, "acl", "")
	add("PUT", obj, "PutObjectAcl", s.putObjectAcl, "acl", "")
	add("GET", obj, "GetObjectAttributes", s.getObjectAttributes, "attributes", "")
	add("GET", obj, "GetObjectTagging", s.getObjectTagging, "tagging", "")
	add("PUT", obj, "PutObjectTagging", s.putObjectTagging, "tagging", "")
	add("DELETE", obj, "DeleteObjectTagging", s.deleteObjectTagging, "tagging", "")
	add("PUT", obj, "UploadPart", s.uploadPart, "partNumber", "{partNumber}", "uploadId", "{uploadId}")
	add("PUT", obj, "PutObject", s.putObject)
	add("POST", obj, "CreateMultipartUpload", s.createMultipartUpload, "uploads", "")
	add("POST", obj, "CompleteMultipartUpload", s.completeMultipartUpload, "uploadId", "{uploadId}")
	add("GET", obj, "ListParts", s.listParts, "uploadId", "{uploadId}")
	add("GET", obj, "GetObject", s.getObject)
	add("HEAD", obj, "HeadObject", s.headObject)
	add("DELETE", obj, "AbortMultipartUpload", s.abortMultipartUpload, "uploadId", "{uploadId}")
	add("DELETE", obj, "DeleteObject", s.deleteObject)
	add("GET", "/", "ListBuckets", s.listBuckets)
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqCtx(r).api = "unknown"
		// A subresource Strata does not serve (POST ?select, PUT ?restore)
		// is 501 whatever the method, not 405.
		if err := s.refuseNotImplemented(r); err != nil {
			s.writeError(w, r, err)
			return
		}
		s.writeError(w, r, apiErr("MethodNotAllowed"))
	})
	r.NotFoundHandler = r.MethodNotAllowedHandler
	return r
}

// wrap turns a handler into an http.HandlerFunc: it fills in bucket and
// key, refuses unimplemented subresources and writes errors.
func (s *Server) wrap(api string, h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rc := reqCtx(r)
		rc.api = api
		vars := mux.Vars(r)
		var err error
		if rc.bucket, err = url.PathUnescape(vars["bucket"]); err == nil {
			rc.key, err = url.PathUnescape(vars["object"])
		}
		if err != nil {
			s.writeError(w, r, apiErr("InvalidRequest", "The request path is not valid URL encoding."))
			return
		}
		q := r.URL.Query()
		if err := s.refuseNotImplemented(r); err != nil {
			s.writeError(w, r, err)
			return
		}
		if api == "CreateBucket" || api == "DeleteBucket" || api == "HeadBucket" {
			// These take no query; a subresource we do not route (such as
			// PUT ?versioning) must not be mistaken for them.
			for k := range q {
				if k != "x-id" && !isAuthParam(k) {
					rc.api = "NotImplemented:" + k
					s.writeError(w, r, apiErr("NotImplemented", "Strata does not implement the '"+k+"' subresource for "+r.Method+" yet."))
					return
				}
			}
		}
		if q.Has("versionId") && !versionedAPIs[api] {
			s.writeError(w, r, apiErr("NotImplemented", api+" of a specific version is not implemented; it applies to the current version only."))
			return
		}
		if rc.anonymous && api != "PostObject" { // a POST form carries its own signature
			if err := s.authorizeAnonymous(r, rc); err != nil {
				s.writeError(w, r, err)
				return
			}
		} else if !rc.anonymous && !rc.root {
			if err := s.authorizeUser(r, rc); err != nil {
				s.writeError(w, r, err)
				return
			}
		} else if rc.root && rc.bucket != "" && !policyAPIs[api] {
			// An explicit Deny in a bucket policy binds root too; only the
			// policy itself stays within its reach.
			if d, err := s.policyDecision(r, rc); err == nil && d == policy.Denied {
				s.writeError(w, r, apiErr("AccessDenied"))
				return
			}
		}
		if err := checkRequestHeaders(r.Header); err != nil {
			s.writeError(w, r, err)
			return
		}
		if err := s.checkExpectedOwners(r, rc); err != nil {
			s.writeError(w, r, err)
			return
		}
		if err := h(w, r, rc); err != nil {
			s.writeError(w, r, err)
		}
	}
}

// checkExpectedOwners refuses a request whose x-amz-expected-bucket-owner
// (or, for a copy, x-amz-source-expected-bucket-owner) does not name the
// owner of the bucket (by canonical id, or by user name), as S3 does: 403
// AccessDenied.
func (s *Server) checkExpectedOwners(r *http.Request, rc *reqContext) error {
	check := func(header, bucket string) error {
		want := r.Header.Get(header)
		if want == "" || bucket == "" {
			return nil
		}
		b, err := s.store.HeadBucket(r.Context(), bucket)
		if err != nil {
			return err
		}
		if own := s.bucketOwner(b); want != own.ID && want != own.DisplayName {
			return apiErr("AccessDenied", "The bucket is not owned by the owner "+header+" names.")
		}
		return nil
	}
	if err := check("X-Amz-Expected-Bucket-Owner", rc.bucket); err != nil {
		return err
	}
	if src := r.Header.Get("X-Amz-Copy-Source"); src != "" {
		if bucket, _, _, err := copySource(src); err == nil {
			return check("X-Amz-Source-Expected-Bucket-Owner", bucket)
		}
	}
	return nil
}

func writeXML(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	w.Write([]byte(xml.Header))
	return xml.NewEncoder(w).Encode(v)
}

// isoTime formats times as S3 does in XML.
func isoTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// admit asks the quota hook about a write.
func (s *Server) admit(r *http.Request, bucket string, bytes, objects int64) error {
	if s.cfg.Quota == nil {
		return nil
	}
	if err := s.cfg.Quota.Admit(r.Context(), bucket, max(bytes, 0), objects); err != nil {
		return apiErr("QuotaExceeded", "The bucket's or its owner's quota does not allow this write: "+err.Error()+".")
	}
	return nil
}
