package admin

import (
	"time"

	"github.com/strata-storage/strata/blockpool/replicate"
	"github.com/strata-storage/strata/blockpool/volumes"
	"github.com/strata-storage/strata/claims"
	"github.com/strata-storage/strata/cluster"
	"github.com/strata-storage/strata/iam"
	"github.com/strata-storage/strata/objectstore"
	"github.com/strata-storage/strata/rebalancer"
	"github.com/strata-storage/strata/ring"
	"github.com/strata-storage/strata/scrub"
)

// The answers that are a component's own record travel as that record:
// these aliases name them here, so a client needs this package only.
type (
	RingInfo              = ring.Info
	RingDevice            = ring.Device
	RingState             = ring.State
	NodeInfo              = cluster.NodeInfo
	RepairReport          = objectstore.RepairReport
	ReadCheck             = objectstore.ReadCheck
	ScrubStats            = objectstore.ScrubStats
	Usage                 = objectstore.Usage
	PoolInfo              = volumes.PoolInfo
	VolumeInfo            = volumes.VolumeInfo
	VolumeCreateRequest   = volumes.CreateRequest
	Snapshot              = volumes.Snapshot
	Evacuation            = volumes.Evacuation
	VerifyStats           = replicate.VerifyStats
	ScrubTargetStatus     = scrub.Status
	User                  = iam.User
	Key                   = iam.Key
	Quota                 = iam.Quota
	Claim                 = claims.Claim
	Grant                 = claims.Grant
	RebalanceStatusAnswer = rebalancer.Status
	RebalanceSummary      = rebalancer.Summary
	Job                   = rebalancer.Job
	RingRebalanceResult   = ring.RebalanceResult
)

// The ring device states a client may set.
const (
	Active   = ring.Active
	Draining = ring.Draining
	Failed   = ring.Failed
)

// RebalanceAnswer is what a ring change that moves data returns.
type RebalanceAnswer struct {
	Version       uint64               `json:"version"`
	Result        ring.RebalanceResult `json:"result"`
	BytesEstimate int64                `json:"bytes_estimate"`
	// Job is the rebalance that moves the data (nil: nothing moves).
	Job *rebalancer.Job `json:"job,omitempty"`
	// VolumeMoves are the block volume replicas a drain or a failure
	// started to replace; VolumeErrors those it could not.
	VolumeMoves  []volumes.Evacuation `json:"volume_moves,omitempty"`
	VolumeErrors string               `json:"volume_errors,omitempty"`
}

// RebuildAnswer is the answer to a device rebuild.
type RebuildAnswer struct {
	Device string `json:"device"`
	// Kept is where the damaged database was moved ("" if there was none).
	Kept string `json:"kept"`
	// Generation is the chunk volume's new generation.
	Generation uint32 `json:"generation"`
	// Refill says how the device's shards come back: a placement repair
	// started now in the background, whose result the log and `strata
	// scrub status` report.
	Refill string `json:"refill"`
}

// RebalanceRequest is the body of rebalance plan, start and limit and of
// the drain and fail calls.
type RebalanceRequest struct {
	IgnoreMinPartHours bool   `json:"ignore_min_part_hours,omitempty"`
	Limit              *int64 `json:"limit,omitempty"` // bytes per second, 0: none
	Concurrency        *int   `json:"concurrency,omitempty"`
}

// Check refuses limits out of range.
func (q RebalanceRequest) Check() error {
	if q.Limit != nil && *q.Limit < 0 {
		return BadRequest("Limit %d: want bytes per second >= 0 (0: no limit)", *q.Limit)
	}
	if q.Concurrency != nil && (*q.Concurrency < 1 || *q.Concurrency > 256) {
		return BadRequest("Concurrency %d: want 1 to 256", *q.Concurrency)
	}
	return nil
}

// RingRebalanceRequest is the body of a ring rebalance.
type RingRebalanceRequest struct {
	IgnoreMinPartHours bool `json:"ignore_min_part_hours"`
}

// WeightRequest sets a device's weight.
type WeightRequest struct {
	Weight *float64 `json:"weight"`
}

// StateRequest sets a device's state (active, draining or failed).
type StateRequest struct {
	State *ring.State `json:"state"`
}

// VerifyRequest is the body of a cluster verify.
type VerifyRequest struct {
	Repair bool `json:"repair"`
}

// NodeRemoveAnswer says what a node removal took out.
type NodeRemoveAnswer struct {
	Node           string   `json:"node"`
	DevicesRemoved []string `json:"devices_removed"`
	RingVersion    uint64   `json:"ring_version"`
}

// Hints is how many keys this node still has to repair.
type Hints struct {
	Pending int `json:"pending"`
}

// HaltAnswer names the node that is stopping.
type HaltAnswer struct {
	Halting string `json:"halting"`
}

