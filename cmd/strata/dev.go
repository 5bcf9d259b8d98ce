package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

func devCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "dev", Short: "Development helpers"}
	var nodes, zones, basePort, disks int
	var dir, ec, meta, etcdBin string
	c := &cobra.Command{
		Use:   "cluster",
		Short: "Run a local cluster: an etcd and N nodes in Z zones on 127.0.0.1",
		Long: `Start a local cluster for development and tests: an etcd (Debian's
etcd-server, found on PATH, unless --meta names one) and --nodes strata
servers spread round-robin over --zones zones, each with its own data dir
under --dir and its own ports: node i (from 0) serves S3 on base+10*i,
admin on base+10*i+1 and RPC on base+10*i+2. Root credentials and the
cluster secret come from STRATA_ROOT_USER, STRATA_ROOT_PASSWORD and
STRATA_CLUSTER_SECRET, or are generated and printed. A node that exits is
reported and the others keep running; Ctrl-C stops it all.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if nodes < 1 || zones < 1 || zones > nodes {
				return errors.New("want --nodes >= --zones >= 1")
			}
			self, err := os.Executable()
			if err != nil {
				return err
			}
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return err
			}
			env := devEnv()
			type proc struct {
				name string
				cmd  *exec.Cmd
				done chan struct{}
			}
			var procs []*proc
			exited := make(chan string, nodes+1)
			run := func(name string, p *exec.Cmd) {
				pr := &proc{name: name, cmd: p, done: make(chan struct{})}
				procs = append(procs, pr)
				go func() {
					err := p.Wait()
					close(pr.done)
					exited <- fmt.Sprintf("%s exited: %v", name, err)
				}()
			}
			stop := func() {
				for i := len(procs) - 1; i >= 0; i-- {
					procs[i].cmd.Process.Signal(syscall.SIGTERM)
					if i == 0 && len(procs) > 1 && procs[0].name == "etcd" {
						break // etcd last, once the nodes are down
					}
				}
				for _, p := range procs[min(1, len(procs)):] {
					select {
					case <-p.done:
					case <-time.After(30 * time.Second):
						p.cmd.Process.Kill()
						<-p.done
					}
				}
				if len(procs) > 0 {
					procs[0].cmd.Process.Signal(syscall.SIGTERM)
					<-procs[0].done
				}
			}
			defer stop()
			if meta == "" {
				etcdPort := basePort - 10
				p, err := startEtcd(etcdBin, filepath.Join(dir, "etcd"), etcdPort)
				if err != nil {
					return err
				}
				run("etcd", p)
				meta = fmt.Sprintf("etcd://127.0.0.1:%d", etcdPort)
			}
			out := cmd.OutOrStdout()
			for i := 0; i < nodes; i++ {
				port := basePort + 10*i
				name := fmt.Sprintf("node%d", i+1)
				ndir := filepath.Join(dir, name)
				if err := os.MkdirAll(ndir, 0o700); err != nil {
					return err
				}
				log, err := os.OpenFile(filepath.Join(ndir, "log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
				if err != nil {
					return err
				}
				p := exec.Command(self, "server", "--data-dir", ndir, "--node-name", name,
					"--zone", fmt.Sprintf("zone%d", i%zones+1), "--meta", meta, "--ec", ec,
					"--pools", strconv.Itoa(disks), "--cluster-size", strconv.Itoa(nodes),
					"--s3-addr", fmt.Sprintf("127.0.0.1:%d", port), "--admin-addr", fmt.Sprintf("127.0.0.1:%d", port+1),
					"--rpc-addr", fmt.Sprintf("127.0.0.1:%d", port+2), "--nbd-addr", fmt.Sprintf("127.0.0.1:%d", port+3), "--allow-halt")
				p.Env, p.Stdout, p.Stderr = env, log, log
				if err := p.Start(); err != nil {
					log.Close()
					return err
				}
				log.Close()
				run(name, p)
			}
			for i := 0; i < nodes; i++ {
				addr := fmt.Sprintf("127.0.0.1:%d", basePort+10*i+1)
				if err := waitHealthy(addr, 60*time.Second, exited); err != nil {
					return fmt.Errorf("node%d (log in %s): %w", i+1, filepath.Join(dir, fmt.Sprintf("node%d", i+1), "log"), err)
				}
			}
			fmt.Fprintf(out, "cluster of %d nodes in %d zones, EC %s, metadata %s\n", nodes, zones, ec, meta)
			for i := 0; i < nodes; i++ {
				port := basePort + 10*i
				fmt.Fprintf(out, "  node%d  zone%d  S3 http://127.0.0.1:%d  admin http://127.0.0.1:%d  nbd://127.0.0.1:%d\n", i+1, i%zones+1, port, port+1, port+3)
			}
			fmt.Fprintf(out, "root credentials: AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s\ncluster secret: STRATA_CLUSTER_SECRET=%s\n"+
				"for the strata command: export STRATA_SERVER=http://127.0.0.1:%d STRATA_ROOT_USER=%s STRATA_ROOT_PASSWORD=%s\nready; Ctrl-C stops the cluster\n",
				envValue(env, "STRATA_ROOT_USER"), envValue(env, "STRATA_ROOT_PASSWORD"), envValue(env, "STRATA_CLUSTER_SECRET"),
				basePort+1, envValue(env, "STRATA_ROOT_USER"), envValue(env, "STRATA_ROOT_PASSWORD"))
			ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer cancel()
			// A node that dies (or is killed to try failures) is reported;
			// the rest keep running until Ctrl-C.
			for {
				select {
				case <-ctx.Done():
					return nil
				case msg := <-exited:
					fmt.Fprintln(out, msg)
				}
			}
		},
	}
	f := c.Flags()
	f.IntVar(&nodes, "nodes", 6, "nodes to start")
	f.IntVar(&zones, "zones", 3, "zones (racks) to spread them over")
	f.IntVar(&disks, "disks", 2, "file-thin pools (devices) per node (2 lets a failed zone's shards be rebuilt on the others)")
	f.IntVar(&basePort, "base-port", 9100, "first node's S3 port (etcd takes base-10)")
	f.StringVar(&dir, "dir", "strata-dev", "directory for every node's data and log")
	f.StringVar(&ec, "ec", "4+2", "erasure coding layout")
	f.StringVar(&meta, "meta", "", "use this etcd (etcd://host:port) instead of starting one")
	f.StringVar(&etcdBin, "etcd", "etcd", "etcd binary")
	cmd.AddCommand(c)
	return cmd
}

// devEnv passes the credentials and cluster secret on, generating any that
// are not set.
func devEnv() []string {
	env := os.Environ()
	for _, name := range []string{"STRATA_ROOT_USER", "STRATA_ROOT_PASSWORD", "STRATA_CLUSTER_SECRET"} {
		if os.Getenv(name) == "" {
			b := make([]byte, 16)
			rand.Read(b)
			env = append(env, name+"="+hex.EncodeToString(b))
		}
	}
	return env
}

func envValue(env []string, name string) string {
	v := ""
	for _, kv := range env {
		if len(kv) > len(name) && kv[:len(name)+1] == name+"=" {
			v = kv[len(name)+1:]
		}
	}
	return v
}

// startEtcd runs a single-member etcd on 127.0.0.1:port (peer port+1).
func startEtcd(bin, dir string, port int) (*exec.Cmd, error) {
	path, err := exec.LookPath(bin)
	if err != nil {
		return nil, fmt.Errorf("etcd not found (install Debian's etcd-server, or pass --meta): %w", err)
	}
	client := fmt.Sprintf("http://127.0.0.1:%d", port)
	peer := fmt.Sprintf("http://127.0.0.1:%d", port+1)
	p := exec.Command(path, "--name", "dev", "--data-dir", dir,
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "dev="+peer)
	log, err := os.OpenFile(dir+".log", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	p.Stdout, p.Stderr = log, log
	if err := p.Start(); err != nil {
		log.Close()
		return nil, err
	}
	log.Close()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 200*time.Millisecond); err == nil {
			c.Close()
			return p, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.Process.Kill()
	p.Wait()
	return nil, fmt.Errorf("etcd did not start on %s (log %s.log)", client, dir)
}

func waitHealthy(adminAddr string, timeout time.Duration, exited <-chan string) error {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		select {
		case msg := <-exited:
			return errors.New(msg)
		default:
		}
		resp, err := client.Get("http://" + adminAddr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("not healthy at %s after %v", adminAddr, timeout)
}
