package cluster

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/strata-storage/strata/objectstore/shard"
)

// The inter-node RPC, served on its own listener. Every path is under
// /rpc/v1/ and needs the cluster signature:
//
//	GET  /rpc/v1/health                 NodeHealth JSON
//	POST /rpc/v1/dev/{id}/stream?hint=N frames in, locator out
//	POST /rpc/v1/dev/{id}/read          u32 block + locator in, block record out
//	POST /rpc/v1/dev/{id}/free          locator
//	POST /rpc/v1/dev/{id}/commit        record ops
//	POST /rpc/v1/dev/{id}/get           key in, record out (404: none)
//	POST /rpc/v1/dev/{id}/list          lower, upper, limit in; entries out
//	POST /rpc/v1/dev/{id}/deleterange   lower, upper
//	POST /rpc/v1/vol/{name}/{op}        volume replication (volrpc.go)
//
// A stream is a sequence of frames, u32 length (little endian) then one
// block record; a zero length ends it and asks for the durable locator. A
// body that ends without that frame (a gateway that died or gave up) aborts
// the stream and gives its space back.

// maxFrame bounds one block record on the wire.
const maxFrame = 64 << 20

// maxListPage bounds the records of one list answer.
const maxListPage = 1024

// NodeHealth is the answer of /rpc/v1/health.
type NodeHealth struct {
	Node string `json:"node"`
	// Devices maps each open local device id to its volume generation.
	Devices map[uint32]uint32 `json:"devices"`
}

// LocalDevices finds this node's open devices by ring device id.
type LocalDevices interface {
	LocalDevice(id uint32) *shard.Store
	LocalDeviceIDs() []uint32
}

// Server answers other nodes' RPC for this node's devices.
type Server struct {
	node    string
	secret  string
	auth    *authenticator
	devices LocalDevices
	volumes VolumeReplicas
	log     *slog.Logger
	bufs    sync.Pool // *[]byte: block read buffers
	// cancelled counts shard reads given up because their caller left
	// (the gateway's client hung up, or a hedged read was no longer needed).
	cancelled prometheus.Counter
}

// Cancelled is the number of shard reads given up because the caller left.
func (s *Server) Cancelled() float64 {
	var m dto.Metric
	s.cancelled.Write(&m)
	return m.GetCounter().GetValue()
}

func (s *Server) buffer(n int) *[]byte {
	if bp, ok := s.bufs.Get().(*[]byte); ok && cap(*bp) >= n {
		return bp
	}
	b := make([]byte, n)
	return &b
}

// NewServer returns the RPC handler of node name; its refusals are counted
// on reg (if not nil).
func NewServer(name, secret string, devices LocalDevices, reg prometheus.Registerer, log *slog.Logger) *Server {
	s := &Server{node: name, secret: secret, auth: newAuthenticator(secret, reg), devices: devices, log: log,
		cancelled: prometheus.NewCounter(prometheus.CounterOpts{Name: "strata_rpc_reads_cancelled_total",
			Help: "Shard reads of this node's devices given up because the node that asked left before the answer."})}
	if reg != nil {
		reg.MustRegister(s.cancelled)
	}
	return s
}

// maxBody bounds a whole (not streamed) request body: a volume write or
// bitmap, a commit's records.
const maxBody = maxFrame + 1<<20

// authenticate checks the request's signature and, for a whole body, reads
// it (bounded) and checks it against its signed hash, so a handler never
// acts on bytes the sender did not sign. The returned function gives the
// body's buffer back.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (verified, []byte, func(), bool) {
	v, err := s.auth.verify(r, time.Now())
	if err == nil && v.body != streamBody {
		var bp *[]byte
		if bp, err = s.readBody(r, v); err == nil {
			return v, (*bp)[:r.ContentLength], func() { s.bufs.Put(bp) }, true
		}
	}
	if err != nil {
		s.auth.count(err)
		status := http.StatusUnauthorized
		if !errors.Is(err, errUnauthenticated) {
			status = http.StatusBadRequest
		}
		http.Error(w, err.Error(), status)
		return v, nil, nil, false
	}
	return v, nil, func() {}, true
}

