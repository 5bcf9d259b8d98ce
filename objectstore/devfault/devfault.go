// Package devfault injects faults at the object layer's device seam, in
// the manner of pebble's errorfs: one Injector holds rules, each naming
// the operations and devices it applies to and what it does to them
// (fail with an error, wait, stall until released, tear a write, cut an
// iteration short); every device wrapped by the injector consults them on
// each call. Tests of hedged reads, frozen devices, lost quorums and
// interrupted walks use it to make those failures happen at a chosen
// call, in-process and deterministically.
//
// It depends only on the shard package: a wrapped device has the method
// set of objectstore.Device, so the object layer's own tests can use it.
package devfault

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/strata-storage/strata/objectstore/shard"
)

// Op is a device operation.
type Op string

// The operations a rule can name.
const (
	Read        Op = "read"   // ReadBlock
	Write       Op = "write"  // a shard stream's Append and Finish
	Commit      Op = "commit" // metadata commits
	Get         Op = "get"
	Iter        Op = "iter"
	Free        Op = "free"
	DeleteRange Op = "delete-range"
)

// ErrInjected is what a rule without an error of its own returns.
var ErrInjected = errors.New("devfault: injected fault")

// Rule is one fault.
type Rule struct {
	// Ops and Devices select the calls (empty: all).
	Ops     []Op
	Devices []string
	// Skip lets this many selected calls through before the rule applies;
	// Times bounds how often it applies (0: until removed).
	Skip, Times int
	// Delay waits before the call; Stall waits until it is closed. A call
	// with a context gives up when the context ends, returning its error.
	Delay time.Duration
	Stall <-chan struct{}
	// Err fails the call (after any wait); a rule that neither waits nor
	// cuts fails with ErrInjected. Torn, on a Write, first writes half of
	// the record, then fails.
	Err  error
	Torn bool
	// Cut, on an Iter, ends the iteration after that many records; its
	// Close then reports ErrInjected unless Lie is set.
	Cut int
	Lie bool
}

type rule struct {
	Rule
	seen, applied int
}

// Injector holds the rules and counts the calls of the devices it wraps.
type Injector struct {
	gate  sync.RWMutex // Quiesce holds it; metadata changes share it
	mu    sync.Mutex
	rules []*rule
	calls map[string]map[Op]int // device -> op -> calls
	// waiting counts calls held by a Delay or a Stall right now.
	waiting map[string]int
}

// New makes an injector with no rules.
func New() *Injector {
	return &Injector{calls: map[string]map[Op]int{}, waiting: map[string]int{}}
}

// Add puts a rule in force; the function returned takes it out.
func (in *Injector) Add(r Rule) (remove func()) {
	rl := &rule{Rule: r}
	in.mu.Lock()
	in.rules = append(in.rules, rl)
	in.mu.Unlock()
	return func() {
		in.mu.Lock()
		defer in.mu.Unlock()
		in.rules = slices.DeleteFunc(in.rules, func(x *rule) bool { return x == rl })
	}
}

// Clear takes every rule out.
func (in *Injector) Clear() {
	in.mu.Lock()
	in.rules = nil
	in.mu.Unlock()
}

// Quiesce stops metadata changes (Commit, Free, DeleteRange) on every
// device the injector wraps: calls in flight finish, new ones wait until
// resume. A crash image taken meanwhile is of one logical moment, while
// shard data writes go on as they would at a real power cut.
func (in *Injector) Quiesce() (resume func()) {
	in.gate.Lock()
	return in.gate.Unlock
}

// Calls is how many calls of op a device has had.
func (in *Injector) Calls(device string, op Op) int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.calls[device][op]
}

// Waiting is how many calls of a device a rule is holding now.
func (in *Injector) Waiting(device string) int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.waiting[device]
}

// match counts a call and returns the rules that apply to it.
func (in *Injector) match(device string, op Op) []Rule {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.calls[device] == nil {
		in.calls[device] = map[Op]int{}
	}
	in.calls[device][op]++
	var out []Rule
	for _, r := range in.rules {
		if len(r.Ops) > 0 && !slices.Contains(r.Ops, op) || len(r.Devices) > 0 && !slices.Contains(r.Devices, device) {
			continue
		}
		r.seen++
		if r.seen <= r.Skip || r.Times > 0 && r.applied >= r.Times {
			continue
		}
		r.applied++
		out = append(out, r.Rule)
	}
	return out
}

// apply runs the waits of the rules and returns the first error; torn
// and cut are reported for the caller to act on.
func (in *Injector) apply(ctx context.Context, device string, rules []Rule) (torn bool, cut *Rule, err error) {
	for i := range rules {
		r := &rules[i]
		if r.Delay > 0 || r.Stall != nil {
			if werr := in.wait(ctx, device, r); werr != nil {
				return false, nil, werr
			}
		}
		if r.Cut > 0 {
			cut = r
		}
		if r.Torn {
			torn = true
		}
		fails := r.Err != nil || r.Torn || r.Delay == 0 && r.Stall == nil && r.Cut == 0
		if err == nil && fails {
			err = r.Err
			if err == nil {
				err = ErrInjected
			}
		}
	}
	return torn, cut, err
}

func (in *Injector) wait(ctx context.Context, device string, r *Rule) error {
	in.mu.Lock()
	in.waiting[device]++
	in.mu.Unlock()
	defer func() {
		in.mu.Lock()
		in.waiting[device]--
		in.mu.Unlock()
	}()
	var delay <-chan time.Time
	if r.Delay > 0 {
		t := time.NewTimer(r.Delay)
		defer t.Stop()
		delay = t.C
	}
	for delay != nil || r.Stall != nil {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-delay:
			delay = nil
		case <-r.Stall:
			return nil
		}
	}
	return nil
}

