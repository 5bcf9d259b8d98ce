package admin

import (
	"context"
	"encoding/json"
	"net/url"
	"strconv"
)

// The typed calls, one per operation, in the order of Routes.

func id(d uint32) string { return strconv.FormatUint(uint64(d), 10) }

// Ring is the ring in force.
func (c *Client) Ring(ctx context.Context) (RingInfo, error) {
	return get[RingInfo](ctx, c, RingGet, nil)
}

// RingFile is the ring file in force, or the one before it.
func (c *Client) RingFile(ctx context.Context, previous bool) ([]byte, error) {
	var q url.Values
	if previous {
		q = url.Values{"previous": {"1"}}
	}
	var raw []byte
	err := c.call(ctx, RingFile, q, nil, &raw)
	return raw, err
}

// RingDiff compares the ring before the node's last change with the one
// in force.
func (c *Client) RingDiff(ctx context.Context) (RingDiffAnswer, error) {
	return get[RingDiffAnswer](ctx, c, RingDiffGet, nil)
}

// AddDevice adds d to the ring (d.Node "" is the called node).
func (c *Client) AddDevice(ctx context.Context, d RingDevice) (RingInfo, error) {
	return get[RingInfo](ctx, c, RingAddDevice, d)
}

// SetWeight sets a device's weight.
func (c *Client) SetWeight(ctx context.Context, dev uint32, w float64) (RingInfo, error) {
	return get[RingInfo](ctx, c, RingSetWeight, WeightRequest{Weight: &w}, id(dev))
}

// SetState sets a device's state.
func (c *Client) SetState(ctx context.Context, dev uint32, s RingState) (RingInfo, error) {
	return get[RingInfo](ctx, c, RingSetState, StateRequest{State: &s}, id(dev))
}

// RemoveDevice takes a device out of the ring.
func (c *Client) RemoveDevice(ctx context.Context, dev uint32) (RingInfo, error) {
	return get[RingInfo](ctx, c, RingRemove, nil, id(dev))
}

// RebuildDevice starts an offline local device anew.
func (c *Client) RebuildDevice(ctx context.Context, dev uint32) (RebuildAnswer, error) {
	return get[RebuildAnswer](ctx, c, RingRebuild, nil, id(dev))
}

// RebalanceRing reassigns partitions to match the weights.
func (c *Client) RebalanceRing(ctx context.Context, ignoreMinPartHours bool) (RebalanceAnswer, error) {
	return get[RebalanceAnswer](ctx, c, RingRebalance, RingRebalanceRequest{IgnoreMinPartHours: ignoreMinPartHours})
}

// Nodes lists the cluster's members.
func (c *Client) Nodes(ctx context.Context) ([]NodeInfo, error) {
	return get[[]NodeInfo](ctx, c, NodesList, nil)
}

// Verify checks (and with repair, fixes) every object's placement.
func (c *Client) Verify(ctx context.Context, repair bool) (RepairReport, error) {
	return get[RepairReport](ctx, c, ClusterVerify, VerifyRequest{Repair: repair})
}

// ReadCheck reads every object back in full.
func (c *Client) ReadCheck(ctx context.Context) (ReadCheck, error) {
	return get[ReadCheck](ctx, c, ClusterCheck, nil)
}

// Hints is how many keys the node still has to repair.
func (c *Client) Hints(ctx context.Context) (Hints, error) {
	return get[Hints](ctx, c, ClusterHints, nil)
}

// Halt stops the node's process now (a node started to allow it only).
func (c *Client) Halt(ctx context.Context) (HaltAnswer, error) {
	return get[HaltAnswer](ctx, c, NodeHalt, nil)
}

// Pools lists every node's volume pool.
func (c *Client) Pools(ctx context.Context) ([]PoolInfo, error) {
	return get[[]PoolInfo](ctx, c, PoolsList, nil)
}

// Volumes lists the block volumes.
func (c *Client) Volumes(ctx context.Context) ([]VolumeInfo, error) {
	return get[[]VolumeInfo](ctx, c, VolumesList, nil)
}

