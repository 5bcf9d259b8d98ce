package s3api

import (
	"context"

	"github.com/strata-storage/strata/s3api/policy"
	"github.com/strata-storage/strata/s3api/sigv4"
)

// Identity is what the S3 layer asks about users: the secret behind a
// key (to check a signature), the user behind it, canonical ids and the
// ACL grantees they name, a user's own policy and its bucket limit.
// Package users implements it over iam.
type Identity interface {
	sigv4.Credentials
	// Principal names the user of an access key; root is "", true.
	// Other users reach their own buckets and what policies grant.
	Principal(accessKey string) (user string, root bool)
	// CanonicalID is a user's S3 canonical user id ("" is root).
	CanonicalID(ctx context.Context, user string) string
	// UserByEmail and UserByCanonicalID resolve ACL grantees to users
	// ("" is root).
	UserByEmail(ctx context.Context, email string) (user string, ok bool)
	UserByCanonicalID(ctx context.Context, id string) (user string, ok bool)
	// UserPolicy is the IAM-style policy attached to a user (nil: none).
	UserPolicy(ctx context.Context, user string) *policy.Policy
	// MayCreateBucket tells whether a user (not root) may create one
	// more bucket.
	MayCreateBucket(ctx context.Context, user string) bool
}

// QuotaGate holds writes to quotas. Package quota implements it.
type QuotaGate interface {
	// Admit is asked before a write adds bytes and objects to a bucket;
	// an error refuses it with QuotaExceeded.
	Admit(ctx context.Context, bucket string, bytes, objects int64) error
	// Tracked says whether a bucket's usage is counted: only then does a
	// delete read what it removes first and Release it.
	Tracked(ctx context.Context, bucket string) bool
	Release(ctx context.Context, bucket string, bytes, objects int64)
}

// nobody is the Identity of a server given none: no key signs.
type nobody struct{}

func (nobody) SecretKey(string) (string, bool)                          { return "", false }
func (nobody) Principal(string) (string, bool)                          { return "", false }
func (nobody) CanonicalID(_ context.Context, user string) string        { return user }
func (nobody) UserByEmail(context.Context, string) (string, bool)       { return "", false }
func (nobody) UserByCanonicalID(context.Context, string) (string, bool) { return "", false }
func (nobody) UserPolicy(context.Context, string) *policy.Policy        { return nil }
func (nobody) MayCreateBucket(context.Context, string) bool             { return false }
