package cluster

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// ErrStreamTimeout ends a stream whose peer stopped taking data, or did
// not answer its end in time; it comes wrapped with ErrUnreachable.
var ErrStreamTimeout = errors.New("cluster: stream timed out")

// Stream is a frame stream to a peer (a handler registered with
// HandleStream): each frame is u32 length (little endian), the bytes and
// their chained MAC; Finish sends the empty final frame and returns the
// peer's answer. The HTTP request runs in the background, fed through a
// pipe; every frame is bounded by the block timeout, so a frozen peer
// fails the stream instead of stalling its sender.
type Stream struct {
	p        *Peer
	pw       *io.PipeWriter
	cancel   context.CancelFunc
	done     chan struct{}
	answer   []byte // set by the request goroutine
	err      error  // set by the request goroutine
	failed   error
	finished bool
	aborted  atomic.Bool
	frame    [4]byte
	mac      *frameMAC
}

// maxAnswer bounds a stream's answer.
const maxAnswer = 1 << 20

// OpenStream starts a stream to path; a peer being skipped fails it at
// once (at its first Append or Finish).
func (p *Peer) OpenStream(ctx context.Context, path string) *Stream {
	s := &Stream{p: p, done: make(chan struct{})}
	if err := p.Skipped(); err != nil {
		s.failed = err
		close(s.done)
		return s
	}
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(ctx)
	s.pw, s.cancel = pw, cancel
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url(path), pr)
	if err != nil {
		s.failed = err
		cancel()
		close(s.done)
		return s
	}
	s.mac = signStream(req, p.t.Secret, p.t.Self)
	go func() {
		defer close(s.done)
		resp, err := p.t.client.Do(req)
		if err != nil {
			if !s.aborted.Load() {
				p.MarkDown(err)
			}
			s.err = fmt.Errorf("node %s: stream: %w: %w", p.Name, err, ErrUnreachable)
			pr.CloseWithError(s.err)
			return
		}
		defer resp.Body.Close()
		out, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
		switch {
		case err != nil:
			s.err = fmt.Errorf("node %s: stream answer: %w: %w", p.Name, err, ErrUnreachable)
		case resp.StatusCode != http.StatusOK:
			s.err = &StatusError{Node: p.Name, Status: resp.StatusCode, Kind: resp.Header.Get("X-Strata-Error"),
				Message: strings.TrimSpace(string(out))}
		default:
			s.answer = out
		}
		pr.CloseWithError(s.err) // unblocks an Append the server no longer reads
	}()
	return s
}

// write sends b, giving up (and marking the peer down) after d.
func (s *Stream) write(b []byte, d time.Duration) error {
	var timedOut atomic.Bool
	t := time.AfterFunc(d, func() {
		timedOut.Store(true)
		s.cancel()
		s.pw.CloseWithError(ErrStreamTimeout)
	})
	_, err := s.pw.Write(b)
	t.Stop()
	if timedOut.Load() {
		s.p.MarkDown(ErrStreamTimeout)
		return fmt.Errorf("node %s: %w: %w", s.p.Name, ErrStreamTimeout, ErrUnreachable)
	}
	return err
}

// Append sends one frame (of at least one byte).
func (s *Stream) Append(rec []byte) error {
	if s.failed != nil {
		return s.failed
	}
	block := s.p.t.Timeouts.Block
	binary.LittleEndian.PutUint32(s.frame[:], uint32(len(rec)))
	err := s.write(s.frame[:], block)
	if err == nil {
		err = s.write(rec, block)
	}
	if err == nil {
		sum := s.mac.next(rec)
		err = s.write(sum[:], block)
	}
	if err != nil {
		s.failed = s.streamErr(err)
	}
	return s.failed
}

// streamErr prefers the server's answer to the pipe's error: a write that
// failed because the request ended carries no more than that. s.err is
// read only once done is closed (the request goroutine's write happens
// before), and a timed-out write is its own answer.
func (s *Stream) streamErr(err error) error {
	if errors.Is(err, ErrStreamTimeout) {
		return err
	}
	select {
	case <-s.done:
		if s.err != nil {
			return s.err
		}
	case <-time.After(s.p.t.Timeouts.Call):
	}
	return err
}

// Finish ends the stream and returns the peer's answer, waiting at most
// the finish timeout for it.
func (s *Stream) Finish() ([]byte, error) {
	if s.failed != nil {
		s.Abort()
		return nil, s.failed
	}
	binary.LittleEndian.PutUint32(s.frame[:], 0)
	sum := s.mac.next(nil)
	if err := s.write(append(s.frame[:], sum[:]...), s.p.t.Timeouts.Block); err != nil {
		s.failed = s.streamErr(err)
		s.Abort()
		return nil, s.failed
	}
	s.pw.Close()
	select {
	case <-s.done:
	case <-time.After(s.p.t.Timeouts.Finish):
		s.p.MarkDown(ErrStreamTimeout)
		s.failed = fmt.Errorf("node %s: waiting for the end of the stream: %w: %w", s.p.Name, ErrStreamTimeout, ErrUnreachable)
		s.Abort()
		return nil, s.failed
	}
	s.finished = true
	s.cancel()
	if s.err != nil {
		return nil, s.err
	}
	return s.answer, nil
}

// Abort ends an unfinished stream; the peer sees its body end without the
// final frame.
func (s *Stream) Abort() {
	if s.finished {
		return
	}
	s.finished = true
	s.aborted.Store(true)
	if s.pw != nil {
		s.pw.CloseWithError(errors.New("stream aborted"))
		s.cancel()
	}
	<-s.done
}
