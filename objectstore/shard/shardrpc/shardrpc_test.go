package shardrpc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/strata-storage/strata/blockpool"
	"github.com/strata-storage/strata/cluster"
	"github.com/strata-storage/strata/metastore"
	"github.com/strata-storage/strata/objectstore/shard"
)

type oneDevice struct {
	id uint32
	st *shard.Store
}

func (o oneDevice) LocalDevice(id uint32) *shard.Store {
	if id == o.id {
		return o.st
	}
	return nil
}
func (o oneDevice) LocalDeviceIDs() []uint32 { return []uint32{o.id} }

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// rpcNode serves one device (id 7) of node "n2" on a real 127.0.0.1 port.
func rpcNode(t *testing.T) (*httptest.Server, *shard.Store) { return rpcNodeTB(t) }

func rpcNodeTB(t testing.TB) (*httptest.Server, *shard.Store) {
	t.Helper()
	db, err := metastore.OpenPebble(t.TempDir(), quietLog)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st, err := shard.Open(7, "disk0", blockpool.NewMemVolume(64<<20), db, nil, quietLog)
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := serve(t, oneDevice{7, st})
	return srv, st
}

// serve runs node n2's RPC server with devices' shard handlers.
func serve(t testing.TB, devices LocalDevices) (*httptest.Server, *Server) {
	rpc := cluster.NewServer("n2", "s3cret", Generations(devices), nil, quietLog)
	s := Register(rpc, "n2", devices, nil)
	srv := httptest.NewServer(rpc)
	t.Cleanup(srv.Close)
	return srv, s
}

func testTimeouts() cluster.Timeouts {
	return cluster.Timeouts{Dial: time.Second, Call: 300 * time.Millisecond, Block: 300 * time.Millisecond, Finish: 300 * time.Millisecond,
		Probe: 200 * time.Millisecond, Backoff: time.Second, Interval: time.Second}
}

// probedPeer is node n1's client of the RPC server srv (node n2), probed.
func probedPeer(t *testing.T, srv *httptest.Server) *cluster.Peer {
	t.Helper()
	tr := cluster.NewTransport("n1", "s3cret", nil, testTimeouts())
	t.Cleanup(tr.Close)
	p := tr.NewPeer("n2", srv.Listener.Addr().String())
	if _, err := p.Probe(context.Background()); err != nil {
		t.Fatal(err)
	}
	return p
}

