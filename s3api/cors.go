package s3api

import (
	"encoding/json"
	"encoding/xml"
	"net/http"
	"strconv"
	"strings"
)

// CORS: bucket configuration (PUT/GET/DELETE ?cors), preflight OPTIONS
// requests (answered without authentication, as browsers send them), and
// Access-Control-* headers on the actual requests a rule allows.

type corsRule struct {
	ID             string   `xml:"ID,omitempty" json:"id,omitempty"`
	AllowedOrigins []string `xml:"AllowedOrigin" json:"origins"`
	AllowedMethods []string `xml:"AllowedMethod" json:"methods"`
	AllowedHeaders []string `xml:"AllowedHeader,omitempty" json:"headers,omitempty"`
	ExposeHeaders  []string `xml:"ExposeHeader,omitempty" json:"expose,omitempty"`
	MaxAgeSeconds  *int     `xml:"MaxAgeSeconds,omitempty" json:"maxAge,omitempty"`
}

type corsConfig struct {
	XMLName xml.Name
	Rules   []corsRule `xml:"CORSRule"`
}

const corsKind = "cors"

// wildcardMatch matches s against a pattern with at most one '*'.
func wildcardMatch(pattern, s string) bool {
	before, after, found := strings.Cut(pattern, "*")
	if !found {
		return pattern == s
	}
	return len(s) >= len(before)+len(after) && strings.HasPrefix(s, before) && strings.HasSuffix(s, after)
}

func validateCORS(c *corsConfig) error {
	if len(c.Rules) == 0 || len(c.Rules) > 100 {
		return apiErr("MalformedXML", "A CORS configuration needs 1 to 100 rules.")
	}
	for _, r := range c.Rules {
		if len(r.AllowedOrigins) == 0 || len(r.AllowedMethods) == 0 {
			return apiErr("MalformedXML", "Every CORS rule needs an AllowedOrigin and an AllowedMethod.")
		}
		for _, m := range r.AllowedMethods {
			switch m {
			case "GET", "PUT", "POST", "DELETE", "HEAD":
			default:
				return apiErr("InvalidRequest", "Found unsupported HTTP method in CORS config. Unsupported method is "+m)
			}
		}
		if r.MaxAgeSeconds != nil && *r.MaxAgeSeconds < 0 {
			return apiErr("MalformedXML", "MaxAgeSeconds must not be negative.")
		}
		for _, p := range append(append([]string{}, r.AllowedOrigins...), r.AllowedHeaders...) {
			if strings.Count(p, "*") > 1 {
				return apiErr("InvalidRequest", "AllowedOrigin and AllowedHeader may contain at most one wildcard: "+p)
			}
		}
	}
	return nil
}

