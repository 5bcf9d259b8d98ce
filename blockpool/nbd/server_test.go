package nbd

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/strata-storage/strata/blockpool"
)

// poolDir is the directory of the last test pool (for corrupting files),
// lastServer the last server startServer started.
var (
	poolDir    string
	lastServer *Server
)

type poolExports struct {
	vols map[string]blockpool.Volume
}

func (p poolExports) Export(name string) (Export, bool) {
	v, ok := p.vols[name]
	return v, ok
}

func (p poolExports) Names() []string {
	var out []string
	for n := range p.vols {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// startServer serves two file-thin volumes (vol1 256 MiB, vol2 64 MiB) on
// a 127.0.0.1 port.
func startServer(t *testing.T) (addr string, vols map[string]blockpool.Volume) {
	t.Helper()
	pool, err := blockpool.OpenFilePool("p", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	vols = map[string]blockpool.Volume{}
	for name, size := range map[string]int64{"vol1": 256 << 20, "vol2": 64 << 20} {
		v, err := pool.Create(name, size)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { v.Close() })
		vols[name] = v
	}
	// vol3: a checksummed volume (data + sums) in the same pool.
	data, err := pool.Create("vol3", 32<<20)
	if err != nil {
		t.Fatal(err)
	}
	sums, err := pool.Create("vol3-sums", blockpool.SumsSize(32<<20))
	if err != nil {
		t.Fatal(err)
	}
	checked, err := blockpool.OpenChecked(data, sums)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { checked.Close() })
	vols["vol3"] = checked
	poolDir = pool.Dir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(poolExports{vols}, Options{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	lastServer = srv
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Close(ctx)
	})
	return ln.Addr().String(), vols
}

// tool finds a client program from Debian, skipping without it unless
// STRATA_REQUIRE_TOOLS=1.
func tool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("STRATA_REQUIRE_TOOLS") == "1" {
			t.Fatalf("%s not installed (apt-get install %s); STRATA_REQUIRE_TOOLS=1 requires it", name, pkg)
		}
		t.Skipf("%s not installed (apt-get install %s)", name, pkg)
	}
	return p
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestNbdinfoListsExports(t *testing.T) {
	nbdinfo := tool(t, "nbdinfo", "libnbd-bin")
	addr, _ := startServer(t)
	out := run(t, nbdinfo, "--list", "nbd://"+addr)
	for _, want := range []string{"export=", "vol1", "vol2", "vol3", "268435456", "67108864"} {
		if !strings.Contains(out, want) {
			t.Fatalf("nbdinfo --list lacks %q:\n%s", want, out)
		}
	}
	out = run(t, nbdinfo, "--json", "nbd://"+addr+"/vol2")
	for _, want := range []string{`"export-size": 67108864`, `"can_flush": true`, `"can_fua": true`, `"can_trim": true`, `"can_zero": true`, `"can_multi_conn": true`, `"block_size_preferred": 4096`} {
		if !strings.Contains(out, want) {
			t.Fatalf("nbdinfo lacks %s:\n%s", want, out)
		}
	}
}

func TestNbdcopyRoundTrip(t *testing.T) {
	nbdcopy := tool(t, "nbdcopy", "libnbd-bin")
	addr, vols := startServer(t)
	dir := t.TempDir()
	in, back := filepath.Join(dir, "in.img"), filepath.Join(dir, "back.img")
	data := make([]byte, 256<<20)
	rand.Read(data[:200<<20]) // the tail stays zero: nbdcopy may skip or punch it
	if err := os.WriteFile(in, data, 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, nbdcopy, "--flush", in, "nbd://"+addr+"/vol1")
	// The volume itself holds the bytes, not just the client's view.
	got := make([]byte, 1<<20)
	vols["vol1"].ReadAt(got, 100<<20)
	if !bytes.Equal(got, data[100<<20:101<<20]) {
		t.Fatal("volume content differs after nbdcopy")
	}
	run(t, nbdcopy, "nbd://"+addr+"/vol1", back)
	b, err := os.ReadFile(back)
	if err != nil || !bytes.Equal(b, data) {
		t.Fatalf("read back differs (%d bytes, %v)", len(b), err)
	}
}

