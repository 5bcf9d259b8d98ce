package node

import (
	"github.com/strata-storage/strata/metastore"
)

// Small state in the metadata store (etcd in a cluster, the node's
// database alone): claims, storage classes, the audit log.

func (n *Node) claimMeta(kind string) metastore.Store {
	if n.clustered() {
		return n.etcd.Sub(kind + "/")
	}
	return metastore.NewPebble(n.db, kind+"/")
}