func (s *Server) putBucketCors(w http.ResponseWriter, r *http.Request, rc *reqContext) error {
	if _, err := s.store.HeadBucket(r.Context(), rc.bucket); err != nil {
		return err
	}
	body, err := readSmallBody(r, rc, 64<<10)
	if err != nil {
		return err
	}
	var c corsConfig
	if err := decodeDocument(body, "CORSConfiguration", &c); err != nil {
		return apiErr("MalformedXML")
	}
	if err := validateCORS(&c); err != nil {
		return err
	}
	doc, _ := json.Marshal(c.Rules)
	if err := s.store.SetBucketConfig(r.Context(), rc.bucket, corsKind, doc); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// corsRules returns a bucket's rules (nil without a configuration).
func (s *Server) corsRules(r *http.Request, bucket string) ([]corsRule, error) {
	b, err := s.store.HeadBucket(r.Context(), bucket)
	if err != nil {
		return nil, err
	}
	doc, ok := b.Config[corsKind]
	if !ok {
		return nil, nil
	}
	var rules []corsRule
	if err := json.Unmarshal(doc, &rules); err != nil {
		return nil, err
	}
	return rules, nil
}

func (s *Server) getBucketCors(w http.ResponseWriter, r *http.Request, rc *reqContext) error {
	rules, err := s.corsRules(r, rc.bucket)
	if err != nil {
		return err
	}
	if rules == nil {
		return apiErr("NoSuchCORSConfiguration")
	}
	return writeXML(w, http.StatusOK, corsConfig{XMLName: xml.Name{Space: "http://s3.amazonaws.com/doc/2006-03-01/", Local: "CORSConfiguration"}, Rules: rules})
}

func (s *Server) deleteBucketCors(w http.ResponseWriter, r *http.Request, rc *reqContext) error {
	if err := s.store.SetBucketConfig(r.Context(), rc.bucket, corsKind, nil); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// matchCORS finds the first rule allowing origin, method and headers.
func matchCORS(rules []corsRule, origin, method string, headers []string) *corsRule {
	for i := range rules {
		r := &rules[i]
		okOrigin, okMethod := false, false
		for _, o := range r.AllowedOrigins {
			okOrigin = okOrigin || wildcardMatch(o, origin)
		}
		for _, m := range r.AllowedMethods {
			okMethod = okMethod || m == method
		}
		if !okOrigin || !okMethod {
			continue
		}
		allHeaders := true
		for _, h := range headers {
			found := false
			for _, a := range r.AllowedHeaders {
				found = found || wildcardMatch(strings.ToLower(a), strings.ToLower(h))
			}
			allHeaders = allHeaders && found
		}
		if allHeaders {
			return r
		}
	}
	return nil
}

func setCORSHeaders(h http.Header, rule *corsRule, origin string) {
	allowOrigin := origin
	for _, o := range rule.AllowedOrigins {
		if o == "*" {
			allowOrigin = "*"
		}
	}
	h.Set("Access-Control-Allow-Origin", allowOrigin)
	h.Set("Access-Control-Allow-Methods", strings.Join(rule.AllowedMethods, ", "))
	if allowOrigin != "*" {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
	if len(rule.ExposeHeaders) > 0 {
		h.Set("Access-Control-Expose-Headers", strings.Join(rule.ExposeHeaders, ", "))
	}
	if rule.MaxAgeSeconds != nil {
		h.Set("Access-Control-Max-Age", strconv.Itoa(*rule.MaxAgeSeconds))
	}
	h.Add("Vary", "Origin, Access-Control-Request-Headers, Access-Control-Request-Method")
}

// preflight answers an OPTIONS request. It runs before authentication.
func (s *Server) preflight(w http.ResponseWriter, r *http.Request, bucket string) error {
	origin, method := r.Header.Get("Origin"), r.Header.Get("Access-Control-Request-Method")
	if origin == "" {
		return apiErr("BadRequest", "Insufficient information. Origin request header needed.")
	}
	if method == "" {
		return apiErr("BadRequest", "Invalid Access-Control-Request-Method: null")
	}
	if bucket == "" {
		return apiErr("AccessForbidden", "CORSResponse: Bucket not found")
	}
	rules, err := s.corsRules(r, bucket)
	if err != nil {
		return err
	}
	var headers []string
	for _, h := range strings.Split(r.Header.Get("Access-Control-Request-Headers"), ",") {
		if h = strings.TrimSpace(h); h != "" {
			headers = append(headers, h)
		}
	}
	rule := matchCORS(rules, origin, method, headers)
	if rule == nil {
		return apiErr("AccessForbidden", "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.")
	}
	setCORSHeaders(w.Header(), rule, origin)
	if len(headers) > 0 {
		w.Header().Set("Access-Control-Allow-Headers", strings.Join(headers, ", "))
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// corsActual adds Access-Control-* headers to an authenticated request
// from a browser origin that a rule allows.
func (s *Server) corsActual(w http.ResponseWriter, r *http.Request, bucket string) {
	origin := r.Header.Get("Origin")
	if origin == "" || bucket == "" {
		return
	}
	rules, err := s.corsRules(r, bucket)
	if err != nil || rules == nil {
		return
	}
	if rule := matchCORS(rules, origin, r.Method, nil); rule != nil {
		setCORSHeaders(w.Header(), rule, origin)
	}
}