// CreateVolume makes a block volume.
func (c *Client) CreateVolume(ctx context.Context, req VolumeCreateRequest) (VolumeInfo, error) {
	return get[VolumeInfo](ctx, c, VolumeCreate, req)
}

// Volume is one volume.
func (c *Client) Volume(ctx context.Context, name string) (VolumeInfo, error) {
	return get[VolumeInfo](ctx, c, VolumeGet, nil, name)
}

// DeleteVolume deletes a volume and its snapshots.
func (c *Client) DeleteVolume(ctx context.Context, name string) error {
	return c.call(ctx, VolumeDelete, nil, nil, nil, name)
}

// ResizeVolume grows a volume online, or shrinks it if allowShrink.
func (c *Client) ResizeVolume(ctx context.Context, name string, size int64, allowShrink bool) (VolumeInfo, error) {
	return get[VolumeInfo](ctx, c, VolumeResize, ResizeRequest{Size: size, AllowShrink: allowShrink}, name)
}

// CloneVolume makes volume to from name (or its snapshot).
func (c *Client) CloneVolume(ctx context.Context, name, to, snapshot string) (VolumeInfo, error) {
	return get[VolumeInfo](ctx, c, VolumeClone, CloneRequest{Name: to, Snapshot: snapshot}, name)
}

// Promote makes the called node the volume's primary until Demote.
func (c *Client) Promote(ctx context.Context, name string, force bool) (VolumeInfo, error) {
	return get[VolumeInfo](ctx, c, VolumePromote, PromoteRequest{Force: force}, name)
}

// Demote gives up the primary role Promote took.
func (c *Client) Demote(ctx context.Context, name string) error {
	return c.call(ctx, VolumeDemote, nil, nil, nil, name)
}

// Discard resolves a split brain by discarding node's diverged data.
func (c *Client) Discard(ctx context.Context, name, node string) error {
	return c.call(ctx, VolumeDiscard, nil, nil, nil, name, node)
}

// VolumeAccess is the NBD clients that may attach the volume.
func (c *Client) VolumeAccess(ctx context.Context, name string) (VolumeAccess, error) {
	return get[VolumeAccess](ctx, c, VolumeAccessGet, nil, name)
}

// SetVolumeAccess grants and revokes NBD client identities.
func (c *Client) SetVolumeAccess(ctx context.Context, name string, grant, revoke []string) (VolumeAccess, error) {
	return get[VolumeAccess](ctx, c, VolumeAccessSet, AccessRequest{Grant: grant, Revoke: revoke}, name)
}

// Snapshots lists a volume's snapshots.
func (c *Client) Snapshots(ctx context.Context, volume string) ([]Snapshot, error) {
	return get[[]Snapshot](ctx, c, SnapshotsList, nil, volume)
}

// CreateSnapshot takes a snapshot of a volume.
func (c *Client) CreateSnapshot(ctx context.Context, volume, name string) (Snapshot, error) {
	return get[Snapshot](ctx, c, SnapshotCreate, NameRequest{Name: name}, volume)
}

// DeleteSnapshot deletes a snapshot.
func (c *Client) DeleteSnapshot(ctx context.Context, volume, name string) error {
	return c.call(ctx, SnapshotDelete, nil, nil, nil, volume, name)
}

// RestoreSnapshot rolls a detached volume back to a snapshot, in place; a
// volume that grew since shrinks back only if allowShrink.
func (c *Client) RestoreSnapshot(ctx context.Context, volume, name string, allowShrink bool) error {
	return c.call(ctx, SnapshotRestore, nil, RestoreRequest{AllowShrink: allowShrink}, nil, volume, name)
}

// ScrubStatus is the called node's scrub targets.
func (c *Client) ScrubStatus(ctx context.Context) ([]ScrubTargetStatus, error) {
	return get[[]ScrubTargetStatus](ctx, c, ScrubStatus, nil)
}

