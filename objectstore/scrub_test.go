package objectstore

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/strata-storage/strata/objectstore/shard"
	"github.com/strata-storage/strata/ring"
)

// rot flips bytes inside the first block of shard i of bucket/key, on the
// device's volume underneath the shard store.
func (ts *testStore) rot(t *testing.T, key string, i int, rng *rand.Rand) {
	t.Helper()
	ts.rotRecord(t, key, objectKey("bucket", key), i, rng)
}

// rotRecord damages shard i of the record stored under recKey.
func (ts *testStore) rotRecord(t *testing.T, key string, recKey []byte, i int, rng *rand.Rand) {
	t.Helper()
	d := ts.placement("bucket", key)[i]
	di := slices.Index(ts.devs, d)
	raw, err := d.Get(context.Background(), recKey)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := UnmarshalRecord(raw)
	if err != nil || len(rec.Parts) == 0 {
		t.Fatalf("%s shard %d: no parts (%v)", key, i, err)
	}
	loc := rec.Parts[0].Loc
	off := loc.Offsets[0] + shard.HeaderSize + int64(rng.IntN(loc.DataLen(0)))
	b := make([]byte, 1)
	ts.vols[di].ReadAt(b, off)
	b[0] ^= byte(1 + rng.IntN(255))
	ts.vols[di].WriteAt(b, off)
}

func (ts *testStore) scrubAll(t *testing.T) ScrubStats {
	t.Helper()
	var total ScrubStats
	for _, d := range ts.devs {
		st, next, err := ts.ScrubDevice(context.Background(), d, ScrubOptions{})
		if err != nil || next != nil {
			t.Fatalf("scrub %s: %v (next %q)", d.Name(), err, next)
		}
		total.Add(st)
	}
	return total
}

