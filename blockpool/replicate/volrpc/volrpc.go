// Package volrpc is volume replication between nodes: a primary on one
// node reaches the replicas of its volume on others through Link (a
// replicate.Link), and each node registers the handlers of its own
// replicas on its cluster RPC server, which authenticates every call.
//
//	POST /rpc/v1/vol/{name}/{op}   op: create delete (this node's replica),
//	                               hello promote release write trim read
//	                               sync setgen bitmap mergebitmap dropbitmap
//	                               snapshot restore resize deletesnapshot
//	                               (Peer carries the snapshot's name)
//
// The request's parameters are JSON in the X-Strata-Vol header; a write's
// data and a bitmap's words (u64 little endian) are the body, as are a
// read's data and a bitmap answer. A refusal carries its kind in
// X-Strata-Error so the primary sees the same error as in process.
package volrpc

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"

	"github.com/strata-storage/strata/blockpool"
	"github.com/strata-storage/strata/blockpool/replicate"
	"github.com/strata-storage/strata/cluster"
)

// VolumeReplicas finds, creates and deletes this node's replicas.
type VolumeReplicas interface {
	VolumeReplica(name string) *replicate.Replica
	CreateLocal(name string, size int64, from, snapshot string) error
	CreateWitnessLocal(name string, size int64) error
	DeleteLocal(name string) error
}

type volParams struct {
	Epoch   uint64               `json:",omitempty"`
	Primary string               `json:",omitempty"`
	Off     int64                `json:",omitempty"`
	N       int64                `json:",omitempty"`
	Absent  []string             `json:",omitempty"`
	Peer    string               `json:",omitempty"`
	Gen     *replicate.GenChange `json:",omitempty"`
	Track   *replicate.Track     `json:",omitempty"`
	Found   bool                 `json:",omitempty"`
	From    string               `json:",omitempty"`
	Force   bool                 `json:",omitempty"`
	Weak    bool                 `json:",omitempty"`
	Witness bool                 `json:",omitempty"` // create: a diskless tie-breaker
}

// Kinds of volume refusals on the wire.
var volErrors = []struct {
	kind   string
	status int
	err    error
}{
	{"fenced", http.StatusConflict, replicate.ErrFenced},
	{"elsewhere", http.StatusLocked, replicate.ErrPrimaryElsewhere},
	{"corrupt", http.StatusUnprocessableEntity, blockpool.ErrCorrupt},
	{"range", http.StatusRequestedRangeNotSatisfiable, blockpool.ErrOutOfRange},
	{"noreplica", http.StatusNotFound, errNoReplica},
	{"nosnapshot", http.StatusNotFound, replicate.ErrNoSnapshot},
	{"snapshotexists", http.StatusConflict, replicate.ErrSnapshotExists},
}

var errNoReplica = errors.New("no replica of this volume on the node")

func writeVolErr(w http.ResponseWriter, err error) {
	for _, e := range volErrors {
		if errors.Is(err, e.err) {
			w.Header().Set("X-Strata-Error", e.kind)
			http.Error(w, err.Error(), e.status)
			return
		}
	}
	http.Error(w, err.Error(), http.StatusInternalServerError)
}

// maxVolIO bounds one read or write (the NBD server's largest request).
const maxVolIO = 32 << 20

// Server answers other nodes' calls to this node's volume replicas.
type Server struct {
	node    string
	volumes VolumeReplicas
	bufs    sync.Pool // *[]byte: read buffers
}

// Register serves node's replicas on srv.
func Register(srv cluster.Registerer, node string, volumes VolumeReplicas) *Server {
	s := &Server{node: node, volumes: volumes}
	srv.Handle(http.MethodPost, "vol/{name}/{op}", s.volume)
	return s
}

func (s *Server) buffer(n int) *[]byte {
	if bp, ok := s.bufs.Get().(*[]byte); ok && cap(*bp) >= n {
		return bp
	}
	b := make([]byte, n)
	return &b
}

