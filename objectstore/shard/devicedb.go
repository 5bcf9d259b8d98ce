package shard

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/strata-storage/strata/blockpool"
	"github.com/strata-storage/strata/metastore"
)

// Each device keeps its state and records in a database of its own, next
// to its chunk volume, so that a damaged database fails that one device
// (erasure coding covers it) instead of the node. Data dirs from before
// kept every device's keys in the node's database; MoveRecords carries
// them over.

// moveBatchBytes bounds one batch of a move, so a device with millions of
// records never needs them all in memory at once.
const moveBatchBytes = 32 << 20

// MoveRecords moves device id's keys from the node's database (from) into
// the device's own (to). It is idempotent and safe to interrupt: the
// device's generation, which marks a database as the device's, is copied
// last and synced, and only then are the keys deleted from the node's
// database; a later call finishes an interrupted delete. from may be nil
// (nothing to move).
func MoveRecords(from, to *pebble.DB, id uint32) error {
	if from == nil {
		return nil
	}
	prefix := binary.BigEndian.AppendUint32([]byte{'d'}, id)
	upper := metastore.PrefixEnd(prefix)
	genKey := append(append(append([]byte(nil), prefix...), nsState), "gen"...)
	if _, closer, err := to.Get(genKey); err == nil {
		closer.Close()
		// Already moved. Dropping what an interrupted move left behind
		// is tidying: a node database that cannot be read here (damaged,
		// to be rebuilt from a copy) must not fail the device.
		_ = deleteRange(from, prefix, upper)
		return nil
	} else if !errors.Is(err, pebble.ErrNotFound) {
		return fmt.Errorf("read the device's generation: %w", err)
	}
	it, err := from.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: upper})
	if err != nil {
		return err
	}
	var gen []byte
	b := to.NewBatch()
	for it.First(); it.Valid(); it.Next() {
		if string(it.Key()) == string(genKey) {
			gen = append([]byte(nil), it.Value()...)
			continue
		}
		b.Set(it.Key(), it.Value(), nil)
		if b.Len() >= moveBatchBytes {
			if err := b.Commit(pebble.NoSync); err != nil {
				it.Close()
				return fmt.Errorf("copy device records: %w", err)
			}
			b = to.NewBatch()
		}
	}
	if err := it.Close(); err != nil {
		b.Close()
		return fmt.Errorf("read device records from the node's database: %w", err)
	}
	if gen == nil {
		b.Close()
		return nil // a new device: nothing to move
	}
	b.Set(genKey, gen, nil)
	// One synced commit makes the log durable up to here, earlier
	// unsynced batches included.
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("copy device records: %w", err)
	}
	return deleteRange(from, prefix, upper)
}

func deleteRange(db *pebble.DB, lower, upper []byte) error {
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return err
	}
	any := it.First()
	if err := it.Close(); err != nil {
		return err
	}
	if !any {
		return nil
	}
	if err := db.DeleteRange(lower, upper, pebble.Sync); err != nil {
		return fmt.Errorf("drop moved device records from the node's database: %w", err)
	}
	return nil
}

// Forget makes vol read as a new, empty chunk volume of device id to the
// next Open, for a device whose records are lost (db is its new, empty
// database): no record names its shards any more, so it starts empty and
// is refilled from the other devices. The volume's next generation is
// above the one it had, so no locator of its old shards can ever match.
func Forget(vol blockpool.Volume, db *pebble.DB, id uint32) error {
	super := make([]byte, superblockSize)
	if _, err := vol.ReadAt(super, 0); err != nil {
		return fmt.Errorf("read the superblock: %w", err)
	}
	old, err := parseSuper(super)
	if err != nil {
		old = 0 // unreadable: any generation will do, none is named
	}
	prefix := binary.BigEndian.AppendUint32([]byte{'d'}, id)
	genKey := append(append(prefix, nsState), "gen"...)
	if err := db.Set(genKey, binary.BigEndian.AppendUint64(nil, uint64(old)), pebble.Sync); err != nil {
		return fmt.Errorf("record the old generation: %w", err)
	}
	if _, err := vol.WriteAt(make([]byte, superblockSize), 0); err != nil {
		return fmt.Errorf("clear the superblock: %w", err)
	}
	if err := vol.Sync(); err != nil {
		return fmt.Errorf("clear the superblock: %w", err)
	}
	return nil
}
