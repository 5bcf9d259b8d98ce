package conformance

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/strata-storage/strata/blockpool/volumes"
	"github.com/strata-storage/strata/cluster"
)

// Issue 19: volume calls that must run where the volume is primary work
// when sent to any node: the node that gets one forwards it to the
// primary's node and answers with its answer.
func TestVolumeCallsFromAnyNode(t *testing.T) {
	t.Parallel()
	requireTool(t, "etcd", "etcd")
	c := startCluster(t, 3, 3, "2+1")
	c.cli(t, c.nodes[0], "volume", "create", "vol", "16MiB", "--replicas", "3")
	c.waitVolume(t, c.nodes[0], "vol", time.Minute, allUpToDate)
	c.cli(t, c.nodes[0], "volume", "primary", "vol") // held on node1, as an attached client would
	other := c.nodes[1]

	qemuIO := requireTool(t, "qemu-io")
	c.cli(t, other, "volume", "resize", "vol", "32MiB") // checked below, from a third node
	runTool(t, qemuIO, "-f", "raw", "-c", "write -P 0x11 0 1M", "nbd://"+c.nodes[0].nbd+"/vol")
	c.cli(t, other, "snapshot", "create", "vol", "s1")
	runTool(t, qemuIO, "-f", "raw", "-c", "write -P 0x22 0 1M", "nbd://"+c.nodes[0].nbd+"/vol")
	var list []volumes.VolumeInfo
	json.Unmarshal([]byte(c.cli(t, c.nodes[2], "volume", "list", "vol", "-o", "json")), &list)
	if len(list) != 1 || list[0].Size != 32<<20 || list[0].Primary != "node1" {
		t.Fatalf("after a resize sent to node2: %+v", list)
	}
	var snaps []volumes.Snapshot
	json.Unmarshal([]byte(c.cli(t, c.nodes[2], "snapshot", "list", "vol", "-o", "json")), &snaps)
	if len(snaps) != 1 || snaps[0].Name != "s1" || snaps[0].Size != 32<<20 || len(snaps[0].Nodes) != 3 {
		t.Fatalf("after a snapshot sent to node2: %+v", snaps)
	}
	// A restore needs the volume free of clients; once node1 lets go it
	// runs on whichever node gets it.
	if out, err := strataCLI(t, "snapshot", "restore", "vol", "s1", "--yes", "--server", "http://"+other.admin); err == nil || !strings.Contains(out, "VolumeInUse") {
		t.Fatalf("a restore while node1 holds the volume: %v\n%s", err, out)
	}
	c.cli(t, c.nodes[0], "volume", "secondary", "vol")
	c.cli(t, other, "snapshot", "restore", "vol", "s1", "--yes")
	if out := runTool(t, qemuIO, "-f", "raw", "-c", "read -P 0x11 0 1M", "nbd://"+c.nodes[2].nbd+"/vol"); strings.Contains(out, "failed") || strings.Contains(out, "mismatch") {
		t.Fatalf("after the restore: %s", out)
	}
	// A snapshot older than a grow shrinks the volume back only when
	// allowed; otherwise the refusal says why, not a 500.
	c.cli(t, other, "volume", "resize", "vol", "48MiB")
	runTool(t, qemuIO, "-f", "raw", "-c", "write -P 0x33 0 1M", "-c", "write -P 0x44 40M 1M", "nbd://"+c.nodes[2].nbd+"/vol")
	if out, err := strataCLI(t, "snapshot", "restore", "vol", "s1", "--yes", "--server", "http://"+other.admin); err == nil || !strings.Contains(out, "InvalidArgument") || !strings.Contains(out, "allow-shrink") {
		t.Fatalf("a restore after a grow: %v\n%s", err, out)
	}
	eventually(t, 15*time.Second, "the restore that shrinks (once qemu-io's attachment is gone)", func() string {
		out, err := strataCLI(t, "snapshot", "restore", "vol", "s1", "--allow-shrink", "--yes", "--server", "http://"+other.admin)
		if err != nil {
			return out
		}
		return ""
	})
	json.Unmarshal([]byte(c.cli(t, c.nodes[2], "volume", "list", "vol", "-o", "json")), &list)
	if len(list) != 1 || list[0].Size != 32<<20 {
		t.Fatalf("after a restore that shrank the volume back: %+v", list)
	}
	if out := runTool(t, qemuIO, "-f", "raw", "-c", "read -P 0x11 0 1M", "nbd://"+c.nodes[1].nbd+"/vol"); strings.Contains(out, "failed") || strings.Contains(out, "mismatch") {
		t.Fatalf("after the restore that shrank it: %s", out)
	}
	// A shrink is refused unless allowed, like the restore.
	if out, err := strataCLI(t, "volume", "resize", "vol", "16MiB", "--server", "http://"+other.admin); err == nil || !strings.Contains(out, "allow-shrink") {
		t.Fatalf("a shrink without --allow-shrink: %v\n%s", err, out)
	}
	c.cli(t, other, "volume", "resize", "vol", "16MiB", "--allow-shrink", "--yes")
	json.Unmarshal([]byte(c.cli(t, c.nodes[0], "volume", "list", "vol", "-o", "json")), &list)
	if len(list) != 1 || list[0].Size != 16<<20 {
		t.Fatalf("after a shrink: %+v", list)
	}
	// The snapshot still reads as it was taken: a clone of it holds the
	// first write, at its size.
	// A 2-replica volume gets a tie-breaker on the third node, made by
	// whichever node got the create (tiebreaker_test.go shows what it is
	// for, and the warning where none can be placed).
	if out := c.cli(t, other, "volume", "create", "two", "16MiB", "--replicas", "2"); strings.Contains(out, "warning") {
		t.Fatalf("a 2-replica volume's create in a cluster of three: %s", out)
	}
	json.Unmarshal([]byte(c.cli(t, c.nodes[0], "volume", "list", "two", "-o", "json")), &list)
	if len(list) != 1 || len(list[0].Warnings) != 0 || list[0].TieBreaker == "" || len(list[0].Replicas) != 3 {
		t.Fatalf("a 2-replica volume's layout: %+v", list)
	}
	c.cli(t, other, "volume", "clone", "vol", "copy", "--snapshot", "s1")
	if out := runTool(t, qemuIO, "-f", "raw", "-c", "read -P 0x11 0 1M", "-c", "read -P 0 31M 1M", "nbd://"+c.nodes[0].nbd+"/copy"); strings.Contains(out, "failed") || strings.Contains(out, "mismatch") {
		t.Fatalf("a clone of the snapshot after the shrink: %s", out)
	}
}

