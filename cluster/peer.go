package cluster

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
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

// Timeouts is what the peer's calls are bounded by.
func (p *Peer) Timeouts() Timeouts { return p.t.Timeouts }

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

// MarkDown skips the peer for the backoff; network failures and timeouts
// count, answers (even errors) do not.
func (p *Peer) MarkDown(err error) {
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
		p.MarkDown(err)
		return nil, err
	}
	p.markUp(&h)
	return &h, nil
}

// ErrUnreachable marks a failure to reach a peer: it is being skipped
// after a failure, the connection failed, or it stopped answering in time.
// Answers, even refusals, are not this but a *StatusError.
var ErrUnreachable = errors.New("node unreachable")

// errPeerDown is returned at once for a peer being skipped.
var errPeerDown = errors.New("node down")

// StatusError is a peer's answer other than 200.
type StatusError struct {
	Node    string
	Status  int
	Kind    string // the answer's X-Strata-Error, if any
	Message string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("node %s: status %d: %s", e.Node, e.Status, e.Message)
}

// Call sends one request with a whole body and reads the whole answer
// (bounded), within the call timeout. A peer being skipped fails at once.
func (p *Peer) Call(ctx context.Context, path string, body []byte) ([]byte, error) {
	if err := p.Skipped(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, p.t.Timeouts.Call)
	defer cancel()
	return p.do(ctx, http.MethodPost, path, body)
}

// Skipped is nil for a peer that is up, else the error a call to it fails
// with at once.
func (p *Peer) Skipped() error {
	if p.Up() {
		return nil
	}
	return fmt.Errorf("node %s: %w (%v): %w", p.Name, errPeerDown, p.LastError(), ErrUnreachable)
}

// CallerLeft reports whether a call failed because its caller gave it up
// (a client hung up, a hedged read was not needed), which says nothing
// about the peer; a deadline that ran out does.
func CallerLeft(ctx context.Context) bool { return errors.Is(ctx.Err(), context.Canceled) }

// do sends a request and reads the whole answer.
func (p *Peer) do(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	resp, err := p.Send(ctx, method, path, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, p.Failed(ctx, err)
	}
	return out, nil
}

// Failed turns a transport failure of a call under ctx into its error:
// the peer is marked down unless the caller left.
func (p *Peer) Failed(ctx context.Context, err error) error {
	if CallerLeft(ctx) {
		return fmt.Errorf("node %s: %w", p.Name, ctx.Err())
	}
	p.MarkDown(err)
	return fmt.Errorf("node %s: %w: %w", p.Name, err, ErrUnreachable)
}

// Send signs and sends a request; the caller closes the body of a 200
// answer. Transport failures mark the peer down and wrap ErrUnreachable;
// other answers are a *StatusError.
func (p *Peer) Send(ctx context.Context, method, path string, body []byte) (*http.Response, error) {
	resp, err := p.send(ctx, Request{Method: method, Path: path, Body: body})
	if err != nil && !errors.As(err, new(*StatusError)) {
		return nil, p.Failed(ctx, err)
	}
	return resp, err
}

// Request is one RPC with a whole body.
type Request struct {
	Method string // POST if empty
	Path   string // under /rpc/v1/, with its query
	Body   []byte
	// Params travel in the signed X-Strata-Vol header (JSON).
	Params []byte
	// Idempotent lets the transport send the request again when a pooled
	// connection turns out to be dead (the peer restarted).
	Idempotent bool
}

// Post sends req as it is: no timeout but ctx's, and a failure does not
// mark the peer down (callers with their own idea of a dead peer, such as
// volume replication, decide). Transport failures wrap ErrUnreachable;
// answers other than 200 are a *StatusError.
func (p *Peer) Post(ctx context.Context, req Request) (*http.Response, error) {
	resp, err := p.send(ctx, req)
	if err != nil && !errors.As(err, new(*StatusError)) {
		return nil, fmt.Errorf("node %s: %w: %w", p.Name, err, ErrUnreachable)
	}
	return resp, err
}

// send is Post with transport failures returned as they are.
func (p *Peer) send(ctx context.Context, req Request) (*http.Response, error) {
	if req.Method == "" {
		req.Method = http.MethodPost
	}
	hr, err := http.NewRequestWithContext(ctx, req.Method, p.url(req.Path), nil)
	if err != nil {
		return nil, err
	}
	if req.Body != nil {
		body := req.Body
		hr.Body = io.NopCloser(bytes.NewReader(body))
		hr.ContentLength = int64(len(body))
		hr.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	if req.Params != nil {
		hr.Header.Set(ParamsHeader, string(req.Params))
	}
	if req.Idempotent {
		hr.Header.Set("Idempotency-Key", "strata-rpc")
	}
	signRequest(hr, p.t.Secret, p.t.Self, req.Body)
	resp, err := p.t.client.Do(hr)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		return nil, &StatusError{Node: p.Name, Status: resp.StatusCode, Kind: resp.Header.Get("X-Strata-Error"),
			Message: strings.TrimSpace(string(msg))}
	}
	return resp, nil
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

// Generation is the volume generation of device id the peer last
// reported in its health answer.
func (p *Peer) Generation(id uint32) (uint32, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	g, ok := p.gens[id]
	return g, ok
}
