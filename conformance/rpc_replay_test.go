package conformance

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

// tapProxy stands between the nodes and one node's RPC listener, as an
// eavesdropper on the network would, and keeps every byte the clients
// send. With tlsIn/tlsOut it terminates TLS on both sides (an attacker who
// holds a certificate of the cluster's CA but not the cluster secret).
type tapProxy struct {
	ln            net.Listener
	target        string
	tlsIn, tlsOut *tls.Config
	mu            sync.Mutex
	conns         []*bytes.Buffer
}

func startTap(t *testing.T, target string, tlsIn, tlsOut *tls.Config) *tapProxy {
	t.Helper()
	ln, err := net.Listen("tcp", freeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	p := &tapProxy{ln: ln, target: target, tlsIn: tlsIn, tlsOut: tlsOut}
	t.Cleanup(func() { ln.Close() })
	go p.serve()
	return p
}

func (p *tapProxy) addr() string { return p.ln.Addr().String() }

func (p *tapProxy) serve() {
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.relay(in)
	}
}

func (p *tapProxy) relay(in net.Conn) {
	defer in.Close()
	if p.tlsIn != nil {
		in = tls.Server(in, p.tlsIn)
	}
	var out net.Conn
	var err error
	if p.tlsOut != nil {
		out, err = tls.Dial("tcp", p.target, p.tlsOut)
	} else {
		out, err = net.Dial("tcp", p.target)
	}
	if err != nil {
		return
	}
	defer out.Close()
	rec := &bytes.Buffer{}
	p.mu.Lock()
	p.conns = append(p.conns, rec)
	p.mu.Unlock()
	go func() { io.Copy(in, out); in.Close() }()
	buf := make([]byte, 64<<10)
	for {
		n, err := in.Read(buf)
		if n > 0 {
			p.mu.Lock()
			rec.Write(buf[:n])
			p.mu.Unlock()
			if _, werr := out.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

type capturedRequest struct {
	method, uri string
	header      http.Header
	body        []byte
}

// requests parses what the clients sent so far into whole requests.
func (p *tapProxy) requests() []capturedRequest {
	p.mu.Lock()
	var streams [][]byte
	for _, c := range p.conns {
		streams = append(streams, bytes.Clone(c.Bytes()))
	}
	p.mu.Unlock()
	var out []capturedRequest
	for _, s := range streams {
		br := bufio.NewReader(bytes.NewReader(s))
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				break
			}
			body, err := io.ReadAll(req.Body)
			if err != nil {
				break
			}
			out = append(out, capturedRequest{req.Method, req.RequestURI, req.Header, body})
		}
	}
	return out
}

// find waits for a captured request whose path ends in suffix.
func (p *tapProxy) find(t *testing.T, suffix string, skip int) capturedRequest {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		n := 0
		for _, r := range p.requests() {
			if strings.HasSuffix(strings.SplitN(r.uri, "?", 2)[0], suffix) {
				if n == skip {
					return r
				}
				n++
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no %s request seen on the wire", suffix)
	return capturedRequest{}
}

// send replays a captured request, with body in place of its own.
func (r capturedRequest) send(t *testing.T, client *http.Client, scheme, addr string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(r.method, scheme+"://"+addr+r.uri, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range r.header {
		if k != "Content-Length" && k != "Transfer-Encoding" {
			req.Header[k] = v
		}
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("replay %s: %v", r.uri, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(msg))
}

// Must-show 1 of issue 16: a captured RPC request, sent again as it was or
// with another body, is refused with 401 and counted, with TLS off and with
// mutual TLS on; with mTLS, a client without a certificate cannot even
// connect. The objects the captured requests were about stay intact.
func TestRPCReplayIsRefused(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"plain", "mtls"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			testRPCReplay(t, mode == "mtls")
		})
	}
}

func testRPCReplay(t *testing.T, mtls bool) {
	c := &testCluster{size: 3, ec: "2+1"}
	var tap *tapProxy
	client, scheme := http.DefaultClient, "http"
	var certPair tls.Certificate
	var pool *x509.CertPool
	if mtls {
		var cert, key string
		cert, key, pool = selfSigned(t)
		c.cert, c.key = cert, key
		c.https = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
		var err error
		if certPair, err = tls.LoadX509KeyPair(cert, key); err != nil {
			t.Fatal(err)
		}
		scheme = "https"
		client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{certPair}}}}
	}
	c.prepare = func(nd *clusterNode) {
		if nd.name != "node2" {
			return
		}
		var in, out *tls.Config
		if mtls {
			in = &tls.Config{Certificates: []tls.Certificate{certPair}, ClientAuth: tls.RequireAnyClientCert}
			out = &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{certPair}}
		}
		tap = startTap(t, nd.rpc, in, out)
		nd.extra = append(nd.extra, "--advertise-rpc", tap.addr())
	}
	startClusterWith(t, c, 3)
	ctx := context.Background()
	gw := c.nodes[0].mc
	if err := gw.MakeBucket(ctx, "victims", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	objects := map[string][]byte{}
	for i := 0; i < 6; i++ {
		data := objectData(i*37 + 5) // inline and streamed objects both
		key := fmt.Sprintf("obj%d", i)
		if _, err := gw.PutObject(ctx, "victims", key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
		objects[key] = data
		if _, err := io.ReadAll(mustGet(t, c.nodes[2].mc, "victims", key)); err != nil {
			t.Fatal(err)
		}
	}
	node2 := c.nodes[1]
	commit, other := tap.find(t, "/commit", 0), tap.find(t, "/commit", 1)
	get, otherGet := tap.find(t, "/get", 0), tap.find(t, "/get", 1)
	before := rpcRefusals(t, c, node2)
	cases := []struct {
		name string
		req  capturedRequest
		body []byte
	}{
		{"commit sent again as it was", commit, commit.body},
		{"commit with another commit's body", commit, other.body},
		{"commit with an emptied body", commit, []byte{0}},
		{"get sent again as it was", get, get.body},
		{"get with another key", get, otherGet.body},
	}
	for _, tc := range cases {
		status, msg := tc.req.send(t, client, scheme, node2.rpc, tc.body)
		if status != http.StatusUnauthorized {
			t.Fatalf("%s: %d %s", tc.name, status, msg)
		}
		t.Logf("%s: %d %s", tc.name, status, msg)
	}
	if got := rpcRefusals(t, c, node2) - before; got < float64(len(cases)) {
		t.Fatalf("node2 counted %v refusals, want %d", got, len(cases))
	}
	if mtls {
		// No certificate, no connection: the handshake itself fails.
		bare := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
		req, _ := http.NewRequest(commit.method, "https://"+node2.rpc+commit.uri, bytes.NewReader(commit.body))
		if resp, err := bare.Do(req); err == nil {
			resp.Body.Close()
			t.Fatalf("a client without a certificate reached the RPC: %d", resp.StatusCode)
		}
	}
	// Nothing the replays carried took effect.
	for key, data := range objects {
		for _, nd := range c.nodes {
			got, err := io.ReadAll(mustGet(t, nd.mc, "victims", key))
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("%s via %s after the replays: %d bytes, %v", key, nd.name, len(got), err)
			}
		}
	}
}

func mustGet(t *testing.T, mc *minio.Client, bucket, key string) io.Reader {
	t.Helper()
	obj, err := mc.GetObject(context.Background(), bucket, key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return obj
}

// rpcRefusals sums strata_rpc_auth_failures_total over its reasons.
func rpcRefusals(t *testing.T, c *testCluster, nd *clusterNode) float64 {
	t.Helper()
	client, scheme := http.DefaultClient, "http://"
	if c.https != nil {
		client, scheme = c.https, "https://"
	}
	resp, err := client.Get(scheme + nd.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	total, seen := 0.0, false
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "strata_rpc_auth_failures_total{"); ok {
			var v float64
			if _, err := fmt.Sscan(rest[strings.Index(rest, "}")+1:], &v); err == nil {
				total += v
				seen = true
			}
		}
	}
	if !seen {
		t.Fatalf("%s exports no strata_rpc_auth_failures_total", nd.name)
	}
	return total
}
