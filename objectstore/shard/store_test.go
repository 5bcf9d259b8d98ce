package shard

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/strata-storage/strata/blockpool"
	"github.com/strata-storage/strata/diskspace"
	"github.com/strata-storage/strata/metastore"
)

func memDB(t *testing.T, fs vfs.FS) *pebble.DB {
	t.Helper()
	db, err := pebble.Open("db", &pebble.Options{FS: fs, Logger: quiet{}})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

type quiet struct{}

func (quiet) Infof(string, ...any)      {}
func (quiet) Errorf(string, ...any)     {}
func (quiet) Fatalf(f string, a ...any) { panic(f) }

func record(data []byte) []byte { return append(make([]byte, HeaderSize), data...) }

func writeStream(t *testing.T, s *Store, blocks [][]byte) Locator {
	t.Helper()
	w := s.NewWriter(context.Background(), -1)
	for _, b := range blocks {
		if err := w.Append(record(b)); err != nil {
			t.Fatal(err)
		}
	}
	loc, err := w.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func randBlocks(n, size, last int) [][]byte {
	var out [][]byte
	for i := 0; i < n; i++ {
		l := size
		if i == n-1 {
			l = last
		}
		b := make([]byte, l)
		for j := range b {
			b[j] = byte(rand.IntN(256))
		}
		out = append(out, b)
	}
	return out
}

func TestWriteReadVerify(t *testing.T) {
	fs := vfs.NewMem()
	db := memDB(t, fs)
	m := NewMetrics(nil)
	vol := blockpool.NewFaultVolume(blockpool.NewMemVolume(64 << 20))
	s, err := Open(1, "dev1", vol, db, m, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	blocks := randBlocks(5, 100000, 1234)
	loc := writeStream(t, s, blocks)
	if loc.Size() != 4*100000+1234 {
		t.Fatalf("size %d", loc.Size())
	}
	enc := loc.AppendBinary(nil)
	got, rest, err := DecodeLocator(append(enc, 'x'))
	if err != nil || string(rest) != "x" || len(got.Offsets) != 5 || got.Offsets[4] != loc.Offsets[4] {
		t.Fatalf("locator round trip: %+v %q %v", got, rest, err)
	}
	if len(enc) > 30 {
		t.Errorf("contiguous locator of 5 blocks takes %d bytes", len(enc))
	}
	buf := make([]byte, HeaderSize+100000)
	for i, b := range blocks {
		data, err := s.ReadBlock(context.Background(), &got, i, buf)
		if err != nil || !bytes.Equal(data, b) {
			t.Fatalf("block %d: %v", i, err)
		}
	}
	vol.CorruptReads(true)
	if _, err := s.ReadBlock(context.Background(), &got, 2, buf); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("corrupt read: %v", err)
	}
	vol.CorruptReads(false)
	if n := testutil.ToFloat64(m.ChecksumErrors.WithLabelValues("dev1")); n != 1 {
		t.Fatalf("checksum error counter %v", n)
	}
	// A locator pointing at another stream's record is refused.
	other := writeStream(t, s, randBlocks(1, 100, 100))
	forged := got
	forged.Offsets = []int64{other.Offsets[0]}
	forged.BlockLen, forged.LastLen = 100, 100
	if _, err := s.ReadBlock(context.Background(), &forged, 0, buf); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("foreign record: %v", err)
	}
	// Freed space reads back as zeroes, which fail verification.
	if err := s.Free(context.Background(), got); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReadBlock(context.Background(), &got, 0, buf); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("read freed: %v", err)
	}
}

