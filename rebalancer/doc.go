// Package rebalancer moves shards when the ring changes: it plans the
// moves from the rings data was placed by (sources) to the ring in force
// (target), and runs them with a bandwidth and a concurrency limit,
// keeping its progress in the metadata store so that a restart resumes
// where it stopped.
//
// A move copies a record's shard streams to the target device, reads the
// copy back, commits it there and only then removes the source (see
// objectstore.MoveRecord). A shard whose device is dead is rebuilt by
// erasure decoding instead. The ring builder moves at most M slots of a
// partition per rebalance and every move is copy-then-delete, so each
// partition keeps K readable shards throughout; readers find a record on
// its source device until it has moved.
package rebalancer