// Inner is the device seam a Device wraps (objectstore.Device's methods).
type Inner interface {
	Name() string
	NewWriter(ctx context.Context, sizeHint int64) shard.StreamWriter
	ReadBlock(ctx context.Context, loc *shard.Locator, i int, buf []byte) ([]byte, error)
	Holds(loc *shard.Locator) bool
	Free(ctx context.Context, loc shard.Locator) error
	Commit(ctx context.Context, ops ...shard.Op) error
	Get(ctx context.Context, key []byte) ([]byte, error)
	Iter(ctx context.Context, lower, upper []byte) (shard.RecordIter, error)
	DeleteRange(ctx context.Context, lower, upper []byte) error
	RebuildFreeSpace(walk func(yield func(*shard.Locator)) error) error
	Remote() bool
	Online() bool
}

// Device is a device whose calls the injector's rules may fail.
type Device struct {
	Inner
	in     *Injector
	remote bool
}

// Wrap makes d subject to the injector's rules.
func (in *Injector) Wrap(d Inner) *Device { return &Device{Inner: d, in: in, remote: d.Remote()} }

// WrapRemote is Wrap of a device the object layer is to treat as another
// node's (answers awaited in parallel, reads hedged), as a local store
// standing in for a peer in a test.
func (in *Injector) WrapRemote(d Inner) *Device { return &Device{Inner: d, in: in, remote: true} }

// Remote says what the wrapped device says, or true for WrapRemote.
func (d *Device) Remote() bool { return d.remote }

// Unwrap is the wrapped device.
func (d *Device) Unwrap() Inner { return d.Inner }

func (d *Device) fault(ctx context.Context, op Op) (bool, *Rule, error) {
	return d.in.apply(ctx, d.Name(), d.in.match(d.Name(), op))
}

func (d *Device) ReadBlock(ctx context.Context, loc *shard.Locator, i int, buf []byte) ([]byte, error) {
	if _, _, err := d.fault(ctx, Read); err != nil {
		return nil, err
	}
	return d.Inner.ReadBlock(ctx, loc, i, buf)
}

func (d *Device) Commit(ctx context.Context, ops ...shard.Op) error {
	if _, _, err := d.fault(ctx, Commit); err != nil {
		return err
	}
	d.in.gate.RLock()
	defer d.in.gate.RUnlock()
	return d.Inner.Commit(ctx, ops...)
}

func (d *Device) Free(ctx context.Context, loc shard.Locator) error {
	if _, _, err := d.fault(ctx, Free); err != nil {
		return err
	}
	d.in.gate.RLock()
	defer d.in.gate.RUnlock()
	return d.Inner.Free(ctx, loc)
}

func (d *Device) Get(ctx context.Context, key []byte) ([]byte, error) {
	if _, _, err := d.fault(ctx, Get); err != nil {
		return nil, err
	}
	return d.Inner.Get(ctx, key)
}

func (d *Device) DeleteRange(ctx context.Context, lower, upper []byte) error {
	if _, _, err := d.fault(ctx, DeleteRange); err != nil {
		return err
	}
	d.in.gate.RLock()
	defer d.in.gate.RUnlock()
	return d.Inner.DeleteRange(ctx, lower, upper)
}

func (d *Device) Iter(ctx context.Context, lower, upper []byte) (shard.RecordIter, error) {
	_, cut, err := d.fault(ctx, Iter)
	if err != nil {
		return nil, err
	}
	it, err := d.Inner.Iter(ctx, lower, upper)
	if err != nil || cut == nil {
		return it, err
	}
	return &cutIter{RecordIter: it, left: cut.Cut, lie: cut.Lie}, nil
}

func (d *Device) NewWriter(ctx context.Context, sizeHint int64) shard.StreamWriter {
	return &writer{StreamWriter: d.Inner.NewWriter(ctx, sizeHint), d: d, ctx: ctx}
}

// writer is a shard stream whose appends and finish the rules may fail
// or tear.
type writer struct {
	shard.StreamWriter
	d   *Device
	ctx context.Context
}

func (w *writer) Append(rec []byte) error {
	torn, _, err := w.d.fault(w.ctx, Write)
	if torn && len(rec) > shard.HeaderSize {
		half := shard.HeaderSize + (len(rec)-shard.HeaderSize)/2
		w.StreamWriter.Append(rec[:half])
	}
	if err != nil {
		return err
	}
	return w.StreamWriter.Append(rec)
}

func (w *writer) Finish() (shard.Locator, error) {
	if _, _, err := w.d.fault(w.ctx, Write); err != nil {
		w.StreamWriter.Abort()
		return shard.Locator{}, err
	}
	return w.StreamWriter.Finish()
}

// cutIter ends a walk early, as pebble's iterator does at a corrupt block.
type cutIter struct {
	shard.RecordIter
	left     int
	lie, cut bool
}

func (c *cutIter) Valid() bool { return !c.cut && c.RecordIter.Valid() }

func (c *cutIter) Next() {
	c.RecordIter.Next()
	if c.left--; c.left <= 0 && c.RecordIter.Valid() {
		c.cut = true
	}
}

func (c *cutIter) Close() error {
	err := c.RecordIter.Close()
	if c.cut && !c.lie {
		return errors.Join(err, ErrInjected)
	}
	return err
}