func TestCommitIterAndReopen(t *testing.T) {
	ctx := context.Background()
	fs := vfs.NewMem()
	db := memDB(t, fs)
	vol := blockpool.NewMemVolume(8 << 20)
	s, _ := Open(7, "d7", vol, db, nil, slog.Default())
	loc := writeStream(t, s, randBlocks(2, 1000, 10))
	if err := s.Commit(ctx, Op{Key: []byte("b\x00k1"), Value: loc.AppendBinary(nil)}, Op{Key: []byte("b\x00k2"), Value: []byte("v2")}); err != nil {
		t.Fatal(err)
	}
	s2, _ := Open(8, "d8", blockpool.NewMemVolume(8<<20), db, nil, slog.Default())
	s2.Commit(ctx, Op{Key: []byte("b\x00zz"), Value: []byte("other device")})

	it, _ := s.Iter(ctx, []byte("b\x00"), []byte("b\x01"))
	var keys []string
	for ; it.Valid(); it.Next() {
		keys = append(keys, string(it.Key()))
	}
	it.Close()
	if len(keys) != 2 || keys[0] != "b\x00k1" {
		t.Fatalf("iter keys %q", keys)
	}
	s.Commit(ctx, Op{Key: []byte("b\x00k2"), Delete: true})
	if _, err := s.Get(ctx, []byte("b\x00k2")); !errors.Is(err, metastore.ErrNotFound) {
		t.Fatalf("deleted record: %v", err)
	}

	// Reopen: the head survives, so new streams never overwrite old ones.
	s, err := Open(7, "d7", vol, db, nil, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	loc2 := writeStream(t, s, randBlocks(1, 500, 500))
	if loc2.Offsets[0] < loc.Offsets[1]+HeaderSize+10 {
		t.Fatalf("new stream at %d overlaps committed stream ending %d", loc2.Offsets[0], loc.Offsets[1]+HeaderSize+10)
	}
	buf := make([]byte, 2000)
	if _, err := s.ReadBlock(context.Background(), &loc, 0, buf); err != nil {
		t.Fatalf("old stream after reopen: %v", err)
	}
}

func TestReplacedVolumeReadsAsMissing(t *testing.T) {
	fs := vfs.NewMem()
	db := memDB(t, fs)
	s, _ := Open(1, "d1", blockpool.NewMemVolume(8<<20), db, nil, slog.Default())
	loc := writeStream(t, s, randBlocks(1, 100, 100))
	s.Commit(context.Background())
	// The disk is swapped for an empty one.
	s, err := Open(1, "d1", blockpool.NewMemVolume(8<<20), db, nil, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReadBlock(context.Background(), &loc, 0, make([]byte, 200)); !errors.Is(err, ErrMissing) {
		t.Fatalf("old-generation read: %v", err)
	}
	// A volume with a damaged superblock is refused, not reformatted.
	bad := blockpool.NewMemVolume(8 << 20)
	bad.WriteAt([]byte("garbage!"), 0)
	if _, err := Open(1, "d1", bad, db, nil, slog.Default()); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("bad superblock: %v", err)
	}
}

func TestCrashLosesOnlyUncommitted(t *testing.T) {
	ctx := context.Background()
	fs := vfs.NewCrashableMem()
	db := memDB(t, fs)
	vol := blockpool.NewMemVolume(8 << 20)
	s, _ := Open(1, "d1", vol, db, nil, slog.Default())
	blocks := randBlocks(3, 4096, 100)
	loc := writeStream(t, s, blocks)
	s.Commit(ctx, Op{Key: []byte("acked"), Value: loc.AppendBinary(nil)})
	// A second stream is written and synced but its record never committed.
	writeStream(t, s, randBlocks(2, 4096, 4096))

	crashFS := fs.CrashClone(vfs.CrashCloneCfg{})
	vol.Crash()
	db2 := memDB(t, crashFS)
	s2, err := Open(1, "d1", vol, db2, nil, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	v, err := s2.Get(ctx, []byte("acked"))
	if err != nil {
		t.Fatal(err)
	}
	got, _, _ := DecodeLocator(v)
	buf := make([]byte, 5000)
	for i, b := range blocks {
		data, err := s2.ReadBlock(context.Background(), &got, i, buf)
		if err != nil || !bytes.Equal(data, b) {
			t.Fatalf("acknowledged block %d after crash: %v", i, err)
		}
	}
}

func TestSyncFailureTakesDeviceOffline(t *testing.T) {
	db := memDB(t, vfs.NewMem())
	vol := blockpool.NewFaultVolume(blockpool.NewMemVolume(8 << 20))
	s, _ := Open(1, "d1", vol, db, nil, slog.Default())
	vol.FailSync(true)
	w := s.NewWriter(context.Background(), 10)
	w.Append(record([]byte("0123456789")))
	if _, err := w.Finish(); !errors.Is(err, ErrOffline) {
		t.Fatalf("finish with failing fsync: %v", err)
	}
	vol.FailSync(false)
	if err := s.Commit(context.Background()); !errors.Is(err, ErrOffline) {
		t.Fatalf("commit after failed fsync: %v", err)
	}
}

func TestFullVolume(t *testing.T) {
	db := memDB(t, vfs.NewMem())
	s, _ := Open(1, "d1", blockpool.NewMemVolume(superblockSize+1000), db, nil, slog.Default())
	w := s.NewWriter(context.Background(), -1)
	if err := w.Append(record(make([]byte, 2000))); !errors.Is(err, ErrFull) {
		t.Fatalf("append past end: %v", err)
	}
}

func FuzzDecodeLocator(f *testing.F) {
	l := Locator{Generation: 3, WriterID: 99, BlockLen: 10, LastLen: 4, Offsets: []int64{4096, 4138, 9000}}
	f.Add(l.AppendBinary(nil))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		l, _, err := DecodeLocator(b)
		if err == nil {
			again, _, err := DecodeLocator(l.AppendBinary(nil))
			if err != nil || len(again.Offsets) != len(l.Offsets) {
				t.Fatalf("re-encode failed: %v", err)
			}
		}
	})
}