// ScrubControl pauses, resumes or starts now ("pause", "resume", "now")
// one target, or all with target "".
func (c *Client) ScrubControl(ctx context.Context, action, target string) ([]ScrubTargetStatus, error) {
	return get[[]ScrubTargetStatus](ctx, c, ScrubControl, TargetRequest{Target: target}, action)
}

// ScrubObject scrubs one object now.
func (c *Client) ScrubObject(ctx context.Context, bucket, key string) (ScrubStats, error) {
	return get[ScrubStats](ctx, c, ScrubObject, ObjectRequest{Bucket: bucket, Key: key})
}

// ScrubVolume verifies a whole volume's replicas now.
func (c *Client) ScrubVolume(ctx context.Context, name string) (VerifyStats, error) {
	return get[VerifyStats](ctx, c, ScrubVolume, nil, name)
}

// Users lists the users.
func (c *Client) Users(ctx context.Context) ([]User, error) {
	return get[[]User](ctx, c, UsersList, nil)
}

// CreateUser makes a user.
func (c *Client) CreateUser(ctx context.Context, req UserCreateRequest) (User, error) {
	return get[User](ctx, c, UserCreate, req)
}

// User is one user with its keys.
func (c *Client) User(ctx context.Context, name string) (UserWithKeys, error) {
	return get[UserWithKeys](ctx, c, UserGet, nil, name)
}

// DeleteUser deletes a user that owns no bucket.
func (c *Client) DeleteUser(ctx context.Context, name string) error {
	return c.call(ctx, UserDelete, nil, nil, nil, name)
}

// SetAdmin grants or revokes a user's right to call this API.
func (c *Client) SetAdmin(ctx context.Context, name string, admin bool) (User, error) {
	return get[User](ctx, c, UserSetAdmin, AdminRequest{Admin: &admin}, name)
}

// SetUserDisabled disables or enables a user.
func (c *Client) SetUserDisabled(ctx context.Context, name string, disabled bool) (User, error) {
	return get[User](ctx, c, UserEnable, nil, name, enableAction(disabled))
}

// UserKeys lists a user's keys.
func (c *Client) UserKeys(ctx context.Context, name string) ([]Key, error) {
	return get[[]Key](ctx, c, UserKeys, nil, name)
}

// CreateKey makes a key for a user; the answer holds its secret.
func (c *Client) CreateKey(ctx context.Context, user string) (NewKey, error) {
	return get[NewKey](ctx, c, KeyCreate, nil, user)
}

// SetUserPolicy attaches an IAM policy document to a user.
func (c *Client) SetUserPolicy(ctx context.Context, user string, doc []byte) (User, error) {
	return get[User](ctx, c, UserPolicySet, json.RawMessage(doc), user)
}

// ClearUserPolicy removes a user's policy.
func (c *Client) ClearUserPolicy(ctx context.Context, user string) (User, error) {
	return get[User](ctx, c, UserPolicyClear, nil, user)
}

// SetUserQuota sets a user's quota over all its buckets (zero clears).
func (c *Client) SetUserQuota(ctx context.Context, user string, q Quota) (User, error) {
	return get[User](ctx, c, UserQuotaSet, q, user)
}

// Keys lists every access key.
func (c *Client) Keys(ctx context.Context) ([]Key, error) {
	return get[[]Key](ctx, c, KeysList, nil)
}

// DeleteKey deletes an access key.
func (c *Client) DeleteKey(ctx context.Context, access string) error {
	return c.call(ctx, KeyDelete, nil, nil, nil, access)
}

// SetKeyDisabled disables or enables an access key.
func (c *Client) SetKeyDisabled(ctx context.Context, access string, disabled bool) (Key, error) {
	return get[Key](ctx, c, KeyEnable, nil, access, enableAction(disabled))
}

func enableAction(disabled bool) string {
	if disabled {
		return "disable"
	}
	return "enable"
}

// Buckets lists the buckets with their usage, counted now.
func (c *Client) Buckets(ctx context.Context) ([]BucketListing, error) {
	return get[[]BucketListing](ctx, c, BucketsList, nil)
}