// volume serves one volume call; c.Body is the request's whole body,
// already checked against its signature.
func (s *Server) volume(w http.ResponseWriter, r *http.Request, c *cluster.Call) {
	name, op, body := r.PathValue("name"), r.PathValue("op"), c.Body
	switch op {
	case "create", "delete":
		var p volParams
		if err := json.Unmarshal([]byte(r.Header.Get(cluster.ParamsHeader)), &p); err != nil {
			http.Error(w, "bad parameters: "+err.Error(), http.StatusBadRequest)
			return
		}
		var err error
		switch {
		case op == "create" && p.Witness:
			err = s.volumes.CreateWitnessLocal(name, p.N)
		case op == "create":
			err = s.volumes.CreateLocal(name, p.N, p.From, p.Peer)
		default:
			err = s.volumes.DeleteLocal(name)
		}
		if err != nil {
			writeVolErr(w, err)
		}
		return
	}
	rep := s.volumes.VolumeReplica(name)
	if rep == nil {
		writeVolErr(w, fmt.Errorf("volume %s on %s: %w", name, s.node, errNoReplica))
		return
	}
	var p volParams
	if err := json.Unmarshal([]byte(r.Header.Get(cluster.ParamsHeader)), &p); err != nil {
		http.Error(w, "bad parameters: "+err.Error(), http.StatusBadRequest)
		return
	}
	if p.N < 0 || p.N > maxVolIO && op == "read" {
		http.Error(w, "bad length", http.StatusBadRequest)
		return
	}
	answer := func(v any, err error) {
		if err != nil {
			writeVolErr(w, err)
			return
		}
		if v != nil {
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(v)
		}
	}
	switch op {
	case "hello":
		answer(rep.Hello(p.Epoch, p.Primary), nil)
	case "promote":
		answer(rep.Promote(p.Epoch, p.Primary, replicate.Mode{Force: p.Force, Weak: p.Weak}))
	case "release":
		answer(nil, rep.Release(p.Epoch))
	case "write":
		if len(body) > maxVolIO {
			http.Error(w, "bad length", http.StatusBadRequest)
			return
		}
		answer(nil, rep.Write(p.Epoch, p.Off, body, p.Absent))
	case "trim":
		answer(nil, rep.Trim(p.Epoch, p.Off, p.N, p.Absent))
	case "read":
		bp := s.buffer(int(p.N))
		defer s.bufs.Put(bp)
		buf := (*bp)[:p.N]
		if err := rep.Read(p.Epoch, p.Off, buf); err != nil {
			writeVolErr(w, err)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(buf)))
		w.Write(buf)
	case "sync":
		answer(nil, rep.Sync(p.Epoch))
	case "setgen":
		if p.Gen == nil {
			http.Error(w, "no generation", http.StatusBadRequest)
			return
		}
		answer(nil, rep.SetGen(p.Epoch, *p.Gen))
	case "bitmap":
		tr, words, found, err := rep.Bitmap(p.Epoch, p.Peer)
		if err != nil {
			writeVolErr(w, err)
			return
		}
		h, _ := json.Marshal(volParams{Track: &tr, Found: found})
		w.Header().Set(cluster.ParamsHeader, string(h))
		w.Header().Set("Content-Length", strconv.Itoa(8*len(words)))
		w.Write(encodeWords(words))
	case "mergebitmap":
		body, err := io.ReadAll(io.LimitReader(r.Body, 8*int64(rep.Size()/replicate.BlockSize/64+1)+1))
		if err != nil || len(body)%8 != 0 || p.Track == nil {
			http.Error(w, "bad bitmap", http.StatusBadRequest)
			return
		}
		answer(nil, rep.MergeBitmap(p.Epoch, p.Peer, *p.Track, decodeWords(body)))
	case "dropbitmap":
		answer(nil, rep.DropBitmap(p.Epoch, p.Peer))
	case "snapshot":
		answer(nil, rep.Snapshot(p.Epoch, p.Peer))
	case "restore":
		answer(nil, rep.Restore(p.Epoch, p.Peer))
	case "resize":
		answer(nil, rep.Resize(p.Epoch, p.N))
	case "deletesnapshot":
		answer(nil, rep.DeleteSnapshot(p.Peer))
	default:
		http.NotFound(w, r)
	}
}

