package nbd

import (
	"errors"
	"math/bits"
	"sync"
)

// Request payloads (a read's reply, a write's data) are lent from a pool
// under two limits: what one connection may hold and what the whole server
// may hold. A connection whose client stops reading its replies therefore
// stops being read once it holds its share (TCP pushes back on the
// client), and many connections together cannot take more than the
// server's share, however large and many their requests. Buffers of 64 KiB
// and more are kept for reuse (up to the server's limit), so a steady load
// of large requests makes no garbage.

// Default limits: a connection may hold two of the largest requests, the
// server eight. Requests of at most smallRequest bytes are charged to
// their connection only, so clients that fill the server's share with
// large requests they never take the replies of cannot stall everyone
// else's metadata reads and small I/O until the reply timeout ends them.
const (
	DefaultConnBuffers   = 2 * MaxPayload
	DefaultServerBuffers = 8 * MaxPayload
	smallRequest         = 256 << 10
	minPooled            = 64 << 10
)

var errBudgetClosed = errors.New("nbd: connection closed")

// budget counts bytes lent against a limit; take waits for room.
type budget struct {
	mu     sync.Mutex
	cond   *sync.Cond
	lent   int64
	limit  int64
	closed bool
}

func newBudget(limit int64) *budget {
	b := &budget{limit: limit}
	b.cond = sync.NewCond(&b.mu)
	return b
}

// take waits until n more bytes fit (a request larger than the limit waits
// for the budget to be empty), or until close.
func (b *budget) take(n int64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for !b.closed && b.lent > 0 && b.lent+n > b.limit {
		b.cond.Wait()
	}
	if b.closed {
		return errBudgetClosed
	}
	b.lent += n
	return nil
}

func (b *budget) give(n int64) {
	b.mu.Lock()
	b.lent -= n
	b.mu.Unlock()
	b.cond.Broadcast()
}

// close makes every take, now and later, fail.
func (b *budget) close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.cond.Broadcast()
}

func (b *budget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lent
}

// bufferPool lends payload buffers under the server's budget.
type bufferPool struct {
	server *budget
	mu     sync.Mutex
	free   [bits.UintSize][][]byte // by size class (power of two)
	cached int64
}

func newBufferPool(limit int64) *bufferPool { return &bufferPool{server: newBudget(limit)} }

func class(n int) int { return bits.Len(uint(n - 1)) }

// get lends a buffer of n bytes, charged to conn and the server.
func (p *bufferPool) get(conn *budget, n int) ([]byte, error) {
	if err := conn.take(int64(n)); err != nil {
		return nil, err
	}
	if n <= smallRequest {
		return make([]byte, n), nil
	}
	if err := p.server.take(int64(n)); err != nil {
		conn.give(int64(n))
		return nil, err
	}
	c := class(n)
	p.mu.Lock()
	if l := len(p.free[c]); l > 0 {
		b := p.free[c][l-1]
		p.free[c] = p.free[c][:l-1]
		p.cached -= int64(cap(b))
		p.mu.Unlock()
		return b[:n], nil
	}
	p.mu.Unlock()
	return make([]byte, n, 1<<c), nil
}

// put returns a buffer lent by get.
func (p *bufferPool) put(conn *budget, b []byte) {
	n := int64(len(b))
	if n <= smallRequest {
		conn.give(n)
		return
	}
	if cap(b) >= minPooled {
		p.mu.Lock()
		// Keep it unless what is cached and what is lent would exceed the
		// server's limit: memory stays bounded by the limit.
		if p.cached+p.server.inUse() <= p.server.limit {
			c := class(cap(b))
			p.free[c] = append(p.free[c], b[:cap(b)])
			p.cached += int64(cap(b))
		}
		p.mu.Unlock()
	}
	p.server.give(n)
	conn.give(n)
}