// readBody reads a whole body into a pooled buffer, checks its hash and
// puts it back in front of the handler.
func (s *Server) readBody(r *http.Request, v verified) (*[]byte, error) {
	if r.ContentLength < 0 || r.ContentLength > maxBody {
		return nil, fmt.Errorf("cluster: a signed body needs a Content-Length of at most %d", maxBody)
	}
	bp := s.buffer(int(r.ContentLength))
	buf := (*bp)[:r.ContentLength]
	if _, err := io.ReadFull(r.Body, buf); err != nil {
		s.bufs.Put(bp)
		return nil, fmt.Errorf("cluster: body cut short: %w", err)
	}
	// Reading on to EOF lets net/http watch the connection from here on,
	// so a caller that hangs up cancels the request's context (and the
	// handler gives up instead of finishing work nobody waits for).
	var probe [1]byte
	if n, _ := r.Body.Read(probe[:]); n != 0 {
		s.bufs.Put(bp)
		return nil, errors.New("cluster: body longer than its Content-Length")
	}
	if err := v.checkBody(buf); err != nil {
		s.bufs.Put(bp)
		return nil, err
	}
	r.Body = io.NopCloser(bytes.NewReader(buf))
	return bp, nil
}

// SetVolumes makes the node's volume replicas reachable; call it before
// serving.
func (s *Server) SetVolumes(v VolumeReplicas) { s.volumes = v }

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	v, body, done, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	defer done()
	path, ok := strings.CutPrefix(r.URL.Path, "/rpc/v1/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	if path == "health" {
		h := NodeHealth{Node: s.node, Devices: map[uint32]uint32{}}
		for _, id := range s.devices.LocalDeviceIDs() {
			if st := s.devices.LocalDevice(id); st != nil {
				h.Devices[id] = st.Generation()
			}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(h)
		return
	}
	if rest, ok := strings.CutPrefix(path, "vol/"); ok {
		s.volume(w, r, rest, body)
		return
	}
	rest, ok := strings.CutPrefix(path, "dev/")
	idStr, op, ok2 := strings.Cut(rest, "/")
	id, err := strconv.ParseUint(idStr, 10, 32)
	if !ok || !ok2 || err != nil || r.Method != http.MethodPost {
		http.NotFound(w, r)
		return
	}
	st := s.devices.LocalDevice(uint32(id))
	if st == nil {
		writeErr(w, fmt.Errorf("device %d on node %s: %w", id, s.node, shard.ErrOffline))
		return
	}
	if op == "stream" {
		if v.body != streamBody {
			http.Error(w, "a stream needs a streamed body", http.StatusBadRequest)
			return
		}
		s.stream(w, r, st, newFrameMAC(s.secret, v.sig))
		return
	}
	if v.body == streamBody {
		s.auth.count(refuse(reasonBody, "streamed body"))
		http.Error(w, "only a stream has a streamed body", http.StatusUnauthorized)
		return
	}
	if len(body) > maxFrame {
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	d := &decoder{b: body}
	switch op {
	case "read":
		if len(body) < 4 {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		i := int(binary.LittleEndian.Uint32(body))
		d.b = body[4:]
		loc := d.locator()
		if d.err != nil || i >= loc.Blocks() {
			http.Error(w, "bad locator", http.StatusBadRequest)
			return
		}
		n := shard.HeaderSize + loc.DataLen(i)
		bp := s.buffer(n)
		defer s.bufs.Put(bp)
		buf := (*bp)[:n]
		if _, err := st.ReadBlock(r.Context(), &loc, i, buf); err != nil {
			if r.Context().Err() != nil {
				s.cancelled.Inc()
				return
			}
			writeErr(w, err)
			return
		}
		if r.Context().Err() != nil {
			s.cancelled.Inc() // read, but nobody is waiting for it
			return
		}
		// The whole record goes back so the reader verifies it again; a
		// known length keeps the connection reusable.
		w.Header().Set("Content-Length", strconv.Itoa(n))
		w.Write(buf)
	case "free":
		loc := d.locator()
		if d.err != nil {
			http.Error(w, "bad locator", http.StatusBadRequest)
			return
		}
		if err := st.Free(r.Context(), loc); err != nil {
			writeErr(w, err)
		}
	case "commit":
		ops, err := decodeOps(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		ctx := r.Context()
		if r.URL.Query().Get("reserve") == "1" {
			ctx = shard.UseReserve(ctx)
		}
		if err := st.Commit(ctx, ops...); err != nil {
			writeErr(w, err)
		}
	case "get":
		v, err := st.Get(r.Context(), body)
		if err != nil {
			writeErr(w, err)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(v)))
		w.Write(v)
	case "list":
		s.list(r.Context(), w, st, d)
	case "deleterange":
		lower, upper := d.bytes(), d.bytes()
		if d.err != nil {
			http.Error(w, d.err.Error(), http.StatusBadRequest)
			return
		}
		if err := st.DeleteRange(r.Context(), lower, upper); err != nil {
			writeErr(w, err)
		}
	default:
		http.NotFound(w, r)
	}
}

// list answers one page: lower, upper (empty = end of the records), a
// limit; the answer is a count of entries, key and value each, then a
// byte saying whether more follow.
func (s *Server) list(ctx context.Context, w http.ResponseWriter, st *shard.Store, d *decoder) {
	lower, upper, limit := d.bytes(), d.bytes(), d.uvarint()
	if d.err != nil {
		http.Error(w, d.err.Error(), http.StatusBadRequest)
		return
	}
	if len(upper) == 0 {
		upper = nil
	}
	limit = min(max(limit, 1), maxListPage)
	it, err := st.Iter(ctx, lower, upper)
	if err != nil {
		writeErr(w, err)
		return
	}
	defer it.Close()
	var out []byte
	n := uint64(0)
	for ; it.Valid() && n < limit; it.Next() {
		out = appendBytes(out, it.Key())
		out = appendBytes(out, it.Value())
		n++
	}
	more := byte(0)
	if it.Valid() {
		more = 1
	} else if err := it.Close(); err != nil {
		// The page ended on an error, not at the end of the records.
		writeErr(w, fmt.Errorf("device %s: list: %w", st.Name(), err))
		return
	}
	ans := append(append(binary.AppendUvarint(nil, n), out...), more)
	w.Header().Set("Content-Length", strconv.Itoa(len(ans)))
	w.Write(ans)
}

// stream appends the frames of the body to a new shard stream. Each frame
// is u32 length, the record, and its chained MAC; nothing is written
// before its MAC holds, and the final (empty) frame has one too.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, st *shard.Store, mac *frameMAC) {
	hint, _ := strconv.ParseInt(r.URL.Query().Get("hint"), 10, 64)
	sw := st.NewWriter(r.Context(), hint)
	var lenBuf [4]byte
	var sum [macSize]byte
	var rec []byte
	for {
		if _, err := io.ReadFull(r.Body, lenBuf[:]); err != nil {
			sw.Abort()
			http.Error(w, "stream ended without its final frame", http.StatusBadRequest)
			return
		}
		n := binary.LittleEndian.Uint32(lenBuf[:])
		if n != 0 && (n > maxFrame || n < shard.HeaderSize) {
			sw.Abort()
			http.Error(w, "bad frame length", http.StatusBadRequest)
			return
		}
		if cap(rec) < int(n) {
			rec = make([]byte, n)
		}
		rec = rec[:n]
		if _, err := io.ReadFull(r.Body, rec); err != nil {
			sw.Abort()
			http.Error(w, "stream cut short", http.StatusBadRequest)
			return
		}
		if _, err := io.ReadFull(r.Body, sum[:]); err != nil {
			sw.Abort()
			http.Error(w, "stream cut short", http.StatusBadRequest)
			return
		}
		if err := mac.check(rec, sum[:]); err != nil {
			sw.Abort()
			s.auth.count(err)
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		if n == 0 {
			break
		}
		if err := sw.Append(rec); err != nil {
			sw.Abort()
			// Drain nothing: the gateway learns of the failure at Finish.
			writeErr(w, err)
			return
		}
	}
	loc, err := sw.Finish()
	if err != nil {
		sw.Abort()
		writeErr(w, err)
		return
	}
	w.Write(loc.AppendBinary(nil))
}

func writeErr(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	for _, e := range statusOf {
		if errors.Is(err, e.err) {
			status = e.status
			break
		}
	}
	http.Error(w, err.Error(), status)
}
