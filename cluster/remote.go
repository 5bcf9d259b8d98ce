package cluster

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/strata-storage/strata/objectstore/shard"
)

// RemoteDevice is a ring device of another node, reached over RPC. It is
// an objectstore.Device.
type RemoteDevice struct {
	peer *Peer
	id   uint32
	name string
}

// Device returns the client of the peer's device id.
func (p *Peer) Device(id uint32, name string) *RemoteDevice {
	return &RemoteDevice{peer: p, id: id, name: name}
}

func (d *RemoteDevice) path(op string) string {
	return "dev/" + strconv.FormatUint(uint64(d.id), 10) + "/" + op
}

// Name is node/device.
func (d *RemoteDevice) Name() string { return d.peer.Name + "/" + d.name }

// Peer is the node holding the device.
func (d *RemoteDevice) Peer() *Peer { return d.peer }

// Holds compares the locator's volume generation with the one the peer
// last reported; unknown means yes (a read will tell).
func (d *RemoteDevice) Holds(loc *shard.Locator) bool {
	g, ok := d.peer.generation(d.id)
	return !ok || g == loc.Generation
}

// ReadBlock reads block i over the network into buf and verifies it here.
func (d *RemoteDevice) ReadBlock(ctx context.Context, loc *shard.Locator, i int, buf []byte) ([]byte, error) {
	if i < 0 || i >= loc.Blocks() {
		return nil, fmt.Errorf("shard: block %d of %d", i, loc.Blocks())
	}
	p := d.peer
	if !p.Up() {
		return nil, fmt.Errorf("node %s: %w: %w", p.Name, errPeerDown, shard.ErrOffline)
	}
	ctx, cancel := context.WithTimeout(ctx, p.t.Timeouts.Call)
	defer cancel()
	resp, err := p.send(ctx, http.MethodPost, d.path("read"), blockBody(loc, i))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	n := shard.HeaderSize + loc.DataLen(i)
	buf = buf[:n]
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		if callerLeft(ctx) {
			return nil, fmt.Errorf("node %s: read block: %w", p.Name, ctx.Err()) // the reader left; the peer is fine
		}
		p.markDown(err)
		return nil, fmt.Errorf("node %s: read block: %w: %w", p.Name, err, shard.ErrOffline)
	}
	io.Copy(io.Discard, resp.Body) // to EOF, so the connection is reused
	data, err := shard.VerifyBlock(buf, loc, i)
	if err != nil {
		return nil, fmt.Errorf("device %s block %d (received): %w", d.Name(), i, err)
	}
	return data, nil
}

// Free releases a stream's space on the peer.
func (d *RemoteDevice) Free(ctx context.Context, loc shard.Locator) error {
	_, err := d.peer.call(ctx, d.path("free"), locBody(nil, &loc))
	return err
}

// Commit applies record ops atomically and durably on the peer.
func (d *RemoteDevice) Commit(ctx context.Context, ops ...shard.Op) error {
	path := d.path("commit")
	if shard.MayUseReserve(ctx) {
		path += "?reserve=1" // under the request's MAC, like the rest of the URI
	}
	_, err := d.peer.call(ctx, path, encodeOps(ops))
	return err
}

// Get returns the record under key, or metastore.ErrNotFound.
func (d *RemoteDevice) Get(ctx context.Context, key []byte) ([]byte, error) {
	return d.peer.call(ctx, d.path("get"), bytes.Clone(key))
}

// DeleteRange removes the records with keys in [lower, upper).
func (d *RemoteDevice) DeleteRange(ctx context.Context, lower, upper []byte) error {
	_, err := d.peer.call(ctx, d.path("deleterange"), appendBytes(appendBytes(nil, lower), upper))
	return err
}

// RebuildFreeSpace is the owning node's business.
func (d *RemoteDevice) RebuildFreeSpace(func(yield func(*shard.Locator)) error) error { return nil }

// listPage is how many records one list call fetches.
const listPage = 256

