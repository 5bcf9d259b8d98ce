package cluster

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/strata-storage/strata/metastore"
	"github.com/strata-storage/strata/objectstore/shard"
)

// Timeouts of the RPC client. A hung node costs a request at most one of
// these; after the first, the peer is marked down and skipped at once until
// a health probe answers again.
type Timeouts struct {
	Dial     time.Duration // TCP (and TLS) connect
	Call     time.Duration // a metadata call or one block read
	Block    time.Duration // one block record sent on a stream
	Finish   time.Duration // a stream's final fsync and locator
	Probe    time.Duration // health probe of a down peer
	Backoff  time.Duration // how long a failed peer is skipped before the next probe
	Interval time.Duration // health probes of up peers
}

// DefaultTimeouts suit a LAN.
func DefaultTimeouts() Timeouts {
	return Timeouts{Dial: time.Second, Call: 2 * time.Second, Block: 5 * time.Second, Finish: 5 * time.Second,
		Probe: 500 * time.Millisecond, Backoff: 2 * time.Second, Interval: time.Second}
}

// Transport is what every peer client shares: identity, secret, TLS and
// timeouts.
type Transport struct {
	Self     string // this node's name
	Secret   string
	TLS      *tls.Config // nil: plain HTTP
	Timeouts Timeouts
	client   *http.Client
}

// NewTransport builds the shared HTTP client.
func NewTransport(self, secret string, tlsConf *tls.Config, t Timeouts) *Transport {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: t.Dial, KeepAlive: 15 * time.Second}).DialContext,
		TLSClientConfig:     tlsConf,
		TLSHandshakeTimeout: t.Dial,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
		// Shard records are incompressible and already checksummed.
		DisableCompression: true,
	}
	return &Transport{Self: self, Secret: secret, TLS: tlsConf, Timeouts: t, client: &http.Client{Transport: tr}}
}

// Close drops idle connections.
func (t *Transport) Close() { t.client.CloseIdleConnections() }

// Peer is another node as seen by this one.
type Peer struct {
	Name string
	t    *Transport

	mu        sync.Mutex
	addr      string
	downUntil time.Time // skipped until then (zero: up)
	gone      bool      // its heartbeat lease expired
	lastErr   error
	gens      map[uint32]uint32 // device id -> volume generation, from health
}

// NewPeer returns the client of node name at addr (host:port).
func (t *Transport) NewPeer(name, addr string) *Peer {
	return &Peer{Name: name, t: t, addr: addr}
}

// SetAddr changes where the peer is reached (it re-registered elsewhere).
func (p *Peer) SetAddr(addr string) {
	p.mu.Lock()
	p.addr = addr
	p.mu.Unlock()
}

// Addr is the peer's RPC address.
func (p *Peer) Addr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.addr
}

// Up reports whether the peer heartbeats and is not being skipped after a
// failure.
func (p *Peer) Up() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.gone && time.Now().After(p.downUntil)
}

// Gone reports that the peer has no current heartbeat.
func (p *Peer) Gone() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.gone
}

// SetAlive records whether the peer's heartbeat is current.
func (p *Peer) SetAlive(alive bool) {
	p.mu.Lock()
	p.gone = !alive
	p.mu.Unlock()
}

// LastError is the failure that marked the peer down, if it is down.
func (p *Peer) LastError() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gone {
		return errors.New("no heartbeat")
	}
	if time.Now().After(p.downUntil) {
		return nil
	}
	return p.lastErr
}

// markDown skips the peer for the backoff; network failures and timeouts
// count, answers (even errors) do not.
func (p *Peer) markDown(err error) {
	p.mu.Lock()
	p.downUntil = time.Now().Add(p.t.Timeouts.Backoff)
	p.lastErr = err
	p.mu.Unlock()
}

func (p *Peer) markUp(h *NodeHealth) {
	p.mu.Lock()
	p.downUntil = time.Time{}
	p.lastErr = nil
	if h != nil {
		p.gens = h.Devices
	}
	p.mu.Unlock()
}

func (p *Peer) url(path string) string {
	scheme := "http"
	if p.t.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + p.Addr() + "/rpc/v1/" + path
}

