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
func startEtcd(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		msg := "etcd not installed (apt-get install etcd-server)"
		if os.Getenv("STRATA_REQUIRE_TOOLS") == "1" {
			t.Fatal(msg + "; STRATA_REQUIRE_TOOLS=1 requires it")
		}
		t.Skip(msg)
	}
	// A port freeAddr found can be taken by another test before etcd
	// binds it: then etcd exits at once, and it is started again on others.
	var log bytes.Buffer
	var mu sync.Mutex
	for attempt := 0; ; attempt++ {
		client, peer := freeAddr(t), freeAddr(t)
		cmd := exec.Command(bin, "--name", "test", "--data-dir", filepath.Join(t.TempDir(), "etcd"),
			"--listen-client-urls", "http://"+client, "--advertise-client-urls", "http://"+client,
			"--listen-peer-urls", "http://"+peer, "--initial-advertise-peer-urls", "http://"+peer,
			"--initial-cluster", "test=http://"+peer)
		mu.Lock()
		log.Reset()
		mu.Unlock()
		cmd.Stdout, cmd.Stderr = lockedWriter{&log, &mu}, lockedWriter{&log, &mu}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		t.Cleanup(func() { cmd.Process.Kill(); <-exited })
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			if resp, err := http.Get("http://" + client + "/health"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return "etcd://" + client
				}
			}
			select {
			case <-exited:
				deadline = time.Time{}
			case <-time.After(100 * time.Millisecond):
			}
		}
		mu.Lock()
		inUse := strings.Contains(log.String(), "address already in use")
		mu.Unlock()
		if !inUse || attempt == 4 {
			break
		}
	}
	mu.Lock()
	defer mu.Unlock()
	t.Fatalf("etcd did not start:\n%s", log.String())
	return ""
}

type clusterNode struct {
	name, zone, dir string
	s3, admin, rpc  string
	nbd             string
	proc            *process
	mc              *minio.Client
	extra           []string // more server flags of this node alone
}

type testCluster struct {
	meta, ec string
	size     int
	pools    int      // devices per node (default 1)
	extra    []string // more server flags
	nodes    []*clusterNode
	// TLS on every listener: the PEM files, and a client that trusts them.
	cert, key string
	https     *http.Client
	// prepare, if set, sees each node before its first start.
	prepare func(nd *clusterNode)
}

// startCluster starts n nodes over zones zones and waits until every one
// serves S3.
func startCluster(t testing.TB, n, zones int, ec string) *testCluster {
	return startClusterWith(t, &testCluster{size: n, ec: ec}, zones)
}

func startClusterWith(t testing.TB, c *testCluster, zones int) *testCluster {
	t.Helper()
	c.meta = startEtcd(t)
	for i := 0; i < c.size; i++ {
		nd := &clusterNode{name: fmt.Sprintf("node%d", i+1), zone: fmt.Sprintf("zone%d", i%zones+1), dir: t.TempDir(),
			s3: freeAddr(t), admin: freeAddr(t), rpc: freeAddr(t), nbd: freeAddr(t)}
		opts := &minio.Options{Creds: miniocreds.NewStaticV4(testUser, testSecret, ""), Region: "us-east-1", MaxRetries: 1}
		if c.https != nil {
			opts.Secure, opts.Transport = true, c.https.Transport
		}
		mc, err := minio.New(nd.s3, opts)
		if err != nil {
			t.Fatal(err)
		}
		nd.mc = mc
		if c.prepare != nil {
			c.prepare(nd)
		}
		c.nodes = append(c.nodes, nd)
		c.launch(t, nd)
	}
	for _, nd := range c.nodes {
		c.waitUp(t, nd)
	}
	return c
}