// SetBucketQuota sets a bucket's quota (zero clears).
func (c *Client) SetBucketQuota(ctx context.Context, bucket string, q Quota) (BucketListing, error) {
	return get[BucketListing](ctx, c, BucketQuotaSet, q, bucket)
}

// StorageClasses lists the storage classes.
func (c *Client) StorageClasses(ctx context.Context) ([]StorageClass, error) {
	return get[[]StorageClass](ctx, c, ClassesList, nil)
}

// CreateStorageClass makes a storage class.
func (c *Client) CreateStorageClass(ctx context.Context, sc StorageClass) (StorageClass, error) {
	return get[StorageClass](ctx, c, ClassCreate, sc)
}

// DeleteStorageClass deletes a storage class no claim uses.
func (c *Client) DeleteStorageClass(ctx context.Context, name string) error {
	return c.call(ctx, ClassDelete, nil, nil, nil, name)
}

// Claims lists the bound claims.
func (c *Client) Claims(ctx context.Context) ([]ClaimRecord, error) {
	return get[[]ClaimRecord](ctx, c, ClaimsList, nil)
}

// ApplyClaim binds a claim (again: what it got the first time).
func (c *Client) ApplyClaim(ctx context.Context, cl Claim) (ClaimAnswer, error) {
	return get[ClaimAnswer](ctx, c, ClaimApply, cl)
}

// DeleteClaim applies a claim's reclaim policy.
func (c *Client) DeleteClaim(ctx context.Context, namespace, name string) (ClaimRecord, error) {
	return get[ClaimRecord](ctx, c, ClaimDelete, nil, namespace, name)
}

// RebalanceStatus is the rebalance job's progress.
func (c *Client) RebalanceStatus(ctx context.Context) (RebalanceStatusAnswer, error) {
	return get[RebalanceStatusAnswer](ctx, c, RebalanceStatus, nil)
}

// PlanRebalance says what a rebalance would move, changing nothing.
func (c *Client) PlanRebalance(ctx context.Context, req RebalanceRequest) (RebalanceSummary, error) {
	return get[RebalanceSummary](ctx, c, RebalancePlan, req)
}

// StartRebalance rebalances the ring and moves the data.
func (c *Client) StartRebalance(ctx context.Context, req RebalanceRequest) (RebalanceAnswer, error) {
	return get[RebalanceAnswer](ctx, c, RebalanceStart, req)
}

// RebalanceJobAction pauses, resumes or cancels the job ("pause",
// "resume", "cancel"; cancel answers the rollback job).
func (c *Client) RebalanceJobAction(ctx context.Context, action string) (Job, error) {
	return get[Job](ctx, c, RebalanceJob, nil, action)
}

// SetRebalanceLimit changes the running job's rate or concurrency.
func (c *Client) SetRebalanceLimit(ctx context.Context, req RebalanceRequest) (Job, error) {
	return get[Job](ctx, c, RebalanceLimit, req)
}

// DrainNode drains every device of a node.
func (c *Client) DrainNode(ctx context.Context, node string, req RebalanceRequest) (RebalanceAnswer, error) {
	return get[RebalanceAnswer](ctx, c, NodeDrain, req, node)
}

// RemoveNode takes a drained node that is down out of the cluster: its
// devices leave the ring and its member record goes.
func (c *Client) RemoveNode(ctx context.Context, node string) (NodeRemoveAnswer, error) {
	var ans NodeRemoveAnswer
	err := c.call(ctx, NodeRemove, nil, nil, &ans, node)
	return ans, err
}

// ZoneAction drains or fails ("drain", "fail") every device of a zone.
func (c *Client) ZoneAction(ctx context.Context, zone, action string, req RebalanceRequest) (RebalanceAnswer, error) {
	return get[RebalanceAnswer](ctx, c, ZoneChange, req, zone, action)
}

// Audit is the newest limit admin calls, oldest first.
func (c *Client) Audit(ctx context.Context, limit int) ([]AuditEntry, error) {
	var out []AuditEntry
	err := c.call(ctx, AuditList, url.Values{"limit": {strconv.Itoa(limit)}}, nil, &out)
	return out, err
}
