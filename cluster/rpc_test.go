package cluster

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// records is a component for the transport's tests: whole-body calls put,
// delete and get records, and a stream becomes one record (its frames
// joined) only when its final frame arrives, so a refused request visibly
// has no effect.
type records struct {
	mu sync.Mutex
	m  map[string]string
}

func (rs *records) register(srv Registerer) {
	srv.Handle(http.MethodPost, "test/{op}", func(w http.ResponseWriter, r *http.Request, c *Call) {
		rs.mu.Lock()
		defer rs.mu.Unlock()
		switch r.PathValue("op") {
		case "put":
			k, v, _ := strings.Cut(string(c.Body), "=")
			rs.m[k] = v
		case "delete":
			delete(rs.m, string(c.Body))
		case "get":
			v, ok := rs.m[string(c.Body)]
			if !ok {
				http.NotFound(w, r)
				return
			}
			io.WriteString(w, v)
		default:
			http.NotFound(w, r)
		}
	})
	srv.HandleStream(http.MethodPost, "test/stream/{key}", func(w http.ResponseWriter, r *http.Request, c *Call) {
		var joined []byte
		for {
			rec, err := c.ReadFrame(1, 1<<20)
			if err != nil {
				FrameError(w, err)
				return
			}
			if len(rec) == 0 {
				break
			}
			joined = append(joined, rec...)
		}
		rs.mu.Lock()
		rs.m[r.PathValue("key")] = string(joined)
		rs.mu.Unlock()
		io.WriteString(w, "stored")
	})
}

func (rs *records) get(k string) (string, bool) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	v, ok := rs.m[k]
	return v, ok
}

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// rpcNode serves a records component as node "n2" on a real 127.0.0.1
// port, with device 7 at generation 3 in its health answer.
func rpcNode(t *testing.T) (*httptest.Server, *records) { return rpcNodeReg(t, nil) }

func rpcNodeReg(t *testing.T, reg prometheus.Registerer) (*httptest.Server, *records) {
	t.Helper()
	rs := &records{m: map[string]string{}}
	srv := NewServer("n2", "s3cret", func() map[uint32]uint32 { return map[uint32]uint32{7: 3} }, reg, quietLog)
	rs.register(srv)
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return hs, rs
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
	sig := requestMAC(secret, canonical(r.Method, r.URL.RequestURI(), r.Header.Get(hdrNode), date, r.Header.Get(hdrNonce), r.Header.Get(hdrBody), r.Header.Get(ParamsHeader)))
	r.Header.Set(hdrAuth, hex.EncodeToString(sig))
}

func TestRPCRefusesRequestsWithoutTheClusterSecret(t *testing.T) {
	srv, _ := rpcNode(t)
	body := []byte("k")
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
		{"unsigned record read", "test/get", func(*http.Request) {}, http.StatusUnauthorized},
		{"wrong secret", "test/get", sign("guess", 0), http.StatusUnauthorized},
		{"an hour old", "test/get", sign("s3cret", -time.Hour), http.StatusUnauthorized},
		{"a minute ahead", "test/get", sign("s3cret", time.Minute), http.StatusUnauthorized},
		{"signed before the node started", "test/get", sign("s3cret", -2*time.Second), http.StatusUnauthorized},
		{"signature of another path", "test/get", func(r *http.Request) {
			signRequest(r, "s3cret", "n1", body)
			r.URL.Path = "/rpc/v1/test/delete"
		}, http.StatusUnauthorized},
		{"signature of another body", "test/get", func(r *http.Request) {
			signRequest(r, "s3cret", "n1", []byte("j"))
		}, http.StatusUnauthorized},
		{"another node name", "test/get", func(r *http.Request) {
			signRequest(r, "s3cret", "n1", body)
			r.Header.Set(hdrNode, "n3")
		}, http.StatusUnauthorized},
		{"volume parameters added", "test/get", func(r *http.Request) {
			signRequest(r, "s3cret", "n1", body)
			r.Header.Set(ParamsHeader, `{"Off":4096}`)
		}, http.StatusUnauthorized},
		{"a whole body declared as a stream", "test/get", func(r *http.Request) {
			signStream(r, "s3cret", "n1")
		}, http.StatusUnauthorized},
		{"right secret", "test/get", sign("s3cret", 0), http.StatusNotFound}, // signed: the key just is not there
		{"right secret, unknown path", "test/nothing/here", sign("s3cret", 0), http.StatusNotFound},
		{"unsigned, unknown path", "test/nothing/here", func(*http.Request) {}, http.StatusUnauthorized},
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
	reg := prometheus.NewRegistry()
	srv, rs := rpcNodeReg(t, reg)
	rs.m["victim"] = "record"

	put := []byte("k1=v1")
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/rpc/v1/test/put", bytes.NewReader(put))
	signRequest(req, "s3cret", "n1", put)
	captured := req.Header.Clone()
	send := func(body []byte) int {
		r, _ := http.NewRequest(http.MethodPost, srv.URL+"/rpc/v1/test/put", bytes.NewReader(body))
		r.Header = captured.Clone()
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := send(put); got != http.StatusOK {
		t.Fatalf("original request: %d", got)
	}
	if got := send(put); got != http.StatusUnauthorized {
		t.Fatalf("replayed as it was: %d", got)
	}
	if got := send([]byte("victim=overwritten")); got != http.StatusUnauthorized {
		t.Fatalf("replayed with another body: %d", got)
	}
	if v, _ := rs.get("victim"); v != "record" {
		t.Fatalf("the victim's record: %q", v)
	}
	// A fresh nonce does not help without the secret: the MAC covers it.
	captured.Set(hdrNonce, strings.Repeat("ab", 16))
	if got := send(put); got != http.StatusUnauthorized {
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
	srv, rs := rpcNode(t)
	rec := func(data string) []byte { return []byte(data) }
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
				b[4] ^= 1
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
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/rpc/v1/test/stream/"+url.PathEscape(tc.name), nil)
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
			v, stored := rs.get(tc.name)
			if stored != (tc.status == http.StatusOK) || stored && v != "block zeroblock one" {
				t.Fatalf("stored %v (%q) after status %d", stored, v, resp.StatusCode)
			}
		})
	}
	// A stream whose frames were sealed for another request.
	other, _ := http.NewRequest(http.MethodPost, srv.URL+"/rpc/v1/test/stream/other", nil)
	body := frames(signStream(other, "s3cret", "n1"), recs, nil)
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/rpc/v1/test/stream/other", bytes.NewReader(body))
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