func TestQemuPatternsAndConvert(t *testing.T) {
	qemuIO := tool(t, "qemu-io", "qemu-utils")
	qemuImg := tool(t, "qemu-img", "qemu-utils")
	addr, _ := startServer(t)
	url := "nbd://" + addr + "/vol2"
	out := run(t, qemuIO, "-f", "raw", url,
		"-c", "write -P 0xab 0 1M",
		"-c", "write -f -P 0x5c 1M 64k", // FUA
		"-c", "write -z 2M 1M", // write-zeroes
		"-c", "aio_write -P 0x11 4M 512k", "-c", "aio_write -P 0x22 5M 512k", "-c", "aio_flush",
		"-c", "discard 6M 1M",
		"-c", "flush",
		"-c", "read -P 0xab 0 1M",
		"-c", "read -P 0x5c 1M 64k",
		"-c", "read -P 0 2M 1M",
		"-c", "read -P 0x11 4M 512k",
		"-c", "read -P 0x22 5M 512k",
		"-c", "read -P 0 6M 1M")
	if strings.Contains(out, "Pattern verification failed") || strings.Contains(out, "error") || strings.Contains(out, "invalid option") || strings.Count(out, "read ") != 6 {
		t.Fatalf("qemu-io:\n%s", out)
	}
	img := filepath.Join(t.TempDir(), "small.img")
	data := make([]byte, 8<<20)
	rand.Read(data)
	os.WriteFile(img, data, 0o600)
	run(t, qemuImg, "convert", "-n", "-f", "raw", "-O", "raw", img, url)
	out = run(t, qemuImg, "compare", "-f", "raw", "-F", "raw", img, url)
	if !strings.Contains(out, "Images are identical") {
		t.Fatalf("qemu-img compare:\n%s", out)
	}
}

// client is a minimal raw-protocol client for the bad-input cases.
type client struct {
	t *testing.T
	c net.Conn
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	var hello [18]byte
	if _, err := io.ReadFull(c, hello[:]); err != nil {
		t.Fatal(err)
	}
	if binary.BigEndian.Uint64(hello[:]) != magicNBD || binary.BigEndian.Uint64(hello[8:]) != magicOpt || binary.BigEndian.Uint16(hello[16:])&flagFixedNewstyle == 0 {
		t.Fatalf("server hello %x", hello)
	}
	c.Write(binary.BigEndian.AppendUint32(nil, flagFixedNewstyle|flagNoZeroes))
	return &client{t, c}
}

func (cl *client) option(opt uint32, data []byte) {
	b := binary.BigEndian.AppendUint64(nil, magicOpt)
	b = binary.BigEndian.AppendUint32(b, opt)
	b = binary.BigEndian.AppendUint32(b, uint32(len(data)))
	cl.c.Write(append(b, data...))
}

// reply reads one option reply: type and data.
func (cl *client) reply(opt uint32) (uint32, []byte) {
	cl.t.Helper()
	var h [20]byte
	if _, err := io.ReadFull(cl.c, h[:]); err != nil {
		cl.t.Fatal(err)
	}
	if binary.BigEndian.Uint64(h[:]) != magicOptReply || binary.BigEndian.Uint32(h[8:]) != opt {
		cl.t.Fatalf("option reply header %x", h)
	}
	data := make([]byte, binary.BigEndian.Uint32(h[16:]))
	io.ReadFull(cl.c, data)
	return binary.BigEndian.Uint32(h[12:]), data
}

func goRequest(name string) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(name)))
	b = append(b, name...)
	return binary.BigEndian.AppendUint16(b, 0)
}

// goTo negotiates export name and returns its size.
func (cl *client) goTo(name string) uint64 {
	cl.t.Helper()
	cl.option(optGo, goRequest(name))
	var size uint64
	for {
		typ, data := cl.reply(optGo)
		switch typ {
		case repInfo:
			if binary.BigEndian.Uint16(data) == infoExport {
				size = binary.BigEndian.Uint64(data[2:])
			}
		case repAck:
			return size
		default:
			cl.t.Fatalf("NBD_OPT_GO reply %#x %s", typ, data)
		}
	}
}

func (cl *client) request(typ, flags uint16, off uint64, length uint32, payload []byte) (uint32, []byte) {
	cl.t.Helper()
	b := binary.BigEndian.AppendUint32(nil, magicRequest)
	b = binary.BigEndian.AppendUint16(b, flags)
	b = binary.BigEndian.AppendUint16(b, typ)
	b = binary.BigEndian.AppendUint64(b, 0xfeed)
	b = binary.BigEndian.AppendUint64(b, off)
	b = binary.BigEndian.AppendUint32(b, length)
	cl.c.Write(append(b, payload...))
	var h [16]byte
	if _, err := io.ReadFull(cl.c, h[:]); err != nil {
		cl.t.Fatal(err)
	}
	if binary.BigEndian.Uint32(h[:]) != magicSimpleRep || binary.BigEndian.Uint64(h[8:]) != 0xfeed {
		cl.t.Fatalf("reply header %x", h)
	}
	errno := binary.BigEndian.Uint32(h[4:])
	var data []byte
	if typ == cmdRead && errno == 0 {
		data = make([]byte, length)
		io.ReadFull(cl.c, data)
	}
	return errno, data
}

