// Package policy parses and evaluates S3 bucket policies: the common subset
// of the IAM policy language that buckets use.
//
// Supported: Version 2012-10-17 (or 2008-10-17); statements with Sid, Effect
// Allow/Deny, Principal ("*" or {"AWS": ...}), Action/NotAction and
// Resource/NotResource with * and ? wildcards, and Conditions with the
// String(Not)Equals, String(Not)Like, (Not)IpAddress, Bool and Null
// operators (with the ...IfExists forms). Anything else is refused at
// parse time with an error, never silently ignored.
//
// Evaluation is the IAM rule: an explicit Deny wins, then an Allow, else
// the policy has no say (Undecided).
package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// ErrMalformed reports a policy that cannot be accepted.
var ErrMalformed = errors.New("malformed policy")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// Policy is a parsed bucket policy.
type Policy struct {
	Statements []Statement
}

// Statement is one statement of a policy.
type Statement struct {
	Sid                    string
	Allow                  bool
	Principals             []string // "*", user names or ARNs, "canonical:<id>", "service:<name>"
	NotPrincipals          []string // with NotPrincipal: every principal but these
	Actions, NotActions    []string
	Resources, NotResource []string
	Conditions             []condition
}

type condition struct {
	op       string // operator without IfExists or a set qualifier
	ifExists bool
	set      string // "", "ForAnyValue" or "ForAllValues"
	key      string
	values   []string
}

// stringOrList decodes a JSON string or array of strings.
type stringOrList []string

func (s *stringOrList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*s = []string{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return malformed("expected a string or a list of strings")
	}
	*s = many
	return nil
}

type rawStatement struct {
	Sid          string                                `json:"Sid"`
	Effect       string                                `json:"Effect"`
	Principal    json.RawMessage                       `json:"Principal"`
	NotPrincipal json.RawMessage                       `json:"NotPrincipal"`
	Action       stringOrList                          `json:"Action"`
	NotAction    stringOrList                          `json:"NotAction"`
	Resource     stringOrList                          `json:"Resource"`
	NotResource  stringOrList                          `json:"NotResource"`
	Condition    map[string]map[string]json.RawMessage `json:"Condition"`
}

var operators = map[string]bool{
	"StringEquals": true, "StringNotEquals": true, "StringLike": true, "StringNotLike": true,
	"StringEqualsIgnoreCase": true, "StringNotEqualsIgnoreCase": true,
	"IpAddress": true, "NotIpAddress": true, "Bool": true, "Null": true,
	"NumericEquals": true, "NumericNotEquals": true, "NumericLessThan": true, "NumericLessThanEquals": true,
	"NumericGreaterThan": true, "NumericGreaterThanEquals": true,
	"DateEquals": true, "DateNotEquals": true, "DateLessThan": true, "DateLessThanEquals": true,
	"DateGreaterThan": true, "DateGreaterThanEquals": true,
	"ArnEquals": true, "ArnNotEquals": true, "ArnLike": true, "ArnNotLike": true,
}

// negated operators hold for a key that is missing.
var negated = map[string]bool{"StringNotEquals": true, "StringNotEqualsIgnoreCase": true, "StringNotLike": true,
	"NotIpAddress": true, "NumericNotEquals": true, "DateNotEquals": true, "ArnNotEquals": true, "ArnNotLike": true}

// Parse parses and validates a bucket policy for bucket.
func Parse(doc []byte, bucket string) (*Policy, error) { return parse(doc, bucket, false) }

// ParseIdentity parses an IAM-style policy attached to a user: the same
// language with no Principal (it is the user) and resources in any
// bucket.
func ParseIdentity(doc []byte) (*Policy, error) { return parse(doc, "", true) }

func parse(doc []byte, bucket string, identity bool) (*Policy, error) {
	var raw struct {
		Version   string          `json:"Version"`
		ID        string          `json:"Id"`
		Statement json.RawMessage `json:"Statement"`
	}
	dec := json.NewDecoder(strings.NewReader(string(doc)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return nil, malformed("%v", err)
	}
	if raw.Version != "2012-10-17" && raw.Version != "2008-10-17" {
		return nil, malformed("unsupported Version %q", raw.Version)
	}
	var stmts []rawStatement
	if len(raw.Statement) > 0 && raw.Statement[0] == '{' {
		var one rawStatement
		if err := strictUnmarshal(raw.Statement, &one); err != nil {
			return nil, err
		}
		stmts = []rawStatement{one}
	} else if err := strictUnmarshal(raw.Statement, &stmts); err != nil {
		return nil, err
	}
	if len(stmts) == 0 {
		return nil, malformed("no statements")
	}
	p := &Policy{}
	for i, rs := range stmts {
		st, err := parseStatement(rs, bucket, identity)
		if err != nil {
			return nil, fmt.Errorf("statement %d: %w", i, err)
		}
		p.Statements = append(p.Statements, st)
	}
	return p, nil
}

func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, ErrMalformed) {
			return err
		}
		return malformed("%v", err)
	}
	return nil
}

