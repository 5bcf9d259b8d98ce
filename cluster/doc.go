// Package cluster makes separate Strata processes one store: the
// inter-node transport (an authenticated HTTP RPC server on which
// components register their protocols, and the peer clients with their
// timeouts, breakers and frame streams), membership with heartbeats, and
// the etcd-backed cluster metadata store. The protocols themselves live
// beside what they serve: objectstore/shard/shardrpc for shard devices,
// blockpool/replicate/volrpc for volume replicas.
package cluster
