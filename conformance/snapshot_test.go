package conformance

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-storage/strata/blockpool/volumes"
)

// seqBlock is block content that names the write that made it.
func seqBlock(seq uint32) []byte {
	b := make([]byte, 4096)
	for i := 0; i < len(b); i += 8 {
		binary.LittleEndian.PutUint32(b[i:], seq)
		binary.LittleEndian.PutUint32(b[i+4:], ^seq)
	}
	return b
}

// The writer below writes write i to block i%blocks, one at a time; a
// point-in-time image is the result of a prefix of those writes.
const seqBlocks = 512

// prefixOf finds k such that img is exactly the result of writes 0..k-1,
// or reports why it is not one.
func prefixOf(img []byte) (int, error) {
	k := 0
	seqs := make([]int, seqBlocks)
	for b := range seqBlocks {
		blk := img[b*4096 : (b+1)*4096]
		if bytes.Equal(blk, make([]byte, 4096)) {
			seqs[b] = -1
			continue
		}
		s := binary.LittleEndian.Uint32(blk)
		if !bytes.Equal(blk, seqBlock(s)) || int(s)%seqBlocks != b {
			return 0, fmt.Errorf("block %d is torn or misplaced", b)
		}
		seqs[b] = int(s)
		k = max(k, int(s)+1)
	}
	for b := range seqBlocks {
		// The last write to b before k.
		want := -1
		if k > 0 {
			last := (k - 1) - ((k-1)%seqBlocks-b+seqBlocks)%seqBlocks
			if last >= 0 {
				want = last
			}
		}
		if seqs[b] != want {
			return 0, fmt.Errorf("block %d holds write %d, a prefix of %d writes has %d there", b, seqs[b], k, want)
		}
	}
	return k, nil
}

