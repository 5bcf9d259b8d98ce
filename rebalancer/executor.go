package rebalancer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/strata-storage/strata/objectstore"
	"github.com/strata-storage/strata/ring"
)

// Executor runs one job at a time on this node.
type Executor struct {
	Store *objectstore.Store
	Jobs  *Jobs
	Log   *slog.Logger
	// Self is this node's name: a job whose owner becomes another node
	// (a takeover while this one was cut off) stops here. Empty: any.
	Self string
	// Checkpoint is how often progress is stored and the job re-read for
	// pause and cancel (default 1s).
	Checkpoint time.Duration
	// Retry is how long a unit waits before walking again for what it
	// deferred, or after its device failed (default 2s).
	Retry time.Duration

	mu     sync.Mutex
	job    *Job
	prog   *Progress
	paused bool
	resume chan struct{} // closed when a pause ends
	lim    *limiter
}

// Live returns the running job's status, or ok=false when none runs here.
func (e *Executor) Live() (Status, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.job == nil || e.prog == nil {
		return Status{}, false
	}
	j := *e.job
	p := *e.prog
	p.Units = append([]UnitStatus(nil), e.prog.Units...)
	return NewStatus(&j, &p, true), true
}

// Run executes job until it is done, paused for good (ctx ends), or
// cancelled. prog is the last checkpoint (nil: a fresh start).
func (e *Executor) Run(ctx context.Context, job *Job, prog *Progress, plan *Plan, sources []*ring.Ring, target *ring.Ring) error {
	if e.Checkpoint <= 0 {
		e.Checkpoint = time.Second
	}
	if e.Retry <= 0 {
		e.Retry = 2 * time.Second
	}
	if e.Log == nil {
		e.Log = slog.Default()
	}
	devs, err := e.devices(sources, target)
	if err != nil {
		return err
	}
	p := e.resumeFrom(job, prog, plan, devs)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	e.mu.Lock()
	e.job, e.prog, e.paused, e.resume = job, p, job.State == Paused, make(chan struct{})
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		e.job, e.prog = nil, nil
		e.mu.Unlock()
	}()
	lim := newLimiter(job.Limit)
	e.mu.Lock()
	e.lim = lim
	e.mu.Unlock()
	work := make(chan int, len(plan.Units))
	for i := range p.Units {
		if !p.Units[i].Done {
			work <- i
		}
	}
	close(work)
	// Concurrency bounds the records moving at once; as many devices are
	// walked at once (a walk itself only reads keys).
	workers := max(job.Concurrency, 1)
	sem := make(chan struct{}, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				e.runUnit(ctx, i, plan.Units[i], devs, target, lim, sem)
			}
		}()
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	tick := time.NewTicker(e.Checkpoint)
	defer tick.Stop()
	last := time.Now()
	for {
		select {
		case <-finished:
			e.mu.Lock()
			e.account(&last)
			done := ctx.Err() == nil
			if done {
				p.Done, p.Finished = true, time.Now().UTC()
			}
			e.mu.Unlock()
			if err := e.save(context.WithoutCancel(ctx)); err != nil {
				return err
			}
			if !done {
				return ctx.Err()
			}
			e.Log.Info("rebalance done", "job", job.ID, "moved_bytes", p.Totals().Bytes)
			return nil
		case <-tick.C:
			e.mu.Lock()
			e.account(&last)
			e.mu.Unlock()
			if err := e.save(ctx); err != nil {
				e.Log.Warn("rebalance checkpoint", "err", err)
			}
			if stop := e.follow(ctx); stop {
				cancel()
			}
		}
	}
}

// account adds the running time since last (mu held).
func (e *Executor) account(last *time.Time) {
	now := time.Now()
	if !e.paused {
		e.prog.RunSeconds += now.Sub(*last).Seconds()
	}
	*last = now
}

func (e *Executor) save(ctx context.Context) error {
	e.mu.Lock()
	p := *e.prog
	p.Units = append([]UnitStatus(nil), e.prog.Units...)
	p.Updated = time.Now().UTC()
	e.prog.Updated = p.Updated
	e.mu.Unlock()
	return e.Jobs.SaveProgress(ctx, &p)
}

