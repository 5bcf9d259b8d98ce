package blockpool

// PoolInfo describes a node's volume pool: what the admin API lists and
// what a node's heartbeat carries, so the cluster layer needs no import of
// the volume manager for it.
type PoolInfo struct {
	Node        string  `json:"node"`
	Name        string  `json:"name"`
	Driver      string  `json:"driver"`
	Capacity    int64   `json:"capacity_bytes"`
	Free        int64   `json:"free_bytes"`
	Provisioned int64   `json:"provisioned_bytes"` // sum of the sizes of its replicas
	Allocated   int64   `json:"allocated_bytes"`   // space they really use
	Volumes     int     `json:"volumes"`
	OverSub     float64 `json:"oversubscription"` // provisioned / capacity
}
