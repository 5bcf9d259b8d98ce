// Package slowclient bounds what a slow or stalled HTTP client can hold on
// a server: a request body must keep arriving (no stall longer than the
// idle timeout) and, once the first idle timeout has passed, average at
// least a minimum rate; a response must keep being taken (no write may
// stall longer than the idle timeout). A client that trickles one byte
// every few seconds, stops short of its Content-Length, or never reads its
// answer is cut off instead of holding a goroutine and its buffers
// forever. Header timeouts belong to http.Server (ReadHeaderTimeout).
package slowclient

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"
)

// Limits are the bounds of one listener.
type Limits struct {
	// Idle is the longest a body may stall between two reads, or a
	// response between two writes; also the grace before MinRate applies.
	Idle time.Duration
	// MinRate is the bytes per second a body must average after Idle
	// (0: no minimum).
	MinRate int64
}

// DefaultLimits suit clients on slow but working links.
func DefaultLimits() Limits { return Limits{Idle: time.Minute, MinRate: 1 << 10} }

// ErrTooSlow is what reading a body that broke the limits returns; it
// matches os.ErrDeadlineExceeded too, whether the cut came from the
// connection's deadline or from the rate check before a read.
var ErrTooSlow = fmt.Errorf("client sent the request body too slowly (%w)", os.ErrDeadlineExceeded)

// Handler enforces l on every request h serves.
func Handler(h http.Handler, l Limits) http.Handler {
	if l.Idle <= 0 {
		return h
	}
	bufs := &sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		now := time.Now()
		if r.Body != nil && r.Body != http.NoBody {
			// A shallow copy: the server judges from its own request's
			// body whether the handler left it unread (and then, with
			// Expect: 100-continue, must not wait for it).
			r2 := new(http.Request)
			*r2 = *r
			r2.Body = &body{ReadCloser: r.Body, rc: rc, l: l, start: now}
			r = r2
		}
		h.ServeHTTP(&writer{ResponseWriter: w, rc: rc, idle: l.Idle, bufs: bufs}, r)
	})
}

// retarget is how far a deadline may lag behind the one wanted before it
// is set again: setting it on every small read would cost more than it buys.
const retarget = 100 * time.Millisecond

type body struct {
	io.ReadCloser
	rc       *http.ResponseController
	l        Limits
	start    time.Time
	received int64
	deadline time.Time
	failed   error
}

// due is when the next byte must have arrived: within Idle of now, and no
// later than the minimum rate allows for what came so far.
func (b *body) due(now time.Time) time.Time {
	d := now.Add(b.l.Idle)
	if b.l.MinRate > 0 {
		byRate := b.start.Add(b.l.Idle + time.Duration(float64(b.received)/float64(b.l.MinRate)*float64(time.Second)))
		if byRate.Before(d) {
			d = byRate
		}
	}
	return d
}

func (b *body) Read(p []byte) (int, error) {
	if b.failed != nil {
		return 0, b.failed
	}
	now := time.Now()
	due := b.due(now)
	if !due.After(now) {
		b.failed = fmt.Errorf("%w: %d bytes in %v", ErrTooSlow, b.received, now.Sub(b.start).Round(time.Millisecond))
		return 0, b.failed
	}
	if b.deadline.IsZero() || due.Sub(b.deadline) > retarget || due.Before(b.deadline) {
		if err := b.rc.SetReadDeadline(due); err == nil {
			b.deadline = due
		}
	}
	n, err := b.ReadCloser.Read(p)
	b.received += int64(n)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		err = fmt.Errorf("%w: %d bytes in %v", ErrTooSlow, b.received, time.Since(b.start).Round(time.Millisecond))
		b.failed = err
	}
	return n, err
}

// writer gives every write of the response Idle to complete.
type writer struct {
	http.ResponseWriter
	rc       *http.ResponseController
	idle     time.Duration
	deadline time.Time
	bufs     *sync.Pool // *[]byte for ReadFrom
}

func (w *writer) extend() {
	due := time.Now().Add(w.idle)
	if w.deadline.IsZero() || due.Sub(w.deadline) > retarget {
		if err := w.rc.SetWriteDeadline(due); err == nil {
			w.deadline = due
		}
	}
}

func (w *writer) Write(p []byte) (int, error) {
	w.extend()
	return w.ResponseWriter.Write(p)
}

func (w *writer) ReadFrom(r io.Reader) (int64, error) {
	// Copy in pieces so each gets its own deadline.
	bp := w.bufs.Get().(*[]byte)
	defer w.bufs.Put(bp)
	return io.CopyBuffer(writeOnly{w}, r, *bp)
}

func (w *writer) Flush() {
	w.extend()
	w.rc.Flush()
}

// Unwrap lets http.ResponseController reach the connection.
func (w *writer) Unwrap() http.ResponseWriter { return w.ResponseWriter }

type writeOnly struct{ w *writer }

func (o writeOnly) Write(p []byte) (int, error) { return o.w.Write(p) }
