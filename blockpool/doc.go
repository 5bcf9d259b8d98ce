// Package blockpool provisions volumes from storage pools and gives every
// layer above it one way to reach storage: the Volume interface.
//
// A Pool is a place a node can carve volumes from. The only driver so far is
// file-thin: a directory in which each volume is a sparse file of fixed
// logical size, so space is consumed only where data was written and is
// returned to the filesystem by Trim (hole punching).
//
// Invariants:
//   - a volume's size is fixed at creation; ReadAt/WriteAt outside it fail
//     with ErrOutOfRange and change nothing;
//   - data written with WriteAt is durable only after Sync returns nil;
//   - a trimmed range reads back as zeroes.
//
// MemVolume and FaultVolume implement Volume for tests: the first keeps data
// in memory and can "crash" (drop what was not synced), the second wraps any
// volume and fails or corrupts chosen operations.
package blockpool
