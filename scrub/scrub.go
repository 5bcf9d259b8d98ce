// Package scrub runs a node's background verification: every shard store
// and every block volume the node is responsible for is read and checked
// on a schedule, at a bounded rate, yielding to foreground I/O, resuming
// where it stopped after a restart. What fails is repaired from redundancy
// by the target itself; the runner keeps the books.
package scrub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/strata-storage/strata/metastore"
)

// Stats counts what scrubbing found.
type Stats struct {
	Bytes         int64    `json:"bytes"`
	Errors        int64    `json:"errors"`
	Repaired      int64    `json:"repaired"`
	Unrecoverable int64    `json:"unrecoverable"`
	Damaged       []string `json:"damaged,omitempty"`   // what could not be repaired, by name
	Misplaced     int64    `json:"misplaced,omitempty"` // records off the ring's placement
	Collected     int64    `json:"collected,omitempty"` // of those, removed after the grace
}

// MaxDamaged bounds the names a Stats keeps.
const MaxDamaged = 100

// Add sums o into s.
func (s *Stats) Add(o Stats) {
	s.Bytes += o.Bytes
	s.Errors += o.Errors
	s.Repaired += o.Repaired
	s.Unrecoverable += o.Unrecoverable
	s.Misplaced += o.Misplaced
	s.Collected += o.Collected
	for _, d := range o.Damaged {
		if len(s.Damaged) < MaxDamaged {
			s.Damaged = append(s.Damaged, d)
		}
	}
}

// ErrSkip from Step: the target cannot be scrubbed here now (another node
// holds it); try later.
var ErrSkip = errors.New("scrub: not scrubbed here now")

// Target is one thing to scrub: a shard store or a volume.
type Target interface {
	Name() string // "device/disk0", "volume/pg"
	// Size estimates the bytes of a pass (for progress).
	Size() int64
	// Step verifies a bounded piece from cursor (nil: the start) and
	// returns where to go on (nil: the pass is done).
	Step(ctx context.Context, cursor []byte, throttle func(context.Context, int) error) (Stats, []byte, error)
}

// Config sets a runner up.
type Config struct {
	State   metastore.Store // node-local, for progress across restarts
	Targets func() []Target
	Rate    int64         // bytes per second per target
	Period  time.Duration // start a full pass at least this often
	Busy    func() bool   // foreground I/O in flight: scrub waits (briefly)
	Log     *slog.Logger
}

// state is one target's persistent progress.
type state struct {
	Paused       bool      `json:"paused"`
	InPass       bool      `json:"in_pass"`
	Cursor       []byte    `json:"cursor,omitempty"`
	PassStarted  time.Time `json:"pass_started"`
	LastFullPass time.Time `json:"last_full_pass"`
	Pass         Stats     `json:"pass"`      // the pass in progress
	LastPass     Stats     `json:"last_pass"` // the last complete one
	Total        Stats     `json:"total"`
	Now          bool      `json:"now,omitempty"` // a pass was asked for
}

// Status is a target's state as reported.
type Status struct {
	Target         string     `json:"target"`
	State          string     `json:"state"` // scrubbing, idle, paused
	PassStarted    *time.Time `json:"pass_started,omitempty"`
	LastFullPass   *time.Time `json:"last_full_pass,omitempty"`
	Progress       float64    `json:"progress"` // of the pass in progress, 0..1 (estimate)
	BehindSchedule bool       `json:"behind_schedule"`
	// Rate is the bytes verified per second since the pass started
	// (pauses and throttling included); ETA the seconds left at it.
	Rate     float64 `json:"rate_bytes_per_second"`
	ETA      float64 `json:"eta_seconds"`
	Pass     Stats   `json:"pass"`
	LastPass Stats   `json:"last_pass"`
	Total    Stats   `json:"total"`
}

// Runner scrubs a node's targets.
type Runner struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	running  map[string]*worker
	onDemand *state // checks asked for one object or volume (OnDemand)
	wg       sync.WaitGroup
}

// OnDemand is the status entry of the checks run at once by request
// (`strata scrub now`): their findings count like a pass's.
const OnDemand = "on-demand"

// Record adds what an on-demand check found to the OnDemand entry, so it
// shows in Status and the metrics like a background pass.
func (r *Runner) Record(ctx context.Context, st Stats) {
	r.mu.Lock()
	r.loadOnDemand(ctx)
	r.onDemand.LastPass = st
	r.onDemand.Total.Add(st)
	r.onDemand.LastFullPass = time.Now().UTC()
	b, _ := json.Marshal(r.onDemand)
	r.mu.Unlock()
	if err := r.cfg.State.Put(ctx, stateKey+OnDemand, b); err != nil {
		r.log.Warn("scrub: cannot save an on-demand check", "err", err)
	}
}

