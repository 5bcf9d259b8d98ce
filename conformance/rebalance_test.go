package conformance

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/strata-storage/strata/blockpool/volumes"
	"github.com/strata-storage/strata/cluster"
	"github.com/strata-storage/strata/rebalancer"
)

// cliJSON runs the CLI against a node and decodes its stdout (progress
// goes to stderr).
func (c *testCluster) cliJSON(t *testing.T, nd *clusterNode, v any, args ...string) {
	t.Helper()
	cmd := exec.Command(strataBinary(t), append(args, "--server", "http://"+nd.admin, "-o", "json")...)
	cmd.Env = cliEnv(t)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("strata %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
	}
	if err := json.Unmarshal(out, v); err != nil {
		t.Fatalf("strata %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// loadLoop reads (and optionally writes) objects through gateways until
// stopped, counting what fails: the "0 errors while it moves" of the
// rebalance issue.
type loadLoop struct {
	reads, writes, errors atomic.Int64
	mu                    sync.Mutex
	firstErrs             []string
	stop                  chan struct{}
	wg                    sync.WaitGroup
	written               sync.Map // key -> [32]byte
}

func (l *loadLoop) fail(format string, args ...any) {
	l.errors.Add(1)
	l.mu.Lock()
	if len(l.firstErrs) < 10 {
		l.firstErrs = append(l.firstErrs, fmt.Sprintf(format, args...))
	}
	l.mu.Unlock()
}

// startLoad runs readers over keys (with their sums) and, if writers > 0,
// writers of new keys, through gateways, for at most limit.
func startLoad(gateways []*clusterNode, bucket string, keys []string, sums map[string][32]byte, readers, writers int, limit time.Duration) *loadLoop {
	l := &loadLoop{stop: make(chan struct{})}
	deadline := time.Now().Add(limit)
	running := func() bool {
		select {
		case <-l.stop:
			return false
		default:
			return time.Now().Before(deadline)
		}
	}
	for r := 0; r < readers; r++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			rng := rand.New(rand.NewPCG(uint64(r), 7))
			for running() {
				k := keys[rng.IntN(len(keys))]
				nd := gateways[rng.IntN(len(gateways))]
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				err := readSum(ctx, nd.mc, bucket, k, sums[k])
				cancel()
				l.reads.Add(1)
				if err != nil {
					l.fail("read %s via %s: %v", k, nd.name, err)
				}
			}
		}()
	}
	for w := 0; w < writers; w++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := 0; running(); i++ {
				k := fmt.Sprintf("new/%d/%d", w, i)
				data := make([]byte, 20<<10)
				binaryFill(data, uint64(w)<<32|uint64(i))
				nd := gateways[(w+i)%len(gateways)]
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				_, err := nd.mc.PutObject(ctx, bucket, k, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{DisableMultipart: true})
				cancel()
				l.writes.Add(1)
				if err != nil {
					l.fail("write %s via %s: %v", k, nd.name, err)
					continue
				}
				l.written.Store(k, sha256.Sum256(data))
			}
		}()
	}
	return l
}

func (l *loadLoop) finish(t *testing.T) {
	close(l.stop)
	l.wg.Wait()
	t.Logf("load during the move: %d reads, %d writes, %d errors %v", l.reads.Load(), l.writes.Load(), l.errors.Load(), l.firstErrs)
	if l.errors.Load() != 0 {
		t.Errorf("%d reads or writes failed during the move: %v", l.errors.Load(), l.firstErrs)
	}
	if l.reads.Load() == 0 {
		t.Error("the load loop read nothing")
	}
}

// putMany stores n objects of size(i) through every gateway in turn and
// returns their keys and sums.
func putMany(t *testing.T, c *testCluster, bucket string, n, workers int, size func(i int) int) ([]string, map[string][32]byte) {
	keys := make([]string, n)
	sums := make(map[string][32]byte, n)
	var mu sync.Mutex
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				data := objectData(i)
				if s := size(i); s <= len(data) {
					data = data[:s]
				} else {
					data = append(data, bytes.Repeat([]byte{byte(i)}, s-len(data))...)
				}
				k := fmt.Sprintf("obj/%05d", i)
				if err := putWithFailover(context.Background(), c, i, bucket, k, data); err != nil {
					errc <- fmt.Errorf("put %s: %w", k, err)
					return
				}
				mu.Lock()
				keys[i], sums[k] = k, sha256.Sum256(data)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return keys, sums
}

