// Package admin is Strata's admin API in one place: the route table, the
// request and answer types, the error codes, the server-side mux the node
// serves it with and the typed Go client that the CLI, the tests, the
// console and the Kubernetes controllers call it through.
//
// Every request is under /admin/v1/ on the admin listener, SigV4-signed
// (body hash included) with the root credentials or an admin user's key.
// Bodies and answers are JSON; an error is {"code": ..., "message": ...}
// with a 4xx/5xx status.
package admin

// Prefix is where the admin API lives on the admin listener.
const Prefix = "/admin/v1/"

// Op names one admin operation.
type Op string

// A Route is an operation's method and path (a net/http ServeMux pattern
// below Prefix; {name} is a path segment).
type Route struct {
	Op     Op
	Method string
	Path   string
}

// The operations. The comment says what the body is and what comes back.
const (
	RingGet         Op = "RingGet"         // -> RingInfo
	RingFile        Op = "RingFile"        // ?previous=1 -> the ring file (binary)
	RingDiffGet     Op = "RingDiffGet"     // -> RingDiffAnswer: the previous ring against the current
	RingAddDevice   Op = "RingAddDevice"   // RingDevice -> RingInfo
	RingSetWeight   Op = "RingSetWeight"   // WeightRequest -> RingInfo
	RingSetState    Op = "RingSetState"    // StateRequest -> RingInfo
	RingRemove      Op = "RingRemove"      // -> RingInfo
	RingRebuild     Op = "RingRebuild"     // -> RebuildAnswer
	RingRebalance   Op = "RingRebalance"   // RingRebalanceRequest -> RebalanceAnswer
	NodesList       Op = "NodesList"       // -> []NodeInfo
	ClusterVerify   Op = "ClusterVerify"   // VerifyRequest -> RepairReport
	ClusterCheck    Op = "ClusterCheck"    // -> ReadCheck
	ClusterHints    Op = "ClusterHints"    // -> Hints
	NodeHalt        Op = "NodeHalt"        // -> HaltAnswer
	PoolsList       Op = "PoolsList"       // -> []PoolInfo
	VolumesList     Op = "VolumesList"     // -> []VolumeInfo
	VolumeCreate    Op = "VolumeCreate"    // VolumeCreateRequest -> VolumeInfo (201)
	VolumeGet       Op = "VolumeGet"       // -> VolumeInfo
	VolumeDelete    Op = "VolumeDelete"    // 204
	VolumeResize    Op = "VolumeResize"    // ResizeRequest -> VolumeInfo
	VolumeClone     Op = "VolumeClone"     // CloneRequest -> VolumeInfo (201)
	VolumePromote   Op = "VolumePromote"   // PromoteRequest -> VolumeInfo
	VolumeDemote    Op = "VolumeDemote"    // 204
	VolumeDiscard   Op = "VolumeDiscard"   // 204: resolve a split brain on {node}
	VolumeAccessGet Op = "VolumeAccessGet" // -> VolumeAccess
	VolumeAccessSet Op = "VolumeAccessSet" // AccessRequest -> VolumeAccess
	SnapshotsList   Op = "SnapshotsList"   // -> []Snapshot
	SnapshotCreate  Op = "SnapshotCreate"  // NameRequest -> Snapshot (201)
	SnapshotDelete  Op = "SnapshotDelete"  // 204
	SnapshotRestore Op = "SnapshotRestore" // RestoreRequest (optional) -> 204
	ScrubStatus     Op = "ScrubStatus"     // -> []ScrubStatus of this node's targets
	ScrubControl    Op = "ScrubControl"    // {action}: pause, resume or now; TargetRequest -> []ScrubStatus
	ScrubObject     Op = "ScrubObject"     // ObjectRequest -> ScrubStats
	ScrubVolume     Op = "ScrubVolume"     // -> VerifyStats of the whole volume, now
	UsersList       Op = "UsersList"       // -> []User
	UserCreate      Op = "UserCreate"      // UserCreateRequest -> User (201)
	UserGet         Op = "UserGet"         // -> UserWithKeys
	UserDelete      Op = "UserDelete"      // 204 (refused while it owns buckets)
	UserSetAdmin    Op = "UserSetAdmin"    // AdminRequest -> User
	UserEnable      Op = "UserEnable"      // {action}: enable or disable -> User
	UserKeys        Op = "UserKeys"        // -> []Key (no secrets)
	KeyCreate       Op = "KeyCreate"       // -> NewKey (201: the only time the secret is shown)
	UserPolicySet   Op = "UserPolicySet"   // an IAM policy document -> User
	UserPolicyClear Op = "UserPolicyClear" // -> User
	UserQuotaSet    Op = "UserQuotaSet"    // Quota (zero clears) -> User
	KeysList        Op = "KeysList"        // -> []Key
	KeyDelete       Op = "KeyDelete"       // 204
	KeyEnable       Op = "KeyEnable"       // {action}: enable or disable -> Key
	BucketsList     Op = "BucketsList"     // -> []BucketListing (usage counted now)
	BucketQuotaSet  Op = "BucketQuotaSet"  // Quota (zero clears) -> BucketListing
	ClassesList     Op = "ClassesList"     // -> []StorageClass
	ClassCreate     Op = "ClassCreate"     // StorageClass -> StorageClass (201)
	ClassDelete     Op = "ClassDelete"     // 204 (refused while claims use it)
	ClaimsList      Op = "ClaimsList"      // -> []ClaimRecord
	ClaimApply      Op = "ClaimApply"      // Claim -> ClaimAnswer (201 when bound now)
	ClaimDelete     Op = "ClaimDelete"     // the reclaim policy is applied -> ClaimRecord
	RebalanceStatus Op = "RebalanceStatus" // -> RebalanceStatusAnswer
	RebalancePlan   Op = "RebalancePlan"   // RebalanceRequest -> RebalanceSummary (nothing changes)
	RebalanceStart  Op = "RebalanceStart"  // RebalanceRequest -> RebalanceAnswer
	RebalanceJob    Op = "RebalanceJob"    // {action}: pause, resume or cancel -> Job (cancel: the rollback job)
	RebalanceLimit  Op = "RebalanceLimit"  // RebalanceRequest -> Job
	NodeDrain       Op = "NodeDrain"       // RebalanceRequest -> RebalanceAnswer
	NodeRemove      Op = "NodeRemove"      // -> NodeRemoveAnswer (the node is down and drained)
	ZoneChange      Op = "ZoneChange"      // {action}: drain, fail or activate; RebalanceRequest -> RebalanceAnswer
	AuditList       Op = "AuditList"       // ?limit=N -> []AuditEntry, oldest first
)