// loadOnDemand reads the OnDemand entry once (r.mu held).
func (r *Runner) loadOnDemand(ctx context.Context) {
	if r.onDemand != nil {
		return
	}
	r.onDemand = &state{}
	if b, err := r.cfg.State.Get(ctx, stateKey+OnDemand); err == nil {
		json.Unmarshal(b, r.onDemand)
	}
}

type worker struct {
	t      Target
	wake   chan struct{}
	cancel context.CancelFunc
	mu     sync.Mutex
	st     state
}

// New returns a runner; Run starts it.
func New(cfg Config) *Runner {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Rate <= 0 {
		cfg.Rate = 64 << 20
	}
	if cfg.Period <= 0 {
		cfg.Period = 7 * 24 * time.Hour
	}
	return &Runner{cfg: cfg, log: cfg.Log, running: map[string]*worker{}}
}

const stateKey = "scrub/"

// Run keeps one worker per target until ctx ends.
func (r *Runner) Run(ctx context.Context) {
	defer r.wg.Wait()
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		r.sync(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sync starts workers for new targets and stops those of targets gone.
func (r *Runner) sync(ctx context.Context) {
	want := map[string]Target{}
	for _, t := range r.cfg.Targets() {
		want[t.Name()] = t
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for name, w := range r.running {
		if _, ok := want[name]; !ok {
			w.cancel()
			delete(r.running, name)
		}
	}
	for name, t := range want {
		if r.running[name] != nil {
			continue
		}
		w := &worker{t: t, wake: make(chan struct{}, 1)}
		if b, err := r.cfg.State.Get(ctx, stateKey+name); err == nil {
			json.Unmarshal(b, &w.st)
		} else {
			// A new target's first pass falls at a random point of the
			// period, so that passes spread out instead of all starting
			// together (as Ceph randomizes its scrubs).
			w.st.PassStarted = time.Now().UTC().Add(-time.Duration(rand.Int64N(int64(r.cfg.Period))))
		}
		wctx, cancel := context.WithCancel(ctx)
		w.cancel = cancel
		r.running[name] = w
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.work(wctx, w)
		}()
	}
}

func (r *Runner) save(ctx context.Context, w *worker) {
	w.mu.Lock()
	b, _ := json.Marshal(w.st)
	w.mu.Unlock()
	if err := r.cfg.State.Put(ctx, stateKey+w.t.Name(), b); err != nil && ctx.Err() == nil {
		r.log.Warn("scrub: cannot save progress", "target", w.t.Name(), "err", err)
	}
}

// work scrubs one target: a pass when due (or asked for), a step at a time.
func (r *Runner) work(ctx context.Context, w *worker) {
	limit := newLimiter(r.cfg.Rate, r.cfg.Busy)
	for ctx.Err() == nil {
		w.mu.Lock()
		paused := w.st.Paused
		due := w.st.InPass || w.st.Now || time.Since(w.st.PassStarted) >= r.cfg.Period
		if due && !w.st.InPass && !paused {
			w.st.InPass, w.st.Now, w.st.Cursor, w.st.Pass, w.st.PassStarted = true, false, nil, Stats{}, time.Now().UTC()
		}
		cursor := w.st.Cursor
		wait := time.Until(w.st.PassStarted.Add(r.cfg.Period))
		w.mu.Unlock()
		if paused || !due {
			if paused || wait > time.Minute {
				wait = time.Minute
			}
			select {
			case <-ctx.Done():
				return
			case <-w.wake:
			case <-time.After(wait):
			}
			continue
		}
		st, next, err := w.t.Step(ctx, cursor, limit.wait)
		w.mu.Lock()
		w.st.Pass.Add(st)
		w.st.Total.Add(st)
		if err == nil {
			w.st.Cursor = next
			if next == nil {
				w.st.InPass, w.st.LastFullPass, w.st.LastPass = false, time.Now().UTC(), w.st.Pass
			}
		}
		done := err == nil && next == nil
		pass := w.st.Pass
		w.mu.Unlock()
		r.save(context.Background(), w)
		if done {
			r.log.Info("scrub pass done", "target", w.t.Name(), "bytes", pass.Bytes, "errors", pass.Errors, "repaired", pass.Repaired, "unrecoverable", pass.Unrecoverable)
		}
		if err != nil && ctx.Err() == nil {
			if !errors.Is(err, ErrSkip) {
				r.log.Warn("scrub step failed; retrying later", "target", w.t.Name(), "err", err)
			}
			select {
			case <-ctx.Done():
			case <-w.wake:
			case <-time.After(10 * time.Second):
			}
		}
	}
}

// Status reports every target, by name.
func (r *Runner) Status() []Status {
	r.mu.Lock()
	ws := make([]*worker, 0, len(r.running))
	for _, w := range r.running {
		ws = append(ws, w)
	}
	r.mu.Unlock()
	out := make([]Status, 0, len(ws))
	for _, w := range ws {
		w.mu.Lock()
		st := w.st
		w.mu.Unlock()
		s := Status{Target: w.t.Name(), State: "idle", Pass: st.Pass, LastPass: st.LastPass, Total: st.Total}
		switch {
		case st.Paused:
			s.State = "paused"
		case st.InPass:
			s.State = "scrubbing"
		}
		if st.InPass {
			ps := st.PassStarted
			s.PassStarted = &ps
			size := w.t.Size()
			if size > 0 {
				s.Progress = min(1, float64(st.Pass.Bytes)/float64(size))
			}
			s.Rate, s.ETA = passRate(st.Pass.Bytes, size, time.Since(st.PassStarted))
			s.BehindSchedule = time.Since(st.PassStarted) > r.cfg.Period
		}
		if !st.LastFullPass.IsZero() {
			lf := st.LastFullPass
			s.LastFullPass = &lf
		}
		out = append(out, s)
	}
	r.mu.Lock()
	r.loadOnDemand(context.Background())
	if od := *r.onDemand; !od.LastFullPass.IsZero() {
		last := od.LastFullPass
		out = append(out, Status{Target: OnDemand, State: "idle", LastFullPass: &last, LastPass: od.LastPass, Total: od.Total, Progress: 1})
	}
	r.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Target < out[j].Target })
	return out
}

