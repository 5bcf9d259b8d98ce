package cluster

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strata-storage/strata/metastore"
)

func TestParseEtcdURL(t *testing.T) {
	cases := []struct {
		in     string
		eps    []string
		prefix string
		ok     bool
	}{
		{"etcd://127.0.0.1:2379", []string{"http://127.0.0.1:2379"}, "strata/", true},
		{"etcd://a:1,b:2,c:3/prod", []string{"http://a:1", "http://b:2", "http://c:3"}, "prod/", true},
		{"http://127.0.0.1:2379", nil, "", false},
		{"etcd://", nil, "", false},
		{"127.0.0.1:2379", nil, "", false},
	}
	for _, tc := range cases {
		eps, prefix, err := ParseEtcdURL(tc.in)
		if (err == nil) != tc.ok {
			t.Fatalf("%s: err %v", tc.in, err)
		}
		if tc.ok && (prefix != tc.prefix || len(eps) != len(tc.eps) || eps[0] != tc.eps[0] || eps[len(eps)-1] != tc.eps[len(eps)-1]) {
			t.Fatalf("%s: %v %q", tc.in, eps, prefix)
		}
	}
}

// realEtcd starts Debian's etcd on 127.0.0.1 (skipping without it, unless
// STRATA_REQUIRE_TOOLS=1).
func realEtcd(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		if os.Getenv("STRATA_REQUIRE_TOOLS") == "1" {
			t.Fatal("etcd not installed (apt-get install etcd-server); STRATA_REQUIRE_TOOLS=1 requires it")
		}
		t.Skip("etcd not installed (apt-get install etcd-server)")
	}
	port := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().String()
	}
	client, peer := port(), port()
	cmd := exec.Command(bin, "--name", "t", "--data-dir", filepath.Join(t.TempDir(), "etcd"),
		"--listen-client-urls", "http://"+client, "--advertise-client-urls", "http://"+client,
		"--listen-peer-urls", "http://"+peer, "--initial-advertise-peer-urls", "http://"+peer, "--initial-cluster", "t=http://"+peer)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get("http://" + client + "/health"); err == nil {
			resp.Body.Close()
			return "etcd://" + client + "/test"
		}
	}
	t.Fatal("etcd did not start")
	return ""
}

func TestEtcdStoreAndWatch(t *testing.T) {
	ctx := context.Background()
	e, err := OpenEtcd(ctx, realEtcd(t), quietLog)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	var _ metastore.Store = e
	var _ metastore.Watcher = e

	events := make(chan string, 16)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go e.Watch(wctx, "bucket/", func(k string, v []byte) {
		if v == nil {
			events <- "delete " + k
		} else {
			events <- "put " + k + "=" + string(v)
		}
	})
	time.Sleep(200 * time.Millisecond) // let the watch start

	if ok, err := e.PutIfAbsent(ctx, "bucket/a", []byte("1")); !ok || err != nil {
		t.Fatalf("first put-if-absent: %v %v", ok, err)
	}
	if ok, err := e.PutIfAbsent(ctx, "bucket/a", []byte("2")); ok || err != nil {
		t.Fatalf("second put-if-absent: %v %v", ok, err)
	}
	if ok, _ := e.Swap(ctx, "bucket/a", []byte("stale"), []byte("3")); ok {
		t.Fatal("swap with a stale value succeeded")
	}
	if ok, err := e.Swap(ctx, "bucket/a", []byte("1"), []byte("3")); !ok || err != nil {
		t.Fatalf("swap: %v %v", ok, err)
	}
	e.Put(ctx, "bucket/b", []byte("x"))
	e.Put(ctx, "other", []byte("y"))
	kvs, err := e.List(ctx, "bucket/")
	if err != nil || len(kvs) != 2 || kvs[0].Key != "bucket/a" || string(kvs[0].Value) != "3" || kvs[1].Key != "bucket/b" {
		t.Fatalf("list: %v %v", kvs, err)
	}
	if err := e.Delete(ctx, "bucket/b"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Get(ctx, "bucket/b"); !errors.Is(err, metastore.ErrNotFound) {
		t.Fatalf("get deleted: %v", err)
	}
	want := []string{"put bucket/a=1", "put bucket/a=3", "put bucket/b=x", "delete bucket/b"}
	for _, w := range want {
		select {
		case got := <-events:
			if got != w {
				t.Fatalf("watch event %q, want %q", got, w)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no watch event %q", w)
		}
	}
}

func TestMembershipHeartbeatsAndDown(t *testing.T) {
	ctx := context.Background()
	e, err := OpenEtcd(ctx, realEtcd(t), quietLog)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	info := func(name, addr string) func() NodeInfo {
		return func() NodeInfo { return NodeInfo{Name: name, Zone: "z1", RPCAddr: addr} }
	}
	a := NewMember(e, 2*time.Second, info("a", "127.0.0.1:1"), quietLog)
	if err := a.Join(ctx); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { a.Run(runCtx); close(done) }()
	// A second process may not take a live node's name.
	if err := NewMember(e, 2*time.Second, info("a", "127.0.0.1:2"), quietLog).Join(ctx); err == nil {
		t.Fatal("joined under a live node's name")
	}
	members, err := ListMembers(ctx, e)
	if err != nil || len(members) != 1 || members[0].State != "up" || members[0].Heartbeat.IsZero() {
		t.Fatalf("members: %+v %v", members, err)
	}
	stop()
	<-done
	members, _ = ListMembers(ctx, e)
	if len(members) != 1 || members[0].State != "down" {
		t.Fatalf("after a clean stop: %+v", members)
	}

	// A node that stops heartbeating without a word (SIGKILL) is down
	// once its lease runs out.
	b := NewMember(e, 2*time.Second, info("b", "127.0.0.1:3"), quietLog)
	if err := b.Join(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		members, _ = ListMembers(ctx, e)
		if len(members) == 2 && members[1].Name == "b" && members[1].State == "down" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("silent node never marked down: %+v", members)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Every metadata call has a deadline: against an etcd that accepts
// connections and never answers, a call with no deadline of its own fails
// after the store's bound instead of hanging.
func TestEtcdCallsWithoutADeadlineAreBounded(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // a black hole: accept, read, never answer
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go io.Copy(io.Discard, c)
		}
	}()
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{"http://" + ln.Addr().String()}, DialTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	e := &Etcd{c: c, prefix: "t/", callTimeout: 300 * time.Millisecond}
	for name, call := range map[string]func() error{
		"get":  func() error { _, err := e.Get(context.Background(), "k"); return err },
		"put":  func() error { return e.Put(context.Background(), "k", []byte("v")) },
		"list": func() error { _, err := e.List(context.Background(), ""); return err },
		"swap": func() error { _, err := e.Sub("s/").Swap(context.Background(), "k", nil, []byte("v")); return err },
	} {
		start := time.Now()
		if err := call(); err == nil || time.Since(start) > 5*time.Second {
			t.Fatalf("%s against a silent etcd: %v after %v", name, err, time.Since(start))
		}
	}
}
