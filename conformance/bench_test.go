package conformance

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/klauspost/reedsolomon"
	"golang.org/x/sys/unix"
)

// The PUT and GET paths through HTTP, signed with UNSIGNED-PAYLOAD so the
// client spends nothing hashing and the figures are the server's. Run:
//
//	go test -run XXX -bench . -benchtime 3s ./conformance/
//
// The Baseline benchmarks measure the limits on this machine in the same
// run: writing+fdatasync to the disk under the test's temp dir, and the
// Reed-Solomon 2+2 encoder.

type benchClient struct {
	base   string
	signer *v4.Signer
	creds  aws.Credentials
	hc     *http.Client
}

func newBenchClient(s *server) *benchClient {
	return &benchClient{base: "http://" + s.s3, signer: v4.NewSigner(), creds: aws.Credentials{AccessKeyID: testUser, SecretAccessKey: testSecret},
		hc: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
}

// benchClientFor signs as root, or with STRATA_BENCH_USER=1 as a user
// (created through the CLI), so the two paths compare in one sitting.
func benchClientFor(b *testing.B, s *server) *benchClient {
	creds := aws.Credentials{AccessKeyID: testUser, SecretAccessKey: testSecret}
	if os.Getenv("STRATA_BENCH_USER") == "1" {
		run := func(args ...string) []byte {
			cmd := exec.Command(strataBinary(b), append(args, "--server", "http://"+s.admin)...)
			cmd.Env = append(os.Environ(), "STRATA_ROOT_USER="+testUser, "STRATA_ROOT_PASSWORD="+testSecret)
			out, err := cmd.Output()
			if err != nil {
				b.Fatalf("strata %v: %v", args, err)
			}
			return out
		}
		run("user", "create", "bench")
		var k struct {
			AccessKey string `json:"access_key"`
			SecretKey string `json:"secret_key"`
		}
		if err := json.Unmarshal(run("key", "create", "bench", "-o", "json"), &k); err != nil {
			b.Fatal(err)
		}
		creds = aws.Credentials{AccessKeyID: k.AccessKey, SecretAccessKey: k.SecretKey}
	}
	return &benchClient{base: "http://" + s.s3, signer: v4.NewSigner(), creds: creds,
		hc: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
}

func (c *benchClient) do(method, path string, body []byte) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, _ := http.NewRequest(method, c.base+path, rd)
	req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	if err := c.signer.SignHTTP(context.Background(), c.creds, req, "UNSIGNED-PAYLOAD", "s3", "us-east-1", time.Now()); err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return nil, fmt.Errorf("%s %s: %s %s", method, path, resp.Status, b)
	}
	return resp, nil
}

func benchSizes() []int { return []int{4 << 10, 1 << 20} }

// benchTarget is the one-process node, or with STRATA_BENCH_CLUSTER=1 the
// first gateway of a 6-node EC 4+2 cluster of separate processes (etcd
// needed), so the two are compared in one run.
func benchTarget(b *testing.B) *server {
	if os.Getenv("STRATA_BENCH_CLUSTER") == "1" {
		c := startCluster(b, 6, 3, "4+2")
		return &server{s3: c.nodes[0].s3, admin: c.nodes[0].admin}
	}
	return startNode(b, b.TempDir())
}

func BenchmarkPut(b *testing.B) {
	srv := benchTarget(b)
	c := benchClientFor(b, srv)
	if _, err := c.do("PUT", "/bench", nil); err != nil {
		b.Fatal(err)
	}
	for _, size := range benchSizes() {
		data := make([]byte, size)
		rand.Read(data)
		for _, par := range []int{1, 8} {
			b.Run(fmt.Sprintf("size=%d/clients=%d", size, par), func(b *testing.B) {
				b.SetBytes(int64(size))
				var n atomic.Int64
				b.SetParallelism(par) // par goroutines per GOMAXPROCS
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						resp, err := c.do("PUT", fmt.Sprintf("/bench/%d-%d", size, n.Add(1)%1000), data)
						if err != nil {
							b.Error(err)
							return
						}
						resp.Body.Close()
					}
				})
			})
		}
	}
}

func BenchmarkGet(b *testing.B) {
	srv := benchTarget(b)
	c := benchClientFor(b, srv)
	if _, err := c.do("PUT", "/bench", nil); err != nil {
		b.Fatal(err)
	}
	for _, size := range benchSizes() {
		data := make([]byte, size)
		rand.Read(data)
		for i := 0; i < 100; i++ {
			resp, err := c.do("PUT", fmt.Sprintf("/bench/%d-%d", size, i), data)
			if err != nil {
				b.Fatal(err)
			}
			resp.Body.Close()
		}
		for _, par := range []int{1, 8} {
			b.Run(fmt.Sprintf("size=%d/clients=%d", size, par), func(b *testing.B) {
				b.SetBytes(int64(size))
				var n atomic.Int64
				b.SetParallelism(par)
				b.RunParallel(func(pb *testing.PB) {
					buf := make([]byte, 64<<10)
					for pb.Next() {
						resp, err := c.do("GET", fmt.Sprintf("/bench/%d-%d", size, n.Add(1)%100), nil)
						if err != nil {
							b.Error(err)
							return
						}
						got, _ := io.CopyBuffer(io.Discard, resp.Body, buf)
						resp.Body.Close()
						if got != int64(size) {
							b.Errorf("got %d bytes", got)
							return
						}
					}
				})
			})
		}
	}
}

// BenchmarkBaselineDiskWrite: what one 1 MiB (or 4 KiB) write plus
// fdatasync costs on the disk under the temp dir. A 2+2 PUT writes 2x the
// object size, in 4 files.
func BenchmarkBaselineDiskWrite(b *testing.B) {
	for _, size := range benchSizes() {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			f, err := os.Create(filepath.Join(b.TempDir(), "raw"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			data := make([]byte, size)
			rand.Read(data)
			b.SetBytes(int64(size))
			var off int64
			for i := 0; i < b.N; i++ {
				if _, err := f.WriteAt(data, off); err != nil {
					b.Fatal(err)
				}
				off += int64(size)
				if err := unix.Fdatasync(int(f.Fd())); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkBaselineRSEncode: the Reed-Solomon 2+2 encoder on 1 MiB blocks.
func BenchmarkBaselineRSEncode(b *testing.B) {
	enc, _ := reedsolomon.New(2, 2)
	shards := make([][]byte, 4)
	for i := range shards {
		shards[i] = make([]byte, 512<<10)
		rand.Read(shards[i])
	}
	b.SetBytes(1 << 20)
	for i := 0; i < b.N; i++ {
		if err := enc.Encode(shards); err != nil {
			b.Fatal(err)
		}
	}
}
