package shardrpc

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/strata-storage/strata/cluster"
	"github.com/strata-storage/strata/objectstore/shard"
)

// RemoteDevice is a ring device of another node, reached over RPC. It is
// an objectstore.Device.
type RemoteDevice struct {
	peer *cluster.Peer
	id   uint32
	name string
}

// Device returns the client of device id (named name) on peer p.
func Device(p *cluster.Peer, id uint32, name string) *RemoteDevice {
	return &RemoteDevice{peer: p, id: id, name: name}
}

func (d *RemoteDevice) path(op string) string {
	return "dev/" + strconv.FormatUint(uint64(d.id), 10) + "/" + op
}

// Name is node/device.
func (d *RemoteDevice) Name() string { return d.peer.Name + "/" + d.name }

// Peer is the node holding the device.
func (d *RemoteDevice) Peer() *cluster.Peer { return d.peer }

// Holds compares the locator's volume generation with the one the peer
// last reported; unknown means yes (a read will tell).
func (d *RemoteDevice) Holds(loc *shard.Locator) bool {
	g, ok := d.peer.Generation(d.id)
	return !ok || g == loc.Generation
}

// ReadBlock reads block i over the network into buf and verifies it here.
func (d *RemoteDevice) ReadBlock(ctx context.Context, loc *shard.Locator, i int, buf []byte) ([]byte, error) {
	if i < 0 || i >= loc.Blocks() {
		return nil, fmt.Errorf("shard: block %d of %d", i, loc.Blocks())
	}
	p := d.peer
	if err := p.Skipped(); err != nil {
		return nil, wireErr(err)
	}
	ctx, cancel := context.WithTimeout(ctx, p.Timeouts().Call)
	defer cancel()
	resp, err := p.Send(ctx, http.MethodPost, d.path("read"), blockBody(loc, i))
	if err != nil {
		return nil, wireErr(err)
	}
	defer resp.Body.Close()
	n := shard.HeaderSize + loc.DataLen(i)
	buf = buf[:n]
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		// A reader that left says nothing about the peer (Failed knows).
		return nil, wireErr(fmt.Errorf("read block: %w", p.Failed(ctx, err)))
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
	_, err := d.peer.Call(ctx, d.path("free"), loc.AppendBinary(nil))
	return wireErr(err)
}

// Commit applies record ops atomically and durably on the peer.
func (d *RemoteDevice) Commit(ctx context.Context, ops ...shard.Op) error {
	path := d.path("commit")
	if shard.MayUseReserve(ctx) {
		path += "?reserve=1" // under the request's MAC, like the rest of the URI
	}
	_, err := d.peer.Call(ctx, path, encodeOps(ops))
	return wireErr(err)
}

// Get returns the record under key, or metastore.ErrNotFound.
func (d *RemoteDevice) Get(ctx context.Context, key []byte) ([]byte, error) {
	v, err := d.peer.Call(ctx, d.path("get"), bytes.Clone(key))
	return v, wireErr(err)
}

// DeleteRange removes the records with keys in [lower, upper).
func (d *RemoteDevice) DeleteRange(ctx context.Context, lower, upper []byte) error {
	_, err := d.peer.Call(ctx, d.path("deleterange"), appendBytes(appendBytes(nil, lower), upper))
	return wireErr(err)
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
	out, err := it.d.peer.Call(it.ctx, it.d.path("list"), body)
	if err != nil {
		return wireErr(err)
	}
	dec := &decoder{b: out}
	n := dec.uvarint()
	if n > listPage*2 {
		return errors.New("shardrpc: list answer too long")
	}
	it.keys, it.vals, it.pos = it.keys[:0], it.vals[:0], 0
	for i := uint64(0); i < n && dec.err == nil; i++ {
		it.keys = append(it.keys, dec.bytes())
		it.vals = append(it.vals, dec.bytes())
	}
	if dec.err != nil || len(dec.b) != 1 {
		return fmt.Errorf("shardrpc: bad list answer from %s", it.d.Name())
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

// NewWriter opens a shard stream on the peer (cluster.Stream): every
// Append is bounded by the block timeout, so a frozen peer fails the
// stream instead of stalling the PUT.
func (d *RemoteDevice) NewWriter(ctx context.Context, sizeHint int64) shard.StreamWriter {
	return &remoteWriter{d: d, s: d.peer.OpenStream(ctx, d.path("stream")+"?hint="+strconv.FormatInt(sizeHint, 10))}
}

type remoteWriter struct {
	d *RemoteDevice
	s *cluster.Stream
}

func (w *remoteWriter) Append(rec []byte) error { return wireErr(w.s.Append(rec)) }

// Finish waits for the peer's durable locator.
func (w *remoteWriter) Finish() (shard.Locator, error) {
	out, err := w.s.Finish()
	if err != nil {
		return shard.Locator{}, wireErr(err)
	}
	loc, rest, err := shard.DecodeLocator(out)
	if err == nil && len(rest) != 0 {
		err = errors.New("trailing bytes")
	}
	if err != nil {
		return shard.Locator{}, fmt.Errorf("node %s: stream locator: %w", w.d.peer.Name, err)
	}
	return loc, nil
}

// Abort ends an unfinished stream; the peer gives its space back when the
// body ends without the final frame.
func (w *remoteWriter) Abort() { w.s.Abort() }

func blockBody(loc *shard.Locator, i int) []byte {
	return loc.AppendBinary(binary.LittleEndian.AppendUint32(nil, uint32(i)))
}

// Online reports whether the peer is reachable as far as this node knows.
func (d *RemoteDevice) Online() bool { return d.peer.Up() }

// Remote is true: the device is on another node.
func (d *RemoteDevice) Remote() bool { return true }