// Iter pages through the peer's records in [lower, upper).
func (d *RemoteDevice) Iter(ctx context.Context, lower, upper []byte) (shard.RecordIter, error) {
	it := &remoteIter{ctx: ctx, d: d, lower: bytes.Clone(lower), upper: bytes.Clone(upper)}
	if err := it.fetch(it.lower); err != nil {
		return nil, err
	}
	return it, nil
}

type remoteIter struct {
	ctx          context.Context // of the walk: every page is fetched under it
	d            *RemoteDevice
	lower, upper []byte
	keys, vals   [][]byte
	pos          int
	more         bool
	err          error
}

func (it *remoteIter) fetch(from []byte) error {
	body := appendBytes(appendBytes(nil, from), it.upper)
	body = binary.AppendUvarint(body, listPage)
	out, err := it.d.peer.call(it.ctx, it.d.path("list"), body)
	if err != nil {
		return err
	}
	dec := &decoder{b: out}
	n := dec.uvarint()
	if n > listPage*2 {
		return errors.New("cluster: list answer too long")
	}
	it.keys, it.vals, it.pos = it.keys[:0], it.vals[:0], 0
	for i := uint64(0); i < n && dec.err == nil; i++ {
		it.keys = append(it.keys, dec.bytes())
		it.vals = append(it.vals, dec.bytes())
	}
	if dec.err != nil || len(dec.b) != 1 {
		return fmt.Errorf("cluster: bad list answer from %s", it.d.Name())
	}
	it.more = dec.b[0] == 1
	return nil
}

func (it *remoteIter) SeekGE(k []byte) {
	from := k
	if bytes.Compare(from, it.lower) < 0 {
		from = it.lower
	}
	if err := it.fetch(bytes.Clone(from)); err != nil {
		it.fail(err)
	}
}

// fail ends the iteration; listing treats the device as gone from here.
func (it *remoteIter) fail(err error) {
	it.err = err
	it.keys, it.vals, it.pos, it.more = nil, nil, 0, false
}

func (it *remoteIter) Valid() bool   { return it.pos < len(it.keys) }
func (it *remoteIter) Key() []byte   { return it.keys[it.pos] }
func (it *remoteIter) Value() []byte { return it.vals[it.pos] }
func (it *remoteIter) Close() error  { return it.err }

func (it *remoteIter) Next() {
	it.pos++
	if it.pos < len(it.keys) || !it.more {
		return
	}
	next := append(bytes.Clone(it.keys[len(it.keys)-1]), 0)
	if err := it.fetch(next); err != nil {
		it.fail(err)
	}
}

// errStreamTimeout ends a stream whose peer stopped taking data.
var errStreamTimeout = errors.New("cluster: shard stream timed out")

// NewWriter opens a shard stream on the peer. The HTTP request runs in the
// background, fed through a pipe; every Append is bounded by the block
// timeout, so a frozen peer fails the stream instead of stalling the PUT.
func (d *RemoteDevice) NewWriter(ctx context.Context, sizeHint int64) shard.StreamWriter {
	w := &remoteWriter{d: d, done: make(chan struct{})}
	p := d.peer
	if !p.Up() {
		w.failed = fmt.Errorf("node %s: %w: %w", p.Name, errPeerDown, shard.ErrOffline)
		close(w.done)
		return w
	}
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(ctx)
	w.pw, w.cancel = pw, cancel
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url(d.path("stream")+"?hint="+strconv.FormatInt(sizeHint, 10)), pr)
	if err != nil {
		w.failed = err
		cancel()
		close(w.done)
		return w
	}
	w.mac = signStream(req, p.t.Secret, p.t.Self)
	go func() {
		defer close(w.done)
		resp, err := p.t.client.Do(req)
		if err != nil {
			if !w.aborted.Load() {
				p.markDown(err)
			}
			w.err = fmt.Errorf("node %s: stream: %w: %w", p.Name, err, shard.ErrOffline)
			pr.CloseWithError(w.err)
			return
		}
		defer resp.Body.Close()
		out, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		switch {
		case err != nil:
			w.err = fmt.Errorf("node %s: stream answer: %w: %w", p.Name, err, shard.ErrOffline)
		case resp.StatusCode != http.StatusOK:
			w.err = answerError(p.Name, resp.StatusCode, out)
		default:
			loc, rest, err := shard.DecodeLocator(out)
			if err == nil && len(rest) != 0 {
				err = errors.New("trailing bytes")
			}
			if err != nil {
				w.err = fmt.Errorf("node %s: stream locator: %w", p.Name, err)
			}
			w.loc = loc
		}
		pr.CloseWithError(w.err) // unblocks an Append the server no longer reads
	}()
	return w
}