func TestVolumeSnapshotsClonesAndResize(t *testing.T) {
	t.Parallel()
	nbdcopy := requireTool(t, "nbdcopy")
	nbdinfo := requireTool(t, "nbdinfo")
	qemuIO := requireTool(t, "qemu-io")
	dataDir := t.TempDir()
	s3, admin, nbdAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	startBinary(t, dataDir, s3, admin, "--nbd-addr", nbdAddr)
	srv := "http://" + admin
	cli := func(args ...string) string { return mustCLI(t, append(args, "--server", srv)...) }
	cli("volume", "create", "db", "64MiB")

	cl, err := dialNBD(nbdAddr, "db")
	if err != nil {
		t.Fatal(err)
	}
	// Sequential writes, each acknowledged before the next, while the
	// snapshot is taken.
	var acked atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := cl.WriteAt(seqBlock(uint32(i)), int64(i%seqBlocks)*4096); err != nil {
				t.Errorf("write %d: %v", i, err)
				return
			}
			acked.Store(int64(i + 1))
		}
	}()
	for acked.Load() < 2000 {
		time.Sleep(10 * time.Millisecond)
	}
	before := acked.Load()
	out := cli("snapshot", "create", "db", "s1")
	after := acked.Load()
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()
	if !strings.Contains(out, "snapshot s1 of db") {
		t.Fatalf("snapshot create: %s", out)
	}
	if out, err := strataCLI(t, "snapshot", "create", "db", "s1", "--server", srv); err == nil || !strings.Contains(out, "VolumeExists") {
		t.Fatalf("second snapshot of the same name: %v %s", err, out)
	}
	if out, err := strataCLI(t, "volume", "delete", "db", "--yes", "--server", srv); err == nil || !strings.Contains(out, "VolumeInUse") {
		t.Fatalf("delete of an attached volume: %v %s", err, out)
	}
	var snaps []volumes.Snapshot
	json.Unmarshal([]byte(cli("snapshot", "list", "db", "-o", "json")), &snaps)
	if len(snaps) != 1 || snaps[0].Name != "s1" || snaps[0].Size != 64<<20 {
		t.Fatalf("snapshot list: %+v", snaps)
	}

	// The clone shows the snapshot's point in time: a prefix of the
	// writes, no shorter than what was acknowledged before it began.
	cli("volume", "clone", "db", "db-copy", "--snapshot", "s1")
	dir := t.TempDir()
	cloneImg := filepath.Join(dir, "clone")
	runTool(t, nbdcopy, "nbd://"+nbdAddr+"/db-copy", cloneImg)
	img, _ := os.ReadFile(cloneImg)
	k, err := prefixOf(img[:seqBlocks*4096])
	if err != nil {
		t.Fatalf("the snapshot is not a point in time: %v", err)
	}
	if int64(k) < before || int64(k) > after+1 {
		t.Fatalf("snapshot holds %d writes; %d were acknowledged before it and %d when it returned", k, before, after)
	}
	t.Logf("snapshot during writes: %d writes in it (%d acknowledged before, %d after)", k, before, after)

	// The clone is writable and independent of its source.
	runTool(t, qemuIO, "-f", "raw", "-c", "write -P 0x77 0 64k", "nbd://"+nbdAddr+"/db-copy")
	orig, err := cl.ReadAt(65536, 0)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(orig, bytes.Repeat([]byte{0x77}, 65536)) {
		t.Fatal("a write to the clone changed the source")
	}
	if out := runTool(t, qemuIO, "-f", "raw", "-c", "read -P 0x77 0 64k", "nbd://"+nbdAddr+"/db-copy"); strings.Contains(out, "failed") {
		t.Fatalf("clone lost its write: %s", out)
	}

	// Restore needs the volume detached; afterwards it is the snapshot.
	if out, err := strataCLI(t, "snapshot", "restore", "db", "s1", "--yes", "--server", srv); err == nil || !strings.Contains(out, "VolumeInUse") {
		t.Fatalf("restore while attached: %v %s", err, out)
	}
	// So does a shrink: it would cut the client's filesystem off.
	if out, err := strataCLI(t, "volume", "resize", "db", "32MiB", "--allow-shrink", "--yes", "--server", srv); err == nil || !strings.Contains(out, "VolumeInUse") {
		t.Fatalf("shrink while attached: %v %s", err, out)
	}
	cl.Close()
	waitDetached := time.Now().Add(10 * time.Second)
	for {
		out, err := strataCLI(t, "snapshot", "restore", "db", "s1", "--yes", "--server", srv)
		if err == nil {
			break
		}
		if time.Now().After(waitDetached) {
			t.Fatalf("restore: %v %s", err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	restored := filepath.Join(dir, "restored")
	runTool(t, nbdcopy, "nbd://"+nbdAddr+"/db", restored)
	got, _ := os.ReadFile(restored)
	if !bytes.Equal(got[:seqBlocks*4096], img[:seqBlocks*4096]) {
		t.Fatal("restored volume differs from the snapshot")
	}

	// Grow online: data stays, the new size shows.
	cli("volume", "resize", "db", "128MiB")
	if out := runTool(t, nbdinfo, "nbd://"+nbdAddr+"/db"); !strings.Contains(out, "export-size: 134217728") {
		t.Fatalf("size after resize: %s", out)
	}
	if out, err := strataCLI(t, "volume", "resize", "db", "32MiB", "--server", srv); err == nil || !strings.Contains(out, "InvalidArgument") {
		t.Fatalf("shrink: %v %s", err, out)
	}
	runTool(t, qemuIO, "-f", "raw", "-c", "write -P 0x42 127M 1M", "-c", "read -P 0x42 127M 1M", "nbd://"+nbdAddr+"/db")
	grown := filepath.Join(dir, "grown")
	runTool(t, nbdcopy, "nbd://"+nbdAddr+"/db", grown)
	got, _ = os.ReadFile(grown)
	if len(got) != 128<<20 || !bytes.Equal(got[:seqBlocks*4096], img[:seqBlocks*4096]) {
		t.Fatal("data lost by the resize")
	}
	cli("snapshot", "delete", "db", "s1")
	if out := cli("snapshot", "list", "db"); strings.Contains(out, "s1") {
		t.Fatalf("deleted snapshot listed: %s", out)
	}
	cli("volume", "delete", "db-copy", "--yes")
	cli("volume", "delete", "db", "--yes")
	if out := runTool(t, nbdinfo, "--list", "nbd://"+nbdAddr); strings.Contains(out, "db") {
		t.Fatalf("deleted volumes still exported: %s", out)
	}
	if entries, _ := os.ReadDir(filepath.Join(dataDir, "volumes")); len(entries) != 0 {
		t.Fatalf("replica files left: %v", entries)
	}
}