// Refresh makes a running executor read the job now (after a pause,
// resume or limit change), not at its next checkpoint.
func (e *Executor) Refresh(ctx context.Context) {
	e.mu.Lock()
	running := e.job != nil
	e.mu.Unlock()
	if running {
		e.follow(ctx)
	}
}

// follow re-reads the job: a pause holds the workers, a resume releases
// them, anything else (cancelled, replaced) stops the run (at the next
// checkpoint).
func (e *Executor) follow(ctx context.Context) (stop bool) {
	j, _, err := e.Jobs.Load(ctx)
	if err != nil {
		return false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.job == nil || j.ID != e.job.ID || !j.Active() || e.Self != "" && j.Owner != e.Self {
		return true
	}
	switch {
	case j.State == Paused && !e.paused:
		e.paused = true
		e.resume = make(chan struct{})
	case j.State == Running && e.paused:
		e.paused = false
		close(e.resume)
	}
	if j.Limit != e.job.Limit {
		e.lim.setRate(j.Limit)
	}
	e.job.State, e.job.Limit = j.State, j.Limit
	return false
}

// waitRunning blocks while the job is paused.
func (e *Executor) waitRunning(ctx context.Context) error {
	for {
		e.mu.Lock()
		paused, ch := e.paused, e.resume
		e.mu.Unlock()
		if !paused {
			return ctx.Err()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// resumeFrom matches a checkpoint's units to the plan's.
func (e *Executor) resumeFrom(job *Job, prog *Progress, plan *Plan, devs *deviceSet) *Progress {
	p := &Progress{JobID: job.ID, Started: time.Now().UTC()}
	if prog != nil && prog.JobID == job.ID {
		p.Started, p.RunSeconds, p.Restarts = prog.Started, prog.RunSeconds, prog.Restarts+1
	}
	for _, u := range plan.Units {
		us := UnitStatus{Kind: u.Kind, Source: u.Source, Device: u.Device, DeviceName: devs.name(u.Device), Moves: u.Moves, PlannedBytes: u.Bytes}
		if prog != nil && prog.JobID == job.ID {
			for _, old := range prog.Units {
				if old.same(u) {
					us.Cursor, us.Pass, us.Done, us.Stats = old.Cursor, old.Pass, old.Done, old.Stats
					us.DeferredPass = old.DeferredPass
				}
			}
		}
		p.Units = append(p.Units, us)
	}
	return p
}

// deviceSet finds the store's devices of the target and source rings.
type deviceSet struct {
	target  objectstore.Placement
	sources []objectstore.Placement
}

func (e *Executor) devices(sources []*ring.Ring, target *ring.Ring) (*deviceSet, error) {
	t, src := e.Store.Placements()
	if t.Ring.Version != target.Version {
		return nil, fmt.Errorf("rebalancer: this node places by ring v%d, the job's target is v%d", t.Ring.Version, target.Version)
	}
	if len(src) != len(sources) {
		return nil, fmt.Errorf("rebalancer: this node has %d source rings, the job %d", len(src), len(sources))
	}
	for i := range src {
		if src[i].Ring.Version != sources[i].Version {
			return nil, fmt.Errorf("rebalancer: source ring %d is v%d here, v%d in the job", i, src[i].Ring.Version, sources[i].Version)
		}
	}
	return &deviceSet{target: t, sources: src}, nil
}

func lookup(p objectstore.Placement, id uint32) objectstore.Device {
	if i, ok := p.Ring.Index(id); ok {
		return p.Devices[i]
	}
	return nil
}

func (ds *deviceSet) name(id uint32) string {
	for _, p := range append([]objectstore.Placement{ds.target}, ds.sources...) {
		if i, ok := p.Ring.Index(id); ok {
			return p.Ring.Devices[i].Node + "/" + p.Ring.Devices[i].Name
		}
	}
	return fmt.Sprint(id)
}

// batch is how many records a walk reads before it works on them, so no
// device iterator stays open while shards move.
const batch = 64

// runUnit walks a unit's device until a pass defers nothing.
func (e *Executor) runUnit(ctx context.Context, ui int, u *Unit, devs *deviceSet, target *ring.Ring, lim *limiter, sem chan struct{}) {
	var walked objectstore.Device
	if u.Kind == "copy" {
		walked = lookup(devs.sources[u.Source], u.Device)
	} else {
		walked = lookup(devs.target, u.Device)
	}
	opt := objectstore.MoveOptions{Throttle: func(ctx context.Context, n int) error {
		if err := e.waitRunning(ctx); err != nil {
			return err
		}
		return lim.wait(ctx, n)
	}}
	for ctx.Err() == nil {
		e.mu.Lock()
		st := &e.prog.Units[ui]
		cursor := st.Cursor
		e.mu.Unlock()
		sc := objectstore.NewRecordScanner()
		if walked == nil {
			e.unitError(ui, fmt.Errorf("device %s is not reachable from this node", devs.name(u.Device)))
			sleep(ctx, e.Retry)
			continue
		}
		if cursor != nil {
			// Parts are placed by their upload, whose record sorts
			// earlier: read the uploads again before resuming past them.
			if err := walk(ctx, walked, []byte("U"), minKey(cursor, []byte("V")), func(keys, vals [][]byte) bool {
				for i := range keys {
					sc.Decode(keys[i], vals[i])
				}
				return true
			}); err != nil {
				e.unitError(ui, err)
				sleep(ctx, e.Retry)
				continue
			}
		}
		end, err := e.pass(ctx, ui, u, walked, sc, devs, target, opt, sem)
		if err != nil {
			if ctx.Err() == nil {
				e.unitError(ui, err)
				sleep(ctx, e.Retry)
			}
			continue
		}
		if !end {
			continue
		}
		e.mu.Lock()
		st = &e.prog.Units[ui]
		if st.DeferredPass == 0 {
			st.Done, st.Cursor, st.LastError = true, nil, ""
			e.mu.Unlock()
			return
		}
		st.Pass++
		st.Cursor, st.DeferredPass = nil, 0
		e.mu.Unlock()
		sleep(ctx, e.Retry)
	}
}

func (e *Executor) unitError(ui int, err error) {
	e.mu.Lock()
	e.prog.Units[ui].LastError = err.Error()
	e.mu.Unlock()
	e.Log.Warn("rebalance unit waits", "device", e.prog.Units[ui].DeviceName, "err", err)
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func minKey(a, b []byte) []byte {
	if bytes.Compare(a, b) < 0 {
		return a
	}
	return b
}

// walk reads [from, to) of a device in batches, handing each to fn until
// it returns false.
func walk(ctx context.Context, d objectstore.Device, from, to []byte, fn func(keys, vals [][]byte) bool) error {
	for {
		it, err := d.Iter(ctx, from, to)
		if err != nil {
			return fmt.Errorf("walk %s: %w", d.Name(), err)
		}
		var keys, vals [][]byte
		for ; it.Valid() && len(keys) < batch; it.Next() {
			keys = append(keys, bytes.Clone(it.Key()))
			vals = append(vals, bytes.Clone(it.Value()))
		}
		if err := it.Close(); err != nil {
			return fmt.Errorf("walk %s: %w", d.Name(), err)
		}
		if len(keys) > 0 && !fn(keys, vals) {
			return nil
		}
		if len(keys) < batch {
			return nil
		}
		from = append(keys[len(keys)-1], 0)
	}
}

// pass walks the unit's device from its cursor once, moving the records
// of each batch in parallel (at most cap(sem) across all units) and
// advancing the cursor past a batch once all of it is done. end reports
// that it reached the end of the device.
func (e *Executor) pass(ctx context.Context, ui int, u *Unit, walked objectstore.Device, sc *objectstore.RecordScanner, devs *deviceSet, target *ring.Ring, opt objectstore.MoveOptions, sem chan struct{}) (end bool, err error) {
	e.mu.Lock()
	from := e.prog.Units[ui].Cursor
	e.mu.Unlock()
	err = walk(ctx, walked, from, nil, func(keys, vals [][]byte) bool {
		if e.waitRunning(ctx) != nil {
			return false
		}
		var wg sync.WaitGroup
		for i := range keys {
			dr, ok := sc.Decode(keys[i], vals[i]) // in order: uploads before their parts
			if !ok {
				e.count(ui, Stats{Records: 1}, nil)
				continue
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				wg.Wait()
				return false
			}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				out, n, err := e.moveOne(ctx, u, dr, walked, devs, target, opt)
				if err != nil && ctx.Err() != nil {
					return // stopped: the batch is walked again
				}
				e.count(ui, outcomeStats(out, n), err)
			}()
		}
		wg.Wait()
		if ctx.Err() != nil {
			return false
		}
		e.mu.Lock()
		e.prog.Units[ui].Cursor = append(bytes.Clone(keys[len(keys)-1]), 0)
		e.mu.Unlock()
		return true
	})
	if err != nil {
		return false, err
	}
	return ctx.Err() == nil, nil
}

func outcomeStats(out objectstore.MoveOutcome, n int64) Stats {
	one := Stats{Records: 1, Bytes: n}
	switch out {
	case objectstore.MoveCopied:
		one.Copied = 1
	case objectstore.MoveFound:
		one.Found = 1
	case objectstore.MoveStale:
		one.Stale = 1
	case objectstore.MoveRebuilt:
		one.Rebuilt = 1
	case objectstore.MoveLost:
		one.Lost = 1
	case objectstore.MoveDeferred:
		one.Deferred = 1
	}
	return one
}

// count adds one record's outcome to its unit.
func (e *Executor) count(ui int, one Stats, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := &e.prog.Units[ui]
	st.Stats.add(one)
	st.DeferredPass += one.Deferred
	if err != nil {
		st.LastError = err.Error()
	}
}

// moveNone: the record is not one the unit moves.
const moveNone objectstore.MoveOutcome = -1

func (e *Executor) moveOne(ctx context.Context, u *Unit, dr objectstore.DeviceRecord, walked objectstore.Device, devs *deviceSet, target *ring.Ring, opt objectstore.MoveOptions) (objectstore.MoveOutcome, int64, error) {
	part := target.Partition(dr.Bucket, dr.Object)
	if u.Kind == "rebuild" {
		rs, ok := u.rebuilds[part]
		if !ok || dr.Rec.ShardIndex != rs.witness {
			return moveNone, 0, nil
		}
		return e.Store.RebuildRecord(ctx, dr, rs.shards, opt)
	}
	to, ok := u.copies[slotKey(part, dr.Rec.ShardIndex)]
	if !ok {
		return moveNone, 0, nil
	}
	dst := lookup(devs.target, to)
	if dst == nil {
		return objectstore.MoveDeferred, 0, errors.New("the target device is not reachable from this node")
	}
	return e.Store.MoveRecord(ctx, dr, dr.Rec.ShardIndex, walked, dst, opt)
}

// limiter spaces writes so that bytes per second stay at rate over any
// stretch of running time: a write of n bytes waits until the end of the
// n/rate seconds it reserves (so the rate is never exceeded, even at the
// start), and no credit is saved while idle or paused.
type limiter struct {
	mu   sync.Mutex
	rate float64
	next time.Time
}

func newLimiter(rate int64) *limiter { return &limiter{rate: float64(rate)} }

func (l *limiter) setRate(rate int64) {
	l.mu.Lock()
	l.rate = float64(rate)
	l.mu.Unlock()
}

func (l *limiter) wait(ctx context.Context, n int) error {
	l.mu.Lock()
	if l.rate <= 0 || n <= 0 {
		l.mu.Unlock()
		return nil
	}
	now := time.Now()
	if l.next.Before(now) {
		l.next = now
	}
	l.next = l.next.Add(time.Duration(float64(n) / l.rate * float64(time.Second)))
	at := l.next
	l.mu.Unlock()
	if d := time.Until(at); d > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
		}
	}
	return nil
}
