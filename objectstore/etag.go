package objectstore

import (
	"sync"
	"sync/atomic"

	md5simd "github.com/minio/md5-simd"
)

// etagHashers hands out the MD5 behind an object's ETag. MD5 cannot be
// split within one stream, so with many uploads at once its cost is
// shared instead: each stream takes a lane of one multi-buffer (SIMD)
// hasher, which hashes up to 16 streams in about the time the scalar code
// takes for one. A stream with few others beside it gets the standard
// library's hasher, which is faster for a lone stream than a mostly empty
// set of lanes.
type etagHashers struct {
	active atomic.Int32 // streams being hashed

	mu     sync.RWMutex
	simd   md5simd.Server // started on first use
	closed bool
}

// simdFrom is the number of concurrent streams at which a new stream
// takes a SIMD lane.
const simdFrom = 3

// get returns a hasher; give it back with put.
func (e *etagHashers) get() md5simd.Hasher {
	if e.active.Add(1) < simdFrom {
		return md5simd.StdlibHasher()
	}
	e.mu.RLock()
	if e.simd != nil && !e.closed {
		defer e.mu.RUnlock()
		return e.simd.NewHash()
	}
	e.mu.RUnlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return md5simd.StdlibHasher()
	}
	if e.simd == nil {
		e.simd = md5simd.NewServer()
	}
	return e.simd.NewHash()
}

func (e *etagHashers) put(h md5simd.Hasher) {
	h.Close()
	e.active.Add(-1)
}

// close stops the SIMD hasher's goroutine; later streams use the
// standard library's.
func (e *etagHashers) close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.simd != nil && !e.closed {
		e.simd.Close()
	}
	e.closed = true
}
