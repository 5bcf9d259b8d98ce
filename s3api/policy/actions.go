package policy

import (
	"path"
	"strings"
)

// s3Actions are the actions of the S3 service authorization reference
// (service prefix s3), less those of S3 features Strata has no resources
// for (access points, Outposts, Storage Lens, jobs): a policy naming
// anything else is refused as malformed, as AWS refuses it, instead of
// silently never matching.
var s3Actions = strings.Fields(`
AbortMultipartUpload BypassGovernanceRetention CreateBucket DeleteBucket
DeleteBucketOwnershipControls DeleteBucketPolicy DeleteBucketWebsite
DeleteObject DeleteObjectTagging DeleteObjectVersion DeleteObjectVersionTagging
GetAccelerateConfiguration GetAnalyticsConfiguration GetBucketAcl GetBucketCORS
GetBucketLocation GetBucketLogging GetBucketNotification GetBucketObjectLockConfiguration
GetBucketOwnershipControls GetBucketPolicy GetBucketPolicyStatus GetBucketPublicAccessBlock
GetBucketRequestPayment GetBucketTagging GetBucketVersioning GetBucketWebsite
GetEncryptionConfiguration GetIntelligentTieringConfiguration GetInventoryConfiguration
GetLifecycleConfiguration GetMetricsConfiguration GetObject GetObjectAcl GetObjectAttributes
GetObjectLegalHold GetObjectRetention GetObjectTagging GetObjectTorrent GetObjectVersion
GetObjectVersionAcl GetObjectVersionAttributes GetObjectVersionForReplication
GetObjectVersionTagging GetObjectVersionTorrent GetReplicationConfiguration
ListAllMyBuckets ListBucket ListBucketMultipartUploads ListBucketVersions
ListMultipartUploadParts ObjectOwnerOverrideToBucketOwner
PutAccelerateConfiguration PutAnalyticsConfiguration PutBucketAcl PutBucketCORS
PutBucketLogging PutBucketNotification PutBucketObjectLockConfiguration
PutBucketOwnershipControls PutBucketPolicy PutBucketPublicAccessBlock
PutBucketRequestPayment PutBucketTagging PutBucketVersioning PutBucketWebsite
PutEncryptionConfiguration PutIntelligentTieringConfiguration PutInventoryConfiguration
PutLifecycleConfiguration PutMetricsConfiguration PutObject PutObjectAcl
PutObjectLegalHold PutObjectRetention PutObjectTagging PutObjectVersionAcl
PutObjectVersionTagging PutReplicationConfiguration ReplicateDelete ReplicateObject
ReplicateTags RestoreObject`)

// knownAction reports whether a (an "s3:..." action, maybe with * and ?
// wildcards, matched case-insensitively as IAM does) names at least one S3
// action.
func knownAction(a string) bool {
	if a == "*" {
		return true
	}
	name, ok := strings.CutPrefix(strings.ToLower(a), "s3:")
	if !ok || name == "" {
		return false
	}
	for _, known := range s3Actions {
		if ok, _ := path.Match(name, strings.ToLower(known)); ok {
			return true
		}
	}
	return false
}
