package conformance

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/strata-storage/strata/blockpool/volumes"
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

	out := c.cli(t, other, "volume", "resize", "vol", "32MiB")
	if !strings.Contains(out, "32.0 MiB") && !strings.Contains(out, "33554432") {
		t.Logf("resize output: %s", out)
	}
	c.cli(t, other, "snapshot", "create", "vol", "s1")
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
	// A snapshot older than a grow is refused with the reason, not a 500.
	c.cli(t, other, "volume", "resize", "vol", "48MiB")
	if out, err := strataCLI(t, "snapshot", "restore", "vol", "s1", "--yes", "--server", "http://"+other.admin); err == nil || !strings.Contains(out, "InvalidArgument") || !strings.Contains(out, "clone the snapshot") {
		t.Fatalf("a restore after a grow: %v\n%s", err, out)
	}
}
