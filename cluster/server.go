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
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The inter-node RPC, served on its own listener under /rpc/v1/. Server
// owns the transport's side of it: every request is authenticated here
// (auth.go) before the handler a component registered for its path sees
// it. The protocols themselves live beside the components they serve:
// shard devices in objectstore/shard/shardrpc, volume replicas in
// blockpool/replicate/volrpc. Server itself answers
//
//	GET /rpc/v1/health   NodeHealth JSON
//
// A request has either a whole body, read (bounded) and checked against
// its signed hash before the handler runs, or a frame stream, which the
// handler reads frame by frame with Call.ReadFrame, each frame checked
// against its chained MAC.

// MaxFrame bounds one frame of a stream and, with some room, a whole body.
const MaxFrame = 64 << 20

// maxBody bounds a whole (not streamed) request body: a volume write or
// bitmap, a commit's records.
const maxBody = MaxFrame + 1<<20

// NodeHealth is the answer of /rpc/v1/health.
type NodeHealth struct {
	Node string `json:"node"`
	// Devices maps each open local device id to its volume generation.
	Devices map[uint32]uint32 `json:"devices"`
}

// Server answers other nodes' RPC for this node's components.
type Server struct {
	node        string
	secret      string
	auth        *authenticator
	mux         *http.ServeMux
	generations func() map[uint32]uint32
	log         *slog.Logger
	bufs        sync.Pool // *[]byte: whole bodies
}

// Call is one authenticated request as its handler sees it.
type Call struct {
	// Body is the request's whole body, checked against its signature;
	// nil for a stream.
	Body []byte
	s    *Server
	r    *http.Request
	mac  *frameMAC
	rec  []byte
	sum  [macSize]byte
	n    [4]byte
}

// A Handler serves one authenticated call.
type Handler func(w http.ResponseWriter, r *http.Request, c *Call)

// NewServer returns the RPC handler of node name. generations reports the
// volume generation of each open local device for the health answer (nil:
// none); refusals are counted on reg (if not nil).
func NewServer(name, secret string, generations func() map[uint32]uint32, reg prometheus.Registerer, log *slog.Logger) *Server {
	s := &Server{node: name, secret: secret, auth: newAuthenticator(secret, reg), mux: http.NewServeMux(),
		generations: generations, log: log}
	s.Handle(http.MethodGet, "health", s.health)
	return s
}

// Registerer is where a component registers its RPC handlers; *Server is
// one.
type Registerer interface {
	Handle(method, path string, h Handler)
	HandleStream(method, path string, h Handler)
}

// Handle serves method on path (under /rpc/v1/, with ServeMux wildcards
// such as {id}) for requests with a whole body.
func (s *Server) Handle(method, path string, h Handler) {
	s.mux.HandleFunc(method+" /rpc/v1/"+path, func(w http.ResponseWriter, r *http.Request) {
		v := r.Context().Value(verifiedKey{}).(verified)
		if v.body == streamBody {
			s.auth.count(refuse(reasonBody, "streamed body"))
			http.Error(w, "only a stream has a streamed body", http.StatusUnauthorized)
			return
		}
		bp, err := s.readBody(r, v)
		if err != nil {
			s.auth.count(err)
			status := http.StatusUnauthorized
			if !errors.Is(err, errUnauthenticated) {
				status = http.StatusBadRequest
			}
			http.Error(w, err.Error(), status)
			return
		}
		defer s.bufs.Put(bp)
		h(w, r, &Call{Body: (*bp)[:r.ContentLength], s: s, r: r})
	})
}

// HandleStream serves method on path for requests whose body is a frame
// stream; nothing else is accepted there.
func (s *Server) HandleStream(method, path string, h Handler) {
	s.mux.HandleFunc(method+" /rpc/v1/"+path, func(w http.ResponseWriter, r *http.Request) {
		v := r.Context().Value(verifiedKey{}).(verified)
		if v.body != streamBody {
			http.Error(w, "a stream needs a streamed body", http.StatusBadRequest)
			return
		}
		h(w, r, &Call{s: s, r: r, mac: newFrameMAC(s.secret, v.sig)})
	})
}

type verifiedKey struct{}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	v, err := s.auth.verify(r, time.Now())
	if err != nil {
		s.auth.count(err)
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	s.mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), verifiedKey{}, v)))
}

func (s *Server) health(w http.ResponseWriter, _ *http.Request, _ *Call) {
	h := NodeHealth{Node: s.node, Devices: map[uint32]uint32{}}
	if s.generations != nil {
		h.Devices = s.generations()
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(h)
}

func (s *Server) buffer(n int) *[]byte {
	if bp, ok := s.bufs.Get().(*[]byte); ok && cap(*bp) >= n {
		return bp
	}
	b := make([]byte, n)
	return &b
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

// ErrBadFrame is a stream frame that is cut short or of a length outside
// the handler's bounds.
var ErrBadFrame = errors.New("cluster: bad stream frame")

// ReadFrame reads the next frame of a stream, of between minLen and
// maxLen bytes (at most MaxFrame), and checks its MAC; a frame of length
// zero ends the stream (and is authenticated too). The returned bytes are
// valid until the next call. A refusal is counted; FrameError answers it.
func (c *Call) ReadFrame(minLen, maxLen int) ([]byte, error) {
	if c.mac == nil {
		return nil, errors.New("cluster: not a stream")
	}
	if _, err := io.ReadFull(c.r.Body, c.n[:]); err != nil {
		return nil, fmt.Errorf("%w: the stream ended without its final frame", ErrBadFrame)
	}
	n := int(binary.LittleEndian.Uint32(c.n[:]))
	if n != 0 && (n > min(maxLen, MaxFrame) || n < minLen) {
		return nil, fmt.Errorf("%w: length %d", ErrBadFrame, n)
	}
	if cap(c.rec) < n {
		c.rec = make([]byte, n)
	}
	c.rec = c.rec[:n]
	if _, err := io.ReadFull(c.r.Body, c.rec); err != nil {
		return nil, fmt.Errorf("%w: cut short", ErrBadFrame)
	}
	if _, err := io.ReadFull(c.r.Body, c.sum[:]); err != nil {
		return nil, fmt.Errorf("%w: cut short", ErrBadFrame)
	}
	if err := c.mac.check(c.rec, c.sum[:]); err != nil {
		c.s.auth.count(err)
		return nil, err
	}
	return c.rec, nil
}

// FrameError answers a ReadFrame error: 401 for a frame that does not
// match its MAC, 400 for one that is malformed.
func FrameError(w http.ResponseWriter, err error) {
	status := http.StatusBadRequest
	if errors.Is(err, errUnauthenticated) {
		status = http.StatusUnauthorized
	}
	http.Error(w, err.Error(), status)
}