func TestSpaceIsReusedAndRebuiltOnOpen(t *testing.T) {
	ctx := context.Background()
	db := memDB(t, vfs.NewMem())
	vol := blockpool.NewMemVolume(64 << 20)
	s, _ := Open(1, "d1", vol, db, nil, slog.Default())
	// Write and free many streams: the head must stop growing.
	var keep []Locator
	for i := 0; i < 200; i++ {
		loc := writeStream(t, s, randBlocks(3, 50000, 1234))
		if i%10 == 0 {
			keep = append(keep, loc)
			s.Commit(ctx, Op{Key: []byte(fmt.Sprint("k", i)), Value: loc.AppendBinary(nil)})
		} else if err := s.Free(ctx, loc); err != nil {
			t.Fatal(err)
		}
	}
	live := int64(len(keep)) * (3*HeaderSize + 2*50000 + 1234)
	if s.head > 3*live+16<<20 {
		t.Fatalf("head %d for %d live bytes: freed space is not reused", s.head, live)
	}
	// Reopen: nothing referenced becomes free, everything else does.
	s2, err := Open(1, "d1", vol, db, nil, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	err = s2.RebuildFreeSpace(walkAll(s2))
	if err != nil {
		t.Fatal(err)
	}
	if s2.free.bytes == 0 || s2.free.bytes > s2.head-superblockSize-live+1 {
		t.Fatalf("rebuilt free space %d, head %d, live %d", s2.free.bytes, s2.head, live)
	}
	// Fill the volume with new streams; the kept ones must stay intact.
	for {
		w := s2.NewWriter(ctx, -1)
		if err := w.Append(record(make([]byte, 100000))); err != nil {
			if !errors.Is(err, ErrFull) {
				t.Fatal(err)
			}
			break
		}
		if _, err := w.Finish(); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 60000)
	for _, loc := range keep {
		for i := range loc.Offsets {
			if _, err := s2.ReadBlock(context.Background(), &loc, i, buf); err != nil {
				t.Fatalf("kept stream damaged by reuse: %v", err)
			}
		}
	}
}

func TestConditionalCommit(t *testing.T) {
	ctx := context.Background()
	s, _ := Open(3, "d3", blockpool.NewMemVolume(1<<20), memDB(t, vfs.NewMem()), nil, slog.Default())
	k, other := []byte("key"), []byte("other")
	steps := []struct {
		name    string
		ops     []Op
		want    error
		key     string // value of k afterwards ("" = absent)
		otherIs string
	}{
		{"create if absent", []Op{{Key: k, Value: []byte("v1"), Check: true}}, nil, "v1", ""},
		{"create if absent again", []Op{{Key: k, Value: []byte("v2"), Check: true}}, ErrConflict, "v1", ""},
		{"replace a stale value, with another op", []Op{{Key: k, Value: []byte("v2"), Check: true, Expect: []byte("v0")}, {Key: other, Value: []byte("x")}}, ErrConflict, "v1", ""},
		{"replace the current value", []Op{{Key: k, Value: []byte("v2"), Check: true, Expect: []byte("v1")}, {Key: other, Value: []byte("x")}}, nil, "v2", "x"},
		{"delete a stale value", []Op{{Key: k, Delete: true, Check: true, Expect: []byte("v1")}}, ErrConflict, "v2", "x"},
		{"delete the current value", []Op{{Key: k, Delete: true, Check: true, Expect: []byte("v2")}}, nil, "", "x"},
		{"unconditional", []Op{{Key: k, Value: []byte("v3")}}, nil, "v3", "x"},
	}
	for _, st := range steps {
		err := s.Commit(ctx, st.ops...)
		if !errors.Is(err, st.want) || (st.want == nil) != (err == nil) {
			t.Fatalf("%s: %v, want %v", st.name, err, st.want)
		}
		got, _ := s.Get(ctx, k)
		o, _ := s.Get(ctx, other)
		if string(got) != st.key || string(o) != st.otherIs {
			t.Fatalf("%s: key=%q other=%q, want %q %q (nothing half-applied)", st.name, got, o, st.key, st.otherIs)
		}
	}
	// Racing conditional writers of one key: exactly one wins each round.
	for round := 0; round < 20; round++ {
		cur, _ := s.Get(ctx, k)
		var wins atomic.Int32
		var wg sync.WaitGroup
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if s.Commit(ctx, Op{Key: k, Value: []byte(fmt.Sprint(round, w)), Check: true, Expect: cur}) == nil {
					wins.Add(1)
				}
			}()
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("round %d: %d writers won", round, wins.Load())
		}
	}
}