// The client's side of the transport against a real server: whole-body
// calls, answers other than 200 as a *StatusError, health generations,
// and frame streams that take effect only when finished.
func TestPeerCallsAndStreams(t *testing.T) {
	srv, rs := rpcNode(t)
	p := probedPeer(t, srv)
	ctx := context.Background()
	if g, ok := p.Generation(7); !ok || g != 3 {
		t.Fatalf("generation of device 7 from health: %d, %v", g, ok)
	}
	if _, err := p.Call(ctx, "test/put", []byte("a=1")); err != nil {
		t.Fatal(err)
	}
	if v, err := p.Call(ctx, "test/get", []byte("a")); err != nil || string(v) != "1" {
		t.Fatalf("get: %q, %v", v, err)
	}
	var se *StatusError
	if _, err := p.Call(ctx, "test/get", []byte("b")); !errors.As(err, &se) || se.Status != http.StatusNotFound || se.Node != "n2" {
		t.Fatalf("a missing record: %v", err)
	}
	if errors.Is(errOf(p.Call(ctx, "test/get", []byte("b"))), ErrUnreachable) || !p.Up() {
		t.Fatal("an answer marked the peer unreachable")
	}

	s := p.OpenStream(ctx, "test/stream/joined")
	for _, rec := range []string{"one ", "two ", "three"} {
		if err := s.Append([]byte(rec)); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := rs.get("joined"); ok {
		t.Fatal("a stream took effect before its end")
	}
	if out, err := s.Finish(); err != nil || string(out) != "stored" {
		t.Fatalf("finish: %q, %v", out, err)
	}
	if v, _ := rs.get("joined"); v != "one two three" {
		t.Fatalf("streamed record: %q", v)
	}
	// An aborted stream never ends with its final frame: no effect.
	s = p.OpenStream(ctx, "test/stream/aborted")
	if err := s.Append([]byte("half")); err != nil {
		t.Fatal(err)
	}
	s.Abort()
	if _, err := s.Finish(); err == nil {
		t.Fatal("finish after abort succeeded")
	}
	if _, ok := rs.get("aborted"); ok {
		t.Fatal("an aborted stream took effect")
	}
	// A frame longer than the handler takes is refused, as a bad request.
	s = p.OpenStream(ctx, "test/stream/big")
	s.Append(make([]byte, 2<<20))
	if _, err := s.Finish(); !errors.As(err, &se) || se.Status != http.StatusBadRequest {
		t.Fatalf("an oversized frame: %v", err)
	}
	// A whole-body call to a stream's path is refused.
	if _, err := p.Call(ctx, "test/stream/x", []byte("y")); !errors.As(err, &se) || se.Status != http.StatusBadRequest {
		t.Fatalf("a whole body to a stream: %v", err)
	}
}

func errOf(_ []byte, e error) error { return e }

// A peer that accepts connections but never answers (a frozen process)
// costs one call timeout; then it is skipped at once until it answers,
// and a stream to it fails within the block and finish timeouts.
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

	start := time.Now()
	if _, err := p.Call(context.Background(), "test/get", []byte("k")); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("get from a frozen peer: %v", err)
	}
	if took := time.Since(start); took > 2*testTimeouts().Call {
		t.Fatalf("first call took %v, bound is the call timeout %v", took, testTimeouts().Call)
	}
	if p.Up() {
		t.Fatal("peer still up after a timeout")
	}
	start = time.Now()
	if _, err := p.Call(context.Background(), "test/get", []byte("k")); !errors.Is(err, ErrUnreachable) || time.Since(start) > 50*time.Millisecond {
		t.Fatalf("a down peer was not skipped at once: %v after %v", err, time.Since(start))
	}
	if err := p.OpenStream(context.Background(), "test/stream/k").Append([]byte("x")); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("stream to a down peer: %v", err)
	}

	p2 := tr.NewPeer("n4", frozen.Listener.Addr().String())
	s := p2.OpenStream(context.Background(), "test/stream/k")
	start = time.Now()
	var err error
	for i := 0; i < 64 && err == nil; i++ {
		err = s.Append(make([]byte, 1<<20))
	}
	if err == nil {
		_, err = s.Finish()
	}
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("stream to a frozen peer ended with %v", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("stream to a frozen peer took %v to fail", took)
	}
}