// Every operation of the device seam crosses the wire with its meaning:
// streams, verified block reads, records with conditions, paged lists,
// deletes and frees, and the errors the object layer tells apart.
func TestRemoteDeviceRoundTrip(t *testing.T) {
	srv, local := rpcNode(t)
	d := Device(probedPeer(t, srv), 7, "disk0")

	// A shard stream of three blocks, the last one short.
	blocks := [][]byte{bytes.Repeat([]byte("a"), 1000), bytes.Repeat([]byte("b"), 1000), []byte("tail")}
	w := d.NewWriter(context.Background(), 2004)
	for _, b := range blocks {
		if err := w.Append(append(make([]byte, shard.HeaderSize), b...)); err != nil {
			t.Fatal(err)
		}
	}
	loc, err := w.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if !d.Holds(&loc) {
		t.Fatal("remote device disowns its own stream")
	}
	for i, want := range blocks {
		got, err := d.ReadBlock(context.Background(), &loc, i, make([]byte, shard.HeaderSize+loc.DataLen(i)))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("block %d: %q, %v", i, got, err)
		}
	}
	// The same bytes as a local read.
	if got, err := local.ReadBlock(context.Background(), &loc, 2, make([]byte, shard.HeaderSize+4)); err != nil || string(got) != "tail" {
		t.Fatalf("local read: %q %v", got, err)
	}

	// Records: commit, get, list across pages, delete range.
	const n = 600 // more than a list page
	var ops []shard.Op
	for i := 0; i < n; i++ {
		ops = append(ops, shard.Op{Key: []byte(fmt.Sprintf("k%04d", i)), Value: []byte(strconv.Itoa(i))})
	}
	if err := d.Commit(context.Background(), ops...); err != nil {
		t.Fatal(err)
	}
	// Conditions cross the wire: a stale expectation is a conflict.
	if err := d.Commit(context.Background(), shard.Op{Key: []byte("k0001"), Value: []byte("x"), Check: true, Expect: []byte("stale")}); !errors.Is(err, shard.ErrConflict) {
		t.Fatalf("stale conditional commit: %v", err)
	}
	if err := d.Commit(context.Background(), shard.Op{Key: []byte("new"), Value: []byte("x"), Check: true}); err != nil {
		t.Fatalf("create-if-absent: %v", err)
	}
	if err := d.Commit(context.Background(), shard.Op{Key: []byte("new"), Delete: true, Check: true, Expect: []byte("x")}); err != nil {
		t.Fatalf("conditional delete: %v", err)
	}
	if v, err := d.Get(context.Background(), []byte("k0042")); err != nil || string(v) != "42" {
		t.Fatalf("get: %q %v", v, err)
	}
	if _, err := d.Get(context.Background(), []byte("nope")); !errors.Is(err, metastore.ErrNotFound) {
		t.Fatalf("missing key: %v", err)
	}
	it, err := d.Iter(context.Background(), []byte("k0100"), []byte("k0500"))
	if err != nil {
		t.Fatal(err)
	}
	count := 0
	for ; it.Valid(); it.Next() {
		if want := fmt.Sprintf("k%04d", 100+count); string(it.Key()) != want {
			t.Fatalf("key %d: %s, want %s", count, it.Key(), want)
		}
		count++
	}
	if count != 400 || it.Close() != nil {
		t.Fatalf("listed %d of 400", count)
	}
	it, _ = d.Iter(context.Background(), nil, nil)
	it.SeekGE([]byte("k0598"))
	if !it.Valid() || string(it.Key()) != "k0598" {
		t.Fatal("seek")
	}
	if err := d.DeleteRange(context.Background(), []byte("k0000"), []byte("k0300")); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Get(context.Background(), []byte("k0299")); !errors.Is(err, metastore.ErrNotFound) {
		t.Fatalf("deleted range: %v", err)
	}
	if err := d.Free(context.Background(), loc); err != nil {
		t.Fatal(err)
	}
	if _, err := d.ReadBlock(context.Background(), &loc, 0, make([]byte, shard.HeaderSize+1000)); !errors.Is(err, shard.ErrCorrupt) {
		t.Fatalf("read of a freed stream: %v", err)
	}
}

// A stream whose gateway gives up (the body ends without its final frame)
// is aborted by the server: nothing half-written is left committed.
func TestRemoteStreamAbort(t *testing.T) {
	srv, local := rpcNode(t)
	tr := cluster.NewTransport("n1", "s3cret", nil, testTimeouts())
	defer tr.Close()
	d := Device(tr.NewPeer("n2", srv.Listener.Addr().String()), 7, "disk0")
	before := local.Head()
	w := d.NewWriter(context.Background(), 1<<20)
	if err := w.Append(append(make([]byte, shard.HeaderSize), make([]byte, 4096)...)); err != nil {
		t.Fatal(err)
	}
	w.Abort()
	if _, err := w.Finish(); err == nil {
		t.Fatal("finish after abort succeeded")
	}
	// The space comes back: the next stream reuses it.
	w = d.NewWriter(context.Background(), 4096)
	if err := w.Append(append(make([]byte, shard.HeaderSize), make([]byte, 4096)...)); err != nil {
		t.Fatal(err)
	}
	loc, err := w.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if loc.Offsets[0] >= before+8192 {
		t.Fatalf("aborted stream's space not reused: head was %d, new stream at %d", before, loc.Offsets[0])
	}
}

