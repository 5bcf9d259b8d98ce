// Package ring decides where an object's shards live.
//
// A key hashes (xxh3 of "bucket/key") to a partition: the top PartPower bits
// of the hash. The ring's table maps each partition to an ordered list of
// K+M distinct devices; shard i of every object in that partition is stored
// on device i of the list. Lookup is two array reads, no allocation.
//
// The builder (Rebalance) works in three steps. Limits: how many slots of
// one partition a zone may hold is the smallest level that lets the zones'
// device counts hold K+M (so zones >= K+M means one per zone); regions are
// then spread as evenly as those zone limits allow, and nodes inside a zone
// as evenly as filling the zone allows. Targets: each device's share of all
// slots in proportion to weight, held between what dispersion forces on it
// and what it may take. Placement: a fresh ring is filled greedily, the
// neediest domain first; a rebalance keeps every slot that may stay, moves
// slots off failed devices (always), off draining and removing devices and
// out of over-full domains, and then the fewest more that bring devices to
// their targets (direct moves, then chains of moves through devices at
// target), preferring to re-move slots already moved in this rebalance.
//
// Invariants: every partition has K+M distinct devices; no partition has
// more than max(M,1) slots moved by one rebalance, and a partition moved less
// than MinPartHours ago moves only off failed devices, so the unmoved K
// shards keep every object readable; a ring file is rejected unless its
// magic, version and checksum match (docs/format/ring.md). Ring values are
// not modified once published: edits return new rings.
package ring
