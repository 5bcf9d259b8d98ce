package conformance

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"
)

// Multi-node clusters: separate strata processes, an etcd from Debian's
// etcd-server, SIGKILL and SIGSTOP for real.

const clusterSecret = "conformance-cluster-secret"

// startEtcd runs a single-member etcd in dir and returns its etcd:// URL.
func startEtcd(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		msg := "etcd not installed (apt-get install etcd-server)"
		if os.Getenv("STRATA_REQUIRE_TOOLS") == "1" {
			t.Fatal(msg + "; STRATA_REQUIRE_TOOLS=1 requires it")
		}
		t.Skip(msg)
	}
	client, peer := freeAddr(t), freeAddr(t)
	cmd := exec.Command(bin, "--name", "test", "--data-dir", filepath.Join(t.TempDir(), "etcd"),
		"--listen-client-urls", "http://"+client, "--advertise-client-urls", "http://"+client,
		"--listen-peer-urls", "http://"+peer, "--initial-advertise-peer-urls", "http://"+peer,
		"--initial-cluster", "test=http://"+peer)
	var log bytes.Buffer
	var mu sync.Mutex
	cmd.Stdout, cmd.Stderr = lockedWriter{&log, &mu}, lockedWriter{&log, &mu}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + client + "/health"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return "etcd://" + client
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	t.Fatalf("etcd did not start:\n%s", log.String())
	return ""
}

type clusterNode struct {
	name, zone, dir string
	s3, admin, rpc  string
	proc            *process
	mc              *minio.Client
}

type testCluster struct {
	meta, ec string
	size     int
	nodes    []*clusterNode
}

// startCluster starts n nodes over zones zones and waits until every one
// serves S3.
func startCluster(t *testing.T, n, zones int, ec string) *testCluster {
	t.Helper()
	c := &testCluster{meta: startEtcd(t), ec: ec, size: n}
	for i := 0; i < n; i++ {
		nd := &clusterNode{name: fmt.Sprintf("node%d", i+1), zone: fmt.Sprintf("zone%d", i%zones+1), dir: t.TempDir(),
			s3: freeAddr(t), admin: freeAddr(t), rpc: freeAddr(t)}
		mc, err := minio.New(nd.s3, &minio.Options{Creds: miniocreds.NewStaticV4(testUser, testSecret, ""), Region: "us-east-1", MaxRetries: 1})
		if err != nil {
			t.Fatal(err)
		}
		nd.mc = mc
		c.nodes = append(c.nodes, nd)
		c.launch(t, nd)
	}
	for _, nd := range c.nodes {
		c.waitUp(t, nd)
	}
	return c
}

func (c *testCluster) launch(t *testing.T, nd *clusterNode) {
	t.Helper()
	cmd := exec.Command(strataBinary(t), "server", "--data-dir", nd.dir, "--node-name", nd.name, "--zone", nd.zone,
		"--meta", c.meta, "--ec", c.ec, "--pools", "1", "--cluster-size", fmt.Sprint(c.size), "--chunk-volume-size", "64GiB",
		"--s3-addr", nd.s3, "--admin-addr", nd.admin, "--rpc-addr", nd.rpc, "--heartbeat-ttl", "3s", "--log-level", "warn")
	cmd.Env = append(os.Environ(), "STRATA_ROOT_USER="+testUser, "STRATA_ROOT_PASSWORD="+testSecret, "STRATA_CLUSTER_SECRET="+clusterSecret)
	p := &process{cmd: cmd, stderr: &strings.Builder{}, mu: &sync.Mutex{}}
	cmd.Stderr, cmd.Stdout = lockedWriter{p.stderr, p.mu}, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGCONT) // a frozen node must be able to die
		p.kill()
	})
	nd.proc = p
}

func (c *testCluster) waitUp(t *testing.T, nd *clusterNode) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + nd.admin + "/healthz"); err == nil {
			resp.Body.Close()
			return
		}
		if nd.proc.cmd.ProcessState != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s did not start: %s", nd.name, nd.proc.log())
}

func (c *testCluster) kill(nd *clusterNode) {
	nd.proc.cmd.Process.Signal(syscall.SIGKILL)
	nd.proc.cmd.Wait()
}

// admin calls a node's admin API through the CLI-free path: the CLI.
func (c *testCluster) cli(t *testing.T, nd *clusterNode, args ...string) string {
	t.Helper()
	return mustCLI(t, append(args, "--server", "http://"+nd.admin)...)
}

// objectSize spreads 1 KiB to 20 MiB: mostly small, some medium, a few
// large, the largest exactly 20 MiB.
func objectSize(i int) int {
	switch {
	case i%200 == 0:
		return 1<<20 + (i/200)*(19<<20)/9 // 10 objects, 1 MiB … 20 MiB
	case i%10 == 0:
		return 64<<10 + (i*7919)%(960<<10)
	default:
		return 1<<10 + (i*104729)%(63<<10)
	}
}

func objectData(i int) []byte {
	b := make([]byte, objectSize(i))
	r := rand.New(rand.NewPCG(uint64(i), 42))
	for j := 0; j+8 <= len(b); j += 8 {
		v := r.Uint64()
		for k := 0; k < 8; k++ {
			b[j+k] = byte(v >> (8 * k))
		}
	}
	return b
}