func TestScrubFindsAndRepairsRot(t *testing.T) {
	ctx := context.Background()
	ts := newTestStore(t, 2, 2, 4, 64<<10)
	rng := rand.New(rand.NewPCG(1, 2))
	const objects = 1000
	data := make([][]byte, objects)
	for i := range objects {
		data[i] = randBytes(2000 + rng.IntN(150000))
		if _, err := ts.PutObject(ctx, "bucket", fmt.Sprint("o", i), bytes.NewReader(data[i]), int64(len(data[i])), PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// 200 bad shard records spread over the devices, never more than M
	// of one object.
	perObject := map[int]int{}
	shards := map[[2]int]bool{}
	for len(shards) < 200 {
		o, i := rng.IntN(objects), rng.IntN(4)
		if shards[[2]int{o, i}] || perObject[o] == 2 {
			continue
		}
		shards[[2]int{o, i}] = true
		perObject[o]++
		ts.rot(t, fmt.Sprint("o", o), i, rng)
	}
	st := ts.scrubAll(t)
	if st.Records != objects*4 || st.Errors != 200 || st.Repaired != 200 || st.Unrecoverable != 0 {
		t.Fatalf("first pass: %+v", st)
	}
	// The second pass runs before any read could heal anything.
	if st := ts.scrubAll(t); st.Errors != 0 || st.Records != objects*4 {
		t.Fatalf("second pass: %+v", st)
	}
	for i := range objects {
		got, err := readAll(t, ts.Store, fmt.Sprint("o", i), 0, -1)
		if err != nil || !bytes.Equal(got, data[i]) {
			t.Fatalf("o%d after scrub: %v", i, err)
		}
	}
}

func TestScrubReportsWhatCannotBeRebuilt(t *testing.T) {
	ctx := context.Background()
	ts := newTestStore(t, 2, 2, 4, 64<<10)
	rng := rand.New(rand.NewPCG(3, 4))
	for _, key := range []string{"lost", "fine"} {
		b := randBytes(100000)
		if _, err := ts.PutObject(ctx, "bucket", key, bytes.NewReader(b), int64(len(b)), PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 { // M+1 shards
		ts.rot(t, "lost", i, rng)
	}
	st := ts.scrubAll(t)
	if st.Errors != 3 || st.Repaired != 0 || st.Unrecoverable != 3 || !slices.Contains(st.Damaged, "bucket/lost") {
		t.Fatalf("scrub of an object with M+1 bad shards: %+v", st)
	}
	if _, err := readAll(t, ts.Store, "lost", 0, -1); err == nil {
		t.Fatal("GET of an unrecoverable object returned data")
	}
	if got, err := ts.ScrubObject(ctx, "bucket", "fine"); err != nil || got.Records != 4 || got.Errors != 0 {
		t.Fatalf("scrub of one object: %+v %v", got, err)
	}
	if _, err := ts.ScrubObject(ctx, "bucket", "nope"); err == nil {
		t.Fatal("scrub of a missing object")
	}
}

func TestScrubCollectsMisplacedRecords(t *testing.T) {
	ctx := context.Background()
	ts := newTestStore(t, 2, 2, 5, 64<<10) // 4 of the 5 devices hold each object
	b := randBytes(200000)
	if _, err := ts.PutObject(ctx, "bucket", "k", bytes.NewReader(b), int64(len(b)), PutOptions{}); err != nil {
		t.Fatal(err)
	}
	// The ring moves shard slots off the device of shard 0: its record
	// stays behind, whole, as a ring change leaves it.
	old := ts.placement("bucket", "k")[0]
	oldID := uint32(slices.Index(ts.devs, old))
	l := ts.current.Load()
	r, err := l.ring.SetState(oldID, ring.Failed)
	if err == nil {
		r, _, err = r.Rebalance(ring.RebalanceOptions{IgnoreMinPartHours: true})
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.SetRing(r, ts.devs); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(ts.placement("bucket", "k"), old) {
		t.Fatal("the rebalance kept the device in the placement")
	}
	// The placement check rebuilds the missing shard on the new device
	// and leaves the old record to the device scrub's grace.
	rep, err := ts.VerifyPlacement(ctx)
	if err != nil || rep.Missing != 1 || rep.Repaired != 1 || rep.Extra != 1 {
		t.Fatalf("placement check: %+v %v", rep, err)
	}
	if _, err := old.Get(ctx, objectKey("bucket", "k")); err != nil {
		t.Fatal("the placement check removed the misplaced record at once")
	}
	st, _, err := ts.ScrubDevice(ctx, old, ScrubOptions{})
	if err != nil || st.Errors != 0 || st.Misplaced != 1 || st.Collected != 0 {
		t.Fatalf("within the grace: %+v %v", st, err)
	}
	st, _, err = ts.ScrubDevice(ctx, old, ScrubOptions{OrphanGrace: time.Nanosecond})
	if err != nil || st.Misplaced != 1 || st.Collected != 1 {
		t.Fatalf("after the grace: %+v %v", st, err)
	}
	if _, err := old.Get(ctx, objectKey("bucket", "k")); err == nil {
		t.Fatal("the misplaced record is still there")
	}
	if got, err := readAll(t, ts.Store, "k", 0, -1); err != nil || !bytes.Equal(got, b) {
		t.Fatalf("object after collection: %v", err)
	}
	// Records in their placement are never collected.
	for _, d := range ts.placement("bucket", "k") {
		if st, _, _ := ts.ScrubDevice(ctx, d, ScrubOptions{OrphanGrace: time.Nanosecond}); st.Misplaced != 0 || st.Records != 1 {
			t.Fatalf("%s: %+v", d.Name(), st)
		}
	}
}

func TestScrubRepairsNoncurrentVersions(t *testing.T) {
	ctx := context.Background()
	ts := newTestStore(t, 2, 2, 4, 64<<10)
	if err := ts.SetBucketVersioning(ctx, "bucket", "Enabled"); err != nil {
		t.Fatal(err)
	}
	old, cur := randBytes(150000), randBytes(150000)
	info, err := ts.PutObject(ctx, "bucket", "k", bytes.NewReader(old), int64(len(old)), PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.PutObject(ctx, "bucket", "k", bytes.NewReader(cur), int64(len(cur)), PutOptions{}); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 8))
	ts.rotRecord(t, "k", noncurrentKey("bucket", "k", info.VersionID), 1, rng)
	ts.rotRecord(t, "k", noncurrentKey("bucket", "k", info.VersionID), 3, rng)
	if st := ts.scrubAll(t); st.Errors != 2 || st.Repaired != 2 || st.Unrecoverable != 0 {
		t.Fatalf("noncurrent version: %+v", st)
	}
	if st := ts.scrubAll(t); st.Errors != 0 {
		t.Fatalf("second pass: %+v", st)
	}
	o, err := ts.GetObjectVersion(ctx, "bucket", "k", info.VersionID)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	r := o.Reader(ctx, 0, o.Info.Size)
	defer r.Close()
	if got, _ := io.ReadAll(r); !bytes.Equal(got, old) {
		t.Fatal("noncurrent version differs after scrub")
	}
	if got, err := readAll(t, ts.Store, "k", 0, -1); err != nil || !bytes.Equal(got, cur) {
		t.Fatalf("current version after scrub: %v", err)
	}
}
