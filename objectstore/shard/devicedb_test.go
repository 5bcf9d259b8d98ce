package shard

import (
	"context"
	"encoding/binary"
	"log/slog"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/strata-storage/strata/blockpool"
	"github.com/strata-storage/strata/metastore"
)

func countPrefix(t *testing.T, db *pebble.DB, id uint32) int {
	t.Helper()
	p := binary.BigEndian.AppendUint32([]byte{'d'}, id)
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: metastore.PrefixEnd(p)})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for it.First(); it.Valid(); it.Next() {
		n++
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestRecordsMoveToTheDevicesDatabase(t *testing.T) {
	ctx := context.Background()
	node := memDB(t, vfs.NewMem())
	vol := blockpool.NewMemVolume(8 << 20)
	// A data dir from before: device 3's state and records in the node's
	// database, beside another device's and the node's own keys.
	old, err := Open(3, "d3", vol, node, nil, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	loc := writeStream(t, old, randBlocks(2, 1000, 10))
	if err := old.Commit(ctx, Op{Key: []byte("b\x00k1"), Value: loc.AppendBinary(nil)}, Op{Key: []byte("b\x00k2"), Value: []byte("v2")}); err != nil {
		t.Fatal(err)
	}
	other, _ := Open(4, "d4", blockpool.NewMemVolume(8<<20), node, nil, slog.Default())
	other.Commit(ctx, Op{Key: []byte("b\x00zz"), Value: []byte("other device")})
	node.Set([]byte("m/b/bucket"), []byte("node key"), pebble.Sync)
	before := countPrefix(t, node, 3)

	dev := memDB(t, vfs.NewMem())
	if err := MoveRecords(node, dev, 3); err != nil {
		t.Fatal(err)
	}
	if n := countPrefix(t, node, 3); n != 0 {
		t.Fatalf("%d keys of the device left in the node's database", n)
	}
	if n := countPrefix(t, dev, 3); n != before {
		t.Fatalf("%d keys moved, want %d", n, before)
	}
	if countPrefix(t, node, 4) == 0 {
		t.Fatal("another device's keys were moved too")
	}
	if _, c, err := node.Get([]byte("m/b/bucket")); err != nil {
		t.Fatalf("node key: %v", err)
	} else {
		c.Close()
	}
	// The device opens on its own database with its volume, records and
	// head intact.
	s, err := Open(3, "d3", vol, dev, nil, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	if s.Head() != old.Head() {
		t.Fatalf("head %d after the move, %d before", s.Head(), old.Head())
	}
	if v, err := s.Get(ctx, []byte("b\x00k2")); err != nil || string(v) != "v2" {
		t.Fatalf("record after the move: %q %v", v, err)
	}
	if _, err := s.ReadBlock(context.Background(), &loc, 1, make([]byte, 2000)); err != nil {
		t.Fatalf("shard after the move: %v", err)
	}
	// Again (the next start): nothing to do, nothing lost.
	if err := MoveRecords(node, dev, 3); err != nil || countPrefix(t, dev, 3) != before {
		t.Fatalf("second move: %v, %d keys", err, countPrefix(t, dev, 3))
	}
}

func TestInterruptedMoveIsFinished(t *testing.T) {
	node, dev := memDB(t, vfs.NewMem()), memDB(t, vfs.NewMem())
	vol := blockpool.NewMemVolume(8 << 20)
	old, _ := Open(5, "d5", vol, node, nil, slog.Default())
	old.Commit(context.Background(), Op{Key: []byte("b\x00k"), Value: []byte("v")})
	// Copied, then cut before the node's keys were dropped: simulate by
	// copying the whole range by hand.
	p := binary.BigEndian.AppendUint32([]byte{'d'}, 5)
	it, _ := node.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: metastore.PrefixEnd(p)})
	for it.First(); it.Valid(); it.Next() {
		dev.Set(it.Key(), it.Value(), pebble.Sync)
	}
	it.Close()
	dev.Set(append(append([]byte(nil), p...), nsRecord, 'b', 0, 'k'), []byte("newer"), pebble.Sync)
	if err := MoveRecords(node, dev, 5); err != nil {
		t.Fatal(err)
	}
	if countPrefix(t, node, 5) != 0 {
		t.Fatal("the interrupted move left the node's copy")
	}
	s, _ := Open(5, "d5", vol, dev, nil, slog.Default())
	if v, err := s.Get(context.Background(), []byte("b\x00k")); err != nil || string(v) != "newer" {
		t.Fatalf("the device's own record was overwritten by the node's stale one: %q %v", v, err)
	}
}

func TestForgottenVolumeStartsEmptyWithANewGeneration(t *testing.T) {
	db := memDB(t, vfs.NewMem())
	vol := blockpool.NewMemVolume(8 << 20)
	s, _ := Open(2, "d2", vol, db, nil, slog.Default())
	loc := writeStream(t, s, randBlocks(1, 100, 100))
	s.Commit(context.Background())
	fresh := memDB(t, vfs.NewMem())
	if err := Forget(vol, fresh, 2); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(2, "d2", vol, fresh, nil, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	if s2.Generation() <= s.Generation() {
		t.Fatalf("generation %d after forgetting generation %d", s2.Generation(), s.Generation())
	}
	if s2.Head() != superblockSize {
		t.Fatalf("head %d: not empty", s2.Head())
	}
	if _, err := s2.ReadBlock(context.Background(), &loc, 0, make([]byte, 200)); err == nil {
		t.Fatal("a shard of the forgotten generation read back")
	}
}
