package conformance

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Issue 17 item 4: Object Ownership controls and Block Public Access do
// what AWS's do, through aws-sdk-go-v2; GetBucketPolicyStatus says whether
// a policy is public.
func TestOwnershipControlsAndPublicAccessBlock(t *testing.T) {
	t.Parallel()
	srv := startNode(t, t.TempDir())
	ctx := context.Background()
	c := awsClient(srv, testSecret, true)
	base := "http://" + srv.s3
	c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("pab")})
	put := func(key string, acl types.ObjectCannedACL) error {
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("pab"), Key: aws.String(key), Body: strings.NewReader(key), ACL: acl})
		return err
	}
	setPAB := func(cfg types.PublicAccessBlockConfiguration) {
		t.Helper()
		if _, err := c.PutPublicAccessBlock(ctx, &s3.PutPublicAccessBlockInput{Bucket: aws.String("pab"), PublicAccessBlockConfiguration: &cfg}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.GetPublicAccessBlock(ctx, &s3.GetPublicAccessBlockInput{Bucket: aws.String("pab")}); awsCode(err) != "NoSuchPublicAccessBlockConfiguration" {
		t.Fatalf("no public access block yet: %v", err)
	}
	if err := put("open", types.ObjectCannedACLPublicRead); err != nil {
		t.Fatal(err)
	}
	// BlockPublicAcls refuses new public ACLs; IgnorePublicAcls voids old ones.
	setPAB(types.PublicAccessBlockConfiguration{BlockPublicAcls: aws.Bool(true)})
	if err := put("new-open", types.ObjectCannedACLPublicRead); awsCode(err) != "AccessDenied" {
		t.Fatalf("a public ACL under BlockPublicAcls: %v", err)
	}
	if _, err := c.PutBucketAcl(ctx, &s3.PutBucketAclInput{Bucket: aws.String("pab"), ACL: types.BucketCannedACLPublicRead}); awsCode(err) != "AccessDenied" {
		t.Fatalf("a public bucket ACL under BlockPublicAcls: %v", err)
	}
	if err := put("closed", types.ObjectCannedACLPrivate); err != nil {
		t.Fatal(err)
	}
	if status, _ := anonymous(t, "GET", base+"/pab/open", ""); status != 200 {
		t.Fatalf("an old public ACL before IgnorePublicAcls: %d", status)
	}
	setPAB(types.PublicAccessBlockConfiguration{BlockPublicAcls: aws.Bool(true), IgnorePublicAcls: aws.Bool(true)})
	if status, _ := anonymous(t, "GET", base+"/pab/open", ""); status != 403 {
		t.Fatalf("an old public ACL under IgnorePublicAcls: %d", status)
	}
	got, err := c.GetPublicAccessBlock(ctx, &s3.GetPublicAccessBlockInput{Bucket: aws.String("pab")})
	if err != nil || !aws.ToBool(got.PublicAccessBlockConfiguration.IgnorePublicAcls) || aws.ToBool(got.PublicAccessBlockConfiguration.BlockPublicPolicy) {
		t.Fatalf("GetPublicAccessBlock: %+v %v", got, err)
	}

	// BlockPublicPolicy and RestrictPublicBuckets.
	public := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pab/*"}]}`
	fromNet := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pab/*","Condition":{"IpAddress":{"aws:SourceIp":"192.0.2.0/24"}}}]}`
	setPAB(types.PublicAccessBlockConfiguration{BlockPublicPolicy: aws.Bool(true)})
	if _, err := c.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: aws.String("pab"), Policy: aws.String(public)}); awsCode(err) != "AccessDenied" {
		t.Fatalf("a public policy under BlockPublicPolicy: %v", err)
	}
	if _, err := c.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: aws.String("pab"), Policy: aws.String(fromNet)}); err != nil {
		t.Fatalf("a policy for one network under BlockPublicPolicy: %v", err)
	}
	if st, err := c.GetBucketPolicyStatus(ctx, &s3.GetBucketPolicyStatusInput{Bucket: aws.String("pab")}); err != nil || aws.ToBool(st.PolicyStatus.IsPublic) {
		t.Fatalf("status of a one-network policy: %+v %v", st, err)
	}
	setPAB(types.PublicAccessBlockConfiguration{})
	if _, err := c.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: aws.String("pab"), Policy: aws.String(public)}); err != nil {
		t.Fatal(err)
	}
	if st, err := c.GetBucketPolicyStatus(ctx, &s3.GetBucketPolicyStatusInput{Bucket: aws.String("pab")}); err != nil || !aws.ToBool(st.PolicyStatus.IsPublic) {
		t.Fatalf("status of a public policy: %+v %v", st, err)
	}
	if status, _ := anonymous(t, "GET", base+"/pab/closed", ""); status != 200 {
		t.Fatalf("a public policy's read: %d", status)
	}
	setPAB(types.PublicAccessBlockConfiguration{RestrictPublicBuckets: aws.Bool(true)})
	if status, _ := anonymous(t, "GET", base+"/pab/closed", ""); status != 403 {
		t.Fatalf("a public policy's read under RestrictPublicBuckets: %d", status)
	}
	if _, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("pab"), Key: aws.String("closed")}); err != nil {
		t.Fatalf("the owner under RestrictPublicBuckets: %v", err)
	}
	c.DeletePublicAccessBlock(ctx, &s3.DeletePublicAccessBlockInput{Bucket: aws.String("pab")})
	c.DeleteBucketPolicy(ctx, &s3.DeleteBucketPolicyInput{Bucket: aws.String("pab")})

	// BucketOwnerEnforced turns ACLs off.
	if _, err := c.GetBucketOwnershipControls(ctx, &s3.GetBucketOwnershipControlsInput{Bucket: aws.String("pab")}); awsCode(err) != "OwnershipControlsNotFoundError" {
		t.Fatalf("no ownership controls yet: %v", err)
	}
	enforced := &types.OwnershipControls{Rules: []types.OwnershipControlsRule{{ObjectOwnership: types.ObjectOwnershipBucketOwnerEnforced}}}
	if _, err := c.PutBucketOwnershipControls(ctx, &s3.PutBucketOwnershipControlsInput{Bucket: aws.String("pab"), OwnershipControls: enforced}); err != nil {
		t.Fatal(err)
	}
	oc, err := c.GetBucketOwnershipControls(ctx, &s3.GetBucketOwnershipControlsInput{Bucket: aws.String("pab")})
	if err != nil || len(oc.OwnershipControls.Rules) != 1 || oc.OwnershipControls.Rules[0].ObjectOwnership != types.ObjectOwnershipBucketOwnerEnforced {
		t.Fatalf("GetBucketOwnershipControls: %+v %v", oc, err)
	}
	if err := put("acl-off", types.ObjectCannedACLPublicRead); awsCode(err) != "AccessControlListNotSupported" {
		t.Fatalf("an ACL with ACLs off: %v", err)
	}
	if err := put("acl-off", types.ObjectCannedACLBucketOwnerFullControl); err != nil {
		t.Fatalf("bucket-owner-full-control with ACLs off: %v", err)
	}
	if status, _ := anonymous(t, "GET", base+"/pab/open", ""); status != 403 {
		t.Fatalf("an old public ACL with ACLs off: %d", status)
	}
	if acl, err := c.GetObjectAcl(ctx, &s3.GetObjectAclInput{Bucket: aws.String("pab"), Key: aws.String("open")}); err != nil || len(acl.Grants) != 1 {
		t.Fatalf("an object's ACL with ACLs off: %+v %v", acl, err)
	}
	writer := &types.OwnershipControls{Rules: []types.OwnershipControlsRule{{ObjectOwnership: types.ObjectOwnershipObjectWriter}}}
	if _, err := c.PutBucketOwnershipControls(ctx, &s3.PutBucketOwnershipControlsInput{Bucket: aws.String("pab"), OwnershipControls: writer}); awsCode(err) != "NotImplemented" {
		t.Fatalf("ObjectWriter: %v", err)
	}
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("enforced-public"), ObjectOwnership: types.ObjectOwnershipBucketOwnerEnforced, ACL: types.BucketCannedACLPublicRead}); awsCode(err) != "InvalidBucketAclWithObjectOwnership" {
		t.Fatalf("CreateBucket enforced with a public ACL: %v", err)
	}
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("enforced"), ObjectOwnership: types.ObjectOwnershipBucketOwnerEnforced}); err != nil {
		t.Fatal(err)
	}
	if oc, err := c.GetBucketOwnershipControls(ctx, &s3.GetBucketOwnershipControlsInput{Bucket: aws.String("enforced")}); err != nil || oc.OwnershipControls.Rules[0].ObjectOwnership != types.ObjectOwnershipBucketOwnerEnforced {
		t.Fatalf("ownership set at creation: %+v %v", oc, err)
	}
}
