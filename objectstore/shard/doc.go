// Package shard is the store of one device: shard data appended as
// checksummed block records to a chunk volume, and the device's metadata
// records (object and multipart records, opaque to this package) in the
// device's own pebble database (beside its volume) under the device's key
// prefix, so a damaged database fails one device, not the node.
//
// Write path: a Writer reserves extents of the volume from an append head
// and writes one record per erasure-coded block (header + data, one pwrite).
// Finish makes them durable with an fsync shared by every writer that
// finished meanwhile (group commit) and returns a Locator. A Locator is
// reachable only once a metadata record naming it is committed with Commit,
// which also persists the append head (commits are ordered so it never
// goes backwards); space past the head and past every record is garbage
// after a crash and is trimmed when the free space is rebuilt at start.
//
// Read path: ReadBlock verifies the record header checksum, the block index,
// the writer id and the xxh3 of the data; any mismatch is ErrCorrupt and is
// counted in strata_shard_checksum_errors_total.
//
// Freed streams are trimmed and their space reused before the head grows;
// the reusable set is rebuilt from the records at start (RebuildFreeSpace),
// so it never needs to be stored.
//
// A chunk volume that disappears (a replaced disk) is formatted anew with a
// higher generation; locators of older generations read as ErrMissing, so the
// layer above rebuilds those shards from the others.
//
// On-disk layout: docs/format/shard-volume.md.
package shard
