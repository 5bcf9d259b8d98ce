package conformance

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/strata-storage/strata/s3api/sigv4"
)

// rawSignedPut opens a connection and sends the headers of a PUT of body,
// signed with its SHA-256, leaving the body to the caller.
func rawSignedPut(t *testing.T, addr, path string, body []byte) net.Conn {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, "http://"+addr+path, nil)
	req.ContentLength = int64(len(body))
	if err := sigv4.Sign(req, testUser, testSecret, "us-east-1", body, time.Now()); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "PUT %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", path, addr, len(body))
	for k, v := range req.Header {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v[0])
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(c, b.String()); err != nil {
		t.Fatal(err)
	}
	return c
}

// answer reads the status and body of the reply on c.
func answer(c net.Conn, within time.Duration) (int, string, error) {
	c.SetReadDeadline(time.Now().Add(within))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// Issue 16: slow clients are cut off. 300 connections that trickle a byte
// at a time, bodies that stop short of their Content-Length (open, or
// closed), and GETs whose answers nobody reads: each ends within the
// limits with the S3 error a client can read, nothing is stored, and the
// server's goroutines come back down.
func TestSlowClientsAreCutOff(t *testing.T) {
	t.Parallel()
	srv := startBinaryServer(t, t.TempDir(), "--client-timeout", "1s", "--min-body-rate", "4KiB")
	mc := minioClient(t, srv.server, testSecret)
	ctx := t.Context()
	if err := mc.MakeBucket(ctx, "slow", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 4<<20) // 64 MiB: more than the sockets' buffers hold
	if _, err := mc.PutObject(ctx, "slow", "big", bytes.NewReader(big), int64(len(big)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	baseline := metric(t, srv.server, "go_goroutines")

	const trickling = 300
	body := make([]byte, 100000)
	conns := make([]net.Conn, trickling)
	for i := range conns {
		conns[i] = rawSignedPut(t, srv.s3, fmt.Sprintf("/slow/trickle-%d", i), body)
		defer conns[i].Close()
	}
	// Readers that never read: GETs of a large object.
	var stuck []net.Conn
	for i := 0; i < 20; i++ {
		c, err := net.Dial("tcp", srv.s3)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		req, _ := http.NewRequest(http.MethodGet, "http://"+srv.s3+"/slow/big", nil)
		sigv4.Sign(req, testUser, testSecret, "us-east-1", nil, time.Now())
		req.Write(c)
		stuck = append(stuck, c)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // one byte per connection every 200 ms, for at most 10 s
		defer wg.Done()
		for round := 0; round < 50; round++ {
			for _, c := range conns {
				c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
				c.Write([]byte{'x'})
			}
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	t.Logf("goroutines: %v before, %v with the slow clients", baseline, metric(t, srv.server, "go_goroutines"))
	timeouts := 0
	for i, c := range conns {
		status, msg, err := answer(c, 15*time.Second)
		if err != nil {
			t.Fatalf("trickling connection %d: no answer: %v", i, err)
		}
		if status != http.StatusBadRequest || !strings.Contains(msg, "<Code>RequestTimeout</Code>") {
			t.Fatalf("trickling connection %d: %d %s", i, status, msg)
		}
		timeouts++
	}
	close(stop)
	wg.Wait()

	// A body that stops short and stays open; one that stops short and
	// closes its side.
	open := rawSignedPut(t, srv.s3, "/slow/short-open", body)
	defer open.Close()
	open.Write(body[:5000])
	if status, msg, err := answer(open, 10*time.Second); err != nil || status != http.StatusBadRequest || !strings.Contains(msg, "RequestTimeout") {
		t.Fatalf("body short of its length, connection open: %d %s %v", status, msg, err)
	}
	closed := rawSignedPut(t, srv.s3, "/slow/short-closed", body)
	defer closed.Close()
	closed.Write(body[:5000])
	closed.(*net.TCPConn).CloseWrite()
	if status, msg, err := answer(closed, 10*time.Second); err != nil || status != http.StatusBadRequest || !strings.Contains(msg, "<Code>IncompleteBody</Code>") {
		t.Fatalf("body short of its length, connection half-closed: %d %s %v", status, msg, err)
	}

	// Nothing was stored, and the server let go of every slow client.
	for _, key := range []string{"trickle-0", fmt.Sprintf("trickle-%d", trickling-1), "short-open", "short-closed"} {
		if _, err := mc.StatObject(ctx, "slow", key, minio.StatObjectOptions{}); err == nil {
			t.Fatalf("%s was stored", key)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	var now float64
	for time.Now().Before(deadline) {
		if now = metric(t, srv.server, "go_goroutines"); now < baseline+5 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if now >= baseline+5 {
		t.Fatalf("goroutines: %v before the slow clients, %v after they were cut off", baseline, now)
	}
	t.Logf("%d trickling PUTs got RequestTimeout; %d unread GETs cut off; goroutines %v before, %v after", timeouts, len(stuck), baseline, now)
	// The server still serves.
	if _, err := mc.PutObject(ctx, "slow", "after", strings.NewReader("fine"), 4, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
}
