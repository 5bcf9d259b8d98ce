package nbd

import (
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/strata-storage/strata/blockpool"
)

// FuzzClientStream plays a fuzzed client byte stream (client flags, option
// haggling, then requests) against a server connection with a small
// export: the server must answer or hang up, never panic or hang.
func FuzzClientStream(f *testing.F) {
	opt := func(code uint32, data string) string {
		b := []byte{0x49, 0x48, 0x41, 0x56, 0x45, 0x4F, 0x50, 0x54, 0, 0, 0, byte(code), 0, 0, 0, byte(len(data))}
		return string(b) + data
	}
	req := func(typ byte, off, n uint32) string {
		return string([]byte{0x25, 0x60, 0x95, 0x13, 0, 0, 0, typ, 0, 0, 0, 0, 0, 0, 0, 1,
			0, 0, 0, 0, byte(off >> 24), byte(off >> 16), byte(off >> 8), byte(off), byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
	}
	flags := "\x00\x00\x00\x03"
	f.Add([]byte(flags + opt(optList, "")))
	f.Add([]byte(flags + opt(optExportName, "v") + req(cmdWrite, 0, 4) + "abcd" + req(cmdRead, 0, 4) + req(cmdFlush, 0, 0) + req(cmdDisc, 0, 0)))
	f.Add([]byte(flags + opt(optGo, "\x00\x00\x00\x01v\x00\x00") + req(cmdRead, 0xfffffff0, 0x100)))
	f.Add([]byte(flags + opt(optStartTLS, "")))
	exports := poolExports{vols: map[string]blockpool.Volume{"v": blockpool.NewMemVolume(1 << 20)}}
	srv := NewServer(exports, Options{Handshake: time.Second, ReplyTimeout: time.Second}, slog.New(slog.DiscardHandler))
	f.Fuzz(func(t *testing.T, stream []byte) {
		client, server := net.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			srv.serveConn(server)
			server.Close()
		}()
		go io.Copy(io.Discard, client) // take every answer
		client.SetWriteDeadline(time.Now().Add(2 * time.Second))
		client.Write(stream)
		client.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("the server did not end the connection")
		}
	})
}