func TestOptionHaggling(t *testing.T) {
	addr, _ := startServer(t)
	cl := dial(t, addr)
	cases := []struct {
		name string
		opt  uint32
		data []byte
		want uint32
	}{
		{"unknown option", 42, []byte("x"), repErrUnsup},
		{"structured replies (not offered)", 8, nil, repErrUnsup},
		{"list with data", optList, []byte("x"), repErrInvalid},
		{"info of a missing export", optInfo, goRequest("nope"), repErrUnknown},
		{"go with a bad length", optGo, append(goRequest("vol1"), 0), repErrInvalid},
		{"go with a name past the end", optGo, binary.BigEndian.AppendUint32(nil, 1000), repErrInvalid},
	}
	for _, tc := range cases {
		cl.option(tc.opt, tc.data)
		if typ, msg := cl.reply(tc.opt); typ != tc.want {
			t.Fatalf("%s: reply %#x (%s), want %#x", tc.name, typ, msg, tc.want)
		}
	}
	// After all that the session still works.
	cl.option(optList, nil)
	var names []string
	for {
		typ, data := cl.reply(optList)
		if typ == repAck {
			break
		}
		names = append(names, string(data[4:]))
	}
	if strings.Join(names, ",") != "vol1,vol2,vol3" {
		t.Fatalf("list: %v", names)
	}
	if size := cl.goTo("vol2"); size != 64<<20 {
		t.Fatalf("size %d", size)
	}
}

func TestTransmissionErrors(t *testing.T) {
	addr, _ := startServer(t)
	cl := dial(t, addr)
	size := cl.goTo("vol2")
	cases := []struct {
		name      string
		typ       uint16
		off       uint64
		length    uint32
		payload   []byte
		wantErrno uint32
	}{
		{"read past the end", cmdRead, size - 4096, 8192, nil, errInval},
		{"read with offset overflow", cmdRead, ^uint64(0) - 10, 4096, nil, errInval},
		{"read larger than the payload limit", cmdRead, 0, MaxPayload + 1, nil, errInval},
		{"write past the end", cmdWrite, size - 1, 2, []byte("ab"), errNoSpc},
		{"trim past the end", cmdTrim, size, 1, nil, errInval},
		{"write-zeroes past the end", cmdWriteZeroes, size, 4096, nil, errNoSpc},
		{"unknown command", 99, 0, 0, nil, errInval},
		{"last byte write", cmdWrite, size - 1, 1, []byte("z"), 0},
		{"last byte read", cmdRead, size - 1, 1, nil, 0},
	}
	for _, tc := range cases {
		if errno, _ := cl.request(tc.typ, 0, tc.off, tc.length, tc.payload); errno != tc.wantErrno {
			t.Fatalf("%s: errno %d, want %d", tc.name, errno, tc.wantErrno)
		}
	}
	if _, data := cl.request(cmdRead, 0, size-1, 1, nil); string(data) != "z" {
		t.Fatalf("last byte %q: a refused write past the end must change nothing", data)
	}
	// A request with a broken magic ends the connection.
	cl.c.Write(make([]byte, 28))
	if _, err := cl.c.Read(make([]byte, 1)); err == nil {
		t.Fatal("connection still open after a bad request magic")
	}
}

// A checksummed export: data written over NBD verifies, and a flipped byte
// in the backing file is an I/O error for that block, not wrong data.
func TestCheckedExportReportsRotAsEIO(t *testing.T) {
	qemuIO := tool(t, "qemu-io", "qemu-utils")
	addr, _ := startServer(t)
	url := "nbd://" + addr + "/vol3"
	out := run(t, qemuIO, "-f", "raw", url, "-c", "write -P 0x3c 0 4M", "-c", "flush", "-c", "read -P 0x3c 0 4M")
	if strings.Contains(out, "Pattern verification failed") {
		t.Fatalf("qemu-io:\n%s", out)
	}
	f, err := os.OpenFile(filepath.Join(poolDir, "vol3.vol"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte{0x3d}, 1<<20+100) // one byte of block 256
	f.Close()
	bad, _ := exec.Command(qemuIO, "-f", "raw", url, "-c", "read -P 0x3c 1M 4k").CombinedOutput()
	if !strings.Contains(string(bad), "Input/output error") {
		t.Fatalf("rotten block read:\n%s", bad)
	}
	good, _ := exec.Command(qemuIO, "-f", "raw", url, "-c", "read -P 0x3c 2M 1M").CombinedOutput()
	if strings.Contains(string(good), "error") || strings.Contains(string(good), "failed") || !strings.Contains(string(good), "read 1048576/1048576") {
		t.Fatalf("healthy blocks:\n%s", good)
	}
}

// A server closed before Serve runs (a node stopping as it starts) does
// not accept on the listener it is then given: Serve closes it and returns.
func TestServeAfterCloseReturns(t *testing.T) {
	s := NewServer(nil, Options{}, slog.New(slog.DiscardHandler))
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		ln.Close()
		t.Fatal("Serve after Close kept accepting")
	}
	if _, err := ln.Accept(); err == nil {
		t.Fatal("the listener is still open")
	}
}