func parseStatement(rs rawStatement, bucket string, identity bool) (Statement, error) {
	st := Statement{Sid: rs.Sid}
	switch rs.Effect {
	case "Allow":
		st.Allow = true
	case "Deny":
	default:
		return st, malformed("Effect must be Allow or Deny")
	}
	switch {
	case identity:
		if len(rs.Principal) > 0 || len(rs.NotPrincipal) > 0 {
			return st, malformed("a user policy names no Principal: it applies to its user")
		}
		st.Principals = []string{"*"}
	case len(rs.Principal) > 0 && len(rs.NotPrincipal) > 0:
		return st, malformed("a statement has Principal or NotPrincipal, not both")
	case len(rs.NotPrincipal) > 0:
		principals, err := parsePrincipal(rs.NotPrincipal)
		if err != nil {
			return st, err
		}
		st.NotPrincipals = principals
	default:
		principals, err := parsePrincipal(rs.Principal)
		if err != nil {
			return st, err
		}
		st.Principals = principals
	}
	if (len(rs.Action) == 0) == (len(rs.NotAction) == 0) {
		return st, malformed("exactly one of Action and NotAction is required")
	}
	for _, a := range append(append([]string{}, rs.Action...), rs.NotAction...) {
		if !knownAction(a) {
			return st, malformed("action %q is not an S3 action", a)
		}
	}
	st.Actions, st.NotActions = rs.Action, rs.NotAction
	if (len(rs.Resource) == 0) == (len(rs.NotResource) == 0) {
		return st, malformed("exactly one of Resource and NotResource is required")
	}
	for _, r := range append(append([]string{}, rs.Resource...), rs.NotResource...) {
		name, ok := strings.CutPrefix(r, "arn:aws:s3:::")
		if !ok {
			return st, malformed("Policy has invalid resource %q", r)
		}
		b, _, _ := strings.Cut(name, "/")
		if !identity && !wildcard(b, bucket) {
			return st, malformed("Policy has invalid resource: %q does not name bucket %s", r, bucket)
		}
	}
	st.Resources, st.NotResource = rs.Resource, rs.NotResource
	for op, kv := range rs.Condition {
		set, rest, qualified := strings.Cut(op, ":")
		if !qualified {
			set, rest = "", op
		} else if set != "ForAnyValue" && set != "ForAllValues" {
			return st, malformed("condition set operator %q is not ForAnyValue or ForAllValues", set)
		}
		base, ifExists := strings.CutSuffix(rest, "IfExists")
		if !operators[base] {
			return st, malformed("condition operator %q is not supported", op)
		}
		for key, raw := range kv {
			var vals stringOrList
			if err := json.Unmarshal(raw, &vals); err != nil {
				var b bool
				if json.Unmarshal(raw, &b) != nil {
					return st, malformed("condition %s %s: bad value", op, key)
				}
				vals = []string{fmt.Sprint(b)}
			}
			for _, v := range vals {
				switch {
				case base == "IpAddress" || base == "NotIpAddress":
					if _, err := parsePrefix(v); err != nil {
						return st, malformed("condition %s: %q is not an IP address or CIDR", op, v)
					}
				case strings.HasPrefix(base, "Numeric"):
					if _, err := strconv.ParseFloat(v, 64); err != nil {
						return st, malformed("condition %s: %q is not a number", op, v)
					}
				case strings.HasPrefix(base, "Date"):
					if _, err := parseDate(v); err != nil {
						return st, malformed("condition %s: %q is not a date", op, v)
					}
				}
			}
			st.Conditions = append(st.Conditions, condition{op: base, ifExists: ifExists, set: set, key: strings.ToLower(key), values: vals})
		}
	}
	return st, nil
}