func walkAll(s *Store) func(yield func(*Locator)) error {
	return func(yield func(*Locator)) error {
		it, err := s.Iter(context.Background(), nil, nil)
		if err != nil {
			return err
		}
		for ; it.Valid(); it.Next() {
			l, _, err := DecodeLocator(it.Value())
			if err != nil {
				it.Close()
				return err
			}
			yield(&l)
		}
		return it.Close()
	}
}

// TestCrosswiseCommitsNeverLowerTheHead is the power-loss finding of issue
// 16 in its sharpest form: commit A reads the head, stalls, commit B (whose
// stream lies past A's head) commits, then A applies. Before commits were
// ordered, A's batch stored the lower head last; a power cut then left B's
// acknowledged shards past the head, where the next start trimmed them.
func TestCrosswiseCommitsNeverLowerTheHead(t *testing.T) {
	ctx := context.Background()
	fs := vfs.NewCrashableMem()
	db := memDB(t, fs)
	vol := blockpool.NewMemVolume(8 << 20)
	s, err := Open(1, "d1", vol, db, nil, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	// B is larger than the unused tail of A's extent, so it grows the head.
	blocksA, blocksB := randBlocks(2, 8192, 100), randBlocks(3, 120000, 500)
	locA := writeStream(t, s, blocksA)

	// A stalls after reading the head, before applying its batch.
	stalled, release := make(chan struct{}), make(chan struct{})
	var first atomic.Bool
	s.beforeApply = func() {
		if first.CompareAndSwap(false, true) {
			close(stalled)
			<-release
		}
	}
	aDone := make(chan error, 1)
	go func() { aDone <- s.Commit(ctx, Op{Key: []byte("a"), Value: locA.AppendBinary(nil)}) }()
	<-stalled
	// B's stream is reserved past the head A read, and B commits while A
	// is stalled. With ordered commits it waits for A; the test lets A go
	// once B is done or has had ample time to be.
	locB := writeStream(t, s, blocksB)
	endB := locB.Offsets[len(locB.Offsets)-1] + HeaderSize + int64(locB.LastLen)
	bDone := make(chan error, 1)
	go func() { bDone <- s.Commit(ctx, Op{Key: []byte("b"), Value: locB.AppendBinary(nil)}) }()
	select {
	case err := <-bDone:
		bDone <- err
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	if err := <-aDone; err != nil {
		t.Fatal(err)
	}
	if err := <-bDone; err != nil {
		t.Fatal(err)
	}

	// Power cut after both were acknowledged.
	crashFS := fs.CrashClone(vfs.CrashCloneCfg{})
	image := vol.CrashClone()
	db2 := memDB(t, crashFS)
	s2, err := Open(1, "d1", image, db2, nil, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	if head, _ := s2.getState("head"); int64(head) < endB {
		t.Fatalf("committed head %d lies below the end %d of an acknowledged stream", head, endB)
	}
	if err := s2.RebuildFreeSpace(walkAll(s2)); err != nil {
		t.Fatal(err)
	}
	// New writes must not land on B either.
	for i := 0; i < 4; i++ {
		writeStream(t, s2, randBlocks(2, 8192, 8192))
	}
	buf := make([]byte, 120000+HeaderSize)
	for _, c := range []struct {
		key    string
		blocks [][]byte
	}{{"a", blocksA}, {"b", blocksB}} {
		v, err := s2.Get(ctx, []byte(c.key))
		if err != nil {
			t.Fatal(err)
		}
		loc, _, _ := DecodeLocator(v)
		for i, b := range c.blocks {
			if data, err := s2.ReadBlock(context.Background(), &loc, i, buf); err != nil || !bytes.Equal(data, b) {
				t.Fatalf("acknowledged %s block %d after the cut: %v", c.key, i, err)
			}
		}
	}
}

// TestLaggingHeadIsRaisedToTheRecords: a data dir whose stored head lags
// behind a record (written before commits were ordered) keeps that
// record's shards at start: nothing referenced is trimmed or reused.
func TestLaggingHeadIsRaisedToTheRecords(t *testing.T) {
	ctx := context.Background()
	db := memDB(t, vfs.NewMem())
	vol := blockpool.NewMemVolume(8 << 20)
	s, _ := Open(1, "d1", vol, db, nil, slog.Default())
	blocks := randBlocks(3, 8192, 700)
	loc := writeStream(t, s, blocks)
	if err := s.Commit(ctx, Op{Key: []byte("k"), Value: loc.AppendBinary(nil)}); err != nil {
		t.Fatal(err)
	}
	// Store the head as it was before the stream was reserved.
	if err := db.Set(s.key(nsState, []byte("head")), binary.BigEndian.AppendUint64(nil, superblockSize), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(1, "d1", vol, db, nil, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.RebuildFreeSpace(walkAll(s2)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		writeStream(t, s2, randBlocks(2, 8192, 8192))
	}
	buf := make([]byte, 8192+HeaderSize)
	for i, b := range blocks {
		if data, err := s2.ReadBlock(context.Background(), &loc, i, buf); err != nil || !bytes.Equal(data, b) {
			t.Fatalf("block %d behind a lagging head: %v", i, err)
		}
	}
}

// On a filesystem down to its reserve, shard data and record writes are
// refused with ErrFull, and a commit marked UseReserve (a delete) goes on.
func TestFullFilesystemRefusesWritesButNotDeletes(t *testing.T) {
	ctx := context.Background()
	db := memDB(t, vfs.NewMem())
	s, _ := Open(1, "d1", blockpool.NewMemVolume(8<<20), db, nil, slog.Default())
	loc := writeStream(t, s, randBlocks(1, 1000, 1000))
	if err := s.Commit(ctx, Op{Key: []byte("k"), Value: loc.AppendBinary(nil)}); err != nil {
		t.Fatal(err)
	}
	full := diskspace.New("/", diskspace.Reserve{Min: 1 << 30}, func(string) (int64, int64, error) { return 2 << 30, 1 << 29, nil })
	s.SetSpace(full, full)
	w := s.NewWriter(ctx, -1)
	if err := w.Append(record(make([]byte, 100))); !errors.Is(err, ErrFull) {
		t.Fatalf("shard data on a full filesystem: %v", err)
	}
	w.Abort()
	if err := s.Commit(ctx, Op{Key: []byte("new"), Value: []byte("v")}); !errors.Is(err, ErrFull) {
		t.Fatalf("a record on a full filesystem: %v", err)
	}
	if err := s.Commit(UseReserve(ctx), Op{Key: []byte("marker"), Value: []byte("delete marker")}, Op{Key: []byte("k"), Delete: true}); err != nil {
		t.Fatalf("a delete on a full filesystem: %v", err)
	}
	if err := s.Commit(ctx, Op{Key: []byte("marker"), Delete: true}); err != nil {
		t.Fatalf("a pure delete on a full filesystem: %v", err)
	}
}
