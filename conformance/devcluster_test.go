package conformance

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"
)

// freePortRange finds base such that base-10 … base+10*n+2 are all free.
// The range is drawn below the kernel's ephemeral ports: the suite's other
// servers listen on port 0 and its clients dial out from that range, and
// either could take a port between this check and the dev cluster's bind
// (it did once: the cluster exited before it was ready).
func freePortRange(t *testing.T, n int) int {
	t.Helper()
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil {
				low = v
			}
		}
	}
	span := 10*n + 13
	if low-span <= 20010 {
		t.Skip("the ephemeral port range leaves no room for a dev cluster's fixed ports")
	}
	portRanges.Lock()
	defer portRanges.Unlock()
	for try := 0; try < 200; try++ {
		base := 20010 + mrand.IntN(low-span-20010)
		ok := true
		for _, taken := range portRanges.bases {
			if base < taken+span && taken < base+span {
				ok = false
			}
		}
		for p := base - 10; p < base+10*n+3 && ok; p++ {
			if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p)); err != nil {
				ok = false
			} else {
				l.Close()
			}
		}
		if ok {
			portRanges.bases = append(portRanges.bases, base)
			return base
		}
	}
	t.Fatal("no free port range")
	return 0
}

// portRanges keeps parallel tests' dev clusters apart.
var portRanges struct {
	sync.Mutex
	bases []int
}

// devLogs is the tail of every log a dev cluster under dir wrote, for a
// failure's message.
func devLogs(dir string) string {
	var b strings.Builder
	logs, _ := filepath.Glob(filepath.Join(dir, "*", "log"))
	logs = append(logs, filepath.Join(dir, "etcd.log"))
	for _, l := range logs {
		data, err := os.ReadFile(l)
		if err != nil {
			continue
		}
		if len(data) > 2000 {
			data = data[len(data)-2000:]
		}
		fmt.Fprintf(&b, "--- %s:\n%s\n", l, data)
	}
	return b.String()
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
	cmd := exec.Command(strataBinary(t), "dev", "cluster", "--nodes", "3", "--zones", "3", "--ec", "2+1", "--disks", "1", "--dir", dir, "--base-port", fmt.Sprint(base))
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
	// A drill that could not rebuild the zone (two devices would be left
	// for three shards) refuses before it halts anything.
	if out, err := strataCLI(t, "drill", "rack-failure", "zone3", "--yes", "--server", admin); err == nil || !strings.Contains(out, "cannot be failed here") || !strings.Contains(out, "nothing was stopped") {
		t.Fatalf("a drill that cannot finish: %v\n%s", err, out)
	}
	if list := mustCLI(t, "node", "list", "--server", admin); strings.Count(list, " up ") != 3 {
		t.Fatalf("node list after the refused drill:\n%s", list)
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

// readmeLine is the README's command line that starts with prefix (in an
// indented block), its comment cut off, as arguments after "strata".
func readmeLine(t *testing.T, prefix string) []string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, prefix) {
			l, _, _ = strings.Cut(l, "#")
			return strings.Fields(l)[1:]
		}
	}
	t.Fatalf("the README has no line %q", prefix)
	return nil
}

// Issue 19: the README's rack-failure drill, as printed, on the README's
// own dev cluster (only its directory and ports moved into the test's).
func TestREADMEDrillOnTheDevCluster(t *testing.T) {
	t.Parallel()
	requireTool(t, "etcd", "etcd")
	devArgs := readmeLine(t, "strata dev cluster --nodes 6")
	drillArgs := readmeLine(t, "strata drill rack-failure zone3")
	base := freePortRange(t, 6)
	dir := t.TempDir()
	for i, a := range devArgs {
		if a == "--dir" {
			devArgs[i+1] = dir
		}
	}
	devArgs = append(devArgs, "--base-port", fmt.Sprint(base))
	cmd := exec.Command(strataBinary(t), devArgs...)
	// The launcher generates the credentials and the secret, as for a
	// reader who set none.
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "STRATA_") {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGINT)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	var export string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if l := sc.Text(); strings.HasPrefix(l, "for the strata command: export ") {
			export = strings.TrimPrefix(l, "for the strata command: export ")
		} else if l == "ready; Ctrl-C stops the cluster" {
			break
		}
	}
	if export == "" {
		cmd.Wait()
		t.Fatalf("the dev cluster printed no export line; its stderr:\n%s\n%s", stderr.String(), devLogs(dir))
	}
	go io.Copy(io.Discard, out)
	cliEnv := append(append([]string{}, env...), strings.Fields(export)...)
	cliEnv = append(cliEnv, "STRATA_CLI_CONFIG="+filepath.Join(t.TempDir(), "none.json"))
	var user, secret string
	for _, kv := range strings.Fields(export) {
		if v, ok := strings.CutPrefix(kv, "STRATA_ROOT_USER="); ok {
			user = v
		}
		if v, ok := strings.CutPrefix(kv, "STRATA_ROOT_PASSWORD="); ok {
			secret = v
		}
	}
	mc, err := minio.New(fmt.Sprintf("127.0.0.1:%d", base), &minio.Options{Creds: miniocreds.NewStaticV4(user, secret, ""), Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := mc.MakeBucket(ctx, "readme", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 40; i++ {
		data := bytes.Repeat([]byte{byte(i)}, 1000+i*997)
		if _, err := mc.PutObject(ctx, "readme", fmt.Sprintf("o%02d", i), bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	drill := exec.Command(strataBinary(t), drillArgs...)
	drill.Env = cliEnv
	report, err := drill.CombinedOutput()
	t.Logf("strata %s:\n%s", strings.Join(drillArgs, " "), report)
	if err != nil {
		t.Fatalf("the README's drill failed: %v", err)
	}
	for _, want := range []string{"objects checked:          40", "unreadable:               0 during the outage, 0 after the rebuild", "full redundancy: true"} {
		if !bytes.Contains(report, []byte(want)) {
			t.Fatalf("the drill's report lacks %q", want)
		}
	}
}
