// Package objectstore implements buckets and objects on erasure-coded
// shards: the S3 data model without HTTP.
//
// An object's key picks a ring partition and so k+m devices. The body is cut
// into blocks (1 MiB by default); each block is split into k data shards,
// encoded to k+m with Reed-Solomon, and shard i of every block is appended to
// a shard stream on device i. Each device then commits a metadata record for
// the object naming its shard stream (small objects carry their shard inline
// in the record instead).
//
// Guarantees:
//   - an acknowledged write (PUT, Complete, copy, delete) has a write quorum
//     of fsync'd shard streams and fsync'd metadata records (k+1 when k == m,
//     else k); a write short of quorum is rolled back, so it changes nothing;
//   - an object is visible (GET, HEAD, list) only while at least k devices
//     hold agreeing records (same write id); of several such versions the
//     newest wins, so a reader never sees a torn object;
//   - every byte returned was verified against its checksum; missing or
//     corrupt shards are rebuilt from the others on the fly, and the read
//     queues a repair that rewrites them (heal-on-read);
//   - in versioned buckets the replaced version moves to a noncurrent
//     record in the same atomic batch as the write that replaces it;
//   - shards of an overwritten or deleted version are freed only after the
//     change reached quorum and no reader in this process still streams
//     them; freed space is reused, never while a record names it.
package objectstore
