// Package metastore holds cluster metadata: buckets and their configuration
// now; users, keys, claims, nodes and jobs as they arrive. It is one small
// key-value interface so a single node can use the pebble database in its
// data dir and a cluster can later use etcd.
//
// Object metadata does not live here: it lives with the shards
// (objectstore/shard).
//
// On a node the pebble database is Mirrored: every write also goes to a
// copy in each local device's database, and a damaged primary is rebuilt
// from the newest copy at start (docs/format/metadata-db.md).
//
// Invariant: a Put or Delete that returned nil is durable (fsync'd), on
// the primary and on every copy in step.
package metastore
