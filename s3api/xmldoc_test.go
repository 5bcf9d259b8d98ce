package s3api

import (
	"strings"
	"testing"
)

func TestRequestDocumentsAreStrict(t *testing.T) {
	const part = `<Part><PartNumber>1</PartNumber><ETag>"e"</ETag></Part>`
	for _, c := range []struct {
		name string
		body string
		ok   bool
	}{
		{"complete", `<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">` + part + `</CompleteMultipartUpload>`, true},
		{"complete after a declaration and comment", `<?xml version="1.0"?><!-- c --><CompleteMultipartUpload>` + part + `</CompleteMultipartUpload>` + "\n", true},
		{"wrong root", `<Delete>` + part + `</Delete>`, false},
		{"a second document", `<CompleteMultipartUpload>` + part + `</CompleteMultipartUpload><CompleteMultipartUpload/>`, false},
		{"text after", `<CompleteMultipartUpload>` + part + `</CompleteMultipartUpload>junk`, false},
		{"no parts", `<CompleteMultipartUpload></CompleteMultipartUpload>`, false},
		{"unclosed", `<CompleteMultipartUpload>` + part, false},
		{"empty", ``, false},
	} {
		_, err := parseCompleteRequest([]byte(c.body))
		if (err == nil) != c.ok {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	if _, err := parseDeleteRequest([]byte(`<CompleteMultipartUpload><Object><Key>k</Key></Object></CompleteMultipartUpload>`)); err == nil {
		t.Error("a Delete with another root element was taken")
	}
	if loc, err := parseLocation([]byte(`<CreateBucketConfiguration><LocationConstraint>eu-west-1</LocationConstraint></CreateBucketConfiguration>`)); err != nil || loc != "eu-west-1" {
		t.Errorf("location: %q %v", loc, err)
	}
	if _, err := parseLocation([]byte(`<Tagging/>`)); err == nil {
		t.Error("a CreateBucketConfiguration with another root was taken")
	}
}

func TestCORSRefusesNegativeMaxAge(t *testing.T) {
	var c corsConfig
	body := `<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod><MaxAgeSeconds>-5</MaxAgeSeconds></CORSRule></CORSConfiguration>`
	if err := decodeDocument([]byte(body), "CORSConfiguration", &c); err != nil {
		t.Fatal(err)
	}
	if err := validateCORS(&c); err == nil || !strings.Contains(err.Error(), "MaxAgeSeconds") {
		t.Fatalf("negative MaxAgeSeconds: %v", err)
	}
}

// FuzzRequestDocuments feeds every request document parser: none may
// panic, and what one accepts stays within its limits.
func FuzzRequestDocuments(f *testing.F) {
	for _, s := range []string{
		`<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"e"</ETag></Part></CompleteMultipartUpload>`,
		`<Delete><Quiet>true</Quiet><Object><Key>a</Key><VersionId>v</VersionId></Object></Delete>`,
		`<CreateBucketConfiguration><LocationConstraint>us-east-1</LocationConstraint></CreateBucketConfiguration>`,
		`<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>`,
		`<Tagging><TagSet><Tag><Key>k</Key><Value>v</Value></Tag></TagSet></Tagging>`,
		`<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if req, err := parseCompleteRequest(b); err == nil && (len(req.Parts) == 0 || len(req.Parts) > 10000) {
			t.Fatalf("complete with %d parts accepted", len(req.Parts))
		}
		if req, err := parseDeleteRequest(b); err == nil && (len(req.Objects) == 0 || len(req.Objects) > 1000) {
			t.Fatalf("delete of %d objects accepted", len(req.Objects))
		}
		parseLocation(b)
		var c corsConfig
		if decodeDocument(b, "CORSConfiguration", &c) == nil {
			validateCORS(&c)
		}
	})
}