func parsePrincipal(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 {
		return nil, malformed("Principal is required in a bucket policy")
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if s != "*" {
			return nil, malformed("Principal must be \"*\" or {\"AWS\": ...}")
		}
		return []string{"*"}, nil
	}
	var m map[string]stringOrList
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, malformed("Principal: %v", err)
	}
	var out []string
	for k, v := range m {
		switch k {
		case "AWS":
			out = append(out, v...)
		case "CanonicalUser":
			for _, id := range v {
				out = append(out, "canonical:"+id)
			}
		case "Service":
			// AWS services acting for themselves; none calls Strata, so
			// such a statement never applies to a request here.
			for _, sv := range v {
				out = append(out, "service:"+sv)
			}
		default:
			return nil, malformed("Principal type %q is not supported (AWS, CanonicalUser, Service)", k)
		}
	}
	if len(out) == 0 {
		return nil, malformed("empty Principal")
	}
	return out, nil
}

func parsePrefix(v string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(v); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(v)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// wildcard matches s against a pattern with * (any run, '/' included) and
// ? (one byte), in linear time.
func wildcard(p, s string) bool {
	pi, si, star, mark := 0, 0, -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == s[si]):
			pi, si = pi+1, si+1
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case star >= 0:
			pi, mark = star+1, mark+1
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// Request is what a policy is evaluated against.
type Request struct {
	Principal   string // user name; "" for anonymous
	CanonicalID string // the principal's canonical user id ("" for anonymous)
	Action      string // e.g. "s3:GetObject"
	Resource    string // e.g. "arn:aws:s3:::bucket/key"
	// Context holds condition keys in lower case (aws:sourceip,
	// aws:securetransport, s3:prefix, s3:existingobjecttag/<k>, ...); a
	// key may have several values (s3:requestobjecttagkeys).
	Context map[string][]string
}

// Decision is the outcome of an evaluation.
type Decision int

const (
	Undecided Decision = iota
	Allowed
	Denied
)

// Evaluate applies the policy: an explicit Deny wins over any Allow.
func (p *Policy) Evaluate(r Request) Decision {
	d := Undecided
	for _, st := range p.Statements {
		if !st.applies(r) {
			continue
		}
		if !st.Allow {
			return Denied
		}
		d = Allowed
	}
	return d
}

func anyMatch(patterns []string, s string) bool {
	for _, p := range patterns {
		if wildcard(p, s) {
			return true
		}
	}
	return false
}

// names reports whether principal pattern p names the request's principal.
func (r Request) namedBy(p string) bool {
	switch {
	case p == "*":
		return true
	case strings.HasPrefix(p, "service:"):
		return false
	case r.Principal == "" && r.CanonicalID == "":
		return false
	case strings.HasPrefix(p, "canonical:"):
		return r.CanonicalID != "" && p == "canonical:"+r.CanonicalID
	}
	return r.Principal != "" && (p == r.Principal || strings.HasSuffix(p, ":user/"+r.Principal))
}

func (st *Statement) applies(r Request) bool {
	if len(st.NotPrincipals) > 0 {
		for _, p := range st.NotPrincipals {
			if r.namedBy(p) {
				return false
			}
		}
	} else {
		principalOK := false
		for _, p := range st.Principals {
			if r.namedBy(p) {
				principalOK = true
			}
		}
		if !principalOK {
			return false
		}
	}
	if len(st.Actions) > 0 && !anyMatch(st.Actions, r.Action) || len(st.NotActions) > 0 && anyMatch(st.NotActions, r.Action) {
		return false
	}
	if len(st.Resources) > 0 && !anyMatch(st.Resources, r.Resource) || len(st.NotResource) > 0 && anyMatch(st.NotResource, r.Resource) {
		return false
	}
	for _, c := range st.Conditions {
		if !c.holds(r.Context) {
			return false
		}
	}
	return true
}

func (c condition) holds(ctx map[string][]string) bool {
	vals, present := ctx[c.key]
	if c.op == "Null" {
		want := len(c.values) > 0 && c.values[0] == "true"
		return want == !present
	}
	switch c.set {
	case "ForAllValues":
		// Every value of the key matches (none at all included).
		for _, v := range vals {
			if !c.match(v) {
				return false
			}
		}
		return true
	case "ForAnyValue":
		for _, v := range vals {
			if c.match(v) {
				return true
			}
		}
		return false
	}
	if !present {
		// A missing key fails a positive test and passes a negated one,
		// unless ...IfExists, where it always passes.
		return c.ifExists || negated[c.op]
	}
	if negated[c.op] {
		for _, v := range vals {
			if !c.match(v) {
				return false
			}
		}
		return true
	}
	for _, v := range vals {
		if c.match(v) {
			return true
		}
	}
	return false
}

// match tests one value of the key against the condition's values (for a
// negated operator: that it matches none).
func (c condition) match(v string) bool {
	switch c.op {
	case "StringEquals", "ArnEquals":
		return contains(c.values, v, false)
	case "StringNotEquals", "ArnNotEquals":
		return !contains(c.values, v, false)
	case "StringEqualsIgnoreCase":
		return contains(c.values, v, true)
	case "StringNotEqualsIgnoreCase":
		return !contains(c.values, v, true)
	case "StringLike", "ArnLike":
		return anyMatch(c.values, v)
	case "StringNotLike", "ArnNotLike":
		return !anyMatch(c.values, v)
	case "Bool":
		return contains(c.values, v, true)
	case "IpAddress", "NotIpAddress":
		a, err := netip.ParseAddr(v)
		in := false
		for _, s := range c.values {
			if p, perr := parsePrefix(s); perr == nil && err == nil && p.Contains(a.Unmap()) {
				in = true
			}
		}
		return in == (c.op == "IpAddress")
	}
	if strings.HasPrefix(c.op, "Numeric") {
		x, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return false
		}
		return c.compare(func(s string) (int, bool) {
			y, err := strconv.ParseFloat(s, 64)
			return cmpFloat(x, y), err == nil
		})
	}
	if strings.HasPrefix(c.op, "Date") {
		x, err := parseDate(v)
		if err != nil {
			return false
		}
		return c.compare(func(s string) (int, bool) {
			y, err := parseDate(s)
			return x.Compare(y), err == nil
		})
	}
	return false
}

