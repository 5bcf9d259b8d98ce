package volrpc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/strata-storage/strata/blockpool"
	"github.com/strata-storage/strata/blockpool/replicate"
	"github.com/strata-storage/strata/cluster"
)

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

type replicas map[string]*replicate.Replica

func (r replicas) VolumeReplica(name string) *replicate.Replica    { return r[name] }
func (r replicas) CreateLocal(string, int64, string, string) error { return errors.New("not here") }
func (r replicas) CreateWitnessLocal(string, int64) error          { return errors.New("not here") }
func (r replicas) DeleteLocal(string) error                        { return errors.New("not here") }

// volNode is a node serving one replica of volume "v" over the RPC on a
// 127.0.0.1 port that it keeps across restarts.
type volNode struct {
	t    *testing.T
	name string
	dir  string
	addr string
	rep  *replicate.Replica
	srv  *httptest.Server
}

func (n *volNode) start() {
	rep, err := replicate.OpenReplica(n.dir, n.name, 500*time.Millisecond)
	if err != nil {
		n.t.Fatal(err)
	}
	n.rep = rep
	s := cluster.NewServer(n.name, "s3cret", nil, nil, quietLog)
	Register(s, n.name, replicas{"v": rep})
	srv := httptest.NewUnstartedServer(s)
	addr := n.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	for i := 0; ; i++ {
		if ln, err = net.Listen("tcp", addr); err == nil || i == 50 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		n.t.Fatal(err)
	}
	srv.Listener = ln
	srv.Start()
	n.srv, n.addr = srv, ln.Addr().String()
}

func (n *volNode) stop() {
	n.srv.CloseClientConnections()
	n.srv.Close()
	n.rep.Close()
}

func TestVolumeReplicationOverRPC(t *testing.T) {
	const size = 32 << 20
	base := t.TempDir()
	var nodes []*volNode
	for i := range 3 {
		n := &volNode{t: t, name: fmt.Sprintf("n%d", i), dir: filepath.Join(base, fmt.Sprint(i))}
		rep, err := replicate.CreateReplica(n.dir, n.name, size, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		rep.Close()
		n.start()
		nodes = append(nodes, n)
	}
	defer func() {
		for _, n := range nodes {
			n.stop()
		}
	}()
	tr := cluster.NewTransport("n0", "s3cret", nil, cluster.DefaultTimeouts())
	defer tr.Close()
	links := []replicate.Link{replicate.LocalLink{R: nodes[0].rep}}
	var peers []*cluster.Peer
	for _, n := range nodes[1:] {
		p := tr.NewPeer(n.name, n.addr)
		peers = append(peers, p)
		links = append(links, Link(p, "v"))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, p := range peers {
		go p.RunProbes(ctx)
	}
	p, err := replicate.Open(ctx, replicate.Config{Name: "v", Self: "n0", Links: links, CallTimeout: 2 * time.Second, RetryInterval: 100 * time.Millisecond, Log: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	rng := rand.New(rand.NewPCG(1, 1))
	img := make([]byte, size)
	for i := range img {
		img[i] = byte(rng.Uint32())
	}
	if _, err := p.WriteAt(img, 0); err != nil {
		t.Fatal(err)
	}
	// n2 dies; 2 MiB change while it is away; it comes back on its port.
	nodes[2].stop()
	for off := 8 << 20; off < 10<<20; off += 256 << 10 {
		chunk := bytes.Repeat([]byte{byte(off >> 16)}, 256<<10)
		if _, err := p.WriteAt(chunk, int64(off)); err != nil {
			t.Fatalf("write with n2 down: %v", err)
		}
		copy(img[off:], chunk)
	}
	nodes[2].start()
	deadline := time.Now().Add(15 * time.Second)
	for p.Members()[2].State != replicate.UpToDate {
		if time.Now().After(deadline) {
			t.Fatalf("n2 not resynced: %+v", p.Members())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := p.Stats().ResyncedBytes; got != 2<<20 {
		t.Fatalf("resynced %d bytes, 2 MiB changed", got)
	}
	for i, n := range nodes {
		b := make([]byte, size)
		if _, err := n.rep.Volume().ReadAt(b, 0); err != nil || !bytes.Equal(b, img) {
			t.Fatalf("replica %d differs (%v)", i, err)
		}
	}
	// Rot on a remote replica comes back over the wire as a checksum
	// error, and the primary repairs it.
	f, _ := os.OpenFile(filepath.Join(nodes[1].dir, "data.vol"), os.O_RDWR, 0)
	f.WriteAt([]byte("rot"), 12345)
	f.Close()
	if err := links[1].Read(ctx, p.Epoch(), 8192, make([]byte, 8192)); !errors.Is(err, blockpool.ErrCorrupt) {
		t.Fatalf("remote read of a rotten block: %v", err)
	}
	// A stale epoch is refused as fencing, not as a generic failure.
	if err := links[1].Write(ctx, p.Epoch()-1, 0, make([]byte, 4096), nil); !errors.Is(err, replicate.ErrFenced) {
		t.Fatalf("stale epoch: %v", err)
	}
}
