package objectstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/strata-storage/strata/blockpool"
	"github.com/strata-storage/strata/metastore"
	"github.com/strata-storage/strata/objectstore/devfault"
	"github.com/strata-storage/strata/objectstore/shard"
	"github.com/strata-storage/strata/ring"
)

type testStore struct {
	*Store
	vols []*blockpool.FaultVolume
	devs []Device
}

type quietLog struct{}

func (quietLog) Infof(string, ...any)      {}
func (quietLog) Errorf(string, ...any)     {}
func (quietLog) Fatalf(f string, a ...any) { panic(fmt.Sprintf(f, a...)) }

// editDevices swaps in an edited copy of the device list, as the node does
// (the healer and readers may be using the old one meanwhile).
func (ts *testStore) editDevices(t testing.TB, edit func([]Device)) {
	t.Helper()
	devs := append([]Device(nil), ts.allDevices()...)
	edit(devs)
	if err := ts.SetRing(ts.current.Load().ring, devs); err != nil {
		t.Fatal(err)
	}
}

func newTestStore(t testing.TB, k, m, n int, blockSize int) *testStore {
	t.Helper()
	db, err := pebble.Open("db", &pebble.Options{FS: vfs.NewMem(), Logger: quietLog{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var rdevs []ring.Device
	ts := &testStore{}
	log := slog.New(slog.DiscardHandler)
	for i := 0; i < n; i++ {
		rdevs = append(rdevs, ring.Device{ID: uint32(i), Zone: "z", Node: "n", Name: fmt.Sprint(i), Weight: 1})
		v := blockpool.NewFaultVolume(blockpool.NewMemVolume(256 << 20))
		st, err := shard.Open(uint32(i), fmt.Sprint("dev", i), v, db, nil, log)
		if err != nil {
			t.Fatal(err)
		}
		ts.vols = append(ts.vols, v)
		ts.devs = append(ts.devs, st)
	}
	r, err := ring.Build(rdevs, 4, k, m)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.BlockSize = blockSize
	cfg.InlineLimit = 1000
	cfg.Logger = log
	ts.Store, err = New(cfg, r, ts.devs, metastore.NewPebble(db, "meta/"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ts.Store.Close)
	if err := ts.CreateBucket(context.Background(), "bucket"); err != nil {
		t.Fatal(err)
	}
	return ts
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rand.IntN(256))
	}
	return b
}

func readAll(t testing.TB, s *Store, key string, off, length int64) ([]byte, error) {
	t.Helper()
	o, err := s.GetObject(context.Background(), "bucket", key)
	if err != nil {
		return nil, err
	}
	defer o.Close()
	if length < 0 {
		length = o.Info.Size - off
	}
	r := o.Reader(context.Background(), off, length)
	defer r.Close()
	return io.ReadAll(r)
}

func TestPutGetSizesAndRanges(t *testing.T) {
	ctx := context.Background()
	for _, layout := range [][2]int{{2, 2}, {3, 1}, {4, 2}, {1, 0}} {
		ts := newTestStore(t, layout[0], layout[1], 6, 64<<10)
		for _, size := range []int{0, 1, 999, 1000, 1001, 64 << 10, 64<<10 + 1, 300001} {
			for _, known := range []bool{true, false} {
				name := fmt.Sprintf("%d+%d/size%d/known%v", layout[0], layout[1], size, known)
				data := randBytes(size)
				declared := int64(size)
				if !known {
					declared = -1
				}
				info, err := ts.PutObject(ctx, "bucket", "k", bytes.NewReader(data), declared, PutOptions{})
				if err != nil {
					t.Fatalf("%s: put: %v", name, err)
				}
				if info.Size != int64(size) || info.ETag != fmt.Sprintf("%x", md5Of(data)) {
					t.Fatalf("%s: info %+v", name, info)
				}
				got, err := readAll(t, ts.Store, "k", 0, -1)
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("%s: get: %v (len %d)", name, err, len(got))
				}
				for _, r := range [][2]int64{{0, 1}, {int64(size) / 3, int64(size) / 2}, {int64(size) - 1, 1}, {65535, 2}} {
					if r[0] < 0 || r[0]+r[1] > int64(size) || r[1] <= 0 {
						continue
					}
					got, err := readAll(t, ts.Store, "k", r[0], r[1])
					if err != nil || !bytes.Equal(got, data[r[0]:r[0]+r[1]]) {
						t.Fatalf("%s: range %v: %v", name, r, err)
					}
				}
			}
		}
	}
}

func TestBodyErrors(t *testing.T) {
	ctx := context.Background()
	ts := newTestStore(t, 2, 2, 4, 64<<10)
	for _, size := range []int{10, 200000} {
		_, err := ts.PutObject(ctx, "bucket", "short", bytes.NewReader(make([]byte, size-1)), int64(size), PutOptions{})
		if !errors.Is(err, ErrIncompleteBody) {
			t.Fatalf("short body of %d: %v", size, err)
		}
	}
	if _, err := ts.HeadObject(ctx, "bucket", "short"); !errors.Is(err, ErrNoSuchKey) {
		t.Fatalf("failed put left an object: %v", err)
	}
	boom := errors.New("client went away")
	_, err := ts.PutObject(ctx, "bucket", "k", io.MultiReader(bytes.NewReader(make([]byte, 150000)), iotestErr{boom}), 300000, PutOptions{})
	if !errors.Is(err, boom) {
		t.Fatalf("reader error: %v", err)
	}
	if _, err := ts.PutObject(ctx, "nope", "k", bytes.NewReader(nil), 0, PutOptions{}); !errors.Is(err, ErrNoSuchBucket) {
		t.Fatalf("missing bucket: %v", err)
	}
}

type iotestErr struct{ err error }

func (e iotestErr) Read([]byte) (int, error) { return 0, e.err }

func TestDegradedReads(t *testing.T) {
	ctx := context.Background()
	ts := newTestStore(t, 2, 2, 4, 64<<10)
	objects := map[string][]byte{}
	for i := 0; i < 20; i++ {
		data := randBytes(rand.IntN(400000))
		key := fmt.Sprint("obj", i)
		if _, err := ts.PutObject(ctx, "bucket", key, bytes.NewReader(data), int64(len(data)), PutOptions{}); err != nil {
			t.Fatal(err)
		}
		objects[key] = data
	}
	check := func(what string) {
		t.Helper()
		for key, data := range objects {
			got, err := readAll(t, ts.Store, key, 0, -1)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("%s: %s: %v", what, key, err)
			}
		}
	}
	// Two devices return bit-flipped data: every read still comes back right.
	ts.vols[0].CorruptReads(true)
	ts.vols[3].CorruptReads(true)
	check("two corrupt devices")
	// A third one too: more than m bad shards must fail, not return garbage.
	ts.vols[1].CorruptReads(true)
	var failed int
	for key, data := range objects {
		if len(data) <= 1000 {
			continue // inline objects live in records, not on volumes
		}
		if got, err := readAll(t, ts.Store, key, 0, -1); err == nil || bytes.Equal(got, data) && len(data) > 0 {
			t.Fatalf("%s read with 3 of 4 shards corrupt: %v", key, err)
		} else if !errors.Is(err, ErrDamaged) {
			// Data loss, not a busy store: no retry brings it back.
			t.Fatalf("%s: error %v, want ErrDamaged", key, err)
		}
		// HEAD reads no data, but once the loss is known it says so too.
		if _, err := ts.HeadObject(ctx, "bucket", key); !errors.Is(err, ErrDamaged) {
			t.Fatalf("HEAD of %s after its GET found it damaged: %v", key, err)
		}
		failed++
	}
	if failed == 0 {
		t.Fatal("no object was large enough to test")
	}
	for _, v := range ts.vols {
		v.CorruptReads(false)
	}
	// The shards read right again (the fault was in the reads): a full
	// read finds every object whole, and HEAD agrees once more.
	check("corrupt reads over")
	for key := range objects {
		if _, err := ts.HeadObject(ctx, "bucket", key); err != nil {
			t.Fatalf("HEAD of %s once it reads back whole: %v", key, err)
		}
	}
	// Two devices offline: reads and listings still work.
	saved := append([]Device(nil), ts.allDevices()...)
	ts.editDevices(t, func(d []Device) { d[1], d[2] = nil, nil })
	check("two devices offline")
	res, err := ts.ListObjects(ctx, "bucket", ListOptions{MaxKeys: 1000})
	if err != nil || len(res.Objects) != 20 {
		t.Fatalf("list with 2 offline: %d %v", len(res.Objects), err)
	}
	// Writes need 3 of 4 for 2+2.
	if _, err := ts.PutObject(ctx, "bucket", "new", bytes.NewReader(randBytes(5000)), 5000, PutOptions{}); !errors.Is(err, ErrWriteQuorum) {
		t.Fatalf("write with 2 of 4 devices: %v", err)
	}
	ts.editDevices(t, func(d []Device) { d[1] = saved[1] })
	if _, err := ts.PutObject(ctx, "bucket", "new", bytes.NewReader(randBytes(5000)), 5000, PutOptions{}); err != nil {
		t.Fatalf("write with 3 of 4 devices: %v", err)
	}
}

