package tlspsk

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

var testKey = bytes.Repeat([]byte{0x5c}, 32)

func testKeys(id string) ([]byte, bool) { return testKey, id == "alice" }

// gnutlsCLI finds GnuTLS's client, the TLS library qemu and libnbd use.
func gnutlsCLI(t *testing.T) string {
	p, err := exec.LookPath("gnutls-cli")
	if err != nil {
		if os.Getenv("STRATA_REQUIRE_TOOLS") == "1" {
			t.Fatal("gnutls-cli not installed (apt-get install gnutls-bin); STRATA_REQUIRE_TOOLS=1 requires it")
		}
		t.Skip("gnutls-cli not installed (apt-get install gnutls-bin)")
	}
	return p
}

// result is what the server side of one connection saw.
type result struct {
	identity string
	suite    uint16
	line     string
	err      error
	after    error // of a read after the line
}

// echoServer accepts one connection per call of next, completes the PSK
// handshake, reads a line and answers it in upper case.
func echoServer(t *testing.T, wrap func(net.Conn) net.Conn) (addr string, next func() result) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	results := make(chan result, 8)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(20 * time.Second))
				if wrap != nil {
					c = wrap(c)
				}
				h, err := ReadHello(c)
				if err != nil {
					results <- result{err: err}
					return
				}
				tc, err := Server(c, h, testKeys)
				if err != nil {
					results <- result{err: err}
					return
				}
				br := bufio.NewReader(tc)
				line, err := br.ReadString('\n')
				var after error
				if err == nil {
					if _, err = tc.Write([]byte(strings.ToUpper(line))); err == nil {
						_, after = br.ReadByte()
					}
				}
				results <- result{identity: tc.Identity(), suite: tc.CipherSuite(), line: line, err: err, after: after}
				tc.Close()
			}()
		}
	}()
	return ln.Addr().String(), func() result {
		select {
		case r := <-results:
			return r
		case <-time.After(30 * time.Second):
			t.Fatal("the server saw no connection")
			return result{}
		}
	}
}

func runClient(t *testing.T, addr, user, key, priority, input string) (string, error) {
	host, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(gnutlsCLI(t), "--pskusername", user, "--pskkey", key, "--priority", priority, "-p", port, host)
	pr, pw := io.Pipe()
	cmd.Stdin = pr
	go func() {
		io.WriteString(pw, input)
		time.Sleep(time.Second) // gnutls-cli quits at end of input, maybe before the answer
		pw.Close()
	}()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// GnuTLS clients, as qemu and libnbd configure them and narrower, connect,
// prove the key and exchange data; wrong keys and unknown identities fail
// alike.
func TestGnuTLSClients(t *testing.T) {
	addr, next := echoServer(t, nil)
	good := hex.EncodeToString(testKey)
	for _, c := range []struct {
		name, user, key, priority string
		suite                     uint16
		ok                        bool
	}{
		{"qemu's priority (TLS 1.3 offered too)", "alice", good, "NORMAL:+ECDHE-PSK:+DHE-PSK:+PSK", SuitePSKWithAES256GCMSHA384, true},
		{"AES-128-GCM only", "alice", good, "NORMAL:-VERS-TLS1.3:+PSK:-AES-256-GCM", SuitePSKWithAES128GCMSHA256, true},
		{"without extensions (no extended master secret)", "alice", good, "NORMAL:+PSK:%NO_EXTENSIONS", SuitePSKWithAES256GCMSHA384, true},
		{"a wrong key", "alice", strings.Repeat("5d", 32), "NORMAL:+PSK", 0, false},
		{"an unknown identity", "mallory", good, "NORMAL:+PSK", 0, false},
		{"no PSK suite offered", "alice", good, "NORMAL", 0, false},
	} {
		out, err := runClient(t, addr, c.user, c.key, c.priority, "hello over psk\n")
		r := next()
		if !c.ok {
			if r.err == nil || strings.Contains(out, "HELLO OVER PSK") {
				t.Fatalf("%s: the server accepted it (%+v):\n%s", c.name, r, out)
			}
			t.Logf("%s: server: %v", c.name, r.err)
			continue
		}
		if err != nil || r.err != nil || r.after != io.EOF || r.identity != c.user || r.suite != c.suite || r.line != "hello over psk\n" || !strings.Contains(out, "HELLO OVER PSK") {
			t.Fatalf("%s: client err %v, server %+v:\n%s", c.name, err, r, out)
		}
		if c.priority != "NORMAL:+PSK:%NO_EXTENSIONS" && !strings.Contains(out, "extended master secret") {
			t.Fatalf("%s: extended master secret not used:\n%s", c.name, out)
		}
	}
}

// tamper rewrites the client's first application-data record as it
// passes.
type tamper struct {
	net.Conn
	r    *bufio.Reader
	done bool
	edit func(rec []byte) []byte
	buf  []byte
}

func (c *tamper) Read(p []byte) (int, error) {
	if len(c.buf) == 0 {
		hdr := make([]byte, 5)
		if _, err := io.ReadFull(c.r, hdr); err != nil {
			return 0, err
		}
		rec := make([]byte, 5+int(binary.BigEndian.Uint16(hdr[3:])))
		copy(rec, hdr)
		if _, err := io.ReadFull(c.r, rec[5:]); err != nil {
			return 0, err
		}
		if rec[0] == typeApplicationData && !c.done {
			c.done, rec = true, c.edit(rec)
		}
		c.buf = rec
	}
	n := copy(p, c.buf)
	c.buf = c.buf[n:]
	return n, nil
}

// A flipped bit, a changed record type and a replayed record each end the
// connection with bad_record_mac instead of reaching the reader.
func TestTamperedRecordsAreRefused(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func([]byte) []byte
	}{
		{"bit flipped in the ciphertext", func(r []byte) []byte { r[len(r)-20] ^= 1; return r }},
		{"bit flipped in the explicit nonce", func(r []byte) []byte { r[6] ^= 1; return r }},
		{"record sent twice", func(r []byte) []byte { return append(r, r...) }},
		{"record's type changed", func(r []byte) []byte { r[0] = typeHandshake; return r }},
	} {
		t.Run(c.name, func(t *testing.T) {
			addr, next := echoServer(t, func(nc net.Conn) net.Conn { return &tamper{Conn: nc, r: bufio.NewReader(nc), edit: c.edit} })
			out, _ := runClient(t, addr, "alice", hex.EncodeToString(testKey), "NORMAL:+PSK", "x\n")
			r := next()
			var a alertError
			if c.name == "record sent twice" {
				// The first copy is read and answered; the second, under the
				// wrong sequence number, fails.
				if r.err != nil || r.line != "x\n" || !errors.As(r.after, &a) || a.desc != alertBadRecordMAC {
					t.Fatalf("server: %+v (want the line, then bad_record_mac)\n%s", r, out)
				}
				return
			}
			if !errors.As(r.err, &a) || a.desc != alertBadRecordMAC {
				t.Fatalf("server: %+v (want bad_record_mac)\n%s", r, out)
			}
		})
	}
}