func encodeWords(words []uint64) []byte {
	b := make([]byte, 8*len(words))
	for i, w := range words {
		binary.LittleEndian.PutUint64(b[8*i:], w)
	}
	return b
}

func decodeWords(b []byte) []uint64 {
	out := make([]uint64, len(b)/8)
	for i := range out {
		out[i] = binary.LittleEndian.Uint64(b[8*i:])
	}
	return out
}

// RemoteReplica is the replicate.Link to a volume's replica on a peer.
type RemoteReplica struct {
	peer *cluster.Peer
	name string
}

// Link returns the link to volume name's replica on peer p.
func Link(p *cluster.Peer, name string) *RemoteReplica { return &RemoteReplica{peer: p, name: name} }

func (l *RemoteReplica) Node() string { return l.peer.Name }

// call sends one volume request; answer, if set, gets the 200 response.
func (l *RemoteReplica) call(ctx context.Context, op string, p volParams, body []byte, answer func(*http.Response) error) error {
	// Not the object layer's breaker: that skips a slow peer for a
	// moment, which erasure coding absorbs, while dropping a replica
	// costs a resync. A volume call gives up only on a node without a
	// heartbeat, a refused connection or its own timeout.
	if l.peer.Gone() {
		return fmt.Errorf("node %s: %w (no heartbeat)", l.peer.Name, cluster.ErrUnreachable)
	}
	hdr, _ := json.Marshal(p)
	// Every call but create can be repeated safely (writes are to an
	// offset, merges OR, the rest set state): marked so, the transport
	// re-sends it when a pooled connection turns out to be dead (the peer
	// restarted) instead of failing the call.
	resp, err := l.peer.Post(ctx, cluster.Request{Path: "vol/" + url.PathEscape(l.name) + "/" + op, Body: body,
		Params: hdr, Idempotent: op != "create"})
	if err != nil {
		var se *cluster.StatusError
		if errors.As(err, &se) {
			for _, e := range volErrors {
				if e.kind == se.Kind {
					return fmt.Errorf("node %s: %s: %w", se.Node, se.Message, e.err)
				}
			}
		}
		return err
	}
	defer resp.Body.Close()
	if answer != nil {
		return answer(resp)
	}
	return nil
}

func (l *RemoteReplica) status(ctx context.Context, op string, p volParams) (replicate.Status, error) {
	var st replicate.Status
	err := l.call(ctx, op, p, nil, func(r *http.Response) error { return json.NewDecoder(r.Body).Decode(&st) })
	return st, err
}

// CreateReplica creates volume name's replica on the peer.
func CreateReplica(ctx context.Context, p *cluster.Peer, name string, size int64) error {
	return Link(p, name).call(ctx, "create", volParams{N: size}, nil, nil)
}

// CreateWitness creates volume name's diskless tie-breaker on the peer.
func CreateWitness(ctx context.Context, p *cluster.Peer, name string, size int64) error {
	return Link(p, name).call(ctx, "create", volParams{N: size, Witness: true}, nil, nil)
}

// CloneReplica creates volume name's replica on the peer from a snapshot
// of volume from's replica there.
func CloneReplica(ctx context.Context, p *cluster.Peer, name, from, snapshot string) error {
	return Link(p, name).call(ctx, "create", volParams{From: from, Peer: snapshot}, nil, nil)
}

// DeleteReplica deletes volume name's replica on the peer.
func DeleteReplica(ctx context.Context, p *cluster.Peer, name string) error {
	return Link(p, name).call(ctx, "delete", volParams{}, nil, nil)
}

func (l *RemoteReplica) Hello(ctx context.Context, epoch uint64, primary string) (replicate.Status, error) {
	return l.status(ctx, "hello", volParams{Epoch: epoch, Primary: primary})
}