// A frozen peer's device is offline to the object layer: the transport's
// bounds (tested in cluster) come out as shard.ErrOffline, for records and
// for streams.
func TestFrozenPeerIsBoundedAndSkipped(t *testing.T) {
	release := make(chan struct{})
	frozen := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer frozen.Close()
	defer close(release)
	tr := cluster.NewTransport("n1", "s3cret", nil, testTimeouts())
	defer tr.Close()
	p := tr.NewPeer("n3", frozen.Listener.Addr().String())
	d := Device(p, 1, "disk0")

	start := time.Now()
	if _, err := d.Get(context.Background(), []byte("k")); !errors.Is(err, shard.ErrOffline) {
		t.Fatalf("get from a frozen peer: %v", err)
	}
	if took := time.Since(start); took > 2*testTimeouts().Call {
		t.Fatalf("first call took %v, bound is the call timeout %v", took, testTimeouts().Call)
	}
	if p.Up() {
		t.Fatal("peer still up after a timeout")
	}
	start = time.Now()
	if _, err := d.Get(context.Background(), []byte("k")); !errors.Is(err, shard.ErrOffline) || time.Since(start) > 50*time.Millisecond {
		t.Fatalf("a down peer was not skipped at once: %v after %v", err, time.Since(start))
	}
	w := d.NewWriter(context.Background(), 100)
	if err := w.Append(make([]byte, shard.HeaderSize+10)); !errors.Is(err, shard.ErrOffline) {
		t.Fatalf("stream to a down peer: %v", err)
	}

	// A stream already open when the peer froze fails within the block
	// and finish timeouts rather than hanging the PUT.
	p2 := tr.NewPeer("n4", frozen.Listener.Addr().String())
	w = Device(p2, 1, "disk0").NewWriter(context.Background(), 64<<20)
	start = time.Now()
	var err error
	for i := 0; i < 64 && err == nil; i++ {
		err = w.Append(make([]byte, shard.HeaderSize+1<<20))
	}
	if err == nil {
		_, err = w.Finish()
	}
	if !errors.Is(err, shard.ErrOffline) {
		t.Fatalf("stream to a frozen peer ended with %v", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("stream to a frozen peer took %v to fail", took)
	}
}

// Issue 18 must-show 2, at the seam: a shard read whose caller goes away
// (the gateway's client hung up) ends at once on the calling side without
// marking the peer down, and the serving node gives the read up and
// counts it instead of sending a block nobody waits for.
func TestRemoteReadIsCancelledWithItsCaller(t *testing.T) {
	db, err := metastore.OpenPebble(t.TempDir(), quietLog)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	vol := blockpool.NewFaultVolume(blockpool.NewMemVolume(64 << 20))
	st, err := shard.Open(7, "disk0", vol, db, nil, quietLog)
	if err != nil {
		t.Fatal(err)
	}
	srv, server := serve(t, oneDevice{7, st})
	p := probedPeer(t, srv)
	d := Device(p, 7, "disk0")
	w := d.NewWriter(context.Background(), 1000)
	if err := w.Append(append(make([]byte, shard.HeaderSize), bytes.Repeat([]byte("x"), 1000)...)); err != nil {
		t.Fatal(err)
	}
	loc, err := w.Finish()
	if err != nil {
		t.Fatal(err)
	}

	release := make(chan struct{})
	var once sync.Once
	unstall := func() { once.Do(func() { close(release) }) }
	defer unstall()         // before srv.Close, which waits for the stalled handler
	vol.StallReads(release) // the serving disk stops answering
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel) // the client hangs up
	start := time.Now()
	_, err = d.ReadBlock(ctx, &loc, 0, make([]byte, shard.HeaderSize+1000))
	if !errors.Is(err, context.Canceled) || time.Since(start) > testTimeouts().Call/2 {
		t.Fatalf("a cancelled read: %v after %v", err, time.Since(start))
	}
	if !p.Up() {
		t.Fatal("a read the caller gave up marked the peer down")
	}
	time.Sleep(500 * time.Millisecond) // the serving node sees the connection go
	unstall()
	vol.StallReads(nil)
	deadline := time.Now().Add(5 * time.Second)
	for server.Cancelled() != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := server.Cancelled(); n != 1 {
		t.Fatalf("the serving node counted %v cancelled reads, want 1", n)
	}
	// The peer still serves the next read.
	if got, err := d.ReadBlock(context.Background(), &loc, 0, make([]byte, shard.HeaderSize+1000)); err != nil || len(got) != 1000 {
		t.Fatalf("the next read: %d bytes, %v", len(got), err)
	}
}