// compare applies a Numeric or Date operator: cmp gives the order of the
// key's value against one condition value.
func (c condition) compare(cmp func(string) (int, bool)) bool {
	suffix := strings.TrimPrefix(strings.TrimPrefix(c.op, "Numeric"), "Date")
	if suffix == "NotEquals" {
		for _, s := range c.values {
			if o, ok := cmp(s); ok && o == 0 {
				return false
			}
		}
		return true
	}
	for _, s := range c.values {
		o, ok := cmp(s)
		if !ok {
			continue
		}
		switch suffix {
		case "Equals":
			if o == 0 {
				return true
			}
		case "LessThan":
			if o < 0 {
				return true
			}
		case "LessThanEquals":
			if o <= 0 {
				return true
			}
		case "GreaterThan":
			if o > 0 {
				return true
			}
		case "GreaterThanEquals":
			if o >= 0 {
				return true
			}
		}
	}
	return false
}

func cmpFloat(x, y float64) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// parseDate reads a policy date: ISO 8601 (with or without fractional
// seconds), a plain date, or seconds since the epoch.
func parseDate(s string) (time.Time, error) {
	for _, f := range []string{time.RFC3339Nano, "2006-01-02T15:04:05Z0700", "2006-01-02T15:04Z07:00", "2006-01-02"} {
		if t, err := time.Parse(f, s); err == nil {
			return t, nil
		}
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0), nil
	}
	return time.Time{}, fmt.Errorf("not a date: %q", s)
}

func contains(vals []string, v string, fold bool) bool {
	for _, x := range vals {
		if x == v || fold && strings.EqualFold(x, v) {
			return true
		}
	}
	return false
}

// fixingKeys are condition keys that, tested for fixed values, keep a
// statement from applying to everyone (AWS's test of a public policy).
var fixingKeys = map[string]bool{
	"aws:sourceip": true, "aws:sourcevpc": true, "aws:sourcevpce": true, "aws:sourcearn": true, "aws:sourceaccount": true,
	"aws:principalarn": true, "aws:principalaccount": true, "aws:principalorgid": true, "aws:userid": true, "aws:username": true,
	"s3:x-amz-server-side-encryption-aws-kms-key-id": true,
}

// IsPublic reports whether the policy allows anyone at all: an Allow
// statement for "*" (or with NotPrincipal) that no condition ties to
// fixed sources or principals.
func (p *Policy) IsPublic() bool {
	for _, st := range p.Statements {
		if !st.Allow {
			continue
		}
		everyone := len(st.NotPrincipals) > 0
		for _, pr := range st.Principals {
			everyone = everyone || pr == "*"
		}
		if !everyone {
			continue
		}
		fixed := false
		for _, c := range st.Conditions {
			if fixingKeys[c.key] && !negated[c.op] && c.op != "Null" && !strings.Contains(strings.Join(c.values, ""), "*") {
				fixed = true
			}
		}
		if !fixed {
			return true
		}
	}
	return false
}
