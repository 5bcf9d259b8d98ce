package shardrpc

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/strata-storage/strata/cluster"
	"github.com/strata-storage/strata/objectstore/shard"
)

// LocalDevices finds this node's open devices by ring device id.
type LocalDevices interface {
	LocalDevice(id uint32) *shard.Store
	LocalDeviceIDs() []uint32
}

// Server answers other nodes' calls to this node's shard devices.
type Server struct {
	node    string
	devices LocalDevices
	bufs    sync.Pool // *[]byte: block read buffers
	// cancelled counts shard reads given up because their caller left
	// (the gateway's client hung up, or a hedged read was no longer needed).
	cancelled prometheus.Counter
}

// Register serves node's devices on srv; its counter goes on reg (if not
// nil).
func Register(srv cluster.Registerer, node string, devices LocalDevices, reg prometheus.Registerer) *Server {
	s := &Server{node: node, devices: devices,
		cancelled: prometheus.NewCounter(prometheus.CounterOpts{Name: "strata_rpc_reads_cancelled_total",
			Help: "Shard reads of this node's devices given up because the node that asked left before the answer."})}
	if reg != nil {
		reg.MustRegister(s.cancelled)
	}
	srv.HandleStream(http.MethodPost, "dev/{id}/stream", s.device(s.stream))
	srv.Handle(http.MethodPost, "dev/{id}/read", s.device(s.read))
	srv.Handle(http.MethodPost, "dev/{id}/free", s.device(s.free))
	srv.Handle(http.MethodPost, "dev/{id}/commit", s.device(s.commit))
	srv.Handle(http.MethodPost, "dev/{id}/get", s.device(s.get))
	srv.Handle(http.MethodPost, "dev/{id}/list", s.device(s.list))
	srv.Handle(http.MethodPost, "dev/{id}/deleterange", s.device(s.deleteRange))
	return s
}

// Generations reports the volume generation of each open local device,
// for the node's health answer.
func Generations(devices LocalDevices) func() map[uint32]uint32 {
	return func() map[uint32]uint32 {
		out := map[uint32]uint32{}
		for _, id := range devices.LocalDeviceIDs() {
			if st := devices.LocalDevice(id); st != nil {
				out[id] = st.Generation()
			}
		}
		return out
	}
}

// Cancelled is the number of shard reads given up because the caller left.
func (s *Server) Cancelled() float64 {
	var m dto.Metric
	s.cancelled.Write(&m)
	return m.GetCounter().GetValue()
}

type deviceHandler func(w http.ResponseWriter, r *http.Request, c *cluster.Call, st *shard.Store)

// device finds the call's device; one this node does not have open is
// offline.
func (s *Server) device(h deviceHandler) cluster.Handler {
	return func(w http.ResponseWriter, r *http.Request, c *cluster.Call) {
		id, err := strconv.ParseUint(r.PathValue("id"), 10, 32)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		st := s.devices.LocalDevice(uint32(id))
		if st == nil {
			writeErr(w, fmt.Errorf("device %d on node %s: %w", id, s.node, shard.ErrOffline))
			return
		}
		h(w, r, c, st)
	}
}

func (s *Server) buffer(n int) *[]byte {
	if bp, ok := s.bufs.Get().(*[]byte); ok && cap(*bp) >= n {
		return bp
	}
	b := make([]byte, n)
	return &b
}

// read answers u32 block + locator with the whole block record, so the
// reader verifies it again.
func (s *Server) read(w http.ResponseWriter, r *http.Request, c *cluster.Call, st *shard.Store) {
	if len(c.Body) < 4 {
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	i := int(binary.LittleEndian.Uint32(c.Body))
	d := &decoder{b: c.Body[4:]}
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
	// A known length keeps the connection reusable.
	w.Header().Set("Content-Length", strconv.Itoa(n))
	w.Write(buf)
}

func (s *Server) free(w http.ResponseWriter, r *http.Request, c *cluster.Call, st *shard.Store) {
	d := &decoder{b: c.Body}
	loc := d.locator()
	if d.err != nil {
		http.Error(w, "bad locator", http.StatusBadRequest)
		return
	}
	if err := st.Free(r.Context(), loc); err != nil {
		writeErr(w, err)
	}
}

func (s *Server) commit(w http.ResponseWriter, r *http.Request, c *cluster.Call, st *shard.Store) {
	ops, err := decodeOps(c.Body)
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
}

func (s *Server) get(w http.ResponseWriter, r *http.Request, c *cluster.Call, st *shard.Store) {
	v, err := st.Get(r.Context(), c.Body)
	if err != nil {
		writeErr(w, err)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(v)))
	w.Write(v)
}

func (s *Server) deleteRange(w http.ResponseWriter, r *http.Request, c *cluster.Call, st *shard.Store) {
	d := &decoder{b: c.Body}
	lower, upper := d.bytes(), d.bytes()
	if d.err != nil {
		http.Error(w, d.err.Error(), http.StatusBadRequest)
		return
	}
	if err := st.DeleteRange(r.Context(), lower, upper); err != nil {
		writeErr(w, err)
	}
}

// list answers one page: lower, upper (empty = end of the records), a
// limit; the answer is a count of entries, key and value each, then a
// byte saying whether more follow.
func (s *Server) list(w http.ResponseWriter, r *http.Request, c *cluster.Call, st *shard.Store) {
	d := &decoder{b: c.Body}
	lower, upper, limit := d.bytes(), d.bytes(), d.uvarint()
	if d.err != nil {
		http.Error(w, d.err.Error(), http.StatusBadRequest)
		return
	}
	if len(upper) == 0 {
		upper = nil
	}
	limit = min(max(limit, 1), maxListPage)
	ans, err := answerPage(r.Context(), st, lower, upper, limit)
	if err != nil {
		writeErr(w, err)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(ans)))
	w.Write(ans)
}

func answerPage(ctx context.Context, st *shard.Store, lower, upper []byte, limit uint64) ([]byte, error) {
	it, err := st.Iter(ctx, lower, upper)
	if err != nil {
		return nil, err
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
		return nil, fmt.Errorf("device %s: list: %w", st.Name(), err)
	}
	return append(append(binary.AppendUvarint(nil, n), out...), more), nil
}

// stream appends the frames of the body to a new shard stream; nothing is
// written before a frame's MAC holds, and the final (empty) frame has one
// too. A body that ends without that frame (a gateway that died or gave
// up) aborts the stream and gives its space back.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, c *cluster.Call, st *shard.Store) {
	hint, _ := strconv.ParseInt(r.URL.Query().Get("hint"), 10, 64)
	sw := st.NewWriter(r.Context(), hint)
	for {
		rec, err := c.ReadFrame(shard.HeaderSize, maxFrame)
		if err != nil {
			sw.Abort()
			cluster.FrameError(w, err)
			return
		}
		if len(rec) == 0 {
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