func (c *testCluster) launch(t testing.TB, nd *clusterNode) {
	t.Helper()
	cmd := exec.Command(strataBinary(t), "server", "--data-dir", nd.dir, "--node-name", nd.name, "--zone", nd.zone,
		"--meta", c.meta, "--ec", c.ec, "--pools", fmt.Sprint(max(c.pools, 1)), "--cluster-size", fmt.Sprint(c.size), "--chunk-volume-size", "64GiB",
		"--s3-addr", nd.s3, "--admin-addr", nd.admin, "--rpc-addr", nd.rpc, "--nbd-addr", nd.nbd, "--heartbeat-ttl", "3s", "--log-level", "warn")
	cmd.Args = append(append(cmd.Args, c.extra...), nd.extra...)
	if c.cert != "" {
		cmd.Args = append(cmd.Args, "--tls-cert", c.cert, "--tls-key", c.key, "--tls-ca", c.cert)
	}
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

func (c *testCluster) waitUp(t testing.TB, nd *clusterNode) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	client, scheme := http.DefaultClient, "http://"
	if c.https != nil {
		client, scheme = c.https, "https://"
	}
	for time.Now().Before(deadline) {
		if resp, err := client.Get(scheme + nd.admin + "/healthz"); err == nil {
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
	if c.cert != "" {
		return mustCLI(t, append(args, "--server", "https://"+nd.admin, "--ca-file", c.cert)...)
	}
	return mustCLI(t, append(args, "--server", "http://"+nd.admin)...)
}

// diagnose is what a failing cluster test prints: verify's findings and
// every node's log.
func (c *testCluster) diagnose(t *testing.T) string {
	out, _ := strataCLI(t, "cluster", "verify", "--server", "http://"+c.nodes[0].admin)
	for _, nd := range c.nodes {
		out += "\n--- " + nd.name + " log:\n" + nd.proc.log()
	}
	return out
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
		var want []string
		for i := 0; i < total; i++ {
			if sums[i] != ([32]byte{}) {
				want = append(want, fmt.Sprintf("obj-%04d", i))
			}
		}
		for _, nd := range gateways {
			keys := listKeys(t, nd.mc, "load")
			if strings.Join(keys, ",") != strings.Join(want, ",") {
				t.Fatalf("%s lists %d objects, want exactly the %d acknowledged and not deleted", nd.name, len(keys), len(want))
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
					if sums[i] == ([32]byte{}) {
						if _, err := nd.mc.StatObject(ctx, "load", fmt.Sprintf("obj-%04d", i), minio.StatObjectOptions{}); minio.ToErrorResponse(err).Code != "NoSuchKey" {
							select {
							case errs <- fmt.Errorf("via %s: deleted obj-%04d: %v", nd.name, i, err):
							default:
							}
						}
						continue
					}
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
	// While zone3 is away, some objects are deleted and some rewritten:
	// the returning nodes hold stale records of those.
	for i := 1; i < total; i += 40 {
		key := fmt.Sprintf("obj-%04d", i)
		if i%80 == 1 {
			if err := survivors[i%len(survivors)].mc.RemoveObject(ctx, "load", key, minio.RemoveObjectOptions{}); err != nil {
				t.Fatal(err)
			}
			sums[i] = [32]byte{}
			continue
		}
		data := objectData(i + total)
		if err := putWithFailover(ctx, c, i%6, "load", key, data); err != nil {
			t.Fatal(err)
		}
		sums[i] = sha256.Sum256(data)
	}
	start = time.Now()
	checkAll(survivors)
	t.Logf("all %d objects (%d since deleted, %d rewritten while zone3 was down) byte-identical and listed exactly through each of %d surviving gateways (%v)", total, total/80, total/80, len(survivors), time.Since(start).Round(time.Millisecond))

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
	if rep.Objects != total-total/80 || rep.Missing != 0 || rep.Extra != 0 || rep.Unreadable != 0 {
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

// Must-show 3: with one node frozen (SIGSTOP), GETs through the other
// gateways keep completing; the latency figures go to the log (they are
// not asserted: this machine is shared), and no request may hang.
func TestClusterFrozenNodeBoundsGetLatency(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 6, 3, "4+2")
	ctx := context.Background()
	if err := c.nodes[0].mc.MakeBucket(ctx, "frozen", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	const objects = 120
	sums := make([][32]byte, objects)
	for i := 0; i < objects; i++ {
		data := objectData(i*10 + 1) // 1 KiB … 64 KiB, and every tenth larger
		if i%10 == 0 {
			data = objectData(i * 10)
		}
		if err := putWithFailover(ctx, c, i%6, "frozen", fmt.Sprintf("k%03d", i), data); err != nil {
			t.Fatal(err)
		}
		sums[i] = sha256.Sum256(data)
	}
	gateways := []*clusterNode{c.nodes[0], c.nodes[1], c.nodes[2], c.nodes[4], c.nodes[5]}
	measure := func(label string, gets int) []time.Duration {
		t.Helper()
		lat := make([]time.Duration, gets)
		var next atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, 1)
		for w := 0; w < 6; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					j := int(next.Add(1) - 1)
					if j >= gets {
						return
					}
					i := j % objects
					rctx, cancel := context.WithTimeout(ctx, 20*time.Second) // a hang, not a slow read
					start := time.Now()
					err := readSum(rctx, gateways[j%len(gateways)].mc, "frozen", fmt.Sprintf("k%03d", i), sums[i])
					lat[j] = time.Since(start)
					cancel()
					if err != nil {
						select {
						case errs <- fmt.Errorf("%s GET %d: %w", label, j, err):
						default:
						}
					}
				}
			}()
		}
		wg.Wait()
		select {
		case err := <-errs:
			t.Fatal(err)
		default:
		}
		sorted := append([]time.Duration(nil), lat...)
		sort.Slice(sorted, func(a, b int) bool { return sorted[a] < sorted[b] })
		t.Logf("%s: %d GETs p50 %v p99 %v max %v", label, gets, sorted[gets/2].Round(time.Millisecond),
			sorted[gets*99/100].Round(time.Millisecond), sorted[gets-1].Round(time.Millisecond))
		return sorted
	}
	measure("all nodes up", 600)
	gw := &server{admin: c.nodes[0].admin}
	baseline := metric(t, gw, "go_goroutines")

	frozen := c.nodes[3]
	if err := frozen.proc.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	measure("node4 frozen (SIGSTOP), from the moment it froze", 600)
	// Writes go on too, without the frozen node.
	for i := 0; i < 10; i++ {
		rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		data := objectData(i + 5000)
		start := time.Now()
		if err := putWithFailover(rctx, c, 0, "frozen", fmt.Sprintf("w%02d", i), data); err != nil {
			t.Fatalf("PUT with a frozen node: %v", err)
		}
		if i == 0 {
			t.Logf("first PUT after the freeze: %v", time.Since(start).Round(time.Millisecond))
		}
		cancel()
	}
	// Its heartbeat lease (3 s here) runs out: node list says down.
	deadline := time.Now().Add(15 * time.Second)
	for out := ""; !strings.Contains(out, "node4  down"); out = c.cli(t, c.nodes[0], "node", "list") {
		if time.Now().After(deadline) {
			t.Fatalf("a frozen node is not marked down:\n%s", out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	frozen.proc.cmd.Process.Signal(syscall.SIGCONT)
	deadline = time.Now().Add(30 * time.Second)
	for !strings.Contains(c.cli(t, c.nodes[0], "node", "list"), "node4  up") {
		if time.Now().After(deadline) {
			t.Fatal("node4 not up again after SIGCONT")
		}
		time.Sleep(200 * time.Millisecond)
	}
	measure("node4 thawed", 300)
	// Reads abandoned on the frozen node ended with their timeouts: the
	// gateway's goroutines are back near where they were.
	deadline = time.Now().Add(15 * time.Second)
	for {
		now := metric(t, gw, "go_goroutines")
		if now <= baseline+50 {
			t.Logf("gateway goroutines: %v before the freeze, %v after", baseline, now)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway goroutines grew from %v to %v and stayed", baseline, now)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Must-show 4 and 5: a bucket made on one gateway is usable on another at
// once; the ring changes on a running cluster through the admin API and
// reaches every node; RPC without the cluster secret is refused.
func TestClusterBucketsRingAndRPCAuth(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 6, 3, "4+2")
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		name := fmt.Sprintf("instant-%d", i)
		if err := c.nodes[i].mc.MakeBucket(ctx, name, minio.MakeBucketOptions{}); err != nil {
			t.Fatal(err)
		}
		// No pause: the next gateway uses it at once.
		other := c.nodes[i+1].mc
		if ok, err := other.BucketExists(ctx, name); err != nil || !ok {
			t.Fatalf("%s: bucket made on %s not visible on %s: %v", name, c.nodes[i].name, c.nodes[i+1].name, err)
		}
		if _, err := other.PutObject(ctx, name, "k", strings.NewReader("v"), 1, minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
		// In us-east-1 its owner's second create answers 200, as AWS's does;
		// the bucket and its object are untouched.
		if err := c.nodes[i].mc.MakeBucket(ctx, name, minio.MakeBucketOptions{}); err != nil {
			t.Fatalf("second create of %s: %v", name, err)
		}
		if _, err := other.StatObject(ctx, name, "k", minio.StatObjectOptions{}); err != nil {
			t.Fatalf("%s after its second create: %v", name, err)
		}
	}
	// Deleted on one gateway, gone on all.
	c.nodes[2].mc.RemoveObject(ctx, "instant-4", "k", minio.RemoveObjectOptions{})
	if err := c.nodes[2].mc.RemoveBucket(ctx, "instant-4"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, nd := range c.nodes {
		for {
			ok, err := nd.mc.BucketExists(ctx, "instant-4")
			if err == nil && !ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s still has a deleted bucket", nd.name)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// Gateways racing on one key: each PUT is acknowledged or refused
	// (503, retryable), and the key always reads back as one of the
	// acknowledged versions, never lost between two.
	if err := c.nodes[0].mc.MakeBucket(ctx, "race", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	acked := map[[32]byte]bool{}
	var ackMu sync.Mutex
	refused := 0
	for round := 0; round < 15; round++ {
		var wg sync.WaitGroup
		for g := 0; g < 6; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				data := objectData(10000 + round*6 + g)
				_, err := c.nodes[g].mc.PutObject(ctx, "race", "hot", bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{})
				ackMu.Lock()
				defer ackMu.Unlock()
				if err == nil {
					acked[sha256.Sum256(data)] = true
				} else if minio.ToErrorResponse(err).StatusCode == http.StatusServiceUnavailable {
					refused++
				} else {
					t.Errorf("racing PUT: %v", err)
				}
			}()
		}
		wg.Wait()
		for _, nd := range c.nodes {
			obj, err := nd.mc.GetObject(ctx, "race", "hot", minio.GetObjectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			data, err := io.ReadAll(obj)
			if err != nil {
				t.Fatalf("round %d via %s: %v\n%s", round, nd.name, err, c.diagnose(t))
			}
			if !acked[sha256.Sum256(data)] {
				t.Fatalf("round %d via %s: the key holds a version nobody was told was stored", round, nd.name)
			}
		}
	}
	t.Logf("racing writes on one key: %d acknowledged, %d refused with 503", len(acked), refused)

	// RPC without (or with a wrong) cluster secret is refused.
	for _, path := range []string{"health", "dev/0/get", "dev/0/list"} {
		for _, hdr := range []map[string]string{nil, {"X-Strata-Node": "node1", "X-Strata-Date": fmt.Sprint(time.Now().UnixNano()), "X-Strata-Auth": strings.Repeat("0", 64)}} {
			req, _ := http.NewRequest(http.MethodPost, "http://"+c.nodes[1].rpc+"/rpc/v1/"+path, strings.NewReader("\x00\x00\x01"))
			for k, v := range hdr {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("RPC %s without the secret: %d %s", path, resp.StatusCode, body)
			}
		}
	}

	// A ring change through the admin API of one node reaches them all.
	if err := c.nodes[0].mc.MakeBucket(ctx, "moving", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	const n = 60
	sums := make([][32]byte, n)
	for i := 0; i < n; i++ {
		data := objectData(i*10 + 3)
		if err := putWithFailover(ctx, c, i%6, "moving", fmt.Sprintf("m%02d", i), data); err != nil {
			t.Fatal(err)
		}
		sums[i] = sha256.Sum256(data)
	}
	var before struct{ Version uint64 }
	json.Unmarshal([]byte(c.cli(t, c.nodes[3], "ring", "show", "-o", "json")), &before)
	c.cli(t, c.nodes[0], "ring", "add-device", "--node", "node2", "--region", "us-east-1", "--zone", "zone2", "--name", "disk1")
	out := c.cli(t, c.nodes[0], "ring", "rebalance")
	if !strings.Contains(out, "disk1") {
		t.Fatalf("rebalance:\n%s", out)
	}
	deadline = time.Now().Add(10 * time.Second)
	for _, nd := range c.nodes {
		for {
			var info struct {
				Version uint64
				Devices []struct{ Name, Node string }
			}
			json.Unmarshal([]byte(c.cli(t, nd, "ring", "show", "-o", "json")), &info)
			if info.Version > before.Version && len(info.Devices) == 7 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s still on ring version %d", nd.name, info.Version)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if _, err := os.Stat(filepath.Join(c.nodes[1].dir, "pools", "disk1", "chunk.vol")); err != nil {
		t.Fatalf("node2 did not open its new device: %v", err)
	}
	for i := 0; i < n; i++ {
		if err := readSum(ctx, c.nodes[i%6].mc, "moving", fmt.Sprintf("m%02d", i), sums[i]); err != nil {
			out, _ := strataCLI(t, "cluster", "verify", "--server", "http://"+c.nodes[4].admin)
			t.Fatalf("after the ring change: %v\n%s\n%s", err, out, c.diagnose(t))
		}
	}
	// Shards follow the new ring: the rebalance the change started moves
	// them (verify --repair is refused meanwhile), then verify is clean.
	if out, err := strataCLI(t, "cluster", "verify", "--repair", "--server", "http://"+c.nodes[4].admin); err == nil || !strings.Contains(out, "RebalanceInProgress") {
		if !strings.Contains(c.cli(t, c.nodes[0], "rebalance", "status"), " done ") {
			t.Fatalf("verify --repair during a rebalance: %v\n%s", err, out)
		}
	}
	t.Log(strings.TrimSpace(c.cli(t, c.nodes[0], "rebalance", "status", "--watch")))
	out = c.cli(t, c.nodes[5], "cluster", "verify")
	if !strings.Contains(out, "missing 0, extra 0, unreadable 0") {
		t.Fatalf("verify after repair:\n%s", out)
	}
	for i := 0; i < n; i++ {
		if err := readSum(ctx, c.nodes[(i+3)%6].mc, "moving", fmt.Sprintf("m%02d", i), sums[i]); err != nil {
			t.Fatalf("after repair: %v", err)
		}
	}
}