// putWithFailover writes one object through gateway first, trying the
// next gateway when one fails (as a client behind a load balancer would).
func putWithFailover(ctx context.Context, c *testCluster, first int, bucket, key string, data []byte) error {
	var err error
	for attempt := 0; attempt < 3*len(c.nodes); attempt++ {
		nd := c.nodes[(first+attempt)%len(c.nodes)]
		_, err = nd.mc.PutObject(ctx, bucket, key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{DisableMultipart: true})
		if err == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return err
}

// Must-show 1 and 2 of the cluster issue: 6 nodes in 3 zones with EC 4+2
// take 2,000 objects through every gateway while one node, then its whole
// zone, is killed; every acknowledged object reads back through every
// surviving gateway and listings are exact; the killed nodes return, the
// writes they missed are repaired from the hints, and verify finds every
// shard where the ring says.
func TestClusterSurvivesNodeThenZoneLoss(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 6, 3, "4+2")
	ctx := context.Background()
	if err := c.nodes[0].mc.MakeBucket(ctx, "load", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	const total = 2000
	sums := make([][32]byte, total)
	var acked atomic.Int64
	var failed []string
	var failMu sync.Mutex
	killed := map[int]bool{}
	var killMu sync.Mutex
	next := atomic.Int64{}
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= total {
					return
				}
				switch i {
				case total / 3: // one node of zone3, mid-load
					killMu.Lock()
					c.kill(c.nodes[2])
					killed[2] = true
					killMu.Unlock()
				case 2 * total / 3: // then the rest of zone3
					killMu.Lock()
					c.kill(c.nodes[5])
					killed[5] = true
					killMu.Unlock()
				}
				data := objectData(i)
				key := fmt.Sprintf("obj-%04d", i)
				if err := putWithFailover(ctx, c, i%6, "load", key, data); err != nil {
					failMu.Lock()
					failed = append(failed, fmt.Sprintf("%s: %v", key, err))
					failMu.Unlock()
					continue
				}
				sums[i] = sha256.Sum256(data)
				acked.Add(1)
			}
		}()
	}
	wg.Wait()
	t.Logf("wrote %d objects in %v with node3 killed at 1/3 and node6 (zone3 gone) at 2/3", acked.Load(), time.Since(start).Round(time.Millisecond))
	if len(failed) > 0 {
		t.Fatalf("%d writes never acknowledged with a zone down (EC 4+2 tolerates it): %v", len(failed), failed[:min(5, len(failed))])
	}
	var survivors []*clusterNode
	for i, nd := range c.nodes {
		if !killed[i] {
			survivors = append(survivors, nd)
		}
	}
	checkAll := func(gateways []*clusterNode) {
		t.Helper()
		for _, nd := range gateways {
			keys := listKeys(t, nd.mc, "load")
			if len(keys) != total {
				t.Fatalf("%s lists %d objects, want %d", nd.name, len(keys), total)
			}
			for i, k := range keys {
				if k != fmt.Sprintf("obj-%04d", i) {
					t.Fatalf("%s lists %q at %d", nd.name, k, i)
				}
			}
		}
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		work := make(chan [2]int)
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for job := range work {
					nd, i := gateways[job[0]], job[1]
					if err := readSum(ctx, nd.mc, "load", fmt.Sprintf("obj-%04d", i), sums[i]); err != nil {
						select {
						case errs <- fmt.Errorf("via %s: %w", nd.name, err):
						default:
						}
					}
				}
			}()
		}
		for g := range gateways {
			for i := 0; i < total; i++ {
				work <- [2]int{g, i}
			}
		}
		close(work)
		wg.Wait()
		select {
		case err := <-errs:
			t.Fatal(err)
		default:
		}
	}
	start = time.Now()
	checkAll(survivors)
	t.Logf("all %d objects byte-identical and listed exactly through each of %d surviving gateways (%v)", total, len(survivors), time.Since(start).Round(time.Millisecond))

	// The zone returns; what it missed comes back from the hints.
	for _, i := range []int{2, 5} {
		c.launch(t, c.nodes[i])
	}
	for _, i := range []int{2, 5} {
		c.waitUp(t, c.nodes[i])
	}
	start = time.Now()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		pending := 0
		for _, nd := range c.nodes {
			out := c.cli(t, nd, "cluster", "hints")
			var n int
			fmt.Sscanf(out, "pending %d", &n)
			pending += n
		}
		if pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d hints still pending after 5 minutes", pending)
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("hinted repairs replayed in %v", time.Since(start).Round(time.Millisecond))
	out, err := strataCLI(t, "cluster", "verify", "--server", "http://"+c.nodes[0].admin, "-o", "json")
	if err != nil {
		t.Fatalf("verify after the hints: %v\n%s", err, out)
	}
	var rep struct{ Objects, Missing, Extra, Unreadable int }
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if rep.Objects != total || rep.Missing != 0 || rep.Extra != 0 || rep.Unreadable != 0 {
		t.Fatalf("verify: %s", out)
	}
	t.Logf("verify after catch-up: %s", strings.TrimSpace(out))
	// And the returned nodes serve everything as gateways too.
	checkAll([]*clusterNode{c.nodes[2], c.nodes[5]})
}

func listKeys(t *testing.T, mc *minio.Client, bucket string) []string {
	t.Helper()
	var keys []string
	for o := range mc.ListObjects(context.Background(), bucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		keys = append(keys, o.Key)
	}
	if !sort.StringsAreSorted(keys) {
		t.Fatal("listing out of order")
	}
	return keys
}

func readSum(ctx context.Context, mc *minio.Client, bucket, key string, want [32]byte) error {
	obj, err := mc.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	defer obj.Close()
	h := sha256.New()
	if _, err := io.Copy(h, obj); err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	if !bytes.Equal(h.Sum(nil), want[:]) {
		return fmt.Errorf("%s: content differs", key)
	}
	return nil
}
