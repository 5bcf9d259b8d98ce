package bench

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// server is the strata server the harness starts and measures.
type server struct {
	cmd      *exec.Cmd
	s3, adm  string
	stderr   *strings.Builder
	exited   chan struct{}
	clockTck float64
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// startServer runs `binary server` on dir with root credentials and
// waits until its admin listener says it is ready.
func startServer(ctx context.Context, binary, dir, ec string, pools int, user, secret string, extra []string) (*server, error) {
	s, err := launch(binary, dir, ec, pools, user, secret, extra)
	if err != nil {
		return nil, err
	}
	ready := func() bool {
		resp, err := http.Get("http://" + s.adm + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	if err := s.waitFor(ctx, ready); err != nil {
		return nil, err
	}
	return s, nil
}

// launch starts the server process without waiting for it.
func launch(binary, dir, ec string, pools int, user, secret string, extra []string) (*server, error) {
	s3, err := freeAddr()
	if err != nil {
		return nil, err
	}
	adm, err := freeAddr()
	if err != nil {
		return nil, err
	}
	args := append([]string{"server", "--data-dir", dir, "--s3-addr", s3, "--admin-addr", adm, "--nbd-addr", "off",
		"--ec", ec, "--pools", strconv.Itoa(pools), "--log-level", "warn", "--scrub-rate", "off"}, extra...)
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "STRATA_ROOT_USER="+user, "STRATA_ROOT_PASSWORD="+secret)
	s := &server{cmd: cmd, s3: s3, adm: adm, stderr: &strings.Builder{}, exited: make(chan struct{}), clockTck: 100}
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() { cmd.Wait(); close(s.exited) }()
	return s, nil
}

// waitFor polls ready every 20 ms for up to ten minutes; the server is
// stopped if it never gets there.
func (s *server) waitFor(ctx context.Context, ready func() bool) error {
	deadline := time.Now().Add(10 * time.Minute)
	for !ready() {
		select {
		case <-s.exited:
			return fmt.Errorf("strata server exited: %s", s.stderr.String())
		case <-ctx.Done():
			s.stop()
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop()
			return fmt.Errorf("strata server not ready within ten minutes: %s", s.stderr.String())
		}
	}
	return nil
}

// cpuSeconds is the server's user+system CPU time so far.
func (s *server) cpuSeconds() float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces) in parens.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / s.clockTck
}

// peakRSS is the server's resident high-water mark, bytes.
func (s *server) peakRSS() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// stop ends the server (SIGTERM: it flushes and writes a profile if
// asked to), killing it after 30 s.
func (s *server) stop() {
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
	}
}
