package conformance

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-storage/strata/blockpool/volumes"
)

// qemuSession is one qemu-io process attached to an NBD export, fed one
// command at a time: the client stays attached across whatever the test
// does between commands (a node's death).
type qemuSession struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

func startQemuIO(t *testing.T, url string) *qemuSession {
	t.Helper()
	cmd := exec.Command(requireTool(t, "qemu-io"), "-f", "raw", url)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &qemuSession{cmd: cmd, in: in, out: bufio.NewReader(out)}
	t.Cleanup(s.close)
	return s
}

// do runs one command and returns its report: the line with qemu-io's
// rate ("... ops; ...") when it succeeded, the error line when not.
func (s *qemuSession) do(t *testing.T, command string) (string, bool) {
	t.Helper()
	if _, err := fmt.Fprintln(s.in, command); err != nil {
		t.Fatalf("qemu-io %q: %v", command, err)
	}
	var lines []string
	for {
		line, err := s.out.ReadString('\n')
		if err != nil {
			t.Fatalf("qemu-io %q: %v after %q", command, err, lines)
		}
		line = strings.TrimSpace(strings.TrimPrefix(line, "qemu-io> "))
		lines = append(lines, line)
		switch {
		case strings.Contains(line, " ops; "):
			return strings.Join(lines, "; "), true
		case strings.Contains(line, "failed") || strings.Contains(line, "mismatch") || strings.Contains(line, "error"):
			return strings.Join(lines, "; "), false
		}
	}
}

func (s *qemuSession) close() {
	if s.in != nil {
		s.in.Close()
		s.in = nil
		done := make(chan struct{})
		go func() { s.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			s.cmd.Process.Kill()
			<-done
		}
	}
}

// Issue 19: a 2-replica volume in a cluster of three gets a diskless
// tie-breaker on the third node, so a client keeps writing while either
// replica's node is down (DRBD's quorum tie-breaker); where none can be
// placed, the create says what that costs.
func TestTwoReplicasAndATieBreakerWriteOnThroughANodesDeath(t *testing.T) {
	t.Parallel()
	requireTool(t, "etcd", "etcd")
	requireTool(t, "qemu-io")
	c := startCluster(t, 3, 3, "2+1")
	out := c.cli(t, c.nodes[0], "volume", "create", "two", "64MiB", "--replicas", "2", "--nodes", "node1,node2")
	if strings.Contains(out, "warning") {
		t.Fatalf("a 2-replica volume with a third node to break ties: %s", out)
	}
	v := c.waitVolume(t, c.nodes[0], "two", time.Minute, allUpToDate)
	if v.TieBreaker != "node3" || len(v.Replicas) != 3 || !v.Replicas[2].Diskless || len(v.Warnings) != 0 {
		t.Fatalf("the volume's layout: %+v", v)
	}
	// The tie-breaker is a state file, nothing more.
	entries, err := os.ReadDir(filepath.Join(c.nodes[2].dir, "volumes", "two"))
	if err != nil || len(entries) != 1 || entries[0].Name() != "state.json" {
		t.Fatalf("node3's copy of the volume: %v %v", entries, err)
	}

	q := startQemuIO(t, "nbd://"+c.nodes[0].nbd+"/two")
	killed := make(chan struct{})
	for i := range 48 {
		if i == 16 {
			// node2 dies while the writes go on, not between two of them.
			go func() { c.kill(c.nodes[1]); close(killed) }()
		}
		if rep, ok := q.do(t, fmt.Sprintf("write -P 0x%02x %dM 1M", i+1, i)); !ok {
			t.Fatalf("write %d (node2 killed at write 16): %s", i, rep)
		}
	}
	<-killed
	v = c.waitVolume(t, c.nodes[2], "two", 30*time.Second, func(v volumes.VolumeInfo) bool {
		s := states(v)
		return s["node1"] == "UpToDate" && s["node2"] != "UpToDate" && s["node3"] == "UpToDate"
	})
	t.Logf("with node2 dead: %v", states(v))
	// Reads come from node1, verified.
	for i := range 48 {
		if rep, ok := q.do(t, fmt.Sprintf("read -P 0x%02x %dM 1M", i+1, i)); !ok {
			t.Fatalf("read %d with node2 dead: %s", i, rep)
		}
	}

	// With node2 down a new 2-replica volume can have no tie-breaker:
	// the create warns.
	if out := c.cli(t, c.nodes[0], "volume", "create", "lonely", "16MiB", "--replicas", "2", "--nodes", "node1,node3"); !strings.Contains(out, "warning: volume lonely: 2 replicas and no tie-breaker") {
		t.Fatalf("a 2-replica volume with no third node up: %s", out)
	}

	// node2 returns and is resynced while the client stays attached.
	c.launch(t, c.nodes[1])
	c.waitUp(t, c.nodes[1])
	c.waitVolume(t, c.nodes[0], "two", 2*time.Minute, allUpToDate)
	q.close()
	// node2's copy holds every write: its file equals node1's, and a
	// primary on node2 reads its own replica first.
	sameReplicas(t, "two", 64<<20, c.nodes[0], c.nodes[1])
	if out := runTool(t, requireTool(t, "qemu-io"), "-f", "raw", "-c", "read -P 0x11 16M 1M", "-c", "read -P 0x30 47M 1M", "nbd://"+c.nodes[1].nbd+"/two"); strings.Contains(out, "failed") || strings.Contains(out, "mismatch") {
		t.Fatalf("reading through node2 after its return: %s", out)
	}
}
