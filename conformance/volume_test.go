package conformance

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-storage/strata/blockpool/volumes"
	"github.com/strata-storage/strata/scrub"
)

// Block volumes on a three-node, three-zone cluster, reached with Debian's
// NBD tools (nbdinfo, nbdcopy, qemu-io, qemu-img) and, where a volume must
// stay attached across a node's death, a small NBD client.

func (c *testCluster) volumeInfo(t *testing.T, nd *clusterNode, name string) volumes.VolumeInfo {
	t.Helper()
	var list []volumes.VolumeInfo
	if err := json.Unmarshal([]byte(c.cli(t, nd, "volume", "list", name, "-o", "json")), &list); err != nil || len(list) != 1 {
		t.Fatalf("volume list %s: %v", name, err)
	}
	return list[0]
}

func states(v volumes.VolumeInfo) map[string]string {
	out := map[string]string{}
	for _, r := range v.Replicas {
		out[r.Node] = r.State
	}
	return out
}

// waitVolume polls the volume (as nd sees it) until ok says so.
func (c *testCluster) waitVolume(t *testing.T, nd *clusterNode, name string, within time.Duration, ok func(volumes.VolumeInfo) bool) volumes.VolumeInfo {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		v := c.volumeInfo(t, nd, name)
		if ok(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("volume %s never reached the expected state: %+v\n%s", name, v, c.diagnose(t))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func allUpToDate(v volumes.VolumeInfo) bool {
	for _, r := range v.Replicas {
		if r.State != "UpToDate" {
			return false
		}
	}
	return len(v.Replicas) > 0
}

// replicaFile is a replica's data file on its node.
func replicaFile(nd *clusterNode, volume string) string {
	return filepath.Join(nd.dir, "volumes", volume, "data.vol")
}

func fileSum(t *testing.T, path string, n int64) [32]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyN(h, f, n); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return s
}

// sameReplicas fails unless every node's replica file of volume holds the
// same first size bytes.
func sameReplicas(t *testing.T, volume string, size int64, nodes ...*clusterNode) {
	t.Helper()
	sum := fileSum(t, replicaFile(nodes[0], volume), size)
	for _, nd := range nodes[1:] {
		if fileSum(t, replicaFile(nd, volume), size) != sum {
			t.Fatalf("the replica of %s on %s differs from %s's", volume, nd.name, nodes[0].name)
		}
	}
}

func runTool(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestVolumesOverNBDOnACluster(t *testing.T) {
	t.Parallel()
	nbdinfo := requireTool(t, "nbdinfo")
	nbdcopy := requireTool(t, "nbdcopy")
	qemuIO := requireTool(t, "qemu-io")
	qemuImg := requireTool(t, "qemu-img")
	c := startCluster(t, 3, 3, "2+1")
	n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]
	// Nodes restarted inside a subtest must outlive it: their cleanup
	// belongs to the whole test.
	restart := func(nds ...*clusterNode) {
		for _, nd := range nds {
			c.launch(t, nd)
		}
		for _, nd := range nds {
			c.waitUp(t, nd)
		}
	}

	t.Run("CreatePlacesReplicasInDistinctZones", func(t *testing.T) {
		c.cli(t, n1, "volume", "create", "big", "1GiB", "--replicas", "3")
		v := c.volumeInfo(t, n2, "big")
		if v.Size != 1<<30 || len(v.Nodes) != 3 || !allUpToDate(v) {
			t.Fatalf("new volume: %+v", v)
		}
		if out, err := strataCLI(t, "volume", "create", "big", "1GiB", "--server", "http://"+n1.admin); err == nil || !strings.Contains(out, "VolumeExists") {
			t.Fatalf("second create of a name: %v %s", err, out)
		}
		if out, err := strataCLI(t, "volume", "create", "four", "1GiB", "--replicas", "4", "--server", "http://"+n1.admin); err == nil || !strings.Contains(out, "PlacementFailed") {
			t.Fatalf("4 replicas on 3 zones: %v %s", err, out)
		}
		pools := c.cli(t, n3, "pool", "list")
		for _, nd := range c.nodes {
			if !strings.Contains(pools, nd.name) {
				t.Fatalf("pool list misses %s:\n%s", nd.name, pools)
			}
		}
		if out := runTool(t, nbdinfo, "--list", "nbd://"+n2.nbd); !strings.Contains(out, `export="big"`) {
			t.Fatalf("nbdinfo --list:\n%s", out)
		}
	})

	t.Run("NbdcopyOneGiBThroughThreeReplicas", func(t *testing.T) {
		dir := t.TempDir()
		img := filepath.Join(dir, "img")
		f, _ := os.Create(img)
		w := bufio.NewWriterSize(f, 1<<20)
		io.CopyN(w, rand.NewChaCha8([32]byte{1}), 1<<30)
		w.Flush()
		f.Close()
		want := fileSum(t, img, 1<<30)
		start := time.Now()
		runTool(t, nbdcopy, img, "nbd://"+n1.nbd+"/big")
		t.Logf("nbdcopy 1 GiB into 3 replicas: %.0f MB/s", float64(1<<30)/time.Since(start).Seconds()/1e6)
		back := filepath.Join(dir, "back")
		runTool(t, nbdcopy, "nbd://"+n2.nbd+"/big", back)
		if fileSum(t, back, 1<<30) != want {
			t.Fatal("image read back through node2 differs")
		}
		for _, nd := range c.nodes {
			if fileSum(t, replicaFile(nd, "big"), 1<<30) != want {
				t.Fatalf("replica on %s differs from the image", nd.name)
			}
		}
		if out := runTool(t, qemuImg, "compare", "-f", "raw", "-F", "raw", img, "nbd://"+n3.nbd+"/big"); !strings.Contains(out, "identical") {
			t.Fatalf("qemu-img compare: %s", out)
		}
		out := runTool(t, qemuIO, "-f", "raw", "-c", "write -P 0xab 4M 1M", "-c", "write -P 0xcd 5M 4k", "-c", "read -P 0xab 4M 1M", "-c", "read -P 0xcd 5M 4k", "nbd://"+n2.nbd+"/big")
		if strings.Contains(out, "failed") || strings.Count(out, "read ") != 2 {
			t.Fatalf("qemu-io:\n%s", out)
		}
	})

	t.Run("KilledReplicaResyncsOnlyWhatChanged", func(t *testing.T) {
		c.cli(t, n1, "volume", "create", "rs", "256MiB", "--replicas", "3")
		cl, err := dialNBD(n1.nbd, "rs")
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		rng := rand.New(rand.NewPCG(1, 2))
		chunk := func() []byte {
			b := make([]byte, 1<<20)
			for i := range b {
				b[i] = byte(rng.Uint32())
			}
			return b
		}
		for off := int64(0); off < 64<<20; off += 1 << 20 {
			if err := cl.WriteAt(chunk(), off); err != nil {
				t.Fatal(err)
			}
		}
		if err := cl.Flush(); err != nil {
			t.Fatal(err)
		}
		// node3 dies in the middle of a stream of writes; they go on.
		var changed int64
		for i := range 24 {
			if i == 4 {
				c.kill(n3)
			}
			if err := cl.WriteAt(chunk(), int64(64+i*4)<<20); err != nil {
				t.Fatalf("write %d with node3 dead: %v", i, err)
			}
			if i >= 4 {
				changed += 1 << 20
			}
		}
		if err := cl.Flush(); err != nil {
			t.Fatalf("flush with node3 dead: %v", err)
		}
		v := c.volumeInfo(t, n1, "rs")
		if st := states(v); st["node3"] != "Outdated" || st["node1"] != "UpToDate" || st["node2"] != "UpToDate" {
			t.Fatalf("states with node3 dead: %v", st)
		}
		before := v.Stats.ResyncedBytes
		restart(n3)
		v = c.waitVolume(t, n1, "rs", 60*time.Second, allUpToDate)
		resynced := v.Stats.ResyncedBytes - before
		t.Logf("changed while node3 was dead: %d MiB; resynced: %d MiB (volume 256 MiB)", changed>>20, resynced>>20)
		// Writes 0-3 reached node3 before it died, unflushed: after its
		// crash their 4 MiB activity-log extents (4 of them) may be torn
		// there and are copied too, as DRBD does; one more write may have
		// been in flight. Nothing else may be copied.
		if resynced < changed || resynced > changed+4*(4<<20)+(1<<20) {
			t.Fatalf("resynced %d bytes for %d changed", resynced, changed)
		}
		if err := cl.Flush(); err != nil {
			t.Fatal(err)
		}
		sameReplicas(t, "rs", 256<<20, c.nodes...)

		// Rot on the replica the primary reads first: reads stay right,
		// the block is rewritten, the counter shows it.
		want, err := cl.ReadAt(8192, 10<<20)
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(replicaFile(n1, "rs"), os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteAt([]byte{^want[100], ^want[101]}, 10<<20+100)
		f.Close()
		got, err := cl.ReadAt(8192, 10<<20)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("read over rot: %v", err)
		}
		if v := c.volumeInfo(t, n1, "rs"); v.Stats.RepairedBlocks != 1 {
			t.Fatalf("repaired blocks: %d", v.Stats.RepairedBlocks)
		}
		if m := nodeMetric(t, n1, `strata_volume_repaired_blocks_total{volume="rs"}`); m != "1" {
			t.Fatalf("repaired-blocks metric: %q", m)
		}
		onDisk := make([]byte, 8192)
		f, _ = os.Open(replicaFile(n1, "rs"))
		f.ReadAt(onDisk, 10<<20)
		f.Close()
		if !bytes.Equal(onDisk, want) {
			t.Fatal("the bad block was not rewritten")
		}

		// Quorum loss: with node2 and node3 gone, writes and flushes fail
		// instead of going on alone.
		c.kill(n2)
		c.kill(n3)
		if err := cl.WriteAt(chunk(), 200<<20); err == nil {
			t.Fatal("a write was acknowledged without a quorum")
		}
		if err := cl.WriteAt(chunk(), 201<<20); err == nil {
			t.Fatal("a second write was acknowledged without a quorum")
		}
		if err := cl.Flush(); err == nil {
			t.Fatal("a flush succeeded without a quorum")
		}
		restart(n2, n3)
		c.waitVolume(t, n1, "rs", 60*time.Second, allUpToDate)
		if err := cl.WriteAt(chunk(), 200<<20); err != nil {
			t.Fatalf("write once the quorum is back: %v", err)
		}
		cl.Flush()
		sameReplicas(t, "rs", 256<<20, c.nodes...)
	})

	t.Run("DisklessAttach", func(t *testing.T) {
		// Replicas on node2 and node3; node1 holds none and serves it.
		c.cli(t, n1, "volume", "create", "thin2", "32MiB", "--nodes", "node2,node3")
		cl, err := dialNBD(n1.nbd, "thin2")
		if err != nil {
			t.Fatal(err)
		}
		want := bytes.Repeat([]byte("diskless"), 64<<10)
		if err := cl.WriteAt(want, 1<<20); err != nil {
			t.Fatal(err)
		}
		if err := cl.Flush(); err != nil {
			t.Fatal(err)
		}
		got, err := cl.ReadAt(len(want), 1<<20)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("read through a diskless primary: %v", err)
		}
		// node1 is also the volume's tie-breaker (the one node without a
		// replica): a diskless primary that counts toward the quorum.
		v := c.volumeInfo(t, n1, "thin2")
		if v.Primary != "node1" || v.TieBreaker != "node1" || len(v.Replicas) != 3 || !v.Replicas[2].Diskless || !allUpToDate(v) {
			t.Fatalf("diskless primary's view: %+v", v)
		}
		if _, err := os.Stat(replicaFile(n1, "thin2")); err == nil {
			t.Fatal("a replica file on the diskless node")
		}
		for _, nd := range []*clusterNode{n2, n3} {
			f, _ := os.Open(replicaFile(nd, "thin2"))
			onDisk := make([]byte, len(want))
			f.ReadAt(onDisk, 1<<20)
			f.Close()
			if !bytes.Equal(onDisk, want) {
				t.Fatalf("replica on %s misses the write", nd.name)
			}
		}
		cl.Close()
	})

	t.Run("ReplicaResyncsWithNoClientAttached", func(t *testing.T) {
		c.cli(t, n1, "volume", "create", "idle", "64MiB", "--replicas", "3")
		cl, err := dialNBD(n1.nbd, "idle")
		if err != nil {
			t.Fatal(err)
		}
		for off := int64(0); off < 8<<20; off += 1 << 20 {
			cl.WriteAt(bytes.Repeat([]byte{1}, 1<<20), off)
		}
		cl.Flush()
		c.kill(n3)
		for off := int64(16 << 20); off < 20<<20; off += 1 << 20 {
			if err := cl.WriteAt(bytes.Repeat([]byte{2}, 1<<20), off); err != nil {
				t.Fatal(err)
			}
		}
		cl.Flush()
		cl.Close() // nobody has the volume attached from here on
		restart(n3)
		c.waitVolume(t, n2, "idle", 60*time.Second, func(v volumes.VolumeInfo) bool { return allUpToDate(v) && v.Primary == "" })
		sameReplicas(t, "idle", 64<<20, c.nodes...)
	})

	t.Run("ScrubRepairsReplicas", func(t *testing.T) {
		c.cli(t, n1, "volume", "create", "scr", "32MiB", "--replicas", "3")
		cl, err := dialNBD(n1.nbd, "scr")
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(9, 1))
		for off := int64(0); off < 32<<20; off += 1 << 20 {
			b := make([]byte, 1<<20)
			for i := range b {
				b[i] = byte(rng.Uint32())
			}
			cl.WriteAt(b, off)
		}
		cl.Flush()
		cl.Close()
		// Rot in two replicas, in different blocks.
		for i, nd := range []*clusterNode{n2, n3} {
			f, err := os.OpenFile(replicaFile(nd, "scr"), os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			for j := int64(0); j < 5; j++ {
				off := (int64(i)*5+j)*(1<<20) + 12345
				b := make([]byte, 1)
				f.ReadAt(b, off)
				b[0] ^= 0xff
				f.WriteAt(b, off)
			}
			f.Close()
		}
		var out string
		deadline := time.Now().Add(20 * time.Second)
		for { // the volume may still be held by its previous primary's lease
			var err error
			if out, err = strataCLI(t, "scrub", "now", "scr", "--server", "http://"+n1.admin); err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		if !strings.Contains(out, "10 bad blocks, 10 repaired") || !strings.Contains(out, "0 unrecoverable") {
			t.Fatalf("scrub now of a volume: %s", out)
		}
		sameReplicas(t, "scr", 32<<20, c.nodes...)
		if out := c.cli(t, n1, "scrub", "now", "scr"); !strings.Contains(out, "0 bad blocks") {
			t.Fatalf("second scrub: %s", out)
		}
		// The node that answers for the volume scrubs it in the background.
		for found, deadline := false, time.Now().Add(10*time.Second); !found; {
			var all []scrub.Status
			json.Unmarshal([]byte(c.cli(t, n2, "scrub", "status", "--all", "-o", "json")), &all)
			for _, s := range all {
				found = found || s.Target == "node1:volume/scr"
			}
			if !found && time.Now().After(deadline) {
				t.Fatal("node1 does not scrub volume scr")
			}
			time.Sleep(200 * time.Millisecond)
		}
	})

	t.Run("Ext4SurvivesPrimaryLoss", func(t *testing.T) { testExt4SurvivesPrimaryLoss(t, c, restart) })

	t.Run("ForcedPrimarySplitBrainIsReportedAndResolved", func(t *testing.T) {
		c.cli(t, n1, "volume", "create", "sb", "16MiB", "--replicas", "3")
		// node2 and node3 are gone; node1's operator forces it primary.
		c.kill(n2)
		c.kill(n3)
		if out, err := strataCLI(t, "volume", "primary", "sb", "--server", "http://"+n1.admin); err == nil {
			t.Fatalf("primary without a quorum, unforced: %s", out)
		}
		c.cli(t, n1, "volume", "primary", "sb", "--force")
		cl, err := dialNBD(n1.nbd, "sb")
		if err != nil {
			t.Fatal(err)
		}
		if err := cl.WriteAt(bytes.Repeat([]byte{0xaa}, 4096), 0); err != nil {
			t.Fatalf("write on the forced primary: %v", err)
		}
		cl.Flush()
		cl.Close()
		// node1 goes away; the other side comes back and writes too.
		c.kill(n1)
		restart(n2, n3)
		var cl2 *nbdConn
		deadline := time.Now().Add(30 * time.Second)
		for {
			if cl2, err = dialNBD(n2.nbd, "sb"); err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("node2 never attached: %v", err)
		}
		defer cl2.Close()
		if err := cl2.WriteAt(bytes.Repeat([]byte{0xbb}, 4096), 4096); err != nil {
			t.Fatal(err)
		}
		cl2.Flush()
		// The sides meet: node1's copy is reported, not overwritten.
		restart(n1)
		v := c.waitVolume(t, n2, "sb", 30*time.Second, func(v volumes.VolumeInfo) bool { return states(v)["node1"] == "SplitBrain" })
		if st := states(v); st["node2"] != "UpToDate" || st["node3"] != "UpToDate" {
			t.Fatalf("states: %v", st)
		}
		if m := nodeMetric(t, n2, `strata_volume_split_brain{node="node1",volume="sb"}`); m != "1" {
			t.Fatalf("split-brain metric: %q", m)
		}
		f, _ := os.Open(replicaFile(n1, "sb"))
		blk := make([]byte, 4096)
		f.ReadAt(blk, 0)
		f.Close()
		if blk[0] != 0xaa {
			t.Fatal("the forced side's write was overwritten before anyone decided")
		}
		// The operator keeps node2's side: node1 is resynced in full.
		c.cli(t, n2, "volume", "discard", "sb", "node1", "--yes")
		c.waitVolume(t, n2, "sb", 30*time.Second, allUpToDate)
		sameReplicas(t, "sb", 16<<20, n2, n1, n3)
	})

	t.Run("PrimaryNodeDiesAnotherTakesOver", func(t *testing.T) {
		c.cli(t, n1, "volume", "create", "ha", "64MiB", "--replicas", "3")
		cl, err := dialNBD(n1.nbd, "ha")
		if err != nil {
			t.Fatal(err)
		}
		want := bytes.Repeat([]byte("takeover"), 1<<17)
		if err := cl.WriteAt(want, 3<<20); err != nil {
			t.Fatal(err)
		}
		if err := cl.Flush(); err != nil {
			t.Fatal(err)
		}
		if _, err := dialNBD(n2.nbd, "ha"); err == nil || !strings.Contains(err.Error(), "primary on another node") {
			t.Fatalf("attach on node2 while node1 is primary: %v", err)
		}
		c.kill(n1)
		defer restart(n1)
		var cl2 *nbdConn
		deadline := time.Now().Add(30 * time.Second)
		for {
			if cl2, err = dialNBD(n2.nbd, "ha"); err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("node2 never took over: %v", err)
		}
		defer cl2.Close()
		got, err := cl2.ReadAt(len(want), 3<<20)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("data after takeover: %v", err)
		}
		if err := cl2.WriteAt([]byte("after"), 0); err != nil {
			t.Fatalf("write on the new primary: %v", err)
		}
		if st := states(c.volumeInfo(t, n2, "ha")); st["node1"] != "Outdated" && st["node1"] != "Unknown" {
			t.Fatalf("dead old primary shows as %s", st["node1"])
		}
	})
}

