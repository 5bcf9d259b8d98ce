// Package rebalancer will plan and move shards and volume replicas when the
// ring or a failure domain changes: throttled, resumable, observable.
//
// Nothing is implemented yet: the single-node embedded default never
// changes its ring, so there is nothing to move. The types below fix the
// vocabulary the planner and executor will use; no code path reaches them.
package rebalancer

// Move is one planned change of a shard's location.
type Move struct {
	Partition  uint32
	ShardIndex int
	From, To   uint32 // device ids; From is unreadable when Rebuild is set
	Rebuild    bool   // rebuild by erasure decode instead of copying
	Bytes      int64  // estimated
}

// Plan is the ordered list of moves between two ring versions.
type Plan struct {
	FromVersion, ToVersion uint64
	Moves                  []Move
}
