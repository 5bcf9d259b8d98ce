package devfault

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/strata-storage/strata/objectstore/shard"
)

// fake is a device that answers every call at once.
type fake struct {
	name    string
	appends [][]byte
}

func (f *fake) Name() string                                        { return f.name }
func (f *fake) NewWriter(context.Context, int64) shard.StreamWriter { return &fakeWriter{f} }
func (f *fake) Holds(*shard.Locator) bool                           { return true }
func (f *fake) Free(context.Context, shard.Locator) error           { return nil }
func (f *fake) Commit(context.Context, ...shard.Op) error           { return nil }
func (f *fake) Get(context.Context, []byte) ([]byte, error)         { return []byte("v"), nil }
func (f *fake) Iter(context.Context, []byte, []byte) (shard.RecordIter, error) {
	return &sliceIter{keys: []string{"a", "b", "c", "d"}}, nil
}
func (f *fake) DeleteRange(context.Context, []byte, []byte) error       { return nil }
func (f *fake) RebuildFreeSpace(func(func(*shard.Locator)) error) error { return nil }
func (f *fake) Remote() bool                                            { return false }
func (f *fake) Online() bool                                            { return true }
func (f *fake) ReadBlock(_ context.Context, _ *shard.Locator, _ int, buf []byte) ([]byte, error) {
	return buf, nil
}

type fakeWriter struct{ f *fake }

func (w *fakeWriter) Append(rec []byte) error {
	w.f.appends = append(w.f.appends, append([]byte(nil), rec...))
	return nil
}
func (w *fakeWriter) Finish() (shard.Locator, error) { return shard.Locator{}, nil }
func (w *fakeWriter) Abort()                         {}

type sliceIter struct {
	keys []string
	i    int
}

func (s *sliceIter) SeekGE([]byte) {}
func (s *sliceIter) Valid() bool   { return s.i < len(s.keys) }
func (s *sliceIter) Key() []byte   { return []byte(s.keys[s.i]) }
func (s *sliceIter) Value() []byte { return nil }
func (s *sliceIter) Next()         { s.i++ }
func (s *sliceIter) Close() error  { return nil }

func TestRulesSelectCallsByOpDeviceAndCount(t *testing.T) {
	in := New()
	a, b := in.Wrap(&fake{name: "a"}), in.Wrap(&fake{name: "b"})
	boom := errors.New("boom")
	in.Add(Rule{Ops: []Op{Get}, Devices: []string{"a"}, Skip: 1, Times: 2, Err: boom})
	var got []error
	for i := 0; i < 5; i++ {
		_, err := a.Get(context.Background(), nil)
		got = append(got, err)
	}
	want := []error{nil, boom, boom, nil, nil}
	for i := range want {
		if !errors.Is(got[i], want[i]) && got[i] != want[i] {
			t.Fatalf("call %d of a: %v, want %v", i, got[i], want[i])
		}
	}
	if _, err := b.Get(context.Background(), nil); err != nil {
		t.Fatalf("device b was not named: %v", err)
	}
	if err := a.Commit(context.Background()); err != nil {
		t.Fatalf("commit was not named: %v", err)
	}
	if in.Calls("a", Get) != 5 || in.Calls("b", Get) != 1 {
		t.Fatalf("calls: %d %d", in.Calls("a", Get), in.Calls("b", Get))
	}
	remove := in.Add(Rule{Devices: []string{"b"}}) // a bare rule fails everything
	if err := b.Free(context.Background(), shard.Locator{}); !errors.Is(err, ErrInjected) {
		t.Fatalf("bare rule: %v", err)
	}
	remove()
	if err := b.Free(context.Background(), shard.Locator{}); err != nil {
		t.Fatalf("after remove: %v", err)
	}
}

func TestStallsEndWithTheirReleaseOrTheCallersContext(t *testing.T) {
	in := New()
	d := in.Wrap(&fake{name: "d"})
	release := make(chan struct{})
	in.Add(Rule{Ops: []Op{Read}, Stall: release})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := d.ReadBlock(ctx, nil, 0, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a stalled read whose caller left: %v", err)
	}
	done := make(chan error)
	go func() {
		_, err := d.ReadBlock(context.Background(), nil, 0, nil)
		done <- err
	}()
	for in.Waiting("d") != 1 {
		time.Sleep(time.Millisecond)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("a released read: %v", err)
	}
	in.Clear()
	in.Add(Rule{Ops: []Op{Commit}, Delay: 30 * time.Millisecond})
	start := time.Now()
	if err := d.Commit(context.Background()); err != nil || time.Since(start) < 30*time.Millisecond {
		t.Fatalf("a delayed commit: %v after %v", err, time.Since(start))
	}
}

func TestTornWritesAndCutWalks(t *testing.T) {
	in := New()
	f := &fake{name: "d"}
	d := in.Wrap(f)
	in.Add(Rule{Ops: []Op{Write}, Torn: true, Times: 1})
	w := d.NewWriter(context.Background(), 0)
	rec := make([]byte, shard.HeaderSize+100)
	if err := w.Append(rec); !errors.Is(err, ErrInjected) {
		t.Fatalf("torn append: %v", err)
	}
	if len(f.appends) != 1 || len(f.appends[0]) != shard.HeaderSize+50 {
		t.Fatalf("a torn append wrote %d records", len(f.appends))
	}
	in.Clear()
	for _, lie := range []bool{false, true} {
		in.Clear()
		in.Add(Rule{Ops: []Op{Iter}, Cut: 2, Lie: lie})
		it, _ := d.Iter(context.Background(), nil, nil)
		n := 0
		for ; it.Valid(); it.Next() {
			n++
		}
		err := it.Close()
		if n != 2 || (err == nil) != lie {
			t.Fatalf("lie %v: walked %d, close %v", lie, n, err)
		}
	}
	// Quiesce holds metadata changes until resumed.
	in.Clear()
	resume := in.Quiesce()
	done := make(chan struct{})
	go func() { d.Commit(context.Background()); close(done) }()
	select {
	case <-done:
		t.Fatal("a commit ran while quiesced")
	case <-time.After(30 * time.Millisecond):
	}
	resume()
	<-done
}