type remoteWriter struct {
	d        *RemoteDevice
	pw       *io.PipeWriter
	cancel   context.CancelFunc
	done     chan struct{}
	loc      shard.Locator // set by the request goroutine
	err      error         // set by the request goroutine
	failed   error
	finished bool
	aborted  atomic.Bool
	frame    [4]byte
	mac      *frameMAC
}

// write sends b, giving up (and marking the peer down) after d.
func (w *remoteWriter) write(b []byte, d time.Duration) error {
	var timedOut atomic.Bool
	t := time.AfterFunc(d, func() {
		timedOut.Store(true)
		w.cancel()
		w.pw.CloseWithError(errStreamTimeout)
	})
	_, err := w.pw.Write(b)
	t.Stop()
	if timedOut.Load() {
		w.d.peer.markDown(errStreamTimeout)
		return fmt.Errorf("node %s: %w: %w", w.d.peer.Name, errStreamTimeout, shard.ErrOffline)
	}
	return err
}

func (w *remoteWriter) Append(rec []byte) error {
	if w.failed != nil {
		return w.failed
	}
	binary.LittleEndian.PutUint32(w.frame[:], uint32(len(rec)))
	err := w.write(w.frame[:], w.d.peer.t.Timeouts.Block)
	if err == nil {
		err = w.write(rec, w.d.peer.t.Timeouts.Block)
	}
	if err == nil {
		sum := w.mac.next(rec)
		err = w.write(sum[:], w.d.peer.t.Timeouts.Block)
	}
	if err != nil {
		w.failed = w.streamErr(err)
	}
	return w.failed
}

// streamErr prefers the server's answer to the pipe's error: a write that
// failed because the request ended carries no more than that. w.err is
// read only once done is closed (the request goroutine's write happens
// before), and a timed-out write is its own answer.
func (w *remoteWriter) streamErr(err error) error {
	if errors.Is(err, errStreamTimeout) {
		return err
	}
	select {
	case <-w.done:
		if w.err != nil {
			return w.err
		}
	case <-time.After(w.d.peer.t.Timeouts.Call):
	}
	return err
}

func (w *remoteWriter) Finish() (shard.Locator, error) {
	if w.failed != nil {
		w.Abort()
		return shard.Locator{}, w.failed
	}
	binary.LittleEndian.PutUint32(w.frame[:], 0)
	sum := w.mac.next(nil)
	if err := w.write(append(w.frame[:], sum[:]...), w.d.peer.t.Timeouts.Block); err != nil {
		w.failed = w.streamErr(err)
		w.Abort()
		return shard.Locator{}, w.failed
	}
	w.pw.Close()
	select {
	case <-w.done:
	case <-time.After(w.d.peer.t.Timeouts.Finish):
		w.d.peer.markDown(errStreamTimeout)
		w.failed = fmt.Errorf("node %s: waiting for the durable stream: %w: %w", w.d.peer.Name, errStreamTimeout, shard.ErrOffline)
		w.Abort()
		return shard.Locator{}, w.failed
	}
	w.finished = true
	w.cancel()
	if w.err != nil {
		return shard.Locator{}, w.err
	}
	return w.loc, nil
}

// Abort ends an unfinished stream; the peer gives its space back when the
// body ends without the final frame.
func (w *remoteWriter) Abort() {
	if w.finished {
		return
	}
	w.finished = true
	w.aborted.Store(true)
	if w.pw != nil {
		w.pw.CloseWithError(errors.New("stream aborted"))
		w.cancel()
	}
	<-w.done
}

// Online reports whether the peer is reachable as far as this node knows.
func (d *RemoteDevice) Online() bool { return d.peer.Up() }

// Remote is true: the device is on another node.
func (d *RemoteDevice) Remote() bool { return true }