func (l *RemoteReplica) Promote(ctx context.Context, epoch uint64, primary string, mode replicate.Mode) (replicate.Status, error) {
	return l.status(ctx, "promote", volParams{Epoch: epoch, Primary: primary, Force: mode.Force, Weak: mode.Weak})
}

func (l *RemoteReplica) Release(ctx context.Context, epoch uint64) error {
	return l.call(ctx, "release", volParams{Epoch: epoch}, nil, nil)
}

func (l *RemoteReplica) Write(ctx context.Context, epoch uint64, off int64, p []byte, absent []string) error {
	return l.call(ctx, "write", volParams{Epoch: epoch, Off: off, Absent: absent}, p, nil)
}

func (l *RemoteReplica) Trim(ctx context.Context, epoch uint64, off, n int64, absent []string) error {
	return l.call(ctx, "trim", volParams{Epoch: epoch, Off: off, N: n, Absent: absent}, nil, nil)
}

func (l *RemoteReplica) Read(ctx context.Context, epoch uint64, off int64, p []byte) error {
	return l.call(ctx, "read", volParams{Epoch: epoch, Off: off, N: int64(len(p))}, nil, func(r *http.Response) error {
		if r.ContentLength != int64(len(p)) {
			return fmt.Errorf("node %s: read answer of %d bytes, want %d", l.peer.Name, r.ContentLength, len(p))
		}
		_, err := io.ReadFull(r.Body, p)
		return err
	})
}

func (l *RemoteReplica) Sync(ctx context.Context, epoch uint64) error {
	return l.call(ctx, "sync", volParams{Epoch: epoch}, nil, nil)
}

func (l *RemoteReplica) SetGen(ctx context.Context, epoch uint64, g replicate.GenChange) error {
	return l.call(ctx, "setgen", volParams{Epoch: epoch, Gen: &g}, nil, nil)
}

func (l *RemoteReplica) Bitmap(ctx context.Context, epoch uint64, peer string) (replicate.Track, []uint64, bool, error) {
	var tr replicate.Track
	var words []uint64
	var found bool
	err := l.call(ctx, "bitmap", volParams{Epoch: epoch, Peer: peer}, nil, func(r *http.Response) error {
		var p volParams
		if err := json.Unmarshal([]byte(r.Header.Get(cluster.ParamsHeader)), &p); err != nil || p.Track == nil {
			return fmt.Errorf("node %s: bad bitmap answer", l.peer.Name)
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return err
		}
		tr, found, words = *p.Track, p.Found, decodeWords(body)
		return nil
	})
	return tr, words, found, err
}

func (l *RemoteReplica) MergeBitmap(ctx context.Context, epoch uint64, peer string, t replicate.Track, words []uint64) error {
	return l.call(ctx, "mergebitmap", volParams{Epoch: epoch, Peer: peer, Track: &t}, encodeWords(words), nil)
}

func (l *RemoteReplica) DropBitmap(ctx context.Context, epoch uint64, peer string) error {
	return l.call(ctx, "dropbitmap", volParams{Epoch: epoch, Peer: peer}, nil, nil)
}

func (l *RemoteReplica) Snapshot(ctx context.Context, epoch uint64, name string) error {
	return l.call(ctx, "snapshot", volParams{Epoch: epoch, Peer: name}, nil, nil)
}

func (l *RemoteReplica) Restore(ctx context.Context, epoch uint64, name string) error {
	return l.call(ctx, "restore", volParams{Epoch: epoch, Peer: name}, nil, nil)
}

func (l *RemoteReplica) Resize(ctx context.Context, epoch uint64, size int64) error {
	return l.call(ctx, "resize", volParams{Epoch: epoch, N: size}, nil, nil)
}

// DeleteSnapshot removes a snapshot of the replica.
func (l *RemoteReplica) DeleteSnapshot(ctx context.Context, name string) error {
	return l.call(ctx, "deletesnapshot", volParams{Peer: name}, nil, nil)
}