// ext4OnVolume is a real filesystem on a volume: nbdfuse exposes the
// export as a file, losetup makes it a block device, the kernel mounts it.
type ext4OnVolume struct {
	t                      *testing.T
	fuseDir, file, loop    string
	mnt                    string
	fuse                   *exec.Cmd
	mounted, looped, fused bool
}

// attachExt4 attaches export at addr through nbdfuse and a loop device,
// retrying while the volume is still primary elsewhere.
func attachExt4(t *testing.T, addr, export string, within time.Duration) *ext4OnVolume {
	t.Helper()
	e := &ext4OnVolume{t: t, fuseDir: t.TempDir(), mnt: t.TempDir()}
	e.file = filepath.Join(e.fuseDir, "nbd")
	deadline := time.Now().Add(within)
	for {
		pid := filepath.Join(t.TempDir(), "pid")
		cmd := exec.Command("nbdfuse", "-P", pid, e.fuseDir, "nbd://"+addr+"/"+export)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		ready := false
		for i := 0; i < 100 && !ready; i++ {
			select {
			case <-exited:
				i = 100
			case <-time.After(100 * time.Millisecond):
				_, err := os.Stat(pid)
				ready = err == nil
			}
		}
		if ready {
			e.fuse, e.fused = cmd, true
			break
		}
		cmd.Process.Kill()
		if time.Now().After(deadline) {
			t.Fatalf("nbdfuse could not attach %s: %s", export, stderr.String())
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Cleanup(e.detach)
	e.loop = strings.TrimSpace(runTool(t, "losetup", "-f", "--show", e.file))
	e.looped = true
	return e
}

func (e *ext4OnVolume) mount() {
	runTool(e.t, "mount", e.loop, e.mnt)
	e.mounted = true
}

// detach tears down whatever is still attached (the backing node may be
// dead: lazy unmount, and nbdfuse is killed if it does not go).
func (e *ext4OnVolume) detach() {
	if e.mounted {
		exec.Command("fsfreeze", "-u", e.mnt).Run()
		exec.Command("umount", "-l", e.mnt).Run()
		e.mounted = false
	}
	if e.looped {
		exec.Command("losetup", "-d", e.loop).Run()
		e.looped = false
	}
	if e.fused {
		exec.Command("fusermount3", "-u", "-z", e.fuseDir).Run()
		done := make(chan struct{})
		go func() { e.fuse.Process.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			e.fuse.Process.Kill()
		}
		e.fused = false
	}
}

func testExt4SurvivesPrimaryLoss(t *testing.T, c *testCluster, restart func(...*clusterNode)) {
	if os.Geteuid() != 0 {
		t.Skip("losetup and mount need root; this run is not root")
	}
	for _, tool := range []string{"nbdfuse", "fusermount3", "losetup", "mkfs.ext4", "e2fsck", "fsfreeze", "mount"} {
		requireTool(t, tool)
	}
	n1, n2 := c.nodes[0], c.nodes[1]
	c.cli(t, n1, "volume", "create", "fs", "256MiB", "--replicas", "3")
	fs1 := attachExt4(t, n1.nbd, "fs", 10*time.Second)
	runTool(t, "mkfs.ext4", "-q", fs1.loop)
	fs1.mount()
	rng := rand.New(rand.NewPCG(7, 7))
	want := map[string][32]byte{}
	for i := range 24 {
		b := make([]byte, 1<<20+rng.IntN(2<<20))
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		name := fmt.Sprintf("file%02d", i)
		if err := os.WriteFile(filepath.Join(fs1.mnt, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
		want[name] = sha256.Sum256(b)
	}
	runTool(t, "sync")
	// Quiesced as a snapshot or a crash-consistent stop would be, then
	// the primary's node dies under the mounted filesystem.
	runTool(t, "fsfreeze", "-f", fs1.mnt)
	c.kill(n1)
	defer restart(n1)
	fs1.detach()

	fs2 := attachExt4(t, n2.nbd, "fs", 30*time.Second)
	if out, err := exec.Command("e2fsck", "-fn", fs2.loop).CombinedOutput(); err != nil {
		t.Fatalf("e2fsck -fn on node2's copy: %v\n%s", err, out)
	} else {
		t.Logf("e2fsck -fn on node2 after node1 died: %s", strings.TrimSpace(string(out)))
	}
	fs2.mount()
	for name, sum := range want {
		b, err := os.ReadFile(filepath.Join(fs2.mnt, name))
		if err != nil || sha256.Sum256(b) != sum {
			t.Fatalf("%s differs after the takeover (%v)", name, err)
		}
	}
	fs2.detach()
}

// metric reads one sample of a node's /metrics.
func nodeMetric(t *testing.T, nd *clusterNode, series string) string {
	t.Helper()
	resp, err := http.Get("http://" + nd.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	return fmt.Sprintf("(no %s)", series)
}
