package node

import (
	"context"

	"github.com/strata-storage/strata/cluster"
	"github.com/strata-storage/strata/metastore"
	"github.com/strata-storage/strata/scrub/nodescrub"
)

// startScrub starts scrubbing this node's devices and volumes (package
// scrub/nodescrub).
func (n *Node) startScrub(ctx context.Context) {
	n.scrub = nodescrub.New(nodescrub.Config{
		Node: n.cfg.NodeName, State: metastore.NewPebble(n.db, "x/"), Rate: n.cfg.ScrubRate, Period: n.cfg.ScrubPeriod,
		Store: n.store, Devices: n.devs, Volumes: n.volumes, Checker: n.placementChecker,
		Busy: func() bool {
			busy := n.s3 != nil && n.s3.InFlight() > 0
			return busy || n.blocks != nil && n.blocks.InFlight() > 0
		},
		Registry: n.Registry, Log: n.log,
	})
	n.goBackground(func() { n.scrub.Run(ctx) })
}

// placementChecker: the node that checks placement for the whole store
// (the first up member by name; a single node always).
func (n *Node) placementChecker() bool {
	if !n.clustered() {
		return true
	}
	first, err := cluster.FirstUp(context.Background(), n.etcd)
	return err == nil && first == n.cfg.NodeName
}
