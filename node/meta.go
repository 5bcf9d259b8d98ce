package node

import (
	"net"
	"strconv"

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

// s3Endpoint is the S3 host and port clients use: the listen address, or
// the first domain when it listens on every interface.
func (n *Node) s3Endpoint() (string, int) {
	host, p, _ := net.SplitHostPort(n.S3Addr())
	port, _ := strconv.Atoi(p)
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() && len(n.cfg.Domains) > 0 {
		host = n.cfg.Domains[0]
	}
	return host, port
}
