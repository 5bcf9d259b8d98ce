package rebalancer

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/strata-storage/strata/blockpool"
	"github.com/strata-storage/strata/metastore"
	"github.com/strata-storage/strata/objectstore"
	"github.com/strata-storage/strata/objectstore/shard"
	"github.com/strata-storage/strata/ring"
)

type fixture struct {
	store *objectstore.Store
	db    *pebble.DB
	devs  map[uint32]*shard.Store
	log   *slog.Logger
}

func (f *fixture) device(t testing.TB, id uint32) *shard.Store {
	if d := f.devs[id]; d != nil {
		return d
	}
	st, err := shard.Open(id, fmt.Sprint("dev", id), blockpool.NewMemVolume(512<<20), f.db, nil, f.log)
	if err != nil {
		t.Fatal(err)
	}
	f.devs[id] = st
	return st
}

func (f *fixture) placement(t testing.TB, r *ring.Ring) []objectstore.Device {
	out := make([]objectstore.Device, len(r.Devices))
	for i, d := range r.Devices {
		out[i] = f.device(t, d.ID)
	}
	return out
}

// newFixture is a store over 6 in-memory devices in 3 zones, EC 4+2.
func newFixture(t testing.TB) (*fixture, *ring.Ring) {
	db, err := pebble.Open("db", &pebble.Options{FS: vfs.NewMem(), Logger: quiet{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f := &fixture{db: db, devs: map[uint32]*shard.Store{}, log: slog.New(slog.DiscardHandler)}
	var devs []ring.Device
	for i := 0; i < 6; i++ {
		devs = append(devs, ring.Device{ID: uint32(i), Zone: fmt.Sprint("z", i%3), Node: fmt.Sprint("n", i), Name: "d", Weight: 1})
	}
	r, err := ring.Build(devs, 6, 4, 2)
	if err != nil {
		t.Fatal(err)
	}
	cfg := objectstore.DefaultConfig()
	cfg.BlockSize, cfg.InlineLimit, cfg.Logger = 64<<10, 2000, f.log
	f.store, err = objectstore.New(cfg, r, f.placement(t, r), metastore.NewPebble(db, "meta/"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.store.Close)
	if err := f.store.CreateBucket(context.Background(), "bkt"); err != nil {
		t.Fatal(err)
	}
	return f, r
}

func body(i, gen int) []byte {
	n := 100 + (i*7919)%3000
	if i%5 == 0 {
		n = 70<<10 + i*311 // streamed, two blocks
	}
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(uint64(i), uint64(gen)))
	for j := range b {
		b[j] = byte(r.Uint32())
	}
	return b
}

func (f *fixture) put(t testing.TB, i, gen int) {
	b := body(i, gen)
	if _, err := f.store.PutObject(context.Background(), "bkt", fmt.Sprint("k", i), bytes.NewReader(b), int64(len(b)), objectstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) read(key string) ([]byte, error) {
	o, err := f.store.GetObject(context.Background(), "bkt", key)
	if err != nil {
		return nil, err
	}
	defer o.Close()
	r := o.Reader(context.Background(), 0, o.Info.Size)
	defer r.Close()
	return io.ReadAll(r)
}

// addZoneAndRebalance adds devices 6 and 7 in zone z3 and rebalances.
func addZoneAndRebalance(t testing.TB, r *ring.Ring) *ring.Ring {
	t.Helper()
	for i := 6; i < 8; i++ {
		var err error
		if r, err = r.AddDevice(ring.Device{ID: uint32(i), Zone: "z3", Node: fmt.Sprint("n", i), Name: "d", Weight: 1}); err != nil {
			t.Fatal(err)
		}
	}
	to, _, err := r.Rebalance(ring.RebalanceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return to
}

// recordsToMove counts the shard records whose slot differs between rings.
func recordsToMove(f *fixture, from, to *ring.Ring, keys []string) int {
	n := 0
	for _, k := range keys {
		p := to.Partition("bkt", k)
		for i := range to.Slots(p) {
			if from.Devices[from.Slots(p)[i]].ID != to.Devices[to.Slots(p)[i]].ID {
				n++
			}
		}
	}
	return n
}

// A zone is added under load: the executor is stopped mid-way and resumed
// from an earlier checkpoint (as after kill -9); objects overwritten and
// deleted meanwhile stay that way; every record moves exactly once; the
// placement verifies clean and everything reads back.
func TestAddZoneMovesEachRecordOnceAcrossARestart(t *testing.T) {
	f, from := newFixture(t)
	ctx := context.Background()
	const n = 240
	var keys []string
	for i := 0; i < n; i++ {
		f.put(t, i, 0)
		keys = append(keys, fmt.Sprint("k", i))
	}
	to := addZoneAndRebalance(t, from)
	want := recordsToMove(f, from, to, keys)
	if want == 0 {
		t.Fatal("the rebalance moves nothing")
	}
	if err := f.store.SetRing(to, f.placement(t, to)); err != nil {
		t.Fatal(err)
	}
	if err := f.store.SetSources([]objectstore.Placement{{Ring: from, Devices: f.placement(t, from)}}); err != nil {
		t.Fatal(err)
	}
	// Mid-move, everything reads from either placement.
	for _, k := range keys[:20] {
		if _, err := f.read(k); err != nil {
			t.Fatalf("read %s after the ring changed: %v", k, err)
		}
	}
	used := map[uint32]int64{}
	for id, d := range f.devs {
		used[id] = d.Used()
	}
	plan, err := NewPlan([]*ring.Ring{from}, to, used, Dead(to))
	if err != nil {
		t.Fatal(err)
	}
	if plan.Minimum == 0 || len(plan.Moves) < plan.Minimum {
		t.Fatalf("plan: %d moves, minimum %d", len(plan.Moves), plan.Minimum)
	}
	jobs := &Jobs{Meta: metastore.NewPebble(f.db, "rb/")}
	job := &Job{ID: "j1", State: Running, Target: to.Version, Sources: []uint64{from.Version}, Limit: 4 << 20, Concurrency: 3,
		Plan: plan.Summarize([]*ring.Ring{from}, to, 4<<20)}
	if err := jobs.SaveJob(ctx, job); err != nil {
		t.Fatal(err)
	}
	ex := &Executor{Store: f.store, Jobs: jobs, Log: f.log, Checkpoint: 50 * time.Millisecond, Retry: 20 * time.Millisecond}
	runCtx, stop := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- ex.Run(runCtx, job, nil, plan, []*ring.Ring{from}, to) }()
	// Wait for a checkpoint with some progress, keep it, run a little
	// more, then stop: resuming from the kept checkpoint is a crash.
	var kept *Progress
	for deadline := time.Now().Add(20 * time.Second); kept == nil; {
		if time.Now().After(deadline) {
			_, p, _ := jobs.Load(ctx)
			t.Fatalf("no checkpoint with progress: %+v", p)
		}
		time.Sleep(20 * time.Millisecond)
		if _, p, err := jobs.Load(ctx); err == nil && p != nil && p.Totals().Copied > int64(want/5) {
			kept = p
		}
	}
	time.Sleep(150 * time.Millisecond)
	live, ok := ex.Live()
	if !ok {
		t.Fatal("executor not live")
	}
	stop()
	if err := <-errc; err == nil {
		t.Fatal("a stopped run reported done")
	}
	_, final, _ := jobs.Load(ctx)
	firstCopied := final.Totals().Copied
	if firstCopied < live.Totals.Copied || firstCopied <= kept.Totals().Copied {
		t.Fatalf("copied: kept checkpoint %d, live %d, final %d", kept.Totals().Copied, live.Totals.Copied, firstCopied)
	}
	// Writes while the rebalance is stopped: overwrites and deletes.
	for i := 0; i < 30; i++ {
		f.put(t, i, 1)
	}
	for i := 30; i < 40; i++ {
		if _, err := f.store.DeleteObject(ctx, "bkt", fmt.Sprint("k", i), ""); err != nil {
			t.Fatal(err)
		}
	}
	ex2 := &Executor{Store: f.store, Jobs: jobs, Log: f.log, Checkpoint: 50 * time.Millisecond, Retry: 20 * time.Millisecond}
	if err := ex2.Run(ctx, job, kept, plan, []*ring.Ring{from}, to); err != nil {
		t.Fatal(err)
	}
	_, done, _ := jobs.Load(ctx)
	if !done.Done || done.Restarts != kept.Restarts+1 {
		t.Fatalf("progress after the resumed run: %+v", done)
	}
	second := done.Totals()
	resumed := second.Copied - kept.Totals().Copied
	t.Logf("records to move %d: copied %d before the stop, %d after resuming from an older checkpoint; found %d, stale %d, deferred %d; %d bytes",
		want, firstCopied, resumed, second.Found, second.Stale, second.Deferred, second.Bytes)
	// Every record moved once: what the first run copied plus what the
	// second copied covers each record, and none twice (writes during the
	// stop replaced some: those count as stale or were never walked).
	if firstCopied+resumed+second.Found+second.Stale > int64(want) || firstCopied+resumed < int64(want)-40*6 {
		t.Fatalf("copied %d+%d, found %d, stale %d of %d records: some moved twice or not at all", firstCopied, resumed, second.Found, second.Stale, want)
	}
	if err := f.store.SetSources(nil); err != nil {
		t.Fatal(err)
	}
	rep, err := f.store.Verify(ctx, false)
	if err != nil || rep.Missing != 0 || rep.Extra != 0 || rep.Unreadable != 0 {
		t.Fatalf("verify after the rebalance: %+v, %v", rep, err)
	}
	for i, k := range keys {
		got, err := f.read(k)
		switch {
		case i >= 30 && i < 40:
			if err == nil {
				t.Fatalf("%s was deleted during the rebalance and came back", k)
			}
		case err != nil:
			t.Fatalf("read %s: %v", k, err)
		case i < 30 && !bytes.Equal(got, body(i, 1)), i >= 40 && !bytes.Equal(got, body(i, 0)):
			t.Fatalf("%s reads back wrong", k)
		}
	}
}

// Failed devices are rebuilt from the survivors: a whole zone of a 4-zone
// layout fails and every object is readable throughout and whole after.
func TestFailedZoneIsRebuilt(t *testing.T) {
	f, from := newFixture(t)
	ctx := context.Background()
	var keys []string
	for i := 0; i < 120; i++ {
		f.put(t, i, 0)
		keys = append(keys, fmt.Sprint("k", i))
	}
	// Grow to 4 zones first, without data movement (a fresh layout).
	next := from
	for _, id := range []uint32{0, 3} { // zone z0
		var err error
		if next, err = next.SetState(id, ring.Failed); err != nil {
			t.Fatal(err)
		}
	}
	to := addZoneAndRebalance(t, next)
	// The failed devices are gone: their volumes lose everything.
	for _, id := range []uint32{0, 3} {
		delete(f.devs, id)
	}
	devs := f.placement(t, to)
	for i, d := range to.Devices {
		if d.State == ring.Failed {
			devs[i] = nil
		}
	}
	if err := f.store.SetRing(to, devs); err != nil {
		t.Fatal(err)
	}
	srcDevs := f.placement(t, from)
	for i, d := range from.Devices {
		if d.ID == 0 || d.ID == 3 {
			srcDevs[i] = nil
		}
	}
	if err := f.store.SetSources([]objectstore.Placement{{Ring: from, Devices: srcDevs}}); err != nil {
		t.Fatal(err)
	}
	plan, err := NewPlan([]*ring.Ring{from}, to, map[uint32]int64{}, Dead(to))
	if err != nil {
		t.Fatal(err)
	}
	rebuilds := 0
	for _, m := range plan.Moves {
		if m.Rebuild {
			rebuilds++
		}
	}
	if rebuilds == 0 {
		t.Fatal("no rebuild moves for the failed zone")
	}
	jobs := &Jobs{Meta: metastore.NewPebble(f.db, "rb/")}
	job := &Job{ID: "j2", State: Running, Target: to.Version, Sources: []uint64{from.Version}, Concurrency: 2}
	if err := jobs.SaveJob(ctx, job); err != nil {
		t.Fatal(err)
	}
	ex := &Executor{Store: f.store, Jobs: jobs, Log: f.log, Checkpoint: 50 * time.Millisecond, Retry: 20 * time.Millisecond}
	if err := ex.Run(ctx, job, nil, plan, []*ring.Ring{from}, to); err != nil {
		t.Fatal(err)
	}
	_, p, _ := jobs.Load(ctx)
	if tot := p.Totals(); tot.Rebuilt == 0 || tot.Lost != 0 {
		t.Fatalf("rebuild totals: %+v", tot)
	}
	f.store.SetSources(nil)
	rep, err := f.store.Verify(ctx, false)
	if err != nil || rep.Missing != 0 || rep.Unreadable != 0 {
		t.Fatalf("verify after the rebuild: %+v, %v", rep, err)
	}
	for i, k := range keys {
		got, err := f.read(k)
		if err != nil || !bytes.Equal(got, body(i, 0)) {
			t.Fatalf("read %s after the rebuild: %v", k, err)
		}
	}
}

func TestLimiterHoldsTheRate(t *testing.T) {
	l := newLimiter(2 << 20)
	start := time.Now()
	total := 0
	for total < 1<<20 {
		if err := l.wait(context.Background(), 64<<10); err != nil {
			t.Fatal(err)
		}
		total += 64 << 10
	}
	// 1 MiB at 2 MiB/s: the last chunk may start at 0.47 s.
	if d := time.Since(start); d < 400*time.Millisecond {
		t.Fatalf("1 MiB at 2 MiB/s took %v", d)
	}
}

type quiet struct{}

func (quiet) Infof(string, ...any)      {}
func (quiet) Errorf(string, ...any)     {}
func (quiet) Fatalf(f string, a ...any) { panic(fmt.Sprintf(f, a...)) }
