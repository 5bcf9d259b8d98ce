package policy

import (
	"errors"
	"testing"
)

func TestWildcard(t *testing.T) {
	for _, c := range []struct {
		p, s string
		want bool
	}{
		{"*", "", true}, {"*", "a/b/c", true}, {"s3:Get*", "s3:GetObject", true}, {"s3:Get*", "s3:PutObject", false},
		{"arn:aws:s3:::b/*", "arn:aws:s3:::b/x/y", true}, {"arn:aws:s3:::b/*", "arn:aws:s3:::b", false},
		{"a?c", "abc", true}, {"a?c", "ac", false}, {"*.jpg", "dir/x.jpg", true}, {"a*b*c", "aXbYbZc", true}, {"a*b*c", "aXbYbZ", false},
	} {
		if got := wildcard(c.p, c.s); got != c.want {
			t.Errorf("wildcard(%q, %q) = %v", c.p, c.s, got)
		}
	}
}

const publicRead = `{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "PublicRead", "Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::site/*"},
    {"Effect": "Allow", "Principal": {"AWS": ["*"]}, "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::site",
     "Condition": {"StringLike": {"s3:prefix": ["public/*", ""]}}},
    {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::site/private/*"},
    {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::site/*",
     "Condition": {"IpAddress": {"aws:SourceIp": "192.0.2.0/24"}}}
  ]
}`