func TestListing(t *testing.T) {
	ctx := context.Background()
	ts := newTestStore(t, 2, 1, 3, 64<<10)
	keys := []string{"a", "b/1", "b/2", "b/c/3", "c", "d/x", "d/y", "e"}
	for _, k := range keys {
		if _, err := ts.PutObject(ctx, "bucket", k, bytes.NewReader([]byte(k)), int64(len(k)), PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		opts     ListOptions
		objects  []string
		prefixes []string
		trunc    bool
	}{
		{ListOptions{MaxKeys: 100}, keys, nil, false},
		{ListOptions{Delimiter: "/", MaxKeys: 100}, []string{"a", "c", "e"}, []string{"b/", "d/"}, false},
		{ListOptions{Prefix: "b/", Delimiter: "/", MaxKeys: 100}, []string{"b/1", "b/2"}, []string{"b/c/"}, false},
		{ListOptions{Delimiter: "/", MaxKeys: 2}, []string{"a"}, []string{"b/"}, true},
		{ListOptions{Delimiter: "/", MaxKeys: 2, After: "b/"}, []string{"c"}, []string{"d/"}, true},
		{ListOptions{Delimiter: "/", MaxKeys: 2, After: "d/"}, []string{"e"}, nil, false},
		{ListOptions{Prefix: "zz", MaxKeys: 10}, nil, nil, false},
		{ListOptions{After: "b/2", MaxKeys: 2}, []string{"b/c/3", "c"}, nil, true},
	}
	for _, c := range cases {
		res, err := ts.ListObjects(ctx, "bucket", c.opts)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, o := range res.Objects {
			got = append(got, o.Key)
		}
		if fmt.Sprint(got) != fmt.Sprint(c.objects) || fmt.Sprint(res.Prefixes) != fmt.Sprint(c.prefixes) || res.Truncated != c.trunc {
			t.Errorf("%+v: got %v %v %v, want %v %v %v", c.opts, got, res.Prefixes, res.Truncated, c.objects, c.prefixes, c.trunc)
		}
	}
	if err := ts.DeleteBucket(ctx, "bucket"); !errors.Is(err, ErrBucketNotEmpty) {
		t.Fatalf("delete non-empty bucket: %v", err)
	}
	for _, k := range keys {
		if _, err := ts.DeleteObject(ctx, "bucket", k, ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := ts.DeleteBucket(ctx, "bucket"); err != nil {
		t.Fatal(err)
	}
}

func TestMultipart(t *testing.T) {
	ctx := context.Background()
	ts := newTestStore(t, 2, 2, 4, 1<<20)
	id, err := ts.CreateUpload(ctx, "bucket", "big", PutOptions{Headers: []Header{{"Content-Type", "x/y"}}})
	if err != nil {
		t.Fatal(err)
	}
	p1, p2, p3 := randBytes(MinPartSize), randBytes(MinPartSize+12345), randBytes(777)
	var etags []string
	for i, p := range [][]byte{p1, p2, p3} {
		e, err := ts.UploadPart(ctx, "bucket", "big", id, i+1, bytes.NewReader(p), int64(len(p)), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		etags = append(etags, e)
	}
	// Re-upload part 2 with other data: the newer one wins.
	p2 = randBytes(MinPartSize + 1)
	etags[1], _ = ts.UploadPart(ctx, "bucket", "big", id, 2, bytes.NewReader(p2), int64(len(p2)), nil, nil)
	parts, trunc, err := ts.ListParts(ctx, "bucket", "big", id, 0, 2)
	if err != nil || len(parts) != 2 || !trunc || parts[1].ETag != etags[1] {
		t.Fatalf("list parts: %+v %v %v", parts, trunc, err)
	}
	if _, err := ts.CompleteUpload(ctx, "bucket", "big", id, []CompletePart{{2, etags[1]}, {1, etags[0]}}, CompleteOptions{}); !errors.Is(err, ErrInvalidPartOrder) {
		t.Fatalf("unordered: %v", err)
	}
	if _, err := ts.CompleteUpload(ctx, "bucket", "big", id, []CompletePart{{1, etags[0]}, {2, "bad"}}, CompleteOptions{}); !errors.Is(err, ErrInvalidPart) {
		t.Fatalf("bad etag: %v", err)
	}
	if _, err := ts.CompleteUpload(ctx, "bucket", "big", id, []CompletePart{{3, etags[2]}, {4, etags[2]}}, CompleteOptions{}); !errors.Is(err, ErrInvalidPart) {
		t.Fatalf("missing part: %v", err)
	}
	if _, err := ts.CompleteUpload(ctx, "bucket", "big", id, []CompletePart{{3, etags[2]}, {5, etags[2]}}, CompleteOptions{}); !errors.Is(err, ErrInvalidPart) {
		t.Fatalf("missing part: %v", err)
	}
	info, err := ts.CompleteUpload(ctx, "bucket", "big", id, []CompletePart{{1, etags[0]}, {2, `"` + etags[1] + `"`}, {3, etags[2]}}, CompleteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if info.ETag[len(info.ETag)-2:] != "-3" || info.Size != int64(len(p1)+len(p2)+len(p3)) {
		t.Fatalf("info %+v", info)
	}
	want := append(append(append([]byte(nil), p1...), p2...), p3...)
	got, err := readAll(t, ts.Store, "big", 0, -1)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read completed: %v", err)
	}
	// A range across the part boundary.
	got, err = readAll(t, ts.Store, "big", int64(len(p1))-10, 20)
	if err != nil || !bytes.Equal(got, want[len(p1)-10:len(p1)+10]) {
		t.Fatalf("cross-part range: %v", err)
	}
	if _, err := ts.UploadPart(ctx, "bucket", "big", id, 1, bytes.NewReader(nil), 0, nil, nil); !errors.Is(err, ErrNoSuchUpload) {
		t.Fatalf("part after complete: %v", err)
	}
	// Abort removes another upload.
	id2, _ := ts.CreateUpload(ctx, "bucket", "gone", PutOptions{})
	ts.UploadPart(ctx, "bucket", "gone", id2, 1, bytes.NewReader(p3), int64(len(p3)), nil, nil)
	if ups, _ := ts.ListUploads(ctx, "bucket", 10); len(ups) != 1 || ups[0].UploadID != id2 {
		t.Fatalf("list uploads: %+v", ups)
	}
	if err := ts.AbortUpload(ctx, "bucket", "gone", id2); err != nil {
		t.Fatal(err)
	}
	if err := ts.AbortUpload(ctx, "bucket", "gone", id2); !errors.Is(err, ErrNoSuchUpload) {
		t.Fatalf("abort twice: %v", err)
	}
	if _, err := ts.UploadPart(ctx, "bucket", "big", id, 0, bytes.NewReader(nil), 0, nil, nil); !errors.Is(err, ErrInvalidPartNumber) {
		t.Fatalf("part 0: %v", err)
	}
}

func TestOverwriteWhileReading(t *testing.T) {
	ctx := context.Background()
	ts := newTestStore(t, 2, 2, 4, 64<<10)
	v1 := randBytes(500000)
	ts.PutObject(ctx, "bucket", "k", bytes.NewReader(v1), int64(len(v1)), PutOptions{})
	o, err := ts.GetObject(ctx, "bucket", "k")
	if err != nil {
		t.Fatal(err)
	}
	r := o.Reader(ctx, 0, o.Info.Size)
	first := make([]byte, 1000)
	io.ReadFull(r, first)
	// Overwrite and delete while the first reader is mid-stream.
	v2 := randBytes(300000)
	ts.PutObject(ctx, "bucket", "k", bytes.NewReader(v2), int64(len(v2)), PutOptions{})
	rest, err := io.ReadAll(r)
	r.Close()
	o.Close()
	if err != nil || !bytes.Equal(append(first, rest...), v1) {
		t.Fatalf("reader of the old version broke: %v", err)
	}
	if got, _ := readAll(t, ts.Store, "k", 0, -1); !bytes.Equal(got, v2) {
		t.Fatal("new version not visible")
	}
}

func BenchmarkPutGet(b *testing.B) {
	for _, size := range []int{4 << 10, 1 << 20} {
		data := randBytes(size)
		b.Run(fmt.Sprintf("put/%d", size), func(b *testing.B) {
			ts := newTestStore(b, 2, 2, 4, 1<<20)
			ts.cfg.InlineLimit = 128 << 10
			b.SetBytes(int64(size))
			for i := 0; i < b.N; i++ {
				if _, err := ts.PutObject(context.Background(), "bucket", fmt.Sprint(i%100), bytes.NewReader(data), int64(size), PutOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func waitHealed(t *testing.T, s *Store) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !s.HealIdle() {
		if time.Now().After(deadline) {
			t.Fatal("heal queue did not drain")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestHealOnRead: after a device loses everything, reading each object once
// rebuilds its shards there, so the object then survives losing the two
// devices that served the degraded reads.
func TestHealOnRead(t *testing.T) {
	ctx := context.Background()
	ts := newTestStore(t, 2, 2, 4, 64<<10)
	objects := map[string][]byte{}
	for i := 0; i < 30; i++ {
		size := []int{0, 500, 70000, 300000, 1 << 20}[i%5]
		data := randBytes(size)
		key := fmt.Sprint("obj", i)
		if _, err := ts.PutObject(ctx, "bucket", key, bytes.NewReader(data), int64(len(data)), PutOptions{}); err != nil {
			t.Fatal(err)
		}
		objects[key] = data
	}
	// A multipart object too.
	id, _ := ts.CreateUpload(ctx, "bucket", "mp", PutOptions{})
	p1, p2 := randBytes(MinPartSize), randBytes(1000)
	e1, _ := ts.UploadPart(ctx, "bucket", "mp", id, 1, bytes.NewReader(p1), int64(len(p1)), nil, nil)
	e2, _ := ts.UploadPart(ctx, "bucket", "mp", id, 2, bytes.NewReader(p2), int64(len(p2)), nil, nil)
	if _, err := ts.CompleteUpload(ctx, "bucket", "mp", id, []CompletePart{{1, e1}, {2, e2}}, CompleteOptions{}); err != nil {
		t.Fatal(err)
	}
	objects["mp"] = append(append([]byte(nil), p1...), p2...)

	// Device 1 gets a blank volume (a replaced disk); device 3's records of
	// the small objects disappear.
	fresh, err := shard.Open(1, "dev1", blockpool.NewMemVolume(256<<20), ts.Store.allDevices()[0].(*shard.Store).DB(), nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ts.editDevices(t, func(d []Device) { d[1] = fresh })
	for key, data := range objects {
		if len(data) <= 1000 {
			ts.allDevices()[3].Commit(ctx, shard.Op{Key: objectKey("bucket", key), Delete: true})
		}
	}
	for key, data := range objects {
		got, err := readAll(t, ts.Store, key, 0, -1)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("degraded read of %s: %v", key, err)
		}
	}
	waitHealed(t, ts.Store)
	if n := testutil.ToFloat64(ts.heal.healed); n < float64(len(objects)) {
		t.Fatalf("only %v shards healed for %d objects", n, len(objects))
	}
	// Now lose the two devices that carried the degraded reads.
	saved := append([]Device(nil), ts.allDevices()...)
	for _, pair := range [][2]int{{0, 2}, {2, 3}, {0, 3}} {
		ts.editDevices(t, func(d []Device) {
			copy(d, saved)
			d[pair[0]], d[pair[1]] = nil, nil
		})
		for key, data := range objects {
			got, err := readAll(t, ts.Store, key, 0, -1)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("devices %v offline after heal: %s: %v", pair, key, err)
			}
		}
	}
	ts.editDevices(t, func(d []Device) { copy(d, saved) })
	// A second round of reads finds nothing to heal.
	before := testutil.ToFloat64(ts.heal.queued)
	for key := range objects {
		readAll(t, ts.Store, key, 0, -1)
	}
	if after := testutil.ToFloat64(ts.heal.queued); after != before {
		t.Fatalf("%v heals queued after everything was repaired", after-before)
	}
}

// TestOverwritesReuseSpaceAcrossRestarts: overwriting and deleting objects
// keeps each device's address space bounded, and a store rebuilt from the
// same devices (a restart) reuses space without touching live objects.
func TestOverwritesReuseSpaceAcrossRestarts(t *testing.T) {
	ctx := context.Background()
	ts := newTestStore(t, 2, 2, 4, 64<<10)
	live := map[string][]byte{}
	round := func(r int) {
		for i := 0; i < 20; i++ {
			key := fmt.Sprint("k", i)
			if (i+r)%7 == 0 {
				ts.DeleteObject(ctx, "bucket", key, "")
				delete(live, key)
				continue
			}
			data := randBytes(200000 + i)
			if _, err := ts.PutObject(ctx, "bucket", key, bytes.NewReader(data), int64(len(data)), PutOptions{}); err != nil {
				t.Fatal(err)
			}
			live[key] = data
		}
	}
	for r := 0; r < 10; r++ {
		round(r)
	}
	heads := func() (max int64) {
		for _, d := range ts.devs {
			if h := d.(*shard.Store).Head(); h > max {
				max = h
			}
		}
		return max
	}
	h1 := heads()
	// Restart: a new Store over the same devices rebuilds free space.
	ts.Store.Close()
	s2, err := New(ts.cfg, ts.ring, ts.devs, ts.meta)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s2.Close)
	ts.Store = s2
	for key, data := range live {
		if got, err := readAll(t, s2, key, 0, -1); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s after restart: %v", key, err)
		}
	}
	for r := 10; r < 30; r++ {
		round(r)
	}
	for key, data := range live {
		if got, err := readAll(t, s2, key, 0, -1); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s after reuse: %v", key, err)
		}
	}
	// 20 more rounds wrote ~4x the live data again; the heads barely moved.
	if h2 := heads(); h2 > h1*2 {
		t.Fatalf("head grew from %d to %d: space is not reused", h1, h2)
	}
}

func TestSweepAbortsStaleUploads(t *testing.T) {
	ctx := context.Background()
	ts := newTestStore(t, 2, 2, 4, 64<<10)
	old, _ := ts.CreateUpload(ctx, "bucket", "old", PutOptions{})
	data := randBytes(200000)
	ts.UploadPart(ctx, "bucket", "old", old, 1, bytes.NewReader(data), int64(len(data)), nil, nil)
	fresh, _ := ts.CreateUpload(ctx, "bucket", "fresh", PutOptions{})
	headsBefore := map[int]int64{}
	for i, d := range ts.devs {
		headsBefore[i] = d.(*shard.Store).Head()
	}
	// A week and a day later (the default age is a week) both are stale.
	n, err := ts.SweepUploads(ctx, time.Now().Add(8*24*time.Hour))
	if err != nil || n != 2 {
		t.Fatalf("sweep a week later: %d %v (both are older than a week then)", n, err)
	}
	if _, _, err := ts.ListParts(ctx, "bucket", "old", old, 0, 10); !errors.Is(err, ErrNoSuchUpload) {
		t.Fatalf("stale upload survived: %v", err)
	}
	// A sweep "now" aborts nothing younger than the age.
	keep, _ := ts.CreateUpload(ctx, "bucket", "keep", PutOptions{})
	if n, _ := ts.SweepUploads(ctx, time.Now()); n != 0 {
		t.Fatalf("sweep aborted %d fresh uploads", n)
	}
	if _, _, err := ts.ListParts(ctx, "bucket", "keep", keep, 0, 10); err != nil {
		t.Fatalf("fresh upload gone: %v", err)
	}
	_ = fresh
	// The aborted part's space is reusable: a new object of the same size
	// does not grow any device's head.
	ts.PutObject(ctx, "bucket", "after", bytes.NewReader(data), int64(len(data)), PutOptions{})
	for i, d := range ts.devs {
		if h := d.(*shard.Store).Head(); h > headsBefore[i] {
			t.Fatalf("device %d head grew from %d to %d after the sweep freed space", i, headsBefore[i], h)
		}
	}
}

// TestFailedQuorumLeavesOldVersion: a write that reaches fewer than a write
// quorum of devices (here 2 of 4 for 2+2: two devices fail their fsync) must
// fail without hiding the previous version behind records whose shards
// were freed.
func TestFailedQuorumLeavesOldVersion(t *testing.T) {
	ctx := context.Background()
	for _, size := range []int{500, 300000} { // inline and streamed
		ts := newTestStore(t, 2, 2, 4, 64<<10)
		v1 := randBytes(size)
		if _, err := ts.PutObject(ctx, "bucket", "k", bytes.NewReader(v1), int64(len(v1)), PutOptions{}); err != nil {
			t.Fatal(err)
		}
		// Two devices fail their next fsync and go offline.
		ts.vols[0].FailSync(true)
		ts.vols[1].FailSync(true)
		for _, d := range ts.devs[:2] {
			w := d.NewWriter(ctx, 1)
			w.Append(make([]byte, shard.HeaderSize+1))
			w.Finish() // trips the sticky sync error
		}
		v2 := randBytes(size)
		if _, err := ts.PutObject(ctx, "bucket", "k", bytes.NewReader(v2), int64(len(v2)), PutOptions{}); !errors.Is(err, ErrWriteQuorum) {
			t.Fatalf("size %d: write on 2 of 4 devices: %v", size, err)
		}
		got, err := readAll(t, ts.Store, "k", 0, -1)
		if err != nil || !bytes.Equal(got, v1) {
			t.Fatalf("size %d: after a failed overwrite the object reads %v (len %d), want the old version", size, err, len(got))
		}
	}
	// The same for completing a multipart upload: the upload survives. And a
	// part re-upload short of quorum leaves the earlier part in place.
	ts := newTestStore(t, 2, 2, 4, 64<<10)
	id, _ := ts.CreateUpload(ctx, "bucket", "mp", PutOptions{})
	p1 := randBytes(1000)
	e1, _ := ts.UploadPart(ctx, "bucket", "mp", id, 1, bytes.NewReader(p1), int64(len(p1)), nil, nil)
	ts.vols[2].FailSync(true)
	ts.vols[3].FailSync(true)
	if _, err := ts.UploadPart(ctx, "bucket", "mp", id, 1, bytes.NewReader(randBytes(1000)), 1000, nil, nil); !errors.Is(err, ErrWriteQuorum) {
		t.Fatalf("part upload on 2 of 4 devices: %v", err)
	}
	if parts, _, _ := ts.ListParts(ctx, "bucket", "mp", id, 0, 10); len(parts) != 1 || parts[0].ETag != e1 {
		t.Fatalf("a failed part re-upload replaced the part: %+v", parts)
	}
	ts.vols[3].FailSync(true)
	for _, d := range ts.devs[2:] {
		w := d.NewWriter(ctx, 1)
		w.Append(make([]byte, shard.HeaderSize+1))
		w.Finish()
	}
	if _, err := ts.CompleteUpload(ctx, "bucket", "mp", id, []CompletePart{{1, e1}}, CompleteOptions{}); !errors.Is(err, ErrWriteQuorum) {
		t.Fatalf("complete on 2 of 4 devices: %v", err)
	}
	if _, err := ts.HeadObject(ctx, "bucket", "mp"); !errors.Is(err, ErrNoSuchKey) {
		t.Fatalf("a failed complete left a visible object: %v", err)
	}
	if parts, _, err := ts.ListParts(ctx, "bucket", "mp", id, 0, 10); err != nil || len(parts) != 1 {
		t.Fatalf("the upload did not survive a failed complete: %v %v", parts, err)
	}
}

func TestPartialCommitIsRolledBack(t *testing.T) {
	ctx := context.Background()
	ts := newTestStore(t, 2, 2, 4, 64<<10)
	// Shard writes work on every device; the metadata commits of two fail.
	inj := devfault.New()
	ts.editDevices(t, func(d []Device) {
		for i := range d {
			d[i] = inj.Wrap(d[i])
		}
	})
	v1 := randBytes(300000)
	if _, err := ts.PutObject(ctx, "bucket", "k", bytes.NewReader(v1), int64(len(v1)), PutOptions{}); err != nil {
		t.Fatal(err)
	}
	id, _ := ts.CreateUpload(ctx, "bucket", "mp", PutOptions{})
	p1 := randBytes(200000)
	e1, _ := ts.UploadPart(ctx, "bucket", "mp", id, 1, bytes.NewReader(p1), int64(len(p1)), nil, nil)

	failing := inj.Add(devfault.Rule{Ops: []devfault.Op{devfault.Commit}, Devices: []string{ts.devs[1].Name(), ts.devs[3].Name()}})
	if _, err := ts.PutObject(ctx, "bucket", "k", bytes.NewReader(randBytes(300000)), 300000, PutOptions{}); !errors.Is(err, ErrWriteQuorum) {
		t.Fatalf("streamed overwrite committed on 2 of 4: %v", err)
	}
	if _, err := ts.UploadPart(ctx, "bucket", "mp", id, 1, bytes.NewReader(randBytes(200000)), 200000, nil, nil); !errors.Is(err, ErrWriteQuorum) {
		t.Fatalf("part re-upload committed on 2 of 4: %v", err)
	}
	failing()
	// Even with the two devices that did commit offline, the old version
	// and the old part read back: their records were restored and their
	// shards never freed.
	got, err := readAll(t, ts.Store, "k", 0, -1)
	if err != nil || !bytes.Equal(got, v1) {
		t.Fatalf("object after a rolled-back overwrite: %v", err)
	}
	if _, err := ts.CompleteUpload(ctx, "bucket", "mp", id, []CompletePart{{1, e1}}, CompleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, err := readAll(t, ts.Store, "mp", 0, -1); err != nil || !bytes.Equal(got, p1) {
		t.Fatalf("completed upload after a rolled-back part: %v", err)
	}
}

func TestVersioning(t *testing.T) {
	ctx := context.Background()
	ts := newTestStore(t, 2, 2, 4, 64<<10)
	read := func(vid string) ([]byte, error) {
		o, err := ts.GetObjectVersion(ctx, "bucket", "k", vid)
		if err != nil {
			return nil, err
		}
		defer o.Close()
		r := o.Reader(ctx, 0, o.Info.Size)
		defer r.Close()
		return io.ReadAll(r)
	}
	put := func(data []byte) string {
		info, err := ts.PutObject(ctx, "bucket", "k", bytes.NewReader(data), int64(len(data)), PutOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return info.VersionID
	}
	versions := func() (out []string) {
		res, err := ts.ListObjectVersions(ctx, "bucket", VersionListOptions{MaxKeys: 100})
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range res.Versions {
			s := apiVersion(v.VersionID)
			if v.DeleteMarker {
				s = "marker:" + s
			}
			if v.IsLatest {
				s += "*"
			}
			out = append(out, s)
		}
		return out
	}
	v0 := randBytes(300000) // streamed, so freeing mistakes show
	if vid := put(v0); vid != "" {
		t.Fatalf("unversioned bucket gave version %q", vid)
	}
	if err := ts.SetBucketVersioning(ctx, "bucket", "Enabled"); err != nil {
		t.Fatal(err)
	}
	v1, v2 := randBytes(200000), randBytes(500)
	id1, id2 := put(v1), put(v2)
	if id1 == "" || id2 == "" || id1 == id2 {
		t.Fatalf("version ids %q %q", id1, id2)
	}
	for vid, want := range map[string][]byte{"": v2, id2: v2, id1: v1, "null": v0} {
		if got, err := read(vid); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("version %q: %v", vid, err)
		}
	}
	if got := fmt.Sprint(versions()); got != fmt.Sprintf("[%s* %s null]", id2, id1) {
		t.Fatalf("versions %s", got)
	}
	// A delete without a version id leaves a marker.
	res, err := ts.DeleteObject(ctx, "bucket", "k", "")
	if err != nil || !res.DeleteMarker || res.VersionID == "" {
		t.Fatalf("versioned delete: %+v %v", res, err)
	}
	marker := res.VersionID
	var dm *DeleteMarkerError
	if _, err := read(""); !errors.As(err, &dm) || !errors.Is(err, ErrNoSuchKey) || dm.ByVersion {
		t.Fatalf("GET after delete: %v", err)
	}
	if _, err := read(marker); !errors.As(err, &dm) || !dm.ByVersion {
		t.Fatalf("GET of the marker by version: %v", err)
	}
	if l, _ := ts.ListObjects(ctx, "bucket", ListOptions{MaxKeys: 10}); len(l.Objects) != 0 {
		t.Fatal("a deleted key is listed")
	}
	if got := fmt.Sprint(versions()); got != fmt.Sprintf("[marker:%s* %s %s null]", marker, id2, id1) {
		t.Fatalf("versions after delete %s", got)
	}
	if err := ts.DeleteBucket(ctx, "bucket"); !errors.Is(err, ErrBucketNotEmpty) {
		t.Fatalf("delete bucket holding versions: %v", err)
	}
	// Removing the marker brings the newest version back; removing the
	// current version promotes the next.
	if res, err := ts.DeleteObject(ctx, "bucket", "k", marker); err != nil || !res.DeleteMarker {
		t.Fatalf("remove marker: %+v %v", res, err)
	}
	if got, _ := read(""); !bytes.Equal(got, v2) {
		t.Fatal("newest version not back after removing the marker")
	}
	ts.DeleteObject(ctx, "bucket", "k", id2)
	if got, _ := read(""); !bytes.Equal(got, v1) {
		t.Fatal("older version not promoted")
	}
	ts.DeleteObject(ctx, "bucket", "k", "null")
	if _, err := read("null"); !errors.Is(err, ErrNoSuchVersion) {
		t.Fatalf("removed null version: %v", err)
	}
	if got := fmt.Sprint(versions()); got != fmt.Sprintf("[%s*]", id1) {
		t.Fatalf("versions now %s", got)
	}
	// Suspended: new writes are the null version, replacing each other but
	// keeping older versioned ones.
	ts.SetBucketVersioning(ctx, "bucket", "Suspended")
	v3, v4 := randBytes(100000), randBytes(100)
	if vid := put(v3); vid != "" {
		t.Fatalf("suspended write got version %q", vid)
	}
	put(v4)
	if got := fmt.Sprint(versions()); got != fmt.Sprintf("[null* %s]", id1) {
		t.Fatalf("suspended versions %s", got)
	}
	if got, _ := read(id1); !bytes.Equal(got, v1) {
		t.Fatal("versioned object damaged by suspended writes")
	}
	if got, _ := read(""); !bytes.Equal(got, v4) {
		t.Fatal("latest suspended write not current")
	}
	// Removing everything empties the bucket.
	ts.DeleteObject(ctx, "bucket", "k", "null")
	ts.DeleteObject(ctx, "bucket", "k", id1)
	if got := versions(); len(got) != 0 {
		t.Fatalf("versions left: %v", got)
	}
	if err := ts.DeleteBucket(ctx, "bucket"); err != nil {
		t.Fatalf("delete emptied bucket: %v", err)
	}
}

// Unfinished uploads do not keep a bucket from being deleted: they go
// with it, parts and space too, and a bucket of the same name made later
// has none of them.
func TestDeleteBucketAbortsItsUploads(t *testing.T) {
	ctx := context.Background()
	ts := newTestStore(t, 2, 2, 4, 1<<20)
	used := func() (n int64) {
		for _, d := range ts.devs {
			n += d.(*shard.Store).Used()
		}
		return n
	}
	before := used()
	for i := 0; i < 3; i++ {
		id, err := ts.CreateUpload(ctx, "bucket", fmt.Sprint("up", i), PutOptions{})
		if err != nil {
			t.Fatal(err)
		}
		p := randBytes(MinPartSize)
		if _, err := ts.UploadPart(ctx, "bucket", fmt.Sprint("up", i), id, 1, bytes.NewReader(p), int64(len(p)), nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	if used() <= before {
		t.Fatal("parts took no space")
	}
	if err := ts.DeleteBucket(ctx, "bucket"); err != nil {
		t.Fatalf("delete a bucket holding only uploads: %v", err)
	}
	if used() != before {
		t.Fatalf("parts' space not given back: %d bytes used, %d before", used(), before)
	}
	if err := ts.CreateBucket(ctx, "bucket"); err != nil {
		t.Fatal(err)
	}
	if ups, err := ts.ListUploads(ctx, "bucket", 10); err != nil || len(ups) != 0 {
		t.Fatalf("the new bucket has uploads: %v %v", ups, err)
	}
}
