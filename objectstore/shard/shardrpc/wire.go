// Package shardrpc is the inter-node protocol of shard devices: the
// handlers a node registers on its cluster RPC server for its own devices,
// and RemoteDevice, the objectstore.Device of another node's. Transport,
// authentication and the frame streams are cluster's (docs/format/rpc.md).
//
//	POST /rpc/v1/dev/{id}/stream?hint=N frames in, locator out
//	POST /rpc/v1/dev/{id}/read          u32 block + locator in, block record out
//	POST /rpc/v1/dev/{id}/free          locator
//	POST /rpc/v1/dev/{id}/commit        record ops (?reserve=1: may use the reserve)
//	POST /rpc/v1/dev/{id}/get           key in, record out (404: none)
//	POST /rpc/v1/dev/{id}/list          lower, upper, limit in; entries out
//	POST /rpc/v1/dev/{id}/deleterange   lower, upper
package shardrpc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"

	"github.com/strata-storage/strata/cluster"

	"github.com/strata-storage/strata/metastore"
	"github.com/strata-storage/strata/objectstore/shard"
)

// Error statuses of the RPC: each carries one sentinel of the shard or
// metadata layer across the wire.
var statusOf = []struct {
	status int
	err    error
}{
	{http.StatusNotFound, metastore.ErrNotFound},
	{http.StatusGone, shard.ErrMissing},
	{http.StatusServiceUnavailable, shard.ErrOffline},
	{http.StatusInsufficientStorage, shard.ErrFull},
	{http.StatusUnprocessableEntity, shard.ErrCorrupt},
	{http.StatusConflict, shard.ErrConflict},
}

// maxFrame bounds one block record on the wire.
const maxFrame = cluster.MaxFrame

// maxListPage bounds the records of one list answer.
const maxListPage = 1024

// wireErr gives a call's error the sentinel the object layer acts on: an
// unreachable peer is an offline device, and an answer carries the
// sentinel of its status.
func wireErr(err error) error {
	if err == nil {
		return nil
	}
	var se *cluster.StatusError
	if errors.As(err, &se) {
		for _, e := range statusOf {
			if e.status == se.Status {
				if e.err == metastore.ErrNotFound {
					return metastore.ErrNotFound
				}
				return fmt.Errorf("node %s: %s: %w", se.Node, se.Message, e.err)
			}
		}
		return err
	}
	if errors.Is(err, cluster.ErrUnreachable) {
		return fmt.Errorf("%w: %w", err, shard.ErrOffline)
	}
	return err
}

// Wire encoding: uvarint-prefixed byte strings.
func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errors.New("shardrpc: truncated message")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.err = errors.New("shardrpc: truncated message")
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) locator() shard.Locator {
	if d.err != nil {
		return shard.Locator{}
	}
	loc, rest, err := shard.DecodeLocator(d.b)
	if err != nil {
		d.err = err
		return shard.Locator{}
	}
	d.b = rest
	return loc
}

// Record ops of a commit: u8 flags (1 delete, 2 conditional, 4 expect
// absent), key, value, and for a conditional op the expected record.
func encodeOps(ops []shard.Op) []byte {
	b := binary.AppendUvarint(nil, uint64(len(ops)))
	for _, op := range ops {
		flags := byte(0)
		if op.Delete {
			flags |= 1
		}
		if op.Check {
			flags |= 2
			if op.Expect == nil {
				flags |= 4
			}
		}
		b = append(b, flags)
		b = appendBytes(b, op.Key)
		b = appendBytes(b, op.Value)
		if op.Check && op.Expect != nil {
			b = appendBytes(b, op.Expect)
		}
	}
	return b
}

func decodeOps(b []byte) ([]shard.Op, error) {
	d := &decoder{b: b}
	n := d.uvarint()
	if n > uint64(len(b)) {
		return nil, errors.New("shardrpc: bad op count")
	}
	ops := make([]shard.Op, 0, n)
	for i := uint64(0); i < n && d.err == nil; i++ {
		if len(d.b) == 0 {
			d.err = errors.New("shardrpc: truncated message")
			break
		}
		flags := d.b[0]
		d.b = d.b[1:]
		if flags&^7 != 0 {
			return nil, errors.New("shardrpc: unknown op flags")
		}
		op := shard.Op{Delete: flags&1 != 0, Check: flags&2 != 0, Key: d.bytes(), Value: d.bytes()}
		if op.Check && flags&4 == 0 {
			op.Expect = d.bytes()
			if op.Expect == nil {
				op.Expect = []byte{}
			}
		}
		ops = append(ops, op)
	}
	return ops, d.err
}