// Routes is the admin API's route table: the one place a path is spelled.
var Routes = []Route{
	{RingGet, "GET", "ring"},
	{RingFile, "GET", "ring/file"},
	{RingDiffGet, "GET", "ring/diff"},
	{RingAddDevice, "POST", "ring/devices"},
	{RingSetWeight, "PUT", "ring/devices/{id}/weight"},
	{RingSetState, "PUT", "ring/devices/{id}/state"},
	{RingRemove, "DELETE", "ring/devices/{id}"},
	{RingRebuild, "POST", "ring/devices/{id}/rebuild"},
	{RingRebalance, "POST", "ring/rebalance"},
	{NodesList, "GET", "nodes"},
	{ClusterVerify, "POST", "cluster/verify"},
	{ClusterCheck, "POST", "cluster/read-check"},
	{ClusterHints, "GET", "cluster/hints"},
	{NodeHalt, "POST", "node/halt"},
	{PoolsList, "GET", "pools"},
	{VolumesList, "GET", "volumes"},
	{VolumeCreate, "POST", "volumes"},
	{VolumeGet, "GET", "volumes/{name}"},
	{VolumeDelete, "DELETE", "volumes/{name}"},
	{VolumeResize, "PUT", "volumes/{name}/size"},
	{VolumeClone, "POST", "volumes/{name}/clone"},
	{VolumePromote, "POST", "volumes/{name}/primary"},
	{VolumeDemote, "DELETE", "volumes/{name}/primary"},
	{VolumeDiscard, "POST", "volumes/{name}/discard/{node}"},
	{VolumeAccessGet, "GET", "volumes/{name}/access"},
	{VolumeAccessSet, "PUT", "volumes/{name}/access"},
	{SnapshotsList, "GET", "volumes/{name}/snapshots"},
	{SnapshotCreate, "POST", "volumes/{name}/snapshots"},
	{SnapshotDelete, "DELETE", "volumes/{name}/snapshots/{snapshot}"},
	{SnapshotRestore, "POST", "volumes/{name}/snapshots/{snapshot}/restore"},
	{ScrubStatus, "GET", "scrub"},
	{ScrubControl, "POST", "scrub/{action}"},
	{ScrubObject, "POST", "scrub/object"},
	{ScrubVolume, "POST", "scrub/volume/{name}"},
	{UsersList, "GET", "users"},
	{UserCreate, "POST", "users"},
	{UserGet, "GET", "users/{name}"},
	{UserDelete, "DELETE", "users/{name}"},
	{UserSetAdmin, "PUT", "users/{name}/admin"},
	{UserEnable, "POST", "users/{name}/{action}"},
	{UserKeys, "GET", "users/{name}/keys"},
	{KeyCreate, "POST", "users/{name}/keys"},
	{UserPolicySet, "PUT", "users/{name}/policy"},
	{UserPolicyClear, "DELETE", "users/{name}/policy"},
	{UserQuotaSet, "PUT", "users/{name}/quota"},
	{KeysList, "GET", "keys"},
	{KeyDelete, "DELETE", "keys/{access}"},
	{KeyEnable, "POST", "keys/{access}/{action}"},
	{BucketsList, "GET", "buckets"},
	{BucketQuotaSet, "PUT", "buckets/{name}/quota"},
	{ClassesList, "GET", "storageclasses"},
	{ClassCreate, "POST", "storageclasses"},
	{ClassDelete, "DELETE", "storageclasses/{name}"},
	{ClaimsList, "GET", "claims"},
	{ClaimApply, "POST", "claims"},
	{ClaimDelete, "DELETE", "claims/{namespace}/{name}"},
	{RebalanceStatus, "GET", "rebalance"},
	{RebalancePlan, "POST", "rebalance/plan"},
	{RebalanceStart, "POST", "rebalance/start"},
	{RebalanceJob, "POST", "rebalance/{action}"},
	{RebalanceLimit, "PUT", "rebalance/limit"},
	{NodeDrain, "POST", "nodes/{name}/drain"},
	{NodeRemove, "DELETE", "nodes/{name}"},
	{ZoneChange, "POST", "zones/{zone}/{action}"},
	{AuditList, "GET", "audit"},
}

// route is op's entry in Routes.
func route(op Op) (Route, bool) {
	for _, r := range Routes {
		if r.Op == op {
			return r, true
		}
	}
	return Route{}, false
}
