package scrub

import (
	"context"
	"encoding/binary"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-storage/strata/metastore"
)

// spanTarget "verifies" size bytes in 1 MiB steps, sleeping delay per
// step; it counts what it was asked to read.
type spanTarget struct {
	name  string
	size  int64
	delay time.Duration
	read  atomic.Int64
}

func (s *spanTarget) Name() string { return s.name }
func (s *spanTarget) Size() int64  { return s.size }
func (s *spanTarget) Step(ctx context.Context, cursor []byte, throttle func(context.Context, int) error) (Stats, []byte, error) {
	var off int64
	if len(cursor) == 8 {
		off = int64(binary.BigEndian.Uint64(cursor))
	}
	n := min(int64(1<<20), s.size-off)
	if err := throttle(ctx, int(n)); err != nil {
		return Stats{}, cursor, err
	}
	time.Sleep(s.delay)
	s.read.Add(n)
	st := Stats{Bytes: n}
	if off+n >= s.size {
		return st, nil, nil
	}
	return st, binary.BigEndian.AppendUint64(nil, uint64(off+n)), nil
}

func openState(t *testing.T, dir string) metastore.Store {
	db, err := metastore.OpenPebble(dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return metastore.NewPebble(db, "s/")
}

// run starts r until the test ends (before its state store closes).
func run(t *testing.T, r *Runner) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

func waitFor(t *testing.T, what string, within time.Duration, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(within); !ok(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRunnerPacesPassesAndKeepsItsPlace(t *testing.T) {
	state := openState(t, t.TempDir())
	tg := &spanTarget{name: "device/a", size: 4 << 20}
	r := New(Config{State: state, Targets: func() []Target { return []Target{tg} }, Rate: 8 << 20, Period: time.Hour, Log: slog.New(slog.DiscardHandler)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	waitFor(t, "the target", time.Second, func() bool { return len(r.Status()) == 1 })
	start := time.Now()
	if err := r.Now("device/a"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a full pass", 5*time.Second, func() bool { s := r.Status()[0]; return s.LastFullPass != nil })
	// 4 MiB at 8 MiB/s: about half a second, not less.
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Fatalf("a pass of 4 MiB at 8 MiB/s took %v", took)
	}
	s := r.Status()[0]
	if s.LastPass.Bytes != 4<<20 || s.State != "idle" || tg.read.Load() != 4<<20 {
		t.Fatalf("after one pass: %+v, read %d", s, tg.read.Load())
	}
	if err := r.Pause("device/a"); err != nil {
		t.Fatal(err)
	}
	if err := r.Now("nope"); err == nil {
		t.Fatal("a pass of an unknown target")
	}
	cancel()
	<-done
	// A new runner on the same state: the pause and the last pass hold.
	r2 := New(Config{State: state, Targets: func() []Target { return []Target{tg} }, Rate: 8 << 20, Period: time.Hour, Log: slog.New(slog.DiscardHandler)})
	run(t, r2)
	waitFor(t, "the target", time.Second, func() bool { return len(r2.Status()) == 1 })
	if s := r2.Status()[0]; s.State != "paused" || s.LastFullPass == nil || s.Total.Bytes != 4<<20 {
		t.Fatalf("after a restart: %+v", s)
	}
}

func TestRunnerFlagsAPassBehindSchedule(t *testing.T) {
	tg := &spanTarget{name: "volume/v", size: 8 << 20, delay: 50 * time.Millisecond}
	busy := atomic.Bool{}
	busy.Store(true)
	r := New(Config{State: openState(t, t.TempDir()), Targets: func() []Target { return []Target{tg} }, Rate: 1 << 30, Period: 100 * time.Millisecond,
		Busy: busy.Load, Log: slog.New(slog.DiscardHandler)})
	run(t, r)
	// Foreground I/O never stops: the scrub still moves, a second at a
	// step at most, and its pass overruns the 100 ms period.
	waitFor(t, "a pass behind schedule", 5*time.Second, func() bool {
		st := r.Status()
		return len(st) == 1 && st[0].BehindSchedule
	})
	busy.Store(false)
	waitFor(t, "the pass to finish", 10*time.Second, func() bool { return r.Status()[0].LastFullPass != nil })
}

func TestPassRate(t *testing.T) {
	for _, c := range []struct {
		done, size int64
		elapsed    time.Duration
		rate, eta  float64
	}{
		{0, 1 << 30, time.Minute, 0, 0},
		{64 << 20, 1 << 30, 64 * time.Second, 1 << 20, 960},
		{1 << 30, 1 << 30, time.Second, 1 << 30, 0},
		{10, 100, 0, 0, 0},
	} {
		if rate, eta := passRate(c.done, c.size, c.elapsed); rate != c.rate || eta != c.eta {
			t.Errorf("passRate(%d, %d, %v) = %v, %v; want %v, %v", c.done, c.size, c.elapsed, rate, eta, c.rate, c.eta)
		}
	}
}
