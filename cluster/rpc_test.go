package cluster

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
	"testing"
	"time"

	"github.com/strata-storage/strata/blockpool"
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
	srv := httptest.NewServer(NewServer("n2", "s3cret", oneDevice{7, st}, quietLog))
	t.Cleanup(srv.Close)
	return srv, st
}

func testTimeouts() Timeouts {
	return Timeouts{Dial: time.Second, Call: 300 * time.Millisecond, Block: 300 * time.Millisecond, Finish: 300 * time.Millisecond,
		Probe: 200 * time.Millisecond, Backoff: time.Second, Interval: time.Second}
}

func TestRPCRefusesRequestsWithoutTheClusterSecret(t *testing.T) {
	srv, _ := rpcNode(t)
	sign := func(secret string, skew time.Duration) func(*http.Request) {
		return func(r *http.Request) {
			signRequest(r, secret, "n1")
			if skew != 0 {
				date := strconv.FormatInt(time.Now().Add(skew).UnixNano(), 10)
				r.Header.Set(hdrDate, date)
				r.Header.Set(hdrAuth, mac(secret, r.Method, r.URL.RequestURI(), date))
			}
		}
	}
	cases := []struct {
		name   string
		path   string
		sign   func(*http.Request)
		status int
	}{
		{"unsigned health", "health", func(*http.Request) {}, http.StatusUnauthorized},
		{"unsigned record read", "dev/7/get", func(*http.Request) {}, http.StatusUnauthorized},
		{"wrong secret", "dev/7/get", sign("guess", 0), http.StatusUnauthorized},
		{"replayed an hour later", "dev/7/get", sign("s3cret", -time.Hour), http.StatusUnauthorized},
		{"signature of another path", "dev/7/get", func(r *http.Request) {
			signRequest(r, "s3cret", "n1")
			r.URL.Path = "/rpc/v1/dev/7/deleterange"
		}, http.StatusUnauthorized},
		{"right secret", "dev/7/get", sign("s3cret", 0), http.StatusNotFound}, // signed: the key just is not there
		{"right secret, health", "health", sign("s3cret", 0), http.StatusOK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/rpc/v1/"+tc.path, bytes.NewReader([]byte("\x01k")))
			if tc.path == "health" {
				req.Method = http.MethodGet
			}
			tc.sign(req)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
		})
	}
}

func TestRemoteDeviceRoundTrip(t *testing.T) {
	srv, local := rpcNode(t)
	tr := NewTransport("n1", "s3cret", nil, testTimeouts())
	defer tr.Close()
	p := tr.NewPeer("n2", srv.Listener.Addr().String())
	if _, err := p.Probe(context.Background()); err != nil {
		t.Fatal(err)
	}
	d := p.Device(7, "disk0")

	// A shard stream of three blocks, the last one short.
	blocks := [][]byte{bytes.Repeat([]byte("a"), 1000), bytes.Repeat([]byte("b"), 1000), []byte("tail")}
	w := d.NewWriter(2004)
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
		got, err := d.ReadBlock(&loc, i, make([]byte, shard.HeaderSize+loc.DataLen(i)))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("block %d: %q, %v", i, got, err)
		}
	}
	// The same bytes as a local read.
	if got, err := local.ReadBlock(&loc, 2, make([]byte, shard.HeaderSize+4)); err != nil || string(got) != "tail" {
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
	if v, err := d.Get([]byte("k0042")); err != nil || string(v) != "42" {
		t.Fatalf("get: %q %v", v, err)
	}
	if _, err := d.Get([]byte("nope")); !errors.Is(err, metastore.ErrNotFound) {
		t.Fatalf("missing key: %v", err)
	}
	it, err := d.Iter([]byte("k0100"), []byte("k0500"))
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
	it, _ = d.Iter(nil, nil)
	it.SeekGE([]byte("k0598"))
	if !it.Valid() || string(it.Key()) != "k0598" {
		t.Fatal("seek")
	}
	if err := d.DeleteRange([]byte("k0000"), []byte("k0300")); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Get([]byte("k0299")); !errors.Is(err, metastore.ErrNotFound) {
		t.Fatalf("deleted range: %v", err)
	}
	if err := d.Free(loc); err != nil {
		t.Fatal(err)
	}
	if _, err := d.ReadBlock(&loc, 0, make([]byte, shard.HeaderSize+1000)); !errors.Is(err, shard.ErrCorrupt) {
		t.Fatalf("read of a freed stream: %v", err)
	}
}

// A stream whose gateway gives up (the body ends without its final frame)
// is aborted by the server: nothing half-written is left committed.
func TestRemoteStreamAbort(t *testing.T) {
	srv, local := rpcNode(t)
	tr := NewTransport("n1", "s3cret", nil, testTimeouts())
	defer tr.Close()
	d := tr.NewPeer("n2", srv.Listener.Addr().String()).Device(7, "disk0")
	before := local.Head()
	w := d.NewWriter(1 << 20)
	if err := w.Append(append(make([]byte, shard.HeaderSize), make([]byte, 4096)...)); err != nil {
		t.Fatal(err)
	}
	w.Abort()
	if _, err := w.Finish(); err == nil {
		t.Fatal("finish after abort succeeded")
	}
	// The space comes back: the next stream reuses it.
	w = d.NewWriter(4096)
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

// A peer that accepts connections but never answers (a frozen process)
// costs one call timeout; then it is skipped at once until it answers.
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
	tr := NewTransport("n1", "s3cret", nil, testTimeouts())
	defer tr.Close()
	p := tr.NewPeer("n3", frozen.Listener.Addr().String())
	d := p.Device(1, "disk0")

	start := time.Now()
	if _, err := d.Get([]byte("k")); !errors.Is(err, shard.ErrOffline) {
		t.Fatalf("get from a frozen peer: %v", err)
	}
	if took := time.Since(start); took > 2*testTimeouts().Call {
		t.Fatalf("first call took %v, bound is the call timeout %v", took, testTimeouts().Call)
	}
	if p.Up() {
		t.Fatal("peer still up after a timeout")
	}
	start = time.Now()
	if _, err := d.Get([]byte("k")); !errors.Is(err, shard.ErrOffline) || time.Since(start) > 50*time.Millisecond {
		t.Fatalf("a down peer was not skipped at once: %v after %v", err, time.Since(start))
	}
	w := d.NewWriter(100)
	if err := w.Append(make([]byte, shard.HeaderSize+10)); !errors.Is(err, shard.ErrOffline) {
		t.Fatalf("stream to a down peer: %v", err)
	}

	// A stream already open when the peer froze fails within the block
	// and finish timeouts rather than hanging the PUT.
	p2 := tr.NewPeer("n4", frozen.Listener.Addr().String())
	w = p2.Device(1, "disk0").NewWriter(64 << 20)
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
