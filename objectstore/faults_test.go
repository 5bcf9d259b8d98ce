package objectstore

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/strata-storage/strata/objectstore/devfault"
)

// faultStore is a 2+2 store on four devices wrapped by one injector, each
// standing in for another node's device (records awaited in parallel,
// reads hedged), as on a gateway of a cluster.
func faultStore(t *testing.T, hedge time.Duration) (*testStore, *devfault.Injector) {
	t.Helper()
	ts := newTestStore(t, 2, 2, 4, 64<<10)
	inj := devfault.New()
	ts.editDevices(t, func(d []Device) {
		for i := range d {
			d[i] = inj.WrapRemote(d[i])
		}
	})
	ts.cfg.HedgeDelay = hedge
	return ts, inj
}

// dataDevices are the devices a plain read of key reads shards from.
func dataDevices(t *testing.T, ts *testStore, inj *devfault.Injector, key string) []string {
	t.Helper()
	before := map[string]int{}
	for _, d := range ts.devs {
		before[d.Name()] = inj.Calls(d.Name(), devfault.Read)
	}
	if _, err := readAll(t, ts.Store, key, 0, -1); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range ts.devs {
		if inj.Calls(d.Name(), devfault.Read) > before[d.Name()] {
			out = append(out, d.Name())
		}
	}
	if len(out) != 2 {
		t.Fatalf("a read of 2+2 read from %v", out)
	}
	return out
}

// A data device that stops answering reads costs a GET the hedge delay,
// not the stall: parity is read instead, and the stalled read is called
// off when the block is done (nothing is left waiting on the device).
func TestHedgedReadServesAroundAStalledDevice(t *testing.T) {
	ts, inj := faultStore(t, 30*time.Millisecond)
	ctx := context.Background()
	want := randBytes(512 << 10) // 8 blocks
	if _, err := ts.PutObject(ctx, "bucket", "k", bytes.NewReader(want), int64(len(want)), PutOptions{}); err != nil {
		t.Fatal(err)
	}
	slow := dataDevices(t, ts, inj, "k")[0]
	stall := make(chan struct{})
	defer close(stall)
	inj.Add(devfault.Rule{Ops: []devfault.Op{devfault.Read}, Devices: []string{slow}, Stall: stall})
	start := time.Now()
	type answer struct {
		b   []byte
		err error
	}
	done := make(chan answer, 1)
	go func() {
		b, err := readAll(t, ts.Store, "k", 0, -1)
		done <- answer{b, err}
	}()
	var a answer
	select {
	case a = <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the read waits for the stalled device")
	}
	took := time.Since(start)
	if a.err != nil || !bytes.Equal(a.b, want) {
		t.Fatalf("read with a stalled data device: %v", a.err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for inj.Waiting(slow) > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := inj.Waiting(slow); n != 0 {
		t.Fatalf("%d reads still wait on the stalled device after the GET", n)
	}
	t.Logf("8 blocks in %v with one data device stalled", took)
}

// A frozen device (every call waits until a timeout, as a peer that
// stopped answering does behind the RPC's deadlines) bounds a write by
// that timeout and does not stop reads: the write lands on the write
// quorum, reads are served by the others, and nothing returns wrong
// bytes.
func TestFrozenDeviceBoundsWritesAndReads(t *testing.T) {
	ts, inj := faultStore(t, 20*time.Millisecond)
	ctx := context.Background()
	old := randBytes(300 << 10)
	if _, err := ts.PutObject(ctx, "bucket", "k", bytes.NewReader(old), int64(len(old)), PutOptions{}); err != nil {
		t.Fatal(err)
	}
	frozen := dataDevices(t, ts, inj, "k")[1]
	const timeout = 300 * time.Millisecond
	thaw := inj.Add(devfault.Rule{Devices: []string{frozen}, Delay: timeout, Err: errors.New("the peer did not answer in time")})
	// Reads: bounded by the hedge, not the timeout.
	start := time.Now()
	if got, err := readAll(t, ts.Store, "k", 0, -1); err != nil || !bytes.Equal(got, old) {
		t.Fatalf("read with a frozen device: %v", err)
	}
	if took := time.Since(start); took > 10*timeout {
		t.Fatalf("a read with a frozen device took %v", took)
	}
	// Writes: bounded by the timeout, on three of four devices.
	next := randBytes(300 << 10)
	start = time.Now()
	if _, err := ts.PutObject(ctx, "bucket", "k", bytes.NewReader(next), int64(len(next)), PutOptions{}); err != nil {
		t.Fatalf("write with one frozen device of 2+2: %v", err)
	}
	if took := time.Since(start); took > 10*timeout {
		t.Fatalf("a write with a frozen device took %v", took)
	}
	if got, err := readAll(t, ts.Store, "k", 0, -1); err != nil || !bytes.Equal(got, next) {
		t.Fatalf("the write did not read back: %v", err)
	}
	// Thawed, it still reads (the frozen device's stale record loses to
	// the quorum's).
	thaw()
	if got, err := readAll(t, ts.Store, "k", 0, -1); err != nil || !bytes.Equal(got, next) {
		t.Fatalf("after the thaw: %v", err)
	}
}

// Losing the write quorum (two of four devices tear their shard writes)
// fails the write with ErrWriteQuorum and leaves the old version; losing
// the read quorum (three of four fail reads) fails the read with an
// error, never short or wrong bytes; both heal when the faults go.
func TestQuorumLossFailsCleanly(t *testing.T) {
	ts, inj := faultStore(t, 20*time.Millisecond)
	ctx := context.Background()
	old := randBytes(300 << 10)
	if _, err := ts.PutObject(ctx, "bucket", "k", bytes.NewReader(old), int64(len(old)), PutOptions{}); err != nil {
		t.Fatal(err)
	}
	names := []string{ts.devs[0].Name(), ts.devs[1].Name(), ts.devs[2].Name(), ts.devs[3].Name()}
	torn := inj.Add(devfault.Rule{Ops: []devfault.Op{devfault.Write}, Devices: names[:2], Torn: true})
	if _, err := ts.PutObject(ctx, "bucket", "k", bytes.NewReader(randBytes(300<<10)), 300<<10, PutOptions{}); !errors.Is(err, ErrWriteQuorum) {
		t.Fatalf("a write torn on 2 of 4 devices: %v", err)
	}
	torn()
	if got, err := readAll(t, ts.Store, "k", 0, -1); err != nil || !bytes.Equal(got, old) {
		t.Fatalf("after a failed write the object reads %v, want the old version", err)
	}
	unreadable := inj.Add(devfault.Rule{Ops: []devfault.Op{devfault.Read}, Devices: names[:3], Err: errors.New("read error")})
	got, err := readAll(t, ts.Store, "k", 0, -1)
	if !errors.Is(err, ErrReadQuorum) {
		t.Fatalf("a read with 3 of 4 devices failing: %d bytes, %v", len(got), err)
	}
	unreadable()
	if got, err := readAll(t, ts.Store, "k", 0, -1); err != nil || !bytes.Equal(got, old) {
		t.Fatalf("after the faults went: %v", err)
	}
	next := randBytes(300 << 10)
	if _, err := ts.PutObject(ctx, "bucket", "k", bytes.NewReader(next), int64(len(next)), PutOptions{}); err != nil {
		t.Fatalf("a write after the faults went: %v", err)
	}
}
