// Package replicate keeps the replicas of a block volume identical, with
// DRBD's semantics: one primary sends every write to all connected
// replicas and acknowledges it once they all have it (protocol C) and they
// are a majority (quorum).
//
// Safety rests on three numbers each replica persists:
//   - epoch: a primary promotes itself by promising a new epoch to a
//     majority; a replica serves only the epoch it promised last, so an old
//     primary (partitioned, paused) is fenced: it cannot reach a majority
//     any more and its writes fail. Split brain cannot happen.
//   - generation: whenever the primary loses a replica and still has a
//     quorum, it moves the others to a new generation before acknowledging
//     another write, so the lost replica's older generation says it is
//     behind. (Without a quorum nothing is acknowledged and the generation
//     stays.) A new primary takes the newest consistent copy among a
//     majority, which always includes one that saw the last acknowledged
//     write. Each replica keeps the history of its generations.
//   - out-of-sync bitmaps: while a replica is away, the others mark every
//     4 KiB block written (durably, before writing it). When it returns it
//     becomes a sync target: it receives new writes and the marked blocks
//     are copied from an up-to-date replica; only then is it consistent
//     again. A bitmap whose history is unknown means a full sync.
//
// Writes that were in flight when a primary stopped can have reached some
// replicas and not others; the activity log of each replica's checked
// volume and the replicas' bitmaps for each other name those extents, and
// a new primary copies them from its source before serving ("settling").
//
// A forced primary (the operator's last resort without a quorum) can make
// two sides both acknowledge writes. Its generations are marked forced;
// when the sides meet, two copies neither of whose generation is in the
// other's history are a split brain: reported, left untouched, and
// resolved by discarding one side's data (a full resync).
package replicate