// Must-show 1: 6 nodes in 3 zones, EC 4+2, 5,000 objects. `strata drill
// rack-failure` stops a zone's nodes, reads everything, declares the zone
// failed and waits for the rebuild; a reader loop of its own runs through
// the surviving gateways all along and must see no error. Afterwards the
// drill's verify and an independent one report full redundancy.
//
// A block volume with a replica in the failed zone gets a new replica on
// a surviving node, fully synced, and the dead one is dropped, while a
// client stays attached and writes.
func TestRackFailureDrill(t *testing.T) {
	t.Parallel()
	requireTool(t, "etcd", "etcd")
	nbdcopy := requireTool(t, "nbdcopy")
	c := startClusterWith(t, &testCluster{size: 6, ec: "4+2", pools: 2, extra: []string{"--allow-halt"}}, 3)
	mc := c.nodes[0].mc
	const volSize = 32 << 20
	c.cli(t, c.nodes[0], "volume", "create", "db", fmt.Sprint(volSize), "--nodes", "node1,node2,node3") // zones 1, 2, 3
	img := t.TempDir() + "/img"
	volData := make([]byte, volSize)
	binaryFill(volData, 77)
	if err := os.WriteFile(img, volData, 0o600); err != nil {
		t.Fatal(err)
	}
	runTool(t, nbdcopy, img, "nbd://"+c.nodes[0].nbd+"/db")
	c.waitVolume(t, c.nodes[0], "db", time.Minute, allUpToDate)
	// A client stays attached on node1 through the whole drill, writing a
	// MiB every 4 s: the replacement replica joins under it.
	qemuIO := requireTool(t, "qemu-io")
	args := []string{"-f", "raw"}
	const writes = 32
	for i := 0; i < writes; i++ {
		args = append(args, "-c", fmt.Sprintf("write -P %d %dM 1M", i+1, i), "-c", "sleep 4000")
		copy(volData[i<<20:(i+1)<<20], bytes.Repeat([]byte{byte(i + 1)}, 1<<20))
	}
	client := exec.Command(qemuIO, append(args, "nbd://"+c.nodes[0].nbd+"/db")...)
	var clientOut bytes.Buffer
	client.Stdout, client.Stderr = &clientOut, &clientOut
	if err := client.Start(); err != nil {
		t.Fatal(err)
	}
	clientDone := make(chan error, 1)
	var clientExited atomic.Int64 // unix nanos
	go func() {
		err := client.Wait()
		clientExited.Store(time.Now().UnixNano())
		clientDone <- err
	}()
	t.Cleanup(func() { client.Process.Kill() })
	// Watch for the moment the volume's replica has moved off zone3.
	moved := func(v volumes.VolumeInfo) bool {
		return len(v.Nodes) == 3 && !slices.Contains(v.Nodes, "node3") && len(v.Leaving) == 0 && allUpToDate(v)
	}
	var movedAt atomic.Int64
	stopWatch := make(chan struct{})
	defer close(stopWatch)
	go func() {
		for {
			select {
			case <-stopWatch:
				return
			case <-time.After(500 * time.Millisecond):
			}
			out, err := strataCLI(t, "volume", "list", "db", "-o", "json", "--server", "http://"+c.nodes[0].admin)
			var list []volumes.VolumeInfo
			if err == nil && json.Unmarshal([]byte(out), &list) == nil && len(list) == 1 && moved(list[0]) {
				movedAt.Store(time.Now().UnixNano())
				return
			}
		}
	}()
	if err := mc.MakeBucket(context.Background(), "drill", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	keys, sums := putMany(t, c, "drill", 5000, 16, func(i int) int {
		if i%100 == 0 {
			return 200<<10 + i*17 // a few streamed objects
		}
		return 1<<10 + (i*7919)%(15<<10)
	})
	var survivors []*clusterNode
	for _, nd := range c.nodes {
		if nd.zone != "zone3" {
			survivors = append(survivors, nd)
		}
	}
	load := startLoad(survivors, "drill", keys, sums, 4, 0, 10*time.Minute)
	var rep struct {
		NodesStopped   []string                            `json:"nodes_stopped"`
		Before         struct{ Objects, Unreadable int64 } `json:"before"`
		During         struct{ Objects, Unreadable int64 } `json:"during_outage"`
		After          struct{ Objects, Unreadable int64 } `json:"after_rebuild"`
		RebuildSeconds float64                             `json:"seconds_to_full_redundancy"`
		BytesRebuilt   int64                               `json:"bytes_rebuilt"`
		RecordsRebuilt int64                               `json:"records_rebuilt"`
		FullRedundancy bool                                `json:"full_redundancy"`
		Records        rebalancer.Stats                    `json:"rebalance_records"`
	}
	c.cliJSON(t, c.nodes[0], &rep, "drill", "rack-failure", "zone3", "--yes")
	load.finish(t)
	t.Logf("drill: stopped %v; %d objects before, %d during (%d unreadable), %d after (%d unreadable); full redundancy after %.1fs, %d bytes in %d records rebuilt (%+v)",
		rep.NodesStopped, rep.Before.Objects, rep.During.Objects, rep.During.Unreadable, rep.After.Objects, rep.After.Unreadable,
		rep.RebuildSeconds, rep.BytesRebuilt, rep.RecordsRebuilt, rep.Records)
	if rep.Before.Objects != 5000 || rep.During.Objects != 5000 || rep.After.Objects != 5000 {
		t.Fatalf("objects checked: %d/%d/%d, want 5000", rep.Before.Objects, rep.During.Objects, rep.After.Objects)
	}
	if rep.During.Unreadable != 0 || rep.After.Unreadable != 0 || !rep.FullRedundancy {
		t.Fatalf("drill report: %+v\n%s", rep, c.diagnose(t))
	}
	// Two of every object's six shards were in zone3.
	// (A record found already rebuilt was healed by a read meanwhile.)
	if rep.RecordsRebuilt+rep.Records.Found != 5000 || rep.Records.Lost != 0 || rep.BytesRebuilt <= 0 {
		t.Fatalf("rebuilt %d records (%d bytes), lost %d", rep.RecordsRebuilt, rep.BytesRebuilt, rep.Records.Lost)
	}
	out := c.cli(t, c.nodes[0], "cluster", "verify")
	if !strings.Contains(out, "objects 5000, missing 0, extra 0, unreadable 0") {
		t.Fatalf("verify after the rebuild: %s", out)
	}
	// The volume's replica on node3 (zone3) is replaced and dropped while
	// the client is still attached.
	v := c.waitVolume(t, c.nodes[0], "db", 2*time.Minute, moved)
	for deadline := time.Now().Add(10 * time.Second); movedAt.Load() == 0 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	if exited := clientExited.Load(); movedAt.Load() == 0 || exited != 0 && exited < movedAt.Load() {
		t.Fatalf("the client detached before the replica moved (moved at %d, detached at %d); the move was not done under it", movedAt.Load(), exited)
	}
	// The client wrote through the failure and the replacement.
	if err := <-clientDone; err != nil || strings.Contains(clientOut.String(), "failed") || strings.Count(clientOut.String(), "wrote 1048576/1048576") != writes {
		t.Fatalf("qemu-io attached through the drill: %v\n%s", err, clientOut.String())
	}
	t.Logf("volume db now on %v", v.Nodes)
	var holders []*clusterNode
	for _, nd := range c.nodes {
		if slices.Contains(v.Nodes, nd.name) {
			holders = append(holders, nd)
		}
	}
	sameReplicas(t, "db", volSize, holders...)
	if fileSum(t, replicaFile(holders[0], "db"), volSize) != sha256.Sum256(volData) {
		t.Fatal("the volume's data changed")
	}
}

// joinZone starts nodes in a new zone and adds their devices to the ring
// (through node1; nothing moves until a rebalance).
func (c *testCluster) joinZone(t *testing.T, zone string, names ...string) {
	t.Helper()
	for _, name := range names {
		nd := &clusterNode{name: name, zone: zone, dir: t.TempDir(), s3: freeAddr(t), admin: freeAddr(t), rpc: freeAddr(t), nbd: freeAddr(t)}
		mc, err := minio.New(nd.s3, &minio.Options{Creds: miniocreds.NewStaticV4(testUser, testSecret, ""), Region: "us-east-1", MaxRetries: 1})
		if err != nil {
			t.Fatal(err)
		}
		nd.mc = mc
		c.nodes = append(c.nodes, nd)
		c.launch(t, nd)
		c.waitUp(t, nd)
		c.cli(t, c.nodes[0], "ring", "add-device", "--node", name, "--zone", zone, "--name", "disk0", "--weight", "1")
	}
}

// The node running a rebalance dies and stays down: after the takeover
// delay another node resumes the job from its checkpoint; moves to the
// dead node's device wait for it, and when it returns the job finishes
// on its new owner.
func TestRebalanceIsTakenOverFromADeadNode(t *testing.T) {
	t.Parallel()
	requireTool(t, "etcd", "etcd")
	c := startClusterWith(t, &testCluster{size: 6, ec: "4+2", extra: []string{"--rebalance-takeover", "4s"}}, 3)
	ctx := context.Background()
	if err := c.nodes[0].mc.MakeBucket(ctx, "takeover", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	keys, sums := putMany(t, c, "takeover", 150, 8, func(i int) int { return 160<<10 + (i*7919)%(160<<10) })
	c.joinZone(t, "zone4", "node7", "node8")
	node8 := c.nodes[7]
	c.cli(t, node8, "rebalance", "start", "--limit", "1MiB")
	status := func() rebalancer.Status {
		var st rebalancer.Status
		c.cliJSON(t, c.nodes[0], &st, "rebalance", "status")
		return st
	}
	var atKill int64
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(500 * time.Millisecond) {
		st := status()
		if st.Job.Owner != "node8" {
			t.Fatalf("the job runs on %s, not on the node that started it", st.Job.Owner)
		}
		if st.Totals.Bytes > 2<<20 {
			atKill = st.Totals.Bytes
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no progress: %+v", st)
		}
	}
	c.kill(node8)
	var taken rebalancer.Status
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(500 * time.Millisecond) {
		st := status()
		if st.Job.Owner != "node8" && st.Progress != nil && st.Progress.Restarts >= 1 && st.Totals.Bytes > atKill+(1<<20) {
			taken = st
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("nobody took over: %+v\n%s", st, c.diagnose(t))
		}
	}
	t.Logf("node8 killed at %d bytes; %s took over and moved on to %d bytes", atKill, taken.Job.Owner, taken.Totals.Bytes)
	c.launch(t, node8)
	c.waitUp(t, node8)
	var final rebalancer.Status
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(time.Second) {
		final = status()
		if final.Progress != nil && final.Progress.Done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the rebalance did not finish: %+v\n%s", final, c.diagnose(t))
		}
	}
	if final.Job.Owner != taken.Job.Owner || final.Totals.Lost != 0 {
		t.Fatalf("finished on %s (took over: %s), lost %d", final.Job.Owner, taken.Job.Owner, final.Totals.Lost)
	}
	t.Logf("done on %s: %d bytes, %d copied, %d found, %d deferred along the way", final.Job.Owner, final.Totals.Bytes, final.Totals.Copied, final.Totals.Found, final.Totals.Deferred)
	out := c.cli(t, c.nodes[1], "cluster", "verify")
	if !strings.Contains(out, "objects 150, missing 0, extra 0, unreadable 0") {
		t.Fatalf("verify: %s", out)
	}
	for _, k := range keys {
		if err := readSum(ctx, c.nodes[2].mc, "takeover", k, sums[k]); err != nil {
			t.Fatal(err)
		}
	}
}

// metricValue reads one series from a node's /metrics.
func metricValue(t *testing.T, nd *clusterNode, series string) float64 {
	t.Helper()
	v := nodeMetric(t, nd, series)
	var f float64
	if _, err := fmt.Sscan(v, &f); err != nil {
		t.Fatalf("metric %s: %q", series, v)
	}
	return f
}

type rateSample struct {
	at    time.Time
	bytes int64
}

// rateOver is the bytes per second between the first sample with
// progress and the last one.
func rateOver(s []rateSample) (float64, time.Duration) {
	i := 0
	for i < len(s) && s[i].bytes == 0 {
		i++
	}
	if i >= len(s)-1 {
		return 0, 0
	}
	d := s[len(s)-1].at.Sub(s[i].at)
	return float64(s[len(s)-1].bytes-s[i].bytes) / d.Seconds(), d
}

// Must-show 2, 3 and 4: a fourth zone joins a 6-node 4+2 cluster. The
// rebalance moves no more than 1.1x the ring's minimum, serves reads and
// writes all along, survives kill -9 of the node running it (resuming
// without copying again what had moved), holds its bandwidth limit within
// 10% and reports the same progress in the CLI and /metrics; verify is
// clean at the end.
func TestRebalanceAddZoneUnderLoadSurvivesKill9(t *testing.T) {
	t.Parallel()
	requireTool(t, "etcd", "etcd")
	c := startCluster(t, 6, 3, "4+2")
	ctx := context.Background()
	if err := c.nodes[0].mc.MakeBucket(ctx, "move", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	keys, sums := putMany(t, c, "move", 360, 12, func(i int) int { return 160<<10 + (i*7919)%(160<<10) })
	c.joinZone(t, "zone4", "node7", "node8")
	var plan rebalancer.Summary
	c.cliJSON(t, c.nodes[0], &plan, "rebalance", "plan")
	if plan.Moves == 0 || plan.Minimum == 0 || plan.Bytes == 0 {
		t.Fatalf("plan: %+v", plan)
	}
	var zone4 int64
	for _, z := range plan.Zones {
		if z.Name == "zone4" {
			zone4 = z.BytesIn
		}
	}
	t.Logf("plan: %d moves (ring minimum %d), %d bytes, %d into zone4, %d units", plan.Moves, plan.Minimum, plan.Bytes, zone4, plan.Units)
	if zone4 != plan.Bytes {
		t.Fatalf("adding zone4 should move data into zone4 only: %d of %d bytes", zone4, plan.Bytes)
	}

	// Well below what the executor manages on a loaded 2-core machine, so
	// the limit, not the machine, sets the rate.
	const limit = 3 << 19
	gateways := c.nodes[1:] // node1 runs the executor and is killed
	load := startLoad(gateways, "move", keys, sums, 3, 2, 10*time.Minute)
	c.cli(t, c.nodes[0], "rebalance", "start", "--limit", fmt.Sprint(limit), "--concurrency", "16")
	status := func(nd *clusterNode) rebalancer.Status {
		var st rebalancer.Status
		c.cliJSON(t, nd, &st, "rebalance", "status")
		return st
	}
	// Progress in the CLI and /metrics agree while it runs: the metric,
	// read just after, is at most what the limit allows in between ahead.
	var before []rateSample
	agreeChecks := 0
	for {
		t0 := time.Now()
		st := status(c.nodes[0])
		m := metricValue(t, c.nodes[0], "strata_rebalance_moved_bytes")
		d := time.Since(t0)
		before = append(before, rateSample{t0, st.Totals.Bytes})
		if st.Live {
			if ahead := m - float64(st.Totals.Bytes); ahead < 0 || ahead > limit*d.Seconds()+float64(1<<20) {
				t.Fatalf("CLI says %d bytes moved, /metrics %v %.2fs later", st.Totals.Bytes, m, d.Seconds())
			}
			agreeChecks++
		}
		if float64(st.Totals.Bytes) >= 0.4*float64(st.Job.Plan.Bytes) {
			break
		}
		if st.Progress != nil && st.Progress.Done {
			t.Fatal("the rebalance ended before it could be killed")
		}
		time.Sleep(time.Second)
	}
	rate1, span1 := rateOver(before)
	c.kill(c.nodes[0])
	killedAt := before[len(before)-1]
	time.Sleep(2 * time.Second)
	c.launch(t, c.nodes[0])
	c.waitUp(t, c.nodes[0])
	var after []rateSample
	var final rebalancer.Status
	for deadline := time.Now().Add(5 * time.Minute); ; {
		st := status(c.nodes[0])
		if st.Live {
			after = append(after, rateSample{time.Now(), st.Totals.Bytes})
		}
		if st.Progress != nil && st.Progress.Done {
			final = st
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the rebalance did not finish: %+v\n%s", st, c.diagnose(t))
		}
		time.Sleep(time.Second)
	}
	load.finish(t)
	// The last samples run out of work unevenly: the rate is taken while
	// at least half of the planned bytes were still to move.
	cut := len(after)
	for cut > 2 && float64(after[cut-1].bytes) > 0.85*float64(final.Job.Plan.Bytes) {
		cut--
	}
	rate2, span2 := rateOver(after[:cut])
	tot := final.Totals
	t.Logf("rebalance: %d bytes moved (%d planned), %d copied, %d found in place after the restart, %d stale, %d deferred, %d lost; %d restarts; %.1f s running",
		tot.Bytes, final.Job.Plan.Bytes, tot.Copied, tot.Found, tot.Stale, tot.Deferred, tot.Lost, final.Progress.Restarts, final.Progress.RunSeconds)
	t.Logf("rate at a limit of %d B/s: %.0f B/s over %.1fs before the kill (at %d bytes), %.0f B/s over %.1fs after; overall %.0f B/s of running time; %d CLI/metrics agreement checks",
		limit, rate1, span1.Seconds(), killedAt.bytes, rate2, span2.Seconds(), final.Rate, agreeChecks)
	if final.Progress.Restarts < 1 || tot.Lost != 0 {
		t.Fatalf("restarts %d, lost %d", final.Progress.Restarts, tot.Lost)
	}
	// Records whose copy was committed when the executor died are found in
	// place, not copied again; at most one per worker was in flight.
	if tot.Found > 16 {
		t.Fatalf("%d records found already moved after the restart: more than were in flight", tot.Found)
	}
	for _, r := range []float64{rate1, rate2, final.Rate} {
		if r < 0.9*limit || r > 1.1*limit {
			t.Fatalf("rate %.0f B/s is not within 10%% of the %d B/s limit", r, limit)
		}
	}
	if agreeChecks == 0 {
		t.Fatal("no live status to compare with /metrics")
	}
	// At the end the two agree exactly.
	if m := metricValue(t, c.nodes[0], "strata_rebalance_moved_bytes"); int64(m) != tot.Bytes {
		t.Fatalf("CLI %d bytes moved, /metrics %v", tot.Bytes, m)
	}
	if m := metricValue(t, c.nodes[0], `strata_rebalance_records{outcome="copied"}`); int64(m) != tot.Copied {
		t.Fatalf("CLI %d copied, /metrics %v", tot.Copied, m)
	}
	// Moved bytes against the minimum: what the new zone's devices hold
	// now had to reach them (the load writes only small objects, kept in
	// records, not in shard streams), so any rebalance moves at least
	// that. Their usage comes with the heartbeats.
	time.Sleep(3 * time.Second)
	var members []cluster.NodeInfo
	c.cliJSON(t, c.nodes[1], &members, "node", "list")
	var landed int64
	for _, m := range members {
		if m.Zone == "zone4" {
			for _, d := range m.Devices {
				landed += d.UsedBytes
			}
		}
	}
	ratio := float64(tot.Bytes) / float64(landed)
	t.Logf("moved %d bytes for %d bytes that had to reach zone4: %.3fx the minimum (ring: %d slot moves, minimum %d)", tot.Bytes, landed, ratio, plan.Moves, plan.Minimum)
	if landed == 0 || ratio > 1.1 || plan.Moves > plan.Minimum*11/10 {
		t.Fatalf("moved %.2fx the minimum bytes; %d slot moves for a minimum of %d", ratio, plan.Moves, plan.Minimum)
	}
	out := c.cli(t, c.nodes[1], "cluster", "verify")
	if !strings.Contains(out, "missing 0, extra 0, unreadable 0") {
		t.Fatalf("verify after the rebalance: %s\n%s", out, c.diagnose(t))
	}
	// Everything written before and during the move reads back.
	for _, k := range keys {
		if err := readSum(ctx, c.nodes[2].mc, "move", k, sums[k]); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	load.written.Range(func(k, v any) bool {
		n++
		if err := readSum(ctx, c.nodes[3].mc, "move", k.(string), v.([32]byte)); err != nil {
			t.Fatal(err)
		}
		return true
	})
	t.Logf("%d objects written during the rebalance read back", n)
}

func binaryFill(b []byte, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 99))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
}
