package conformance

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/strata-storage/strata/node"
	"github.com/strata-storage/strata/users"
)

const (
	testUser   = "conformance-root"
	testSecret = "conformance-secret-key"
)

// server is a running Strata under test.
type server struct {
	s3, admin string
	dataDir   string
	node      *node.Node // in-process only
}

// startNode starts an in-process node on free 127.0.0.1 ports.
func startNode(t testing.TB, dataDir string) *server {
	t.Helper()
	return startNodeWith(t, dataDir, nil)
}

// startNodeWith is startNode with edit applied to the configuration.
func startNodeWith(t testing.TB, dataDir string, edit func(*node.Config)) *server {
	t.Helper()
	cfg := node.DefaultConfig()
	cfg.DataDir, cfg.S3Addr, cfg.AdminAddr, cfg.NBDAddr = dataDir, "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.ChunkVolume = 64 << 30
	cfg.Root = users.Credentials{AccessKey: testUser, SecretKey: testSecret}
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if edit != nil {
		edit(&cfg)
	}
	n, err := node.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		n.Close(ctx)
	})
	return &server{s3: n.S3Addr(), admin: n.AdminAddr(), dataDir: dataDir, node: n}
}

func minioClient(t testing.TB, s *server, secret string) *minio.Client {
	t.Helper()
	c, err := minio.New(s.s3, &minio.Options{Creds: miniocreds.NewStaticV4(testUser, secret, ""), Secure: false, Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func awsClient(s *server, secret string, pathStyle bool) *s3.Client {
	return s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String("http://" + s.s3),
		Credentials:  awscreds.NewStaticCredentialsProvider(testUser, secret, ""),
		UsePathStyle: pathStyle,
	})
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// strataBinary builds cmd/strata once per test run.
func strataBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "strata-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "strata")
		out, err := exec.Command("go", "build", "-o", binPath, "../cmd/strata").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// process is a strata binary running as a child process.
type process struct {
	cmd    *exec.Cmd
	stderr *strings.Builder
	mu     *sync.Mutex
}

// startBinary runs `strata server` on dataDir with the given ports and
// waits until it answers /healthz.
func startBinary(t testing.TB, dataDir, s3Addr, adminAddr string, extra ...string) *process {
	t.Helper()
	args := append([]string{"server", "--data-dir", dataDir, "--s3-addr", s3Addr, "--admin-addr", adminAddr, "--chunk-volume-size", "64GiB", "--nbd-addr", "127.0.0.1:0"}, extra...)
	cmd := exec.Command(strataBinary(t), args...)
	cmd.Env = append(os.Environ(), "STRATA_ROOT_USER="+testUser, "STRATA_ROOT_PASSWORD="+testSecret)
	p := &process{cmd: cmd, stderr: &strings.Builder{}, mu: &sync.Mutex{}}
	cmd.Stderr = lockedWriter{p.stderr, p.mu}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.kill() })
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + adminAddr + "/healthz")
		if err == nil {
			resp.Body.Close()
			return p
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.kill()
	t.Fatalf("strata did not start: %s", p.log())
	return nil
}

func (p *process) kill() {
	if p.cmd.ProcessState == nil {
		p.cmd.Process.Kill()
		p.cmd.Wait()
	}
}

func (p *process) stop(t testing.TB) {
	p.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		p.kill()
		t.Fatal("strata did not stop on SIGINT")
	}
}

func (p *process) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// freeAddr returns a 127.0.0.1 address nobody listens on right now. The
// port is drawn below the kernel's ephemeral range (32768 and up), so that
// the many listeners the tests open on port 0, and outgoing connections,
// cannot take it between now and the moment a process binds it; another
// test drawing the same port is the only clash left, and unlikely.
// Ports handed out are never handed out again in this process (a port
// given to a process that has not bound it yet is free to Listen).
var handedOut sync.Map

func freeAddr(t testing.TB) string {
	t.Helper()
	for range 100 {
		addr := fmt.Sprintf("127.0.0.1:%d", 20000+rand.IntN(12000))
		if _, taken := handedOut.LoadOrStore(addr, true); taken {
			continue
		}
		if l, err := net.Listen("tcp", addr); err == nil {
			l.Close()
			return addr
		}
	}
	t.Fatal("no free port below the ephemeral range")
	return ""
}

// requireTool finds an outside program, skipping (or failing when
// STRATA_REQUIRE_TOOLS=1) if it is missing.
func requireTool(t testing.TB, name string, candidates ...string) string {
	t.Helper()
	for _, c := range append(candidates, name) {
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	msg := fmt.Sprintf("%s not installed (apt-get install %s)", name, name)
	if os.Getenv("STRATA_REQUIRE_TOOLS") == "1" {
		t.Fatal(msg + "; STRATA_REQUIRE_TOOLS=1 requires it")
	}
	t.Skip(msg)
	return ""
}