// passRate is a pass's average rate after elapsed with done of size bytes
// verified, and the seconds left at that rate (0 when unknown).
func passRate(done, size int64, elapsed time.Duration) (rate, eta float64) {
	if elapsed <= 0 || done <= 0 {
		return 0, 0
	}
	rate = float64(done) / elapsed.Seconds()
	if left := size - done; left > 0 {
		eta = float64(left) / rate
	}
	return rate, eta
}

// ErrNoTarget: no target of that name on this node.
var ErrNoTarget = errors.New("scrub: no such target on this node")

// set applies fn to the named target (every one when name is "").
func (r *Runner) set(name string, fn func(*state)) error {
	r.mu.Lock()
	var ws []*worker
	for n, w := range r.running {
		if name == "" || n == name {
			ws = append(ws, w)
		}
	}
	r.mu.Unlock()
	if len(ws) == 0 && name != "" {
		return fmt.Errorf("%w: %s", ErrNoTarget, name)
	}
	for _, w := range ws {
		w.mu.Lock()
		fn(&w.st)
		w.mu.Unlock()
		r.save(context.Background(), w)
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

// Pause stops scrubbing a target (all with name ""), keeping its place.
func (r *Runner) Pause(name string) error { return r.set(name, func(s *state) { s.Paused = true }) }

// Resume lets a paused target go on.
func (r *Runner) Resume(name string) error { return r.set(name, func(s *state) { s.Paused = false }) }

// Now starts a pass at once (the one in progress goes on).
func (r *Runner) Now(name string) error {
	return r.set(name, func(s *state) { s.Paused, s.Now = false, true })
}

// limiter paces one target's reads at rate bytes/s and lets foreground
// I/O go first: while busy, it waits in short steps, up to a second per
// read, so that a pass still ends under constant load.
type limiter struct {
	rate int64
	busy func() bool
	next time.Time
}

func newLimiter(rate int64, busy func() bool) *limiter { return &limiter{rate: rate, busy: busy} }

func (l *limiter) wait(ctx context.Context, n int) error {
	if l.busy != nil {
		for waited := 0; waited < 50 && l.busy(); waited++ {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	now := time.Now()
	if l.next.Before(now) {
		l.next = now
	}
	l.next = l.next.Add(time.Duration(float64(n) / float64(l.rate) * float64(time.Second)))
	if d := time.Until(l.next); d > time.Millisecond {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
		}
	}
	return nil
}