// ResizeRequest grows a volume online, or shrinks it with AllowShrink
// (the bytes past the new size are lost; snapshots keep theirs).
type ResizeRequest struct {
	Size        int64 `json:"size"`
	AllowShrink bool  `json:"allow_shrink,omitempty"`
}

// RestoreRequest qualifies a snapshot restore: AllowShrink lets a volume
// that grew since the snapshot shrink back to the snapshot's size.
type RestoreRequest struct {
	AllowShrink bool `json:"allow_shrink,omitempty"`
}

// CloneRequest makes a new volume from a volume or one of its snapshots.
type CloneRequest struct {
	Name     string `json:"name"`
	Snapshot string `json:"snapshot"`
}

// PromoteRequest makes this node a volume's primary until demoted.
type PromoteRequest struct {
	Force bool `json:"force"`
}

// NameRequest names the snapshot to take.
type NameRequest struct {
	Name string `json:"name"`
}

// AccessRequest grants and revokes NBD client identities.
type AccessRequest struct {
	Grant  []string `json:"grant"`
	Revoke []string `json:"revoke"`
}

// VolumeAccess is the NBD client identities that may attach a volume.
type VolumeAccess struct {
	Volume string   `json:"volume"`
	Access []string `json:"access"`
}

// TargetRequest names a scrub target ("" or absent: all).
type TargetRequest struct {
	Target string `json:"target"`
}

// ObjectRequest names one object.
type ObjectRequest struct {
	Bucket string `json:"bucket"`
	Key    string `json:"key"`
}

// UserCreateRequest is the body of a user create.
type UserCreateRequest struct {
	Name  string `json:"name"`
	Admin bool   `json:"admin"`
	Email string `json:"email"`
}

// AdminRequest grants or revokes a user's admin rights.
type AdminRequest struct {
	Admin *bool `json:"admin"`
}

// UserWithKeys is a user and its access keys (no secrets).
type UserWithKeys struct {
	iam.User
	Keys []iam.Key `json:"keys"`
}

// NewKey is a key just made: the only answer that holds its secret.
type NewKey struct {
	iam.Key
	SecretKey string `json:"secret_key"`
}

// BucketListing is a bucket with its usage and quotas.
type BucketListing struct {
	Name    string            `json:"name"`
	Owner   string            `json:"owner"`
	Created time.Time         `json:"created"`
	Usage   objectstore.Usage `json:"usage"`
	Quota   iam.Quota         `json:"quota,omitzero"`
	// OwnerQuota is the owner's quota, which this bucket counts against.
	OwnerQuota iam.Quota `json:"owner_quota,omitzero"`
}

// StorageClass is what an ObjectBucketClaim names: how its bucket is made
// and what happens to it when the claim goes.
type StorageClass struct {
	Name    string    `json:"name"`
	Reclaim string    `json:"reclaim_policy"` // Delete or Retain
	EC      string    `json:"ec,omitempty"`   // K+M; empty: the ring's
	Created time.Time `json:"created"`
}

// ClaimRecord is a bound claim: its bucket, user and key.
type ClaimRecord struct {
	Claim        claims.Claim `json:"claim"`
	Bucket       string       `json:"bucket"`
	User         string       `json:"user"`
	AccessKey    string       `json:"access_key"`
	StorageClass StorageClass `json:"storage_class"`
	Created      time.Time    `json:"created"`
}

// ClaimAnswer is what applying a claim gives: the record and the grant
// (with the secret) its workload needs.
type ClaimAnswer struct {
	Record  ClaimRecord  `json:"record"`
	Grant   claims.Grant `json:"grant"`
	Created bool         `json:"created"` // false: it was bound already
}

// AuditEntry is one admin call that changed something (or tried to).
type AuditEntry struct {
	Time      time.Time `json:"time"`
	Node      string    `json:"node"`
	Principal string    `json:"principal"` // "root" or the admin user
	Remote    string    `json:"remote"`
	Method    string    `json:"method"`
	Path      string    `json:"path"`
	Body      string    `json:"body,omitempty"` // the request, cut at 2 KiB
	Status    int       `json:"status"`
	Code      string    `json:"code,omitempty"` // the error code of a refusal
}

// More component records, as above.
type (
	RebalanceStats   = rebalancer.Stats
	DomainLoad       = rebalancer.DomainLoad
	DispersionReport = ring.DispersionReport
	RingDiff         = ring.Diff
)

// ParseClaim reads an ObjectBucketClaim manifest (YAML or JSON).
func ParseClaim(doc []byte) (Claim, error) { return claims.Parse(doc) }

// RingDiffAnswer compares the ring before the last change with the ring
// in force.
type RingDiffAnswer struct {
	From uint64    `json:"from"`
	To   uint64    `json:"to"`
	Diff ring.Diff `json:"diff"`
}
