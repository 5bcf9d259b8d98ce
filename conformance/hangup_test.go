package conformance

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/strata-storage/strata/blockpool"
	"github.com/strata-storage/strata/node"
	"github.com/strata-storage/strata/users"
)

// Issue 18: a client that hangs up in the middle of a GET on a cluster
// calls off the shard reads the gateway has out on other nodes: the
// serving nodes count them (strata_rpc_reads_cancelled_total) instead of
// reading for nobody. Three nodes run in this process so their chunk
// volumes can be made to stall (the devices' volume seam).
func TestClientHangUpCancelsRemoteShardReads(t *testing.T) {
	t.Parallel()
	meta := startEtcd(t)
	vols := map[string]*blockpool.FaultVolume{}
	var volsMu sync.Mutex
	type started struct {
		i   int
		n   *node.Node
		err error
	}
	nodes := make([]*node.Node, 3)
	results := make(chan started, 3)
	release := make(chan struct{})
	var once sync.Once
	unstall := func() { once.Do(func() { close(release) }) }
	// Registered before any node starts, so a failed start still stops
	// the ones that came up (and a stalled read never holds a Close).
	t.Cleanup(func() {
		unstall()
		for _, n := range nodes {
			if n != nil {
				n.Close(context.Background())
			}
		}
	})
	for i := range nodes {
		cfg := node.DefaultConfig()
		cfg.DataDir, cfg.NodeName, cfg.Zone = t.TempDir(), fmt.Sprintf("node%d", i+1), fmt.Sprintf("zone%d", i+1)
		cfg.S3Addr, cfg.AdminAddr, cfg.RPCAddr, cfg.NBDAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "off"
		cfg.Meta, cfg.ClusterSecret, cfg.ClusterSize, cfg.EC, cfg.Pools = meta, clusterSecret, 3, "2+1", 1
		cfg.ChunkVolume, cfg.HeartbeatTTL, cfg.ScrubRate = 1<<30, 3*time.Second, -1
		cfg.Root = users.Credentials{AccessKey: testUser, SecretKey: testSecret}
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		name := cfg.NodeName
		cfg.WrapVolume = func(_ string, v blockpool.Volume) blockpool.Volume {
			fv := blockpool.NewFaultVolume(v)
			volsMu.Lock()
			vols[name] = fv
			volsMu.Unlock()
			return fv
		}
		go func() {
			n, err := node.Start(cfg)
			results <- started{i, n, err}
		}()
	}
	var startErr error
	for range nodes {
		r := <-results // every start ends (the ring needs all three), so nodes is complete here
		nodes[r.i] = r.n
		if r.err != nil && startErr == nil {
			startErr = r.err
		}
	}
	if startErr != nil {
		t.Fatal(startErr)
	}
	mc, err := minio.New(nodes[0].S3Addr(), &minio.Options{Creds: miniocreds.NewStaticV4(testUser, testSecret, ""), Region: "us-east-1", MaxRetries: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := mc.MakeBucket(ctx, "hangup", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	body := bytes.Repeat([]byte("strata"), 1<<20) // 6 MiB: six blocks, two shards of each on other nodes
	if _, err := mc.PutObject(ctx, "hangup", "big", bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	before := cancelledReads(t, nodes[1]) + cancelledReads(t, nodes[2])

	// The other nodes' disks stop answering: node1 holds one shard of
	// each block and needs two, so every block waits on a remote read.
	volsMu.Lock()
	vols["node2"].StallReads(release)
	vols["node3"].StallReads(release)
	volsMu.Unlock()
	gctx, hangUp := context.WithCancel(ctx)
	obj, err := mc.GetObject(gctx, "hangup", "big", minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	read := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, obj)
		read <- err
	}()
	time.Sleep(300 * time.Millisecond)
	select {
	case err := <-read:
		t.Fatalf("the GET ended while every remote shard read was stalled: %v", err)
	default:
	}
	hangUp() // the client goes away mid-GET
	if err := <-read; err == nil {
		t.Fatal("a GET the client hung up on completed")
	}
	obj.Close()
	time.Sleep(500 * time.Millisecond) // the serving nodes see their callers go
	unstall()
	var got float64
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if got = cancelledReads(t, nodes[1]) + cancelledReads(t, nodes[2]) - before; got >= 1 {
			break
		}
	}
	if got < 1 {
		t.Fatal("no serving node counted a shard read called off by the client's hang-up")
	}
	t.Logf("the serving nodes called off %v shard reads", got)
	volsMu.Lock()
	vols["node2"].StallReads(nil)
	vols["node3"].StallReads(nil)
	volsMu.Unlock()
	// The nodes still serve the object in full.
	obj, err = mc.GetObject(ctx, "hangup", "big", minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	if b, err := io.ReadAll(obj); err != nil || !bytes.Equal(b, body) {
		t.Fatalf("after the hang-up: %d bytes, %v", len(b), err)
	}
}

// cancelledReads is a node's strata_rpc_reads_cancelled_total.
func cancelledReads(t *testing.T, n *node.Node) float64 {
	t.Helper()
	mfs, err := n.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "strata_rpc_reads_cancelled_total" {
			var sum float64
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
			return sum
		}
	}
	return 0
}