func TestEvaluate(t *testing.T) {
	p, err := Parse([]byte(publicRead), "site")
	if err != nil {
		t.Fatal(err)
	}
	ctx := func(kv ...string) map[string][]string {
		m := map[string][]string{"aws:sourceip": {"127.0.0.1"}}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = []string{kv[i+1]}
		}
		return m
	}
	for _, c := range []struct {
		name string
		r    Request
		want Decision
	}{
		{"public object", Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::site/index.html", Context: ctx()}, Allowed},
		{"deny wins", Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::site/private/x", Context: ctx()}, Denied},
		{"not granted", Request{Action: "s3:PutObject", Resource: "arn:aws:s3:::site/index.html", Context: ctx()}, Undecided},
		{"list with allowed prefix", Request{Action: "s3:ListBucket", Resource: "arn:aws:s3:::site", Context: ctx("s3:prefix", "public/a")}, Allowed},
		{"list without prefix", Request{Action: "s3:ListBucket", Resource: "arn:aws:s3:::site", Context: ctx("s3:prefix", "")}, Allowed},
		{"list other prefix", Request{Action: "s3:ListBucket", Resource: "arn:aws:s3:::site", Context: ctx("s3:prefix", "secret/")}, Undecided},
		{"denied network", Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::site/index.html", Context: ctx("aws:sourceip", "192.0.2.77")}, Denied},
		{"other bucket", Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::other/index.html", Context: ctx()}, Undecided},
	} {
		if got := p.Evaluate(c.r); got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
}

func TestParseRejects(t *testing.T) {
	for name, doc := range map[string]string{
		"not json":         `{`,
		"bad version":      `{"Version":"2020-01-01","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]}`,
		"no statements":    `{"Version":"2012-10-17","Statement":[]}`,
		"bad effect":       `{"Version":"2012-10-17","Statement":[{"Effect":"Maybe","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]}`,
		"other bucket":     `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::other/*"}]}`,
		"not an arn":       `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"b/*"}]}`,
		"ec2 action":       `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"ec2:RunInstances","Resource":"arn:aws:s3:::b/*"}]}`,
		"no principal":     `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]}`,
		"both principals":  `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","NotPrincipal":{"AWS":"bob"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]}`,
		"unknown operator": `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*","Condition":{"StringSoundsLike":{"aws:username":"bob"}}}]}`,
		"bad set operator": `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*","Condition":{"ForSomeValues:StringEquals":{"s3:RequestObjectTagKeys":"a"}}}]}`,
		"bad date":         `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*","Condition":{"DateGreaterThan":{"aws:CurrentTime":"yesterday"}}}]}`,
		"bad number":       `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:ListBucket","Resource":"arn:aws:s3:::b","Condition":{"NumericLessThan":{"s3:max-keys":"ten"}}}]}`,
		"federated":        `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"x"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]}`,
		"bad cidr":         `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/99"}}}]}`,
		"unknown field":    `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*","Extra":1}]}`,
		"action and not":   `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","NotAction":"s3:PutObject","Resource":"arn:aws:s3:::b/*"}]}`,
	} {
		if _, err := Parse([]byte(doc), "b"); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", name, err)
		}
	}
	// A single statement object (not a list) is valid.
	if _, err := Parse([]byte(`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}}`), "b"); err != nil {
		t.Fatal(err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(publicRead))
	f.Fuzz(func(t *testing.T, b []byte) {
		if p, err := Parse(b, "site"); err == nil {
			p.Evaluate(Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::site/x", Context: map[string][]string{"s3:requestobjecttagkeys": {"a", "b"}}})
		}
	})
}

func TestActionsMustBeS3Actions(t *testing.T) {
	doc := func(action string) []byte {
		return []byte(`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"` + action + `","Resource":"arn:aws:s3:::b/*"}}`)
	}
	for action, ok := range map[string]bool{
		"s3:GetObject": true, "s3:getobject": true, "s3:Get*": true, "s3:*": true, "*": true, "s3:?utObject": true,
		"s3:Nope": false, "s3:": false, "ec2:RunInstances": false, "GetObject": false, "s3:Nope*": false,
	} {
		_, err := Parse(doc(action), "b")
		if (err == nil) != ok {
			t.Errorf("action %q: %v", action, err)
		}
	}
}

// The condition keys and operators of AWS's policy language, as issue 17
// lists them: each row a statement's condition and requests it must allow
// and must not.
func TestConditions(t *testing.T) {
	at := func(s string) map[string][]string { return map[string][]string{"aws:currenttime": {s}} }
	for _, c := range []struct {
		name, cond string
		yes, no    []map[string][]string
	}{
		{"date", `{"DateGreaterThan":{"aws:CurrentTime":"2026-01-01T00:00:00Z"}}`,
			[]map[string][]string{at("2026-12-03T07:00:00Z")}, []map[string][]string{at("2025-12-31T23:59:59Z"), {}}},
		{"epoch", `{"NumericLessThan":{"aws:EpochTime":"1800000000"}}`,
			[]map[string][]string{{"aws:epochtime": {"1790000000"}}}, []map[string][]string{{"aws:epochtime": {"1800000001"}}}},
		{"max-keys", `{"NumericLessThanEquals":{"s3:max-keys":"100"}}`,
			[]map[string][]string{{"s3:max-keys": {"100"}}}, []map[string][]string{{"s3:max-keys": {"1000"}}, {}}},
		{"max-keys if exists", `{"NumericLessThanEqualsIfExists":{"s3:max-keys":"100"}}`,
			[]map[string][]string{{"s3:max-keys": {"10"}}, {}}, []map[string][]string{{"s3:max-keys": {"1000"}}}},
		{"secure transport", `{"Bool":{"aws:SecureTransport":"true"}}`,
			[]map[string][]string{{"aws:securetransport": {"true"}}}, []map[string][]string{{"aws:securetransport": {"false"}}}},
		{"existing tag", `{"StringEquals":{"s3:ExistingObjectTag/class":"public"}}`,
			[]map[string][]string{{"s3:existingobjecttag/class": {"public"}}}, []map[string][]string{{"s3:existingobjecttag/class": {"secret"}}, {}}},
		{"tag keys, any", `{"ForAnyValue:StringEquals":{"s3:RequestObjectTagKeys":["project","owner"]}}`,
			[]map[string][]string{{"s3:requestobjecttagkeys": {"owner", "x"}}}, []map[string][]string{{"s3:requestobjecttagkeys": {"x"}}, {}}},
		{"tag keys, all", `{"ForAllValues:StringEquals":{"s3:RequestObjectTagKeys":["project","owner"]}}`,
			[]map[string][]string{{"s3:requestobjecttagkeys": {"owner", "project"}}, {}}, []map[string][]string{{"s3:requestobjecttagkeys": {"owner", "x"}}}},
		{"not equals, several values", `{"StringNotEquals":{"s3:x-amz-acl":["public-read","public-read-write"]}}`,
			[]map[string][]string{{"s3:x-amz-acl": {"private"}}, {}}, []map[string][]string{{"s3:x-amz-acl": {"public-read"}}}},
		{"signature version", `{"StringEquals":{"s3:signatureversion":"AWS4-HMAC-SHA256"}}`,
			[]map[string][]string{{"s3:signatureversion": {"AWS4-HMAC-SHA256"}}}, []map[string][]string{{"s3:signatureversion": {"AWS"}}}},
		{"null", `{"Null":{"s3:x-amz-server-side-encryption":"true"}}`,
			[]map[string][]string{{}}, []map[string][]string{{"s3:x-amz-server-side-encryption": {"AES256"}}}},
		{"arn like", `{"ArnLike":{"aws:SourceArn":"arn:aws:s3:::logs-*"}}`,
			[]map[string][]string{{"aws:sourcearn": {"arn:aws:s3:::logs-1"}}}, []map[string][]string{{"aws:sourcearn": {"arn:aws:s3:::data"}}}},
	} {
		p, err := Parse([]byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":["arn:aws:s3:::b","arn:aws:s3:::b/*"],"Condition":`+c.cond+`}]}`), "b")
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		for _, ctx := range c.yes {
			if d := p.Evaluate(Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::b/k", Context: ctx}); d != Allowed {
				t.Errorf("%s: %v not allowed", c.name, ctx)
			}
		}
		for _, ctx := range c.no {
			if d := p.Evaluate(Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::b/k", Context: ctx}); d == Allowed {
				t.Errorf("%s: %v allowed", c.name, ctx)
			}
		}
	}
}

func TestPrincipalsNotPrincipalsAndServices(t *testing.T) {
	p, err := Parse([]byte(`{"Version":"2012-10-17","Statement":[
		{"Effect":"Deny","NotPrincipal":{"AWS":["arn:aws:iam:::user/alice"],"CanonicalUser":"c0ffee"},"Action":"s3:DeleteObject","Resource":"arn:aws:s3:::b/*"},
		{"Effect":"Allow","Principal":{"Service":"logging.s3.amazonaws.com"},"Action":"s3:PutObject","Resource":"arn:aws:s3:::b/*"},
		{"Effect":"Allow","Principal":{"CanonicalUser":"c0ffee"},"NotAction":"s3:Delete*","NotResource":"arn:aws:s3:::b/secret/*"}]}`), "b")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		r    Request
		want Decision
	}{
		{"alice is not denied", Request{Principal: "alice", CanonicalID: "a11ce", Action: "s3:DeleteObject", Resource: "arn:aws:s3:::b/k"}, Undecided},
		{"the canonical user is not denied", Request{Principal: "carol", CanonicalID: "c0ffee", Action: "s3:DeleteObject", Resource: "arn:aws:s3:::b/k"}, Undecided},
		{"bob is denied", Request{Principal: "bob", CanonicalID: "b0b", Action: "s3:DeleteObject", Resource: "arn:aws:s3:::b/k"}, Denied},
		{"anonymous is denied", Request{Action: "s3:DeleteObject", Resource: "arn:aws:s3:::b/k"}, Denied},
		{"no service calls here", Request{Principal: "bob", Action: "s3:PutObject", Resource: "arn:aws:s3:::b/k"}, Undecided},
		{"canonical id, not action, not resource", Request{Principal: "carol", CanonicalID: "c0ffee", Action: "s3:GetObject", Resource: "arn:aws:s3:::b/k"}, Allowed},
		{"not resource excludes", Request{Principal: "carol", CanonicalID: "c0ffee", Action: "s3:GetObject", Resource: "arn:aws:s3:::b/secret/k"}, Undecided},
	} {
		if got := p.Evaluate(c.r); got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
}
