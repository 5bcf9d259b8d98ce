// Package metastore holds cluster metadata: buckets and their configuration
// now; users, keys, claims, nodes and jobs as they arrive. It is one small
// key-value interface so a single node can use the pebble database in its
// data dir and a cluster can later use etcd.
//
// Object metadata does not live here: it lives with the shards
// (objectstore/shard).
//
// Invariant: a Put or Delete that returned nil is durable (fsync'd).
package metastore
