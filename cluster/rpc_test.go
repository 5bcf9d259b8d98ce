package cluster

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

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
	srv := httptest.NewServer(NewServer("n2", "s3cret", oneDevice{7, st}, nil, quietLog))
	t.Cleanup(srv.Close)
	return srv, st
}

func testTimeouts() Timeouts {
	return Timeouts{Dial: time.Second, Call: 300 * time.Millisecond, Block: 300 * time.Millisecond, Finish: 300 * time.Millisecond,
		Probe: 200 * time.Millisecond, Backoff: time.Second, Interval: time.Second}
}

// resign sets r's date (skewed by skew) and MAC again as a sender with
// secret would, keeping its nonce and body hash.
func resign(r *http.Request, secret string, skew time.Duration) {
	date := strconv.FormatInt(time.Now().Add(skew).UnixNano(), 10)
	r.Header.Set(hdrDate, date)
	sig := requestMAC(secret, canonical(r.Method, r.URL.RequestURI(), r.Header.Get(hdrNode), date, r.Header.Get(hdrNonce), r.Header.Get(hdrBody), r.Header.Get(volHeader)))
	r.Header.Set(hdrAuth, hex.EncodeToString(sig))
}

func TestRPCRefusesRequestsWithoutTheClusterSecret(t *testing.T) {
	srv, _ := rpcNode(t)
	body := []byte("\x01k")
	sign := func(secret string, skew time.Duration) func(*http.Request) {
		return func(r *http.Request) {
			signRequest(r, secret, "n1", body)
			if skew != 0 {
				resign(r, secret, skew)
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
		{"an hour old", "dev/7/get", sign("s3cret", -time.Hour), http.StatusUnauthorized},
		{"a minute ahead", "dev/7/get", sign("s3cret", time.Minute), http.StatusUnauthorized},
		{"signed before the node started", "dev/7/get", sign("s3cret", -2*time.Second), http.StatusUnauthorized},
		{"signature of another path", "dev/7/get", func(r *http.Request) {
			signRequest(r, "s3cret", "n1", body)
			r.URL.Path = "/rpc/v1/dev/7/deleterange"
		}, http.StatusUnauthorized},
		{"signature of another body", "dev/7/get", func(r *http.Request) {
			signRequest(r, "s3cret", "n1", []byte("\x01j"))
		}, http.StatusUnauthorized},
		{"another node name", "dev/7/get", func(r *http.Request) {
			signRequest(r, "s3cret", "n1", body)
			r.Header.Set(hdrNode, "n3")
		}, http.StatusUnauthorized},
		{"volume parameters added", "dev/7/get", func(r *http.Request) {
			signRequest(r, "s3cret", "n1", body)
			r.Header.Set(volHeader, `{"Off":4096}`)
		}, http.StatusUnauthorized},
		{"a whole body declared as a stream", "dev/7/get", func(r *http.Request) {
			signStream(r, "s3cret", "n1")
		}, http.StatusUnauthorized},
		{"right secret", "dev/7/get", sign("s3cret", 0), http.StatusNotFound}, // signed: the key just is not there
		{"right secret, health", "health", func(r *http.Request) { signRequest(r, "s3cret", "n1", nil) }, http.StatusOK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/rpc/v1/"+tc.path, bytes.NewReader(body))
			if tc.path == "health" {
				req.Method, req.Body, req.ContentLength = http.MethodGet, nil, 0
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

// A request captured on the wire is refused when sent again as it was, and
// when sent with another body; each refusal is counted.
func TestRPCReplayIsRefused(t *testing.T) {
	db, err := metastore.OpenPebble(t.TempDir(), quietLog)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st, _ := shard.Open(7, "disk0", blockpool.NewMemVolume(1<<20), db, nil, quietLog)
	reg := prometheus.NewRegistry()
	srv := httptest.NewServer(NewServer("n2", "s3cret", oneDevice{7, st}, reg, quietLog))
	defer srv.Close()
	ctx := context.Background()
	st.Commit(ctx, shard.Op{Key: []byte("victim"), Value: []byte("record")})

	ops := encodeOps([]shard.Op{{Key: []byte("k1"), Value: []byte("v1")}})
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/rpc/v1/dev/7/commit", bytes.NewReader(ops))
	signRequest(req, "s3cret", "n1", ops)
	captured := req.Header.Clone()
	send := func(body []byte) int {
		r, _ := http.NewRequest(http.MethodPost, srv.URL+"/rpc/v1/dev/7/commit", bytes.NewReader(body))
		r.Header = captured.Clone()
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := send(ops); got != http.StatusOK {
		t.Fatalf("original request: %d", got)
	}
	if got := send(ops); got != http.StatusUnauthorized {
		t.Fatalf("replayed as it was: %d", got)
	}
	evil := encodeOps([]shard.Op{{Key: []byte("victim"), Delete: true}})
	if got := send(evil); got != http.StatusUnauthorized {
		t.Fatalf("replayed with another body: %d", got)
	}
	if _, err := st.Get(ctx, []byte("victim")); err != nil {
		t.Fatalf("the victim's record: %v", err)
	}
	// A fresh nonce does not help without the secret: the MAC covers it.
	captured.Set(hdrNonce, strings.Repeat("ab", 16))
	if got := send(ops); got != http.StatusUnauthorized {
		t.Fatalf("new nonce, old MAC: %d", got)
	}
	// The nonce is checked before the body, so the swapped body counts as
	// a replay too.
	refused := srv.Config.Handler.(*Server).auth.refused
	for reason, want := range map[string]float64{reasonReplay: 2, reasonSignature: 1, reasonBody: 0} {
		if got := testutil.ToFloat64(refused.WithLabelValues(reason)); got != want {
			t.Errorf("refusals for %s: %v, want %v", reason, got, want)
		}
	}
	if n, err := testutil.GatherAndCount(reg, "strata_rpc_auth_failures_total"); err != nil || n != 5 {
		t.Fatalf("series on the registry: %d, %v", n, err)
	}
}

// Frames of a stream are sealed: a stream whose frame is altered, dropped or
// taken from another stream is refused and nothing is written.
func TestRPCStreamFramesAreAuthenticated(t *testing.T) {
	srv, st := rpcNode(t)
	rec := func(data string) []byte { return append(make([]byte, shard.HeaderSize), data...) }
	frames := func(mac *frameMAC, recs [][]byte, tamper func(i int, b []byte) []byte) []byte {
		var out []byte
		for i, r := range append(recs, nil) {
			sum := mac.next(r)
			f := binary.LittleEndian.AppendUint32(nil, uint32(len(r)))
			f = append(append(f, r...), sum[:]...)
			if tamper != nil {
				f = tamper(i, f)
			}
			out = append(out, f...)
		}
		return out
	}
	recs := [][]byte{rec("block zero"), rec("block one")}
	cases := []struct {
		name   string
		tamper func(i int, b []byte) []byte
		status int
	}{
		{"intact", nil, http.StatusOK},
		{"a flipped data byte", func(i int, b []byte) []byte {
			if i == 1 {
				b[4+shard.HeaderSize] ^= 1
			}
			return b
		}, http.StatusUnauthorized},
		{"a frame dropped", func(i int, b []byte) []byte {
			if i == 0 {
				return nil
			}
			return b
		}, http.StatusUnauthorized},
		{"the final MAC wrong", func(i int, b []byte) []byte {
			if i == 2 {
				b[len(b)-1] ^= 1
			}
			return b
		}, http.StatusUnauthorized},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := st.Used()
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/rpc/v1/dev/7/stream?hint=20", nil)
			mac := signStream(req, "s3cret", "n1")
			body := frames(mac, recs, tc.tamper)
			req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.status != http.StatusOK && st.Used() != before {
				t.Fatalf("a refused stream kept space: %d -> %d bytes used", before, st.Used())
			}
		})
	}
	// A stream whose frames were sealed for another request.
	other, _ := http.NewRequest(http.MethodPost, srv.URL+"/rpc/v1/dev/7/stream?hint=20", nil)
	body := frames(signStream(other, "s3cret", "n1"), recs, nil)
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/rpc/v1/dev/7/stream?hint=20", bytes.NewReader(body))
	signStream(req, "s3cret", "n1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("frames of another stream: %d", resp.StatusCode)
	}
}

func TestNonceCacheForgetsOnlyAfterTheWindow(t *testing.T) {
	var c nonceCache
	t0 := time.Unix(1000, 0)
	n := [16]byte{1}
	if !c.spend(n, t0) || c.spend(n, t0) {
		t.Fatal("a nonce is spent once")
	}
	// Still remembered for the whole time a request dated up to maxSkew
	// ahead stays valid.
	for d := time.Duration(0); d <= 2*maxSkew; d += maxSkew / 4 {
		if c.spend(n, t0.Add(d)) {
			t.Fatalf("nonce forgotten after %v", d)
		}
	}
	if !c.spend([16]byte{2}, t0.Add(5*maxSkew)) || c.len() > 1 {
		t.Fatalf("old nonces are kept: %d", c.len())
	}
}

// probedPeer is node n1's client of the RPC server srv (node n2), probed.
func probedPeer(t *testing.T, srv *httptest.Server) *Peer {
	t.Helper()
	tr := NewTransport("n1", "s3cret", nil, testTimeouts())
	t.Cleanup(tr.Close)
	p := tr.NewPeer("n2", srv.Listener.Addr().String())
	if _, err := p.Probe(context.Background()); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRemoteDeviceRoundTrip(t *testing.T) {
	srv, local := rpcNode(t)
	d := probedPeer(t, srv).Device(7, "disk0")

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
	tr := NewTransport("n1", "s3cret", nil, testTimeouts())
	defer tr.Close()
	d := tr.NewPeer("n2", srv.Listener.Addr().String()).Device(7, "disk0")
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
	w = p2.Device(1, "disk0").NewWriter(context.Background(), 64<<20)
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
	server := NewServer("n2", "s3cret", oneDevice{7, st}, nil, quietLog)
	srv := httptest.NewServer(server)
	defer srv.Close()
	p := probedPeer(t, srv)
	d := p.Device(7, "disk0")
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
