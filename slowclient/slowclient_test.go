package slowclient

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

// serve runs h under l on a real listener and returns its address and the
// error (or byte count) each request's body read ended with.
func serve(t *testing.T, l Limits) (string, chan error) {
	t.Helper()
	results := make(chan error, 16)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err == nil {
			err = fmt.Errorf("ok %d", n)
		}
		results <- err
		if errors.Is(err, ErrTooSlow) {
			http.Error(w, "too slow", http.StatusRequestTimeout)
		}
	})
	srv := httptest.NewServer(Handler(h, l))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), results
}

// send writes a request with Content-Length length, then the body by
// feed, which may pause; it returns the connection.
func send(t *testing.T, addr string, length int, feed func(c net.Conn)) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "PUT /x HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", length)
	go feed(c)
	return c
}

func TestBodiesThatStallOrTrickleAreCutOff(t *testing.T) {
	l := Limits{Idle: 400 * time.Millisecond, MinRate: 8 << 10}
	cases := []struct {
		name   string
		length int
		feed   func(c net.Conn)
		want   func(err error) bool
	}{
		{"a byte every 100 ms", 1000, func(c net.Conn) {
			for i := 0; i < 1000; i++ {
				if _, err := c.Write([]byte{'a'}); err != nil {
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		}, func(err error) bool { return errors.Is(err, ErrTooSlow) }},
		{"stops short and stays open", 1000, func(c net.Conn) { c.Write(make([]byte, 500)) },
			func(err error) bool { return errors.Is(err, ErrTooSlow) && errors.Is(err, os.ErrDeadlineExceeded) }},
		{"stops short and closes", 1000, func(c net.Conn) { c.Write(make([]byte, 500)); c.(*net.TCPConn).CloseWrite() },
			func(err error) bool { return errors.Is(err, io.ErrUnexpectedEOF) }},
		{"slow but steady: 40 KiB/s for 1.5 s", 60 << 10, func(c net.Conn) {
			for i := 0; i < 60; i++ {
				c.Write(make([]byte, 1<<10))
				time.Sleep(25 * time.Millisecond)
			}
		}, func(err error) bool { return err != nil && err.Error() == fmt.Sprint("ok ", 60<<10) }},
		{"fast", 8 << 20, func(c net.Conn) { c.Write(make([]byte, 8<<20)) },
			func(err error) bool { return err != nil && err.Error() == fmt.Sprint("ok ", 8<<20) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr, results := serve(t, l)
			start := time.Now()
			send(t, addr, tc.length, tc.feed)
			select {
			case err := <-results:
				if !tc.want(err) {
					t.Fatalf("body read ended with %v after %v", err, time.Since(start))
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the handler is still reading the body after 10 s")
			}
		})
	}
}

func TestAResponseNobodyReadsIsCutOff(t *testing.T) {
	done := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := bytes.Repeat([]byte("x"), 1<<20)
		for i := 0; i < 1024; i++ {
			if _, err := w.Write(chunk); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	})
	srv := httptest.NewServer(Handler(h, Limits{Idle: 300 * time.Millisecond}))
	defer srv.Close()
	c, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("writing a GiB nobody reads ended with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the handler is still writing after 10 s")
	}
}

// Every way a body is cut off reads as a deadline (what the S3 layer maps
// to RequestTimeout), including the rate check that fails before a read.
func TestTooSlowIsADeadline(t *testing.T) {
	b := &body{l: Limits{Idle: time.Second, MinRate: 1 << 20}, start: time.Now().Add(-time.Minute)}
	_, err := b.Read(make([]byte, 10))
	if !errors.Is(err, ErrTooSlow) || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("rate check: %v", err)
	}
}