// Probe asks the peer's health and marks it up or down accordingly.
func (p *Peer) Probe(ctx context.Context) (*NodeHealth, error) {
	ctx, cancel := context.WithTimeout(ctx, p.t.Timeouts.Probe)
	defer cancel()
	body, err := p.do(ctx, http.MethodGet, "health", nil)
	if err != nil {
		return nil, err
	}
	var h NodeHealth
	if err := json.Unmarshal(body, &h); err != nil {
		return nil, fmt.Errorf("node %s health: %w", p.Name, err)
	}
	if h.Node != p.Name {
		err := fmt.Errorf("node %s: %s answers as %q", p.Name, p.Addr(), h.Node)
		p.markDown(err)
		return nil, err
	}
	p.markUp(&h)
	return &h, nil
}

// errPeerDown is returned at once for a peer being skipped.
var errPeerDown = errors.New("node down")

// call runs one request with the call timeout.
func (p *Peer) call(ctx context.Context, path string, body []byte) ([]byte, error) {
	if !p.Up() {
		return nil, fmt.Errorf("node %s: %w (%v): %w", p.Name, errPeerDown, p.LastError(), shard.ErrOffline)
	}
	ctx, cancel := context.WithTimeout(ctx, p.t.Timeouts.Call)
	defer cancel()
	return p.do(ctx, http.MethodPost, path, body)
}

// callerLeft reports whether a call failed because its caller gave it up
// (a client hung up, a hedged read was not needed), which says nothing
// about the peer; a deadline that ran out does.
func callerLeft(ctx context.Context) bool { return errors.Is(ctx.Err(), context.Canceled) }

// do sends a request and reads the whole answer.
func (p *Peer) do(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	resp, err := p.send(ctx, method, path, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, maxFrame+1<<20))
	if err != nil {
		if callerLeft(ctx) {
			return nil, fmt.Errorf("node %s: %w", p.Name, ctx.Err())
		}
		p.markDown(err)
		return nil, fmt.Errorf("node %s: %w: %w", p.Name, err, shard.ErrOffline)
	}
	return out, nil
}

// send signs and sends a request; the caller closes the body of a 200
// answer. Transport failures mark the peer down and come back as
// shard.ErrOffline; other answers as the error they carry.
func (p *Peer) send(ctx context.Context, method, path string, body []byte) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, p.url(path), rd)
	if err != nil {
		return nil, err
	}
	signRequest(req, p.t.Secret, p.t.Self, body)
	resp, err := p.t.client.Do(req)
	if err != nil {
		if callerLeft(ctx) {
			return nil, fmt.Errorf("node %s: %w", p.Name, ctx.Err())
		}
		p.markDown(err)
		return nil, fmt.Errorf("node %s: %w: %w", p.Name, err, shard.ErrOffline)
	}
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		return nil, answerError(p.Name, resp.StatusCode, msg)
	}
	return resp, nil
}

func answerError(node string, status int, body []byte) error {
	msg := strings.TrimSpace(string(body))
	for _, e := range statusOf {
		if e.status == status {
			if e.err == metastore.ErrNotFound {
				return metastore.ErrNotFound
			}
			return fmt.Errorf("node %s: %s: %w", node, msg, e.err)
		}
	}
	return fmt.Errorf("node %s: status %d: %s", node, status, msg)
}

// RunProbes probes the peer every interval (more often while it is down)
// until ctx ends, so a returning node is noticed without a request failing.
func (p *Peer) RunProbes(ctx context.Context) {
	for {
		// A down peer is probed before its backoff ends, so one that
		// still does not answer stays down without a request finding out.
		wait := p.t.Timeouts.Interval
		if !p.Up() {
			wait = p.t.Timeouts.Backoff / 2
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		p.Probe(ctx)
	}
}

func (p *Peer) generation(id uint32) (uint32, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	g, ok := p.gens[id]
	return g, ok
}

func locBody(prefix []byte, loc *shard.Locator) []byte { return loc.AppendBinary(prefix) }

func blockBody(loc *shard.Locator, i int) []byte {
	return locBody(binary.LittleEndian.AppendUint32(nil, uint32(i)), loc)
}
