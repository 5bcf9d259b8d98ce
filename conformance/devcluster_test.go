package conformance

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// freePortRange finds base such that base-10 … base+10*n+2 are all free.
func freePortRange(t *testing.T, n int) int {
	t.Helper()
	for try := 0; try < 50; try++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		base := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if base < 20000 || base+10*n+3 > 65535 {
			continue
		}
		ok := true
		for p := base - 10; p < base+10*n && ok; p++ {
			if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p)); err != nil {
				ok = false
			} else {
				l.Close()
			}
		}
		if ok {
			return base
		}
	}
	t.Fatal("no free port range")
	return 0
}

// processWithArg finds the process that has arg on its command line.
func processWithArg(t *testing.T, arg string) int {
	t.Helper()
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(b, []byte("\x00"+arg+"\x00")) {
			return pid
		}
	}
	t.Fatalf("no process with %s on its command line", arg)
	return 0
}

// `strata dev cluster` starts etcd and the nodes, reports readiness, keeps
// going when a node dies, and stops everything on SIGINT.
func TestDevClusterLauncher(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("etcd"); err != nil {
		if os.Getenv("STRATA_REQUIRE_TOOLS") == "1" {
			t.Fatal("etcd not installed (apt-get install etcd-server); STRATA_REQUIRE_TOOLS=1 requires it")
		}
		t.Skip("etcd not installed (apt-get install etcd-server)")
	}
	base := freePortRange(t, 3)
	dir := t.TempDir()
	cmd := exec.Command(strataBinary(t), "dev", "cluster", "--nodes", "3", "--zones", "3", "--ec", "2+1", "--dir", dir, "--base-port", fmt.Sprint(base))
	cmd.Env = append(os.Environ(), "STRATA_ROOT_USER="+testUser, "STRATA_ROOT_PASSWORD="+testSecret)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	waitLine := func(substr string) {
		t.Helper()
		timeout := time.After(90 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("dev cluster ended before %q", substr)
				}
				if strings.Contains(l, substr) {
					return
				}
			case <-timeout:
				t.Fatalf("no %q from dev cluster", substr)
			}
		}
	}
	waitLine("ready")
	admin := fmt.Sprintf("http://127.0.0.1:%d", base+1)
	list := mustCLI(t, "node", "list", "--server", admin)
	if strings.Count(list, " up ") != 3 || !strings.Contains(list, "zone3") {
		t.Fatalf("node list:\n%s", list)
	}
	// A node killed under the launcher is reported; the others go on.
	pid := processWithArg(t, filepath.Join(dir, "node3"))
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitLine("node3 exited")
	mustCLI(t, "node", "list", "--server", admin)
	cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("dev cluster on SIGINT: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("dev cluster did not stop on SIGINT")
	}
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", base), time.Second); err == nil {
		c.Close()
		t.Fatal("a node still serves S3 after the launcher stopped")
	}
}
