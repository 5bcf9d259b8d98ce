// Package ring decides where an object's shards live.
//
// A key hashes (xxh3 of "bucket/key") to a partition: the top PartPower bits
// of the hash. The ring's table maps each partition to an ordered list of
// K+M distinct devices; shard i of every object in that partition is stored
// on device i of the list.
//
// The builder here is the simple one: it interleaves devices so that
// consecutive slots fall in different zones (racks) first, then different
// nodes, and rotates the window per partition so every device holds every
// shard index equally often. Weights are recorded but not yet honoured; the
// failure-domain-aware weighted builder replaces Build without changing the
// lookup API or the file format.
//
// Invariants: every partition has exactly K+M distinct devices; a ring file
// is rejected unless its magic, version and checksum match (docs/format/ring.md).
package ring