// Issue 19: `strata node remove` takes a drained node that is down out of
// the cluster, and refuses one that is up or still holds data.
func TestNodeRemove(t *testing.T) {
	t.Parallel()
	requireTool(t, "etcd", "etcd")
	c := startCluster(t, 4, 4, "2+1")
	if err := c.nodes[0].mc.MakeBucket(context.Background(), "kept", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	putObjects(t, c.nodes[0].mc, "kept", 20)
	gone := c.nodes[3]
	if out, err := strataCLI(t, "node", "remove", "node4", "--yes", "--server", "http://"+c.nodes[0].admin); err == nil || !strings.Contains(out, "NodeUp") {
		t.Fatalf("removing a node that is up: %v\n%s", err, out)
	}
	c.cli(t, c.nodes[0], "node", "drain", "node4", "--wait")
	c.kill(gone)
	eventually(t, 30*time.Second, "node4 seen down", func() string {
		var nodes []cluster.NodeInfo
		out := c.cli(t, c.nodes[0], "node", "list", "-o", "json")
		json.Unmarshal([]byte(out), &nodes)
		for _, n := range nodes {
			if n.Name == "node4" && n.State != "up" {
				return ""
			}
		}
		return out
	})
	out := c.cli(t, c.nodes[1], "node", "remove", "node4", "--yes")
	if !strings.Contains(out, "node node4 removed; devices disk0 left the ring") {
		t.Fatalf("node remove: %s", out)
	}
	if list := c.cli(t, c.nodes[0], "node", "list"); strings.Contains(list, "node4") {
		t.Fatalf("node list after the removal:\n%s", list)
	}
	if ring := c.cli(t, c.nodes[0], "ring", "show"); strings.Contains(ring, "node4") {
		t.Fatalf("ring after the removal:\n%s", ring)
	}
	if out := c.cli(t, c.nodes[0], "cluster", "verify"); !strings.Contains(out, "objects 20, missing 0, extra 0, unreadable 0") {
		t.Fatalf("verify after the removal: %s", out)
	}
	if out, err := strataCLI(t, "node", "remove", "node4", "--yes", "--server", "http://"+c.nodes[0].admin); err == nil || !strings.Contains(out, "NoSuchNode") {
		t.Fatalf("removing it again: %v\n%s", err, out)
	}
}
